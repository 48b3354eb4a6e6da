//! The exported tables: one row per event, its Arrow schema, and where it is partitioned.
//!
//! A row is built from one event alone (no joins), so a replay rebuilds the same rows. Rows are
//! staged as JSON objects whose keys are the table's column names; the writer decodes them into
//! Arrow with the table's schema (`arrow::json`), so the schema below is the one contract between
//! the two.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Serialize;
use switchyard_events::{
    Event, FeedbackSubmitted, JudgeOutcome, JudgeScored, RequestReceived, ResponseCompleted,
    RouteDecided, Timestamp, Topic,
};

/// An exported table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SinkTable {
    /// `RouteDecided`: one row per routing decision, the main trace fields flat plus the whole
    /// trace as JSON.
    Decisions,
    /// `RequestReceived`: request metadata (prompt text only for opted-in orgs).
    Requests,
    /// `ResponseCompleted`: response metadata (completion text only for opted-in orgs).
    Responses,
    /// `FeedbackSubmitted`.
    Feedback,
    /// `JudgeScored`.
    JudgeScores,
}

impl SinkTable {
    /// Every table.
    pub const ALL: [SinkTable; 5] = [
        SinkTable::Decisions,
        SinkTable::Requests,
        SinkTable::Responses,
        SinkTable::Feedback,
        SinkTable::JudgeScores,
    ];

    /// The table's name: its directory and its SQL name.
    pub const fn name(self) -> &'static str {
        match self {
            SinkTable::Decisions => "decisions",
            SinkTable::Requests => "requests",
            SinkTable::Responses => "responses",
            SinkTable::Feedback => "feedback",
            SinkTable::JudgeScores => "judge_scores",
        }
    }

    /// The table for a name.
    pub fn from_name(name: &str) -> Option<SinkTable> {
        SinkTable::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The topic the table is read from.
    pub const fn topic(self) -> Topic {
        match self {
            SinkTable::Decisions => Topic::Decisions,
            SinkTable::Requests => Topic::Requests,
            SinkTable::Responses => Topic::Responses,
            SinkTable::Feedback => Topic::Feedback,
            SinkTable::JudgeScores => Topic::JudgeScores,
        }
    }

    /// The table's Arrow schema (the columns of its Parquet files).
    pub fn schema(self) -> SchemaRef {
        static SCHEMAS: LazyLock<[SchemaRef; 5]> = LazyLock::new(|| {
            SinkTable::ALL.map(|t| Arc::new(Schema::new(columns(t))) as SchemaRef)
        });
        match self {
            SinkTable::Decisions => Arc::clone(&SCHEMAS[0]),
            SinkTable::Requests => Arc::clone(&SCHEMAS[1]),
            SinkTable::Responses => Arc::clone(&SCHEMAS[2]),
            SinkTable::Feedback => Arc::clone(&SCHEMAS[3]),
            SinkTable::JudgeScores => Arc::clone(&SCHEMAS[4]),
        }
    }
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}
fn int(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int64, nullable)
}
fn float(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Float64, nullable)
}
fn boolean(name: &str) -> Field {
    Field::new(name, DataType::Boolean, false)
}

/// The columns every table starts with.
fn common() -> Vec<Field> {
    vec![
        utf8("event_id", false),
        utf8("org", false),
        Field::new("date", DataType::Date32, false),
        Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]
}

