//! One interface for message protocols (JSON-RPC, MCP and the like) over a
//! WebSocket or over HTTP.
//!
//! # Why
//!
//! A message protocol needs three things from its transport: send a request
//! and get its response, send a notification that has none, and hear what the
//! server says on its own. Over a WebSocket all three share one stream of
//! messages, and responses come back in whatever order the server finishes
//! them; over HTTP every request is an exchange of its own. A [`Connection`]
//! gives both the same three calls, [`request`](Connection::request),
//! [`notify`](Connection::notify) and [`receive`](Connection::receive), so the
//! code above it does not care which transport it runs on.
//!
//! # Correlation
//!
//! The protocol, not muxpool, knows where a message's id is. A [`Codec`] the
//! caller supplies reads it; over a WebSocket a task of the connection reads
//! every incoming message, hands a response to the request waiting for its id,
//! and queues anything else (notifications and requests from the server) for
//! [`receive`](Connection::receive). So many requests from many tasks share one
//! WebSocket at once, and a session stays on that WebSocket (and so on one
//! upstream connection) for the life of the `Connection`.
//!
//! Over HTTP each request is a `POST` of the message to the configured URL,
//! and its response body is the answer; notifications are `POST`s whose
//! answer is discarded; server-initiated messages come from a long-lived `GET`
//! of the events URL, one message per line.
//!
//! # Backpressure
//!
//! Everything is bounded: at most
//! [`max_in_flight`](ConnectionOptions::max_in_flight) requests wait for their
//! responses at once (one more waits for a place, by `await`), the messages
//! queued for [`receive`](Connection::receive) are bounded (when the caller
//! does not keep up, the connection stops reading), and every request is
//! bounded by the client's request timeout.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Uri;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::body::Body;
use crate::error::{Error, ErrorKind};
use crate::runtime::Runtime;
use crate::session::Session;
use crate::timeout::until;
use crate::websocket::{Command, Message, WebSocket, WebSocketError};
use crate::Client;

/// Reads the correlation id of a message: the caller's knowledge of its
/// protocol.
pub trait Codec: Send + Sync + 'static {
    /// What identifies a request and its response.
    type Id: Eq + Hash + Clone + Send + Sync + 'static;

    /// The id of `message`: a request's, which its response carries too;
    /// `None` for a message that is neither (a notification, a request from
    /// the server).
    fn id(&self, message: &Message) -> Option<Self::Id>;
}

/// Limits of a [`Connection`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// Requests awaiting their responses at once; one more waits. Default 256.
    pub max_in_flight: usize,
    /// Server-initiated messages read ahead of [`Connection::receive`].
    /// Default 64.
    pub max_queued: usize,
    /// Over HTTP: where server-initiated messages are read from (a `GET`
    /// whose body is one message a line). `None`: there are none.
    pub events: Option<Uri>,
    /// Over HTTP: the connection's messages form one [`Session`], so they go
    /// to the upstream connection its last message used while it can take
    /// them (a WebSocket connection is on one upstream connection anyway).
    /// Default on.
    pub affinity: bool,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            max_in_flight: 256,
            max_queued: 64,
            events: None,
            affinity: true,
        }
    }
}

impl ConnectionOptions {
    /// At most `max` requests awaiting their responses at once.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max;
        self
    }

    /// Over HTTP: read server-initiated messages from `url`.
    pub fn events(mut self, url: Uri) -> Self {
        self.events = Some(url);
        self
    }

    /// Over HTTP: whether the connection's messages stay on one upstream
    /// connection while it can take them (see [`affinity`](Self::affinity)).
    pub fn affinity(mut self, enabled: bool) -> Self {
        self.affinity = enabled;
        self
    }
}

type Pending<Id> = Arc<Mutex<HashMap<Id, oneshot::Sender<Message>>>>;

/// Why the WebSocket under a connection ended, once it has.
type Fate = Arc<Mutex<Option<Error>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A request/notify/receive connection for a message protocol; see the
/// [module documentation](self).
pub struct Connection<C: Codec> {
    codec: Arc<C>,
    permits: Semaphore,
    timeout: Duration,
    transport: Transport<C::Id>,
}

enum Transport<Id> {
    WebSocket {
        commands: mpsc::Sender<Command>,
        pending: Pending<Id>,
        pushed: tokio::sync::Mutex<mpsc::Receiver<Message>>,
        fate: Fate,
        timers: Arc<dyn crate::websocket::WsPool>,
        max_message: usize,
        /// Dropped with the connection: the reading task then ends.
        _stop: oneshot::Sender<()>,
    },
    Http {
        post: Arc<dyn Post>,
        events: tokio::sync::Mutex<Option<Lines>>,
    },
}

impl<C: Codec> fmt::Debug for Connection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.transport {
            Transport::WebSocket { .. } => "websocket",
            Transport::Http { .. } => "http",
        };
        f.debug_struct("Connection")
            .field("transport", &transport)
            .finish_non_exhaustive()
    }
}

