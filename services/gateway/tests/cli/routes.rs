//! The routes admin API over HTTP against a real server and its embedded log: pins,
//! constraints and their hash chain, route configuration, admin-only access, and that every
//! change is an event that survives a restart.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use crate::{Server, http, http_with, run};

/// Waits until the server is ready (its control plane has replayed the log).
fn ready(server: &Server) -> anyhow::Result<()> {
    for _ in 0..200 {
        let (status, _, _) = http(server.addr, "GET", "/readyz", None)?;
        if status == 200 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("the server did not become ready")
}

fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String, Value)> {
    let text = body.map(Value::to_string);
    let (status, head, body) = http_with(addr, method, path, text.as_deref(), headers)?;
    let json = serde_json::from_str(&body)
        .with_context(|| format!("{method} {path}: not JSON ({status}): {body}"))?;
    Ok((status, head, json))
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn last_line(out: &std::process::Output) -> anyhow::Result<String> {
    Ok(String::from_utf8(out.stdout.clone())?
        .lines()
        .last()
        .unwrap_or("")
        .to_owned())
}

#[test]
fn a_pin_shows_in_the_route_until_it_is_removed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    ready(&server)?;
    let addr = server.addr;

    let (status, _, list) = call(addr, "GET", "/v1/routes", None, &[])?;
    ensure!(status == 200, "{list}");
    let default = list["data"]
        .as_array()
        .and_then(|d| d.iter().find(|r| r["name"] == "default"))
        .context("the default route is listed")?;
    ensure!(
        default["pin"].is_null() && default["baseline"] == "demo/large",
        "{default}"
    );

    let pin = json!({"model": "demo/small", "reason": "incident", "note": "provider outage"});
    let (status, _, route) = call(addr, "POST", "/v1/routes/default/pin", Some(&pin), &[])?;
    ensure!(status == 200, "pin: {status} {route}");
    ensure!(route["pin"]["model"] == "demo/small", "{route}");
    ensure!(route["pin"]["reason"] == "incident", "{route}");
    ensure!(route["pin"]["pinned_by"] == "anonymous", "{route}");
    ensure!(route["pin"]["note"] == "provider outage", "{route}");

    let (status, _, route) = call(addr, "GET", "/v1/routes/default", None, &[])?;
    ensure!(
        status == 200 && route["pinned"] == true && route["pin"]["model"] == "demo/small",
        "{route}"
    );

    // An empty body pins the baseline.
    let (status, _, route) = call(addr, "POST", "/v1/routes/default/pin", None, &[])?;
    ensure!(
        status == 200
            && route["pin"]["model"] == "demo/large"
            && route["pin"]["reason"] == "manual",
        "{route}"
    );

    let (status, _, route) = call(addr, "DELETE", "/v1/routes/default/pin", None, &[])?;
    ensure!(status == 200 && route["pin"].is_null(), "unpin: {route}");
    let (status, _, err) = call(addr, "DELETE", "/v1/routes/default/pin", None, &[])?;
    ensure!(status == 404 && error_code(&err) == "not_pinned", "{err}");

    // Bad input is a 4xx in OpenAI's shape, never a 500.
    let cases = [
        ("/v1/routes/nope/pin", json!({}), 404, "route_not_found"),
        (
            "/v1/routes/default/pin",
            json!({"model": "nope/model"}),
            400,
            "model_not_found",
        ),
        ("/v1/routes/default/pin", json!({"expires_at": 1}), 400, ""),
        (
            "/v1/routes/default/pin",
            json!({"reason": "auto_rollback"}),
            400,
            "",
        ),
        ("/v1/routes/default/pin", json!({"modle": "x"}), 400, ""),
    ];
    for (path, body, want, code) in cases {
        let (status, _, err) = call(addr, "POST", path, Some(&body), &[])?;
        ensure!(
            status == want && err["error"]["message"].is_string(),
            "{path} {body}: {status} {err}"
        );
        ensure!(code.is_empty() || error_code(&err) == code, "{err}");
    }
    let (status, _, err) = call(addr, "GET", "/v1/routes/nope", None, &[])?;
    ensure!(
        status == 404 && error_code(&err) == "route_not_found",
        "{err}"
    );
    Ok(())
}

