//! Pooled WebSockets: `ws://` and `wss://` through `tungstenite`, on the
//! client's own connections.
//!
//! # Why the pool owns WebSockets
//!
//! A WebSocket is a TCP (or TLS) connection given over to one conversation.
//! Opening one costs a connect, a TLS handshake and an HTTP upgrade, and
//! services that talk to the same endpoint over and over (a proxy's upstream,
//! an RPC client) want to keep it open between conversations, within limits,
//! and to know that a kept one is still alive. That is exactly what the pool
//! does for HTTP connections, so a WebSocket is one more connection of the
//! [`Client`](crate::Client): the same connect (Happy Eyeballs, TLS with the
//! client's roots and certificates), the same per-origin and global limits,
//! the same statistics. The core counts it as an exclusive connection that
//! answers health checks.
//!
//! # The pieces
//!
//! - The key is the [`Origin`] with the handshake's path and headers
//!   ([`Origin::websocket`]): a pooled WebSocket goes only to a caller who
//!   would have opened the very same one.
//! - Each WebSocket has one driver task (see `driver`) that owns the socket:
//!   it writes what the holder sends, reads what the server sends, answers the
//!   server's pings, and sends the pool's health-check pings while the
//!   WebSocket is idle. The holder talks to it over two bounded channels, so a
//!   slow reader stops the driver reading (and TCP pushes back on the server),
//!   and a fast writer waits for room.
//! - [`Client::websocket`](crate::Client::websocket) grants a [`WebSocket`]:
//!   an exclusive lease with [`send`](WebSocket::send),
//!   [`recv`](WebSocket::recv) and [`close`](WebSocket::close). Dropped clean
//!   (nothing unread, not closed, no failure) it goes back to the pool;
//!   otherwise the connection is closed.
//!
//! # Failures are typed
//!
//! Every failure is an [`Error`] of kind [`ErrorKind::WebSocket`], and
//! [`Error::websocket`] tells a close by the server ([`WebSocketError::Closed`],
//! with its code and reason) from a connection that dropped without one
//! ([`WebSocketError::Dropped`]), an oversized message, a refused handshake.
//! A WebSocket that ends, idle or leased, leaves the pool at once.

mod driver;
mod h2_stream;
mod over_h2;
pub(crate) mod reconnect;

pub use h2_stream::H2Stream;
pub use reconnect::{Reconnect, ReconnectingWebSocket};

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderValue, CONNECTION, HOST, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::Request;
use muxpool_core::{Lease, Release};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::WebSocketStream;

use crate::connect::Transport;
use crate::error::{Error, ErrorKind};
use crate::http1::CheckIn;
use crate::origin::Origin;
use crate::pool::{Checked, Inner};
use crate::runtime::Runtime;
use crate::timeout::{until, with_deadline};
use crate::tls::TlsConfig;

/// The largest message a WebSocket sends or accepts unless the
/// [`ClientBuilder`](crate::ClientBuilder) says otherwise: 64 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Messages queued towards the driver before [`WebSocket::send`] waits.
const OUTGOING: usize = 16;
/// Messages the driver reads ahead of the holder before it stops reading.
const INCOMING: usize = 16;

/// One WebSocket message.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A text message (UTF-8).
    Text(String),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// The text of a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t),
            Message::Binary(_) => None,
        }
    }

    pub(crate) fn into_frame(self) -> tungstenite::Message {
        match self {
            Message::Text(t) => tungstenite::Message::Text(t.into()),
            Message::Binary(b) => tungstenite::Message::Binary(b),
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A 16 MiB payload in a log line helps nobody.
        match self {
            Message::Text(t) if t.len() <= 64 => f.debug_tuple("Text").field(t).finish(),
            Message::Text(t) => write!(f, "Text({} bytes)", t.len()),
            Message::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
        }
    }
}

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::Text(text.to_owned())
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Message {
        Message::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Message {
        Message::Binary(data.into())
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
    /// This side closed the WebSocket ([`WebSocket::close`]).
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
    pub(crate) fn into_error(self) -> Error {
        Error::new(ErrorKind::WebSocket).with_source(self)
    }

    /// The error for a tungstenite failure; `peer_close` is the server's close
    /// frame, if one came.
    fn from_tungstenite(error: &tungstenite::Error, peer_close: Option<&WebSocketError>) -> Self {
        use tungstenite::error::{CapacityError, ProtocolError};
        match error {
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                peer_close.cloned().unwrap_or(WebSocketError::ClosedLocally)
            }
            tungstenite::Error::Io(_)
            | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                WebSocketError::Dropped
            }
            tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                WebSocketError::MessageTooLarge {
                    size: *size,
                    max: *max_size,
                }
            }
            tungstenite::Error::Http(response) => WebSocketError::HandshakeRejected {
                status: response.status().as_u16(),
            },
            other => WebSocketError::Protocol(other.to_string()),
        }
    }
}

