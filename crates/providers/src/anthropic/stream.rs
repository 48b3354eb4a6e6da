//! Anthropic's stream events translated into OpenAI chunks.
//!
//! The documented flow: `message_start`; per content block `content_block_start`, deltas
//! (`text_delta`, `input_json_delta`, `thinking_delta`, `signature_delta`, ...) and
//! `content_block_stop`; `message_delta` (stop reason, cumulative usage); `message_stop`.
//! `ping` and `error` events may come at any point, and new event types may appear.
//!
//! Out come: a role chunk at `message_start`; a content delta per `text_delta`; per `tool_use`
//! block a tool-call delta with id and name, then one per `input_json_delta` fragment (OpenAI
//! tool-call index = order among the tool blocks); one chunk with the finish reason at
//! `message_delta` (a refusal also surfaces as `delta.refusal`); and, at `message_stop`, the
//! usage as one final chunk without choices. Thinking blocks produce nothing (their tokens are
//! in the usage). An `error` event, a malformed event or a fragment for a block that is not a
//! tool ends the stream with an `Err`.

use std::collections::HashMap;

use serde_json::Value;

use super::wire::{self, AnthropicUsage, Ending, JSON_TOOL, REFUSAL};
use crate::ProviderError;
use crate::http::truncate;
use crate::native::{EventTranslator, Flow, chunk_envelope, invalid};
use crate::sse::SseEvent;
use crate::types::{
    ChatChunk, ChunkChoice, Delta, FinishReason, FunctionCallDelta, Role, ToolCallDelta,
};

/// What a content block (by its Anthropic index) turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// Text: content deltas.
    Text,
    /// A client tool call: tool-call deltas at this OpenAI index.
    Tool(u32),
    /// The JSON tool of `json_object` mode: its input is the content.
    Json,
    /// Thinking, server tools, future block types: nothing.
    Ignored,
}

/// The state of one Anthropic stream.
#[derive(Debug)]
pub(crate) struct AnthropicTranslator {
    provider: String,
    json_tool: bool,
    id: String,
    model: String,
    blocks: HashMap<u64, Block>,
    tools: u32,
    usage: AnthropicUsage,
    finished: bool,
}

impl AnthropicTranslator {
    pub(crate) fn new(provider: &str, upstream_model: &str, json_tool: bool) -> Self {
        AnthropicTranslator {
            provider: provider.to_owned(),
            json_tool,
            id: String::new(),
            model: upstream_model.to_owned(),
            blocks: HashMap::new(),
            tools: 0,
            usage: AnthropicUsage::default(),
            finished: false,
        }
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<FinishReason>) -> ChatChunk {
        let mut chunk = chunk_envelope(&self.id, &self.model);
        chunk.choices.push(ChunkChoice {
            index: 0,
            delta,
            finish_reason,
            logprobs: None,
        });
        chunk
    }

    fn text(&self, text: &str) -> Option<ChatChunk> {
        (!text.is_empty()).then(|| {
            self.chunk(
                Delta {
                    content: Some(text.to_owned()),
                    ..Delta::default()
                },
                None,
            )
        })
    }

    fn tool_delta(&self, call: ToolCallDelta) -> ChatChunk {
        self.chunk(
            Delta {
                tool_calls: Some(vec![call]),
                ..Delta::default()
            },
            None,
        )
    }

    fn malformed(&self, what: &str, data: &str) -> ProviderError {
        invalid(
            &self.provider,
            format!("malformed {what} event: {}", truncate(data, 300)),
        )
    }

