//! What a processor sees ([`Input`]) and what it emits ([`Output`]).

use std::collections::HashMap;

use switchyard_events::{Event, EventId, Timestamp, Topic};
use switchyard_log::Header;

/// One decoded input record, with where it came from.
///
/// A processor reads time only from here ([`Input::event_time`]): never from a clock, so a
/// replay computes the same state.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The decoded event.
    pub event: Event,
    /// The topic it was read from.
    pub topic: Topic,
    /// The partition it was read from.
    pub partition: u32,
    /// Its offset in the partition.
    pub offset: u64,
    /// The record's partition key.
    pub key: Vec<u8>,
    /// The record's headers.
    pub headers: Vec<Header>,
}

impl Input {
    /// Returns the input event's id.
    pub fn event_id(&self) -> EventId {
        self.event.event_id()
    }

    /// Returns the input event's time (when the fact happened).
    pub fn event_time(&self) -> Timestamp {
        self.event.envelope().event_time
    }
}

/// The events a processor emits for one input.
///
/// Every emitted event gets a deterministic id derived from the input event's id, the
/// processor's group and a purpose label ([`EventId::derive`]), whatever id the event carried:
/// when a crash makes the runtime process an input again, it re-emits byte-identical events
/// that downstream consumers recognise by id and drop.
#[derive(Debug)]
pub struct Output {
    group: &'static str,
    source: EventId,
    events: Vec<Event>,
    /// How many times each purpose was used for this input.
    purposes: HashMap<String, u32>,
}

impl Output {
    /// Returns an empty output for an input event of processor `group`.
    pub fn new(group: &'static str, source: EventId) -> Self {
        Self {
            group,
            source,
            events: Vec::new(),
            purposes: HashMap::new(),
        }
    }

    /// Emits `event` to its topic ([`Event::topic`]) with its partition key, and returns the
    /// id it was given: `input_id.derive("<group>/<purpose>")`. Use one purpose per kind of
    /// output; emitting the same purpose again for one input suffixes `#1`, `#2`, ... in
    /// emission order (deterministic as long as the processor is).
    pub fn emit(&mut self, purpose: &str, event: impl Into<Event>) -> EventId {
        let mut event = event.into();
        let seen = self.purposes.entry(purpose.to_owned()).or_insert(0);
        let label = if *seen == 0 {
            format!("{}/{purpose}", self.group)
        } else {
            format!("{}/{purpose}#{seen}", self.group)
        };
        *seen += 1;
        let id = self.source.derive(&label);
        event.envelope_mut().event_id = id;
        self.events.push(event);
        id
    }

    /// Returns the events emitted so far, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Returns the emitted events.
    pub fn into_events(self) -> Vec<Event> {
        self.events
    }
}
