//! A judge stand-in speaking OpenAI's chat wire format on 127.0.0.1:0, events built from the
//! frozen schema samples, and a driver that folds events through the judge into a real
//! embedded store.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "fixtures that cannot be built leave no test to run"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use switchyard_config::{Config, JudgeConfig};
use switchyard_events::{
    Codec, DecisionId, Event, EventId, JudgeScored, ModelName, OrgId, PartitionKey, RequestId,
    ResponseCompleted, ResponseStatus, RouteName, Timestamp,
};
use switchyard_judge::state::TABLES;
use switchyard_judge::{JudgeModel, JudgeProcessor};
use switchyard_processor::{ErrorClass, Inline, ProcessError};
use switchyard_providers::{ModelInfo, ProviderConfig};
use switchyard_store::{EmbeddedStore, StateStore};

/// 2025-11-24T16:00:00.123456Z, the samples' event time.
pub const T0: i64 = 1_764_000_000_123_456;
/// One minute in microseconds.
pub const MINUTE: i64 = 60_000_000;
/// One day in microseconds.
pub const DAY: i64 = 86_400_000_000;

/// What the stand-in answers to one call: a status and, for 200, the assistant's text.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this assistant text.
    Text(String),
    /// An error status with an OpenAI-shaped error body.
    Status(u16),
}

impl Answer {
    /// 200 with `{"score": n, "reason": ...}`.
    pub fn score(n: i64) -> Answer {
        Answer::Text(format!("{{\"score\": {n}, \"reason\": \"stand-in\"}}"))
    }

    /// 200 with text that is not a grade.
    pub fn prose() -> Answer {
        Answer::Text("I think the answer is quite good overall.".into())
    }
}

type Script = Arc<dyn Fn(usize, &Value) -> Answer + Send + Sync>;

#[derive(Clone)]
struct Shared {
    script: Script,
    seen: Arc<Mutex<Vec<Value>>>,
}

/// A local HTTP server that answers `POST /v1/chat/completions` like OpenAI, as scripted.
pub struct StandIn {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Value>>>,
    _server: tokio::task::JoinHandle<()>,
}

/// Usage reported by the stand-in on every answer: 1000 input tokens, 0 output.
pub const PROMPT_TOKENS: u64 = 1000;

async fn chat(State(shared): State<Shared>, body: axum::body::Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let call = {
        let mut seen = shared.seen.lock().expect("seen");
        seen.push(request.clone());
        seen.len() - 1
    };
    match (shared.script)(call, &request) {
        Answer::Text(text) => axum::Json(json!({
            "id": format!("chatcmpl-standin-{call}"),
            "object": "chat.completion",
            "created": 1_764_000_000,
            "model": request["model"],
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": null},
                "finish_reason": "stop",
                "logprobs": null
            }],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 0, "total_tokens": PROMPT_TOKENS}
        }))
        .into_response(),
        Answer::Status(status) => (
            StatusCode::from_u16(status).expect("status"),
            axum::Json(json!({"error": {"message": "stand-in failure", "type": "server_error", "code": null}})),
        )
            .into_response(),
    }
}

impl StandIn {
    /// Starts a stand-in answering call `n` (from 0) with `script(n, request body)`.
    pub async fn start(
        script: impl Fn(usize, &Value) -> Answer + Send + Sync + 'static,
    ) -> Result<Self> {
        let shared = Shared {
            script: Arc::new(script),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let seen = Arc::clone(&shared.seen);
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            seen,
            _server: server,
        })
    }

    /// Returns the request bodies received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.seen.lock().expect("seen").clone()
    }

    /// Returns the judge model `standin/grader-1` served by this stand-in through an
    /// `openai`-kind provider, priced at `usd_per_mtok_input` per 1M input tokens (output
    /// free), `json_schema` as given.
    pub fn judge(&self, usd_per_mtok_input: Option<f64>, json_schema: bool) -> Result<JudgeModel> {
        let config: ProviderConfig = toml::from_str(&format!(
            "kind = \"openai\"\napi_key = \"sk-test\"\nbase_url = \"http://{}/v1\"\ntimeouts = {{ request_ms = 5000 }}\n",
            self.addr
        ))?;
        let provider = config.build_named("standin")?;
        let info = match usd_per_mtok_input {
            Some(price) => Some(toml::from_str::<ModelInfo>(&format!(
                "id = \"standin/grader-1\"\ninput_per_mtok = {price:?}\noutput_per_mtok = 0.0\n\
                 source = \"test\"\nas_of = \"2026-11-24\"\ncontext_window = 128000\n\
                 max_output = 4096\njson_schema = {json_schema}\n"
            ))?),
            None => None,
        };
        Ok(JudgeModel::new("standin/grader-1", provider, info)?)
    }
}

/// The default `[judge]` with `sample_rate`, the stand-in's model and no cap to speak of.
pub fn config(sample_rate: f64) -> JudgeConfig {
    let dir = std::env::temp_dir();
    let mut config = Config::defaults_in(dir).expect("defaults").judge;
    config.sample_rate = sample_rate;
    config.model = "standin/grader-1".into();
    config.daily_cap_usd = 1000.0;
    config
}

fn sample(hex_text: &str) -> Event {
    let bytes = hex::decode(hex_text.trim()).expect("sample hex");
    Codec::new()
        .expect("codec")
        .decode(&bytes)
        .expect("sample decodes")
}

