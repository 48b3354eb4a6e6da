//! The streaming half of the adapter: an SSE body turned into [`ChatChunk`]s.
//!
//! Guarantees, whatever the upstream does:
//! - usage, wherever and however often the provider reports it, comes out once, as a final
//!   chunk with empty `choices` right before the end (OpenAI's `include_usage` shape), so the
//!   gateway can drop it when the client did not ask for usage;
//! - a stream that does not end with `[DONE]` (connection cut, upstream crash, idle timeout), a
//!   malformed chunk and an `{"error": ...}` event all end the stream with an `Err` item: never a
//!   silent truncation;
//! - nothing is yielded after an `Err`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio::time::Instant;

use super::quirks::Quirks;
use super::wire;
use crate::http::{stream_timeout, transport_error};
use crate::sse::{SseEvent, SseParser};
use crate::types::{ChatChunk, ChunkChoice, Delta, Usage};
use crate::{ProviderError, ProviderErrorKind};

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// The state of one stream being read.
pub(crate) struct ChunkReader {
    provider: String,
    upstream_model: String,
    quirks: &'static Quirks,
    body: ByteStream,
    parser: SseParser,
    events: Vec<SseEvent>,
    pending: VecDeque<Result<ChatChunk, ProviderError>>,
    /// The latest usage reported (providers reporting on every chunk send running totals).
    usage: Option<Usage>,
    /// Citations not yet attached to a delta.
    annotations: Option<Vec<Value>>,
    annotations_sent: bool,
    /// The envelope (id, created, model, fingerprint) of the latest chunk, for the usage chunk.
    envelope: Option<ChatChunk>,
    /// Until the first item: when the first-token budget runs out.
    first_deadline: Option<Instant>,
    first_byte: Duration,
    idle: Duration,
    /// No more reading: `[DONE]`, an error, or the end of the body.
    finished: bool,
}

impl ChunkReader {
    pub(crate) fn new(
        provider: String,
        upstream_model: String,
        quirks: &'static Quirks,
        body: ByteStream,
        first_deadline: Instant,
        first_byte: Duration,
        idle: Duration,
    ) -> Self {
        ChunkReader {
            provider,
            upstream_model,
            quirks,
            body,
            parser: SseParser::new(),
            events: Vec::new(),
            pending: VecDeque::new(),
            usage: None,
            annotations: None,
            annotations_sent: false,
            envelope: None,
            first_deadline: Some(first_deadline),
            first_byte,
            idle,
            finished: false,
        }
    }

    /// Returns the next item, `None` at the end.
    pub(crate) async fn next_item(&mut self) -> Option<Result<ChatChunk, ProviderError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                if item.is_err() {
                    // Nothing after an error.
                    self.pending.clear();
                    self.finished = true;
                }
                // The first-token budget is spent once anything came out.
                self.first_deadline = None;
                return Some(item);
            }
            if self.finished {
                return None;
            }
            let deadline = self
                .first_deadline
                .unwrap_or_else(|| Instant::now() + self.idle);
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => {
                    let first_token = self.first_deadline.is_some();
                    self.fail(stream_timeout(
                        &self.provider,
                        first_token,
                        self.first_byte,
                        self.idle,
                    ));
                }
                Ok(Some(Ok(bytes))) => {
                    let mut events = std::mem::take(&mut self.events);
                    self.parser.push(&bytes, &mut events);
                    for event in events.drain(..) {
                        self.event(event);
                    }
                    self.events = events;
                }
                Ok(Some(Err(e))) => {
                    let mut err = transport_error(&self.provider, &e);
                    err.message = format!("the stream broke off: {}", err.message);
                    self.fail(err);
                }
                Ok(None) => {
                    if let Some(event) = self.parser.finish() {
                        self.event(event);
                    }
                    if !self.finished {
                        self.fail(ProviderError::new(
                            &self.provider,
                            ProviderErrorKind::Transport,
                            "the upstream closed the stream before [DONE]",
                        ));
                    }
                }
            }
        }
    }

    fn fail(&mut self, err: ProviderError) {
        self.pending.push_back(Err(err));
        self.finished = true;
    }

    fn event(&mut self, event: SseEvent) {
        if self.finished {
            return; // anything after [DONE] or an error is ignored
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done();
            return;
        }
        if event.event.as_deref() == Some("error") {
            let err = match serde_json::from_str::<Value>(data) {
                Ok(v) => wire::in_band_error(&self.provider, &v),
                Err(_) => ProviderError::new(&self.provider, ProviderErrorKind::Server, data),
            };
            self.fail(err);
            return;
        }
        if data.is_empty() {
            return;
        }
        match wire::chunk(self.quirks, &self.provider, &self.upstream_model, data) {
            Err(err) => self.fail(err),
            Ok(parts) => {
                if parts.usage.is_some() {
                    self.usage = parts.usage;
                }
                if !self.annotations_sent && parts.annotations.is_some() {
                    self.annotations = parts.annotations;
                }
                let mut chunk = parts.chunk;
                if !chunk.choices.is_empty() {
                    if let Some(annotations) = self.annotations.take() {
                        chunk.choices[0].delta.annotations = Some(annotations);
                        self.annotations_sent = true;
                    }
                    self.envelope = Some(ChatChunk {
                        choices: Vec::new(),
                        ..chunk.clone()
                    });
                    self.pending.push_back(Ok(chunk));
                } else if self.envelope.is_none() {
                    self.envelope = Some(chunk);
                }
            }
        }
    }

    /// `[DONE]`: citations not yet delivered, then the usage chunk.
    fn done(&mut self) {
        self.finished = true;
        let envelope = self.envelope.take().unwrap_or_else(|| ChatChunk {
            id: String::new(),
            object: "chat.completion.chunk".into(),
            created: 0,
            model: self.upstream_model.clone(),
            choices: Vec::new(),
            usage: None,
            system_fingerprint: None,
        });
        if let Some(annotations) = self.annotations.take() {
            self.pending.push_back(Ok(ChatChunk {
                choices: vec![ChunkChoice {
                    index: 0,
                    delta: Delta {
                        annotations: Some(annotations),
                        ..Delta::default()
                    },
                    finish_reason: None,
                    logprobs: None,
                }],
                ..envelope.clone()
            }));
        }
        if let Some(usage) = self.usage.take() {
            self.pending.push_back(Ok(ChatChunk {
                usage: Some(usage),
                ..envelope
            }));
        }
    }
}
