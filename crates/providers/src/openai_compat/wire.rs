//! Translation between Switchyard's chat types and one provider's dialect of the OpenAI wire
//! format: request bodies with the row's quirks applied, and upstream answers normalised back
//! into [`ChatResponse`], [`ChatChunk`] and [`EmbeddingResponse`].

use serde_json::{Map, Value, json};

use super::quirks::{MaxTokensField, Quirks, StreamUsage};
use crate::http::{error_value_message, truncate};
use crate::types::{
    ChatChunk, ChatRequest, ChatResponse, CompletionTokensDetails, EmbeddingRequest,
    EmbeddingResponse, PromptTokensDetails, Usage,
};
use crate::{ProviderError, ProviderErrorKind};

/// Returns whether a request field is in use: present, not null and not `false`.
fn in_use(body: &Map<String, Value>, field: &str) -> bool {
    !matches!(
        body.get(field),
        None | Some(Value::Null | Value::Bool(false))
    )
}

fn unsupported(provider: &str, message: String) -> ProviderError {
    ProviderError::new(provider, ProviderErrorKind::Unsupported, message)
}

fn invalid(provider: &str, message: String) -> ProviderError {
    ProviderError::new(provider, ProviderErrorKind::InvalidResponse, message)
}

/// Returns the body of a chat completion request for this provider: the model replaced by the
/// upstream name, streaming switched on or off, and the row's quirks applied. Fails as
/// `Unsupported` when the request uses something the provider is known to reject.
pub(crate) fn chat_body(
    quirks: &Quirks,
    provider: &str,
    upstream_model: &str,
    req: &ChatRequest,
    stream: bool,
) -> Result<Value, ProviderError> {
    let mut body = match serde_json::to_value(req) {
        Ok(Value::Object(map)) => map,
        Ok(_) | Err(_) => {
            return Err(ProviderError::new(
                provider,
                ProviderErrorKind::BadRequest,
                "the request could not be serialised",
            ));
        }
    };
    body.insert("model".into(), Value::String(upstream_model.into()));

    if req.n.is_some_and(|n| n > 1) && !quirks.multiple_choices {
        return Err(unsupported(
            provider,
            format!("{provider} does not support n > 1"),
        ));
    }
    if req.tools.as_ref().is_some_and(|t| !t.is_empty()) && !quirks.tools {
        return Err(unsupported(
            provider,
            format!("{provider} does not support tools"),
        ));
    }
    if !quirks.tools {
        body.remove("tools");
        body.remove("tool_choice");
    }
    if let Some(field) = quirks.rejected_fields.iter().find(|f| in_use(&body, f)) {
        return Err(unsupported(
            provider,
            format!("{provider} does not support `{field}`"),
        ));
    }
    for field in quirks.dropped_fields {
        body.remove(*field);
    }
    for (from, to) in quirks.renamed_fields {
        if let Some(v) = body.remove(*from) {
            body.insert((*to).into(), v);
        }
    }
    if quirks.strip_message_names
        && let Some(Value::Array(messages)) = body.get_mut("messages")
    {
        for m in messages.iter_mut().filter_map(Value::as_object_mut) {
            m.remove("name");
        }
    }

    // The output limit: one field, spelled the provider's way. When a request carries both,
    // `max_completion_tokens` (the newer, reasoning-inclusive limit) wins.
    let limit = body
        .remove("max_completion_tokens")
        .filter(|v| !v.is_null());
    let legacy = body.remove("max_tokens").filter(|v| !v.is_null());
    match quirks.max_tokens_field {
        MaxTokensField::MaxCompletionTokens => {
            if let Some(v) = limit.or(legacy) {
                body.insert("max_completion_tokens".into(), v);
            }
        }
        MaxTokensField::MaxTokens => {
            if let Some(v) = limit.or(legacy) {
                body.insert("max_tokens".into(), v);
            }
        }
        MaxTokensField::Either => {
            if let Some(v) = limit {
                body.insert("max_completion_tokens".into(), v);
            }
            if let Some(v) = legacy {
                body.insert("max_tokens".into(), v);
            }
        }
    }

    if stream {
        body.insert("stream".into(), Value::Bool(true));
        match quirks.stream_usage {
            StreamUsage::IncludeUsageOption => {
                // Always ask for usage (the gateway drops the usage chunk when the client did
                // not ask); keep any other stream option the client set.
                let options = body
                    .entry("stream_options")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !options.is_object() {
                    *options = Value::Object(Map::new());
                }
                if let Some(o) = options.as_object_mut() {
                    o.insert("include_usage".into(), Value::Bool(true));
                }
            }
            StreamUsage::Unasked => {
                body.remove("stream_options");
            }
        }
    } else {
        body.remove("stream");
        body.remove("stream_options");
    }
    Ok(Value::Object(body))
}

