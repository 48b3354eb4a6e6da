//! `POST /v1/feedback`: feedback on one request, or a session's NPS, recorded as a
//! `FeedbackSubmitted` event on the `feedback` topic.
//!
//! Two bodies:
//!
//! - **Request feedback**: `{"id", "score", "scale"?, "source"?, "comment"?}`. `id` is the
//!   request id a client saw (the completion's `id`, the `x-request-id` header) or the decision
//!   id (`dec-…`, the `x-switchyard-decision-id` header). `scale` is one of [`SCALES`]; when it
//!   is absent it is inferred from `score` ([`infer_scale`]). `source` is `user` (default) or
//!   `admin` (admin keys only, else 403).
//! - **Session NPS**: `{"session_id", "nps": 0..=10, "comment"?}`, source `nps`. Session-NPS
//!   propagation (`streams/session-nps`) turns it into feedback on every decision of the
//!   session.
//! - **Pair rating** (admin keys only, else 403): `{"route", "model", "score", "scale"?,
//!   "source"?, "comment"?}` rates a model on a route as a whole, not one request; `source` is
//!   `admin` (the default, and the only one). The route must exist in the caller's org and the
//!   model be its baseline or a candidate. The projector counts it as one admin observation of
//!   (route, model) in the rolling window, like an admin rating of a decision.
//!
//! # Idempotence
//!
//! The feedback id is derived from (org, target, source, API key id) ([`feedback_id`]), so
//! sending feedback about the same target from the same key again — a retry, or a changed
//! mind — records a new event with the **same feedback id**, and the latest one wins: consumers
//! keep the latest event per feedback id by `(event_time, event_id)`. A decision id and the
//! request id of the same decision name the same target (the decision id is resolved first).
//!
//! # Durability
//!
//! The event is appended straight to the log through the node's writer
//! ([`ControlPlane::writer`](crate::control::ControlPlane::writer)), not the request path's
//! queue, and the answer waits until it is durable: `200` means the feedback is on the log.
//! When the log cannot take it the answer is `503` (`code: log_unavailable`) and nothing is
//! recorded; retrying is safe.
//!
//! # Joining later
//!
//! Feedback about a request id that no decision has been recorded for yet is accepted: the
//! processors join it when the decision arrives (it often comes right after the response). A
//! decision id, though, must be resolved to its request id to name the target, through the
//! decisions read model: it is waited for up to [`DECISION_WAIT`], then answered `404`.
//!
//! # Partition keys
//!
//! Session ratings are keyed by their session id, like every event of the session, so that one
//! partition (one session-NPS member) owns the session. Request feedback is keyed like the
//! request's own events when the session is known (a decision id resolved through the read
//! model, else the `x-switchyard-session` header, as on the chat request), else by the request
//! id.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use switchyard_events::{
    ApiKeyId, DecisionId, Envelope, Event, EventId, FeedbackId, FeedbackSource, FeedbackSubmitted,
    ModelName, Nps, OrgId, PartitionKey, RawScale, RequestId, RouteName, SessionId, Target,
    Timestamp, TraceId, UnitScore, normalize,
};

use crate::ApiError;
use crate::auth::Caller;
use crate::control::{ControlError, ControlWriter};
use crate::extract::ApiRequest;
use crate::gateway::{Gateway, SESSION_HEADER};

/// The longest accepted comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2_000;

/// The longest accepted id (request, decision or session), in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// How long a decision id is waited for in the decisions read model before a 404.
pub const DECISION_WAIT: Duration = Duration::from_secs(2);

/// How often the read model is asked while waiting for a decision id.
const DECISION_POLL: Duration = Duration::from_millis(50);

/// The prefix of decision ids.
const DECISION_PREFIX: &str = "dec-";

/// The label carrying the API key that sent the feedback.
pub const API_KEY_LABEL: &str = "api_key_id";

