//! In-process HTTP/1.1 and HTTP/2 servers built on hyper.
//!
//! nginx is the reference server, but some tests need things nginx cannot do on
//! demand: count the requests it served, answer on a route that streams
//! 64 MiB without buffering it, send trailers, stall for a given time, or close a
//! keep-alive connection after exactly N requests or after a given idle period. A
//! [`HyperServer`] runs in the test's own tokio runtime, on `127.0.0.1` and an
//! ephemeral port (or an address of the test's), plain or over TLS, and
//! stops when it is dropped.
//!
//! The path decides the response (see [`HyperServer`] for the routes); the
//! bodies of `/bytes/{n}` and `/chunked/{n}` are [`content`]`(n)`, so a test can
//! check what it received with [`content`] or [`byte_at`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRAILER};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// The size of the frames `/bytes/{n}` is streamed in.
pub const FRAME_SIZE: usize = 16 * 1024;

/// The size of the frames `/encoded/…` is sent in: small and odd, so that
/// every header and block of a coding is split somewhere.
pub const ENCODED_FRAME: usize = 997;

/// The period of [`content`]: byte `i` is `(i % 251) as u8`.
const PERIOD: usize = 251;

/// Byte `i` of the deterministic content served by `/bytes/{n}` and
/// `/chunked/{n}`: `(i % 251) as u8` (251 is prime, so misplaced frames show).
pub fn byte_at(i: usize) -> u8 {
    (i % PERIOD) as u8
}

/// The first `n` bytes of the deterministic content: what `/bytes/{n}` and
/// `/chunked/{n}` answer.
pub fn content(n: usize) -> Vec<u8> {
    (0..n).map(byte_at).collect()
}

/// Which HTTP versions a [`HyperServer`] speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.x only: an HTTP/2 preface is an error.
    Http1,
    /// HTTP/2 only, with prior knowledge or after ALPN `h2`.
    Http2,
    /// Both: the server looks at the first bytes for the HTTP/2 preface.
    #[default]
    Auto,
}

/// How a [`HyperServer`] behaves. `Options::default()` is plain text, both
/// protocols, keep-alive on, no limits.
#[derive(Clone, Debug)]
pub struct Options {
    /// Serve TLS with this configuration (see
    /// [`certs::server_config`](crate::certs::server_config); offer ALPN `h2`
    /// and `http/1.1` there to let clients choose). `None`: plain text.
    pub tls: Option<Arc<ServerConfig>>,
    /// Which HTTP versions to speak.
    pub protocol: Protocol,
    /// HTTP/1 keep-alive. When off, every response says `Connection: close` and
    /// the connection closes after it.
    pub keep_alive: bool,
    /// Close every connection after its Nth request: in HTTP/1 the Nth response
    /// carries `Connection: close` and the server closes after it; in HTTP/2 the
    /// server sends GOAWAY once the Nth stream has started and closes when the
    /// streams in flight are done.
    pub close_after_requests: Option<usize>,
    /// Close a connection (drop its socket, no GOAWAY) once it has been idle
    /// that long: no request in flight and no byte received.
    pub idle_timeout: Option<Duration>,
    /// The HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` the server announces.
    pub max_concurrent_streams: Option<u32>,
    /// Listen on this address instead of `127.0.0.1` and an ephemeral port:
    /// another loopback address (`127.0.0.2`), a port of its own (`0` for an
    /// ephemeral one), or the address of a server stopped before, to start
    /// it again where it was.
    pub addr: Option<SocketAddr>,
    /// Wait this long before answering every request, whatever its route:
    /// a slow server.
    pub delay: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: None,
            protocol: Protocol::Auto,
            keep_alive: true,
            close_after_requests: None,
            idle_timeout: None,
            max_concurrent_streams: None,
            addr: None,
            delay: None,
        }
    }
}

