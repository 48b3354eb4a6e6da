//! Decoded inputs shared by the processors of one process.
//!
//! In single-node mode every processor runs in the `serve` process and reads the same records:
//! a `RouteDecided` (≈6 KB of Avro with 21 candidates) is consumed by the decisions read model,
//! session-NPS, the projector and the Parquet sink, and each used to decode it on its own (the
//! largest single cost of the processors under load). [`SharedDecodes`] keeps the most recent
//! decoded events by their log position, so the first processor to reach a record decodes it
//! and the others take the same [`Arc<Event>`].
//!
//! An entry is found by `(topic, partition, offset)` and used only if the record's bytes still
//! match what was decoded: the payload's length and its first [`HEAD`] bytes, which hold the
//! schema id and the envelope's event id (a UUIDv7, unique per event). So a topic deleted and
//! recreated under a running process, reusing offsets, is decoded afresh rather than served a
//! stale event. The cache holds at most `capacity` events and drops the oldest first: a
//! processor that falls further behind than that decodes for itself, exactly as before.
//!
//! Processors never mutate their input (`Input::event` is shared), so sharing cannot change
//! what a processor computes; only who pays for the decode.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use switchyard_events::{Event, Topic};

/// Bytes of a payload's beginning compared before an entry is used.
pub const HEAD: usize = 64;

/// A record's log position.
type Position = (Topic, u32, u64);

/// What identifies the bytes an entry was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: usize,
    head: [u8; HEAD],
}

impl Fingerprint {
    fn of(value: &[u8]) -> Self {
        let mut head = [0; HEAD];
        let n = value.len().min(HEAD);
        if let (Some(dst), Some(src)) = (head.get_mut(..n), value.get(..n)) {
            dst.copy_from_slice(src);
        }
        Self {
            len: value.len(),
            head,
        }
    }
}

#[derive(Debug)]
struct Entry {
    fingerprint: Fingerprint,
    event: Arc<Event>,
}

#[derive(Debug, Default)]
struct Ring {
    entries: HashMap<Position, Entry>,
    /// Insertion order, oldest first.
    order: VecDeque<Position>,
}

/// The most recently decoded input events of a process, by log position. Cheap to clone
/// (shared); [`SharedDecodes::default`] shares nothing (every lookup misses, nothing is kept).
#[derive(Debug, Clone, Default)]
pub struct SharedDecodes {
    inner: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    capacity: usize,
    ring: Mutex<Ring>,
}

impl SharedDecodes {
    /// Returns a cache of at most `capacity` decoded events (0: shares nothing).
    pub fn new(capacity: usize) -> Self {
        if capacity == 0 {
            return Self::default();
        }
        Self {
            inner: Some(Arc::new(Shared {
                capacity,
                ring: Mutex::new(Ring {
                    entries: HashMap::with_capacity(capacity),
                    order: VecDeque::with_capacity(capacity),
                }),
            })),
        }
    }

    /// Returns whether this cache keeps anything.
    pub const fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Returns the event decoded from the record at `(topic, partition, offset)` whose payload
    /// is `value`, if it is still kept and was decoded from the same bytes.
    pub fn get(
        &self,
        topic: Topic,
        partition: u32,
        offset: u64,
        value: &[u8],
    ) -> Option<Arc<Event>> {
        let shared = self.inner.as_ref()?;
        let ring = shared.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = ring.entries.get(&(topic, partition, offset))?;
        (entry.fingerprint == Fingerprint::of(value)).then(|| Arc::clone(&entry.event))
    }

    /// Keeps `event`, decoded from the payload `value` of the record at `(topic, partition,
    /// offset)`, dropping the oldest entry when full.
    pub fn put(&self, topic: Topic, partition: u32, offset: u64, value: &[u8], event: Arc<Event>) {
        let Some(shared) = self.inner.as_ref() else {
            return;
        };
        let position = (topic, partition, offset);
        let entry = Entry {
            fingerprint: Fingerprint::of(value),
            event,
        };
        let mut ring = shared.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.entries.insert(position, entry).is_none() {
            ring.order.push_back(position);
        }
        while ring.order.len() > shared.capacity {
            if let Some(oldest) = ring.order.pop_front() {
                ring.entries.remove(&oldest);
            }
        }
    }

