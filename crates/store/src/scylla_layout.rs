//! The ScyllaDB state store's layout: the CQL schema, how keys map to partitions and scans to
//! key ranges, and how a [`WriteBatch`] becomes one CQL batch. Pure and compiled without the
//! driver, so `make test` checks it even though the backend itself (`crate::scylla`, feature
//! `scylla`) cannot be run here.

use std::collections::BTreeMap;

use switchyard_events::Topic;

use crate::{StoreError, Table, WriteBatch};

/// The CQL schema, statement by statement (`schemas/scylla/state_store.cql`).
pub const SCHEMA_CQL: &str = include_str!("../../../schemas/scylla/state_store.cql");

/// Buckets (partitions) per store table. Part of the stored format.
pub const BUCKETS: i32 = 16;

/// The most writes one `apply` may carry (after folding writes to the same key).
pub const MAX_BATCH_STATEMENTS: usize = 4096;

/// About the most bytes of keys and values one `apply` may carry: ScyllaDB refuses a batch above
/// `batch_size_fail_threshold_in_kb` (1024 KiB by default); this stays under it with room for the
/// statements' framing.
pub const MAX_BATCH_BYTES: usize = 900 * 1024;

/// The statements of [`SCHEMA_CQL`]: `--` comments removed, split at `;`, trimmed, non-empty.
pub fn schema_statements() -> Vec<String> {
    let without_comments: String = SCHEMA_CQL
        .lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// The bucket of a key: FNV-1a (32 bits) of its bytes, mod [`BUCKETS`].
pub fn bucket_of(key: &[u8]) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    // BUCKETS is positive and small: the remainder fits an i32.
    i32::try_from(h % BUCKETS.unsigned_abs()).unwrap_or(0)
}

/// The smallest key greater than every key that starts with `prefix`, if there is one (none for
/// the empty prefix or a prefix of 0xFF bytes only).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Which of the four scan statements a scan needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanShape {
    /// `k > ?` (after a cursor) rather than `k >= ?` (from the prefix).
    pub exclusive_start: bool,
    /// `k < ?` bounds the range.
    pub bounded: bool,
}

impl ScanShape {
    /// Every shape, each at its [`ScanShape::index`].
    pub const ALL: [ScanShape; 4] = [
        ScanShape {
            exclusive_start: false,
            bounded: false,
        },
        ScanShape {
            exclusive_start: false,
            bounded: true,
        },
        ScanShape {
            exclusive_start: true,
            bounded: false,
        },
        ScanShape {
            exclusive_start: true,
            bounded: true,
        },
    ];

    /// The shape's position in [`ScanShape::ALL`].
    pub fn index(self) -> usize {
        usize::from(self.exclusive_start) * 2 + usize::from(self.bounded)
    }

    /// The `SELECT` of this shape; bind values: table, bucket, start key, end key if bounded.
    pub fn cql(self) -> String {
        let start = if self.exclusive_start { ">" } else { ">=" };
        let end = if self.bounded { " AND k < ?" } else { "" };
        format!("SELECT k, v FROM state WHERE tbl = ? AND bucket = ? AND k {start} ?{end}")
    }
}

/// The range a scan covers: the start key, whether it is exclusive, and the end (exclusive).
/// A cursor before the prefix does not widen the scan.
pub fn scan_range(prefix: &[u8], after: Option<&[u8]>) -> (Vec<u8>, bool, Option<Vec<u8>>) {
    let end = prefix_successor(prefix);
    match after {
        Some(after) if after >= prefix => (after.to_vec(), true, end),
        _ => (prefix.to_vec(), false, end),
    }
}

/// Whether `name` is a keyspace name Switchyard accepts (1 to 48 of `[A-Za-z0-9_]`).
pub fn is_valid_keyspace(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A batch folded to one write per key, in the embedded store's order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FoldedBatch {
    /// `Some(value)` to write, `None` to delete.
    pub state: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
    /// The last checkpoint of each (group, topic, partition).
    pub checkpoints: BTreeMap<(String, Topic, u32), u64>,
}

