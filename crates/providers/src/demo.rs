//! The built-in demo provider: simulated models that answer without API keys, so a fresh
//! `make run` is a working gateway. Every answer says it is simulated.
//!
//! Models: `small`, `medium` and `large` (chat; different latencies and canned styles; prices
//! in the catalog) and `embedding` (deterministic 256-dimension vectors). Answers are a pure
//! function of the request, so tests and demos are reproducible. The simulation honours the
//! request's shape: tools (a call to the first tool when `tool_choice` requires one or the
//! prompt names it), `json_object` and `json_schema` output (an instance of the schema),
//! `max_tokens` (truncation with `finish_reason: length`), stop sequences, streaming (text and
//! tool-call deltas) and usage (cached and reasoning tokens included).
//!
//! A request whose system prompt carries [`JUDGE_RUBRIC_MARKER`] (the judge's rubric,
//! `streams/judge`) gets a simulated grade instead: `{"score": n, "reason": "..."}` with `n` in
//! 1..=10 from the length of the graded answer (longer answers grade higher, which is how the
//! demo models differ), and a reason that says the grade is simulated.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::types::{
    AssistantMessage, ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Delta, Embedding,
    EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, FinishReason, FunctionCall,
    FunctionCallDelta, ResponseFormat, Role, Stop, ToolCall, ToolCallDelta, Usage,
};
use crate::{ChunkStream, Provider, ProviderError, ProviderErrorKind};

const NAME: &str = "demo";

/// The marker a judge rubric's system prompt carries; the demo models answer such a request
/// with a simulated grade (see the module documentation).
pub const JUDGE_RUBRIC_MARKER: &str = "switchyard-judge-rubric";
const EMBEDDING_DIMENSIONS: usize = 256;

/// A simulated model's behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoModel {
    /// Time to the first token.
    pub first_token: Duration,
    /// Time between streamed chunks.
    pub per_chunk: Duration,
    /// The canned style of its answers.
    pub style: &'static str,
    /// Simulated reasoning tokens per answer.
    pub reasoning_tokens: u64,
}

/// The demo provider.
#[derive(Debug, Clone)]
pub struct DemoProvider {
    small: DemoModel,
    medium: DemoModel,
    large: DemoModel,
}

impl Default for DemoProvider {
    fn default() -> Self {
        DemoProvider {
            small: DemoModel {
                first_token: Duration::from_millis(15),
                per_chunk: Duration::from_millis(2),
                style: "Short answer: it depends on the details, but the usual approach works.",
                reasoning_tokens: 0,
            },
            medium: DemoModel {
                first_token: Duration::from_millis(35),
                per_chunk: Duration::from_millis(3),
                style: "Here is a balanced answer: consider the main trade-offs, pick the simplest option that meets the requirement, and verify it.",
                reasoning_tokens: 16,
            },
            large: DemoModel {
                first_token: Duration::from_millis(70),
                per_chunk: Duration::from_millis(4),
                style: "A thorough answer: first, restate the problem; second, weigh the alternatives with their costs; third, recommend one and explain how to check that it holds.",
                reasoning_tokens: 64,
            },
        }
    }
}

impl DemoProvider {
    /// Returns the provider with instant answers (tests and benchmarks).
    pub fn instant() -> Self {
        let mut p = Self::default();
        for m in [&mut p.small, &mut p.medium, &mut p.large] {
            m.first_token = Duration::ZERO;
            m.per_chunk = Duration::ZERO;
        }
        p
    }

    fn model(&self, name: &str) -> Result<&DemoModel, ProviderError> {
        match name {
            "small" => Ok(&self.small),
            "medium" => Ok(&self.medium),
            "large" => Ok(&self.large),
            other => Err(ProviderError::new(
                NAME,
                ProviderErrorKind::NotFound,
                format!("the demo provider has no chat model `{other}`"),
            )),
        }
    }
}

/// What a simulated model decided to answer.
struct Answer {
    text: Option<String>,
    tool_calls: Vec<ToolCall>,
    finish: FinishReason,
    usage: Usage,
}

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn last_user_text(req: &ChatRequest) -> String {
    req.messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .and_then(|m| m.content.as_ref())
        .map(|c| c.text())
        .unwrap_or_default()
}

