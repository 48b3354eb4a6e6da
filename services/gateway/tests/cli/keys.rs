//! `switchyard keys`.

use anyhow::ensure;

use crate::{Server, run};

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
