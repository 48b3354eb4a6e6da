//! The adapter for Anthropic's Messages API: OpenAI-shaped requests translated into
//! `POST {base}/v1/messages` (headers `x-api-key` and `anthropic-version: 2023-06-01`), the
//! answers and the event stream translated back. The translation rules are in [`wire`]'s and
//! [`stream`]'s documentation.
//!
//! `max_tokens`, which Anthropic requires, defaults to the model's `max_output` in the catalog
//! (looked up as `<provider name>/<model>`, then `anthropic/<model>`, a dated model such as
//! `claude-sonnet-4-5-20250929` also matching its undated row), else to `default_max_tokens`
//! (4096: what every Claude model can produce).
//!
//! Embeddings: Anthropic serves none (`Unsupported`).
//!
//! ```toml
//! [providers.anthropic]
//! kind = "anthropic"
//! api_key = "sk-ant-..."
//! extra_headers = { "anthropic-beta" = "..." }
//! ```

mod stream;
mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use reqwest::header::HeaderName;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use self::stream::AnthropicTranslator;
use crate::catalog::Catalog;
use crate::native::{Endpoint, EndpointConfig};
use crate::types::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse};
use crate::{
    ChunkStream, Provider, ProviderConfigError, ProviderError, ProviderErrorKind, TimeoutsConfig,
};

/// The documented base URL.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// The API version sent as `anthropic-version` (an `extra_headers` entry overrides it).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The output limit sent when neither the request nor the catalog gives one.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// `[providers.<name>] kind = "anthropic"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicConfig {
    /// The API key, sent as `x-api-key`. Never logged.
    pub api_key: SecretString,
    /// Replaces `https://api.anthropic.com` (a proxy, a test server); `v1/messages` is
    /// appended.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Headers added to every request (`anthropic-beta`, for instance).
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    /// Timeouts; each defaults as documented on [`TimeoutsConfig`].
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// `max_tokens` for models the catalog does not know (default 4096).
    #[serde(default)]
    pub default_max_tokens: Option<u64>,
}

impl AnthropicConfig {
    /// Returns a configuration with the defaults and a key.
    pub fn new(api_key: impl Into<String>) -> Self {
        AnthropicConfig {
            api_key: SecretString::from(api_key.into()),
            base_url: None,
            extra_headers: BTreeMap::new(),
            timeouts: TimeoutsConfig::default(),
            default_max_tokens: None,
        }
    }
}

/// The Anthropic adapter. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct AnthropicProvider {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    catalog: Catalog,
    default_max_tokens: u64,
}

impl fmt::Debug for AnthropicProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicProvider")
            .field("endpoint", &self.inner.endpoint)
            .field("default_max_tokens", &self.inner.default_max_tokens)
            .finish_non_exhaustive()
    }
}

impl AnthropicProvider {
    /// Validates a configuration and builds the provider under `name` (the part before `/` in
    /// model ids), with the shipped catalog for `max_tokens` defaults.
    pub fn new(
        name: impl Into<String>,
        config: &AnthropicConfig,
    ) -> Result<Self, ProviderConfigError> {
        let name = name.into();
        let catalog = Catalog::shipped().map_err(|e| ProviderConfigError::Client {
            provider: name.clone(),
            reason: e.to_string(),
        })?;
        let endpoint = Endpoint::new(EndpointConfig {
            name,
            base_url: config.base_url.as_deref().unwrap_or(ANTHROPIC_BASE_URL),
            auth: (HeaderName::from_static("x-api-key"), "{key}"),
            api_key: config.api_key.expose_secret(),
            fixed: &[(
                HeaderName::from_static("anthropic-version"),
                ANTHROPIC_VERSION,
            )],
            extra_headers: &config.extra_headers,
            timeouts: config.timeouts.into(),
        })?;
        Ok(AnthropicProvider {
            inner: Arc::new(Inner {
                endpoint,
                catalog,
                default_max_tokens: config.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            }),
        })
    }

