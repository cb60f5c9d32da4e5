//! The public [`Client`] and its [`ClientBuilder`].

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::{request, Method, Request, Response};
use muxpool_core::{Lease, Release, Shutdown, Stats};
use tokio::io::ReadBuf;

use crate::body::{Body, DEFAULT_MAX_COLLECT};
use crate::error::{BoxError, Error, ErrorKind};
use crate::h1::{encode_request, EncodedRequest, Limits, ResponseParser, TargetForm};
use crate::http1::{exchange, make_room, protocol, CheckIn, Failure, H1Body};
use crate::http2::{H2Body, H2Settings};
use crate::outgoing::Outgoing;
use crate::pool::{Checked, H1Conn, Inner};
use crate::runtime::{Runtime, Timer};
use crate::session::{ConnCell, Session};
use crate::settings::Settings;
use crate::timeout::until;
use crate::tls::{Alpn, TlsConfig};

/// How long a request may take, from [`Client::send`] to its response head, when
/// neither the client nor the request says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait for the next bytes of a response body, by default.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A per-request timeout: put it in the request's extensions to override the
/// client's [`timeout`](ClientBuilder::timeout) for that request.
///
/// ```
/// # use std::time::Duration;
/// let mut request = http::Request::get("http://127.0.0.1:1/").body(muxpool_client::Body::empty())?;
/// request.extensions_mut().insert(muxpool_client::Timeout(Duration::from_millis(250)));
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeout(pub Duration);

/// An HTTP client with a connection pool: cheap to clone, shared by every task of
/// a process.
///
/// Clones share one pool. When the last clone is dropped the pool shuts down
/// gracefully: waiting requests are refused, idle connections closed, and busy
/// ones closed as their responses finish.
pub struct Client<R: Runtime> {
    handle: Arc<Handle<R>>,
}

struct Handle<R: Runtime> {
    inner: Arc<Inner<R>>,
}

impl<R: Runtime> Drop for Handle<R> {
    fn drop(&mut self) {
        self.inner.shutdown(Shutdown::Graceful, true);
    }
}

impl<R: Runtime> Clone for Client<R> {
    fn clone(&self) -> Self {
        Client {
            handle: Arc::clone(&self.handle),
        }
    }
}

impl<R: Runtime> fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime + Default> Client<R> {
    /// A client with the default configuration on the runtime `R`.
    ///
    /// # Panics
    ///
    /// Never with the bundled configuration; see [`ClientBuilder::build`] for the
    /// errors a custom one can have.
    pub fn new() -> Client<R> {
        Client::builder()
            .build()
            .expect("the default configuration is valid")
    }

    /// A builder, starting from the defaults.
    pub fn builder() -> ClientBuilder<R> {
        ClientBuilder::with_runtime(R::default())
    }
}

impl<R: Runtime + Default> Default for Client<R> {
    fn default() -> Self {
        Client::new()
    }
}

