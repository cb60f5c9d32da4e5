//! Request deadlines, which the pool keeps in a table its timer task expires
//! (`adapters/client/src/deadlines.rs`): an earlier deadline is kept while later
//! ones wait, many deadlines due together all expire, and deadlines of
//! requests that finished in time never fire.

use std::time::{Duration, Instant};

use crate::support::{self, assert_quiescent, get_text, request, spawn, spawn_get_text, Adapter};
use http::Method;
use muxpool::client::Client;
use muxpool::{Body, ErrorKind, RequestTimeout};
use muxpool_testkit::hostile::{Behavior, Hostile};
use muxpool_testkit::hyper_server::{HyperServer, Options};

/// An in-process server, and a client whose requests time out after
/// `timeout` unless they say otherwise.
fn setup<R: Adapter>(timeout: Duration) -> (HyperServer, Client<R>) {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::builder().timeout(timeout).build().unwrap();
    (server, client)
}

/// A `GET url` with its own timeout.
fn with_timeout(url: String, timeout: Duration) -> http::Request<Body> {
    let mut req = request(Method::GET, url, Body::empty());
    req.extensions_mut().insert(RequestTimeout(timeout));
    req
}

async fn an_earlier_deadline_is_kept_while_later_ones_wait<R: Adapter>() {
    let (server, client) = setup::<R>(Duration::from_secs(10));
    // A request with the client's distant deadline is in flight: the timer
    // task sleeps until that deadline...
    let slow = spawn_get_text(&client, server.url("/slow/1200"));
    support::wait_until("the slow request is in flight", || server.requests() == 1).await;
    // ...and a request whose own deadline comes much sooner wakes it to sleep
    // less.
    let started = Instant::now();
    let error = client
        .send(with_timeout(
            server.url("/slow/5000"),
            Duration::from_millis(200),
        ))
        .await
        .expect_err("slower than its deadline");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:#}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(190) && elapsed < Duration::from_millis(1000),
        "{elapsed:?}"
    );
    // The later deadline did not fire with it.
    assert_eq!(slow.await.unwrap(), "slow");
    assert_quiescent(&client).await;
}

async fn deadlines_due_together_all_expire<R: Adapter>() {
    let (server, client) = setup::<R>(Duration::from_secs(10));
    let started = Instant::now();
    // Deadlines in arrival order and out of it, all long before the answers.
    let tasks: Vec<_> = (0..40u64)
        .map(|i| {
            let client = client.clone();
            let url = server.url("/slow/5000");
            let timeout = Duration::from_millis(300 + (i * 37) % 200);
            spawn::<R, _>(async move { client.send(with_timeout(url, timeout)).await })
        })
        .collect();
    for task in tasks {
        let error = task
            .await
            .expect("the task ran to its end")
            .expect_err("every request is slower than its deadline");
        assert_eq!(error.kind(), ErrorKind::Timeout, "{error:#}");
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0, "timed-out exchanges are closed");
    // The pool serves on.
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
}

async fn deadlines_of_finished_requests_never_fire<R: Adapter>() {
    let (server, client) = setup::<R>(Duration::from_millis(400));
    // Many requests that finish long before their deadlines, then a wait past
    // every one of those deadlines with the connections idle.
    for _ in 0..50 {
        assert_eq!(get_text(&client, server.url("/")).await, "hello");
    }
    support::sleep(Duration::from_millis(600)).await;
    // A request made now has a deadline of its own, not a stale one.
    assert_eq!(get_text(&client, server.url("/slow/200")).await, "slow");
    assert_eq!(server.accepted(), 1, "one connection served them all");
    assert_quiescent(&client).await;
}

/// A request whose deadline passes while its HTTP/2 connection still waits
/// for the server's SETTINGS says so, not that the pool had no room.
async fn a_timeout_during_the_handshake_says_so<R: Adapter>() {
    let server = Hostile::start(Behavior::Silent);
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_millis(300))
        .build()
        .expect("a valid configuration");
    let request = http::Request::get(server.url("/"))
        .body(Body::empty())
        .expect("a request");
    let error = client.send(request).await.expect_err("no SETTINGS came");
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert_eq!(
        error.to_string(),
        format!(
            "waiting for a connection to http://127.0.0.1:{} timed out after 300ms: \
             a connection was still opening (connect, TLS or HTTP/2 handshake)",
            server.port()
        )
    );
    assert_eq!(error.timeout(), Some(Duration::from_millis(300)));
    support::assert_origin(&error, "http", server.port());
}

support::conformance!(
    a_timeout_during_the_handshake_says_so,
    an_earlier_deadline_is_kept_while_later_ones_wait,
    deadlines_due_together_all_expire,
    deadlines_of_finished_requests_never_fire,
);
