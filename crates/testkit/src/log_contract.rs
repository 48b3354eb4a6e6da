//! The event-log contract. Every function is one test, generic over the backend.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use anyhow::{Context, ensure};
use switchyard_log::{
    EventLog, GroupId, LogError, Record, StartFrom, StoredRecord, Subscription, Topic,
    partition_for_key,
};

use crate::LogHarness;

const WAIT: Duration = Duration::from_millis(500);

async fn read_all<L: EventLog>(log: &L, topic: Topic) -> anyhow::Result<Vec<StoredRecord>> {
    let mut out = Vec::new();
    for p in 0..log.partitions(topic) {
        let w = log.watermarks(topic, p).await?;
        let mut from = w.start;
        while from < w.end {
            let batch = log.read(topic, p, from, 1000).await?;
            let Some(last) = batch.last() else { break };
            from = last.offset + 1;
            out.extend(batch);
        }
    }
    Ok(out)
}

/// Polls until `n` records arrived or the deadline passed.
async fn poll_n<S: Subscription>(
    sub: &mut S,
    n: usize,
    deadline: Duration,
) -> anyhow::Result<Vec<StoredRecord>> {
    let until = tokio::time::Instant::now() + deadline;
    let mut out = Vec::new();
    while out.len() < n && tokio::time::Instant::now() < until {
        out.extend(sub.poll(n - out.len(), WAIT).await?);
    }
    Ok(out)
}

fn values(records: &[StoredRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .collect()
}

/// Records come back with the bytes that were appended, in append order per key.
pub async fn append_and_read_back_in_order<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    let records: Vec<Record> = (0..100)
        .map(|i| Record::new(format!("k{}", i % 10), format!("v{i}")))
        .collect();
    let positions = log.append(Topic::Requests, records).await?;
    ensure!(positions.len() == 100, "one position per record");
    let all = read_all(&log, Topic::Requests).await?;
    ensure!(
        all.len() == 100,
        "read back {} records, expected 100",
        all.len()
    );
    let mut per_key: BTreeMap<Vec<u8>, Vec<String>> = BTreeMap::new();
    for r in &all {
        per_key
            .entry(r.key.clone())
            .or_default()
            .push(String::from_utf8_lossy(&r.value).into_owned());
    }
    for k in 0..10 {
        let expected: Vec<String> = (0..10).map(|j| format!("v{}", j * 10 + k)).collect();
        let got = per_key
            .get(format!("k{k}").as_bytes())
            .cloned()
            .unwrap_or_default();
        ensure!(
            got == expected,
            "key k{k}: got {got:?}, expected {expected:?}"
        );
    }
    for (i, pos) in positions.iter().enumerate() {
        let rec = log
            .read(Topic::Requests, pos.partition, pos.offset, 1)
            .await?;
        ensure!(
            values(&rec) == vec![format!("v{i}")],
            "position {pos:?} holds {:?}",
            values(&rec)
        );
    }
    log.close().await?;
    Ok(())
}

/// A key always lands in `partition_for_key(key, partitions)`, Kafka's default partitioner.
pub async fn same_key_same_partition_kafka_partitioner<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    let partitions = log.partitions(Topic::Feedback);
    ensure!(partitions >= 1);
    for i in 0..50 {
        let key = format!("session-{i}");
        let pos = log
            .append(
                Topic::Feedback,
                vec![Record::new(key.clone(), "x"), Record::new(key.clone(), "y")],
            )
            .await?;
        let expected = partition_for_key(key.as_bytes(), partitions);
        ensure!(
            pos.iter().all(|p| p.partition == expected),
            "{key} went to {pos:?}, expected partition {expected}"
        );
        ensure!(
            pos[1].offset == pos[0].offset + 1,
            "a batch for one key is contiguous"
        );
    }
    log.close().await?;
    Ok(())
}

