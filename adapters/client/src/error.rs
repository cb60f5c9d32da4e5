//! The client's one error type.
//!
//! Every failure of [`Client::send`](crate::Client::send) and of reading a
//! response [`Body`](crate::Body) is an [`Error`]: a [`ErrorKind`] to match on,
//! the [`Origin`] it happened with, a readable message, and the underlying
//! cause as its [`source`](std::error::Error::source) (an `io::Error`, a
//! [`TlsError`](crate::tls::TlsError), an [`h1::Error`](crate::h1::Error), ...).
//! Kinds are coarse on purpose: they answer "what should the caller do" (retry
//! later, fix the request, trust a certificate), while the source chain says
//! exactly what happened.
//!
//! An error is read by people in logs more than by code, often printed once
//! with `{}`: so its `Display` is one line that says what failed, with which
//! origin and why, and the alternate form adds every step of the chain in
//! between for whoever must dig (see [`Error`] for the rule). The origin is
//! attached only when an error is built, never carried by a request that
//! succeeds.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use muxpool_core::{ConnectFailure, RejectReason};

/// A boxed cause.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What kind of failure an [`Error`] is, and so what a caller can do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The client's configuration is invalid (reported by
    /// [`ClientBuilder::build`](crate::ClientBuilder::build)). Fix the
    /// configuration; retrying cannot help.
    Config,
    /// The request cannot be sent as given: an unsupported scheme, a URI without a
    /// host, a header that would corrupt the message. Nothing was sent; fix the
    /// request, retrying it unchanged fails the same way.
    Request,
    /// The name could not be resolved, or no address accepted a connection.
    /// The request was not sent. The client already retried through its
    /// backoff until the request's deadline; try again later or check the
    /// address.
    Connect,
    /// The TLS handshake failed: an untrusted or expired certificate, a name
    /// mismatch, no common protocol. The request was not sent; retrying fails
    /// the same way until the certificate or the trusted roots change.
    Tls,
    /// A deadline passed: the request's timeout, the wait for a connection, a
    /// connect, or a read of the body. The server may have processed the
    /// request; retry only what is safe to send twice, with a longer timeout
    /// if the server is slow.
    Timeout,
    /// The pool could not take the request: its origin's queue is full. The
    /// request was not sent; shed load or retry after a pause.
    PoolExhausted,
    /// The origin's circuit is open after connects failed for a while;
    /// requests fail at once until a probe connection succeeds. The request
    /// was not sent; retry after a pause, or fail over to another origin.
    CircuitOpen,
    /// The client is shutting down or was dropped. Nothing more will be sent
    /// through it.
    ShutDown,
    /// The server broke the protocol: a malformed, oversized or truncated
    /// response head, or the connection closed before a response. The server
    /// may have processed the request (the client already sent it again when
    /// that was safe and its retry budget allowed); the server is at fault.
    Protocol,
    /// Reading or writing a body failed: the response body was truncated or
    /// malformed, the request body's stream failed, a body exceeded its limit,
    /// a compressed body could not be decoded or decoded past its limit
    /// ([`Error::decompression`] says how). The head was exchanged, so the
    /// server acted on the request; what was read is incomplete.
    Body,
    /// A WebSocket failed: its handshake was refused, the server closed it or
    /// it dropped, a message exceeded its limit, a reconnecting WebSocket's
    /// buffer is full. [`Error::websocket`] says which, and so whether to open
    /// it again.
    WebSocket,
    /// The client's runtime cannot run its tasks from here: a tokio client
    /// used outside any tokio runtime
    /// ([`Runtime::is_reachable`](crate::runtime::Runtime::is_reachable)).
    /// Call the client from inside its runtime.
    Runtime,
    /// The server answered with a client or server error status (4xx or 5xx),
    /// made an error by
    /// [`ResponseExt::error_for_status`](crate::ResponseExt::error_for_status).
    /// The server processed the request as that status says;
    /// [`Error::status`] gives it.
    Status,
    /// A proxy refused to open a tunnel to the origin: it answered `CONNECT`
    /// with a status other than `2xx`, which [`Error::status`] gives (`407`:
    /// its credentials are missing or wrong; `403`: it does not let this
    /// client reach this origin; `502` or `504`: it could not reach the
    /// origin). The request was not sent. Fix the proxy's credentials or
    /// rules; only the `502`, `503` and `504` of an origin that is down may
    /// pass later, and the client waits through its backoff for those as for
    /// a refused connect. A proxy that cannot be reached at all is
    /// [`ErrorKind::Connect`], one that breaks the protocol
    /// [`ErrorKind::Protocol`]; both name it, as [`Origin::proxy`] does.
    Proxy,
    /// The server redirected the request more times than the client's
    /// [`Redirect`](crate::Redirect) limit allows; [`Error::status`] gives
    /// the last redirect's status. The requests along the way were sent.
    /// A redirect loop is the server's to fix; a longer chain may need a
    /// higher limit.
    Redirect,
}

