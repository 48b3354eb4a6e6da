//! The state-store contract suite against the embedded backend; with the `scylla` feature, the
//! same suite against ScyllaDB (skipped unless `SCYLLA_URI` is set, see `scylla.rs`).

#![expect(
    clippy::expect_used,
    reason = "a harness that cannot create its temp dir cannot run"
)]

use switchyard_store::EmbeddedStore;
use switchyard_testkit::StoreHarness;

struct EmbeddedStoreHarness {
    dir: tempfile::TempDir,
}

impl EmbeddedStoreHarness {
    fn new() -> Self {
        EmbeddedStoreHarness {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
}

impl StoreHarness for EmbeddedStoreHarness {
    type Store = EmbeddedStore;
    async fn open(&self) -> anyhow::Result<EmbeddedStore> {
        Ok(EmbeddedStore::open_dir(self.dir.path())?)
    }
}

switchyard_testkit::store_contract_tests!(EmbeddedStoreHarness::new());

/// The same contract against ScyllaDB (untested here: no ScyllaDB on our machines).
#[cfg(feature = "scylla")]
mod scylla;