/// Returns the body of an embeddings request: the upstream model, floats (ingress encodes
/// base64 itself when the client asks for it).
pub(crate) fn embeddings_body(upstream_model: &str, req: &EmbeddingRequest) -> Value {
    let mut body = serde_json::to_value(req).unwrap_or_else(|_| json!({}));
    if let Some(map) = body.as_object_mut() {
        map.insert("model".into(), Value::String(upstream_model.into()));
        map.insert("encoding_format".into(), Value::String("float".into()));
    }
    body
}

/// Returns the usage an upstream reported, normalised to OpenAI's shape: DeepSeek's
/// `prompt_cache_hit_tokens` becomes `prompt_tokens_details.cached_tokens`, a top-level
/// `reasoning_tokens` becomes `completion_tokens_details.reasoning_tokens`, a missing total is
/// computed.
pub(crate) fn usage_from(value: &Value) -> Option<Usage> {
    let obj = value.as_object()?;
    let num = |v: Option<&Value>, key: &str| v.and_then(|v| v.get(key)).and_then(Value::as_u64);
    let prompt = num(Some(value), "prompt_tokens")?;
    let completion = num(Some(value), "completion_tokens").unwrap_or(0);
    let total = num(Some(value), "total_tokens").unwrap_or(prompt + completion);
    let prompt_details = obj.get("prompt_tokens_details").filter(|d| d.is_object());
    let completion_details = obj
        .get("completion_tokens_details")
        .filter(|d| d.is_object());

    let cached = num(prompt_details, "cached_tokens").or_else(|| {
        // DeepSeek; OpenAI-style details win when a provider sends both.
        num(Some(value), "prompt_cache_hit_tokens")
    });
    let prompt_tokens_details =
        (prompt_details.is_some() || cached.is_some()).then(|| PromptTokensDetails {
            cached_tokens: cached.unwrap_or(0),
            audio_tokens: num(prompt_details, "audio_tokens"),
        });
    let reasoning = num(completion_details, "reasoning_tokens")
        .or_else(|| num(Some(value), "reasoning_tokens"));
    let completion_tokens_details =
        (completion_details.is_some() || reasoning.is_some()).then(|| CompletionTokensDetails {
            reasoning_tokens: reasoning.unwrap_or(0),
            audio_tokens: num(completion_details, "audio_tokens"),
        });
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
        prompt_tokens_details,
        completion_tokens_details,
    })
}

