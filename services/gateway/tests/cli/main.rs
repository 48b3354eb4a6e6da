//! Tests of the `switchyard` binary as a user runs it: start, health, metrics, keys, bad
//! config, SIGTERM. Each test gets its own data directory and an OS-assigned port.

mod audit;
mod chat;
mod config;
mod distributed;
mod export;
mod feedback;
mod feedback_loop;
mod keys;
mod mirror;
mod replay;
mod routes;
mod routing;
mod server;
mod upstream;
mod webhook;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

/// The binary under test, with a clean environment (no SWITCHYARD__ from the caller).
pub fn switchyard(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHYARD__") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.arg("--data-dir").arg(data_dir);
    cmd
}

/// A running server; killed on drop.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `switchyard <args> --listen 127.0.0.1:0` and waits for its listening line.
    pub fn start(data_dir: &Path, args: &[&str]) -> anyhow::Result<Server> {
        let mut child = switchyard(data_dir)
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn switchyard")?;
        let stderr = child.stderr.take().context("stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .context("no listening line within 60 s")?;
            if let Some(rest) = line.strip_prefix("switchyard: listening on http://") {
                let addr = rest.split_whitespace().next().context("address")?.parse()?;
                return Ok(Server {
                    child,
                    addr,
                    stderr: rx,
                });
            }
        }
    }

    /// Sends SIGTERM and waits for the exit; returns the status and the rest of stderr.
    pub fn terminate(mut self) -> anyhow::Result<(std::process::ExitStatus, Vec<String>)> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                let rest: Vec<String> = self.stderr.try_iter().collect();
                return Ok((status, rest));
            }
            if std::time::Instant::now() > deadline {
                bail!("switchyard did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 request; returns (status, headers, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, String, String)> {
    http_with(addr, method, path, body, &[])
}

/// [`http`] with extra headers.
pub fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").context("no header end")?;
    let status: u16 = head.split_whitespace().nth(1).context("status")?.parse()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((status, head.to_owned(), body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Runs the binary to completion.
pub fn run(data_dir: &Path, args: &[&str]) -> anyhow::Result<Output> {
    Ok(switchyard(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .output()?)
}

/// Runs `switchyard [global...] keys create --org ORG [extra...]` and returns the new key (the
/// last line of its output); `global` holds options such as `--config FILE`.
pub fn create_key(
    data_dir: &Path,
    global: &[&str],
    org: &str,
    extra: &[&str],
) -> anyhow::Result<String> {
    let mut args = global.to_vec();
    args.extend(["keys", "create", "--org", org]);
    args.extend_from_slice(extra);
    let out = run(data_dir, &args)?;
    anyhow::ensure!(
        out.status.success(),
        "keys create {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout)?
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_owned();
    anyhow::ensure!(key.starts_with("sk-sy-"), "not a key: {key}");
    Ok(key)
}
