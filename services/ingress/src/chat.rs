//! `POST /v1/chat/completions`, non-streaming and streaming (SSE), in OpenAI's shape.
//!
//! Per request: authenticate → parse → decide (route, model) → publish `RequestReceived` and
//! `RouteDecided` → call the provider → answer with `id` = the request id (the id
//! `/v1/feedback` accepts) and `model` = the model that served → publish `ResponseCompleted`.
//! Publishing never blocks the response (see [`crate::publish`]). When the decision mirrors the
//! request (shadow mode), the mirror starts in the background once the response is out (see
//! [`crate::mirror`]).
//!
//! # Text capture
//!
//! For routes whose [`RouteConfig::text_capture`](switchyard_config::RouteConfig) is set
//! (`[judge]`: routes the LLM judge grades that opted in, or demo-only routes), the events also
//! carry the texts the judge needs: `RequestReceived.prompt_text`, the conversation rendered as
//! `role: text` blocks ([`conversation_text`], the end kept when too long), and
//! `ResponseCompleted.completion_text`, the answer's text (the start kept when too long), for
//! the response and for a shadow mirror alike. Every other route records neither: what users
//! type stays out of the log unless a route opts in.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Serialize;
use switchyard_config::TextCapture;
use switchyard_events::{
    Attempt, Envelope, Event, EventId, ModelName, PartitionKey, ProviderName, RequestId,
    RequestReceived, RequestedModel, ResponseCompleted, ResponseStatus, SessionId, Timestamp,
    TraceId, Usd,
};
use switchyard_providers::types::{FinishReason, ResponseFormat, Role, StreamOptions};
use switchyard_providers::{
    AnyProvider, ChatRequest, ModelInfo, Provider, ProviderError, ProviderErrorKind,
};

use crate::auth::Caller;
use crate::extract::ApiRequest;
use crate::gateway::{DECISION_HEADER, Decision, Gateway, SESSION_HEADER};
use crate::{ApiError, AppState};

/// Everything about one request that the completion event needs.
struct Context {
    gateway: Arc<Gateway>,
    caller: Caller,
    request_id: RequestId,
    session: Option<SessionId>,
    trace: TraceId,
    decision: Decision,
    started: Instant,
    /// The model that served (the decision's, or the fallback).
    served: ModelInfo,
    /// Every provider call made for this request, in order.
    attempts: Vec<Attempt>,
    /// The tokens reserved against the key's tokens-per-minute limit and when (µs), settled
    /// against the real usage when the response completes; `None` for a shadow mirror, which
    /// the caller did not ask for.
    reserved: Option<(u64, i64)>,
}

pub(crate) fn gateway_of(state: &AppState) -> Result<Arc<Gateway>, ApiError> {
    state.gateway.clone().ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        message: "This node does not run the ingress role.".into(),
        kind: "invalid_request_error",
        param: None,
        code: Some("unknown_url"),
    })
}

pub(crate) fn body_error(rejection: &BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "Request body too large: the limit is {limit} bytes (server.max_body_bytes)."
            ),
            kind: "invalid_request_error",
            param: None,
            code: Some("request_too_large"),
        }
    } else {
        ApiError::invalid(
            format!("Could not read the request body: {rejection}"),
            None,
        )
    }
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid(
            "The request body is empty; send a JSON object.".into(),
            None,
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            format!("We could not parse the JSON body of your request: {e}."),
            None,
        )
    })
}

fn validate(req: &ChatRequest) -> Result<(), ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::invalid(
            "`messages` must contain at least one message.".into(),
            Some("messages"),
        ));
    }
    if req.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid(
            "Only n = 1 is supported.".into(),
            Some("n"),
        ));
    }
    if let Some(t) = req.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(ApiError::invalid(
            format!("{t} is not valid for temperature: it must be between 0 and 2."),
            Some("temperature"),
        ));
    }
    if let Some(p) = req.top_p
        && !(0.0..=1.0).contains(&p)
    {
        return Err(ApiError::invalid(
            format!("{p} is not valid for top_p: it must be between 0 and 1."),
            Some("top_p"),
        ));
    }
    if req.max_tokens == Some(0) || req.max_completion_tokens == Some(0) {
        return Err(ApiError::invalid(
            "max tokens must be at least 1.".into(),
            Some("max_completion_tokens"),
        ));
    }
    Ok(())
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|s| !s.is_empty() && s.len() <= 256)
}

