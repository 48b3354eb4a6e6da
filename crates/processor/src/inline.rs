//! [`Inline`]: processors driven synchronously, event by event, without a log.
//!
//! For the simulator and for tests that need a processor's exact effect on state without the
//! consumer loop: each event is handed to the processor as the runtime would hand it (an
//! [`Input`] with a dense offset per topic), the record's writes are applied to the store
//! together with the checkpoint, and the outputs come back with the same derived ids the runtime
//! would give them. Poison inputs are dropped (and counted) instead of dead-lettered.

use std::collections::BTreeMap;

use switchyard_events::{Event, Topic};
use switchyard_store::StateStore;

use crate::io::{Input, Output};
use crate::state::StagedState;
use crate::{ErrorClass, ProcessError, Processor};

/// Drives processors over one store, one event at a time.
#[derive(Debug)]
pub struct Inline<S> {
    store: S,
    offsets: BTreeMap<(&'static str, Topic), u64>,
    poisoned: u64,
}

impl<S: StateStore> Inline<S> {
    /// Returns a driver over `store`.
    pub fn new(store: S) -> Self {
        Inline {
            store,
            offsets: BTreeMap::new(),
            poisoned: 0,
        }
    }

    /// Returns the store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Returns how many inputs were poison so far.
    pub fn poisoned(&self) -> u64 {
        self.poisoned
    }

    /// Hands `event` to `processor` when it consumes the event's topic; returns its outputs.
    pub async fn step<P: Processor>(
        &mut self,
        processor: &P,
        event: &Event,
    ) -> Result<Vec<Event>, ProcessError> {
        let topic = event.topic();
        if !processor.inputs().contains(&topic) {
            return Ok(Vec::new());
        }
        let offset = self.offsets.entry((processor.group(), topic)).or_insert(0);
        let input = Input {
            event: event.clone(),
            topic,
            partition: 0,
            offset: *offset,
            key: event.partition_key().as_str().as_bytes().to_vec(),
            headers: Vec::new(),
        };
        *offset += 1;
        let mut state = StagedState::new(&self.store);
        let mut out = Output::new(processor.group(), input.event_id());
        match processor.process(&input, &mut state, &mut out).await {
            Ok(()) => {}
            Err(e) if e.class() == ErrorClass::Poison => {
                self.poisoned += 1;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        }
        state.commit_record();
        let mut batch = state.into_write_batch();
        batch.checkpoint(processor.group(), topic, 0, input.offset + 1);
        self.store.apply(batch).await?;
        Ok(out.into_events())
    }
}
