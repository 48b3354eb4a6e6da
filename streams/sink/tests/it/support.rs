//! Events from the frozen schema samples, a fold without the log, and Parquet read-back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{Array, RecordBatch, StringArray};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use switchyard_events::{
    Codec, DecisionId, Event, EventId, JudgementId, OrgId, PartitionKey, RequestId, Timestamp,
};
use switchyard_processor::{Input, Output, Processor, StagedState};
use switchyard_sink::{SinkProcessor, Writer, WriterOptions};
use switchyard_store::{EmbeddedStore, StateStore};

/// 2025-11-24T16:00:00.123456Z.
pub const T0: i64 = 1_764_000_000_123_456;
/// One day in microseconds.
pub const DAY: i64 = 86_400_000_000;

fn sample(hex_text: &str) -> Event {
    let bytes = hex::decode(hex_text.trim()).expect("sample hex");
    Codec::new()
        .expect("codec")
        .decode(&bytes)
        .expect("sample decodes")
}

fn base(label: &str) -> EventId {
    let base: EventId = "019ab5d3-6e80-7000-8000-000000000003"
        .parse()
        .expect("event id");
    base.derive(label)
}

fn stamp(event: &mut Event, org: &str, label: &str, time: i64, request: &str) {
    let envelope = event.envelope_mut();
    envelope.org = OrgId::new(org);
    envelope.event_id = base(label);
    envelope.event_time = Timestamp::from_micros(time);
    envelope.partition_key = PartitionKey::session_or_request(None, &RequestId::new(request));
}

/// A decision `n` of `org` at `time`.
pub fn decision(org: &str, n: usize, time: i64) -> Event {
    let mut event = sample(include_str!(
        "../../../../schemas/samples/route_decided/v2.bin.hex"
    ));
    let request = format!("req-{org}-{n}");
    stamp(&mut event, org, &format!("d/{org}/{n}"), time, &request);
    if let Event::RouteDecided(e) = &mut event {
        e.decision_id = DecisionId::new(format!("dec-{org}-{n}"));
        e.request_id = RequestId::new(request);
    }
    event
}

/// One event of every exported kind for request `n` of `org` at `time`.
pub fn one_of_each(org: &str, n: usize, time: i64) -> Vec<Event> {
    let request = format!("req-{org}-{n}");
    let mut out = vec![decision(org, n, time)];
    for (kind, hex) in [
        (
            "rq",
            include_str!("../../../../schemas/samples/request_received/v2.bin.hex"),
        ),
        (
            "rs",
            include_str!("../../../../schemas/samples/response_completed/v2.bin.hex"),
        ),
        (
            "fb",
            include_str!("../../../../schemas/samples/feedback_submitted/v2.bin.hex"),
        ),
        (
            "js",
            include_str!("../../../../schemas/samples/judge_scored/v1.bin.hex"),
        ),
    ] {
        let mut event = sample(hex);
        stamp(
            &mut event,
            org,
            &format!("{kind}/{org}/{n}"),
            time + 1,
            &request,
        );
        match &mut event {
            Event::RequestReceived(e) => {
                e.request_id = RequestId::new(request.clone());
                e.prompt_text = Some(format!("user: question {n}"));
            }
            Event::ResponseCompleted(e) => {
                e.request_id = RequestId::new(request.clone());
                e.decision_id = DecisionId::new(format!("dec-{org}-{n}"));
            }
            Event::JudgeScored(e) => {
                e.judgement_id = JudgementId::new(format!("j-{org}-{n}"));
                e.decision_id = DecisionId::new(format!("dec-{org}-{n}"));
            }
            _ => {}
        }
        out.push(event);
    }
    out
}

/// Folds `events` through the processor as the runtime would (one applied batch), with the
/// given offsets on partition `partition` of each event's topic.
pub async fn fold(
    store: &EmbeddedStore,
    processor: &SinkProcessor,
    events: &[(Event, u32, u64)],
) -> Result<()> {
    let mut state = StagedState::new(store);
    for (event, partition, offset) in events {
        let input = Input {
            event: event.clone(),
            topic: event.topic(),
            partition: *partition,
            offset: *offset,
            key: event.partition_key().as_str().as_bytes().to_vec(),
            headers: Vec::new(),
        };
        let mut out = Output::new(processor.group(), input.event_id());
        processor.process(&input, &mut state, &mut out).await?;
        state.commit_record();
    }
    store.apply(state.into_write_batch()).await?;
    Ok(())
}

/// Numbers events per topic from offset 0 on partition 0.
pub fn offsets(events: Vec<Event>) -> Vec<(Event, u32, u64)> {
    let mut next: BTreeMap<&'static str, u64> = BTreeMap::new();
    events
        .into_iter()
        .map(|e| {
            let offset = next.entry(e.topic().name()).or_insert(0);
            let at = *offset;
            *offset += 1;
            (e, 0, at)
        })
        .collect()
}

/// A local export directory and its object store.
pub fn local(dir: &Path) -> Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(dir)?;
    Ok(Arc::new(LocalFileSystem::new_with_prefix(dir)?))
}

pub fn writer(
    store: &EmbeddedStore,
    dir: &Path,
    options: WriterOptions,
) -> Result<Writer<EmbeddedStore>> {
    Ok(Writer::new(store.clone(), local(dir)?, options))
}

/// Every `.parquet` file under `dir`, relative, sorted.
pub fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path.strip_prefix(dir)?.to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads one Parquet file.
pub fn read(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// The values of a string column across every file of `table` under `dir`.
pub fn column(dir: &Path, table: &str, name: &str) -> Result<Vec<Option<String>>> {
    let mut out = Vec::new();
    for file in parquet_files(dir)? {
        if !file.starts_with(table) {
            continue;
        }
        for batch in read(&dir.join(&file))? {
            let array = batch
                .column_by_name(name)
                .with_context(|| format!("no column {name}"))?;
            let strings = array
                .as_any()
                .downcast_ref::<StringArray>()
                .with_context(|| format!("{name} is not a string"))?;
            for i in 0..strings.len() {
                out.push(strings.is_valid(i).then(|| strings.value(i).to_owned()));
            }
        }
    }
    Ok(out)
}