    fn block_start(&mut self, index: u64, block: &Value, out: &mut Vec<ChatChunk>) {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        let translated = match kind {
            "text" => {
                out.extend(self.text(block.get("text").and_then(Value::as_str).unwrap_or("")));
                Block::Text
            }
            "tool_use" => {
                let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                // `input` is `{}` at the start and arrives in `input_json_delta` fragments;
                // a start that carries it whole is passed on whole.
                let input = block
                    .get("input")
                    .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                    .map(Value::to_string);
                if self.json_tool && name == JSON_TOOL {
                    out.extend(input.as_deref().and_then(|i| self.text(i)));
                    Block::Json
                } else {
                    let position = self.tools;
                    self.tools += 1;
                    out.push(self.tool_delta(ToolCallDelta {
                        index: position,
                        id: block.get("id").and_then(Value::as_str).map(str::to_owned),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(name.to_owned()),
                            arguments: Some(input.unwrap_or_default()),
                        }),
                    }));
                    Block::Tool(position)
                }
            }
            _ => Block::Ignored,
        };
        self.blocks.insert(index, translated);
    }

    fn block_delta(
        &mut self,
        index: u64,
        delta: &Value,
        data: &str,
        out: &mut Vec<ChatChunk>,
    ) -> Result<(), ProviderError> {
        let block = self.blocks.get(&index).copied();
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") if block != Some(Block::Ignored) => {
                let text = delta.get("text").and_then(Value::as_str).unwrap_or("");
                out.extend(self.text(text));
            }
            Some("input_json_delta") => {
                let fragment = delta
                    .get("partial_json")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match block {
                    Some(Block::Tool(position)) => {
                        if !fragment.is_empty() {
                            out.push(self.tool_delta(ToolCallDelta {
                                index: position,
                                id: None,
                                kind: None,
                                function: Some(FunctionCallDelta {
                                    name: None,
                                    arguments: Some(fragment.to_owned()),
                                }),
                            }));
                        }
                    }
                    Some(Block::Json) => out.extend(self.text(fragment)),
                    Some(Block::Ignored) => {}
                    Some(Block::Text) | None => {
                        return Err(invalid(
                            &self.provider,
                            format!(
                                "input_json_delta for content block {index}, which is not a tool call: {}",
                                truncate(data, 300)
                            ),
                        ));
                    }
                }
            }
            // thinking_delta, signature_delta, citations_delta and future delta types.
            _ => {}
        }
        Ok(())
    }

    fn message_delta(
        &mut self,
        value: &Value,
        data: &str,
        out: &mut Vec<ChatChunk>,
    ) -> Result<(), ProviderError> {
        if let Some(usage) = value.get("usage").filter(|u| !u.is_null()) {
            let usage: AnthropicUsage = serde_json::from_value(usage.clone())
                .map_err(|_| self.malformed("message_delta", data))?;
            self.usage.merge(usage);
        }
        let reason = value.pointer("/delta/stop_reason").and_then(Value::as_str);
        if reason.is_none() {
            return Ok(());
        }
        self.finished = true;
        let client_tool_called = self.tools > 0;
        out.push(match wire::stop_reason(reason, client_tool_called) {
            Ending::Finish(reason) => self.chunk(Delta::default(), Some(reason)),
            Ending::Refusal => self.chunk(
                Delta {
                    refusal: Some(REFUSAL.to_owned()),
                    ..Delta::default()
                },
                Some(FinishReason::ContentFilter),
            ),
        });
        Ok(())
    }
}

