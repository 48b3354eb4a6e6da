//! The projector in the processor runtime over the real embedded log and store: crashes at
//! each step of a batch, restarts, redelivery, and determinism of what it publishes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use switchyard_events::{
    Codec, Constraints, Event, EventId, FeedbackSource, ResponseStatus, RoutingTableUpdated,
};
use switchyard_log::{EventLog, StoredRecord, Topic};
use switchyard_processor::{CrashPoint, CrashStep, ProcessorOptions, RunError};
use switchyard_projector::state::{EXPIRY_CURSORS, ORGS, ROLLBACK, TABLES};
use switchyard_projector::{GROUP, INPUTS, ProjectorConfig};
use switchyard_runtime::CancellationToken;
use switchyard_store::StateStore;
use switchyard_testkit::node::ProcessorNode;

use crate::support::{
    BASE, CHEAP, HOUR, Harness, MID, Req, SECOND, T0, canonical, model, test_config, unpinned,
};

const PARTITIONS: u32 = 3;

/// The shared harness, the projector's batch size, and its runs.
struct Node {
    node: ProcessorNode,
    /// Records per batch.
    batch: usize,
}

impl std::ops::Deref for Node {
    type Target = ProcessorNode;
    fn deref(&self) -> &ProcessorNode {
        &self.node
    }
}

impl Node {
    fn open(dir: &Path) -> Result<Self> {
        Ok(Node {
            node: ProcessorNode::open(dir, PARTITIONS, T0 + 24 * HOUR)?,
            batch: 7,
        })
    }

    /// Closes the log and drops the store, as a process exit would, and opens both again.
    async fn restart(self) -> Result<Self> {
        Ok(Node {
            node: self.node.restart().await?,
            batch: self.batch,
        })
    }

    async fn caught_up(&self) -> Result<bool> {
        self.node.caught_up(GROUP, INPUTS).await
    }

