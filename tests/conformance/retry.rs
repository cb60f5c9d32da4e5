//! Retry once: a request that fails on a reused connection before any byte of a
//! response arrived (the server closed the idle connection just as the request
//! went out) is sent once more on a new connection when that is safe: an
//! idempotent method, or one the caller marks so (`Idempotent`, or an
//! `Idempotency-Key` header), with a body that can be sent again
//! (`Client::send`, `may_resend`). A `POST` the caller did not mark is not:
//! the server may have acted on it. A request whose streamed body was consumed
//! is not replayed either: it fails with a protocol error saying the
//! connection closed before the response.

use crate::support::Adapter;

use std::time::Duration;

use crate::support::scripted::Scripted;
use crate::support::{self, assert_quiescent, get_text, request, PatternBody};
use bytes::Bytes;
use http::Method;
use muxpool::client::Client;
use muxpool::{Body, ErrorKind};
use muxpool_testkit::hostile::{Behavior, Hostile};

/// The first connection answers one request and closes when the second
/// arrives; later connections answer everything.
fn first_answers_one(i: usize) -> usize {
    if i == 0 {
        1
    } else {
        usize::MAX
    }
}

async fn get_on_a_connection_closed_at_the_request_is_retried<R: Adapter>() {
    let server = Scripted::start(first_answers_one).await;
    let client = Client::<R>::new();
    assert_eq!(get_text(&client, server.url("/")).await, "ok");
    // The connection is idle and open; the server closes it when the request
    // arrives, without answering.
    assert_eq!(get_text(&client, server.url("/")).await, "ok");
    assert_eq!(server.accepted(), 2, "retried on a new connection");
    assert_eq!(server.answered(), 2);
    let stats = client.stats();
    assert_eq!(stats.grants, 3, "the retry is a second grant: {stats:#?}");
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 1);
}

/// How the caller marks a request safe to send twice, if at all.
#[derive(Clone, Copy, Debug)]
enum Mark {
    None,
    Extension,
    Header,
}

async fn idempotent_methods_and_marked_requests_are_retried<R: Adapter>() {
    for (method, body, mark) in [
        (Method::HEAD, Bytes::new(), Mark::None),
        (Method::PUT, Bytes::from_static(b"put body"), Mark::None),
        (Method::DELETE, Bytes::new(), Mark::None),
        // Not idempotent, but the caller says sending it twice is safe.
        (
            Method::POST,
            Bytes::from_static(b"post body"),
            Mark::Extension,
        ),
        (
            Method::PATCH,
            Bytes::from_static(b"patch body"),
            Mark::Header,
        ),
    ] {
        let server = Scripted::start(first_answers_one).await;
        let client = Client::<R>::new();
        assert_eq!(get_text(&client, server.url("/")).await, "ok");
        let mut req = request(method.clone(), server.url("/"), body);
        match mark {
            Mark::None => {}
            Mark::Extension => {
                req.extensions_mut().insert(muxpool::Idempotent);
            }
            Mark::Header => {
                req.headers_mut()
                    .insert("idempotency-key", http::HeaderValue::from_static("order-7"));
            }
        }
        let response = client
            .send(req)
            .await
            .unwrap_or_else(|e| panic!("{method} ({mark:?}) was not retried: {e:#}"));
        assert_eq!(response.status(), 200, "{method}");
        drop(response.into_body().bytes().await.unwrap());
        assert_eq!(server.accepted(), 2, "{method}");
        assert_quiescent(&client).await;
    }
}

/// A `POST` nobody marked may have been acted on by the server that closed
/// its connection: it is not sent again, even with its body in memory.
async fn an_unmarked_post_is_not_sent_twice<R: Adapter>() {
    let server = Scripted::start(first_answers_one).await;
    let client = Client::<R>::new();
    assert_eq!(get_text(&client, server.url("/")).await, "ok");
    let req = request(Method::POST, server.url("/"), Bytes::from_static(b"order"));
    let error = client.send(req).await.expect_err("not sent again");
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error:#}");
    assert_eq!(server.accepted(), 1, "no second connection for it");
    assert_quiescent(&client).await;
}

async fn post_with_a_streamed_body_is_not_replayed<R: Adapter>() {
    let server = Scripted::start(first_answers_one).await;
    let client = Client::<R>::new();
    assert_eq!(get_text(&client, server.url("/")).await, "ok");
    let streamed = http::Request::post(server.url("/"))
        .body(Body::wrap(PatternBody::new(64 * 1024, 4096, false)))
        .unwrap();
    let error = client
        .send(streamed)
        .await
        .expect_err("a consumed streamed body cannot be sent again");
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error:#}");
    let text = format!("{error:#}");
    assert!(
        text.contains("closed") || text.contains("reset") || text.contains("writing"),
        "the error says the connection went away: {text}"
    );
    assert_eq!(server.accepted(), 1, "not replayed on a new connection");
    assert_quiescent(&client).await;
    // The client is fine afterwards.
    assert_eq!(get_text(&client, server.url("/")).await, "ok");
    assert_eq!(server.accepted(), 2);
}

async fn every_reused_connection_closing_at_the_request<R: Adapter>() {
    // Every connection answers one request, then closes at the next one: each
    // request after the first fails on its reused connection and is retried
    // on a new one, which answers.
    let server = Scripted::start(|_| 1).await;
    let client = Client::<R>::new();
    for _ in 0..4 {
        assert_eq!(get_text(&client, server.url("/")).await, "ok");
    }
    assert_eq!(server.answered(), 4);
    assert_eq!(server.accepted(), 4);
    assert_quiescent(&client).await;
}

