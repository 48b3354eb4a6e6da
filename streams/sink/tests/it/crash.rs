//! A crash between writing a file and recording it rewrites the same file; a redelivered input
//! adds no row.

use anyhow::{Result, ensure};
use switchyard_sink::{SinkProcessor, WriterOptions};
use switchyard_store::EmbeddedStore;

use crate::support::{T0, column, decision, fold, parquet_files, writer};

#[tokio::test]
async fn a_crash_after_the_put_rewrites_the_same_file_and_redelivery_adds_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let exports = dir.path().join("exports");
    let store = EmbeddedStore::temporary()?;
    let processor = SinkProcessor::default();
    // Partition 1 first: the file's name comes from its first row, (1, 0).
    let events: Vec<_> = (0..3)
        .map(|n| (decision("acme", n, T0 + n as i64), 1, n as u64))
        .collect();
    fold(&store, &processor, &events).await?;

    // The manifest cannot be written (a file where its directory goes): the data file is put,
    // the store is not updated, as if the process died between the two.
    std::fs::create_dir_all(&exports)?;
    std::fs::write(exports.join("_manifest"), b"in the way")?;
    let w = writer(&store, &exports, WriterOptions::default())?;
    ensure!(w.flush_all().await.is_err(), "the manifest put should fail");
    ensure!(parquet_files(&exports)?.len() == 1);

    // Meanwhile rows arrive on partition 0, whose keys sort before partition 1's.
    let more: Vec<_> = (3..5)
        .map(|n| (decision("acme", n, T0 + n as i64), 0, n as u64))
        .collect();
    fold(&store, &processor, &more).await?;

    // After the "restart" the intent writes exactly the same rows to the same name; the new
    // rows go to their own file.
    std::fs::remove_file(exports.join("_manifest"))?;
    let closed = w.flush_all().await?;
    ensure!(closed.len() == 2, "{closed:?}");
    ensure!(
        closed[0]
            .path
            .ends_with("part-00001-00000000000000000000.parquet")
            && closed[0].rows == 3
    );
    ensure!(
        closed[1]
            .path
            .ends_with("part-00000-00000000000000000003.parquet")
            && closed[1].rows == 2
    );
    ensure!(parquet_files(&exports)?.len() == 2);

    // Redelivery of everything (a store without atomic checkpoints): the marks drop it.
    fold(&store, &processor, &events).await?;
    fold(&store, &processor, &more).await?;
    ensure!(w.flush_all().await?.is_empty());
    let mut ids = column(&exports, "decisions", "decision_id")?;
    let n = ids.len();
    ids.sort();
    ids.dedup();
    ensure!(n == 5 && ids.len() == 5, "{n} rows, {} distinct", ids.len());
    Ok(())
}
