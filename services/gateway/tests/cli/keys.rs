//! `switchyard keys`.

use anyhow::ensure;

use crate::{Server, http_with, run};

fn last_line(out: &std::process::Output) -> anyhow::Result<String> {
    let stdout = String::from_utf8(out.stdout.clone())?;
    Ok(stdout.lines().last().unwrap_or("").to_owned())
}

fn is_key(s: &str) -> bool {
    s.strip_prefix("sk-sy-")
        .is_some_and(|h| h.len() == 48 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn keys_create_prints_the_key_last_and_stores_only_its_hash() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = run(
        dir.path(),
        &[
            "keys", "create", "--org", "acme", "--admin", "--label", "ci",
        ],
    )?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = last_line(&out)?;
    ensure!(is_key(&key), "last line is the key: {key:?}");
    let second = last_line(&run(dir.path(), &["keys", "create", "--org", "acme"])?)?;
    ensure!(is_key(&second) && second != key, "keys are unique");

    let list = run(dir.path(), &["keys", "list"])?;
    ensure!(list.status.success());
    let text = String::from_utf8(list.stdout)?;
    ensure!(
        text.lines().filter(|l| l.contains("acme")).count() == 2,
        "{text}"
    );
    ensure!(
        text.contains("yes") && text.contains("ci"),
        "admin flag and label listed: {text}"
    );
    ensure!(!text.contains(&key[6..]), "list never shows a secret");

    // The secret is nowhere in the data directory; its SHA-256 is.
    let mut found_secret = false;
    for entry in walk(dir.path())? {
        let bytes = std::fs::read(&entry)?;
        if bytes.windows(key.len()).any(|w| w == key.as_bytes()) {
            found_secret = true;
        }
    }
    ensure!(!found_secret, "the secret was written to disk");
    Ok(())
}

fn walk(dir: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(out)
}

#[test]
fn keys_create_reaches_a_running_server_through_its_control_socket() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let before = last_line(&run(dir.path(), &["keys", "create", "--org", "early"])?)?;
    ensure!(is_key(&before));
    let server = Server::start(dir.path(), &["serve"])?;
    let out = run(dir.path(), &["keys", "create", "--org", "live-org"])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(is_key(&last_line(&out)?));
    // The running server knows both keys (it followed the control topic).
    let mut text = String::new();
    for _ in 0..100 {
        text = String::from_utf8(run(dir.path(), &["keys", "list"])?.stdout)?;
        if text.contains("live-org") && text.contains("early") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ensure!(
        text.contains("live-org") && text.contains("early"),
        "{text}"
    );
    drop(server);
    Ok(())
}

#[test]
fn keys_create_rejects_a_bad_org_with_one_clear_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = run(dir.path(), &["keys", "create", "--org", "Bad Org!"])?;
    ensure!(!out.status.success());
    let stderr = String::from_utf8(out.stderr)?;
    ensure!(
        stderr.lines().count() == 1 && stderr.contains("--org"),
        "{stderr}"
    );
    Ok(())
}

/// `--rpm` and `--tpm` limit a key as OpenAI limits one: a 429 of type `requests` or `tokens`
/// with `retry-after` and the `x-ratelimit-*` headers, and no `x-should-retry: false` (waiting
/// helps). Other keys of the same org are not affected.
#[test]
fn a_key_over_its_limits_gets_openais_429_and_other_keys_do_not() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key = |extra: &[&str]| crate::create_key(dir.path(), &[], "acme", extra);
    let rpm2 = key(&["--rpm", "2"])?;
    let tpm = key(&["--tpm", "300"])?;
    let free = key(&[])?;
    let bad = run(
        dir.path(),
        &["keys", "create", "--org", "acme", "--rpm", "0"],
    )?;
    ensure!(
        !bad.status.success() && String::from_utf8(bad.stderr)?.contains("--rpm"),
        "a zero limit is refused, naming the flag"
    );

    let server = Server::start(dir.path(), &["serve"])?;
    let call = |key: &str, max_tokens: u32| {
        let body = format!(
            r#"{{"model":"demo/small","max_tokens":{max_tokens},"messages":[{{"role":"user","content":"hi"}}]}}"#
        );
        http_with(
            server.addr,
            "POST",
            "/v1/chat/completions",
            Some(&body),
            &[("authorization", &format!("Bearer {key}"))],
        )
    };
    for _ in 0..2 {
        let (status, _, body) = call(&rpm2, 16)?;
        ensure!(status == 200, "{status} {body}");
    }
    let (status, head, body) = call(&rpm2, 16)?;
    ensure!(status == 429, "third request in a minute: {status} {body}");
    let error: serde_json::Value = serde_json::from_str(&body)?;
    ensure!(
        error["error"]["type"] == "requests" && error["error"]["code"] == "rate_limit_exceeded",
        "{body}"
    );
    let head = head.to_ascii_lowercase();
    for header in [
        "retry-after:",
        "x-ratelimit-limit-requests: 2",
        "x-ratelimit-remaining-requests: 0",
        "x-ratelimit-reset-requests:",
    ] {
        ensure!(head.contains(header), "{header} missing in {head}");
    }
    ensure!(!head.contains("x-should-retry"), "{head}");
    for _ in 0..4 {
        let (status, _, body) = call(&free, 16)?;
        ensure!(
            status == 200,
            "an unlimited key of the same org: {status} {body}"
        );
    }

    // Tokens: a request reserves its prompt plus max_tokens; 1000 cannot fit in 300 a minute,
    // 100 can, and the real usage (smaller than the reservation) is what stays counted.
    let (status, _, body) = call(&tpm, 1000)?;
    ensure!(status == 429, "{status} {body}");
    let error: serde_json::Value = serde_json::from_str(&body)?;
    ensure!(error["error"]["type"] == "tokens", "{body}");
    for _ in 0..3 {
        let (status, _, body) = call(&tpm, 100)?;
        ensure!(status == 200, "{status} {body}");
    }
    Ok(())
}
