//! Self-tests of the hostile servers: each behaviour, seen from a raw TCP
//! client, writes exactly what it promises and ends the connection the way it
//! promises (clean close, reset, or not at all).

use std::io::ErrorKind;
use std::time::Duration;

use muxpool_testkit::hostile::{Behavior, Hostile, GARBAGE, TRAILING_GARBAGE};
use muxpool_testkit::hyper_server::content;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support;

const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing more comes" is watched for.
const QUIET: Duration = Duration::from_millis(200);

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// How a read ended.
#[derive(Debug, PartialEq)]
enum End {
    /// A clean end of stream.
    Closed,
    /// A reset.
    Reset,
    /// Nothing more came for a while; the socket is still open.
    Open,
}

/// Reads until the stream ends or stays quiet for `quiet`.
async fn read_all(stream: &mut TcpStream, quiet: Duration) -> (Vec<u8>, End) {
    let mut got = Vec::new();
    let mut buf = [0; 16 * 1024];
    loop {
        match tokio::time::timeout(quiet, stream.read(&mut buf)).await {
            Ok(Ok(0)) => return (got, End::Closed),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => return (got, End::Reset),
            Ok(Err(e)) => panic!("read: {e}"),
            Err(_) => return (got, End::Open),
        }
    }
}

/// Reads exactly `n` bytes.
async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    tokio::time::timeout(WAIT, stream.read_exact(&mut got))
        .await
        .expect("data in time")
        .expect("read");
    got
}

/// Connects to `server` and sends `request`.
async fn send(server: &Hostile, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(request).await.unwrap();
    stream
}

/// Starts a server behaving as `behavior`, sends it [`GET`] on a new
/// connection and reads the answer as [`read_all`] does. The server is returned
/// so that it lives on (and can be asked what it counted).
async fn answer_to_get(behavior: Behavior, quiet: Duration) -> (Hostile, Vec<u8>, End) {
    let server = Hostile::start(behavior);
    let mut stream = send(&server, GET).await;
    let (got, end) = read_all(&mut stream, quiet).await;
    (server, got, end)
}

