//! [`KafkaOptions`]: the Kafka backend's settings. Defined whatever the features, so callers
//! build them the same way; only connecting needs the `kafka` feature.

use std::collections::BTreeMap;
use std::time::Duration;

/// Options of the Kafka backend.
#[derive(Clone)]
pub struct KafkaOptions {
    /// Bootstrap brokers, `host:port[,host:port...]` (`bootstrap.servers`).
    pub brokers: String,
    /// Prefix of every physical topic name (`switchyard.` in production; must equal
    /// infra/terraform's `topic_prefix`).
    pub topic_prefix: String,
    /// Prefix of every consumer-group id (empty by default: the group id is the [`GroupId`]).
    /// Deployments sharing a cluster, and test runs sharing a broker, set it to keep their
    /// groups apart.
    pub group_prefix: String,
    /// Partitions of the topics this client creates (existing topics keep theirs).
    pub partitions: u32,
    /// Replication factor of the topics this client creates.
    pub replication_factor: u16,
    /// Create missing topics on connect. Off where topics are provisioned (infra/terraform) and
    /// the client may not create them.
    pub create_topics: bool,
    /// `session.timeout.ms` of group members: a member that stops heartbeating is removed
    /// after this long. Kafka's default is 45 s; Tansu holds every join for half of it.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` of group members (at most a third of the session timeout).
    pub heartbeat_interval: Duration,
    /// How long [`EventLog::subscribe`] waits for the member's first partitions before it
    /// returns anyway (a member of a group with more members than partitions gets none).
    pub join_timeout: Duration,
    /// Timeout of one request to the cluster (metadata, offsets, watermarks, commits, reads).
    pub request_timeout: Duration,
    /// Extra librdkafka properties for every client (TLS, SASL, `linger.ms`, ...), applied last.
    pub client_config: BTreeMap<String, String>,
    /// Work around two answers of Tansu 0.6 that differ from Kafka's (the test broker; off for
    /// Kafka, where they cost a fetch each): its high watermark is the base offset of the last
    /// record batch + 1, so the last batch is read to find the real end; its offset for a time
    /// is the first offset of the batch holding the record, so the batch is scanned.
    pub tansu_workarounds: bool,
    /// `min.compaction.lag.ms` of the compacted topics this client creates: the audit horizon
    /// (records younger than this are never compacted away).
    pub compaction_min_lag: Duration,
}

impl std::fmt::Debug for KafkaOptions {
    /// `client_config` may hold credentials (SASL, TLS keys): only its keys are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaOptions")
            .field("brokers", &self.brokers)
            .field("topic_prefix", &self.topic_prefix)
            .field("group_prefix", &self.group_prefix)
            .field("partitions", &self.partitions)
            .field("replication_factor", &self.replication_factor)
            .field("create_topics", &self.create_topics)
            .field("session_timeout", &self.session_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("join_timeout", &self.join_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("client_config_keys", &self.client_config.keys())
            .field("tansu_workarounds", &self.tansu_workarounds)
            .field("compaction_min_lag", &self.compaction_min_lag)
            .finish()
    }
}

impl KafkaOptions {
    /// Returns options with Kafka's defaults for the given bootstrap brokers: topic prefix
    /// `switchyard.`, 12 partitions and replication factor 3 (as infra/terraform provisions),
    /// 45 s sessions with 3 s heartbeats.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaOptions {
            brokers: brokers.into(),
            topic_prefix: "switchyard.".into(),
            group_prefix: String::new(),
            partitions: 12,
            replication_factor: 3,
            create_topics: true,
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            join_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            client_config: BTreeMap::new(),
            tansu_workarounds: false,
            compaction_min_lag: Duration::from_secs(30 * 24 * 3600),
        }
    }

    /// Returns options for a single test broker (Tansu): one replica, 2 s sessions with
    /// 500 ms heartbeats (a join then takes about a second instead of ~23 s), and the given
    /// prefix for both topics and groups, so that runs sharing a broker never meet.
    pub fn for_tests(brokers: impl Into<String>, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        KafkaOptions {
            topic_prefix: prefix.clone(),
            group_prefix: prefix,
            partitions: 4,
            replication_factor: 1,
            session_timeout: Duration::from_secs(2),
            heartbeat_interval: Duration::from_millis(500),
            join_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            tansu_workarounds: true,
            ..KafkaOptions::new(brokers)
        }
    }
}