/// The accepted `scale` names and what they mean (`stars` is the five-point scale's API name).
pub const SCALES: [(&str, RawScale); 6] = [
    ("thumbs", RawScale::Thumbs),
    ("unit", RawScale::Unit),
    ("stars", RawScale::FivePoint),
    ("five_point", RawScale::FivePoint),
    ("percent", RawScale::Percent),
    ("nps", RawScale::Nps),
];

/// The fields of each body, for the unknown-field check.
const REQUEST_FIELDS: [&str; 5] = ["id", "score", "scale", "source", "comment"];
const SESSION_FIELDS: [&str; 4] = ["session_id", "nps", "source", "comment"];
const PAIR_FIELDS: [&str; 6] = ["route", "model", "score", "scale", "source", "comment"];

/// A validated body: what the feedback is about, and the score.
#[derive(Debug, Clone, PartialEq)]
struct Submission {
    subject: SubjectRef,
    score: Score,
}

/// What the feedback is about, as the body names it.
#[derive(Debug, Clone, PartialEq)]
enum SubjectRef {
    /// One request, by its request id.
    Request(RequestId),
    /// One request, by its decision id (resolved through the decisions read model).
    Decision(DecisionId),
    /// A whole session (NPS).
    Session(SessionId),
    /// A model on a route as a whole (an admin rating).
    Pair(RouteName, ModelName),
}

/// A score with its source.
#[derive(Debug, Clone, PartialEq)]
struct Score {
    source: FeedbackSource,
    raw: f64,
    scale: RawScale,
    normalized: UnitScore,
    comment: Option<String>,
}

/// What the feedback is about, resolved: the event's target and what else is known of it.
#[derive(Debug, Clone, PartialEq)]
struct Subject {
    target: Target,
    /// The request's session, when known (for the partition key).
    session: Option<SessionId>,
    route: Option<RouteName>,
}

/// Returns the scale a score without `scale` is on: exactly `-1` or `1` is thumbs (down, up),
/// anything else within `0..=1` is the unit scale, a whole number within `2..=5` is stars
/// (one to five). Anything else is ambiguous (`7`: NPS? percent?) and needs `scale`; so does
/// one star, which reads as thumbs up without it.
pub fn infer_scale(score: f64) -> Option<RawScale> {
    if score == 1.0 || score == -1.0 {
        Some(RawScale::Thumbs)
    } else if (0.0..=1.0).contains(&score) {
        Some(RawScale::Unit)
    } else if score.fract() == 0.0 && (2.0..=5.0).contains(&score) {
        Some(RawScale::FivePoint)
    } else {
        None
    }
}

/// Returns the id of feedback from API key `key` of `org` about `target` from `source`:
/// `fb-` and 32 hex digits (the first 128 bits of SHA-256 over a version tag and the
/// length-prefixed parts). Deterministic, so a retry or a changed mind replaces the earlier
/// feedback instead of adding to it.
pub fn feedback_id(
    org: &OrgId,
    target: &Target,
    source: FeedbackSource,
    key: &ApiKeyId,
) -> FeedbackId {
    let (kind, id, model) = match target {
        Target::Request { request_id } => ("request", request_id.as_str(), None),
        Target::Session { session_id } => ("session", session_id.as_str(), None),
        Target::Pair { route, model } => ("pair", route.as_str(), Some(model.as_str())),
    };
    let mut hasher = Sha256::new();
    // A pair adds its model after the route; the other targets hash as they always have.
    for part in ["switchyard/feedback/v1", org.as_str(), kind, id]
        .into_iter()
        .chain(model)
        .chain([source.as_str(), key.as_str()])
    {
        let len = u64::try_from(part.len()).unwrap_or(u64::MAX);
        hasher.update(len.to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    FeedbackId::new(format!(
        "fb-{}",
        hex::encode(digest.get(..16).unwrap_or_default())
    ))
}

/// Returns the partition key of feedback about `target`: the session for a session rating;
/// for request feedback, the key of the request's own events (session when known, else the
/// request).
pub fn partition_key(target: &Target, session: Option<&SessionId>) -> PartitionKey {
    match target {
        Target::Session { session_id } => {
            PartitionKey::session_or_request(Some(session_id), &RequestId::new(""))
        }
        Target::Request { request_id } => PartitionKey::session_or_request(session, request_id),
        Target::Pair { route, .. } => PartitionKey::new(format!("pair/{route}")),
    }
}

fn invalid(message: impl Into<String>, param: &str) -> ApiError {
    ApiError::invalid(message.into(), Some(param))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Returns the string field `name`, if present (`null` counts as absent).
fn string_field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(
            format!("`{name}` must be a string, got {}.", type_name(other)),
            name,
        )),
    }
}

