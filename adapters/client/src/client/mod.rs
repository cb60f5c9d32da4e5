//! The public [`Client`]: one pool, shared by every task of a process.
//!
//! - this module: the [`Client`] handle and what it offers (send a request,
//!   open a WebSocket, read the pool's statistics, shut down);
//! - [`send`]: sending one request through the pool, with its retries;
//! - [`builder`]: the [`ClientBuilder`], every setting with its default.

mod builder;
mod redirect;
mod send;
mod service;

pub use builder::{ClientBuilder, DEFAULT_HEALTH_CHECK_INTERVAL, DEFAULT_HEALTH_CHECK_TIMEOUT};

use std::fmt;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use muxpool_core::{PoolConfig, Shutdown, Stats};

use crate::body::Body;
use crate::conn::outgoing::Outgoing;
use crate::decompress::Decompression;
use crate::error::{Error, ErrorKind, Step};
use crate::metrics::Metrics;
use crate::pool::{Shared, Timing};
use crate::proxy::ProxyChoice;
use crate::runtime::Runtime;
use crate::session::ConnCell;
use crate::timeout::until;

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
/// request.extensions_mut().insert(muxpool_client::RequestTimeout(Duration::from_millis(250)));
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestTimeout(pub Duration);

/// The caller's word that a request may be sent twice: put it in the
/// request's extensions to let a non-idempotent request (a `POST`, a
/// `PATCH`) be sent once more when its connection failed before any byte of
/// the response, as idempotent ones are. A request with an `Idempotency-Key`
/// header is taken as saying so too.
///
/// Without it, such a request is sent again only when the server provably did
/// not process it: an HTTP/2 stream refused (REFUSED_STREAM, or above a
/// GOAWAY's last stream).
///
/// ```
/// let mut request = http::Request::post("http://127.0.0.1:1/orders")
///     .body(muxpool_client::Body::from("{\"id\": 7}"))?;
/// request.extensions_mut().insert(muxpool_client::Idempotent);
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idempotent;

/// An HTTP client with a connection pool: cheap to clone, shared by every task of
/// a process.
///
/// Clones share one pool. When the last clone is dropped the pool shuts down
/// gracefully: waiting requests are refused, idle connections closed, and busy
/// ones closed as their responses finish.
pub struct Client<R: Runtime> {
    pub(crate) handle: Arc<Handle<R>>,
}

/// The last clone of a [`Client`] to go shuts the pool down.
pub(crate) struct Handle<R: Runtime> {
    pub(crate) inner: Arc<Shared<R>>,
    /// The OpenTelemetry histogram requests record into, once registered.
    #[cfg(feature = "opentelemetry")]
    pub(crate) otel: std::sync::OnceLock<crate::metrics::otel::RequestDurations>,
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

impl<R: Runtime> Client<R> {
    /// Sends `request` and returns its response, whose body streams from the
    /// connection.
    ///
    /// The URI must be absolute (`http://` or `https://`). The body is
    /// anything a [`Body`] is made from: `()`, a `&'static str` or
    /// `&'static [u8]`, a `String`, a `Vec<u8>`, `Bytes` (each sent whole,
    /// with its length), or a stream, [`Body::wrap`] of any
    /// [`http_body::Body`]. Redirects are the caller's unless the client
    /// follows them ([`ClientBuilder::redirect`]).
    ///
    /// ```no_run
    /// # async fn demo<R: muxpool_client::runtime::Runtime>(client: muxpool_client::Client<R>) -> Result<(), Box<dyn std::error::Error>> {
    /// let response = client.send(http::Request::get("https://example.com/").body(())?).await?;
    /// let created = client
    ///     .send(http::Request::post("https://example.com/items").body("{\"name\": \"pen\"}")?)
    ///     .await?;
    /// # let _ = (response, created);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A request whose connection fails before any byte of
    /// a response arrived (a reused HTTP/1.1 connection the server had closed,
    /// an HTTP/2 connection cut) is sent once more, on a fresh connection, when
    /// that is safe: its method is idempotent (or the caller says so, with
    /// [`Idempotent`] or an `Idempotency-Key` header) and its body can be sent
    /// again. A stream an HTTP/2 server refused unprocessed goes again whatever
    /// its method.
    ///
    /// # Errors
    ///
    /// An [`Error`] whose [`kind`](Error::kind) says what failed; the request's
    /// [`RequestTimeout`] (or the client's) bounds the whole call.
    ///
    /// A refused or reset connect does not fail a request that has time for
    /// the next one: it waits through the pool's backoff, so a request to a
    /// restarting server is answered once the server is back. Only after an
    /// origin's connects have failed for
    /// [`Circuit::failing_for`](muxpool_core::Circuit#structfield.failing_for) (10 s)
    /// does its circuit open and new requests fail at once with
    /// [`ErrorKind::CircuitOpen`]; a [`PoolConfig`] with a shorter period
    /// fails sooner. A request sent again (see above) spends from the
    /// client's [retry budget](ClientBuilder::retry_budget); with none left
    /// it ends with the failure it would have retried.
    pub async fn send<B: Into<Body>>(&self, request: Request<B>) -> Result<Response<Body>, Error> {
        let (mut parts, body) = request.into_parts();
        let body: Body = body.into();
        match self.handle.inner.settings.redirect.max() {
            // The head stays in this future; the exchange borrows it.
            None => self.exchange(&mut parts, body.into_outgoing()).await,
            Some(max) => {
                let replay = body.replayable();
                self.following(parts, body.into_outgoing(), replay, max)
                    .await
            }
        }
    }

