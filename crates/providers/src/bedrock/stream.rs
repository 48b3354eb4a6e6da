//! The streaming half of the Bedrock translation: `converse-stream` events, framed by the
//! [event-stream](super::eventstream) encoding, become OpenAI chunks.
//!
//! - `messageStart` → the first chunk (`role: assistant`);
//! - `contentBlockStart` with `toolUse` → a tool-call delta with its id and name;
//! - `contentBlockDelta` → `text` as a content delta, `toolUse.input` (a piece of JSON) as an
//!   arguments delta of the call started by the same content block;
//! - `messageStop` → the `finish_reason`;
//! - `metadata` (after `messageStop`) → the final usage chunk; the answer is complete;
//! - exception events (`throttlingException`, ...) and unmodeled `error` messages → an `Err`.
//!
//! A body that ends before `messageStop` and `metadata`, or a frame that fails its CRC, is an
//! `Err`, never a silent truncation.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::eventstream::{FrameDecoder, Message};
use super::wire;
use crate::http::truncate;
use crate::translated::{Decoder, Item, invalid, new_id, unix_now};
use crate::types::{
    ChatChunk, ChunkChoice, Delta, FinishReason, FunctionCallDelta, Role, ToolCallDelta, Usage,
};
use crate::{ProviderError, ProviderErrorKind};

/// Decodes a `converse-stream` body into chunks.
#[derive(Debug)]
pub(crate) struct BedrockDecoder {
    provider: String,
    model: String,
    id: String,
    created: i64,
    frames: FrameDecoder,
    /// Content block index → tool call index.
    tool_blocks: HashMap<u64, u32>,
    next_tool: u32,
    stop: Option<FinishReason>,
    usage: Option<Usage>,
    metadata: bool,
    failed: bool,
}

impl BedrockDecoder {
    pub(crate) fn new(provider: &str, upstream_model: &str) -> Self {
        BedrockDecoder {
            provider: provider.to_owned(),
            model: upstream_model.to_owned(),
            id: new_id("chatcmpl-"),
            created: unix_now(),
            frames: FrameDecoder::default(),
            tool_blocks: HashMap::new(),
            next_tool: 0,
            stop: None,
            usage: None,
            metadata: false,
            failed: false,
        }
    }

    fn fail(&mut self, err: ProviderError, out: &mut VecDeque<Item>) {
        if !self.failed {
            self.failed = true;
            out.push_back(Err(err));
        }
    }

    fn chunk(&self, delta: Delta, finish: Option<FinishReason>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                logprobs: None,
            }],
            usage: None,
            system_fingerprint: None,
        }
    }

    fn message(&mut self, message: &Message, out: &mut VecDeque<Item>) {
        match message.header(":message-type") {
            Some("event") => {}
            Some("exception") => {
                let exception = message.header(":exception-type").unwrap_or("exception");
                let err = wire::stream_exception(&self.provider, exception, &message.payload);
                return self.fail(err, out);
            }
            Some("error") => {
                let err = ProviderError::new(
                    &self.provider,
                    ProviderErrorKind::Server,
                    format!(
                        "{}: {}",
                        message.header(":error-code").unwrap_or("error"),
                        message.header(":error-message").unwrap_or("")
                    ),
                );
                return self.fail(err, out);
            }
            other => {
                let err = invalid(
                    &self.provider,
                    format!("event stream message of type {other:?}"),
                );
                return self.fail(err, out);
            }
        }
        let event = message.header(":event-type").unwrap_or("");
        let payload: Value = match serde_json::from_slice(&message.payload) {
            Ok(v) => v,
            Err(e) => {
                let err = invalid(
                    &self.provider,
                    format!(
                        "malformed {event} event ({e}): {}",
                        truncate(&String::from_utf8_lossy(&message.payload), 300)
                    ),
                );
                return self.fail(err, out);
            }
        };
        let block = payload
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match event {
            "messageStart" => out.push_back(Ok(self.chunk(
                Delta {
                    role: Some(Role::Assistant),
                    ..Delta::default()
                },
                None,
            ))),
            "contentBlockStart" => {
                let Some(tool) = payload.get("start").and_then(|s| s.get("toolUse")) else {
                    return;
                };
                let index = self.next_tool;
                self.next_tool += 1;
                self.tool_blocks.insert(block, index);
                let id = tool
                    .get("toolUseId")
                    .and_then(Value::as_str)
                    .map_or_else(|| new_id("call_"), str::to_owned);
                let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                out.push_back(Ok(self.chunk(
                    Delta {
                        tool_calls: Some(vec![ToolCallDelta {
                            index,
                            id: Some(id),
                            kind: Some("function".into()),
                            function: Some(FunctionCallDelta {
                                name: Some(name.to_owned()),
                                arguments: Some(String::new()),
                            }),
                        }]),
                        ..Delta::default()
                    },
                    None,
                )));
            }
            "contentBlockDelta" => {
                let Some(delta) = payload.get("delta") else {
                    return;
                };
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        out.push_back(Ok(self.chunk(
                            Delta {
                                content: Some(text.to_owned()),
                                ..Delta::default()
                            },
                            None,
                        )));
                    }
                } else if let Some(input) = delta
                    .get("toolUse")
                    .and_then(|t| t.get("input"))
                    .and_then(Value::as_str)
                {
                    let Some(&index) = self.tool_blocks.get(&block) else {
                        let err = invalid(
                            &self.provider,
                            format!(
                                "tool input for content block {block}, which started no tool call"
                            ),
                        );
                        return self.fail(err, out);
                    };
                    out.push_back(Ok(self.chunk(
                        Delta {
                            tool_calls: Some(vec![ToolCallDelta {
                                index,
                                id: None,
                                kind: None,
                                function: Some(FunctionCallDelta {
                                    name: None,
                                    arguments: Some(input.to_owned()),
                                }),
                            }]),
                            ..Delta::default()
                        },
                        None,
                    )));
                }
                // Reasoning deltas (`reasoningContent`) have no place in a chat chunk.
            }
            "contentBlockStop" => {}
            "messageStop" => {
                let reason = payload
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                match wire::finish_reason(&self.provider, reason) {
                    Ok(finish) => {
                        self.stop = Some(finish);
                        out.push_back(Ok(self.chunk(Delta::default(), Some(finish))));
                    }
                    Err(err) => self.fail(err, out),
                }
            }
            "metadata" => {
                self.metadata = true;
                self.usage = payload.get("usage").and_then(wire::usage);
                if self.stop.is_some()
                    && let Some(usage) = self.usage.take()
                {
                    let mut chunk = self.chunk(Delta::default(), None);
                    chunk.choices.clear();
                    chunk.usage = Some(usage);
                    out.push_back(Ok(chunk));
                }
            }
            _ => {} // events added later
        }
    }
}

