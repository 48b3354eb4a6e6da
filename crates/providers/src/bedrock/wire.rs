//! Translation between OpenAI chat types and the Bedrock Converse API.
//!
//! Requests: system and developer messages become `system` text blocks; messages carry
//! `content` blocks (`text`, `image` with base64 `bytes`, `toolUse`, `toolResult`), consecutive
//! messages of one role merged (Converse wants turns to alternate); tools become
//! `toolConfig.tools[].toolSpec` with the JSON Schema under `inputSchema.json`, `tool_choice`
//! becomes `toolChoice` (`auto` / `any` / `tool`); the sampling settings become
//! `inferenceConfig`. Answers: `output.message.content` back into text and tool calls,
//! `stopReason` into `finish_reason`, `usage` into OpenAI usage.

use serde_json::{Map, Value, json};

use crate::http::{status_error, truncate};
use crate::translated::{bad_request, invalid, new_id, parse_data_url, unix_now, unsupported};
use crate::types::{
    AssistantMessage, ChatRequest, ChatResponse, Choice, Content, ContentPart, FinishReason,
    FunctionCall, ResponseFormat, Role, Stop, ToolCall, Usage,
};
use crate::{ProviderError, ProviderErrorKind};

/// Returns the Converse request body for an OpenAI chat request.
pub(crate) fn request_body(provider: &str, req: &ChatRequest) -> Result<Value, ProviderError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(unsupported(
            provider,
            "Bedrock Converse returns one choice (n > 1)",
        ));
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(_) => {
            return Err(unsupported(
                provider,
                "Bedrock Converse has no JSON mode (response_format)",
            ));
        }
    }
    let mut system = Vec::new();
    let mut messages: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut tool_blocks = false;
    for message in &req.messages {
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => {
                let text = message
                    .content
                    .as_ref()
                    .map(Content::text)
                    .unwrap_or_default();
                if !text.is_empty() {
                    system.push(json!({"text": text}));
                }
                continue;
            }
            Role::User => ("user", content_blocks(provider, message.content.as_ref())?),
            Role::Assistant => {
                let mut blocks = content_blocks(provider, message.content.as_ref())?;
                for call in message.tool_calls.iter().flatten() {
                    tool_blocks = true;
                    blocks.push(json!({"toolUse": {
                        "toolUseId": call.id,
                        "name": call.function.name,
                        "input": parse_arguments(provider, &call.function.arguments)?,
                    }}));
                }
                ("assistant", blocks)
            }
            Role::Tool => {
                tool_blocks = true;
                let id = message
                    .tool_call_id
                    .as_deref()
                    .ok_or_else(|| bad_request(provider, "a tool message has no tool_call_id"))?;
                let text = message
                    .content
                    .as_ref()
                    .map(Content::text)
                    .unwrap_or_default();
                // Text is the result form every Converse model accepts (`json` is not).
                let text = if text.is_empty() {
                    "(empty)".to_owned()
                } else {
                    text
                };
                (
                    "user",
                    vec![json!({"toolResult": {"toolUseId": id, "content": [{"text": text}]}})],
                )
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => messages.push((role, blocks)),
        }
    }

    let mut body = Map::new();
    body.insert(
        "messages".into(),
        Value::Array(
            messages
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let mut inference = Map::new();
    if let Some(max) = req.max_completion_tokens.or(req.max_tokens) {
        inference.insert("maxTokens".into(), json!(max));
    }
    if let Some(t) = req.temperature {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        inference.insert("topP".into(), json!(p));
    }
    match &req.stop {
        Some(Stop::One(s)) => {
            inference.insert("stopSequences".into(), json!([s]));
        }
        Some(Stop::Many(list)) if !list.is_empty() => {
            inference.insert("stopSequences".into(), json!(list));
        }
        _ => {}
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(config) = tool_config(provider, req, tool_blocks)? {
        body.insert("toolConfig".into(), config);
    }
    Ok(Value::Object(body))
}

/// Returns `toolConfig`. Converse has no "none" choice: `tool_choice: "none"` sends no tools,
/// unless the conversation already holds tool blocks (Converse then requires the tools), in
/// which case the model may still call one.
fn tool_config(
    provider: &str,
    req: &ChatRequest,
    tool_blocks: bool,
) -> Result<Option<Value>, ProviderError> {
    let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let choice = match &req.tool_choice {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"auto": {}})),
            "required" => Some(json!({"any": {}})),
            "none" if !tool_blocks => return Ok(None),
            "none" => None,
            other => {
                return Err(bad_request(
                    provider,
                    format!("unknown tool_choice `{other}`"),
                ));
            }
        },
        Some(Value::Object(obj)) => {
            let name = obj
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad_request(provider, "tool_choice names no function"))?;
            Some(json!({"tool": {"name": name}}))
        }
        Some(_) => {
            return Err(bad_request(
                provider,
                "tool_choice is neither a string nor an object",
            ));
        }
    };
    let specs: Vec<Value> = tools
        .iter()
        .map(|tool| {
            let mut spec = Map::new();
            spec.insert("name".into(), json!(tool.function.name));
            if let Some(d) = tool.function.description.as_ref().filter(|d| !d.is_empty()) {
                spec.insert("description".into(), json!(d));
            }
            let schema = tool
                .function
                .parameters
                .clone()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            spec.insert("inputSchema".into(), json!({"json": schema}));
            json!({"toolSpec": spec})
        })
        .collect();
    let mut config = json!({"tools": specs});
    if let (Some(choice), Some(obj)) = (choice, config.as_object_mut()) {
        obj.insert("toolChoice".into(), choice);
    }
    Ok(Some(config))
}