/// Offsets start at zero, are dense on append, and the high watermark follows.
pub async fn offsets_are_dense_and_watermarks_move<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    let p = partition_for_key(b"one-key", log.partitions(Topic::Decisions));
    let before = log.watermarks(Topic::Decisions, p).await?;
    let mut offsets = Vec::new();
    for i in 0..20 {
        let pos = log
            .append(
                Topic::Decisions,
                vec![Record::new("one-key", format!("{i}"))],
            )
            .await?;
        offsets.push(pos[0].offset);
    }
    let expected: Vec<u64> = (before.end..before.end + 20).collect();
    ensure!(
        offsets == expected,
        "offsets {offsets:?}, expected {expected:?}"
    );
    let after = log.watermarks(Topic::Decisions, p).await?;
    ensure!(
        after.end == before.end + 20 && after.start == before.start,
        "watermarks {before:?} -> {after:?}"
    );
    log.close().await?;
    Ok(())
}

/// Reading at the end returns nothing; below the start or past the end is an error.
pub async fn read_bounds_are_errors_or_empty<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    let pos = log
        .append(Topic::Responses, vec![Record::new("k", "v")])
        .await?;
    let p = pos[0].partition;
    let end = log.watermarks(Topic::Responses, p).await?.end;
    ensure!(
        log.read(Topic::Responses, p, end, 10).await?.is_empty(),
        "reading at the end is empty"
    );
    match log.read(Topic::Responses, p, end + 5, 10).await {
        Err(LogError::OffsetOutOfRange { .. }) => {}
        other => anyhow::bail!("reading past the end: expected OffsetOutOfRange, got {other:?}"),
    }
    match log
        .read(Topic::Responses, log.partitions(Topic::Responses), 0, 10)
        .await
    {
        Err(LogError::UnknownPartition { .. }) => {}
        other => {
            anyhow::bail!("reading a missing partition: expected UnknownPartition, got {other:?}")
        }
    }
    log.close().await?;
    Ok(())
}

/// Headers and producer timestamps are kept; records without one get the append time.
pub async fn headers_and_timestamps_round_trip<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    let rec = Record::new("hk", vec![0u8, 1, 2, 255])
        .at(1_700_000_000_123)
        .header("error", "poison")
        .header("attempts", vec![3u8]);
    let pos = log
        .append(
            Topic::DeadLetter,
            vec![rec.clone(), Record::new("hk", "stamped")],
        )
        .await?;
    let back = log
        .read(Topic::DeadLetter, pos[0].partition, pos[0].offset, 2)
        .await?;
    ensure!(back.len() == 2);
    ensure!(
        back[0].value == rec.value && back[0].key == rec.key,
        "bytes round trip"
    );
    ensure!(
        back[0].headers == rec.headers,
        "headers {:?}",
        back[0].headers
    );
    ensure!(
        back[0].timestamp_ms == 1_700_000_000_123,
        "timestamp {}",
        back[0].timestamp_ms
    );
    ensure!(
        back[1].timestamp_ms > 1_600_000_000_000,
        "append time stamped: {}",
        back[1].timestamp_ms
    );
    log.close().await?;
    Ok(())
}

/// `offset_for_time` returns the first offset at or after a time, `None` past the newest.
pub async fn offset_for_time_finds_first_at_or_after<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    let base = 1_800_000_000_000i64;
    let recs: Vec<Record> = (0..30)
        .map(|i| Record::new("tk", format!("{i}")).at(base + i * 1000))
        .collect();
    let pos = log.append(Topic::JudgeScores, recs).await?;
    let p = pos[0].partition;
    let first = pos[0].offset;
    ensure!(log.offset_for_time(Topic::JudgeScores, p, base - 1).await? == Some(first));
    ensure!(
        log.offset_for_time(Topic::JudgeScores, p, base + 10_000)
            .await?
            == Some(first + 10)
    );
    ensure!(
        log.offset_for_time(Topic::JudgeScores, p, base + 10_500)
            .await?
            == Some(first + 11)
    );
    ensure!(
        log.offset_for_time(Topic::JudgeScores, p, base + 29_000)
            .await?
            == Some(first + 29)
    );
    ensure!(
        log.offset_for_time(Topic::JudgeScores, p, base + 29_001)
            .await?
            .is_none()
    );
    log.close().await?;
    Ok(())
}

