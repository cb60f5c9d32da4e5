//! Self-tests of the in-process hyper server: every route over HTTP/1.1 and
//! HTTP/2, plain and TLS, and each option (keep-alive, close after N requests,
//! idle timeout, stream limit), through hyper's client or raw TCP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, TE, TRANSFER_ENCODING};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use muxpool_testkit::certs::{self, Ca};
use muxpool_testkit::hyper_server::{byte_at, content, HyperServer, Options, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support;

const WAIT: Duration = Duration::from_secs(5);

/// A client connection, HTTP/1.1 or HTTP/2 (prior knowledge or ALPN).
enum Client {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Client {
    async fn h1<T>(io: T) -> (Client, tokio::task::JoinHandle<()>)
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .unwrap();
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        (Client::H1(sender), task)
    }

    async fn h2<T>(io: T) -> (Client, tokio::task::JoinHandle<()>)
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .unwrap();
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        (Client::H2(sender), task)
    }

    async fn connect(addr: SocketAddr, h2: bool) -> (Client, tokio::task::JoinHandle<()>) {
        let stream = TcpStream::connect(addr).await.unwrap();
        if h2 {
            Client::h2(stream).await
        } else {
            Client::h1(stream).await
        }
    }

    async fn send(&mut self, request: Request<Full<Bytes>>) -> hyper::Result<Response<Incoming>> {
        match self {
            Client::H1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
            Client::H2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
        }
    }

    async fn get(&mut self, path: &str) -> (Response<()>, Bytes) {
        self.request(get(path)).await
    }

    async fn request(&mut self, request: Request<Full<Bytes>>) -> (Response<()>, Bytes) {
        let response = tokio::time::timeout(WAIT, self.send(request))
            .await
            .expect("response in time")
            .expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        (Response::from_parts(parts, ()), body)
    }
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("http://localhost{path}"))
        .header(HOST, "localhost")
        .body(Full::default())
        .unwrap()
}

fn post(path: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::post(format!("http://localhost{path}"))
        .header(HOST, "localhost")
        .header(CONTENT_TYPE, "application/x-test")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

async fn check_routes(client: &mut Client, h2: bool) {
    let (response, body) = client.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, "hello");
    assert_eq!(response.headers()[CONTENT_LENGTH], "5");

    let (response, body) = client.request(post("/echo", b"echo me")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, "echo me");
    assert_eq!(response.headers()[CONTENT_TYPE], "application/x-test");

    let (response, body) = client.get("/bytes/100000").await;
    assert_eq!(response.headers()[CONTENT_LENGTH], "100000");
    assert_eq!(body, content(100_000));

    let (response, body) = client.get("/chunked/1000").await;
    assert!(response.headers().get(CONTENT_LENGTH).is_none());
    if !h2 {
        assert_eq!(response.headers()[TRANSFER_ENCODING], "chunked");
    }
    assert_eq!(body, content(1000));

    let mut request = get("/trailers");
    request
        .headers_mut()
        .insert(TE, "trailers".parse().unwrap());
    let response = client.send(request).await.unwrap();
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-checksum"], "ok");
    assert_eq!(collected.to_bytes(), "data");

    for code in [204, 304, 404, 503] {
        let (response, body) = client.get(&format!("/status/{code}")).await;
        assert_eq!(response.status().as_u16(), code);
        assert!(body.is_empty());
    }

    let started = Instant::now();
    let (_, body) = client.get("/slow/50").await;
    assert_eq!(body, "slow");
    assert!(started.elapsed() >= Duration::from_millis(50));

    let mut request = get("/headers");
    request
        .headers_mut()
        .insert("x-probe", "probe value".parse().unwrap());
    let (_, body) = client.request(request).await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("x-probe: probe value\n"), "{text}");
    if !h2 {
        assert!(text.contains("host: localhost\n"), "{text}");
    }

    let (_, body) = client.request(post("/method", b"")).await;
    assert_eq!(body, "POST");

    let (response, _) = client.get("/nowhere").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