impl ErrorKind {
    /// A short snake-case name, stable for metrics labels and logs
    /// (`pool_exhausted`, `circuit_open`, ...): the `error.type` of a
    /// request's span and of its OpenTelemetry measurement.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Request => "request",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::PoolExhausted => "pool_exhausted",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::ShutDown => "shut_down",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Body => "body",
            ErrorKind::WebSocket => "websocket",
            ErrorKind::Runtime => "runtime",
            ErrorKind::Status => "status",
            ErrorKind::Proxy => "proxy",
            ErrorKind::Redirect => "redirect",
        }
    }
}

/// What was under way when a deadline passed, for an error of kind
/// [`ErrorKind::Timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Waiting for the pool to grant a connection.
    Checkout,
    /// Opening a connection: connect, TLS and the protocol's handshake.
    Connect,
    /// The whole request, as its timeout bounds it.
    Request,
    /// Waiting for the next bytes of a response body.
    BodyRead,
    /// Opening a WebSocket.
    WebSocketOpen,
    /// Waiting for the response to a message of a channel.
    ChannelResponse,
}

impl Step {
    /// What was under way, and the word that joins it to an origin.
    fn phrase(self) -> (&'static str, &'static str) {
        match self {
            Step::Checkout => ("waiting for a connection", "to"),
            Step::Connect => ("connecting", "to"),
            Step::Request => ("the request", "to"),
            Step::BodyRead => ("reading the response body", "from"),
            Step::WebSocketOpen => ("opening a WebSocket", "to"),
            Step::ChannelResponse => ("waiting for a response", "from"),
        }
    }
}

/// Where an [`Error`] happened: the origin (scheme, host and port) a request
/// went to, a WebSocket's path, and the proxy it went through.
///
/// It never holds credentials: no userinfo of the URI, no header, no query
/// (which often carries a token), no proxy credentials, so it is safe to
/// log, as its `Display` (`https://api.example:443`,
/// `ws://127.0.0.1:8080/feed`) is.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: &'static str,
    /// Lowercase; an IPv6 literal without brackets.
    host: Box<str>,
    port: u16,
    path: Option<Box<str>>,
    /// The proxy, as `http://host:port`.
    proxy: Option<Box<str>>,
}

impl Origin {
    /// `scheme://host:port`, with `path` (the query left out) for a WebSocket.
    pub(crate) fn new(scheme: &'static str, host: &str, port: u16, path: Option<&str>) -> Origin {
        Origin {
            scheme,
            host: host.into(),
            port,
            path: path.map(|p| p.split('?').next().unwrap_or(p).into()),
            proxy: None,
        }
    }

    /// This origin, reached through the proxy at `proxy` (`http://host:port`,
    /// no credentials).
    pub(crate) fn through(mut self, proxy: String) -> Origin {
        self.proxy = Some(proxy.into());
        self
    }

    /// `http`, `https`, `ws` or `wss`.
    pub fn scheme(&self) -> &str {
        self.scheme
    }