fn envelope(ctx: &Context) -> Envelope {
    Envelope {
        event_id: EventId::now_v7(),
        org: ctx.caller.org.clone(),
        event_time: Timestamp::from_micros(ctx.gateway.clock.now_micros()),
        trace_id: ctx.trace.clone(),
        partition_key: PartitionKey::session_or_request(ctx.session.as_ref(), &ctx.request_id),
    }
}

fn received_event(ctx: &Context, req: &ChatRequest, headers: &HeaderMap) -> RequestReceived {
    let input_chars: usize = req
        .messages
        .iter()
        .map(|m| m.content.as_ref().map_or(0, |c| c.text().len()))
        .sum();
    RequestReceived {
        envelope: envelope(ctx),
        request_id: ctx.request_id.clone(),
        session_id: ctx.session.clone(),
        route: Some(ctx.decision.route.clone()),
        api_key_id: ctx.caller.key_id.clone(),
        requested_model: if req.model == "auto" {
            RequestedModel::Auto
        } else {
            RequestedModel::Model(ModelName::new(req.model.as_str()))
        },
        stream: req.stream,
        message_count: i32::try_from(req.messages.len()).unwrap_or(i32::MAX),
        input_chars: input_chars as i64,
        estimated_input_tokens: ctx.decision.input_tokens as i64,
        has_tools: req.tools.as_ref().is_some_and(|t| !t.is_empty()),
        wants_json_schema: matches!(req.response_format, Some(ResponseFormat::JsonSchema { .. })),
        has_images: req.messages.iter().any(|m| {
            m.content
                .as_ref()
                .is_some_and(switchyard_providers::types::Content::has_image)
        }),
        max_tokens: req
            .max_completion_tokens
            .or(req.max_tokens)
            .map(|t| t as i64),
        language: header_str(headers, "accept-language"),
        prompt_text: text_capture(ctx).map(|c| conversation_text(req, c.max_prompt_chars)),
        metadata: Default::default(),
        client: header_str(headers, "user-agent"),
    }
}

/// Returns how much text the events of the request's route record, if any.
fn text_capture(ctx: &Context) -> Option<TextCapture> {
    ctx.gateway
        .routes
        .get(ctx.decision.route.as_str())
        .and_then(|route| route.text_capture)
}

/// Marks the start of a conversation recorded without its beginning.
const EARLIER_TRUNCATED: &str = "[earlier conversation truncated]\n";
/// Marks the end of an answer recorded without its end.
const LATER_TRUNCATED: &str = "\n[truncated]";

/// Renders a conversation as plain text, one `role: text` block per message (tool calls as
/// `[calls name(arguments)]`, images and files left out), in at most `max` characters: when
/// longer, the end is kept (the last turn is what is answered), after a marker.
pub(crate) fn conversation_text(req: &ChatRequest, max: usize) -> String {
    let mut text = String::new();
    for message in &req.messages {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(match message.role {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        });
        text.push_str(": ");
        if let Some(content) = &message.content {
            text.push_str(&content.text());
        }
        for call in message.tool_calls.iter().flatten() {
            text.push_str(&format!(
                "\n[calls {}({})]",
                call.function.name, call.function.arguments
            ));
        }
    }
    let chars = text.chars().count();
    if chars <= max {
        return text;
    }
    let keep = max.saturating_sub(EARLIER_TRUNCATED.chars().count());
    let tail: String = text.chars().skip(chars - keep).collect();
    format!("{EARLIER_TRUNCATED}{tail}")
        .chars()
        .take(max)
        .collect()
}

