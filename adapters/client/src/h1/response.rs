//! Parsing a response head and deciding how its body is framed.
//!
//! The parser buffers nothing of its own: the caller appends what it reads to a
//! `BytesMut` and calls [`ResponseParser::parse`] until it returns a head. The
//! head's bytes are then split off that buffer and frozen, and the header values
//! are slices of them, so a head costs one `HeaderMap` and no copies of values;
//! what follows the head (the start of the body) stays in the caller's buffer for
//! the [`BodyDecoder`].
//!
//! Incremental parsing stays linear in the bytes received: the parser remembers
//! how far it has looked for the empty line that ends the head, and runs
//! `httparse` over the head only once that line is there (and once early, on the
//! first bytes, so that a reply that is not HTTP fails at once instead of after
//! the header limit). Informational responses are parsed, checked and dropped;
//! `101 Switching Protocols` is final, and leaves the rest of the buffer to the
//! protocol the connection switched to.
//!
//! The framing decision follows RFC 9112 section 6.3, in its order: no body for
//! a response to `HEAD` and for 204 and 304; a tunnel after a 2xx to `CONNECT`;
//! chunked if the final transfer coding is chunked (which overrides any
//! `Content-Length`, but leaves the connection untrusted); read until close for
//! any other transfer coding; the `Content-Length` if there is one; and read
//! until close otherwise.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::{response, HeaderMap, StatusCode, Version};

use super::decoder::{BodyDecoder, Framing};
use super::fields::{
    field_spans, find_empty_line, from_httparse, header_map, header_slots, FramingFields,
    StackSpans, TransferCoding, STACK_HEADERS,
};
use super::keep_alive::{CloseReason, KeepAlive};
use super::request::RequestInfo;
use super::{Error, Limits};

/// A final response head, with the framing of its body and the keep-alive
/// decision the heads allow.
#[derive(Debug)]
pub struct ResponseHead {
    parts: response::Parts,
    framing: Framing,
    keep_alive: KeepAlive,
    limits: Limits,
}

impl ResponseHead {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.parts.status
    }

    /// The protocol version: HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.parts.version
    }

    /// The header fields, in the order received.
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// The head as `http`'s response parts.
    pub fn parts(&self) -> &response::Parts {
        &self.parts
    }

    /// How the body is delimited.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The keep-alive decision the two heads allow. The body may still make the
    /// connection unusable; only [`BodyEvent::End`](super::BodyEvent::End)
    /// carries the final decision.
    pub fn keep_alive(&self) -> KeepAlive {
        self.keep_alive
    }

    /// The body's length when the head says it: `Content-Length`, or none.
    pub(crate) fn known_length(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::Empty => Some(0),
            _ => None,
        }
    }

    /// The whole body, taken from `buf` (the bytes read past the head), when
    /// `buf` holds exactly the body the head declares and nothing after it:
    /// the usual small response, which then needs no decoder, and leaves the
    /// connection as reusable as [`keep_alive`](Self::keep_alive) says. `None`
    /// (and `buf` untouched) when the body is still to be decoded.
    pub(crate) fn whole_body(&self, buf: &mut BytesMut) -> Option<Bytes> {
        if self.known_length()? != buf.len() as u64 {
            return None;
        }
        Some(if buf.is_empty() {
            Bytes::new()
        } else {
            buf.split().freeze()
        })
    }

    /// A decoder for the body, under the limits the head was parsed with.
    pub fn body_decoder(&self) -> BodyDecoder {
        BodyDecoder::new(self.framing, self.keep_alive, self.limits)
    }

    /// The head as `http`'s response parts, to build an `http::Response`.
    pub fn into_parts(self) -> response::Parts {
        self.parts
    }
}

