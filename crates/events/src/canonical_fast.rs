//! Canonical JSON (RFC 8785, JCS) written straight from typed values, without a
//! `serde_json::Value` tree: the string and number primitives, and the signing payload of a
//! [`RouteDecided`], which every routing decision computes before it is signed.
//!
//! The payload's field walk ([`write_signing_payload`]: which members, in which order, what is
//! pruned) is written once, over an [`Encoding`]: [`Jcs`] gives payload v1, canonical JSON;
//! `binary_payload::Binary` gives payload v2, the same members typed and length-prefixed.
//!
//! The writer must produce exactly the bytes of `RouteDecided::signing_payload_reference` (the
//! `Value`-based definition in `canonical.rs`; for v2 `signing_payload_v2_reference`); property
//! tests over arbitrary decisions check both. The member order below is the JCS order (UTF-16
//! code units; every field name is ASCII, so byte order, which is v2's order too), and every
//! struct is destructured with all its fields named, so a field added to one of them later does
//! not compile until it is written here too.

use std::marker::PhantomData;

use serde_json::Value;
use serde_json::ser::{CompactFormatter, Formatter as _};

use crate::event::{
    Candidate, ConstraintCheck, Envelope, Evidence, PinInfo, RequestFeatures, RouteDecided,
    ScoreWeights, SignalContribution,
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JCS string: `"` and `\` escaped, the control characters U+0000..U+001F as
/// `\b \t \n \f \r` or `\u00xx` (lowercase hex), everything else as is.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none needs escaping.
        if let Some(chunk) = bytes
            .get(i..i + 8)
            .and_then(|c| <[u8; 8]>::try_from(c).ok())
            && !any_needs_escape(u64::from_le_bytes(chunk))
        {
            i += 8;
            continue;
        }
        let b = bytes[i];
        i += 1;
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[start..i - 1]);
        start = i;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Returns whether any of eight bytes is below 0x20, `"` or `\`. Each test is the classic
/// "has a byte less than n" bit trick (exact as a whole-word answer for n <= 0x80; bytes with the
/// high bit set, UTF-8 beyond ASCII, never match).
fn any_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGHS;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    (below(word, 0x20) | below(quote, 1) | below(backslash, 1)) != 0
}

/// Appends an integer in decimal.
pub(crate) fn write_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    write_u64(out, value.unsigned_abs());
}

/// Appends an unsigned integer in decimal.
fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[pos..]);
}

/// Appends `count` zeros.
fn push_zeros(out: &mut Vec<u8>, count: i32) {
    for _ in 0..count {
        out.push(b'0');
    }
}

/// Returns whether a positive finite `x` could lie exactly halfway between two shortest
/// decimal forms (see [`Shortest::is_tie_broken_down`]): only when `x = m'·2^(t-1)` with `m'`
/// odd and `|t| <= 26`.
fn may_tie(x: f64) -> bool {
    let (m, e) = decode(x);
    if m == 0 {
        return false;
    }
    let t = e + i32::try_from(m.trailing_zeros()).unwrap_or(0) + 1;
    t.unsigned_abs() <= 26
}

/// Returns `(m, e)` with `x = m·2^e` for a finite non-negative `x`.
fn decode(x: f64) -> (u64, i32) {
    let bits = x.to_bits();
    let biased = i32::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
    let fraction = bits & ((1_u64 << 52) - 1);
    if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1_u64 << 52), biased - 1075)
    }
}

/// The shortest decimal digits that read back as a positive double, closest to it (ties to even):
/// the value is `0.d1d2...dk × 10^n`.
struct Shortest {
    digits: [u8; 24],
    len: usize,
    n: i32,
}

