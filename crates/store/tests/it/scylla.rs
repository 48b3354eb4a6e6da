//! The state-store contract suite against ScyllaDB, on the cluster named by `SCYLLA_URI`
//! (`host:port[,host:port]`, a `scylla://` prefix and a `/keyspace` suffix are accepted and the
//! keyspace ignored). Each harness creates a keyspace of its own (`switchyard_test_<random>`,
//! `SimpleStrategy`, replication factor 1) and drops it when the test ends.
//!
//! `SCYLLA_URI` is read when the tests are built (`build.rs` turns it into `cfg(scylla_uri)`):
//! built without it, every test here is `#[ignore]`d and reported as skipped, never as passed;
//! built with it, they run and fail if the cluster cannot be reached. Nobody has run them yet:
//! ScyllaDB cannot be installed on the machines this was written on.
//!
//! `SCYLLA_URI=127.0.0.1:9042 cargo nextest run -p switchyard-store --features scylla scylla::`

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use anyhow::Context;
use switchyard_store::scylla::{ScyllaOptions, ScyllaStore};
use switchyard_testkit::StoreHarness;

const URI_ENV: &str = "SCYLLA_URI";

/// Contact points from `SCYLLA_URI`.
fn nodes_from_env() -> anyhow::Result<Vec<String>> {
    let uri = std::env::var(URI_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .with_context(|| {
            format!("{URI_ENV} is not set: the ScyllaDB contract suite needs a cluster")
        })?;
    let hosts = uri.trim().trim_start_matches("scylla://");
    let hosts = hosts.split_once('/').map_or(hosts, |(hosts, _)| hosts);
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!nodes.is_empty(), "{URI_ENV}={uri:?} names no host:port");
    Ok(nodes)
}

pub(crate) struct ScyllaHarness {
    keyspace: String,
}

impl ScyllaHarness {
    pub(crate) fn new() -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        ScyllaHarness {
            keyspace: format!("switchyard_test_{:016x}", h.finish()),
        }
    }
}

impl StoreHarness for ScyllaHarness {
    type Store = ScyllaStore;
    async fn open(&self) -> anyhow::Result<ScyllaStore> {
        let nodes = nodes_from_env()?;
        ScyllaStore::create_keyspace(&nodes, &self.keyspace, 1)
            .await
            .with_context(|| {
                format!("creating keyspace {} on {}", self.keyspace, nodes.join(","))
            })?;
        let options = ScyllaOptions {
            nodes,
            keyspace: self.keyspace.clone(),
        };
        Ok(ScyllaStore::connect(&options).await?)
    }
}

impl Drop for ScyllaHarness {
    /// Drops the test keyspace (best effort) from a thread of its own: the harness is dropped
    /// inside the test's runtime, which cannot be blocked on.
    fn drop(&mut self) {
        let Ok(nodes) = nodes_from_env() else {
            return;
        };
        let keyspace = std::mem::take(&mut self.keyspace);
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                let dropped = runtime.block_on(ScyllaStore::drop_keyspace(&nodes, &keyspace));
                if let Err(e) = dropped {
                    eprintln!("could not drop test keyspace {keyspace}: {e}");
                }
            }
        });
        let _ = cleanup.join();
    }
}

mod contract {
    use super::ScyllaHarness;
    switchyard_testkit::store_contract_tests!(
        #[cfg_attr(
            not(scylla_uri),
            ignore = "needs SCYLLA_URI (a ScyllaDB cluster) when the tests are built"
        )]
        ScyllaHarness::new()
    );
}
