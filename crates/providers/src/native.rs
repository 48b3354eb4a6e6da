//! Plumbing shared by the adapters that translate a provider's *native* API into OpenAI's
//! (Anthropic Messages, Cohere v2 Chat): one upstream endpoint with its client, headers and
//! timeouts ([`Endpoint`]), non-streaming calls, and the reading of a server-sent-events body
//! into [`ChatChunk`]s through a per-provider [`EventTranslator`].
//!
//! The guarantees of the OpenAI-compatible adapter hold here too:
//! - `stream` returns once the first chunk exists, so a failure before the first token (HTTP
//!   error, error event, timeout) is an `Err` of `stream` itself and the router can fail over;
//! - a body that ends before the provider's end-of-message event, a malformed event and an
//!   error event end the stream with an `Err` item: never a silent truncation;
//! - nothing is yielded after an `Err`.
//!
//! Usage as one final chunk without choices is the translators' duty: they see the provider's
//! end-of-message event and know where usage lives.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::Url;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::time::Instant;

use crate::http::{
    ERROR_BODY_LIMIT, Timeouts, build_client, status_error, stream_timeout, transport_error,
    truncate,
};
use crate::sse::{SseEvent, SseParser};
use crate::types::{ChatChunk, ChatRequest};
use crate::{ChunkStream, ProviderConfigError, ProviderError, ProviderErrorKind};

/// What an event did to the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// More events are expected.
    Continue,
    /// The provider's end-of-message event: the stream is complete.
    Done,
}

/// Translates one provider's stream events into OpenAI chunks. Implementations are pure state
/// machines (no I/O), unit-tested beside each adapter.
pub(crate) trait EventTranslator: Send + 'static {
    /// Translates one event, appending the chunks it produces to `out`. An `Err` ends the
    /// stream (after the chunks already in `out`).
    fn event(&mut self, event: &SseEvent, out: &mut Vec<ChatChunk>) -> Result<Flow, ProviderError>;

    /// Names the event that ends a complete stream, for the error when the body ends early.
    fn end_event(&self) -> &'static str;
}

/// One upstream: the base URL, the authentication and extra headers (values marked
/// sensitive), the timeouts and the pooled client.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) name: String,
    pub(crate) base_url: Url,
    headers: HeaderMap,
    pub(crate) timeouts: Timeouts,
    client: reqwest::Client,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header names only: values hold the key.
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("base_url", &self.base_url.as_str())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

/// What an [`Endpoint`] is built from.
pub(crate) struct EndpointConfig<'a> {
    pub(crate) name: String,
    pub(crate) base_url: &'a str,
    /// The authentication header; `{key}` in the value is replaced by the trimmed key.
    pub(crate) auth: (HeaderName, &'static str),
    pub(crate) api_key: &'a str,
    /// Headers the provider requires (a version header, for instance); extra headers from the
    /// configuration may override them.
    pub(crate) fixed: &'a [(HeaderName, &'static str)],
    pub(crate) extra_headers: &'a BTreeMap<String, String>,
    pub(crate) timeouts: Timeouts,
}