impl<R: Runtime> Client<R> {
    /// Sends `request` and returns its response, whose body streams from the
    /// connection.
    ///
    /// The URI must be absolute (`http://` or `https://`). The body can be a
    /// [`Body`] (from bytes, a string, or [`Body::empty`]) or any
    /// [`http_body::Body`]. A request that fails on a reused connection before
    /// any byte of a response arrived is sent once more, on a fresh connection,
    /// when that is safe: its method is idempotent or its body can be replayed.
    ///
    /// # Errors
    ///
    /// An [`Error`] whose [`kind`](Error::kind) says what failed; the request's
    /// [`Timeout`] (or the client's) bounds the whole call.
    pub async fn send<B>(&self, request: Request<B>) -> Result<Response<Body>, Error>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let inner = &self.handle.inner;
        let (parts, body) = request.into_parts();
        let timeout = parts
            .extensions
            .get::<Timeout>()
            .map_or(inner.settings.request_timeout, |t| t.0);
        let now = inner.now();
        let deadline = now.saturating_add(timeout);
        let mut body = Outgoing::new(body)?;
        let awaiting = ConnCell::default();
        // Both futures are pinned where they are built, in this future's own
        // state, and raced through references: the request's future (the
        // largest part of this one) is never moved once made. Both are gone at
        // the end of the block, so a request that timed out has given its
        // lease back before its connection is reported.
        let outcome = {
            let exchange = pin!(execute(
                inner,
                &parts,
                &mut body,
                (now, deadline),
                &awaiting
            ));
            let timer = pin!(inner.request_timer(deadline));
            until(timer, exchange).await
        };
        match outcome {
            Ok(result) => result,
            Err(_) => {
                // The peer of a multiplexed connection that gave no answer in
                // time may be gone without a sign (its host vanished, no reset
                // came): the core checks it at once and closes it unanswered,
                // rather than hand it to every later request.
                if let Some(conn) = awaiting.get() {
                    inner.suspect(conn);
                }
                Err(Error::new(ErrorKind::Timeout).with_message("the request timed out"))
            }
        }
    }

    /// Opens a WebSocket for `request` (a `ws://` or `wss://` URI, and any
    /// headers the handshake should carry: credentials, the subprotocols
    /// asked for), or takes an idle one opened for the same URI and headers
    /// from the pool.
    ///
    /// The returned [`WebSocket`](crate::WebSocket) is exclusively the
    /// caller's until it is dropped; dropped clean it goes back to the pool.
    /// `wss` uses the client's TLS configuration, offering only `http/1.1`.
    ///
    /// # Errors
    ///
    /// As [`send`](Client::send) for the connection; a refused handshake is
    /// [`ErrorKind::WebSocket`]. The request's [`Timeout`] (or the client's)
    /// bounds the whole call.
    pub async fn websocket(&self, request: Request<()>) -> Result<crate::WebSocket, Error> {
        let inner = &self.handle.inner;
        let timeout = inner.timeout_of(request.extensions());
        crate::websocket::connect(inner, request, timeout).await
    }

    /// Opens a WebSocket for `request` as [`websocket`](Client::websocket)
    /// does, and reopens it through the pool whenever it drops, buffering
    /// what is sent meanwhile: see
    /// [`ReconnectingWebSocket`](crate::websocket::ReconnectingWebSocket).
    ///
    /// # Errors
    ///
    /// As [`websocket`](Client::websocket), for the first WebSocket;
    /// [`ErrorKind::Config`] for a buffer of no room.
    pub async fn reconnecting_websocket(
        &self,
        request: Request<()>,
        options: crate::websocket::Reconnect,
    ) -> Result<crate::websocket::ReconnectingWebSocket, Error> {
        let inner = &self.handle.inner;
        let timeout = inner.timeout_of(request.extensions());
        crate::websocket::reconnect::open(inner, request, timeout, options).await
    }

    /// A [`Connection`](crate::connection::Connection) for a message protocol
    /// over a WebSocket opened (or taken from the pool) for `request`: many
    /// concurrent requests share it, their responses found by the id `codec`
    /// reads.
    ///
    /// # Errors
    ///
    /// As [`websocket`](Client::websocket).
    pub async fn messages_over_websocket<C: crate::connection::Codec>(
        &self,
        request: Request<()>,
        codec: C,
        options: crate::connection::ConnectionOptions,
    ) -> Result<crate::connection::Connection<C>, Error> {
        let inner = &self.handle.inner;
        let timeout = inner.timeout_of(request.extensions());
        let ws = crate::websocket::connect(inner, request, timeout).await?;
        crate::connection::Connection::over_websocket(&inner.runtime, ws, codec, &options, timeout)
    }

    /// A [`Connection`](crate::connection::Connection) for a message protocol
    /// over HTTP: each message is a `POST` to `url` (over HTTP/2 where the
    /// origin speaks it, a stream each), server-initiated messages come from
    /// `options.events`.
    pub fn messages_over_http<C: crate::connection::Codec>(
        &self,
        url: http::Uri,
        codec: C,
        options: crate::connection::ConnectionOptions,
    ) -> crate::connection::Connection<C> {
        let timeout = self.handle.inner.settings.request_timeout;
        crate::connection::Connection::over_http(self, url, codec, &options, timeout)
    }

    /// The pool's counters, summed over every origin.
    pub fn stats(&self) -> Stats {
        self.handle.inner.stats()
    }

    /// Shuts down gracefully: refuses new requests and waiting ones, closes idle
    /// connections, lets responses in progress finish, and resolves when every
    /// connection is closed.
    pub async fn shutdown(&self) {
        self.handle.inner.shutdown(Shutdown::Graceful, false);
        self.handle.inner.drained().await;
    }

    /// Shuts down at once: also forgets busy connections, which close as soon as
    /// their holders let go of them.
    pub fn shutdown_now(&self) {
        self.handle.inner.shutdown(Shutdown::Immediate, false);
    }
}