/// An in-process hyper server on `127.0.0.1` and an ephemeral port (or the
/// address of [`Options::addr`]), stopped (its listener and every connection
/// closed) when dropped.
///
/// Routes (any method, `HEAD` answered with the head alone; the query
/// string is ignored; anything else is 404):
///
/// | path | response |
/// |---|---|
/// | `/` | 200 `hello`, with `Content-Length` |
/// | `/echo` | 200, the request body streamed back, with the request's `Content-Type` |
/// | `/bytes/{n}` | 200, [`content`]`(n)` with `Content-Length`, in frames of [`FRAME_SIZE`] |
/// | `/chunked/{n}` | 200, [`content`]`(n)` without `Content-Length` (chunked in HTTP/1.1), in several frames |
/// | `/trailers` | 200, body `data` then the trailer `x-checksum: ok` (HTTP/1.1 sends trailers only to requests with `TE: trailers`) |
/// | `/status/{code}` | that status (200 to 999), empty body |
/// | `/slow/{ms}` | 200 `slow` after `ms` milliseconds |
/// | `/headers` | 200, the request headers as `name: value\n` lines, in order |
/// | `/method` | 200, the request method's name |
/// | `/redirect/{code}?to={location}` | that 3xx status, `Location: {location}` (the rest of the query, as it is) and the body `moved` |
/// | `/loop` | 302 to `/loop` |
/// | `/lines/{n}` | 200, `n` lines `event {i}` (from 0), one message a line |
/// | `/conn` | 200, the number of the connection it came on (0 for the first served), for any method |
/// | `/encoded/{coding}/{n}` | 200, [`compress::text`]`(n)` encoded in `coding` (one of [`compress::CODINGS`]) with its `Content-Encoding` and `Content-Length`, in frames of [`ENCODED_FRAME`] bytes |
/// | `/encoded/{coding}/{n}/chunked` | the same without `Content-Length` (chunked in HTTP/1.1), then the trailer `x-decoded-length: {n}` |
/// | `/encoded/{coding}/{n}/truncated` | the same, its first half only (with the `Content-Length` of that half) |
/// | `/encoded/{coding}/{n}/garbage` | the same, then bytes that are no part of the coding |
/// | `/encoded/{coding}/{n}/{status}` | the same with that status (the body dropped for 204 and 304; a `Content-Range` for 206) |
/// | `/bomb/{coding}/{mib}` | 200, [`compress::bomb`]`(coding, mib)`: `mib` MiB of zeros in `gzip`, `deflate` or `zstd`, chunked, in frames of 64 KiB |
///
/// [`compress::text`]: crate::compress::text
/// [`compress::CODINGS`]: crate::compress::CODINGS
/// [`compress::bomb`]: crate::compress::bomb
///
/// A server task that fails (a TLS handshake, an I/O error, a protocol error)
/// just ends its connection.
#[derive(Debug)]
pub struct HyperServer {
    addr: SocketAddr,
    tls: bool,
    stats: Arc<Stats>,
    _listener: Listener,
}

#[derive(Debug, Default)]
struct Stats {
    accepted: AtomicUsize,
    open: AtomicUsize,
    requests: AtomicUsize,
    resumed: AtomicUsize,
    /// Connections served so far: the next one's number.
    served: AtomicUsize,
}

impl HyperServer {
    /// Starts a server on the current tokio runtime (multi-thread or
    /// current-thread), or outside one on the testkit's
    /// [background](crate::runtime::background) runtime. It is ready to accept
    /// as soon as this returns: the listening socket is bound before the accept
    /// loop is spawned.
    ///
    /// Panics if `127.0.0.1:0` (or [`Options::addr`]) cannot be bound.
    pub fn start(options: Options) -> HyperServer {
        HyperServer::start_on(&crate::runtime::servers(), options)
    }

