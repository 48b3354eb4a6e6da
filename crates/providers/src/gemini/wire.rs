//! Translation between OpenAI chat types and Gemini's `GenerateContent` wire format, shared by
//! the Gemini API and Vertex AI adapters (same bodies, different URLs and authentication).
//!
//! Requests: system and developer messages become `systemInstruction`; `assistant` becomes the
//! `model` role; consecutive messages of one role merge into one `Content` (Gemini wants turns
//! to alternate); tool calls become `functionCall` parts and tool results `functionResponse`
//! parts, matched to their call by the call's function name; images become `inlineData` (data
//! URLs) or `fileData` (http(s) URLs, which Gemini fetches itself); tools become
//! `functionDeclarations` with their JSON Schema cut down to the OpenAPI subset Gemini accepts.
//!
//! Tool call ids: Gemini's `functionCall` may carry no id, so the adapter makes one up. Gemini 3
//! models attach a `thoughtSignature` to function-call parts and reject the next turn when it
//! is not sent back; OpenAI's tool call has nowhere to keep it but its id, which clients echo
//! verbatim. So the signature travels inside the id (`<id>__thought__<signature>`) and is put
//! back on the `functionCall` part when the conversation returns.

use serde_json::{Map, Value, json};

use crate::http::{error_value_message, status_error, truncate};
use crate::translated::{bad_request, invalid, new_id, parse_data_url, unix_now, unsupported};
use crate::types::{
    AssistantMessage, ChatRequest, ChatResponse, Choice, Content, ContentPart, EmbeddingRequest,
    EmbeddingResponse, FinishReason, ResponseFormat, Role, Stop, ToolCall, Usage,
};
use crate::{ProviderError, ProviderErrorKind};

/// Separates a tool call id from the thought signature it carries.
const SIGNATURE_SEPARATOR: &str = "__thought__";

/// Returns the `GenerateContentRequest` body for an OpenAI chat request.
pub(crate) fn request_body(provider: &str, req: &ChatRequest) -> Result<Value, ProviderError> {
    let mut system_parts = Vec::new();
    let mut contents: Vec<(&'static str, Vec<Value>)> = Vec::new();
    // Tool call id → function name, for the tool results that answer them.
    let mut call_names: Vec<(String, String)> = Vec::new();

    for message in &req.messages {
        let (role, parts) = match message.role {
            Role::System | Role::Developer => {
                if let Some(content) = &message.content {
                    let text = content.text();
                    if !text.is_empty() {
                        system_parts.push(json!({"text": text}));
                    }
                }
                continue;
            }
            Role::User => ("user", content_parts(provider, message.content.as_ref())?),
            Role::Assistant => {
                let mut parts = content_parts(provider, message.content.as_ref())?;
                for call in message.tool_calls.iter().flatten() {
                    let args = parse_arguments(provider, &call.function.arguments)?;
                    let (_, signature) = split_call_id(&call.id);
                    let mut part = Map::new();
                    part.insert(
                        "functionCall".into(),
                        json!({"name": call.function.name, "args": args}),
                    );
                    if let Some(signature) = signature {
                        part.insert("thoughtSignature".into(), Value::String(signature.into()));
                    }
                    parts.push(Value::Object(part));
                    call_names.push((call.id.clone(), call.function.name.clone()));
                }
                ("model", parts)
            }
            Role::Tool => {
                let name = message
                    .tool_call_id
                    .as_deref()
                    .and_then(|id| {
                        call_names
                            .iter()
                            .rev()
                            .find(|(call, _)| call == id)
                            .map(|(_, name)| name.clone())
                    })
                    .or_else(|| message.name.clone())
                    .ok_or_else(|| {
                        bad_request(
                            provider,
                            format!(
                                "the tool message answering `{}` matches no earlier tool call",
                                message.tool_call_id.as_deref().unwrap_or("")
                            ),
                        )
                    })?;
                let text = message
                    .content
                    .as_ref()
                    .map(Content::text)
                    .unwrap_or_default();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(obj)) => Value::Object(obj),
                    Ok(other) => json!({"output": other}),
                    Err(_) => json!({"output": text}),
                };
                (
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                )
            }
        };
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => contents.push((role, parts)),
        }
    }

    let mut body = Map::new();
    body.insert(
        "contents".into(),
        Value::Array(
            contents
                .into_iter()
                .map(|(role, parts)| json!({"role": role, "parts": parts}))
                .collect(),
        ),
    );
    if !system_parts.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system_parts}));
    }
    if let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) {
        let declarations: Vec<Value> = tools
            .iter()
            .map(|tool| {
                let mut decl = Map::new();
                decl.insert("name".into(), Value::String(tool.function.name.clone()));
                if let Some(d) = &tool.function.description {
                    decl.insert("description".into(), Value::String(d.clone()));
                }
                if let Some(params) = tool.function.parameters.as_ref().map(gemini_schema)
                    && !is_empty_object_schema(&params)
                {
                    decl.insert("parameters".into(), params);
                }
                Value::Object(decl)
            })
            .collect();
        body.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations}]),
        );
    }
    if let Some(choice) = &req.tool_choice {
        body.insert(
            "toolConfig".into(),
            json!({"functionCallingConfig": function_calling_config(provider, choice)?}),
        );
    }
    let config = generation_config(provider, req)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(body))
}

