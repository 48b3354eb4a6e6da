//! Expiry of processor state by event time: an index of `(due time, item)` entries and a sweep
//! that drops what is due, without re-reading what it dropped before.
//!
//! A processor [`schedule`](Expiry::schedule)s an item (any key of its own) for a time and, on
//! each input, asks for what is [`due`](Expiry::due) at that input's event time; it then deletes
//! the state the items name (checking, when an item can be re-scheduled, that its stored due
//! time is the one the entry carries). In an LSM store deleted entries stay as tombstones until
//! a compaction, so a sweep that scanned the index from its start would step over every entry
//! it ever dropped: the sweep keeps a cursor (nothing is due before it) and a next-due time
//! (nothing to read before it), both lowered when an earlier entry is scheduled, so they only
//! ever cause extra reading, never a missed entry. The two bounds depend on when sweeps ran,
//! so unlike the rest of a processor's state they follow the order of its inputs, not only
//! their set; keep their tables out of order-independence checks.

use switchyard_store::{StateStore, Table};

use crate::{ProcessError, StagedState};

/// An expiry index (`index`, keys `[due time, sortable][item]`) and its sweep position (one
/// entry `cursor_key` in `cursors`).
#[derive(Debug, Clone, Copy)]
pub struct Expiry {
    index: Table,
    cursors: Table,
    cursor_key: &'static [u8],
}

/// Where a sweep stands: every index entry is at or after `cursor` and at or after `next_due`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    cursor: i64,
    next_due: i64,
}

const fn sortable(at: i64) -> [u8; 8] {
    ((at as u64) ^ (1 << 63)).to_be_bytes()
}

impl Expiry {
    /// Returns the expiry kept in `index`, its sweep position at `cursor_key` of `cursors`
    /// (a processor with several expiries gives each its own key).
    pub const fn new(index: Table, cursors: Table, cursor_key: &'static [u8]) -> Self {
        Self {
            index,
            cursors,
            cursor_key,
        }
    }

    async fn position<S: StateStore>(
        &self,
        state: &StagedState<'_, S>,
    ) -> Result<Position, ProcessError> {
        let bytes = state.get(self.cursors, self.cursor_key).await?;
        let parsed = bytes.as_deref().and_then(|bytes| {
            let (cursor, rest) = bytes.split_first_chunk::<8>()?;
            let next_due = <[u8; 8]>::try_from(rest).ok()?;
            Some(Position {
                cursor: i64::from_be_bytes(*cursor),
                next_due: i64::from_be_bytes(next_due),
            })
        });
        Ok(parsed.unwrap_or(Position {
            cursor: i64::MIN,
            next_due: i64::MAX,
        }))
    }

    fn write<S: StateStore>(&self, state: &mut StagedState<'_, S>, position: Position) {
        let mut value = position.cursor.to_be_bytes().to_vec();
        value.extend_from_slice(&position.next_due.to_be_bytes());
        state.put(self.cursors, self.cursor_key.to_vec(), value);
    }