    /// Starts a server on the runtime behind `handle`, from any thread, async or
    /// not (benchmarks: keep a runtime in the background and pass its handle).
    pub fn start_on(handle: &Handle, options: Options) -> HyperServer {
        let stats = Arc::new(Stats::default());
        let tls = options.tls.is_some();
        let options = Arc::new(options);
        let conn_stats = Arc::clone(&stats);
        let addr = options
            .addr
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let listener = Listener::spawn_at(handle, addr, move |stream, tasks| {
            let options = Arc::clone(&options);
            let stats = Arc::clone(&conn_stats);
            stats.accepted.fetch_add(1, Ordering::SeqCst);
            stats.open.fetch_add(1, Ordering::SeqCst);
            async move {
                let _open = OnDrop(Some(|| {
                    stats.open.fetch_sub(1, Ordering::SeqCst);
                }));
                serve_connection(stream, options, Arc::clone(&stats), tasks).await;
            }
        });
        HyperServer {
            addr: listener.addr,
            tls,
            stats,
            _listener: listener,
        }
    }

    /// The address the server listens on (`127.0.0.1:port` unless
    /// [`Options::addr`] said otherwise).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:port{path}`, or `https://…` with TLS. `path` starts with
    /// `/`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// TCP connections accepted so far (counted in the accept loop, before any
    /// TLS handshake, so shortly after the client's `connect` returns).
    pub fn accepted(&self) -> usize {
        self.stats.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now (accepted and not yet closed by either side).
    pub fn open_connections(&self) -> usize {
        self.stats.open.load(Ordering::SeqCst)
    }

    /// Requests received so far, over all connections (counted when a request
    /// head reaches a route).
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// TLS handshakes so far that resumed an earlier session instead of doing a
    /// full handshake.
    pub fn resumed_handshakes(&self) -> usize {
        self.stats.resumed.load(Ordering::SeqCst)
    }
}

/// A boxed error, what hyper accepts from bodies.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body every route answers with.
type RouteBody = BoxBody<Bytes, BoxError>;

// ---------------------------------------------------------------------------
// Listening and task ownership, shared with `hostile` and `h2_frames`.

/// The tasks of one server: its connections and anything they spawn (hyper's
/// HTTP/2 streams). Aborted all at once when the server is dropped; once
/// aborted, spawning does nothing, so a connection racing the drop cannot leak
/// a task.
#[derive(Clone, Debug)]
pub(crate) struct Tasks {
    inner: Arc<Mutex<TaskSet>>,
    handle: Handle,
}

#[derive(Debug)]
struct TaskSet {
    set: JoinSet<()>,
    closed: bool,
}

impl Tasks {
    fn new(handle: Handle) -> Tasks {
        Tasks {
            inner: Arc::new(Mutex::new(TaskSet {
                set: JoinSet::new(),
                closed: false,
            })),
            handle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TaskSet> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spawns `task` on the server's runtime, unless the server is stopped.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.lock();
        if tasks.closed {
            return;
        }
        // Reap finished tasks so a long benchmark does not accumulate them.
        while tasks.set.try_join_next().is_some() {}
        tasks.set.spawn_on(task, &self.handle);
    }

    fn abort_all(&self) {
        let mut tasks = self.lock();
        tasks.closed = true;
        tasks.set.abort_all();
    }
}

/// A listening socket on `127.0.0.1:0` with its accept loop. Dropping it stops
/// the accept loop (closing the listening socket) and aborts every task of the
/// server (closing every connection).
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) addr: SocketAddr,
    /// A duplicate of the listening socket's descriptor, to stop listening
    /// synchronously on drop: the accept loop closes its descriptor only when
    /// the runtime gets round to dropping the aborted task.
    listening: std::net::TcpListener,
    accept: AbortHandle,
    tasks: Tasks,
}