impl Endpoint {
    /// Validates the base URL, the key and the headers, and builds the HTTP client.
    pub(crate) fn new(config: EndpointConfig<'_>) -> Result<Self, ProviderConfigError> {
        let name = config.name;
        let base = config.base_url;
        let base_url = Url::parse(base.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| ProviderConfigError::InvalidUrl {
                provider: name.clone(),
                url: base.to_owned(),
            })?;
        let key = config.api_key.trim();
        if key.is_empty() {
            return Err(ProviderConfigError::Missing {
                provider: name,
                field: "api_key",
            });
        }
        let invalid_header = |header: &str| ProviderConfigError::InvalidHeader {
            provider: name.clone(),
            header: header.to_owned(),
        };
        let mut headers = HeaderMap::new();
        for (header, value) in config.fixed {
            headers.insert(header.clone(), HeaderValue::from_static(value));
        }
        for (header, value) in config.extra_headers {
            let header_name =
                HeaderName::from_bytes(header.as_bytes()).map_err(|_| invalid_header(header))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| invalid_header(header))?;
            value.set_sensitive(true);
            headers.insert(header_name, value);
        }
        let (auth_name, template) = config.auth;
        let mut auth_value = HeaderValue::from_str(&template.replace("{key}", key))
            .map_err(|_| invalid_header("api_key"))?;
        auth_value.set_sensitive(true);
        headers.insert(auth_name, auth_value);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let client =
            build_client(&config.timeouts).map_err(|reason| ProviderConfigError::Client {
                provider: name.clone(),
                reason,
            })?;
        Ok(Endpoint {
            name,
            base_url,
            headers,
            timeouts: config.timeouts,
            client,
        })
    }

    /// Returns the base URL with `segments` appended.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    fn post(&self, url: Url, body: &Value) -> reqwest::RequestBuilder {
        let body = serde_json::to_vec(body).unwrap_or_default();
        self.client
            .post(url)
            .headers(self.headers.clone())
            .body(body)
    }

    fn timeout_error(&self, message: String) -> ProviderError {
        ProviderError::new(&self.name, ProviderErrorKind::Timeout, message)
    }

    /// Sends a non-streaming request and returns the body of a successful answer.
    pub(crate) async fn call(&self, url: Url, body: &Value) -> Result<Bytes, ProviderError> {
        let response = self
            .post(url, body)
            .timeout(self.timeouts.request)
            .send()
            .await
            .map_err(|e| transport_error(&self.name, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(&self.name, &e))?;
        if !status.is_success() {
            let body = &bytes[..bytes.len().min(ERROR_BODY_LIMIT)];
            return Err(status_error(&self.name, status, &headers, body));
        }
        Ok(bytes)
    }

    /// Sends a streaming request and returns the chunks `translator` makes of the events, once
    /// the first chunk exists (see the module documentation). `in_band_error` classifies a JSON
    /// error body answered with status 200 instead of a stream.
    pub(crate) async fn stream(
        &self,
        url: Url,
        body: &Value,
        translator: impl EventTranslator,
        in_band_error: fn(&str, &Value) -> Option<ProviderError>,
    ) -> Result<ChunkStream, ProviderError> {
        let first_byte = self.timeouts.first_byte;
        let deadline = Instant::now() + first_byte;
        let request = self
            .post(url, body)
            .header(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(transport_error(&self.name, &e)),
            Err(_) => {
                return Err(
                    self.timeout_error(format!("no response within {} ms", first_byte.as_millis()))
                );
            }
        };
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            let body = error_body(response, deadline).await;
            return Err(status_error(&self.name, status, &headers, &body));
        }
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            // A JSON answer to a streaming request is an error in disguise or a server that
            // ignored `stream`: neither is a stream.
            let body = error_body(response, deadline).await;
            let parsed = serde_json::from_slice::<Value>(&body).ok();
            return Err(parsed
                .as_ref()
                .and_then(|v| in_band_error(&self.name, v))
                .unwrap_or_else(|| {
                    ProviderError::new(
                        &self.name,
                        ProviderErrorKind::InvalidResponse,
                        format!(
                            "expected an event stream, got JSON: {}",
                            truncate(&String::from_utf8_lossy(&body), 300)
                        ),
                    )
                }));
        }

        let mut reader = EventReader {
            provider: self.name.clone(),
            body: Box::pin(response.bytes_stream()),
            parser: SseParser::new(),
            events: Vec::new(),
            chunks: Vec::new(),
            pending: VecDeque::new(),
            translator,
            first_deadline: Some(deadline),
            first_byte,
            idle: self.timeouts.idle,
            finished: false,
        };
        let first = match reader.next_item().await {
            None => return Ok(Box::pin(futures::stream::empty())),
            Some(Err(e)) => return Err(e),
            Some(Ok(chunk)) => chunk,
        };
        let rest = futures::stream::unfold(reader, |mut reader| async move {
            reader.next_item().await.map(|item| (item, reader))
        });
        Ok(Box::pin(
            futures::stream::once(async move { Ok(first) }).chain(rest),
        ))
    }
}

/// Reads at most [`ERROR_BODY_LIMIT`] bytes of a body, before `deadline`.
async fn error_body(response: reqwest::Response, deadline: Instant) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while body.len() < ERROR_BODY_LIMIT {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(bytes))) => body.extend_from_slice(&bytes),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    body
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// The state of one stream being read.
struct EventReader<T> {
    provider: String,
    body: ByteStream,
    parser: SseParser,
    /// Scratch space for the events of one piece of the body.
    events: Vec<SseEvent>,
    /// Scratch space for the chunks of one event.
    chunks: Vec<ChatChunk>,
    pending: VecDeque<Result<ChatChunk, ProviderError>>,
    translator: T,
    /// Until the first item: when the first-token budget runs out.
    first_deadline: Option<Instant>,
    first_byte: Duration,
    idle: Duration,
    /// No more reading: the end event, an error, or the end of the body.
    finished: bool,
}

