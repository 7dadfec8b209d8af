//! Server-sent events as Model Serving streams them (UPSTREAM-2 §2.2): an incremental parser
//! that turns bytes, in whatever pieces they arrive, into the `data` of each event.
//!
//! The rules are the subset of the WHATWG event-stream format both official parsers agree on:
//! lines end with CR, LF or CRLF; an event is dispatched at a blank line; `data:` lines (one
//! optional space after the colon is dropped) are joined with `\n`; comment lines (`:`) and the
//! other fields (`event`, `id`, `retry`) are ignored; an event without data is not dispatched. A
//! last event that is not followed by a blank line is lost at the end of the stream, as it is for
//! the `openai` client. `[DONE]` is data like any other: what it means is the caller's business.

use std::collections::VecDeque;

/// Longest event, in bytes of data, the parser keeps (a guard against a stream that never sends
/// a blank line). Longer events are cut at this size and flagged by [`SseParser::overflowed`].
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// An incremental event-stream parser.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line not yet ended.
    line: Vec<u8>,
    /// Whether the previous byte was a CR, so that a following LF ends nothing.
    after_cr: bool,
    /// Data lines of the event being read.
    data: Option<String>,
    events: VecDeque<String>,
    overflowed: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    self.end_line();
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() < MAX_EVENT_BYTES {
                        self.line.push(byte);
                    } else {
                        self.overflowed = true;
                    }
                }
            }
        }
    }

    /// The data of the next complete event, in order.
    pub fn next_event(&mut self) -> Option<String> {
        self.events.pop_front()
    }

    /// Whether some line was longer than [`MAX_EVENT_BYTES`] and was cut.
    #[must_use]
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                self.events.push_back(data);
            }
            return;
        }
        let line = String::from_utf8_lossy(&line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(pieces: &[&[u8]]) -> Vec<String> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for piece in pieces {
            parser.feed(piece);
            while let Some(event) = parser.next_event() {
                events.push(event);
            }
        }
        events
    }

    #[test]
    fn events_end_at_blank_lines_with_any_line_ending() {
        // Arrange
        let stream: &[u8] = b"data: {\"a\":1}\n\ndata:{\"b\":2}\r\n\r\ndata: x\rdata: y\r\r: keep-alive\n\nevent: ping\nid: 7\n\ndata: [DONE]\n\n";

        // Act
        let events = parse(&[stream]);

        // Assert: comments and data-less events are not events; multi-line data is joined.
        assert_eq!(events, ["{\"a\":1}", "{\"b\":2}", "x\ny", "[DONE]"]);
    }

    #[test]
    fn an_event_without_its_blank_line_is_not_dispatched() {
        assert_eq!(parse(&[b"data: 1\n\ndata: 2\n"]), ["1"]);
    }

    proptest! {
        #[test]
        fn how_the_bytes_are_split_never_changes_the_events(cuts in proptest::collection::vec(0usize..80, 0..10)) {
            // Arrange
            let stream: &[u8] = b"data: {\"x\": \"\xc3\xa9\"}\r\n\r\n: c\n\ndata: two\r\ndata: lines\n\ndata: [DONE]\n\n";
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for cut in cuts {
                pieces.push(&stream[start..cut]);
                start = cut;
            }
            pieces.push(&stream[start..]);

            // Act
            let events = parse(&pieces);

            // Assert
            prop_assert_eq!(events, vec!["{\"x\": \"é\"}".to_owned(), "two\nlines".to_owned(), "[DONE]".to_owned()]);
        }
    }
}
