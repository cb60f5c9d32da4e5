//! A message channel: one interface for message protocols (JSON-RPC, MCP and
//! the like) over a WebSocket or over HTTP.
//!
//! # Why
//!
//! A message protocol needs three things from its transport: send a request
//! and get its response, send a notification that has none, and hear what the
//! server says on its own. Over a WebSocket all three share one stream of
//! messages, and responses come back in whatever order the server finishes
//! them; over HTTP every request is an exchange of its own. A [`MessageChannel`]
//! gives both the same three calls, [`request`](MessageChannel::request),
//! [`notify`](MessageChannel::notify) and [`receive`](MessageChannel::receive), so the
//! code above it does not care which transport it runs on.
//!
//! The channel is built on the public [`Client`] and [`WebSocket`] alone.
//!
//! # Correlation
//!
//! The protocol, not muxpool, knows where a message's id is. A [`Codec`] the
//! caller supplies reads it; over a WebSocket a task of the channel reads
//! every incoming message, hands a response to the request waiting for its id,
//! and queues anything else (notifications and requests from the server) for
//! [`receive`](MessageChannel::receive). So many requests from many tasks share one
//! WebSocket at once, and a session stays on that WebSocket (and so on one
//! upstream connection) for the life of the channel.
//!
//! Over HTTP each request is a `POST` of the message to the configured URL,
//! and its response body is the answer; notifications are `POST`s whose
//! answer is discarded; server-initiated messages come from a long-lived `GET`
//! of the events URL, one message per line.
//!
//! # Backpressure
//!
//! Everything is bounded: at most
//! [`max_in_flight`](ChannelOptions::max_in_flight) requests wait for their
//! responses at once (one more waits for a place, by `await`), the messages
//! queued for [`receive`](MessageChannel::receive) are bounded (when the caller
//! does not keep up, the channel stops reading), and every request is
//! bounded by the client's request timeout.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Uri;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::body::Body;
use crate::client::{Client, RequestTimeout};
use crate::config::DEFAULT_MAX_MESSAGE;
use crate::dial::PoolKey;
use crate::error::{Error, ErrorKind, Step, WebSocketError};
use crate::runtime::Runtime;
use crate::session::Session;
use crate::timeout::until;
use crate::websocket::{Message, WebSocket, WebSocketSender};

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

/// Limits of a [`MessageChannel`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelOptions {
    /// Requests awaiting their responses at once; one more waits. Default 256.
    pub max_in_flight: usize,
    /// Server-initiated messages read ahead of [`MessageChannel::receive`].
    /// Default 64.
    pub max_queued: usize,
    /// Over HTTP: where server-initiated messages are read from (a `GET`
    /// whose body is one message a line). `None`: there are none.
    pub events: Option<Uri>,
    /// Over HTTP: the longest line of `events`, in bytes; a longer one ends
    /// the events stream with [`ErrorKind::Body`] (and the next
    /// [`receive`](MessageChannel::receive) opens it again). Default 64 MiB.
    pub max_event_line: usize,
    /// Over HTTP: the channel's messages form one [`Session`], so they go
    /// to the upstream connection its last message used while it can take
    /// them (a WebSocket connection is on one upstream connection anyway).
    /// Default on.
    pub affinity: bool,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            max_in_flight: 256,
            max_queued: 64,
            events: None,
            max_event_line: DEFAULT_MAX_MESSAGE,
            affinity: true,
        }
    }
}

impl ChannelOptions {
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

    /// Over HTTP: lines of `events` longer than `bytes` are refused.
    pub fn max_event_line(mut self, bytes: usize) -> Self {
        self.max_event_line = bytes;
        self
    }

    /// Over HTTP: whether the channel's messages stay on one upstream
    /// connection while it can take them (see [`affinity`](Self::affinity)).
    pub fn affinity(mut self, enabled: bool) -> Self {
        self.affinity = enabled;
        self
    }
}

type Pending<Id> = Arc<Mutex<HashMap<Id, oneshot::Sender<Message>>>>;

