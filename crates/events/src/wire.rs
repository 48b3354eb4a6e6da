//! Conversion between the domain types and Avro generic values (`apache_avro::types::Value`).
//!
//! Records are written with fields in schema order and read by name (with a fast path for schema
//! order), so a resolved value from any older writer version maps onto today's types. Every value
//! that a domain type validates (scores, ids, percentages) is checked here, on the way in.

use std::collections::{BTreeMap, HashMap};

use apache_avro::types::Value;

use crate::avro_read::{AvroReader, ReadAvro, Reject};
use crate::avro_write::{WriteAvro, write_branch, write_int, write_str, write_symbol};

use crate::event::{
    ApiKeyCreated, ApiKeyRevoked, Attempt, Candidate, ConstraintCheck, Constraints,
    ConstraintsChanged, Envelope, Event, EventKind, Evidence, FeedbackSource, FeedbackSubmitted,
    JudgeOutcome, JudgeScored, KeyHash, KeyUsageReported, ModelStats, PinInfo, PinReason,
    RequestFeatures, RequestReceived, RequestedModel, ResponseCompleted, ResponseStatus,
    RouteConfigured, RouteDecided, RouteEntry, RouteMode, RoutePinned, RouteUnpinned,
    RoutingTableUpdated, ScoreWeights, SignalContribution, SignatureProof, SourceStats, Target,
    Usage,
};
use crate::ids::{
    ApiKeyId, DecisionId, EventId, FeedbackId, JudgementId, ModelName, OrgId, PartitionKey,
    ProviderName, RequestId, RouteName, SessionId, Timestamp, TraceId,
};
use crate::score::{Percent, Phase, RawScale, UnitScore, Usd};

/// A decoded datum that does not fit today's types: a wrong Avro type, or a value a domain type rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at `{path}`: {reason}")]
pub struct WireError {
    /// Dotted path of the offending field (e.g. `evidence.score_gap`), empty for the root.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl WireError {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            path: String::new(),
            reason: reason.into(),
        }
    }

    fn unexpected(expected: &str, found: &Value) -> Self {
        Self::new(format!("expected {expected}, found {}", value_kind(found)))
    }

    fn in_field(mut self, field: &str) -> Self {
        self.path = if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{field}.{}", self.path)
        };
        self
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Int(_) => "int",
        Value::Long(_) => "long",
        Value::Float(_) => "float",
        Value::Double(_) => "double",
        Value::Bytes(_) => "bytes",
        Value::String(_) => "string",
        Value::Enum(..) => "enum",
        Value::Union(..) => "union",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Record(_) => "record",
        Value::TimestampMicros(_) => "timestamp-micros",
        _ => "another avro type",
    }
}

/// Converts a domain value to an Avro value of its schema.
pub(crate) trait ToAvro {
    /// Returns the Avro value.
    fn to_avro(&self) -> Value;
}

/// Converts an Avro value (already resolved to today's schema) to a domain value.
pub(crate) trait FromAvro: Sized {
    /// Returns the domain value, or why the datum does not fit.
    fn from_avro(value: Value) -> Result<Self, WireError>;
}

// ---- primitives ------------------------------------------------------------------------------

impl ToAvro for String {
    fn to_avro(&self) -> Value {
        Value::String(self.clone())
    }
}

impl FromAvro for String {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        match value {
            Value::String(s) => Ok(s),
            other => Err(WireError::unexpected("string", &other)),
        }
    }
}

impl ToAvro for bool {
    fn to_avro(&self) -> Value {
        Value::Boolean(*self)
    }
}

impl FromAvro for bool {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        match value {
            Value::Boolean(b) => Ok(b),
            other => Err(WireError::unexpected("boolean", &other)),
        }
    }
}

impl ToAvro for i32 {
    fn to_avro(&self) -> Value {
        Value::Int(*self)
    }
}

impl FromAvro for i32 {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        match value {
            Value::Int(i) => Ok(i),
            other => Err(WireError::unexpected("int", &other)),
        }
    }
}

impl ToAvro for i64 {
    fn to_avro(&self) -> Value {
        Value::Long(*self)
    }
}

impl FromAvro for i64 {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        match value {
            Value::Long(i) => Ok(i),
            // Avro promotes int to long; a future writer may narrow a field to int.
            Value::Int(i) => Ok(i64::from(i)),
            other => Err(WireError::unexpected("long", &other)),
        }
    }
}

impl ToAvro for f64 {
    fn to_avro(&self) -> Value {
        Value::Double(*self)
    }
}

impl FromAvro for f64 {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        match value {
            Value::Double(d) => Ok(d),
            Value::Float(f) => Ok(f64::from(f)),
            other => Err(WireError::unexpected("double", &other)),
        }
    }
}

impl ToAvro for Timestamp {
    fn to_avro(&self) -> Value {
        Value::TimestampMicros(self.as_micros())
    }
}

impl FromAvro for Timestamp {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        match value {
            Value::TimestampMicros(t) | Value::Long(t) => Ok(Timestamp::from_micros(t)),
            other => Err(WireError::unexpected("timestamp-micros", &other)),
        }
    }
}

impl<T: ToAvro> ToAvro for Option<T> {
    fn to_avro(&self) -> Value {
        // Every nullable field is `["null", T]` with null first, so the branch index is fixed.
        match self {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(v) => Value::Union(1, Box::new(v.to_avro())),
        }
    }
}

impl<T: FromAvro> FromAvro for Option<T> {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        match value {
            Value::Union(0, inner) if matches!(*inner, Value::Null) => Ok(None),
            // Null is always branch 0; a null in another branch is apache-avro's marker for a
            // string cut short by the end of input.
            Value::Union(_, inner) if matches!(*inner, Value::Null) => {
                Err(WireError::new("truncated value"))
            }
            Value::Union(_, inner) => T::from_avro(*inner).map(Some),
            Value::Null => Ok(None),
            other => Err(WireError::unexpected("nullable union", &other)),
        }
    }
}