/// The WebSocket settings of a client.
#[derive(Clone, Debug)]
pub(crate) struct WsSettings {
    /// The largest message sent or accepted.
    pub(crate) max_message: usize,
    /// TLS for `wss`: the client's, offering only `http/1.1`.
    pub(crate) tls: TlsConfig,
    /// Open WebSockets as streams of the origin's HTTP/2 connection when its
    /// server offers extended CONNECT (RFC 8441).
    pub(crate) over_http2: bool,
}

impl WsSettings {
    pub(crate) fn new(tls: &TlsConfig, max_message: usize, over_http2: bool) -> WsSettings {
        WsSettings {
            max_message,
            tls: tls.http1_only(),
            over_http2,
        }
    }

    fn protocol_config(&self) -> tungstenite::protocol::WebSocketConfig {
        tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_message))
    }
}

/// What the holder (or the pool) asks a driver to do.
pub(crate) enum Command {
    Send(Message),
    /// A health-check ping from the pool.
    Ping,
    /// Start the closing handshake.
    Close,
}

/// What a WebSocket's holder and its driver share.
#[derive(Default)]
pub(crate) struct Shared {
    /// Leased to a holder: a message that arrives while this is off is
    /// unexpected, and ends the WebSocket.
    leased: AtomicBool,
    /// Why the WebSocket ended, set by the driver before it lets go of its
    /// channels.
    fate: Mutex<Option<WebSocketError>>,
}

impl Shared {
    fn fate(&self) -> Option<WebSocketError> {
        self.fate.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_fate(&self, fate: WebSocketError) {
        let mut held = self.fate.lock().unwrap_or_else(|p| p.into_inner());
        held.get_or_insert(fate);
    }
}

/// The holder's end of one WebSocket: in the pool while idle, in a
/// [`WebSocket`] while leased.
pub(crate) struct WsConn {
    commands: mpsc::Sender<Command>,
    incoming: mpsc::Receiver<Message>,
    shared: Arc<Shared>,
}

impl WsConn {
    /// Asks the driver for a health-check ping. A driver too busy to take it
    /// (or gone) sends none, and the core's deadline closes the WebSocket.
    pub(crate) fn pinger(&self) -> Pinger {
        Pinger(self.commands.clone())
    }

    /// Marks the WebSocket leased; `false` if it has ended already.
    fn lease(&self) -> bool {
        self.shared.leased.store(true, Ordering::SeqCst);
        self.shared.fate().is_none() && !self.commands.is_closed()
    }