impl Listener {
    /// Binds `127.0.0.1:0` and spawns the accept loop on `handle`'s runtime.
    /// `on_conn` runs in the accept loop for every accepted connection (count
    /// it there) and returns the connection's task.
    pub(crate) fn spawn<F, Fut>(handle: &Handle, on_conn: F) -> Listener
    where
        F: FnMut(TcpStream, Tasks) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Listener::spawn_at(handle, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), on_conn)
    }

    /// [`spawn`](Listener::spawn), listening on `addr`.
    pub(crate) fn spawn_at<F, Fut>(handle: &Handle, addr: SocketAddr, mut on_conn: F) -> Listener
    where
        F: FnMut(TcpStream, Tasks) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let std_listener =
            std::net::TcpListener::bind(addr).unwrap_or_else(|e| panic!("binding {addr}: {e}"));
        std_listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("making the listener non-blocking: {e}"));
        let addr = std_listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the listener's address: {e}"));
        let listening = std_listener
            .try_clone()
            .unwrap_or_else(|e| panic!("duplicating the listener: {e}"));
        let listener = {
            let _runtime = handle.enter();
            TcpListener::from_std(std_listener)
                .unwrap_or_else(|e| panic!("registering the listener with tokio: {e}"))
        };
        let tasks = Tasks::new(handle.clone());
        let conn_tasks = tasks.clone();
        let accept = handle
            .spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let task = on_conn(stream, conn_tasks.clone());
                            conn_tasks.spawn(task);
                        }
                        // Out of file descriptors, a connection reset before
                        // it was accepted...: wait a little, keep accepting.
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            })
            .abort_handle();
        Listener {
            addr,
            listening,
            accept,
            tasks,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // On Linux, shutting a listening socket down stops it listening at once:
        // new connections are refused, queued ones reset. Elsewhere this may
        // fail, and the socket closes when the aborted accept loop is dropped.
        let _ = socket2::SockRef::from(&self.listening).shutdown(std::net::Shutdown::Both);
        self.accept.abort();
        self.tasks.abort_all();
    }
}

/// Runs a closure when dropped.
struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// Hyper's executor for HTTP/2 streams: spawns into the server's [`Tasks`], so
/// they stop with the server.
#[derive(Clone)]
struct Exec(Tasks);

impl<F> hyper::rt::Executor<F> for Exec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(async move {
            fut.await;
        });
    }
}

// ---------------------------------------------------------------------------
// Idle tracking.

/// When a connection last did something, and how many of its requests are in
/// flight: what `idle_timeout` looks at.
struct Activity {
    base: Instant,
    last_nanos: std::sync::atomic::AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            base: Instant::now(),
            last_nanos: std::sync::atomic::AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_nanos.fetch_max(nanos, Ordering::SeqCst);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_nanos(self.last_nanos.load(Ordering::SeqCst))
    }

    /// Marks a request in flight until the returned guard is dropped.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.touch();
        InFlight(Arc::clone(self))
    }

    /// Completes once the connection has had no request in flight and received
    /// nothing for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            if self.in_flight.load(Ordering::SeqCst) > 0 {
                // The end of the request touches `last`: the next round
                // measures from there.
                tokio::time::sleep(timeout).await;
                continue;
            }
            let deadline = self.last() + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A request in flight; its response body holds it until hyper drops the body
/// (sent or abandoned).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

/// The connection's socket, noting every received byte in its [`Activity`].
struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------
// Connections.

/// What the routes of one connection share.
struct ConnState {
    /// Its number among the server's connections, in the order served.
    id: usize,
    options: Arc<Options>,
    stats: Arc<Stats>,
    activity: Arc<Activity>,
    /// Requests seen on this connection.
    requests: AtomicUsize,
    /// Asks the connection to shut down gracefully (HTTP/2 GOAWAY).
    goaway: Notify,
}

/// Serves one connection accepted elsewhere, over any byte stream (a simulated
/// network's, say), with the routes and [`Options`] of a [`HyperServer`], on the
/// current tokio runtime; returns when the connection ends. Tasks it spawns (the
/// HTTP/2 streams) end with it.
///
/// A [`HyperServer`] owns its listener, counts what it serves and binds a real
/// socket; this is the same server for one connection of a listener of your own.
///
/// Panics if called outside a tokio runtime.
pub async fn serve_io<I>(io: I, options: Arc<Options>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tasks = Tasks::new(Handle::current());
    serve_connection(io, options, Arc::new(Stats::default()), tasks).await;
}

