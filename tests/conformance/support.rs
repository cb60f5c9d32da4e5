//! Helpers shared by the client conformance tests: the conformance harness
//! that runs every test on every adapter, requests in one line, a client
//! trusting a test CA, polling for server-side state with a deadline, checks
//! that the pool holds no leaked lease, a tiny seeded RNG, and a raw scripted
//! server for the cases no testkit server covers.
//!
//! # One suite, every runtime
//!
//! A test is an `async fn name<R: Adapter>()` that makes its clients with
//! `Client::<R>` and spawns with [`spawn::<R, _>`](spawn); its module lists its
//! tests once in [`conformance!`], which runs each on every [`Adapter`]:
//! `module::on_tokio::name`, `module::on_smol::name`. A new adapter joins the
//! whole suite with one line in that macro (and its `Adapter` impl below).
//!
//! The servers (hyper, hostile, raw scripted ones) are built on tokio and run
//! on the testkit's background runtime whenever the test's own runtime is not
//! tokio; the helpers here keep time with `async-io`'s timers, which work under
//! any executor. Nothing on the client's side touches tokio's runtime unless
//! the adapter is tokio's.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{AbortHandle, Abortable, Either};
use http::{Method, Request, Response};
use muxpool::client::Client;
use muxpool::runtime::Runtime;
use muxpool::tls::{Alpn, CaCertificates, Roots, TlsConfig};
use muxpool::{Body, Error, Stats};
use muxpool_testkit::certs::Ca;

pub mod capture;

/// A runtime the whole client suite runs on.
pub trait Adapter: Runtime + Default {
    /// Runs `future` to its end on this runtime, from a test's thread.
    fn block_on<F: Future>(future: F) -> F::Output;
}

/// tokio: a multi-thread runtime of two workers for each test, so the client
/// is driven from several threads at once.
impl Adapter for muxpool::Tokio {
    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(future)
    }
}

/// smol: the test on its own thread, the client's tasks on smol's global
/// executor.
impl Adapter for muxpool_smol::Smol {
    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }
}

/// Runs every listed test (an `async fn name<R: Adapter>()` of the module) on
/// every adapter, as `on_tokio::name`, `on_smol::name`, ... within that module.
macro_rules! conformance {
    (@on $module:ident, $runtime:ty; $($test:ident),*) => {
        mod $module {
            $(
                #[test]
                fn $test() {
                    $crate::support::run::<$runtime, _>(super::$test::<$runtime>());
                }
            )*
        }
    };
    ($($test:ident),* $(,)?) => {
        $crate::support::conformance!(@on on_tokio, muxpool::Tokio; $($test),*);
        $crate::support::conformance!(@on on_smol, muxpool_smol::Smol; $($test),*);
    };
}
pub(crate) use conformance;

/// The longest one test may run before it fails (instead of hanging the suite).
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Runs one test on `R`, failing it after [`TEST_LIMIT`].
pub fn run<R: Adapter, F: Future<Output = ()>>(test: F) {
    R::block_on(within(TEST_LIMIT, "the test", test));
}

/// A task spawned by a test on its adapter's runtime: awaiting it gives its
/// output, or an error if it panicked or was aborted.
pub struct Task<T> {
    output: tokio::sync::oneshot::Receiver<T>,
    abort: AbortHandle,
    finished: Arc<AtomicBool>,
}

/// Why a [`Task`] gave no output.
#[derive(Debug)]
pub struct TaskError {
    cancelled: bool,
}

impl TaskError {
    /// The task was aborted (rather than having panicked).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }
}

impl<T> Task<T> {
    /// Stops the task: its future is dropped at its next poll.
    pub fn abort(&self) {
        self.abort.abort();
    }

    /// Whether the task has ended: returned, panicked or been aborted.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.output).poll(cx).map(|output| {
            output.map_err(|_| TaskError {
                cancelled: self.abort.is_aborted(),
            })
        })
    }
}

