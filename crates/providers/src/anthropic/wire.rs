//! Translation between OpenAI's Chat Completions shape and Anthropic's Messages API: request
//! bodies out, messages and errors back. Pure functions, no I/O.
//!
//! Requests:
//! - `system` and `developer` messages, wherever they stand, become the top-level `system`
//!   (text blocks, in order): the Messages API has no system role;
//! - consecutive messages of one role merge into one turn (the API wants user and assistant to
//!   alternate), and `tool` messages become `tool_result` blocks of a user turn, placed before
//!   any other block of that turn as the API requires;
//! - assistant `tool_calls` become `tool_use` blocks, their JSON-text arguments parsed into the
//!   `input` object;
//! - images: a base64 data URL becomes a `base64` image source, an http(s) URL a `url` source;
//!   a PDF data URL in a `file` part becomes a `document` block;
//! - tools become `{name, description, input_schema}` (`strict` kept), `tool_choice`
//!   `auto`/`required`/`none`/named → `auto`/`any`/`none`/`tool`, `parallel_tool_calls: false`
//!   → `disable_parallel_tool_use`;
//! - `response_format: json_schema` → `output_config.format` (Anthropic's documented
//!   structured outputs, constrained decoding, GA on the Claude 4.5+ models; the catalog's
//!   `json_schema` flag keeps it from models without it). `json_object` has no schema, which
//!   structured outputs require, so it uses the documented forced-tool pattern: a tool whose
//!   input is the answer ([`JSON_TOOL`]), whose input comes back as the message content;
//! - `max_tokens` is required: the client's limit, else the default the adapter passes (the
//!   model's catalog `max_output`);
//! - `temperature` is clamped to Anthropic's range, 0 to 1 (OpenAI's is 0 to 2);
//! - `user` (or `safety_identifier`) → `metadata.user_id`; Anthropic-only fields a client may
//!   send (`top_k`, `thinking`, `output_config`) pass through; OpenAI-only hints (`seed`,
//!   penalties, `logit_bias`, ...) are dropped; what cannot be honoured (`n > 1`, `logprobs`,
//!   audio) fails as `Unsupported` before any call.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::native::{bad_request, invalid, parse_data_url, unsupported};
use crate::types::{
    AssistantMessage, ChatRequest, ChatResponse, Choice, CompletionTokensDetails, Content,
    ContentPart, FinishReason, FunctionCall, Message, PromptTokensDetails, ResponseFormat, Role,
    Stop, ToolCall, Usage,
};
use crate::{ProviderError, ProviderErrorKind};

/// The tool that carries a `json_object` answer.
pub(crate) const JSON_TOOL: &str = "json_object_response";

/// The upper bound of Anthropic's `temperature`.
const MAX_TEMPERATURE: f64 = 1.0;

/// A request translated for the Messages API.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Translated {
    /// The JSON body.
    pub body: Value,
    /// Whether [`JSON_TOOL`] was added (`response_format: json_object`): its input is the
    /// answer's content.
    pub json_tool: bool,
}

/// Returns the Messages API body for `req`.
pub(crate) fn messages_body(
    provider: &str,
    upstream_model: &str,
    req: &ChatRequest,
    default_max_tokens: u64,
    stream: bool,
) -> Result<Translated, ProviderError> {
    crate::native::reject_unsupported(provider, req)?;
    let mut body = Map::new();
    body.insert("model".into(), Value::String(upstream_model.into()));

    let system = system_blocks(&req.messages);
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert(
        "messages".into(),
        Value::Array(conversation(provider, &req.messages)?),
    );

    let max_tokens = req
        .max_completion_tokens
        .or(req.max_tokens)
        .unwrap_or(default_max_tokens);
    body.insert("max_tokens".into(), json!(max_tokens));
    if let Some(stop) = &req.stop {
        let sequences = match stop {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(list) => list.clone(),
        };
        if !sequences.is_empty() {
            body.insert("stop_sequences".into(), json!(sequences));
        }
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t.clamp(0.0, MAX_TEMPERATURE)));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(user) = ["user", "safety_identifier"]
        .iter()
        .find_map(|k| req.extra.get(*k).and_then(Value::as_str))
    {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    for field in ["top_k", "thinking", "output_config"] {
        if let Some(v) = req.extra.get(field).filter(|v| !v.is_null()) {
            body.insert(field.into(), v.clone());
        }
    }

    let json_tool = matches!(req.response_format, Some(ResponseFormat::JsonObject));
    tools(provider, req, json_tool, &mut body)?;
    if let Some(ResponseFormat::JsonSchema { json_schema }) = &req.response_format {
        let schema = json_schema
            .get("schema")
            .filter(|s| s.is_object())
            .ok_or_else(|| {
                bad_request(
                    provider,
                    "response_format.json_schema has no `schema` object".into(),
                )
            })?;
        let config = body
            .entry("output_config")
            .or_insert_with(|| Value::Object(Map::new()));
        if !config.is_object() {
            *config = Value::Object(Map::new());
        }
        if let Some(config) = config.as_object_mut() {
            config.insert(
                "format".into(),
                json!({"type": "json_schema", "schema": schema}),
            );
        }
    }
    if stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    Ok(Translated {
        body: Value::Object(body),
        json_tool,
    })
}

