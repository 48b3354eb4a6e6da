//! Translation between OpenAI's Chat Completions and Embeddings shapes and Cohere's v2 Chat and
//! Embed APIs. Pure functions, no I/O.
//!
//! Requests (`POST /v2/chat`):
//! - messages keep their roles (`developer` becomes `system`); an assistant message's
//!   `tool_calls` pass as they are (Cohere's shape is OpenAI's), its text then going to
//!   `tool_plan`, where Cohere keeps the text that precedes tool calls; `tool` messages keep
//!   `tool_call_id`, their content as text;
//! - user images pass as `image_url` parts (Cohere's vision models take OpenAI's shape);
//! - tools pass as `{type: function, function: {name, description, parameters}}`; a tool's
//!   `strict: true` turns on the request-wide `strict_tools`;
//! - `tool_choice`: `auto` is the default (omitted), `required` → `REQUIRED`, `none` → `NONE`;
//!   Cohere cannot force one named tool, so a named choice sends only that tool, `REQUIRED`;
//! - `response_format`: `json_object` → `{type: json_object}`, `json_schema` →
//!   `{type: json_object, json_schema: <the schema>}`;
//! - `max_tokens`, `stop` → `stop_sequences`, `temperature`, `top_p` → `p` (clamped to Cohere's
//!   0.01–0.99), `seed`, `frequency_penalty`, `presence_penalty`; Cohere-only fields a client
//!   may send (`safety_mode`, `thinking`, `documents`, `citation_options`) pass through; what
//!   cannot be honoured (`n > 1`, `logprobs`, audio, files) fails as `Unsupported`.
//!
//! Answers: text content parts joined (thinking parts dropped), else the `tool_plan`;
//! `tool_calls` as they are; `finish_reason` COMPLETE/STOP_SEQUENCE → `stop`, MAX_TOKENS →
//! `length`, TOOL_CALL → `tool_calls`, ERROR and TIMEOUT → an error; usage from
//! `usage.billed_units` (what the price applies to), else `usage.tokens`.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::native::{bad_request, invalid, parse_json, unsupported};
use crate::types::{
    AssistantMessage, ChatRequest, ChatResponse, Choice, Content, ContentPart, Embedding,
    EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, FinishReason, FunctionCall, Message,
    PromptTokensDetails, ResponseFormat, Role, Stop, ToolCall, Usage,
};
use crate::{ProviderError, ProviderErrorKind};

/// Cohere's range of `p`.
const P_RANGE: (f64, f64) = (0.01, 0.99);

/// Returns the v2 Chat body for `req`.
pub(crate) fn chat_body(
    provider: &str,
    upstream_model: &str,
    req: &ChatRequest,
    stream: bool,
) -> Result<Value, ProviderError> {
    crate::native::reject_unsupported(provider, req)?;
    let mut body = Map::new();
    body.insert("model".into(), Value::String(upstream_model.into()));
    let mut messages = Vec::with_capacity(req.messages.len());
    for message in &req.messages {
        messages.extend(message_value(provider, message)?);
    }
    body.insert("messages".into(), Value::Array(messages));
    // `stream` is documented as required: sent either way.
    body.insert("stream".into(), Value::Bool(stream));

    if let Some(limit) = req.max_completion_tokens.or(req.max_tokens) {
        body.insert("max_tokens".into(), json!(limit));
    }
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
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("p".into(), json!(p.clamp(P_RANGE.0, P_RANGE.1)));
    }
    for field in [
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "safety_mode",
        "thinking",
        "documents",
        "citation_options",
    ] {
        if let Some(v) = req.extra.get(field).filter(|v| !v.is_null()) {
            body.insert(field.into(), v.clone());
        }
    }
    tools(provider, req, &mut body)?;
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            let schema = json_schema
                .get("schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| {
                    bad_request(
                        provider,
                        "response_format.json_schema has no `schema` object".into(),
                    )
                })?;
            body.insert(
                "response_format".into(),
                json!({"type": "json_object", "json_schema": schema}),
            );
        }
    }
    Ok(Value::Object(body))
}