/// Removes a request's entry if it ends before its response came.
struct Waiting<'a, Id: Eq + Hash> {
    pending: &'a Pending<Id>,
    id: Option<Id>,
}

impl<Id: Eq + Hash> Drop for Waiting<'_, Id> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            lock(self.pending).remove(&id);
        }
    }
}

fn timed_out() -> Error {
    Error::new(ErrorKind::Timeout).with_message("no response came in time")
}

fn ended(fate: &Fate) -> Error {
    lock(fate)
        .clone()
        .unwrap_or_else(|| WebSocketError::Dropped.into_error())
}

impl<C: Codec> Connection<C> {
    /// A connection over `ws`, whose incoming messages a task spawned with
    /// `spawn` reads from now on.
    pub(crate) fn over_websocket<R: Runtime>(
        runtime: &R,
        ws: WebSocket,
        codec: C,
        options: &ConnectionOptions,
        timeout: Duration,
    ) -> Result<Connection<C>, Error> {
        let commands = ws.sender().ok_or_else(|| ws.end_error())?;
        let timers = Arc::clone(ws.pool());
        let max_message = ws.max_message();
        let codec = Arc::new(codec);
        let pending: Pending<C::Id> = Arc::default();
        let fate: Fate = Arc::default();
        let (pushed_tx, pushed) = mpsc::channel(options.max_queued.max(1));
        let (stop, stopped) = oneshot::channel();
        runtime.spawn(read(
            ws,
            Arc::clone(&codec),
            Arc::clone(&pending),
            pushed_tx,
            Arc::clone(&fate),
            stopped,
        ));
        Ok(Connection {
            codec,
            permits: Semaphore::new(options.max_in_flight.max(1)),
            timeout,
            transport: Transport::WebSocket {
                commands,
                pending,
                pushed: tokio::sync::Mutex::new(pushed),
                fate,
                timers,
                max_message,
                _stop: stop,
            },
        })
    }

    /// A connection that posts each message to `url` with `client`.
    pub(crate) fn over_http<R: Runtime>(
        client: &Client<R>,
        url: Uri,
        codec: C,
        options: &ConnectionOptions,
        timeout: Duration,
    ) -> Connection<C> {
        let post = Arc::new(HttpPost {
            client: client.clone(),
            url,
            events: options.events.clone(),
            session: options.affinity.then(Session::new),
        });
        Connection {
            codec: Arc::new(codec),
            permits: Semaphore::new(options.max_in_flight.max(1)),
            timeout,
            transport: Transport::Http {
                post,
                events: tokio::sync::Mutex::new(None),
            },
        }
    }

    /// Sends the request `message` and returns its response: the message the
    /// server sends back with the same id. Waits while
    /// [`max_in_flight`](ConnectionOptions::max_in_flight) requests are out.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Request`] for a message without an id, or whose id is
    /// already awaiting a response; [`ErrorKind::Timeout`] past the client's
    /// request timeout; why the transport failed otherwise.
    pub async fn request(&self, message: impl Into<Message>) -> Result<Message, Error> {
        let message = message.into();
        let Some(id) = self.codec.id(&message) else {
            return Err(Error::new(ErrorKind::Request).with_message("a request needs an id"));
        };
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::new(ErrorKind::ShutDown))?;
        match &self.transport {
            Transport::Http { post, .. } => post.post(message, self.timeout).await,
            Transport::WebSocket {
                commands,
                pending,
                fate,
                timers,
                max_message,
                ..
            } => {
                check_size(&message, *max_message)?;
                let (tx, rx) = oneshot::channel();
                {
                    let mut waiting = lock(pending);
                    if waiting.contains_key(&id) {
                        return Err(Error::new(ErrorKind::Request)
                            .with_message("a request with this id is awaiting its response"));
                    }
                    waiting.insert(id.clone(), tx);
                }
                let _waiting = Waiting {
                    pending,
                    id: Some(id),
                };
                let exchange = async {
                    commands
                        .send(Command::Send(message))
                        .await
                        .map_err(|_| ended(fate))?;
                    rx.await.map_err(|_| ended(fate))
                };
                let timer = timers.timer(timers.now() + self.timeout);
                until(timer, exchange).await.map_err(|_| timed_out())?
            }
        }
    }

    /// Sends `message`, expecting no response.
    ///
    /// # Errors
    ///
    /// Why the transport failed.
    pub async fn notify(&self, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        match &self.transport {
            Transport::Http { post, .. } => post.post(message, self.timeout).await.map(drop),
            Transport::WebSocket {
                commands,
                fate,
                max_message,
                ..
            } => {
                check_size(&message, *max_message)?;
                commands
                    .send(Command::Send(message))
                    .await
                    .map_err(|_| ended(fate))
            }
        }
    }

    /// The next message the server sent on its own: a notification, or a
    /// request of its own (answer it with [`notify`](Connection::notify)).
    ///
    /// # Errors
    ///
    /// Why the transport ended; over HTTP without an events URL,
    /// [`ErrorKind::Request`].
    pub async fn receive(&self) -> Result<Message, Error> {
        match &self.transport {
            Transport::WebSocket { pushed, fate, .. } => {
                pushed.lock().await.recv().await.ok_or_else(|| ended(fate))
            }
            Transport::Http { post, events } => {
                let mut events = events.lock().await;
                loop {
                    if let Some(lines) = events.as_mut() {
                        match lines.next().await {
                            Ok(Some(message)) => return Ok(message),
                            // The stream ended: open it again.
                            Ok(None) => *events = None,
                            Err(e) => {
                                *events = None;
                                return Err(e);
                            }
                        }
                    }
                    *events = Some(post.events().await?);
                }
            }
        }
    }
}

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

