//! The adapter for the OpenAI-compatible family: one implementation, fifteen providers (see
//! [`ProviderKind`]), each with its base URL, authentication and quirks taken from the
//! [quirks table](quirks).
//!
//! - `complete`: `POST {base}/chat/completions`, the model replaced by the upstream name,
//!   `stream` off.
//! - `stream`: the same with `stream: true` and, where the provider accepts it,
//!   `stream_options.include_usage: true` always (the gateway strips the usage chunk when the
//!   client did not ask). `stream` returns once the first event has arrived, so that a failure
//!   before the first token (an HTTP error, an error event, a timeout) is an `Err` of `stream`
//!   itself and the router can still fail over; later failures are `Err` items.
//! - `embed`: `POST {base}/embeddings` with `encoding_format: float`.
//!
//! Azure OpenAI differs in URL and authentication only:
//! `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...` with an
//! `api-key` header; the model name is the deployment unless `deployments` maps it.

mod quirks;
mod stream;
mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use futures::StreamExt;
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

pub use self::quirks::{Auth, MaxTokensField, ProviderKind, Quirks, StreamUsage};
use self::stream::ChunkReader;
use crate::http::{
    ERROR_BODY_LIMIT, Timeouts, build_client, status_error, transport_error, truncate,
};
use crate::types::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse};
use crate::{ChunkStream, Provider, ProviderConfigError, ProviderError, ProviderErrorKind};

/// The Azure API version used when the configuration names none: the GA version with
/// `stream_options` and `max_completion_tokens`.
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// Azure OpenAI's addressing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureOptions {
    /// The `api-version` query parameter.
    pub api_version: String,
    /// Model name → deployment name, for deployments not named after their model.
    pub deployments: BTreeMap<String, String>,
}

impl Default for AzureOptions {
    fn default() -> Self {
        AzureOptions {
            api_version: AZURE_DEFAULT_API_VERSION.into(),
            deployments: BTreeMap::new(),
        }
    }
}

/// What an [`OpenAiCompatProvider`] is built from (validated by
/// [`OpenAiCompatProvider::new`]; `ProviderConfig` is the serde form).
#[derive(Debug, Clone)]
pub struct OpenAiCompatConfig {
    /// Which provider.
    pub kind: ProviderKind,
    /// The provider's name in model ids (`<name>/<model>`); the kind's name when `None`.
    pub name: Option<String>,
    /// The base URL; the provider's documented one when `None`. Azure: the resource endpoint
    /// (`https://<resource>.openai.azure.com`), required.
    pub base_url: Option<String>,
    /// The API key (sent as the provider's auth header, never logged).
    pub api_key: SecretString,
    /// Headers added to every request.
    pub extra_headers: BTreeMap<String, String>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Azure addressing (ignored for other kinds).
    pub azure: AzureOptions,
}

impl OpenAiCompatConfig {
    /// Returns a configuration with the provider's defaults and a key.
    pub fn new(kind: ProviderKind, api_key: impl Into<String>) -> Self {
        OpenAiCompatConfig {
            kind,
            name: None,
            base_url: None,
            api_key: SecretString::from(api_key.into()),
            extra_headers: BTreeMap::new(),
            timeouts: Timeouts::default(),
            azure: AzureOptions::default(),
        }
    }
}

/// A provider of the OpenAI-compatible family. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct OpenAiCompatProvider {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    kind: ProviderKind,
    quirks: &'static Quirks,
    base_url: Url,
    azure: AzureOptions,
    /// Authentication and extra headers, values marked sensitive.
    headers: HeaderMap,
    timeouts: Timeouts,
    client: reqwest::Client,
}