fn content_parts(provider: &str, content: Option<&Content>) -> Result<Vec<Value>, ProviderError> {
    let mut parts = Vec::new();
    match content {
        Some(Content::Text(text)) if !text.is_empty() => parts.push(json!({"text": text})),
        None | Some(Content::Text(_)) => {}
        Some(Content::Parts(list)) => {
            for part in list {
                match part {
                    ContentPart::Text { text } | ContentPart::Refusal { refusal: text } => {
                        if !text.is_empty() {
                            parts.push(json!({"text": text}));
                        }
                    }
                    ContentPart::ImageUrl { image_url } => {
                        parts.push(media_part(provider, &image_url.url)?);
                    }
                    ContentPart::InputAudio { input_audio } => {
                        let data = input_audio.get("data").and_then(Value::as_str);
                        let format = input_audio.get("format").and_then(Value::as_str);
                        let (Some(data), Some(format)) = (data, format) else {
                            return Err(bad_request(
                                provider,
                                "input_audio needs `data` and `format`",
                            ));
                        };
                        let mime = match format {
                            "mp3" => "audio/mp3".to_owned(),
                            other => format!("audio/{other}"),
                        };
                        parts.push(json!({"inlineData": {"mimeType": mime, "data": data}}));
                    }
                    ContentPart::File { file } => {
                        match file.get("file_data").and_then(Value::as_str) {
                            Some(url) => parts.push(media_part(provider, url)?),
                            None => {
                                return Err(unsupported(
                                    provider,
                                    "files are accepted as `file_data` data URLs only (no file ids)",
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(parts)
}

/// Returns the part for an image or file URL: a data URL inline, an http(s) URL as `fileData`
/// (the Gemini API and Vertex AI fetch public and signed URLs themselves).
fn media_part(provider: &str, url: &str) -> Result<Value, ProviderError> {
    if let Some((mime, data)) = parse_data_url(url) {
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    if url.starts_with("https://") || url.starts_with("http://") || url.starts_with("gs://") {
        let mut file = Map::new();
        if let Some(mime) = mime_from_extension(url) {
            file.insert("mimeType".into(), Value::String(mime.into()));
        }
        file.insert("fileUri".into(), Value::String(url.into()));
        return Ok(json!({"fileData": file}));
    }
    Err(bad_request(
        provider,
        format!("unsupported media URL `{}`", truncate(url, 60)),
    ))
}

fn mime_from_extension(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

fn parse_arguments(provider: &str, arguments: &str) -> Result<Value, ProviderError> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(obj)) => Ok(Value::Object(obj)),
        Ok(_) | Err(_) => Err(bad_request(
            provider,
            format!(
                "tool call arguments are not a JSON object: {}",
                truncate(arguments, 100)
            ),
        )),
    }
}

/// Splits a tool call id made by this adapter into the id and the thought signature it carries.
pub(crate) fn split_call_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SIGNATURE_SEPARATOR) {
        Some((base, signature)) if !signature.is_empty() => (base, Some(signature)),
        _ => (id, None),
    }
}

/// Returns the OpenAI tool call id for a `functionCall` part: Gemini's id when it gave one, else
/// a fresh one; with the part's thought signature appended.
fn call_id(call: &Value, part: &Value) -> String {
    let base = call
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(|| new_id("call_"), str::to_owned);
    match part.get("thoughtSignature").and_then(Value::as_str) {
        Some(signature) if !signature.is_empty() => {
            format!("{base}{SIGNATURE_SEPARATOR}{signature}")
        }
        _ => base,
    }
}

fn function_calling_config(provider: &str, choice: &Value) -> Result<Value, ProviderError> {
    Ok(match choice {
        Value::String(s) => match s.as_str() {
            "none" => json!({"mode": "NONE"}),
            "auto" => json!({"mode": "AUTO"}),
            "required" => json!({"mode": "ANY"}),
            other => {
                return Err(bad_request(
                    provider,
                    format!("unknown tool_choice `{other}`"),
                ));
            }
        },
        Value::Object(obj) => {
            let name = obj
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad_request(provider, "tool_choice names no function"))?;
            json!({"mode": "ANY", "allowedFunctionNames": [name]})
        }
        _ => {
            return Err(bad_request(
                provider,
                "tool_choice is neither a string nor an object",
            ));
        }
    })
}

fn generation_config(
    provider: &str,
    req: &ChatRequest,
) -> Result<Map<String, Value>, ProviderError> {
    let mut config = Map::new();
    if let Some(t) = req.temperature {
        config.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        config.insert("topP".into(), json!(p));
    }
    if let Some(max) = req.max_completion_tokens.or(req.max_tokens) {
        config.insert("maxOutputTokens".into(), json!(max));
    }
    match &req.stop {
        Some(Stop::One(s)) => {
            config.insert("stopSequences".into(), json!([s]));
        }
        Some(Stop::Many(list)) if !list.is_empty() => {
            config.insert("stopSequences".into(), json!(list));
        }
        _ => {}
    }
    if let Some(n) = req.n {
        config.insert("candidateCount".into(), json!(n));
    }
    for (from, to) in [
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = req.extra.get(from).filter(|v| !v.is_null()) {
            config.insert(to.into(), v.clone());
        }
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            let Some(schema) = json_schema.get("schema") else {
                return Err(bad_request(
                    provider,
                    "response_format.json_schema has no `schema`",
                ));
            };
            let mut schema = schema.clone();
            if let Some(obj) = schema.as_object_mut() {
                obj.remove("$schema");
            }
            config.insert("responseMimeType".into(), json!("application/json"));
            // `responseJsonSchema` takes JSON Schema as is (refs, additionalProperties, ...),
            // unlike `responseSchema`'s OpenAPI subset.
            config.insert("responseJsonSchema".into(), schema);
        }
    }
    Ok(config)
}

/// The schema keywords Gemini's `Schema` (an OpenAPI 3.0 subset) accepts; everything else is
/// dropped, as the function-calling documentation asks.
const SCHEMA_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// Returns a JSON Schema cut down to Gemini's subset: `$ref`s into `$defs` / `definitions`
/// inlined (cycles cut), `type: [T, "null"]` as `nullable`, `oneOf` read as `anyOf`, `const` as
/// a one-value `enum`, unknown keywords (`additionalProperties`, `$schema`, ...) removed.
pub(crate) fn gemini_schema(schema: &Value) -> Value {
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .cloned()
        .unwrap_or(Value::Null);
    clean_schema(schema, &defs, 0)
}

fn clean_schema(schema: &Value, defs: &Value, depth: usize) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    if depth > 16 {
        return json!({"type": "object"});
    }
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/$defs/")
            .or_else(|| reference.strip_prefix("#/definitions/"));
        return match name.and_then(|n| defs.get(n)) {
            Some(target) => clean_schema(target, defs, depth + 1),
            None => json!({"type": "object"}),
        };
    }
    let mut out = Map::new();
    for (key, value) in obj {
        let key = if key == "oneOf" {
            "anyOf"
        } else {
            key.as_str()
        };
        match key {
            "type" => match value {
                Value::Array(types) => {
                    let real: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
                    if real.len() < types.len() {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    if let Some(first) = real.first() {
                        out.insert("type".into(), (*first).clone());
                    }
                }
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "properties" => {
                if let Some(props) = value.as_object().filter(|p| !p.is_empty()) {
                    let cleaned: Map<String, Value> = props
                        .iter()
                        .map(|(k, v)| (k.clone(), clean_schema(v, defs, depth + 1)))
                        .collect();
                    out.insert("properties".into(), Value::Object(cleaned));
                }
            }
            "items" => {
                out.insert("items".into(), clean_schema(value, defs, depth + 1));
            }
            "anyOf" => {
                if let Some(list) = value.as_array() {
                    let mut variants = Vec::new();
                    for v in list {
                        if v.get("type").and_then(Value::as_str) == Some("null") {
                            out.insert("nullable".into(), Value::Bool(true));
                        } else {
                            variants.push(clean_schema(v, defs, depth + 1));
                        }
                    }
                    if variants.len() == 1 {
                        if let Some(Value::Object(only)) = variants.pop() {
                            for (k, v) in only {
                                out.entry(k).or_insert(v);
                            }
                        }
                    } else if !variants.is_empty() {
                        out.insert("anyOf".into(), Value::Array(variants));
                    }
                }
            }
            "enum" => {
                // Gemini's enums are strings.
                if let Some(list) = value.as_array().filter(|l| l.iter().all(Value::is_string)) {
                    out.insert("enum".into(), Value::Array(list.clone()));
                }
            }
            "const" if value.is_string() => {
                out.insert("enum".into(), json!([value]));
            }
            k if SCHEMA_KEYWORDS.contains(&k) => {
                out.insert(k.into(), value.clone());
            }
            _ => {}
        }
    }
    if let (Some(Value::Array(required)), Some(Value::Object(props))) =
        (out.get("required"), out.get("properties"))
    {
        let kept: Vec<Value> = required
            .iter()
            .filter(|r| r.as_str().is_some_and(|r| props.contains_key(r)))
            .cloned()
            .collect();
        out.insert("required".into(), Value::Array(kept));
    } else if !out.contains_key("properties") {
        out.remove("required");
    }
    if out.get("enum").is_some() && !out.contains_key("type") {
        out.insert("type".into(), json!("string"));
    }
    Value::Object(out)
}

/// Whether a parameters schema is an object without properties: Gemini rejects
/// `properties: {}` on an object, so a function without arguments is declared without
/// `parameters`.
fn is_empty_object_schema(schema: &Value) -> bool {
    schema.get("properties").is_none() && schema.get("anyOf").is_none()
}

/// Maps a Gemini `finishReason`. `Err` for a malformed function call: the answer is unusable
/// (and a retry may well succeed).
pub(crate) fn finish_reason(
    provider: &str,
    reason: &str,
    called_tools: bool,
) -> Result<FinishReason, ProviderError> {
    Ok(match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" => {
            return Err(ProviderError::new(
                provider,
                ProviderErrorKind::Server,
                format!("the model stopped with {reason}"),
            ));
        }
        // STOP, OTHER, LANGUAGE, FINISH_REASON_UNSPECIFIED and words added later.
        _ if called_tools => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    })
}

/// Returns the usage of a `usageMetadata` object. Gemini counts thinking apart from the
/// candidates and tool-use prompts apart from the prompt; OpenAI counts reasoning inside the
/// completion and everything sent inside the prompt.
pub(crate) fn usage(meta: &Value) -> Option<Usage> {
    let obj = meta.as_object()?;
    let n = |key: &str| obj.get(key).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    Some(Usage::new(
        n("promptTokenCount") + n("toolUsePromptTokenCount"),
        n("candidatesTokenCount") + thoughts,
        n("cachedContentTokenCount"),
        thoughts,
    ))
}

/// What one candidate (or a streamed piece of one) holds, translated.
#[derive(Debug, Default)]
pub(crate) struct CandidateParts {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish: Option<String>,
}

/// Reads a candidate's parts: text (thought summaries skipped) and function calls.
pub(crate) fn candidate_parts(candidate: &Value) -> CandidateParts {
    let mut out = CandidateParts {
        finish: candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .map(str::to_owned),
        ..CandidateParts::default()
    };
    let parts = candidate
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array);
    for part in parts.into_iter().flatten() {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(text) = part.get("text").and_then(Value::as_str) {
            out.text.push_str(text);
        }
        if let Some(call) = part.get("functionCall") {
            let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
            let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
            out.tool_calls.push(ToolCall {
                id: call_id(call, part),
                kind: "function".into(),
                function: crate::types::FunctionCall {
                    name: name.to_owned(),
                    arguments: args.to_string(),
                },
            });
        }
    }
    out
}

/// Returns the `blockReason` of a response whose prompt was blocked.
pub(crate) fn block_reason(response: &Value) -> Option<&str> {
    response
        .get("promptFeedback")
        .and_then(|f| f.get("blockReason"))
        .and_then(Value::as_str)
}

/// Returns the error an `{"error": {...}}` object in a 200 body or a stream event stands for.
pub(crate) fn in_band_error(provider: &str, value: &Value) -> ProviderError {
    let message = error_value_message(value).unwrap_or_else(|| truncate(&value.to_string(), 300));
    let error = value.get("error").unwrap_or(value);
    let code = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c));
    let mut err = match code {
        Some(code) => ProviderError::from_status(provider, code, message, None),
        None => ProviderError::new(provider, ProviderErrorKind::Server, message),
    };
    err.retry_after = retry_delay(error);
    err
}

