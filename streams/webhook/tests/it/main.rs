//! The webhook export against a real HTTP receiver on 127.0.0.1 (allowed by config in these
//! tests) and the embedded log: signed batches that verify, retries, idempotent delivery ids,
//! the refusal of loopback targets by default, and dead letters after the retries.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, ensure};
use axum::http::{HeaderMap, StatusCode};
use switchyard_config::{WebhookTarget, WebhooksConfig};
use switchyard_events::{Codec, DecisionId, Event, EventId, OrgId, RouteDecided, Topic};
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};
use switchyard_log::{EventLog, Record, StoredRecord};
use switchyard_processor::dead_letter;
use switchyard_webhook::sign::{DELIVERY_HEADER, SIGNATURE_HEADER, verify};
use switchyard_webhook::{HEADER_DELIVERY, WebhookExport, delivery_id};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "a-test-secret-of-some-length";

/// What the receiver saw: (delivery id, verified, body) per request.
type Seen = Arc<Mutex<Vec<(String, bool, serde_json::Value)>>>;

/// A receiver that verifies the HMAC and answers `statuses` in turn (then 200).
async fn receiver(statuses: Vec<u16>) -> anyhow::Result<(SocketAddr, Seen)> {
    let seen: Seen = Arc::default();
    let queue = Arc::new(Mutex::new(statuses.into_iter()));
    let s = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let s = Arc::clone(&s);
            let queue = Arc::clone(&queue);
            async move {
                let header = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let now = unix_now();
                let ok = verify(
                    SECRET.as_bytes(),
                    &header(SIGNATURE_HEADER),
                    &body,
                    now,
                    300,
                )
                .is_ok();
                let json = serde_json::from_slice(&body).unwrap_or_default();
                if let Ok(mut seen) = s.lock() {
                    seen.push((header(DELIVERY_HEADER), ok, json));
                }
                let status = queue.lock().ok().and_then(|mut q| q.next()).unwrap_or(200);
                if !ok {
                    return StatusCode::UNAUTHORIZED;
                }
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, seen))
}

fn unix_now() -> i64 {
    use switchyard_runtime::Clock as _;
    switchyard_runtime::SystemClock
        .now_micros()
        .div_euclid(1_000_000)
}

fn snapshot(seen: &Seen) -> Vec<(String, bool, serde_json::Value)> {
    seen.lock().map(|s| s.clone()).unwrap_or_default()
}

fn config(addr: SocketAddr, allow_private: bool) -> WebhooksConfig {
    let mut orgs = BTreeMap::new();
    orgs.insert(
        "acme".to_owned(),
        WebhookTarget {
            url: format!("http://{addr}/hook"),
            secret: SECRET.to_owned(),
        },
    );
    let mut c = WebhooksConfig::with_orgs(orgs);
    c.allow_private_targets = allow_private;
    c.initial_backoff = Duration::from_millis(5);
    c.max_backoff = Duration::from_millis(20);
    c.max_attempts = 3;
    c
}

fn sample() -> anyhow::Result<RouteDecided> {
    let hex_text = include_str!("../../../../schemas/samples/route_decided/v3.bin.hex");
    let clean: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
    match Codec::new()?.decode(&hex::decode(clean)?)? {
        Event::RouteDecided(d) => Ok(d),
        other => anyhow::bail!("not a decision: {other:?}"),
    }
}

/// Appends decisions of `orgs` to the log; returns what the export will read.
async fn decisions(log: &EmbeddedLog, orgs: &[&str]) -> anyhow::Result<Vec<StoredRecord>> {
    let codec = Codec::new()?;
    let base = sample()?;
    let mut records = Vec::new();
    for (i, org) in orgs.iter().enumerate() {
        let mut d = base.clone();
        d.envelope.org = OrgId::new(*org);
        d.envelope.event_id = EventId::now_v7();
        d.decision_id = DecisionId::new(format!("dec-{i}"));
        records.push(Record::new(
            format!("k{i}"),
            codec.encode(&Event::RouteDecided(d))?,
        ));
    }
    log.append(Topic::Decisions, records).await?;
    let mut out = Vec::new();
    for p in 0..log.partitions(Topic::Decisions) {
        let w = log.watermarks(Topic::Decisions, p).await?;
        out.extend(log.read(Topic::Decisions, p, w.start, 1000).await?);
    }
    Ok(out)
}

fn export(log: &EmbeddedLog, config: WebhooksConfig) -> anyhow::Result<WebhookExport<EmbeddedLog>> {
    let now = Arc::new(unix_now);
    Ok(WebhookExport::new(
        log.clone(),
        Arc::new(Codec::new()?),
        config,
        now,
    )?)
}

