//! switchyard-events: the event contracts of Switchyard.
//!
//! Every fact Switchyard records (a request received, a routing decision, a response, feedback, a
//! judge score, a pin, a constraints change, a route configured, a routing-table snapshot, an API
//! key created or revoked) is an [`Event`] written to one [`Topic`] of the log. This crate holds:
//!
//! - the domain types of every event and the closed [`Event`] enum, with the [`Envelope`]
//!   (event id, org, event time, trace id, partition key) every event carries;
//! - the [`Codec`]: Confluent-framed Avro (`0x00`, 4-byte big-endian schema id, Avro binary),
//!   encoding with the latest schema of each event (written straight from the types) and
//!   decoding any published version (the latest read straight into the types, older ones by Avro
//!   schema resolution);
//! - the compiled-in [`SchemaSet`]: the `.avsc` files under `schemas/avro/` are the source of
//!   truth, `schemas/manifest.json` fixes the schema id of every version (used when no schema
//!   registry is configured);
//! - validated newtypes (ids, [`UnitScore`], [`Nps`], [`Percent`], [`Usd`]) and
//!   feedback [`normalize`]ation;
//! - the canonical JSON used by the constraints hash chain
//!   ([`ConstraintsChanged::compute_hash`]) and by decision signatures
//!   ([`RouteDecided::signing_payload`]), and the binary signing payload v2 that decisions are
//!   signed with since schema v5 ([`RouteDecided::signing_payload_as`]);
//! - the closed [`Topic`] set.
//!
//! Producers: the gateway (requests, decisions, responses), feedback ingestion, the judge, the
//! admin API (pins, constraints, routes, keys) and the projector (routing table). Consumers:
//! every stream processor and the exporters. The crate does no I/O; delivery semantics belong to
//! `switchyard-log` (at-least-once), which moves the bytes this codec produces.
//!
//! Evolution rules (FULL compatibility) are in `schemas/README.md`.

#![warn(missing_docs)]

mod avro_read;
mod avro_write;
mod binary_payload;
mod canonical;
mod canonical_fast;
pub mod codec;
pub mod event;
pub mod ids;
pub mod schema;
pub mod score;
pub mod topic;
mod wire;

pub use canonical::{ChainError, canonical_json};
pub use codec::{Codec, CodecError, HEADER_LEN, MAGIC_BYTE, SchemaResolver};
pub use event::{
    ApiKeyCreated, ApiKeyRevoked, Attempt, Candidate, ConstraintCheck, Constraints,
    ConstraintsChanged, Envelope, Event, EventKind, Evidence, FeedbackSource, FeedbackSubmitted,
    JudgeOutcome, JudgeScored, KeyHash, KeyHashError, KeyUsageReported, ModelStats, PayloadFormat,
    PinInfo, PinReason, RequestFeatures, RequestReceived, RequestedModel, ResponseCompleted,
    ResponseStatus, RouteConfigured, RouteDecided, RouteEntry, RouteMode, RoutePinned,
    RouteUnpinned, RoutingTableUpdated, ScoreWeights, SignalContribution, SignatureProof,
    SourceStats, Target, UnknownEventKind, Usage,
};
pub use ids::{
    ApiKeyId, DecisionId, EventId, EventIdError, FeedbackId, JudgementId, ModelName, OrgId,
    PartitionKey, ProviderName, RequestId, RouteName, SessionId, Timestamp, TraceId,
};
pub use schema::{NAMESPACE, SchemaEntry, SchemaSet, schema_set};
pub use score::{
    Nps, NpsCategory, Percent, Phase, RawScale, ScoreError, UnitScore, Usd, normalize,
};
pub use topic::{Cleanup, Topic, UnknownTopic};
pub use wire::WireError;