async fn serve_connection<I>(stream: I, options: Arc<Options>, stats: Arc<Stats>, tasks: Tasks)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    activity.touch();
    let io = Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    };
    let idle_timeout = options.idle_timeout;
    let id = stats.served.fetch_add(1, Ordering::SeqCst);
    let conn = Arc::new(ConnState {
        id,
        options,
        stats,
        activity: Arc::clone(&activity),
        requests: AtomicUsize::new(0),
        goaway: Notify::new(),
    });
    let serve = async move {
        match conn.options.tls.clone() {
            None => serve_http(io, conn, tasks).await,
            Some(config) => {
                // A failed handshake just ends the connection.
                if let Ok(tls) = TlsAcceptor::from(config).accept(io).await {
                    if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                        conn.stats.resumed.fetch_add(1, Ordering::SeqCst);
                    }
                    serve_http(tls, conn, tasks).await;
                }
            }
        }
    };
    match idle_timeout {
        None => serve.await,
        // Dropping `serve` drops the socket: the connection closes.
        // Biased: polled in order, never in a random one, so a simulated run
        // replays exactly.
        Some(timeout) => tokio::select! {
            biased;
            _ = serve => {}
            _ = activity.idle_for(timeout) => {}
        },
    }
}

async fn serve_http<I>(io: I, conn: Arc<ConnState>, tasks: Tasks)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let options = &conn.options;
    let mut builder = auto::Builder::new(Exec(tasks));
    builder = match options.protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_only(),
        Protocol::Auto => builder,
    };
    builder
        .http1()
        .keep_alive(options.keep_alive)
        .timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    if let Some(max) = options.max_concurrent_streams {
        builder.http2().max_concurrent_streams(max);
    }
    let service_conn = Arc::clone(&conn);
    let service = service_fn(move |request| {
        let conn = Arc::clone(&service_conn);
        async move { Ok::<_, Infallible>(respond(request, conn).await) }
    });
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            biased;
            // An error (protocol, I/O) just ends the connection.
            _ = connection.as_mut() => return,
            _ = conn.goaway.notified(), if !shutting_down => {
                connection.as_mut().graceful_shutdown();
                shutting_down = true;
            }
        }
    }
}