fn content_blocks(provider: &str, content: Option<&Content>) -> Result<Vec<Value>, ProviderError> {
    let mut blocks = Vec::new();
    match content {
        // Converse rejects empty text blocks.
        Some(Content::Text(text)) if !text.is_empty() => blocks.push(json!({"text": text})),
        None | Some(Content::Text(_)) => {}
        Some(Content::Parts(parts)) => {
            for part in parts {
                match part {
                    ContentPart::Text { text } | ContentPart::Refusal { refusal: text } => {
                        if !text.is_empty() {
                            blocks.push(json!({"text": text}));
                        }
                    }
                    ContentPart::ImageUrl { image_url } => {
                        let Some((mime, data)) = parse_data_url(&image_url.url) else {
                            return Err(unsupported(
                                provider,
                                "Bedrock takes images as bytes: send a base64 data URL, not a link",
                            ));
                        };
                        let format = match mime {
                            "image/png" => "png",
                            "image/jpeg" | "image/jpg" => "jpeg",
                            "image/gif" => "gif",
                            "image/webp" => "webp",
                            other => {
                                return Err(unsupported(
                                    provider,
                                    format!(
                                        "Bedrock accepts png, jpeg, gif and webp images, not {other}"
                                    ),
                                ));
                            }
                        };
                        blocks
                            .push(json!({"image": {"format": format, "source": {"bytes": data}}}));
                    }
                    ContentPart::InputAudio { .. } | ContentPart::File { .. } => {
                        return Err(unsupported(
                            provider,
                            "this adapter sends Bedrock text and images only",
                        ));
                    }
                }
            }
        }
    }
    Ok(blocks)
}

fn parse_arguments(provider: &str, arguments: &str) -> Result<Value, ProviderError> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(obj)) => Ok(Value::Object(obj)),
        _ => Err(bad_request(
            provider,
            format!(
                "tool call arguments are not a JSON object: {}",
                truncate(arguments, 100)
            ),
        )),
    }
}

/// Maps a Converse `stopReason`. `Err` for malformed output (unusable, and a retry may
/// succeed).
pub(crate) fn finish_reason(provider: &str, reason: &str) -> Result<FinishReason, ProviderError> {
    Ok(match reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        "malformed_model_output" | "malformed_tool_use" => {
            return Err(ProviderError::new(
                provider,
                ProviderErrorKind::Server,
                format!("the model stopped with {reason}"),
            ));
        }
        // end_turn, stop_sequence and reasons added later.
        _ => FinishReason::Stop,
    })
}