    /// Returns how many events are kept.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |shared| {
            shared
                .ring
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entries
                .len()
        })
    }

    /// Returns whether no event is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_events::Codec;

    /// Distinct events (the frozen feedback sample at different times), compared by identity.
    fn event(n: i64) -> Arc<Event> {
        let hex = include_str!("../../../schemas/samples/feedback_submitted/v2.bin.hex");
        let bytes: Vec<u8> = (0..hex.trim().len())
            .step_by(2)
            .filter_map(|i| hex.get(i..i + 2))
            .filter_map(|b| u8::from_str_radix(b, 16).ok())
            .collect();
        let Ok(mut e) = Codec::new().and_then(|c| c.decode(&bytes)) else {
            panic!("the frozen sample decodes");
        };
        e.envelope_mut().event_time = switchyard_events::Timestamp::from_micros(n);
        Arc::new(e)
    }

    fn same(found: Option<Arc<Event>>, kept: &Arc<Event>) -> bool {
        found.is_some_and(|f| Arc::ptr_eq(&f, kept))
    }

    #[test]
    fn a_kept_event_is_found_by_position_and_bytes() {
        let cache = SharedDecodes::new(4);
        let bytes = b"\0\0\0\0\x01event-a".to_vec();
        let kept = event(1);
        cache.put(Topic::Feedback, 3, 10, &bytes, Arc::clone(&kept));
        assert!(same(cache.get(Topic::Feedback, 3, 10, &bytes), &kept));
        assert!(
            cache.get(Topic::Feedback, 3, 11, &bytes).is_none(),
            "offset"
        );
        assert!(
            cache.get(Topic::Feedback, 2, 10, &bytes).is_none(),
            "partition"
        );
        assert!(
            cache.get(Topic::Responses, 3, 10, &bytes).is_none(),
            "topic"
        );
    }

    #[test]
    fn different_bytes_at_the_same_position_are_not_served_the_old_event() {
        let cache = SharedDecodes::new(4);
        cache.put(Topic::Feedback, 0, 0, b"\0\0\0\0\x01aaaa", event(1));
        assert!(
            cache
                .get(Topic::Feedback, 0, 0, b"\0\0\0\0\x01aaab")
                .is_none()
        );
        assert!(
            cache
                .get(Topic::Feedback, 0, 0, b"\0\0\0\0\x01aaaa+")
                .is_none()
        );
        let mut long = vec![7u8; 200];
        cache.put(Topic::Feedback, 0, 1, &long, event(2));
        assert!(cache.get(Topic::Feedback, 0, 1, &long).is_some());
        if let Some(b) = long.get_mut(HEAD - 1) {
            *b = 8;
        }
        assert!(cache.get(Topic::Feedback, 0, 1, &long).is_none());
    }

    #[test]
    fn the_oldest_entries_go_first_and_the_size_is_bounded() {
        let cache = SharedDecodes::new(3);
        let kept: Vec<Arc<Event>> = (0..5).map(event).collect();
        for (offset, e) in (0u64..).zip(&kept) {
            cache.put(Topic::Feedback, 0, offset, b"x", Arc::clone(e));
            // A repeated put (two processors decoding the same record) takes no extra room.
            cache.put(Topic::Feedback, 0, offset, b"x", Arc::clone(e));
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(Topic::Feedback, 0, 1, b"x").is_none());
        for (offset, e) in (0u64..).zip(&kept).skip(2) {
            assert!(same(cache.get(Topic::Feedback, 0, offset, b"x"), e));
        }
    }

    #[test]
    fn a_disabled_cache_keeps_nothing() {
        let cache = SharedDecodes::new(0);
        assert!(!cache.is_enabled());
        cache.put(Topic::Feedback, 0, 0, b"x", event(0));
        assert!(cache.get(Topic::Feedback, 0, 0, b"x").is_none());
        assert!(cache.is_empty());
    }
}