/// Returns the text blocks of the system and developer messages.
fn system_blocks(messages: &[Message]) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| matches!(m.role, Role::System | Role::Developer))
        .filter_map(|m| m.content.as_ref().map(Content::text))
        .filter(|t| !t.is_empty())
        .map(|text| json!({"type": "text", "text": text}))
        .collect()
}

/// Returns the `messages` array: alternating turns, tool results in user turns.
fn conversation(provider: &str, messages: &[Message]) -> Result<Vec<Value>, ProviderError> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => continue,
            Role::User => ("user", user_blocks(provider, message.content.as_ref())?),
            Role::Tool => ("user", vec![tool_result(provider, message)?]),
            Role::Assistant => ("assistant", assistant_blocks(provider, message)?),
        };
        if blocks.is_empty() {
            continue; // the API rejects empty turns
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    // Anthropic wants the tool results first in a user turn.
    for (role, blocks) in &mut turns {
        if *role == "user" {
            blocks.sort_by_key(|b| b.get("type").and_then(Value::as_str) != Some("tool_result"));
        }
    }
    // A final assistant turn is a prefill, which may not end in whitespace.
    if let Some(("assistant", blocks)) = turns.last_mut()
        && let Some(Value::String(text)) = blocks.last_mut().and_then(|b| b.get_mut("text"))
    {
        let trimmed = text.trim_end().len();
        text.truncate(trimmed);
        if text.is_empty() {
            blocks.pop();
            if blocks.is_empty() {
                turns.pop();
            }
        }
    }
    Ok(turns
        .into_iter()
        .map(|(role, blocks)| json!({"role": role, "content": blocks}))
        .collect())
}

fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({"type": "text", "text": text}))
}

fn user_blocks(provider: &str, content: Option<&Content>) -> Result<Vec<Value>, ProviderError> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(Content::Text(text)) => return Ok(text_block(text).into_iter().collect()),
        Some(Content::Parts(parts)) => parts,
    };
    let mut blocks = Vec::new();
    for part in parts {
        match part {
            ContentPart::Text { text } => blocks.extend(text_block(text)),
            ContentPart::ImageUrl { image_url } => {
                blocks.push(image_block(provider, &image_url.url)?)
            }
            ContentPart::File { file } => blocks.push(document_block(provider, file)?),
            ContentPart::InputAudio { .. } => {
                return Err(unsupported(
                    provider,
                    format!("{provider} does not accept audio input"),
                ));
            }
            ContentPart::Refusal { .. } => {}
        }
    }
    Ok(blocks)
}

fn image_block(provider: &str, url: &str) -> Result<Value, ProviderError> {
    if let Some(data) = parse_data_url(url) {
        return Ok(json!({"type": "image", "source": {
            "type": "base64", "media_type": data.media_type, "data": data.data}}));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(bad_request(
        provider,
        "an image must be an http(s) URL or a base64 data URL".into(),
    ))
}

/// A `file` part: PDFs given inline (`file_data` as a data URL) become document blocks.
fn document_block(provider: &str, file: &Value) -> Result<Value, ProviderError> {
    let data = file
        .get("file_data")
        .and_then(Value::as_str)
        .and_then(parse_data_url)
        .filter(|d| d.media_type == "application/pdf")
        .ok_or_else(|| {
            unsupported(
                provider,
                format!(
                    "{provider}: only PDF files given inline as a base64 data URL are supported"
                ),
            )
        })?;
    Ok(json!({"type": "document", "source": {
        "type": "base64", "media_type": data.media_type, "data": data.data}}))
}

fn tool_result(provider: &str, message: &Message) -> Result<Value, ProviderError> {
    let id = message
        .tool_call_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad_request(provider, "a tool message has no tool_call_id".into()))?;
    let mut block = json!({"type": "tool_result", "tool_use_id": id});
    let content = match &message.content {
        None => None,
        Some(Content::Text(text)) => (!text.is_empty()).then(|| Value::String(text.clone())),
        Some(parts @ Content::Parts(_)) => {
            let blocks = user_blocks(provider, Some(parts))?;
            (!blocks.is_empty()).then_some(Value::Array(blocks))
        }
    };
    if let (Some(content), Some(obj)) = (content, block.as_object_mut()) {
        obj.insert("content".into(), content);
    }
    Ok(block)
}

