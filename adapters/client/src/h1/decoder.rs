//! Decoding a response body, incrementally, in the framing its head declared.
//!
//! The decoder is a small state machine driven by the caller's read buffer: each
//! call consumes framing bytes and returns at most one event. Data is split off
//! the buffer and frozen, never copied, so a body costs no allocation beyond the
//! buffer it was read into.
//!
//! The rules that keep a connection honest live here. A body that ends early,
//! before `Content-Length` bytes or before the last chunk and its trailer
//! section, is an error, never a short success; only a close-delimited body may
//! end with the connection. Chunk-size lines are bounded in length (extensions
//! included) and their sizes are checked for overflow; every framing line must
//! end in CRLF. Trailers are parsed under the same limits as a head. And when the
//! body ends with bytes still in the buffer, the server sent more than it framed,
//! so the connection is not reused.

use bytes::{Buf, BytesMut};

use super::fields::{
    find_empty_line, from_httparse, header_slots, is_field_value, section_map, STACK_HEADERS,
};
use super::keep_alive::{CloseReason, KeepAlive};
use super::{Error, Limits};

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// There is no body: a response to `HEAD`, or a 204 or 304.
    Empty,
    /// Exactly this many bytes, from `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding` with `chunked` as the final coding.
    Chunked,
    /// Everything until the server closes the connection.
    CloseDelimited,
    /// No HTTP body: the connection switched protocols (`101`) or became a
    /// tunnel (a 2xx to `CONNECT`), and every following byte, including those
    /// already in the buffer, belongs to the new protocol.
    Upgrade,
}

/// One step of a response body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyEvent {
    /// The next bytes of the body (never empty), split from the read buffer.
    Data(bytes::Bytes),
    /// The trailer fields of a chunked body (never empty). `End` follows.
    Trailers(http::HeaderMap),
    /// The body is complete, with the final keep-alive decision.
    End(KeepAlive),
}

/// The decoder for one response body.
///
/// ```
/// # #[cfg(feature = "unstable")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use bytes::BytesMut;
/// use muxpool_client::h1::{BodyDecoder, BodyEvent, Framing, KeepAlive, Limits};
///
/// let mut decoder = BodyDecoder::new(Framing::Chunked, KeepAlive::REUSABLE, Limits::default());
/// let mut buf = BytesMut::from(&b"5;ext=1\r\nhello\r\n0\r\n\r\n"[..]);
/// assert_eq!(decoder.decode(&mut buf)?, Some(BodyEvent::Data("hello".into())));
/// assert_eq!(decoder.decode(&mut buf)?, Some(BodyEvent::End(KeepAlive::REUSABLE)));
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "unstable"))]
/// # fn main() {}
/// ```
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    state: State,
    keep_alive: KeepAlive,
    limits: Limits,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A `Content-Length` body with this many bytes still to come.
    Length { remaining: u64 },
    /// A chunked body.
    Chunked(Chunk),
    /// A body that ends when the connection does.
    UntilClose,
    /// The body is complete; `End` has not been returned yet.
    Ending,
    /// `End` has been returned.
    Ended,
}

/// What one step of a chunked body did.
enum Step {
    /// Produced an event.
    Event(BodyEvent),
    /// Consumed framing bytes; there may be more to do.
    Framing,
    /// Needs more bytes; nothing was consumed.
    NeedMore,
}

/// Where a chunked body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// A chunk-size line, of which this many bytes have been searched for LF.
    Size { scanned: usize },
    /// Chunk data, with this many bytes still to come.
    Data { remaining: u64 },
    /// The CRLF after chunk data.
    DataEnd,
    /// The trailer section, of which this many bytes have been searched for its
    /// end.
    Trailers { scanned: usize },
}

impl BodyDecoder {
    /// A decoder for a body delimited by `framing`, on an exchange whose heads
    /// allow `keep_alive`, under `limits` (for chunk-size lines and trailers).
    /// [`ResponseHead::body_decoder`](super::ResponseHead::body_decoder) makes
    /// the one for a parsed head.
    pub fn new(framing: Framing, keep_alive: KeepAlive, limits: Limits) -> BodyDecoder {
        let state = match framing {
            Framing::Length(0) | Framing::Empty | Framing::Upgrade => State::Ending,
            Framing::Length(remaining) => State::Length { remaining },
            Framing::Chunked => State::Chunked(Chunk::Size { scanned: 0 }),
            Framing::CloseDelimited => State::UntilClose,
        };
        let keep_alive = match framing {
            Framing::CloseDelimited => keep_alive.and_close(CloseReason::CloseDelimited),
            Framing::Upgrade => keep_alive.and_close(CloseReason::Upgraded),
            _ => keep_alive,
        };
        BodyDecoder {
            state,
            keep_alive,
            limits,
        }
    }

