//! The streaming half of the Gemini translation (Gemini API and Vertex AI):
//! `streamGenerateContent?alt=sse` sends server-sent events whose `data` is a whole
//! `GenerateContentResponse` holding the next piece of each candidate. They become OpenAI
//! chunks: text as `content` deltas, each `functionCall` as one complete tool-call delta (Gemini
//! sends calls whole), `finishReason` as the choice's `finish_reason`, the last `usageMetadata`
//! as the final usage chunk.
//!
//! Gemini ends the stream by closing the body (there is no `[DONE]`): the answer is complete
//! when every candidate that appeared has a `finishReason` (or the prompt was blocked). A body
//! that ends before that is an `Err`, never a silent truncation.

use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;

use super::wire;
use crate::ProviderError;
use crate::ProviderErrorKind;
use crate::http::truncate;
use crate::sse::{SseEvent, SseParser};
use crate::translated::{Decoder, Item, invalid, unix_now};
use crate::types::{
    ChatChunk, ChunkChoice, Delta, FinishReason, FunctionCallDelta, Role, ToolCallDelta, Usage,
};

#[derive(Debug, Default)]
struct CandidateState {
    /// Tool calls delivered so far (the next call's `index`).
    tool_calls: u32,
    finished: bool,
}

/// Decodes a Gemini SSE body into chunks.
#[derive(Debug)]
pub(crate) struct GeminiDecoder {
    provider: String,
    upstream_model: String,
    parser: SseParser,
    events: Vec<SseEvent>,
    /// The chunk envelope, fixed by the first event.
    id: Option<String>,
    model: Option<String>,
    created: i64,
    candidates: BTreeMap<u32, CandidateState>,
    blocked: bool,
    usage: Option<Usage>,
    failed: bool,
}

impl GeminiDecoder {
    pub(crate) fn new(provider: &str, upstream_model: &str) -> Self {
        GeminiDecoder {
            provider: provider.to_owned(),
            upstream_model: upstream_model.to_owned(),
            parser: SseParser::new(),
            events: Vec::new(),
            id: None,
            model: None,
            created: unix_now(),
            candidates: BTreeMap::new(),
            blocked: false,
            usage: None,
            failed: false,
        }
    }

    fn fail(&mut self, err: ProviderError, out: &mut VecDeque<Item>) {
        if !self.failed {
            self.failed = true;
            out.push_back(Err(err));
        }
    }

    fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone().unwrap_or_default(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self
                .model
                .clone()
                .unwrap_or_else(|| self.upstream_model.clone()),
            choices,
            usage: None,
            system_fingerprint: None,
        }
    }

    fn event(&mut self, data: &str, out: &mut VecDeque<Item>) {
        let data = data.trim();
        if data.is_empty() || self.failed {
            return;
        }
        let value: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                let err = invalid(
                    &self.provider,
                    format!("malformed stream event ({e}): {}", truncate(data, 300)),
                );
                return self.fail(err, out);
            }
        };
        if value.get("error").is_some_and(|e| !e.is_null()) {
            let err = wire::in_band_error(&self.provider, &value);
            return self.fail(err, out);
        }
        if self.id.is_none() {
            self.id = Some(wire::response_id(&value));
            self.model = wire::model_version(&value).map(str::to_owned);
        }
        if let Some(usage) = value.get("usageMetadata").and_then(wire::usage) {
            self.usage = Some(usage);
        }
        let mut choices = Vec::new();
        let candidates = value.get("candidates").and_then(Value::as_array);
        for (position, candidate) in candidates.into_iter().flatten().enumerate() {
            let index = candidate
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|i| u32::try_from(i).ok())
                .unwrap_or(u32::try_from(position).unwrap_or(u32::MAX));
            let parts = wire::candidate_parts(candidate);
            let first = !self.candidates.contains_key(&index);
            let state = self.candidates.entry(index).or_default();
            let mut delta = Delta {
                role: first.then_some(Role::Assistant),
                ..Delta::default()
            };
            if !parts.text.is_empty() {
                delta.content = Some(parts.text);
            }
            if !parts.tool_calls.is_empty() {
                let mut calls = Vec::new();
                for call in parts.tool_calls {
                    calls.push(ToolCallDelta {
                        index: state.tool_calls,
                        id: Some(call.id),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(call.function.name),
                            arguments: Some(call.function.arguments),
                        }),
                    });
                    state.tool_calls += 1;
                }
                delta.tool_calls = Some(calls);
            }
            let finish = match parts.finish.as_deref() {
                None => None,
                Some(reason) => {
                    state.finished = true;
                    match wire::finish_reason(&self.provider, reason, state.tool_calls > 0) {
                        Ok(f) => Some(f),
                        Err(err) => {
                            // Deliver what came with the failing piece first.
                            if delta.content.is_some() || delta.tool_calls.is_some() {
                                choices.push(ChunkChoice {
                                    index,
                                    delta,
                                    finish_reason: None,
                                    logprobs: None,
                                });
                                out.push_back(Ok(self.chunk(choices)));
                            }
                            return self.fail(err, out);
                        }
                    }
                }
            };
            if delta == Delta::default() && finish.is_none() {
                continue;
            }
            choices.push(ChunkChoice {
                index,
                delta,
                finish_reason: finish,
                logprobs: None,
            });
        }
        if choices.is_empty() && self.candidates.is_empty() && wire::block_reason(&value).is_some()
        {
            self.blocked = true;
            choices.push(ChunkChoice {
                index: 0,
                delta: Delta {
                    role: Some(Role::Assistant),
                    ..Delta::default()
                },
                finish_reason: Some(FinishReason::ContentFilter),
                logprobs: None,
            });
        }
        if !choices.is_empty() {
            out.push_back(Ok(self.chunk(choices)));
        }
    }

    fn complete(&self) -> bool {
        self.blocked
            || (!self.candidates.is_empty() && self.candidates.values().all(|c| c.finished))
    }
}

