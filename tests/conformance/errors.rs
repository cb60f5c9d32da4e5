//! Errors and timeouts: a refused connect, requests the client cannot send,
//! the client's and a request's own timeout, a full queue, and error values a
//! person can read (`Display`, `{:#}` with the causes, `source` chains): the
//! exact line each failure against a real server prints, the origin it names,
//! and credentials that never show.

use crate::support::{self, spawn, Adapter};

use std::time::Duration;

use crate::support::{
    assert_origin, assert_quiescent, causes, closed_port, get, get_text, get_within, has_io_cause,
    refused, request, spawn_get_text, within,
};
use http::Method;
use muxpool::client::Client;
use muxpool::sans_io::Circuit;
use muxpool::{Body, Error, ErrorKind, PoolConfig, RequestTimeout};
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};

/// A refused connect may be a server restarting: the request keeps waiting
/// while the pool connects again with its backoff, and fails with the refused
/// connect once the next attempt would come after its deadline.
async fn connect_refused<R: Adapter>() {
    let port = closed_port();
    let client = Client::<R>::new();
    let req = get_within(
        format!("http://127.0.0.1:{port}/"),
        Duration::from_millis(1500),
    );
    let error = within(
        Duration::from_secs(3),
        "a refused connect",
        client.send(req),
    )
    .await
    .expect_err("nothing listens");
    assert_eq!(error.kind(), ErrorKind::Connect, "{error:#}");
    assert!(
        has_io_cause(&error, std::io::ErrorKind::ConnectionRefused),
        "the io::Error is in the source chain: {:?}",
        causes(&error)
    );
    // One cause: the short and the alternate form say the same.
    let line = format!(
        "connecting to http://127.0.0.1:{port} failed: {}",
        refused(port)
    );
    assert_eq!(error.to_string(), line);
    assert_eq!(format!("{error:#}"), line);
    assert_origin(&error, "http", port);
    assert_quiescent(&client).await;
    let stats = client.stats();
    assert!(stats.connect_failures >= 3, "tried again: {stats:#?}");
    assert_eq!(stats.open, 0);
}

async fn connect_refused_by_name<R: Adapter>() {
    let port = closed_port();
    let client = Client::<R>::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("a client");
    let error = get(&client, format!("http://localhost:{port}/"))
        .await
        .expect_err("nothing listens");
    // Refused connects wait through the backoff: the request ends with the
    // refusal that leaves it no time for another connect, or, on a machine
    // slow enough that its deadline comes first, with its timeout, whose
    // cause is the refusal all the same.
    assert!(
        matches!(error.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "{error:#}"
    );
    assert!(
        has_io_cause(&error, std::io::ErrorKind::ConnectionRefused),
        "{error:#}"
    );
}

async fn unresolvable_name_is_a_connect_error<R: Adapter>() {
    let client = Client::<R>::builder()
        .connect_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    // `.invalid` never resolves (RFC 6761).
    let error = within(
        Duration::from_secs(4),
        "resolving an invalid name",
        get(&client, "http://no-such-host.invalid/"),
    )
    .await
    .expect_err("no such name");
    assert!(
        matches!(error.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "{error:#}"
    );
}

async fn requests_the_client_cannot_send<R: Adapter>() {
    let client = Client::<R>::new();
    for url in ["ftp://127.0.0.1/file", "ws://127.0.0.1/", "/relative/path"] {
        let error = get(&client, url).await.expect_err(url);
        assert_eq!(error.kind(), ErrorKind::Request, "{url}: {error:#}");
        assert!(format!("{error}").starts_with("invalid request"), "{error}");
    }
    // Nothing was sent, nothing was opened.
    let stats = client.stats();
    assert_eq!((stats.connects, stats.grants), (0, 0), "{stats:#?}");
    assert_quiescent(&client).await;
}

/// A request that HTTP/1.1 cannot carry as it is (a `Content-Length` that
/// contradicts its body) is refused on the connection it was given, before
/// any byte is written: the connection goes back to the pool clean.
async fn a_request_refused_by_the_encoder_keeps_its_connection<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    let mut req = request(Method::POST, server.url("/echo"), Body::from("abc"));
    req.headers_mut().insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from_static("5"),
    );
    let error = client.send(req).await.expect_err("a contradicting length");
    assert_eq!(error.kind(), ErrorKind::Request, "{error:#}");
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(
        server.accepted(),
        1,
        "the connection was reused after the refusal"
    );
    assert_eq!(server.requests(), 2, "the refused request was never sent");
    assert_quiescent(&client).await;
}

