//! The webhook export in `serve`: real chat traffic reaches a local receiver (allowed by
//! config) as HMAC-signed batches that verify, with the decisions the clients saw.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use crate::{Server, http_with};

const SECRET: &str = "webhook-secret-for-the-cli-test";

/// Accepts requests on `listener`, verifies each signature, answers 200; records
/// (verified, body).
fn receive(listener: TcpListener, seen: Arc<Mutex<Vec<(bool, Value)>>>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => continue,
        });
        let mut length = 0usize;
        let mut signature = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((k, v)) = trimmed.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "x-switchyard-signature" => signature = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            continue;
        }
        let now = {
            use switchyard_runtime::Clock as _;
            switchyard_runtime::SystemClock.now_micros() / 1_000_000
        };
        let ok = switchyard_webhook::sign::verify(SECRET.as_bytes(), &signature, &body, now, 300)
            .is_ok();
        if let Ok(mut seen) = seen.lock() {
            seen.push((ok, serde_json::from_slice(&body).unwrap_or_default()));
        }
        let _ =
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    }
}

#[test]
fn serve_posts_signed_decision_batches_to_the_org_webhook() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let seen: Arc<Mutex<Vec<(bool, Value)>>> = Arc::default();
    {
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || receive(listener, seen));
    }
    let config = dir.path().join("webhooks.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[webhooks]
allow_private_targets = true
initial_backoff_ms = 10

[webhooks.orgs.default]
url = "http://127.0.0.1:{port}/hook"
secret = "{SECRET}"
"#
        ),
    )?;
    let server = Server::start(
        dir.path(),
        &["--config", config.to_str().context("utf-8")?, "serve"],
    )?;
    let mut decisions = BTreeSet::new();
    for i in 0..3 {
        let body =
            json!({"model": "auto", "messages": [{"role": "user", "content": format!("hi {i}")}]})
                .to_string();
        let (status, head, text) = http_with(
            server.addr,
            "POST",
            "/v1/chat/completions",
            Some(&body),
            &[],
        )?;
        ensure!(status == 200, "{status} {text}");
        let id = head
            .lines()
            .find_map(|l| l.strip_prefix("x-switchyard-decision-id: "))
            .context("decision header")?;
        decisions.insert(id.trim().to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got: BTreeSet<String> = seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
            .iter()
            .flat_map(|(_, body)| body["decisions"].as_array().cloned().unwrap_or_default())
            .filter_map(|d| d["decision_id"].as_str().map(str::to_owned))
            .collect();
        if decisions.is_subset(&got) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "webhook got {got:?}, want {decisions:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    ensure!(
        seen.iter().all(|(ok, _)| *ok),
        "every POST's signature verifies"
    );
    ensure!(
        seen.iter()
            .all(|(_, b)| b["org"] == "default" && b["delivery_id"].is_string()),
        "{seen:?}"
    );
    Ok(())
}
