//! `[judge]`: the LLM-as-judge processor's settings, and which routes record the prompt and
//! completion text it needs.
//!
//! The judge (`streams/judge`) reads these directly. Ingress reads one consequence of them:
//! [`RouteConfig::text_capture`](crate::RouteConfig::text_capture), resolved here per route at
//! validation, says whether a route's `RequestReceived.prompt_text` and
//! `ResponseCompleted.completion_text` are filled, and how much of them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::routing::{RouteConfig, valid_model_id, valid_route_name};

/// `[judge]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJudge {
    /// Whether the judge runs (and routes may capture text for it).
    pub enabled: bool,
    /// The judge model, `provider/model`.
    pub model: String,
    /// Share of a route's ok/truncated responses judged (0..=1).
    pub sample_rate: f64,
    /// Most spent on judging per org per UTC day of event time, in USD.
    pub daily_cap_usd: f64,
    /// Judge calls per response before a malformed answer is recorded as a failure.
    pub max_attempts: u64,
    /// Which built-in rubric the judge asks with.
    pub rubric_version: String,
    /// What to do when the judge model is of the judged model's family.
    pub self_preference: SelfPreference,
    /// How long (event time) a sampled prompt waits for its response, and the reverse.
    pub pending_ttl_secs: u64,
    /// Most characters of prompt text a capturing route records.
    pub max_prompt_chars: u64,
    /// Most characters of completion text a capturing route records.
    pub max_completion_chars: u64,
    /// `[judge.routes.<name>]`: per-route overrides.
    #[serde(default)]
    pub routes: BTreeMap<String, RawJudgeRoute>,
}

/// `[judge.routes.<name>]` as written: every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJudgeRoute {
    /// Replaces `judge.sample_rate` for the route.
    #[serde(default)]
    pub sample_rate: Option<f64>,
    /// Whether ingress records the route's prompt and completion text; absent = only when every
    /// model of the route is served by a `kind = "demo"` provider.
    #[serde(default)]
    pub capture_text: Option<bool>,
}

/// What the judge does when the judge model belongs to the judged model's family (an LLM
/// judge tends to prefer its own family's answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelfPreference {
    /// Judge anyway. `JudgeScored` carries both `model` and `judge_model`, so a consumer can
    /// discount or drop same-family scores.
    Judge,
    /// Do not judge (counted per org and day).
    Skip,
}

/// `[judge]`, validated.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JudgeConfig {
    /// Whether the judge runs.
    pub enabled: bool,
    /// The judge model, `provider/model`.
    pub model: String,
    /// Share of a route's ok/truncated responses judged, unless the route overrides it.
    pub sample_rate: f64,
    /// Most spent on judging per org per UTC day of event time, in USD (0 = judge nothing).
    pub daily_cap_usd: f64,
    /// Judge calls per response (1..=10) before a malformed answer is recorded as a failure.
    pub max_attempts: u32,
    /// Which built-in rubric the judge asks with (checked by the judge, which owns them).
    pub rubric_version: String,
    /// Same-family judging.
    pub self_preference: SelfPreference,
    /// How long (event time) a sampled prompt waits for its response, and the reverse.
    pub pending_ttl: Duration,
    /// Most characters of prompt text a capturing route records.
    pub max_prompt_chars: usize,
    /// Most characters of completion text a capturing route records.
    pub max_completion_chars: usize,
    /// Per-route overrides, by route name.
    pub routes: BTreeMap<String, JudgeRouteConfig>,
}

/// `[judge.routes.<name>]`, validated.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JudgeRouteConfig {
    /// Replaces `judge.sample_rate` for the route.
    pub sample_rate: Option<f64>,
    /// Whether ingress records the route's texts; `None` = only for demo-only routes.
    pub capture_text: Option<bool>,
}

/// How much text ingress records for a route that captures it (see [`JudgeConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TextCapture {
    /// Most characters of `RequestReceived.prompt_text`.
    pub max_prompt_chars: usize,
    /// Most characters of `ResponseCompleted.completion_text`.
    pub max_completion_chars: usize,
}

impl JudgeConfig {
    /// Returns the share of `route`'s responses the judge samples: 0 when the judge is off.
    pub fn sample_rate(&self, route: &str) -> f64 {
        if !self.enabled {
            return 0.0;
        }
        self.routes
            .get(route)
            .and_then(|r| r.sample_rate)
            .unwrap_or(self.sample_rate)
    }

    /// Returns the largest sample rate of any route (the default's included): a response whose
    /// route is not known yet is kept for the join only when it is sampled at this rate.
    pub fn max_sample_rate(&self) -> f64 {
        if !self.enabled {
            return 0.0;
        }
        self.routes
            .values()
            .filter_map(|r| r.sample_rate)
            .fold(self.sample_rate, f64::max)
    }