fn message_value(provider: &str, message: &Message) -> Result<Option<Value>, ProviderError> {
    let text = || {
        message
            .content
            .as_ref()
            .map(Content::text)
            .unwrap_or_default()
    };
    Ok(Some(match message.role {
        Role::System | Role::Developer => json!({"role": "system", "content": text()}),
        Role::User => {
            json!({"role": "user", "content": user_content(provider, message.content.as_ref())?})
        }
        Role::Tool => {
            let id = message
                .tool_call_id
                .as_deref()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    bad_request(provider, "a tool message has no tool_call_id".into())
                })?;
            json!({"role": "tool", "tool_call_id": id, "content": text()})
        }
        Role::Assistant => {
            let text = text();
            let calls: Vec<Value> = message
                .tool_calls
                .iter()
                .flatten()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                        "function": {"name": c.function.name, "arguments": c.function.arguments}})
                })
                .collect();
            let mut m = Map::new();
            m.insert("role".into(), json!("assistant"));
            match (calls.is_empty(), text.is_empty()) {
                (true, true) => return Ok(None), // nothing to say: Cohere rejects empty turns
                (true, false) => {
                    m.insert("content".into(), Value::String(text));
                }
                (false, _) => {
                    if !text.is_empty() {
                        m.insert("tool_plan".into(), Value::String(text));
                    }
                    m.insert("tool_calls".into(), Value::Array(calls));
                }
            }
            Value::Object(m)
        }
    }))
}

fn user_content(provider: &str, content: Option<&Content>) -> Result<Value, ProviderError> {
    let parts = match content {
        None => return Ok(Value::String(String::new())),
        Some(Content::Text(text)) => return Ok(Value::String(text.clone())),
        Some(Content::Parts(parts)) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            ContentPart::Text { text } => out.push(json!({"type": "text", "text": text})),
            ContentPart::ImageUrl { image_url } => {
                let mut image = json!({"url": image_url.url});
                if let (Some(detail), Some(obj)) = (&image_url.detail, image.as_object_mut()) {
                    obj.insert("detail".into(), Value::String(detail.clone()));
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            ContentPart::InputAudio { .. } | ContentPart::File { .. } => {
                return Err(unsupported(
                    provider,
                    format!("{provider} accepts text and images only"),
                ));
            }
            ContentPart::Refusal { .. } => {}
        }
    }
    Ok(Value::Array(out))
}

fn tools(
    provider: &str,
    req: &ChatRequest,
    body: &mut Map<String, Value>,
) -> Result<(), ProviderError> {
    let Some(client_tools) = req.tools.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let (choice, only) = match req.tool_choice.as_ref() {
        None | Some(Value::Null) => (None, None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => (None, None),
            "required" => (Some("REQUIRED"), None),
            "none" => (Some("NONE"), None),
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
            if !client_tools.iter().any(|t| t.function.name == name) {
                return Err(bad_request(
                    provider,
                    format!("tool_choice names `{name}`, which is not among the tools"),
                ));
            }
            (Some("REQUIRED"), Some(name))
        }
        Some(_) => return Err(bad_request(provider, "tool_choice is malformed".into())),
    };
    let tools: Vec<Value> = client_tools
        .iter()
        .filter(|t| only.is_none_or(|name| t.function.name == name))
        .map(|t| {
            let f = &t.function;
            let mut function = Map::new();
            function.insert("name".into(), Value::String(f.name.clone()));
            if let Some(d) = &f.description {
                function.insert("description".into(), Value::String(d.clone()));
            }
            let parameters = f
                .parameters
                .clone()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            function.insert("parameters".into(), parameters);
            json!({"type": "function", "function": function})
        })
        .collect();
    body.insert("tools".into(), Value::Array(tools));
    if let Some(choice) = choice {
        body.insert("tool_choice".into(), Value::String(choice.into()));
    }
    if client_tools.iter().any(|t| t.function.strict == Some(true)) {
        body.insert("strict_tools".into(), Value::Bool(true));
    }
    Ok(())
}

/// Cohere's `usage` (counts may be written as floats).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct CohereUsage {
    #[serde(default)]
    pub billed_units: Option<Units>,
    #[serde(default)]
    pub tokens: Option<Units>,
    /// Prompt tokens served from Cohere's cache, when reported.
    #[serde(default)]
    pub cached_tokens: Option<f64>,
}