impl Decoder for BedrockDecoder {
    fn push(&mut self, piece: &[u8], out: &mut VecDeque<Item>) {
        self.frames.push(piece);
        while !self.failed && !self.done() {
            match self.frames.next_message() {
                Ok(Some(message)) => self.message(&message, out),
                Ok(None) => break,
                Err(reason) => {
                    let err = invalid(&self.provider, reason);
                    self.fail(err, out);
                }
            }
        }
    }

    fn finish(&mut self, out: &mut VecDeque<Item>) {
        if self.failed || self.done() {
            return;
        }
        let message = if self.frames.has_partial() {
            "the upstream closed the stream in the middle of an event"
        } else if self.stop.is_none() {
            "the upstream closed the stream before messageStop"
        } else {
            "the upstream closed the stream before the metadata (usage) event"
        };
        let err = ProviderError::new(&self.provider, ProviderErrorKind::Transport, message);
        self.fail(err, out);
    }

    fn done(&self) -> bool {
        self.failed || (self.stop.is_some() && self.metadata)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::eventstream::tests::encode;
    use super::*;

    fn event(kind: &str, payload: Value) -> Vec<u8> {
        encode(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.to_string().as_bytes(),
        )
    }

    fn run(body: &[u8], cut: usize) -> Vec<Item> {
        let mut d = BedrockDecoder::new("bedrock", "m");
        let mut out = VecDeque::new();
        for piece in body.chunks(cut.max(1)) {
            d.push(piece, &mut out);
        }
        d.finish(&mut out);
        out.into_iter().collect()
    }

    fn answer() -> Vec<u8> {
        let mut b = event("messageStart", json!({"role": "assistant", "p": "abc"}));
        b.extend(event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Let me check"}}),
        ));
        b.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
        b.extend(event("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}})));
        b.extend(event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ));
        b.extend(event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        ));
        b.extend(event("contentBlockStop", json!({"contentBlockIndex": 1})));
        b.extend(event("messageStop", json!({"stopReason": "tool_use"})));
        b.extend(event("metadata", json!({"usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42}, "metrics": {"latencyMs": 500}})));
        b
    }

    #[test]
    fn events_become_chunks_at_every_cut() {
        let body = answer();
        for cut in 1..=body.len().min(97) {
            let chunks: Vec<ChatChunk> = run(&body, cut).into_iter().map(Result::unwrap).collect();
            assert_eq!(chunks.len(), 7, "cut {cut}");
            assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
            assert_eq!(
                chunks[1].choices[0].delta.content.as_deref(),
                Some("Let me check")
            );
            let start = &chunks[2].choices[0].delta.tool_calls.as_ref().unwrap()[0];
            assert_eq!((start.index, start.id.as_deref()), (0, Some("tooluse_1")));
            let args: String = chunks[3..5]
                .iter()
                .filter_map(|c| {
                    c.choices[0].delta.tool_calls.as_ref()?[0]
                        .function
                        .as_ref()?
                        .arguments
                        .clone()
                })
                .collect();
            assert_eq!(args, "{\"city\":\"Paris\"}");
            assert_eq!(
                chunks[5].choices[0].finish_reason,
                Some(FinishReason::ToolCalls)
            );
            assert!(chunks[6].choices.is_empty());
            assert_eq!(chunks[6].usage.as_ref().unwrap().total_tokens, 42);
        }
    }

    #[test]
    fn exceptions_cuts_and_corruption_end_with_one_err() {
        let mut body = event("messageStart", json!({"role": "assistant"}));
        body.extend(encode(
            &[
                (":exception-type", "throttlingException"),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            br#"{"message":"Too many tokens, please wait before trying again."}"#,
        ));
        let items = run(&body, 5);
        assert_eq!(items.len(), 2);
        let err = items[1].as_ref().unwrap_err();
        assert_eq!(
            (err.kind, err.status),
            (ProviderErrorKind::RateLimited, Some(429))
        );

        let full = answer();
        for (cut, want) in [
            (full.len() - 3, "middle of an event"),
            (0, "before messageStop"),
        ] {
            let items = run(&full[..cut], 11);
            let err = items.last().unwrap().as_ref().unwrap_err();
            assert_eq!(err.kind, ProviderErrorKind::Transport);
            assert!(err.message.contains(want), "{err}");
            assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
        }

        let mut corrupt = full.clone();
        let at = corrupt.len() / 2;
        corrupt[at] ^= 1;
        let items = run(&corrupt, 64);
        let err = items.last().unwrap().as_ref().unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::InvalidResponse);
        assert!(err.message.contains("CRC"), "{err}");
    }
}
