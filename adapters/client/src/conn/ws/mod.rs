//! One WebSocket connection: its handshake, its driver task, and the
//! holder's end of it.
//!
//! # Why a connection of its own
//!
//! A WebSocket is a connection given over to one conversation, and the pool
//! keeps it between conversations as it keeps an HTTP connection. This module
//! knows the WebSocket alone, nothing of the pool: the upgrade handshake on a
//! transport ([`handshake`]), or a stream that already speaks it ([`start`],
//! for an HTTP/2 stream after an extended CONNECT); the driver task that owns
//! the socket ([`driver`]); and the holder's end, which the pool keeps while
//! the WebSocket is idle and a [`WebSocket`](crate::WebSocket) holds while it
//! is leased. The holder and the driver talk over two bounded channels, so a
//! slow reader stops the driver reading (and TCP pushes back on the server),
//! and a fast writer waits for room.

mod driver;
mod h2_stream;

pub(crate) use driver::CLOSE_GRACE;
pub use h2_stream::H2Stream;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{
    HeaderValue, CONNECTION, HOST, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::Request;
use muxpool_core::Lease;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::WebSocketStream;

use crate::config::WsSettings;
use crate::dial::{PoolKey, Transport};
use crate::error::{Error, ErrorKind, WebSocketError};

use super::Lender;

/// Messages queued towards the driver before
/// [`WebSocket::send`](crate::WebSocket::send) waits.
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

    /// The tungstenite frame that carries this message.
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
pub(crate) struct WsShared {
    /// Leased to a holder: a message that arrives while this is off is
    /// unexpected, and ends the WebSocket.
    leased: AtomicBool,
    /// Why the WebSocket ended, set by the driver before it lets go of its
    /// channels.
    fate: Mutex<Option<WebSocketError>>,
}

impl WsShared {
    fn fate(&self) -> Option<WebSocketError> {
        self.fate.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_fate(&self, fate: WebSocketError) {
        let mut held = self.fate.lock().unwrap_or_else(|p| p.into_inner());
        held.get_or_insert(fate);
    }
}

/// The holder's end of one WebSocket: in the pool while idle, in a
/// [`WebSocket`](crate::WebSocket) while leased.
pub(crate) struct WsConn {
    sender: WsSender,
    incoming: mpsc::Receiver<Message>,
}

/// What sends on one WebSocket: the holder's end, and for other tasks its
/// [`downgrade`](WsSender::downgrade)d copies.
pub(crate) struct WsSender {
    commands: mpsc::Sender<Command>,
    shared: Arc<WsShared>,
}

impl WsSender {
    /// Queues `message` for the driver; gives it back once the WebSocket has
    /// ended.
    pub(crate) async fn send(&self, message: Message) -> Result<(), Message> {
        match self.commands.send(Command::Send(message)).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendError(Command::Send(message))) => Err(message),
            Err(_) => unreachable!("a failed send gives back the command it was given"),
        }
    }

    /// Asks the driver to start the closing handshake; `false` if it is gone.
    pub(crate) async fn close(&self) -> bool {
        self.commands.send(Command::Close).await.is_ok()
    }

    /// Why the WebSocket ended, once the driver has said.
    pub(crate) fn fate(&self) -> Option<WebSocketError> {
        self.shared.fate()
    }

    /// Whether the WebSocket has ended, or its driver is gone.
    pub(crate) fn is_ended(&self) -> bool {
        self.shared.fate().is_some() || self.commands.is_closed()
    }

    /// A sender that does not keep the WebSocket open: it sends only while
    /// the holder's end (or the pool's) still holds it.
    pub(crate) fn downgrade(&self) -> WeakWsSender {
        WeakWsSender {
            commands: self.commands.downgrade(),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A [`WsSender`] that does not keep the WebSocket open: once the holder's
/// end is gone, the driver's queue closes and this sends nothing.
#[derive(Clone)]
pub(crate) struct WeakWsSender {
    commands: mpsc::WeakSender<Command>,
    shared: Arc<WsShared>,
}

impl WeakWsSender {
    fn upgrade(&self) -> Option<WsSender> {
        Some(WsSender {
            commands: self.commands.upgrade()?,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Queues `message`, as [`WsSender::send`] does; gives it back once the
    /// WebSocket has ended or its holder's end is gone.
    pub(crate) async fn send(&self, message: Message) -> Result<(), Message> {
        match self.upgrade() {
            Some(sender) => sender.send(message).await,
            None => Err(message),
        }
    }

    /// Why the WebSocket ended, once the driver has said.
    pub(crate) fn fate(&self) -> Option<WebSocketError> {
        self.shared.fate()
    }

    /// Whether the WebSocket has ended, or its holder's end is gone.
    pub(crate) fn is_ended(&self) -> bool {
        self.upgrade().is_none_or(|s| s.is_ended())
    }
}

impl WsConn {
    /// Asks the driver for a health-check ping. A driver too busy to take it
    /// (or gone) sends none, and the core's deadline closes the WebSocket.
    pub(crate) fn pinger(&self) -> Pinger {
        Pinger(self.sender.commands.clone())
    }

    /// Marks the WebSocket leased; `false` if it has ended already.
    pub(crate) fn lease(&self) -> bool {
        self.sender.shared.leased.store(true, Ordering::SeqCst);
        !self.sender.is_ended()
    }

    /// Marks it idle; `true` if it may wait in the pool: it has not ended and
    /// nothing arrived that its holder did not read.
    pub(crate) fn release(&self) -> bool {
        self.sender.shared.leased.store(false, Ordering::SeqCst);
        self.incoming.is_empty() && !self.sender.is_ended()
    }

    /// What sends on this WebSocket.
    pub(crate) fn sender(&self) -> &WsSender {
        &self.sender
    }

    /// The next message from the server; `None` once the WebSocket ended.
    pub(crate) async fn recv(&mut self) -> Option<Message> {
        self.incoming.recv().await
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

/// Opens a WebSocket on `io`, connected to `key`: sends the upgrade request
/// and reads the server's answer.
pub(crate) async fn handshake(
    io: Transport,
    key: &PoolKey,
    settings: &WsSettings,
) -> Result<Opened, Error> {
    let origin = key;
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
                    .with_source(websocket_error(&e, None))
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
    let shared = Arc::new(WsShared::default());
    Opened {
        conn: WsConn {
            sender: WsSender {
                commands,
                shared: Arc::clone(&shared),
            },
            incoming,
        },
        driver: driver::Parts::new(Box::new(stream), commands_rx, incoming_tx, shared),
    }
}

/// The error for a tungstenite failure; `peer_close` is the server's close
/// frame, if one came.
pub(crate) fn websocket_error(
    error: &tungstenite::Error,
    peer_close: Option<&WebSocketError>,
) -> WebSocketError {
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

/// The pool as a leased WebSocket sees it: where it goes back.
pub(crate) trait WsLender: Lender {
    /// Returns `lease`, with its WebSocket if it may be used again.
    fn check_in_ws(&self, lease: Lease, conn: Option<WsConn>);
}