impl<T: ToAvro> ToAvro for Vec<T> {
    fn to_avro(&self) -> Value {
        Value::Array(self.iter().map(ToAvro::to_avro).collect())
    }
}

impl<T: FromAvro> FromAvro for Vec<T> {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        match value {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| T::from_avro(item).map_err(|e| e.in_field(&format!("[{i}]"))))
                .collect(),
            other => Err(WireError::unexpected("array", &other)),
        }
    }
}

impl<T: ToAvro> ToAvro for BTreeMap<String, T> {
    fn to_avro(&self) -> Value {
        let map: HashMap<String, Value> =
            self.iter().map(|(k, v)| (k.clone(), v.to_avro())).collect();
        Value::Map(map)
    }
}

impl<T: FromAvro> FromAvro for BTreeMap<String, T> {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        match value {
            Value::Map(entries) => entries
                .into_iter()
                .map(|(k, v)| match T::from_avro(v) {
                    Ok(v) => Ok((k, v)),
                    Err(e) => Err(e.in_field(&format!("[{k:?}]"))),
                })
                .collect(),
            other => Err(WireError::unexpected("map", &other)),
        }
    }
}

// ---- newtypes --------------------------------------------------------------------------------

/// Maps string-backed newtypes that accept any string.
macro_rules! string_newtype {
    ($($ty:ty),+) => {$(
        impl ToAvro for $ty {
            fn to_avro(&self) -> Value {
                Value::String(self.as_str().to_owned())
            }
        }
        impl FromAvro for $ty {
            fn from_avro(value: Value) -> Result<Self, WireError> {
                String::from_avro(value).map(<$ty>::from)
            }
        }
        impl WriteAvro for $ty {
            #[inline]
            fn write_avro(&self, out: &mut Vec<u8>) {
                write_str(out, self.as_str());
            }
        }
        impl ReadAvro for $ty {
            #[inline]
            fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
                String::read_avro(r).map(<$ty>::from)
            }
        }
    )+};
}

string_newtype!(
    OrgId,
    RequestId,
    SessionId,
    DecisionId,
    FeedbackId,
    JudgementId,
    ApiKeyId,
    RouteName,
    ModelName,
    ProviderName,
    TraceId,
    PartitionKey,
    RequestedModel
);

impl ToAvro for EventId {
    fn to_avro(&self) -> Value {
        Value::String(self.to_string())
    }
}

impl WriteAvro for EventId {
    fn write_avro(&self, out: &mut Vec<u8>) {
        // The same text as `Display` (hyphenated, lowercase), without a String.
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        write_str(out, self.as_uuid().hyphenated().encode_lower(&mut text));
    }
}

impl ReadAvro for EventId {
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        r.str()?.parse().map_err(|_| Reject)
    }
}

impl FromAvro for EventId {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        String::from_avro(value)?
            .parse()
            .map_err(|e: crate::ids::EventIdError| WireError::new(e.to_string()))
    }
}

impl ToAvro for KeyHash {
    fn to_avro(&self) -> Value {
        Value::String(self.as_str().to_owned())
    }
}

impl WriteAvro for KeyHash {
    fn write_avro(&self, out: &mut Vec<u8>) {
        write_str(out, self.as_str());
    }
}

impl ReadAvro for KeyHash {
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        KeyHash::try_from(String::read_avro(r)?).map_err(|_| Reject)
    }
}

impl FromAvro for KeyHash {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        KeyHash::try_from(String::from_avro(value)?).map_err(|e| WireError::new(e.to_string()))
    }
}

/// Maps validated `f64` newtypes.
macro_rules! f64_newtype {
    ($($ty:ty),+) => {$(
        impl ToAvro for $ty {
            fn to_avro(&self) -> Value {
                Value::Double(self.get())
            }
        }
        impl FromAvro for $ty {
            fn from_avro(value: Value) -> Result<Self, WireError> {
                <$ty>::new(f64::from_avro(value)?).map_err(|e| WireError::new(e.to_string()))
            }
        }
        impl WriteAvro for $ty {
            #[inline]
            fn write_avro(&self, out: &mut Vec<u8>) {
                self.get().write_avro(out);
            }
        }
        impl ReadAvro for $ty {
            #[inline]
            fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
                <$ty>::new(f64::read_avro(r)?).map_err(|_| Reject)
            }
        }
    )+};
}

f64_newtype!(UnitScore, Usd);

/// Maps validated small-integer newtypes (Avro `int`).
macro_rules! int_newtype {
    ($($ty:ty),+) => {$(
        impl ToAvro for $ty {
            fn to_avro(&self) -> Value {
                Value::Int(i32::from(self.get()))
            }
        }
        impl FromAvro for $ty {
            fn from_avro(value: Value) -> Result<Self, WireError> {
                <$ty>::try_from(i32::from_avro(value)?).map_err(|e| WireError::new(e.to_string()))
            }
        }
        impl WriteAvro for $ty {
            #[inline]
            fn write_avro(&self, out: &mut Vec<u8>) {
                write_int(out, i32::from(self.get()));
            }
        }
        impl ReadAvro for $ty {
            #[inline]
            fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
                <$ty>::try_from(r.int()?).map_err(|_| Reject)
            }
        }
    )+};
}

int_newtype!(Percent, Phase);

