//! switchyard-config: loads, checks and types Switchyard's configuration.
//!
//! Every role gets its settings from here: `services/gateway` calls [`load_with`] once at
//! startup and passes the resulting [`Config`] (or the section a role needs) down explicitly.
//! There is no global configuration.
//!
//! # Layers
//!
//! Later layers override earlier ones, key by key:
//!
//! 1. the compiled-in [`DEFAULT_TOML`] (`crates/config/default.toml`), which sets every key and
//!    documents it; it is the single-node configuration;
//! 2. each `--config FILE`, in the order given;
//! 3. environment variables `SWITCHYARD__SECTION__KEY` ([`EnvVars`]; `__` separates levels);
//! 4. command-line flags that stand for a key ([`Overrides`]: `--data-dir`).
//!
//! # Two phases
//!
//! figment merges the layers into a [`RawConfig`] whose structs deny unknown fields, so a typo in
//! a file or a variable is an error naming the key. [`RawConfig::validate`] then turns the raw
//! strings and numbers into typed values (`SocketAddr`, `Duration`, [`LogBackend`],
//! [`StoreBackend`], ...), checking ranges. Backends are
//! picked by URL scheme; whether a backend's cargo feature (`kafka`, `scylla`) is compiled in is
//! checked by the crate that builds it (`switchyard-log`, `switchyard-store`), not here.
//!
//! Every error is a [`ConfigError`] that renders as one line naming the key, the problem and the
//! layer the value came from (file path or variable name).
//!
//! # Adding a section
//!
//! Add the commented section to `default.toml`, a `Raw*` struct (with
//! `#[serde(deny_unknown_fields)]`, no serde defaults) and a field on [`RawConfig`], the typed
//! struct and its checks in `validate.rs`, and a field on [`Config`].

mod env;
mod error;
mod judge;
mod orgs;
mod raw;
mod routing;
mod sink;
mod validate;
mod webhooks;

use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Format, Toml};

pub use env::{ENV_PREFIX, ENV_SEPARATOR, EnvVars};
pub use error::{ConfigError, Origin};
pub use judge::{
    JudgeConfig, JudgeRouteConfig, RawJudge, RawJudgeRoute, SelfPreference, TextCapture,
};
pub use orgs::{LearningPoolConfig, OrgConfig, PoolMembership, RawLearningPool, RawOrg};
pub use raw::{
    FsyncMode, LogFormat, RawAuth, RawConfig, RawConstraints, RawFeedback, RawGateway, RawKafka,
    RawLearning, RawLog, RawRoute, RawRouting, RawSchemaRegistry, RawScoreWeights, RawServer,
    RawStore, RawTelemetry, RouteMode,
};
pub use routing::{
    ConstraintsConfig, DEFAULT_CATEGORY, LearningConfig, RouteConfig, RouteRule, RoutingConfig,
    SUPPORTED_LANGUAGES, ScoreWeightsConfig, SigningKeyFile, valid_category, valid_model_id,
    valid_route_name,
};
pub use sink::{RawSink, SinkConfig, SinkTarget, default_export_dir};
pub use validate::{
    AuthConfig, Config, FeedbackConfig, GatewayConfig, GroupCommitConfig, KafkaConfig, LogBackend,
    LogConfig, PlatformDirs, SchemaRegistryConfig, ServerConfig, StoreBackend, StoreConfig,
    TelemetryConfig, resolve_data_dir,
};
pub use webhooks::{RawWebhookTarget, RawWebhooks, WebhookTarget, WebhooksConfig};

/// The compiled-in defaults: the complete, commented single-node configuration.
pub const DEFAULT_TOML: &str = include_str!("../default.toml");

/// Command-line flags that override a configuration key (the last layer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overrides {
    /// `--data-dir`: overrides `data_dir`.
    pub data_dir: Option<PathBuf>,
}

impl Overrides {
    /// Returns overrides with `--data-dir` set.
    pub fn with_data_dir(mut self, data_dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(data_dir.into());
        self
    }
}

/// Loads the configuration: compiled-in defaults, then `files` in order, then `env`.
///
/// A file that does not exist is an error (a mistyped `--config` path must not silently fall
/// back to the defaults).
pub fn load(files: &[PathBuf], env: EnvVars) -> Result<Config, ConfigError> {
    load_with(files, env, &Overrides::default())
}

/// Loads the configuration like [`load`], then applies command-line `overrides`, then
/// validates.
pub fn load_with(
    files: &[PathBuf],
    env: EnvVars,
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let figment = layers(files, env);
    let mut raw = extract(&figment)?;
    if let Some(data_dir) = &overrides.data_dir {
        raw.data_dir = Some(data_dir.clone());
    }
    raw.validate().map_err(|error| match error {
        ConfigError::InvalidValue {
            key,
            problem,
            origin: None,
        } if key == "data_dir" && overrides.data_dir.is_some() => ConfigError::InvalidValue {
            key,
            problem,
            origin: Some(Origin::Flag("--data-dir")),
        },
        error => error.with_origin_from(&figment),
    })
}

impl Config {
    /// Returns the compiled-in defaults with `data_dir` set, ignoring files and the process
    /// environment: the single-node configuration rooted in `data_dir` (for tests, a temp dir).
    /// Fields are public, so a test adjusts what it needs afterwards.
    pub fn defaults_in(data_dir: impl Into<PathBuf>) -> Result<Config, ConfigError> {
        load_with(
            &[],
            EnvVars::none(),
            &Overrides::default().with_data_dir(data_dir),
        )
    }
}

/// Merges the layers without validating: the raw configuration, e.g. for a `config show`
/// command. Errors are the same as [`load`]'s.
pub fn load_raw(files: &[PathBuf], env: EnvVars) -> Result<RawConfig, ConfigError> {
    extract(&layers(files, env))
}

// Precedence, lowest first: compiled-in default.toml → each --config file in order →
// SWITCHYARD__SECTION__KEY environment variables → command-line overrides (applied by
// `load_with` after extraction).
fn layers(files: &[PathBuf], env: EnvVars) -> Figment {
    let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
    for file in files {
        figment = figment.merge(Toml::file_exact(file));
    }
    figment.merge(env)
}

fn extract(figment: &Figment) -> Result<RawConfig, ConfigError> {
    figment
        .extract::<RawConfig>()
        .map_err(|error| ConfigError::from_figment(error, figment))
}

#[cfg(test)]
mod tests;