/// Returns an answer's text in at most `max` characters: when longer, the start, then a
/// marker. `None` for an empty answer (a tool call only).
pub(crate) fn completion_text(text: Option<&str>, max: usize) -> Option<String> {
    let text = text.filter(|t| !t.is_empty())?;
    if text.chars().count() <= max {
        return Some(text.to_owned());
    }
    let keep = max.saturating_sub(LATER_TRUNCATED.chars().count());
    let head: String = text.chars().take(keep).collect();
    Some(
        format!("{head}{LATER_TRUNCATED}")
            .chars()
            .take(max)
            .collect(),
    )
}

/// What the response event records about the outcome.
struct Outcome {
    status: ResponseStatus,
    finish: Option<FinishReason>,
    usage: Option<switchyard_providers::types::Usage>,
    ttft_ms: Option<i64>,
    error: Option<ProviderError>,
}

fn completed_event(ctx: &Context, outcome: Outcome) -> ResponseCompleted {
    let latency_ms = ctx.started.elapsed().as_millis() as i64;
    // A failure without usage keeps its reservation: the upstream may have billed it.
    if let (Some((reserved, at)), Some(u)) = (ctx.reserved, outcome.usage.as_ref()) {
        ctx.gateway
            .limits
            .settle(&ctx.caller.key_id, reserved, u.total_tokens, at);
    }
    let usage = outcome.usage.unwrap_or_default();
    let cost = ctx.served.cost_usd(&usage).and_then(|c| Usd::new(c).ok());
    if let Some(cost) = cost {
        // Towards the org's daily budget (mirrored requests are billed too).
        let now = ctx.gateway.clock.now_micros();
        ctx.gateway
            .limits
            .spend(&ctx.caller.key_id, &ctx.caller.org, cost.get(), now);
    }
    let mut attempts = ctx.attempts.clone();
    if let Some(e) = &outcome.error
        && attempts.last().is_none_or(|a| a.outcome == "ok")
    {
        // A failure after the stream started: recorded as the final attempt's outcome.
        attempts.push(attempt_record(&ctx.served, Err(e), latency_ms, None));
    }
    ResponseCompleted {
        envelope: envelope(ctx),
        request_id: ctx.request_id.clone(),
        decision_id: ctx.decision.id.clone(),
        session_id: ctx.session.clone(),
        served_model: ModelName::new(ctx.served.id.as_str()),
        provider: ProviderName::new(ctx.served.provider()),
        status: outcome.status,
        finish_reason: outcome.finish.map(|f| finish_name(f).to_owned()),
        usage: switchyard_events::Usage {
            prompt_tokens: usage.prompt_tokens as i64,
            completion_tokens: usage.completion_tokens as i64,
            cached_tokens: usage.cached_tokens() as i64,
            reasoning_tokens: usage.reasoning_tokens() as i64,
            total_tokens: usage.total_tokens as i64,
        },
        cost_usd: cost,
        latency_ms,
        ttft_ms: outcome.ttft_ms,
        attempts,
        error_code: outcome.error.as_ref().map(|e| e.metric_label().to_owned()),
        completion_text: None,
        shadow: false,
    }
}

fn attempt_record(
    model: &ModelInfo,
    result: Result<(), &ProviderError>,
    latency_ms: i64,
    note: Option<String>,
) -> Attempt {
    Attempt {
        provider: ProviderName::new(model.provider()),
        model: ModelName::new(model.id.as_str()),
        outcome: result
            .err()
            .map_or("ok", ProviderError::metric_label)
            .to_owned(),
        status_code: result.err().and_then(|e| e.status).map(i32::from),
        latency_ms,
        reason: match (result.err(), note) {
            (Some(e), Some(n)) => Some(format!("{}; {n}", e.message)),
            (Some(e), None) => Some(e.message.clone()),
            (None, n) => n,
        },
    }
}

/// Whether a failure should move on to the fallback model rather than go back to the client.
fn falls_back(e: &ProviderError) -> bool {
    e.is_retryable()
        || matches!(
            e.kind,
            ProviderErrorKind::Unauthorized
                | ProviderErrorKind::NotFound
                | ProviderErrorKind::InvalidResponse
                | ProviderErrorKind::QuotaExceeded
        )
}