async fn the_client_timeout<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    assert_eq!(get_text(&client, server.url("/slow/50")).await, "slow");
    let started = std::time::Instant::now();
    let error = get(&client, server.url("/slow/3000"))
        .await
        .expect_err("slower than the timeout");
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:#}");
    assert!(error.is_timeout());
    assert_eq!(
        error.to_string(),
        format!(
            "the request to http://127.0.0.1:{} timed out after 300ms",
            server.port()
        )
    );
    assert_eq!(error.timeout(), Some(Duration::from_millis(300)));
    assert!(
        elapsed >= Duration::from_millis(290) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    assert_quiescent(&client).await;
    // The timed-out exchange's connection was closed, not pooled.
    assert_eq!(client.stats().open, 0);
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(server.accepted(), 2);
}

async fn a_request_timeout_overrides_the_client_timeout<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    // Shorter than the client's.
    let mut req = request(Method::GET, server.url("/slow/3000"), Body::empty());
    req.extensions_mut()
        .insert(RequestTimeout(Duration::from_millis(200)));
    let started = std::time::Instant::now();
    let error = client.send(req).await.expect_err("the request's timeout");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:#}");
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );

    // Longer than the client's.
    let short = Client::<R>::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let mut req = request(Method::GET, server.url("/slow/300"), Body::empty());
    req.extensions_mut()
        .insert(RequestTimeout(Duration::from_secs(3)));
    let response = short.send(req).await.expect("the longer request timeout");
    assert_eq!(response.into_body().text().await.unwrap(), "slow");
    // Without the extension the client's applies.
    let error = get(&short, server.url("/slow/300"))
        .await
        .expect_err("the client's timeout");
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert_quiescent(&client).await;
    assert_quiescent(&short).await;
}

async fn the_timeout_covers_waiting_for_a_connection<R: Adapter>() {
    // One connection, held by a slow request: a second request waits in the
    // queue and times out there.
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::builder()
        .max_connections_per_key(1)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let slow = spawn_get_text(&client, server.url("/slow/800"));
    support::wait_until("the slow request is in flight", || server.requests() == 1).await;
    let mut req = request(Method::GET, server.url("/"), Body::empty());
    req.extensions_mut()
        .insert(RequestTimeout(Duration::from_millis(200)));
    let started = std::time::Instant::now();
    let error = client.send(req).await.expect_err("no connection in time");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:#}");
    assert_eq!(
        error.to_string(),
        format!(
            "waiting for a connection to http://127.0.0.1:{} timed out after 200ms: \
             no connection became free",
            server.port()
        )
    );
    assert!(started.elapsed() < Duration::from_millis(700));
    assert_eq!(slow.await.unwrap(), "slow");
    assert_quiescent(&client).await;
    assert_eq!(client.stats().waiting, 0);
    assert_eq!(server.accepted(), 1);
}

async fn a_full_queue_is_pool_exhausted<R: Adapter>() {
    const REQUESTS: usize = 12;
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::builder()
        .max_connections_per_key(1)
        .max_waiting_per_key(2)
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..REQUESTS {
        let client = client.clone();
        let url = server.url("/slow/500");
        tasks.push(spawn::<R, _>(async move {
            match get(&client, url).await {
                Ok(response) => Ok(response.into_body().text().await.unwrap()),
                Err(e) => Err(e),
            }
        }));
    }
    let mut served = 0;
    let mut exhausted = Vec::<Error>::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(text) => {
                assert_eq!(text, "slow");
                served += 1;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::PoolExhausted, "{e:#}");
                exhausted.push(e);
            }
        }
    }
    assert!(served >= 1, "some requests were served");
    assert!(
        !exhausted.is_empty(),
        "with one connection and two places in the queue, {REQUESTS} at once overflow"
    );
    assert_eq!(served + exhausted.len(), REQUESTS);
    assert!(
        served <= 4,
        "{served} served: the queue held more than its limit"
    );
    assert_eq!(
        exhausted[0].to_string(),
        format!(
            "pool exhausted for http://127.0.0.1:{}: too many requests are waiting for this origin",
            server.port()
        )
    );
    assert_origin(&exhausted[0], "http", server.port());
    let stats = client.stats();
    assert!(
        stats.rejections.total() >= exhausted.len() as u64,
        "{stats:#?}"
    );
    assert_quiescent(&client).await;
    assert_eq!(server.accepted(), 1);
}

async fn errors_are_send_sync_and_std_errors<R: Adapter>() {
    fn assert_traits<T: std::error::Error + Send + Sync + 'static>() {}
    assert_traits::<Error>();
    let client = Client::<R>::new();
    let error = get(&client, "ftp://x/").await.unwrap_err();
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
    assert!(
        boxed.to_string().contains("unsupported URI scheme"),
        "{boxed}"
    );
    let debug = format!("{boxed:?}");
    assert!(debug.contains("Request"), "{debug}");
}

