use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, ensure};
use switchyard_events::{Codec, Event, EventId};
use switchyard_log::{EventLog, GroupId, Topic};
use switchyard_processor::dead_letter::DeadLetterSource;
use switchyard_processor::{CrashPoint, CrashStep, ProcessorOptions, RunError};

use crate::support::{Counter, GROUP, Node, PARTITIONS, options, request, spawn};

const INPUTS: u32 = 20;

/// Returns the acknowledgements on the feedback topic: (event id, encoded bytes), and checks
/// each id is the one derived from its input.
async fn acks(node: &Node) -> Result<Vec<(EventId, Vec<u8>)>> {
    let codec = Codec::new()?;
    let mut out = Vec::new();
    for record in node.read_all(Topic::Feedback).await? {
        let Event::FeedbackSubmitted(ack) = codec.decode(&record.value)? else {
            anyhow::bail!("not an ack");
        };
        let input = ack
            .derived_from
            .ok_or_else(|| anyhow::anyhow!("no derived_from"))?;
        ensure!(
            ack.envelope.event_id == input.derive(&format!("{GROUP}/ack")),
            "output id is not derived from the input id"
        );
        out.push((ack.envelope.event_id, record.value));
    }
    Ok(out)
}

async fn assert_each_counted_once(node: &Node) -> Result<()> {
    for i in 0..INPUTS {
        ensure!(
            node.count(i).await? == 1,
            "req-{i} counted {}",
            node.count(i).await?
        );
    }
    ensure!(
        node.total().await? == u64::from(INPUTS),
        "total {}",
        node.total().await?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_every_input_once_with_derived_output_ids() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    node.publish((0..INPUTS).map(|i| request(i, &[]))).await?;
    let (task, shutdown) = spawn(node.runtime(Counter::default(), options(6)));
    node.wait_caught_up().await?;
    shutdown.cancel();
    task.await??;

    assert_each_counted_once(&node).await?;
    let acks = acks(&node).await?;
    ensure!(acks.len() == INPUTS as usize);
    // The log's committed offsets were moved last, to the store's checkpoints.
    let group = GroupId::new(GROUP)?;
    for partition in 0..PARTITIONS {
        let committed = node
            .log
            .committed(&group, Topic::Requests, partition)
            .await?;
        ensure!(committed == node.checkpoints().await?[partition as usize]);
    }
    let metrics = node.metrics.encode();
    ensure!(
        metrics.contains(&format!(
            "processor_records_total{{group=\"{GROUP}\",topic=\"requests\"}} {INPUTS}"
        )),
        "{metrics}"
    );
    ensure!(
        metrics.contains(&format!(
            "processor_output_events_total{{group=\"{GROUP}\",topic=\"feedback\"}} {INPUTS}"
        )),
        "{metrics}"
    );
    ensure!(
        metrics.contains(&format!(
            "processor_lag_records{{group=\"{GROUP}\",topic=\"requests\"}} 0"
        )),
        "{metrics}"
    );
    Ok(())
}

/// A crash after the state and checkpoint were applied but before the log's offsets were
/// committed: the log redelivers the batch, the store's checkpoint makes the runtime skip it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_apply_before_commit_does_not_count_twice() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    node.publish((0..INPUTS).map(|i| request(i, &[]))).await?;

    let crashing = ProcessorOptions {
        crash: Some(CrashPoint {
            step: CrashStep::AfterApply,
            batch: 2,
        }),
        ..options(5)
    };
    let outcome = node
        .runtime(Counter::default(), crashing)
        .run(Default::default())
        .await;
    ensure!(
        matches!(outcome, Err(RunError::InjectedCrash(_))),
        "{outcome:?}"
    );
    // The store is one batch ahead of the log's committed offsets.
    let group = GroupId::new(GROUP)?;
    let mut ahead = 0;
    for partition in 0..PARTITIONS {
        let committed = node
            .log
            .committed(&group, Topic::Requests, partition)
            .await?;
        let checkpoint = node.checkpoints().await?[partition as usize];
        if committed != checkpoint {
            ahead += 1;
            ensure!(committed.unwrap_or(0) < checkpoint.unwrap_or(0));
        }
    }
    ensure!(
        ahead == 1,
        "the crashed batch's partition is ahead in the store"
    );
    let applied_before = node.total().await?;
    ensure!(
        applied_before == 10,
        "two batches of five applied: {applied_before}"
    );

    let node = node.restart().await?;
    let (task, shutdown) = spawn(node.runtime(Counter::default(), options(5)));
    node.wait_caught_up().await?;
    shutdown.cancel();
    task.await??;

    assert_each_counted_once(&node).await?;
    // Outputs were appended once per input: the crash came after them, and the replay skipped.
    let acks = acks(&node).await?;
    ensure!(acks.len() == INPUTS as usize, "{} acks", acks.len());
    Ok(())
}