/// Calls the chosen model with retries (429, 5xx, timeouts, transport; honouring Retry-After up
/// to `max_retry_after`, beyond which it moves on at once), then the route's baseline as the
/// fallback. Every call is recorded in `ctx.attempts`; `ctx.served` names the model that
/// answered. `timeout` bounds each call (the time to first token, for streams).
async fn call_with_fallback<T, F, Fut>(
    ctx: &mut Context,
    req: &ChatRequest,
    timeout: Option<std::time::Duration>,
    mut call: F,
) -> Result<T, ProviderError>
where
    F: FnMut(AnyProvider, String) -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let gateway = Arc::clone(&ctx.gateway);
    let policy = &gateway.retry;
    let mut targets = vec![ctx.decision.model.clone()];
    if let Some(baseline) = gateway.catalog.get(&ctx.decision.baseline)
        && ctx.decision.routed
        && baseline.id != ctx.decision.model.id
        && gateway.provider(baseline).is_some()
        && baseline
            .cannot_serve(req, ctx.decision.input_tokens)
            .is_none()
    {
        targets.push(baseline.clone());
    }
    let mut last = None;
    for (t, model) in targets.iter().enumerate() {
        let Some(provider) = gateway.provider(model).cloned() else {
            continue;
        };
        for attempt in 0..=policy.retries {
            let started = Instant::now();
            let call = call(provider.clone(), model.upstream_name().to_owned());
            let result = match timeout {
                Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                    Err(ProviderError::new(
                        model.provider(),
                        ProviderErrorKind::Timeout,
                        format!("no first token within {} ms", limit.as_millis()),
                    ))
                }),
                None => call.await,
            };
            let took = started.elapsed().as_millis() as i64;
            match result {
                Ok(value) => {
                    let note = (t > 0).then(|| "fallback to the route's baseline".to_owned());
                    ctx.attempts.push(attempt_record(model, Ok(()), took, note));
                    ctx.served = model.clone();
                    return Ok(value);
                }
                Err(e) => {
                    let wait = policy.backoff * 2u32.saturating_pow(attempt);
                    let wait = e.retry_after.map_or(wait, |r| r.max(wait));
                    let (retry, note) = if !e.is_retryable() {
                        (
                            false,
                            if falls_back(&e) {
                                "not retryable; trying the fallback"
                            } else {
                                "not retryable"
                            },
                        )
                    } else if e.retry_after.is_some_and(|r| r > policy.max_retry_after) {
                        (false, "Retry-After too long to wait; trying the fallback")
                    } else if attempt == policy.retries {
                        (false, "retries exhausted")
                    } else {
                        (true, "retrying")
                    };
                    ctx.attempts
                        .push(attempt_record(model, Err(&e), took, Some(note.to_owned())));
                    let fall_back = falls_back(&e);
                    last = Some(e);
                    if retry {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    if !fall_back {
                        return Err(last.unwrap_or_else(|| {
                            ProviderError::new("gateway", ProviderErrorKind::Server, "no attempt")
                        }));
                    }
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        ProviderError::new(
            "gateway",
            ProviderErrorKind::Server,
            "no provider could be called",
        )
    }))
}

fn finish_name(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::FunctionCall => "function_call",
    }
}

fn status_of(finish: Option<FinishReason>, refused: bool) -> ResponseStatus {
    match finish {
        _ if refused => ResponseStatus::Refused,
        Some(FinishReason::Length) => ResponseStatus::Truncated,
        Some(FinishReason::ContentFilter) => ResponseStatus::Refused,
        _ => ResponseStatus::Ok,
    }
}