/// The reading task of a connection over a WebSocket: responses to their
/// requests, everything else to [`Connection::receive`].
async fn read<C: Codec>(
    mut ws: WebSocket,
    codec: Arc<C>,
    pending: Pending<C::Id>,
    pushed: mpsc::Sender<Message>,
    fate: Fate,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let next = until(stop(&mut stopped), ws.recv()).await.ok();
        let message = match next {
            // The connection is gone: the WebSocket goes back to the pool if
            // it is clean.
            None => return,
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                *lock(&fate) = Some(error);
                // Every waiting request hears of it as its sender drops.
                lock(&pending).clear();
                return;
            }
        };
        let waiter = codec.id(&message).and_then(|id| lock(&pending).remove(&id));
        match waiter {
            Some(waiter) => {
                let _ = waiter.send(message);
            }
            None => {
                let queued = until(stop(&mut stopped), pushed.send(message)).await;
                if !matches!(queued, Ok(Ok(()))) {
                    return;
                }
            }
        }
    }
}

/// Resolves when the connection is dropped.
async fn stop(stopped: &mut oneshot::Receiver<()>) {
    let _ = stopped.await;
}

/// An HTTP exchange of one message, type-erased over the runtime.
trait Post: Send + Sync {
    fn post(
        &self,
        message: Message,
        timeout: Duration,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<Message, Error>> + Send + '_>>;

    fn events(
        &self,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<Lines, Error>> + Send + '_>>;
}

struct HttpPost<R: Runtime> {
    client: Client<R>,
    url: Uri,
    events: Option<Uri>,
    session: Option<Session>,
}

impl<R: Runtime> HttpPost<R> {
    /// Sends `request` in the connection's session, if it has one.
    async fn send(&self, mut request: http::Request<Body>) -> Result<http::Response<Body>, Error> {
        if let Some(session) = &self.session {
            request.extensions_mut().insert(session.clone());
        }
        self.client.send(request).await
    }
}

fn status_error() -> Error {
    Error::new(ErrorKind::Protocol)
        .with_message("the server answered the message with an error status")
}

impl<R: Runtime> Post for HttpPost<R> {
    fn post(
        &self,
        message: Message,
        timeout: Duration,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<Message, Error>> + Send + '_>> {
        Box::pin(async move {
            let text = matches!(message, Message::Text(_));
            let content_type = if text {
                "application/json"
            } else {
                "application/octet-stream"
            };
            let body = match message {
                Message::Text(t) => Body::from(t),
                Message::Binary(b) => Body::from(b),
            };
            let mut request = http::Request::post(self.url.clone())
                .header(http::header::CONTENT_TYPE, content_type)
                .body(body)
                .map_err(|e| Error::new(ErrorKind::Request).with_source(e))?;
            request.extensions_mut().insert(crate::Timeout(timeout));
            let response = self.send(request).await?;
            if !response.status().is_success() {
                return Err(status_error());
            }
            let body = response.into_body().bytes().await?;
            Ok(match (text, String::from_utf8(body.to_vec())) {
                (true, Ok(t)) => Message::Text(t),
                _ => Message::Binary(body),
            })
        })
    }

    fn events(
        &self,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<Lines, Error>> + Send + '_>> {
        Box::pin(async move {
            let Some(url) = &self.events else {
                return Err(Error::new(ErrorKind::Request).with_message(
                    "this connection has no events URL for server-initiated messages",
                ));
            };
            let request = http::Request::get(url.clone())
                .body(Body::empty())
                .map_err(|e| Error::new(ErrorKind::Request).with_source(e))?;
            let response = self.send(request).await?;
            if !response.status().is_success() {
                return Err(status_error());
            }
            Ok(Lines {
                body: response.into_body(),
                buf: BytesMut::new(),
            })
        })
    }
}

/// Messages of a long-lived response body, one a line.
struct Lines {
    body: Body,
    buf: BytesMut,
}

impl Lines {
    async fn next(&mut self) -> Result<Option<Message>, Error> {
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buf) {
                let line: Bytes = self.buf.split_to(end + 1).freeze();
                let line = &line[..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    continue;
                }
                return Ok(Some(match std::str::from_utf8(line) {
                    Ok(text) => Message::Text(text.to_owned()),
                    Err(_) => Message::Binary(Bytes::copy_from_slice(line)),
                }));
            }
            match self.body.chunk().await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None => return Ok(None),
            }
        }
    }
}
