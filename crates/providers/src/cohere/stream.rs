//! Cohere's v2 chat stream translated into OpenAI chunks.
//!
//! The documented events: `message-start`; `content-start` / `content-delta` /
//! `content-end` (text, or thinking on reasoning models); `tool-plan-delta`; per tool call
//! `tool-call-start` (id, name, first arguments), `tool-call-delta` (argument fragments),
//! `tool-call-end`; `citation-start` / `citation-end`; `message-end` with the finish reason and
//! the usage. Each event's `type` is in its data.
//!
//! Out come: a role chunk at `message-start`; content deltas for text and for the tool plan
//! (the non-streaming answer's content falls back to the tool plan too); tool-call deltas
//! (OpenAI index = order of the calls); at `message-end` one chunk with the finish reason and
//! the usage as one final chunk without choices. A finish reason of ERROR or TIMEOUT, an error
//! body, or a malformed event ends the stream with an `Err`.

use std::collections::HashMap;

use serde_json::Value;

use super::wire::{self, CohereUsage, Ending};
use crate::ProviderError;
use crate::http::truncate;
use crate::native::{EventTranslator, Flow, chunk_envelope, invalid};
use crate::sse::SseEvent;
use crate::types::{ChatChunk, ChunkChoice, Delta, FunctionCallDelta, Role, ToolCallDelta};

/// The state of one Cohere stream.
#[derive(Debug)]
pub(crate) struct CohereTranslator {
    provider: String,
    model: String,
    id: String,
    /// Cohere tool-call index → OpenAI tool-call index.
    tools: HashMap<u64, u32>,
}

impl CohereTranslator {
    pub(crate) fn new(provider: &str, upstream_model: &str) -> Self {
        CohereTranslator {
            provider: provider.to_owned(),
            model: upstream_model.to_owned(),
            id: String::new(),
            tools: HashMap::new(),
        }
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<crate::types::FinishReason>) -> ChatChunk {
        let mut chunk = chunk_envelope(&self.id, &self.model);
        chunk.choices.push(ChunkChoice {
            index: 0,
            delta,
            finish_reason,
            logprobs: None,
        });
        chunk
    }

    fn text(&self, text: Option<&str>) -> Option<ChatChunk> {
        text.filter(|t| !t.is_empty()).map(|t| {
            self.chunk(
                Delta {
                    content: Some(t.to_owned()),
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

    fn message_end(
        &self,
        value: &Value,
        data: &str,
        out: &mut Vec<ChatChunk>,
    ) -> Result<(), ProviderError> {
        let delta = value.get("delta");
        let reason = delta
            .and_then(|d| d.get("finish_reason"))
            .and_then(Value::as_str)
            .unwrap_or("COMPLETE");
        let error = delta.and_then(|d| d.get("error")).and_then(Value::as_str);
        let finish = match wire::finish_reason(reason) {
            Ending::Failed(kind) => return Err(wire::failed(&self.provider, kind, reason, error)),
            Ending::Finish(_) if error.is_some_and(|e| !e.is_empty()) => {
                return Err(wire::failed(
                    &self.provider,
                    crate::ProviderErrorKind::Server,
                    reason,
                    error,
                ));
            }
            Ending::Finish(finish) => finish,
        };
        let usage: CohereUsage = match delta.and_then(|d| d.get("usage")).filter(|u| !u.is_null()) {
            Some(u) => serde_json::from_value(u.clone())
                .map_err(|_| self.malformed("message-end", data))?,
            None => CohereUsage::default(),
        };
        out.push(self.chunk(Delta::default(), Some(finish)));
        let mut last = chunk_envelope(&self.id, &self.model);
        last.usage = Some(usage.to_openai());
        out.push(last);
        Ok(())
    }
}

impl EventTranslator for CohereTranslator {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<ChatChunk>) -> Result<Flow, ProviderError> {
        let data = event.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return Ok(Flow::Continue);
        }
        let value: Value = serde_json::from_str(data).map_err(|e| {
            invalid(
                &self.provider,
                format!("malformed stream event ({e}): {}", truncate(data, 300)),
            )
        })?;
        let Some(kind) = value
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref().filter(|e| *e != "message"))
        else {
            // No type: an error body (`{"message": ...}`) written into the stream.
            return Err(wire::in_band_error(&self.provider, &value)
                .unwrap_or_else(|| self.malformed("untyped", data)));
        };
        let message = value.pointer("/delta/message");
        match kind {
            "message-start" => {
                if let Some(id) = value.get("id").and_then(Value::as_str) {
                    id.clone_into(&mut self.id);
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
            "content-start" | "content-delta" => {
                // Thinking parts carry `thinking`, not `text`: dropped.
                let text = message
                    .and_then(|m| m.pointer("/content/text"))
                    .and_then(Value::as_str);
                out.extend(self.text(text));
            }
            "tool-plan-delta" => {
                let plan = message
                    .and_then(|m| m.get("tool_plan"))
                    .and_then(Value::as_str);
                out.extend(self.text(plan));
            }
            "tool-call-start" => {
                let call = message
                    .and_then(|m| m.get("tool_calls"))
                    .ok_or_else(|| self.malformed("tool-call-start", data))?;
                let cohere_index = value
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(self.tools.len() as u64);
                let position = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                self.tools.insert(cohere_index, position);
                out.push(
                    self.tool_delta(ToolCallDelta {
                        index: position,
                        id: call.get("id").and_then(Value::as_str).map(str::to_owned),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: call
                                .pointer("/function/name")
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                            arguments: Some(
                                call.pointer("/function/arguments")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_owned(),
                            ),
                        }),
                    }),
                );
            }
            "tool-call-delta" => {
                let fragment = message
                    .and_then(|m| m.pointer("/tool_calls/function/arguments"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let position = value
                    .get("index")
                    .and_then(Value::as_u64)
                    .and_then(|i| self.tools.get(&i).copied())
                    .or_else(|| (self.tools.len() == 1).then_some(0))
                    .ok_or_else(|| {
                        invalid(
                            &self.provider,
                            format!(
                                "tool-call-delta for a tool call that never started: {}",
                                truncate(data, 300)
                            ),
                        )
                    })?;
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
            "message-end" => {
                self.message_end(&value, data, out)?;
                return Ok(Flow::Done);
            }
            // content-end, tool-call-end, citation-start/end, debug and later types.
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn end_event(&self) -> &'static str {
        "message-end"
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ProviderErrorKind;
    use crate::types::FinishReason;

    fn event(data: Value) -> SseEvent {
        SseEvent {
            event: data.get("type").and_then(Value::as_str).map(str::to_owned),
            data: data.to_string(),
        }
    }

    fn run(events: &[SseEvent]) -> (Vec<ChatChunk>, Result<Flow, ProviderError>) {
        let mut t = CohereTranslator::new("cohere", "command-a");
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
            json!({"id": "gen-1", "type": "message-start", "delta": {"message": {
            "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        )
    }

    fn end(reason: &str) -> SseEvent {
        event(
            json!({"type": "message-end", "delta": {"finish_reason": reason,
            "usage": {"billed_units": {"input_tokens": 12, "output_tokens": 9},
                "tokens": {"input_tokens": 300, "output_tokens": 9}}}}),
        )
    }

    #[test]
    fn text_then_usage() {
        let (chunks, last) = run(&[
            start(),
            event(
                json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
            ),
            event(
                json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hel"}}}}),
            ),
            event(
                json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"thinking": "hmm"}}}}),
            ),
            event(
                json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "lo"}}}}),
            ),
            event(json!({"type": "content-end", "index": 0})),
            end("COMPLETE"),
        ]);
        assert_eq!(last.unwrap(), Flow::Done);
        assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
        let text: String = chunks
            .iter()
            .flat_map(|c| &c.choices)
            .filter_map(|c| c.delta.content.clone())
            .collect();
        assert_eq!(text, "Hello");
        let n = chunks.len();
        assert_eq!(
            chunks[n - 2].choices[0].finish_reason,
            Some(FinishReason::Stop)
        );
        let usage = chunks[n - 1].usage.clone().unwrap();
        assert!(chunks[n - 1].choices.is_empty());
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (12, 9));
        assert!(chunks.iter().all(|c| c.id == "gen-1"));
    }