const ROUTE_REQUESTS: usize = 13;

#[tokio::test]
async fn routes_over_http1() {
    let server = HyperServer::start(Options::default());
    let (mut client, _conn) = Client::connect(server.addr(), false).await;
    check_routes(&mut client, false).await;
    assert_eq!(server.accepted(), 1);
    assert_eq!(server.requests(), ROUTE_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_over_http2_with_prior_knowledge() {
    for protocol in [Protocol::Http2, Protocol::Auto] {
        let server = HyperServer::start(Options {
            protocol,
            ..Options::default()
        });
        let (mut client, _conn) = Client::connect(server.addr(), true).await;
        check_routes(&mut client, true).await;
        assert_eq!(server.accepted(), 1);
        assert_eq!(server.requests(), ROUTE_REQUESTS);
    }
}

#[tokio::test]
async fn http1_only_refuses_http2() {
    let server = HyperServer::start(Options {
        protocol: Protocol::Http1,
        ..Options::default()
    });
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let result = tokio::time::timeout(WAIT, sender.send_request(get("/")))
        .await
        .unwrap();
    assert!(result.is_err());
}

async fn tls_connect(
    server: &HyperServer,
    ca: &Ca,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(certs::client_config(ca, alpn));
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    connector
        .connect("localhost".try_into().unwrap(), stream)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_alpn_speaks_what_was_negotiated() {
    let ca = Ca::new("testkit CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let server = HyperServer::start(Options {
        tls: Some(certs::server_config(&leaf, &[b"h2", b"http/1.1"])),
        ..Options::default()
    });
    assert!(server.url("/x").starts_with("https://127.0.0.1:"));

    let tls = tls_connect(&server, &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut client, _conn) = Client::h2(tls).await;
    let (response, body) = client.get("/bytes/40000").await;
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(body, content(40_000));

    let tls = tls_connect(&server, &ca, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut client, _conn) = Client::h1(tls).await;
    let (response, body) = client.get("/").await;
    assert_eq!(response.version(), http::Version::HTTP_11);
    assert_eq!(body, "hello");

    assert_eq!(server.accepted(), 2);
    assert_eq!(server.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_in_order() {
    let server = HyperServer::start(Options::default());
    let (mut client, _conn) = Client::connect(server.addr(), false).await;
    let n = 16 * 1024 * 1024 + 7;
    let response = client.send(get(&format!("/bytes/{n}"))).await.unwrap();
    assert_eq!(response.headers()[CONTENT_LENGTH], n.to_string().as_str());
    let mut body = response.into_body();
    let mut at = 0;
    let mut frames = 0;
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        assert!(data.iter().enumerate().all(|(i, &b)| b == byte_at(at + i)));
        at += data.len();
        frames += 1;
    }
    assert_eq!(at, n);
    assert!(frames > 1);
}

/// Sends `request` on a raw socket and reads until the server closes it (or
/// `WAIT` passes).
async fn read_to_close(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, false),
        }
    }
}

