//! Builds the event log and the state store that the configuration names.

use anyhow::Context;
use switchyard_config::{Config, FsyncMode, LogBackend, StoreBackend};
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions, Fsync};
use switchyard_store::EmbeddedStore;

/// Options of the embedded log from the configuration.
pub fn embedded_options(config: &Config) -> EmbeddedOptions {
    EmbeddedOptions {
        partitions: config.log.partitions,
        fsync: match config.log.fsync {
            FsyncMode::Group => Fsync::Group,
            FsyncMode::None => Fsync::None,
        },
        group_commit_max_records: config.log.group_commit.max_records,
        group_commit_max_bytes: config.log.group_commit.max_bytes,
        group_commit_linger: config.log.group_commit.linger,
        retention: config.log.retention,
        compaction_min_lag: config.log.audit_horizon,
    }
}

/// Opens the configured event log.
pub fn open_log(config: &Config) -> anyhow::Result<EmbeddedLog> {
    match &config.log.backend {
        LogBackend::Embedded(dir) => EmbeddedLog::open_dir(dir, embedded_options(config))
            .with_context(|| format!("cannot open the embedded log in {}", dir.display())),
        LogBackend::Memory => EmbeddedLog::temporary(embedded_options(config))
            .context("cannot open the in-memory log"),
        LogBackend::Kafka { brokers } => anyhow::bail!(
            "log.url names Kafka ({}), but this build has no Kafka backend yet (the distributed-mode issue adds it); use log.url = \"embedded\"",
            brokers.join(",")
        ),
    }
}

/// Opens the configured state store.
pub fn open_store(config: &Config) -> anyhow::Result<EmbeddedStore> {
    match &config.store.backend {
        StoreBackend::Embedded(dir) => EmbeddedStore::open_dir(dir)
            .with_context(|| format!("cannot open the embedded store in {}", dir.display())),
        StoreBackend::Memory => {
            EmbeddedStore::temporary().context("cannot open the in-memory store")
        }
        StoreBackend::Scylla { nodes, .. } => anyhow::bail!(
            "store.url names ScyllaDB ({}), but this build has no Scylla backend yet (the distributed-mode issue adds it behind the `scylla` feature); use store.url = \"embedded\"",
            nodes.join(",")
        ),
    }
}