fn columns(table: SinkTable) -> Vec<Field> {
    let mut fields = common();
    fields.extend(match table {
        SinkTable::Decisions => vec![
            utf8("decision_id", false),
            utf8("request_id", false),
            utf8("session_id", true),
            utf8("route", false),
            utf8("mode", false),
            utf8("chosen_model", false),
            utf8("baseline_model", false),
            utf8("served_model", false),
            utf8("shadow_model", true),
            utf8("reason", false),
            int("phase", false),
            float("confidence", false),
            int("routing_table_version", false),
            int("route_version", false),
            int("canary_percent", true),
            float("estimated_cost_usd", true),
            int("input_tokens", false),
            int("candidate_count", false),
            utf8("pinned_model", true),
            boolean("mirrored"),
            utf8("signing_key_id", false),
            utf8("trace_json", false),
        ],
        SinkTable::Requests => vec![
            utf8("request_id", false),
            utf8("session_id", true),
            utf8("route", true),
            utf8("api_key_id", false),
            utf8("requested_model", false),
            boolean("stream"),
            int("message_count", false),
            int("input_chars", false),
            int("estimated_input_tokens", false),
            boolean("has_tools"),
            boolean("wants_json_schema"),
            boolean("has_images"),
            int("max_tokens", true),
            utf8("language", true),
            utf8("client", true),
            utf8("metadata_json", false),
            utf8("prompt_text", true),
        ],
        SinkTable::Responses => vec![
            utf8("request_id", false),
            utf8("decision_id", false),
            utf8("session_id", true),
            utf8("served_model", false),
            utf8("provider", false),
            utf8("status", false),
            utf8("finish_reason", true),
            int("prompt_tokens", false),
            int("completion_tokens", false),
            int("cached_tokens", false),
            int("reasoning_tokens", false),
            int("total_tokens", false),
            float("cost_usd", true),
            int("latency_ms", false),
            int("ttft_ms", true),
            int("attempt_count", false),
            utf8("error_code", true),
            boolean("shadow"),
            utf8("completion_text", true),
        ],
        SinkTable::Feedback => vec![
            utf8("feedback_id", false),
            utf8("target_kind", false),
            utf8("request_id", true),
            utf8("session_id", true),
            utf8("source", false),
            float("raw_score", false),
            utf8("raw_scale", false),
            float("normalized_score", false),
            utf8("route", true),
            utf8("model", true),
            utf8("derived_from", true),
            utf8("labels_json", false),
            utf8("comment", true),
        ],
        SinkTable::JudgeScores => vec![
            utf8("judgement_id", false),
            utf8("request_id", false),
            utf8("decision_id", false),
            utf8("route", false),
            utf8("model", false),
            utf8("judge_model", false),
            utf8("outcome", false),
            float("score", true),
            utf8("failure_reason", true),
            utf8("rubric_version", false),
            int("attempts", false),
            float("cost_usd", true),
        ],
    });
    fields
}

/// One staged row: where it goes and its JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedRow {
    /// The table.
    pub table: SinkTable,
    /// The org (partition directory `org=`).
    pub org: String,
    /// The UTC date of the event time (partition directory `date=`), `YYYY-MM-DD`.
    pub date: String,
    /// The event time, microseconds since the epoch.
    pub event_time_us: i64,
    /// The row as one JSON object (no newline).
    pub json: Vec<u8>,
}

/// Builds the row for an event, or `None` for an event no table holds. `with_text` says whether
/// the org's prompt, completion and comment text may be exported.
pub fn row_of(event: &Event, with_text: bool) -> Result<Option<StagedRow>, serde_json::Error> {
    let envelope = event.envelope();
    let micros = envelope.event_time.as_micros();
    let date = utc_date(envelope.event_time);
    let head = Head {
        event_id: envelope.event_id.to_string(),
        org: envelope.org.as_str(),
        date: date.clone(),
        event_time: micros,
    };
    let (table, json) = match event {
        Event::RouteDecided(e) => (SinkTable::Decisions, decision_row(head, e)?),
        Event::RequestReceived(e) => (SinkTable::Requests, request_row(head, e, with_text)?),
        Event::ResponseCompleted(e) => (SinkTable::Responses, response_row(head, e, with_text)?),
        Event::FeedbackSubmitted(e) => (SinkTable::Feedback, feedback_row(head, e, with_text)?),
        Event::JudgeScored(e) => (SinkTable::JudgeScores, judge_row(head, e)?),
        _ => return Ok(None),
    };
    Ok(Some(StagedRow {
        table,
        org: envelope.org.as_str().to_owned(),
        date,
        event_time_us: micros,
        json,
    }))
}

/// Days since the epoch to `YYYY-MM-DD` (proleptic Gregorian, UTC).
pub fn utc_date(time: Timestamp) -> String {
    let days = time.as_micros().div_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[derive(Serialize)]
struct Head<'a> {
    event_id: String,
    org: &'a str,
    date: String,
    /// Microseconds: arrow's JSON decoder reads a number as the timestamp's unit.
    event_time: i64,
}