/// Translates a Google API error answer: `{"error": {"code", "message", "status", "details"}}`.
/// The wait of a 429 is in `details[] RetryInfo.retryDelay` ("37s") when there is no
/// `Retry-After` header.
pub(crate) fn google_error(
    provider: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> ProviderError {
    // Google APIs sometimes wrap the error object in a one-element array.
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = match &parsed {
        Some(Value::Array(list)) => list.first(),
        other => other.as_ref(),
    };
    let body_owned;
    let body = match (&parsed, error) {
        (Some(Value::Array(_)), Some(e)) => {
            body_owned = e.to_string();
            body_owned.as_bytes()
        }
        _ => body,
    };
    let mut err = status_error(provider, status, headers, body);
    if err.retry_after.is_none() {
        err.retry_after = error.and_then(|e| e.get("error")).and_then(retry_delay);
    }
    let lower = err.message.to_ascii_lowercase();
    if err.kind == ProviderErrorKind::BadRequest
        && (lower.contains("exceeds the maximum number of tokens")
            || lower.contains("input token count"))
    {
        err.kind = ProviderErrorKind::ContextLength;
    }
    err
}

fn retry_delay(error: &Value) -> Option<std::time::Duration> {
    error
        .get("details")?
        .as_array()?
        .iter()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| {
            let secs: f64 = d
                .get("retryDelay")?
                .as_str()?
                .strip_suffix('s')?
                .parse()
                .ok()?;
            (secs.is_finite() && secs >= 0.0).then(|| std::time::Duration::from_secs_f64(secs))
        })
}