/// A crash after the outputs were appended but before state was applied: the batch is
/// processed again and re-emits identical outputs (same ids, same bytes); state counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_append_re_emits_identical_outputs() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    node.publish((0..INPUTS).map(|i| request(i, &[]))).await?;

    let crashing = ProcessorOptions {
        crash: Some(CrashPoint {
            step: CrashStep::AfterAppend,
            batch: 1,
        }),
        ..options(5)
    };
    let outcome = node
        .runtime(Counter::default(), crashing)
        .run(Default::default())
        .await;
    ensure!(matches!(outcome, Err(RunError::InjectedCrash(_))));
    ensure!(node.total().await? == 0, "nothing applied");
    ensure!(node.checkpoints().await?.iter().all(Option::is_none));
    ensure!(
        acks(&node).await?.len() == 5,
        "the first batch's outputs are durable"
    );

    let node = node.restart().await?;
    let (task, shutdown) = spawn(node.runtime(Counter::default(), options(5)));
    node.wait_caught_up().await?;
    shutdown.cancel();
    task.await??;

    assert_each_counted_once(&node).await?;
    let acks = acks(&node).await?;
    ensure!(acks.len() == INPUTS as usize + 5, "{} acks", acks.len());
    let mut by_id: HashMap<EventId, Vec<Vec<u8>>> = HashMap::new();
    for (id, bytes) in acks {
        by_id.entry(id).or_default().push(bytes);
    }
    ensure!(
        by_id.len() == INPUTS as usize,
        "deduped by id: one per input"
    );
    let duplicated: Vec<_> = by_id.values().filter(|copies| copies.len() == 2).collect();
    ensure!(duplicated.len() == 5);
    ensure!(
        duplicated.iter().all(|copies| copies[0] == copies[1]),
        "a re-emitted output is byte-identical"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_and_undecodable_inputs_are_dead_lettered_and_processing_continues() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    node.publish((0..5).map(|i| request(i, &[]))).await?;
    node.publish([request(5, &["poison"])]).await?;
    node.publish_raw("req-6", b"\x00\x00\x00\x00\x01garbage")
        .await?;
    node.publish((7..10).map(|i| request(i, &[]))).await?;

    let (task, shutdown) = spawn(node.runtime(Counter::default(), options(4)));
    node.wait_caught_up().await?;
    shutdown.cancel();
    task.await??;

    for i in (0..5).chain(7..10) {
        ensure!(node.count(i).await? == 1, "req-{i}");
    }
    // The poison input staged writes before failing; they were dropped with it.
    ensure!(node.count(5).await? == 0, "poison input left state behind");
    ensure!(node.total().await? == 8);

    let dead = node.read_all(Topic::DeadLetter).await?;
    ensure!(dead.len() == 2, "{} dead letters", dead.len());
    let mut kinds = HashSet::new();
    for record in &dead {
        let source = DeadLetterSource::from_headers(&record.headers)
            .ok_or_else(|| anyhow::anyhow!("dead letter without source headers"))?;
        ensure!(source.group == GROUP && source.topic == Topic::Requests);
        // The source coordinates point at the original record, bytes unchanged.
        let original = node
            .log
            .read(source.topic, source.partition, source.offset, 1)
            .await?;
        ensure!(original.first().map(|r| &r.value) == Some(&record.value));
        ensure!(original.first().map(|r| &r.key) == Some(&record.key));
        if source.kind == "poison" {
            ensure!(
                source.reason.contains("metadata says poison"),
                "{}",
                source.reason
            );
        } else {
            ensure!(source.kind == "undecodable", "{}", source.kind);
            ensure!(source.reason.contains("schema id"), "{}", source.reason);
        }
        kinds.insert(source.kind);
    }
    ensure!(kinds.len() == 2);
    let metrics = node.metrics.encode();
    ensure!(
        metrics.contains(&format!(
            "processor_dead_lettered_records_total{{group=\"{GROUP}\",topic=\"requests\"}} 2"
        )),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_retry_the_batch_and_skip_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    node.publish((0..INPUTS).map(|i| {
        let flags: &[&str] = if i == 7 { &["transient"] } else { &[] };
        request(i, flags)
    }))
    .await?;
    let counter = Counter::default();
    counter.fail_transiently.store(3, Ordering::SeqCst);
    let (task, shutdown) = spawn(node.runtime(counter.clone(), options(5)));
    node.wait_caught_up().await?;
    shutdown.cancel();
    task.await??;

    ensure!(counter.fail_transiently.load(Ordering::SeqCst) == 0);
    // Records processed before the failure in the same batch were not applied twice.
    assert_each_counted_once(&node).await?;
    ensure!(node.read_all(Topic::DeadLetter).await?.is_empty());
    let metrics = node.metrics.encode();
    ensure!(
        metrics.contains(&format!(
            "processor_retries_total{{group=\"{GROUP}\",stage=\"process\"}} 3"
        )),
        "{metrics}"
    );
    Ok(())
}

/// A schema registry that answers what a resolver asks for only after failing twice.
#[derive(Debug)]
struct FlakyRegistry {
    failures_left: std::sync::atomic::AtomicU32,
    asked: std::sync::atomic::AtomicU32,
}

impl switchyard_events::SchemaResolver for FlakyRegistry {
    fn schema_text(&self, _id: u32) -> Result<Option<String>, String> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err("registry unreachable".into());
        }
        let set = switchyard_events::schema_set().map_err(|e| e.clone())?;
        let latest = set
            .latest(switchyard_events::EventKind::RequestReceived)
            .ok_or("no schema")?;
        Ok(Some(latest.source().to_owned()))
    }
}