/// Maps fieldless enums to Avro enums (symbol index = position in `ALL`, which is schema order).
macro_rules! symbol_enum_wire {
    ($($ty:ty),+) => {$(
        impl ToAvro for $ty {
            fn to_avro(&self) -> Value {
                let index = <$ty>::ALL.iter().position(|s| s == self).unwrap_or_default();
                Value::Enum(u32::try_from(index).unwrap_or_default(), self.as_str().to_owned())
            }
        }
        impl FromAvro for $ty {
            fn from_avro(value: Value) -> Result<Self, WireError> {
                match value {
                    Value::Enum(_, symbol) | Value::String(symbol) => <$ty>::ALL
                        .iter()
                        .copied()
                        .find(|s| s.as_str() == symbol)
                        .ok_or_else(|| WireError::new(format!("unknown symbol `{symbol}`"))),
                    other => Err(WireError::unexpected("enum", &other)),
                }
            }
        }
        impl WriteAvro for $ty {
            #[inline]
            fn write_avro(&self, out: &mut Vec<u8>) {
                write_symbol(out, <$ty>::ALL, self);
            }
        }
        impl ReadAvro for $ty {
            #[inline]
            fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
                r.symbol(<$ty>::ALL)
            }
        }
    )+};
}

symbol_enum_wire!(ResponseStatus, RouteMode, FeedbackSource, PinReason);

impl ToAvro for RawScale {
    fn to_avro(&self) -> Value {
        let index = RawScale::ALL
            .iter()
            .position(|s| s == self)
            .unwrap_or_default();
        Value::Enum(
            u32::try_from(index).unwrap_or_default(),
            self.as_str().to_owned(),
        )
    }
}

impl WriteAvro for RawScale {
    fn write_avro(&self, out: &mut Vec<u8>) {
        write_symbol(out, &RawScale::ALL, self);
    }
}

impl ReadAvro for RawScale {
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        r.symbol(&RawScale::ALL)
    }
}

impl FromAvro for RawScale {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        match value {
            Value::Enum(_, symbol) | Value::String(symbol) => RawScale::ALL
                .iter()
                .copied()
                .find(|s| s.as_str() == symbol)
                .ok_or_else(|| WireError::new(format!("unknown symbol `{symbol}`"))),
            other => Err(WireError::unexpected("enum", &other)),
        }
    }
}

// ---- records ---------------------------------------------------------------------------------

/// The fields of a decoded record, taken by name.
struct Fields {
    in_order: std::vec::IntoIter<(String, Value)>,
    skipped: Vec<(String, Value)>,
}

impl Fields {
    fn new(value: Value) -> Result<Self, WireError> {
        match value {
            Value::Record(fields) => Ok(Self {
                in_order: fields.into_iter(),
                skipped: Vec::new(),
            }),
            other => Err(WireError::unexpected("record", &other)),
        }
    }

    fn raw(&mut self, name: &str) -> Result<Value, WireError> {
        // Fast path: a resolved value has its fields in reader-schema order, which is the order
        // fields are taken in.
        for (field, value) in self.in_order.by_ref() {
            if field == name {
                return Ok(value);
            }
            self.skipped.push((field, value));
        }
        match self.skipped.iter().position(|(field, _)| field == name) {
            Some(i) => Ok(self.skipped.swap_remove(i).1),
            None => Err(WireError::new("missing field").in_field(name)),
        }
    }

    fn take<T: FromAvro>(&mut self, name: &str) -> Result<T, WireError> {
        T::from_avro(self.raw(name)?).map_err(|e| e.in_field(name))
    }
}

fn record(fields: Vec<(&'static str, Value)>) -> Value {
    Value::Record(
        fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
    )
}

/// Maps a struct whose fields are exactly the record's fields, in schema order. An optional
/// `check` function validates the decoded record as a whole (ranges a field type cannot express).
macro_rules! avro_record {
    ($ty:ident { $($field:ident),+ $(,)? } $(, check = $check:path)?) => {
        impl ToAvro for $ty {
            fn to_avro(&self) -> Value {
                record(vec![$((stringify!($field), self.$field.to_avro())),+])
            }
        }
        impl FromAvro for $ty {
            fn from_avro(value: Value) -> Result<Self, WireError> {
                let mut fields = Fields::new(value)?;
                let decoded = $ty { $($field: fields.take(stringify!($field))?),+ };
                $($check(&decoded)?;)?
                Ok(decoded)
            }
        }
        impl WriteAvro for $ty {
            fn write_avro(&self, out: &mut Vec<u8>) {
                $(self.$field.write_avro(out);)+
            }
        }
        impl ReadAvro for $ty {
            fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
                // Struct expression fields are evaluated in the order written: schema order.
                let decoded = $ty { $($field: ReadAvro::read_avro(r)?),+ };
                $($check(&decoded).map_err(|_| Reject)?;)?
                Ok(decoded)
            }
        }
    };
}

avro_record!(Envelope {
    event_id,
    org,
    event_time,
    trace_id,
    partition_key
});

avro_record!(RequestReceived {
    envelope,
    request_id,
    session_id,
    route,
    api_key_id,
    requested_model,
    stream,
    message_count,
    input_chars,
    estimated_input_tokens,
    has_tools,
    wants_json_schema,
    has_images,
    max_tokens,
    language,
    prompt_text,
    metadata,
    client,
});

avro_record!(Usage {
    prompt_tokens,
    completion_tokens,
    cached_tokens,
    reasoning_tokens,
    total_tokens
});

avro_record!(Attempt {
    provider,
    model,
    outcome,
    status_code,
    latency_ms,
    reason
});

impl ToAvro for ResponseCompleted {
    fn to_avro(&self) -> Value {
        record(vec![
            ("envelope", self.envelope.to_avro()),
            ("request_id", self.request_id.to_avro()),
            ("decision_id", self.decision_id.to_avro()),
            ("session_id", self.session_id.to_avro()),
            ("served_model", self.served_model.to_avro()),
            ("provider", self.provider.to_avro()),
            ("status", self.status.to_avro()),
            ("finish_reason", self.finish_reason.to_avro()),
            ("usage", self.usage.to_avro()),
            ("cost_usd", self.cost_usd.to_avro()),
            ("price_known", self.price_known().to_avro()),
            ("latency_ms", self.latency_ms.to_avro()),
            ("ttft_ms", self.ttft_ms.to_avro()),
            ("attempts", self.attempts.to_avro()),
            ("error_code", self.error_code.to_avro()),
            ("completion_text", self.completion_text.to_avro()),
            ("shadow", self.shadow.to_avro()),
        ])
    }
}

