//! API-key authentication against the control plane's key table.
//!
//! The presented secret is hashed (SHA-256) and looked up by hash; the stored value is a hash
//! too, so no secret is ever kept, and the final equality check is constant-time.

use axum::http::{HeaderMap, StatusCode, header};
use switchyard_events::{ApiKeyId, OrgId, RouteName};

use crate::ApiError;
use crate::control::ControlPlane;
use crate::limits::KeyLimits;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The organisation.
    pub org: OrgId,
    /// The key used (`anonymous` when none was needed).
    pub key_id: ApiKeyId,
    /// Whether the key may use the admin API.
    pub admin: bool,
    /// The key's default route.
    pub default_route: Option<RouteName>,
    /// The key's requests and tokens per minute (none for the anonymous caller).
    pub limits: KeyLimits,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn unauthorized(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: message.into(),
        kind: "invalid_request_error",
        param: None,
        code: Some("invalid_api_key"),
    }
}

/// The prefix of every Switchyard key.
pub const KEY_PREFIX: &str = "sk-sy-";

/// Returns the caller, or a 401 in OpenAI's shape.
///
/// When keys are not required (the loopback default), a request without a key, or with a key
/// that is not a Switchyard key (the OpenAI SDKs insist on sending *some* key), is served as org
/// `default`; a Switchyard key (`sk-sy-...`) must always be valid, so a mistyped real key fails
/// loudly instead of being silently attributed to another org.
pub fn authenticate(
    headers: &HeaderMap,
    plane: &ControlPlane,
    required: bool,
) -> Result<Caller, ApiError> {
    let presented = match bearer(headers).filter(|s| !s.is_empty()) {
        Some(secret) if !required && !secret.starts_with(KEY_PREFIX) => None,
        other => other,
    };
    match presented {
        Some(secret) => match plane.authenticate(secret) {
            Some(key) => Ok(Caller {
                org: key.org,
                key_id: key.key_id,
                admin: key.admin,
                default_route: key.default_route,
                limits: key.limits,
            }),
            None => Err(unauthorized(
                "Incorrect API key provided. Create one with `switchyard keys create --org ORG`.",
            )),
        },
        _ if required => Err(unauthorized(
            "You didn't provide an API key. Send `Authorization: Bearer sk-sy-...` (create one with `switchyard keys create --org ORG`).",
        )),
        _ => Ok(Caller {
            org: OrgId::new("default"),
            key_id: ApiKeyId::new("anonymous"),
            admin: false,
            default_route: None,
            limits: KeyLimits::default(),
        }),
    }
}
