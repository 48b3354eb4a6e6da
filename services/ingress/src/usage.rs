//! Per-key rate limits across ingress replicas: the `usage` topic.
//!
//! Each replica publishes what it admitted per limited key ([`RateLimiter::drain_reports`]) every
//! `gateway.usage_report_interval_ms`, as `KeyUsageReported` keyed `replica/key` on the compacted
//! `usage` topic, and folds every other replica's reports into its own limiter. The topic is read
//! from its start, so a replica that restarts under the same node id also gets back the counts it
//! had published. Reports go through the gateway's publisher: while the log is down they wait in
//! the durable spill like every other event (a late report of a past minute weighs nothing).
//!
//! [`RateLimiter::drain_reports`]: crate::limits::RateLimiter::drain_reports

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use switchyard_events::{Codec, Event, EventId, Topic};
use switchyard_log::{EventLog, GroupId, StartFrom, Subscription};
use tokio_util::sync::CancellationToken;

use crate::gateway::Gateway;

/// Publishes this replica's usage reports every `every` and folds the other replicas' reports,
/// until `shutdown`. Every replica reads every partition (a group of its own that never commits).
pub async fn share_usage<L: EventLog>(
    log: L,
    codec: Arc<Codec>,
    gateway: Arc<Gateway>,
    every: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let group = GroupId::new(format!("usage-follower-{}", EventId::now_v7()))?;
    let mut sub = log
        .subscribe(&group, &[Topic::Usage], StartFrom::Earliest)
        .await
        .context("subscribe to the usage topic")?;
    // Polls return within `every`; reports go out between polls (a poll is not dropped halfway).
    let mut last_report = tokio::time::Instant::now();
    loop {
        let batch = tokio::select! {
            () = shutdown.cancelled() => {
                publish_reports(&gateway);
                return Ok(());
            }
            batch = sub.poll(1000, every) => batch.context("poll the usage topic")?,
        };
        for r in batch {
            let Some(decoded) = crate::decode::decode_patiently(&codec, &r.value, &shutdown).await
            else {
                publish_reports(&gateway);
                return Ok(());
            };
            match decoded {
                Ok(Event::KeyUsageReported(report)) => gateway.limits.observe(&report),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(offset = r.offset, partition = r.partition, error = %e, "skipping undecodable usage report");
                }
            }
        }
        if last_report.elapsed() >= every {
            last_report = tokio::time::Instant::now();
            publish_reports(&gateway);
        }
    }
}

/// Publishes the counts of the keys that changed since the last report.
fn publish_reports(gateway: &Gateway) {
    let now = gateway.clock.now_micros();
    let replica = gateway.limits.replica();
    for report in gateway.limits.drain_reports(now) {
        let event = report.into_event(replica, EventId::now_v7(), now);
        gateway.publisher.publish(event.into());
    }
}
