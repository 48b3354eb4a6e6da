//! Rows land in `<table>/org=<org>/date=<date>/`, with the manifest listing every file, and
//! through the real processor runtime.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use switchyard_events::Codec;
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};
use switchyard_log::{EventLog, Record};
use switchyard_processor::{ProcessorDeps, ProcessorOptions, ProcessorRuntime};
use switchyard_runtime::{CancellationToken, ManualClock, Metrics};
use switchyard_sink::{GROUP, INPUTS, ManifestEntry, SinkProcessor, WriterOptions};
use switchyard_store::{EmbeddedStore, StateStore};

use crate::support::{DAY, T0, column, fold, offsets, one_of_each, parquet_files, read, writer};

#[tokio::test]
async fn every_table_lands_partitioned_by_org_and_date_with_a_manifest() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = EmbeddedStore::temporary()?;
    let processor = SinkProcessor::new(["acme".to_owned()]);
    let mut events = Vec::new();
    for n in 0..3 {
        events.extend(one_of_each("acme", n, T0 + n as i64));
        events.extend(one_of_each("globex", n, T0 + DAY + n as i64));
    }
    fold(&store, &processor, &offsets(events)).await?;
    let exports = dir.path().join("exports");
    let written = writer(&store, &exports, WriterOptions::default())?
        .flush_all()
        .await?;
    ensure!(written.len() == 10, "{} files", written.len());

    let files = parquet_files(&exports)?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    for table in [
        "decisions",
        "requests",
        "responses",
        "feedback",
        "judge_scores",
    ] {
        ensure!(
            names.contains(&format!(
                "{table}/org=acme/date=2025-11-24/part-00000-00000000000000000000.parquet"
            )),
            "{names:?}"
        );
        ensure!(
            names
                .iter()
                .any(|n| n.starts_with(&format!("{table}/org=globex/date=2025-11-25/"))),
            "{names:?}"
        );
    }
    ensure!(files.len() == 10, "{names:?}");

    // Decisions: flat columns and the whole trace.
    let ids = column(&exports, "decisions/org=acme", "decision_id")?;
    ensure!(
        ids == [
            Some("dec-acme-0".into()),
            Some("dec-acme-1".into()),
            Some("dec-acme-2".into())
        ],
        "{ids:?}"
    );
    let traces = column(&exports, "decisions/org=acme", "trace_json")?;
    let trace: serde_json::Value = serde_json::from_str(traces[0].as_deref().unwrap_or(""))?;
    ensure!(trace["decision_id"] == "dec-acme-0", "{trace}");
    let orgs = column(&exports, "decisions/org=globex", "org")?;
    ensure!(orgs.iter().all(|o| o.as_deref() == Some("globex")));

    // Text only where the org opted in (the samples carry prompt text).
    let acme_prompts = column(&exports, "requests/org=acme", "prompt_text")?;
    let globex_prompts = column(&exports, "requests/org=globex", "prompt_text")?;
    ensure!(acme_prompts.iter().all(Option::is_some), "{acme_prompts:?}");
    ensure!(
        globex_prompts.iter().all(Option::is_none),
        "{globex_prompts:?}"
    );

    // The manifest lists every file with its row count.
    let mut listed = Vec::new();
    for file in &files {
        let entry: ManifestEntry = serde_json::from_slice(&std::fs::read(
            exports
                .join("_manifest")
                .join(format!("{}.json", file.display())),
        )?)?;
        let rows: usize = read(&exports.join(file))?
            .iter()
            .map(|b| b.num_rows())
            .sum();
        ensure!(entry.rows as usize == rows && entry.path == file.display().to_string());
        listed.push(entry);
    }
    ensure!(listed.iter().map(|e| e.rows).sum::<u64>() == 30);
    // Nothing staged is left.
    let left = store
        .scan_prefix(switchyard_sink::stage::STAGED, b"", None, 10)
        .await?;
    ensure!(left.is_empty(), "{} rows still staged", left.len());
    Ok(())
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

async fn publish(
    log: &EmbeddedLog,
    codec: &Codec,
    events: &[switchyard_events::Event],
) -> Result<()> {
    for event in events {
        log.append(
            event.topic(),
            vec![Record::new(
                event.partition_key().as_str(),
                codec.encode(event)?,
            )],
        )
        .await?;
    }
    Ok(())
}

/// Runs the processor until it has consumed everything in the log.
async fn consume(log: &EmbeddedLog, store: &EmbeddedStore) -> Result<()> {
    let deps = ProcessorDeps {
        log: log.clone(),
        store: store.clone(),
        codec: Codec::new()?,
        metrics: Metrics::new(),
        clock: Arc::new(ManualClock::at_micros(T0)),
    };
    let options = ProcessorOptions {
        batch_size: 4,
        poll_wait: Duration::from_millis(20),
        ..ProcessorOptions::default()
    };
    let runtime = ProcessorRuntime::new(SinkProcessor::default(), deps, options);
    let stop = CancellationToken::new();
    let task = tokio::spawn(runtime.run(stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !caught_up(log, store).await? {
        if tokio::time::Instant::now() > deadline {
            bail!("the sink did not catch up");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    task.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_stages_and_a_restart_neither_loses_nor_duplicates() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open_dir(
        &dir.path().join("log"),
        EmbeddedOptions {
            partitions: 3,
            ..EmbeddedOptions::default()
        },
    )?;
    let store_dir = dir.path().join("store");
    let codec = Codec::new()?;
    let exports = dir.path().join("exports");

    let first: Vec<_> = (0..10)
        .flat_map(|n| one_of_each("acme", n, T0 + n as i64))
        .collect();
    publish(&log, &codec, &first).await?;
    {
        let store = EmbeddedStore::open_dir(&store_dir)?;
        consume(&log, &store).await?;
        // Half of it goes to files before the "crash".
        let w = writer(
            &store,
            &exports,
            WriterOptions {
                max_rows: 2,
                ..WriterOptions::default()
            },
        )?;
        w.flush_ready(T0).await?;
    }
    // Restart: the store reopens from disk; more events arrive.
    let second: Vec<_> = (10..20)
        .flat_map(|n| one_of_each("acme", n, T0 + n as i64))
        .collect();
    publish(&log, &codec, &second).await?;
    let store = EmbeddedStore::open_dir(&store_dir)?;
    consume(&log, &store).await?;
    writer(&store, &exports, WriterOptions::default())?
        .flush_all()
        .await?;

    let mut ids = column(&exports, "decisions", "decision_id")?;
    ids.sort();
    ids.dedup();
    let total: usize = parquet_files(&exports)?
        .iter()
        .filter(|f| f.starts_with("decisions"))
        .map(|f| read(&exports.join(f)).map(|b| b.iter().map(|b| b.num_rows()).sum::<usize>()))
        .sum::<Result<usize>>()?;
    ensure!(
        ids.len() == 20 && total == 20,
        "{} distinct of {total} rows",
        ids.len()
    );
    for table in ["requests", "responses", "feedback", "judge_scores"] {
        let rows = column(&exports, table, "event_id")?;
        ensure!(rows.len() == 20, "{table}: {} rows", rows.len());
    }
    Ok(())
}