    /// Returns what ingress records for `route`: nothing unless the judge is on and samples the
    /// route; then the route's `capture_text`, else capture only when every model of the route
    /// is served by a demo provider (`is_demo_provider`, by provider name), whose traffic is
    /// simulated answers to prompts sent to a local demo.
    pub fn text_capture(
        &self,
        route: &RouteConfig,
        is_demo_provider: &dyn Fn(&str) -> bool,
    ) -> Option<TextCapture> {
        if self.sample_rate(&route.name) <= 0.0 {
            return None;
        }
        let capture = match self.routes.get(&route.name).and_then(|r| r.capture_text) {
            Some(capture) => capture,
            None => std::iter::once(&route.baseline)
                .chain(&route.candidates)
                .all(|model| {
                    model
                        .split_once('/')
                        .is_some_and(|(p, _)| is_demo_provider(p))
                }),
        };
        capture.then_some(TextCapture {
            max_prompt_chars: self.max_prompt_chars,
            max_completion_chars: self.max_completion_chars,
        })
    }
}

impl RawJudge {
    pub(crate) fn validate(self) -> Result<JudgeConfig, ConfigError> {
        if !valid_model_id(&self.model) {
            return Err(ConfigError::invalid(
                "judge.model",
                format!(
                    "model {:?} must be written provider/model, e.g. \"demo/large\"",
                    self.model
                ),
            ));
        }
        let rate = |key: &str, value: f64| {
            if value.is_finite() && (0.0..=1.0).contains(&value) {
                Ok(value)
            } else {
                Err(ConfigError::invalid(
                    key,
                    format!("must be between 0 and 1, got {value}"),
                ))
            }
        };
        let sample_rate = rate("judge.sample_rate", self.sample_rate)?;
        if !(self.daily_cap_usd.is_finite() && self.daily_cap_usd >= 0.0) {
            return Err(ConfigError::invalid(
                "judge.daily_cap_usd",
                format!(
                    "must be a non-negative number of USD, got {}",
                    self.daily_cap_usd
                ),
            ));
        }
        let max_attempts = u32::try_from(self.max_attempts)
            .ok()
            .filter(|n| (1..=10).contains(n))
            .ok_or_else(|| {
                ConfigError::invalid(
                    "judge.max_attempts",
                    format!("must be between 1 and 10, got {}", self.max_attempts),
                )
            })?;
        let version = self.rubric_version.trim();
        if version.is_empty() || version.len() > 64 {
            return Err(ConfigError::invalid(
                "judge.rubric_version",
                "must name a rubric (1 to 64 characters), e.g. \"v1\"",
            ));
        }
        if !(1..=30 * 24 * 3600).contains(&self.pending_ttl_secs) {
            return Err(ConfigError::invalid(
                "judge.pending_ttl_secs",
                format!(
                    "must be between 1 and 2592000 (30 days), got {}",
                    self.pending_ttl_secs
                ),
            ));
        }
        let chars = |key: &str, value: u64| {
            usize::try_from(value)
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| {
                    ConfigError::invalid(key, format!("must be between 1 and 1000000, got {value}"))
                })
        };
        let mut routes = BTreeMap::new();
        for (name, route) in self.routes {
            if !valid_route_name(&name) {
                return Err(ConfigError::invalid(
                    &format!("judge.routes.{name}"),
                    "route names are 1..=128 letters, digits, `-`, `_` and `.`",
                ));
            }
            let sample_rate = match route.sample_rate {
                Some(value) => Some(rate(&format!("judge.routes.{name}.sample_rate"), value)?),
                None => None,
            };
            routes.insert(
                name,
                JudgeRouteConfig {
                    sample_rate,
                    capture_text: route.capture_text,
                },
            );
        }
        Ok(JudgeConfig {
            enabled: self.enabled,
            model: self.model,
            sample_rate,
            daily_cap_usd: self.daily_cap_usd + 0.0,
            max_attempts,
            rubric_version: version.to_owned(),
            self_preference: self.self_preference,
            pending_ttl: Duration::from_secs(self.pending_ttl_secs),
            max_prompt_chars: chars("judge.max_prompt_chars", self.max_prompt_chars)?,
            max_completion_chars: chars("judge.max_completion_chars", self.max_completion_chars)?,
            routes,
        })
    }
}

