//! HTTP/2 through the same `Client::send`: chosen by ALPN over TLS, or with prior
//! knowledge on `http://`; concurrent requests share one connection as streams
//! (counted by the server's accepted connections); bodies stream both ways.

use crate::support::Adapter;

use crate::support::{
    self, assert_quiescent, get, get_bytes, get_text, get_text_concurrently, request,
};
use http::{Method, Version};
use muxpool::client::Client;
use muxpool::tls::Alpn;
use muxpool_testkit::certs::{self, Ca};
use muxpool_testkit::hyper_server::{content, HyperServer, Options, Protocol};

/// An in-process server speaking only HTTP/2.
fn h2_server(options: Options) -> HyperServer {
    HyperServer::start(Options {
        protocol: Protocol::Http2,
        ..options
    })
}

fn h2c_client<R: Adapter>() -> Client<R> {
    Client::<R>::builder()
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration")
}

async fn concurrent_requests_share_one_h2c_connection<R: Adapter>() {
    let server = h2_server(Options::default());
    let client = h2c_client::<R>();
    // The first request learns the protocol; then a burst multiplexes.
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    get_text_concurrently(&client, server.url("/slow/50"), 50, "slow").await;
    assert_eq!(server.accepted(), 1, "one connection, many streams");
    assert_eq!(server.requests(), 51);
    assert_quiescent(&client).await;
}

async fn responses_are_http2_and_bodies_stream_both_ways<R: Adapter>() {
    let server = h2_server(Options::default());
    let client = h2c_client::<R>();
    let response = get(&client, server.url("/")).await.expect("a response");
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.into_body().text().await.expect("text"), "hello");
    // A body larger than every flow-control window, both ways.
    let (status, body) = get_bytes(&client, server.url("/bytes/4000000")).await;
    assert_eq!(status, 200);
    assert!(body[..] == content(4_000_000)[..]);
    let sent = content(3_000_000);
    let response = client
        .send(request(Method::POST, server.url("/echo"), sent.clone()))
        .await
        .expect("a response");
    let echoed = response.into_body().bytes().await.expect("the echo");
    assert!(echoed[..] == sent[..]);
    assert_eq!(server.accepted(), 1);
    assert_quiescent(&client).await;
}

async fn alpn_chooses_http2_over_tls<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let server = HyperServer::start(Options {
        tls: Some(certs::server_config(
            &ca.leaf(&["127.0.0.1"]),
            &[b"h2", b"http/1.1"],
        )),
        ..Options::default()
    });
    let tls = support::tls_trusting_with(&ca, Alpn::Http1AndHttp2);
    let client = Client::<R>::builder().tls(tls).build().expect("a client");
    for _ in 0..3 {
        let response = get(&client, server.url("/")).await.expect("a response");
        assert_eq!(response.version(), Version::HTTP_2);
        assert_eq!(response.into_body().text().await.expect("text"), "hello");
    }
    assert_eq!(server.accepted(), 1);
    assert_quiescent(&client).await;
}

async fn a_dropped_body_frees_its_stream_not_the_connection<R: Adapter>() {
    let server = h2_server(Options::default());
    let client = h2c_client::<R>();
    let response = get(&client, server.url("/bytes/10000000"))
        .await
        .expect("a response");
    drop(response);
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(server.accepted(), 1);
    assert_quiescent(&client).await;
}

async fn idle_connections_answer_health_check_pings<R: Adapter>() {
    // The core pings idle HTTP/2 connections every 50 ms and closes any that
    // does not answer within 200 ms; the connection's driver sends the PING and
    // reports the PONG, so the connection lives on.
    let server = h2_server(Options::default());
    let mut pool = muxpool::PoolConfig::default();
    pool.health_check = muxpool::sans_io::HealthCheck::new(
        Some(std::time::Duration::from_millis(50)),
        std::time::Duration::from_millis(200),
    );
    let client = Client::<R>::builder()
        .pool(pool)
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration");
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    support::sleep(std::time::Duration::from_millis(600)).await;
    let stats = client.stats();
    assert_eq!(stats.open, 1, "{stats:?}");
    assert_eq!(stats.closes.total(), 0, "{stats:?}");
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(server.accepted(), 1);
}