/// Returns a minimal instance of a JSON schema (objects get their required and listed
/// properties; enums their first value).
fn instance_of(schema: &Value, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.first().cloned().unwrap_or(Value::Null);
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(any) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        return any
            .first()
            .map_or(Value::Null, |s| instance_of(s, depth + 1));
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    out.insert(name.clone(), instance_of(sub, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => match schema.get("minItems").and_then(Value::as_u64) {
            Some(n) if n > 0 => Value::Array(
                (0..n)
                    .map(|_| instance_of(schema.get("items").unwrap_or(&Value::Null), depth + 1))
                    .collect(),
            ),
            _ => json!([]),
        },
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(0)),
        "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(0.0)),
        "boolean" => json!(false),
        "null" => Value::Null,
        _ => json!("simulated"),
    }
}

/// Returns the simulated grade of a judge-rubric request, or `None` when the request is not
/// one: 4 + one point per 8 words of the graded answer (the text between `<response>` and
/// `</response>` in the last user message), at most 10.
fn simulated_grade(req: &ChatRequest, prompt: &str) -> Option<String> {
    let is_rubric = req.messages.iter().any(|m| {
        matches!(m.role, Role::System | Role::Developer)
            && m.content
                .as_ref()
                .is_some_and(|c| c.text().contains(JUDGE_RUBRIC_MARKER))
    });
    if !is_rubric {
        return None;
    }
    let answer = prompt
        .rsplit_once("<response>")
        .and_then(|(_, rest)| rest.split_once("</response>"))
        .map_or("", |(answer, _)| answer);
    let words = answer.split_whitespace().count() as u64;
    let score = (4 + words / 8).min(10);
    serde_json::to_string(&json!({
        "score": score,
        "reason": "simulated by Switchyard's demo provider: a stand-in grade from the answer's length, no model judged it",
    }))
    .ok()
}

fn approx_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4).max(1)
}

impl DemoProvider {
    fn answer(&self, model_name: &str, req: &ChatRequest) -> Result<Answer, ProviderError> {
        let model = self.model(model_name)?;
        let prompt = last_user_text(req);
        let prompt_tokens: u64 = req
            .messages
            .iter()
            .map(|m| approx_tokens(&m.content.as_ref().map(|c| c.text()).unwrap_or_default()) + 4)
            .sum();
        // A repeated system prompt is what providers cache: count it as cached.
        let cached = req
            .messages
            .iter()
            .filter(|m| matches!(m.role, Role::System | Role::Developer))
            .map(|m| approx_tokens(&m.content.as_ref().map(|c| c.text()).unwrap_or_default()))
            .sum::<u64>()
            .min(prompt_tokens);

        let forced_tool = match &req.tool_choice {
            Some(Value::String(s)) if s == "required" => req
                .tools
                .as_ref()
                .and_then(|t| t.first())
                .map(|t| t.function.clone()),
            Some(Value::Object(o)) => {
                let wanted = o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str);
                req.tools
                    .as_ref()
                    .and_then(|t| t.iter().find(|t| Some(t.function.name.as_str()) == wanted))
                    .map(|t| t.function.clone())
            }
            Some(Value::String(s)) if s == "none" => None,
            _ => req
                .tools
                .as_ref()
                .and_then(|t| t.iter().find(|t| prompt.contains(&t.function.name)))
                .map(|t| t.function.clone()),
        };
        if let Some(function) = forced_tool {
            let args = function
                .parameters
                .as_ref()
                .map_or_else(|| json!({}), |p| instance_of(p, 0));
            let id = format!(
                "call_demo_{:016x}",
                fnv(format!("{model_name}{prompt}{}", function.name).as_bytes())
            );
            let arguments = serde_json::to_string(&args).unwrap_or_else(|_| "{}".into());
            let usage = Usage::new(
                prompt_tokens,
                approx_tokens(&arguments) + 8,
                cached,
                model.reasoning_tokens,
            );
            return Ok(Answer {
                text: None,
                tool_calls: vec![ToolCall {
                    id,
                    kind: "function".into(),
                    function: FunctionCall {
                        name: function.name,
                        arguments,
                    },
                }],
                finish: FinishReason::ToolCalls,
                usage,
            });
        }

