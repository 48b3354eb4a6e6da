//! Avro binary written straight from the domain types, without building an
//! `apache_avro::types::Value` tree first.
//!
//! The bytes are exactly what apache-avro's `GenericDatumWriter` writes for the value that
//! [`crate::wire::ToAvro`] builds (the test suite compares them byte for byte), except that map
//! entries come in key order (the domain maps are `BTreeMap`s; the generic path goes through a
//! `HashMap` and writes them in hash order). Encoding rules (Avro 1.11 spec, binary encoding):
//! `int`/`long` as zigzag varints, `string` as a `long` byte length then UTF-8, `double` as 8
//! little-endian bytes, `boolean` as one byte, an enum as the `int` index of its symbol, a union
//! as the `long` index of its branch then the branch's value, arrays and maps as one block (the
//! item count, the items) and the terminating empty block `0` (an empty one is just `0`), a record
//! as its fields in schema order. The only logical type in the schemas, `timestamp-micros`, is a
//! `long`.

use std::collections::BTreeMap;

use crate::ids::Timestamp;

/// Writes a domain value as the Avro binary datum of its schema.
pub(crate) trait WriteAvro {
    /// Appends the datum to `out`.
    fn write_avro(&self, out: &mut Vec<u8>);
}

/// Appends a `long` (zigzag varint).
#[inline]
pub(crate) fn write_long(out: &mut Vec<u8>, value: i64) {
    // Zigzag: 0, -1, 1, -2, ... → 0, 1, 2, 3, ...; the casts reinterpret bits.
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    while n > 0x7f {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends an `int` (same encoding as a `long` for every `i32`).
#[inline]
pub(crate) fn write_int(out: &mut Vec<u8>, value: i32) {
    write_long(out, i64::from(value));
}

/// Appends a `string` (or `bytes`): its length, then the bytes.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, value: &str) {
    write_len(out, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// Appends a length or item count as a `long`.
#[inline]
pub(crate) fn write_len(out: &mut Vec<u8>, len: usize) {
    // A Vec or str is never longer than isize::MAX, so the conversion cannot fail.
    write_long(out, i64::try_from(len).unwrap_or(i64::MAX));
}

/// Appends the index of a union branch.
#[inline]
pub(crate) fn write_branch(out: &mut Vec<u8>, index: i64) {
    write_long(out, index);
}

/// Appends the index of an enum symbol.
#[inline]
pub(crate) fn write_symbol<T: PartialEq>(out: &mut Vec<u8>, all: &[T], value: &T) {
    let index = all.iter().position(|s| s == value).unwrap_or_default();
    write_len(out, index);
}

impl WriteAvro for String {
    #[inline]
    fn write_avro(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl WriteAvro for str {
    #[inline]
    fn write_avro(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl WriteAvro for bool {
    #[inline]
    fn write_avro(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl WriteAvro for i32 {
    #[inline]
    fn write_avro(&self, out: &mut Vec<u8>) {
        write_int(out, *self);
    }
}

impl WriteAvro for i64 {
    #[inline]
    fn write_avro(&self, out: &mut Vec<u8>) {
        write_long(out, *self);
    }
}

impl WriteAvro for f64 {
    #[inline]
    fn write_avro(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl WriteAvro for Timestamp {
    #[inline]
    fn write_avro(&self, out: &mut Vec<u8>) {
        write_long(out, self.as_micros());
    }
}

impl<T: WriteAvro> WriteAvro for Option<T> {
    #[inline]
    fn write_avro(&self, out: &mut Vec<u8>) {
        // Every nullable field is `["null", T]` with null first (see `ToAvro for Option`).
        match self {
            None => write_branch(out, 0),
            Some(v) => {
                write_branch(out, 1);
                v.write_avro(out);
            }
        }
    }
}

impl<T: WriteAvro> WriteAvro for Vec<T> {
    fn write_avro(&self, out: &mut Vec<u8>) {
        if !self.is_empty() {
            write_len(out, self.len());
            for item in self {
                item.write_avro(out);
            }
        }
        out.push(0);
    }
}

impl<T: WriteAvro> WriteAvro for BTreeMap<String, T> {
    fn write_avro(&self, out: &mut Vec<u8>) {
        if !self.is_empty() {
            write_len(out, self.len());
            for (key, value) in self {
                write_str(out, key);
                value.write_avro(out);
            }
        }
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(value: apache_avro::types::Value, schema: &str) -> Vec<u8> {
        let schema = apache_avro::Schema::parse_str(schema).unwrap_or(apache_avro::Schema::Null);
        apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .and_then(|w| w.write_value_to_vec(value))
            .unwrap_or_default()
    }

    #[test]
    fn longs_match_apache_avro_at_the_edges() {
        let edges = [
            0,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            8191,
            8192,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
            i64::MAX - 1,
            i64::MIN + 1,
        ];
        for value in edges {
            let mut out = Vec::new();
            write_long(&mut out, value);
            let expected = reference(apache_avro::types::Value::Long(value), r#""long""#);
            assert_eq!(out, expected, "long {value}");
        }
        for value in [0, 1, -1, i32::MAX, i32::MIN, 1 << 20, -(1 << 20)] {
            let mut out = Vec::new();
            write_int(&mut out, value);
            let expected = reference(apache_avro::types::Value::Int(value), r#""int""#);
            assert_eq!(out, expected, "int {value}");
        }
    }

    #[test]
    fn strings_and_doubles_match_apache_avro() {
        let long_text = "é".repeat(100);
        for text in ["", "a", "😀", long_text.as_str()] {
            let mut out = Vec::new();
            write_str(&mut out, text);
            let expected = reference(
                apache_avro::types::Value::String(text.to_owned()),
                r#""string""#,
            );
            assert_eq!(out, expected, "string {text:?}");
        }
        for value in [0.0, -0.0, 1.5, f64::MIN_POSITIVE, f64::MAX, f64::INFINITY] {
            let mut out = Vec::new();
            value.write_avro(&mut out);
            let expected = reference(apache_avro::types::Value::Double(value), r#""double""#);
            assert_eq!(out, expected, "double {value}");
        }
    }
}