/// Returns the number field `name`, if present.
fn number_field(body: &Map<String, Value>, name: &str) -> Result<Option<f64>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| invalid(format!("`{name}` must be a finite number."), name)),
        Some(other) => Err(invalid(
            format!("`{name}` must be a number, got {}.", type_name(other)),
            name,
        )),
    }
}

/// Returns a validated id: 1..=[`MAX_ID_BYTES`] bytes, no control characters.
fn id_field(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    let Some(id) = string_field(body, name)? else {
        return Ok(None);
    };
    if id.is_empty() || id.len() > MAX_ID_BYTES || id.chars().any(char::is_control) {
        return Err(invalid(
            format!("`{name}` must be 1 to {MAX_ID_BYTES} bytes without control characters."),
            name,
        ));
    }
    Ok(Some(id.to_owned()))
}

fn comment_field(body: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    let comment = string_field(body, "comment")?;
    if let Some(comment) = comment
        && comment.chars().count() > MAX_COMMENT_CHARS
    {
        return Err(invalid(
            format!("`comment` must be at most {MAX_COMMENT_CHARS} characters."),
            "comment",
        ));
    }
    Ok(comment.map(str::to_owned))
}

fn reject_unknown(body: &Map<String, Value>, known: &[&str], kind: &str) -> Result<(), ApiError> {
    match body.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(invalid(
            format!(
                "Unrecognized argument `{unknown}` for {kind} feedback; accepted: {}.",
                known.join(", ")
            ),
            unknown,
        )),
        None => Ok(()),
    }
}

/// Parses and validates a body into a [`Submission`]; every error names its `param`.
fn parse(body: &Value, caller: &Caller) -> Result<Submission, ApiError> {
    let Value::Object(body) = body else {
        return Err(ApiError::invalid(
            format!(
                "The request body must be a JSON object, got {}.",
                type_name(body)
            ),
            None,
        ));
    };
    let has = |name: &str| body.get(name).is_some_and(|v| !v.is_null());
    if has("route") || has("model") {
        if let Some(other) = ["id", "session_id"].into_iter().find(|n| has(n)) {
            return Err(invalid(
                format!(
                    "Send `route` and `model` (a rating of a model on a route) without `{other}`."
                ),
                other,
            ));
        }
        return parse_pair(body, caller);
    }
    match (has("id"), has("session_id")) {
        (true, true) => Err(invalid(
            "Send either `id` (feedback on one request) or `session_id` (a session's NPS), not both.",
            "session_id",
        )),
        (false, false) => Err(invalid(
            "Missing `id` (the request or decision id the feedback is about) or `session_id` (for a session's NPS).",
            "id",
        )),
        (false, true) => parse_session(body),
        (true, false) => parse_request(body, caller),
    }
}

