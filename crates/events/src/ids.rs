//! Identifiers, time and partition keys carried by events.
//!
//! Every id is a newtype so that a request id cannot be passed where a session id is expected.
//! String ids are not validated beyond their type: they come from clients (session ids,
//! request ids) or from other Switchyard components, and the log must carry them as given.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Declares a string-backed id newtype with the usual conversions.
macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string as this id.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// Returns the id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Returns the owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// The organisation (tenant) an event belongs to.
    OrgId
);
string_id!(
    /// A request id (the `x-request-id` answered to the client).
    RequestId
);
string_id!(
    /// A client session id; all events of a session share one partition.
    SessionId
);
string_id!(
    /// The id of a routing decision (`RouteDecided`).
    DecisionId
);
string_id!(
    /// The id of one piece of feedback (`FeedbackSubmitted`).
    FeedbackId
);
string_id!(
    /// The id of one judge run (`JudgeScored`).
    JudgementId
);
string_id!(
    /// The id of an API key (never the secret).
    ApiKeyId
);
string_id!(
    /// A named route (`model: "auto"` requests are routed per route).
    RouteName
);
string_id!(
    /// A model name as the gateway knows it (e.g. `gpt-4o-mini`).
    ModelName
);
string_id!(
    /// A provider name (e.g. `openai`, `demo`).
    ProviderName
);
string_id!(
    /// A distributed-tracing id carried from the originating request.
    TraceId
);
string_id!(
    /// The log partition key of an event; same key, same partition, so events of one key stay ordered.
    PartitionKey
);

impl PartitionKey {
    /// Returns the key of request-path events: the session id when there is one, else the request id,
    /// so that session-NPS propagation reads a session's events in order from one partition.
    pub fn session_or_request(session: Option<&SessionId>, request: &RequestId) -> Self {
        match session {
            Some(session) => Self(session.as_str().to_owned()),
            None => Self(request.as_str().to_owned()),
        }
    }

    /// Returns the key of route state (pins, constraints): `org/route`.
    pub fn route(org: &OrgId, route: &RouteName) -> Self {
        Self(format!("{org}/{route}"))
    }

    /// Returns the key of org-wide state (the routing table): the org id.
    pub fn org(org: &OrgId) -> Self {
        Self(org.as_str().to_owned())
    }

    /// Returns the key of a replica's usage report for one API key: `replica/key id`, so the
    /// compacted `usage` topic keeps each replica's latest counts of each key.
    pub fn usage(replica: &str, key: &ApiKeyId) -> Self {
        Self(format!("{replica}/{key}"))
    }
}

/// Event time: UTC microseconds since the Unix epoch (Avro `timestamp-micros`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Returns the timestamp for a number of microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Returns the timestamp for a number of milliseconds since the Unix epoch (saturating).
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis.saturating_mul(1000))
    }

    /// Returns the microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Returns the whole milliseconds since the Unix epoch (rounded towards negative infinity).
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

/// An event id: a UUIDv7, so ids sort by the time they were minted.
///
/// Ingress mints fresh ids with [`EventId::now_v7`]; processors derive their output ids from
/// their input ids with [`EventId::derive`], so a replay re-emits identical ids that downstream
/// deduplication recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(Uuid);

/// The error for an event id that is not UUIDv7 text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventIdError {
    /// The text is not a UUID.
    #[error("event id `{0}` is not a uuid")]
    NotUuid(String),
    /// The UUID is not version 7.
    #[error("event id `{id}` is uuid version {version}, expected 7")]
    WrongVersion {
        /// The id as given.
        id: String,
        /// Its UUID version.
        version: usize,
    },
}

impl EventId {
    /// Returns a fresh UUIDv7 from the system clock (for ingress; processors use [`EventId::derive`]).
    pub fn now_v7() -> Self {
        Self(Uuid::now_v7())
    }

    /// Returns the id for a UUID, which must be version 7.
    pub fn from_uuid(uuid: Uuid) -> Result<Self, EventIdError> {
        match uuid.get_version_num() {
            7 => Ok(Self(uuid)),
            version => Err(EventIdError::WrongVersion {
                id: uuid.to_string(),
                version,
            }),
        }
    }

    /// Returns a deterministic id derived from an input event id and a purpose label.
    ///
    /// The result is a valid UUIDv7 with the input's millisecond timestamp (so it sorts next to its
    /// cause) and 74 bits taken from SHA-256 over the input id and `purpose`. Use a distinct
    /// purpose for each output a processor derives from the same input.
    pub fn derive(&self, purpose: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(self.0.as_bytes());
        hasher.update(purpose.as_bytes());
        let digest = hasher.finalize();
        let mut bytes = *self.0.as_bytes();
        for (i, byte) in bytes.iter_mut().enumerate().skip(6) {
            *byte = digest.get(i).copied().unwrap_or_default();
        }
        let uuid = uuid::Builder::from_bytes(bytes)
            .with_version(uuid::Version::SortRand)
            .with_variant(uuid::Variant::RFC4122)
            .into_uuid();
        Self(uuid)
    }

    /// Returns the UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// Returns the millisecond Unix timestamp encoded in the id.
    pub fn timestamp_millis(&self) -> i64 {
        let b = self.0.as_bytes();
        let mut ms: i64 = 0;
        for byte in b.iter().take(6) {
            ms = (ms << 8) | i64::from(*byte);
        }
        ms
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromStr for EventId {
    type Err = EventIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let uuid = Uuid::try_parse(s).map_err(|_| EventIdError::NotUuid(s.to_owned()))?;
        Self::from_uuid(uuid)
    }
}

impl TryFrom<String> for EventId {
    type Error = EventIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<EventId> for String {
    fn from(value: EventId) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_v7_deterministic_and_keep_the_timestamp() -> Result<(), EventIdError> {
        let input: EventId = "01920000-0000-7000-8000-000000000000".parse()?;
        let a = input.derive("session-nps");
        let b = input.derive("session-nps");
        let c = input.derive("other");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert_eq!(a.as_uuid().get_variant(), uuid::Variant::RFC4122);
        assert_eq!(a.timestamp_millis(), input.timestamp_millis());
        let reparsed: EventId = a.to_string().parse()?;
        assert_eq!(reparsed, a);
        Ok(())
    }

    #[test]
    fn rejects_non_v7_ids() {
        assert!(matches!(
            "00000000-0000-4000-8000-000000000000".parse::<EventId>(),
            Err(EventIdError::WrongVersion { version: 4, .. })
        ));
        assert!(matches!(
            "nope".parse::<EventId>(),
            Err(EventIdError::NotUuid(_))
        ));
    }

    #[test]
    fn partition_keys() {
        let org = OrgId::new("acme");
        assert_eq!(
            PartitionKey::route(&org, &RouteName::new("chat")).as_str(),
            "acme/chat"
        );
        let req = RequestId::new("r1");
        assert_eq!(PartitionKey::session_or_request(None, &req).as_str(), "r1");
        let s = SessionId::new("s1");
        assert_eq!(
            PartitionKey::session_or_request(Some(&s), &req).as_str(),
            "s1"
        );
    }
}
