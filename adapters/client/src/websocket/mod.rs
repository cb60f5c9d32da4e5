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
//! - The key is the [`crate::PoolKey`] with the handshake's path and
//!   headers ([`PoolKey::websocket`](crate::PoolKey::websocket)): a pooled
//!   WebSocket goes only to a caller who would have opened the very same one.
//! - Each WebSocket has one driver task that owns the socket:
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

mod over_h2;
mod reconnect;

pub(crate) use reconnect::open as open_reconnecting;

pub use crate::config::DEFAULT_MAX_MESSAGE;
pub use crate::conn::ws::Message;
pub use crate::error::WebSocketError;
pub use reconnect::{Reconnect, ReconnectingWebSocket};

/// An HTTP/2 stream read and written as bytes, which a WebSocket over HTTP/2
/// runs on; public with the `unstable` feature for muxpool's own test servers.
#[cfg(feature = "unstable")]
pub use crate::conn::ws::H2Stream;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode, Version};
use muxpool_core::{Lease, Release};

use crate::conn::ws::{WeakWsSender, WsConn, WsLender, CLOSE_GRACE};
use crate::dial::PoolKey;
use crate::error::{Error, ErrorKind, Step};
use crate::pool::{LeasedConn, Shared, Timing};
use crate::proxy::ProxyChoice;
use crate::runtime::Runtime;
use crate::timeout::{until, with_deadline};