fn parse_session(body: &Map<String, Value>) -> Result<Submission, ApiError> {
    reject_unknown(body, &SESSION_FIELDS, "session")?;
    let session = id_field(body, "session_id")?
        .map(SessionId::new)
        .ok_or_else(|| invalid("Missing `session_id`.", "session_id"))?;
    match string_field(body, "source")? {
        None | Some("nps") => {}
        Some(other) => {
            return Err(invalid(
                format!("Session feedback has source `nps`, not `{other}`."),
                "source",
            ));
        }
    }
    let nps = number_field(body, "nps")?
        .ok_or_else(|| invalid("Missing `nps`: a whole number from 0 to 10.", "nps"))?;
    let nps = (nps.fract() == 0.0 && (0.0..=10.0).contains(&nps))
        .then(|| Nps::new(nps as u8).ok())
        .flatten()
        .ok_or_else(|| {
            invalid(
                format!("`nps` must be a whole number from 0 to 10, got {nps}."),
                "nps",
            )
        })?;
    Ok(Submission {
        subject: SubjectRef::Session(session),
        score: Score {
            source: FeedbackSource::Nps,
            raw: f64::from(nps.get()),
            scale: RawScale::Nps,
            normalized: nps.normalized(),
            comment: comment_field(body)?,
        },
    })
}

/// Returns the raw score, its scale (given or inferred) and the normalised score.
fn parse_score(body: &Map<String, Value>) -> Result<(f64, RawScale, UnitScore), ApiError> {
    let raw_score = number_field(body, "score")?.ok_or_else(|| {
        invalid(
            "Missing `score`: thumbs (-1 or 1), unit (0..1), stars (1..5) or another `scale`.",
            "score",
        )
    })?;
    let scale = match string_field(body, "scale")? {
        Some(name) => SCALES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| {
                invalid(
                    format!(
                        "Unknown `scale` `{name}`; accepted: {}.",
                        SCALES.map(|(n, _)| n).join(", ")
                    ),
                    "scale",
                )
            })?,
        None => infer_scale(raw_score).ok_or_else(|| {
            invalid(
                format!(
                    "Cannot tell the scale of score {raw_score}: set `scale` (thumbs, unit, stars, percent, nps). Without it, -1 and 1 are thumbs, 0..1 is unit and 2..5 are stars."
                ),
                "scale",
            )
        })?,
    };
    let normalized =
        normalize(raw_score, scale).map_err(|e| invalid(format!("`score`: {e}."), "score"))?;
    Ok((raw_score, scale, normalized))
}

fn needs_admin(message: &str, param: &str) -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        message: format!(
            "{message} needs an admin key (`switchyard keys create --org ORG --admin`)."
        ),
        kind: "invalid_request_error",
        param: Some(param.into()),
        code: Some("insufficient_permissions"),
    }
}

fn parse_pair(body: &Map<String, Value>, caller: &Caller) -> Result<Submission, ApiError> {
    reject_unknown(body, &PAIR_FIELDS, "pair")?;
    if !caller.admin {
        return Err(needs_admin("Rating a model on a route", "route"));
    }
    let route = id_field(body, "route")?.ok_or_else(|| {
        invalid(
            "Missing `route`: the route the rated model serves.",
            "route",
        )
    })?;
    let model = id_field(body, "model")?
        .ok_or_else(|| invalid("Missing `model`: the model rated on `route`.", "model"))?;
    match string_field(body, "source")? {
        None | Some("admin") => {}
        Some(other) => {
            return Err(invalid(
                format!("A rating of a model on a route has source `admin`, not `{other}`."),
                "source",
            ));
        }
    }
    let (raw, scale, normalized) = parse_score(body)?;
    Ok(Submission {
        subject: SubjectRef::Pair(RouteName::new(route), ModelName::new(model)),
        score: Score {
            source: FeedbackSource::Admin,
            raw,
            scale,
            normalized,
            comment: comment_field(body)?,
        },
    })
}

