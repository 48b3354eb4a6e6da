//! A fake upstream: a real axum server on 127.0.0.1:0 that records every request it receives
//! and answers with whatever the test scripted, byte for byte (JSON bodies, SSE streams cut
//! at chosen points, stalls, connection resets).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use futures::StreamExt;
use serde_json::Value;
use switchyard_providers::{OpenAiCompatConfig, OpenAiCompatProvider, ProviderKind, Timeouts};

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    /// Path and query, e.g. `/v1/chat/completions`.
    pub target: String,
    pub headers: HeaderMap,
    /// The JSON body (`Null` when the body was not JSON).
    pub body: Value,
    /// The body as received (signatures cover bytes, not JSON values).
    pub raw: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A piece of a scripted body.
#[derive(Debug, Clone)]
pub enum Piece {
    Bytes(Vec<u8>),
    Sleep(Duration),
    /// Abort the connection mid-body.
    Reset,
}

/// What the upstream answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete body with a status, a content type and extra headers.
    Full {
        status: u16,
        content_type: &'static str,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// A `text/event-stream` body delivered piece by piece.
    Stream(Vec<Piece>),
    /// A body of another streaming media type (AWS event stream, ...) delivered piece by piece.
    StreamOf(&'static str, Vec<Piece>),
    /// Headers only after this long (then a complete JSON answer).
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::Full {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    pub fn with_header(self, name: &'static str, value: &str) -> Reply {
        match self {
            Reply::Full {
                status,
                content_type,
                mut headers,
                body,
            } => {
                headers.push((name, value.to_owned()));
                Reply::Full {
                    status,
                    content_type,
                    headers,
                    body,
                }
            }
            other => other,
        }
    }

    /// An SSE body from raw text, written in pieces of `every` bytes with a pause between, so
    /// the client reads it cut at arbitrary points (inside lines, inside UTF-8 characters).
    pub fn sse_cut(text: &str, every: usize) -> Reply {
        let mut pieces = Vec::new();
        for piece in text.as_bytes().chunks(every.max(1)) {
            pieces.push(Piece::Bytes(piece.to_vec()));
            pieces.push(Piece::Sleep(Duration::from_millis(1)));
        }
        Reply::Stream(pieces)
    }

    /// An SSE body: each JSON value as a `data:` event, then `[DONE]` when `done`.
    pub fn sse(events: &[Value], done: bool) -> Reply {
        let mut text = String::new();
        for e in events {
            text.push_str(&format!("data: {e}\n\n"));
        }
        if done {
            text.push_str("data: [DONE]\n\n");
        }
        Reply::Stream(vec![Piece::Bytes(text.into_bytes())])
    }
}

type Script = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    script: Script,
}

/// A running fake upstream.
pub struct Upstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Upstream {
    /// Starts a server answering every request with `script(request)`.
    pub async fn start(
        script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> anyhow::Result<Upstream> {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            script: Arc::new(script),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("failed to bind the fake upstream")?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Upstream { addr, shared })
    }

    /// Starts a server that always gives the same answer.
    pub async fn always(reply: Reply) -> anyhow::Result<Upstream> {
        Upstream::start(move |_| reply.clone()).await
    }

    /// Returns `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Returns the requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Returns the only request received.
    pub fn only_request(&self) -> anyhow::Result<Recorded> {
        let mut all = self.requests();
        anyhow::ensure!(all.len() == 1, "expected one request, got {}", all.len());
        all.pop().context("no request")
    }

    /// Returns a provider of `kind` pointed at this server (`base_path` appended), key `key`.
    pub fn provider(
        &self,
        kind: ProviderKind,
        base_path: &str,
        key: &str,
    ) -> anyhow::Result<OpenAiCompatProvider> {
        let mut config = OpenAiCompatConfig::new(kind, key);
        config.base_url = Some(self.url(base_path));
        config.timeouts = short_timeouts();
        Ok(OpenAiCompatProvider::new(config)?)
    }
}

/// Timeouts short enough for tests that wait for them.
pub fn short_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(5),
        first_byte: Duration::from_secs(5),
        idle: Duration::from_secs(5),
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method,
        target: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
    };
    let reply = (shared.script)(&recorded);
    if let Ok(mut requests) = shared.requests.lock() {
        requests.push(recorded);
    }
    respond(reply).await
}

async fn respond(reply: Reply) -> Response {
    match reply {
        Reply::Full {
            status,
            content_type,
            headers,
            body,
        } => {
            let mut builder = Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
                .header("content-type", content_type);
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
            builder
                .body(Body::from(body))
                .unwrap_or_else(|_| Response::new(Body::empty()))
        }
        Reply::Delayed(delay, inner) => {
            tokio::time::sleep(delay).await;
            Box::pin(respond(*inner)).await
        }
        Reply::Stream(pieces) => {
            Box::pin(respond(Reply::StreamOf("text/event-stream", pieces))).await
        }
        Reply::StreamOf(content_type, pieces) => {
            let body = futures::stream::iter(pieces).filter_map(|piece| async move {
                match piece {
                    Piece::Bytes(b) => Some(Ok::<_, std::io::Error>(Bytes::from(b))),
                    Piece::Sleep(d) => {
                        tokio::time::sleep(d).await;
                        None
                    }
                    Piece::Reset => Some(Err(std::io::Error::other("reset by the test"))),
                }
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", content_type)
                .body(Body::from_stream(body))
                .unwrap_or_else(|_| Response::new(Body::empty()))
        }
    }
}