impl fmt::Debug for OpenAiCompatProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header names only: values hold the key.
        f.debug_struct("OpenAiCompatProvider")
            .field("name", &self.inner.name)
            .field("kind", &self.inner.kind)
            .field("base_url", &self.inner.base_url.as_str())
            .field("headers", &self.inner.headers.keys().collect::<Vec<_>>())
            .field("timeouts", &self.inner.timeouts)
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatProvider {
    /// Validates a configuration and builds the provider (its HTTP client included).
    pub fn new(config: OpenAiCompatConfig) -> Result<Self, ProviderConfigError> {
        let quirks = config.kind.quirks();
        let name = config.name.unwrap_or_else(|| quirks.name.to_owned());
        let base = match (config.base_url.as_deref(), config.kind) {
            (Some(url), _) => url,
            (None, ProviderKind::Azure) => {
                return Err(ProviderConfigError::Missing {
                    provider: name,
                    field: "endpoint",
                });
            }
            (None, _) => quirks.default_base_url,
        };
        let base_url = Url::parse(base.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| ProviderConfigError::InvalidUrl {
                provider: name.clone(),
                url: base.to_owned(),
            })?;
        let key = config.api_key.expose_secret().trim();
        if key.is_empty() {
            return Err(ProviderConfigError::Missing {
                provider: name,
                field: "api_key",
            });
        }

        let mut headers = HeaderMap::new();
        let invalid_header = |header: &str| ProviderConfigError::InvalidHeader {
            provider: name.clone(),
            header: header.to_owned(),
        };
        for (header, value) in &config.extra_headers {
            let header_name =
                HeaderName::from_bytes(header.as_bytes()).map_err(|_| invalid_header(header))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| invalid_header(header))?;
            value.set_sensitive(true);
            headers.insert(header_name, value);
        }
        let (auth_name, auth_value) = match quirks.auth {
            Auth::Bearer => (AUTHORIZATION, format!("Bearer {key}")),
            Auth::ApiKeyHeader => (HeaderName::from_static("api-key"), key.to_owned()),
        };
        let mut auth_value =
            HeaderValue::from_str(&auth_value).map_err(|_| invalid_header("api_key"))?;
        auth_value.set_sensitive(true);
        headers.insert(auth_name, auth_value);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));

        let client =
            build_client(&config.timeouts).map_err(|reason| ProviderConfigError::Client {
                provider: name.clone(),
                reason,
            })?;
        Ok(OpenAiCompatProvider {
            inner: Arc::new(Inner {
                name,
                kind: config.kind,
                quirks,
                base_url,
                azure: config.azure,
                headers,
                timeouts: config.timeouts,
                client,
            }),
        })
    }

    /// Returns which provider this is.
    pub fn kind(&self) -> ProviderKind {
        self.inner.kind
    }

    /// Returns the URL chat completions for `model` are posted to.
    pub fn chat_url(&self, model: &str) -> Url {
        self.url(model, &["chat", "completions"])
    }

    /// Returns the URL embeddings for `model` are posted to.
    pub fn embeddings_url(&self, model: &str) -> Url {
        self.url(model, &["embeddings"])
    }

    fn url(&self, model: &str, endpoint: &[&str]) -> Url {
        let inner = &*self.inner;
        let mut url = inner.base_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            if inner.kind == ProviderKind::Azure {
                let deployment = inner
                    .azure
                    .deployments
                    .get(model)
                    .map_or(model, String::as_str);
                segments.extend(["openai", "deployments", deployment]);
            }
            segments.extend(endpoint);
        }
        if inner.kind == ProviderKind::Azure {
            url.query_pairs_mut()
                .append_pair("api-version", &inner.azure.api_version);
        }
        url
    }

    fn post(&self, url: Url, body: &serde_json::Value) -> reqwest::RequestBuilder {
        let body = serde_json::to_vec(body).unwrap_or_default();
        self.inner
            .client
            .post(url)
            .headers(self.inner.headers.clone())
            .body(body)
    }

    fn transport(&self, err: &reqwest::Error) -> ProviderError {
        transport_error(&self.inner.name, err)
    }

    /// Sends a non-streaming request and returns the body of a successful answer.
    async fn call(
        &self,
        url: Url,
        body: &serde_json::Value,
    ) -> Result<bytes::Bytes, ProviderError> {
        let response = self
            .post(url, body)
            .timeout(self.inner.timeouts.request)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        if !status.is_success() {
            let body = &bytes[..bytes.len().min(ERROR_BODY_LIMIT)];
            return Err(status_error(&self.inner.name, status, &headers, body));
        }
        Ok(bytes)
    }
}

/// Reads at most `limit` bytes of an error body, before `deadline`.
async fn error_body(response: reqwest::Response, deadline: Instant) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while body.len() < ERROR_BODY_LIMIT {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(bytes))) => body.extend_from_slice(&bytes),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    body
}

impl Provider for OpenAiCompatProvider {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn complete(
        &self,
        model: &str,
        req: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        let inner = &*self.inner;
        let body = wire::chat_body(inner.quirks, &inner.name, model, req, false)?;
        let bytes = self.call(self.chat_url(model), &body).await?;
        wire::chat_response(inner.quirks, &inner.name, model, &bytes)
    }

    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let inner = &*self.inner;
        let body = wire::chat_body(inner.quirks, &inner.name, model, req, true)?;
        let deadline = Instant::now() + inner.timeouts.first_byte;
        let request = self
            .post(self.chat_url(model), &body)
            .header(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(self.transport(&e)),
            Err(_) => {
                return Err(ProviderError::new(
                    &inner.name,
                    ProviderErrorKind::Timeout,
                    format!(
                        "no response within {} ms",
                        inner.timeouts.first_byte.as_millis()
                    ),
                ));
            }
        };
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            let body = error_body(response, deadline).await;
            return Err(status_error(&inner.name, status, &headers, &body));
        }
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            // A JSON answer to a streaming request is an error in disguise, or a provider that
            // ignored `stream`: neither is a stream.
            let body = error_body(response, deadline).await;
            return Err(match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) if v.get("error").is_some_and(|e| !e.is_null()) => {
                    wire::in_band_error(&inner.name, &v)
                }
                _ => ProviderError::new(
                    &inner.name,
                    ProviderErrorKind::InvalidResponse,
                    format!(
                        "expected an event stream, got JSON: {}",
                        truncate(&String::from_utf8_lossy(&body), 300)
                    ),
                ),
            });
        }

        let mut reader = ChunkReader::new(
            inner.name.clone(),
            model.to_owned(),
            inner.quirks,
            Box::pin(response.bytes_stream()),
            deadline,
            inner.timeouts.first_byte,
            inner.timeouts.idle,
        );
        let first = match reader.next_item().await {
            None => return Ok(Box::pin(futures::stream::empty())),
            Some(Err(e)) => return Err(e),
            Some(Ok(chunk)) => chunk,
        };
        let rest = futures::stream::unfold(reader, |mut reader| async move {
            reader.next_item().await.map(|item| (item, reader))
        });
        Ok(Box::pin(
            futures::stream::once(async move { Ok(first) }).chain(rest),
        ))
    }

    async fn embed(
        &self,
        model: &str,
        req: &EmbeddingRequest,
    ) -> Result<EmbeddingResponse, ProviderError> {
        let inner = &*self.inner;
        if !inner.quirks.embeddings {
            return Err(ProviderError::new(
                &inner.name,
                ProviderErrorKind::Unsupported,
                format!("{} serves no embeddings", inner.name),
            ));
        }
        let body = wire::embeddings_body(model, req);
        let bytes = self.call(self.embeddings_url(model), &body).await?;
        wire::embeddings_response(&inner.name, model, &bytes)
    }
}
