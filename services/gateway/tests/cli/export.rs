//! `GET /v1/export/decisions` and `switchyard export verify|decisions` against a real server:
//! the export verifies (plain and gzip), tampering fails verification, each org sees only its
//! own decisions, bad parameters get OpenAI-shaped 400s.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use crate::{Server, http_with, run};

/// A GET returning the raw body bytes (dechunked): the gzip export is binary.
pub fn get_raw(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no header end")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut rest = &raw[end + 4..];
    let status: u16 = head.split_whitespace().nth(1).context("status")?.parse()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .context("chunk size line")?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end])?.trim(), 16)?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            ensure!(rest.len() >= size, "a chunk was cut off");
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        out
    } else {
        rest.to_vec()
    };
    Ok((status, head, body))
}

pub fn key(dir: &Path, org: &str) -> anyhow::Result<String> {
    crate::create_key(dir, &[], org, &[])
}

fn chat(server: &Server, bearer: &str, i: usize) -> anyhow::Result<()> {
    let body = json!({"model": "auto", "messages": [{"role": "user", "content": format!("question {i}")}]})
        .to_string();
    let (status, _, body) = http_with(
        server.addr,
        "POST",
        "/v1/chat/completions",
        Some(&body),
        &[("authorization", bearer)],
    )?;
    ensure!(status == 200, "{status} {body}");
    Ok(())
}

/// Waits until the org's decisions list holds `n` decisions.
fn wait_for(server: &Server, bearer: &str, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = http_with(
            server.addr,
            "GET",
            "/v1/decisions?limit=500",
            None,
            &[("authorization", bearer)],
        )?;
        ensure!(status == 200, "{status} {body}");
        let v: Value = serde_json::from_str(&body)?;
        if v["data"].as_array().is_some_and(|d| d.len() >= n) {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "only {v} decisions after 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn verify(dir: &Path, file: &Path) -> anyhow::Result<(bool, String)> {
    let out = run(dir, &["export", "verify", file.to_str().context("utf-8")?])?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[test]
fn an_export_verifies_tampering_fails_and_orgs_see_only_their_own() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    let acme = format!("Bearer {}", key(dir.path(), "acme")?);
    let globex = format!("Bearer {}", key(dir.path(), "globex")?);
    for i in 0..5 {
        chat(&server, &acme, i)?;
    }
    for i in 0..3 {
        chat(&server, &globex, i)?;
    }
    wait_for(&server, &acme, 5)?;
    wait_for(&server, &globex, 3)?;

    // acme's export: its 5 decisions only, then the trailer.
    let (status, head, body) = get_raw(
        server.addr,
        "/v1/export/decisions",
        &[("authorization", &acme)],
    )?;
    ensure!(status == 200, "{status} {}", String::from_utf8_lossy(&body));
    ensure!(
        head.to_ascii_lowercase().contains("application/x-ndjson"),
        "{head}"
    );
    let text = String::from_utf8(body.clone())?;
    let lines: Vec<&str> = text.lines().collect();
    ensure!(lines.len() == 6, "5 rows and a trailer: {text}");
    for line in &lines[..5] {
        let row: Value = serde_json::from_str(line)?;
        ensure!(
            row["org"] == "acme",
            "another org's row in acme's export: {row}"
        );
        ensure!(
            row["decision"]["signature"].is_string(),
            "the signed trace: {row}"
        );
    }
    let trailer: Value = serde_json::from_str(lines[5])?;
    ensure!(trailer["trailer"]["rows"] == 5, "{trailer}");
    let file = dir.path().join("acme.jsonl");
    std::fs::write(&file, &body)?;
    let (ok, out) = verify(dir.path(), &file)?;
    ensure!(
        ok && out.contains("5 rows"),
        "a fresh export verifies: {out}"
    );

    // globex sees its 3.
    let (_, _, body) = get_raw(
        server.addr,
        "/v1/export/decisions",
        &[("authorization", &globex)],
    )?;
    let text = String::from_utf8(body)?;
    ensure!(text.lines().count() == 4, "{text}");
    ensure!(
        !text.contains("\"org\":\"acme\""),
        "acme's rows in globex's export"
    );

    // gzip: the same rows, compressed, verifies.
    let (status, head, gz) = get_raw(
        server.addr,
        "/v1/export/decisions?gzip=true&route=default&from=2020-01-01T00:00:00Z&to=now",
        &[("authorization", &acme)],
    )?;
    ensure!(
        status == 200 && gz.starts_with(&[0x1f, 0x8b]),
        "{status} {head}"
    );
    let gz_file = dir.path().join("acme.jsonl.gz");
    std::fs::write(&gz_file, &gz)?;
    let (ok, out) = verify(dir.path(), &gz_file)?;
    ensure!(
        ok && out.contains("5 rows") && out.contains("gzip"),
        "{out}"
    );
    // A window that holds nothing: only the trailer, which verifies.
    let (_, _, empty) = get_raw(
        server.addr,
        "/v1/export/decisions?from=2020-01-01&to=2020-01-02",
        &[("authorization", &acme)],
    )?;
    ensure!(String::from_utf8(empty.clone())?.starts_with("{\"trailer\":{\"rows\":0,"));

    // Tampering: a byte changed, a line dropped, the trailer removed, a truncated gzip.
    let original = text_of(&file)?;
    let changed = original.replacen("\"acme\"", "\"acmf\"", 1);
    let dropped: String = original
        .split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| l)
        .collect();
    let no_trailer: String = original.split_inclusive('\n').take(5).collect();
    for (name, content, expect) in [
        ("changed", changed.as_bytes().to_vec(), "SHA-256 mismatch"),
        ("dropped", dropped.as_bytes().to_vec(), "rows"),
        ("no-trailer", no_trailer.as_bytes().to_vec(), "no trailer"),
        ("truncated.gz", gz[..gz.len() - 12].to_vec(), "cannot read"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content)?;
        let (ok, out) = verify(dir.path(), &path)?;
        ensure!(!ok, "{name} must not verify: {out}");
        ensure!(
            out.contains(expect),
            "{name}: expected `{expect}` in: {out}"
        );
    }

    // Bad parameters: OpenAI-shaped 400s naming the parameter.
    for (query, param) in [
        ("from=yesterday", Some("from")),
        ("to=2026-13-01", Some("to")),
        ("from=2026-02-01&to=2026-01-01", Some("from")),
        ("gzip=maybe", None),
        ("colour=blue", None),
    ] {
        let (status, _, body) = get_raw(
            server.addr,
            &format!("/v1/export/decisions?{query}"),
            &[("authorization", &acme)],
        )?;
        let v: Value = serde_json::from_slice(&body)?;
        ensure!(status == 400, "{query}: {status} {v}");
        ensure!(
            v["error"]["type"] == "invalid_request_error",
            "{query}: {v}"
        );
        if let Some(param) = param {
            ensure!(v["error"]["param"] == param, "{query}: {v}");
        }
    }
    let (status, _, _) = get_raw(
        server.addr,
        "/v1/export/decisions",
        &[("authorization", "Bearer sk-sy-not-a-key")],
    )?;
    ensure!(status == 401, "an invalid key: {status}");

    // Offline: the same export from the data directory once the server stopped.
    let (status, _) = server.terminate()?;
    ensure!(status.success());
    let offline = dir.path().join("offline.jsonl.gz");
    let out = run(
        dir.path(),
        &[
            "export",
            "decisions",
            "--org",
            "acme",
            "--from",
            "-1d",
            "-o",
            offline.to_str().context("utf-8")?,
        ],
    )?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("exported 5 decisions"),
        "progress and summary on stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, out) = verify(dir.path(), &offline)?;
    ensure!(
        ok && out.contains("5 rows") && out.contains("gzip"),
        "{out}"
    );
    Ok(())
}

