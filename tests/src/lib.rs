//! switchyard-e2e: whole-system tests. The `crash-writer` binary is the victim of the crash
//! test: it appends and consumes on the embedded log and reports every acknowledgement on
//! stdout, so the test can kill it with SIGKILL at any moment and check what survived.

/// Number of distinct keys the crash writer uses.
pub const CRASH_KEYS: u32 = 64;

/// Parses one line of the crash writer's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashLine {
    /// `ACK <key> <seq> <partition> <offset>`: an append of `key`'s `seq`-th record was acknowledged.
    Ack {
        /// Key index.
        key: u32,
        /// Sequence number within the key.
        seq: u64,
        /// Partition it landed in.
        partition: u32,
        /// Offset it landed at.
        offset: u64,
    },
    /// `COMMIT <partition> <offset>`: the consumer group's commit was acknowledged.
    Commit {
        /// Partition.
        partition: u32,
        /// Next offset to read.
        offset: u64,
    },
}

impl CrashLine {
    /// Parses a line; `None` for anything else (a torn last line after SIGKILL).
    pub fn parse(line: &str) -> Option<CrashLine> {
        let mut parts = line.split_ascii_whitespace();
        match parts.next()? {
            "ACK" => {
                let key = parts.next()?.parse().ok()?;
                let seq = parts.next()?.parse().ok()?;
                let partition = parts.next()?.parse().ok()?;
                let offset = parts.next()?.parse().ok()?;
                parts.next().is_none().then_some(CrashLine::Ack {
                    key,
                    seq,
                    partition,
                    offset,
                })
            }
            "COMMIT" => {
                let partition = parts.next()?.parse().ok()?;
                let offset = parts.next()?.parse().ok()?;
                parts
                    .next()
                    .is_none()
                    .then_some(CrashLine::Commit { partition, offset })
            }
            _ => None,
        }
    }
}
