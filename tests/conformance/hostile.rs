//! Hostile servers: garbage, endless headers, bodies cut short, resets, silence,
//! a stall after the head, bytes after a response. Each fails the request with
//! the right kind of error (never a success with partial data), quickly, and
//! leaves the pool clean: no lease leaked, the broken connection closed, the
//! next request to a good server served.

use crate::support::Adapter;

use std::time::Duration;

use crate::support::{self, assert_origin, assert_quiescent, get, get_text, within};
use muxpool::client::Client;
use muxpool::H1Limits;
use muxpool::{Error, ErrorKind};
use muxpool_testkit::hostile::{Behavior, Hostile};
use muxpool_testkit::hyper_server::{content, HyperServer, Options};

/// After a failure: nothing leaked, and a good server is served.
async fn still_usable<R: Adapter>(client: &Client<R>) {
    assert_quiescent(client).await;
    let good = HyperServer::start(Options::default());
    assert_eq!(get_text(client, good.url("/")).await, "hello");
    assert_quiescent(client).await;
}

/// The error of `GET url` (a failure of `send` or of reading the body).
async fn get_error<R: Adapter>(client: &Client<R>, url: String) -> Error {
    match get(client, &url).await {
        Err(e) => e,
        Ok(response) => response
            .into_body()
            .bytes()
            .await
            .expect_err("the exchange must fail"),
    }
}

async fn garbage_is_a_protocol_error<R: Adapter>() {
    let server = Hostile::start(Behavior::Garbage);
    let client = Client::<R>::new();
    let error = get(&client, server.url("/")).await.expect_err("not HTTP");
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error:#}");
    assert_eq!(
        error.to_string(),
        format!(
            "protocol error from http://127.0.0.1:{}: invalid response head: invalid HTTP version",
            server.port()
        )
    );
    assert_origin(&error, "http", server.port());
    assert_eq!(server.accepted(), 1, "a fresh connection is not retried");
    still_usable::<R>(&client).await;
}

async fn huge_headers_are_refused_under_the_limit<R: Adapter>() {
    let server = Hostile::start(Behavior::HugeHeaders { bytes: 1024 * 1024 });
    let client = Client::<R>::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let error = get(&client, server.url("/")).await.expect_err("too large");
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error:#}");
    assert!(
        format!("{error:#}").contains("too large"),
        "the cause is the header limit: {error:#}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused as soon as the limit is passed, not at a timeout"
    );
    still_usable::<R>(&client).await;
}

async fn a_smaller_header_limit_is_honoured<R: Adapter>() {
    let server = Hostile::start(Behavior::HugeHeaders { bytes: 8 * 1024 });
    let client = Client::<R>::builder()
        .h1_limits(H1Limits::DEFAULT.with_max_header_bytes(4 * 1024))
        .build()
        .unwrap();
    let error = get(&client, server.url("/")).await.expect_err("too large");
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error:#}");
    still_usable::<R>(&client).await;
}

async fn truncated_body_is_an_error_never_partial_data<R: Adapter>() {
    let server = Hostile::start(Behavior::TruncatedBody {
        declared: 100_000,
        sent: 60_000,
    });
    let client = Client::<R>::new();
    let response = get(&client, server.url("/"))
        .await
        .expect("the head is fine");
    assert_eq!(response.status(), 200);
    let error = response
        .into_body()
        .bytes()
        .await
        .expect_err("40,000 bytes are missing");
    assert_eq!(error.kind(), ErrorKind::Body, "{error:#}");
    assert_eq!(
        error.to_string(),
        format!(
            "body error on a request to http://127.0.0.1:{}: \
             connection closed before the response body was complete",
            server.port()
        )
    );
    assert_origin(&error, "http", server.port());

    // Read chunk by chunk: the data that arrived, then the error, never a
    // clean end.
    let mut body = get(&client, server.url("/")).await.unwrap().into_body();
    let mut got = Vec::new();
    let error = loop {
        match body.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => panic!("a truncated body ended cleanly after {} bytes", got.len()),
            Err(e) => break e,
        }
    };
    assert_eq!(error.kind(), ErrorKind::Body);
    assert!(got.len() <= 60_000);
    assert!(got[..] == content(got.len())[..]);
    still_usable::<R>(&client).await;
}