/// How many times a request refused by HTTP/2 servers (REFUSED_STREAM, GOAWAY)
/// is sent again before the refusal is returned.
const MAX_REFUSALS: u32 = 8;

/// Whether a request may be sent again after it failed before any response:
/// RFC 9110's idempotent methods, or any method whose body can be replayed.
fn may_retry(method: &Method, body: &Outgoing) -> bool {
    body.is_replayable()
        && (matches!(
            *method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        ) || matches!(body, Outgoing::Full(_)))
}

/// Encodes the request head into `buf`, the connection's empty read buffer:
/// the head is written from there, and the same memory then takes the
/// response, so a request allocates no buffer of its own for its head.
fn encode(
    parts: &request::Parts,
    body: &Outgoing,
    buf: &mut BytesMut,
) -> Result<EncodedRequest, Error> {
    // The room the response will be read into, made now: one allocation for
    // the head and then the response.
    make_room(buf);
    encode_request(parts, body.framing(), TargetForm::Origin, buf).map_err(protocol)
}

/// Whether a connection that sat idle is still open, as far as can be seen
/// without waiting: no end of stream, no reset, no unexpected bytes.
///
/// The probe is a read, polled with the calling task's context: a read that
/// would block leaves the task registered for the connection's readiness,
/// which is what the read of the response does next anyway, so that read
/// finds its waker in place instead of swapping a stand-in out for it.
async fn is_open(conn: &mut H1Conn) -> bool {
    std::future::poll_fn(|cx| {
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        let pending = tokio::io::AsyncRead::poll_read(Pin::new(&mut conn.io), cx, &mut buf);
        std::task::Poll::Ready(pending.is_pending())
    })
    .await
}

/// Returns a lease whose exchange did not finish, as `how` says: an HTTP/1.1
/// connection is closed (its position in the stream is unknown), an HTTP/2
/// stream slot is given back (the stream is reset, the connection goes on).
struct LeaseGuard<'a, R: Runtime> {
    inner: &'a Inner<R>,
    lease: Option<Lease>,
    how: Release,
}

impl<R: Runtime> Drop for LeaseGuard<'_, R> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.inner.release(lease, self.how);
        }
    }
}