/// Input and output counts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct Units {
    #[serde(default)]
    pub input_tokens: Option<f64>,
    #[serde(default)]
    pub output_tokens: Option<f64>,
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "token counts: non-negative whole numbers that Cohere may write as floats"
)]
fn count(n: f64) -> u64 {
    if n.is_finite() && n > 0.0 {
        n.round() as u64
    } else {
        0
    }
}

impl CohereUsage {
    /// Returns OpenAI's usage: billed units first (the counts prices apply to), else tokens.
    pub(crate) fn to_openai(&self) -> Usage {
        let pick = |f: fn(&Units) -> Option<f64>| {
            self.billed_units
                .as_ref()
                .and_then(f)
                .or_else(|| self.tokens.as_ref().and_then(f))
                .map_or(0, count)
        };
        let prompt = pick(|u| u.input_tokens);
        let completion = pick(|u| u.output_tokens);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: self.cached_tokens.map(|c| PromptTokensDetails {
                cached_tokens: count(c),
                audio_tokens: None,
            }),
            completion_tokens_details: None,
        }
    }
}

/// What a `finish_reason` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A finish reason.
    Finish(FinishReason),
    /// The generation failed.
    Failed(ProviderErrorKind),
}

/// Maps a `finish_reason` (documented upper case; early v2 wrote lower case). Unknown reasons
/// read as `stop`.
pub(crate) fn finish_reason(reason: &str) -> Ending {
    match reason.to_ascii_uppercase().as_str() {
        "MAX_TOKENS" => Ending::Finish(FinishReason::Length),
        "TOOL_CALL" => Ending::Finish(FinishReason::ToolCalls),
        "CONTENT_BLOCKED" => Ending::Finish(FinishReason::ContentFilter),
        "ERROR" => Ending::Failed(ProviderErrorKind::Server),
        "TIMEOUT" => Ending::Failed(ProviderErrorKind::Timeout),
        "ERROR_LIMIT" => Ending::Failed(ProviderErrorKind::ContextLength),
        _ => Ending::Finish(FinishReason::Stop),
    }
}

/// Returns the error of a failed generation.
pub(crate) fn failed(
    provider: &str,
    kind: ProviderErrorKind,
    reason: &str,
    message: Option<&str>,
) -> ProviderError {
    let message = match message.filter(|m| !m.is_empty()) {
        Some(m) => format!("the upstream stopped generating ({reason}): {m}"),
        None => format!("the upstream stopped generating with finish_reason {reason}"),
    };
    ProviderError::new(provider, kind, message)
}

#[derive(Debug, Deserialize)]
struct ChatAnswer {
    #[serde(default)]
    id: String,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    message: Option<AnswerMessage>,
    #[serde(default)]
    usage: Option<CohereUsage>,
}

#[derive(Debug, Default, Deserialize)]
struct AnswerMessage {
    #[serde(default)]
    content: Option<Vec<Value>>,
    #[serde(default)]
    tool_plan: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<AnswerToolCall>>,
}

#[derive(Debug, Deserialize)]
struct AnswerToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<AnswerFunction>,
}