/// Counts the request, applies `close_after_requests`, routes.
async fn respond(request: Request<Incoming>, conn: Arc<ConnState>) -> Response<Tracked> {
    let in_flight = conn.activity.begin();
    conn.stats.requests.fetch_add(1, Ordering::SeqCst);
    let nth = conn.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let close = conn
        .options
        .close_after_requests
        .is_some_and(|limit| nth >= limit);
    let version = request.version();
    if close && version == Version::HTTP_2 {
        conn.goaway.notify_one();
    }
    let head = request.method() == http::Method::HEAD;
    if let Some(delay) = conn.options.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = if request.uri().path() == "/conn" {
        text(StatusCode::OK, &conn.id.to_string())
    } else {
        route(request).await
    };
    if head {
        // The head of the response a GET would have, without its body: hyper
        // leaves that out in HTTP/1.1 but would send it in HTTP/2.
        *response.body_mut() = empty();
    }
    if close && version != Version::HTTP_2 {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response.map(|body| Tracked {
        inner: body,
        _in_flight: in_flight,
    })
}

/// A response body that keeps its request "in flight" until hyper drops it.
struct Tracked {
    inner: RouteBody,
    _in_flight: InFlight,
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked").finish_non_exhaustive()
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// ---------------------------------------------------------------------------
// Routes.

async fn route(request: Request<Incoming>) -> Response<RouteBody> {
    let path = request.uri().path().to_owned();
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    match (segments.next().unwrap_or(""), segments.next()) {
        ("", None) => text(StatusCode::OK, "hello"),
        ("echo", None) => echo(request),
        ("bytes", Some(n)) => match n.parse::<u64>() {
            Ok(n) => pattern(n, true),
            Err(_) => text(StatusCode::BAD_REQUEST, "bad length"),
        },
        ("chunked", Some(n)) => match n.parse::<u64>() {
            Ok(n) => pattern(n, false),
            Err(_) => text(StatusCode::BAD_REQUEST, "bad length"),
        },
        ("trailers", None) => trailers(),
        ("status", Some(code)) => match code.parse::<u16>().map(StatusCode::from_u16) {
            Ok(Ok(status)) if status.as_u16() >= 200 => {
                let mut response = Response::new(empty());
                *response.status_mut() = status;
                response
            }
            _ => text(StatusCode::BAD_REQUEST, "bad status"),
        },
        ("slow", Some(ms)) => match ms.parse::<u64>() {
            Ok(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                text(StatusCode::OK, "slow")
            }
            Err(_) => text(StatusCode::BAD_REQUEST, "bad delay"),
        },
        ("headers", None) => text(StatusCode::OK, &headers_text(request.headers())),
        ("encoded", Some(rest)) => {
            encoded(rest).unwrap_or_else(|| text(StatusCode::BAD_REQUEST, "bad encoding"))
        }
        ("bomb", Some(rest)) => {
            bomb(rest).unwrap_or_else(|| text(StatusCode::BAD_REQUEST, "bad bomb"))
        }
        ("method", None) => text(StatusCode::OK, request.method().as_str()),
        // `/redirect/CODE?to=LOCATION`: the location is the rest of the
        // query, as it is.
        ("redirect", Some(code)) => {
            let location = request.uri().query().and_then(|q| q.strip_prefix("to="));
            match (code.parse::<u16>().map(StatusCode::from_u16), location) {
                (Ok(Ok(status)), Some(location)) if status.is_redirection() => {
                    redirect(status, location)
                }
                _ => text(StatusCode::BAD_REQUEST, "bad redirect"),
            }
        }
        ("loop", None) => redirect(StatusCode::FOUND, "/loop"),
        ("lines", Some(n)) => match n.parse::<usize>() {
            Ok(n) => {
                let lines: String = (0..n).map(|i| format!("event {i}\n")).collect();
                text(StatusCode::OK, &lines)
            }
            Err(_) => text(StatusCode::BAD_REQUEST, "bad count"),
        },
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn redirect(status: StatusCode, location: &str) -> Response<RouteBody> {
    let mut response = text(status, "moved");
    match HeaderValue::from_str(location) {
        Ok(location) => {
            response
                .headers_mut()
                .insert(http::header::LOCATION, location);
            response
        }
        Err(_) => text(StatusCode::BAD_REQUEST, "bad location"),
    }
}

fn headers_text(headers: &HeaderMap) -> String {
    let mut out = String::new();
    for (name, value) in headers {
        out.push_str(name.as_str());
        out.push_str(": ");
        out.push_str(&String::from_utf8_lossy(value.as_bytes()));
        out.push('\n');
    }
    out
}

fn full(data: impl Into<Bytes>) -> RouteBody {
    Full::new(data.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn empty() -> RouteBody {
    Empty::new()
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn text(status: StatusCode, body: &str) -> Response<RouteBody> {
    let body = Bytes::copy_from_slice(body.as_bytes());
    let mut response = Response::new(empty());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    *response.body_mut() = full(body);
    response
}

fn echo(request: Request<Incoming>) -> Response<RouteBody> {
    let content_type = request.headers().get(CONTENT_TYPE).cloned();
    let body = request
        .into_body()
        .map_err(|e| Box::new(e) as BoxError)
        .boxed();
    let mut response = Response::new(body);
    if let Some(content_type) = content_type {
        response.headers_mut().insert(CONTENT_TYPE, content_type);
    }
    response
}

fn pattern(n: u64, with_length: bool) -> Response<RouteBody> {
    let frame = if with_length {
        FRAME_SIZE
    } else {
        // Several frames even for small bodies.
        usize::try_from(n.div_ceil(4))
            .unwrap_or(FRAME_SIZE)
            .clamp(1, FRAME_SIZE)
    };
    let body = Pattern {
        offset: 0,
        remaining: n,
        frame,
        exact: with_length,
    };
    let mut response = Response::new(body.boxed());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if with_length {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
    response
}

fn trailers() -> Response<RouteBody> {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("ok"));
    let body = Frames(
        [
            Frame::data(Bytes::from_static(b"da")),
            Frame::data(Bytes::from_static(b"ta")),
            Frame::trailers(trailers),
        ]
        .into(),
    );
    let mut response = Response::new(body.boxed());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(TRAILER, HeaderValue::from_static("x-checksum"));
    response
}

/// `/encoded/{coding}/{n}[/{variant}]`; `None` for a path it cannot serve.
fn encoded(rest: &str) -> Option<Response<RouteBody>> {
    let mut parts = rest.split('/');
    let coding = parts.next()?;
    if !crate::compress::CODINGS.contains(&coding) {
        return None;
    }
    let n: usize = parts.next()?.parse().ok()?;
    let variant = parts.next();
    let mut body = crate::compress::encode(coding, &crate::compress::text(n));
    let mut status = StatusCode::OK;
    let mut trailers = None;
    match variant {
        None => {}
        Some("chunked") => {
            let mut t = HeaderMap::new();
            t.insert("x-decoded-length", HeaderValue::from(n));
            trailers = Some(t);
        }
        Some("truncated") => body.truncate(body.len() / 2),
        Some("garbage") => body.extend_from_slice(b"no part of any coding"),
        Some(code) => status = StatusCode::from_u16(code.parse().ok()?).ok()?,
    }
    let len = body.len();
    let body = Bytes::from(body);
    let mut frames: std::collections::VecDeque<Frame<Bytes>> = (0..len)
        .step_by(ENCODED_FRAME)
        .map(|at| Frame::data(body.slice(at..(at + ENCODED_FRAME).min(len))))
        .collect();
    let chunked = trailers.is_some();
    frames.extend(trailers.map(Frame::trailers));
    if matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) {
        // Without content (hyper would send it in HTTP/2).
        frames.clear();
    }
    let mut response = Response::new(Frames(frames).boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(
        http::header::CONTENT_ENCODING,
        HeaderValue::from_str(crate::compress::header_name(coding)).ok()?,
    );
    if chunked {
        headers.insert(TRAILER, HeaderValue::from_static("x-decoded-length"));
    } else {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let range = format!("bytes 0-{}/{}", len.saturating_sub(1), len * 2);
        headers.insert(
            http::header::CONTENT_RANGE,
            HeaderValue::try_from(range).ok()?,
        );
    }
    Some(response)
}

/// `/bomb/{coding}/{mib}`; `None` for a path it cannot serve.
fn bomb(rest: &str) -> Option<Response<RouteBody>> {
    let (coding, mib) = rest.split_once('/')?;
    if !["gzip", "deflate", "zstd"].contains(&coding) {
        return None;
    }
    let mib: usize = mib.parse().ok().filter(|m| *m >= 2)?;
    let body = Bytes::from(crate::compress::bomb(coding, mib));
    let frames = (0..body.len())
        .step_by(FRAME_SIZE * 4)
        .map(|at| Frame::data(body.slice(at..(at + FRAME_SIZE * 4).min(body.len()))))
        .collect();
    let mut response = Response::new(Frames(frames).boxed());
    response.headers_mut().insert(
        http::header::CONTENT_ENCODING,
        HeaderValue::from_str(crate::compress::header_name(coding)).ok()?,
    );
    Some(response)
}

/// [`content`] repeated enough to slice any frame out of it without copying.
fn pattern_bytes() -> &'static Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    PATTERN.get_or_init(|| Bytes::from(content(FRAME_SIZE + PERIOD)))
}

/// [`content`] as a stream of frames, generated as it goes.
struct Pattern {
    offset: u64,
    remaining: u64,
    frame: usize,
    exact: bool,
}

impl Body for Pattern {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let len = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(self.frame);
        let start = (self.offset % PERIOD as u64) as usize;
        let data = pattern_bytes().slice(start..start + len);
        self.offset += len as u64;
        self.remaining -= len as u64;
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact {
            SizeHint::with_exact(self.remaining)
        } else {
            SizeHint::default()
        }
    }
}

/// A body made of a fixed list of frames (data, then maybe trailers).
struct Frames(std::collections::VecDeque<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}