#[tokio::test]
async fn garbage() {
    let (server, got, end) = answer_to_get(Behavior::Garbage, WAIT).await;
    assert_eq!(got, GARBAGE);
    assert_eq!(end, End::Closed);
    assert_eq!(server.accepted(), 1);
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn huge_headers_never_end() {
    let (_server, got, end) = answer_to_get(Behavior::HugeHeaders { bytes: 200_000 }, QUIET).await;
    let prefix = b"HTTP/1.1 200 OK\r\nx-huge: ";
    assert!(got.starts_with(prefix));
    assert_eq!(got.len(), prefix.len() + 200_000);
    assert!(got[prefix.len()..].iter().all(|&b| b == b'a'));
    assert_eq!(end, End::Open);
}

#[tokio::test]
async fn truncated_body() {
    let (_server, got, end) = answer_to_get(
        Behavior::TruncatedBody {
            declared: 100,
            sent: 10,
        },
        WAIT,
    )
    .await;
    let mut expected = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
    expected.extend_from_slice(&content(10));
    assert_eq!(got, expected);
    assert_eq!(end, End::Closed);
}

#[tokio::test]
async fn truncated_chunked() {
    let (_server, got, end) = answer_to_get(Behavior::TruncatedChunked, WAIT).await;
    let text = String::from_utf8(got).unwrap();
    assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
    assert!(text.ends_with("5\r\nhello\r\n10\r\nabc"), "{text}");
    assert_eq!(end, End::Closed);
}

#[tokio::test]
async fn reset_after_the_request() {
    let (server, got, end) = answer_to_get(Behavior::Reset, WAIT).await;
    assert!(got.is_empty());
    assert_eq!(end, End::Reset);
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn reset_before_the_request() {
    let server = Hostile::start(Behavior::ResetBeforeRequest);
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let (got, end) = read_all(&mut stream, WAIT).await;
    assert!(got.is_empty());
    assert_eq!(end, End::Reset);
    assert_eq!(server.requests(), 0);
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn silent() {
    let (server, got, end) = answer_to_get(Behavior::Silent, QUIET).await;
    assert!(got.is_empty());
    assert_eq!(end, End::Open);
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn no_answer_after_head() {
    let (_server, got, end) = answer_to_get(Behavior::NoAnswerAfterHead, QUIET).await;
    assert_eq!(got, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    assert_eq!(end, End::Open);
}

#[tokio::test]
async fn close_after_answering_n_requests() {
    let server = Hostile::start(Behavior::CloseAfter { requests: 2 });
    let mut stream = send(&server, GET).await;
    assert_eq!(read_n(&mut stream, OK.len()).await, OK);
    stream.write_all(GET).await.unwrap();
    let (got, end) = read_all(&mut stream, WAIT).await;
    assert_eq!(got, OK, "no Connection: close, nothing else");
    assert_eq!(end, End::Closed);
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn close_after_zero_requests_answers_nothing() {
    let (_server, got, end) = answer_to_get(Behavior::CloseAfter { requests: 0 }, WAIT).await;
    assert!(got.is_empty());
    assert_eq!(end, End::Closed);
}

#[tokio::test]
async fn request_bodies_are_read_and_dropped() {
    let server = Hostile::start(Behavior::CloseAfter { requests: 3 });
    let mut stream = send(
        &server,
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
    )
    .await;
    assert_eq!(read_n(&mut stream, OK.len()).await, OK);
    stream
        .write_all(
            b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n",
        )
        .await
        .unwrap();
    assert_eq!(read_n(&mut stream, OK.len()).await, OK);
    stream.write_all(GET).await.unwrap();
    let (got, end) = read_all(&mut stream, WAIT).await;
    assert_eq!(got, OK);
    assert_eq!(end, End::Closed);
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn informational_responses_then_the_answer() {
    let server = Hostile::start(Behavior::Informational);
    let mut stream = send(
        &server,
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .await;
    let continue_ = b"HTTP/1.1 100 Continue\r\n\r\n";
    assert_eq!(read_n(&mut stream, continue_.len()).await, continue_);
    stream.write_all(b"body").await.unwrap();
    let (got, end) = read_all(&mut stream, QUIET).await;
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("HTTP/1.1 103 Early Hints\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    assert_eq!(end, End::Open, "keep-alive");
    // The connection serves another request.
    stream.write_all(GET).await.unwrap();
    let (got, _) = read_all(&mut stream, QUIET).await;
    assert!(got.ends_with(b"ok"));
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn close_delimited() {
    let (_server, got, end) = answer_to_get(
        Behavior::CloseDelimited {
            body: b"until the end".to_vec(),
        },
        WAIT,
    )
    .await;
    assert_eq!(
        got,
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"
    );
    assert_eq!(end, End::Closed);
}

#[tokio::test]
async fn http10() {
    let (_server, got, end) = answer_to_get(
        Behavior::Http10 {
            body: b"old".to_vec(),
        },
        WAIT,
    )
    .await;
    assert_eq!(got, b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold");
    assert_eq!(end, End::Closed);
}

#[tokio::test]
async fn script_answers_every_request() {
    let script = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_vec();
    let server = Hostile::start(Behavior::Script(script.clone()));
    let mut stream = send(&server, GET).await;
    assert_eq!(read_n(&mut stream, script.len()).await, script);
    stream.write_all(GET).await.unwrap();
    assert_eq!(read_n(&mut stream, script.len()).await, script);
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn answer_then_garbage() {
    let (_server, got, end) = answer_to_get(Behavior::AnswerThenGarbage, QUIET).await;
    let mut expected = OK.to_vec();
    expected.extend_from_slice(TRAILING_GARBAGE);
    assert_eq!(got, expected);
    assert_eq!(end, End::Open);
}

#[tokio::test]
async fn a_head_too_long_ends_the_connection() {
    let server = Hostile::start(Behavior::Silent);
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let mut head = b"GET / HTTP/1.1\r\nx-long: ".to_vec();
    head.resize(100 * 1024, b'a');
    // The server may stop reading before the whole head is written.
    let _ = stream.write_all(&head).await;
    let (got, end) = read_all(&mut stream, WAIT).await;
    assert!(got.is_empty());
    assert_ne!(end, End::Open);
    assert_eq!(server.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_closes_its_sockets() {
    let server = Hostile::start(Behavior::Silent);
    let addr = server.addr();
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(send(&server, GET).await);
    }
    support::settle(|| server.requests() == 3).await;
    assert_eq!(server.accepted(), 3);
    assert_eq!(server.requests(), 3);
    drop(server);
    // The listener stops at once; the connections close soon after.
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is gone"
    );
    for mut stream in streams {
        let (got, end) = read_all(&mut stream, WAIT).await;
        assert!(got.is_empty());
        assert_ne!(end, End::Open);
    }
}

#[test]
fn starts_from_synchronous_code() {
    let runtime = support::one_worker_runtime();
    let server = Hostile::start_on(
        runtime.handle(),
        Behavior::Http10 {
            body: b"x".to_vec(),
        },
    );
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    stream.write_all(GET).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx");
}