#[derive(Debug, Deserialize)]
struct AnswerFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Parses a non-streaming chat answer.
pub(crate) fn chat_response(
    provider: &str,
    upstream_model: &str,
    body: &[u8],
) -> Result<ChatResponse, ProviderError> {
    let answer: ChatAnswer = parse_json(provider, body)?;
    let reason = answer.finish_reason.as_deref().unwrap_or("COMPLETE");
    let finish = match finish_reason(reason) {
        Ending::Finish(finish) => finish,
        Ending::Failed(kind) => return Err(failed(provider, kind, reason, None)),
    };
    let message = answer.message.unwrap_or_default();
    let text: String = message
        .content
        .iter()
        .flatten()
        .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect();
    let content = if text.is_empty() {
        message.tool_plan.filter(|p| !p.is_empty())
    } else {
        Some(text)
    };
    let tool_calls: Vec<ToolCall> = message
        .tool_calls
        .into_iter()
        .flatten()
        .map(|call| {
            let function = call.function.unwrap_or(AnswerFunction {
                name: None,
                arguments: None,
            });
            ToolCall {
                id: call.id.unwrap_or_default(),
                kind: "function".into(),
                function: FunctionCall {
                    name: function.name.unwrap_or_default(),
                    arguments: function.arguments.unwrap_or_else(|| "{}".into()),
                },
            }
        })
        .collect();
    Ok(ChatResponse {
        id: answer.id,
        object: "chat.completion".into(),
        created: 0,
        model: upstream_model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: Role::Assistant,
                content,
                refusal: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                annotations: None,
            },
            finish_reason: finish,
            logprobs: None,
        }],
        usage: answer.usage.as_ref().map(CohereUsage::to_openai),
        system_fingerprint: None,
        service_tier: None,
    })
}

/// Classifies a JSON body answered to a streaming request: Cohere's error bodies carry a
/// `message` (and an `id`) and nothing else.
pub(crate) fn in_band_error(provider: &str, value: &Value) -> Option<ProviderError> {
    let message = value.get("message").and_then(Value::as_str)?;
    (value.get("finish_reason").is_none() && value.get("type").is_none())
        .then(|| ProviderError::new(provider, ProviderErrorKind::Server, message))
}

/// Returns the v2 Embed body: floats, `input_type` from the request (`input_type`, a Cohere
/// field a client may send) or `default_input_type`.
pub(crate) fn embed_body(
    provider: &str,
    upstream_model: &str,
    req: &EmbeddingRequest,
    default_input_type: &str,
) -> Result<Value, ProviderError> {
    let texts: Vec<&str> = match &req.input {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                unsupported(
                    provider,
                    format!("{provider} embeds text only (not token arrays)"),
                )
            })?,
        _ => {
            return Err(bad_request(
                provider,
                "`input` must be a string or a list of strings".into(),
            ));
        }
    };
    let input_type = req
        .extra
        .get("input_type")
        .and_then(Value::as_str)
        .unwrap_or(default_input_type);
    let mut body = json!({"model": upstream_model, "texts": texts, "input_type": input_type,
        "embedding_types": ["float"]});
    if let Some(obj) = body.as_object_mut() {
        if let Some(d) = req.dimensions {
            obj.insert("output_dimension".into(), json!(d));
        }
        if let Some(t) = req.extra.get("truncate").filter(|t| t.is_string()) {
            obj.insert("truncate".into(), t.clone());
        }
    }
    Ok(body)
}

#[derive(Debug, Deserialize)]
struct EmbedAnswer {
    #[serde(default)]
    embeddings: Option<EmbeddingsByType>,
    #[serde(default)]
    meta: Option<EmbedMeta>,
}

#[derive(Debug, Deserialize)]
struct EmbeddingsByType {
    #[serde(default)]
    float: Option<Vec<Vec<f32>>>,
}

#[derive(Debug, Deserialize)]
struct EmbedMeta {
    #[serde(default)]
    billed_units: Option<Units>,
    #[serde(default)]
    tokens: Option<Units>,
}

