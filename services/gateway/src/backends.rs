//! Builds the event log and the state store that the configuration names.

use anyhow::Context;
use switchyard_config::{Config, FsyncMode, LogBackend, StoreBackend};
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions, Fsync};
use switchyard_log::{AnyLog, KafkaOptions};
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

/// Opens the configured event log: the embedded log, or a Kafka client (distributed mode).
pub async fn open_log(config: &Config) -> anyhow::Result<AnyLog> {
    match &config.log.backend {
        LogBackend::Embedded(dir) => EmbeddedLog::open_dir(dir, embedded_options(config))
            .map(AnyLog::from)
            .with_context(|| format!("cannot open the embedded log in {}", dir.display())),
        LogBackend::Memory => EmbeddedLog::temporary(embedded_options(config))
            .map(AnyLog::from)
            .context("cannot open the in-memory log"),
        LogBackend::Kafka { brokers } => {
            let brokers = brokers.join(",");
            AnyLog::kafka(kafka_settings(config, &brokers))
                .await
                .with_context(|| format!("cannot connect to Kafka at {brokers}"))
        }
    }
}

/// The Kafka client's settings from `[log]` and `[log.kafka]`.
fn kafka_settings(config: &Config, brokers: &str) -> KafkaOptions {
    let k = &config.log.kafka;
    let mut settings = KafkaOptions::new(brokers);
    settings.topic_prefix.clone_from(&config.log.topic_prefix);
    settings.group_prefix.clone_from(&k.group_prefix);
    settings.partitions = k.partitions;
    settings.replication_factor = k.replication_factor;
    settings.create_topics = k.create_topics;
    settings.session_timeout = k.session_timeout;
    settings.heartbeat_interval = k.heartbeat_interval;
    settings.request_timeout = k.request_timeout;
    settings.tansu_workarounds = k.tansu_workarounds;
    settings.client_config = k.client.clone();
    settings.compaction_min_lag = config.log.audit_horizon;
    settings
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
            "store.url names ScyllaDB ({}), which this command cannot open (commands open it through open_any_store); use store.url = \"embedded\"",
            nodes.join(",")
        ),
    }
}

/// Opens the configured state store as one type: the embedded store, or ScyllaDB
/// (`store.url = "scylla://host:port/keyspace"`, binary built with `--features scylla`; the
/// ScyllaDB backend is untested, see the README).
pub async fn open_any_store(config: &Config) -> anyhow::Result<switchyard_store::AnyStore> {
    match &config.store.backend {
        StoreBackend::Scylla { nodes, keyspace } => {
            switchyard_store::AnyStore::scylla(nodes, keyspace)
                .await
                .with_context(|| {
                    format!(
                        "cannot open the ScyllaDB store at {} (keyspace {keyspace})",
                        nodes.join(",")
                    )
                })
        }
        StoreBackend::Embedded(_) | StoreBackend::Memory => {
            open_store(config).map(switchyard_store::AnyStore::from)
        }
    }
}