fn parse_request(body: &Map<String, Value>, caller: &Caller) -> Result<Submission, ApiError> {
    reject_unknown(body, &REQUEST_FIELDS, "request")?;
    let id = id_field(body, "id")?.ok_or_else(|| invalid("Missing `id`.", "id"))?;
    let subject = match id.strip_prefix(DECISION_PREFIX) {
        Some(rest) if !rest.is_empty() => SubjectRef::Decision(DecisionId::new(id)),
        _ => SubjectRef::Request(RequestId::new(id)),
    };
    let (raw_score, scale, normalized) = parse_score(body)?;
    let source = match string_field(body, "source")? {
        None | Some("user") => FeedbackSource::User,
        Some("admin") if caller.admin => FeedbackSource::Admin,
        Some("admin") => return Err(needs_admin("Feedback with source `admin`", "source")),
        Some(other) => {
            return Err(invalid(
                format!(
                    "Unknown `source` `{other}`: request feedback comes from `user` (the default) or `admin`; session NPS is sent with `session_id` and `nps`."
                ),
                "source",
            ));
        }
    };
    Ok(Submission {
        subject,
        score: Score {
            source,
            raw: raw_score,
            scale,
            normalized,
            comment: comment_field(body)?,
        },
    })
}

/// Resolves a decision id to its request through the decisions read model, waiting up to
/// [`DECISION_WAIT`] for a decision that is still on its way.
async fn resolve_decision(
    gateway: &Gateway,
    org: &OrgId,
    decision: &DecisionId,
) -> Result<Subject, ApiError> {
    let Some(queries) = &gateway.decisions else {
        return Err(invalid(
            "This node cannot resolve decision ids; send the request id instead (the completion's `id`, header `x-request-id`).",
            "id",
        ));
    };
    let deadline = tokio::time::Instant::now() + DECISION_WAIT;
    loop {
        match queries.get(org, decision).await {
            Ok(Some(record)) => {
                return Ok(Subject {
                    target: Target::Request {
                        request_id: record.request_id,
                    },
                    session: record.session_id,
                    route: Some(record.route),
                });
            }
            Ok(None) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(DECISION_POLL).await;
            }
            Ok(None) => {
                return Err(ApiError {
                    status: StatusCode::NOT_FOUND,
                    message: format!(
                        "No decision `{decision}` is known. Feedback by request id (the completion's `id`, header `x-request-id`) is accepted before its request is recorded."
                    ),
                    kind: "invalid_request_error",
                    param: Some("id".into()),
                    code: Some("decision_not_found"),
                });
            }
            Err(e) => {
                return Err(ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: format!(
                        "The decisions store is unavailable ({e}); retry shortly, or send the request id instead."
                    ),
                    kind: "server_error",
                    param: None,
                    code: Some("store_unavailable"),
                });
            }
        }
    }
}

fn session_header(headers: &axum::http::HeaderMap) -> Option<SessionId> {
    headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= MAX_ID_BYTES)
        .map(SessionId::new)
}

/// Resolves what the body names into the event's target.
async fn resolve(
    gateway: &Gateway,
    caller: &Caller,
    headers: &axum::http::HeaderMap,
    subject: SubjectRef,
) -> Result<Subject, ApiError> {
    match subject {
        SubjectRef::Decision(decision) => resolve_decision(gateway, &caller.org, &decision).await,
        SubjectRef::Request(request_id) => Ok(Subject {
            target: Target::Request { request_id },
            session: session_header(headers),
            route: None,
        }),
        SubjectRef::Session(session_id) => Ok(Subject {
            target: Target::Session { session_id },
            session: None,
            route: None,
        }),
        SubjectRef::Pair(route, model) => {
            let now = Timestamp::from_micros(gateway.clock.now_micros());
            let Some(resolved) = gateway.plane.route(&caller.org, route.as_str(), now) else {
                return Err(ApiError {
                    status: StatusCode::NOT_FOUND,
                    message: format!(
                        "No route `{route}` in your organization; GET /v1/routes lists them."
                    ),
                    kind: "invalid_request_error",
                    param: Some("route".into()),
                    code: Some("route_not_found"),
                });
            };
            let policy = resolved.policy();
            let on_route = policy.baseline == model.as_str()
                || policy.candidates.iter().any(|c| c == model.as_str());
            if !on_route {
                return Err(ApiError {
                    status: StatusCode::BAD_REQUEST,
                    message: format!(
                        "`{model}` is not a model of route `{route}` (baseline `{}`, candidates: {}).",
                        policy.baseline,
                        policy.candidates.join(", ")
                    ),
                    kind: "invalid_request_error",
                    param: Some("model".into()),
                    code: Some("model_not_on_route"),
                });
            }
            Ok(Subject {
                target: Target::Pair {
                    route: route.clone(),
                    model,
                },
                session: None,
                route: Some(route),
            })
        }
    }
}