impl Shortest {
    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }

    /// Returns the shortest digits of a positive finite `x`, from serde_json's float formatter
    /// (Żmij: shortest, correctly rounded); its output, plain (`0.001234`, `12340000000.0`) or
    /// exponential (`1.234e+33`, `5e-324`), is read back as digits and an exponent, whatever
    /// notation it chose.
    fn of(x: f64) -> Option<Self> {
        let mut text = [0u8; 40];
        let written = {
            let mut writer: &mut [u8] = &mut text;
            CompactFormatter.write_f64(&mut writer, x).ok()?;
            40 - writer.len()
        };
        let mut shortest = Self::parse(text.get(..written)?)?;
        if shortest.is_tie_broken_down(x) {
            shortest.increment();
        }
        Some(shortest)
    }

    /// Reads the formatter's text back as digits and an exponent.
    fn parse(text: &[u8]) -> Option<Self> {
        let (mantissa, exponent) = match text.iter().position(|&b| b == b'e') {
            Some(e) => (&text[..e], parse_exponent(&text[e + 1..])?),
            None => (text, 0),
        };
        let mut shortest = Shortest {
            digits: [0; 24],
            len: 0,
            n: exponent,
        };
        let mut leading = true;
        for &b in mantissa {
            match b {
                b'.' => leading = false,
                b'0'..=b'9' => {
                    if leading {
                        shortest.n += 1;
                    }
                    if shortest.len == 0 && b == b'0' {
                        // A leading zero: one fewer integer digit, or one more fraction zero.
                        shortest.n -= 1;
                        continue;
                    }
                    *shortest.digits.get_mut(shortest.len)? = b;
                    shortest.len += 1;
                }
                _ => return None,
            }
        }
        shortest.strip_trailing_zeros();
        (shortest.len > 0).then_some(shortest)
    }

    fn strip_trailing_zeros(&mut self) {
        while self.len > 0 && self.digits[self.len - 1] == b'0' {
            self.len -= 1;
        }
    }

    /// Returns whether `x` lies exactly halfway between these digits and the next `k`-digit
    /// number up: then Żmij chose these because they are even (ECMA-262's recommended rule, and
    /// V8's), where Rust's `{:e}`, which the signing payload has always used, rounds up.
    ///
    /// With `x = m·2^e` (`m = m'·2^z`, `m'` odd) and these digits `s·10^t`, the midpoint
    /// `(2s+1)·10^t/2 = (2s+1)·5^t·2^(t-1)` equals `x` exactly when `e + z = t - 1` and
    /// `m' = (2s+1)·5^t` (both sides odd).
    fn is_tie_broken_down(&self, x: f64) -> bool {
        let (m, e) = decode(x);
        if m == 0 {
            return false;
        }
        let z = i32::try_from(m.trailing_zeros()).unwrap_or(0);
        let odd = u128::from(m >> z);
        let k = i32::try_from(self.len).unwrap_or(i32::MAX);
        let t = self.n - k;
        if e + z != t - 1 {
            return false;
        }
        let Some(s) = self.digits().iter().try_fold(0_u128, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u128::from(d - b'0'))
        }) else {
            return false;
        };
        let midpoint = 2 * s + 1;
        // `odd` < 2^53 and `midpoint` < 2^58: 5^26 exceeds both, so larger |t| never ties.
        if t.unsigned_abs() > 26 {
            return false;
        }
        let five = 5_u128.pow(t.unsigned_abs());
        if t >= 0 {
            odd == midpoint * five
        } else {
            odd * five == midpoint
        }
    }

    /// Replaces the digits by the next `k`-digit number up (a carry lengthens them by one and
    /// raises `n`).
    fn increment(&mut self) {
        let mut i = self.len;
        loop {
            if i == 0 {
                // All nines: 99 + 1 = 100, i.e. `1` one position higher.
                self.digits[0] = b'1';
                self.len = 1;
                self.n += 1;
                return;
            }
            i -= 1;
            if self.digits[i] == b'9' {
                self.digits[i] = b'0';
            } else {
                self.digits[i] += 1;
                break;
            }
        }
        self.strip_trailing_zeros();
    }
}

/// Parses `+12`, `-7` or `308`.
fn parse_exponent(text: &[u8]) -> Option<i32> {
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    let mut value = 0_i32;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i32::from(b - b'0');
    }
    Some(if negative { -value } else { value })
}