/// A member that rejoins a group resumes at the committed offset, not at the start.
pub async fn group_resumes_from_committed_offset<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    let recs: Vec<Record> = (0..40)
        .map(|i| Record::new(format!("g{}", i % 4), format!("{i}")))
        .collect();
    log.append(Topic::Feedback, recs).await?;
    let group = GroupId::new("contract-resume")?;
    let mut sub = log
        .subscribe(&group, &[Topic::Feedback], StartFrom::Earliest)
        .await?;
    let got = poll_n(&mut sub, 40, Duration::from_secs(20)).await?;
    ensure!(got.len() == 40, "first member saw {} of 40", got.len());
    // Commit only the first half of every partition's records.
    let mut per_partition: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for r in &got {
        per_partition.entry(r.partition).or_default().push(r.offset);
    }
    let mut commits = Vec::new();
    let mut expected_rest = 0;
    for (p, offsets) in &per_partition {
        let half = offsets.len() / 2;
        let next = offsets.get(half).copied().unwrap_or(offsets[0]);
        commits.push((Topic::Feedback, *p, next));
        expected_rest += offsets.len() - half;
    }
    sub.commit(&commits).await?;
    for (topic, p, next) in &commits {
        ensure!(
            log.committed(&group, *topic, *p).await? == Some(*next),
            "committed offset of partition {p}"
        );
    }
    drop(sub);
    let mut again = log
        .subscribe(&group, &[Topic::Feedback], StartFrom::Earliest)
        .await?;
    let rest = poll_n(&mut again, expected_rest, Duration::from_secs(20)).await?;
    ensure!(
        rest.len() == expected_rest,
        "resumed member saw {} records, expected {expected_rest}",
        rest.len()
    );
    let extra = again.poll(100, Duration::from_millis(300)).await?;
    ensure!(
        extra.is_empty(),
        "nothing before the committed offsets is redelivered: {} extra",
        extra.len()
    );
    drop(again);
    log.close().await?;
    Ok(())
}

/// Two members of one group own disjoint partitions that cover the topic; when one leaves,
/// the other takes over all partitions.
pub async fn members_split_partitions_and_rebalance<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    let n = log.partitions(Topic::Decisions) as usize;
    let group = GroupId::new("contract-split")?;
    let mut a = log
        .subscribe(&group, &[Topic::Decisions], StartFrom::Earliest)
        .await?;
    let mut b = log
        .subscribe(&group, &[Topic::Decisions], StartFrom::Earliest)
        .await?;
    let recs: Vec<Record> = (0..200)
        .map(|i| Record::new(format!("s{i}"), format!("{i}")))
        .collect();
    log.append(Topic::Decisions, recs).await?;
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    while seen_a.len() + seen_b.len() < 200 && tokio::time::Instant::now() < until {
        let (ra, rb) = tokio::join!(
            a.poll(200, Duration::from_millis(200)),
            b.poll(200, Duration::from_millis(200))
        );
        seen_a.extend(ra?);
        seen_b.extend(rb?);
    }
    ensure!(
        seen_a.len() + seen_b.len() == 200,
        "group saw {} of 200",
        seen_a.len() + seen_b.len()
    );
    let pa: BTreeSet<u32> = seen_a.iter().map(|r| r.partition).collect();
    let pb: BTreeSet<u32> = seen_b.iter().map(|r| r.partition).collect();
    ensure!(
        pa.is_disjoint(&pb),
        "members read the same partition: {pa:?} {pb:?}"
    );
    if n > 1 {
        ensure!(
            !seen_a.is_empty() && !seen_b.is_empty(),
            "both members got partitions ({} / {})",
            seen_a.len(),
            seen_b.len()
        );
    }
    let ids: BTreeSet<String> = seen_a
        .iter()
        .chain(&seen_b)
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .collect();
    ensure!(ids.len() == 200, "no record twice, none lost");
    let commits: Vec<(Topic, u32, u64)> = {
        let mut last: HashMap<u32, u64> = HashMap::new();
        for r in &seen_b {
            last.insert(r.partition, r.offset + 1);
        }
        last.into_iter()
            .map(|(p, o)| (Topic::Decisions, p, o))
            .collect()
    };
    b.commit(&commits).await?;
    drop(b);
    // a takes over b's partitions from b's committed offsets: nothing new to read.
    let more = a.poll(500, Duration::from_secs(3)).await?;
    ensure!(
        more.is_empty(),
        "takeover resumed from the committed offsets, got {} records",
        more.len()
    );
    log.append(
        Topic::Decisions,
        (0..50)
            .map(|i| Record::new(format!("s{i}"), "late"))
            .collect(),
    )
    .await?;
    let late = poll_n(&mut a, 50, Duration::from_secs(20)).await?;
    ensure!(
        late.len() == 50,
        "after the rebalance one member reads every partition: {}",
        late.len()
    );
    let assigned: BTreeSet<u32> = a.assignment().into_iter().map(|(_, p)| p).collect();
    ensure!(
        assigned.len() == n,
        "remaining member owns {} of {n} partitions",
        assigned.len()
    );
    drop(a);
    log.close().await?;
    Ok(())
}