/// A sleep of the client's runtime, without its type.
type Sleep = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Why the WebSocket under a channel ended, once it has.
type Fate = Arc<Mutex<Option<Error>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A request/notify/receive channel for a message protocol, over a
/// WebSocket or over HTTP; see the [module documentation](self).
pub struct MessageChannel<C: Codec> {
    codec: Arc<C>,
    permits: Semaphore,
    timeout: Duration,
    over: Over<C::Id>,
    /// Where the messages go: the origin every error of the channel names.
    key: Option<PoolKey>,
}

/// What a channel's messages travel over.
enum Over<Id> {
    WebSocket {
        sender: WebSocketSender,
        pending: Pending<Id>,
        pushed: tokio::sync::Mutex<mpsc::Receiver<Message>>,
        fate: Fate,
        sleep: Sleep,
        /// Dropped with the channel: the reading task then ends.
        _stop: oneshot::Sender<()>,
    },
    Http {
        post: Arc<dyn Post>,
        events: tokio::sync::Mutex<Option<Lines>>,
    },
}

impl<C: Codec> fmt::Debug for MessageChannel<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.over {
            Over::WebSocket { .. } => "websocket",
            Over::Http { .. } => "http",
        };
        f.debug_struct("MessageChannel")
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

fn timed_out(after: Duration) -> Error {
    Error::timed_out(Step::ChannelResponse, Some(after))
}

fn ended(fate: &Fate) -> Error {
    lock(fate)
        .clone()
        .unwrap_or_else(|| WebSocketError::Dropped.into_error())
}

impl<R: Runtime> Client<R> {
    /// A [`MessageChannel`] for a message protocol over a WebSocket opened
    /// (or taken from the pool) for `request`: many concurrent requests share
    /// it, their responses found by the id `codec` reads.
    ///
    /// # Errors
    ///
    /// As [`websocket`](Client::websocket).
    pub async fn messages_over_websocket<C: Codec>(
        &self,
        request: http::Request<()>,
        codec: C,
        options: ChannelOptions,
    ) -> Result<MessageChannel<C>, Error> {
        let timeout = self.timeout_of(request.extensions());
        let ws = self.websocket(request).await?;
        MessageChannel::over_websocket(self.runtime(), ws, codec, &options, timeout)
    }

    /// A [`MessageChannel`] for a message protocol over HTTP: each message
    /// is a `POST` to `url` (over HTTP/2 where the origin speaks it, a stream
    /// each), server-initiated messages come from `options.events`.
    pub fn messages_over_http<C: Codec>(
        &self,
        url: Uri,
        codec: C,
        options: ChannelOptions,
    ) -> MessageChannel<C> {
        MessageChannel::over_http(self, url, codec, &options, self.request_timeout())
    }
}

impl<C: Codec> MessageChannel<C> {
    /// A channel over `ws`, whose incoming messages a task spawned on
    /// `runtime` reads from now on.
    fn over_websocket<R: Runtime>(
        runtime: &R,
        ws: WebSocket,
        codec: C,
        options: &ChannelOptions,
        timeout: Duration,
    ) -> Result<MessageChannel<C>, Error> {
        let sender = ws.sender();
        if let Some(error) = sender.ended() {
            return Err(error);
        }
        let key = sender.key().cloned();
        let clock = runtime.clone();
        let sleep: Sleep = Arc::new(move |after| {
            let clock = clock.clone();
            Box::pin(async move { clock.timer(clock.now() + after).await })
        });
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
        Ok(MessageChannel {
            codec,
            permits: Semaphore::new(options.max_in_flight.max(1)),
            timeout,
            over: Over::WebSocket {
                sender,
                pending,
                pushed: tokio::sync::Mutex::new(pushed),
                fate,
                sleep,
                _stop: stop,
            },
            key,
        })
    }

    /// A channel that posts each message to `url` with `client`.
    fn over_http<R: Runtime>(
        client: &Client<R>,
        url: Uri,
        codec: C,
        options: &ChannelOptions,
        timeout: Duration,
    ) -> MessageChannel<C> {
        let key = client.handle.inner.key_of(&url).ok();
        let post = Arc::new(HttpPost {
            client: client.clone(),
            url,
            events: options.events.clone(),
            max_event_line: options.max_event_line,
            session: options.affinity.then(Session::new),
        });
        MessageChannel {
            codec: Arc::new(codec),
            permits: Semaphore::new(options.max_in_flight.max(1)),
            timeout,
            over: Over::Http {
                post,
                events: tokio::sync::Mutex::new(None),
            },
            key,
        }
    }

