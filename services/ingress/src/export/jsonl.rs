//! The JSONL export format: one JSON object per line, then one trailer line.
//!
//! ```text
//! {"org":"acme","decision_id":"dec-…",…}\n
//! {"org":"acme","decision_id":"dec-…",…}\n
//! {"trailer":{"rows":2,"sha256":"<64 hex digits>"}}\n
//! ```
//!
//! `sha256` is the SHA-256 of every byte before the trailer line (the rows, newlines
//! included), `rows` the number of lines before it. A gzip-compressed export carries the same
//! bytes inside gzip; the hash is over the uncompressed JSONL. A file is complete exactly when
//! its last line is a trailer whose count and hash match what precedes it: a stream cut off
//! mid-way has no trailer, and a changed, dropped or added byte changes the hash.

use std::io::{BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The trailer's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trailer {
    /// Lines before the trailer.
    pub rows: u64,
    /// Lowercase hex SHA-256 of every byte before the trailer line.
    pub sha256: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrailerLine {
    trailer: Trailer,
}

/// Hashes and counts rows as they are written, then renders the trailer.
#[derive(Debug, Clone, Default)]
pub struct TrailerHasher {
    hasher: Sha256,
    rows: u64,
}

impl TrailerHasher {
    /// Returns a hasher over nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one row: its JSON and a newline, to `out` and to the hash.
    pub fn push_row<T: Serialize>(&mut self, row: &T, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let start = out.len();
        serde_json::to_writer(&mut *out, row)?;
        out.push(b'\n');
        self.hasher.update(&out[start..]);
        self.rows += 1;
        Ok(())
    }

    /// Returns the rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Returns the trailer line (with its newline) for everything pushed.
    pub fn finish(self) -> Vec<u8> {
        let line = TrailerLine {
            trailer: Trailer {
                rows: self.rows,
                sha256: hex::encode(self.hasher.finalize()),
            },
        };
        // A struct of a number and a string always serialises.
        let mut out = serde_json::to_vec(&line).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Rows before the trailer.
    pub rows: u64,
    /// Their SHA-256 (hex), as the trailer states it.
    pub sha256: String,
    /// Whether the file was gzip-compressed.
    pub gzip: bool,
    /// Uncompressed bytes before the trailer.
    pub bytes: u64,
}

/// Why an export does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The file could not be read (or its gzip stream is corrupt or cut off).
    #[error("cannot read the export: {0}")]
    Io(#[from] std::io::Error),
    /// The file has no trailer line: it is empty or was cut off.
    #[error(
        "no trailer line: the export is truncated or not a Switchyard export ({rows} complete lines read)"
    )]
    MissingTrailer {
        /// Lines read.
        rows: u64,
    },
    /// Something follows the trailer.
    #[error("data after the trailer (line {line})")]
    AfterTrailer {
        /// The first line after the trailer (1-based).
        line: u64,
    },
    /// The last line does not end with a newline (a cut-off write).
    #[error("line {line} does not end with a newline: the export is truncated")]
    Unterminated {
        /// The line (1-based).
        line: u64,
    },
    /// The row count differs.
    #[error(
        "the trailer says {expected} rows but {found} precede it (a line was dropped or added)"
    )]
    RowCount {
        /// Rows the trailer states.
        expected: u64,
        /// Rows found.
        found: u64,
    },
    /// The hash differs.
    #[error(
        "SHA-256 mismatch: the trailer says {expected}, the content hashes to {found} (the export was modified)"
    )]
    Hash {
        /// Hash the trailer states.
        expected: String,
        /// Hash of the content.
        found: String,
    },
    /// A line before the trailer is not JSON.
    #[error("line {line} is not JSON: {error}")]
    BadRow {
        /// The line (1-based).
        line: u64,
        /// The parse error.
        error: String,
    },
}

/// The gzip magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn trailer_of(line: &[u8]) -> Option<Trailer> {
    // Cheap test first: rows never start with `{"trailer"` (they are decision records).
    if !line.starts_with(b"{\"trailer\"") {
        return None;
    }
    serde_json::from_slice::<TrailerLine>(line)
        .ok()
        .map(|l| l.trailer)
}

