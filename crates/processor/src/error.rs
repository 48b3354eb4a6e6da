//! The errors of a processor's step ([`ProcessError`]) and of the runtime ([`RunError`]).

use std::fmt;

use switchyard_log::{LogError, RetryHint};
use switchyard_store::StoreError;

/// What the runtime does about a [`ProcessError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The input itself is bad: it goes to the dead-letter topic and processing continues.
    Poison,
    /// The failure may pass: the whole batch is retried with backoff; no input is skipped.
    Transient,
    /// Nothing will fix it without a human (a bug, a closed store): the processor stops.
    Fatal,
}

impl ErrorClass {
    /// Returns a low-cardinality label for metrics and dead-letter headers.
    pub const fn metric_label(self) -> &'static str {
        match self {
            ErrorClass::Poison => "poison",
            ErrorClass::Transient => "transient",
            ErrorClass::Fatal => "fatal",
        }
    }
}

/// A failure of [`crate::Processor::process`] for one input record.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The input cannot be processed, now or ever (it violates an invariant the processor
    /// relies on). It is dead-lettered with this reason.
    #[error("poison input: {reason}")]
    Poison {
        /// Why, for the dead-letter headers.
        reason: String,
    },
    /// A state read failed; transient store failures retry the batch, others stop the
    /// processor.
    #[error("failed to read processor state")]
    Store(#[from] StoreError),
    /// A dependency of the processor failed in a way that may pass (a provider, a network).
    #[error("transient processor failure")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The processor cannot go on (corrupt state it wrote itself, a bug).
    #[error("fatal processor failure: {0}")]
    Fatal(String),
}

impl ProcessError {
    /// Returns a poison error with a reason.
    pub fn poison(reason: impl fmt::Display) -> Self {
        ProcessError::Poison {
            reason: reason.to_string(),
        }
    }

    /// Returns a fatal error with a description.
    pub fn fatal(what: impl fmt::Display) -> Self {
        ProcessError::Fatal(what.to_string())
    }

    /// Returns what the runtime does about this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            ProcessError::Poison { .. } => ErrorClass::Poison,
            ProcessError::Store(e) if e.is_transient() => ErrorClass::Transient,
            ProcessError::Store(_) | ProcessError::Fatal(_) => ErrorClass::Fatal,
            ProcessError::Transient(_) => ErrorClass::Transient,
        }
    }
}

/// Checks that a required field of an input is not empty.
///
/// # Errors
///
/// An empty `value` is [`ProcessError::Poison`] naming the field `what`.
pub fn require_nonempty(what: &str, value: &str) -> Result<(), ProcessError> {
    if value.is_empty() {
        Err(ProcessError::poison(format!("{what} is empty")))
    } else {
        Ok(())
    }
}

/// Why [`crate::ProcessorRuntime::run`] stopped without being asked to.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The event log failed in a way retrying does not fix (closed, invalid request).
    #[error("event log failed during {stage}")]
    Log {
        /// The step (`subscribe`, `poll`, `append`, `commit`, `seek`).
        stage: &'static str,
        /// The log's error.
        #[source]
        source: LogError,
    },
    /// The state store failed in a way retrying does not fix.
    #[error("state store failed during {stage}")]
    Store {
        /// The step (`checkpoint`, `apply`).
        stage: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The processor reported a fatal error.
    #[error("processor `{group}` failed on {topic}/{partition}@{offset}")]
    Processor {
        /// The processor's group.
        group: &'static str,
        /// Topic of the input.
        topic: switchyard_events::Topic,
        /// Partition of the input.
        partition: u32,
        /// Offset of the input.
        offset: u64,
        /// The processor's error.
        #[source]
        source: ProcessError,
    },
    /// An output event does not encode (the processor built an event its schema rejects).
    #[error("processor `{group}` emitted a {kind} that does not encode")]
    Encode {
        /// The processor's group.
        group: &'static str,
        /// The output's kind.
        kind: switchyard_events::EventKind,
        /// The codec's error.
        #[source]
        source: switchyard_events::CodecError,
    },
    /// The processor's declaration is invalid (group name, no inputs).
    #[error("invalid processor declaration: {0}")]
    Invalid(String),
    /// A crash injected by a test (cargo feature `fault-injection`).
    #[cfg(feature = "fault-injection")]
    #[error("injected crash {0:?}")]
    InjectedCrash(crate::CrashPoint),
}

impl RunError {
    /// Returns a low-cardinality label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            RunError::Log { .. } => "log",
            RunError::Store { .. } => "store",
            RunError::Processor { .. } => "processor",
            RunError::Encode { .. } => "encode",
            RunError::Invalid(_) => "invalid",
            #[cfg(feature = "fault-injection")]
            RunError::InjectedCrash(_) => "injected_crash",
        }
    }
}

/// Returns whether a log error is worth retrying.
pub(crate) fn log_is_transient(error: &LogError) -> bool {
    error.retry_hint() == RetryHint::WithBackoff
}