/// Runs `future` on a task of `R`'s.
pub fn spawn<R: Adapter, T: Send + 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> Task<T> {
    let (abort, registration) = AbortHandle::new_pair();
    let (tx, output) = tokio::sync::oneshot::channel();
    let finished = Arc::new(AtomicBool::new(false));
    let ended = Finished(Arc::clone(&finished));
    R::default().spawn(async move {
        let _ended = ended;
        if let Ok(out) = Abortable::new(future, registration).await {
            let _ = tx.send(out);
        }
    });
    Task {
        output,
        abort,
        finished,
    }
}

/// Marks a [`Task`] finished when its future is dropped, however it ended.
struct Finished(Arc<AtomicBool>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Waits for `duration`, on any runtime.
pub async fn sleep(duration: Duration) {
    async_io::Timer::after(duration).await;
}

/// `future`'s output, or `None` if it takes longer than `limit` (it is then
/// dropped), on any runtime.
pub async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let timer = async_io::Timer::after(limit);
    match futures_util::future::select(pin!(future), timer).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

/// The longest any helper waits for a condition before failing the test.
pub const DEADLINE: Duration = Duration::from_secs(3);

/// A request with method, URL and body.
pub fn request(method: Method, url: impl AsRef<str>, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(url.as_ref())
        .body(body.into())
        .expect("a valid request")
}

/// A `GET url` request that may take `limit` at most (its
/// [`RequestTimeout`](muxpool::RequestTimeout)).
pub fn get_within(url: impl AsRef<str>, limit: Duration) -> Request<Body> {
    let mut req = request(Method::GET, url, Body::empty());
    req.extensions_mut().insert(muxpool::RequestTimeout(limit));
    req
}

/// `GET url`.
pub async fn get<R: Runtime>(
    client: &Client<R>,
    url: impl AsRef<str>,
) -> Result<Response<Body>, Error> {
    client.send(request(Method::GET, url, Body::empty())).await
}

/// `GET url`, read whole: the status and the body. Panics on any error.
pub async fn get_bytes<R: Runtime>(client: &Client<R>, url: impl AsRef<str>) -> (u16, Bytes) {
    let url = url.as_ref();
    let response = get(client, url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e:#}"));
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: reading the body: {e:#}"));
    (status, body)
}

/// `GET url`, expecting 200 and a UTF-8 body, which is returned.
pub async fn get_text<R: Runtime>(client: &Client<R>, url: impl AsRef<str>) -> String {
    let url = url.as_ref();
    let (status, body) = get_bytes(client, url).await;
    assert_eq!(status, 200, "GET {url}");
    String::from_utf8(body.to_vec()).expect("a UTF-8 body")
}

/// `GET url` `times` times, one after the other, expecting 200 and `body` each
/// time.
pub async fn get_text_times<R: Runtime>(
    client: &Client<R>,
    url: impl AsRef<str>,
    times: usize,
    body: &str,
) {
    let url = url.as_ref();
    for i in 0..times {
        assert_eq!(get_text(client, url).await, body, "request {i}");
    }
}

/// [`get`] on a task of its own, with a clone of `client`.
pub fn spawn_get<R: Adapter>(
    client: &Client<R>,
    url: String,
) -> Task<Result<Response<Body>, Error>> {
    let client = client.clone();
    spawn::<R, _>(async move { get(&client, url).await })
}

/// [`get_text`] on a task of its own, with a clone of `client`.
pub fn spawn_get_text<R: Adapter>(client: &Client<R>, url: String) -> Task<String> {
    let client = client.clone();
    spawn::<R, _>(async move { get_text(&client, url).await })
}

/// Sends `n` GETs for `url` at once, each on its own task, and checks that
/// every one answers `expected`.
pub async fn get_text_concurrently<R: Adapter>(
    client: &Client<R>,
    url: String,
    n: usize,
    expected: &str,
) {
    let tasks: Vec<_> = (0..n)
        .map(|_| spawn_get_text(client, url.clone()))
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("the task ran"), expected);
    }
}

/// A TLS configuration trusting only `ca`, offering HTTP/1.1.
pub fn tls_trusting(ca: &Ca) -> TlsConfig {
    tls_trusting_with(ca, Alpn::Http1Only)
}

/// A TLS configuration trusting only `ca`, offering `alpn`.
pub fn tls_trusting_with(ca: &Ca, alpn: Alpn) -> TlsConfig {
    TlsConfig::builder()
        .roots(Roots::CustomOnly)
        .add_ca(CaCertificates::from_pem(ca.pem()).expect("the test CA parses"))
        .alpn(alpn)
        .build()
        .expect("a valid TLS configuration")
}

/// A fresh directory for a test's certificate files, its own even when the
/// same test runs at once on another adapter; the caller removes it.
pub fn cert_dir(name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("muxpool-{name}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// An HTTP/1.1 server over TLS, its certificate issued by `ca` for
/// `localhost` and `127.0.0.1`, offering only `http/1.1`.
pub fn tls_http1_server(ca: &Ca) -> muxpool_testkit::hyper_server::HyperServer {
    use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};
    HyperServer::start(Options {
        tls: Some(muxpool_testkit::certs::server_config(
            &ca.leaf(&["localhost", "127.0.0.1"]),
            &[b"http/1.1"],
        )),
        protocol: Protocol::Http1,
        ..Options::default()
    })
}

/// A client trusting only `ca`.
pub fn client_trusting<R: Adapter>(ca: &Ca) -> Client<R> {
    Client::<R>::builder()
        .tls(tls_trusting(ca))
        .build()
        .expect("a valid client")
}

/// A client builder whose pool has these health checks.
pub fn builder_checking<R: Adapter>(
    health: muxpool::sans_io::HealthCheck,
) -> muxpool::client::ClientBuilder<R> {
    Client::<R>::builder().health_check(health)
}

/// An h2c server that answers the first stream of each connection and then
/// hangs (its socket open, its PINGs unanswered), and an h2c client that
/// checks an idle connection after 50 ms and gives the check 200 ms.
pub fn hanging_peer_and_checking_client<R: Adapter>() -> (raw_h2::RawH2, Client<R>) {
    let server = raw_h2::RawH2::stalling_after(1, |_, _request, mut respond| {
        raw_h2::ok(&mut respond, b"ok")
    });
    let client = h2c_client_checking::<R>(muxpool::sans_io::HealthCheck::new(
        Some(Duration::from_millis(50)),
        Duration::from_millis(200),
    ));
    (server, client)
}

/// An h2c server that refuses every stream (REFUSED_STREAM), and an h2c
/// client whose retry budget has room for 3 retries (a floor of 1 a second
/// over 3 s, no share of requests).
pub fn refusing_peer_and_budgeted_client<R: Adapter>() -> (raw_h2::RawH2, Client<R>) {
    let server = raw_h2::RawH2::start(|_, _request, mut respond| {
        respond.send_reset(h2::Reason::REFUSED_STREAM);
    });
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .retry_budget(muxpool::RetryBudget::new(0, 1, Duration::from_secs(3)))
        .build()
        .expect("a valid configuration");
    (server, client)
}

/// An h2c (prior knowledge) client with these health checks.
pub fn h2c_client_checking<R: Adapter>(health: muxpool::sans_io::HealthCheck) -> Client<R> {
    builder_checking::<R>(health)
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration")
}

/// Polls `condition` every few milliseconds until it holds; panics with `what`
/// after [`DEADLINE`].
pub async fn wait_until(what: &str, condition: impl FnMut() -> bool) {
    wait_for(DEADLINE, what, condition).await;
}

/// Polls `condition` every few milliseconds until it holds; panics with `what`
/// after `limit`.
pub async fn wait_for(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(5)).await;
    }
}