#[derive(Serialize)]
struct DecisionRow<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    decision_id: &'a str,
    request_id: &'a str,
    session_id: Option<&'a str>,
    route: &'a str,
    mode: &'a str,
    chosen_model: &'a str,
    baseline_model: &'a str,
    served_model: &'a str,
    shadow_model: Option<&'a str>,
    reason: &'a str,
    phase: u8,
    confidence: f64,
    routing_table_version: i64,
    route_version: i64,
    canary_percent: Option<u8>,
    estimated_cost_usd: Option<f64>,
    input_tokens: i64,
    candidate_count: usize,
    pinned_model: Option<&'a str>,
    mirrored: bool,
    signing_key_id: &'a str,
    trace_json: String,
}

fn decision_row(head: Head<'_>, e: &RouteDecided) -> Result<Vec<u8>, serde_json::Error> {
    let served_estimate = e
        .candidates
        .iter()
        .find(|c| c.model == e.served_model)
        .and_then(|c| c.estimated_cost_usd)
        .map(|usd| usd.get());
    serde_json::to_vec(&DecisionRow {
        head,
        decision_id: e.decision_id.as_str(),
        request_id: e.request_id.as_str(),
        session_id: e.session_id.as_ref().map(|s| s.as_str()),
        route: e.route.as_str(),
        mode: e.mode.as_str(),
        chosen_model: e.chosen_model.as_str(),
        baseline_model: e.baseline_model.as_str(),
        served_model: e.served_model.as_str(),
        shadow_model: e.shadow_model.as_ref().map(|m| m.as_str()),
        reason: &e.reason,
        phase: e.phase.get(),
        confidence: e.confidence.get(),
        routing_table_version: e.routing_table_version,
        route_version: e.route_version,
        canary_percent: e.canary_percent.map(|p| p.get()),
        estimated_cost_usd: served_estimate,
        input_tokens: e.features.input_tokens,
        candidate_count: e.candidates.len(),
        pinned_model: e.pin.as_ref().map(|p| p.model.as_str()),
        mirrored: e.mirrored,
        signing_key_id: &e.signing_key_id,
        trace_json: serde_json::to_string(e)?,
    })
}

#[derive(Serialize)]
struct RequestRow<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    request_id: &'a str,
    session_id: Option<&'a str>,
    route: Option<&'a str>,
    api_key_id: &'a str,
    requested_model: &'a str,
    stream: bool,
    message_count: i32,
    input_chars: i64,
    estimated_input_tokens: i64,
    has_tools: bool,
    wants_json_schema: bool,
    has_images: bool,
    max_tokens: Option<i64>,
    language: Option<&'a str>,
    client: Option<&'a str>,
    metadata_json: String,
    prompt_text: Option<&'a str>,
}

fn request_row(
    head: Head<'_>,
    e: &RequestReceived,
    with_text: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&RequestRow {
        head,
        request_id: e.request_id.as_str(),
        session_id: e.session_id.as_ref().map(|s| s.as_str()),
        route: e.route.as_ref().map(|r| r.as_str()),
        api_key_id: e.api_key_id.as_str(),
        requested_model: e.requested_model.as_str(),
        stream: e.stream,
        message_count: e.message_count,
        input_chars: e.input_chars,
        estimated_input_tokens: e.estimated_input_tokens,
        has_tools: e.has_tools,
        wants_json_schema: e.wants_json_schema,
        has_images: e.has_images,
        max_tokens: e.max_tokens,
        language: e.language.as_deref(),
        client: e.client.as_deref(),
        metadata_json: json_map(&e.metadata)?,
        prompt_text: e.prompt_text.as_deref().filter(|_| with_text),
    })
}

#[derive(Serialize)]
struct ResponseRow<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    request_id: &'a str,
    decision_id: &'a str,
    session_id: Option<&'a str>,
    served_model: &'a str,
    provider: &'a str,
    status: &'a str,
    finish_reason: Option<&'a str>,
    prompt_tokens: i64,
    completion_tokens: i64,
    cached_tokens: i64,
    reasoning_tokens: i64,
    total_tokens: i64,
    cost_usd: Option<f64>,
    latency_ms: i64,
    ttft_ms: Option<i64>,
    attempt_count: usize,
    error_code: Option<&'a str>,
    shadow: bool,
    completion_text: Option<&'a str>,
}

