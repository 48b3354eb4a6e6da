//! The adapter for Cohere's v2 API: OpenAI-shaped chat requests translated into
//! `POST {base}/v2/chat`, embeddings into `POST {base}/v2/embed` (`embedding_types: ["float"]`),
//! both with `Authorization: Bearer <key>`, the answers and the event stream translated back.
//! The translation rules are in [`wire`]'s and [`stream`]'s documentation.
//!
//! Cohere's embed models want an `input_type` (`search_document`, `search_query`,
//! `classification`, `clustering`), which OpenAI's request has no field for: a client may send
//! `input_type` itself, else the configured `embedding_input_type` applies (default
//! `search_document`, the right choice for indexing, which is what most embedding calls do).
//!
//! ```toml
//! [providers.cohere]
//! kind = "cohere"
//! api_key = "..."
//! ```

mod stream;
mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use reqwest::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use self::stream::CohereTranslator;
use crate::native::{Endpoint, EndpointConfig};
use crate::types::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse};
use crate::{ChunkStream, Provider, ProviderConfigError, ProviderError, TimeoutsConfig};

/// The documented base URL.
pub const COHERE_BASE_URL: &str = "https://api.cohere.com";
/// The embed `input_type` used when neither the request nor the configuration names one.
pub const DEFAULT_EMBEDDING_INPUT_TYPE: &str = "search_document";

/// `[providers.<name>] kind = "cohere"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohereConfig {
    /// The API key, sent as `Authorization: Bearer <key>`. Never logged.
    pub api_key: SecretString,
    /// Replaces `https://api.cohere.com` (a private deployment, a proxy, a test server);
    /// `v2/chat` and `v2/embed` are appended.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Headers added to every request (`X-Client-Name`, for instance).
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    /// Timeouts; each defaults as documented on [`TimeoutsConfig`].
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// The embed `input_type` when the request names none (default `search_document`).
    #[serde(default)]
    pub embedding_input_type: Option<String>,
}

impl CohereConfig {
    /// Returns a configuration with the defaults and a key.
    pub fn new(api_key: impl Into<String>) -> Self {
        CohereConfig {
            api_key: SecretString::from(api_key.into()),
            base_url: None,
            extra_headers: BTreeMap::new(),
            timeouts: TimeoutsConfig::default(),
            embedding_input_type: None,
        }
    }
}

/// The Cohere adapter. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct CohereProvider {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    embedding_input_type: String,
}

impl fmt::Debug for CohereProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CohereProvider")
            .field("endpoint", &self.inner.endpoint)
            .field("embedding_input_type", &self.inner.embedding_input_type)
            .finish()
    }
}

impl CohereProvider {
    /// Validates a configuration and builds the provider under `name` (the part before `/` in
    /// model ids).
    pub fn new(
        name: impl Into<String>,
        config: &CohereConfig,
    ) -> Result<Self, ProviderConfigError> {
        let endpoint = Endpoint::new(EndpointConfig {
            name: name.into(),
            base_url: config.base_url.as_deref().unwrap_or(COHERE_BASE_URL),
            auth: (AUTHORIZATION, "Bearer {key}"),
            api_key: config.api_key.expose_secret(),
            fixed: &[],
            extra_headers: &config.extra_headers,
            timeouts: config.timeouts.into(),
        })?;
        Ok(CohereProvider {
            inner: Arc::new(Inner {
                endpoint,
                embedding_input_type: config
                    .embedding_input_type
                    .clone()
                    .unwrap_or_else(|| DEFAULT_EMBEDDING_INPUT_TYPE.into()),
            }),
        })
    }

    /// Returns the URL chats are posted to.
    pub fn chat_url(&self) -> reqwest::Url {
        self.inner.endpoint.url(&["v2", "chat"])
    }

    /// Returns the URL embeddings are posted to.
    pub fn embed_url(&self) -> reqwest::Url {
        self.inner.endpoint.url(&["v2", "embed"])
    }
}

impl Provider for CohereProvider {
    fn name(&self) -> &str {
        &self.inner.endpoint.name
    }

    async fn complete(
        &self,
        model: &str,
        req: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        let endpoint = &self.inner.endpoint;
        let body = wire::chat_body(&endpoint.name, model, req, false)?;
        let bytes = endpoint.call(self.chat_url(), &body).await?;
        wire::chat_response(&endpoint.name, model, &bytes)
    }

    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let endpoint = &self.inner.endpoint;
        let body = wire::chat_body(&endpoint.name, model, req, true)?;
        let translator = CohereTranslator::new(&endpoint.name, model);
        endpoint
            .stream(self.chat_url(), &body, translator, wire::in_band_error)
            .await
    }

    async fn embed(
        &self,
        model: &str,
        req: &EmbeddingRequest,
    ) -> Result<EmbeddingResponse, ProviderError> {
        let inner = &*self.inner;
        let body = wire::embed_body(
            &inner.endpoint.name,
            model,
            req,
            &inner.embedding_input_type,
        )?;
        let bytes = inner.endpoint.call(self.embed_url(), &body).await?;
        wire::embed_response(&inner.endpoint.name, model, &bytes)
    }
}