/// Returns whether the `[providers.<name>]` table `table` is the demo provider (`kind = "demo"`).
pub(crate) fn is_demo_table(table: &figment::value::Value) -> bool {
    table
        .find_ref("kind")
        .and_then(figment::value::Value::as_str)
        == Some("demo")
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::result_large_err,
        reason = "figment::Jail closures must return figment::Result, whose error is large"
    )]

    use figment::Jail;

    use super::*;
    use crate::{EnvVars, load};

    fn route<'a>(config: &'a crate::Config, name: &str) -> &'a RouteConfig {
        config
            .routes
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| unreachable!("route {name}"))
    }

    #[test]
    fn defaults_judge_the_demo_route_with_demo_large() {
        let config = load(&[], EnvVars::none()).unwrap();
        let judge = &config.judge;
        assert!(judge.enabled);
        assert_eq!(judge.model, "demo/large");
        assert_eq!(judge.sample_rate, 0.1);
        assert_eq!(judge.daily_cap_usd, 1.0);
        assert_eq!(judge.max_attempts, 3);
        assert_eq!(judge.rubric_version, "v1");
        assert_eq!(judge.self_preference, SelfPreference::Judge);
        assert_eq!(judge.pending_ttl, Duration::from_secs(3600));
        assert!(judge.routes.is_empty());
        assert_eq!(judge.sample_rate("anything"), 0.1);
        // The default route serves demo models only: it captures, bounded.
        assert_eq!(
            route(&config, "default").text_capture,
            Some(TextCapture {
                max_prompt_chars: 8000,
                max_completion_chars: 8000
            })
        );
    }

    #[test]
    fn real_providers_capture_only_when_opted_in_and_overrides_apply() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "real.toml",
                r#"
[providers.openai]
kind = "openai"
api_key = "sk-test"

[routes.real]
baseline = "openai/gpt-4o"
candidates = ["demo/small"]
mode = "off"

[routes.optin]
baseline = "openai/gpt-4o"
candidates = []
mode = "off"

[judge.routes.optin]
capture_text = true
sample_rate = 0.5

[judge.routes.default]
capture_text = false
"#,
            )?;
            let config = load(&[jail.directory().join("real.toml")], EnvVars::none())
                .map_err(|e| e.to_string())?;
            assert_eq!(route(&config, "real").text_capture, None);
            assert!(route(&config, "optin").text_capture.is_some());
            assert_eq!(route(&config, "default").text_capture, None);
            assert_eq!(config.judge.sample_rate("optin"), 0.5);
            assert_eq!(config.judge.sample_rate("real"), 0.1);
            assert_eq!(config.judge.max_sample_rate(), 0.5);
            Ok(())
        });
    }

    #[test]
    fn disabled_judge_samples_and_captures_nothing() {
        let env = EnvVars::from_vars([("SWITCHYARD__JUDGE__ENABLED", "false")]);
        let config = load(&[], env).unwrap();
        assert_eq!(config.judge.sample_rate("default"), 0.0);
        assert_eq!(config.judge.max_sample_rate(), 0.0);
        assert_eq!(route(&config, "default").text_capture, None);
        let env = EnvVars::from_vars([("SWITCHYARD__JUDGE__SAMPLE_RATE", "0")]);
        let config = load(&[], env).unwrap();
        assert_eq!(route(&config, "default").text_capture, None);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("SWITCHYARD__JUDGE__SAMPLE_RATE", "1.5", "judge.sample_rate"),
            ("SWITCHYARD__JUDGE__MODEL", "large", "judge.model"),
            (
                "SWITCHYARD__JUDGE__DAILY_CAP_USD",
                "-1",
                "judge.daily_cap_usd",
            ),
            ("SWITCHYARD__JUDGE__MAX_ATTEMPTS", "0", "judge.max_attempts"),
            (
                "SWITCHYARD__JUDGE__RUBRIC_VERSION",
                "",
                "judge.rubric_version",
            ),
            (
                "SWITCHYARD__JUDGE__PENDING_TTL_SECS",
                "0",
                "judge.pending_ttl_secs",
            ),
            (
                "SWITCHYARD__JUDGE__MAX_PROMPT_CHARS",
                "0",
                "judge.max_prompt_chars",
            ),
            (
                "SWITCHYARD__JUDGE__ROUTES__DEFAULT__SAMPLE_RATE",
                "2",
                "judge.routes.default.sample_rate",
            ),
            (
                "SWITCHYARD__JUDGE__SELF_PREFERENCE",
                "maybe",
                "judge.self_preference",
            ),
        ];
        for (var, value, key) in cases {
            let err = load(&[], EnvVars::from_vars([(var, value)])).unwrap_err();
            assert!(err.to_string().contains(key), "{var}={value}: {err}");
        }
    }
}