/// Parses the head of the response to one request.
///
/// ```
/// # #[cfg(feature = "unstable")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use bytes::BytesMut;
/// use http::Method;
/// use muxpool_client::h1::{Framing, Limits, RequestInfo, ResponseParser};
///
/// let mut parser = ResponseParser::new(RequestInfo::new(&Method::GET), Limits::default());
/// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Len"[..]);
/// assert!(parser.parse(&mut buf)?.is_none()); // needs more bytes
/// buf.extend_from_slice(b"gth: 5\r\n\r\nhello");
/// let head = parser.parse(&mut buf)?.expect("a complete head");
/// assert_eq!(head.status(), 200);
/// assert_eq!(head.framing(), Framing::Length(5));
/// assert_eq!(&buf[..], b"hello"); // the body is left for the decoder
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "unstable"))]
/// # fn main() {}
/// ```
#[derive(Clone, Debug)]
pub struct ResponseParser {
    request: RequestInfo,
    limits: Limits,
    /// How many bytes of the current head have been searched for its end.
    scanned: usize,
    /// Whether the start of the current head was seen to be a status line.
    status_checked: bool,
    /// Whether any byte of a response has arrived.
    received: bool,
    /// Whether a `100 Continue` was skipped.
    continued: bool,
    /// Whether the final head was returned.
    finished: bool,
}

/// One parsed head: informational ones are skipped.
enum Head {
    Informational(StatusCode),
    Final(ResponseHead),
}

impl ResponseParser {
    /// A parser for the response to `request`, under `limits`.
    pub fn new(request: RequestInfo, limits: Limits) -> ResponseParser {
        ResponseParser {
            request,
            limits,
            scanned: 0,
            status_checked: false,
            received: false,
            continued: false,
            finished: false,
        }
    }

    /// Parses the response head at the start of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed: append them to `buf` and
    /// call again. Informational (1xx) heads other than 101 are consumed and
    /// skipped. When the final head is complete its bytes are removed from `buf`,
    /// which then starts with the body, and the head is returned. A parser
    /// returns one final head; calling it again is an error.
    ///
    /// # Errors
    ///
    /// [`Error::HeaderTooLarge`], [`Error::TooManyHeaders`],
    /// [`Error::InvalidHead`] and [`Error::InvalidContentLength`] for a head that
    /// breaks the limits or the syntax; [`Error::UnexpectedData`] if the final
    /// head was already returned. After an error the connection must be closed.
    #[inline]
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<ResponseHead>, Error> {
        if self.finished {
            return Err(Error::UnexpectedData);
        }
        if buf.is_empty() {
            // Nothing to look at (the usual start of an exchange: the previous
            // one left nothing behind): no head yet, and nothing searched.
            self.scanned = 0;
            return Ok(None);
        }
        self.parse_bytes(buf)
    }

    /// [`parse`](Self::parse) once there are bytes.
    fn parse_bytes(&mut self, buf: &mut BytesMut) -> Result<Option<ResponseHead>, Error> {
        loop {
            self.received |= !buf.is_empty();
            // Empty lines before a status line are tolerated, as httparse does,
            // and dropped at once so that they cost no rescanning.
            let lead = leading_empty_lines(buf);
            buf.advance(lead);
            self.scanned = self.scanned.saturating_sub(lead);
            let max = self.limits.max_header_bytes();
            let window = buf.len().min(max);
            // The first look at a head hands every byte to httparse, which
            // finds the head's end as it parses: the usual head, whole in one
            // read, is gone over once. Only a head still incomplete then is
            // searched for its end, from where the last search stopped, and
            // parsed once that end is there.
            let first_look = self.scanned == 0;
            let end = if first_look {
                window
            } else {
                match find_empty_line(&buf[..window], self.scanned.saturating_sub(2)) {
                    Some(end) => end,
                    None => {
                        if !self.status_checked {
                            self.check_status_line(buf)?;
                        }
                        return self.incomplete(buf.len(), max);
                    }
                }
            };
            let Some(head) = self.take_head(buf, end)? else {
                if !first_look {
                    // The search found an empty line that httparse did not
                    // take as the end of the head.
                    return Err(Error::InvalidHead("malformed response head"));
                }
                // httparse went over every byte there is and found them a
                // valid start of a head, status line included if it is whole.
                self.status_checked = true;
                return self.incomplete(buf.len(), max);
            };
            // The next head, if any, starts afresh.
            self.scanned = 0;
            self.status_checked = false;
            match head {
                Head::Informational(status) => {
                    self.continued |= status == StatusCode::CONTINUE;
                }
                Head::Final(head) => {
                    self.finished = true;
                    return Ok(Some(head));
                }
            }
        }
    }