/// `tasks` tasks each sending `GET url` until `stop` is set (or `per_task`
/// requests each, if given), each request with `limit` to finish; the
/// failures, as text.
pub async fn load<R: Adapter>(
    client: &Client<R>,
    url: &str,
    tasks: usize,
    per_task: Option<usize>,
    stop: &Arc<AtomicBool>,
    limit: Duration,
) -> Vec<String> {
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (client, url) = (client.clone(), url.to_owned());
        let stop = Arc::clone(stop);
        handles.push(spawn::<R, _>(async move {
            let mut failures = Vec::new();
            let mut sent = 0;
            while !stop.load(Ordering::SeqCst) && per_task.is_none_or(|n| sent < n) {
                sent += 1;
                match client.send(get_within(&url, limit)).await {
                    Ok(response) if response.status() == 200 => {
                        if let Err(e) = response.into_body().bytes().await {
                            failures.push(format!("reading the body: {e:#}"));
                        }
                    }
                    Ok(response) => failures.push(format!("status {}", response.status())),
                    Err(e) => failures.push(format!("{e:#}")),
                }
                if per_task.is_none() {
                    sleep(Duration::from_millis(2)).await;
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for handle in handles {
        failures.extend(handle.await.expect("a load task"));
    }
    failures
}

/// `tasks` tasks each sending `each` GETs to `url`, one after another:
/// every one must succeed.
pub async fn load_all<R: Adapter>(client: &Client<R>, url: &str, tasks: usize, each: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let failures = load(
        client,
        url,
        tasks,
        Some(each),
        &stop,
        Duration::from_secs(5),
    )
    .await;
    assert!(failures.is_empty(), "{failures:?}");
}

/// Whether the pool holds nothing for anybody: no lease out, nobody waiting, no
/// connect in flight, every open connection idle.
pub fn is_quiescent(stats: &Stats) -> bool {
    stats.busy == 0
        && stats.leases == 0
        && stats.waiting == 0
        && stats.connecting == 0
        && stats.draining == 0
        && stats.open == stats.idle
}

/// Waits until the client's pool is quiescent (see [`is_quiescent`]); panics
/// with the stats after [`DEADLINE`].
pub async fn assert_quiescent<R: Runtime>(client: &Client<R>) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let stats = client.stats();
        if is_quiescent(&stats) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the pool still holds leases or connects: {stats:#?}"
        );
        sleep(Duration::from_millis(5)).await;
    }
}

/// Runs `future`, failing the test if it takes longer than `limit`.
pub async fn within<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    match timeout(limit, future).await {
        Some(out) => out,
        None => panic!("{what} took longer than {limit:?}"),
    }
}

/// A port on 127.0.0.1 with nothing listening: bound, then closed.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    port
}

/// What the operating system says of a connect to `port` on 127.0.0.1, where
/// nothing listens: the innermost cause of a refused connect.
pub fn refused(port: u16) -> String {
    std::net::TcpStream::connect(("127.0.0.1", port))
        .expect_err("nothing listens")
        .to_string()
}

/// `error` names the origin `scheme://127.0.0.1:port`.
pub fn assert_origin(error: &muxpool::Error, scheme: &str, port: u16) {
    let origin = error.origin().expect("the error names its origin");
    assert_eq!(
        (origin.scheme(), origin.host(), origin.port()),
        (scheme, "127.0.0.1", port),
        "{error}"
    );
    assert_eq!(origin.to_string(), format!("{scheme}://127.0.0.1:{port}"));
}

/// Every cause of `error`, outermost first, as text.
pub fn causes(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        out.push(cause.to_string());
        next = cause.source();
    }
    out
}

