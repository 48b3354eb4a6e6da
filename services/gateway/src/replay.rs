//! `switchyard replay`: re-reads one topic, on either backend, through the same decoding path
//! the processors use (the codec, with the schema registry when configured), and prints one
//! JSON line per record on stdout: where it is on the log and the decoded event. Progress and
//! the summary go to stderr.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, bail};
use switchyard_config::Config;
use switchyard_events::Topic;
use switchyard_log::EventLog;
use switchyard_runtime::Clock as _;

use crate::cli::ReplayArgs;

/// A start or end: an offset in every partition, or a time (milliseconds since the epoch).
#[derive(Debug, Clone, Copy)]
enum Bound {
    Offset(u64),
    TimeMs(i64),
}

fn bound(text: &str, flag: &str) -> anyhow::Result<Bound> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Bound::Offset(
            t.parse().with_context(|| format!("--{flag} {t}"))?,
        ));
    }
    let now = switchyard_runtime::SystemClock.now_micros();
    let at = switchyard_ingress::export::parse_time(t, now)
        .map_err(|e| anyhow::anyhow!("--{flag}: {e} (or an offset: digits only)"))?;
    Ok(Bound::TimeMs(at.as_micros().div_euclid(1000)))
}

pub async fn run(config: &Config, options: &ReplayArgs) -> anyhow::Result<()> {
    let topic: Topic = options.topic.parse().map_err(|_| {
        anyhow::anyhow!(
            "--topic {}: not a topic (one of: {})",
            options.topic,
            Topic::ALL
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let from = bound(&options.from, "from")?;
    let to = options.to.as_deref().map(|t| bound(t, "to")).transpose()?;
    let codec = switchyard_registry::codec_for(config.schema_registry.url.as_deref())
        .await
        .context("cannot load the event schemas")?;
    let log = crate::backends::open_log(config).await?;
    let partitions = log.partitions(topic);
    let chosen: Vec<u32> = match options.partition {
        Some(p) if p < partitions => vec![p],
        Some(p) => bail!("--partition {p}: topic {topic} has {partitions} partitions"),
        None => (0..partitions).collect(),
    };
    let result = replay(&log, &codec, topic, &chosen, from, to).await;
    log.close().await.ok();
    let (records, undecodable) = result?;
    eprintln!(
        "\nreplay: {records} records of {topic} from {} partition(s), {undecodable} undecodable",
        chosen.len()
    );
    if undecodable > 0 {
        bail!("{undecodable} records could not be decoded (printed with their error)");
    }
    Ok(())
}

async fn replay<L: EventLog>(
    log: &L,
    codec: &switchyard_events::Codec,
    topic: Topic,
    partitions: &[u32],
    from: Bound,
    to: Option<Bound>,
) -> anyhow::Result<(u64, u64)> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut records, mut undecodable) = (0u64, 0u64);
    let mut last = Instant::now();
    for &partition in partitions {
        let marks = log.watermarks(topic, partition).await?;
        let start = match from {
            Bound::Offset(o) => o.max(marks.start),
            Bound::TimeMs(ms) => match log.offset_for_time(topic, partition, ms).await? {
                Some(o) => o.max(marks.start),
                None => continue,
            },
        };
        let end = match to {
            None | Some(Bound::TimeMs(_)) => marks.end,
            Some(Bound::Offset(o)) => o.min(marks.end),
        };
        let mut next = start;
        'partition: while next < end {
            let batch = log.read(topic, partition, next, 1000).await?;
            if batch.is_empty() {
                break;
            }
            for r in batch {
                if r.offset >= end {
                    break 'partition;
                }
                if let Some(Bound::TimeMs(until)) = to
                    && r.timestamp_ms >= until
                {
                    break 'partition;
                }
                next = r.offset + 1;
                let event = match codec.decode(&r.value) {
                    Ok(event) => serde_json::to_value(&event)?,
                    Err(e) => {
                        undecodable += 1;
                        serde_json::json!({"error": e.to_string()})
                    }
                };
                let line = serde_json::json!({
                    "topic": topic.name(),
                    "partition": r.partition,
                    "offset": r.offset,
                    "timestamp_ms": r.timestamp_ms,
                    "key": String::from_utf8_lossy(&r.key),
                    "event": event,
                });
                writeln!(out, "{line}")?;
                records += 1;
                if last.elapsed().as_millis() >= 500 {
                    last = Instant::now();
                    eprint!(
                        "\rreplay: {records} records, partition {partition} at offset {} of {end}",
                        r.offset
                    );
                }
            }
        }
    }
    out.flush()?;
    Ok((records, undecodable))
}