/// Opens (or takes from the pool) a WebSocket for `request`, within
/// `timeout`.
pub(crate) async fn connect<R: Runtime>(
    inner: &Arc<Shared<R>>,
    request: Request<()>,
    timeout: Duration,
) -> Result<WebSocket, Error> {
    let key = PoolKey::websocket(
        request.uri(),
        request.headers(),
        inner.settings.ws.tls.identity(),
    )?;
    let key = inner.proxied(key, request.extensions().get::<ProxyChoice>());
    let deadline = inner.runtime.now() + timeout;
    let pool: Arc<dyn WsLender> = Arc::clone(inner) as Arc<dyn WsLender>;
    let max_message = inner.settings.ws.max_message;
    // The handshake is a GET: traced as a request, its wait for a
    // connection recorded as a request's is.
    let span = crate::trace::request(&Method::GET, &key);
    let timing = Timing::default();
    let placed = |lease: Lease| {
        if !span.is_disabled() {
            crate::trace::placed(&span, lease.conn(), inner.served_before(lease.conn()));
        }
    };
    let checkout = async {
        if inner.settings.ws.over_http2 {
            let http = key.http();
            if let Some(conn) = over_h2::open(inner, &key, &request, deadline, &timing).await? {
                // A stream of a shared connection: its slot goes back when its
                // driver ends, not with this handle.
                return Ok((WebSocket::new(conn, None, pool.clone(), max_message), http));
            }
        }
        loop {
            let (lease, leased) = inner.checkout(&key, Some(deadline)).timed(&timing).await?;
            let LeasedConn::Ws(conn) = leased else {
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
            placed(lease);
            return Ok((
                WebSocket::new(conn, Some(lease), pool.clone(), max_message),
                key.clone(),
            ));
        }
    };
    let opened = {
        let mut checkout = std::pin::pin!(checkout);
        let traced = std::future::poll_fn(|cx| {
            let _entered = span.enter();
            checkout.as_mut().poll(cx)
        });
        with_deadline(&inner.runtime, deadline, traced).await
    };
    let opened = match opened {
        Ok(result) => result.map_err(|e| e.at(&key).with_wait(timeout)),
        Err(_) => Err(Error::timed_out(Step::WebSocketOpen, Some(timeout)).at(&key)),
    };
    if let Ok((_, granted_on)) = &opened {
        inner.record_wait(granted_on, &timing);
    }
    if !span.is_disabled() {
        // A WebSocket over HTTP/2 is an extended CONNECT answered 200; over
        // HTTP/1.1, an upgrade answered 101.
        let answer = |(ws, _): &(WebSocket, PoolKey)| match ws.lease {
            Some(_) => (StatusCode::SWITCHING_PROTOCOLS, Version::HTTP_11),
            None => (StatusCode::OK, Version::HTTP_2),
        };
        let granted = timing
            .get()
            .map(|(asked, at)| (asked.as_nanos(), at.as_nanos()));
        crate::trace::answered(&span, opened.as_ref().map(answer), granted);
    }
    opened.map(|(mut ws, _)| {
        ws.key = Some(key);
        ws
    })
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
    pool: Arc<dyn WsLender>,
    max_message: usize,
    closed: bool,
    /// What the WebSocket was opened for: the origin its errors name.
    key: Option<PoolKey>,
    /// Held by every [`WebSocketSender`] of this lease: a WebSocket dropped
    /// while one is still alive is closed, never pooled.
    senders: Arc<()>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("lease", &self.lease)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// The error for a WebSocket that ended: why, as its driver recorded it.
fn ended(fate: Option<WebSocketError>) -> Error {
    fate.unwrap_or(WebSocketError::Dropped).into_error()
}

/// `error`, naming the origin of `key` when the WebSocket knows it.
fn at(error: Error, key: Option<&PoolKey>) -> Error {
    match key {
        Some(key) => error.at(key),
        None => error,
    }
}

/// Refuses a message over `max` before it is queued.
fn check_size(message: &Message, max: usize) -> Result<(), Error> {
    if message.len() > max {
        return Err(WebSocketError::MessageTooLarge {
            size: message.len(),
            max,
        }
        .into_error());
    }
    Ok(())
}

impl WebSocket {
    fn new(
        conn: WsConn,
        lease: Option<Lease>,
        pool: Arc<dyn WsLender>,
        max_message: usize,
    ) -> WebSocket {
        WebSocket {
            conn: Some(conn),
            lease,
            pool,
            max_message,
            closed: false,
            key: None,
            senders: Arc::new(()),
        }
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
        check_size(&message, self.max_message).map_err(|e| at(e, self.key.as_ref()))?;
        self.send_or_return(message).await.map_err(|(_, e)| e)
    }

    /// Sends `message`, or gives it back with the reason the WebSocket ended.
    async fn send_or_return(&mut self, message: Message) -> Result<(), (Message, Error)> {
        let key = self.key.as_ref();
        let Some(conn) = self.conn.as_ref().filter(|_| !self.closed) else {
            return Err((message, at(WebSocketError::ClosedLocally.into_error(), key)));
        };
        conn.sender()
            .send(message)
            .await
            .map_err(|message| (message, at(ended(conn.sender().fate()), key)))
    }

    /// The next message from the server.
    ///
    /// # Errors
    ///
    /// Why the WebSocket ended: [`WebSocketError::Closed`] when the server
    /// closed it, [`WebSocketError::Dropped`] when it dropped,
    /// [`WebSocketError::MessageTooLarge`] for a message over the limit.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        let key = self.key.as_ref();
        let Some(conn) = self.conn.as_mut() else {
            return Err(at(WebSocketError::ClosedLocally.into_error(), key));
        };
        match conn.recv().await {
            Some(message) => Ok(message),
            None => Err(at(ended(conn.sender().fate()), key)),
        }
    }

    /// A handle that sends on this WebSocket from other tasks while this one
    /// receives: clone it for as many senders as needed. It sends nothing
    /// once the WebSocket is closed or has ended.
    ///
    /// A sender belongs to this lease: when the `WebSocket` is dropped while a
    /// sender is still alive, the WebSocket is closed rather than pooled, so
    /// no sender ever reaches a WebSocket leased to another caller. Drop the
    /// senders first to give the WebSocket back to the pool.
    pub fn sender(&self) -> WebSocketSender {
        WebSocketSender {
            sender: self.conn.as_ref().map(|c| c.sender().downgrade()),
            max_message: self.max_message,
            key: self.key.clone(),
            _lease: Arc::clone(&self.senders),
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
        if !conn.sender().close().await {
            return match conn.sender().fate() {
                Some(WebSocketError::ClosedLocally) | None => Ok(()),
                Some(fate) => Err(at(fate.into_error(), self.key.as_ref())),
            };
        }
        let deadline = self.pool.now() + CLOSE_GRACE;
        let timer = self.pool.timer(deadline);
        // Messages still arriving before the server's close frame are
        // discarded: the caller asked to close.
        let drained = async { while conn.recv().await.is_some() {} };
        let _ = until(timer, drained).await;
        Ok(())
    }

    /// Whether this WebSocket has ended (closed by either side, or dropped).
    pub fn is_closed(&self) -> bool {
        self.closed || self.conn.as_ref().is_none_or(|c| c.sender().is_ended())
    }
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        let conn = self.conn.take();
        let clean = !self.closed
            && Arc::strong_count(&self.senders) == 1
            && conn.as_ref().is_some_and(WsConn::release);
        self.pool.check_in_ws(lease, conn.filter(|_| clean));
    }
}

/// Sends on a [`WebSocket`] from another task: see [`WebSocket::sender`].
#[derive(Clone)]
pub struct WebSocketSender {
    sender: Option<WeakWsSender>,
    max_message: usize,
    /// The origin its errors name.
    key: Option<PoolKey>,
    /// The lease's count of live senders (see [`WebSocket::sender`]).
    _lease: Arc<()>,
}

impl fmt::Debug for WebSocketSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketSender")
            .field("ended", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl WebSocketSender {
    /// What its WebSocket was opened for: the origin its errors name.
    pub(crate) fn key(&self) -> Option<&PoolKey> {
        self.key.as_ref()
    }

    /// Sends `message`, as [`WebSocket::send`] does.
    ///
    /// # Errors
    ///
    /// [`WebSocketError::MessageTooLarge`] for a message over the limit;
    /// otherwise the reason the WebSocket ended.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        let key = self.key.as_ref();
        check_size(&message, self.max_message).map_err(|e| at(e, key))?;
        let Some(sender) = &self.sender else {
            return Err(at(WebSocketError::ClosedLocally.into_error(), key));
        };
        sender
            .send(message)
            .await
            .map_err(|_| at(ended(sender.fate()), key))
    }

    /// Whether the WebSocket has ended: nothing sent from now on arrives.
    pub fn is_closed(&self) -> bool {
        self.sender.as_ref().is_none_or(WeakWsSender::is_ended)
    }

    /// Why the WebSocket ended, once it has: the error its next send gets.
    pub fn ended(&self) -> Option<Error> {
        self.is_closed().then(|| {
            let fate = self.sender.as_ref().and_then(WeakWsSender::fate);
            at(ended(fate), self.key.as_ref())
        })
    }
}
