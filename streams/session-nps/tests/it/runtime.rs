//! Propagation in the processor runtime over the real embedded log and store: the outputs on
//! the `feedback` topic, crashes between the runtime's steps (fault injection), restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use switchyard_events::{Codec, Event, EventId, FeedbackSubmitted, Target};
use switchyard_log::{EventLog, Topic};
use switchyard_processor::{CrashPoint, CrashStep, ProcessorOptions, RunError};
use switchyard_runtime::CancellationToken;
use switchyard_session_nps::{GROUP, INPUTS, SessionNpsConfig};
use switchyard_testkit::node::ProcessorNode;

use crate::support::{Effect, HOUR, T0, decision, latest_per_feedback_id, rating};

const PARTITIONS: u32 = 3;
const SESSIONS: [&str; 4] = ["s0", "s1", "s2", "s3"];

/// The shared harness, plus this processor's runs.
struct Node(ProcessorNode);

impl std::ops::Deref for Node {
    type Target = ProcessorNode;
    fn deref(&self) -> &ProcessorNode {
        &self.0
    }
}

impl Node {
    fn open(dir: &Path) -> Result<Self> {
        Ok(Self(ProcessorNode::open(dir, PARTITIONS, T0)?))
    }

    /// Closes the log and drops the store, as a process exit would, and opens both again.
    async fn restart(self) -> Result<Self> {
        Ok(Self(self.0.restart().await?))
    }

    async fn caught_up(&self) -> Result<bool> {
        self.0.caught_up(GROUP, INPUTS).await
    }