/// Whether some cause of `error` is an `io::Error` of kind `kind`.
pub fn has_io_cause(error: &(dyn std::error::Error + 'static), kind: std::io::ErrorKind) -> bool {
    let mut next = error.source();
    while let Some(cause) = next {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
        {
            return true;
        }
        next = cause.source();
    }
    false
}

/// The small seeded RNG of the testkit, so a failing seed can be replayed.
pub use muxpool_testkit::rng::Rng;

/// A request body streamed in frames of `frame` bytes of
/// [`content`](muxpool_testkit::hyper_server::content), `len` bytes in all,
/// announcing its exact length (`Content-Length`) or not (chunked). Its first
/// frame is not ready at once, so the client cannot take it whole.
pub struct PatternBody {
    offset: usize,
    len: usize,
    frame: usize,
    exact: bool,
    yielded: bool,
}

impl PatternBody {
    pub fn new(len: usize, frame: usize, exact: bool) -> PatternBody {
        PatternBody {
            offset: 0,
            len,
            frame,
            exact,
            yielded: false,
        }
    }
}

impl http_body::Body for PatternBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        // Pending once before the first frame (and every 16th), like a body
        // produced by another task.
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        if self.offset >= self.len {
            return std::task::Poll::Ready(None);
        }
        let n = self.frame.min(self.len - self.offset);
        let data: Vec<u8> = (self.offset..self.offset + n)
            .map(muxpool_testkit::hyper_server::byte_at)
            .collect();
        self.offset += n;
        if (self.offset / self.frame) % 16 == 0 {
            self.yielded = false;
        }
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(data)))))
    }

    fn is_end_stream(&self) -> bool {
        self.offset >= self.len
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.exact {
            http_body::SizeHint::with_exact((self.len - self.offset) as u64)
        } else {
            http_body::SizeHint::default()
        }
    }
}

