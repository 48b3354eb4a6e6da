//! The state-store contract. Every function is one test, generic over the backend.

use anyhow::ensure;
use switchyard_store::{StateStore, StoreError, Table, Topic, WriteBatch};

use crate::StoreHarness;

const A: Table = Table::new("contract.a");
const B: Table = Table::new("contract.b");

/// Values written are read back; deletes remove them.
pub async fn put_get_delete<H: StoreHarness>(h: &H) -> anyhow::Result<()> {
    let s = h.open().await?;
    ensure!(s.get(A, b"missing").await?.is_none());
    let mut b = WriteBatch::new();
    b.put(A, "k1", "v1").put(A, "k2", "v2");
    s.apply(b).await?;
    ensure!(s.get(A, b"k1").await?.as_deref() == Some(&b"v1"[..]));
    let mut b = WriteBatch::new();
    b.put(A, "k1", "v1b").delete(A, "k2");
    s.apply(b).await?;
    ensure!(
        s.get(A, b"k1").await?.as_deref() == Some(&b"v1b"[..]),
        "overwrite"
    );
    ensure!(s.get(A, b"k2").await?.is_none(), "delete");
    Ok(())
}

/// Prefix scans return keys in order, honour the limit and resume after a cursor.
pub async fn scan_prefix_is_ordered_bounded_and_paginated<H: StoreHarness>(
    h: &H,
) -> anyhow::Result<()> {
    let s = h.open().await?;
    let mut b = WriteBatch::new();
    for i in (0..30).rev() {
        b.put(A, format!("session/{i:03}"), format!("{i}"));
    }
    b.put(A, "sessions-other", "x").put(A, "sessiom", "y");
    s.apply(b).await?;
    let first = s.scan_prefix(A, b"session/", None, 10).await?;
    let keys: Vec<String> = first
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    ensure!(
        keys == (0..10)
            .map(|i| format!("session/{i:03}"))
            .collect::<Vec<_>>(),
        "first page {keys:?}"
    );
    let mut all = first.clone();
    let mut after = first.last().map(|(k, _)| k.clone());
    while let Some(cursor) = after {
        let page = s.scan_prefix(A, b"session/", Some(&cursor), 10).await?;
        after = page.last().map(|(k, _)| k.clone());
        all.extend(page);
    }
    ensure!(all.len() == 30, "pagination returned {} entries", all.len());
    ensure!(
        all.windows(2).all(|w| w[0].0 < w[1].0),
        "ordered, no duplicates"
    );
    Ok(())
}

/// The same key in two tables holds two values; a scan never crosses tables.
pub async fn tables_are_isolated<H: StoreHarness>(h: &H) -> anyhow::Result<()> {
    let s = h.open().await?;
    let mut b = WriteBatch::new();
    b.put(A, "k", "in-a").put(B, "k", "in-b");
    s.apply(b).await?;
    ensure!(s.get(A, b"k").await?.as_deref() == Some(&b"in-a"[..]));
    ensure!(s.get(B, b"k").await?.as_deref() == Some(&b"in-b"[..]));
    ensure!(
        s.scan_prefix(A, b"", None, 100).await?.len() == 1,
        "scan of one table"
    );
    Ok(())
}

/// A batch's state and checkpoints are both visible after apply.
pub async fn apply_writes_state_and_checkpoint_together<H: StoreHarness>(
    h: &H,
) -> anyhow::Result<()> {
    let s = h.open().await?;
    ensure!(s.checkpoint("proc", Topic::Feedback, 3).await?.is_none());
    let mut b = WriteBatch::new();
    b.put(A, "window", "state@42")
        .checkpoint("proc", Topic::Feedback, 3, 42);
    s.apply(b).await?;
    ensure!(s.checkpoint("proc", Topic::Feedback, 3).await? == Some(42));
    ensure!(
        s.checkpoint("proc", Topic::Feedback, 2).await?.is_none(),
        "per partition"
    );
    ensure!(
        s.checkpoint("other", Topic::Feedback, 3).await?.is_none(),
        "per group"
    );
    let mut b = WriteBatch::new();
    b.put(A, "window", "state@50")
        .checkpoint("proc", Topic::Feedback, 3, 50);
    s.apply(b).await?;
    ensure!(s.checkpoint("proc", Topic::Feedback, 3).await? == Some(50));
    ensure!(s.get(A, b"window").await?.as_deref() == Some(&b"state@50"[..]));
    Ok(())
}

/// State and checkpoints are durable across a reopen.
pub async fn state_and_checkpoints_survive_reopen<H: StoreHarness>(h: &H) -> anyhow::Result<()> {
    {
        let s = h.open().await?;
        let mut b = WriteBatch::new();
        b.put(A, "durable", "yes")
            .checkpoint("proc", Topic::Decisions, 0, 7);
        s.apply(b).await?;
    }
    let s = h.open().await?;
    ensure!(s.get(A, b"durable").await?.as_deref() == Some(&b"yes"[..]));
    ensure!(s.checkpoint("proc", Topic::Decisions, 0).await? == Some(7));
    Ok(())
}

/// A malformed table name is a clear error, not a silent write.
pub async fn invalid_table_is_rejected<H: StoreHarness>(h: &H) -> anyhow::Result<()> {
    let s = h.open().await?;
    let mut b = WriteBatch::new();
    b.put(Table::new("Bad Name!"), "k", "v");
    match s.apply(b).await {
        Err(StoreError::Invalid(_)) => Ok(()),
        other => anyhow::bail!("expected Invalid, got {other:?}"),
    }
}