async fn execute<R: Runtime>(
    inner: &Arc<Inner<R>>,
    parts: &request::Parts,
    body: &mut Outgoing,
    (now, deadline): (muxpool_core::Instant, muxpool_core::Instant),
    awaiting: &ConnCell,
) -> Result<Response<Body>, Error> {
    let origin = inner.origin_of(&parts.uri)?;
    let session = parts.extensions.get::<Session>();
    let mut retried = false;
    let mut refusals = 0;
    // The clock was read for the deadline; later attempts read it afresh.
    let mut now = Some(now);
    loop {
        let (lease, checked) = inner
            .checkout_until(&origin, Some(deadline))
            .preferring(session.and_then(Session::last))
            .at(now.take())
            .await?;
        if let Some(session) = session {
            session.placed_on(lease.conn());
        }
        let mut conn = match checked {
            Checked::H1(conn) => conn,
            Checked::Ws(_) => {
                // An HTTP origin's key never names a WebSocket.
                inner.release(lease, Release::Close);
                return Err(Error::new(ErrorKind::Protocol)
                    .with_message("the pool granted a WebSocket for an HTTP request"));
            }
            Checked::H2(send) => {
                // Each attempt's future is built where it is awaited, not
                // moved into this one.
                let attempt = pin!(over_h2(inner, lease, send, parts, body, awaiting)).await;
                match attempt {
                    Ok(response) => return Ok(response),
                    Err(failure) => {
                        // A stream the server refused without processing it
                        // (REFUSED_STREAM, or beyond a GOAWAY's last stream) goes
                        // to another connection, transparently: the server said it
                        // did nothing with it. The request's deadline, and a cap,
                        // bound the attempts.
                        if failure.replayable
                            && refusals < MAX_REFUSALS
                            && may_retry(&parts.method, body)
                        {
                            refusals += 1;
                            continue;
                        }
                        return Err(failure.error);
                    }
                }
            }
        };
        let reused = conn.waited;
        // A retry goes to a fresh connection. The failure showed that this
        // server drops idle connections, and the pool offers the most recently
        // used first, so any idle one it offers now has waited at least as long
        // as the one that failed: it is closed rather than trusted, and the pool
        // opens a new one.
        if reused && (retried || !is_open(&mut conn).await) {
            inner.check_in(lease, None);
            continue;
        }
        // Encoded here, once the connection is known to speak HTTP/1.1: a
        // request that goes over HTTP/2 never needs the HTTP/1.1 head.
        let mut encoded = match encode(parts, body, &mut conn.buf) {
            Ok(encoded) => encoded,
            Err(error) => {
                // Nothing was written (the encoder left the buffer as it
                // was): the connection is as clean as it came.
                inner.check_in(lease, Some(conn));
                return Err(error);
            }
        };
        // One attempt on this connection, in this future (not one of its
        // own): if it fails, or this future is dropped, the guard closes the
        // connection, whose position in the stream is then unknown.
        let mut guard = LeaseGuard {
            inner,
            lease: Some(lease),
            how: Release::Close,
        };
        let mut parser = ResponseParser::new(encoded.info, inner.settings.h1_limits);
        let attempt = pin!(exchange(&mut conn, &mut encoded.body, body, &mut parser)).await;
        match attempt {
            Ok((head, buf)) => {
                guard.lease = None;
                return respond(inner, lease, conn, head, buf);
            }
            Err(failure) => {
                drop(guard);
                if failure.replayable && reused && !retried && may_retry(&parts.method, body) {
                    retried = true;
                    continue;
                }
                return Err(failure.error);
            }
        }
    }
}

/// One attempt of a request on a stream of an HTTP/2 connection. On failure
/// the stream slot is back with the pool, and a connection going away is
/// marked so.
async fn over_h2<R: Runtime>(
    inner: &Arc<Inner<R>>,
    lease: Lease,
    send: h2::client::SendRequest<bytes::Bytes>,
    parts: &request::Parts,
    body: &mut Outgoing,
    awaiting: &ConnCell,
) -> Result<Response<Body>, Failure> {
    let mut guard = LeaseGuard {
        inner,
        lease: Some(lease),
        how: Release::Reuse,
    };
    awaiting.set(Some(lease.conn()));
    let exchanged = pin!(crate::http2::exchange(send, parts, body)).await;
    awaiting.set(None);
    match exchanged {
        Ok((response, upload)) => {
            guard.lease = None;
            let (head, recv) = response.into_parts();
            let pool: Arc<dyn CheckIn> = Arc::clone(inner) as Arc<dyn CheckIn>;
            let body = Body::h2(
                H2Body::new(recv, upload, lease, pool),
                inner.settings.max_collect,
            );
            Ok(Response::from_parts(head, body))
        }
        Err(failure) => {
            drop(guard);
            if failure.going_away {
                // No new stream goes to this connection.
                inner.going_away(lease.conn());
            }
            Err(failure)
        }
    }
}