/// Verifies an export read from `input`, plain or gzip-compressed (detected by its magic
/// bytes). Every row must be JSON, the last line must be the trailer, and its count and hash
/// must match the bytes before it.
pub fn verify(input: impl Read) -> Result<Verified, VerifyError> {
    let mut buffered = BufReader::with_capacity(1 << 16, input);
    let head = buffered.fill_buf()?;
    let gzip = head.starts_with(&GZIP_MAGIC);
    if gzip {
        let decoder = flate2::read::MultiGzDecoder::new(buffered);
        verify_plain(BufReader::with_capacity(1 << 16, decoder), true)
    } else {
        verify_plain(buffered, false)
    }
}

fn verify_plain(mut input: impl BufRead, gzip: bool) -> Result<Verified, VerifyError> {
    let mut hasher = Sha256::new();
    let mut rows = 0u64;
    let mut bytes = 0u64;
    let mut line = Vec::with_capacity(4096);
    let mut trailer: Option<Trailer> = None;
    let mut number = 0u64;
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        number += 1;
        if trailer.is_some() {
            return Err(VerifyError::AfterTrailer { line: number });
        }
        if line.last() != Some(&b'\n') {
            return Err(VerifyError::Unterminated { line: number });
        }
        let content = &line[..line.len() - 1];
        if let Some(t) = trailer_of(content) {
            trailer = Some(t);
            continue;
        }
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(content) {
            return Err(VerifyError::BadRow {
                line: number,
                error: e.to_string(),
            });
        }
        hasher.update(&line);
        rows += 1;
        bytes += line.len() as u64;
    }
    let Some(trailer) = trailer else {
        return Err(VerifyError::MissingTrailer { rows });
    };
    let found = hex::encode(hasher.finalize());
    if trailer.rows != rows {
        return Err(VerifyError::RowCount {
            expected: trailer.rows,
            found: rows,
        });
    }
    if !trailer.sha256.eq_ignore_ascii_case(&found) {
        return Err(VerifyError::Hash {
            expected: trailer.sha256,
            found,
        });
    }
    Ok(Verified {
        rows,
        sha256: found,
        gzip,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn export(rows: &[serde_json::Value]) -> Vec<u8> {
        let mut hasher = TrailerHasher::new();
        let mut out = Vec::new();
        for row in rows {
            hasher.push_row(row, &mut out).unwrap();
        }
        out.extend_from_slice(&hasher.finish());
        out
    }

    fn sample() -> Vec<u8> {
        export(&[
            serde_json::json!({"decision_id": "dec-1", "org": "a"}),
            serde_json::json!({"decision_id": "dec-2", "org": "a"}),
            serde_json::json!({"decision_id": "dec-3", "org": "a"}),
        ])
    }

    #[test]
    fn a_plain_and_a_gzip_export_verify() {
        let plain = sample();
        let v = verify(plain.as_slice()).unwrap();
        assert_eq!((v.rows, v.gzip), (3, false));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let v2 = verify(gz.as_slice()).unwrap();
        assert_eq!((v2.rows, v2.gzip, v2.sha256), (3, true, v.sha256));
        assert!(verify(export(&[]).as_slice()).is_ok());
    }

    #[test]
    fn tampering_fails() {
        let plain = sample();
        // One byte changed inside a row.
        let mut changed = plain.clone();
        let at = changed.iter().position(|&b| b == b'2').unwrap();
        changed[at] = b'7';
        assert!(matches!(
            verify(changed.as_slice()),
            Err(VerifyError::Hash { .. })
        ));
        // A line dropped.
        let text = String::from_utf8(plain.clone()).unwrap();
        let dropped: String = text
            .split_inclusive('\n')
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, l)| l)
            .collect();
        assert!(matches!(
            verify(dropped.as_bytes()),
            Err(VerifyError::RowCount {
                expected: 3,
                found: 2
            })
        ));
        // The trailer removed.
        let no_trailer: String = text.split_inclusive('\n').take(3).collect();
        assert!(matches!(
            verify(no_trailer.as_bytes()),
            Err(VerifyError::MissingTrailer { rows: 3 })
        ));
        // Cut off mid-line.
        assert!(verify(&plain[..plain.len() / 2]).is_err());
        // A truncated gzip stream.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        assert!(verify(&gz[..gz.len() - 10]).is_err());
        // Something after the trailer.
        let mut after = plain.clone();
        after.extend_from_slice(b"{\"x\":1}\n");
        assert!(matches!(
            verify(after.as_slice()),
            Err(VerifyError::AfterTrailer { line: 5 })
        ));
    }
}