    /// Returns the provider with `catalog` (operator rows included) as the source of
    /// `max_tokens` defaults.
    #[must_use]
    pub fn with_catalog(self, catalog: Catalog) -> Self {
        let inner = &*self.inner;
        AnthropicProvider {
            inner: Arc::new(Inner {
                endpoint: inner.endpoint.clone(),
                catalog,
                default_max_tokens: inner.default_max_tokens,
            }),
        }
    }

    /// Returns the URL messages are posted to.
    pub fn messages_url(&self) -> reqwest::Url {
        self.inner.endpoint.url(&["v1", "messages"])
    }

    /// Returns the `max_tokens` sent for `model` when the request names none.
    pub fn default_max_tokens(&self, model: &str) -> u64 {
        let inner = &*self.inner;
        let exact = [inner.endpoint.name.as_str(), "anthropic"]
            .iter()
            .find_map(|provider| inner.catalog.get(&format!("{provider}/{model}")));
        // `claude-sonnet-4-5-20250929` is the dated snapshot of `claude-sonnet-4-5`.
        let undated = || {
            inner
                .catalog
                .models()
                .filter(|m| m.provider() == inner.endpoint.name || m.provider() == "anthropic")
                .filter(|m| {
                    model
                        .strip_prefix(m.upstream_name())
                        .is_some_and(|rest| rest.starts_with('-'))
                })
                .max_by_key(|m| m.upstream_name().len())
        };
        exact
            .or_else(undated)
            .map(|m| m.max_output)
            .filter(|max| *max > 0)
            .unwrap_or(inner.default_max_tokens)
    }
}

impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        &self.inner.endpoint.name
    }

    async fn complete(
        &self,
        model: &str,
        req: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        let endpoint = &self.inner.endpoint;
        let translated = wire::messages_body(
            &endpoint.name,
            model,
            req,
            self.default_max_tokens(model),
            false,
        )?;
        let bytes = endpoint.call(self.messages_url(), &translated.body).await?;
        wire::chat_response(&endpoint.name, model, translated.json_tool, &bytes)
    }

    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let endpoint = &self.inner.endpoint;
        let translated = wire::messages_body(
            &endpoint.name,
            model,
            req,
            self.default_max_tokens(model),
            true,
        )?;
        let translator = AnthropicTranslator::new(&endpoint.name, model, translated.json_tool);
        endpoint
            .stream(
                self.messages_url(),
                &translated.body,
                translator,
                wire::in_band_error,
            )
            .await
    }

    async fn embed(
        &self,
        _model: &str,
        _req: &EmbeddingRequest,
    ) -> Result<EmbeddingResponse, ProviderError> {
        let name = &self.inner.endpoint.name;
        Err(ProviderError::new(
            name,
            ProviderErrorKind::Unsupported,
            format!("{name} serves no embeddings"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_tokens_default_comes_from_the_catalog() {
        let catalog = Catalog::parse(
            r#"
[[model]]
id = "anthropic/claude-sonnet-4-5"
source = "test"
as_of = "2025-11-01"
context_window = 200000
max_output = 64000

[[model]]
id = "claude-eu/claude-opus-4-1"
source = "test"
as_of = "2025-11-01"
context_window = 200000
max_output = 32000
"#,
        )
        .unwrap();
        let mut config = AnthropicConfig::new("k");
        config.default_max_tokens = Some(1000);
        let p = AnthropicProvider::new("claude-eu", &config)
            .unwrap()
            .with_catalog(catalog);
        assert_eq!(p.default_max_tokens("claude-sonnet-4-5"), 64000);
        assert_eq!(p.default_max_tokens("claude-sonnet-4-5-20250929"), 64000);
        assert_eq!(p.default_max_tokens("claude-opus-4-1"), 32000);
        assert_eq!(p.default_max_tokens("claude-sonnet-4-50"), 1000);
        assert_eq!(p.default_max_tokens("claude-unknown"), 1000);
        assert_eq!(
            p.messages_url().as_str(),
            "https://api.anthropic.com/v1/messages"
        );
    }
}
