//! The closed set of topics. A topic is never named by a string literal elsewhere: the log
//! backends map a [`Topic`] to its physical name (with an optional deployment prefix for Kafka).

use std::fmt;
use std::str::FromStr;

/// How a topic keeps its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Records older than the topic's retention are deleted.
    Delete,
    /// Only the latest record per key is kept (routing table, pins, control plane).
    Compact,
    /// Every record is kept, forever: the constraints audit chain. Compaction would keep only
    /// each route's newest change (breaking the chain's links) and time retention would cut its
    /// start; either makes the chain unverifiable. A route's changes are rare, so the topic
    /// stays small.
    Keep,
}

/// Every topic Switchyard reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// `RequestReceived`, keyed by session (else request) id.
    Requests,
    /// `ResponseCompleted`, keyed by session (else request) id.
    Responses,
    /// `RouteDecided`, keyed by session (else request) id.
    Decisions,
    /// `FeedbackSubmitted`, keyed by session (else request) id.
    Feedback,
    /// `JudgeScored`, keyed by session (else request) id.
    JudgeScores,
    /// `RoutePinned` / `RouteUnpinned`, keyed by `org/route`; compacted.
    Pins,
    /// `ConstraintsChanged`, keyed by `org/route`; every record kept (a hash chain per route).
    Constraints,
    /// Control-plane facts, compacted: API keys keyed by key id, `RouteConfigured` by `org/route`.
    Control,
    /// `RoutingTableUpdated` snapshots, keyed by org; compacted.
    RoutingTable,
    /// Events a processor could not handle after its retries, with the failure in the headers.
    DeadLetter,
    /// `KeyUsageReported`, keyed by `replica/key id`; compacted. Ingress replicas share what they
    /// admitted per API key here, so per-key rate limits hold across replicas.
    Usage,
}

impl Topic {
    /// All topics, in a stable order.
    pub const ALL: [Topic; 11] = [
        Topic::Requests,
        Topic::Responses,
        Topic::Decisions,
        Topic::Feedback,
        Topic::JudgeScores,
        Topic::Pins,
        Topic::Constraints,
        Topic::Control,
        Topic::RoutingTable,
        Topic::DeadLetter,
        Topic::Usage,
    ];

    /// Returns the topic's logical name (the physical name adds a deployment prefix).
    pub const fn name(self) -> &'static str {
        match self {
            Topic::Requests => "requests",
            Topic::Responses => "responses",
            Topic::Decisions => "decisions",
            Topic::Feedback => "feedback",
            Topic::JudgeScores => "judge-scores",
            Topic::Pins => "pins",
            Topic::Constraints => "constraints",
            Topic::Control => "control",
            Topic::RoutingTable => "routing-table",
            Topic::DeadLetter => "dead-letter",
            Topic::Usage => "usage",
        }
    }

    /// Returns a stable one-byte code, used by the embedded log's key layout. Never reuse a code.
    pub const fn code(self) -> u8 {
        match self {
            Topic::Requests => 1,
            Topic::Responses => 2,
            Topic::Decisions => 3,
            Topic::Feedback => 4,
            Topic::JudgeScores => 5,
            Topic::Pins => 6,
            Topic::Constraints => 7,
            Topic::Control => 8,
            Topic::RoutingTable => 9,
            Topic::DeadLetter => 10,
            Topic::Usage => 11,
        }
    }

    /// Returns the topic's cleanup policy.
    pub const fn cleanup(self) -> Cleanup {
        match self {
            Topic::Pins | Topic::Control | Topic::RoutingTable | Topic::Usage => Cleanup::Compact,
            Topic::Constraints => Cleanup::Keep,
            _ => Cleanup::Delete,
        }
    }

    /// Returns the topic for a one-byte code.
    pub fn from_code(code: u8) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.code() == code)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a topic name that is not one of [`Topic::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown topic `{0}` (known: requests, responses, decisions, feedback, judge-scores, pins, constraints, control, routing-table, dead-letter, usage)"
)]
pub struct UnknownTopic(pub String);

impl FromStr for Topic {
    type Err = UnknownTopic;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownTopic(s.to_owned()))
    }
}