async fn read_until(stream: &mut TcpStream, got: &mut Vec<u8>, end: &[u8]) {
    let mut buf = [0; 4096];
    while !got.windows(end.len()).any(|w| w == end) {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("data in time")
            .expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(got));
        got.extend_from_slice(&buf[..n]);
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[tokio::test]
async fn keep_alive_off_closes_after_each_response() {
    let server = HyperServer::start(Options {
        keep_alive: false,
        ..Options::default()
    });
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(GET).await.unwrap();
    let (got, closed) = read_to_close(&mut stream).await;
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(text.ends_with("hello"));
    assert!(closed);
}

#[tokio::test]
async fn close_after_requests_over_http1() {
    let server = HyperServer::start(Options {
        close_after_requests: Some(2),
        ..Options::default()
    });
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(GET).await.unwrap();
    let mut got = Vec::new();
    read_until(&mut stream, &mut got, b"hello").await;
    assert!(!String::from_utf8_lossy(&got)
        .to_ascii_lowercase()
        .contains("connection: close"));
    stream.write_all(GET).await.unwrap();
    let (got, closed) = read_to_close(&mut stream).await;
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(text.contains("connection: close"), "{text}");
    assert!(text.ends_with("hello"));
    assert!(closed);
    assert_eq!(server.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_after_requests_over_http2_sends_goaway() {
    let server = HyperServer::start(Options {
        protocol: Protocol::Http2,
        close_after_requests: Some(2),
        ..Options::default()
    });
    let (mut client, conn) = Client::connect(server.addr(), true).await;
    client.get("/").await;
    let (_, body) = client.get("/slow/50").await;
    assert_eq!(body, "slow");
    // GOAWAY, then the server closes: the client connection ends.
    tokio::time::timeout(WAIT, conn)
        .await
        .expect("the connection closes")
        .unwrap();
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn idle_timeout_closes_idle_connections_only() {
    let idle = Duration::from_millis(200);
    let server = HyperServer::start(Options {
        idle_timeout: Some(idle),
        ..Options::default()
    });
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    // A request longer than the idle timeout is not cut.
    stream
        .write_all(b"GET /slow/400 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut stream, &mut got, b"slow").await;
    // Idle between requests: closed after about `idle`.
    let idle_from = Instant::now();
    let (rest, closed) = read_to_close(&mut stream).await;
    assert!(rest.is_empty());
    assert!(closed);
    let waited = idle_from.elapsed();
    assert!(waited >= idle - Duration::from_millis(20), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    // The server side is gone too.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.open_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_streams_limits_http2_streams() {
    let server = HyperServer::start(Options {
        protocol: Protocol::Http2,
        max_concurrent_streams: Some(1),
        ..Options::default()
    });
    let (client, _conn) = Client::connect(server.addr(), true).await;
    let Client::H2(sender) = client else {
        unreachable!()
    };
    // Let the server's SETTINGS arrive.
    let mut warmup = Client::H2(sender.clone());
    warmup.get("/").await;
    let started = Instant::now();
    let mut requests = Vec::new();
    for _ in 0..3 {
        let mut client = Client::H2(sender.clone());
        requests.push(tokio::spawn(async move { client.get("/slow/100").await }));
    }
    for request in requests {
        assert_eq!(request.await.unwrap().1, "slow");
    }
    // One at a time.
    assert!(started.elapsed() >= Duration::from_millis(290));
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn counts_connections() {
    let server = HyperServer::start(Options::default());
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (mut client, conn) = Client::connect(server.addr(), false).await;
        client.get("/").await;
        clients.push((client, conn));
    }
    assert_eq!(server.accepted(), 3);
    assert_eq!(server.open_connections(), 3);
    assert_eq!(server.requests(), 3);
    drop(clients);
    support::settle(|| server.open_connections() == 0).await;
    assert_eq!(server.open_connections(), 0);
    assert_eq!(server.accepted(), 3);
}

#[tokio::test]
async fn dropping_the_server_closes_everything() {
    let server = HyperServer::start(Options::default());
    let addr = server.addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(GET).await.unwrap();
    let mut got = Vec::new();
    read_until(&mut stream, &mut got, b"hello").await;
    drop(server);
    // The listener stops at once; the connections close soon after.
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is gone"
    );
    let (rest, closed) = read_to_close(&mut stream).await;
    assert!(rest.is_empty());
    assert!(closed, "the connection was closed");
}

#[test]
fn starts_from_synchronous_code() {
    let runtime = support::one_worker_runtime();
    let server = HyperServer::start_on(runtime.handle(), Options::default());
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    stream
        .write_all(b"GET /method HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = String::new();
    stream.read_to_string(&mut got).unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.ends_with("GET"), "{got}");
    assert_eq!(server.accepted(), 1);
}