/// A deterministic event id per label.
pub fn event_id(label: &str) -> EventId {
    let base: EventId = "019ab5d3-6e80-7000-8000-000000000007"
        .parse()
        .expect("event id");
    base.derive(label)
}

/// A request of `org` on `route` with `prompt` recorded, at `time`, outside any session.
pub fn request(org: &str, id: &str, route: &str, prompt: Option<&str>, time: i64) -> Event {
    let Event::RequestReceived(mut event) = sample(include_str!(
        "../../../../schemas/samples/request_received/v2.bin.hex"
    )) else {
        panic!("not a RequestReceived sample");
    };
    let request_id = RequestId::new(id);
    event.envelope.org = OrgId::new(org);
    event.envelope.event_id = event_id(&format!("request/{org}/{id}"));
    event.envelope.event_time = Timestamp::from_micros(time);
    event.envelope.partition_key = PartitionKey::session_or_request(None, &request_id);
    event.request_id = request_id;
    event.session_id = None;
    event.route = Some(RouteName::new(route));
    event.prompt_text = prompt.map(str::to_owned);
    Event::RequestReceived(event)
}

/// The response to request `id`, served by `model`, with `completion` recorded, at `time`.
pub fn response(
    org: &str,
    id: &str,
    model: &str,
    status: ResponseStatus,
    completion: Option<&str>,
    time: i64,
) -> ResponseCompleted {
    let Event::ResponseCompleted(mut event) = sample(include_str!(
        "../../../../schemas/samples/response_completed/v2.bin.hex"
    )) else {
        panic!("not a ResponseCompleted sample");
    };
    let request_id = RequestId::new(id);
    event.envelope.org = OrgId::new(org);
    event.envelope.event_id = event_id(&format!("response/{org}/{id}"));
    event.envelope.event_time = Timestamp::from_micros(time);
    event.envelope.partition_key = PartitionKey::session_or_request(None, &request_id);
    event.request_id = request_id;
    event.decision_id = DecisionId::new(format!("dec-{id}"));
    event.session_id = None;
    event.served_model = ModelName::new(model);
    event.status = status;
    event.completion_text = completion.map(str::to_owned);
    event.shadow = false;
    event
}

/// The shadow mirror of request `id`, served by `model`, as ingress records it.
pub fn mirror(org: &str, id: &str, model: &str, completion: Option<&str>, time: i64) -> Event {
    let mut event = response(org, id, model, ResponseStatus::Ok, completion, time);
    event.request_id = ResponseCompleted::mirror_request_id(&RequestId::new(id));
    event.envelope.event_id = event_id(&format!("mirror/{org}/{id}"));
    event.envelope.partition_key = PartitionKey::session_or_request(None, &event.request_id);
    event.shadow = true;
    Event::ResponseCompleted(event)
}

/// An ok response with a completion.
pub fn ok(org: &str, id: &str, model: &str, time: i64) -> Event {
    Event::ResponseCompleted(response(
        org,
        id,
        model,
        ResponseStatus::Ok,
        Some("Paris is the capital of France."),
        time,
    ))
}

/// Drives a judge over a fresh embedded store, event by event, as the runtime would.
pub struct Driver {
    pub inline: Inline<EmbeddedStore>,
    pub judge: JudgeProcessor,
}

impl Driver {
    pub fn new(config: JudgeConfig, judge: JudgeModel) -> Result<Self> {
        Ok(Self {
            inline: Inline::new(EmbeddedStore::temporary()?),
            judge: JudgeProcessor::new(config, judge)?,
        })
    }

    /// Feeds one event; returns the judgements it emitted. Transient failures are errors.
    pub async fn step(&mut self, event: &Event) -> Result<Vec<JudgeScored>> {
        let outputs = self
            .inline
            .step(&self.judge, event)
            .await
            .context("judge step")?;
        outputs
            .into_iter()
            .map(|event| match event {
                Event::JudgeScored(judged) => Ok(judged),
                other => anyhow::bail!("emitted something other than JudgeScored: {other:?}"),
            })
            .collect()
    }

    /// Feeds one event expecting a transient failure (nothing applied).
    pub async fn step_transient(&mut self, event: &Event) -> Result<()> {
        match self.inline.step(&self.judge, event).await {
            Err(e @ ProcessError::Transient(_)) => {
                anyhow::ensure!(e.class() == ErrorClass::Transient);
                Ok(())
            }
            Err(e) => anyhow::bail!("expected a transient failure, got {e}"),
            Ok(out) => anyhow::bail!("expected a transient failure, got {out:?}"),
        }
    }

    /// Feeds every event; returns every judgement.
    pub async fn run(&mut self, events: &[Event]) -> Result<Vec<JudgeScored>> {
        let mut all = Vec::new();
        for event in events {
            all.extend(self.step(event).await?);
        }
        Ok(all)
    }

    /// Every entry of every table of the judge.
    pub async fn dump(&self) -> Result<BTreeMap<String, usize>> {
        let mut out = BTreeMap::new();
        for table in TABLES {
            out.insert(
                table.name().to_owned(),
                self.inline
                    .store()
                    .scan_prefix(table, b"", None, usize::MAX)
                    .await?
                    .len(),
            );
        }
        Ok(out)
    }
}