    /// Runs the processor until it has consumed everything (its own outputs included).
    async fn run_to_end(&self) -> Result<()> {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(switchyard_session_nps::run(
            self.deps()?,
            options(4),
            SessionNpsConfig::default(),
            shutdown.clone(),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !self.caught_up().await? {
            if tokio::time::Instant::now() > deadline {
                bail!("session-nps did not catch up");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.cancel();
        task.await??;
        Ok(())
    }

    /// The propagated events on `feedback`, with their encoded bytes, in log order.
    async fn outputs(&self) -> Result<Vec<(FeedbackSubmitted, Vec<u8>)>> {
        let codec = Codec::new()?;
        let mut out = Vec::new();
        for partition in 0..self.log.partitions(Topic::Feedback) {
            for record in self
                .log
                .read(Topic::Feedback, partition, 0, usize::MAX)
                .await?
            {
                let Event::FeedbackSubmitted(feedback) = codec.decode(&record.value)? else {
                    bail!("not feedback on the feedback topic");
                };
                if matches!(feedback.target, Target::Request { .. }) {
                    out.push((feedback, record.value));
                }
            }
        }
        Ok(out)
    }
}

fn options(batch_size: usize) -> ProcessorOptions {
    ProcessorOptions {
        batch_size,
        poll_wait: Duration::from_millis(20),
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
        ..ProcessorOptions::default()
    }
}

/// Per session: two decisions before the rating, one within the window after it, one past the
/// window; session s0 is rated again two hours later (covering its late decision too).
fn events() -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    for (i, session) in SESSIONS.iter().enumerate() {
        let rated_at = T0 + i as i64 * 1_000;
        for (k, offset) in [-3 * HOUR, -HOUR, 5 * HOUR, 25 * HOUR].iter().enumerate() {
            events.push(
                decision(
                    "acme",
                    &format!("{session}-d{k}"),
                    Some(session),
                    rated_at + offset,
                )
                .into(),
            );
        }
        events.push(decision("acme", &format!("{session}-nosession"), None, rated_at).into());
        events.push(rating("acme", session, "first", 3 + i as u8, rated_at).into());
    }
    events.push(rating("acme", "s0", "second", 10, T0 + 2 * HOUR).into());
    events
}

/// What a latest-wins consumer should keep per session: request → effect.
fn expected() -> BTreeMap<&'static str, BTreeMap<String, Effect>> {
    let mut out = BTreeMap::new();
    for (i, session) in SESSIONS.iter().enumerate() {
        let (score, rated_at, covered) = if i == 0 {
            (10.0, T0 + 2 * HOUR, 4)
        } else {
            (f64::from(3 + i as u8), T0 + i as i64 * 1_000, 3)
        };
        out.insert(
            *session,
            (0..covered)
                .map(|k| {
                    let request = format!("req-{session}-d{k}");
                    (
                        request.clone(),
                        Effect {
                            request,
                            score,
                            rated_at,
                        },
                    )
                })
                .collect(),
        );
    }
    out
}

/// (rating, decision) pairs emitted: s0's first rating covers 3, its second 4; 3 for the rest.
const PAIRS: usize = 3 + 4 + 3 * 3;

/// Checks the outputs: copies with one event id (re-emissions after a crash) are
/// byte-identical; each (rating, decision) pair is emitted under one event id, or, when a
/// crash retry interleaved the topics differently, under two with identical content; and
/// latest-wins per feedback id is as expected. Returns (outputs, distinct ids).
async fn check_outputs(node: &Node) -> Result<(usize, usize)> {
    let outputs = node.outputs().await?;
    let mut by_id: BTreeMap<EventId, Vec<Vec<u8>>> = BTreeMap::new();
    for (event, bytes) in &outputs {
        by_id
            .entry(event.envelope.event_id)
            .or_default()
            .push(bytes.clone());
    }
    let codec = Codec::new()?;
    for (id, copies) in &by_id {
        if !copies.windows(2).all(|w| w[0] == w[1]) {
            let all = copies
                .iter()
                .map(|c| codec.decode(c))
                .collect::<Result<Vec<_>, _>>()?;
            bail!("a re-emitted event {id} differs from its first copy: {all:#?}");
        }
    }
    let unique: Vec<FeedbackSubmitted> = {
        let mut seen = BTreeSet::new();
        outputs
            .iter()
            .filter(|(e, _)| seen.insert(e.envelope.event_id))
            .map(|(e, _)| e.clone())
            .collect()
    };
    let mut by_pair: BTreeMap<_, Vec<FeedbackSubmitted>> = BTreeMap::new();
    for event in &unique {
        by_pair
            .entry((event.derived_from, event.feedback_id.clone()))
            .or_default()
            .push(event.clone());
    }
    ensure!(
        by_pair.len() == PAIRS,
        "{} pairs, expected {PAIRS}",
        by_pair.len()
    );
    for copies in by_pair.values() {
        ensure!(copies.len() <= 2, "a pair emitted {} times", copies.len());
        let content = |e: &FeedbackSubmitted| {
            let mut e = e.clone();
            e.envelope.event_id = copies[0].envelope.event_id;
            e
        };
        ensure!(
            copies.iter().all(|e| content(e) == copies[0]),
            "two emissions of one pair differ beyond their event id"
        );
    }
    for (session, want) in expected() {
        let mine: Vec<FeedbackSubmitted> = unique
            .iter()
            .filter(|e| e.envelope.partition_key.as_str() == session)
            .cloned()
            .collect();
        let latest: BTreeMap<String, Effect> = latest_per_feedback_id("acme", session, &mine)?
            .into_values()
            .map(|e| (e.request.clone(), e))
            .collect();
        ensure!(latest == want, "{session}: {latest:?} != {want:?}");
    }
    Ok((outputs.len(), by_id.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_propagates_every_rating_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    node.publish(&events()).await?;
    node.run_to_end().await?;
    let (outputs, ids) = check_outputs(&node).await?;
    ensure!(
        outputs == PAIRS && ids == PAIRS,
        "{outputs} outputs, {ids} ids"
    );
    let metrics = node.metrics.encode();
    ensure!(
        metrics.contains(&format!(
            "processor_output_events_total{{group=\"{GROUP}\",topic=\"feedback\"}} {PAIRS}"
        )),
        "{metrics}"
    );
    Ok(())
}

async fn crash_then_recover(step: CrashStep, batch: u64) -> Result<Node> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    node.publish(&events()).await?;
    let crashing = ProcessorOptions {
        crash: Some(CrashPoint { step, batch }),
        ..options(4)
    };
    let outcome = switchyard_session_nps::run(
        node.deps()?,
        crashing,
        SessionNpsConfig::default(),
        CancellationToken::new(),
    )
    .await;
    ensure!(
        matches!(outcome, Err(RunError::InjectedCrash(_))),
        "{outcome:?}"
    );
    let node = node.restart().await?;
    node.run_to_end().await?;
    // Keep the directory alive as long as the node (the caller removes it).
    let _kept = dir.keep();
    Ok(node)
}

/// Outputs durable, state not applied: the batch runs again from the same state and re-emits
/// events with the same ids and bytes, which consumers drop by id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_append_re_emits_identical_outputs() -> Result<()> {
    let mut duplicated = false;
    // Which batch emits depends on the order topics are polled; crash in each early batch.
    for batch in 1..=4 {
        let node = crash_then_recover(CrashStep::AfterAppend, batch).await?;
        let (outputs, ids) = check_outputs(&node).await?;
        duplicated |= outputs > ids;
        let dir = node.dir.clone();
        node.log.close().await?;
        std::fs::remove_dir_all(dir)?;
    }
    ensure!(duplicated, "no crash hit a batch with outputs");
    Ok(())
}

/// State applied, offsets not committed: the log redelivers the batch and the runtime skips
/// it; nothing is emitted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_apply_emits_nothing_twice() -> Result<()> {
    for batch in 1..=4 {
        let node = crash_then_recover(CrashStep::AfterApply, batch).await?;
        let (outputs, ids) = check_outputs(&node).await?;
        ensure!(
            outputs == PAIRS && ids == PAIRS,
            "{outputs} outputs, {ids} ids"
        );
        let dir = node.dir.clone();
        node.log.close().await?;
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}