/// Maps a provider failure to the client's error.
pub(crate) fn provider_error(e: &ProviderError) -> ApiError {
    let (status, kind, code) = match e.kind {
        ProviderErrorKind::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "upstream_rate_limited",
        ),
        // The upstream account is out of quota: a retry from the client cannot help either
        // (`x-should-retry: false`, set for this code by `ApiError`).
        ProviderErrorKind::QuotaExceeded => (
            StatusCode::TOO_MANY_REQUESTS,
            "insufficient_quota",
            "insufficient_quota",
        ),
        ProviderErrorKind::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "timeout_error",
            "upstream_timeout",
        ),
        ProviderErrorKind::BadRequest => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "upstream_rejected_request",
        ),
        ProviderErrorKind::ContextLength => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        ProviderErrorKind::Unsupported => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "unsupported_request",
        ),
        ProviderErrorKind::NotFound => (
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
        ),
        ProviderErrorKind::Server
        | ProviderErrorKind::Transport
        | ProviderErrorKind::Unauthorized
        | ProviderErrorKind::InvalidResponse => {
            (StatusCode::BAD_GATEWAY, "api_error", "upstream_error")
        }
    };
    ApiError {
        status,
        message: format!("The upstream provider failed: {}", e.message),
        kind,
        param: None,
        code: Some(code),
    }
}

fn with_ids(response: Response, ctx: &Context) -> Response {
    with_id_headers(response, &ctx.request_id, &ctx.decision.id)
}

/// Adds `x-request-id` and `x-switchyard-decision-id`.
fn with_id_headers(
    mut response: Response,
    request: &RequestId,
    decision: &switchyard_events::DecisionId,
) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request.as_str()) {
        headers.insert("x-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(decision.as_str()) {
        headers.insert(DECISION_HEADER, v);
    }
    response
}

/// The handler.
pub(crate) async fn chat_completions(
    request: ApiRequest<ChatRequest>,
) -> Result<Response, ApiError> {
    let ApiRequest {
        gateway,
        caller,
        headers,
        body: req,
    } = request;
    let headers = &headers;
    validate(&req)?;
    let decision = gateway.decide(&caller, headers, &req)?;
    let reserve =
        decision.needs.input_tokens + decision.policy.learning.output_tokens(&decision.needs);
    let admitted_at = match gateway.admit(&caller, reserve) {
        Ok(at) => at,
        Err(limited) => return Ok((*limited).into_response()),
    };
    let reserved = caller.limits.is_limited().then_some((reserve, admitted_at));
    let session = header_str(headers, SESSION_HEADER).map(SessionId::new);
    let request_id = gateway.mint_request_id(session.as_ref());
    let ctx = Context {
        session,
        trace: TraceId::new(request_id.as_str()),
        request_id,
        caller,
        served: decision.model.clone(),
        decision,
        gateway: Arc::clone(&gateway),
        started: Instant::now(),
        attempts: Vec::new(),
        reserved,
    };
    gateway
        .publisher
        .publish(Event::RequestReceived(received_event(&ctx, &req, headers)));
    gateway
        .publisher
        .publish(Event::RouteDecided(gateway.decided_event(
            &ctx.caller,
            &ctx.decision,
            &ctx.request_id,
            ctx.session.as_ref(),
            &ctx.trace,
        )));
    let mirror = mirror_of(&ctx, &req);
    if req.stream {
        stream(ctx, req, mirror).await
    } else {
        let response = complete(ctx, req).await;
        // The primary call is over and its answer is ready: the mirror runs beside the
        // response's write, never before it.
        if let Some(mirror) = mirror {
            mirror.spawn();
        }
        response
    }
}

/// A shadow mirror waiting for its primary response to be out: its own context (the mirror's
/// request id, the shadow model as the served model) and the request as the mirror sends it.
struct Mirror {
    ctx: Context,
    req: ChatRequest,
}