impl Decoder for GeminiDecoder {
    fn push(&mut self, piece: &[u8], out: &mut VecDeque<Item>) {
        let mut events = std::mem::take(&mut self.events);
        self.parser.push(piece, &mut events);
        for event in events.drain(..) {
            self.event(&event.data, out);
        }
        self.events = events;
    }

    fn finish(&mut self, out: &mut VecDeque<Item>) {
        if let Some(event) = self.parser.finish() {
            self.event(&event.data, out);
        }
        if self.failed {
            return;
        }
        if !self.complete() {
            let err = ProviderError::new(
                &self.provider,
                ProviderErrorKind::Transport,
                "the upstream closed the stream before the answer finished",
            );
            return self.fail(err, out);
        }
        if let Some(usage) = self.usage.take() {
            let mut chunk = self.chunk(Vec::new());
            chunk.usage = Some(usage);
            out.push_back(Ok(chunk));
        }
    }

    fn done(&self) -> bool {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(body: &str, cut: usize) -> Vec<Item> {
        let mut decoder = GeminiDecoder::new("gemini", "m");
        let mut out = VecDeque::new();
        for piece in body.as_bytes().chunks(cut.max(1)) {
            decoder.push(piece, &mut out);
        }
        decoder.finish(&mut out);
        out.into_iter().collect()
    }

    fn sse(events: &[Value]) -> String {
        events
            .iter()
            .map(|e| format!("data: {e}\r\n\r\n"))
            .collect()
    }

    #[test]
    fn text_tool_calls_finish_and_one_usage_chunk_at_any_cut() {
        let body = sse(&[
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
                "usageMetadata": {"promptTokenCount": 5}, "modelVersion": "gemini-2.5-pro", "responseId": "r1"}),
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo ✓"}]}, "index": 0}]}),
            json!({"candidates": [{"content": {"role": "model", "parts": [
                {"functionCall": {"name": "f", "args": {"a": 1}}},
                {"functionCall": {"name": "g", "args": {}}}]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 12}}),
        ]);
        for cut in [1, 3, 17, 10_000] {
            let items = run(&body, cut);
            let chunks: Vec<ChatChunk> = items.into_iter().map(Result::unwrap).collect();
            assert_eq!(chunks.len(), 4, "cut {cut}");
            assert!(
                chunks
                    .iter()
                    .all(|c| c.id == "chatcmpl-r1" && c.model == "gemini-2.5-pro")
            );
            assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
            assert_eq!(chunks[0].choices[0].delta.content.as_deref(), Some("Hel"));
            assert_eq!(chunks[1].choices[0].delta.content.as_deref(), Some("lo ✓"));
            let calls = chunks[2].choices[0].delta.tool_calls.clone().unwrap();
            assert_eq!(
                calls.iter().map(|c| c.index).collect::<Vec<_>>(),
                vec![0, 1]
            );
            assert_eq!(
                chunks[2].choices[0].finish_reason,
                Some(FinishReason::ToolCalls)
            );
            assert!(chunks[3].choices.is_empty());
            assert_eq!(chunks[3].usage.as_ref().unwrap().total_tokens, 12);
        }
    }

    #[test]
    fn cut_short_malformed_and_error_events_end_with_one_err() {
        let partial = sse(&[json!({"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]})]);
        let items = run(&partial, 5);
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1].as_ref().unwrap_err().kind,
            ProviderErrorKind::Transport
        );

        let mut malformed = partial.clone();
        malformed.push_str("data: {\"candidates\": [\n\n");
        let items = run(&malformed, 7);
        assert_eq!(
            items.last().unwrap().as_ref().unwrap_err().kind,
            ProviderErrorKind::InvalidResponse
        );
        assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);

        let mut errored = partial;
        errored.push_str(&sse(&[
            json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}),
        ]));
        let items = run(&errored, 1000);
        let err = items.last().unwrap().as_ref().unwrap_err();
        assert_eq!(
            (err.kind, err.status),
            (ProviderErrorKind::Server, Some(503))
        );
        assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
    }

    #[test]
    fn blocked_prompts_finish_as_content_filter() {
        let body = sse(&[
            json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}),
        ]);
        let chunks: Vec<ChatChunk> = run(&body, 4).into_iter().map(Result::unwrap).collect();
        assert_eq!(
            chunks[0].choices[0].finish_reason,
            Some(FinishReason::ContentFilter)
        );
        assert_eq!(chunks[1].usage.as_ref().unwrap().prompt_tokens, 9);
    }
}