    /// The request, and the requests its redirects lead to: boxed, so that
    /// a client that follows none keeps the smaller future.
    #[inline(never)]
    fn following<'a>(
        &'a self,
        parts: http::request::Parts,
        body: Result<Outgoing, Error>,
        replay: Option<bytes::Bytes>,
        max: u32,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send + 'a>> {
        Box::pin(redirect::follow(self, parts, body, replay, max))
    }

    /// Sends one request, its body taken in already, and returns its
    /// response head: what [`send`](Client::send) does for each request of a
    /// redirect chain.
    pub(crate) async fn exchange(
        &self,
        parts: &mut http::request::Parts,
        body: Result<Outgoing, Error>,
    ) -> Result<Response<Body>, Error> {
        let inner = &self.handle.inner;
        self.add_default_headers(&mut parts.headers);
        // One branch when nothing is decompressed.
        let decode = match &inner.settings.accept_encoding {
            Some(accept) => Decompression::prepare(&parts.method, &mut parts.headers, accept),
            None => false,
        };
        let timeout = self.admit(&parts.extensions)?;
        let now = inner.now();
        let deadline = now.saturating_add(timeout);
        let key = match parts.extensions.get::<ProxyChoice>() {
            None => inner.key_of(&parts.uri)?,
            Some(choice) => inner.key_choosing(&parts.uri, choice)?,
        };
        let mut body = body.map_err(|e| e.at(&key))?;
        let awaiting = ConnCell::default();
        let timing = Timing::default();
        let span = crate::trace::request(&parts.method, &key);
        // Both futures are pinned where they are built, in this future's own
        // state, and raced through references: the request's future (the
        // largest part of this one) is never moved once made. Both are gone at
        // the end of the block, so a request that timed out has given its
        // lease back before its connection is reported.
        let outcome = {
            let mut exchange = pin!(send::execute(
                inner,
                &key,
                parts,
                &mut body,
                (now, deadline),
                (&awaiting, &timing, &span),
            ));
            // In the request's span while it runs (what `Instrument` does,
            // without moving the future into a wrapper).
            let traced = std::future::poll_fn(|cx| {
                let _entered = span.enter();
                exchange.as_mut().poll(cx)
            });
            let timer = pin!(inner.request_timer(deadline));
            until(timer, pin!(traced)).await
        };
        // A response that came whole with its head recorded the request's
        // figures as its connection went back; any other ends here, with one
        // clock reading.
        if !timing.recorded() {
            inner.record_request(&key, now, &timing, matches!(outcome, Ok(Ok(_))));
        }
        #[cfg(feature = "opentelemetry")]
        if let Some(otel) = self.handle.otel.get() {
            self.record_otel(otel, &key, &parts.method, &outcome, now);
        }
        let outcome = match outcome {
            Ok(result) => result.map_err(|e| e.at(&key).with_wait(timeout)),
            Err(_) => {
                // The peer of a multiplexed connection that gave no answer in
                // time may be gone without a sign (its host vanished, no reset
                // came): the core checks it at once and closes it unanswered,
                // rather than hand it to every later request.
                if let Some(conn) = awaiting.get() {
                    inner.suspect(conn);
                }
                Err(Error::timed_out(Step::Request, Some(timeout)).at(&key))
            }
        };
        let outcome = match decode {
            true => outcome.map(|r| crate::body::decompressed(r, &inner.settings.decompression)),
            false => outcome,
        };
        if !span.is_disabled() {
            crate::trace::answered(
                &span,
                outcome.as_ref().map(|r| (r.status(), r.version())),
                timing
                    .get()
                    .map(|(asked, at)| (asked.as_nanos(), at.as_nanos())),
            );
        }
        outcome
    }

