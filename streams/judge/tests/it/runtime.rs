//! The judge in the processor runtime over the real embedded log and store: provider outages
//! retried by the runtime, crashes between its steps, restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use switchyard_events::{Codec, Event, EventId, JudgeOutcome, JudgeScored};
use switchyard_judge::{GROUP, INPUTS};
use switchyard_log::{EventLog, Topic};
use switchyard_processor::{CrashPoint, CrashStep, ProcessorOptions, RunError};
use switchyard_runtime::CancellationToken;
use switchyard_testkit::node::ProcessorNode;

use crate::support::{Answer, StandIn, T0, config, mirror, ok, request};

const PARTITIONS: u32 = 3;
const PAIRS: usize = 10;

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

    async fn run_to_end(&self, standin: &StandIn) -> Result<()> {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(switchyard_judge::run(
            self.deps()?,
            options(),
            config(1.0),
            standin.judge(Some(10.0), false)?,
            shutdown.clone(),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self.caught_up().await? {
            if tokio::time::Instant::now() > deadline {
                bail!("the judge did not catch up");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.cancel();
        task.await??;
        Ok(())
    }

    /// The judgements on `judge-scores`, with their encoded bytes.
    async fn outputs(&self) -> Result<Vec<(JudgeScored, Vec<u8>)>> {
        let codec = Codec::new()?;
        let mut out = Vec::new();
        for partition in 0..self.log.partitions(Topic::JudgeScores) {
            for record in self
                .log
                .read(Topic::JudgeScores, partition, 0, usize::MAX)
                .await?
            {
                let Event::JudgeScored(judged) = codec.decode(&record.value)? else {
                    bail!("not a judgement on judge-scores");
                };
                out.push((judged, record.value));
            }
        }
        Ok(out)
    }
}

fn options() -> ProcessorOptions {
    ProcessorOptions {
        batch_size: 4,
        poll_wait: Duration::from_millis(20),
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
        ..ProcessorOptions::default()
    }
}

/// `PAIRS` requests with their responses, every third also mirrored: responses to judge.
fn events() -> (Vec<Event>, usize) {
    let mut events = Vec::new();
    let mut responses = 0;
    for i in 0..PAIRS {
        let id = format!("r{i}");
        let at = T0 + i as i64 * 1_000;
        events.push(request("acme", &id, "support", Some("user: hi"), at));
        events.push(ok("acme", &id, "demo/large", at + 10));
        responses += 1;
        if i % 3 == 0 {
            events.push(mirror("acme", &id, "demo/small", Some("hello"), at + 20));
            responses += 1;
        }
    }
    (events, responses)
}

/// Checks one scored judgement per response and byte-identical re-emissions; returns
/// (outputs, distinct event ids).
async fn check(node: &Node, responses: usize) -> Result<(usize, usize)> {
    let outputs = node.outputs().await?;
    let mut by_id: BTreeMap<EventId, Vec<Vec<u8>>> = BTreeMap::new();
    for (judged, bytes) in &outputs {
        by_id
            .entry(judged.envelope.event_id)
            .or_default()
            .push(bytes.clone());
        ensure!(
            matches!(judged.outcome, JudgeOutcome::Scored { .. }),
            "{judged:?}"
        );
    }
    for copies in by_id.values() {
        ensure!(
            copies.windows(2).all(|w| w[0] == w[1]),
            "a re-emission differs"
        );
    }
    let judgements: BTreeSet<String> = outputs
        .iter()
        .map(|(j, _)| j.judgement_id.as_str().to_owned())
        .collect();
    ensure!(
        judgements.len() == responses,
        "{} judgements for {responses} responses",
        judgements.len()
    );
    ensure!(
        by_id.len() == responses,
        "{} event ids for {responses} responses",
        by_id.len()
    );
    Ok((outputs.len(), by_id.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_outages_are_retried_by_the_runtime_and_nothing_is_skipped() -> Result<()> {
    let standin = StandIn::start(|call, _| match call {
        0 | 1 | 5 => Answer::Status(500),
        6 => Answer::Status(503),
        _ => Answer::score(7),
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    let (events, responses) = events();
    node.publish(&events).await?;
    node.run_to_end(&standin).await?;
    let (outputs, ids) = check(&node, responses).await?;
    ensure!(outputs == responses && ids == responses);
    // Four failed calls, and every successful one once: a retried batch reuses the replies it
    // already had.
    ensure!(
        standin.requests().len() == responses + 4,
        "{} calls",
        standin.requests().len()
    );
    let metrics = node.metrics.encode();
    ensure!(
        metrics.contains("processor_retries_total{group=\"judge\",stage=\"process\"}"),
        "{metrics}"
    );
    Ok(())
}

async fn crash_then_recover(
    step: CrashStep,
    standin: &StandIn,
) -> Result<(tempfile::TempDir, Node)> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    let (events, _) = events();
    node.publish(&events).await?;
    let crashing = ProcessorOptions {
        crash: Some(CrashPoint { step, batch: 2 }),
        ..options()
    };
    let outcome = switchyard_judge::run(
        node.deps()?,
        crashing,
        config(1.0),
        standin.judge(Some(10.0), false)?,
        CancellationToken::new(),
    )
    .await;
    ensure!(
        matches!(outcome, Err(RunError::InjectedCrash(_))),
        "{outcome:?}"
    );
    let node = node.restart().await?;
    node.run_to_end(standin).await?;
    Ok((dir, node))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_append_re_emits_the_same_judgements() -> Result<()> {
    let standin = StandIn::start(|_, _| Answer::score(8)).await?;
    let (_dir, node) = crash_then_recover(CrashStep::AfterAppend, &standin).await?;
    let (_, responses) = events();
    let (outputs, ids) = check(&node, responses).await?;
    // The crashed batch's judgements were emitted twice under one id each.
    ensure!(
        ids == responses && outputs >= responses,
        "{outputs} / {ids}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_apply_judges_nothing_twice() -> Result<()> {
    let standin = StandIn::start(|_, _| Answer::score(8)).await?;
    let (_dir, node) = crash_then_recover(CrashStep::AfterApply, &standin).await?;
    let (_, responses) = events();
    let (outputs, ids) = check(&node, responses).await?;
    ensure!(
        outputs == responses && ids == responses,
        "{outputs} / {ids}"
    );
    ensure!(standin.requests().len() == responses);
    Ok(())
}
