//! SIGKILL while 100k events are being appended: every acknowledged event survives, in order
//! per key, offsets continue after the last durable record, and the consumer group resumes at
//! its committed offsets.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use switchyard_e2e::{CRASH_KEYS, CrashLine};
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};
use switchyard_log::{EventLog, GroupId, StartFrom, Subscription, Topic};

const TOTAL: u64 = 100_000;

fn run_and_kill(dir: &std::path::Path, kill_after_acks: usize) -> anyhow::Result<Vec<CrashLine>> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
        .arg(dir)
        .arg(TOTAL.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawn crash-writer")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut lines = Vec::new();
    let mut acks = 0usize;
    let started = Instant::now();
    let mut line = String::new();
    while acks < kill_after_acks {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            anyhow::bail!("crash-writer exited before {kill_after_acks} acks (got {acks})");
        }
        ensure!(
            started.elapsed() < Duration::from_secs(300),
            "crash-writer too slow"
        );
        if let Some(parsed) = CrashLine::parse(line.trim_end()) {
            if matches!(parsed, CrashLine::Ack { .. }) {
                acks += 1;
            }
            lines.push(parsed);
        }
    }
    // SIGKILL: no destructor, no flush, no close.
    child.kill().context("SIGKILL")?;
    // Lines already written before the kill were acknowledged too: read them all.
    let mut rest = String::new();
    loop {
        rest.clear();
        if reader.read_line(&mut rest)? == 0 {
            break;
        }
        // A torn last line is not a complete acknowledgement; parse() rejects it.
        if rest.ends_with('\n')
            && let Some(parsed) = CrashLine::parse(rest.trim_end())
        {
            lines.push(parsed);
        }
    }
    let status = child.wait()?;
    ensure!(
        !status.success(),
        "the writer was killed, not finished: {status:?}"
    );
    Ok(lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_100k_appends_loses_nothing_acknowledged() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut acked: HashMap<(u32, u64), (u32, u64)> = HashMap::new();
    let mut committed: BTreeMap<u32, u64> = BTreeMap::new();
    // Two crashes in a row: the second run appends on top of a recovered log.
    for kill_after in [30_000usize, 20_000] {
        for line in run_and_kill(dir.path(), kill_after)? {
            match line {
                CrashLine::Ack {
                    key,
                    seq,
                    partition,
                    offset,
                } => {
                    // Sequence numbers restart in the second run: key them by run-unique offset.
                    acked.insert((partition, offset), (key, seq));
                }
                CrashLine::Commit { partition, offset } => {
                    let c = committed.entry(partition).or_insert(0);
                    *c = (*c).max(offset);
                }
            }
        }
    }
    ensure!(acked.len() >= 50_000, "only {} acks collected", acked.len());

    let log = EmbeddedLog::open_dir(
        dir.path(),
        EmbeddedOptions {
            partitions: 4,
            ..EmbeddedOptions::default()
        },
    )?;
    // Every acknowledged record is readable at its acknowledged position with its content.
    let mut stored: HashMap<(u32, u64), String> = HashMap::new();
    let mut per_key_offsets: BTreeMap<u32, Vec<(u32, u64)>> = BTreeMap::new();
    for p in 0..log.partitions(Topic::Requests) {
        let w = log.watermarks(Topic::Requests, p).await?;
        let mut from = w.start;
        let mut expected_offset = w.start;
        while from < w.end {
            let batch = log.read(Topic::Requests, p, from, 10_000).await?;
            let Some(last) = batch.last() else { break };
            from = last.offset + 1;
            for r in batch {
                ensure!(
                    r.offset == expected_offset,
                    "offsets are dense after recovery: {} then {}",
                    expected_offset,
                    r.offset
                );
                expected_offset += 1;
                let value = String::from_utf8(r.value)?;
                let key: u32 = value.split(':').next().context("value")?.parse()?;
                per_key_offsets.entry(key).or_default().push((p, r.offset));
                stored.insert((p, r.offset), value);
            }
        }
    }
    let mut missing = 0;
    for ((p, o), (key, seq)) in &acked {
        match stored.get(&(*p, *o)) {
            Some(v) if *v == format!("{key}:{seq}") => {}
            Some(v) => anyhow::bail!("acked {key}:{seq} at {p}@{o}, but the log holds {v}"),
            None => missing += 1,
        }
    }
    ensure!(
        missing == 0,
        "{missing} acknowledged records are missing after SIGKILL"
    );

    // Order per key: within each run, a key's sequence numbers increase with the offset.
    for (key, positions) in &per_key_offsets {
        let partitions: std::collections::BTreeSet<u32> =
            positions.iter().map(|(p, _)| *p).collect();
        ensure!(
            partitions.len() == 1,
            "key {key} spread over partitions {partitions:?}"
        );
        let seqs: Vec<u64> = positions
            .iter()
            .map(|pos| {
                stored[pos]
                    .split(':')
                    .nth(1)
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
            .collect();
        let mut runs = 0;
        for w in seqs.windows(2) {
            if w[1] == 0 {
                runs += 1; // the second run starts the key again at 0
                continue;
            }
            ensure!(w[1] == w[0] + 1, "key {key}: seq {} follows {}", w[1], w[0]);
        }
        ensure!(runs <= 1, "key {key} restarted {runs} times");
    }
    ensure!(
        per_key_offsets.len() == CRASH_KEYS as usize,
        "all {CRASH_KEYS} keys present"
    );

    // The group resumes exactly at the offsets it had committed before the crash (or later,
    // for a commit that was durable but not yet reported).
    let group = GroupId::new("crash-consumer")?;
    for (p, offset) in &committed {
        let durable = log
            .committed(&group, Topic::Requests, *p)
            .await?
            .context("a committed offset survived")?;
        ensure!(
            durable >= *offset,
            "partition {p}: committed {offset} was acknowledged, {durable} survived"
        );
    }
    let mut sub = log
        .subscribe(&group, &[Topic::Requests], StartFrom::Earliest)
        .await?;
    let mut first_seen: BTreeMap<u32, u64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while first_seen.len() < committed.len() && Instant::now() < deadline {
        for r in sub.poll(10_000, Duration::from_millis(100)).await? {
            first_seen.entry(r.partition).or_insert(r.offset);
        }
    }
    for (p, first) in &first_seen {
        let durable = log
            .committed(&group, Topic::Requests, *p)
            .await?
            .unwrap_or(0);
        ensure!(
            *first == durable,
            "partition {p}: resumed at {first}, committed {durable}"
        );
    }
    drop(sub);
    log.close().await?;
    Ok(())
}
