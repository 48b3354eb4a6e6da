//! Vertex AI credentials: a static access token from the configuration, or a service account
//! key file whose RS256-signed JWT is exchanged for an access token (OAuth 2.0 JWT bearer grant,
//! RFC 7523) at the file's `token_uri`, scope `cloud-platform`. The token is cached and shared
//! by concurrent calls until five minutes before it expires (or half its lifetime, for short
//! ones); one call refreshes it while the others wait for the result.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use crate::http::{Timeouts, error_value_message, retry_after, transport_error, truncate};
use crate::translated::unix_now;
use crate::{ProviderConfigError, ProviderError, ProviderErrorKind};

/// The OAuth scope of Vertex AI calls.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// How a Vertex AI call is authenticated.
#[derive(Clone)]
pub(crate) enum Auth {
    /// `Authorization: Bearer <configured token>`.
    Static(HeaderValue),
    /// Tokens obtained with a service account key.
    ServiceAccount(Arc<TokenSource>),
}

impl Auth {
    /// Returns the `Authorization` header value of the next call.
    pub(crate) async fn header(&self) -> Result<HeaderValue, ProviderError> {
        match self {
            Auth::Static(value) => Ok(value.clone()),
            Auth::ServiceAccount(source) => source.header().await,
        }
    }
}

/// The fields of a service account key file that the exchange needs.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: String,
    private_key: SecretString,
    #[serde(default)]
    private_key_id: Option<String>,
    token_uri: String,
}

/// A service account and its cached access token.
pub(crate) struct TokenSource {
    provider: String,
    client_email: String,
    private_key_id: Option<String>,
    token_uri: reqwest::Url,
    key: RsaKeyPair,
    client: reqwest::Client,
    timeouts: Timeouts,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

struct Cached {
    header: HeaderValue,
    refresh_at: Instant,
}

impl TokenSource {
    /// Reads and validates a service account key file.
    pub(crate) fn from_file(
        provider: &str,
        path: &Path,
        client: reqwest::Client,
        timeouts: Timeouts,
    ) -> Result<Self, ProviderConfigError> {
        let invalid = |reason: String| ProviderConfigError::Client {
            provider: provider.to_owned(),
            reason: format!("service account file {}: {reason}", path.display()),
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if file.kind.as_deref().is_some_and(|k| k != "service_account") {
            return Err(invalid(format!(
                "`type` is {:?}, not \"service_account\"",
                file.kind.unwrap_or_default()
            )));
        }
        let key = private_key(file.private_key.expose_secret()).map_err(invalid)?;
        let token_uri = reqwest::Url::parse(&file.token_uri)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| invalid(format!("`token_uri` {:?} is not a URL", file.token_uri)))?;
        Ok(TokenSource {
            provider: provider.to_owned(),
            client_email: file.client_email,
            private_key_id: file.private_key_id,
            token_uri,
            key,
            client,
            timeouts,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// Returns `Bearer <token>`, exchanging a new JWT when the cached token is near expiry.
    pub(crate) async fn header(&self) -> Result<HeaderValue, ProviderError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.header.clone());
        }
        let (token, lifetime) = self.exchange().await?;
        let mut header = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                self.error(
                    ProviderErrorKind::InvalidResponse,
                    "the access token is not a valid header value".into(),
                )
            })?;
        header.set_sensitive(true);
        let margin = Duration::from_secs(300).min(lifetime / 2);
        *cached = Some(Cached {
            header: header.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
        });
        Ok(header)
    }

    fn error(&self, kind: ProviderErrorKind, message: String) -> ProviderError {
        ProviderError::new(&self.provider, kind, message)
    }

    /// Returns the signed assertion: `base64url(header).base64url(claims).base64url(RS256)`.
    fn assertion(&self, now: i64) -> Result<String, ProviderError> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let (Some(kid), Some(obj)) = (&self.private_key_id, header.as_object_mut()) {
            obj.insert("kid".into(), json!(kid));
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": CLOUD_PLATFORM_SCOPE,
            "aud": self.token_uri.as_str(),
            "iat": now,
            "exp": now + 3600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| {
                self.error(
                    ProviderErrorKind::Unauthorized,
                    "failed to sign the service account JWT".into(),
                )
            })?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// Exchanges a fresh assertion for an access token and its lifetime.
    async fn exchange(&self) -> Result<(SecretString, Duration), ProviderError> {
        let assertion = self.assertion(unix_now())?;
        // The assertion is base64url and dots: nothing to escape.
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        );
        let response = self
            .client
            .post(self.token_uri.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body(form)
            .timeout(self.timeouts.first_byte.min(self.timeouts.request))
            .send()
            .await
            .map_err(|e| {
                let mut err = transport_error(&self.provider, &e);
                err.message = format!("token exchange: {}", err.message);
                err
            })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(&self.provider, &e))?;
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if !status.is_success() {
            // OAuth errors: {"error": "invalid_grant", "error_description": "..."}.
            let message = value
                .get("error_description")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .or_else(|| error_value_message(&value))
                .unwrap_or_else(|| truncate(&String::from_utf8_lossy(&body), 300));
            let mut err = ProviderError::from_status(
                &self.provider,
                status.as_u16(),
                format!("token exchange failed: {message}"),
                retry_after(&headers),
            );
            if (400..500).contains(&status.as_u16()) && status.as_u16() != 429 {
                err.kind = ProviderErrorKind::Unauthorized;
            }
            return Err(err);
        }
        let token = value
            .get("access_token")
            .and_then(serde_json::Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                self.error(
                    ProviderErrorKind::InvalidResponse,
                    "the token answer has no access_token".into(),
                )
            })?;
        let lifetime = value
            .get("expires_in")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(3600);
        Ok((
            SecretString::from(token.to_owned()),
            Duration::from_secs(lifetime),
        ))
    }
}

/// Parses a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues) or PKCS#1
/// (`BEGIN RSA PRIVATE KEY`).
fn private_key(pem: &str) -> Result<RsaKeyPair, String> {
    let pkcs1 = pem.contains("BEGIN RSA PRIVATE KEY");
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    let der = STANDARD
        .decode(body)
        .map_err(|e| format!("`private_key` is not PEM: {e}"))?;
    let key = if pkcs1 {
        RsaKeyPair::from_der(&der)
    } else {
        RsaKeyPair::from_pkcs8(&der)
    };
    key.map_err(|e| format!("`private_key` is not an RSA key: {e}"))
}