fn assistant_blocks(provider: &str, message: &Message) -> Result<Vec<Value>, ProviderError> {
    let mut blocks: Vec<Value> = message
        .content
        .as_ref()
        .map(Content::text)
        .as_deref()
        .and_then(text_block)
        .into_iter()
        .collect();
    for call in message.tool_calls.iter().flatten() {
        let arguments = call.function.arguments.trim();
        let input = if arguments.is_empty() {
            json!({})
        } else {
            serde_json::from_str::<Value>(arguments)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    bad_request(
                        provider,
                        format!(
                            "the arguments of tool call `{}` are not a JSON object",
                            call.id
                        ),
                    )
                })?
        };
        blocks.push(json!({"type": "tool_use", "id": call.id,
            "name": call.function.name, "input": input}));
    }
    Ok(blocks)
}

fn tools(
    provider: &str,
    req: &ChatRequest,
    json_tool: bool,
    body: &mut Map<String, Value>,
) -> Result<(), ProviderError> {
    let client_tools = req.tools.as_deref().unwrap_or_default();
    let mut tools = Vec::with_capacity(client_tools.len() + 1);
    for tool in client_tools {
        let f = &tool.function;
        if json_tool && f.name == JSON_TOOL {
            return Err(bad_request(
                provider,
                format!("the tool name `{JSON_TOOL}` is reserved for json_object answers"),
            ));
        }
        let mut t = Map::new();
        t.insert("name".into(), Value::String(f.name.clone()));
        if let Some(d) = &f.description {
            t.insert("description".into(), Value::String(d.clone()));
        }
        let schema = f
            .parameters
            .clone()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        t.insert("input_schema".into(), schema);
        if f.strict == Some(true) {
            t.insert("strict".into(), Value::Bool(true));
        }
        tools.push(Value::Object(t));
    }
    let has_client_tools = !tools.is_empty();
    if json_tool {
        tools.push(json!({
            "name": JSON_TOOL,
            "description": "Respond to the user with a JSON object: the input of this tool is the answer.",
            "input_schema": {"type": "object"}
        }));
    }
    if tools.is_empty() {
        return Ok(());
    }
    body.insert("tools".into(), Value::Array(tools));

    let parallel_off = req.extra.get("parallel_tool_calls") == Some(&Value::Bool(false));
    let named = |name: &str| json!({"type": "tool", "name": name});
    let mut choice = match req.tool_choice.as_ref() {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            other => {
                return Err(bad_request(
                    provider,
                    format!("unknown tool_choice `{other}`"),
                ));
            }
        },
        Some(obj @ Value::Object(_)) => {
            let name = obj
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_request(provider, "tool_choice names no function".into()))?;
            Some(named(name))
        }
        Some(_) => return Err(bad_request(provider, "tool_choice is malformed".into())),
    };
    if json_tool {
        // The answer must come through a tool: the JSON tool, or a client tool the model may
        // still call (`any`); a named client tool stays forced.
        choice = match choice.as_ref().and_then(|c| c.get("type")?.as_str()) {
            Some("tool") => choice,
            Some("none") => Some(named(JSON_TOOL)),
            _ if has_client_tools => Some(json!({"type": "any"})),
            _ => Some(named(JSON_TOOL)),
        };
    }
    if let Some(mut choice) = choice {
        let kind = choice.get("type").and_then(Value::as_str).unwrap_or("");
        if parallel_off
            && kind != "none"
            && let Some(obj) = choice.as_object_mut()
        {
            obj.insert("disable_parallel_tool_use".into(), Value::Bool(true));
        }
        body.insert("tool_choice".into(), choice);
    } else if parallel_off {
        body.insert(
            "tool_choice".into(),
            json!({"type": "auto", "disable_parallel_tool_use": true}),
        );
    }
    Ok(())
}