        let snippet: String = prompt.chars().take(80).collect();
        let mut text = match (simulated_grade(req, &prompt), &req.response_format) {
            (Some(grade), _) => grade,
            (None, Some(ResponseFormat::JsonSchema { json_schema })) => {
                let schema = json_schema.get("schema").unwrap_or(&Value::Null);
                serde_json::to_string(&instance_of(schema, 0)).unwrap_or_else(|_| "{}".into())
            }
            (None, Some(ResponseFormat::JsonObject)) => serde_json::to_string(&json!({
                "answer": model.style,
                "simulated": true,
                "model": format!("demo/{model_name}"),
            }))
            .unwrap_or_else(|_| "{}".into()),
            _ => format!(
                "[simulated by Switchyard's demo provider, model demo/{model_name}; no real model was called] You asked: \"{snippet}\". {}",
                model.style
            ),
        };
        let mut finish = FinishReason::Stop;
        if let Some(stop) = &req.stop {
            let stops: Vec<&str> = match stop {
                Stop::One(s) => vec![s.as_str()],
                Stop::Many(v) => v.iter().map(String::as_str).collect(),
            };
            if let Some(cut) = stops
                .iter()
                .filter(|s| !s.is_empty())
                .filter_map(|s| text.find(s))
                .min()
            {
                text.truncate(cut);
            }
        }
        if let Some(limit) = req.max_completion_tokens.or(req.max_tokens) {
            let budget = limit.saturating_sub(model.reasoning_tokens.min(limit / 2));
            if approx_tokens(&text) > budget {
                let mut cut = (budget as usize).saturating_mul(4).min(text.len());
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                finish = FinishReason::Length;
            }
        }
        let usage = Usage::new(
            prompt_tokens,
            approx_tokens(&text) + model.reasoning_tokens,
            cached,
            model.reasoning_tokens,
        );
        Ok(Answer {
            text: Some(text),
            tool_calls: Vec::new(),
            finish,
            usage,
        })
    }
}

fn created(req: &ChatRequest) -> i64 {
    // Deterministic per request; ingress stamps the real time on what the client sees.
    (fnv(serde_json::to_string(&req.messages)
        .unwrap_or_default()
        .as_bytes())
        % 1_000_000) as i64
}

impl Provider for DemoProvider {
    fn name(&self) -> &str {
        NAME
    }

