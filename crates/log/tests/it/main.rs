//! The event-log contract suite against the embedded backend, plus embedded-only behaviour
//! (retention, compaction, locking); with the `kafka` feature, the same suite against Kafka.

#![expect(
    clippy::expect_used,
    reason = "a harness that cannot create its temp dir cannot run"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::ensure;
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions, open_database};
use switchyard_log::{EventLog, LogError, Record, Topic};
use switchyard_testkit::LogHarness;

struct EmbeddedHarness {
    dir: tempfile::TempDir,
}

impl EmbeddedHarness {
    fn new() -> Self {
        EmbeddedHarness {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
}

impl LogHarness for EmbeddedHarness {
    type Log = EmbeddedLog;
    async fn open(&self) -> anyhow::Result<EmbeddedLog> {
        let options = EmbeddedOptions {
            partitions: 4,
            ..EmbeddedOptions::default()
        };
        Ok(EmbeddedLog::open_dir(self.dir.path(), options)?)
    }
}

mod contract {
    use super::EmbeddedHarness;
    switchyard_testkit::log_contract_tests!(EmbeddedHarness::new());
}

/// The same contract against a Kafka broker (`make test` starts Tansu and enables the feature).
#[cfg(feature = "kafka")]
mod kafka;

mod memory {
    use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};
    use switchyard_testkit::LogHarness;

    /// `memory://`: one temporary log per test; reopen is not part of its contract, so only
    /// the tests that do not reopen run here.
    struct MemoryHarness;
    impl LogHarness for MemoryHarness {
        type Log = EmbeddedLog;
        async fn open(&self) -> anyhow::Result<EmbeddedLog> {
            Ok(EmbeddedLog::temporary(EmbeddedOptions::default())?)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_backend_passes_the_append_contract() -> anyhow::Result<()> {
        switchyard_testkit::log_contract::append_and_read_back_in_order(&MemoryHarness).await?;
        switchyard_testkit::log_contract::members_split_partitions_and_rebalance(&MemoryHarness)
            .await?;
        switchyard_testkit::log_contract::concurrent_producers_keep_per_key_order(&MemoryHarness)
            .await
    }
}

fn clocked(
    dir: &std::path::Path,
    now: Arc<AtomicI64>,
    retention: Duration,
) -> anyhow::Result<EmbeddedLog> {
    clocked_with_lag(dir, now, retention, Duration::ZERO)
}

fn clocked_with_lag(
    dir: &std::path::Path,
    now: Arc<AtomicI64>,
    retention: Duration,
    compaction_min_lag: Duration,
) -> anyhow::Result<EmbeddedLog> {
    let db = open_database(dir)?;
    let options = EmbeddedOptions {
        partitions: 2,
        retention,
        compaction_min_lag,
        ..EmbeddedOptions::default()
    };
    Ok(EmbeddedLog::open_with_clock(
        db,
        options,
        Arc::new(move || now.load(Ordering::SeqCst)),
        None,
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_records_and_moves_the_start() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let now = Arc::new(AtomicI64::new(1_000_000));
    let log = clocked(dir.path(), Arc::clone(&now), Duration::from_secs(60))?;
    let old: Vec<Record> = (0..10)
        .map(|i| Record::new("k", format!("old{i}")).at(1_000_000 + i))
        .collect();
    let pos = log.append(Topic::Requests, old).await?;
    let p = pos[0].partition;
    now.store(1_000_000 + 30_000, Ordering::SeqCst);
    let new: Vec<Record> = (0..5)
        .map(|i| Record::new("k", format!("new{i}")).at(1_030_000 + i))
        .collect();
    log.append(Topic::Requests, new).await?;
    ensure!(
        log.enforce_retention().await? == 0,
        "nothing is older than 60 s yet"
    );
    now.store(1_000_000 + 61_000, Ordering::SeqCst);
    let removed = log.enforce_retention().await?;
    ensure!(
        removed == 10,
        "removed {removed}, expected the 10 old records"
    );
    let w = log.watermarks(Topic::Requests, p).await?;
    ensure!(
        w.start == pos[9].offset + 1 && w.end == w.start + 5,
        "watermarks {w:?}"
    );
    match log.read(Topic::Requests, p, pos[0].offset, 10).await {
        Err(LogError::OffsetOutOfRange { start, .. }) => ensure!(start == w.start),
        other => anyhow::bail!("reading below the start: {other:?}"),
    }
    log.close().await?;
    drop(log);
    let log = clocked(dir.path(), now, Duration::from_secs(60))?;
    let w2 = log.watermarks(Topic::Requests, p).await?;
    ensure!(w2 == w, "start survives reopen: {w2:?} vs {w:?}");
    log.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_the_latest_record_per_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let log = clocked(
        dir.path(),
        Arc::new(AtomicI64::new(0)),
        Duration::from_secs(60),
    )?;
    for v in 0..5 {
        log.append(
            Topic::RoutingTable,
            vec![
                Record::new("org-a", format!("a{v}")),
                Record::new("org-b", format!("b{v}")),
            ],
        )
        .await?;
    }
    let removed = log.enforce_retention().await?;
    ensure!(
        removed == 8,
        "removed {removed}, expected 8 superseded snapshots"
    );
    let mut latest = Vec::new();
    for p in 0..log.partitions(Topic::RoutingTable) {
        let w = log.watermarks(Topic::RoutingTable, p).await?;
        for r in log.read(Topic::RoutingTable, p, w.start, 100).await? {
            latest.push(String::from_utf8(r.value)?);
        }
    }
    latest.sort();
    ensure!(latest == ["a4", "b4"], "left {latest:?}");
    log.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_what_was_in_force_within_the_minimum_lag() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let now = Arc::new(AtomicI64::new(3_500_000));
    let log = clocked_with_lag(
        dir.path(),
        Arc::clone(&now),
        Duration::from_secs(60),
        Duration::from_secs(1500),
    )?;
    for (v, at) in [(0, 1_000_000), (1, 2_000_000), (2, 3_000_000)] {
        log.append(
            Topic::RoutingTable,
            vec![Record::new("org-a", format!("a{v}")).at(at)],
        )
        .await?;
    }
    let left = |log: EmbeddedLog| async move {
        let mut values = Vec::new();
        for p in 0..log.partitions(Topic::RoutingTable) {
            let w = log.watermarks(Topic::RoutingTable, p).await?;
            for r in log.read(Topic::RoutingTable, p, w.start, 100).await? {
                values.push(String::from_utf8(r.value)?);
            }
        }
        anyhow::Ok(values)
    };
    // a0 was superseded 1500 s ago (at 2000 s): it goes. a1 was in force until 3000 s, within
    // the lag: it stays, so an audit can still read the version a decision at 2500 s used.
    ensure!(log.enforce_retention().await? == 1, "only a0 is compacted");
    ensure!(left(log.clone()).await? == ["a1", "a2"]);
    now.store(4_600_000, Ordering::SeqCst);
    ensure!(
        log.enforce_retention().await? == 1,
        "a1 is compacted once a2 is 1500 s old"
    );
    ensure!(
        left(log.clone()).await? == ["a2"],
        "the newest record always stays"
    );
    log.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_constraints_audit_chain_is_neither_compacted_nor_expired() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let now = Arc::new(AtomicI64::new(1_000_000));
    let log = clocked(dir.path(), Arc::clone(&now), Duration::from_secs(60))?;
    let changes: Vec<Record> = (0..5)
        .map(|i| Record::new("acme/default", format!("change{i}")).at(1_000_000 + i))
        .collect();
    let pos = log.append(Topic::Constraints, changes).await?;
    now.store(1_000_000 + 3_600_000, Ordering::SeqCst);
    ensure!(
        log.enforce_retention().await? == 0,
        "same key and past the retention, yet every link stays"
    );
    let p = pos[0].partition;
    let w = log.watermarks(Topic::Constraints, p).await?;
    let kept = log.read(Topic::Constraints, p, w.start, 100).await?;
    ensure!(kept.len() == 5 && w.start == pos[0].offset, "{w:?}");
    log.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_second_process_cannot_open_a_locked_data_dir() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open_dir(dir.path(), EmbeddedOptions::default())?;
    match open_database(dir.path()) {
        Err(LogError::Locked { .. }) => {}
        Err(other) => anyhow::bail!("expected Locked, got {other}"),
        Ok(_) => anyhow::bail!("a second open of a locked data dir succeeded"),
    }
    log.close().await?;
    Ok(())
}

#[tokio::test]
async fn appends_after_close_fail_cleanly() -> anyhow::Result<()> {
    let log = EmbeddedLog::temporary(EmbeddedOptions::default())?;
    log.close().await?;
    match log
        .append(Topic::Requests, vec![Record::new("k", "v")])
        .await
    {
        Err(LogError::Closed) => Ok(()),
        other => anyhow::bail!("expected Closed, got {other:?}"),
    }
}