impl WriteAvro for ResponseCompleted {
    fn write_avro(&self, out: &mut Vec<u8>) {
        self.envelope.write_avro(out);
        self.request_id.write_avro(out);
        self.decision_id.write_avro(out);
        self.session_id.write_avro(out);
        self.served_model.write_avro(out);
        self.provider.write_avro(out);
        self.status.write_avro(out);
        self.finish_reason.write_avro(out);
        self.usage.write_avro(out);
        self.cost_usd.write_avro(out);
        self.price_known().write_avro(out);
        self.latency_ms.write_avro(out);
        self.ttft_ms.write_avro(out);
        self.attempts.write_avro(out);
        self.error_code.write_avro(out);
        self.completion_text.write_avro(out);
        self.shadow.write_avro(out);
    }
}

impl ReadAvro for ResponseCompleted {
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        let envelope = ReadAvro::read_avro(r)?;
        let request_id = ReadAvro::read_avro(r)?;
        let decision_id = ReadAvro::read_avro(r)?;
        let session_id = ReadAvro::read_avro(r)?;
        let served_model = ReadAvro::read_avro(r)?;
        let provider = ReadAvro::read_avro(r)?;
        let status = ReadAvro::read_avro(r)?;
        let finish_reason = ReadAvro::read_avro(r)?;
        let usage = ReadAvro::read_avro(r)?;
        let cost_usd: Option<Usd> = ReadAvro::read_avro(r)?;
        let price_known = bool::read_avro(r)?;
        if price_known != cost_usd.is_some() {
            return Err(Reject);
        }
        Ok(ResponseCompleted {
            envelope,
            request_id,
            decision_id,
            session_id,
            served_model,
            provider,
            status,
            finish_reason,
            usage,
            cost_usd,
            latency_ms: ReadAvro::read_avro(r)?,
            ttft_ms: ReadAvro::read_avro(r)?,
            attempts: ReadAvro::read_avro(r)?,
            error_code: ReadAvro::read_avro(r)?,
            completion_text: ReadAvro::read_avro(r)?,
            shadow: ReadAvro::read_avro(r)?,
        })
    }
}

// v1 is read by schema resolution: `shadow`, added in v2, comes back as its default (false).
impl FromAvro for ResponseCompleted {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(value)?;
        let envelope = f.take("envelope")?;
        let request_id = f.take("request_id")?;
        let decision_id = f.take("decision_id")?;
        let session_id = f.take("session_id")?;
        let served_model = f.take("served_model")?;
        let provider = f.take("provider")?;
        let status = f.take("status")?;
        let finish_reason = f.take("finish_reason")?;
        let usage = f.take("usage")?;
        let cost_usd: Option<Usd> = f.take("cost_usd")?;
        let price_known: bool = f.take("price_known")?;
        if price_known != cost_usd.is_some() {
            return Err(
                WireError::new("price_known must be true exactly when cost_usd is set")
                    .in_field("price_known"),
            );
        }
        Ok(ResponseCompleted {
            envelope,
            request_id,
            decision_id,
            session_id,
            served_model,
            provider,
            status,
            finish_reason,
            usage,
            cost_usd,
            latency_ms: f.take("latency_ms")?,
            ttft_ms: f.take("ttft_ms")?,
            attempts: f.take("attempts")?,
            error_code: f.take("error_code")?,
            completion_text: f.take("completion_text")?,
            shadow: f.take("shadow")?,
        })
    }
}

avro_record!(Candidate {
    model,
    score,
    success,
    feedback,
    cost,
    filtered_reason,
    estimated_cost_usd
});

avro_record!(SignalContribution {
    source,
    weight,
    value,
    contribution,
    samples
});

avro_record!(ConstraintCheck {
    name,
    passed,
    limit,
    observed,
    detail
});

avro_record!(Evidence {
    samples,
    score_gap,
    variance,
    regressions
});

avro_record!(PinInfo {
    model,
    reason,
    pinned_by
});

avro_record!(RequestFeatures {
    input_tokens,
    max_output_tokens,
    tools,
    json_schema,
    vision,
    stream
});

avro_record!(ScoreWeights {
    success,
    feedback,
    cost
});

/// Rejects a canary bucket outside `0..RouteDecided::CANARY_BUCKETS`.
fn check_route_decided(decided: &RouteDecided) -> Result<(), WireError> {
    match decided.canary_bucket {
        Some(bucket) if !(0..RouteDecided::CANARY_BUCKETS).contains(&bucket) => {
            Err(WireError::new(format!(
                "canary bucket must be within 0..{}, got {bucket}",
                RouteDecided::CANARY_BUCKETS
            ))
            .in_field("canary_bucket"))
        }
        _ => Ok(()),
    }
}

// v1 is read by schema resolution: the fields added in v2 come back as their schema defaults.
avro_record!(
    RouteDecided {
        envelope,
        decision_id,
        request_id,
        session_id,
        route,
        mode,
        chosen_model,
        baseline_model,
        served_model,
        reason,
        phase,
        confidence,
        routing_table_version,
        seed,
        candidates,
        signals,
        constraints,
        evidence,
        pin,
        reversible,
        explanation,
        explanation_language,
        shadow_model,
        canary_percent,
        signature,
        signing_key_id,
        features,
        score_weights,
        constraints_hash,
        route_version,
        unpriced_models,
        mirrored,
        canary_bucket,
        signature_proof,
        pool_version,
    },
    check = check_route_decided
);

avro_record!(SignatureProof {
    leaf_index,
    tree_size,
    path,
    payload_format
});