    /// Runs the projector until it has folded everything in its input topics (its own pins
    /// included), then stops it.
    async fn run_until_caught_up(&self, config: &ProjectorConfig) -> Result<()> {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(switchyard_projector::run(
            self.deps()?,
            options(None, self.batch),
            config.clone(),
            shutdown.clone(),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            // Twice in a row: a pin the projector just appended is an input too.
            if self.caught_up().await? {
                tokio::time::sleep(Duration::from_millis(60)).await;
                if self.caught_up().await? {
                    break;
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the projector did not catch up");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.cancel();
        task.await??;
        Ok(())
    }

    /// Runs the projector with a crash injected; returns once it crashed.
    async fn run_crashing(&self, config: &ProjectorConfig, crash: CrashPoint) -> Result<()> {
        let outcome = switchyard_projector::run(
            self.deps()?,
            options(Some(crash), self.batch),
            config.clone(),
            CancellationToken::new(),
        )
        .await;
        ensure!(
            matches!(outcome, Err(RunError::InjectedCrash(_))),
            "expected the injected crash, got {outcome:?}"
        );
        Ok(())
    }

    /// Every record of a topic, by partition then offset.
    async fn records(&self, topic: Topic) -> Result<Vec<StoredRecord>> {
        let mut out = Vec::new();
        for partition in 0..self.log.partitions(topic) {
            out.extend(self.log.read(topic, partition, 0, usize::MAX).await?);
        }
        Ok(out)
    }

    /// The decoded events of a topic.
    async fn events(&self, topic: Topic) -> Result<Vec<Event>> {
        let codec = Codec::new()?;
        self.records(topic)
            .await?
            .iter()
            .map(|r| Ok(codec.decode(&r.value)?))
            .collect()
    }

    /// The newest snapshot of an org on the routing-table topic.
    async fn last_snapshot(&self, org: &str) -> Result<RoutingTableUpdated> {
        self.events(Topic::RoutingTable)
            .await?
            .into_iter()
            .rev()
            .find_map(|e| match e {
                Event::RoutingTableUpdated(s) if s.envelope.org.as_str() == org => Some(s),
                _ => None,
            })
            .with_context(|| format!("no snapshot of {org}"))
    }
}

fn options(crash: Option<CrashPoint>, batch_size: usize) -> ProcessorOptions {
    ProcessorOptions {
        batch_size,
        poll_wait: Duration::from_millis(20),
        retry_initial: Duration::from_millis(5),
        crash,
        ..ProcessorOptions::default()
    }
}

/// Traffic of two orgs over four hours: decisions, responses, judge scores and user ratings
/// (some replaced), on the configured route and one known only from its decisions.
fn traffic() -> Vec<Event> {
    let mut events = Vec::new();
    for i in 0..30i64 {
        let org = if i % 3 == 0 { "beta" } else { "acme" };
        let route = if i % 5 == 0 { "r2" } else { "r1" };
        let mut req = Req::new(org, route, &format!("req-{i}"));
        if i % 4 == 0 {
            req = req.in_session(&format!("sess-{}", i % 8));
        }
        let served = [BASE, CHEAP, MID][(i % 3) as usize];
        let at = T0 + (i * 8) * 60 * SECOND;
        events.push(req.decision(served, BASE, at));
        let status = if i % 7 == 0 {
            ResponseStatus::Error
        } else {
            ResponseStatus::Ok
        };
        events.push(req.response(
            served,
            status,
            Some(0.001 * (i + 1) as f64),
            100 + 37 * i,
            at + SECOND,
        ));
        events.push(req.judged(
            &format!("j-{i}"),
            served,
            Some(0.6 + 0.01 * (i % 30) as f64),
            at + 30 * SECOND,
        ));
        events.push(req.feedback(
            &format!("fb-{i}"),
            1,
            FeedbackSource::User,
            0.5,
            at + 60 * SECOND,
        ));
        if i % 2 == 0 {
            events.push(req.feedback(
                &format!("fb-{i}"),
                2,
                FeedbackSource::User,
                1.0,
                at + 90 * SECOND,
            ));
        }
    }
    events
}

fn no_rollback() -> ProjectorConfig {
    ProjectorConfig {
        default_constraints: Constraints::default(),
        ..test_config(Constraints::default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_and_restarts_publish_the_same_table_as_one_straight_fold() -> Result<()> {
    let config = no_rollback();
    let events = traffic();
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    node.publish(&events).await?;

    // Outputs durable, state not: the batch is processed again and re-emits the same events.
    // (The embedded log polls partitions in order, seven records at a time: batches 1 to 3
    // are responses waiting for their decisions, batch 4 the first decisions, which publish.)
    node.run_crashing(
        &config,
        CrashPoint {
            step: CrashStep::AfterAppend,
            batch: 4,
        },
    )
    .await?;
    let appended = node.records(Topic::RoutingTable).await?.len();
    ensure!(appended > 0, "the crashed batch's snapshots are durable");
    let node = node.restart().await?;
    // State durable, the log's offsets not committed: the batch is redelivered and skipped.
    node.run_crashing(
        &config,
        CrashPoint {
            step: CrashStep::AfterApply,
            batch: 6,
        },
    )
    .await?;
    let node = node.restart().await?;
    node.run_until_caught_up(&config).await?;
    // A forced snapshot of each org once everything is folded.
    let finals = [
        unpinned("acme", "r1", "final-acme", T0 + 5 * HOUR),
        unpinned("beta", "r1", "final-beta", T0 + 5 * HOUR),
    ];
    // One at a time: each org's final table then folds the same inputs in both runs.
    for event in &finals {
        node.publish(std::slice::from_ref(event)).await?;
        node.run_until_caught_up(&config).await?;
    }

    // The same inputs folded straight, one topic after the other (responses, feedback and judge
    // scores before their decisions), in other batches.
    let reference_dir = tempfile::tempdir()?;
    let mut reference = Harness::open(reference_dir.path(), config.clone(), PARTITIONS)?;
    for topic in [
        Topic::JudgeScores,
        Topic::Feedback,
        Topic::Responses,
        Topic::Decisions,
    ] {
        let of_topic: Vec<Event> = events
            .iter()
            .filter(|e| e.topic() == topic)
            .cloned()
            .collect();
        reference.fold(&of_topic, &[11, 3]).await?;
    }
    reference.fold(&finals, &[1]).await?;

    for org in ["acme", "beta"] {
        let published = node.last_snapshot(org).await?;
        let expected = reference.last_snapshot(org).context("reference snapshot")?;
        ensure!(
            canonical(&Event::RoutingTableUpdated(published.clone()))?
                == canonical(&Event::RoutingTableUpdated(expected.clone()))?,
            "{org}: the runtime's final table differs from the straight fold's:\n{published:#?}\nvs\n{expected:#?}"
        );
        ensure!(
            published
                .routes
                .iter()
                .flat_map(|r| &r.models)
                .any(|m| m.samples > 0 && !m.sources.is_empty()),
            "{org}'s table shows its traffic"
        );
    }
    // The state, apart from when each org last published and where each partition's expiry
    // sweep stands (bounds that depend on when sweeps ran, so on the order of the inputs), is
    // the straight fold's.
    let mut ours = BTreeMap::new();
    let mut theirs = BTreeMap::new();
    for table in TABLES
        .into_iter()
        .filter(|t| *t != ORGS && *t != ROLLBACK && *t != EXPIRY_CURSORS)
    {
        ours.insert(
            table.name(),
            node.store.scan_prefix(table, b"", None, usize::MAX).await?,
        );
        theirs.insert(
            table.name(),
            reference
                .store
                .scan_prefix(table, b"", None, usize::MAX)
                .await?,
        );
    }
    ensure!(
        ours == theirs,
        "the runtime's state differs from the straight fold's"
    );

    // The crashed batch is processed again after other inputs than the first time (the
    // restart polls from the checkpoints, in other batches): its snapshots may differ, and
    // then never under the same id. Same id, same table.
    let mut by_id: HashMap<EventId, String> = HashMap::new();
    for event in &node.events(Topic::RoutingTable).await? {
        let text = canonical(event)?;
        if let Some(first) = by_id.insert(event.event_id(), text.clone()) {
            ensure!(
                first == text,
                "two different snapshots with id {}",
                event.event_id()
            );
        }
    }
    // Versions never go back within an org.
    let mut last: HashMap<String, i64> = HashMap::new();
    for event in node.events(Topic::RoutingTable).await? {
        if let Event::RoutingTableUpdated(s) = event {
            let previous = last.insert(s.envelope.org.as_str().to_owned(), s.version);
            ensure!(previous.is_none_or(|v| v <= s.version), "version went back");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_deterministic_for_the_same_inputs() -> Result<()> {
    let config = test_config(Constraints {
        max_regression: Some(0.05),
        rollback_threshold: Some(3),
        ..Constraints::default()
    });
    let events = traffic();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir()?;
        let node = Node::open(dir.path())?;
        node.publish(&events).await?;
        node.run_until_caught_up(&config).await?;
        let tables = node
            .events(Topic::RoutingTable)
            .await?
            .iter()
            .map(canonical)
            .collect::<Result<Vec<String>>>()?;
        let pins = node
            .events(Topic::Pins)
            .await?
            .iter()
            .map(canonical)
            .collect::<Result<Vec<String>>>()?;
        runs.push((tables, pins));
    }
    ensure!(!runs[0].0.is_empty(), "nothing published");
    ensure!(
        runs[0] == runs[1],
        "two runs over the same inputs published different tables"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_re_emitted_after_a_crash_pins_once() -> Result<()> {
    let config = test_config(Constraints {
        max_regression: Some(0.05),
        rollback_threshold: Some(3),
        ..Constraints::default()
    });
    let mut events = Vec::new();
    for i in 0..8i64 {
        let (label, model, score) = if i < 5 {
            (format!("base-{i}"), BASE, 0.9)
        } else {
            (format!("cheap-{i}"), CHEAP, 0.4)
        };
        let req = Req::new("acme", "r1", &label);
        let at = T0 + HOUR + i * 60 * SECOND;
        events.push(req.decision(model, BASE, at));
        events.push(req.judged(&format!("j-{i}"), model, Some(score), at + SECOND));
    }
    let dir = tempfile::tempdir()?;
    let mut node = Node::open(dir.path())?;
    // Every record in the first batch, so the rollback fires in it; crash right after
    // appending it.
    node.batch = 100;
    node.publish(&events).await?;
    node.run_crashing(
        &config,
        CrashPoint {
            step: CrashStep::AfterAppend,
            batch: 1,
        },
    )
    .await?;
    let pins = node.events(Topic::Pins).await?;
    ensure!(
        pins.len() == 1,
        "the rollback was appended before the crash: {pins:?}"
    );
    let node = node.restart().await?;
    node.run_until_caught_up(&config).await?;

    let pins = node.records(Topic::Pins).await?;
    ensure!(pins.len() == 2, "re-emitted once: {} records", pins.len());
    ensure!(pins[0].value == pins[1].value, "the copy is byte-identical");
    let snapshot = node.last_snapshot("acme").await?;
    ensure!(
        snapshot
            .routes
            .iter()
            .find(|r| r.route.as_str() == "r1")
            .and_then(|r| r.pinned_model.clone())
            .map(|m| m.into_string())
            == Some(BASE.to_owned()),
        "the route shows its pin"
    );
    // More regressions after the pin was read back (twice): still one rollback.
    let more: Vec<Event> = (8..11i64)
        .flat_map(|i| {
            let req = Req::new("acme", "r1", &format!("cheap-{i}"));
            let at = T0 + HOUR + i * 60 * SECOND;
            [
                req.decision(CHEAP, BASE, at),
                req.judged(&format!("j-{i}"), CHEAP, Some(0.3), at + SECOND),
            ]
        })
        .collect();
    node.publish(&more).await?;
    node.run_until_caught_up(&config).await?;
    ensure!(node.records(Topic::Pins).await?.len() == 2);
    let last = node.last_snapshot("acme").await?;
    ensure!(model(&last, "r1", CHEAP).is_some_and(|m| m.regressions.values().sum::<i64>() == 6));
    let _ = MID;
    Ok(())
}