/// Appends `x` as ECMAScript's `Number.prototype.toString(10)` (ECMA-262 Number::toString):
/// the shortest digits `d1...dk` with `x = 0.d1...dk × 10^n`, written plain when
/// `-6 < n <= 21` and as `d1.d2...dke±(n-1)` otherwise; `-0` is `0`, non-finite is `null`.
pub(crate) fn write_f64(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if x == 0.0 {
        out.push(b'0');
        return;
    }
    if x < 0.0 {
        out.push(b'-');
    }
    let x = x.abs();
    // Żmij writes `1e-5 <= x < 1e16` plain: `12.34`, `0.001234`, `12340000000.0`. That is
    // ECMAScript's form already (its plain range is wider), less the `.0` Żmij gives integers.
    // Decided from `x` rather than by reading the text back, which costs more than the writing:
    // below 2^53 an integer's shortest form is itself, and a fraction's is not an integer. An
    // exact tie (rare, and possible only when the cheap test on `x` allows it) takes the slow
    // path. Tests pin the whole range against the `{:e}` reference.
    if (1e-5..1e15).contains(&x) && !may_tie(x) {
        let start = out.len();
        if CompactFormatter.write_f64(out, x).is_ok() {
            // `x < 1e15`: the conversion is exact for an integer (and `fract` would be a libm
            // call).
            if (x as i64) as f64 != x {
                return;
            }
            if out.ends_with(b".0") {
                out.truncate(out.len() - 2);
                return;
            }
        }
        out.truncate(start);
    }
    let Some(shortest) = Shortest::of(x) else {
        // Unreachable with a correct formatter; the reference path is exact, only slower.
        out.extend_from_slice(crate::canonical::ecmascript_number_reference(x).as_bytes());
        return;
    };
    let digits = shortest.digits();
    let k = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let n = shortest.n;
    if k <= n && n <= 21 {
        out.extend_from_slice(digits);
        push_zeros(out, n - k);
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0));
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        push_zeros(out, -n);
        out.extend_from_slice(digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.extend_from_slice(first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
        out.extend_from_slice(if n - 1 < 0 { b"e-" } else { b"e+" });
        write_i64(out, i64::from((n - 1).abs()));
    }
}