    #[test]
    fn tool_plan_and_two_tool_calls() {
        let (chunks, _) = run(&[
            start(),
            event(
                json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will search"}}}),
            ),
            event(
                json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {
                "id": "c1", "type": "function", "function": {"name": "search", "arguments": ""}}}}}),
            ),
            event(
                json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "{\"q\":"}}}}}),
            ),
            event(
                json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "\"a\"}"}}}}}),
            ),
            event(json!({"type": "tool-call-end", "index": 0})),
            event(
                json!({"type": "tool-call-start", "index": 1, "delta": {"message": {"tool_calls": {
                "id": "c2", "type": "function", "function": {"name": "search", "arguments": "{\"q\":\"b\"}"}}}}}),
            ),
            event(json!({"type": "tool-call-end", "index": 1})),
            end("TOOL_CALL"),
        ]);
        let calls: Vec<&ToolCallDelta> = chunks
            .iter()
            .flat_map(|c| &c.choices)
            .flat_map(|c| c.delta.tool_calls.iter().flatten())
            .collect();
        let args = |i: u32| -> String {
            calls
                .iter()
                .filter(|c| c.index == i)
                .filter_map(|c| c.function.as_ref()?.arguments.clone())
                .collect()
        };
        assert_eq!(args(0), "{\"q\":\"a\"}");
        assert_eq!(args(1), "{\"q\":\"b\"}");
        assert_eq!(calls[0].id.as_deref(), Some("c1"));
        let text: String = chunks
            .iter()
            .flat_map(|c| &c.choices)
            .filter_map(|c| c.delta.content.clone())
            .collect();
        assert_eq!(text, "I will search");
        assert_eq!(
            chunks[chunks.len() - 2].choices[0].finish_reason,
            Some(FinishReason::ToolCalls)
        );
    }

    #[test]
    fn failures_end_the_stream() {
        let (_, last) = run(&[
            start(),
            event(
                json!({"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "internal failure"}}),
            ),
        ]);
        let err = last.unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Server);
        assert!(err.message.contains("internal failure"), "{err}");
        let (_, last) = run(&[start(), end("TIMEOUT")]);
        assert_eq!(last.unwrap_err().kind, ProviderErrorKind::Timeout);
        let (_, last) = run(&[SseEvent {
            event: None,
            data: "{\"message\": \"too many tokens in flight\"}".into(),
        }]);
        assert_eq!(last.unwrap_err().message, "too many tokens in flight");
        let (_, last) = run(&[SseEvent {
            event: None,
            data: "{\"type\": \"content-delta\", \"delta\"".into(),
        }]);
        assert_eq!(last.unwrap_err().kind, ProviderErrorKind::InvalidResponse);
        let (_, last) = run(&[
            start(),
            event(
                json!({"type": "tool-call-delta", "index": 3, "delta": {"message": {"tool_calls": {"function": {"arguments": "{"}}}}}),
            ),
        ]);
        assert_eq!(last.unwrap_err().kind, ProviderErrorKind::InvalidResponse);
    }
}