/// Returns the mirror of a request whose decision asks for one (shadow mode, sampled, within
/// the spend cap), taken before the primary path consumes the request.
fn mirror_of(ctx: &Context, req: &ChatRequest) -> Option<Mirror> {
    let outcome = ctx.decision.outcome.as_ref().filter(|o| o.mirror)?;
    let shadow = outcome.shadow.as_deref()?;
    let Some(model) = ctx.gateway.catalog.get(shadow) else {
        tracing::warn!(
            model = shadow,
            "the shadow model is not in the catalog: not mirrored"
        );
        return None;
    };
    let mut req = req.clone();
    req.stream = false;
    req.stream_options = None;
    Some(Mirror {
        ctx: Context {
            gateway: Arc::clone(&ctx.gateway),
            caller: ctx.caller.clone(),
            request_id: ResponseCompleted::mirror_request_id(&ctx.request_id),
            session: ctx.session.clone(),
            trace: ctx.trace.clone(),
            decision: ctx.decision.clone(),
            started: Instant::now(),
            served: model.clone(),
            attempts: Vec::new(),
            reserved: None,
        },
        req,
    })
}

impl Mirror {
    /// Starts the mirror in the background; a shutdown drain waits for it.
    fn spawn(self) {
        let mirrors = self.ctx.gateway.mirrors.clone();
        mirrors.spawn(self.run());
    }

    /// Calls the shadow model once (non-streaming, no retry, no fallback, the provider's own
    /// timeouts), settles its spend and publishes its `ResponseCompleted` with `shadow` set.
    /// The answer itself is dropped.
    async fn run(self) {
        let Mirror { mut ctx, req } = self;
        ctx.started = Instant::now();
        let provider = ctx.gateway.provider(&ctx.served).cloned();
        let result = match provider {
            Some(provider) => provider.complete(ctx.served.upstream_name(), &req).await,
            None => Err(ProviderError::new(
                ctx.served.provider(),
                ProviderErrorKind::NotFound,
                format!("provider `{}` is not configured", ctx.served.provider()),
            )),
        };
        let took = ctx.started.elapsed().as_millis() as i64;
        let capture = text_capture(&ctx);
        let mut answer = None;
        let outcome = match result {
            Ok(response) => {
                if let Some(capture) = capture {
                    answer = completion_text(
                        response
                            .choices
                            .first()
                            .and_then(|c| c.message.content.as_deref()),
                        capture.max_completion_chars,
                    );
                }
                ctx.attempts
                    .push(attempt_record(&ctx.served, Ok(()), took, None));
                let finish = response.choices.first().map(|c| c.finish_reason);
                let refused = response.choices.iter().any(|c| c.message.refusal.is_some());
                Outcome {
                    status: status_of(finish, refused),
                    finish,
                    usage: response.usage,
                    ttft_ms: None,
                    error: None,
                }
            }
            Err(e) => {
                ctx.attempts.push(attempt_record(
                    &ctx.served,
                    Err(&e),
                    took,
                    Some("shadow mirror: one attempt, not retried".to_owned()),
                ));
                Outcome {
                    status: if e.kind == ProviderErrorKind::Timeout {
                        ResponseStatus::Timeout
                    } else {
                        ResponseStatus::Error
                    },
                    finish: None,
                    usage: None,
                    ttft_ms: None,
                    error: Some(e),
                }
            }
        };
        let mut event = completed_event(&ctx, outcome);
        event.shadow = true;
        event.completion_text = answer;
        ctx.gateway.mirrors.settle(
            &ctx.caller.org,
            ctx.decision.route.as_str(),
            &ctx.served.id,
            event.status,
            event.cost_usd.map(Usd::get),
            event.envelope.event_time.as_micros(),
        );
        ctx.gateway
            .publisher
            .publish(Event::ResponseCompleted(event));
    }
}

