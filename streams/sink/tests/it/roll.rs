//! Files roll by size (rows, bytes) and by event time.

use std::time::Duration;

use anyhow::{Result, ensure};
use switchyard_sink::{SinkProcessor, WriterOptions};
use switchyard_store::EmbeddedStore;

use crate::support::{T0, decision, fold, offsets, parquet_files, read, writer};

fn rows_per_file(dir: &std::path::Path) -> Result<Vec<usize>> {
    parquet_files(dir)?
        .iter()
        .map(|f| read(&dir.join(f)).map(|b| b.iter().map(|b| b.num_rows()).sum()))
        .collect()
}

#[tokio::test]
async fn a_full_buffer_rolls_at_once_and_the_rest_waits_for_its_time() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = EmbeddedStore::temporary()?;
    let processor = SinkProcessor::default();
    let events: Vec<_> = (0..7).map(|n| decision("acme", n, T0 + n as i64)).collect();
    fold(&store, &processor, &offsets(events)).await?;
    let w = writer(
        &store,
        dir.path(),
        WriterOptions {
            max_rows: 3,
            roll_interval: Duration::from_secs(60),
            ..WriterOptions::default()
        },
    )?;

    // Seven rows: two full files at once; the seventh row is younger than the roll interval.
    let closed = w.flush_ready(T0 + 1_000_000).await?;
    ensure!(closed.len() == 2, "{closed:?}");
    ensure!(rows_per_file(dir.path())? == [3, 3]);
    ensure!(w.flush_ready(T0 + 59_000_000).await?.is_empty());

    // A minute of event time after the first pending row: it rolls by time.
    let closed = w.flush_ready(T0 + 6 + 60_000_000).await?;
    ensure!(closed.len() == 1 && closed[0].rows == 1, "{closed:?}");
    ensure!(rows_per_file(dir.path())? == [3, 3, 1]);
    let names: Vec<String> = parquet_files(dir.path())?
        .iter()
        .map(|f| {
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    ensure!(
        names
            == [
                "part-00000-00000000000000000000.parquet",
                "part-00000-00000000000000000003.parquet",
                "part-00000-00000000000000000006.parquet"
            ],
        "{names:?}"
    );
    // Nothing left to close.
    ensure!(w.flush_ready(i64::MAX).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_buffer_rolls_by_bytes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = EmbeddedStore::temporary()?;
    let events: Vec<_> = (0..4).map(|n| decision("acme", n, T0)).collect();
    fold(&store, &SinkProcessor::default(), &offsets(events)).await?;
    // Each staged decision is well over 100 bytes: one row per file.
    let w = writer(
        &store,
        dir.path(),
        WriterOptions {
            max_bytes: 100,
            ..WriterOptions::default()
        },
    )?;
    w.flush_ready(T0).await?;
    ensure!(rows_per_file(dir.path())? == [1, 1, 1, 1]);
    Ok(())
}