async fn a_burst_on_a_cold_tls_origin_opens_one_connection<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let server = HyperServer::start(Options {
        tls: Some(certs::server_config(&ca.leaf(&["127.0.0.1"]), &[b"h2"])),
        protocol: Protocol::Http2,
        ..Options::default()
    });
    let tls = support::tls_trusting_with(&ca, Alpn::Http1AndHttp2);
    let client = Client::<R>::builder().tls(tls).build().expect("a client");
    get_text_concurrently(&client, server.url("/slow/20"), 64, "slow").await;
    assert_eq!(server.accepted(), 1, "one handshake for the whole burst");
    assert_quiescent(&client).await;
}

async fn saturated_connections_spill_to_new_ones<R: Adapter>() {
    // The server allows 4 streams per connection; 40 concurrent slow requests
    // spill over about 10 connections instead of queueing on one.
    let server = h2_server(Options {
        max_concurrent_streams: Some(4),
        ..Options::default()
    });
    let client = h2c_client::<R>();
    // Learn the protocol and the server's limit first.
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    get_text_concurrently(&client, server.url("/slow/200"), 40, "slow").await;
    let accepted = server.accepted();
    assert!(
        (10..=12).contains(&accepted),
        "{accepted} connections for 40 streams at 4 each"
    );
    assert_quiescent(&client).await;
}

async fn goaway_drains_and_the_caller_never_sees_it<R: Adapter>() {
    // The server sends GOAWAY on every connection after its third stream.
    let server = h2_server(Options {
        close_after_requests: Some(3),
        ..Options::default()
    });
    let client = h2c_client::<R>();
    for _ in 0..12 {
        assert_eq!(get_text(&client, server.url("/")).await, "hello");
    }
    let accepted = server.accepted();
    assert!(
        (4..=6).contains(&accepted),
        "{accepted} connections for 12 requests at 3 each"
    );
    assert_quiescent(&client).await;
}

async fn response_trailers_arrive_after_the_body<R: Adapter>() {
    let server = h2_server(Options::default());
    let client = h2c_client::<R>();
    let response = get(&client, server.url("/trailers"))
        .await
        .expect("a response");
    let mut body = response.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.chunk().await.expect("a chunk") {
        data.extend_from_slice(&chunk);
    }
    assert_eq!(data, b"data");
    let trailers = body.trailers().expect("trailers");
    assert_eq!(trailers["x-checksum"], "ok");
    drop(body);
    assert_quiescent(&client).await;
}

async fn a_slow_reader_stalls_only_its_own_stream<R: Adapter>() {
    // One response is left unread: its stream window fills and the server
    // waits, but the connection's window has room, and other streams on the
    // same connection go on.
    let server = h2_server(Options::default());
    let client = h2c_client::<R>();
    let stalled = get(&client, server.url("/bytes/10000000"))
        .await
        .expect("a response");
    for _ in 0..5 {
        let (_, body) = get_bytes(&client, server.url("/bytes/100000")).await;
        assert!(body[..] == content(100_000)[..]);
    }
    assert_eq!(server.accepted(), 1, "all on one connection");
    // The stalled stream still reads to its end once its reader wakes up.
    let body = stalled.into_body().bytes().await.expect("the whole body");
    assert!(body[..] == content(10_000_000)[..]);
    assert_quiescent(&client).await;
}

async fn an_idle_timeout_closes_the_connection_on_the_wire<R: Adapter>() {
    // The core closes an idle HTTP/2 connection; dropping the pool's handle
    // ends the connection (h2 says goodbye), and its driver task with it.
    let server = h2_server(Options::default());
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .idle_timeout(Some(std::time::Duration::from_millis(100)))
        .build()
        .expect("a valid configuration");
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    support::wait_until("the pool closes the idle connection", || {
        client.stats().open == 0
    })
    .await;
    support::wait_until("the server sees it closed", || {
        server.open_connections() == 0
    })
    .await;
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(server.accepted(), 2);
}

support::conformance!(
    concurrent_requests_share_one_h2c_connection,
    responses_are_http2_and_bodies_stream_both_ways,
    alpn_chooses_http2_over_tls,
    a_dropped_body_frees_its_stream_not_the_connection,
    idle_connections_answer_health_check_pings,
    a_burst_on_a_cold_tls_origin_opens_one_connection,
    saturated_connections_spill_to_new_ones,
    goaway_drains_and_the_caller_never_sees_it,
    response_trailers_arrive_after_the_body,
    a_slow_reader_stalls_only_its_own_stream,
    an_idle_timeout_closes_the_connection_on_the_wire,
);