/// Returns the `target` union of a feedback event: `[RequestTarget, SessionTarget]`. A pair
/// target (written in the `pair` field since v3) is a request target named by the feedback id,
/// which no request has, so readers older than v3 join it to nothing.
fn target_to_avro(target: &Target, feedback_id: &crate::FeedbackId) -> Value {
    let request = |id: Value| Value::Union(0, Box::new(record(vec![("request_id", id)])));
    match target {
        Target::Request { request_id } => request(request_id.to_avro()),
        Target::Session { session_id } => Value::Union(
            1,
            Box::new(record(vec![("session_id", session_id.to_avro())])),
        ),
        Target::Pair { .. } => request(feedback_id.to_avro()),
    }
}

/// The `pair` field of a feedback event (v3).
struct PairTarget {
    route: crate::RouteName,
    model: crate::ModelName,
}

avro_record!(PairTarget { route, model });

/// Returns a feedback event's target from its two wire fields: a `pair` (v3) stands for
/// itself, the `target` union then holds only a placeholder.
fn feedback_target(target: Target, pair: Option<PairTarget>) -> Target {
    match pair {
        Some(PairTarget { route, model }) => Target::Pair { route, model },
        None => target,
    }
}

/// Returns the `pair` field of a feedback event: the pair, or null.
fn pair_to_avro(target: &Target) -> Value {
    match target {
        Target::Pair { route, model } => Some(PairTarget {
            route: route.clone(),
            model: model.clone(),
        }),
        _ => None,
    }
    .to_avro()
}

impl FromAvro for Target {
    /// Reads the `target` union (the `pair` field is read by [`FeedbackSubmitted`]).
    fn from_avro(value: Value) -> Result<Self, WireError> {
        match value {
            Value::Union(0, inner) => Ok(Target::Request {
                request_id: Fields::new(*inner)?.take("request_id")?,
            }),
            Value::Union(1, inner) => Ok(Target::Session {
                session_id: Fields::new(*inner)?.take("session_id")?,
            }),
            Value::Union(index, _) => Err(WireError::new(format!(
                "unknown target union branch {index}"
            ))),
            other => Err(WireError::unexpected("target union", &other)),
        }
    }
}

impl ToAvro for FeedbackSubmitted {
    fn to_avro(&self) -> Value {
        record(vec![
            ("envelope", self.envelope.to_avro()),
            ("feedback_id", self.feedback_id.to_avro()),
            ("target", target_to_avro(&self.target, &self.feedback_id)),
            ("source", self.source.to_avro()),
            ("raw_score", self.raw_score.to_avro()),
            ("raw_scale", self.raw_scale.to_avro()),
            ("normalized_score", self.normalized_score.to_avro()),
            ("idempotency_key", self.idempotency_key.to_avro()),
            ("comment", self.comment.to_avro()),
            ("derived_from", self.derived_from.to_avro()),
            ("route", self.route.to_avro()),
            ("model", self.model.to_avro()),
            ("labels", self.labels.to_avro()),
            ("pair", pair_to_avro(&self.target)),
        ])
    }
}

impl WriteAvro for FeedbackSubmitted {
    fn write_avro(&self, out: &mut Vec<u8>) {
        self.envelope.write_avro(out);
        self.feedback_id.write_avro(out);
        // `target`: `[RequestTarget, SessionTarget]`, each a record of one string field.
        match &self.target {
            Target::Request { request_id } => {
                write_branch(out, 0);
                request_id.write_avro(out);
            }
            Target::Session { session_id } => {
                write_branch(out, 1);
                session_id.write_avro(out);
            }
            Target::Pair { .. } => {
                write_branch(out, 0);
                self.feedback_id.write_avro(out);
            }
        }
        self.source.write_avro(out);
        self.raw_score.write_avro(out);
        self.raw_scale.write_avro(out);
        self.normalized_score.write_avro(out);
        self.idempotency_key.write_avro(out);
        self.comment.write_avro(out);
        self.derived_from.write_avro(out);
        self.route.write_avro(out);
        self.model.write_avro(out);
        self.labels.write_avro(out);
        // `pair`: `["null", PairTarget]`.
        match &self.target {
            Target::Pair { route, model } => {
                write_branch(out, 1);
                route.write_avro(out);
                model.write_avro(out);
            }
            Target::Request { .. } | Target::Session { .. } => write_branch(out, 0),
        }
    }
}

impl ReadAvro for FeedbackSubmitted {
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        let envelope = ReadAvro::read_avro(r)?;
        let feedback_id = ReadAvro::read_avro(r)?;
        let target = match r.branch()? {
            0 => Target::Request {
                request_id: ReadAvro::read_avro(r)?,
            },
            1 => Target::Session {
                session_id: ReadAvro::read_avro(r)?,
            },
            _ => return Err(Reject),
        };
        let source = ReadAvro::read_avro(r)?;
        let raw_score = ReadAvro::read_avro(r)?;
        let raw_scale = ReadAvro::read_avro(r)?;
        let normalized_score = ReadAvro::read_avro(r)?;
        let idempotency_key = ReadAvro::read_avro(r)?;
        let comment = ReadAvro::read_avro(r)?;
        let derived_from = ReadAvro::read_avro(r)?;
        let route = ReadAvro::read_avro(r)?;
        let model = ReadAvro::read_avro(r)?;
        let labels = ReadAvro::read_avro(r)?;
        let pair: Option<PairTarget> = ReadAvro::read_avro(r)?;
        Ok(FeedbackSubmitted {
            envelope,
            feedback_id,
            target: feedback_target(target, pair),
            source,
            raw_score,
            raw_scale,
            normalized_score,
            idempotency_key,
            comment,
            derived_from,
            route,
            model,
            labels,
        })
    }
}