/// Returns the usage of a Converse `usage` object. `inputTokens` excludes the tokens read from
/// and written to the prompt cache, which OpenAI counts inside `prompt_tokens`.
pub(crate) fn usage(value: &Value) -> Option<Usage> {
    let obj = value.as_object()?;
    let n = |key: &str| obj.get(key).and_then(Value::as_u64).unwrap_or(0);
    let read = n("cacheReadInputTokens");
    Some(Usage::new(
        n("inputTokens") + read + n("cacheWriteInputTokens"),
        n("outputTokens"),
        read,
        0,
    ))
}

/// Translates a Converse answer.
pub(crate) fn chat_response(
    provider: &str,
    upstream_model: &str,
    body: &[u8],
) -> Result<ChatResponse, ProviderError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(
            provider,
            format!(
                "the answer is not JSON ({e}): {}",
                truncate(&String::from_utf8_lossy(body), 300)
            ),
        )
    })?;
    let blocks = value
        .get("output")
        .and_then(|o| o.get("message"))
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            invalid(
                provider,
                format!(
                    "the answer has no output message: {}",
                    truncate(&value.to_string(), 300)
                ),
            )
        })?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
        if let Some(tool) = block.get("toolUse") {
            calls.push(ToolCall {
                id: tool
                    .get("toolUseId")
                    .and_then(Value::as_str)
                    .map_or_else(|| new_id("call_"), str::to_owned),
                kind: "function".into(),
                function: FunctionCall {
                    name: tool
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    arguments: tool
                        .get("input")
                        .cloned()
                        .unwrap_or_else(|| json!({}))
                        .to_string(),
                },
            });
        }
    }
    let reason = value
        .get("stopReason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let finish = finish_reason(provider, reason)?;
    let called = !calls.is_empty();
    Ok(ChatResponse {
        id: new_id("chatcmpl-"),
        object: "chat.completion".into(),
        created: unix_now(),
        model: upstream_model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: Role::Assistant,
                content: (!text.is_empty() || !called).then_some(text),
                refusal: None,
                tool_calls: called.then_some(calls),
                annotations: None,
            },
            finish_reason: finish,
            logprobs: None,
        }],
        usage: value.get("usage").and_then(usage),
        system_fingerprint: None,
        service_tier: None,
    })
}

fn mentions_context_length(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "input is too long",
        "too many input tokens",
        "context window",
        "prompt is too long",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// Translates a Bedrock HTTP error: `{"message": ...}` (or `Message`), the exception name in
/// `x-amzn-ErrorType`.
pub(crate) fn bedrock_error(
    provider: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> ProviderError {
    let normalised;
    let body = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) if !obj.contains_key("message") && obj.contains_key("Message") => {
            normalised = json!({"message": obj["Message"]}).to_string();
            normalised.as_bytes()
        }
        _ => body,
    };
    let mut err = status_error(provider, status, headers, body);
    let kind = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_owned());
    match kind.as_deref() {
        Some("ThrottlingException" | "ModelNotReadyException") => {
            err.kind = ProviderErrorKind::RateLimited;
        }
        Some("ModelTimeoutException") => err.kind = ProviderErrorKind::Timeout,
        _ => {}
    }
    if err.kind == ProviderErrorKind::BadRequest && mentions_context_length(&err.message) {
        err.kind = ProviderErrorKind::ContextLength;
    }
    err
}