/// Translates a non-streaming `GenerateContentResponse`.
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
    if value.get("error").is_some_and(|e| !e.is_null()) {
        return Err(in_band_error(provider, &value));
    }
    let mut choices = Vec::new();
    for (position, candidate) in value
        .get("candidates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let parts = candidate_parts(candidate);
        let index = candidate
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(u32::try_from(position).unwrap_or(u32::MAX));
        let called = !parts.tool_calls.is_empty();
        let finish = finish_reason(provider, parts.finish.as_deref().unwrap_or("STOP"), called)?;
        choices.push(Choice {
            index,
            message: AssistantMessage {
                role: Role::Assistant,
                content: (!parts.text.is_empty() || !called).then_some(parts.text),
                refusal: None,
                tool_calls: called.then_some(parts.tool_calls),
                annotations: None,
            },
            finish_reason: finish,
            logprobs: None,
        });
    }
    if choices.is_empty() {
        match block_reason(&value) {
            Some(_) => choices.push(Choice {
                index: 0,
                message: AssistantMessage {
                    role: Role::Assistant,
                    content: None,
                    refusal: None,
                    tool_calls: None,
                    annotations: None,
                },
                finish_reason: FinishReason::ContentFilter,
                logprobs: None,
            }),
            None => {
                return Err(invalid(
                    provider,
                    format!(
                        "the answer has no candidates: {}",
                        truncate(&value.to_string(), 300)
                    ),
                ));
            }
        }
    }
    Ok(ChatResponse {
        id: response_id(&value),
        object: "chat.completion".into(),
        created: unix_now(),
        model: model_version(&value).unwrap_or(upstream_model).to_owned(),
        choices,
        usage: value.get("usageMetadata").and_then(usage),
        system_fingerprint: None,
        service_tier: None,
    })
}

