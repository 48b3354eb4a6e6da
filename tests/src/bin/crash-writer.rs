//! Appends `TOTAL` records from eight concurrent producers to the embedded log in `DIR`, while
//! a consumer group reads and commits, and prints each acknowledgement as soon as it is durable.
//! Usage: `crash-writer DIR TOTAL`. The crash test kills it with SIGKILL midway.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchyard_e2e::CRASH_KEYS;
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};
use switchyard_log::{EventLog, GroupId, Record, StartFrom, Subscription, Topic};
use tokio::sync::Mutex;

const PRODUCERS: u32 = 8;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().context("usage: crash-writer DIR TOTAL")?;
    let total: u64 = args
        .next()
        .context("usage: crash-writer DIR TOTAL")?
        .parse()?;
    let log = EmbeddedLog::open_dir(
        std::path::Path::new(&dir),
        EmbeddedOptions {
            partitions: 4,
            ..EmbeddedOptions::default()
        },
    )?;
    let out = Arc::new(Mutex::new(std::io::stdout()));

    let consumer = {
        let log = log.clone();
        let out = Arc::clone(&out);
        tokio::spawn(async move {
            let group = GroupId::new("crash-consumer")?;
            let mut sub = log
                .subscribe(&group, &[Topic::Requests], StartFrom::Earliest)
                .await?;
            loop {
                let batch = sub.poll(2000, Duration::from_millis(50)).await?;
                let mut next = std::collections::BTreeMap::new();
                for r in &batch {
                    next.insert(r.partition, r.offset + 1);
                }
                let commits: Vec<_> = next
                    .iter()
                    .map(|(p, o)| (Topic::Requests, *p, *o))
                    .collect();
                sub.commit(&commits).await?;
                let mut out = out.lock().await;
                for (p, o) in next {
                    writeln!(out, "COMMIT {p} {o}")?;
                }
                out.flush()?;
            }
            #[expect(
                unreachable_code,
                reason = "the consumer runs until the process is killed"
            )]
            Ok::<_, anyhow::Error>(())
        })
    };

    let per_producer = total / u64::from(PRODUCERS);
    let mut producers = Vec::new();
    for t in 0..PRODUCERS {
        let log = log.clone();
        let out = Arc::clone(&out);
        producers.push(tokio::spawn(async move {
            // Each producer owns keys t, t+8, t+16, ...; it appends small batches and numbers
            // every key's records 0, 1, 2, ...
            let keys: Vec<u32> = (t..CRASH_KEYS).step_by(PRODUCERS as usize).collect();
            let mut seqs = vec![0u64; keys.len()];
            let mut sent = 0u64;
            let mut round = 0usize;
            while sent < per_producer {
                let mut batch = Vec::new();
                let mut meta = Vec::new();
                for _ in 0..16 {
                    let i = round % keys.len();
                    round += 1;
                    let key = keys[i];
                    batch.push(Record::new(
                        format!("key-{key}"),
                        format!("{key}:{}", seqs[i]),
                    ));
                    meta.push((key, seqs[i]));
                    seqs[i] += 1;
                }
                sent += batch.len() as u64;
                let positions = log.append(Topic::Requests, batch).await?;
                let mut out = out.lock().await;
                for ((key, seq), pos) in meta.into_iter().zip(positions) {
                    writeln!(out, "ACK {key} {seq} {} {}", pos.partition, pos.offset)?;
                }
                out.flush()?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for p in producers {
        p.await??;
    }
    consumer.abort();
    log.close().await?;
    writeln!(out.lock().await, "DONE")?;
    Ok(())
}