    /// Decodes the next event from the start of `buf`, consuming what it uses.
    ///
    /// Returns `Ok(None)` when more bytes are needed: append them to `buf` and
    /// call again, or call [`decode_eof`](Self::decode_eof) if the connection
    /// closed. After [`BodyEvent::End`], a call with an empty `buf` returns `End`
    /// again.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidChunk`] for malformed chunked framing,
    /// [`Error::HeaderTooLarge`], [`Error::TooManyHeaders`] and
    /// [`Error::InvalidHead`] for a trailer section that breaks the limits or the
    /// syntax, and [`Error::UnexpectedData`] for bytes in `buf` after `End` was
    /// returned. After an error the connection must be closed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BodyEvent>, Error> {
        loop {
            match self.state {
                State::Length { remaining } => {
                    let Some(data) = split_data(buf, remaining) else {
                        return Ok(None);
                    };
                    let remaining = remaining.saturating_sub(data.len() as u64);
                    self.state = match remaining {
                        0 => State::Ending,
                        _ => State::Length { remaining },
                    };
                    return Ok(Some(BodyEvent::Data(data)));
                }
                State::UntilClose => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    return Ok(Some(BodyEvent::Data(buf.split().freeze())));
                }
                State::Chunked(chunk) => match self.decode_chunked(chunk, buf)? {
                    Step::Event(event) => return Ok(Some(event)),
                    Step::Framing => {}
                    Step::NeedMore => return Ok(None),
                },
                State::Ending => {
                    if !buf.is_empty() {
                        self.keep_alive = self.keep_alive.and_close(CloseReason::UnexpectedData);
                    }
                    self.state = State::Ended;
                    return Ok(Some(BodyEvent::End(self.keep_alive)));
                }
                State::Ended if buf.is_empty() => return Ok(Some(BodyEvent::End(self.keep_alive))),
                State::Ended => return Err(Error::UnexpectedData),
            }
        }
    }

    /// Decodes the next event once the connection has closed: what is left in
    /// `buf` is all there will ever be. Call it until it returns
    /// [`BodyEvent::End`].
    ///
    /// # Errors
    ///
    /// Those of [`decode`](Self::decode), and [`Error::TruncatedBody`] if the
    /// body is not complete (only a close-delimited body ends with the
    /// connection).
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<BodyEvent, Error> {
        if let Some(event) = self.decode(buf)? {
            return Ok(event);
        }
        match self.state {
            State::UntilClose => {
                self.state = State::Ended;
                Ok(BodyEvent::End(self.keep_alive))
            }
            _ => Err(Error::TruncatedBody),
        }
    }

    /// Whether the body is complete (the next event is, or was, `End`).
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Ending | State::Ended)
    }

    /// Advances a chunked body by one step.
    fn decode_chunked(&mut self, chunk: Chunk, buf: &mut BytesMut) -> Result<Step, Error> {
        match chunk {
            Chunk::Size { scanned } => {
                let max = self.limits.max_chunk_line();
                let Some(lf) = buf
                    .get(scanned..)
                    .and_then(|rest| memchr::memchr(b'\n', rest))
                    .and_then(|offset| offset.checked_add(scanned))
                else {
                    if buf.len() > max {
                        return Err(Error::InvalidChunk("chunk-size line too long"));
                    }
                    if buf.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                        return Err(Error::InvalidChunk("chunk size is not hexadecimal"));
                    }
                    self.state = State::Chunked(Chunk::Size { scanned: buf.len() });
                    return Ok(Step::NeedMore);
                };
                let line_len = lf
                    .checked_add(1)
                    .ok_or(Error::InvalidChunk("chunk-size line too long"))?;
                if line_len > max {
                    return Err(Error::InvalidChunk("chunk-size line too long"));
                }
                let size = parse_chunk_line(buf.get(..line_len).unwrap_or_default())?;
                buf.advance(line_len);
                self.state = State::Chunked(match size {
                    0 => Chunk::Trailers { scanned: 0 },
                    remaining => Chunk::Data { remaining },
                });
                Ok(Step::Framing)
            }
            Chunk::Data { remaining } => {
                let Some(data) = split_data(buf, remaining) else {
                    return Ok(Step::NeedMore);
                };
                let remaining = remaining.saturating_sub(data.len() as u64);
                self.state = State::Chunked(match remaining {
                    0 => Chunk::DataEnd,
                    _ => Chunk::Data { remaining },
                });
                Ok(Step::Event(BodyEvent::Data(data)))
            }
            Chunk::DataEnd => match buf.get(..2) {
                Some(b"\r\n") => {
                    buf.advance(2);
                    self.state = State::Chunked(Chunk::Size { scanned: 0 });
                    Ok(Step::Framing)
                }
                None if matches!(buf.first(), None | Some(b'\r')) => Ok(Step::NeedMore),
                _ => Err(Error::InvalidChunk("missing CRLF after chunk data")),
            },
            Chunk::Trailers { scanned } => self.decode_trailers(scanned, buf),
        }
    }

    /// The trailer section after the last chunk: an empty line, or fields then an
    /// empty line.
    fn decode_trailers(&mut self, scanned: usize, buf: &mut BytesMut) -> Result<Step, Error> {
        match buf.first() {
            None => return Ok(Step::NeedMore),
            Some(b'\r') => match buf.get(1) {
                None => return Ok(Step::NeedMore),
                Some(b'\n') => {
                    buf.advance(2);
                    self.state = State::Ending;
                    return Ok(Step::Framing);
                }
                Some(_) => return Err(Error::InvalidChunk("missing CRLF after the last chunk")),
            },
            Some(b'\n') => return Err(Error::InvalidChunk("missing CRLF after the last chunk")),
            Some(_) => {}
        }
        let max = self.limits.max_header_bytes();
        let window = buf.get(..max).unwrap_or(&buf[..]);
        let Some(end) = find_empty_line(window, scanned.saturating_sub(2)) else {
            if buf.len() > max {
                return Err(Error::HeaderTooLarge);
            }
            self.state = State::Chunked(Chunk::Trailers { scanned: buf.len() });
            return Ok(Step::NeedMore);
        };
        let section = buf.split_to(end).freeze();
        let slots = header_slots(self.limits.max_headers(), max);
        // Trailers are rare, so their slots are simply initialised (httparse has
        // no uninitialised variant of `parse_headers`).
        let mut stack: [httparse::Header<'_>; STACK_HEADERS] =
            [httparse::EMPTY_HEADER; STACK_HEADERS];
        let mut heap = Vec::new();
        let slots = match stack.get_mut(..slots) {
            Some(slots) => slots,
            None => {
                heap.resize(slots, httparse::EMPTY_HEADER);
                &mut heap[..]
            }
        };
        let fields = match httparse::parse_headers(&section, slots).map_err(from_httparse)? {
            httparse::Status::Complete((_, fields)) => fields,
            httparse::Status::Partial => {
                return Err(Error::InvalidHead("malformed trailer section"))
            }
        };
        let (trailers, _) = section_map(&section, fields)?;
        self.state = State::Ending;
        Ok(Step::Event(BodyEvent::Trailers(trailers)))
    }
}

