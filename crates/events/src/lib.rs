//! switchyard-events: the typed event contracts (Avro schemas in `schemas/` are the source of truth),
//! the Confluent-framed Avro codec and the closed [`Topic`] set.

pub mod topic;

pub use topic::{Cleanup, Topic, UnknownTopic};
