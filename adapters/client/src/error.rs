//! The client's one error type.
//!
//! Every failure of [`Client::send`](crate::Client::send) and of reading a
//! response [`Body`](crate::Body) is an [`Error`]: a [`ErrorKind`] to match on, a
//! readable message, and the underlying cause as its
//! [`source`](std::error::Error::source) (an `io::Error`, a
//! [`TlsError`](crate::tls::TlsError), an [`h1::Error`](crate::h1::Error), ...).
//! Kinds are coarse on purpose: they answer "what should the caller do" (retry
//! later, fix the request, trust a certificate), while the source chain says
//! exactly what happened.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use muxpool_core::{ConnectFailure, RejectReason};

/// A boxed cause.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The client's configuration is invalid (reported by
    /// [`ClientBuilder::build`](crate::ClientBuilder::build)).
    Config,
    /// The request cannot be sent as given: an unsupported scheme, a URI without a
    /// host, a header that would corrupt the message.
    Request,
    /// The name could not be resolved, or no address accepted a connection.
    Connect,
    /// The TLS handshake failed: an untrusted or expired certificate, a name
    /// mismatch, no common protocol.
    Tls,
    /// A deadline passed: the request's timeout, the wait for a connection, or a
    /// read of the body.
    Timeout,
    /// The pool could not take the request: its origin's queue is full.
    PoolExhausted,
    /// The origin's circuit is open after repeated connect failures; requests
    /// fail fast until a probe connection succeeds.
    CircuitOpen,
    /// The client is shutting down or was dropped.
    ShutDown,
    /// The server broke the protocol: a malformed, oversized or truncated
    /// response head, or the connection closed before a response.
    Protocol,
    /// Reading or writing a body failed: the response body was truncated or
    /// malformed, the request body's stream failed, a body exceeded its limit.
    Body,
    /// A WebSocket failed: its handshake was refused, the server closed it or
    /// it dropped, a message exceeded its limit, a reconnecting WebSocket's
    /// buffer is full. [`Error::websocket`] says which.
    WebSocket,
    /// The client's runtime cannot run its tasks from here: a tokio client
    /// used outside any tokio runtime
    /// ([`Runtime::is_reachable`](crate::runtime::Runtime::is_reachable)).
    Runtime,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Config => "invalid configuration",
            ErrorKind::Request => "invalid request",
            ErrorKind::Connect => "connect failed",
            ErrorKind::Tls => "TLS handshake failed",
            ErrorKind::Timeout => "timed out",
            ErrorKind::PoolExhausted => "pool exhausted",
            ErrorKind::CircuitOpen => "circuit open",
            ErrorKind::ShutDown => "client shut down",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Body => "body error",
            ErrorKind::WebSocket => "WebSocket error",
            ErrorKind::Runtime => "no runtime to run on",
        }
    }
}