    /// Schedules `item` to be due at event time `at`.
    ///
    /// # Errors
    /// The store failing.
    pub async fn schedule<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        at: i64,
        item: &[u8],
    ) -> Result<(), ProcessError> {
        let mut key = sortable(at).to_vec();
        key.extend_from_slice(item);
        state.put(self.index, key, Vec::new());
        let before = self.position(state).await?;
        let after = Position {
            cursor: before.cursor.min(at),
            next_due: before.next_due.min(at),
        };
        if after != before {
            self.write(state, after);
        }
        Ok(())
    }

    /// Returns up to `limit` items due at event time `now` (earliest first) with their due
    /// times, and removes their index entries. Reads nothing while nothing is due.
    ///
    /// # Errors
    /// The store failing.
    pub async fn due<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<u8>)>, ProcessError> {
        let before = self.position(state).await?;
        if before.next_due > now || limit == 0 {
            return Ok(Vec::new());
        }
        let mut position = before;
        // Strictly after `cursor - 1`: every entry at the cursor's time or later.
        let after = (position.cursor > i64::MIN).then(|| sortable(position.cursor - 1).to_vec());
        let page = state
            .scan_prefix(self.index, b"", after.as_deref(), limit)
            .await?;
        // Nothing left when the page is not full; due again at once when it is.
        position.next_due = if page.len() < limit { i64::MAX } else { now };
        let mut items = Vec::new();
        for (key, _) in page {
            let Some((time, item)) = key.split_first_chunk::<8>() else {
                state.delete(self.index, key);
                continue;
            };
            let at = (u64::from_be_bytes(*time) ^ (1 << 63)) as i64;
            if at > now {
                position.next_due = at;
                break;
            }
            position.cursor = position.cursor.max(at);
            items.push((at, item.to_vec()));
            state.delete(self.index, key);
        }
        if position != before {
            self.write(state, position);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use switchyard_store::EmbeddedStore;

    use super::*;

    const INDEX: Table = Table::new("test.expiry");
    const CURSORS: Table = Table::new("test.sweep");
    const EXPIRY: Expiry = Expiry::new(INDEX, CURSORS, b"sweep");

    /// Runs `f` on a staged state of `store` and applies it, as one batch.
    async fn batch<T>(
        store: &EmbeddedStore,
        f: impl AsyncFnOnce(&mut StagedState<'_, EmbeddedStore>) -> Result<T, ProcessError>,
    ) -> anyhow::Result<T> {
        let mut state = StagedState::new(store);
        let out = f(&mut state).await?;
        state.commit_record();
        store.apply(state.into_write_batch()).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn items_come_due_in_time_order_and_once() -> anyhow::Result<()> {
        let store = EmbeddedStore::temporary()?;
        batch(&store, async |s| {
            for (at, item) in [(30, "c"), (10, "a"), (20, "b"), (-5, "neg")] {
                EXPIRY.schedule(s, at, item.as_bytes()).await?;
            }
            Ok(())
        })
        .await?;
        let due = batch(&store, async |s| EXPIRY.due(s, 20, 10).await).await?;
        let names: Vec<(i64, &str)> = due
            .iter()
            .map(|(at, item)| (*at, std::str::from_utf8(item).unwrap_or("?")))
            .collect();
        assert_eq!(names, [(-5, "neg"), (10, "a"), (20, "b")]);
        // Nothing twice; nothing before its time.
        assert!(
            batch(&store, async |s| EXPIRY.due(s, 29, 10).await)
                .await?
                .is_empty()
        );
        // An item scheduled before the cursor (a late input) still comes due.
        batch(&store, async |s| EXPIRY.schedule(s, 15, b"late").await).await?;
        let due = batch(&store, async |s| EXPIRY.due(s, 100, 10).await).await?;
        assert_eq!(due, [(15, b"late".to_vec()), (30, b"c".to_vec())]);
        Ok(())
    }

    #[tokio::test]
    async fn a_full_page_leaves_the_rest_for_the_next_input() -> anyhow::Result<()> {
        let store = EmbeddedStore::temporary()?;
        batch(&store, async |s| {
            for at in 0..5 {
                EXPIRY.schedule(s, at, &[at as u8]).await?;
            }
            Ok(())
        })
        .await?;
        let first = batch(&store, async |s| EXPIRY.due(s, 10, 2).await).await?;
        let second = batch(&store, async |s| EXPIRY.due(s, 10, 2).await).await?;
        let third = batch(&store, async |s| EXPIRY.due(s, 10, 2).await).await?;
        let times = |v: &[(i64, Vec<u8>)]| v.iter().map(|(at, _)| *at).collect::<Vec<_>>();
        assert_eq!(
            (times(&first), times(&second), times(&third)),
            (vec![0, 1], vec![2, 3], vec![4])
        );
        Ok(())
    }
}
