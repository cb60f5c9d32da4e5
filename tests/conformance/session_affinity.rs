//! Session affinity on every runtime: requests that carry a `Session` go to
//! the connection the session used last while it can take them, where a
//! request without one takes the pool's most recently used connection; a
//! message `Connection` over HTTP is one session unless told otherwise.
//!
//! Each test first leaves the pool with two idle HTTP/1.1 connections, the
//! session's (the server's connection 1) being the less recently used, so
//! that affinity and the pool's own choice disagree. The server's `/conn`
//! route answers with the number of the connection a request came on.

use crate::support::{self, assert_quiescent, get_text, request, spawn, wait_until, Adapter};
use http::Method;
use muxpool::client::Client;
use muxpool::{Body, Message, Session};
use muxpool::{ChannelOptions, Codec};
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};

fn server() -> HyperServer {
    HyperServer::start(Options {
        protocol: Protocol::Http1,
        ..Options::default()
    })
}

/// The connection `session`'s request to `/conn` came on.
async fn conn_of<R: Adapter>(
    client: &Client<R>,
    server: &HyperServer,
    session: &Session,
) -> String {
    let mut req = request(Method::GET, server.url("/conn"), Body::empty());
    req.extensions_mut().insert(session.clone());
    let response = client.send(req).await.expect("GET /conn");
    response.into_body().text().await.expect("the body")
}

/// Runs `placed` (a first request of the session) while another request
/// holds connection 0, then lets that one finish: connection 0 is then the
/// most recently used, and the session's connection 1 the other idle one.
async fn behind_a_busy_connection<R: Adapter, F>(
    client: &Client<R>,
    server: &HyperServer,
    placed: F,
) where
    F: std::future::Future<Output = String>,
{
    let slow = {
        let (client, url) = (client.clone(), server.url("/slow/300"));
        spawn::<R, _>(async move { get_text(&client, &url).await })
    };
    wait_until("the slow request arrives", || server.requests() == 1).await;
    assert_eq!(placed.await, "1", "the session opens the second connection");
    assert_eq!(slow.await.expect("ran"), "slow");
}

async fn a_session_stays_on_its_connection<R: Adapter>() {
    let server = server();
    let client = Client::<R>::new();
    let session = Session::new();
    assert!(!session.is_placed());
    behind_a_busy_connection(&client, &server, conn_of(&client, &server, &session)).await;
    assert!(session.is_placed());
    // Without the session: the most recently used connection.
    assert_eq!(get_text(&client, server.url("/conn")).await, "0");
    for _ in 0..3 {
        assert_eq!(conn_of(&client, &server, &session).await, "1");
    }
    assert_eq!(server.accepted(), 2);
    assert_quiescent(&client).await;
}

async fn a_busy_session_connection_is_passed_over<R: Adapter>() {
    let server = server();
    let client = Client::<R>::new();
    let session = Session::new();
    behind_a_busy_connection(&client, &server, conn_of(&client, &server, &session)).await;
    // The session's connection is busy: its next request goes elsewhere at
    // once (no wait), and the session moves with it.
    let held = {
        let mut req = request(Method::GET, server.url("/slow/300"), Body::empty());
        req.extensions_mut().insert(session.clone());
        let client = client.clone();
        spawn::<R, _>(async move {
            client
                .send(req)
                .await
                .expect("GET /slow")
                .into_body()
                .text()
                .await
                .expect("the body")
        })
    };
    wait_until("the session's slow request arrives", || {
        server.requests() == 3
    })
    .await;
    assert_eq!(conn_of(&client, &server, &session).await, "0");
    assert_eq!(held.await.expect("ran"), "slow");
    assert_eq!(conn_of(&client, &server, &session).await, "0");
    assert_quiescent(&client).await;
}

/// Every message is its own id: requests over HTTP need no correlation.
struct Whole;

impl Codec for Whole {
    type Id = String;

    fn id(&self, message: &Message) -> Option<String> {
        message.as_text().map(str::to_owned)
    }
}

async fn a_message_connection_over_http_is_one_session<R: Adapter>() {
    let server = server();
    let client = Client::<R>::new();
    let url: http::Uri = server.url("/conn").parse().expect("a URI");
    let sticky = client.messages_over_http(url.clone(), Whole, ChannelOptions::default());
    let loose = client.messages_over_http(url, Whole, ChannelOptions::default().affinity(false));
    let text = |m: Message| m.as_text().expect("a text answer").to_owned();
    behind_a_busy_connection(&client, &server, async {
        text(sticky.request("first").await.expect("a request"))
    })
    .await;
    // The pool's own choice, the most recently used connection...
    assert_eq!(text(loose.request("loose").await.expect("a request")), "0");
    // ...which the session's messages pass over for theirs.
    for i in 0..3 {
        let message = format!("again {i}");
        assert_eq!(text(sticky.request(message).await.expect("a request")), "1");
    }
    assert_eq!(server.accepted(), 2);
    drop((sticky, loose));
    assert_quiescent(&client).await;
}

support::conformance!(
    a_session_stays_on_its_connection,
    a_busy_session_connection_is_passed_over,
    a_message_connection_over_http_is_one_session,
);