/// Appends the JCS form of a JSON value (see [`crate::canonical_json`]).
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                write_i64(out, i);
            } else if let Some(u) = n.as_u64() {
                write_u64(out, u);
            } else if let Some(f) = n.as_f64() {
                write_f64(out, f);
            } else {
                out.extend_from_slice(b"null");
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // Sorted explicitly: serde_json's map keeps insertion order when another crate in
            // the build enables its `preserve_order` feature. JCS sorts by UTF-16 code units.
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// How a signing payload is encoded. The walk over a decision's fields
/// ([`write_signing_payload`]: which members, in which order, what is pruned) is shared by both
/// payload formats; an encoding decides only how each value is written: [`Jcs`] (v1, canonical
/// JSON) or [`Binary`] (v2, typed and length-prefixed). Every function appends to `out`.
pub(crate) trait Encoding {
    /// Whether map keys are ordered by UTF-16 code units (JCS) rather than by UTF-8 bytes (a
    /// `BTreeMap`'s order).
    const UTF16_KEY_ORDER: bool;
    /// Starts an object.
    fn open_object(out: &mut Vec<u8>);
    /// Ends the object started at `start` (where [`Encoding::open_object`] began writing), which
    /// has `count` members.
    fn close_object(out: &mut Vec<u8>, start: usize, count: u32);
    /// Writes a member's name: a field name, ASCII with nothing to escape. `first`: the
    /// object's first member.
    fn field(out: &mut Vec<u8>, first: bool, name: &'static str);
    /// Writes a member's name that is data (a map key).
    fn map_key(out: &mut Vec<u8>, first: bool, key: &str);
    /// Starts an array of `count` items.
    fn open_array(out: &mut Vec<u8>, count: u32);
    /// Goes before each item of an array. `first`: the array's first item.
    fn item(out: &mut Vec<u8>, first: bool);
    /// Ends an array.
    fn close_array(out: &mut Vec<u8>);
    /// Writes a string.
    fn string(out: &mut Vec<u8>, value: &str);
    /// Writes an integer.
    fn int(out: &mut Vec<u8>, value: i64);
    /// Writes a finite double.
    fn float(out: &mut Vec<u8>, value: f64);
    /// Writes a boolean.
    fn bool(out: &mut Vec<u8>, value: bool);
    /// Writes `null`.
    fn null(out: &mut Vec<u8>);
}

/// Signing payload v1: canonical JSON (RFC 8785).
pub(crate) struct Jcs;

impl Encoding for Jcs {
    const UTF16_KEY_ORDER: bool = true;

    #[inline(always)]
    fn open_object(out: &mut Vec<u8>) {
        out.push(b'{');
    }

    #[inline(always)]
    fn close_object(out: &mut Vec<u8>, _start: usize, _count: u32) {
        out.push(b'}');
    }

    /// Writes `"name":`, inlined so that each name is copied with its length known.
    #[inline(always)]
    fn field(out: &mut Vec<u8>, first: bool, name: &'static str) {
        if !first {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    }

    fn map_key(out: &mut Vec<u8>, first: bool, key: &str) {
        if !first {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
    }

    #[inline(always)]
    fn open_array(out: &mut Vec<u8>, _count: u32) {
        out.push(b'[');
    }

    #[inline(always)]
    fn item(out: &mut Vec<u8>, first: bool) {
        if !first {
            out.push(b',');
        }
    }

    #[inline(always)]
    fn close_array(out: &mut Vec<u8>) {
        out.push(b']');
    }

    #[inline(always)]
    fn string(out: &mut Vec<u8>, value: &str) {
        write_str(out, value);
    }

    #[inline(always)]
    fn int(out: &mut Vec<u8>, value: i64) {
        write_i64(out, value);
    }

    #[inline(always)]
    fn float(out: &mut Vec<u8>, value: f64) {
        write_f64(out, value);
    }

    #[inline(always)]
    fn bool(out: &mut Vec<u8>, value: bool) {
        out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn null(out: &mut Vec<u8>) {
        out.extend_from_slice(b"null");
    }
}

/// An object being written: members are added in key order by the caller, and members whose
/// value is `null`, `[]` or `{}` are left out, as the reference prunes them.
struct Obj<'a, E: Encoding> {
    out: &'a mut Vec<u8>,
    start: usize,
    count: u32,
    encoding: PhantomData<E>,
}

impl<'a, E: Encoding> Obj<'a, E> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        let start = out.len();
        E::open_object(out);
        Obj {
            out,
            start,
            count: 0,
            encoding: PhantomData,
        }
    }

    /// Closes the object; returns `false`, without closing, when it has no member.
    fn close(self) -> bool {
        if self.count > 0 {
            E::close_object(self.out, self.start, self.count);
        }
        self.count > 0
    }

    #[inline(always)]
    fn key(&mut self, key: &'static str) {
        E::field(self.out, self.count == 0, key);
        self.count += 1;
    }

    #[inline(always)]
    fn str(&mut self, key: &'static str, value: &str) {
        self.key(key);
        E::string(self.out, value);
    }

    #[inline(always)]
    fn opt_str(&mut self, key: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    #[inline(always)]
    fn int(&mut self, key: &'static str, value: impl Into<i64>) {
        self.key(key);
        E::int(self.out, value.into());
    }

    fn opt_int<T: Into<i64>>(&mut self, key: &'static str, value: Option<T>) {
        if let Some(value) = value {
            self.int(key, value);
        }
    }

    /// A non-finite number serialises as `null`, which is pruned.
    #[inline(always)]
    fn num(&mut self, key: &'static str, value: f64) {
        if value.is_finite() {
            self.key(key);
            E::float(self.out, value);
        }
    }

    #[inline(always)]
    fn opt_num(&mut self, key: &'static str, value: Option<f64>) {
        if let Some(value) = value {
            self.num(key, value);
        }
    }

    #[inline(always)]
    fn bool(&mut self, key: &'static str, value: bool) {
        self.key(key);
        E::bool(self.out, value);
    }

    /// A nested object, left out when all its members were pruned.
    fn object(&mut self, key: &'static str, members: impl FnOnce(&mut Obj<'_, E>)) {
        let mark = self.out.len();
        let count = self.count;
        self.key(key);
        let mut inner = Obj::open(self.out);
        members(&mut inner);
        if !inner.close() {
            self.out.truncate(mark);
            self.count = count;
        }
    }

    /// An array, left out when empty; items are written by `item`.
    fn array<T>(&mut self, key: &'static str, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
        if items.is_empty() {
            return;
        }
        self.key(key);
        E::open_array(self.out, u32::try_from(items.len()).unwrap_or(u32::MAX));
        for (i, value) in items.iter().enumerate() {
            E::item(self.out, i == 0);
            item(self.out, value);
        }
        E::close_array(self.out);
    }

    /// An array of objects; an item whose members were all pruned is `null`.
    fn object_array<T>(
        &mut self,
        key: &'static str,
        items: &[T],
        members: impl Fn(&mut Obj<'_, E>, &T),
    ) {
        self.array(key, items, |out, value| {
            let mark = out.len();
            let mut inner = Obj::open(out);
            members(&mut inner, value);
            if !inner.close() {
                out.truncate(mark);
                E::null(out);
            }
        });
    }

    /// A map entry: the key is data.
    fn map_entry(&mut self, key: &str, value: i64) {
        E::map_key(self.out, self.count == 0, key);
        self.count += 1;
        E::int(self.out, value);
    }
}

/// Returns whether a map with these keys must be re-sorted for JCS: byte order (a `BTreeMap`'s)
/// and UTF-16 order differ only between a character in U+E000..U+FFFF (UTF-8 lead byte `EE` or
/// `EF`) and one above U+FFFF.
fn needs_utf16_sort<'k>(mut keys: impl Iterator<Item = &'k String>) -> bool {
    keys.any(|k| k.bytes().any(|b| b >= 0xEE))
}

fn write_envelope<E: Encoding>(o: &mut Obj<'_, E>, envelope: &Envelope) {
    let Envelope {
        event_id,
        org,
        event_time,
        trace_id,
        partition_key,
    } = envelope;
    let mut uuid = [0u8; uuid::fmt::Hyphenated::LENGTH];
    o.str(
        "event_id",
        event_id.as_uuid().hyphenated().encode_lower(&mut uuid),
    );
    o.int("event_time", event_time.as_micros());
    o.str("org", org.as_str());
    o.str("partition_key", partition_key.as_str());
    o.str("trace_id", trace_id.as_str());
}

fn write_candidate<E: Encoding>(o: &mut Obj<'_, E>, candidate: &Candidate) {
    let Candidate {
        model,
        score,
        success,
        feedback,
        cost,
        filtered_reason,
        estimated_cost_usd,
    } = candidate;
    o.opt_num("cost", *cost);
    o.opt_num("estimated_cost_usd", estimated_cost_usd.map(|c| c.get()));
    o.opt_num("feedback", *feedback);
    o.opt_str("filtered_reason", filtered_reason.as_deref());
    o.str("model", model.as_str());
    o.opt_num("score", *score);
    o.opt_num("success", *success);
}

fn write_check<E: Encoding>(o: &mut Obj<'_, E>, check: &ConstraintCheck) {
    let ConstraintCheck {
        name,
        passed,
        limit,
        observed,
        detail,
    } = check;
    o.opt_str("detail", detail.as_deref());
    o.opt_num("limit", *limit);
    o.str("name", name);
    o.opt_num("observed", *observed);
    o.bool("passed", *passed);
}

fn write_evidence<E: Encoding>(o: &mut Obj<'_, E>, evidence: &Evidence) {
    let Evidence {
        samples,
        score_gap,
        variance,
        regressions,
    } = evidence;
    o.object("regressions", |o| {
        if E::UTF16_KEY_ORDER && needs_utf16_sort(regressions.keys()) {
            let mut sorted: Vec<(&String, &i64)> = regressions.iter().collect();
            sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            for (label, count) in sorted {
                o.map_entry(label, *count);
            }
        } else {
            for (label, count) in regressions {
                o.map_entry(label, *count);
            }
        }
    });
    o.int("samples", *samples);
    o.opt_num("score_gap", *score_gap);
    o.opt_num("variance", *variance);
}

fn write_features<E: Encoding>(o: &mut Obj<'_, E>, features: &RequestFeatures) {
    let RequestFeatures {
        input_tokens,
        max_output_tokens,
        tools,
        json_schema,
        vision,
        stream,
    } = features;
    o.int("input_tokens", *input_tokens);
    o.bool("json_schema", *json_schema);
    o.int("max_output_tokens", *max_output_tokens);
    o.bool("stream", *stream);
    o.bool("tools", *tools);
    o.bool("vision", *vision);
}

fn write_pin<E: Encoding>(o: &mut Obj<'_, E>, pin: &PinInfo) {
    let PinInfo {
        model,
        reason,
        pinned_by,
    } = pin;
    o.str("model", model.as_str());
    o.str("pinned_by", pinned_by);
    o.str("reason", reason.as_str());
}

fn write_score_weights<E: Encoding>(o: &mut Obj<'_, E>, weights: &ScoreWeights) {
    let ScoreWeights {
        success,
        feedback,
        cost,
    } = weights;
    o.num("cost", *cost);
    o.num("feedback", *feedback);
    o.num("success", *success);
}

fn write_signal<E: Encoding>(o: &mut Obj<'_, E>, signal: &SignalContribution) {
    let SignalContribution {
        source,
        weight,
        value,
        contribution,
        samples,
    } = signal;
    o.num("contribution", *contribution);
    o.int("samples", *samples);
    o.str("source", source.as_str());
    o.opt_num("value", *value);
    o.num("weight", *weight);
}

/// Returns the signing payload of a decision in an encoding (see
/// [`RouteDecided::signing_payload`]).
pub(crate) fn signing_payload<E: Encoding>(decision: &RouteDecided) -> Vec<u8> {
    let mut out = Vec::new();
    write_signing_payload::<E>(decision, &mut out);
    out
}

/// Appends the signing payload of a decision to `out`, in an encoding: the members and their
/// order are the same in every encoding (JCS order: every name is ASCII, so UTF-8 byte order).
pub(crate) fn write_signing_payload<E: Encoding>(decision: &RouteDecided, out: &mut Vec<u8>) {
    // Every field named: a new field is a compile error here until it is written (or, like
    // `signature` and `signature_proof`, deliberately left out).
    let RouteDecided {
        envelope,
        decision_id,
        request_id,
        session_id,
        route,
        mode,
        chosen_model,
        baseline_model,
        served_model,
        reason,
        phase,
        confidence,
        routing_table_version,
        seed,
        candidates,
        signals,
        constraints,
        evidence,
        pin,
        reversible,
        explanation,
        explanation_language,
        shadow_model,
        canary_percent,
        signature: _,
        signing_key_id,
        features,
        score_weights,
        constraints_hash,
        route_version,
        unpriced_models,
        mirrored,
        canary_bucket,
        signature_proof: _,
        pool_version,
    } = decision;
    let capacity = 768
        + explanation.len()
        + 192 * candidates.len()
        + 128 * (signals.len() + constraints.len())
        + 32 * (unpriced_models.len() + evidence.regressions.len());
    out.reserve(capacity);
    let start = out.len();
    let mut o = Obj::<E>::open(out);
    o.str("baseline_model", baseline_model.as_str());
    o.opt_int("canary_bucket", *canary_bucket);
    o.opt_int("canary_percent", canary_percent.map(i32::from));
    o.object_array("candidates", candidates, write_candidate);
    o.str("chosen_model", chosen_model.as_str());
    o.num("confidence", confidence.get());
    o.object_array("constraints", constraints, write_check);
    // Members holding their schema default are left out (`RouteDecided::signing_defaults`).
    if !constraints_hash.is_empty() {
        o.str("constraints_hash", constraints_hash);
    }
    o.str("decision_id", decision_id.as_str());
    o.object("envelope", |o| write_envelope(o, envelope));
    o.object("evidence", |o| write_evidence(o, evidence));
    o.str("explanation", explanation);
    o.str("explanation_language", explanation_language);
    if *features != RequestFeatures::default() {
        o.object("features", |o| write_features(o, features));
    }
    if *mirrored {
        o.bool("mirrored", true);
    }
    o.str("mode", mode.as_str());
    o.int("phase", phase.get());
    if let Some(pin) = pin {
        o.object("pin", |o| write_pin(o, pin));
    }
    o.opt_int("pool_version", *pool_version);
    o.str("reason", reason);
    o.str("request_id", request_id.as_str());
    o.bool("reversible", *reversible);
    o.str("route", route.as_str());
    if *route_version != 0 {
        o.int("route_version", *route_version);
    }
    o.int("routing_table_version", *routing_table_version);
    if *score_weights != ScoreWeights::default() {
        o.object("score_weights", |o| write_score_weights(o, score_weights));
    }
    o.int("seed", *seed);
    o.str("served_model", served_model.as_str());
    o.opt_str("session_id", session_id.as_ref().map(|s| s.as_str()));
    o.opt_str("shadow_model", shadow_model.as_ref().map(|m| m.as_str()));
    o.object_array("signals", signals, write_signal);
    o.str("signing_key_id", signing_key_id);
    o.array("unpriced_models", unpriced_models, |out, model| {
        E::string(out, model.as_str());
    });
    if !o.close() {
        E::close_object(out, start, 0);
    }
}
