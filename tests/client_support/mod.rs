//! Helpers shared by the `client_*` integration tests: requests in one line, a
//! client trusting a test CA, polling for server-side state with a deadline,
//! checks that the pool holds no leaked lease, a tiny seeded RNG, and a raw
//! scripted server for the cases no testkit server covers.
//!
//! Every test file includes this module and uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use muxpool::tls::{Alpn, CaCertificates, Roots, TlsConfig};
use muxpool::{Body, Client, Error, Stats};
use muxpool_testkit::certs::Ca;
use tokio::task::JoinHandle;

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

/// `GET url`.
pub async fn get(client: &Client, url: impl AsRef<str>) -> Result<Response<Body>, Error> {
    client.send(request(Method::GET, url, Body::empty())).await
}

/// `GET url`, read whole: the status and the body. Panics on any error.
pub async fn get_bytes(client: &Client, url: impl AsRef<str>) -> (u16, Bytes) {
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
pub async fn get_text(client: &Client, url: impl AsRef<str>) -> String {
    let url = url.as_ref();
    let (status, body) = get_bytes(client, url).await;
    assert_eq!(status, 200, "GET {url}");
    String::from_utf8(body.to_vec()).expect("a UTF-8 body")
}

/// `GET url` `times` times, one after the other, expecting 200 and `body` each
/// time.
pub async fn get_text_times(client: &Client, url: impl AsRef<str>, times: usize, body: &str) {
    let url = url.as_ref();
    for i in 0..times {
        assert_eq!(get_text(client, url).await, body, "request {i}");
    }
}

/// [`get`] on a task of its own, with a clone of `client`.
pub fn spawn_get(client: &Client, url: String) -> JoinHandle<Result<Response<Body>, Error>> {
    let client = client.clone();
    tokio::spawn(async move { get(&client, url).await })
}

/// [`get_text`] on a task of its own, with a clone of `client`.
pub fn spawn_get_text(client: &Client, url: String) -> JoinHandle<String> {
    let client = client.clone();
    tokio::spawn(async move { get_text(&client, url).await })
}

/// Sends `n` GETs for `url` at once, each on its own task, and checks that
/// every one answers `expected`.
pub async fn get_text_concurrently(client: &Client, url: String, n: usize, expected: &str) {
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

/// A client trusting only `ca`.
pub fn client_trusting(ca: &Ca) -> Client {
    Client::builder()
        .tls(tls_trusting(ca))
        .build()
        .expect("a valid client")
}

/// Polls `condition` every few milliseconds until it holds; panics with `what`
/// after [`DEADLINE`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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
pub async fn assert_quiescent(client: &Client) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let stats = client.stats();
        if is_quiescent(&stats) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pool still holds leases or connects: {stats:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs `future`, failing the test if it takes longer than `limit`.
pub async fn within<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(out) => out,
        Err(_) => panic!("{what} took longer than {limit:?}"),
    }
}

/// A port on 127.0.0.1 with nothing listening: bound, then closed.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    port
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

/// A small deterministic RNG (xorshift64*), so a failing seed can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

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
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let port = listener.local_addr().expect("address").port();
            let accepted = Arc::new(AtomicUsize::new(0));
            let answered = Arc::new(AtomicUsize::new(0));
            let (acc, ans) = (Arc::clone(&accepted), Arc::clone(&answered));
            let task = tokio::spawn(async move {
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
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await?;
            served += 1;
            answered.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A one-shot raw server: accepts one connection, reads one request (head and
/// body, by `Content-Length` or up to the last chunk and its trailers), answers
/// `204`, and returns the request's bytes exactly as they arrived.
pub async fn capture_one_request() -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
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