/// What a `finish_reason` means.
enum Finish {
    Reason(&'static str),
    Error,
}

/// Maps the finish reasons of the family onto OpenAI's. Unknown reasons are read as `stop`:
/// a new word from a provider should not fail answers that arrived whole.
fn finish(reason: &str) -> Finish {
    match reason {
        "length" | "max_tokens" | "model_length" => Finish::Reason("length"),
        "tool_calls" | "tool_use" => Finish::Reason("tool_calls"),
        "content_filter" => Finish::Reason("content_filter"),
        "function_call" => Finish::Reason("function_call"),
        // Mistral's `error` and vLLM's `abort`: the generation failed part-way.
        "error" | "abort" => Finish::Error,
        _ => Finish::Reason("stop"),
    }
}

/// Normalises the choices of a response or chunk in place. `streaming` leaves a null
/// `finish_reason` alone (most chunks have none); a complete answer without one reads as `stop`.
fn normalise_choices(
    provider: &str,
    choices: &mut [Value],
    content_key: &str,
    streaming: bool,
) -> Result<(), ProviderError> {
    for (position, choice) in choices.iter_mut().enumerate() {
        let Some(choice) = choice.as_object_mut() else {
            return Err(invalid(provider, "a choice is not an object".into()));
        };
        if !choice.contains_key("index") {
            choice.insert("index".into(), json!(position));
        }
        match choice.get("finish_reason").and_then(Value::as_str) {
            Some(reason) => match finish(reason) {
                Finish::Reason(r) => {
                    choice.insert("finish_reason".into(), Value::String(r.into()));
                }
                Finish::Error => {
                    return Err(ProviderError::new(
                        provider,
                        ProviderErrorKind::Server,
                        format!("the upstream stopped generating with finish_reason `{reason}`"),
                    ));
                }
            },
            None if !streaming => {
                choice.insert("finish_reason".into(), Value::String("stop".into()));
            }
            None => {}
        }
        let content = choice
            .entry(content_key)
            .or_insert_with(|| Value::Object(Map::new()));
        if content.is_null() {
            *content = Value::Object(Map::new());
        }
        let Some(content) = content.as_object_mut() else {
            return Err(invalid(
                provider,
                format!("`{content_key}` is not an object"),
            ));
        };
        if !streaming && content.get("role").is_none_or(Value::is_null) {
            content.insert("role".into(), Value::String("assistant".into()));
        }
        if let Some(Value::Array(calls)) = content.get_mut("tool_calls") {
            for (i, call) in calls.iter_mut().enumerate() {
                if let Some(call) = call.as_object_mut() {
                    // Some providers send whole tool calls in one chunk without an index.
                    if streaming && !call.contains_key("index") {
                        call.insert("index".into(), json!(i));
                    }
                    if !streaming && !call.contains_key("type") {
                        call.insert("type".into(), Value::String("function".into()));
                    }
                }
            }
        } else if content.get("tool_calls").is_some_and(Value::is_null) {
            content.remove("tool_calls");
        }
    }
    Ok(())
}

/// Fills the envelope fields some providers leave out.
fn fill_envelope(obj: &mut Map<String, Value>, object: &str, model: &str) {
    let missing = |obj: &Map<String, Value>, k: &str| obj.get(k).is_none_or(Value::is_null);
    if missing(obj, "id") {
        obj.insert("id".into(), Value::String(String::new()));
    }
    if missing(obj, "object") {
        obj.insert("object".into(), Value::String(object.into()));
    }
    if missing(obj, "created") {
        obj.insert("created".into(), json!(0));
    }
    if missing(obj, "model") {
        obj.insert("model".into(), Value::String(model.into()));
    }
    if missing(obj, "choices") {
        obj.insert("choices".into(), json!([]));
    }
}

/// Returns Perplexity's top-level `citations` (URLs) as OpenAI `url_citation` annotations,
/// titled from `search_results` when it lists the same URL.
fn citations(obj: &Map<String, Value>) -> Option<Vec<Value>> {
    let results = obj.get("search_results").and_then(Value::as_array);
    let urls: Vec<String> = match obj.get("citations").and_then(Value::as_array) {
        Some(c) if !c.is_empty() => c
            .iter()
            .filter_map(|u| u.as_str().map(str::to_owned))
            .collect(),
        _ => results?
            .iter()
            .filter_map(|r| r.get("url").and_then(Value::as_str).map(str::to_owned))
            .collect(),
    };
    if urls.is_empty() {
        return None;
    }
    Some(
        urls.into_iter()
            .map(|url| {
                let title = results
                    .and_then(|rs| {
                        rs.iter()
                            .find(|r| r.get("url").and_then(Value::as_str) == Some(url.as_str()))
                    })
                    .and_then(|r| r.get("title").cloned())
                    .filter(Value::is_string);
                let mut citation = Map::new();
                citation.insert("url".into(), Value::String(url));
                if let Some(title) = title {
                    citation.insert("title".into(), title);
                }
                json!({"type": "url_citation", "url_citation": citation})
            })
            .collect(),
    )
}

/// Returns the error an in-band `{"error": ...}` object (a 200 body or a stream event) stands
/// for, classified by its numeric `code` / `status` when it has one.
pub(crate) fn in_band_error(provider: &str, value: &Value) -> ProviderError {
    let message = error_value_message(value).unwrap_or_else(|| value.to_string());
    let error = value.get("error").unwrap_or(value);
    let status = ["status", "code", "status_code"]
        .iter()
        .find_map(|k| {
            let v = error.get(*k)?;
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (400..600).contains(s));
    match status {
        Some(status) => ProviderError::from_status(provider, status, message, None),
        None => {
            let kind = match error.get("type").and_then(Value::as_str) {
                Some("insufficient_quota") => ProviderErrorKind::QuotaExceeded,
                Some("rate_limit_error" | "rate_limit_exceeded" | "tokens") => {
                    ProviderErrorKind::RateLimited
                }
                Some("invalid_request_error") => ProviderErrorKind::BadRequest,
                _ => ProviderErrorKind::Server,
            };
            ProviderError::new(provider, kind, message)
        }
    }
}

fn has_error(obj: &Map<String, Value>) -> bool {
    obj.get("error").is_some_and(|e| !e.is_null())
}

/// Parses a non-streaming answer.
pub(crate) fn chat_response(
    quirks: &Quirks,
    provider: &str,
    upstream_model: &str,
    body: &[u8],
) -> Result<ChatResponse, ProviderError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(
            provider,
            format!(
                "the answer is not JSON ({e}): {}",
                truncate(&String::from_utf8_lossy(body), 300)
            ),
        )
    })?;
    let Some(obj) = value.as_object_mut() else {
        return Err(invalid(provider, "the answer is not a JSON object".into()));
    };
    if has_error(obj) {
        return Err(in_band_error(provider, &Value::Object(obj.clone())));
    }
    let usage = obj.remove("usage").as_ref().and_then(usage_from);
    let annotations = if quirks.citations {
        citations(obj)
    } else {
        None
    };
    fill_envelope(obj, "chat.completion", upstream_model);
    if let Some(Value::Array(choices)) = obj.get_mut("choices") {
        normalise_choices(provider, choices, "message", false)?;
        if let Some(annotations) = annotations {
            for choice in choices.iter_mut() {
                if let Some(message) = choice.get_mut("message").and_then(Value::as_object_mut) {
                    let list = message.entry("annotations").or_insert_with(|| json!([]));
                    if let Some(list) = list.as_array_mut() {
                        list.extend(annotations.iter().cloned());
                    }
                }
            }
        }
    }
    let mut response: ChatResponse = serde_json::from_value(value)
        .map_err(|e| invalid(provider, format!("unexpected answer shape: {e}")))?;
    response.usage = usage;
    Ok(response)
}

