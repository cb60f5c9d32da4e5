//! The one error type of the HTTP/1.1 codec.
//!
//! Every way a response can be malformed, every way a request could be turned into
//! something the server would read differently from what the caller meant, and
//! every mismatch between a declared body length and the bytes given, is one
//! variant here. The variants are coarse on purpose: the caller's decision is
//! almost always "fail this exchange and close the connection", and the kind says
//! whose fault it was and whether a retry on a fresh connection can help
//! ([`Error::ClosedBeforeResponse`] is the only kind where it can, and only for
//! idempotent requests). The `&'static str` carried by some variants is a short
//! human explanation for logs, not something to match on.

use std::fmt;

/// What went wrong while encoding a request or decoding a response.
///
/// Once the response parser or body decoder has returned an error, the
/// connection is in an unknown state and must be closed; it is never handed back
/// to the pool. A request encoding error leaves the connection untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The response head, or the trailer section of a chunked body, is longer than
    /// [`Limits::max_header_bytes`](super::Limits::max_header_bytes).
    HeaderTooLarge,
    /// The response head, or the trailer section, has more fields than
    /// [`Limits::max_headers`](super::Limits::max_headers).
    TooManyHeaders,
    /// The status line or a header field of the response is malformed, or its
    /// fields contradict each other in a way that makes the framing unknowable.
    InvalidHead(&'static str),
    /// A `Content-Length` field of the response is not a plain decimal number that
    /// fits in a `u64`, or several of them disagree.
    InvalidContentLength,
    /// The chunked framing of the response body is malformed.
    InvalidChunk(&'static str),
    /// The connection closed before a single byte of the response arrived: the
    /// server may have closed an idle connection just as the request was sent,
    /// so an idempotent request may be retried on a new connection.
    ClosedBeforeResponse,
    /// The connection closed in the middle of the response head.
    TruncatedHead,
    /// The connection closed before the body was complete: before
    /// `Content-Length` bytes, or before the last chunk and its trailer section.
    /// A short body is never reported as a success.
    TruncatedBody,
    /// The request cannot be encoded safely: a header name or value, the method or
    /// the target would let the server read a different message (header
    /// injection, request smuggling), or the request is missing what HTTP/1.1
    /// needs (a `Host`).
    InvalidRequest(&'static str),
    /// The request body given does not match its declared framing: more bytes
    /// than the declared length, fewer when finishing, or data after the end.
    RequestBodyLength,
    /// Bytes arrived that belong to no response: after the end of a response
    /// whose body has already been completely decoded.
    UnexpectedData,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::HeaderTooLarge => f.write_str("response header section is too large"),
            Error::TooManyHeaders => f.write_str("response has too many header fields"),
            Error::InvalidHead(why) => write!(f, "invalid response head: {why}"),
            Error::InvalidContentLength => f.write_str("invalid Content-Length in response"),
            Error::InvalidChunk(why) => write!(f, "invalid chunked body: {why}"),
            Error::ClosedBeforeResponse => {
                f.write_str("connection closed before the response started")
            }
            Error::TruncatedHead => {
                f.write_str("connection closed in the middle of the response head")
            }
            Error::TruncatedBody => {
                f.write_str("connection closed before the response body was complete")
            }
            Error::InvalidRequest(why) => write!(f, "request cannot be encoded: {why}"),
            Error::RequestBodyLength => {
                f.write_str("request body does not match its declared length")
            }
            Error::UnexpectedData => f.write_str("unexpected data after the end of the response"),
        }
    }
}

impl std::error::Error for Error {}