/// A listening socket on 127.0.0.1 for a raw server, and its port; the server
/// takes it into tokio on the testkit's [server
/// runtime](muxpool_testkit::runtime::servers).
pub fn listen() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let port = listener.local_addr().expect("local address").port();
    (listener, port)
}

/// A raw HTTP/1.1 server for exact scenarios: on connection `i` (counted from
/// 0) it answers `answers(i)` requests with `200 ok` (keep-alive; `GET /slow`
/// after 100 ms), then reads the head of the next request and closes without
/// answering: a server that closes an idle keep-alive connection just as a
/// request arrives.
pub mod scripted {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    pub struct Scripted {
        pub port: u16,
        accepted: Arc<AtomicUsize>,
        answered: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Scripted {
        pub async fn start(answers: fn(usize) -> usize) -> Scripted {
            let (listener, port) = super::listen();
            let accepted = Arc::new(AtomicUsize::new(0));
            let answered = Arc::new(AtomicUsize::new(0));
            let (acc, ans) = (Arc::clone(&accepted), Arc::clone(&answered));
            let task = muxpool_testkit::runtime::servers().spawn(async move {
                let listener = TcpListener::from_std(listener).expect("a tokio listener");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let i = acc.fetch_add(1, Ordering::SeqCst);
                    let ans = Arc::clone(&ans);
                    tokio::spawn(async move {
                        let _ = serve(stream, answers(i), &ans).await;
                    });
                }
            });
            Scripted {
                port,
                accepted,
                answered,
                task,
            }
        }

        pub fn url(&self, path: &str) -> String {
            format!("http://127.0.0.1:{}{path}", self.port)
        }

        pub fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }

        /// Requests answered, over every connection.
        pub fn answered(&self) -> usize {
            self.answered.load(Ordering::SeqCst)
        }
    }

    impl Drop for Scripted {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await?;
        buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    async fn serve(
        mut stream: TcpStream,
        answers: usize,
        answered: &AtomicUsize,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut served = 0;
        loop {
            // The request head.
            let end = loop {
                if let Some(end) = find(&buf, b"\r\n\r\n") {
                    break end;
                }
                if !fill(&mut stream, &mut buf).await? {
                    return Ok(());
                }
            };
            if served >= answers {
                // Close without answering (FIN; the rest of the request, if
                // any, is left unread).
                return stream.shutdown().await;
            }
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            buf.drain(..end + 4);
            // The body: Content-Length, or chunked up to the last chunk.
            if head.contains("transfer-encoding: chunked") {
                while find(&buf, b"0\r\n\r\n").is_none() {
                    if !fill(&mut stream, &mut buf).await? {
                        return Ok(());
                    }
                }
                let end = find(&buf, b"0\r\n\r\n").expect("found above");
                buf.drain(..end + 5);
            } else if let Some(line) = head.lines().find_map(|l| l.strip_prefix("content-length:"))
            {
                let len: usize = line.trim().parse().unwrap_or(0);
                while buf.len() < len {
                    if !fill(&mut stream, &mut buf).await? {
                        return Ok(());
                    }
                }
                buf.drain(..len);
            }
            if head.starts_with("get /slow") {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            // Counted before it is written: a client may read the answer and
            // look at the count before this task runs again.
            served += 1;
            answered.fetch_add(1, Ordering::SeqCst);
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await?;
        }
    }
}

/// A one-shot raw server: accepts one connection, reads one request (head and
/// body, by `Content-Length` or up to the last chunk and its trailers), answers
/// `204`, and returns the request's bytes exactly as they arrived.
pub async fn capture_one_request() -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (listener, port) = listen();
    let url = format!("http://127.0.0.1:{port}");
    let task = muxpool_testkit::runtime::servers().spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let complete = |buf: &[u8]| -> bool {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                return false;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body = &buf[end + 4..];
            if head.contains("transfer-encoding: chunked") {
                // The last chunk, then trailers up to an empty line.
                body.windows(3)
                    .position(|w| w == b"0\r\n")
                    .is_some_and(|at| {
                        (at == 0 || body[at - 1] == b'\n')
                            && body[at..].windows(4).any(|w| w == b"\r\n\r\n")
                    })
            } else {
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap_or(0));
                body.len() >= len
            }
        };
        while !complete(&buf) {
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the client closed mid-request");
            buf.extend_from_slice(&chunk[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .expect("write");
        buf
    });
    (url, task)
}

