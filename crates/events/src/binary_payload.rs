//! Signing payload v2: the members of the v1 payload (the same walk, the same pruning), in a
//! typed, length-prefixed binary encoding instead of canonical JSON. Numbers are their 8 bytes,
//! not shortest decimal text, so the payload costs a fraction of v1's to write and is shorter
//! to hash. The exact form is specified in `docs/routing.md` ("Signing payload v2") and
//! `schemas/README.md`; [`write_value`] encodes a JSON value the way a verifier in another
//! language does from a trace's JSON.
//!
//! Every value is one tag byte and its content:
//!
//! | tag | value | content |
//! | --- | --- | --- |
//! | `0x00` | null | nothing |
//! | `0x01` | false | nothing |
//! | `0x02` | true | nothing |
//! | `0x03` | integer | i64, 8 bytes big-endian |
//! | `0x04` | float | IEEE-754 binary64, 8 bytes big-endian |
//! | `0x05` | string | u32 BE byte length, UTF-8 bytes |
//! | `0x06` | array | u32 BE item count, the items |
//! | `0x07` | object | u32 BE member count, then per member: the key (u32 BE byte length, UTF-8 bytes, no tag) and the value; sorted by the key's UTF-8 bytes |

use serde_json::Value;

use crate::canonical_fast::Encoding;

/// The tag of `null`.
pub(crate) const NULL: u8 = 0x00;
/// The tag of `false`.
pub(crate) const FALSE: u8 = 0x01;
/// The tag of `true`.
pub(crate) const TRUE: u8 = 0x02;
/// The tag of an integer (i64).
pub(crate) const INT: u8 = 0x03;
/// The tag of a float (f64).
pub(crate) const FLOAT: u8 = 0x04;
/// The tag of a string.
pub(crate) const STRING: u8 = 0x05;
/// The tag of an array.
pub(crate) const ARRAY: u8 = 0x06;
/// The tag of an object.
pub(crate) const OBJECT: u8 = 0x07;

/// A length or count as 4 bytes big-endian (a payload never comes near 4 GiB).
#[inline(always)]
fn write_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

/// Signing payload v2: typed and length-prefixed.
pub(crate) struct Binary;

impl Encoding for Binary {
    const UTF16_KEY_ORDER: bool = false;

    #[inline(always)]
    fn open_object(out: &mut Vec<u8>) {
        // The count is written when the object closes.
        out.extend_from_slice(&[OBJECT, 0, 0, 0, 0]);
    }

    #[inline(always)]
    fn close_object(out: &mut Vec<u8>, start: usize, count: u32) {
        if let Some(slot) = out.get_mut(start + 1..start + 5) {
            slot.copy_from_slice(&count.to_be_bytes());
        }
    }

    #[inline(always)]
    fn field(out: &mut Vec<u8>, _first: bool, name: &'static str) {
        write_len(out, name.len());
        out.extend_from_slice(name.as_bytes());
    }

    #[inline(always)]
    fn map_key(out: &mut Vec<u8>, _first: bool, key: &str) {
        write_len(out, key.len());
        out.extend_from_slice(key.as_bytes());
    }

    #[inline(always)]
    fn open_array(out: &mut Vec<u8>, count: u32) {
        out.push(ARRAY);
        out.extend_from_slice(&count.to_be_bytes());
    }

    #[inline(always)]
    fn item(_out: &mut Vec<u8>, _first: bool) {}

    #[inline(always)]
    fn close_array(_out: &mut Vec<u8>) {}

    #[inline(always)]
    fn string(out: &mut Vec<u8>, value: &str) {
        out.push(STRING);
        write_len(out, value.len());
        out.extend_from_slice(value.as_bytes());
    }

    #[inline(always)]
    fn int(out: &mut Vec<u8>, value: i64) {
        let mut bytes = [INT; 9];
        bytes[1..].copy_from_slice(&value.to_be_bytes());
        out.extend_from_slice(&bytes);
    }

    #[inline(always)]
    fn float(out: &mut Vec<u8>, value: f64) {
        let mut bytes = [FLOAT; 9];
        bytes[1..].copy_from_slice(&value.to_bits().to_be_bytes());
        out.extend_from_slice(&bytes);
    }

    #[inline(always)]
    fn bool(out: &mut Vec<u8>, value: bool) {
        out.push(if value { TRUE } else { FALSE });
    }

    #[inline(always)]
    fn null(out: &mut Vec<u8>) {
        out.push(NULL);
    }
}

/// Why a JSON value has no v2 encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} has no signing payload v2 encoding")]
pub(crate) struct Unencodable(&'static str);

/// Appends the v2 encoding of a JSON value, as a verifier computes it from a trace's JSON: a
/// number written with neither `.` nor an exponent is an integer (it must fit an i64), any
/// other is a float; object members sorted by the key's UTF-8 bytes.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), Unencodable> {
    match value {
        Value::Null => Binary::null(out),
        Value::Bool(b) => Binary::bool(out, *b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Binary::int(out, i);
            } else if n.is_u64() {
                return Err(Unencodable("an integer above i64::MAX"));
            } else if let Some(f) = n.as_f64() {
                Binary::float(out, f);
            } else {
                return Err(Unencodable("a number that is not a double"));
            }
        }
        Value::String(s) => Binary::string(out, s),
        Value::Array(items) => {
            Binary::open_array(out, u32::try_from(items.len()).unwrap_or(u32::MAX));
            for item in items {
                write_value(out, item)?;
            }
        }
        Value::Object(map) => {
            // Sorted explicitly: serde_json's map keeps insertion order when another crate in
            // the build enables its `preserve_order` feature.
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let start = out.len();
            Binary::open_object(out);
            for (key, item) in &members {
                Binary::map_key(out, false, key);
                write_value(out, item)?;
            }
            Binary::close_object(out, start, u32::try_from(members.len()).unwrap_or(u32::MAX));
        }
    }
    Ok(())
}
