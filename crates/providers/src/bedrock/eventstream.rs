//! A decoder of the AWS event-stream binary framing (`application/vnd.amazon.eventstream`,
//! Smithy's "Amazon Event Stream Specification"), which `converse-stream` answers in:
//!
//! ```text
//! total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload | message_crc u32
//! ```
//!
//! big-endian, both CRCs CRC32 (IEEE) of every byte before them. A header is
//! `name_len u8 | name | type u8 | value`, the value's layout depending on the type (0/1 bool,
//! 2 byte, 3 short, 4 int, 5 long, 6 bytes and 7 string with a u16 length, 8 timestamp in
//! milliseconds, 9 uuid). Bytes arrive in arbitrary pieces; [`FrameDecoder::push`] buffers them
//! and [`FrameDecoder::next_message`] yields whole, checked messages. A CRC mismatch or a
//! malformed header is an error: the stream cannot be trusted past it.

/// A decoded header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// Returns a string header's value.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Prelude (8) + prelude CRC (4) + message CRC (4).
const MIN_MESSAGE: usize = 16;
/// A bound on what is buffered for one message: the specification's 24 MB payload and 128 kB
/// headers, with room to spare (the prelude CRC has been checked before this applies).
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// The incremental decoder.
#[derive(Debug, Default)]
pub(crate) struct FrameDecoder {
    buf: Vec<u8>,
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(b)
}

impl FrameDecoder {
    /// Feeds a piece of the body.
    pub(crate) fn push(&mut self, piece: &[u8]) {
        self.buf.extend_from_slice(piece);
    }