/// Anthropic's `usage` object, as a message or a `message_delta` event carries it (in the
/// latter every field is cumulative, and each may be absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct AnthropicUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens_details: Option<OutputTokensDetails>,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct OutputTokensDetails {
    #[serde(default)]
    pub thinking_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Overwrites the fields `later` reports (`message_delta` counts are cumulative).
    pub(crate) fn merge(&mut self, later: AnthropicUsage) {
        let AnthropicUsage {
            input_tokens,
            output_tokens,
            cache_creation_input_tokens,
            cache_read_input_tokens,
            output_tokens_details,
        } = later;
        self.input_tokens = input_tokens.or(self.input_tokens);
        self.output_tokens = output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens =
            cache_creation_input_tokens.or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = cache_read_input_tokens.or(self.cache_read_input_tokens);
        self.output_tokens_details = output_tokens_details.or(self.output_tokens_details.take());
    }

    /// Returns OpenAI's usage: the prompt counts every input token, cache reads and cache
    /// writes included (Anthropic's `input_tokens` counts only those after the last cache
    /// breakpoint); cache reads are the cached tokens; thinking is part of the output and, when
    /// Anthropic breaks it out, the reasoning tokens.
    pub(crate) fn to_openai(&self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let prompt =
            self.input_tokens.unwrap_or(0) + read + self.cache_creation_input_tokens.unwrap_or(0);
        let completion = self.output_tokens.unwrap_or(0);
        let thinking = self
            .output_tokens_details
            .as_ref()
            .and_then(|d| d.thinking_tokens);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: read,
                audio_tokens: None,
            }),
            completion_tokens_details: thinking.map(|t| CompletionTokensDetails {
                reasoning_tokens: t,
                audio_tokens: None,
            }),
        }
    }
}

/// What a `stop_reason` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A finish reason.
    Finish(FinishReason),
    /// A refusal: `content_filter`, with the refusal surfaced.
    Refusal,
}

/// Maps a `stop_reason`. `tool_use` caused by the JSON tool alone reads as `stop`; unknown
/// reasons read as `stop` (a new word must not fail answers that arrived whole).
pub(crate) fn stop_reason(reason: Option<&str>, client_tool_called: bool) -> Ending {
    Ending::Finish(match reason {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") if client_tool_called => FinishReason::ToolCalls,
        Some("refusal") => return Ending::Refusal,
        _ => FinishReason::Stop,
    })
}

/// The refusal text when the model's own words are not available.
pub(crate) const REFUSAL: &str = "the model declined to answer (Anthropic stop_reason `refusal`)";

#[derive(Debug, Deserialize)]
struct MessageResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<Value>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

/// Parses a non-streaming answer (a `message` object).
pub(crate) fn chat_response(
    provider: &str,
    upstream_model: &str,
    json_tool: bool,
    body: &[u8],
) -> Result<ChatResponse, ProviderError> {
    let value: Value = crate::native::parse_json(provider, body)?;
    if value.get("type").and_then(Value::as_str) == Some("error") {
        return Err(error_event(provider, &value));
    }
    let message: MessageResponse = serde_json::from_value(value)
        .map_err(|e| invalid(provider, format!("unexpected message shape: {e}")))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in &message.content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = block.get("text").and_then(Value::as_str) {
                    text.push_str(t);
                }
            }
            Some("tool_use") => {
                let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                if json_tool && name == JSON_TOOL {
                    text.push_str(&input.to_string());
                    continue;
                }
                let id = block.get("id").and_then(Value::as_str).unwrap_or("");
                tool_calls.push(ToolCall {
                    id: id.to_owned(),
                    kind: "function".into(),
                    function: FunctionCall {
                        name: name.to_owned(),
                        arguments: input.to_string(),
                    },
                });
            }
            // Thinking (counted in the usage), server tools and future block types carry no
            // OpenAI content.
            _ => {}
        }
    }
    let (finish_reason, content, refusal) =
        match stop_reason(message.stop_reason.as_deref(), !tool_calls.is_empty()) {
            Ending::Finish(reason) => (reason, (!text.is_empty()).then_some(text), None),
            Ending::Refusal => (
                FinishReason::ContentFilter,
                None,
                Some(if text.is_empty() {
                    REFUSAL.to_owned()
                } else {
                    text
                }),
            ),
        };
    Ok(ChatResponse {
        id: message.id,
        object: "chat.completion".into(),
        created: 0,
        model: message.model.unwrap_or_else(|| upstream_model.to_owned()),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: Role::Assistant,
                content,
                refusal,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                annotations: None,
            },
            finish_reason,
            logprobs: None,
        }],
        usage: message.usage.as_ref().map(AnthropicUsage::to_openai),
        system_fingerprint: None,
        service_tier: None,
    })
}