    async fn complete(
        &self,
        model: &str,
        req: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        let answer = self.answer(model, req)?;
        let delay = self.model(model)?.first_token;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(ChatResponse {
            id: format!("demo-{:016x}", fnv(model.as_bytes()) ^ created(req) as u64),
            object: "chat.completion".into(),
            created: created(req),
            model: model.into(),
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage {
                    role: Role::Assistant,
                    content: answer.text,
                    refusal: None,
                    tool_calls: (!answer.tool_calls.is_empty()).then_some(answer.tool_calls),
                    annotations: None,
                },
                finish_reason: answer.finish,
                logprobs: None,
            }],
            usage: Some(answer.usage),
            system_fingerprint: Some("switchyard-demo".into()),
            service_tier: None,
        })
    }

    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let answer = self.answer(model, req)?;
        let timing = self.model(model)?.clone();
        let id = format!("demo-{:016x}", fnv(model.as_bytes()) ^ created(req) as u64);
        let chunk = |choices: Vec<ChunkChoice>, usage: Option<Usage>| ChatChunk {
            id: id.clone(),
            object: "chat.completion.chunk".into(),
            created: created(req),
            model: model.to_owned(),
            choices,
            usage,
            system_fingerprint: Some("switchyard-demo".into()),
        };
        let delta = |delta: Delta, finish: Option<FinishReason>| {
            vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                logprobs: None,
            }]
        };

        let mut chunks = vec![chunk(
            delta(
                Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    ..Delta::default()
                },
                None,
            ),
            None,
        )];
        if let Some(text) = &answer.text {
            // Words, each with its following space, as a model streams tokens.
            for piece in text.split_inclusive(' ') {
                chunks.push(chunk(
                    delta(
                        Delta {
                            content: Some(piece.to_owned()),
                            ..Delta::default()
                        },
                        None,
                    ),
                    None,
                ));
            }
        }
        for (i, call) in answer.tool_calls.iter().enumerate() {
            let index = i as u32;
            chunks.push(chunk(
                delta(
                    Delta {
                        tool_calls: Some(vec![ToolCallDelta {
                            index,
                            id: Some(call.id.clone()),
                            kind: Some("function".into()),
                            function: Some(FunctionCallDelta {
                                name: Some(call.function.name.clone()),
                                arguments: Some(String::new()),
                            }),
                        }]),
                        ..Delta::default()
                    },
                    None,
                ),
                None,
            ));
            let args: Vec<char> = call.function.arguments.chars().collect();
            for piece in args.chunks(8) {
                chunks.push(chunk(
                    delta(
                        Delta {
                            tool_calls: Some(vec![ToolCallDelta {
                                index,
                                id: None,
                                kind: None,
                                function: Some(FunctionCallDelta {
                                    name: None,
                                    arguments: Some(piece.iter().collect()),
                                }),
                            }]),
                            ..Delta::default()
                        },
                        None,
                    ),
                    None,
                ));
            }
        }
        chunks.push(chunk(delta(Delta::default(), Some(answer.finish)), None));
        chunks.push(chunk(Vec::new(), Some(answer.usage)));

        let stream = futures::stream::iter(chunks.into_iter().enumerate()).then(move |(i, c)| {
            let wait = if i == 0 {
                timing.first_token
            } else {
                timing.per_chunk
            };
            async move {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok(c)
            }
        });
        Ok(Box::pin(stream))
    }

    async fn embed(
        &self,
        model: &str,
        req: &EmbeddingRequest,
    ) -> Result<EmbeddingResponse, ProviderError> {
        if model != "embedding" {
            return Err(ProviderError::new(
                NAME,
                ProviderErrorKind::NotFound,
                format!("the demo provider has no embedding model `{model}`"),
            ));
        }
        let inputs: Vec<String> = match &req.input {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) if items.iter().all(Value::is_string) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Value::Array(items) if items.iter().all(Value::is_number) => {
                vec![serde_json::to_string(items).unwrap_or_default()]
            }
            Value::Array(items) if items.iter().all(Value::is_array) => {
                items.iter().map(|v| v.to_string()).collect()
            }
            _ => {
                return Err(ProviderError::new(
                    NAME,
                    ProviderErrorKind::BadRequest,
                    "input must be a string, an array of strings, an array of tokens or an array of token arrays",
                ));
            }
        };
        if inputs.is_empty() || inputs.iter().any(String::is_empty) {
            return Err(ProviderError::new(
                NAME,
                ProviderErrorKind::BadRequest,
                "input must not be empty",
            ));
        }
        let dims = req.dimensions.map_or(EMBEDDING_DIMENSIONS, |d| {
            (d as usize).clamp(1, EMBEDDING_DIMENSIONS)
        });
        let mut tokens = 0;
        let data = inputs
            .iter()
            .enumerate()
            .map(|(index, text)| {
                tokens += approx_tokens(text);
                let mut state = fnv(text.as_bytes());
                let mut v: Vec<f32> = (0..dims)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        ((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
                    })
                    .collect();
                let norm = v
                    .iter()
                    .map(|x| x * x)
                    .sum::<f32>()
                    .sqrt()
                    .max(f32::EPSILON);
                v.iter_mut().for_each(|x| *x /= norm);
                Embedding {
                    object: "embedding".into(),
                    index: index as u32,
                    embedding: v,
                }
            })
            .collect();
        Ok(EmbeddingResponse {
            object: "list".into(),
            data,
            model: model.into(),
            usage: EmbeddingUsage {
                prompt_tokens: tokens,
                total_tokens: tokens,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use serde_json::json;

    use super::*;

    fn request(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test]
    async fn answers_say_they_are_simulated_and_are_deterministic() {
        let p = DemoProvider::instant();
        let req = request(
            json!({"model": "demo/small", "messages": [{"role": "user", "content": "hello"}]}),
        );
        let a = p.complete("small", &req).await.unwrap();
        let b = p.complete("small", &req).await.unwrap();
        assert_eq!(a, b);
        let text = a.choices[0].message.content.clone().unwrap();
        assert!(
            text.contains("simulated") && text.contains("demo/small"),
            "{text}"
        );
        assert_eq!(a.choices[0].finish_reason, FinishReason::Stop);
        let large = p.complete("large", &req).await.unwrap();
        assert_ne!(
            large.choices[0].message.content, a.choices[0].message.content,
            "models differ"
        );
        assert!(p.complete("huge", &req).await.is_err());
    }

    #[tokio::test]
    async fn tools_json_schema_and_max_tokens_are_honoured() {
        let p = DemoProvider::instant();
        let req = request(json!({
            "model": "x", "messages": [{"role": "user", "content": "weather in Paris?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city"]}}}],
            "tool_choice": "required"
        }));
        let r = p.complete("medium", &req).await.unwrap();
        assert_eq!(r.choices[0].finish_reason, FinishReason::ToolCalls);
        let call = &r.choices[0].message.tool_calls.as_ref().unwrap()[0];
        let args: Value = serde_json::from_str(&call.function.arguments).unwrap();
        assert_eq!(args, json!({"city": "simulated", "unit": "c"}));

        let req = request(json!({
            "model": "x", "messages": [{"role": "user", "content": "give me a person"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "p", "strict": true, "schema": {
                "type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]}}}
        }));
        let r = p.complete("small", &req).await.unwrap();
        let body: Value =
            serde_json::from_str(r.choices[0].message.content.as_ref().unwrap()).unwrap();
        assert_eq!(body, json!({"name": "simulated", "age": 0}));

        let req = request(
            json!({"model": "x", "max_tokens": 5, "messages": [{"role": "user", "content": "long please"}]}),
        );
        let r = p.complete("large", &req).await.unwrap();
        assert_eq!(r.choices[0].finish_reason, FinishReason::Length);
    }

    #[tokio::test]
    async fn a_judge_rubric_gets_a_simulated_grade_that_says_so() {
        let p = DemoProvider::instant();
        let grade = |answer: &str| {
            let req = request(json!({"model": "x", "messages": [
                {"role": "system", "content": format!("{JUDGE_RUBRIC_MARKER} v1: grade it")},
                {"role": "user", "content": format!("<conversation>hi</conversation>\n<response>{answer}</response>")}
            ]}));
            let p = p.clone();
            async move {
                let r = p.complete("large", &req).await.unwrap();
                let body: Value =
                    serde_json::from_str(r.choices[0].message.content.as_ref().unwrap()).unwrap();
                assert!(body["reason"].as_str().unwrap().contains("simulated"));
                body["score"].as_u64().unwrap()
            }
        };
        assert_eq!(grade("").await, 4);
        assert_eq!(grade(&"word ".repeat(24)).await, 7);
        assert_eq!(grade(&"word ".repeat(500)).await, 10);
        // Without the marker, the usual simulated answer.
        let req = request(json!({"model": "x", "messages": [
            {"role": "user", "content": "<response>a</response>"}
        ]}));
        let r = p.complete("large", &req).await.unwrap();
        assert!(
            r.choices[0]
                .message
                .content
                .as_ref()
                .unwrap()
                .starts_with("[simulated")
        );
    }

    #[tokio::test]
    async fn stream_reassembles_to_the_complete_answer_with_usage_last() {
        let p = DemoProvider::instant();
        let req = request(
            json!({"model": "x", "stream": true, "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}),
        );
        let full = p.complete("medium", &req).await.unwrap();
        let chunks: Vec<ChatChunk> = p
            .stream("medium", &req)
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        let text: String = chunks
            .iter()
            .flat_map(|c| c.choices.iter())
            .filter_map(|c| c.delta.content.clone())
            .collect();
        assert_eq!(Some(text), full.choices[0].message.content);
        let last = chunks.last().unwrap();
        assert!(last.choices.is_empty());
        assert_eq!(last.usage, full.usage);
        assert!(
            full.usage.as_ref().unwrap().cached_tokens() > 0,
            "the system prompt counts as cached"
        );
        assert!(full.usage.as_ref().unwrap().reasoning_tokens() > 0);
    }

    #[tokio::test]
    async fn embeddings_are_unit_vectors_one_per_input() {
        let p = DemoProvider::instant();
        let req: EmbeddingRequest =
            serde_json::from_value(json!({"model": "demo/embedding", "input": ["a", "b"]}))
                .unwrap();
        let r = p.embed("embedding", &req).await.unwrap();
        assert_eq!(r.data.len(), 2);
        for e in &r.data {
            let norm: f32 = e.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-3);
        }
        assert_ne!(r.data[0].embedding, r.data[1].embedding);
        let bad: EmbeddingRequest =
            serde_json::from_value(json!({"model": "m", "input": {"x": 1}})).unwrap();
        assert!(p.embed("embedding", &bad).await.is_err());
    }
}