async fn invalid_configuration_is_a_config_error<R: Adapter>() {
    let error = Client::<R>::builder()
        .timeout(Duration::ZERO)
        .build()
        .expect_err("a zero timeout");
    assert_eq!(error.kind(), ErrorKind::Config);
    let error = Client::<R>::builder()
        .max_connections_per_key(0)
        .build()
        .expect_err("a zero limit");
    assert_eq!(error.kind(), ErrorKind::Config, "{error:#}");
    assert!(
        !causes(&error).is_empty(),
        "the core's reason is the source"
    );
}

/// Once an origin's circuit is open, a request fails at once, and its line
/// says which circuit and the connect failure that opened it.
async fn an_open_circuit_says_where_and_why<R: Adapter>() {
    let port = closed_port();
    let mut pool = PoolConfig::default();
    pool.circuit = Circuit::new(Some(1), Duration::from_secs(60)).failing_for(Duration::ZERO);
    let client = Client::<R>::builder()
        .pool(pool)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("a valid configuration");
    let url = format!("http://127.0.0.1:{port}/");
    let first = get(&client, &url).await.expect_err("nothing listens");
    assert!(
        matches!(first.kind(), ErrorKind::Connect | ErrorKind::CircuitOpen),
        "{first:#}"
    );
    let started = std::time::Instant::now();
    let error = get(&client, &url).await.expect_err("the circuit is open");
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(error.kind(), ErrorKind::CircuitOpen, "{error:#}");
    assert_eq!(
        error.to_string(),
        format!(
            "circuit open for http://127.0.0.1:{port}: recent connects to this origin failed: {}",
            refused(port)
        )
    );
    assert_eq!(
        format!("{error:#}"),
        format!(
            "circuit open for http://127.0.0.1:{port}: recent connects to this origin failed: \
             connect failed: {}",
            refused(port)
        )
    );
    assert_origin(&error, "http", port);
}

/// Credentials in a URI's userinfo reach neither the error's line, its
/// alternate form, nor its `Debug`.
async fn credentials_never_show_in_errors<R: Adapter>() {
    let port = closed_port();
    let client = Client::<R>::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("a valid configuration");
    let error = get(
        &client,
        format!("http://alice:s3cr3t@127.0.0.1:{port}/private?token=t0ken"),
    )
    .await
    .expect_err("nothing listens");
    assert_origin(&error, "http", port);
    for text in [
        error.to_string(),
        format!("{error:#}"),
        format!("{error:?}"),
        format!("{error:#?}"),
    ] {
        for secret in ["alice", "s3cr3t", "t0ken", "private"] {
            assert!(!text.contains(secret), "{secret} shows in {text}");
        }
    }
}

support::conformance!(
    connect_refused,
    connect_refused_by_name,
    unresolvable_name_is_a_connect_error,
    requests_the_client_cannot_send,
    a_request_refused_by_the_encoder_keeps_its_connection,
    the_client_timeout,
    a_request_timeout_overrides_the_client_timeout,
    the_timeout_covers_waiting_for_a_connection,
    a_full_queue_is_pool_exhausted,
    errors_are_send_sync_and_std_errors,
    invalid_configuration_is_a_config_error,
    an_open_circuit_says_where_and_why,
    credentials_never_show_in_errors,
    an_error_status_is_an_error_when_asked,
);

/// A response with an error status is an answer until the caller asks for it
/// as an error: `error_for_status` then fails with the status, for a server
/// over HTTP/1.1 and HTTP/2 alike, and the client carries on.
async fn an_error_status_is_an_error_when_asked<R: Adapter>() {
    use muxpool::ResponseExt;
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let server = HyperServer::start(Options {
            protocol,
            ..Options::default()
        });
        let client = Client::<R>::builder()
            .http2_prior_knowledge(protocol == Protocol::Http2)
            .build()
            .expect("a client");
        for (code, fails) in [(200, false), (404, true), (503, true), (302, false)] {
            let response = get(&client, server.url(&format!("/status/{code}")))
                .await
                .expect("an answer");
            assert_eq!(response.status().as_u16(), code);
            match response.error_for_status() {
                Ok(_) => assert!(!fails, "{code} passes"),
                Err(error) => {
                    assert!(fails, "{code}: {error}");
                    assert_eq!(error.kind(), ErrorKind::Status);
                    assert_eq!(error.status().map(|s| s.as_u16()), Some(code));
                    let line = http::StatusCode::from_u16(code).expect("a status");
                    assert_eq!(error.to_string(), format!("error status: {line}"));
                }
            }
        }
        assert_eq!(get_text(&client, server.url("/")).await, "hello");
    }
}