impl EventTranslator for AnthropicTranslator {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<ChatChunk>) -> Result<Flow, ProviderError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(Flow::Continue);
        }
        let value: Value = serde_json::from_str(data).map_err(|e| {
            invalid(
                &self.provider,
                format!("malformed stream event ({e}): {}", truncate(data, 300)),
            )
        })?;
        // The data's `type` names the event; the SSE `event:` line repeats it.
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("");
        match kind {
            "message_start" => {
                let message = value
                    .get("message")
                    .ok_or_else(|| self.malformed("message_start", data))?;
                if let Some(id) = message.get("id").and_then(Value::as_str) {
                    id.clone_into(&mut self.id);
                }
                if let Some(model) = message.get("model").and_then(Value::as_str) {
                    model.clone_into(&mut self.model);
                }
                if let Some(usage) = message.get("usage").filter(|u| !u.is_null()) {
                    let usage: AnthropicUsage = serde_json::from_value(usage.clone())
                        .map_err(|_| self.malformed("message_start", data))?;
                    self.usage.merge(usage);
                }
                out.push(self.chunk(
                    Delta {
                        role: Some(Role::Assistant),
                        content: Some(String::new()),
                        ..Delta::default()
                    },
                    None,
                ));
            }
            "content_block_start" => {
                let index = value.get("index").and_then(Value::as_u64);
                let block = value.get("content_block");
                let (Some(index), Some(block)) = (index, block) else {
                    return Err(self.malformed("content_block_start", data));
                };
                self.block_start(index, block, out);
            }
            "content_block_delta" => {
                let index = value.get("index").and_then(Value::as_u64);
                let delta = value.get("delta");
                let (Some(index), Some(delta)) = (index, delta) else {
                    return Err(self.malformed("content_block_delta", data));
                };
                self.block_delta(index, delta, data, out)?;
            }
            "message_delta" => self.message_delta(&value, data, out)?,
            "message_stop" => {
                if !self.finished {
                    // No stop reason came: the message ended all the same.
                    out.push(self.chunk(Delta::default(), Some(FinishReason::Stop)));
                }
                let mut usage = chunk_envelope(&self.id, &self.model);
                usage.usage = Some(self.usage.to_openai());
                out.push(usage);
                return Ok(Flow::Done);
            }
            "error" => return Err(wire::error_event(&self.provider, &value)),
            // `content_block_stop`, `ping` and event types added later.
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn end_event(&self) -> &'static str {
        "message_stop"
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ProviderErrorKind;

    fn event(name: &str, data: Value) -> SseEvent {
        SseEvent {
            event: Some(name.into()),
            data: data.to_string(),
        }
    }

    /// Feeds events; returns the chunks and how the last event ended.
    fn run(json_tool: bool, events: &[SseEvent]) -> (Vec<ChatChunk>, Result<Flow, ProviderError>) {
        let mut t = AnthropicTranslator::new("anthropic", "claude-x", json_tool);
        let mut out = Vec::new();
        let mut last = Ok(Flow::Continue);
        for e in events {
            last = t.event(e, &mut out);
            if last.is_err() {
                break;
            }
        }
        (out, last)
    }

    fn start() -> SseEvent {
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                "role": "assistant", "model": "claude-x-2", "content": [], "stop_reason": null,
                "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 10,
                    "cache_creation_input_tokens": 0}}}),
        )
    }

    fn delta(index: u64, delta: Value) -> SseEvent {
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    }

    fn block(index: u64, block: Value) -> SseEvent {
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        )
    }

    fn finish(reason: &str, output: u64) -> [SseEvent; 2] {
        [
            event(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null},
                    "usage": {"output_tokens": output}}),
            ),
            event("message_stop", json!({"type": "message_stop"})),
        ]
    }

    #[test]
    fn thinking_text_and_a_tool_call() {
        let mut events = vec![
            start(),
            block(0, json!({"type": "thinking", "thinking": ""})),
            delta(
                0,
                json!({"type": "thinking_delta", "thinking": "let me think"}),
            ),
            delta(0, json!({"type": "signature_delta", "signature": "abc"})),
            event("ping", json!({"type": "ping"})),
            block(1, json!({"type": "text", "text": ""})),
            delta(1, json!({"type": "text_delta", "text": "Checking"})),
            block(
                2,
                json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}),
            ),
            delta(2, json!({"type": "input_json_delta", "partial_json": ""})),
            delta(
                2,
                json!({"type": "input_json_delta", "partial_json": "{\"ci"}),
            ),
            delta(
                2,
                json!({"type": "input_json_delta", "partial_json": "ty\": \"Paris\"}"}),
            ),
            event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 2}),
            ),
            event("brand_new_event", json!({"type": "brand_new_event"})),
        ];
        events.extend(finish("tool_use", 89));
        let (chunks, last) = run(false, &events);
        assert_eq!(last.unwrap(), Flow::Done);
        assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
        assert!(
            chunks
                .iter()
                .all(|c| c.id == "msg_1" && c.model == "claude-x-2")
        );
        let text: String = chunks
            .iter()
            .flat_map(|c| &c.choices)
            .filter_map(|c| c.delta.content.clone())
            .collect();
        assert_eq!(text, "Checking");
        let calls: Vec<&ToolCallDelta> = chunks
            .iter()
            .flat_map(|c| &c.choices)
            .flat_map(|c| c.delta.tool_calls.iter().flatten())
            .collect();
        assert_eq!(calls[0].id.as_deref(), Some("toolu_1"));
        assert_eq!(
            calls[0].function.as_ref().unwrap().name.as_deref(),
            Some("get_weather")
        );
        let args: String = calls
            .iter()
            .filter_map(|c| c.function.as_ref()?.arguments.clone())
            .collect();
        assert_eq!(args, "{\"city\": \"Paris\"}");
        assert!(calls.iter().all(|c| c.index == 0));
        let n = chunks.len();
        assert_eq!(
            chunks[n - 2].choices[0].finish_reason,
            Some(FinishReason::ToolCalls)
        );
        let last = &chunks[n - 1];
        assert!(last.choices.is_empty());
        let usage = last.usage.clone().unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens()
            ),
            (35, 89, 10)
        );
        assert_eq!(chunks.iter().filter(|c| c.usage.is_some()).count(), 1);
    }

    #[test]
    fn json_tool_input_streams_as_content() {
        let mut events = vec![
            start(),
            block(
                0,
                json!({"type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {}}),
            ),
            delta(
                0,
                json!({"type": "input_json_delta", "partial_json": "{\"a\""}),
            ),
            delta(
                0,
                json!({"type": "input_json_delta", "partial_json": ": 1}"}),
            ),
        ];
        events.extend(finish("tool_use", 5));
        let (chunks, _) = run(true, &events);
        let text: String = chunks
            .iter()
            .flat_map(|c| &c.choices)
            .filter_map(|c| c.delta.content.clone())
            .collect();
        assert_eq!(text, "{\"a\": 1}");
        assert!(
            chunks
                .iter()
                .flat_map(|c| &c.choices)
                .all(|c| c.delta.tool_calls.is_none())
        );
        let finish: Vec<FinishReason> = chunks
            .iter()
            .flat_map(|c| &c.choices)
            .filter_map(|c| c.finish_reason)
            .collect();
        assert_eq!(finish, vec![FinishReason::Stop]);
    }

    #[test]
    fn refusal_max_tokens_and_missing_stop_reason() {
        let mut events = vec![start()];
        events.extend(finish("refusal", 3));
        let (chunks, _) = run(false, &events);
        let fin = &chunks[chunks.len() - 2].choices[0];
        assert_eq!(fin.finish_reason, Some(FinishReason::ContentFilter));
        assert_eq!(fin.delta.refusal.as_deref(), Some(REFUSAL));

        let mut events = vec![start()];
        events.extend(finish("max_tokens", 3));
        let (chunks, _) = run(false, &events);
        assert_eq!(
            chunks[chunks.len() - 2].choices[0].finish_reason,
            Some(FinishReason::Length)
        );

        let (chunks, last) = run(
            false,
            &[
                start(),
                event("message_stop", json!({"type": "message_stop"})),
            ],
        );
        assert_eq!(last.unwrap(), Flow::Done);
        assert_eq!(chunks[1].choices[0].finish_reason, Some(FinishReason::Stop));
        assert!(chunks[2].usage.is_some());
    }

    #[test]
    fn errors_malformed_events_and_stray_fragments_fail() {
        let (_, last) = run(
            false,
            &[
                start(),
                event(
                    "error",
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                ),
            ],
        );
        assert_eq!(last.unwrap_err().kind, ProviderErrorKind::Server);
        let (_, last) = run(
            false,
            &[SseEvent {
                event: Some("content_block_delta".into()),
                data: "{\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_de".into(),
            }],
        );
        assert_eq!(last.unwrap_err().kind, ProviderErrorKind::InvalidResponse);
        let (_, last) = run(
            false,
            &[
                start(),
                delta(4, json!({"type": "input_json_delta", "partial_json": "{}"})),
            ],
        );
        assert_eq!(last.unwrap_err().kind, ProviderErrorKind::InvalidResponse);
        let (_, last) = run(
            false,
            &[event(
                "content_block_start",
                json!({"type": "content_block_start"}),
            )],
        );
        assert_eq!(last.unwrap_err().kind, ProviderErrorKind::InvalidResponse);
    }
}