/// What one streamed event holds once normalised.
#[derive(Debug)]
pub(crate) struct ChunkParts {
    /// The chunk, usage removed; its `choices` are empty when the event held only usage.
    pub chunk: ChatChunk,
    /// Usage, wherever the provider put it.
    pub usage: Option<Usage>,
    /// Citations (Perplexity), as annotations.
    pub annotations: Option<Vec<Value>>,
}

/// Parses one `data:` payload of a stream (not `[DONE]`).
pub(crate) fn chunk(
    quirks: &Quirks,
    provider: &str,
    upstream_model: &str,
    data: &str,
) -> Result<ChunkParts, ProviderError> {
    let mut value: Value = serde_json::from_str(data).map_err(|e| {
        invalid(
            provider,
            format!("malformed stream chunk ({e}): {}", truncate(data, 300)),
        )
    })?;
    let Some(obj) = value.as_object_mut() else {
        return Err(invalid(
            provider,
            format!("stream chunk is not an object: {}", truncate(data, 300)),
        ));
    };
    if has_error(obj) {
        return Err(in_band_error(provider, &Value::Object(obj.clone())));
    }
    let mut usage = obj.remove("usage").as_ref().and_then(usage_from);
    if let Some(x_groq) = obj.remove("x_groq")
        && usage.is_none()
    {
        usage = x_groq.get("usage").and_then(usage_from);
    }
    let annotations = if quirks.citations {
        citations(obj)
    } else {
        None
    };
    fill_envelope(obj, "chat.completion.chunk", upstream_model);
    match obj.get_mut("choices") {
        Some(Value::Array(choices)) => normalise_choices(provider, choices, "delta", true)?,
        _ => {
            return Err(invalid(
                provider,
                format!("stream chunk without choices: {}", truncate(data, 300)),
            ));
        }
    }
    let mut chunk: ChatChunk = serde_json::from_value(value).map_err(|e| {
        invalid(
            provider,
            format!(
                "unexpected stream chunk shape ({e}): {}",
                truncate(data, 300)
            ),
        )
    })?;
    chunk.usage = None;
    Ok(ChunkParts {
        chunk,
        usage,
        annotations,
    })
}