/// A new group starting at `Latest` sees only records appended after it joined.
pub async fn start_latest_skips_existing_records<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    log.append(Topic::Pins, vec![Record::new("org/route", "old")])
        .await?;
    let group = GroupId::new("contract-latest")?;
    let mut sub = log
        .subscribe(&group, &[Topic::Pins], StartFrom::Latest)
        .await?;
    // Make sure the member is assigned before appending (Kafka joins asynchronously).
    let _ = sub.poll(10, Duration::from_millis(500)).await?;
    log.append(Topic::Pins, vec![Record::new("org/route", "new")])
        .await?;
    let got = poll_n(&mut sub, 1, Duration::from_secs(20)).await?;
    ensure!(
        values(&got) == vec!["new".to_owned()],
        "got {:?}",
        values(&got)
    );
    drop(sub);
    log.close().await?;
    Ok(())
}

/// Two groups consume independently: each sees every record.
pub async fn independent_groups_each_see_everything<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    log.append(
        Topic::Control,
        (0..25)
            .map(|i| Record::new(format!("c{i}"), format!("{i}")))
            .collect(),
    )
    .await?;
    let mut a = log
        .subscribe(
            &GroupId::new("contract-a")?,
            &[Topic::Control],
            StartFrom::Earliest,
        )
        .await?;
    let mut b = log
        .subscribe(
            &GroupId::new("contract-b")?,
            &[Topic::Control],
            StartFrom::Earliest,
        )
        .await?;
    let ga = poll_n(&mut a, 25, Duration::from_secs(20)).await?;
    let gb = poll_n(&mut b, 25, Duration::from_secs(20)).await?;
    ensure!(
        ga.len() == 25 && gb.len() == 25,
        "groups saw {} and {}",
        ga.len(),
        gb.len()
    );
    drop((a, b));
    log.close().await?;
    Ok(())
}