    /// The head is not whole in the `buffered` bytes: an error past the size
    /// limit, else a wait for more, with every byte searched.
    fn incomplete(&mut self, buffered: usize, max: usize) -> Result<Option<ResponseHead>, Error> {
        if buffered > max {
            return Err(Error::HeaderTooLarge);
        }
        self.scanned = buffered;
        Ok(None)
    }

    /// Parses what is left in `buf` once the connection has closed.
    ///
    /// # Errors
    ///
    /// Those of [`parse`](Self::parse), and, if the head is not complete,
    /// [`Error::ClosedBeforeResponse`] when no byte of a response ever arrived
    /// (the request may be retried on another connection if it is idempotent)
    /// or [`Error::TruncatedHead`] otherwise.
    pub fn parse_eof(&mut self, buf: &mut BytesMut) -> Result<ResponseHead, Error> {
        match self.parse(buf)? {
            Some(head) => Ok(head),
            None if self.received => Err(Error::TruncatedHead),
            None => Err(Error::ClosedBeforeResponse),
        }
    }

    /// Whether a `100 Continue` has been received (and skipped): a request sent
    /// with `Expect: 100-continue` may now send its body.
    pub fn received_continue(&self) -> bool {
        self.continued
    }

    /// Fails fast when the bytes so far cannot start a status line. Stops
    /// checking once the status code has been read, so the check costs a few
    /// bytes per call, however the head arrives.
    fn check_status_line(&mut self, buf: &[u8]) -> Result<(), Error> {
        let mut response = httparse::Response::new(&mut []);
        match response.parse(buf) {
            // With no header slots, a complete status line followed by a field
            // is reported as too many headers: the status line was fine.
            Ok(httparse::Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => {
                self.status_checked = true;
            }
            Ok(httparse::Status::Partial) => self.status_checked = response.code.is_some(),
            Err(error) => return Err(from_httparse(error)),
        }
        Ok(())
    }

    /// Parses the head at the start of `buf`, in its first `end` bytes, and
    /// splits it off `buf` if it is whole there; `None`, and `buf` untouched,
    /// if it is not.
    fn take_head(&self, buf: &mut BytesMut, end: usize) -> Result<Option<Head>, Error> {
        let slots = header_slots(self.limits.max_headers(), self.limits.max_header_bytes());
        let mut stack = [MaybeUninit::<httparse::Header<'_>>::uninit(); STACK_HEADERS];
        let mut heap = Vec::new();
        let slots = match stack.get_mut(..slots) {
            Some(slots) => slots,
            None => {
                heap.resize(slots, MaybeUninit::uninit());
                &mut heap[..]
            }
        };
        let head = &buf[..end];
        let mut response = httparse::Response::new(&mut []);
        let status = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut response, head, slots)
            .map_err(from_httparse)?;
        let httparse::Status::Complete(len) = status else {
            return Ok(None);
        };
        let version = match response.version {
            Some(0) => Version::HTTP_10,
            Some(1) => Version::HTTP_11,
            _ => return Err(Error::InvalidHead("invalid HTTP version")),
        };
        let status = response
            .code
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or(Error::InvalidHead("invalid status code"))?;
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            buf.advance(len);
            return Ok(Some(Head::Informational(status)));
        }
        let (mut stack, mut heap) = (StackSpans::new(), Vec::new());
        let spans = field_spans(response.headers, head, &mut stack, &mut heap);
        let section = buf.split_to(len).freeze();
        let (headers, fields) = header_map(&section, spans)?;
        let (framing, framing_close) = framing(status, version, &fields, self.request)?;

        let mut keep_alive = KeepAlive::REUSABLE;
        if let Some(reason) = framing_close {
            keep_alive = keep_alive.and_close(reason);
        }
        if self.request.wants_close() {
            keep_alive = keep_alive.and_close(CloseReason::RequestClose);
        }
        if fields.connection().closes(version == Version::HTTP_10) {
            keep_alive = keep_alive.and_close(CloseReason::ServerClose);
        }

        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = status;
        parts.version = version;
        parts.headers = headers;
        Ok(Some(Head::Final(ResponseHead {
            parts,
            framing,
            keep_alive,
            limits: self.limits,
        })))
    }
}

