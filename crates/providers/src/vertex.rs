//! The Vertex AI adapter: Gemini models on Google Cloud. Same request and answer bodies as the
//! Gemini API (the translation is [`crate::gemini::wire`]'s), different addressing and
//! authentication:
//!
//! - `POST https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent`
//!   (`:streamGenerateContent?alt=sse` to stream; location `global` uses
//!   `https://aiplatform.googleapis.com`);
//! - `Authorization: Bearer <token>`, the token configured (`access_token`) or obtained with a
//!   service account key file (`service_account_file`, see [`auth`]).
//!
//! Embeddings on Vertex AI use another API (`:predict`) and are not served by this adapter.

mod auth;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use self::auth::CLOUD_PLATFORM_SCOPE;
use self::auth::{Auth, TokenSource};
use crate::gemini::{google_complete, google_post, google_stream, wire};
use crate::http::Timeouts;
use crate::translated::{self, unsupported};
use crate::types::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse};
use crate::{ChunkStream, Provider, ProviderConfigError, ProviderError, TimeoutsConfig};

/// `[providers.<name>] kind = "vertex"`: a project, a location, and either an access token or
/// a service account key file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VertexConfig {
    /// The Google Cloud project id.
    pub project: String,
    /// The region (`us-central1`, `europe-west4`, ...) or `global`.
    pub location: String,
    /// A static OAuth access token (for instance `gcloud auth print-access-token`); it is not
    /// refreshed. Exclusive with `service_account_file`. Never logged.
    #[serde(default)]
    pub access_token: Option<SecretString>,
    /// A service account key file (JSON, `"type": "service_account"`): tokens are obtained at
    /// its `token_uri` and refreshed before they expire.
    #[serde(default)]
    pub service_account_file: Option<PathBuf>,
    /// Replaces `https://{location}-aiplatform.googleapis.com` (a proxy, a test server).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Timeouts; each defaults as documented on [`TimeoutsConfig`].
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
}

/// Gemini on Vertex AI. Cheap to clone (the connection pool and the token are shared).
#[derive(Clone)]
pub struct VertexProvider {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    project: String,
    location: String,
    base_url: Url,
    auth: Auth,
    timeouts: Timeouts,
    client: reqwest::Client,
}

impl fmt::Debug for VertexProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match self.inner.auth {
            Auth::Static(_) => "access_token",
            Auth::ServiceAccount(_) => "service_account",
        };
        f.debug_struct("VertexProvider")
            .field("name", &self.inner.name)
            .field("project", &self.inner.project)
            .field("location", &self.inner.location)
            .field("base_url", &self.inner.base_url.as_str())
            .field("auth", &auth)
            .field("timeouts", &self.inner.timeouts)
            .finish_non_exhaustive()
    }
}

impl VertexProvider {
    /// Validates a configuration (reading the key file, if any) and builds the provider under
    /// `name`.
    pub fn new(name: &str, config: &VertexConfig) -> Result<Self, ProviderConfigError> {
        let missing = |field| ProviderConfigError::Missing {
            provider: name.into(),
            field,
        };
        let project = config.project.trim();
        let location = config.location.trim();
        if project.is_empty() {
            return Err(missing("project"));
        }
        if location.is_empty()
            || !location
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(missing("location"));
        }
        let default_base = if location == "global" {
            "https://aiplatform.googleapis.com".to_owned()
        } else {
            format!("https://{location}-aiplatform.googleapis.com")
        };
        let base_url =
            translated::base_url(name, config.base_url.as_deref().unwrap_or(&default_base))?;
        let timeouts: Timeouts = config.timeouts.into();
        let client = translated::client(name, &timeouts)?;
        let auth = match (&config.access_token, &config.service_account_file) {
            (Some(token), None) => {
                let token = token.expose_secret().trim();
                if token.is_empty() {
                    return Err(missing("access_token"));
                }
                let mut value =
                    HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                        ProviderConfigError::InvalidHeader {
                            provider: name.into(),
                            header: "access_token".into(),
                        }
                    })?;
                value.set_sensitive(true);
                Auth::Static(value)
            }
            (None, Some(path)) => Auth::ServiceAccount(Arc::new(TokenSource::from_file(
                name,
                path,
                client.clone(),
                timeouts,
            )?)),
            (Some(_), Some(_)) => {
                return Err(ProviderConfigError::Client {
                    provider: name.into(),
                    reason: "set `access_token` or `service_account_file`, not both".into(),
                });
            }
            (None, None) => return Err(missing("access_token or service_account_file")),
        };
        Ok(VertexProvider {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                project: project.to_owned(),
                location: location.to_owned(),
                base_url,
                auth,
                timeouts,
                client,
            }),
        })
    }

    /// Returns the URL a chat with `model` is posted to.
    pub fn generate_url(&self, model: &str, stream: bool) -> Url {
        let inner = &*self.inner;
        let method = if stream {
            "streamGenerateContent"
        } else {
            "generateContent"
        };
        let mut url = translated::join(
            &inner.base_url,
            &[
                "v1",
                "projects",
                &inner.project,
                "locations",
                &inner.location,
                "publishers",
                "google",
                "models",
                &format!("{model}:{method}"),
            ],
        );
        if stream {
            url.query_pairs_mut().append_pair("alt", "sse");
        }
        url
    }

    async fn post(
        &self,
        model: &str,
        stream: bool,
        body: &serde_json::Value,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let auth = self.inner.auth.header().await?;
        Ok(google_post(
            &self.inner.client,
            self.generate_url(model, stream),
            (AUTHORIZATION, auth),
            body,
        ))
    }
}

impl Provider for VertexProvider {
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
        let request = self.post(model, false, &body).await?;
        google_complete(&inner.name, &inner.timeouts, request, model).await
    }

    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let inner = &*self.inner;
        let body = wire::request_body(&inner.name, req)?;
        let request = self.post(model, true, &body).await?;
        google_stream(&inner.name, &inner.timeouts, request, model).await
    }

    async fn embed(
        &self,
        _model: &str,
        _req: &EmbeddingRequest,
    ) -> Result<EmbeddingResponse, ProviderError> {
        Err(unsupported(
            &self.inner.name,
            "embeddings on Vertex AI (the `:predict` API) are not served by this adapter",
        ))
    }
}