/// After close and reopen, records and committed offsets are still there and new appends
/// continue after the last offset.
pub async fn data_and_offsets_survive_reopen<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    let pos = log
        .append(
            Topic::Requests,
            (0..10)
                .map(|i| Record::new("durable", format!("{i}")))
                .collect(),
        )
        .await?;
    let p = pos[0].partition;
    let group = GroupId::new("contract-durable")?;
    let mut sub = log
        .subscribe(&group, &[Topic::Requests], StartFrom::Earliest)
        .await?;
    let got = poll_n(&mut sub, 10, Duration::from_secs(20)).await?;
    ensure!(got.len() == 10);
    sub.commit(&[(Topic::Requests, p, pos[4].offset + 1)])
        .await?;
    drop(sub);
    log.close().await.context("close")?;
    drop(log);

    let log = h.open().await.context("reopen")?;
    let back = log.read(Topic::Requests, p, pos[0].offset, 100).await?;
    ensure!(
        values(&back) == (0..10).map(|i| i.to_string()).collect::<Vec<_>>(),
        "records after reopen: {:?}",
        values(&back)
    );
    ensure!(
        log.committed(&group, Topic::Requests, p).await? == Some(pos[4].offset + 1),
        "committed offset after reopen"
    );
    let next = log
        .append(Topic::Requests, vec![Record::new("durable", "10")])
        .await?;
    ensure!(
        next[0].offset == pos[9].offset + 1,
        "offsets continue after reopen: {} after {}",
        next[0].offset,
        pos[9].offset
    );
    let mut sub = log
        .subscribe(&group, &[Topic::Requests], StartFrom::Earliest)
        .await?;
    let rest = poll_n(&mut sub, 6, Duration::from_secs(20)).await?;
    ensure!(
        values(&rest) == ["5", "6", "7", "8", "9", "10"],
        "resumed at the committed offset: {:?}",
        values(&rest)
    );
    drop(sub);
    log.close().await?;
    Ok(())
}

/// Eight concurrent producers: every record lands once and each key keeps its order.
pub async fn concurrent_producers_keep_per_key_order<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                log.append(
                    Topic::Responses,
                    vec![Record::new(format!("p{t}"), format!("{i}"))],
                )
                .await?;
            }
            Ok::<_, LogError>(())
        }));
    }
    for t in futures::future::join_all(tasks).await {
        t??;
    }
    let all = read_all(&log, Topic::Responses).await?;
    ensure!(all.len() == 800, "{} records, expected 800", all.len());
    for t in 0..8 {
        let key = format!("p{t}");
        let seq: Vec<String> = all
            .iter()
            .filter(|r| r.key == key.as_bytes())
            .map(|r| String::from_utf8_lossy(&r.value).into_owned())
            .collect();
        ensure!(
            seq == (0..100).map(|i| i.to_string()).collect::<Vec<_>>(),
            "key {key} out of order"
        );
    }
    log.close().await?;
    Ok(())
}

/// A waiting poll returns as soon as a record is appended, well before its timeout.
pub async fn poll_wakes_up_on_append<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    let mut sub = log
        .subscribe(
            &GroupId::new("contract-wake")?,
            &[Topic::RoutingTable],
            StartFrom::Earliest,
        )
        .await?;
    let _ = sub.poll(10, Duration::from_millis(500)).await?;
    let writer = log.clone();
    let handle = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        writer
            .append(Topic::RoutingTable, vec![Record::new("org", "table-v1")])
            .await
    });
    let started = tokio::time::Instant::now();
    let got = poll_n(&mut sub, 1, Duration::from_secs(30)).await?;
    handle.await??;
    ensure!(values(&got) == ["table-v1"], "got {:?}", values(&got));
    ensure!(
        started.elapsed() < Duration::from_secs(15),
        "poll woke up after {:?}",
        started.elapsed()
    );
    drop(sub);
    log.close().await?;
    Ok(())
}

/// Appending nothing succeeds and changes nothing.
pub async fn empty_append_is_a_no_op<H: LogHarness>(h: &H) -> anyhow::Result<()> {
    let log = h.open().await?;
    ensure!(log.append(Topic::Constraints, Vec::new()).await?.is_empty());
    for p in 0..log.partitions(Topic::Constraints) {
        let w = log.watermarks(Topic::Constraints, p).await?;
        ensure!(w.start == w.end, "partition {p} not empty: {w:?}");
    }
    log.close().await?;
    Ok(())
}
