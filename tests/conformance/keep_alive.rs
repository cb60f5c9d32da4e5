//! Keep-alive: sequential requests share one connection, concurrent requests
//! never open more connections than the per-origin limit, and every way of
//! finishing a response (small, streamed, collected, read frame by frame) gives
//! the connection back for the next request.

use crate::support::{self, spawn, Adapter};

use std::time::Duration;

use crate::support::{assert_quiescent, get, get_bytes, get_text, request};
use http::Method;
use http_body_util::BodyExt;
use muxpool::client::Client;
use muxpool_testkit::hyper_server::{content, HyperServer, Options};

async fn sequential_requests_reuse_one_connection<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    const N: u64 = 20;
    for _ in 0..N {
        assert_eq!(get_text(&client, server.url("/")).await, "hello");
    }
    assert_eq!(server.accepted(), 1, "every request on one connection");
    assert_eq!(server.requests(), N as usize);
    let stats = client.stats();
    assert_eq!(stats.grants, N);
    assert_eq!(stats.reused_grants, N - 1, "{stats:#?}");
    assert_eq!(stats.connects, 1);
    assert_eq!(stats.open, 1);
    assert_eq!(stats.idle, 1);
    assert_quiescent(&client).await;
}

async fn every_kind_of_body_gives_the_connection_back<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();

    // Complete with its head.
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    // Streamed with Content-Length, collected.
    let (_, body) = get_bytes(&client, server.url("/bytes/300000")).await;
    assert_eq!(body, content(300_000));
    // Chunked, read with `chunk`.
    let mut body = get(&client, server.url("/chunked/100000"))
        .await
        .expect("GET /chunked")
        .into_body();
    let mut got = Vec::new();
    while let Some(chunk) = body.chunk().await.expect("a chunk") {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, content(100_000));
    // Through the http-body trait.
    let body = get(&client, server.url("/bytes/70000"))
        .await
        .expect("GET /bytes")
        .into_body()
        .collect()
        .await
        .expect("collect")
        .to_bytes();
    assert_eq!(body, content(70_000));
    // A POST with a body.
    let response = client
        .send(request(Method::POST, server.url("/echo"), "ping"))
        .await
        .expect("POST /echo");
    assert_eq!(response.into_body().text().await.unwrap(), "ping");

    assert_eq!(server.accepted(), 1, "one connection for all of them");
    assert_eq!(client.stats().reused_grants, 4);
    assert_quiescent(&client).await;
}

async fn concurrent_requests_stay_within_the_per_origin_limit<R: Adapter>() {
    const LIMIT: u32 = 4;
    const REQUESTS: usize = 40;
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::builder()
        .max_connections_per_key(LIMIT)
        .build()
        .unwrap();

    let mut tasks = Vec::new();
    for _ in 0..REQUESTS {
        let client = client.clone();
        let url = server.url("/slow/20");
        tasks.push(spawn::<R, _>(async move {
            let response = get(&client, url).await.expect("GET /slow");
            let stats = client.stats();
            let text = response.into_body().text().await.expect("body");
            (text, stats.open)
        }));
    }
    for task in tasks {
        let (text, open) = task.await.unwrap();
        assert_eq!(text, "slow");
        assert!(open <= LIMIT, "{open} connections open, limit {LIMIT}");
    }
    let accepted = server.accepted();
    assert!(
        (1..=LIMIT as usize).contains(&accepted),
        "{accepted} connections for a limit of {LIMIT}"
    );
    assert_eq!(server.requests(), REQUESTS);
    let stats = client.stats();
    assert_eq!(stats.grants, REQUESTS as u64);
    assert_eq!(stats.connects, accepted as u64);
    assert!(stats.waited_grants > 0, "requests queued: {stats:#?}");
    assert_quiescent(&client).await;
}

async fn concurrent_requests_open_connections_up_to_the_limit_when_needed<R: Adapter>() {
    // 4 requests that each hold a connection for a while, with a limit of 4:
    // the pool opens as many as needed, and never more.
    const LIMIT: u32 = 4;
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::builder()
        .max_connections_per_key(LIMIT)
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..LIMIT * 2 {
        let client = client.clone();
        let url = server.url("/slow/200");
        tasks.push(spawn::<R, _>(async move {
            get(&client, url).await.unwrap().into_body().text().await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "slow");
    }
    // 8 requests of 200 ms over 4 connections: two rounds, not eight.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    assert!(server.accepted() <= LIMIT as usize);
    assert!(
        server.accepted() >= 2,
        "concurrent requests were served one at a time"
    );
    assert_quiescent(&client).await;
}

async fn a_body_dropped_half_read_closes_its_connection<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    let mut body = get(&client, server.url("/bytes/4000000"))
        .await
        .unwrap()
        .into_body();
    let first = body.chunk().await.unwrap().expect("a first chunk");
    assert_eq!(first[..], content(first.len())[..]);
    drop(body);
    assert_quiescent(&client).await;
    assert_eq!(
        client.stats().open,
        0,
        "the half-read connection was closed"
    );
    // The next request opens a new connection and works.
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(server.accepted(), 2);
    assert_quiescent(&client).await;
}

async fn a_response_that_is_not_read_holds_its_connection<R: Adapter>() {
    // While a streamed response is held, its connection is busy: a second
    // request opens another one. After the first is read, both are idle.
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    let held = get(&client, server.url("/bytes/2000000")).await.unwrap();
    let stats = client.stats();
    assert_eq!((stats.busy, stats.leases), (1, 1), "{stats:#?}");
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(server.accepted(), 2);
    let body = held.into_body().bytes().await.unwrap();
    assert_eq!(body.len(), 2_000_000);
    assert_quiescent(&client).await;
    assert_eq!(client.stats().idle, 2);
}

support::conformance!(
    sequential_requests_reuse_one_connection,
    every_kind_of_body_gives_the_connection_back,
    concurrent_requests_stay_within_the_per_origin_limit,
    concurrent_requests_open_connections_up_to_the_limit_when_needed,
    a_body_dropped_half_read_closes_its_connection,
    a_response_that_is_not_read_holds_its_connection,
);
