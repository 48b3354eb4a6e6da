//! What librdkafka says, in our logs at the right level: a broker that cannot be reached is a
//! warning, said once per interval with a count of what was held back, not an ERROR line per
//! reconnect attempt of every client thread (an outage used to flood the log and page people
//! for what the spill is already handling).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// How often a run of connection failures is reported.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// The context of the producer, the readers and the admin client.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Logging;

impl ClientContext for Logging {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_line(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_error(&error, reason);
    }
}

impl ConsumerContext for Logging {}

/// Forwards one librdkafka log line.
pub(crate) fn log_line(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            if is_connection_trouble(message) {
                connection_trouble(fac, message);
            } else {
                tracing::error!(target: "librdkafka", fac, "{message}");
            }
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", fac, "{message}");
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
    }
}

/// Forwards one global librdkafka error.
pub(crate) fn log_error(error: &KafkaError, reason: &str) {
    let transport = matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
        )
    );
    if transport || is_connection_trouble(reason) {
        connection_trouble("ERROR", reason);
    } else {
        tracing::error!(target: "librdkafka", error = %error, "{reason}");
    }
}

/// Whether a message is about reaching a broker (refused, reset, timed out, resolving).
fn is_connection_trouble(message: &str) -> bool {
    const SIGNS: [&str; 7] = [
        "Connection refused",
        "Connect to",
        "Disconnected",
        "brokers are down",
        "Connection reset",
        "timed out",
        "Failed to resolve",
    ];
    SIGNS.iter().any(|s| message.contains(s))
}

/// The run of connection failures being reported: when it was last said, and what was held
/// back since.
static TROUBLE: Mutex<Option<(Instant, u64)>> = Mutex::new(None);

/// Reports a connection failure at most once per [`REPORT_EVERY`] (per process), with the
/// number of similar lines held back since the last report.
fn connection_trouble(fac: &str, message: &str) {
    let Ok(mut trouble) = TROUBLE.lock() else {
        return;
    };
    let now = Instant::now();
    match *trouble {
        Some((said, ref mut held)) if now.duration_since(said) < REPORT_EVERY => *held += 1,
        Some((_, held)) => {
            *trouble = Some((now, 0));
            tracing::warn!(target: "librdkafka", fac, held_back = held, "kafka broker unreachable: {message}");
        }
        None => {
            *trouble = Some((now, 0));
            tracing::warn!(target: "librdkafka", fac, "kafka broker unreachable: {message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_recognised_and_other_errors_are_not() {
        for line in [
            "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after 0ms in state CONNECT)",
            "1/1 brokers are down",
            "kafka:9092/1: Disconnected (after 1204ms in state UP)",
            "kafka:9092/bootstrap: Failed to resolve 'kafka:9092': Name or service not known",
        ] {
            assert!(is_connection_trouble(line), "{line}");
        }
        for line in [
            "Topic switchyard.requests partition count changed from 2 to 4",
            "Producer fenced by newer instance",
        ] {
            assert!(!is_connection_trouble(line), "{line}");
        }
    }

    #[test]
    fn a_run_of_failures_is_said_once_per_interval() {
        for _ in 0..100 {
            connection_trouble("FAIL", "Connection refused");
        }
        let held = TROUBLE.lock().ok().and_then(|t| t.map(|(_, held)| held));
        // The first line of the run was said (this test may share the run with others).
        assert!(held.is_some_and(|h| h >= 99), "{held:?}");
    }
}