async fn the_retry_goes_to_a_fresh_connection<R: Adapter>() {
    // Two idle connections that both close at their next request: the request
    // fails on one, and its retry does not trust the other (it has been idle at
    // least as long) but closes it unused and opens a new one.
    let server = Scripted::start(|_| 1).await;
    let client = Client::<R>::new();
    let (a, b) = tokio::join!(
        get_text(&client, server.url("/slow")),
        get_text(&client, server.url("/slow"))
    );
    assert_eq!((a.as_str(), b.as_str()), ("ok", "ok"));
    assert_eq!(
        server.accepted(),
        2,
        "two concurrent requests, two connections"
    );
    assert_quiescent(&client).await;
    assert_eq!(client.stats().idle, 2);

    assert_eq!(get_text(&client, server.url("/")).await, "ok");
    assert_eq!(server.accepted(), 3, "the retry opened a new connection");
    assert_eq!(
        server.answered(),
        3,
        "the other idle connection was not used"
    );
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 1, "only the fresh connection is left");
}

async fn retry_happens_only_once<R: Adapter>() {
    // The first connection answers one request and closes at the next; every
    // later one closes without answering. The request fails on the reused
    // connection, its retry fails on a fresh one, and there is no third try.
    let server = Scripted::start(|i| usize::from(i == 0)).await;
    let client = Client::<R>::new();
    assert_eq!(get_text(&client, server.url("/")).await, "ok");
    let error = support::get(&client, server.url("/"))
        .await
        .expect_err("the retry fails too");
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error:#}");
    assert_eq!(server.accepted(), 2, "one retry only");
    assert_eq!(server.answered(), 1);
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
}

async fn a_connection_that_waited_unused_is_treated_as_reused<R: Adapter>() {
    // Pre-warming opens connections nobody asked for; they wait in the pool,
    // where the server may drop them as it may drop any idle connection. Here
    // the second and third connections close as their first request arrives:
    // that request goes again, on a fresh connection, as on any connection
    // that waited.
    let server = Scripted::start(|i| if i == 1 || i == 2 { 0 } else { 100 }).await;
    let mut pool = muxpool::PoolConfig::default();
    pool.min_idle_per_key = 2;
    let client = Client::<R>::builder()
        .pool(pool)
        .build()
        .expect("a valid configuration");
    assert_eq!(get_text(&client, server.url("/")).await, "ok");
    support::wait_until("two more connections wait, unused", || {
        client.stats().idle == 3
    })
    .await;
    // The used connection (most recently idle) goes to a slow request; the
    // next request gets one that never served.
    let slow = support::spawn_get_text(&client, server.url("/slow"));
    support::wait_until("the slow request holds its connection", || {
        client.stats().busy == 1
    })
    .await;
    assert_eq!(get_text(&client, server.url("/")).await, "ok");
    assert_eq!(slow.await.expect("the slow request"), "ok");
    assert_eq!(server.answered(), 3);
    assert_quiescent(&client).await;
}

async fn a_fresh_connection_closed_before_the_response_is_an_error<R: Adapter>() {
    // Closing without answering on a new connection is not the keep-alive race:
    // no retry, a protocol error.
    let server = Scripted::start(|_| 0).await;
    let client = Client::<R>::new();
    let error = support::get(&client, server.url("/"))
        .await
        .expect_err("no response");
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error:#}");
    assert!(
        format!("{error:#}").contains("connection closed before the response started"),
        "{error:#}"
    );
    assert_eq!(server.accepted(), 1, "not retried");
    assert_quiescent(&client).await;
}

async fn hostile_close_after_one_answer_get_always_succeeds<R: Adapter>() {
    // The hostile server answers once per connection and closes right after:
    // whether the client notices before reusing the connection or only when
    // the request fails on it, every GET succeeds.
    let server = Hostile::start(Behavior::CloseAfter { requests: 1 });
    let client = Client::<R>::new();
    for i in 0..10 {
        assert_eq!(
            get_text(&client, server.url("/")).await,
            "ok",
            "request {i}"
        );
        if i % 2 == 0 {
            // Sometimes give the close time to arrive, sometimes not.
            support::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(server.accepted(), 10);
    assert_quiescent(&client).await;
}

async fn hostile_close_after_zero_answers_fails_without_retry<R: Adapter>() {
    let server = Hostile::start(Behavior::CloseAfter { requests: 0 });
    let client = Client::<R>::new();
    let error = client
        .send(request(Method::GET, server.url("/"), Body::empty()))
        .await
        .expect_err("the server never answers");
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error:#}");
    assert_eq!(server.accepted(), 1);
    assert_quiescent(&client).await;
}

support::conformance!(
    get_on_a_connection_closed_at_the_request_is_retried,
    idempotent_methods_and_marked_requests_are_retried,
    an_unmarked_post_is_not_sent_twice,
    post_with_a_streamed_body_is_not_replayed,
    every_reused_connection_closing_at_the_request,
    the_retry_goes_to_a_fresh_connection,
    retry_happens_only_once,
    a_fresh_connection_closed_before_the_response_is_an_error,
    a_connection_that_waited_unused_is_treated_as_reused,
    hostile_close_after_one_answer_get_always_succeeds,
    hostile_close_after_zero_answers_fails_without_retry,
);