#[test]
fn constraint_changes_form_a_verified_chain_guarded_by_if_match() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    ready(&server)?;
    let addr = server.addr;
    let path = "/v1/routes/default/constraints";

    let (status, head, current) = call(addr, "GET", path, None, &[])?;
    ensure!(status == 200, "{current}");
    ensure!(
        current["hash"] == "" && current["verified"] == true && current["source"] == "default",
        "{current}"
    );
    ensure!(
        current["constraints"]["max_regression"] == 0.05,
        "the configured defaults are in force: {current}"
    );
    ensure!(header(&head, "etag") == Some("\"\""), "{head}");

    let first = json!({"max_regression": 0.02, "min_confidence": 0.9});
    let (status, head, one) = call(addr, "PUT", path, Some(&first), &[("If-Match", "\"\"")])?;
    ensure!(status == 200, "first PUT: {status} {one}");
    let hash0 = one["hash"].as_str().context("hash")?.to_owned();
    ensure!(
        one["sequence"] == 0 && hash0.len() == 64 && one["source"] == "chain",
        "{one}"
    );
    ensure!(
        header(&head, "etag") == Some(format!("\"{hash0}\"").as_str()),
        "{head}"
    );
    ensure!(
        one["constraints"]["max_regression"] == 0.02
            && one["constraints"]["rollback_threshold"].is_null(),
        "the whole set is replaced: {one}"
    );

    let second = json!({"min_quality": 0.7, "max_cost_per_request": 0.01});
    let tag = format!("\"{hash0}\"");
    let (status, _, two) = call(addr, "PUT", path, Some(&second), &[("If-Match", &tag)])?;
    ensure!(status == 200, "second PUT: {status} {two}");
    let chain = two["chain"].as_array().context("chain")?;
    ensure!(chain.len() == 2, "{two}");
    ensure!(
        chain[0]["prev_hash"] == "" && chain[0]["hash"] == hash0.as_str(),
        "{two}"
    );
    ensure!(
        chain[1]["prev_hash"] == hash0.as_str(),
        "the links hold: {two}"
    );
    ensure!(
        two["hash"] == chain[1]["hash"] && two["sequence"] == 1,
        "{two}"
    );
    ensure!(two["verified"] == true, "{two}");

    // A writer that read the first version is refused.
    let (status, head, err) = call(addr, "PUT", path, Some(&first), &[("If-Match", &tag)])?;
    ensure!(
        status == 412 && error_code(&err) == "precondition_failed",
        "stale If-Match: {status} {err}"
    );
    ensure!(
        header(&head, "etag")
            == Some(format!("\"{}\"", two["hash"].as_str().unwrap_or("")).as_str()),
        "{head}"
    );

    // Out of range and unknown keys are 400s naming the parameter.
    let (status, _, err) = call(
        addr,
        "PUT",
        path,
        Some(&json!({"rollback_threshold": 0})),
        &[],
    )?;
    ensure!(
        status == 400 && err["error"]["param"] == "rollback_threshold",
        "{status} {err}"
    );
    let (status, _, err) = call(addr, "PUT", path, Some(&json!({"max_regresion": 0.1})), &[])?;
    ensure!(status == 400, "{status} {err}");

    // The route's policy carries the chain's head.
    let (_, _, route) = call(addr, "GET", "/v1/routes/default", None, &[])?;
    ensure!(
        route["constraints_hash"] == two["hash"] && route["constraints"]["min_quality"] == 0.7,
        "{route}"
    );
    Ok(())
}

#[test]
fn a_route_names_only_models_that_can_serve() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    ready(&server)?;
    let addr = server.addr;

    let unknown = json!({"baseline": "nope/model", "candidates": [], "mode": "live"});
    let (status, _, err) = call(addr, "PUT", "/v1/routes/default", Some(&unknown), &[])?;
    ensure!(
        status == 400
            && error_code(&err) == "model_not_found"
            && err["error"]["param"] == "baseline",
        "{status} {err}"
    );
    let bad_candidate =
        json!({"baseline": "demo/large", "candidates": ["demo/nope"], "mode": "live"});
    let (status, _, err) = call(addr, "PUT", "/v1/routes/default", Some(&bad_candidate), &[])?;
    ensure!(
        status == 400 && err["error"]["param"] == "candidates",
        "{err}"
    );
    for body in [
        json!({"baseline": "demo/large", "candidates": ["demo/large"], "mode": "live"}),
        json!({"baseline": "demo/large", "mode": "sideways"}),
        json!({"baseline": "demo/large", "mode": "canary", "canary_percent": 101}),
        json!({"baseline": "demo/large", "mode": "shadow", "mirror_fraction": 2}),
    ] {
        let (status, _, err) = call(addr, "PUT", "/v1/routes/default", Some(&body), &[])?;
        ensure!(status == 400, "{body}: {status} {err}");
    }

    let support = json!({
        "baseline": "demo/large",
        "candidates": ["demo/small"],
        "mode": "canary",
        "canary_percent": 20,
        "mirror_daily_cap_usd": 2.5,
        "category": "code"
    });
    let (status, _, route) = call(addr, "PUT", "/v1/routes/support", Some(&support), &[])?;
    ensure!(status == 201, "a new route: {status} {route}");
    ensure!(
        route["source"] == "api"
            && route["version"] == 1
            && route["mode"] == "canary"
            && route["canary_percent"] == 20
            && route["category"] == "code"
            && route["mirror_daily_cap_usd"] == 2.5,
        "{route}"
    );
    let (status, _, route) = call(addr, "PUT", "/v1/routes/support", Some(&support), &[])?;
    ensure!(status == 200 && route["version"] == 2, "{status} {route}");
    let (_, _, list) = call(addr, "GET", "/v1/routes", None, &[])?;
    let names: Vec<&str> = list["data"]
        .as_array()
        .context("data")?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    ensure!(names == ["default", "support"], "{names:?}");
    Ok(())
}