/// Returns the completion id: Gemini's `responseId` when it sent one.
pub(crate) fn response_id(value: &Value) -> String {
    match value.get("responseId").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => format!("chatcmpl-{id}"),
        _ => new_id("chatcmpl-"),
    }
}

/// Returns the `modelVersion` of a response.
pub(crate) fn model_version(value: &Value) -> Option<&str> {
    value
        .get("modelVersion")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
}

/// Returns the `batchEmbedContents` body: one request per input string.
pub(crate) fn embeddings_body(
    provider: &str,
    upstream_model: &str,
    req: &EmbeddingRequest,
) -> Result<Value, ProviderError> {
    let inputs: Vec<&str> = match &req.input {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).collect()
        }
        _ => {
            return Err(unsupported(
                provider,
                "Gemini embeds text: `input` must be a string or a list of strings",
            ));
        }
    };
    let model = format!("models/{upstream_model}");
    let requests: Vec<Value> = inputs
        .into_iter()
        .map(|text| {
            let mut r = json!({"model": model, "content": {"parts": [{"text": text}]}});
            if let (Some(dims), Some(obj)) = (req.dimensions, r.as_object_mut()) {
                obj.insert("outputDimensionality".into(), json!(dims));
            }
            r
        })
        .collect();
    Ok(json!({"requests": requests}))
}