/// Parses a v2 Embed answer.
pub(crate) fn embed_response(
    provider: &str,
    upstream_model: &str,
    body: &[u8],
) -> Result<EmbeddingResponse, ProviderError> {
    let answer: EmbedAnswer = parse_json(provider, body)?;
    let vectors = answer
        .embeddings
        .and_then(|e| e.float)
        .ok_or_else(|| invalid(provider, "the answer has no float embeddings".into()))?;
    let tokens = answer
        .meta
        .and_then(|m| {
            m.billed_units
                .and_then(|u| u.input_tokens)
                .or_else(|| m.tokens.and_then(|u| u.input_tokens))
        })
        .map_or(0, count);
    Ok(EmbeddingResponse {
        object: "list".into(),
        data: vectors
            .into_iter()
            .zip(0u32..)
            .map(|(embedding, index)| Embedding {
                object: "embedding".into(),
                index,
                embedding,
            })
            .collect(),
        model: upstream_model.to_owned(),
        usage: EmbeddingUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    fn body(v: Value) -> Value {
        chat_body("cohere", "command-a", &request(v), false).unwrap()
    }

    #[test]
    fn messages_tools_and_results_keep_their_roles() {
        let b = body(json!({"model": "m", "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]},
            {"role": "assistant", "content": "I will look it up.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "search", "arguments": "{\"q\":\"x\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
            {"role": "assistant", "content": null},
            {"role": "assistant", "content": "A cat."}
        ]}));
        assert_eq!(
            b["messages"],
            json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]},
                {"role": "assistant", "tool_plan": "I will look it up.", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "search", "arguments": "{\"q\":\"x\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
                {"role": "assistant", "content": "A cat."}
            ])
        );
        assert_eq!(b["stream"], false);
        assert!(b.get("max_tokens").is_none());
    }

    #[test]
    fn tools_choices_and_formats() {
        let tools = json!([
            {"type": "function", "function": {"name": "search", "description": "Search",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}, "strict": true}},
            {"type": "function", "function": {"name": "noop"}}
        ]);
        let b = body(json!({"model": "m", "messages": [], "tools": tools, "tool_choice": "auto"}));
        assert_eq!(
            b["tools"],
            json!([
                {"type": "function", "function": {"name": "search", "description": "Search",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}},
                {"type": "function", "function": {"name": "noop", "parameters": {"type": "object", "properties": {}}}}
            ])
        );
        assert_eq!(b["strict_tools"], true);
        assert!(b.get("tool_choice").is_none());
        let b =
            body(json!({"model": "m", "messages": [], "tools": tools, "tool_choice": "required"}));
        assert_eq!(b["tool_choice"], "REQUIRED");
        let b = body(json!({"model": "m", "messages": [], "tools": tools, "tool_choice": "none"}));
        assert_eq!(b["tool_choice"], "NONE");
        let b = body(json!({"model": "m", "messages": [], "tools": tools,
            "tool_choice": {"type": "function", "function": {"name": "noop"}}}));
        assert_eq!(b["tool_choice"], "REQUIRED");
        assert_eq!(b["tools"].as_array().unwrap().len(), 1);
        assert_eq!(b["tools"][0]["function"]["name"], "noop");

        let b =
            body(json!({"model": "m", "messages": [], "response_format": {"type": "json_object"}}));
        assert_eq!(b["response_format"], json!({"type": "json_object"}));
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        let b = body(json!({"model": "m", "messages": [],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}));
        assert_eq!(
            b["response_format"],
            json!({"type": "json_object", "json_schema": schema})
        );
    }

    #[test]
    fn sampling_and_limits() {
        let b = body(
            json!({"model": "m", "messages": [], "max_tokens": 300, "top_p": 1.0,
            "temperature": 0.3, "stop": ["a", "b"], "seed": 3, "presence_penalty": 0.1, "user": "u"}),
        );
        assert_eq!(b["max_tokens"], 300);
        assert_eq!(b["p"], 0.99);
        assert_eq!(b["temperature"], 0.3);
        assert_eq!(b["stop_sequences"], json!(["a", "b"]));
        assert_eq!(
            (b["seed"].clone(), b["presence_penalty"].clone()),
            (json!(3), json!(0.1))
        );
        assert!(b.get("user").is_none() && b.get("top_p").is_none());
        let err = chat_body(
            "cohere",
            "m",
            &request(json!({"model": "m", "messages": [], "n": 3})),
            false,
        )
        .unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Unsupported);
    }

    #[test]
    fn answers_translate() {
        let answer = json!({"id": "r1", "finish_reason": "TOOL_CALL", "message": {"role": "assistant",
            "tool_plan": "I will search.", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "search", "arguments": "{\"q\":\"x\"}"}}]},
            "usage": {"billed_units": {"input_tokens": 10, "output_tokens": 4},
                "tokens": {"input_tokens": 200, "output_tokens": 40}}});
        let r = chat_response("cohere", "command-a", answer.to_string().as_bytes()).unwrap();
        let c = &r.choices[0];
        assert_eq!(c.finish_reason, FinishReason::ToolCalls);
        assert_eq!(c.message.content.as_deref(), Some("I will search."));
        assert_eq!(
            c.message.tool_calls.as_ref().unwrap()[0].function.name,
            "search"
        );
        let u = r.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (10, 4, 14)
        );

        let answer = json!({"id": "r2", "finish_reason": "MAX_TOKENS", "message": {"role": "assistant",
            "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Hello"}]},
            "usage": {"tokens": {"input_tokens": 7.0, "output_tokens": 2.0}, "cached_tokens": 5}});
        let r = chat_response("cohere", "command-a", answer.to_string().as_bytes()).unwrap();
        assert_eq!(r.choices[0].message.content.as_deref(), Some("Hello"));
        assert_eq!(r.choices[0].finish_reason, FinishReason::Length);
        let u = r.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.cached_tokens()), (7, 5));

        for (reason, kind) in [
            ("ERROR", ProviderErrorKind::Server),
            ("TIMEOUT", ProviderErrorKind::Timeout),
        ] {
            let answer =
                json!({"id": "r", "finish_reason": reason, "message": {"role": "assistant"}});
            let err = chat_response("cohere", "m", answer.to_string().as_bytes()).unwrap_err();
            assert_eq!(err.kind, kind);
        }
        assert_eq!(
            finish_reason("complete"),
            Ending::Finish(FinishReason::Stop)
        );
        assert_eq!(
            finish_reason("STOP_SEQUENCE"),
            Ending::Finish(FinishReason::Stop)
        );
    }

    #[test]
    fn embeddings_translate() {
        let req: EmbeddingRequest = serde_json::from_value(
            json!({"model": "x", "input": ["a", "b"], "dimensions": 256, "input_type": "search_query"}),
        )
        .unwrap();
        let b = embed_body("cohere", "embed-v4.0", &req, "search_document").unwrap();
        assert_eq!(
            b,
            json!({"model": "embed-v4.0", "texts": ["a", "b"], "input_type": "search_query",
                "embedding_types": ["float"], "output_dimension": 256})
        );
        let tokens: EmbeddingRequest =
            serde_json::from_value(json!({"model": "x", "input": [[1, 2]]})).unwrap();
        assert_eq!(
            embed_body("cohere", "m", &tokens, "search_document")
                .unwrap_err()
                .kind,
            ProviderErrorKind::Unsupported
        );
        let answer = json!({"id": "e", "response_type": "embeddings_by_type",
            "embeddings": {"float": [[0.5, -0.5], [1.0, 0.0]]}, "texts": ["a", "b"],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2}}});
        let r = embed_response("cohere", "embed-v4.0", answer.to_string().as_bytes()).unwrap();
        assert_eq!(r.data.len(), 2);
        assert_eq!(
            (r.data[1].index, r.data[1].embedding.clone()),
            (1, vec![1.0, 0.0])
        );
        assert_eq!(r.usage.prompt_tokens, 2);
    }
}