impl FromAvro for FeedbackSubmitted {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut fields = Fields::new(value)?;
        let envelope = fields.take("envelope")?;
        let feedback_id = fields.take("feedback_id")?;
        let target: Target = fields.take("target")?;
        let source = fields.take("source")?;
        let raw_score = fields.take("raw_score")?;
        let raw_scale = fields.take("raw_scale")?;
        let normalized_score = fields.take("normalized_score")?;
        let idempotency_key = fields.take("idempotency_key")?;
        let comment = fields.take("comment")?;
        let derived_from = fields.take("derived_from")?;
        let route = fields.take("route")?;
        let model = fields.take("model")?;
        let labels = fields.take("labels")?;
        let pair: Option<PairTarget> = fields.take("pair")?;
        Ok(FeedbackSubmitted {
            envelope,
            feedback_id,
            target: feedback_target(target, pair),
            source,
            raw_score,
            raw_scale,
            normalized_score,
            idempotency_key,
            comment,
            derived_from,
            route,
            model,
            labels,
        })
    }
}

/// Returns a judgement's outcome from its wire fields, or `None` for `scored` without a score.
/// `failed`, or a future symbol an old schema resolved to the default `failed`, is a failure.
fn judge_outcome(
    symbol: &str,
    score: Option<UnitScore>,
    failure_reason: Option<String>,
) -> Option<JudgeOutcome> {
    match (symbol, score) {
        ("scored", Some(score)) => Some(JudgeOutcome::Scored { score }),
        ("scored", None) => None,
        _ => Some(JudgeOutcome::Failed {
            reason: failure_reason,
        }),
    }
}

/// The Avro symbols of the `JudgeOutcome` enum, in schema order.
const JUDGE_OUTCOME_SYMBOLS: [&str; 2] = ["scored", "failed"];

impl ToAvro for JudgeScored {
    fn to_avro(&self) -> Value {
        let (outcome, score, failure_reason) = match &self.outcome {
            JudgeOutcome::Scored { score } => (0u32, Some(*score), None),
            JudgeOutcome::Failed { reason } => (1u32, None, reason.clone()),
        };
        let symbol = JUDGE_OUTCOME_SYMBOLS
            .get(outcome as usize)
            .copied()
            .unwrap_or("failed");
        record(vec![
            ("envelope", self.envelope.to_avro()),
            ("judgement_id", self.judgement_id.to_avro()),
            ("request_id", self.request_id.to_avro()),
            ("decision_id", self.decision_id.to_avro()),
            ("route", self.route.to_avro()),
            ("model", self.model.to_avro()),
            ("judge_model", self.judge_model.to_avro()),
            ("outcome", Value::Enum(outcome, symbol.to_owned())),
            ("score", score.to_avro()),
            ("rubric_version", self.rubric_version.to_avro()),
            ("attempts", self.attempts.to_avro()),
            ("failure_reason", failure_reason.to_avro()),
            ("cost_usd", self.cost_usd.to_avro()),
        ])
    }
}

impl WriteAvro for JudgeScored {
    fn write_avro(&self, out: &mut Vec<u8>) {
        self.envelope.write_avro(out);
        self.judgement_id.write_avro(out);
        self.request_id.write_avro(out);
        self.decision_id.write_avro(out);
        self.route.write_avro(out);
        self.model.write_avro(out);
        self.judge_model.write_avro(out);
        let (outcome, score, failure_reason) = match &self.outcome {
            JudgeOutcome::Scored { score } => (0, Some(score), None),
            JudgeOutcome::Failed { reason } => (1, None, reason.as_ref()),
        };
        write_int(out, outcome);
        score.copied().write_avro(out);
        self.rubric_version.write_avro(out);
        self.attempts.write_avro(out);
        match failure_reason {
            None => write_branch(out, 0),
            Some(reason) => {
                write_branch(out, 1);
                write_str(out, reason);
            }
        }
        self.cost_usd.write_avro(out);
    }
}

impl ReadAvro for JudgeScored {
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        let envelope = ReadAvro::read_avro(r)?;
        let judgement_id = ReadAvro::read_avro(r)?;
        let request_id = ReadAvro::read_avro(r)?;
        let decision_id = ReadAvro::read_avro(r)?;
        let route = ReadAvro::read_avro(r)?;
        let model = ReadAvro::read_avro(r)?;
        let judge_model = ReadAvro::read_avro(r)?;
        let outcome = r.symbol(&JUDGE_OUTCOME_SYMBOLS)?;
        let score: Option<UnitScore> = ReadAvro::read_avro(r)?;
        let rubric_version = ReadAvro::read_avro(r)?;
        let attempts = ReadAvro::read_avro(r)?;
        let failure_reason: Option<String> = ReadAvro::read_avro(r)?;
        let outcome = judge_outcome(outcome, score, failure_reason).ok_or(Reject)?;
        Ok(JudgeScored {
            envelope,
            judgement_id,
            request_id,
            decision_id,
            route,
            model,
            judge_model,
            outcome,
            rubric_version,
            attempts,
            cost_usd: ReadAvro::read_avro(r)?,
        })
    }
}

impl FromAvro for JudgeScored {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(value)?;
        let envelope = f.take("envelope")?;
        let judgement_id = f.take("judgement_id")?;
        let request_id = f.take("request_id")?;
        let decision_id = f.take("decision_id")?;
        let route = f.take("route")?;
        let model = f.take("model")?;
        let judge_model = f.take("judge_model")?;
        let symbol = match f.raw("outcome")? {
            Value::Enum(_, symbol) | Value::String(symbol) => symbol,
            other => return Err(WireError::unexpected("enum", &other).in_field("outcome")),
        };
        let score: Option<UnitScore> = f.take("score")?;
        let rubric_version = f.take("rubric_version")?;
        let attempts = f.take("attempts")?;
        let failure_reason: Option<String> = f.take("failure_reason")?;
        let outcome = judge_outcome(&symbol, score, failure_reason)
            .ok_or_else(|| WireError::new("outcome `scored` without a score").in_field("score"))?;
        Ok(JudgeScored {
            envelope,
            judgement_id,
            request_id,
            decision_id,
            route,
            model,
            judge_model,
            outcome,
            rubric_version,
            attempts,
            cost_usd: f.take("cost_usd")?,
        })
    }
}