    /// Marks it idle; `true` if it may wait in the pool: it has not ended and
    /// nothing arrived that its holder did not read.
    fn release(&self) -> bool {
        self.shared.leased.store(false, Ordering::SeqCst);
        self.incoming.is_empty() && self.shared.fate().is_none() && !self.commands.is_closed()
    }
}

/// Sends a health-check ping through a WebSocket's driver.
pub(crate) struct Pinger(mpsc::Sender<Command>);

impl Pinger {
    pub(crate) fn ping(&self) {
        let _ = self.0.try_send(Command::Ping);
    }
}

/// A WebSocket that finished its handshake: the holder's end for the pool,
/// and the driver, to be spawned.
pub(crate) struct Opened {
    pub(crate) conn: WsConn,
    pub(crate) driver: driver::Parts,
}

/// Opens a WebSocket on `io`, connected to `origin`: sends the upgrade
/// request and reads the server's answer.
pub(crate) async fn handshake(
    io: Transport,
    origin: &Origin,
    settings: &WsSettings,
) -> Result<Opened, Error> {
    let Some(target) = origin.websocket_target() else {
        return Err(Error::new(ErrorKind::Request).with_message("not a WebSocket origin"));
    };
    let authority = match (origin.host().contains(':'), origin.port()) {
        (true, port) => format!("[{}]:{port}", origin.host()),
        (false, port) => format!("{}:{port}", origin.host()),
    };
    let scheme = if origin.is_tls() { "wss" } else { "ws" };
    let mut request = Request::builder()
        .method(http::Method::GET)
        .uri(format!("{scheme}://{authority}{}", target.path()));
    for (name, value) in target.headers() {
        request = request.header(name, value);
    }
    let request = request
        .header(HOST, authority.as_str())
        .header(CONNECTION, HeaderValue::from_static("Upgrade"))
        .header(UPGRADE, HeaderValue::from_static("websocket"))
        .header(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"))
        .header(
            SEC_WEBSOCKET_KEY,
            tungstenite::handshake::client::generate_key(),
        )
        .body(())
        .map_err(|e| {
            Error::new(ErrorKind::Request)
                .with_message("the WebSocket handshake request is invalid")
                .with_source(e)
        })?;
    let (stream, _response) =
        tokio_tungstenite::client_async_with_config(request, io, Some(settings.protocol_config()))
            .await
            .map_err(|e| {
                Error::new(ErrorKind::WebSocket)
                    .with_message("the WebSocket handshake failed")
                    .with_source(WebSocketError::from_tungstenite(&e, None))
            })?;
    Ok(start(stream))
}

/// The holder's end and the driver of a WebSocket whose handshake is done.
pub(crate) fn start<S>(stream: WebSocketStream<S>) -> Opened
where
    WebSocketStream<S>: driver::Socket,
{
    let (commands, commands_rx) = mpsc::channel(OUTGOING);
    let (incoming_tx, incoming) = mpsc::channel(INCOMING);
    let shared = Arc::new(Shared::default());
    Opened {
        conn: WsConn {
            commands,
            incoming,
            shared: Arc::clone(&shared),
        },
        driver: driver::Parts::new(Box::new(stream), commands_rx, incoming_tx, shared),
    }
}

/// Gives a WebSocket lease back to the pool.
pub(crate) trait WsPool: CheckIn {
    /// Returns `lease`, with its WebSocket if it may be used again.
    fn check_in_ws(&self, lease: Lease, conn: Option<WsConn>);
}

impl<R: Runtime> WsPool for Inner<R> {
    fn check_in_ws(&self, lease: Lease, conn: Option<WsConn>) {
        Inner::check_in_ws(self, lease, conn);
    }
}

/// Opens (or takes from the pool) a WebSocket for `request`, within
/// `timeout`.
pub(crate) async fn connect<R: Runtime>(
    inner: &Arc<Inner<R>>,
    request: Request<()>,
    timeout: Duration,
) -> Result<WebSocket, Error> {
    let origin = Origin::websocket(
        request.uri(),
        request.headers(),
        inner.settings.ws.tls.identity(),
    )?;
    let deadline = inner.runtime.now() + timeout;
    let checkout = async {
        if inner.settings.ws.over_http2 {
            if let Some(ws) = over_h2::open(inner, &origin, &request, deadline).await? {
                return Ok(ws);
            }
        }
        loop {
            let (lease, checked) = inner.checkout(&origin, Some(deadline)).await?;
            let Checked::Ws(conn) = checked else {
                inner.release(lease, Release::Close);
                return Err(Error::new(ErrorKind::Protocol)
                    .with_message("the pool granted a connection that is not a WebSocket"));
            };
            if !conn.lease() {
                // It ended while it waited in the pool, just now: the driver
                // is reporting it. Another one, or a new one.
                inner.check_in_ws(lease, None);
                continue;
            }
            let pool: Arc<dyn WsPool> = Arc::clone(inner) as Arc<dyn WsPool>;
            return Ok(WebSocket {
                conn: Some(conn),
                lease: Some(lease),
                pool,
                max_message: inner.settings.ws.max_message,
                closed: false,
            });
        }
    };
    match with_deadline(&inner.runtime, deadline, checkout).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(ErrorKind::Timeout).with_message("the WebSocket open timed out")),
    }
}