fn response_row(
    head: Head<'_>,
    e: &ResponseCompleted,
    with_text: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&ResponseRow {
        head,
        request_id: e.request_id.as_str(),
        decision_id: e.decision_id.as_str(),
        session_id: e.session_id.as_ref().map(|s| s.as_str()),
        served_model: e.served_model.as_str(),
        provider: e.provider.as_str(),
        status: e.status.as_str(),
        finish_reason: e.finish_reason.as_deref(),
        prompt_tokens: e.usage.prompt_tokens,
        completion_tokens: e.usage.completion_tokens,
        cached_tokens: e.usage.cached_tokens,
        reasoning_tokens: e.usage.reasoning_tokens,
        total_tokens: e.usage.total_tokens,
        cost_usd: e.cost_usd.map(|c| c.get()),
        latency_ms: e.latency_ms,
        ttft_ms: e.ttft_ms,
        attempt_count: e.attempts.len(),
        error_code: e.error_code.as_deref(),
        shadow: e.shadow,
        completion_text: e.completion_text.as_deref().filter(|_| with_text),
    })
}

#[derive(Serialize)]
struct FeedbackRow<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    feedback_id: &'a str,
    target_kind: String,
    request_id: Option<String>,
    session_id: Option<String>,
    source: &'a str,
    raw_score: f64,
    raw_scale: &'a str,
    normalized_score: f64,
    route: Option<&'a str>,
    model: Option<&'a str>,
    derived_from: Option<String>,
    labels_json: String,
    comment: Option<&'a str>,
}

fn feedback_row(
    head: Head<'_>,
    e: &FeedbackSubmitted,
    with_text: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    // Read through serde, so a target kind added to the events later lands as its `kind`.
    let target = serde_json::to_value(&e.target)?;
    let field = |name: &str| target.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    serde_json::to_vec(&FeedbackRow {
        head,
        feedback_id: e.feedback_id.as_str(),
        target_kind: field("kind").unwrap_or_default(),
        request_id: field("request_id"),
        session_id: field("session_id"),
        source: e.source.as_str(),
        raw_score: e.raw_score,
        raw_scale: e.raw_scale.as_str(),
        normalized_score: e.normalized_score.get(),
        route: e.route.as_ref().map(|r| r.as_str()),
        model: e.model.as_ref().map(|m| m.as_str()),
        derived_from: e.derived_from.as_ref().map(ToString::to_string),
        labels_json: json_map(&e.labels)?,
        comment: e.comment.as_deref().filter(|_| with_text),
    })
}

#[derive(Serialize)]
struct JudgeRow<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    judgement_id: &'a str,
    request_id: &'a str,
    decision_id: &'a str,
    route: &'a str,
    model: &'a str,
    judge_model: &'a str,
    outcome: &'a str,
    score: Option<f64>,
    failure_reason: Option<&'a str>,
    rubric_version: &'a str,
    attempts: i32,
    cost_usd: Option<f64>,
}

fn judge_row(head: Head<'_>, e: &JudgeScored) -> Result<Vec<u8>, serde_json::Error> {
    let (outcome, score, failure_reason) = match &e.outcome {
        JudgeOutcome::Scored { score } => ("scored", Some(score.get()), None),
        JudgeOutcome::Failed { reason } => ("failed", None, reason.as_deref()),
    };
    serde_json::to_vec(&JudgeRow {
        head,
        judgement_id: e.judgement_id.as_str(),
        request_id: e.request_id.as_str(),
        decision_id: e.decision_id.as_str(),
        route: e.route.as_str(),
        model: e.model.as_str(),
        judge_model: e.judge_model.as_str(),
        outcome,
        score,
        failure_reason,
        rubric_version: &e.rubric_version,
        attempts: e.attempts,
        cost_usd: e.cost_usd.map(|c| c.get()),
    })
}

fn json_map(map: &BTreeMap<String, String>) -> Result<String, serde_json::Error> {
    serde_json::to_string(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(utc_date(Timestamp::from_micros(0)), "1970-01-01");
        assert_eq!(utc_date(Timestamp::from_micros(-1)), "1969-12-31");
        // 2025-11-25T01:48:24Z
        assert_eq!(
            utc_date(Timestamp::from_millis(1_764_035_304_000)),
            "2025-11-25"
        );
        assert_eq!(
            utc_date(Timestamp::from_millis(951_782_400_000)),
            "2000-02-29"
        );
    }

    #[test]
    fn every_table_has_the_common_columns_first() {
        for table in SinkTable::ALL {
            let schema = table.schema();
            let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            assert_eq!(&names[..4], ["event_id", "org", "date", "event_time"]);
            assert_eq!(SinkTable::from_name(table.name()), Some(table));
        }
    }
}
