//! Time as a dependency. Processors and anything whose output depends on "now" take a [`Clock`]
//! instead of reading the wall clock, so tests (and replays) decide what time it is.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
///
/// Use it for timestamps that end up in events or state (`occurred_at`, window boundaries).
/// Measure elapsed time with `std::time::Instant` / `tokio::time::Instant` instead: those are
/// monotonic and, under `tokio::time::pause`, already controllable.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Returns the current time in microseconds since the Unix epoch (negative before 1970).
    fn now_micros(&self) -> i64;

    /// Returns the current time as a [`SystemTime`].
    fn now(&self) -> SystemTime {
        system_time_from_micros(self.now_micros())
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_micros(&self) -> i64 {
        (**self).now_micros()
    }
}

/// A shared, type-erased clock, for wiring code that picks the clock at runtime.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "SystemClock is the one place that reads the wall clock"
    )]
    fn now_micros(&self) -> i64 {
        micros_since_epoch(SystemTime::now())
    }
}

/// A clock that only moves when told to: clones share the same time, so a test can hand one
/// clone to the code under test and advance the other.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    /// Returns a clock stopped at `micros` since the Unix epoch.
    pub fn at_micros(micros: i64) -> Self {
        Self {
            micros: Arc::new(AtomicI64::new(micros)),
        }
    }

    /// Returns a clock stopped at `time`.
    pub fn at(time: SystemTime) -> Self {
        Self::at_micros(micros_since_epoch(time))
    }

    /// Sets the time to `micros` since the Unix epoch (it may go backwards: tests of late or
    /// out-of-order events need that).
    pub fn set_micros(&self, micros: i64) {
        self.micros.store(micros, Ordering::SeqCst);
    }

    /// Sets the time to `time`.
    pub fn set(&self, time: SystemTime) {
        self.set_micros(micros_since_epoch(time));
    }

    /// Moves the time forward by `by` (saturating), and returns the new time in microseconds.
    pub fn advance(&self, by: Duration) -> i64 {
        let delta = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        let previous = self
            .micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(delta))
            })
            .unwrap_or_else(|now| now);
        previous.saturating_add(delta)
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> i64 {
        self.micros.load(Ordering::SeqCst)
    }
}

/// Converts a [`SystemTime`] into microseconds since the Unix epoch, saturating at the `i64`
/// range (±292,000 years).
pub fn micros_since_epoch(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// Converts microseconds since the Unix epoch into a [`SystemTime`].
pub fn system_time_from_micros(micros: i64) -> SystemTime {
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_shared_between_clones_and_only_moves_when_told() {
        let clock = ManualClock::at_micros(1_000);
        let handed_out: SharedClock = Arc::new(clock.clone());
        assert_eq!(handed_out.now_micros(), 1_000);

        assert_eq!(clock.advance(Duration::from_millis(2)), 3_000);
        assert_eq!(handed_out.now_micros(), 3_000);

        clock.set_micros(500);
        assert_eq!(handed_out.now_micros(), 500, "setting may move backwards");
        assert_eq!(handed_out.now(), UNIX_EPOCH + Duration::from_micros(500));
    }

    #[test]
    fn manual_clock_round_trips_system_time() {
        let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_micros(7);
        let clock = ManualClock::at(time);
        assert_eq!(clock.now(), time);
        clock.set(UNIX_EPOCH - Duration::from_secs(1));
        assert_eq!(clock.now_micros(), -1_000_000);
        assert_eq!(clock.now(), UNIX_EPOCH - Duration::from_secs(1));
    }

    #[test]
    fn advance_saturates() {
        let clock = ManualClock::at_micros(i64::MAX - 1);
        assert_eq!(clock.advance(Duration::from_secs(1)), i64::MAX);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_micros() > 1_577_836_800_000_000);
    }
}