async fn complete(mut ctx: Context, req: ChatRequest) -> Result<Response, ApiError> {
    let result = call_with_fallback(&mut ctx, &req, None, |provider, model| {
        let req = &req;
        async move { provider.complete(&model, req).await }
    })
    .await;
    match result {
        Ok(mut response) => {
            response.id = ctx.request_id.as_str().to_owned();
            response.model = ctx.served.id.clone();
            response.created = ctx.gateway.clock.now_micros() / 1_000_000;
            response.object = "chat.completion".into();
            let finish = response.choices.first().map(|c| c.finish_reason);
            let refused = response.choices.iter().any(|c| c.message.refusal.is_some());
            let mut event = completed_event(
                &ctx,
                Outcome {
                    status: status_of(finish, refused),
                    finish,
                    usage: response.usage.clone(),
                    ttft_ms: None,
                    error: None,
                },
            );
            event.completion_text = text_capture(&ctx).and_then(|capture| {
                completion_text(
                    response
                        .choices
                        .first()
                        .and_then(|c| c.message.content.as_deref()),
                    capture.max_completion_chars,
                )
            });
            ctx.gateway
                .publisher
                .publish(Event::ResponseCompleted(event));
            Ok(with_ids(Json(response).into_response(), &ctx))
        }
        Err(e) => {
            let status = if e.kind == ProviderErrorKind::Timeout {
                ResponseStatus::Timeout
            } else {
                ResponseStatus::Error
            };
            let api = provider_error(&e);
            ctx.gateway
                .publisher
                .publish(Event::ResponseCompleted(completed_event(
                    &ctx,
                    Outcome {
                        status,
                        finish: None,
                        usage: None,
                        ttft_ms: None,
                        error: Some(e),
                    },
                )));
            Ok(with_ids(api.into_response(), &ctx))
        }
    }
}

#[derive(Serialize)]
struct StreamError<'a> {
    error: StreamErrorBody<'a>,
}

#[derive(Serialize)]
struct StreamErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