avro_record!(RoutePinned {
    envelope,
    route,
    model,
    reason,
    pinned_by,
    expires_at,
    note
});

avro_record!(RouteUnpinned {
    envelope,
    route,
    unpinned_by,
    reason
});

/// Rejects non-finite constraint values: they would not survive the canonical JSON of the hash chain.
fn finite(value: Option<f64>, field: &str) -> Result<Option<f64>, WireError> {
    match value {
        Some(v) if !v.is_finite() => {
            Err(WireError::new(format!("constraint must be finite, got {v}")).in_field(field))
        }
        other => Ok(other),
    }
}

impl ToAvro for Constraints {
    fn to_avro(&self) -> Value {
        record(vec![
            ("max_regression", self.max_regression.to_avro()),
            ("min_quality", self.min_quality.to_avro()),
            ("max_error_rate", self.max_error_rate.to_avro()),
            ("max_cost_increase", self.max_cost_increase.to_avro()),
            ("max_cost_per_request", self.max_cost_per_request.to_avro()),
            ("max_p95_latency_ms", self.max_p95_latency_ms.to_avro()),
            ("min_confidence", self.min_confidence.to_avro()),
            ("min_samples", self.min_samples.to_avro()),
            ("rollback_threshold", self.rollback_threshold.to_avro()),
        ])
    }
}

impl WriteAvro for Constraints {
    fn write_avro(&self, out: &mut Vec<u8>) {
        self.max_regression.write_avro(out);
        self.min_quality.write_avro(out);
        self.max_error_rate.write_avro(out);
        self.max_cost_increase.write_avro(out);
        self.max_cost_per_request.write_avro(out);
        self.max_p95_latency_ms.write_avro(out);
        self.min_confidence.write_avro(out);
        self.min_samples.write_avro(out);
        self.rollback_threshold.write_avro(out);
    }
}

impl ReadAvro for Constraints {
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        // The generic reader's rule; its message is not needed here.
        let checked = |value: Option<f64>| finite(value, "").map_err(|_| Reject);
        Ok(Constraints {
            max_regression: checked(ReadAvro::read_avro(r)?)?,
            min_quality: checked(ReadAvro::read_avro(r)?)?,
            max_error_rate: checked(ReadAvro::read_avro(r)?)?,
            max_cost_increase: checked(ReadAvro::read_avro(r)?)?,
            max_cost_per_request: checked(ReadAvro::read_avro(r)?)?,
            max_p95_latency_ms: ReadAvro::read_avro(r)?,
            min_confidence: checked(ReadAvro::read_avro(r)?)?,
            min_samples: ReadAvro::read_avro(r)?,
            rollback_threshold: ReadAvro::read_avro(r)?,
        })
    }
}

impl FromAvro for Constraints {
    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(value)?;
        Ok(Constraints {
            max_regression: finite(f.take("max_regression")?, "max_regression")?,
            min_quality: finite(f.take("min_quality")?, "min_quality")?,
            max_error_rate: finite(f.take("max_error_rate")?, "max_error_rate")?,
            max_cost_increase: finite(f.take("max_cost_increase")?, "max_cost_increase")?,
            max_cost_per_request: finite(f.take("max_cost_per_request")?, "max_cost_per_request")?,
            max_p95_latency_ms: f.take("max_p95_latency_ms")?,
            min_confidence: finite(f.take("min_confidence")?, "min_confidence")?,
            min_samples: f.take("min_samples")?,
            rollback_threshold: f.take("rollback_threshold")?,
        })
    }
}

avro_record!(ConstraintsChanged {
    envelope,
    route,
    sequence,
    constraints,
    changed_by,
    prev_hash,
    hash
});

avro_record!(SourceStats {
    source,
    samples,
    mean,
    variance
});

// v1 is read by schema resolution: the fields added in v2 come back as their schema defaults.
avro_record!(ModelStats {
    model,
    samples,
    success_rate,
    quality_mean,
    quality_variance,
    cost_mean_usd,
    p95_latency_ms,
    error_rate,
    signals,
    sources,
    successes,
    errors,
    regressions,
    latency_samples,
});

avro_record!(RouteEntry {
    route,
    baseline_model,
    mode,
    canary_percent,
    pinned_model,
    phase,
    models,
    constraints_hash,
    route_version,
});

avro_record!(RoutingTableUpdated {
    envelope,
    version,
    generated_at,
    routes,
    source_offsets
});

avro_record!(ApiKeyCreated {
    envelope,
    key_id,
    key_hash,
    admin,
    default_route,
    label,
    requests_per_minute,
    tokens_per_minute
});

avro_record!(KeyUsageReported {
    envelope,
    replica,
    key_id,
    minute,
    requests,
    tokens,
    previous_requests,
    previous_tokens,
    day,
    spend_micro_usd
});

avro_record!(ApiKeyRevoked {
    envelope,
    key_id,
    reason
});

avro_record!(RouteConfigured {
    envelope,
    route,
    baseline_model,
    candidates,
    mode,
    canary_percent,
    mirror_fraction,
    mirror_spend_cap_usd,
    category,
    changed_by,
    deleted,
    sequence,
});

impl Event {
    /// Returns the event as an Avro value of its kind's latest schema.
    pub(crate) fn to_avro_value(&self) -> Value {
        match self {
            Event::RequestReceived(e) => e.to_avro(),
            Event::ResponseCompleted(e) => e.to_avro(),
            Event::RouteDecided(e) => e.to_avro(),
            Event::FeedbackSubmitted(e) => e.to_avro(),
            Event::JudgeScored(e) => e.to_avro(),
            Event::RoutePinned(e) => e.to_avro(),
            Event::RouteUnpinned(e) => e.to_avro(),
            Event::ConstraintsChanged(e) => e.to_avro(),
            Event::RoutingTableUpdated(e) => e.to_avro(),
            Event::ApiKeyCreated(e) => e.to_avro(),
            Event::ApiKeyRevoked(e) => e.to_avro(),
            Event::RouteConfigured(e) => e.to_avro(),
            Event::KeyUsageReported(e) => e.to_avro(),
        }
    }

