//! Bad configuration: non-zero exit and one line naming the key and what is wrong.

use anyhow::ensure;

use crate::{run, switchyard};

fn one_line_error(out: &std::process::Output) -> anyhow::Result<String> {
    ensure!(!out.status.success(), "expected a failure");
    let stderr = String::from_utf8(out.stderr.clone())?;
    ensure!(
        stderr.lines().count() == 1,
        "exactly one line, got:\n{stderr}"
    );
    Ok(stderr)
}

#[test]
fn unknown_key_in_a_file_is_named() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nlisen = \"127.0.0.1:1\"\n")?;
    let out = run(
        dir.path(),
        &["--config", file.to_str().unwrap_or_default(), "serve"],
    )?;
    let line = one_line_error(&out)?;
    ensure!(
        line.starts_with("config error:")
            && line.contains("server.lisen")
            && line.contains("bad.toml"),
        "{line}"
    );
    Ok(())
}

#[test]
fn invalid_value_from_env_names_the_variable() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = switchyard(dir.path())
        .args(["serve"])
        .env("SWITCHYARD__LOG__PARTITIONS", "0")
        .output()?;
    let line = one_line_error(&out)?;
    ensure!(
        line.contains("log.partitions") && line.contains("SWITCHYARD__LOG__PARTITIONS"),
        "{line}"
    );
    let out = switchyard(dir.path())
        .args(["config", "check"])
        .env("SWITCHYARD__SERVER__LISTEN", "not-an-address")
        .output()?;
    let line = one_line_error(&out)?;
    ensure!(line.contains("server.listen"), "{line}");
    Ok(())
}

#[test]
fn unknown_env_key_is_named() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = switchyard(dir.path())
        .args(["config", "check"])
        .env("SWITCHYARD__LOG__PARTITONS", "4")
        .output()?;
    let line = one_line_error(&out)?;
    ensure!(line.contains("log.partitons"), "{line}");
    Ok(())
}

#[test]
fn missing_config_file_is_an_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = run(
        dir.path(),
        &[
            "--config",
            "/nonexistent/switchyard.toml",
            "config",
            "check",
        ],
    )?;
    let line = one_line_error(&out)?;
    ensure!(line.contains("/nonexistent/switchyard.toml"), "{line}");
    Ok(())
}

#[test]
fn an_unreachable_kafka_broker_is_one_clear_startup_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let started = std::time::Instant::now();
    let out = switchyard(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SWITCHYARD__LOG__URL", "kafka://127.0.0.1:9")
        .env("SWITCHYARD__LOG__KAFKA__REQUEST_TIMEOUT_MS", "2000")
        .output()?;
    // librdkafka logs each failed connection attempt before the one error line that ends it.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().last().unwrap_or("");
    ensure!(!out.status.success(), "{stderr}");
    ensure!(
        line.starts_with("error: cannot connect to Kafka at 127.0.0.1:9"),
        "{stderr}"
    );
    ensure!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "gave up only after {:?}",
        started.elapsed()
    );
    Ok(())
}

#[test]
fn config_check_accepts_the_defaults_and_a_valid_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("ok.toml");
    std::fs::write(&file, "[log]\npartitions = 16\n")?;
    let out = run(
        dir.path(),
        &[
            "--config",
            file.to_str().unwrap_or_default(),
            "config",
            "check",
        ],
    )?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(String::from_utf8(out.stdout)?.starts_with("config ok"));
    Ok(())
}