    /// The host: a lowercase DNS name, or an IP address literal (without
    /// brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A WebSocket's path, without its query.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The proxy the request went through, as `http://host:port` (never its
    /// credentials); `None` for a direct connection.
    pub fn proxy(&self) -> Option<&str> {
        self.proxy.as_deref()
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, host, port) = (self.scheme, &self.host, self.port);
        if host.contains(':') {
            write!(f, "{scheme}://[{host}]:{port}")?;
        } else {
            write!(f, "{scheme}://{host}:{port}")?;
        }
        f.write_str(self.path.as_deref().unwrap_or(""))
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A failure of the client: what kind, with which origin, in what words, and
/// why.
///
/// Cheap to clone: the cause is shared, so one connect failure can be reported
/// to every request it failed.
///
/// # How it prints
///
/// `Display` is one line: what failed and with which origin, the message, and
/// the innermost cause (the one that says why, usually an `io::Error` or a
/// TLS error):
///
/// ```text
/// connecting to http://127.0.0.1:8080 failed: Connection refused (os error 111)
/// waiting for a connection to http://127.0.0.1:8080 timed out after 30s: its connects kept failing: Connection refused (os error 111)
/// ```
///
/// The alternate form (`{:#}`) puts every cause of the chain in place of the
/// innermost one alone, each said once: a cause that is itself an `Error`
/// of this client adds what it failed at and its message, not the origin
/// again. [`source`](std::error::Error::source) walks the same chain.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    /// For a timeout: what was under way, and the deadline it had.
    step: Option<Step>,
    after: Option<Duration>,
    message: Option<&'static str>,
    origin: Option<Arc<Origin>>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Error {
        Error {
            kind,
            step: None,
            after: None,
            message: None,
            origin: None,
            source: None,
        }
    }