/// Splits off up to `remaining` bytes of data from `buf`; `None` if `buf` is
/// empty.
fn split_data(buf: &mut BytesMut, remaining: u64) -> Option<bytes::Bytes> {
    if buf.is_empty() {
        return None;
    }
    let take = usize::try_from(remaining).map_or(buf.len(), |remaining| remaining.min(buf.len()));
    Some(buf.split_to(take).freeze())
}

/// The size of a complete chunk-size line (up to and including its LF):
/// `1*HEXDIG [ BWS ";" chunk-ext ] CRLF`, where the extensions are ignored but
/// may hold no control bytes.
fn parse_chunk_line(line: &[u8]) -> Result<u64, Error> {
    let Some(content) = line.strip_suffix(b"\r\n") else {
        return Err(Error::InvalidChunk("chunk-size line must end with CRLF"));
    };
    let digits = content.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(Error::InvalidChunk("chunk size is not hexadecimal"));
    }
    let (hex, rest) = content.split_at(digits);
    let size = hex.iter().try_fold(0u64, |size, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        size.checked_mul(16)?.checked_add(u64::from(digit))
    });
    let size = size.ok_or(Error::InvalidChunk("chunk size overflows"))?;
    // Optional white space may precede the extensions (RFC 9112 section 7.1.1),
    // and is tolerated before the CRLF as well.
    let rest = match rest.iter().position(|&b| b != b' ' && b != b'\t') {
        Some(start) => rest.get(start..).unwrap_or_default(),
        None => &[],
    };
    match rest {
        [] => Ok(size),
        [b';', extensions @ ..] if is_field_value(extensions) => Ok(size),
        _ => Err(Error::InvalidChunk("invalid chunk extension")),
    }
}