fn text_of(path: &Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path)?)
}

/// `export decisions` on a `scylla://` store: a binary without the `scylla` feature says how to
/// get it; one with it names the store it could not reach (nothing listens on port 1). Either
/// way one clear line and a non-zero exit, never a panic. (The ScyllaDB backend itself is
/// untested: no ScyllaDB here.)
#[test]
fn export_from_a_scylla_store_is_a_clear_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = crate::switchyard(dir.path())
        .env("SWITCHYARD__STORE__URL", "scylla://127.0.0.1:1/switchyard")
        .args(["export", "decisions", "--org", "acme", "-o", "-"])
        .stdin(std::process::Stdio::null())
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "exit 0: {stderr}");
    ensure!(!stderr.contains("panicked"), "{stderr}");
    ensure!(
        stderr.contains("without the `scylla` cargo feature")
            || stderr.contains("cannot open the ScyllaDB store at 127.0.0.1:1"),
        "{stderr}"
    );
    ensure!(out.stdout.is_empty(), "nothing exported");
    Ok(())
}

/// `serve` on a `scylla://` store stops at startup with the same clear line (no ScyllaDB here:
/// nothing listens on port 1), instead of serving on some other store.
#[test]
fn serve_on_a_scylla_store_is_a_clear_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = crate::switchyard(dir.path())
        .env("SWITCHYARD__STORE__URL", "scylla://127.0.0.1:1/switchyard")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "exit 0: {stderr}");
    ensure!(!stderr.contains("panicked"), "{stderr}");
    ensure!(
        stderr.contains("without the `scylla` cargo feature")
            || stderr.contains("cannot open the ScyllaDB store at 127.0.0.1:1"),
        "{stderr}"
    );
    Ok(())
}