fn respond<R: Runtime>(
    inner: &Arc<Inner<R>>,
    lease: Lease,
    conn: H1Conn,
    head: crate::h1::ResponseHead,
    mut buf: BytesMut,
) -> Result<Response<Body>, Error> {
    if let Some(data) = head.whole_body(&mut buf) {
        // The body came whole with its head (the usual small response): the
        // connection goes back to the pool now, as clean as the head says,
        // with its emptied buffer for the next exchange.
        let conn = head
            .keep_alive()
            .is_reusable()
            .then(|| H1Conn { buf, ..conn });
        inner.check_in(lease, conn);
        return Ok(Response::from_parts(
            head.into_parts(),
            Body::full(data, None),
        ));
    }
    let length = head.known_length();
    let decoder = head.body_decoder();
    let parts = head.into_parts();
    let pool: Arc<dyn CheckIn> = Arc::clone(inner) as Arc<dyn CheckIn>;
    let mut h1 = H1Body::new(
        conn,
        lease,
        pool,
        buf,
        decoder,
        inner.settings.read_timeout,
        length,
    );
    let body = match h1.complete_from_buffer()? {
        Some((data, trailers)) => Body::full(data, trailers),
        None => Body::h1(h1, inner.settings.max_collect),
    };
    Ok(Response::from_parts(parts, body))
}

impl<R: Runtime> Inner<R> {
    /// A request's [`Timeout`], or the client's.
    fn timeout_of(&self, extensions: &http::Extensions) -> Duration {
        extensions
            .get::<Timeout>()
            .map_or(self.settings.request_timeout, |t| t.0)
    }
}

impl<R: Runtime> CheckIn for Inner<R> {
    fn check_in(&self, lease: Lease, conn: Option<H1Conn>) {
        Inner::check_in(self, lease, conn);
    }

    fn release_stream(&self, lease: Lease) {
        Inner::release(self, lease, Release::Reuse);
    }

    fn timer(&self, deadline: std::time::Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(self.runtime.timer(deadline))
    }

    fn now(&self) -> std::time::Instant {
        self.runtime.now()
    }
}

/// Builds a [`Client`]: the pool's limits and timeouts, TLS, HTTP limits.
///
/// Every setting has a finite, conservative default.
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder<R> {
    runtime: R,
    pool: muxpool_core::PoolConfig,
    seeded: bool,
    tls: Option<TlsConfig>,
    h1_limits: Limits,
    request_timeout: Duration,
    read_timeout: Duration,
    max_collect: usize,
    h2: H2Settings,
    h2_prior_knowledge: bool,
    max_websocket_message: usize,
    websocket_over_http2: bool,
}

impl<R: Runtime> ClientBuilder<R> {
    /// A builder for a client on `runtime`.
    pub fn with_runtime(runtime: R) -> ClientBuilder<R> {
        ClientBuilder {
            runtime,
            pool: muxpool_core::PoolConfig::default(),
            seeded: false,
            tls: None,
            h1_limits: Limits::default(),
            request_timeout: DEFAULT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_collect: DEFAULT_MAX_COLLECT,
            h2: H2Settings::default(),
            h2_prior_knowledge: false,
            max_websocket_message: crate::websocket::DEFAULT_MAX_MESSAGE,
            websocket_over_http2: false,
        }
    }

    /// The whole pool configuration at once (limits, timeouts, backoff, circuit,
    /// seed). Its seed is used as given; otherwise each client draws its own, so a
    /// fleet of processes does not expire its connections in step.
    pub fn pool(mut self, config: muxpool_core::PoolConfig) -> Self {
        self.pool = config;
        self.seeded = true;
        self
    }

    /// Connections per origin (scheme, host, port, TLS settings). Default 100.
    pub fn max_connections_per_key(mut self, max: u32) -> Self {
        self.pool.max_connections_per_key = max;
        self
    }