    /// `error`, naming the channel's origin unless it names one already.
    fn named(&self, error: Error) -> Error {
        match &self.key {
            Some(key) => error.at(key),
            None => error,
        }
    }

    /// Sends the request `message` and returns its response: the message the
    /// server sends back with the same id. Waits while
    /// [`max_in_flight`](ChannelOptions::max_in_flight) requests are out.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Request`] for a message without an id, or whose id is
    /// already awaiting a response; [`ErrorKind::Timeout`] past the client's
    /// request timeout; why the transport failed otherwise.
    pub async fn request(&self, message: impl Into<Message>) -> Result<Message, Error> {
        self.exchange(message.into())
            .await
            .map_err(|e| self.named(e))
    }

    async fn exchange(&self, message: Message) -> Result<Message, Error> {
        let Some(id) = self.codec.id(&message) else {
            return Err(Error::new(ErrorKind::Request).with_message("a request needs an id"));
        };
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::new(ErrorKind::ShutDown))?;
        match &self.over {
            Over::Http { post, .. } => post.post(message, self.timeout).await,
            Over::WebSocket {
                sender,
                pending,
                fate,
                sleep,
                ..
            } => {
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
                    sender.send(message).await?;
                    rx.await.map_err(|_| ended(fate))
                };
                until(sleep(self.timeout), exchange)
                    .await
                    .map_err(|_| timed_out(self.timeout))?
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
        let sent = match &self.over {
            Over::Http { post, .. } => post.post(message, self.timeout).await.map(drop),
            Over::WebSocket { sender, .. } => sender.send(message).await,
        };
        sent.map_err(|e| self.named(e))
    }

    /// The next message the server sent on its own: a notification, or a
    /// request of its own (answer it with [`notify`](MessageChannel::notify)).
    ///
    /// # Errors
    ///
    /// Why the transport ended; over HTTP without an events URL,
    /// [`ErrorKind::Request`].
    pub async fn receive(&self) -> Result<Message, Error> {
        self.next_pushed().await.map_err(|e| self.named(e))
    }

    async fn next_pushed(&self) -> Result<Message, Error> {
        match &self.over {
            Over::WebSocket { pushed, fate, .. } => {
                pushed.lock().await.recv().await.ok_or_else(|| ended(fate))
            }
            Over::Http { post, events } => {
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

/// The reading task of a channel over a WebSocket: responses to their
/// requests, everything else to [`MessageChannel::receive`].
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
            // The channel is gone: the WebSocket goes back to the pool if
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

/// Resolves when the channel is dropped.
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
    max_event_line: usize,
    session: Option<Session>,
}

impl<R: Runtime> HttpPost<R> {
    /// Sends `request` in the channel's session, if it has one.
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
            request.extensions_mut().insert(RequestTimeout(timeout));
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
                return Err(Error::new(ErrorKind::Request)
                    .with_message("this channel has no events URL for server-initiated messages"));
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
                max: self.max_event_line,
            })
        })
    }
}

/// Messages of a long-lived response body, one a line of at most `max`
/// bytes (its line ending aside).
struct Lines {
    body: Body,
    buf: BytesMut,
    max: usize,
}

impl Lines {
    async fn next(&mut self) -> Result<Option<Message>, Error> {
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buf) {
                let line: Bytes = self.buf.split_to(end + 1).freeze();
                let line = &line[..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.len() > self.max {
                    return Err(line_too_long());
                }
                if line.is_empty() {
                    continue;
                }
                return Ok(Some(match std::str::from_utf8(line) {
                    Ok(text) => Message::Text(text.to_owned()),
                    Err(_) => Message::Binary(Bytes::copy_from_slice(line)),
                }));
            }
            // No line end yet: a line already too long (with room for its
            // "\r") is refused before more of it is buffered.
            if self.buf.len() > self.max.saturating_add(1) {
                return Err(line_too_long());
            }
            match self.body.chunk().await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None => return Ok(None),
            }
        }
    }
}

fn line_too_long() -> Error {
    Error::new(ErrorKind::Body)
        .with_message("a line of the events stream exceeds ChannelOptions::max_event_line")
}