/// Translates a `batchEmbedContents` answer (`{"embeddings": [{"values": [...]}]}`). Gemini
/// reports no token counts for embeddings: usage is zero, not invented.
pub(crate) fn embeddings_response(
    provider: &str,
    upstream_model: &str,
    expected: usize,
    body: &[u8],
) -> Result<EmbeddingResponse, ProviderError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        embeddings: Vec<Values>,
    }
    #[derive(serde::Deserialize)]
    struct Values {
        values: Vec<f32>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        invalid(
            provider,
            format!(
                "unexpected embeddings answer ({e}): {}",
                truncate(&String::from_utf8_lossy(body), 300)
            ),
        )
    })?;
    if answer.embeddings.len() != expected {
        return Err(invalid(
            provider,
            format!(
                "{} embeddings for {expected} inputs",
                answer.embeddings.len()
            ),
        ));
    }
    Ok(EmbeddingResponse {
        object: "list".into(),
        data: answer
            .embeddings
            .into_iter()
            .enumerate()
            .map(|(i, e)| crate::types::Embedding {
                object: "embedding".into(),
                index: u32::try_from(i).unwrap_or(u32::MAX),
                embedding: e.values,
            })
            .collect(),
        model: upstream_model.to_owned(),
        usage: crate::types::EmbeddingUsage::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    fn body(v: Value) -> Value {
        request_body("gemini", &request(v)).unwrap()
    }

    #[test]
    fn roles_merge_and_system_prompts_move_to_system_instruction() {
        let b = body(json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "use metric"}]},
            {"role": "user", "content": "hi"},
            {"role": "user", "content": "again"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": ""}
        ]}));
        assert_eq!(
            b["systemInstruction"],
            json!({"parts": [{"text": "be brief"}, {"text": "use metric"}]})
        );
        assert_eq!(
            b["contents"],
            json!([
                {"role": "user", "parts": [{"text": "hi"}, {"text": "again"}]},
                {"role": "model", "parts": [{"text": "hello"}]}
            ])
        );
        assert!(b.get("generationConfig").is_none());
    }

    #[test]
    fn tool_calls_and_results_round_trip_with_names_and_signatures() {
        let b = body(json!({"model": "m", "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1__thought__c2ln", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1__thought__c2ln", "content": "{\"temp\":21}"},
            {"role": "tool", "tool_call_id": "call_2", "content": "noon"}
        ]}));
        assert_eq!(
            b["contents"][1],
            json!({"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
                {"functionCall": {"name": "get_time", "args": {}}}
            ]})
        );
        assert_eq!(
            b["contents"][2],
            json!({"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "get_time", "response": {"output": "noon"}}}
            ]})
        );
        let err = request_body(
            "gemini",
            &request(json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "x", "content": "1"}]})),
        )
        .unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::BadRequest);
        assert_eq!(split_call_id("a__thought__sig"), ("a", Some("sig")));
        assert_eq!(split_call_id("plain"), ("plain", None));
    }

    #[test]
    fn images_inline_or_by_uri() {
        let b = body(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.JPG?x=1"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/photo"}}
            ]}]}),
        );
        assert_eq!(
            b["contents"][0]["parts"],
            json!([
                {"text": "what?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.JPG?x=1"}},
                {"fileData": {"fileUri": "https://example.com/photo"}}
            ])
        );
    }

    #[test]
    fn tools_tool_choice_json_mode_and_generation_config() {
        let b = body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                "tools": [
                    {"type": "function", "function": {"name": "f", "description": "d", "parameters": {
                        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                        "additionalProperties": false,
                        "properties": {"a": {"type": ["string", "null"], "format": "date-time"},
                            "b": {"$ref": "#/$defs/B"}, "c": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                            "d": {"type": "integer", "enum": [1, 2]}, "e": {"const": "x"}},
                        "required": ["a", "zzz"], "$defs": {"B": {"type": "object", "properties": {"x": {"type": "number"}}, "additionalProperties": false}}
                    }}},
                    {"type": "function", "function": {"name": "g", "parameters": {"type": "object", "properties": {}}}}
                ],
                "tool_choice": {"type": "function", "function": {"name": "f"}},
                "temperature": 0.5, "top_p": 0.9, "max_tokens": 10, "max_completion_tokens": 20,
                "stop": "END", "n": 2, "seed": 7, "presence_penalty": 0.1,
                "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$schema": "s", "type": "object", "additionalProperties": false}}}
            }),
        );
        assert_eq!(
            b["tools"],
            json!([{"functionDeclarations": [
                {"name": "f", "description": "d", "parameters": {"type": "object",
                    "properties": {"a": {"type": "string", "nullable": true, "format": "date-time"},
                        "b": {"type": "object", "properties": {"x": {"type": "number"}}},
                        "c": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "d": {"type": "integer"}, "e": {"enum": ["x"], "type": "string"}},
                    "required": ["a"]}},
                {"name": "g"}
            ]}])
        );
        assert_eq!(
            b["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}})
        );
        assert_eq!(
            b["generationConfig"],
            json!({"temperature": 0.5, "topP": 0.9, "maxOutputTokens": 20, "stopSequences": ["END"],
                "candidateCount": 2, "seed": 7, "presencePenalty": 0.1,
                "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object", "additionalProperties": false}})
        );
        for (choice, mode) in [("none", "NONE"), ("auto", "AUTO"), ("required", "ANY")] {
            let b = body(json!({"model": "m", "messages": [], "tool_choice": choice,
                "response_format": {"type": "json_object"}}));
            assert_eq!(b["toolConfig"]["functionCallingConfig"]["mode"], mode);
            assert_eq!(
                b["generationConfig"]["responseMimeType"],
                "application/json"
            );
        }
    }

    #[test]
    fn responses_translate_back() {
        let answer = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "thinking...", "thought": true},
                {"text": "Let me check."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "U0lH"}
            ]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 27,
                "cachedContentTokenCount": 4, "thoughtsTokenCount": 12},
            "modelVersion": "gemini-2.5-flash", "responseId": "abc"
        });
        let r = chat_response("gemini", "m", answer.to_string().as_bytes()).unwrap();
        assert_eq!(r.id, "chatcmpl-abc");
        assert_eq!(r.model, "gemini-2.5-flash");
        let choice = &r.choices[0];
        assert_eq!(choice.finish_reason, FinishReason::ToolCalls);
        assert_eq!(choice.message.content.as_deref(), Some("Let me check."));
        let call = &choice.message.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.function.arguments, "{\"city\":\"Paris\"}");
        assert!(call.id.starts_with("call_") && call.id.ends_with("__thought__U0lH"));
        let usage = r.usage.unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (10, 17, 27)
        );
        assert_eq!((usage.cached_tokens(), usage.reasoning_tokens()), (4, 12));

        for (reason, want) in [
            ("MAX_TOKENS", FinishReason::Length),
            ("SAFETY", FinishReason::ContentFilter),
            ("RECITATION", FinishReason::ContentFilter),
            ("BLOCKLIST", FinishReason::ContentFilter),
            ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
            ("OTHER", FinishReason::Stop),
        ] {
            assert_eq!(finish_reason("g", reason, false).unwrap(), want, "{reason}");
        }
        assert!(finish_reason("g", "MALFORMED_FUNCTION_CALL", false).is_err());

        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}});
        let r = chat_response("gemini", "m", blocked.to_string().as_bytes()).unwrap();
        assert_eq!(r.choices[0].finish_reason, FinishReason::ContentFilter);
        assert_eq!(r.choices[0].message.content, None);
        assert!(chat_response("gemini", "m", b"{}").is_err());
    }

    #[test]
    fn google_errors_carry_retry_info_and_context_length() {
        let body = json!({"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}});
        let err = google_error(
            "g",
            reqwest::StatusCode::TOO_MANY_REQUESTS,
            &reqwest::header::HeaderMap::new(),
            body.to_string().as_bytes(),
        );
        assert_eq!(err.kind, ProviderErrorKind::RateLimited);
        assert_eq!(err.retry_after, Some(std::time::Duration::from_secs(37)));
        assert_eq!(err.message, "Resource exhausted");
        let wrapped = json!([{"error": {"code": 400, "message": "The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}]);
        let err = google_error(
            "g",
            reqwest::StatusCode::BAD_REQUEST,
            &reqwest::header::HeaderMap::new(),
            wrapped.to_string().as_bytes(),
        );
        assert_eq!(err.kind, ProviderErrorKind::ContextLength);
    }
}