    /// Appends the event as the Avro binary datum of its kind's latest schema: the bytes
    /// `GenericDatumWriter` writes for [`Event::to_avro_value`], without building the value.
    pub(crate) fn write_avro_body(&self, out: &mut Vec<u8>) {
        match self {
            Event::RequestReceived(e) => e.write_avro(out),
            Event::ResponseCompleted(e) => e.write_avro(out),
            Event::RouteDecided(e) => e.write_avro(out),
            Event::FeedbackSubmitted(e) => e.write_avro(out),
            Event::JudgeScored(e) => e.write_avro(out),
            Event::RoutePinned(e) => e.write_avro(out),
            Event::RouteUnpinned(e) => e.write_avro(out),
            Event::ConstraintsChanged(e) => e.write_avro(out),
            Event::RoutingTableUpdated(e) => e.write_avro(out),
            Event::ApiKeyCreated(e) => e.write_avro(out),
            Event::ApiKeyRevoked(e) => e.write_avro(out),
            Event::RouteConfigured(e) => e.write_avro(out),
            Event::KeyUsageReported(e) => e.write_avro(out),
        }
    }

    /// Returns the event of `kind` read straight from an Avro body written with that kind's
    /// latest schema, or [`Reject`] (bytes left over included) to let the generic path decide.
    pub(crate) fn read_avro_body(kind: EventKind, body: &[u8]) -> Result<Event, Reject> {
        let r = &mut AvroReader::new(body);
        let event = match kind {
            EventKind::RequestReceived => Event::RequestReceived(ReadAvro::read_avro(r)?),
            EventKind::ResponseCompleted => Event::ResponseCompleted(ReadAvro::read_avro(r)?),
            EventKind::RouteDecided => Event::RouteDecided(ReadAvro::read_avro(r)?),
            EventKind::FeedbackSubmitted => Event::FeedbackSubmitted(ReadAvro::read_avro(r)?),
            EventKind::JudgeScored => Event::JudgeScored(ReadAvro::read_avro(r)?),
            EventKind::RoutePinned => Event::RoutePinned(ReadAvro::read_avro(r)?),
            EventKind::RouteUnpinned => Event::RouteUnpinned(ReadAvro::read_avro(r)?),
            EventKind::ConstraintsChanged => Event::ConstraintsChanged(ReadAvro::read_avro(r)?),
            EventKind::RoutingTableUpdated => Event::RoutingTableUpdated(ReadAvro::read_avro(r)?),
            EventKind::ApiKeyCreated => Event::ApiKeyCreated(ReadAvro::read_avro(r)?),
            EventKind::ApiKeyRevoked => Event::ApiKeyRevoked(ReadAvro::read_avro(r)?),
            EventKind::RouteConfigured => Event::RouteConfigured(ReadAvro::read_avro(r)?),
            EventKind::KeyUsageReported => Event::KeyUsageReported(ReadAvro::read_avro(r)?),
        };
        if r.is_empty() { Ok(event) } else { Err(Reject) }
    }

    /// Returns the event of `kind` from an Avro value resolved to that kind's latest schema.
    pub(crate) fn from_avro_value(kind: EventKind, value: Value) -> Result<Event, WireError> {
        Ok(match kind {
            EventKind::RequestReceived => Event::RequestReceived(FromAvro::from_avro(value)?),
            EventKind::ResponseCompleted => Event::ResponseCompleted(FromAvro::from_avro(value)?),
            EventKind::RouteDecided => Event::RouteDecided(FromAvro::from_avro(value)?),
            EventKind::FeedbackSubmitted => Event::FeedbackSubmitted(FromAvro::from_avro(value)?),
            EventKind::JudgeScored => Event::JudgeScored(FromAvro::from_avro(value)?),
            EventKind::RoutePinned => Event::RoutePinned(FromAvro::from_avro(value)?),
            EventKind::RouteUnpinned => Event::RouteUnpinned(FromAvro::from_avro(value)?),
            EventKind::ConstraintsChanged => Event::ConstraintsChanged(FromAvro::from_avro(value)?),
            EventKind::RoutingTableUpdated => {
                Event::RoutingTableUpdated(FromAvro::from_avro(value)?)
            }
            EventKind::ApiKeyCreated => Event::ApiKeyCreated(FromAvro::from_avro(value)?),
            EventKind::ApiKeyRevoked => Event::ApiKeyRevoked(FromAvro::from_avro(value)?),
            EventKind::RouteConfigured => Event::RouteConfigured(FromAvro::from_avro(value)?),
            EventKind::KeyUsageReported => Event::KeyUsageReported(FromAvro::from_avro(value)?),
        })
    }
}

/// The Avro symbols of every Rust enum that mirrors a schema enum, by Avro name.
#[cfg(test)]
pub(crate) fn rust_enum_symbols() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "ResponseStatus",
            ResponseStatus::ALL.iter().map(|s| s.as_str()).collect(),
        ),
        (
            "RouteMode",
            RouteMode::ALL.iter().map(|s| s.as_str()).collect(),
        ),
        (
            "FeedbackSource",
            FeedbackSource::ALL.iter().map(|s| s.as_str()).collect(),
        ),
        (
            "PinReason",
            PinReason::ALL.iter().map(|s| s.as_str()).collect(),
        ),
        (
            "RawScale",
            RawScale::ALL.iter().map(|s| s.as_str()).collect(),
        ),
        ("JudgeOutcome", JUDGE_OUTCOME_SYMBOLS.to_vec()),
    ]
}
