//! The event-log contract suite against the Kafka backend, on the broker named by
//! `SWITCHYARD_TEST_KAFKA_BOOTSTRAP` (`make test` and `make test-kafka` start a Tansu broker
//! with scripts/with-tansu.sh and set it). Without it every test here fails: a backend that was
//! not tested must not look green.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use anyhow::Context;
use switchyard_log::kafka::{KafkaLog, KafkaOptions};
use switchyard_log::{EventLog, LogError, Record, Topic};
use switchyard_testkit::LogHarness;

const BOOTSTRAP_ENV: &str = "SWITCHYARD_TEST_KAFKA_BOOTSTRAP";

/// One isolated namespace on the broker: a random prefix for topics and groups, the same for
/// every `open` of this harness (so reopening sees the same data).
pub(crate) struct KafkaHarness {
    options: anyhow::Result<KafkaOptions>,
}

impl KafkaHarness {
    pub(crate) fn new() -> Self {
        let options = std::env::var(BOOTSTRAP_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .with_context(|| {
                format!(
                    "{BOOTSTRAP_ENV} is not set: the Kafka contract suite needs a broker \
                     (run `make test-kafka`, or scripts/with-tansu.sh cargo nextest run ...)"
                )
            })
            .map(|brokers| KafkaOptions::for_tests(brokers, random_prefix()));
        KafkaHarness { options }
    }
}

/// `t<random>.`: random per harness (tests run in parallel processes and runs may share a
/// broker), never a fixed name.
fn random_prefix() -> String {
    let mut h = RandomState::new().build_hasher();
    // RandomState's keys come from the OS's randomness (and differ for every RandomState).
    h.write_u32(std::process::id());
    format!("t{:016x}.", h.finish())
}

impl LogHarness for KafkaHarness {
    type Log = KafkaLog;
    async fn open(&self) -> anyhow::Result<KafkaLog> {
        let options = match &self.options {
            Ok(options) => options.clone(),
            Err(e) => anyhow::bail!("{e:#}"),
        };
        let brokers = options.brokers.clone();
        KafkaLog::connect(options)
            .await
            .with_context(|| format!("connecting to the Kafka broker at {brokers}"))
    }
}

mod contract {
    use super::KafkaHarness;
    switchyard_testkit::log_contract_tests!(KafkaHarness::new());
}

/// Topics get the harness's prefix, and a second client over the same prefix finds them
/// (creating existing topics is not an error) with the same partition counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_prefixed_and_connect_is_idempotent() -> anyhow::Result<()> {
    let harness = KafkaHarness::new();
    let first = harness.open().await?;
    let second = harness.open().await?;
    for topic in Topic::ALL {
        anyhow::ensure!(first.topic_name(topic).ends_with(topic.name()));
        anyhow::ensure!(first.topic_name(topic) != topic.name(), "prefixed");
        anyhow::ensure!(
            first.partitions(topic) == 4,
            "{topic}: {}",
            first.partitions(topic)
        );
        anyhow::ensure!(second.partitions(topic) == first.partitions(topic));
    }
    let pos = first
        .append(Topic::Requests, vec![Record::new("k", "v")])
        .await?;
    let back = second
        .read(Topic::Requests, pos[0].partition, pos[0].offset, 1)
        .await?;
    anyhow::ensure!(back.len() == 1 && back[0].value == b"v");
    first.close().await?;
    match first
        .append(Topic::Requests, vec![Record::new("k", "v")])
        .await
    {
        Err(LogError::Closed) => {}
        other => anyhow::bail!("append after close: expected Closed, got {other:?}"),
    }
    second.close().await?;
    Ok(())
}