/// A raw HTTP/2 server (h2c, prior knowledge) on the `h2` crate's server side,
/// for exchanges no testkit server makes: each stream goes to `answer` with
/// its number on its connection (from 1), its request and its respond handle.
pub mod raw_h2 {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use bytes::Bytes;
    use h2::server::SendResponse;
    use h2::RecvStream;

    /// What a [`RawH2`] server does with one stream.
    pub type Answer = fn(usize, http::Request<RecvStream>, SendResponse<Bytes>);

    pub struct RawH2 {
        pub url: String,
        streams: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl RawH2 {
        pub fn start(answer: Answer) -> RawH2 {
            RawH2::serve(answer, usize::MAX)
        }

        /// A server that answers `streams` streams on each connection, then
        /// stops reading it (no more frames handled, PINGs unanswered) while
        /// keeping its socket open: a peer that hangs.
        pub fn stalling_after(streams: usize, answer: Answer) -> RawH2 {
            RawH2::serve(answer, streams)
        }

        fn serve(answer: Answer, stall_after: usize) -> RawH2 {
            let (listener, port) = super::listen();
            let streams = Arc::new(AtomicUsize::new(0));
            let counted = Arc::clone(&streams);
            let task = muxpool_testkit::runtime::servers().spawn(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                while let Ok((tcp, _)) = listener.accept().await {
                    let counted = Arc::clone(&counted);
                    tokio::spawn(async move {
                        let Ok(mut conn) = h2::server::handshake(tcp).await else {
                            return;
                        };
                        let mut seen = 0;
                        while let Some(Ok((request, respond))) = conn.accept().await {
                            counted.fetch_add(1, Ordering::SeqCst);
                            seen += 1;
                            answer(seen, request, respond);
                            if seen == stall_after {
                                // Long enough to send the answer, then never
                                // again.
                                let flush = std::time::Duration::from_millis(20);
                                let _ = tokio::time::timeout(flush, conn.accept()).await;
                                let _held = conn;
                                std::future::pending::<()>().await;
                                return;
                            }
                        }
                    });
                }
            });
            RawH2 {
                url: format!("http://127.0.0.1:{port}/"),
                streams,
                task,
            }
        }

        /// Streams received, over every connection.
        pub fn streams(&self) -> usize {
            self.streams.load(Ordering::SeqCst)
        }
    }

    impl Drop for RawH2 {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// Answers `200` with `body` and ends the stream.
    pub fn ok(respond: &mut SendResponse<Bytes>, body: &'static [u8]) {
        if let Ok(mut send) = respond.send_response(http::Response::new(()), false) {
            let _ = send.send_data(Bytes::from_static(body), true);
        }
    }
}