/// Folds a batch to one write per key (puts in order, then deletes, as the embedded store applies
/// them) and checks it against the batch limits and table names.
pub fn fold(batch: WriteBatch) -> Result<FoldedBatch, StoreError> {
    let mut folded = FoldedBatch::default();
    for (table, key, value) in batch.puts {
        table.validate()?;
        folded.state.insert((table, key), Some(value));
    }
    for (table, key) in batch.deletes {
        table.validate()?;
        folded.state.insert((table, key), None);
    }
    for c in batch.checkpoints {
        folded
            .checkpoints
            .insert((c.group, c.topic, c.partition), c.offset);
    }
    let statements = folded.state.len() + folded.checkpoints.len();
    if statements > MAX_BATCH_STATEMENTS {
        return Err(StoreError::Invalid(format!(
            "a ScyllaDB batch holds at most {MAX_BATCH_STATEMENTS} writes; this one has {statements}"
        )));
    }
    let bytes: usize = folded
        .state
        .iter()
        .map(|((table, key), value)| {
            table.name().len() + key.len() + value.as_ref().map_or(0, Vec::len)
        })
        .sum::<usize>()
        + folded
            .checkpoints
            .keys()
            .map(|(group, topic, _)| group.len() + topic.name().len() + 12)
            .sum::<usize>();
    if bytes > MAX_BATCH_BYTES {
        return Err(StoreError::Invalid(format!(
            "a ScyllaDB batch carries at most {MAX_BATCH_BYTES} bytes; this one has {bytes}"
        )));
    }
    Ok(folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_file_is_two_create_if_not_exists_statements() {
        let statements = schema_statements();
        assert_eq!(statements.len(), 2, "{statements:?}");
        assert!(statements[0].starts_with("CREATE TABLE IF NOT EXISTS state ("));
        assert!(statements[0].contains("PRIMARY KEY ((tbl, bucket), k)"));
        assert!(statements[0].ends_with("WITH CLUSTERING ORDER BY (k ASC)"));
        assert!(statements[1].starts_with("CREATE TABLE IF NOT EXISTS checkpoints ("));
        assert!(statements.iter().all(|s| !s.contains("--")));
    }

    #[test]
    fn the_schema_names_every_column_the_statements_use() {
        let schema = schema_statements().join(" ");
        for column in [
            "tbl text",
            "bucket int",
            "k blob",
            "v blob",
            "grp text",
            "topic text",
        ] {
            assert!(schema.contains(column), "{column}");
        }
        assert!(schema.contains("part int") && schema.contains("next_offset bigint"));
        for shape in ScanShape::ALL {
            assert_eq!(ScanShape::ALL[shape.index()], shape);
        }
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        // FNV-1a of "" is the offset basis; of "a" a published test vector.
        assert_eq!(bucket_of(b""), (0x811c_9dc5_u32 % 16) as i32);
        assert_eq!(bucket_of(b"a"), (0xe40c_292c_u32 % 16) as i32);
        let mut seen = [0_u32; 16];
        for i in 0..1600 {
            seen[bucket_of(format!("session/{i}").as_bytes()) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    #[test]
    fn prefix_successor_bounds_exactly_the_prefixed_keys() {
        assert_eq!(prefix_successor(b"session/"), Some(b"session0".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(prefix_successor(b""), None);
        let end = prefix_successor(b"ab").unwrap_or_default();
        for key in [&b"ab"[..], b"ab\x00", b"ab\xff\xff", b"abz"] {
            assert!(key >= &b"ab"[..] && key < end.as_slice(), "{key:?}");
        }
        for key in [&b"aa\xff"[..], b"ac", b"b"] {
            assert!(!(key >= &b"ab"[..] && key < end.as_slice()), "{key:?}");
        }
    }

    #[test]
    fn scans_start_after_the_cursor_or_at_the_prefix() {
        assert_eq!(
            scan_range(b"s/", Some(b"s/5")),
            (b"s/5".to_vec(), true, Some(b"s0".to_vec()))
        );
        assert_eq!(
            scan_range(b"s/", None),
            (b"s/".to_vec(), false, Some(b"s0".to_vec()))
        );
        // A cursor before the prefix does not widen the scan.
        assert_eq!(
            scan_range(b"s/", Some(b"a")),
            (b"s/".to_vec(), false, Some(b"s0".to_vec()))
        );
        assert_eq!(scan_range(b"", Some(b"k")), (b"k".to_vec(), true, None));
    }

    #[test]
    fn a_batch_folds_to_the_embedded_order() -> Result<(), StoreError> {
        const T: Table = Table::new("t.a");
        let mut b = WriteBatch::new();
        b.put(T, "k", "1")
            .put(T, "k", "2")
            .put(T, "gone", "x")
            .delete(T, "gone")
            .checkpoint("g", Topic::Feedback, 0, 5)
            .checkpoint("g", Topic::Feedback, 0, 7);
        let folded = fold(b)?;
        assert_eq!(
            folded.state.get(&(T, b"k".to_vec())),
            Some(&Some(b"2".to_vec()))
        );
        assert_eq!(folded.state.get(&(T, b"gone".to_vec())), Some(&None));
        assert_eq!(
            folded
                .checkpoints
                .get(&("g".to_owned(), Topic::Feedback, 0)),
            Some(&7)
        );
        Ok(())
    }

    #[test]
    fn oversized_and_invalid_batches_are_refused_before_sending() {
        let mut b = WriteBatch::new();
        for i in 0..=MAX_BATCH_STATEMENTS {
            b.put(Table::new("t.a"), format!("{i}"), "v");
        }
        assert!(matches!(fold(b), Err(StoreError::Invalid(_))));
        let mut b = WriteBatch::new();
        b.put(Table::new("t.a"), "big", vec![0_u8; MAX_BATCH_BYTES + 1]);
        assert!(matches!(fold(b), Err(StoreError::Invalid(_))));
        let mut b = WriteBatch::new();
        b.put(Table::new("Bad!"), "k", "v");
        assert!(matches!(fold(b), Err(StoreError::Invalid(_))));
    }
}