/// The body framing of a final response, and the reason it forbids reuse, if it
/// does (RFC 9112 section 6.3).
fn framing(
    status: StatusCode,
    version: Version,
    fields: &FramingFields,
    request: RequestInfo,
) -> Result<(Framing, Option<CloseReason>), Error> {
    if status == StatusCode::SWITCHING_PROTOCOLS || (request.is_connect() && status.is_success()) {
        return Ok((Framing::Upgrade, Some(CloseReason::Upgraded)));
    }
    if request.is_head() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((Framing::Empty, None));
    }
    let coding = fields.transfer_coding()?;
    if coding.is_some() && version == Version::HTTP_10 {
        // RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has
        // faulty framing.
        return Err(Error::InvalidHead(
            "Transfer-Encoding in an HTTP/1.0 response",
        ));
    }
    match coding {
        Some(TransferCoding::Chunked) if fields.has_content_length() => {
            Ok((Framing::Chunked, Some(CloseReason::AmbiguousFraming)))
        }
        Some(TransferCoding::Chunked) => Ok((Framing::Chunked, None)),
        Some(TransferCoding::NotChunked) => {
            Ok((Framing::CloseDelimited, Some(CloseReason::CloseDelimited)))
        }
        None => match fields.content_length()? {
            Some(length) => Ok((Framing::Length(length), None)),
            None => Ok((Framing::CloseDelimited, Some(CloseReason::CloseDelimited))),
        },
    }
}

/// How many bytes of empty lines (CRLF or LF) start `buf`.
fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match buf.get(at..) {
            Some([b'\n', ..]) => at += 1,
            Some([b'\r', b'\n', ..]) => at += 2,
            _ => return at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn parsed(raw: &[u8], method: &Method) -> (ResponseHead, BytesMut) {
        let mut parser = ResponseParser::new(RequestInfo::new(method), Limits::default());
        let mut buf = BytesMut::from(raw);
        let head = parser.parse(&mut buf).unwrap().expect("a whole head");
        (head, buf)
    }

    #[test]
    fn a_body_buffered_whole_is_taken_without_a_decoder() {
        let (head, mut buf) = parsed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            &Method::GET,
        );
        assert_eq!(head.known_length(), Some(5));
        assert_eq!(head.whole_body(&mut buf).as_deref(), Some(&b"hello"[..]));
        assert!(buf.is_empty());
        // No body: taken as empty when nothing follows the head.
        let (head, mut buf) = parsed(b"HTTP/1.1 204 No Content\r\n\r\n", &Method::GET);
        assert_eq!(head.whole_body(&mut buf).as_deref(), Some(&b""[..]));
    }

    #[test]
    fn a_body_not_buffered_exactly_is_left_to_the_decoder() {
        for (raw, left) in [
            // Not all of it yet.
            (&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"[..], 3),
            // More than it: a stray byte the decoder must see.
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhello", 5),
            (b"HTTP/1.1 304 Not Modified\r\n\r\nx", 1),
            // Framed otherwise.
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                5,
            ),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil close", 11),
        ] {
            let (head, mut buf) = parsed(raw, &Method::GET);
            assert_eq!(head.whole_body(&mut buf), None);
            assert_eq!(buf.len(), left, "{:?}", String::from_utf8_lossy(raw));
        }
    }
}