/// A failure of the client: what kind, in what words, and why.
///
/// Cheap to clone: the cause is shared, so one connect failure can be reported
/// to every request it failed.
///
/// `Display` gives the kind and a short message; the alternate form (`{:#}`)
/// appends the whole chain of causes, for logs:
/// `connect failed: connection refused (os error 111)`.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: Option<&'static str>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Error {
        Error {
            kind,
            message: None,
            source: None,
        }
    }

    pub(crate) fn with_message(mut self, message: &'static str) -> Error {
        self.message = Some(message);
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// What a connect that failed with this error says about the next one:
    /// a TCP connect refused, reset or unreachable, a connect that timed out,
    /// or a handshake whose connection was reset or closed under it, may
    /// succeed if tried again (a server restarting, a network blip); a name
    /// that does not resolve, a certificate refused, a protocol the server
    /// does not speak, a refused WebSocket upgrade would fail the same way.
    /// The first I/O error in the chain says which.
    pub(crate) fn connect_failure(&self) -> ConnectFailure {
        use std::io::ErrorKind::*;
        if self.kind == ErrorKind::Timeout {
            return ConnectFailure::Transient;
        }
        let mut cause = self
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static));
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return match io.kind() {
                    ConnectionRefused | ConnectionReset | ConnectionAborted | HostUnreachable
                    | NetworkUnreachable | UnexpectedEof | BrokenPipe | TimedOut => {
                        ConnectFailure::Transient
                    }
                    _ => ConnectFailure::Permanent,
                };
            }
            cause = e.source();
        }
        ConnectFailure::Permanent
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether a deadline passed.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// What went wrong with a WebSocket, for an error of kind
    /// [`ErrorKind::WebSocket`].
    pub fn websocket(&self) -> Option<&WebSocketError> {
        self.source.as_deref()?.downcast_ref()
    }

    /// The error for a request the pool refused.
    pub(crate) fn rejected(reason: RejectReason) -> Error {
        match reason {
            RejectReason::Timeout => {
                Error::new(ErrorKind::Timeout).with_message("no connection became free in time")
            }
            RejectReason::QueueFull => Error::new(ErrorKind::PoolExhausted)
                .with_message("too many requests are waiting for this origin"),
            RejectReason::ConnectFailed => Error::new(ErrorKind::Connect),
            RejectReason::CircuitOpen => Error::new(ErrorKind::CircuitOpen)
                .with_message("recent connects to this origin failed"),
            RejectReason::ShuttingDown => Error::new(ErrorKind::ShutDown),
            RejectReason::RetryBudget => Error::new(ErrorKind::PoolExhausted)
                .with_message("the client's retry budget is spent"),
            _ => Error::new(ErrorKind::PoolExhausted).with_message("the pool refused the request"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(message) = self.message {
            d.field("message", &message);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())?;
        if let Some(message) = self.message {
            write!(f, ": {message}")?;
        }
        if f.alternate() {
            let mut source = self
                .source
                .as_deref()
                .map(|e| e as &(dyn StdError + 'static));
            while let Some(cause) = source {
                write!(f, ": {cause}")?;
                source = cause.source();
            }
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// What went wrong with a WebSocket: the cause of an [`Error`] of kind
/// [`ErrorKind::WebSocket`], from [`Error::websocket`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebSocketError {
    /// The server closed the WebSocket with a close frame.
    Closed {
        /// The close code (RFC 6455 section 7.4); 1005 when the frame had none.
        code: u16,
        /// The reason the server gave, possibly empty.
        reason: String,
    },
    /// The connection ended without a close frame: reset, end of stream, or
    /// the pool closed it because it stopped answering pings.
    Dropped,
    /// This side closed the WebSocket ([`WebSocket::close`](crate::WebSocket::close)).
    ClosedLocally,
    /// A message was larger than the limit
    /// ([`ClientBuilder::max_websocket_message`](crate::ClientBuilder::max_websocket_message)).
    MessageTooLarge {
        /// The message's size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The server answered the upgrade request with this status instead of
    /// `101 Switching Protocols`.
    HandshakeRejected {
        /// The response's status code.
        status: u16,
    },
    /// The server broke the WebSocket protocol, or sent a message to a
    /// WebSocket idle in the pool.
    Protocol(String),
    /// A reconnecting WebSocket is disconnected and its buffer of messages to
    /// send is full; the message was not taken.
    BufferFull {
        /// The buffer's capacity, in messages.
        capacity: usize,
    },
}

impl fmt::Display for WebSocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebSocketError::Closed { code, reason } if reason.is_empty() => {
                write!(f, "the server closed the WebSocket (code {code})")
            }
            WebSocketError::Closed { code, reason } => {
                write!(f, "the server closed the WebSocket (code {code}: {reason})")
            }
            WebSocketError::Dropped => f.write_str("the WebSocket dropped without a close frame"),
            WebSocketError::ClosedLocally => f.write_str("the WebSocket was closed by this side"),
            WebSocketError::MessageTooLarge { size, max } => {
                write!(f, "a message of {size} bytes exceeds the limit of {max}")
            }
            WebSocketError::HandshakeRejected { status } => {
                write!(
                    f,
                    "the server refused the WebSocket upgrade with status {status}"
                )
            }
            WebSocketError::Protocol(detail) => write!(f, "WebSocket protocol error: {detail}"),
            WebSocketError::BufferFull { capacity } => write!(
                f,
                "the WebSocket is reconnecting and its buffer of {capacity} messages is full"
            ),
        }
    }
}

impl std::error::Error for WebSocketError {}

impl WebSocketError {
    /// This failure as an [`Error`] of kind [`ErrorKind::WebSocket`].
    pub(crate) fn into_error(self) -> Error {
        Error::new(ErrorKind::WebSocket).with_source(self)
    }
}

#[cfg(test)]
mod connect_failure_tests {
    use std::io;

    use muxpool_core::ConnectFailure::{Permanent, Transient};

    use super::{Error, ErrorKind};

    fn io(kind: io::ErrorKind) -> io::Error {
        io::Error::from(kind)
    }

    /// A connect cut by a server going away may pass next time; one the server
    /// or the name refused for good would not.
    #[test]
    fn connect_failures_that_may_pass() {
        let tcp = Error::new(ErrorKind::Connect).with_source(io(io::ErrorKind::ConnectionRefused));
        assert_eq!(tcp.connect_failure(), Transient);
        assert_eq!(Error::new(ErrorKind::Timeout).connect_failure(), Transient);
        let reset = Error::new(ErrorKind::Tls).with_source(io(io::ErrorKind::ConnectionReset));
        assert_eq!(reset.connect_failure(), Transient);
        let eof = Error::new(ErrorKind::Protocol).with_source(io(io::ErrorKind::UnexpectedEof));
        assert_eq!(eof.connect_failure(), Transient);

        let name = Error::new(ErrorKind::Connect)
            .with_message("name resolution failed")
            .with_source(io(io::ErrorKind::Other));
        assert_eq!(name.connect_failure(), Permanent);
        let certificate = Error::new(ErrorKind::Tls).with_source(io(io::ErrorKind::InvalidData));
        assert_eq!(certificate.connect_failure(), Permanent);
        assert_eq!(
            Error::new(ErrorKind::WebSocket).connect_failure(),
            Permanent
        );
    }
}
