//! An incremental parser for server-sent events (the `text/event-stream` format of the WHATWG
//! HTML standard, section 9.2), as OpenAI-compatible APIs stream chat completions.
//!
//! Bytes arrive in arbitrary pieces: a piece may end in the middle of a line, of a multi-byte
//! character, or between the `\r` and `\n` of a CRLF. [`SseParser::push`] buffers the incomplete
//! tail and yields only whole events, so the events do not depend on where the pieces were cut.
//!
//! Handled: `data:` lines (several lines join with `\n`), `event:` names, comment lines (`:` —
//! keep-alives), field values with or without the single optional space after the colon, LF,
//! CRLF and lone-CR line ends, and a UTF-8 byte order mark at the start. Other fields (`id`,
//! `retry`) are ignored: the adapters have no use for reconnection.
//!
//! One deliberate difference from the standard: at the end of the input [`SseParser::finish`]
//! returns an event whose blank terminating line never came, instead of discarding it. An
//! upstream cut off mid-event then surfaces as a malformed or unterminated stream rather than as
//! a silent truncation.

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if the event had one (`message` is the implied default).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// The incremental parser: feed it byte pieces, collect the events.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes not yet consumed: at most one incomplete line.
    buf: Vec<u8>,
    /// Whether the start of the stream (and a possible byte order mark) has been seen.
    started: bool,
    /// The event being assembled.
    data: String,
    /// Whether at least one `data` field was seen for the event being assembled.
    has_data: bool,
    event: Option<String>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseParser {
    /// Returns an empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a piece of the stream and appends the events it completes to `out`.
    pub fn push(&mut self, piece: &[u8], out: &mut Vec<SseEvent>) {
        self.buf.extend_from_slice(piece);
        if !self.started {
            if self.buf.len() < BOM.len() && BOM.starts_with(&self.buf) {
                return; // might still become a byte order mark
            }
            if self.buf.starts_with(BOM) {
                self.buf.drain(..BOM.len());
            }
            self.started = true;
        }
        let mut start = 0;
        while let Some(offset) = self.buf[start..]
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
        {
            let end = start + offset;
            let terminator = if self.buf[end] == b'\r' {
                match self.buf.get(end + 1) {
                    // A CR at the end of the buffer may be the first half of a CRLF: wait.
                    None => break,
                    Some(b'\n') => 2,
                    Some(_) => 1,
                }
            } else {
                1
            };
            let line = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
            self.line(&line, out);
            start = end + terminator;
        }
        self.buf.drain(..start);
    }

    /// Ends the stream: returns the event still being assembled, if it has data (see the module
    /// documentation for why it is not discarded).
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let rest = rest.strip_prefix(BOM).unwrap_or(&rest);
            let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
            let line = String::from_utf8_lossy(rest).into_owned();
            self.line(&line, &mut out);
        }
        self.started = true;
        // Any event completed by the last line was dispatched into `out` already.
        out.pop().or_else(|| self.dispatch())
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            out.extend(self.dispatch());
            return;
        }
        if line.starts_with(':') {
            return; // comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !std::mem::take(&mut self.has_data) {
            return None; // an event without data is not dispatched
        }
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse_pieces(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            parser.push(piece, &mut out);
        }
        out.extend(parser.finish());
        out
    }

    fn parse(bytes: &[u8]) -> Vec<SseEvent> {
        parse_pieces(&[bytes])
    }

    fn data(d: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: d.into(),
        }
    }

    #[test]
    fn data_lines_comments_and_done() {
        let input = b": keep-alive\n\ndata: {\"a\":1}\n\ndata:{\"b\":2}\n\ndata: [DONE]\n\n";
        assert_eq!(
            parse(input),
            vec![data("{\"a\":1}"), data("{\"b\":2}"), data("[DONE]")]
        );
    }

    #[test]
    fn multi_line_data_joins_with_newlines() {
        let input = b"data: first\ndata:\ndata:  third\n\n";
        assert_eq!(parse(input), vec![data("first\n\n third")]);
    }

    #[test]
    fn event_names_and_events_without_data() {
        let input = b"event: error\ndata: {\"error\":{}}\n\nevent: ping\n\nid: 7\nretry: 10\n\n";
        assert_eq!(
            parse(input),
            vec![SseEvent {
                event: Some("error".into()),
                data: "{\"error\":{}}".into()
            }]
        );
    }

    #[test]
    fn crlf_and_lone_cr_line_ends() {
        assert_eq!(
            parse(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"),
            vec![data("a"), data("b"), data("c")]
        );
        // A CRLF split between two pieces is one line end, not two.
        assert_eq!(
            parse_pieces(&[b"data: a\r", b"\ndata: b\r\n\r", b"\n"]),
            vec![data("a\nb")]
        );
    }

    #[test]
    fn byte_order_mark_and_split_multibyte_characters() {
        let input = "\u{feff}data: héllo ✓\n\n".as_bytes();
        for cut in 0..input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(parse_pieces(&[a, b]), vec![data("héllo ✓")], "cut at {cut}");
        }
    }

    #[test]
    fn an_unterminated_last_event_is_returned_by_finish() {
        assert_eq!(parse(b"data: [DONE]"), vec![data("[DONE]")]);
        assert_eq!(parse(b"data: {\"cut"), vec![data("{\"cut")]);
        assert_eq!(parse(b"data: x\n"), vec![data("x")]);
        assert_eq!(parse(b": only a comment"), vec![]);
        assert_eq!(parse(b""), vec![]);
    }

    /// One generated event: optional name, data lines, comments before it.
    #[derive(Debug, Clone)]
    struct GenEvent {
        name: Option<String>,
        lines: Vec<String>,
        comment: Option<String>,
    }

    fn value() -> impl Strategy<Value = String> {
        // Any characters but line ends; leading spaces are significant (one is the separator).
        proptest::string::string_regex("[^\r\n]{0,12}").unwrap()
    }

    fn gen_event() -> impl Strategy<Value = GenEvent> {
        (
            proptest::option::of("[a-z]{1,6}"),
            proptest::collection::vec(value(), 1..4),
            proptest::option::of(value()),
        )
            .prop_map(|(name, lines, comment)| GenEvent {
                name,
                lines,
                comment,
            })
    }

    fn encode(events: &[GenEvent], eol: &str, bom: bool) -> Vec<u8> {
        let mut s = String::new();
        if bom {
            s.push('\u{feff}');
        }
        for e in events {
            if let Some(c) = &e.comment {
                s.push_str(&format!(":{c}{eol}"));
            }
            if let Some(n) = &e.name {
                s.push_str(&format!("event: {n}{eol}"));
            }
            for l in &e.lines {
                s.push_str(&format!("data: {l}{eol}"));
            }
            s.push_str(eol);
        }
        s.into_bytes()
    }

    proptest! {
        #[test]
        fn split_points_anywhere_give_the_same_events(
            events in proptest::collection::vec(gen_event(), 0..6),
            eol in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            bom in any::<bool>(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let bytes = encode(&events, eol, bom);
            let expected: Vec<SseEvent> = events
                .iter()
                .map(|e| SseEvent { event: e.name.clone(), data: e.lines.join("\n") })
                .collect();
            prop_assert_eq!(&parse(&bytes), &expected);

            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for p in points {
                pieces.push(&bytes[last..p]);
                last = p;
            }
            pieces.push(&bytes[last..]);
            prop_assert_eq!(&parse_pieces(&pieces), &expected);
        }

        #[test]
        fn byte_at_a_time_equals_all_at_once(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
            prop_assert_eq!(parse_pieces(&pieces), parse(&bytes));
        }
    }
}