    /// Connections over all origins. Default 10,000.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.pool.max_connections = max;
        self
    }

    /// Requests that may wait for a connection per origin; more are refused with
    /// [`ErrorKind::PoolExhausted`]. Default 10,000.
    pub fn max_waiting_per_key(mut self, max: u32) -> Self {
        self.pool.max_waiters_per_key = max;
        self
    }

    /// How long a connect (resolution, TCP, TLS) may take. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.pool.connect_timeout = timeout;
        self
    }

    /// Close connections idle this long. Default 60 s, shorter than common
    /// servers' keep-alive timeouts so the client closes first.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool.idle_timeout = timeout;
        self
    }

    /// Retire connections this long after they connected. Default 300 s.
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.pool.max_lifetime = lifetime;
        if let Some(lifetime) = lifetime {
            self.pool.lifetime_jitter = self.pool.lifetime_jitter.min(lifetime / 2);
        }
        self
    }

    /// The TLS configuration for `https` origins. By default: the bundled Mozilla
    /// roots, verification on, h2 and http/1.1 offered with ALPN (the server
    /// chooses; one client speaks both).
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Limits on the response heads a server can make the client buffer.
    pub fn h1_limits(mut self, limits: Limits) -> Self {
        self.h1_limits = limits;
        self
    }

    /// How long a request may take until its response head. Default 30 s; a
    /// request can override it with a [`Timeout`] extension.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The longest wait for the next bytes of a response body. Default 30 s.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The most [`Body::bytes`] and [`Body::text`] collect. Default 64 MiB.
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_collect = bytes;
        self
    }

    /// Speak HTTP/2 at once on `http://` origins (h2c with prior knowledge, RFC
    /// 9113 section 3.3), for servers known to support it. Off by default.
    pub fn http2_prior_knowledge(mut self, enabled: bool) -> Self {
        self.h2_prior_knowledge = enabled;
        self
    }

    /// Our cap on concurrent streams per HTTP/2 connection (the connection's
    /// capacity is the smaller of this and the server's limit). Default 256.
    pub fn max_streams_per_connection(mut self, max: u32) -> Self {
        self.pool.max_streams_per_connection = max;
        self
    }

    /// HTTP/2 flow-control windows we grant the server: per stream and per
    /// connection. Defaults 256 KiB and 1 MiB.
    pub fn http2_windows(mut self, stream: u32, connection: u32) -> Self {
        self.h2.initial_stream_window = stream;
        self.h2.initial_connection_window = connection;
        self
    }

    /// The largest HTTP/2 frame payload we accept. Default 16 KiB.
    pub fn http2_max_frame_size(mut self, bytes: u32) -> Self {
        self.h2.max_frame_size = bytes;
        self
    }

    /// The largest WebSocket message sent or accepted, in bytes. Default
    /// 64 MiB. A larger one to send is refused with
    /// [`WebSocketError::MessageTooLarge`](crate::WebSocketError::MessageTooLarge);
    /// a larger one from the server ends its WebSocket with that error.
    pub fn max_websocket_message(mut self, bytes: usize) -> Self {
        self.max_websocket_message = bytes;
        self
    }

    /// Open WebSockets as streams of the origin's HTTP/2 connection (RFC
    /// 8441, extended CONNECT) when its server offers that, so that many
    /// WebSockets share one connection; otherwise, and for `ws://` without
    /// [`http2_prior_knowledge`](Self::http2_prior_knowledge), they fall back
    /// to the HTTP/1.1 upgrade. Off by default.
    pub fn websocket_over_http2(mut self, enabled: bool) -> Self {
        self.websocket_over_http2 = enabled;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the pool configuration is refused (a zero
    /// limit, a zero timeout) or the default TLS configuration cannot be built.
    pub fn build(self) -> Result<Client<R>, Error> {
        let config_error = |message| Error::new(ErrorKind::Config).with_message(message);
        if self.request_timeout.is_zero() || self.read_timeout.is_zero() {
            return Err(config_error("timeouts must be longer than zero"));
        }
        let tls = match self.tls {
            Some(tls) => tls,
            None => TlsConfig::builder()
                .alpn(Alpn::Http1AndHttp2)
                .build()
                .map_err(|e| config_error("the default TLS configuration failed").with_source(e))?,
        };
        let mut pool = self.pool;
        if !self.seeded {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(pool.seed);
            pool.seed = hasher.finish();
        }
        let ws = crate::websocket::WsSettings::new(
            &tls,
            self.max_websocket_message,
            self.websocket_over_http2,
        );
        let settings = Settings {
            ws,
            pool,
            tls,
            h1_limits: self.h1_limits,
            request_timeout: self.request_timeout,
            read_timeout: self.read_timeout,
            max_collect: self.max_collect,
            h2: self.h2,
            h2_prior_knowledge: self.h2_prior_knowledge,
        };
        Ok(Client {
            handle: Arc::new(Handle {
                inner: Inner::new(self.runtime, settings)?,
            }),
        })
    }
}