/// Returns the error an exception event of `converse-stream` stands for.
pub(crate) fn stream_exception(provider: &str, exception: &str, payload: &[u8]) -> ProviderError {
    let message = serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("Message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| truncate(&String::from_utf8_lossy(payload), 300));
    let message = format!("{exception}: {message}");
    let status = match exception {
        "throttlingException" => 429,
        "serviceUnavailableException" => 503,
        "validationException" => 400,
        "modelStreamErrorException" => 424,
        _ => 500,
    };
    let mut err = ProviderError::from_status(provider, status, message, None);
    if status == 424 {
        err.kind = ProviderErrorKind::Server;
    }
    if err.kind == ProviderErrorKind::BadRequest && mentions_context_length(&err.message) {
        err.kind = ProviderErrorKind::ContextLength;
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Result<Value, ProviderError> {
        request_body("bedrock", &serde_json::from_value(v).unwrap())
    }

    #[test]
    fn messages_system_tools_and_inference_config() {
        let b = body(json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]},
            {"role": "user", "content": "and the weather?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "tooluse_1", "content": "{\"temp\":21}"}
        ], "tools": [{"type": "function", "function": {"name": "get_weather", "description": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required", "max_tokens": 100, "temperature": 0.3, "top_p": 0.8, "stop": ["X", "Y"]}))
        .unwrap();
        assert_eq!(b["system"], json!([{"text": "be brief"}]));
        assert_eq!(
            b["messages"],
            json!([
                {"role": "user", "content": [{"text": "what is this?"},
                    {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}},
                    {"text": "and the weather?"}]},
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "{\"temp\":21}"}]}}]}
            ])
        );
        assert_eq!(
            b["toolConfig"],
            json!({"tools": [{"toolSpec": {"name": "get_weather", "description": "weather",
                "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}],
                "toolChoice": {"any": {}}})
        );
        assert_eq!(
            b["inferenceConfig"],
            json!({"maxTokens": 100, "temperature": 0.3, "topP": 0.8, "stopSequences": ["X", "Y"]})
        );
    }

    #[test]
    fn tool_choice_forms_and_refusals() {
        let base = |choice: Value| {
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": choice})
        };
        assert_eq!(
            body(base(json!("auto"))).unwrap()["toolConfig"]["toolChoice"],
            json!({"auto": {}})
        );
        assert_eq!(
            body(base(json!({"type": "function", "function": {"name": "f"}}))).unwrap()["toolConfig"]
                ["toolChoice"],
            json!({"tool": {"name": "f"}})
        );
        let none = body(base(json!("none"))).unwrap();
        assert!(none.get("toolConfig").is_none());
        assert_eq!(
            body(base(json!("auto"))).unwrap()["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"],
            json!({"json": {"type": "object", "properties": {}}})
        );
        for bad in [
            json!({"model": "m", "messages": [], "n": 2}),
            json!({"model": "m", "messages": [], "response_format": {"type": "json_object"}}),
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
        ] {
            assert_eq!(body(bad).unwrap_err().kind, ProviderErrorKind::Unsupported);
        }
    }

    #[test]
    fn answers_stop_reasons_usage_and_errors() {
        let answer = json!({"output": {"message": {"role": "assistant", "content": [
            {"text": "Checking."}, {"toolUse": {"toolUseId": "tooluse_9", "name": "f", "input": {"a": 1}}}]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 45, "cacheReadInputTokens": 20, "cacheWriteInputTokens": 10},
            "metrics": {"latencyMs": 100}});
        let r =
            chat_response("bedrock", "anthropic.claude", answer.to_string().as_bytes()).unwrap();
        assert_eq!(r.choices[0].finish_reason, FinishReason::ToolCalls);
        assert_eq!(r.choices[0].message.content.as_deref(), Some("Checking."));
        let call = &r.choices[0].message.tool_calls.as_ref().unwrap()[0];
        assert_eq!(
            (call.id.as_str(), call.function.arguments.as_str()),
            ("tooluse_9", "{\"a\":1}")
        );
        let u = r.usage.unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.total_tokens,
                u.cached_tokens()
            ),
            (40, 5, 45, 20)
        );
        for (reason, want) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("guardrail_intervened", FinishReason::ContentFilter),
            ("content_filtered", FinishReason::ContentFilter),
        ] {
            assert_eq!(finish_reason("b", reason).unwrap(), want);
        }
        assert!(finish_reason("b", "malformed_tool_use").is_err());

        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "x-amzn-errortype",
            reqwest::header::HeaderValue::from_static(
                "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            ),
        );
        let err = bedrock_error(
            "b",
            reqwest::StatusCode::BAD_REQUEST,
            &headers,
            br#"{"Message":"Input is too long for requested model."}"#,
        );
        assert_eq!(
            (err.kind, err.message.as_str()),
            (
                ProviderErrorKind::ContextLength,
                "Input is too long for requested model."
            )
        );
        let e = stream_exception(
            "b",
            "throttlingException",
            br#"{"message":"Too many requests"}"#,
        );
        assert_eq!(
            (e.kind, e.status),
            (ProviderErrorKind::RateLimited, Some(429))
        );
        let e = stream_exception("b", "modelStreamErrorException", b"{}");
        assert!(e.is_retryable());
    }
}
