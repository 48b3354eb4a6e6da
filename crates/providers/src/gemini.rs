//! The Google Gemini API adapter (`generativelanguage.googleapis.com`), a translating adapter:
//! OpenAI chat requests become `GenerateContentRequest`s and the answers come back as OpenAI
//! completions and chunks ([`wire`] and `stream` hold the translation, shared with
//! [`crate::vertex`]).
//!
//! - `complete`: `POST {base}/v1beta/models/{model}:generateContent`;
//! - `stream`: `POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse`;
//! - `embed`: `POST {base}/v1beta/models/{model}:batchEmbedContents`;
//!
//! authenticated by the `x-goog-api-key` header (never the `?key=` query parameter, which
//! would put the key in URLs and their logs).

mod stream;
pub(crate) mod wire;

use std::fmt;
use std::sync::Arc;

use reqwest::Url;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::http::Timeouts;
use crate::translated;
use crate::types::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse};
use crate::{ChunkStream, Provider, ProviderConfigError, ProviderError, TimeoutsConfig};

/// The Gemini API's documented base URL.
pub const GEMINI_DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// `[providers.<name>] kind = "gemini"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeminiConfig {
    /// The API key, sent as `x-goog-api-key`. Never logged.
    pub api_key: SecretString,
    /// Replaces `https://generativelanguage.googleapis.com` (a proxy, a test server).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Timeouts; each defaults as documented on [`TimeoutsConfig`].
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
}

/// The Gemini API. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct GeminiProvider {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    base_url: Url,
    api_key: HeaderValue,
    timeouts: Timeouts,
    client: reqwest::Client,
}

impl fmt::Debug for GeminiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeminiProvider")
            .field("name", &self.inner.name)
            .field("base_url", &self.inner.base_url.as_str())
            .field("timeouts", &self.inner.timeouts)
            .finish_non_exhaustive()
    }
}

impl GeminiProvider {
    /// Validates a configuration and builds the provider under `name`.
    pub fn new(name: &str, config: &GeminiConfig) -> Result<Self, ProviderConfigError> {
        let base_url = translated::base_url(
            name,
            config
                .base_url
                .as_deref()
                .unwrap_or(GEMINI_DEFAULT_BASE_URL),
        )?;
        let key = config.api_key.expose_secret().trim();
        if key.is_empty() {
            return Err(ProviderConfigError::Missing {
                provider: name.into(),
                field: "api_key",
            });
        }
        let mut api_key =
            HeaderValue::from_str(key).map_err(|_| ProviderConfigError::InvalidHeader {
                provider: name.into(),
                header: "api_key".into(),
            })?;
        api_key.set_sensitive(true);
        let timeouts: Timeouts = config.timeouts.into();
        Ok(GeminiProvider {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                client: translated::client(name, &timeouts)?,
                base_url,
                api_key,
                timeouts,
            }),
        })
    }

    /// Returns the URL a chat with `model` is posted to.
    pub fn generate_url(&self, model: &str, stream: bool) -> Url {
        let method = if stream {
            "streamGenerateContent"
        } else {
            "generateContent"
        };
        let mut url = translated::join(
            &self.inner.base_url,
            &["v1beta", "models", &format!("{model}:{method}")],
        );
        if stream {
            url.query_pairs_mut().append_pair("alt", "sse");
        }
        url
    }

    fn post(&self, url: Url, body: &serde_json::Value) -> reqwest::RequestBuilder {
        google_post(
            &self.inner.client,
            url,
            (
                HeaderName::from_static("x-goog-api-key"),
                self.inner.api_key.clone(),
            ),
            body,
        )
    }
}

/// Returns a POST of a JSON body with an authentication header.
pub(crate) fn google_post(
    client: &reqwest::Client,
    url: Url,
    auth: (HeaderName, HeaderValue),
    body: &serde_json::Value,
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header(auth.0, auth.1)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(serde_json::to_vec(body).unwrap_or_default())
}

/// `complete` for the Gemini wire format (the Gemini API and Vertex AI).
pub(crate) async fn google_complete(
    provider: &str,
    timeouts: &Timeouts,
    request: reqwest::RequestBuilder,
    upstream_model: &str,
) -> Result<ChatResponse, ProviderError> {
    let bytes = translated::call(provider, request, timeouts, wire::google_error).await?;
    wire::chat_response(provider, upstream_model, &bytes)
}

/// `stream` for the Gemini wire format (the Gemini API and Vertex AI).
pub(crate) async fn google_stream(
    provider: &str,
    timeouts: &Timeouts,
    request: reqwest::RequestBuilder,
    upstream_model: &str,
) -> Result<ChunkStream, ProviderError> {
    let request = request.header(ACCEPT, HeaderValue::from_static("text/event-stream"));
    translated::stream(
        provider,
        request,
        timeouts,
        "text/event-stream",
        wire::google_error,
        stream::GeminiDecoder::new(provider, upstream_model),
    )
    .await
}

impl Provider for GeminiProvider {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn complete(
        &self,
        model: &str,
        req: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        let inner = &*self.inner;
        let body = wire::request_body(&inner.name, req)?;
        let request = self.post(self.generate_url(model, false), &body);
        google_complete(&inner.name, &inner.timeouts, request, model).await
    }

    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let inner = &*self.inner;
        let body = wire::request_body(&inner.name, req)?;
        let request = self.post(self.generate_url(model, true), &body);
        google_stream(&inner.name, &inner.timeouts, request, model).await
    }

    async fn embed(
        &self,
        model: &str,
        req: &EmbeddingRequest,
    ) -> Result<EmbeddingResponse, ProviderError> {
        let inner = &*self.inner;
        let body = wire::embeddings_body(&inner.name, model, req)?;
        let expected = body["requests"].as_array().map_or(0, Vec::len);
        let url = translated::join(
            &inner.base_url,
            &["v1beta", "models", &format!("{model}:batchEmbedContents")],
        );
        let bytes = translated::call(
            &inner.name,
            self.post(url, &body),
            &inner.timeouts,
            wire::google_error,
        )
        .await?;
        wire::embeddings_response(&inner.name, model, expected, &bytes)
    }
}
