//! What the benchmark examples share: a keep-alive HTTP/1.1 client and the binary under test.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    stream: AsyncBufReader<TcpStream>,
    addr: SocketAddr,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: AsyncBufReader::new(stream),
            addr,
        })
    }

    /// Sends a request; returns (status, headers, body).
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, String, String)> {
        let body = body.unwrap_or("");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let byte = self.stream.read_u8().await.context("connection closed")?;
            head.push(byte);
        }
        let head = String::from_utf8(head)?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .context("status line")?
            .parse()?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .context("content-length")?;
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, head, String::from_utf8(body)?))
    }
}

/// The binary under test: `SWITCHYARD_BIN`, else `../switchyard` from this example's directory
/// (`target/release/examples/<example>` → `target/release/switchyard`).
pub fn binary() -> Result<std::path::PathBuf> {
    if let Ok(path) = std::env::var("SWITCHYARD_BIN") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join("switchyard"))
        .context("the example's directory")?;
    ensure!(
        path.exists(),
        "no switchyard binary at {} (cargo build --release -p switchyard, or set SWITCHYARD_BIN)",
        path.display()
    );
    Ok(path)
}

/// An environment variable parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A server process under test; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `cmd` (the binary with its arguments, ending in `--listen 127.0.0.1:0`) and waits
/// for its listening line; stderr keeps being drained so the server never blocks on it.
pub fn spawn(mut cmd: Command) -> Result<Server> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn switchyard")?;
    let stderr = child.stderr.take().context("stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .context("switchyard exited before listening")??;
        if let Some(rest) = line.strip_prefix("switchyard: listening on http://") {
            break rest.split_whitespace().next().context("address")?.parse()?;
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Ok(Server { child, addr })
}