/// An input framed with a registry id the codec must look up: while the registry cannot be
/// asked, the batch is retried (never dead-lettered), and it is processed once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_lookup_failure_retries_the_batch_instead_of_dead_lettering() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    node.publish((0..5).map(|i| request(i, &[]))).await?;
    let framed = Codec::new()?.encode(&Event::RequestReceived(request(5, &[])))?;
    let mut registry_framed = vec![0, 0, 0, 0, 77];
    registry_framed.extend_from_slice(framed.get(5..).unwrap_or_default());
    node.publish_raw("req-5", &registry_framed).await?;
    node.publish((6..10).map(|i| request(i, &[]))).await?;

    let registry = std::sync::Arc::new(FlakyRegistry {
        failures_left: 2.into(),
        asked: 0.into(),
    });
    let codec = Codec::with_resolver(HashMap::new(), registry.clone())?;
    let (task, shutdown) = spawn(node.runtime_with_codec(Counter::default(), options(4), codec));
    node.wait_caught_up().await?;
    shutdown.cancel();
    task.await??;

    for i in 0..10 {
        ensure!(
            node.count(i).await? == 1,
            "req-{i} counted {}",
            node.count(i).await?
        );
    }
    ensure!(node.read_all(Topic::DeadLetter).await?.is_empty());
    ensure!(
        registry.asked.load(Ordering::SeqCst) == 3,
        "asked {}",
        registry.asked.load(Ordering::SeqCst)
    );
    let metrics = node.metrics.encode();
    ensure!(
        metrics.contains(&format!(
            "processor_retries_total{{group=\"{GROUP}\",stage=\"process\"}} 2"
        )),
        "{metrics}"
    );
    Ok(())
}