impl<T: EventTranslator> EventReader<T> {
    /// Returns the next item, `None` at the end.
    async fn next_item(&mut self) -> Option<Result<ChatChunk, ProviderError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                if item.is_err() {
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
                        self.event(&event);
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
                        self.event(&event);
                    }
                    if !self.finished {
                        let end = self.translator.end_event();
                        self.fail(ProviderError::new(
                            &self.provider,
                            ProviderErrorKind::Transport,
                            format!("the upstream closed the stream before {end}"),
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

    fn event(&mut self, event: &SseEvent) {
        if self.finished {
            return; // anything after the end event or an error is ignored
        }
        let flow = self.translator.event(event, &mut self.chunks);
        self.pending.extend(self.chunks.drain(..).map(Ok));
        match flow {
            Ok(Flow::Continue) => {}
            Ok(Flow::Done) => self.finished = true,
            Err(err) => self.fail(err),
        }
    }
}

/// Returns an empty chunk envelope (no choices, no usage).
pub(crate) fn chunk_envelope(id: &str, model: &str) -> ChatChunk {
    ChatChunk {
        id: id.to_owned(),
        object: "chat.completion.chunk".into(),
        created: 0,
        model: model.to_owned(),
        choices: Vec::new(),
        usage: None,
        system_fingerprint: None,
    }
}

/// Returns the error for an upstream answer that could not be understood.
pub(crate) fn invalid(provider: &str, message: String) -> ProviderError {
    ProviderError::new(provider, ProviderErrorKind::InvalidResponse, message)
}

/// Returns the error for a request the provider cannot serve.
pub(crate) fn unsupported(provider: &str, message: String) -> ProviderError {
    ProviderError::new(provider, ProviderErrorKind::Unsupported, message)
}

/// Returns the error for a request that cannot be translated as given.
pub(crate) fn bad_request(provider: &str, message: String) -> ProviderError {
    ProviderError::new(provider, ProviderErrorKind::BadRequest, message)
}

/// Parses an answer body as JSON, the failure an invalid response.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    provider: &str,
    body: &[u8],
) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| {
        invalid(
            provider,
            format!(
                "unexpected answer ({e}): {}",
                truncate(&String::from_utf8_lossy(body), 300)
            ),
        )
    })
}

/// A data URL split into its media type and base64 payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DataUrl<'a> {
    pub(crate) media_type: &'a str,
    pub(crate) data: &'a str,
}

/// Parses `data:<media type>[;params];base64,<data>`; `None` for anything else (including
/// data URLs that are not base64).
pub(crate) fn parse_data_url(url: &str) -> Option<DataUrl<'_>> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mut parts = meta.split(';');
    let media_type = parts.next()?.trim();
    if !parts.any(|p| p.trim().eq_ignore_ascii_case("base64")) || media_type.is_empty() {
        return None;
    }
    Some(DataUrl { media_type, data })
}

/// Fails fast on options these translated APIs cannot honour: `n > 1`, log probabilities and
/// audio output (shared by the Anthropic and Cohere adapters).
pub(crate) fn reject_unsupported(provider: &str, req: &ChatRequest) -> Result<(), ProviderError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(unsupported(
            provider,
            format!("{provider} does not support n > 1"),
        ));
    }
    let truthy = |field: &str| {
        !matches!(
            req.extra.get(field),
            None | Some(Value::Null | Value::Bool(false))
        )
    };
    if truthy("logprobs") || truthy("top_logprobs") {
        return Err(unsupported(
            provider,
            format!("{provider} does not return log probabilities"),
        ));
    }
    let wants_audio = truthy("audio")
        || req
            .extra
            .get("modalities")
            .and_then(Value::as_array)
            .is_some_and(|m| m.iter().any(|v| v.as_str() == Some("audio")));
    if wants_audio {
        return Err(unsupported(
            provider,
            format!("{provider} does not produce audio"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_split_into_media_type_and_payload() {
        assert_eq!(
            parse_data_url("data:image/png;base64,iVBORw0KGgo="),
            Some(DataUrl {
                media_type: "image/png",
                data: "iVBORw0KGgo="
            })
        );
        assert_eq!(
            parse_data_url("data:application/pdf;name=x.pdf;base64,JVBE"),
            Some(DataUrl {
                media_type: "application/pdf",
                data: "JVBE"
            })
        );
        assert_eq!(parse_data_url("data:text/plain,hello"), None);
        assert_eq!(parse_data_url("https://example.com/cat.png"), None);
        assert_eq!(parse_data_url("data:;base64,AAAA"), None);
    }
}