/// Parses an embeddings answer.
pub(crate) fn embeddings_response(
    provider: &str,
    upstream_model: &str,
    body: &[u8],
) -> Result<EmbeddingResponse, ProviderError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(
            provider,
            format!(
                "the answer is not JSON ({e}): {}",
                truncate(&String::from_utf8_lossy(body), 300)
            ),
        )
    })?;
    let Some(obj) = value.as_object_mut() else {
        return Err(invalid(provider, "the answer is not a JSON object".into()));
    };
    if has_error(obj) {
        return Err(in_band_error(provider, &Value::Object(obj.clone())));
    }
    if obj.get("object").is_none_or(Value::is_null) {
        obj.insert("object".into(), Value::String("list".into()));
    }
    if obj.get("model").is_none_or(Value::is_null) {
        obj.insert("model".into(), Value::String(upstream_model.into()));
    }
    let usage = obj.remove("usage");
    let prompt = usage
        .as_ref()
        .and_then(|u| u.get("prompt_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let total = usage
        .as_ref()
        .and_then(|u| u.get("total_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(prompt);
    obj.insert(
        "usage".into(),
        json!({"prompt_tokens": prompt, "total_tokens": total}),
    );
    if let Some(Value::Array(data)) = obj.get_mut("data") {
        for (i, item) in data.iter_mut().enumerate() {
            if let Some(item) = item.as_object_mut() {
                item.entry("index").or_insert_with(|| json!(i));
                item.entry("object")
                    .or_insert_with(|| Value::String("embedding".into()));
                if item.get("embedding").is_some_and(Value::is_string) {
                    return Err(invalid(
                        provider,
                        "the upstream answered base64 embeddings to a float request".into(),
                    ));
                }
            }
        }
    }
    serde_json::from_value(value)
        .map_err(|e| invalid(provider, format!("unexpected embeddings shape: {e}")))
}

#[cfg(test)]
mod tests {
    use super::super::quirks::ProviderKind;
    use super::*;

    fn request(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    fn body(kind: ProviderKind, req: Value, stream: bool) -> Result<Value, ProviderError> {
        chat_body(kind.quirks(), kind.name(), "up", &request(req), stream)
    }

    #[test]
    fn output_limit_is_spelled_the_providers_way() {
        let req = json!({"model": "x", "messages": [], "max_tokens": 10});
        let b = body(ProviderKind::OpenAi, req.clone(), false).unwrap();
        assert_eq!(b["max_completion_tokens"], 10);
        assert!(b.get("max_tokens").is_none());
        let req2 =
            json!({"model": "x", "messages": [], "max_completion_tokens": 20, "max_tokens": 10});
        let b = body(ProviderKind::Mistral, req2.clone(), false).unwrap();
        assert_eq!(b["max_tokens"], 20);
        assert!(b.get("max_completion_tokens").is_none());
        let b = body(ProviderKind::Groq, req2, false).unwrap();
        assert_eq!(
            (b["max_tokens"].clone(), b["max_completion_tokens"].clone()),
            (json!(10), json!(20))
        );
    }

    #[test]
    fn stream_options_are_added_or_removed() {
        let req = json!({"model": "x", "messages": [], "stream_options": {"include_usage": false, "other": 1}});
        let b = body(ProviderKind::DeepSeek, req.clone(), true).unwrap();
        assert_eq!(b["stream"], true);
        assert_eq!(
            b["stream_options"],
            json!({"include_usage": true, "other": 1})
        );
        let b = body(ProviderKind::Mistral, req.clone(), true).unwrap();
        assert!(b.get("stream_options").is_none());
        let b = body(ProviderKind::OpenAi, req, false).unwrap();
        assert!(b.get("stream_options").is_none() && b.get("stream").is_none());
    }

    #[test]
    fn unsupported_requests_fail_fast_and_hints_are_dropped() {
        let n2 = json!({"model": "x", "messages": [], "n": 2});
        assert_eq!(
            body(ProviderKind::Groq, n2.clone(), false)
                .unwrap_err()
                .kind,
            ProviderErrorKind::Unsupported
        );
        assert_eq!(body(ProviderKind::OpenAi, n2, false).unwrap()["n"], 2);
        let logprobs = json!({"model": "x", "messages": [], "logprobs": true});
        assert!(body(ProviderKind::Groq, logprobs, false).is_err());
        let no_logprobs = json!({"model": "x", "messages": [{"role": "user", "content": "hi", "name": "ann"}], "logprobs": false});
        let b = body(ProviderKind::Groq, no_logprobs, false).unwrap();
        assert!(b["messages"][0].get("name").is_none());
        let tools = json!({"model": "x", "messages": [], "tools": [{"type": "function", "function": {"name": "f"}}]});
        assert!(body(ProviderKind::Perplexity, tools, false).is_err());
        let seeded = json!({"model": "x", "messages": [], "seed": 7, "service_tier": "auto"});
        let b = body(ProviderKind::Mistral, seeded, false).unwrap();
        assert_eq!(b["random_seed"], 7);
        assert!(b.get("seed").is_none() && b.get("service_tier").is_none());
    }

    #[test]
    fn usage_dialects_normalise_to_openai() {
        let deepseek = json!({"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105,
            "prompt_cache_hit_tokens": 80, "prompt_cache_miss_tokens": 20});
        let u = usage_from(&deepseek).unwrap();
        assert_eq!((u.cached_tokens(), u.total_tokens), (80, 105));
        let perplexity = json!({"prompt_tokens": 3, "completion_tokens": 9, "reasoning_tokens": 4});
        let u = usage_from(&perplexity).unwrap();
        assert_eq!((u.reasoning_tokens(), u.total_tokens), (4, 12));
        let openai = json!({"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12,
            "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 1}});
        assert_eq!(usage_from(&openai).unwrap(), Usage::new(3, 9, 2, 1));
        assert_eq!(usage_from(&json!({"completion_tokens": 1})), None);
    }

    #[test]
    fn chunks_without_index_or_with_groq_usage() {
        let q = ProviderKind::Groq.quirks();
        let data = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
            "choices":[{"index":0,"delta":{"tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_use"}],
            "x_groq":{"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}}"#;
        let parts = chunk(q, "groq", "m", data).unwrap();
        let c = parts.chunk;
        assert_eq!(c.choices[0].delta.tool_calls.as_ref().unwrap()[0].index, 0);
        assert_eq!(
            c.choices[0].finish_reason,
            Some(crate::types::FinishReason::ToolCalls)
        );
        assert_eq!(parts.usage.unwrap().total_tokens, 7);
        let err = chunk(
            q,
            "groq",
            "m",
            r#"{"choices":[{"delta":{},"finish_reason":"error"}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Server);
    }

    #[test]
    fn in_band_errors_are_classified() {
        let e = in_band_error(
            "p",
            &json!({"error": {"message": "slow down", "code": 429}}),
        );
        assert_eq!(
            (e.kind, e.status),
            (ProviderErrorKind::RateLimited, Some(429))
        );
        let e = in_band_error(
            "p",
            &json!({"error": {"message": "boom", "type": "server_error"}}),
        );
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ProviderErrorKind::Server, "boom")
        );
    }
}