/// An open WebSocket, leased exclusively from the pool.
///
/// Dropped with nothing left unread and neither side having closed it, it goes
/// back to the pool for the next caller with the same URI and headers;
/// otherwise its connection is closed. Every method is cancellation safe: a
/// `send` dropped before it finished sent nothing, a `recv` dropped lost no
/// message.
pub struct WebSocket {
    conn: Option<WsConn>,
    lease: Option<Lease>,
    pool: Arc<dyn WsPool>,
    max_message: usize,
    closed: bool,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("lease", &self.lease)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl WebSocket {
    fn ended(&self) -> Error {
        self.conn
            .as_ref()
            .and_then(|c| c.shared.fate())
            .unwrap_or(WebSocketError::Dropped)
            .into_error()
    }

    /// Sends `message`. Waits while the messages queued before it are still
    /// being written (a bounded queue), never longer.
    ///
    /// # Errors
    ///
    /// [`WebSocketError::MessageTooLarge`] for a message over the limit (the
    /// WebSocket stays usable); otherwise the reason the WebSocket ended.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        if message.len() > self.max_message {
            return Err(WebSocketError::MessageTooLarge {
                size: message.len(),
                max: self.max_message,
            }
            .into_error());
        }
        self.send_or_return(message).await.map_err(|(_, e)| e)
    }

    /// Sends `message`, or gives it back with the reason the WebSocket ended.
    async fn send_or_return(&mut self, message: Message) -> Result<(), (Message, Error)> {
        let Some(conn) = self.conn.as_ref().filter(|_| !self.closed) else {
            return Err((message, WebSocketError::ClosedLocally.into_error()));
        };
        match conn.commands.send(Command::Send(message)).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendError(Command::Send(message))) => Err((message, self.ended())),
            Err(_) => unreachable!("a failed send gives back the command it was given"),
        }
    }

    /// The next message from the server.
    ///
    /// # Errors
    ///
    /// Why the WebSocket ended: [`WebSocketError::Closed`] when the server
    /// closed it, [`WebSocketError::Dropped`] when it dropped,
    /// [`WebSocketError::MessageTooLarge`] for a message over the limit.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(WebSocketError::ClosedLocally.into_error());
        };
        match conn.incoming.recv().await {
            Some(message) => Ok(message),
            None => Err(self.ended()),
        }
    }

    /// Closes the WebSocket: sends a close frame and waits (up to a few
    /// seconds) for the server's. The connection then leaves the pool.
    ///
    /// # Errors
    ///
    /// The reason the WebSocket had ended already, if it had.
    pub async fn close(mut self) -> Result<(), Error> {
        self.closed = true;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        if conn.commands.send(Command::Close).await.is_err() {
            return match conn.shared.fate() {
                Some(WebSocketError::ClosedLocally) | None => Ok(()),
                Some(fate) => Err(fate.into_error()),
            };
        }
        let deadline = self.pool.now() + driver::CLOSE_GRACE;
        let timer = self.pool.timer(deadline);
        // Messages still arriving before the server's close frame are
        // discarded: the caller asked to close.
        let drained = async { while conn.incoming.recv().await.is_some() {} };
        let _ = until(timer, drained).await;
        Ok(())
    }

    /// A sender of commands to the driver, for a [`Connection`](crate::connection::Connection)
    /// that sends from many tasks at once.
    pub(crate) fn sender(&self) -> Option<mpsc::Sender<Command>> {
        self.conn.as_ref().map(|c| c.commands.clone())
    }

    /// The pool, for its timers.
    pub(crate) fn pool(&self) -> &Arc<dyn WsPool> {
        &self.pool
    }

    /// The largest message this WebSocket sends.
    pub(crate) fn max_message(&self) -> usize {
        self.max_message
    }

    /// Why the WebSocket ended (once it has).
    pub(crate) fn end_error(&self) -> Error {
        self.ended()
    }

    /// Whether this WebSocket has ended (closed by either side, or dropped).
    pub fn is_closed(&self) -> bool {
        self.closed
            || self
                .conn
                .as_ref()
                .is_none_or(|c| c.shared.fate().is_some() || c.commands.is_closed())
    }
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        let conn = self.conn.take();
        let clean = !self.closed && conn.as_ref().is_some_and(WsConn::release);
        self.pool.check_in_ws(lease, conn.filter(|_| clean));
    }
}
