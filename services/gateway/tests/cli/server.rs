//! The server: health, readiness, metrics, errors, roles, SIGTERM.

use anyhow::ensure;

use crate::{Server, http, run};

#[test]
fn serve_with_no_config_answers_healthz_readyz_and_metrics() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    let (status, _, body) = http(server.addr, "GET", "/healthz", None)?;
    ensure!(
        status == 200 && body.contains(r#""status":"ok""#),
        "healthz: {status} {body}"
    );
    // Readiness follows the control plane catching up; poll briefly.
    let mut ready = (0, String::new());
    for _ in 0..100 {
        let (status, _, body) = http(server.addr, "GET", "/readyz", None)?;
        ready = (status, body);
        if status == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ensure!(
        ready.0 == 200 && ready.1.contains(r#""status":"ready""#),
        "readyz: {ready:?}"
    );
    ensure!(
        ready.1.contains(r#""log":"embedded""#),
        "readyz names the backend: {}",
        ready.1
    );
    let (status, head, body) = http(server.addr, "GET", "/metrics", None)?;
    ensure!(status == 200, "metrics status {status}");
    ensure!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    for family in [
        "build_info",
        "log_append_batches_total",
        "log_group_commit_records",
    ] {
        ensure!(body.contains(family), "metrics lack {family}:\n{body}");
    }
    ensure!(
        body.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    Ok(())
}

#[test]
fn plain_switchyard_is_serve_with_defaults() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // No subcommand: serve. `--listen` is a serve flag, so use the env override instead.
    let mut child = crate::switchyard(dir.path())
        .env("SWITCHYARD__SERVER__LISTEN", "127.0.0.1:0")
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("stderr"))?;
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(stderr);
    let mut addr = None;
    for _ in 0..200 {
        line.clear();
        if std::io::BufRead::read_line(&mut reader, &mut line)? == 0 {
            break;
        }
        if let Some(rest) = line.strip_prefix("switchyard: listening on http://") {
            addr = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    let addr = addr
        .ok_or_else(|| anyhow::anyhow!("no listening line"))?
        .parse()?;
    let (status, _, _) = http(addr, "GET", "/healthz", None)?;
    let _ = child.kill();
    let _ = child.wait();
    ensure!(status == 200);
    Ok(())
}

#[test]
fn unknown_urls_get_openai_shaped_404s() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    let (status, head, body) = http(server.addr, "POST", "/v1/does-not-exist", Some("{}"))?;
    ensure!(status == 404, "status {status}");
    ensure!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let json: serde_json::Value = serde_json::from_str(&body)?;
    ensure!(json["error"]["type"] == "invalid_request_error", "{json}");
    ensure!(json["error"]["code"] == "unknown_url", "{json}");
    ensure!(
        json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/v1/does-not-exist")),
        "{json}"
    );
    ensure!(
        json["error"].get("param").is_some(),
        "param is present (null): {json}"
    );
    Ok(())
}

#[test]
fn sigterm_drains_flushes_and_exits_zero() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    // A key created through the running server must be durable after the shutdown.
    let out = run(dir.path(), &["keys", "create", "--org", "drain-test"])?;
    ensure!(
        out.status.success(),
        "keys create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, rest) = server.terminate()?;
    ensure!(status.success(), "exit status {status:?}; stderr: {rest:?}");
    ensure!(
        rest.iter().any(|l| l.contains("event log flushed")),
        "no flush line in {rest:?}"
    );
    ensure!(
        !dir.path().join("control.sock").exists(),
        "control socket removed on shutdown"
    );
    let list = run(dir.path(), &["keys", "list"])?;
    let text = String::from_utf8(list.stdout)?;
    ensure!(
        text.contains("drain-test"),
        "the key survived the shutdown: {text}"
    );
    Ok(())
}

#[test]
fn a_second_server_on_the_same_data_dir_fails_clearly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let _server = Server::start(dir.path(), &["serve"])?;
    let out = run(dir.path(), &["serve", "--listen", "127.0.0.1:0"])?;
    ensure!(!out.status.success());
    let stderr = String::from_utf8(out.stderr)?;
    ensure!(
        stderr.contains("in use by another switchyard process"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn role_subcommands_start_and_report_their_role() -> anyhow::Result<()> {
    for (args, role) in [
        (vec!["ingress"], "\"ingress\""),
        (vec!["stream", "session-nps"], "stream:session-nps"),
        (vec!["stream", "judge"], "stream:judge"),
        (vec!["stream", "regression"], "stream:regression"),
        (vec!["projector"], "\"projector\""),
        (vec!["sink"], "\"sink\""),
    ] {
        let dir = tempfile::tempdir()?;
        let server = Server::start(dir.path(), &args)?;
        let (status, _, body) = http(server.addr, "GET", "/readyz", None)?;
        ensure!(status == 200 || status == 503, "{args:?}: {status}");
        ensure!(
            body.contains(role),
            "{args:?}: readyz does not name {role}: {body}"
        );
        let (status, _) = server.terminate()?;
        ensure!(status.success(), "{args:?} exits cleanly on SIGTERM");
    }
    let dir = tempfile::tempdir()?;
    let out = run(dir.path(), &["stream", "no-such-stream"])?;
    ensure!(!out.status.success());
    let stderr = String::from_utf8(out.stderr)?;
    ensure!(
        stderr.contains("session-nps") && stderr.contains("judge"),
        "lists the streams: {stderr}"
    );
    Ok(())
}

/// The stream processors' threads run at `server.processor_nice` (5 by default), the request
/// threads at the process's own niceness (read from /proc: field 19 of a thread's `stat`).
#[test]
fn processor_threads_are_nicer_than_request_threads() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    let tasks = std::path::PathBuf::from(format!("/proc/{}/task", server.child.id()));
    let mut processors = Vec::new();
    let mut others = Vec::new();
    for task in std::fs::read_dir(&tasks)? {
        let path = task?.path();
        let name = std::fs::read_to_string(path.join("comm"))?;
        let stat = std::fs::read_to_string(path.join("stat"))?;
        // Fields after the parenthesised command name; niceness is field 19 of the whole line.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let nice: i32 = after
            .split_whitespace()
            .nth(16)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no niceness in {stat}"))?;
        if name.trim() == "sy-processor" {
            processors.push(nice);
        } else if name.trim().starts_with("tokio-rt") {
            others.push(nice);
        }
    }
    ensure!(
        !processors.is_empty(),
        "no sy-processor thread in {tasks:?}"
    );
    ensure!(!others.is_empty(), "no request thread in {tasks:?}");
    ensure!(
        processors.iter().all(|n| *n == 5),
        "processor niceness {processors:?}"
    );
    ensure!(
        others.iter().all(|n| *n == 0),
        "request thread niceness {others:?}"
    );
    Ok(())
}