/// Two members of the group split the partitions; together they count everything once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_split_partitions_and_count_everything_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    let (first, stop_first) = spawn(node.runtime(Counter::default(), options(3)));
    let (second, stop_second) = spawn(node.runtime(Counter::default(), options(3)));
    // Both join before there is anything to read, so no partition changes hands mid-batch.
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.publish((0..INPUTS).map(|i| request(i, &[]))).await?;
    node.wait_caught_up().await?;
    ensure!(
        node.checkpoints()
            .await?
            .iter()
            .filter(|c| c.is_some())
            .count()
            > 1,
        "inputs span several partitions"
    );
    stop_first.cancel();
    stop_second.cancel();
    first.await??;
    second.await??;
    // Per-request counts only: `total` is shared by every partition, which the contract forbids
    // once members split them (the members' read-modify-writes of it race).
    for i in 0..INPUTS {
        ensure!(
            node.count(i).await? == 1,
            "req-{i} counted {}",
            node.count(i).await?
        );
    }
    Ok(())
}

/// Cancelling while a batch is being processed finishes that batch: its state, checkpoint
/// and outputs are durable when `run` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_batch_in_flight() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    // One key, so all inputs are in one partition and the first poll takes the batch of 4.
    node.publish((0..8).map(|i| {
        let mut event = request(i, &[]);
        event.envelope.partition_key = "one-partition".into();
        event
    }))
    .await?;
    let counter = Counter {
        slow: Some(Duration::from_millis(50)),
        ..Counter::default()
    };
    let started = counter.started.clone();
    let (task, shutdown) = spawn(node.runtime(counter, options(4)));
    started.notified().await;
    shutdown.cancel();
    task.await??;

    ensure!(
        node.total().await? == 4,
        "the batch in flight finished, the next did not start"
    );
    let checkpoints = node.checkpoints().await?;
    ensure!(checkpoints.iter().flatten().copied().collect::<Vec<_>>() == vec![4]);
    ensure!(node.read_all(Topic::Feedback).await?.len() == 4);
    Ok(())
}

/// Folds the first batch of one input published, then nine more published while it lingers,
/// and stops right after applying it; returns how many inputs that first batch held.
async fn first_batch_with(linger: Duration) -> Result<u64> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(dir.path())?;
    node.publish([request(0, &[])]).await?;
    let options = ProcessorOptions {
        linger,
        crash: Some(CrashPoint {
            step: CrashStep::AfterApply,
            batch: 1,
        }),
        ..options(100)
    };
    let run = tokio::spawn(
        node.runtime(Counter::default(), options)
            .run(Default::default()),
    );
    // Long enough for the runtime to have polled the first input even on a loaded machine.
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.publish((1..10).map(|i| request(i, &[]))).await?;
    let outcome = run.await?;
    ensure!(
        matches!(outcome, Err(RunError::InjectedCrash(_))),
        "{outcome:?}"
    );
    node.total().await
}

/// A batch that came back short waits `linger` for more: records appended meanwhile are folded
/// in the same batch (one apply, one commit), and without linger they are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_batch_lingers_for_more_records() -> Result<()> {
    let lingered = first_batch_with(Duration::from_millis(2000)).await?;
    ensure!(
        lingered == 10,
        "the lingering batch holds all ten: {lingered}"
    );
    let at_once = first_batch_with(Duration::ZERO).await?;
    ensure!(
        at_once == 1,
        "without linger the first batch is the first input: {at_once}"
    );
    Ok(())
}
