//! Connections the server closes: after N requests (`Connection: close` on the
//! Nth response), after an idle period (the socket just closes), and silently
//! after answering (a raw server). Every request succeeds, a connection the
//! server closed while it sat idle in the pool is never used for a request, and
//! the connections opened are exactly those needed.

use crate::support::Adapter;

use std::time::Duration;

use crate::support::{self, assert_quiescent, get_text, get_text_times, wait_until, PatternBody};
use muxpool::client::Client;
use muxpool_testkit::hostile::{Behavior, Hostile};
use muxpool_testkit::hyper_server::{content, HyperServer, Options};

async fn server_closing_after_n_requests<R: Adapter>() {
    let server = HyperServer::start(Options {
        close_after_requests: Some(3),
        ..Options::default()
    });
    let client = Client::<R>::new();
    get_text_times(&client, server.url("/"), 10, "hello").await;
    // 3 + 3 + 3 + 1: the client honours `Connection: close` and opens a new
    // connection exactly when the previous one was closed.
    assert_eq!(server.accepted(), 4);
    assert_eq!(server.requests(), 10);
    let stats = client.stats();
    assert_eq!(stats.connects, 4, "{stats:#?}");
    assert_eq!(stats.reused_grants, 6, "{stats:#?}");
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 1, "only the last connection is kept");
}

async fn server_closing_after_n_requests_with_streamed_bodies<R: Adapter>() {
    // The `Connection: close` response is streamed, not complete with its
    // head: the connection must still not go back to the pool.
    let server = HyperServer::start(Options {
        close_after_requests: Some(2),
        ..Options::default()
    });
    let client = Client::<R>::new();
    for _ in 0..5 {
        let (status, body) = support::get_bytes(&client, server.url("/chunked/200000")).await;
        assert_eq!(status, 200);
        assert_eq!(body, content(200_000));
    }
    assert_eq!(server.accepted(), 3);
    assert_quiescent(&client).await;
}

async fn connection_closed_by_the_server_while_idle_is_not_used<R: Adapter>() {
    let server = HyperServer::start(Options {
        idle_timeout: Some(Duration::from_millis(100)),
        ..Options::default()
    });
    let client = Client::<R>::new();
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(server.accepted(), 1);
    wait_until("the server closes the idle connection", || {
        server.open_connections() == 0
    })
    .await;
    // Let the runtime's reactor see the end of stream (one park of this
    // current-thread runtime polls it).
    support::sleep(Duration::from_millis(20)).await;

    // A streamed POST cannot be replayed, so it only succeeds if the client did
    // not write it on the dead connection: it noticed the close and opened a
    // new connection instead.
    let request = http::Request::post(server.url("/echo"))
        .body(muxpool::Body::wrap(PatternBody::new(
            100_000,
            8 * 1024,
            false,
        )))
        .unwrap();
    let response = client
        .send(request)
        .await
        .expect("POST on a fresh connection");
    let body = response.into_body().bytes().await.unwrap();
    assert_eq!(body, content(100_000));
    assert_eq!(server.accepted(), 2);
    assert_quiescent(&client).await;
}

async fn idle_timeout_of_the_server_between_bursts<R: Adapter>() {
    let server = HyperServer::start(Options {
        idle_timeout: Some(Duration::from_millis(200)),
        ..Options::default()
    });
    let client = Client::<R>::new();
    for burst in 1..=3 {
        for _ in 0..3 {
            assert_eq!(get_text(&client, server.url("/")).await, "hello");
        }
        assert_eq!(server.accepted(), burst, "one connection per burst");
        wait_until("the server closes the idle connection", || {
            server.open_connections() == 0
        })
        .await;
    }
    assert_eq!(server.requests(), 9);
    assert_quiescent(&client).await;
}

async fn client_idle_timeout_closes_before_the_server<R: Adapter>() {
    // The client's own idle timeout, shorter than the server's: the client
    // closes the connection, the server sees it go.
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::builder()
        .idle_timeout(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(server.open_connections(), 1);
    wait_until("the client closes its idle connection", || {
        server.open_connections() == 0
    })
    .await;
    assert_eq!(client.stats().open, 0);
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(server.accepted(), 2);
}

async fn hostile_close_after_each_answer<R: Adapter>() {
    // Answers one request per connection, without `Connection: close`, and
    // then closes: every request must still succeed.
    let server = Hostile::start(Behavior::CloseAfter { requests: 1 });
    let client = Client::<R>::new();
    get_text_times(&client, server.url("/"), 8, "ok").await;
    assert_eq!(server.accepted(), 8, "one connection per answered request");
    assert_eq!(
        server.requests(),
        8,
        "no request was lost on a dead connection"
    );
    assert_quiescent(&client).await;
}

async fn hostile_close_after_three_answers<R: Adapter>() {
    let server = Hostile::start(Behavior::CloseAfter { requests: 3 });
    let client = Client::<R>::new();
    get_text_times(&client, server.url("/"), 10, "ok").await;
    assert_eq!(server.accepted(), 4);
    assert_quiescent(&client).await;
}

support::conformance!(
    server_closing_after_n_requests,
    server_closing_after_n_requests_with_streamed_bodies,
    connection_closed_by_the_server_while_idle_is_not_used,
    idle_timeout_of_the_server_between_bursts,
    client_idle_timeout_closes_before_the_server,
    hostile_close_after_each_answer,
    hostile_close_after_three_answers,
);