    /// Returns whether bytes of an incomplete message are buffered.
    pub(crate) fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Returns the next complete message, `None` when more bytes are needed.
    pub(crate) fn next_message(&mut self) -> Result<Option<Message>, String> {
        if self.buf.len() < 12 {
            return Ok(None);
        }
        let total = be_u32(&self.buf[0..4]) as usize;
        let headers_len = be_u32(&self.buf[4..8]) as usize;
        let prelude_crc = be_u32(&self.buf[8..12]);
        if crc32fast::hash(&self.buf[..8]) != prelude_crc {
            return Err("event stream prelude CRC mismatch".into());
        }
        if !(MIN_MESSAGE..=MAX_MESSAGE).contains(&total) || headers_len > total - MIN_MESSAGE {
            return Err(format!(
                "event stream message of {total} bytes with {headers_len} bytes of headers"
            ));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let message_crc = be_u32(&self.buf[total - 4..total]);
        if crc32fast::hash(&self.buf[..total - 4]) != message_crc {
            return Err("event stream message CRC mismatch".into());
        }
        let headers = parse_headers(&self.buf[12..12 + headers_len])?;
        let payload = self.buf[12 + headers_len..total - 4].to_vec();
        self.buf.drain(..total);
        Ok(Some(Message { headers, payload }))
    }
}

fn parse_headers(mut bytes: &[u8]) -> Result<Vec<(String, HeaderValue)>, String> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if bytes.len() < n {
            return Err("truncated event stream header".into());
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    fn fixed<const N: usize>(bytes: &mut &[u8]) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(take(bytes, N)?);
        Ok(out)
    }
    let mut headers = Vec::new();
    while !bytes.is_empty() {
        let name_len = take(&mut bytes, 1)?[0] as usize;
        if name_len == 0 {
            return Err("empty event stream header name".into());
        }
        let name = String::from_utf8(take(&mut bytes, name_len)?.to_vec())
            .map_err(|_| "event stream header name is not UTF-8".to_owned())?;
        let kind = take(&mut bytes, 1)?[0];
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(fixed::<1>(&mut bytes)?)),
            3 => HeaderValue::Short(i16::from_be_bytes(fixed::<2>(&mut bytes)?)),
            4 => HeaderValue::Int(i32::from_be_bytes(fixed::<4>(&mut bytes)?)),
            5 => HeaderValue::Long(i64::from_be_bytes(fixed::<8>(&mut bytes)?)),
            6 | 7 => {
                let len = u16::from_be_bytes(fixed::<2>(&mut bytes)?) as usize;
                let data = take(&mut bytes, len)?.to_vec();
                if kind == 6 {
                    HeaderValue::Bytes(data)
                } else {
                    HeaderValue::String(
                        String::from_utf8(data)
                            .map_err(|_| format!("event stream header `{name}` is not UTF-8"))?,
                    )
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(fixed::<8>(&mut bytes)?)),
            9 => HeaderValue::Uuid(fixed::<16>(&mut bytes)?),
            other => return Err(format!("unknown event stream header type {other}")),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes a message (string headers), for tests.
    pub(crate) fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let mut h = Vec::new();
        for (name, value) in headers {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(7);
            h.extend_from_slice(&(value.len() as u16).to_be_bytes());
            h.extend_from_slice(value.as_bytes());
        }
        let total = (16 + h.len() + payload.len()) as u32;
        let mut m = Vec::new();
        m.extend_from_slice(&total.to_be_bytes());
        m.extend_from_slice(&(h.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        m.extend_from_slice(&h);
        m.extend_from_slice(payload);
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        m
    }

    fn decode_all(pieces: &[&[u8]]) -> Result<Vec<Message>, String> {
        let mut d = FrameDecoder::default();
        let mut out = Vec::new();
        for p in pieces {
            d.push(p);
            while let Some(m) = d.next_message()? {
                out.push(m);
            }
        }
        assert!(!d.has_partial());
        Ok(out)
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_published_frame_decodes() {
        // A frame from an independent implementation's documentation: one `content-type`
        // string header and the payload `{'foo':'bar'}`.
        let frame = hex(
            "0000003d0000002007fd83960c636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b27666f6f273a27626172277d8d9c08b1",
        );
        let messages = decode_all(&[&frame]).unwrap();
        assert_eq!(
            messages,
            vec![Message {
                headers: vec![(
                    "content-type".into(),
                    HeaderValue::String("application/json".into())
                )],
                payload: b"{'foo':'bar'}".to_vec(),
            }]
        );
        assert_eq!(
            encode(&[("content-type", "application/json")], b"{'foo':'bar'}"),
            frame
        );
    }

    #[test]
    fn frames_split_at_every_byte_boundary_decode_the_same() {
        let mut body = encode(
            &[(":message-type", "event"), (":event-type", "messageStart")],
            br#"{"role":"assistant"}"#,
        );
        body.extend(encode(
            &[
                (":message-type", "event"),
                (":event-type", "contentBlockDelta"),
            ],
            "{\"delta\":{\"text\":\"h\u{e9}\"}}".as_bytes(),
        ));
        let whole = decode_all(&[&body]).unwrap();
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[1].header(":event-type"), Some("contentBlockDelta"));
        for cut in 0..=body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(decode_all(&[a, b]).unwrap(), whole, "cut at {cut}");
        }
        for cut2 in (0..body.len()).step_by(7) {
            for cut1 in 0..=cut2 {
                let pieces = [&body[..cut1], &body[cut1..cut2], &body[cut2..]];
                assert_eq!(decode_all(&pieces).unwrap(), whole);
            }
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(decode_all(&bytes).unwrap(), whole);
    }

    #[test]
    fn corruption_is_detected() {
        let good = encode(&[(":event-type", "x")], b"{}");
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            let mut d = FrameDecoder::default();
            d.push(&bad);
            // Either an error, or (a corrupted length) still waiting: never a wrong message.
            match d.next_message() {
                Err(_) | Ok(None) => {}
                Ok(Some(m)) => panic!("corruption at byte {i} decoded as {m:?}"),
            }
        }
    }

    #[test]
    fn every_header_type() {
        let mut h = Vec::new();
        let mut push = |name: &str, kind: u8, value: &[u8]| {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(kind);
            h.extend_from_slice(value);
        };
        push("t", 0, &[]);
        push("f", 1, &[]);
        push("b", 2, &[0xff]);
        push("s", 3, &[0x01, 0x02]);
        push("i", 4, &[0, 0, 0, 7]);
        push("l", 5, &[0, 0, 0, 0, 0, 0, 0, 9]);
        push("y", 6, &[0, 2, 0xaa, 0xbb]);
        push("z", 8, &[0, 0, 0, 0, 0, 0, 0x03, 0xe8]);
        push("u", 9, &[1; 16]);
        let parsed = parse_headers(&h).unwrap();
        let values: Vec<HeaderValue> = parsed.into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            values,
            vec![
                HeaderValue::Bool(true),
                HeaderValue::Bool(false),
                HeaderValue::Byte(-1),
                HeaderValue::Short(258),
                HeaderValue::Int(7),
                HeaderValue::Long(9),
                HeaderValue::Bytes(vec![0xaa, 0xbb]),
                HeaderValue::Timestamp(1000),
                HeaderValue::Uuid([1; 16]),
            ]
        );
        assert!(parse_headers(&[1, b'x', 42]).is_err());
        assert!(parse_headers(&[1, b'x', 7, 0, 5, b'a']).is_err());
    }
}
