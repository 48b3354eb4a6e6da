//! The read model in the processor runtime over the real embedded log and store: outcomes
//! published before their decisions, an undecodable record, and the same state as the fold.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use switchyard_decisions::{DecisionFilter, DecisionQueries, GROUP, INPUTS};
use switchyard_events::{Codec, DecisionId, Event, FeedbackSource, OrgId};
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};
use switchyard_log::{EventLog, Record, Topic};
use switchyard_processor::{ProcessorDeps, ProcessorOptions};
use switchyard_runtime::{CancellationToken, ManualClock, Metrics};
use switchyard_store::{EmbeddedStore, StateStore};

use crate::support::{DecisionSpec, T0, decision, dump, feedback, fold, judged, response};

fn events() -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    for i in 0..12usize {
        let id = format!("dec-{i}");
        let request = format!("req-{i}");
        let session = (i.is_multiple_of(3)).then_some("sess-a");
        let time = T0 + i as i64 * 1_000;
        events.push(
            decision(&DecisionSpec {
                org: "acme",
                decision: &id,
                request: &request,
                session,
                route: "support",
                time,
            })
            .into(),
        );
        events.push(response("acme", &id, &request, session, 50 * i as i64, time + 1).into());
        events.push(
            feedback(
                "acme",
                &format!("fb-{i}"),
                &request,
                session,
                FeedbackSource::User,
                0.5,
                time + 2,
            )
            .into(),
        );
        events.push(
            judged(
                "acme",
                &format!("j-{i}"),
                &id,
                &request,
                session,
                Some(0.7),
                time + 3,
            )
            .into(),
        );
    }
    events
}

async fn caught_up(log: &EmbeddedLog, store: &EmbeddedStore) -> Result<bool> {
    for topic in INPUTS {
        for partition in 0..log.partitions(*topic) {
            let end = log.watermarks(*topic, partition).await?.end;
            let checkpoint = store.checkpoint(GROUP, *topic, partition).await?;
            if end > 0 && checkpoint != Some(end) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_builds_the_same_records_as_the_fold_whatever_the_topic_order() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open_dir(
        &dir.path().join("log"),
        EmbeddedOptions {
            partitions: 3,
            ..EmbeddedOptions::default()
        },
    )?;
    let store = EmbeddedStore::open_dir(&dir.path().join("store"))?;
    let codec = Codec::new()?;
    let events = events();

    // Judge scores, feedback and responses are all in the log before any decision.
    for topic in [
        Topic::JudgeScores,
        Topic::Feedback,
        Topic::Responses,
        Topic::Decisions,
    ] {
        let mut records = Vec::new();
        for event in events.iter().filter(|e| e.topic() == topic) {
            records.push(
                Record::new(event.partition_key().as_str(), codec.encode(event)?)
                    .at(event.envelope().event_time.as_millis()),
            );
        }
        if topic == Topic::Responses {
            records.push(Record::new("req-0", b"not avro".to_vec()));
        }
        log.append(topic, records).await?;
    }

    let metrics = Metrics::new();
    let deps = ProcessorDeps {
        log: log.clone(),
        store: store.clone(),
        codec,
        metrics: metrics.clone(),
        clock: Arc::new(ManualClock::at_micros(T0)),
    };
    let options = ProcessorOptions {
        batch_size: 5,
        poll_wait: Duration::from_millis(20),
        ..ProcessorOptions::default()
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(switchyard_decisions::run(deps, options, shutdown.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !caught_up(&log, &store).await? {
        if tokio::time::Instant::now() > deadline {
            bail!("the read model did not catch up");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    task.await??;

    let reference = EmbeddedStore::temporary()?;
    fold(&reference, &events, &[events.len()]).await?;
    ensure!(
        dump(&store).await? == dump(&reference).await?,
        "the runtime's state differs from the in-order fold"
    );

    let queries = DecisionQueries::new(store.clone());
    let acme = OrgId::new("acme");
    let record = queries
        .get(&acme, &DecisionId::new("dec-7"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("dec-7 missing"))?;
    ensure!(
        record
            .response
            .as_ref()
            .is_some_and(|r| r.latency_ms == 350)
    );
    ensure!(
        record.feedback.count == 2 && record.feedback.mean.is_some_and(|m| (m - 0.6).abs() < 1e-9)
    );
    let page = queries
        .list(
            &acme,
            &DecisionFilter {
                latency_above_ms: Some(400),
                ..Default::default()
            },
            None,
            100,
        )
        .await?;
    let ids: Vec<&str> = page.items.iter().map(|r| r.decision_id.as_str()).collect();
    ensure!(ids == ["dec-11", "dec-10", "dec-9"], "{ids:?}");

    let dead = log.read(Topic::DeadLetter, 0, 0, 100).await?.len()
        + log.read(Topic::DeadLetter, 1, 0, 100).await?.len()
        + log.read(Topic::DeadLetter, 2, 0, 100).await?.len();
    ensure!(dead == 1, "{dead} dead letters");
    ensure!(
        metrics
            .encode()
            .contains("processor_records_total{group=\"decisions\",topic=\"decisions\"} 12")
    );
    Ok(())
}
