//! The AWS Bedrock adapter, on the Converse API (one request and answer shape for every
//! Bedrock chat model):
//!
//! - `complete`: `POST {endpoint}/model/{modelId}/converse`, JSON answer;
//! - `stream`: `POST {endpoint}/model/{modelId}/converse-stream`, an
//!   `application/vnd.amazon.eventstream` body ([`eventstream`]);
//!
//! signed with AWS Signature Version 4 (`aws-sigv4`, service `bedrock`, the configured region
//! and credentials: access key, secret key, optional session token). The model id is
//! percent-encoded as one path segment (`anthropic.claude-3-5-sonnet-20240620-v1:0` →
//! `...-v1%3A0`, inference profile ARNs' slashes too), as the AWS SDKs send it; the signature
//! covers that exact path, the host, the content type and the body's SHA-256.
//!
//! The default endpoint is `https://bedrock-runtime.{region}.amazonaws.com`. Converse serves no
//! embeddings.

mod eventstream;
mod stream;
pub(crate) mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use reqwest::Url;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::http::Timeouts;
use crate::translated::{self, unsupported};
use crate::types::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse};
use crate::{
    ChunkStream, Provider, ProviderConfigError, ProviderError, ProviderErrorKind, TimeoutsConfig,
};

/// The SigV4 service name of the Bedrock runtime.
pub const SIGNING_SERVICE: &str = "bedrock";

/// `[providers.<name>] kind = "bedrock"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockConfig {
    /// The AWS region (`us-east-1`, ...): the endpoint's and the signature's.
    pub region: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key. Never logged.
    pub secret_access_key: SecretString,
    /// The session token of temporary credentials. Never logged.
    #[serde(default)]
    pub session_token: Option<SecretString>,
    /// Replaces `https://bedrock-runtime.{region}.amazonaws.com` (a VPC endpoint, a test server).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Timeouts; each defaults as documented on [`TimeoutsConfig`].
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
}

/// AWS Bedrock (Converse). Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct BedrockProvider {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    region: String,
    endpoint: Url,
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
    timeouts: Timeouts,
    client: reqwest::Client,
}

impl fmt::Debug for BedrockProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BedrockProvider")
            .field("name", &self.inner.name)
            .field("region", &self.inner.region)
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("timeouts", &self.inner.timeouts)
            .finish_non_exhaustive()
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[expect(
    clippy::disallowed_methods,
    reason = "a SigV4 signature is dated with wall-clock time by definition (AWS checks it against its own clock)"
)]
fn signing_time() -> SystemTime {
    SystemTime::now()
}

impl BedrockProvider {
    /// Validates a configuration and builds the provider under `name`.
    pub fn new(name: &str, config: &BedrockConfig) -> Result<Self, ProviderConfigError> {
        let missing = |field| ProviderConfigError::Missing {
            provider: name.into(),
            field,
        };
        let region = config.region.trim();
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(missing("region"));
        }
        if config.access_key_id.trim().is_empty() {
            return Err(missing("access_key_id"));
        }
        if config.secret_access_key.expose_secret().trim().is_empty() {
            return Err(missing("secret_access_key"));
        }
        let default_endpoint = format!("https://bedrock-runtime.{region}.amazonaws.com");
        let endpoint = translated::base_url(
            name,
            config.endpoint.as_deref().unwrap_or(&default_endpoint),
        )?;
        let timeouts: Timeouts = config.timeouts.into();
        Ok(BedrockProvider {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                region: region.to_owned(),
                client: translated::client(name, &timeouts)?,
                endpoint,
                access_key_id: config.access_key_id.trim().to_owned(),
                secret_access_key: SecretString::from(
                    config.secret_access_key.expose_secret().trim().to_owned(),
                ),
                session_token: config
                    .session_token
                    .as_ref()
                    .map(|t| t.expose_secret().trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .map(SecretString::from),
                timeouts,
            }),
        })
    }

    /// Returns the URL of `converse` (or `converse-stream`) for `model`.
    pub fn converse_url(&self, model: &str, stream: bool) -> Url {
        let mut url = self.inner.endpoint.clone();
        let operation = if stream {
            "converse-stream"
        } else {
            "converse"
        };
        let path = format!(
            "{}/model/{}/{operation}",
            url.path().trim_end_matches('/'),
            encode_segment(model)
        );
        url.set_path(&path);
        url
    }

    /// Returns a POST of `body` to `url`, signed.
    fn signed_post(
        &self,
        url: Url,
        body: Vec<u8>,
        accept: &'static str,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let inner = &*self.inner;
        let signing_error = |e: &dyn std::fmt::Display| {
            ProviderError::new(
                &inner.name,
                ProviderErrorKind::BadRequest,
                format!("failed to sign the request: {e}"),
            )
        };
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(signing_error(&"the endpoint has no host")),
        };
        let identity = Credentials::new(
            inner.access_key_id.clone(),
            inner.secret_access_key.expose_secret().to_owned(),
            inner
                .session_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            None,
            "switchyard-config",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&inner.region)
            .name(SIGNING_SERVICE)
            .time(signing_time())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| signing_error(&e))?
            .into();
        let headers = [
            ("host", host.as_str()),
            ("content-type", "application/json"),
            ("accept", accept),
        ];
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| signing_error(&e))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| signing_error(&e))?
            .into_parts();
        let mut request = inner
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(ACCEPT, HeaderValue::from_static(accept));
        for (name, value) in instructions.headers() {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| signing_error(&e))?;
            let mut value = HeaderValue::from_str(value).map_err(|e| signing_error(&e))?;
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        Ok(request.body(body))
    }
}

impl Provider for BedrockProvider {
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
        let request = self.signed_post(
            self.converse_url(model, false),
            serde_json::to_vec(&body).unwrap_or_default(),
            "application/json",
        )?;
        let bytes =
            translated::call(&inner.name, request, &inner.timeouts, wire::bedrock_error).await?;
        wire::chat_response(&inner.name, model, &bytes)
    }

    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let inner = &*self.inner;
        let body = wire::request_body(&inner.name, req)?;
        let request = self.signed_post(
            self.converse_url(model, true),
            serde_json::to_vec(&body).unwrap_or_default(),
            "application/vnd.amazon.eventstream",
        )?;
        translated::stream(
            &inner.name,
            request,
            &inner.timeouts,
            "application/vnd.amazon.eventstream",
            wire::bedrock_error,
            stream::BedrockDecoder::new(&inner.name, model),
        )
        .await
    }

    async fn embed(
        &self,
        _model: &str,
        _req: &EmbeddingRequest,
    ) -> Result<EmbeddingResponse, ProviderError> {
        Err(unsupported(
            &self.inner.name,
            "Bedrock's Converse API serves no embeddings",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_are_one_encoded_segment() {
        assert_eq!(
            encode_segment("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
        );
        assert_eq!(
            encode_segment("arn:aws:bedrock:us-east-1:123:inference-profile/us.x"),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.x"
        );
    }
}
