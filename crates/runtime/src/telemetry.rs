//! Process-wide `tracing` setup: text or JSON lines on stderr, filtered by the configured level
//! or by `RUST_LOG` when that is set.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Environment variable that, when set and non-empty, replaces the configured filter.
pub const LOG_FILTER_ENV: &str = "RUST_LOG";

/// Format of log lines on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// Human-readable lines (colours when stderr is a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The filter (configured level or `RUST_LOG`) does not parse.
    #[error("invalid log filter {filter:?} (from {origin})")]
    InvalidFilter {
        /// The filter text.
        filter: String,
        /// `RUST_LOG` or `telemetry.log_level`.
        origin: &'static str,
        /// The parser's complaint.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber is already installed (`init_tracing` was called before, or another
    /// library installed one).
    #[error("tracing is already initialised")]
    AlreadyInitialized(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Directives applied before the configured ones: dependencies that are chatty at `info`.
const QUIET_DEPENDENCIES: &str = "fjall=warn,lsm_tree=warn";

/// Installs the global `tracing` subscriber, writing to stderr.
///
/// `level` is the configured filter (`info`, or directives such as `info,switchyard_log=debug`);
/// a non-empty `RUST_LOG` replaces it. Returns an error instead of panicking when called twice.
pub fn init_tracing(format: LogFormat, level: &str) -> Result<(), TelemetryError> {
    let filter = build_filter(level, std::env::var(LOG_FILTER_ENV).ok())?;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    installed.map_err(TelemetryError::AlreadyInitialized)
}

/// Returns the filter: `rust_log` when set and non-empty, else `level`.
fn build_filter(level: &str, rust_log: Option<String>) -> Result<EnvFilter, TelemetryError> {
    let (filter, origin) = match rust_log {
        Some(value) if !value.trim().is_empty() => (value, LOG_FILTER_ENV),
        _ => (level.to_owned(), "telemetry.log_level"),
    };
    // The storage engine reports routine maintenance at info; keep it at warn unless asked.
    let filter = format!("{QUIET_DEPENDENCIES},{filter}");
    EnvFilter::builder()
        .parse(&filter)
        .map_err(|source| TelemetryError::InvalidFilter {
            filter,
            origin,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_replaces_the_configured_level_unless_empty() {
        let filter = build_filter("info", Some("warn,switchyard_log=trace".into())).unwrap();
        let rendered = filter.to_string();
        assert!(
            rendered.contains("switchyard_log=trace") && rendered.contains("warn"),
            "{rendered}"
        );
        assert!(!rendered.contains("info"), "{rendered}");
        for rust_log in [Some("  ".to_owned()), None] {
            let rendered = build_filter("debug", rust_log).unwrap().to_string();
            assert!(rendered.contains("debug"), "{rendered}");
            assert!(
                rendered.contains("fjall=warn") && rendered.contains("lsm_tree=warn"),
                "{rendered}"
            );
        }
    }

    #[test]
    fn an_invalid_filter_names_where_it_came_from() {
        let error = build_filter("info", Some("switchyard=loud".into())).unwrap_err();
        assert!(error.to_string().contains("from RUST_LOG"), "{error}");
        let error = build_filter("switchyard=loud", None).unwrap_err();
        assert!(
            error.to_string().contains("from telemetry.log_level"),
            "{error}"
        );
    }

    // The only test in this binary that installs the global subscriber.
    #[test]
    fn second_init_is_an_error_not_a_panic() {
        init_tracing(LogFormat::Json, "info").unwrap();
        let error = init_tracing(LogFormat::Text, "info").unwrap_err();
        assert!(matches!(error, TelemetryError::AlreadyInitialized(_)));
        tracing::info!("telemetry test: subscriber installed once");
    }
}