async fn truncated_small_body_is_an_error<R: Adapter>() {
    // The whole (short) response arrives with its head, then the end of
    // stream: still an error.
    let server = Hostile::start(Behavior::TruncatedBody {
        declared: 10,
        sent: 3,
    });
    let client = Client::<R>::new();
    let error = get_error::<R>(&client, server.url("/")).await;
    assert_eq!(error.kind(), ErrorKind::Body, "{error:#}");
    still_usable::<R>(&client).await;
}

async fn truncated_chunked_body_is_an_error<R: Adapter>() {
    let server = Hostile::start(Behavior::TruncatedChunked);
    let client = Client::<R>::new();
    let error = get_error::<R>(&client, server.url("/")).await;
    assert_eq!(error.kind(), ErrorKind::Body, "{error:#}");

    let mut body = get(&client, server.url("/")).await.unwrap().into_body();
    let mut got = Vec::new();
    let error = loop {
        match body.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => panic!("a truncated chunked body ended cleanly: {got:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(error.kind(), ErrorKind::Body);
    assert!(b"helloabc".starts_with(&got), "{got:?}");
    still_usable::<R>(&client).await;
}

/// `error` says the connection was reset, or closed.
fn assert_reset_or_closed(error: &muxpool::Error) {
    assert!(
        support::has_io_cause(error, std::io::ErrorKind::ConnectionReset)
            || format!("{error:#}").contains("closed"),
        "{error:#}"
    );
}

async fn reset_is_an_error<R: Adapter>() {
    let server = Hostile::start(Behavior::Reset);
    let client = Client::<R>::new();
    let error = get(&client, server.url("/")).await.expect_err("reset");
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error:#}");
    assert_reset_or_closed(&error);
    still_usable::<R>(&client).await;
}

async fn reset_before_the_request_is_an_error<R: Adapter>() {
    let server = Hostile::start(Behavior::ResetBeforeRequest);
    let client = Client::<R>::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("a client");
    let error = within(
        Duration::from_secs(3),
        "a request to a resetting server",
        get(&client, server.url("/")),
    )
    .await
    .expect_err("reset");
    // The reset can reach the client before it sees its connect complete (then
    // the connect fails, and the request waits for the next one, as it would
    // for a restarting server) or after (then the exchange fails): either way
    // the request fails with the reset, at once or when its timeout ends
    // the wait, and the client stays usable.
    assert!(
        matches!(
            error.kind(),
            ErrorKind::Protocol | ErrorKind::Connect | ErrorKind::Timeout
        ),
        "{error:#}"
    );
    if error.kind() == ErrorKind::Timeout {
        // Its connects kept being reset until the deadline.
        assert!(client.stats().connect_failures >= 1, "{error:#}");
    } else {
        assert_reset_or_closed(&error);
    }
    still_usable::<R>(&client).await;
}

async fn a_silent_server_times_out<R: Adapter>() {
    let server = Hostile::start(Behavior::Silent);
    let client = Client::<R>::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let error = within(
        Duration::from_secs(3),
        "a request to a silent server",
        get(&client, server.url("/")),
    )
    .await
    .expect_err("no answer");
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:#}");
    assert!(error.is_timeout());
    assert!(
        elapsed >= Duration::from_millis(290) && elapsed < Duration::from_millis(1500),
        "timed out after {elapsed:?}"
    );
    assert_eq!(server.requests(), 1, "the request was sent");
    // The connection the timed-out request held was closed, not pooled.
    still_usable::<R>(&client).await;
    assert_eq!(client.stats().open, 1, "only the good server's connection");
}

async fn a_stall_after_the_head_hits_the_read_timeout<R: Adapter>() {
    let server = Hostile::start(Behavior::NoAnswerAfterHead);
    let client = Client::<R>::builder()
        .read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let response = get(&client, server.url("/"))
        .await
        .expect("the head arrives");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("content-length").unwrap(), "100");
    let started = std::time::Instant::now();
    let error = within(
        Duration::from_secs(3),
        "reading a stalled body",
        response.into_body().bytes(),
    )
    .await
    .expect_err("no body arrives");
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:#}");
    assert!(
        elapsed >= Duration::from_millis(290) && elapsed < Duration::from_millis(1500),
        "timed out after {elapsed:?}"
    );
    still_usable::<R>(&client).await;
}

async fn the_request_timeout_does_not_cover_the_body<R: Adapter>() {
    // The request timeout ends at the response head; a body that trickles in
    // is bounded by the read timeout, per read.
    let server = Hostile::start(Behavior::NoAnswerAfterHead);
    let client = Client::<R>::builder()
        .timeout(Duration::from_millis(200))
        .read_timeout(Duration::from_millis(600))
        .build()
        .unwrap();
    let response = get(&client, server.url("/")).await.unwrap();
    let started = std::time::Instant::now();
    let error = response.into_body().bytes().await.expect_err("stalled");
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(
        started.elapsed() >= Duration::from_millis(590),
        "the read timeout, not the request timeout, bounded the body: {:?}",
        started.elapsed()
    );
    assert_quiescent(&client).await;
}

async fn bytes_after_a_response_prevent_reuse<R: Adapter>() {
    let server = Hostile::start(Behavior::AnswerThenGarbage);
    let client = Client::<R>::new();
    assert_eq!(get_text(&client, server.url("/")).await, "ok");
    assert_eq!(get_text(&client, server.url("/")).await, "ok");
    assert_eq!(
        server.accepted(),
        2,
        "a connection with stray bytes after its response is not reused"
    );
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
}

async fn scripted_invalid_responses<R: Adapter>() {
    // Framing a client must refuse rather than guess.
    let cases: [(&[u8], ErrorKind); 4] = [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            ErrorKind::Protocol,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
            ErrorKind::Protocol,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            ErrorKind::Body,
        ),
        (b"HTTP/9.9 200 OK\r\n\r\n", ErrorKind::Protocol),
    ];
    for (script, kind) in cases {
        let server = Hostile::start(Behavior::Script(script.to_vec()));
        let client = Client::<R>::builder()
            .timeout(Duration::from_secs(2))
            .read_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let error = get_error::<R>(&client, server.url("/")).await;
        assert_eq!(
            error.kind(),
            kind,
            "{:?}: {error:#}",
            String::from_utf8_lossy(script)
        );
        assert_quiescent(&client).await;
        assert_eq!(client.stats().open, 0, "the broken connection is closed");
    }
}

async fn scripted_valid_keep_alive_responses_are_reused<R: Adapter>() {
    let server = Hostile::start(Behavior::Script(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec(),
    ));
    let client = Client::<R>::new();
    for _ in 0..3 {
        assert_eq!(get_text(&client, server.url("/")).await, "abc");
    }
    assert_eq!(server.accepted(), 1);
    assert_quiescent(&client).await;
}

support::conformance!(
    garbage_is_a_protocol_error,
    huge_headers_are_refused_under_the_limit,
    a_smaller_header_limit_is_honoured,
    truncated_body_is_an_error_never_partial_data,
    truncated_small_body_is_an_error,
    truncated_chunked_body_is_an_error,
    reset_is_an_error,
    reset_before_the_request_is_an_error,
    a_silent_server_times_out,
    a_stall_after_the_head_hits_the_read_timeout,
    the_request_timeout_does_not_cover_the_body,
    bytes_after_a_response_prevent_reuse,
    scripted_invalid_responses,
    scripted_valid_keep_alive_responses_are_reused,
);