#[test]
fn only_admin_keys_use_the_routes_api_and_each_org_sees_its_own() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let admin = last_line(&run(
        dir.path(),
        &["keys", "create", "--org", "acme", "--admin"],
    )?)?;
    let user = last_line(&run(dir.path(), &["keys", "create", "--org", "acme"])?)?;
    ensure!(admin.starts_with("sk-sy-") && user.starts_with("sk-sy-"));
    let server = Server::start(dir.path(), &["serve"])?;
    ready(&server)?;
    let addr = server.addr;
    let as_user = format!("Bearer {user}");
    let as_admin = format!("Bearer {admin}");

    for (method, path) in [
        ("GET", "/v1/routes"),
        ("GET", "/v1/routes/default"),
        ("POST", "/v1/routes/default/pin"),
        ("PUT", "/v1/routes/default/constraints"),
    ] {
        let body = (method != "GET").then(|| json!({}));
        let (status, _, err) = call(
            addr,
            method,
            path,
            body.as_ref(),
            &[("Authorization", &as_user)],
        )?;
        ensure!(
            status == 403 && error_code(&err) == "insufficient_permissions",
            "{method} {path}: {status} {err}"
        );
    }
    let (status, _, err) = call(
        addr,
        "GET",
        "/v1/routes",
        None,
        &[(
            "Authorization",
            "Bearer sk-sy-000000000000000000000000000000000000000000000000",
        )],
    )?;
    ensure!(status == 401, "{status} {err}");

    let (status, _, route) = call(
        addr,
        "POST",
        "/v1/routes/default/pin",
        Some(&json!({"model": "demo/medium"})),
        &[("Authorization", &as_admin)],
    )?;
    ensure!(status == 200 && route["org"] == "acme", "{status} {route}");
    // The anonymous caller is org `default`: acme's pin is not its business.
    let (_, _, route) = call(addr, "GET", "/v1/routes/default", None, &[])?;
    ensure!(
        route["org"] == "default" && route["pin"].is_null(),
        "{route}"
    );
    Ok(())
}

#[test]
fn route_changes_are_events_that_survive_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    ready(&server)?;
    let pin = json!({"model": "demo/medium", "note": "hold during migration"});
    let (status, _, _) = call(
        server.addr,
        "POST",
        "/v1/routes/default/pin",
        Some(&pin),
        &[],
    )?;
    ensure!(status == 200);
    let (status, _, changed) = call(
        server.addr,
        "PUT",
        "/v1/routes/default/constraints",
        Some(&json!({"min_samples": 50})),
        &[],
    )?;
    ensure!(status == 200);
    let (status, _) = server.terminate()?;
    ensure!(status.success(), "{status}");

    let server = Server::start(dir.path(), &["serve"])?;
    ready(&server)?;
    let (status, _, route) = call(server.addr, "GET", "/v1/routes/default", None, &[])?;
    ensure!(status == 200, "{route}");
    ensure!(
        route["pin"]["model"] == "demo/medium" && route["pin"]["note"] == "hold during migration",
        "the pin is replayed from the log: {route}"
    );
    ensure!(route["constraints_hash"] == changed["hash"], "{route}");
    let (_, _, constraints) = call(
        server.addr,
        "GET",
        "/v1/routes/default/constraints",
        None,
        &[],
    )?;
    ensure!(constraints["verified"] == true, "{constraints}");
    Ok(())
}
