//! Avro binary read straight into the domain types, for records written with the latest schema
//! version (no schema resolution, no `apache_avro::types::Value` tree).
//!
//! The mirror of [`crate::avro_write`]. It accepts only what it is sure apache-avro's
//! `GenericDatumReader` followed by [`crate::wire::FromAvro`] would accept with the same result:
//! anything else (a truncated body, a bad union or enum index, invalid UTF-8, a value a domain
//! type rejects, a negative block count, an over-long varint...) is a [`Reject`], on which the
//! codec decodes the same bytes the generic way, so every error keeps its exact type and message.
//! The test suite checks that whatever this reader accepts, the generic path decodes to the
//! same event.

use std::collections::BTreeMap;

use crate::ids::Timestamp;

/// The direct reader gives up on these bytes; the generic path decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reject;

/// A cursor over an Avro body.
pub(crate) struct AvroReader<'a> {
    rest: &'a [u8],
}

impl<'a> AvroReader<'a> {
    /// Returns a reader over `body`.
    pub(crate) const fn new(body: &'a [u8]) -> Self {
        Self { rest: body }
    }

    /// Returns whether every byte was read.
    pub(crate) const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Reads `n` bytes.
    #[inline]
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Reject> {
        if n > self.rest.len() {
            return Err(Reject);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Reads a `long` (zigzag varint of at most 10 bytes, as apache-avro requires).
    #[inline]
    pub(crate) fn long(&mut self) -> Result<i64, Reject> {
        let mut n: u64 = 0;
        for (i, &byte) in self.rest.iter().enumerate().take(10) {
            // The tenth byte holds bit 63 only; more would overflow (apache-avro wraps there,
            // so leave such bytes to it).
            if i == 9 && byte > 1 {
                return Err(Reject);
            }
            n |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = self.rest.get(i + 1..).ok_or(Reject)?;
                // Un-zigzag; the casts reinterpret bits.
                return Ok(((n >> 1) as i64) ^ -((n & 1) as i64));
            }
        }
        Err(Reject)
    }

    /// Reads an `int` (a `long` within `i32`).
    #[inline]
    pub(crate) fn int(&mut self) -> Result<i32, Reject> {
        i32::try_from(self.long()?).map_err(|_| Reject)
    }

    /// Reads a length or a positive block count.
    #[inline]
    pub(crate) fn len(&mut self) -> Result<usize, Reject> {
        usize::try_from(self.long()?).map_err(|_| Reject)
    }

    /// Reads a `string`.
    #[inline]
    pub(crate) fn str(&mut self) -> Result<&'a str, Reject> {
        let len = self.len()?;
        std::str::from_utf8(self.bytes(len)?).map_err(|_| Reject)
    }

    /// Reads a union branch index.
    #[inline]
    pub(crate) fn branch(&mut self) -> Result<i64, Reject> {
        self.long()
    }

    /// Reads an enum symbol: the value at its index in `all` (schema symbol order).
    #[inline]
    pub(crate) fn symbol<T: Copy>(&mut self, all: &[T]) -> Result<T, Reject> {
        let index = usize::try_from(self.int()?).map_err(|_| Reject)?;
        all.get(index).copied().ok_or(Reject)
    }

    /// Reads the item count of the next array or map block: 0 ends the sequence. A negative
    /// count (a block with its byte size, legal but never written by this codec) is left to
    /// apache-avro.
    #[inline]
    fn block(&mut self) -> Result<usize, Reject> {
        let count = self.len()?;
        // Every item takes at least one byte... except nulls and empty records, which no array
        // or map of the schemas holds; bounds the allocation on garbage.
        if count > self.rest.len() {
            return Err(Reject);
        }
        Ok(count)
    }
}

/// Reads a domain value from the Avro binary datum of its (latest) schema.
pub(crate) trait ReadAvro: Sized {
    /// Returns the value, or [`Reject`].
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject>;
}

impl ReadAvro for String {
    #[inline]
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        r.str().map(str::to_owned)
    }
}

impl ReadAvro for bool {
    #[inline]
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        match r.bytes(1)? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(Reject),
        }
    }
}

impl ReadAvro for i32 {
    #[inline]
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        r.int()
    }
}

impl ReadAvro for i64 {
    #[inline]
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        r.long()
    }
}

impl ReadAvro for f64 {
    #[inline]
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        let bytes: [u8; 8] = r.bytes(8)?.try_into().map_err(|_| Reject)?;
        Ok(f64::from_le_bytes(bytes))
    }
}

impl ReadAvro for Timestamp {
    #[inline]
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        r.long().map(Timestamp::from_micros)
    }
}

impl<T: ReadAvro> ReadAvro for Option<T> {
    #[inline]
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        // `["null", T]`, null first.
        match r.branch()? {
            0 => Ok(None),
            1 => T::read_avro(r).map(Some),
            _ => Err(Reject),
        }
    }
}

impl<T: ReadAvro> ReadAvro for Vec<T> {
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        let mut items = Vec::new();
        loop {
            let count = r.block()?;
            if count == 0 {
                return Ok(items);
            }
            items.reserve(count);
            for _ in 0..count {
                items.push(T::read_avro(r)?);
            }
        }
    }
}

impl<T: ReadAvro> ReadAvro for BTreeMap<String, T> {
    fn read_avro(r: &mut AvroReader<'_>) -> Result<Self, Reject> {
        let mut map = BTreeMap::new();
        loop {
            let count = r.block()?;
            if count == 0 {
                return Ok(map);
            }
            for _ in 0..count {
                let key = String::read_avro(r)?;
                let value = T::read_avro(r)?;
                // A repeated key: the last one wins, as in apache-avro's HashMap.
                map.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro_write::{write_long, write_str};

    #[test]
    fn longs_round_trip_at_the_edges() {
        for value in [0, 1, -1, 63, -64, 64, -65, i64::MAX, i64::MIN, i64::MIN + 1] {
            let mut out = Vec::new();
            write_long(&mut out, value);
            let mut r = AvroReader::new(&out);
            assert_eq!(r.long(), Ok(value));
            assert!(r.is_empty());
        }
    }

    #[test]
    fn malformed_input_is_rejected() {
        // Truncated varint, 11-byte varint, a tenth byte past bit 63.
        assert_eq!(AvroReader::new(&[0x80]).long(), Err(Reject));
        assert_eq!(AvroReader::new(&[0xff; 11]).long(), Err(Reject));
        let mut too_big = [0xff; 10];
        too_big[9] = 0x02;
        assert_eq!(AvroReader::new(&too_big).long(), Err(Reject));
        // An int out of range, a string longer than the input, invalid UTF-8.
        let mut out = Vec::new();
        write_long(&mut out, i64::from(i32::MAX) + 1);
        assert_eq!(AvroReader::new(&out).int(), Err(Reject));
        assert_eq!(AvroReader::new(&[6, b'a']).str(), Err(Reject));
        assert_eq!(AvroReader::new(&[2, 0xff]).str(), Err(Reject));
        // A boolean byte other than 0 or 1, a union branch other than 0 or 1.
        assert_eq!(bool::read_avro(&mut AvroReader::new(&[2])), Err(Reject));
        assert_eq!(
            Option::<bool>::read_avro(&mut AvroReader::new(&[4, 1])),
            Err(Reject)
        );
        // A negative block count.
        assert_eq!(
            Vec::<bool>::read_avro(&mut AvroReader::new(&[1, 2, 1, 0])),
            Err(Reject)
        );
        let mut ok = Vec::new();
        write_str(&mut ok, "é");
        assert_eq!(AvroReader::new(&ok).str(), Ok("é"));
    }
}