fn sse(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

async fn stream(
    mut ctx: Context,
    mut req: ChatRequest,
    mirror: Option<Mirror>,
) -> Result<Response, ApiError> {
    let client_wants_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    // Always ask the upstream for usage: cost needs it even when the client does not.
    req.stream_options
        .get_or_insert_with(StreamOptions::default)
        .include_usage = true;
    let first_token = ctx.gateway.retry.first_token_timeout;
    let result = call_with_fallback(&mut ctx, &req, Some(first_token), |provider, model| {
        let req = &req;
        async move { provider.stream(&model, req).await }
    })
    .await;
    let upstream = match result {
        Ok(s) => s,
        Err(e) => {
            let api = provider_error(&e);
            ctx.gateway
                .publisher
                .publish(Event::ResponseCompleted(completed_event(
                    &ctx,
                    Outcome {
                        status: ResponseStatus::Error,
                        finish: None,
                        usage: None,
                        ttft_ms: None,
                        error: Some(e),
                    },
                )));
            if let Some(mirror) = mirror {
                mirror.spawn();
            }
            return Ok(with_ids(api.into_response(), &ctx));
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(32);
    let served = ctx.served.id.clone();
    let id = ctx.request_id.as_str().to_owned();
    let created = ctx.gateway.clock.now_micros() / 1_000_000;
    let headers_ctx = (ctx.request_id.clone(), ctx.decision.id.clone());
    let capture = text_capture(&ctx);
    tokio::spawn(async move {
        let mut upstream = upstream;
        // The answer's text as streamed, when the route records it: one character past the
        // limit at most, so `completion_text` can tell that it was cut.
        let mut answer = capture.map(|_| String::new());
        let mut answer_chars = 0usize;
        let mut usage = None;
        let mut finish = None;
        let mut ttft_ms = None;
        let mut error = None;
        let mut cancelled = false;
        while let Some(item) = upstream.next().await {
            match item {
                Ok(mut chunk) => {
                    chunk.id.clone_from(&id);
                    chunk.model.clone_from(&served);
                    chunk.created = created;
                    chunk.object = "chat.completion.chunk".into();
                    if let Some(u) = chunk.usage.take() {
                        usage = Some(u.clone());
                        if chunk.choices.is_empty() {
                            if !client_wants_usage {
                                continue;
                            }
                            chunk.usage = Some(u);
                        }
                    }
                    if let Some(f) = chunk.choices.iter().find_map(|c| c.finish_reason) {
                        finish = Some(f);
                    }
                    if let (Some(answer), Some(capture)) = (answer.as_mut(), capture) {
                        let room = (capture.max_completion_chars + 1).saturating_sub(answer_chars);
                        if room > 0
                            && let Some(piece) = chunk
                                .choices
                                .first()
                                .and_then(|c| c.delta.content.as_deref())
                        {
                            let before = answer.len();
                            answer.extend(piece.chars().take(room));
                            answer_chars += answer[before..].chars().count();
                        }
                    }
                    if ttft_ms.is_none()
                        && chunk
                            .choices
                            .iter()
                            .any(|c| c.delta.content.is_some() || c.delta.tool_calls.is_some())
                    {
                        ttft_ms = Some(ctx.started.elapsed().as_millis() as i64);
                    }
                    let Ok(json) = serde_json::to_vec(&chunk) else {
                        continue;
                    };
                    if tx.send(sse(&json)).await.is_err() {
                        cancelled = true;
                        break;
                    }
                }
                Err(e) => {
                    let api = provider_error(&e);
                    let body = StreamError {
                        error: StreamErrorBody {
                            message: &api.message,
                            kind: api.kind,
                            param: None,
                            code: api.code,
                        },
                    };
                    if let Ok(json) = serde_json::to_vec(&body) {
                        let _ = tx.send(sse(&json)).await;
                    }
                    error = Some(e);
                    break;
                }
            }
        }
        if error.is_none() && !cancelled {
            let _ = tx.send(sse(b"[DONE]")).await;
        }
        let status = match (&error, cancelled) {
            (Some(e), _) if e.kind == ProviderErrorKind::Timeout => ResponseStatus::Timeout,
            (Some(_), _) => ResponseStatus::Error,
            (None, true) => ResponseStatus::Cancelled,
            (None, false) => status_of(finish, false),
        };
        let mut event = completed_event(
            &ctx,
            Outcome {
                status,
                finish,
                usage,
                ttft_ms,
                error,
            },
        );
        event.completion_text = capture
            .and_then(|capture| completion_text(answer.as_deref(), capture.max_completion_chars));
        ctx.gateway
            .publisher
            .publish(Event::ResponseCompleted(event));
        // The stream is over (or the client left): only now does the mirror start, so it never
        // competes with the stream it shadows.
        if let Some(mirror) = mirror {
            mirror.spawn();
        }
    });
    let body = Body::from_stream(tokio_stream_of(rx));
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(with_id_headers(response, &headers_ctx.0, &headers_ctx.1))
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(Ok)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(messages: serde_json::Value) -> ChatRequest {
        serde_json::from_value(json!({"model": "auto", "messages": messages})).unwrap()
    }

    #[test]
    fn conversations_render_as_role_blocks_keeping_the_end() {
        let req = request(json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "weather?"}, {"type": "image_url", "image_url": {"url": "data:,"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "user", "content": "thanks, and tomorrow?"}
        ]));
        let text = conversation_text(&req, 10_000);
        assert_eq!(
            text,
            "system: be brief\n\nuser: weather?\n\nassistant: \n[calls get_weather({\"city\":\"Paris\"})]\n\ntool: sunny\n\nuser: thanks, and tomorrow?"
        );
        let short = conversation_text(&req, 60);
        assert_eq!(short.chars().count(), 60);
        assert!(short.starts_with(EARLIER_TRUNCATED), "{short}");
        assert!(short.ends_with("user: thanks, and tomorrow?"), "{short}");
        // Multi-byte characters are cut on character boundaries.
        let req = request(json!([{"role": "user", "content": "日本語".repeat(50)}]));
        assert_eq!(conversation_text(&req, 40).chars().count(), 40);
    }

    #[test]
    fn completions_keep_the_start_within_the_limit() {
        assert_eq!(completion_text(Some("hello"), 10).as_deref(), Some("hello"));
        assert_eq!(completion_text(Some(""), 10), None);
        assert_eq!(completion_text(None, 10), None);
        let long = "é".repeat(100);
        let cut = completion_text(Some(&long), 30).unwrap();
        assert_eq!(cut.chars().count(), 30);
        assert!(
            cut.starts_with('é') && cut.ends_with(LATER_TRUNCATED),
            "{cut}"
        );
    }
}