    /// A deadline of `after` passed while `step` was under way.
    pub(crate) fn timed_out(step: Step, after: Option<Duration>) -> Error {
        Error {
            step: Some(step),
            after,
            ..Error::new(ErrorKind::Timeout)
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

    /// This error, with `origin` unless it names one already.
    pub(crate) fn with_origin(mut self, origin: impl FnOnce() -> Origin) -> Error {
        if self.origin.is_none() {
            self.origin = Some(Arc::new(origin()));
        }
        self
    }

    /// This error, with the request's deadline `after` when it is the pool's
    /// refusal of a request whose deadline passed while it waited for a
    /// connection (that deadline is the request's).
    pub(crate) fn with_wait(mut self, after: Duration) -> Error {
        if self.step == Some(Step::Checkout) && self.after.is_none() {
            self.after = Some(after);
        }
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
        if self.kind == ErrorKind::Proxy {
            // The proxy could not reach the origin (a gateway error): the
            // origin may be back for the next connect, as after a refused
            // one. A refusal of the client itself would be the same again.
            return match self.status().map(|s| s.as_u16()) {
                Some(502..=504) => ConnectFailure::Transient,
                _ => ConnectFailure::Permanent,
            };
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

    /// The response's status, for an error of kind [`ErrorKind::Status`];
    /// the proxy's answer to `CONNECT`, for one of kind [`ErrorKind::Proxy`];
    /// the last redirect's, for one of kind [`ErrorKind::Redirect`].
    pub fn status(&self) -> Option<http::StatusCode> {
        let status: &StatusError = self.source.as_deref()?.downcast_ref()?;
        Some(status.0)
    }

    /// An error for a response with status `status`.
    pub(crate) fn for_status(status: http::StatusCode) -> Error {
        Error::new(ErrorKind::Status).with_source(StatusError(status))
    }

    /// An error for a redirect with `status` beyond the client's limit.
    pub(crate) fn too_many_redirects(status: http::StatusCode) -> Error {
        Error::new(ErrorKind::Redirect).with_source(StatusError(status))
    }

    /// An error for a proxy that answered `CONNECT` with `status`.
    pub(crate) fn proxy_refused(status: http::StatusCode) -> Error {
        Error::new(ErrorKind::Proxy).with_source(StatusError(status))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The origin the failure happened with: the one a request or a
    /// WebSocket went to. `None` for what belongs to no origin (a URI that
    /// names none, the configuration, the runtime), and for what is found in
    /// a body once it was read whole (text that is not UTF-8).
    pub fn origin(&self) -> Option<&Origin> {
        self.origin.as_deref()
    }

    /// Whether a deadline passed.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// The deadline that passed, for a timeout that knows it.
    pub fn timeout(&self) -> Option<Duration> {
        self.after
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
                Error::timed_out(Step::Checkout, None).with_message("no connection became free")
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

    /// What failed, with the origin when `origin` is set and this error has
    /// one, and the message.
    fn head(&self, f: &mut fmt::Formatter<'_>, origin: bool) -> fmt::Result {
        let origin = self.origin.as_deref().filter(|_| origin);
        if self.kind == ErrorKind::Proxy {
            // "the proxy {proxy} refused a tunnel to {origin}"
            f.write_str("the proxy ")?;
            if let Some(proxy) = origin.and_then(Origin::proxy) {
                write!(f, "{proxy} ")?;
            }
            f.write_str("refused a tunnel")?;
            if let Some(origin) = origin {
                write!(f, " to {origin}")?;
            }
            if let Some(message) = self.message {
                write!(f, ": {message}")?;
            }
            return Ok(());
        }
        // "{what}", or "{what} {joined} {origin} through the proxy {proxy}",
        // then "{after}".
        let (what, joined, after) = match self.kind {
            ErrorKind::Config => ("invalid configuration", "", ""),
            ErrorKind::Request => ("invalid request", "to", ""),
            ErrorKind::Connect if origin.is_some() => ("connecting", "to", " failed"),
            ErrorKind::Connect => ("connect failed", "", ""),
            ErrorKind::Tls => ("TLS handshake", "with", " failed"),
            ErrorKind::Timeout => match self.step {
                Some(step) => {
                    let (what, joined) = step.phrase();
                    (what, joined, " timed out")
                }
                None => ("timed out", "on a request to", ""),
            },
            ErrorKind::PoolExhausted => ("pool exhausted", "for", ""),
            ErrorKind::CircuitOpen => ("circuit open", "for", ""),
            ErrorKind::ShutDown => ("client shut down", "during a request to", ""),
            ErrorKind::Protocol => ("protocol error", "from", ""),
            ErrorKind::Body => ("body error", "on a request to", ""),
            ErrorKind::WebSocket => ("WebSocket error", "on", ""),
            ErrorKind::Runtime => ("no runtime to run on", "", ""),
            ErrorKind::Status => ("error status", "from", ""),
            ErrorKind::Proxy => ("proxy error", "for", ""),
            ErrorKind::Redirect => ("too many redirects", "from", ""),
        };
        f.write_str(what)?;
        if let Some(origin) = origin.filter(|_| !joined.is_empty()) {
            write!(f, " {joined} {origin}")?;
            if let Some(proxy) = origin.proxy() {
                write!(f, " through the proxy {proxy}")?;
            }
        }
        f.write_str(after)?;
        if let Some(after) = self.after {
            write!(f, " after {after:?}")?;
        }
        if let Some(message) = self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

/// The status of a response made an error: its `Display` is the status line
/// (`404 Not Found`).
#[derive(Debug)]
struct StatusError(http::StatusCode);

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl StdError for StatusError {}

/// One cause of a chain as `Error`'s `Display` writes it: an `Error` of this
/// client by its head alone (its origin is the one already said, its causes
/// follow), any other by its own `Display`.
fn write_cause(f: &mut fmt::Formatter<'_>, cause: &(dyn StdError + 'static)) -> fmt::Result {
    f.write_str(": ")?;
    match cause.downcast_ref::<Error>() {
        Some(error) => error.head(f, false),
        None => write!(f, "{cause}"),
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(origin) = &self.origin {
            d.field("origin", origin);
        }
        if let Some(after) = self.after {
            d.field("after", &after);
        }
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
        self.head(f, true)?;
        let mut cause = self.source();
        if f.alternate() {
            while let Some(c) = cause {
                write_cause(f, c)?;
                cause = c.source();
            }
        } else if let Some(mut innermost) = cause {
            while let Some(c) = innermost.source() {
                innermost = c;
            }
            write_cause(f, innermost)?;
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
mod display_tests {
    use std::io;
    use std::time::Duration;

    use super::{Error, ErrorKind, Origin, Step};

    fn origin() -> Origin {
        Origin::new("http", "127.0.0.1", 8080, None)
    }

    fn refused() -> io::Error {
        io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused")
    }

    /// One line: what failed, where, and the innermost cause; `{:#}` puts
    /// every cause in its place, and an inner error of the client adds its
    /// own words without its origin again.
    #[test]
    fn display_says_what_where_and_why() {
        let connect = Error::new(ErrorKind::Connect)
            .with_source(refused())
            .with_origin(origin);
        assert_eq!(
            connect.to_string(),
            "connecting to http://127.0.0.1:8080 failed: connection refused"
        );
        assert_eq!(format!("{connect:#}"), connect.to_string());

        let waited = Error::timed_out(Step::Checkout, None)
            .with_message("its connects kept failing")
            .with_source(connect.clone())
            .with_origin(origin)
            .with_wait(Duration::from_secs(30));
        assert_eq!(
            waited.to_string(),
            "waiting for a connection to http://127.0.0.1:8080 timed out after 30s: \
             its connects kept failing: connection refused"
        );
        assert_eq!(
            format!("{waited:#}"),
            "waiting for a connection to http://127.0.0.1:8080 timed out after 30s: \
             its connects kept failing: connect failed: connection refused"
        );
        assert_eq!(waited.timeout(), Some(Duration::from_secs(30)));
        assert_eq!(waited.origin(), Some(&origin()));

        // A client error as the innermost cause speaks for itself.
        let connect_timeout =
            Error::timed_out(Step::Connect, Some(Duration::from_millis(300))).with_origin(origin);
        let circuit = Error::new(ErrorKind::CircuitOpen)
            .with_message("recent connects to this origin failed")
            .with_source(connect_timeout)
            .with_origin(origin);
        assert_eq!(
            circuit.to_string(),
            "circuit open for http://127.0.0.1:8080: recent connects to this origin failed: \
             connecting timed out after 300ms"
        );
    }

    /// Only a pool's refusal of a waiting request takes the request's
    /// deadline: a timeout that says its own keeps it, and so does one of
    /// another step.
    #[test]
    fn only_a_wait_takes_the_request_deadline() {
        let read = Error::timed_out(Step::BodyRead, Some(Duration::from_millis(250)));
        assert_eq!(
            read.with_wait(Duration::from_secs(30)).timeout(),
            Some(Duration::from_millis(250))
        );
        let request = Error::timed_out(Step::Request, None);
        assert_eq!(request.with_wait(Duration::from_secs(30)).timeout(), None);
    }

    /// Through a proxy, an error names it after the origin; a refused
    /// tunnel says who refused what, with the proxy's status.
    #[test]
    fn errors_through_a_proxy_name_it() {
        let via = || {
            Origin::new("https", "example.com", 443, None).through("http://127.0.0.1:3128".into())
        };
        let connect = Error::new(ErrorKind::Connect)
            .with_source(refused())
            .with_origin(via);
        assert_eq!(
            connect.to_string(),
            "connecting to https://example.com:443 through the proxy \
             http://127.0.0.1:3128 failed: connection refused"
        );
        let denied =
            Error::proxy_refused(http::StatusCode::PROXY_AUTHENTICATION_REQUIRED).with_origin(via);
        assert_eq!(
            denied.to_string(),
            "the proxy http://127.0.0.1:3128 refused a tunnel to https://example.com:443: \
             407 Proxy Authentication Required"
        );
        assert_eq!(denied.kind().as_str(), "proxy");
        assert_eq!(denied.status().map(|s| s.as_u16()), Some(407));
        assert_eq!(
            denied.origin().and_then(Origin::proxy),
            Some("http://127.0.0.1:3128")
        );
        assert_eq!(
            Error::proxy_refused(http::StatusCode::FORBIDDEN).to_string(),
            "the proxy refused a tunnel: 403 Forbidden"
        );
    }

    /// Without an origin (a URI that names none, the configuration) the
    /// words stand alone; an origin already named is kept.
    #[test]
    fn errors_without_an_origin() {
        let request = Error::new(ErrorKind::Request).with_message("the URI has no host");
        assert_eq!(request.to_string(), "invalid request: the URI has no host");
        assert_eq!(request.origin(), None);
        let ws = Origin::new("wss", "::1", 443, Some("/feed?token=secret"));
        assert_eq!(ws.to_string(), "wss://[::1]:443/feed");
        let named = Error::new(ErrorKind::WebSocket)
            .with_origin(|| ws.clone())
            .with_origin(origin);
        assert_eq!(named.to_string(), "WebSocket error on wss://[::1]:443/feed");
        assert!(!format!("{named:?}").contains("secret"));
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

        // A proxy that could not reach the origin may next time; one that
        // refused the client would refuse it again.
        for (status, failure) in [
            (502, Transient),
            (504, Transient),
            (407, Permanent),
            (403, Permanent),
        ] {
            let status = http::StatusCode::from_u16(status).unwrap();
            assert_eq!(
                Error::proxy_refused(status).connect_failure(),
                failure,
                "{status}"
            );
        }
    }
}