/// Builds the event of a resolved submission.
fn event_of(
    gateway: &Gateway,
    caller: &Caller,
    subject: Subject,
    score: Score,
) -> FeedbackSubmitted {
    let feedback_id = feedback_id(&caller.org, &subject.target, score.source, &caller.key_id);
    let trace_id = match &subject.target {
        Target::Request { request_id } => TraceId::new(request_id.as_str()),
        Target::Session { .. } | Target::Pair { .. } => TraceId::new(feedback_id.as_str()),
    };
    let model = match &subject.target {
        Target::Pair { model, .. } => Some(model.clone()),
        _ => None,
    };
    FeedbackSubmitted {
        envelope: Envelope {
            event_id: EventId::now_v7(),
            org: caller.org.clone(),
            event_time: Timestamp::from_micros(gateway.clock.now_micros()),
            trace_id,
            partition_key: partition_key(&subject.target, subject.session.as_ref()),
        },
        feedback_id,
        target: subject.target,
        source: score.source,
        raw_score: score.raw,
        raw_scale: score.scale,
        normalized_score: score.normalized,
        idempotency_key: None,
        comment: score.comment,
        derived_from: None,
        route: subject.route,
        model,
        labels: BTreeMap::from([(API_KEY_LABEL.to_owned(), caller.key_id.as_str().to_owned())]),
    }
}

fn log_unavailable(detail: &str) -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!(
            "The feedback was not recorded: {detail}. Retry shortly; retries are idempotent."
        ),
        kind: "server_error",
        param: None,
        code: Some("log_unavailable"),
    }
}

/// Appends the event through the node's writer and waits until it is durable; returns where it
/// landed on the log.
async fn append(
    writer: Option<&ControlWriter>,
    event: FeedbackSubmitted,
) -> Result<switchyard_log::Position, ApiError> {
    let writer = writer.ok_or_else(|| log_unavailable("this node has no event-log writer"))?;
    match writer.append(&Event::FeedbackSubmitted(event)).await {
        Ok(position) => Ok(position),
        Err(ControlError::Encode(e)) => {
            // A validated event that does not encode is a bug, not the client's doing.
            tracing::error!(error = %e, "a feedback event does not encode");
            Err(ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "The feedback could not be encoded; this is a bug in Switchyard.".into(),
                kind: "server_error",
                param: None,
                code: None,
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot append feedback to the log");
            Err(log_unavailable(&format!(
                "the event log is unavailable ({e})"
            )))
        }
    }
}

/// `POST /v1/feedback`.
pub(crate) async fn submit(request: ApiRequest<Value>) -> Result<Json<Value>, ApiError> {
    let ApiRequest {
        gateway,
        caller,
        headers,
        body,
    } = request;
    let Submission { subject, score } = parse(&body, &caller)?;
    let subject = resolve(&gateway, &caller, &headers, subject).await?;
    let event = event_of(&gateway, &caller, subject, score);
    let mut answer = serde_json::json!({
        "id": event.feedback_id.as_str(),
        "object": "feedback",
        "target": event.target,
        "source": event.source.as_str(),
        "scale": event.raw_scale.as_str(),
        "raw_score": event.raw_score,
        "score": event.normalized_score.get(),
        "accepted": true,
    });
    let position = append(gateway.plane.writer(), event).await?;
    // Where the event is on the log: a routing table whose `source_offsets` reach it
    // (`GET /v1/routing/table`) has folded it.
    answer["log"] = serde_json::json!({
        "topic": position.topic.name(),
        "partition": position.partition,
        "offset": position.offset,
    });
    Ok(Json(answer))
}

#[cfg(test)]
mod tests;