async fn dead_letters(log: &EmbeddedLog) -> anyhow::Result<Vec<StoredRecord>> {
    let mut out = Vec::new();
    for p in 0..log.partitions(Topic::DeadLetter) {
        let w = log.watermarks(Topic::DeadLetter, p).await?;
        out.extend(log.read(Topic::DeadLetter, p, w.start, 1000).await?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_batches_reach_the_receiver_after_a_retry_with_stable_delivery_ids()
-> anyhow::Result<()> {
    let (addr, seen) = receiver(vec![503]).await?;
    let log = EmbeddedLog::temporary(EmbeddedOptions::default())?;
    let records = decisions(&log, &["acme", "globex", "acme", "acme", "globex"]).await?;
    let export = export(&log, config(addr, true))?;

    // The whole loop: subscribe, deliver, commit.
    let stop = CancellationToken::new();
    let running = {
        let stop = stop.clone();
        let export = Arc::new(export);
        let e = Arc::clone(&export);
        (tokio::spawn(async move { e.run(stop).await }), export)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let delivered: usize = snapshot(&seen)
            .iter()
            .filter(|(_, ok, _)| *ok)
            .map(|(_, _, b)| b["count"].as_u64().unwrap_or(0) as usize)
            .sum();
        if delivered >= 6 {
            // 3 acme decisions, sent twice: a 503, then accepted.
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "not delivered: {:?}",
            snapshot(&seen)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    running.0.await??;
    let seen = snapshot(&seen);
    ensure!(seen.len() == 2, "one 503, then the retry: {seen:?}");
    ensure!(
        seen.iter().all(|(_, ok, _)| *ok),
        "every request's HMAC verifies"
    );
    let (id0, _, body) = &seen[0];
    ensure!(id0 == &seen[1].0, "the retry carries the same delivery id");
    ensure!(body["org"] == "acme" && body["count"] == 3, "{body}");
    let orgs: Vec<&str> = body["decisions"]
        .as_array()
        .context("decisions")?
        .iter()
        .filter_map(|d| d["envelope"]["org"].as_str())
        .collect();
    ensure!(
        orgs == ["acme"; 3],
        "only acme's decisions go to acme's endpoint: {orgs:?}"
    );
    let ids: Vec<String> = body["decisions"]
        .as_array()
        .context("decisions")?
        .iter()
        .filter_map(|d| d["envelope"]["event_id"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        id0 == &delivery_id("acme", &ids),
        "the delivery id derives from the event ids"
    );

    // Redelivery of the same records (a crash before the commit): the same delivery id.
    let (addr2, seen2) = receiver(vec![]).await?;
    let again = export_for(&log, addr2)?;
    let done = again.handle(&records, &CancellationToken::new()).await?;
    ensure!(done.batches == 1 && done.decisions == 3, "{done:?}");
    let seen2 = snapshot(&seen2);
    ensure!(
        seen2.len() == 1 && &seen2[0].0 == id0,
        "same id on redelivery: {seen2:?}"
    );
    Ok(())
}

fn export_for(log: &EmbeddedLog, addr: SocketAddr) -> anyhow::Result<WebhookExport<EmbeddedLog>> {
    export(log, config(addr, true))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_target_is_refused_by_default() -> anyhow::Result<()> {
    let (addr, seen) = receiver(vec![]).await?;
    let log = EmbeddedLog::temporary(EmbeddedOptions::default())?;
    let records = decisions(&log, &["acme", "acme"]).await?;
    let export = export(&log, config(addr, false))?;
    let done = export.handle(&records, &CancellationToken::new()).await?;
    ensure!(done.batches == 0 && done.dead_lettered == 2, "{done:?}");
    ensure!(
        snapshot(&seen).is_empty(),
        "nothing reached the loopback receiver"
    );
    let letters = dead_letters(&log).await?;
    ensure!(letters.len() == 2, "{letters:?}");
    let reason = dead_letter::header_text(&letters[0].headers, dead_letter::HEADER_REASON)
        .context("reason")?;
    ensure!(reason.contains("not a public address"), "{reason}");
    // A name that resolves to loopback is refused the same way.
    let mut by_name = config(addr, false);
    if let Some(t) = by_name.orgs.get_mut("acme") {
        t.url = format!("http://localhost:{}/hook", addr.port());
    }
    let done = export_with(&log, by_name)?
        .handle(&records, &CancellationToken::new())
        .await?;
    ensure!(
        done.dead_lettered == 2 && snapshot(&seen).is_empty(),
        "{done:?}"
    );
    Ok(())
}

fn export_with(log: &EmbeddedLog, c: WebhooksConfig) -> anyhow::Result<WebhookExport<EmbeddedLog>> {
    export(log, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_ends_in_the_dead_letter_topic() -> anyhow::Result<()> {
    let (addr, seen) = receiver(vec![500, 502, 429, 200]).await?;
    let log = EmbeddedLog::temporary(EmbeddedOptions::default())?;
    let records = decisions(&log, &["acme", "acme", "acme"]).await?;
    let export = export(&log, config(addr, true))?;
    let done = export.handle(&records, &CancellationToken::new()).await?;
    ensure!(done.batches == 0 && done.dead_lettered == 3, "{done:?}");
    ensure!(snapshot(&seen).len() == 3, "max_attempts = 3 tries");
    let letters = dead_letters(&log).await?;
    ensure!(letters.len() == 3, "one dead letter per decision");
    let reason = dead_letter::header_text(&letters[0].headers, dead_letter::HEADER_REASON)
        .context("reason")?;
    ensure!(reason.contains("3 attempts failed"), "{reason}");
    let delivery =
        dead_letter::header_text(&letters[0].headers, HEADER_DELIVERY).context("delivery id")?;
    ensure!(
        delivery == snapshot(&seen)[0].0,
        "the dead letter names the delivery"
    );
    ensure!(
        letters.iter().map(|l| &l.value).collect::<Vec<_>>()
            == records.iter().map(|r| &r.value).collect::<Vec<_>>(),
        "the decisions themselves are dead-lettered, byte for byte"
    );

    // A 4xx other than 408/429 is not retried.
    let (addr, seen) = receiver(vec![400]).await?;
    let done = export_with(&log, config(addr, true))?
        .handle(&records, &CancellationToken::new())
        .await?;
    ensure!(
        done.dead_lettered == 3 && snapshot(&seen).len() == 1,
        "{done:?}"
    );
    Ok(())
}
