//! Whether a connection may carry another request after this exchange.
//!
//! Reusing an HTTP/1.1 connection is only safe when both ends agree on where the
//! response ended. If they might not (the server announced a close, the body was
//! delimited by the close itself, the framing was ambiguous, or the server sent
//! more bytes than it framed), the next response read from that connection could
//! be the tail of this one: the classic response-desynchronisation bug. So the
//! decision defaults to "close", and a connection is reusable only when every
//! step proved it clean. The reason travels with the decision so that the pool's
//! statistics can tell a server's `Connection: close` from a protocol fault.

use super::encoder::BodyEncoder;

/// Why a connection must be closed after the current exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The request asked for it: `Connection: close`, or an HTTP/1.0 request
    /// without `Connection: keep-alive`.
    RequestClose,
    /// The server asked for it: `Connection: close`, or an HTTP/1.0 response
    /// without `Connection: keep-alive`.
    ServerClose,
    /// The response body ends when the connection closes.
    CloseDelimited,
    /// The response had both `Transfer-Encoding` and `Content-Length`. The
    /// chunked framing was used, as RFC 9112 section 6.3 says, but the message
    /// may be an attempt at response splitting, so the connection is not
    /// trusted with another one.
    AmbiguousFraming,
    /// The connection switched protocols (`101 Switching Protocols`, or a tunnel
    /// after a successful `CONNECT`); it no longer speaks HTTP/1.1.
    Upgraded,
    /// The server sent bytes after the end of the response it framed.
    UnexpectedData,
    /// The request body was not completely sent (the server answered early).
    RequestBodyIncomplete,
}

/// The keep-alive decision for one exchange: reusable, or closed for a reason.
///
/// The response parser makes the first decision from the two heads
/// ([`ResponseHead::keep_alive`](super::ResponseHead::keep_alive)); the body
/// decoder makes the final one when the body ends
/// ([`BodyEvent::End`](super::BodyEvent::End)). Only the final one may be used to
/// return a connection to the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    close: Option<CloseReason>,
}

impl KeepAlive {
    /// The connection may carry another request.
    pub const REUSABLE: KeepAlive = KeepAlive { close: None };

    /// The connection must be closed, for `reason`.
    pub fn close(reason: CloseReason) -> KeepAlive {
        KeepAlive {
            close: Some(reason),
        }
    }

    /// Whether the connection may carry another request.
    pub fn is_reusable(&self) -> bool {
        self.close.is_none()
    }

    /// Why the connection must be closed, or `None` if it is reusable.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close
    }

    /// This decision, made stricter by `reason`: a closed connection keeps its
    /// first reason.
    #[must_use]
    pub fn and_close(self, reason: CloseReason) -> KeepAlive {
        match self.close {
            Some(_) => self,
            None => KeepAlive::close(reason),
        }
    }

    /// This decision, closed if the request body behind `encoder` was not
    /// completely sent: the server cannot tell where the unsent rest would have
    /// ended, so the connection cannot be reused.
    #[must_use]
    pub fn with_request_body(self, encoder: &BodyEncoder) -> KeepAlive {
        if encoder.is_finished() {
            self
        } else {
            self.and_close(CloseReason::RequestBodyIncomplete)
        }
    }
}