    /// Records a request that ended with `outcome` into the OpenTelemetry
    /// histogram, with a clock reading of its own.
    #[cfg(feature = "opentelemetry")]
    #[inline(never)]
    fn record_otel<T>(
        &self,
        otel: &crate::metrics::otel::RequestDurations,
        key: &crate::dial::PoolKey,
        method: &http::Method,
        outcome: &Result<Result<Response<Body>, Error>, T>,
        start: muxpool_core::Instant,
    ) {
        use crate::metrics::otel::Ended;
        let end = self.handle.inner.now();
        let took = Duration::from_nanos(end.as_nanos().saturating_sub(start.as_nanos()));
        let ended = match outcome {
            Ok(Ok(response)) => Ended::Answered(response.status(), response.version()),
            Ok(Err(e)) => Ended::Failed(e.kind()),
            Err(_) => Ended::Failed(ErrorKind::Timeout),
        };
        otel.record(key, method, ended, took);
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
    /// The handshake carries the client's
    /// [default headers](ClientBuilder::default_headers) (its `User-Agent`
    /// among them) that `request` does not set itself, and they are part of
    /// what a pooled WebSocket is kept for.
    ///
    /// # Errors
    ///
    /// As [`send`](Client::send) for the connection; a refused handshake is
    /// [`ErrorKind::WebSocket`]. The request's [`RequestTimeout`] (or the client's)
    /// bounds the whole call.
    pub async fn websocket(&self, mut request: Request<()>) -> Result<crate::WebSocket, Error> {
        let timeout = self.admit(request.extensions())?;
        self.add_default_headers(request.headers_mut());
        crate::websocket::connect(&self.handle.inner, request, timeout).await
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
        mut request: Request<()>,
        options: crate::websocket::Reconnect,
    ) -> Result<crate::websocket::ReconnectingWebSocket, Error> {
        let timeout = self.admit(request.extensions())?;
        self.add_default_headers(request.headers_mut());
        crate::websocket::open_reconnecting(&self.handle.inner, request, timeout, options).await
    }

    /// What the client decompresses: its builder's
    /// [`decompression`](ClientBuilder::decompression).
    pub fn decompression(&self) -> &Decompression {
        &self.handle.inner.settings.decompression
    }

    /// The runtime the client runs its tasks and timers on.
    pub fn runtime(&self) -> &R {
        &self.handle.inner.runtime
    }

    /// How long a request may take when it carries no [`RequestTimeout`]:
    /// the builder's [`timeout`](ClientBuilder::timeout).
    pub fn request_timeout(&self) -> Duration {
        self.handle.inner.settings.request_timeout
    }

    /// How long a request with these extensions may take: its
    /// [`RequestTimeout`], or the client's.
    pub(crate) fn timeout_of(&self, extensions: &http::Extensions) -> Duration {
        extensions
            .get::<RequestTimeout>()
            .map_or(self.request_timeout(), |t| t.0)
    }

    /// Takes a request in: its timeout, or a refusal where the runtime cannot
    /// run the client's tasks and timers, rather than a wait for them
    /// forever.
    fn admit(&self, extensions: &http::Extensions) -> Result<Duration, Error> {
        if !self.handle.inner.runtime.is_reachable() {
            return Err(Error::new(ErrorKind::Runtime).with_message(
                "the client's runtime is not reachable from this thread (a tokio client must be used inside a tokio runtime)",
            ));
        }
        Ok(self.timeout_of(extensions))
    }

    /// The pool's configuration, as the client runs it (with its seed).
    pub fn pool_config(&self) -> &PoolConfig {
        &self.handle.inner.settings.pool
    }

    /// The pool's counters, summed over every origin.
    pub fn stats(&self) -> Stats {
        self.handle.inner.stats()
    }

    /// A snapshot of the pool's figures: its counters and latency
    /// histograms in total, and each origin's, taken under the pool's lock
    /// at once (see [`Metrics`]). [`Metrics::prometheus`] renders it for a
    /// Prometheus scrape.
    ///
    /// ```no_run
    /// use muxpool_client::{runtime::Runtime, Client};
    ///
    /// fn report<R: Runtime>(client: &Client<R>) {
    ///     let metrics = client.metrics();
    ///     println!("{} grants in all", metrics.stats.grants);
    ///     for origin in &metrics.origins {
    ///         println!(
    ///             "{}: {} open, {} requests, {:?} spent waiting for a connection",
    ///             origin.key,
    ///             origin.stats.open,
    ///             origin.latencies.request.count(),
    ///             origin.latencies.wait.sum(),
    ///         );
    ///     }
    ///     print!("{}", metrics.prometheus());
    /// }
    /// ```
    pub fn metrics(&self) -> Metrics {
        self.handle.inner.metrics()
    }

    /// Reports this client's figures to `meter` under OpenTelemetry's HTTP
    /// client semantic conventions (feature `opentelemetry`).
    ///
    /// - `http.client.request.duration` (histogram, `s`): each
    ///   [`send`](Client::send), as the `request` latency of [`Metrics`]
    ///   measures it, with `server.address`, `server.port`, `url.scheme`,
    ///   `http.request.method`, and `http.response.status_code` and
    ///   `network.protocol.version` when answered, `error.type` when failed
    ///   (the [`ErrorKind`] in snake case: `timeout`, `connect`, …) or
    ///   answered with a 4xx or 5xx status (the status);
    /// - `http.client.connection.duration` (histogram, `s`): each connection
    ///   that came up, as it goes (the `connection` latency of [`Metrics`]),
    ///   with `server.address`, `server.port`, `url.scheme` and
    ///   `network.protocol.version`; connections already open when this is
    ///   called are recorded too;
    /// - `http.client.open_connections` (`{connection}`), with
    ///   `http.connection.state` `active` or `idle`, and
    ///   `http.client.active_requests` (`{request}`): observable, read from a
    ///   [`metrics`](Client::metrics) snapshot at each collection, with
    ///   `server.address`, `server.port` and `url.scheme`.
    ///
    /// The observable instruments hold no reference that keeps the client
    /// alive: once it is gone they report nothing. A second call does
    /// nothing; the instruments live as long as the meter's provider.
    ///
    /// ```
    /// # async fn example<R: muxpool_client::runtime::Runtime>(
    /// #     client: muxpool_client::Client<R>,
    /// #     provider: &impl opentelemetry::metrics::MeterProvider,
    /// # ) {
    /// client.register_metrics(&provider.meter("muxpool"));
    /// # }
    /// ```
    #[cfg(feature = "opentelemetry")]
    pub fn register_metrics(&self, meter: &opentelemetry::metrics::Meter) {
        self.handle.otel.get_or_init(|| {
            let inner = Arc::downgrade(&self.handle.inner);
            let (requests, connections) =
                crate::metrics::otel::register(meter, move || inner.upgrade().map(|i| i.metrics()));
            self.handle.inner.lock().otel_connections = Some(connections);
            requests
        });
    }

    /// Checks the pool's invariants ([`muxpool_core::Pool::check_invariants`]):
    /// every count recounted, every list walked, every limit compared. For
    /// tests and fuzzing; with the `unstable` feature.
    ///
    /// # Errors
    ///
    /// The first invariant found broken.
    #[cfg(feature = "unstable")]
    pub fn check_invariants(&self) -> Result<(), muxpool_core::InvariantViolation> {
        self.handle.inner.check_invariants()
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

/// Adds to `headers` every header of `defaults` it does not set itself.
impl<R: Runtime> Client<R> {
    /// Adds the client's default headers that `headers` does not set.
    #[inline]
    fn add_default_headers(&self, headers: &mut http::HeaderMap) {
        let defaults = &self.handle.inner.settings.default_headers;
        if !defaults.is_empty() {
            with_defaults(headers, defaults);
        }
    }
}

fn with_defaults(headers: &mut http::HeaderMap, defaults: &http::HeaderMap) {
    for name in defaults.keys() {
        if !headers.contains_key(name) {
            for value in defaults.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
    }
}