/// Returns the error an error object stands for (`{"type": "error", "error": {"type": ..,
/// "message": ..}}`, as an error event or a 200 body), classified by its documented type.
pub(crate) fn error_event(provider: &str, value: &Value) -> ProviderError {
    let error = value.get("error").unwrap_or(value);
    let kind_name = error.get("type").and_then(Value::as_str).unwrap_or("");
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| value.to_string(), str::to_owned);
    let kind = match kind_name {
        "invalid_request_error" | "billing_error" => ProviderErrorKind::BadRequest,
        "authentication_error" | "permission_error" => ProviderErrorKind::Unauthorized,
        "not_found_error" => ProviderErrorKind::NotFound,
        "request_too_large" => ProviderErrorKind::ContextLength,
        "rate_limit_error" => ProviderErrorKind::RateLimited,
        "timeout_error" => ProviderErrorKind::Timeout,
        // `api_error`, `overloaded_error` and types added later: the upstream's trouble.
        _ => ProviderErrorKind::Server,
    };
    let message = if kind_name.is_empty() {
        message
    } else {
        format!("{kind_name}: {message}")
    };
    ProviderError::new(provider, kind, crate::http::truncate(&message, 2000))
}

/// Classifies a JSON body answered to a streaming request, when it is an error.
pub(crate) fn in_band_error(provider: &str, value: &Value) -> Option<ProviderError> {
    (value.get("type").and_then(Value::as_str) == Some("error")
        || value.get("error").is_some_and(|e| !e.is_null()))
    .then(|| error_event(provider, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    fn body(v: Value) -> Value {
        messages_body("anthropic", "claude-x", &request(v), 4096, false)
            .unwrap()
            .body
    }

    #[test]
    fn system_and_developer_messages_become_the_system_prompt() {
        let b = body(json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": [{"type": "text", "text": "answer in French"}]},
            {"role": "user", "content": "and?"}
        ]}));
        assert_eq!(
            b["system"],
            json!([{"type": "text", "text": "be brief"}, {"type": "text", "text": "answer in French"}])
        );
        // The two user messages, no longer separated, merge into one turn.
        assert_eq!(
            b["messages"],
            json!([{"role": "user", "content": [
                {"type": "text", "text": "hi"}, {"type": "text", "text": "and?"}]}])
        );
        assert_eq!(b["max_tokens"], 4096);
        assert!(b.get("stream").is_none());
    }

    #[test]
    fn tool_calls_and_results_round_trip_into_blocks() {
        let b = body(json!({"model": "m", "messages": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "rain"}]},
            {"role": "user", "content": "thanks"}
        ]}));
        assert_eq!(
            b["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "weather in Paris and Rome?"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "rain"}]},
                    {"type": "text", "text": "thanks"}
                ]}
            ])
        );
    }

    #[test]
    fn tool_results_come_first_in_their_user_turn() {
        let b = body(json!({"model": "m", "messages": [
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "user", "content": "before"},
            {"role": "tool", "tool_call_id": "t", "content": "result"}
        ]}));
        let turn = &b["messages"][1]["content"];
        assert_eq!(turn[0]["type"], "tool_result");
        assert_eq!(turn[1]["text"], "before");
    }

    #[test]
    fn malformed_tool_arguments_and_missing_ids_are_bad_requests() {
        for messages in [
            json!([{"role": "assistant", "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]),
            json!([{"role": "assistant", "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]),
            json!([{"role": "tool", "content": "orphan"}]),
        ] {
            let err = messages_body(
                "anthropic",
                "m",
                &request(json!({"model": "m", "messages": messages})),
                10,
                false,
            )
            .unwrap_err();
            assert_eq!(err.kind, ProviderErrorKind::BadRequest, "{err}");
        }
    }

    #[test]
    fn images_by_data_url_and_by_url_and_pdf_documents() {
        let b = body(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "compare"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
            ]}]}),
        );
        let blocks = &b["messages"][0]["content"];
        assert_eq!(
            blocks[1],
            json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}})
        );
        assert_eq!(
            blocks[2],
            json!({"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}})
        );
        assert_eq!(blocks[3]["type"], "document");
        assert_eq!(blocks[3]["source"]["media_type"], "application/pdf");

        let err = messages_body(
            "anthropic",
            "m",
            &request(
                json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.jpg"}}]}]}),
            ),
            10,
            false,
        )
        .unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::BadRequest);
    }

    #[test]
    fn tools_and_every_tool_choice() {
        let tools = json!([{"type": "function", "function": {"name": "get_weather",
            "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": true}}, {"type": "function", "function": {"name": "noop"}}]);
        let b = body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools}),
        );
        assert_eq!(
            b["tools"],
            json!([
                {"name": "get_weather", "description": "Weather",
                 "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true},
                {"name": "noop", "input_schema": {"type": "object", "properties": {}}}
            ])
        );
        assert!(b.get("tool_choice").is_none());
        let cases = [
            (json!("auto"), json!({"type": "auto"})),
            (json!("required"), json!({"type": "any"})),
            (json!("none"), json!({"type": "none"})),
            (
                json!({"type": "function", "function": {"name": "noop"}}),
                json!({"type": "tool", "name": "noop"}),
            ),
        ];
        for (choice, want) in cases {
            let b =
                body(json!({"model": "m", "messages": [], "tools": tools, "tool_choice": choice}));
            assert_eq!(b["tool_choice"], want);
        }
        let b = body(json!({"model": "m", "messages": [], "tools": tools,
            "tool_choice": "required", "parallel_tool_calls": false}));
        assert_eq!(
            b["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
    }

    #[test]
    fn json_modes_use_structured_outputs_or_the_json_tool() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}},
            "required": ["a"], "additionalProperties": false});
        let t = messages_body(
            "anthropic",
            "m",
            &request(json!({"model": "m", "messages": [], "output_config": {"effort": "low"},
                "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema, "strict": true}}})),
            10,
            false,
        )
        .unwrap();
        assert!(!t.json_tool);
        assert_eq!(
            t.body["output_config"],
            json!({"effort": "low", "format": {"type": "json_schema", "schema": schema}})
        );
        assert!(t.body.get("tools").is_none());

        let t = messages_body(
            "anthropic",
            "m",
            &request(
                json!({"model": "m", "messages": [], "response_format": {"type": "json_object"}}),
            ),
            10,
            false,
        )
        .unwrap();
        assert!(t.json_tool);
        assert_eq!(t.body["tools"][0]["name"], JSON_TOOL);
        assert_eq!(
            t.body["tool_choice"],
            json!({"type": "tool", "name": JSON_TOOL})
        );
        // With client tools the model may call one of them or answer through the JSON tool.
        let t = messages_body(
            "anthropic",
            "m",
            &request(
                json!({"model": "m", "messages": [], "response_format": {"type": "json_object"},
                "tools": [{"type": "function", "function": {"name": "f"}}]}),
            ),
            10,
            false,
        )
        .unwrap();
        assert_eq!(t.body["tool_choice"], json!({"type": "any"}));
        assert_eq!(t.body["tools"][1]["name"], JSON_TOOL);
    }

    #[test]
    fn sampling_limits_stop_sequences_and_passthrough() {
        let b = body(
            json!({"model": "m", "messages": [], "max_tokens": 100, "max_completion_tokens": 50,
            "temperature": 1.7, "top_p": 0.9, "stop": "END", "user": "u-1", "seed": 7,
            "frequency_penalty": 0.5, "top_k": 40, "thinking": {"type": "enabled", "budget_tokens": 1024}}),
        );
        assert_eq!(b["max_tokens"], 50, "max_completion_tokens wins");
        assert_eq!(b["temperature"], 1.0, "clamped to Anthropic's range");
        assert_eq!(b["top_p"], 0.9);
        assert_eq!(b["stop_sequences"], json!(["END"]));
        assert_eq!(b["metadata"], json!({"user_id": "u-1"}));
        assert_eq!(b["top_k"], 40);
        assert_eq!(b["thinking"]["budget_tokens"], 1024);
        for dropped in ["seed", "frequency_penalty", "user", "stop", "n"] {
            assert!(b.get(dropped).is_none(), "{dropped}");
        }
    }

    #[test]
    fn unsupported_requests_fail_before_any_call() {
        for extra in [
            json!({"n": 2}),
            json!({"logprobs": true}),
            json!({"modalities": ["text", "audio"]}),
        ] {
            let mut req = json!({"model": "m", "messages": []});
            for (k, v) in extra.as_object().unwrap() {
                req[k] = v.clone();
            }
            let err = messages_body("anthropic", "m", &request(req), 10, false).unwrap_err();
            assert_eq!(err.kind, ProviderErrorKind::Unsupported);
        }
    }

    #[test]
    fn a_final_assistant_prefill_loses_trailing_whitespace() {
        let b = body(json!({"model": "m", "messages": [
            {"role": "user", "content": "list"}, {"role": "assistant", "content": "1. "}]}));
        assert_eq!(b["messages"][1]["content"][0]["text"], "1.");
    }

    #[test]
    fn answers_translate_with_usage_and_stop_reasons() {
        let answer = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x-1",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 30, "cache_creation_input_tokens": 5,
                "cache_read_input_tokens": 100, "output_tokens_details": {"thinking_tokens": 12}}});
        let r = chat_response("anthropic", "m", false, answer.to_string().as_bytes()).unwrap();
        let c = &r.choices[0];
        assert_eq!(c.finish_reason, FinishReason::ToolCalls);
        assert_eq!(c.message.content.as_deref(), Some("Let me check."));
        let call = &c.message.tool_calls.as_ref().unwrap()[0];
        assert_eq!(
            (call.id.as_str(), call.function.arguments.as_str()),
            ("toolu_1", "{\"city\":\"Paris\"}")
        );
        let u = r.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (115, 30, 145)
        );
        assert_eq!((u.cached_tokens(), u.reasoning_tokens()), (100, 12));
        assert_eq!((r.id.as_str(), r.model.as_str()), ("msg_1", "claude-x-1"));

        for (reason, want) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("pause_turn", FinishReason::Stop),
            ("something_new", FinishReason::Stop),
        ] {
            let answer = json!({"id": "m", "content": [{"type": "text", "text": "x"}],
                "stop_reason": reason, "usage": {"input_tokens": 1, "output_tokens": 1}});
            let r = chat_response("anthropic", "m", false, answer.to_string().as_bytes()).unwrap();
            assert_eq!(r.choices[0].finish_reason, want, "{reason}");
        }
    }

    #[test]
    fn refusals_and_json_tool_answers() {
        let refusal = json!({"id": "m", "content": [], "stop_reason": "refusal",
            "usage": {"input_tokens": 1, "output_tokens": 0}});
        let r = chat_response("anthropic", "m", false, refusal.to_string().as_bytes()).unwrap();
        assert_eq!(r.choices[0].finish_reason, FinishReason::ContentFilter);
        assert_eq!(r.choices[0].message.refusal.as_deref(), Some(REFUSAL));
        assert_eq!(r.choices[0].message.content, None);

        let json_answer = json!({"id": "m", "content": [
            {"type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {"a": 1}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 5}});
        let r = chat_response("anthropic", "m", true, json_answer.to_string().as_bytes()).unwrap();
        assert_eq!(r.choices[0].message.content.as_deref(), Some("{\"a\":1}"));
        assert_eq!(r.choices[0].message.tool_calls, None);
        assert_eq!(r.choices[0].finish_reason, FinishReason::Stop);
    }

    #[test]
    fn error_objects_are_classified_by_type() {
        let cases = [
            ("overloaded_error", ProviderErrorKind::Server),
            ("api_error", ProviderErrorKind::Server),
            ("rate_limit_error", ProviderErrorKind::RateLimited),
            ("invalid_request_error", ProviderErrorKind::BadRequest),
            ("authentication_error", ProviderErrorKind::Unauthorized),
            ("timeout_error", ProviderErrorKind::Timeout),
            ("brand_new_error", ProviderErrorKind::Server),
        ];
        for (kind, want) in cases {
            let e = error_event(
                "anthropic",
                &json!({"type": "error", "error": {"type": kind, "message": "boom"}}),
            );
            assert_eq!(e.kind, want, "{kind}");
            assert_eq!(e.message, format!("{kind}: boom"));
        }
        let body = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        let err = chat_response("anthropic", "m", false, body.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Server);
        let err = chat_response("anthropic", "m", false, b"<html>").unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::InvalidResponse);
    }
}
