//! One request/notify/receive `Connection` for message protocols, over a
//! WebSocket and over HTTP/2, on every runtime: responses correlated by the
//! caller's codec when the server answers in reverse order, notifications,
//! server-initiated messages, backpressure by await, and a deadline on every
//! request.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{self, assert_quiescent, sleep, spawn, within, Adapter};
use muxpool::client::Client;
use muxpool::{ChannelOptions, Codec, MessageChannel};
use muxpool::{ErrorKind, Message};
use muxpool_testkit::hyper_server::{HyperServer, Options as HttpOptions, Protocol};
use muxpool_testkit::ws_server::{Behavior, Options, WsServer};

/// `req {id} ...` and `res {id} ...` carry id `{id}`; anything else none.
struct Words;

impl Codec for Words {
    type Id = String;

    fn id(&self, message: &Message) -> Option<String> {
        let mut words = message.as_text()?.split(' ');
        match words.next()? {
            "req" | "res" => words.next().map(str::to_owned),
            _ => None,
        }
    }
}

fn rpc_server(batch: usize) -> WsServer {
    WsServer::start(Options {
        behavior: Behavior::Rpc(batch),
        ..Options::default()
    })
}

async fn over_websocket<R: Adapter>(
    client: &Client<R>,
    server: &WsServer,
    options: ChannelOptions,
) -> MessageChannel<Words> {
    let request = http::Request::get(server.url("/rpc"))
        .body(())
        .expect("a request");
    client
        .messages_over_websocket(request, Words, options)
        .await
        .expect("a connection")
}

fn text(message: Message) -> String {
    message.as_text().expect("text").to_owned()
}

async fn responses_answered_in_reverse_order_find_their_requests<R: Adapter>() {
    let server = rpc_server(16);
    let client = Client::<R>::new();
    let conn = Arc::new(over_websocket(&client, &server, ChannelOptions::default()).await);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let conn = Arc::clone(&conn);
            spawn::<R, _>(async move { conn.request(format!("req {i} body-{i}")).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let answer = within(Duration::from_secs(10), "a response", task)
            .await
            .expect("ran")
            .expect("a response");
        assert_eq!(text(answer), format!("res {i} body-{i}"));
    }
    assert_eq!(server.accepted(), 1);
    assert_eq!(server.messages(), 16);
    // Once the connection is dropped its WebSocket is clean: back to the pool.
    drop(conn);
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 1);
}

async fn notifications_and_server_initiated_messages<R: Adapter>() {
    let server = rpc_server(1);
    let client = Client::<R>::new();
    let conn = over_websocket(&client, &server, ChannelOptions::default()).await;
    conn.notify("note hello").await.expect("notify");
    conn.notify("note world").await.expect("notify");
    // Requests are answered meanwhile; the pushes wait for `receive`.
    assert_eq!(
        text(conn.request("req 7 x").await.expect("response")),
        "res 7 x"
    );
    assert_eq!(text(conn.receive().await.expect("a push")), "push hello");
    assert_eq!(text(conn.receive().await.expect("a push")), "push world");
    let error = conn
        .request("no id")
        .await
        .expect_err("a request needs an id");
    assert_eq!(error.kind(), ErrorKind::Request);
    drop(conn);
    assert_quiescent(&client).await;
}

async fn saturation_waits_and_every_request_has_a_deadline<R: Adapter>() {
    // The server answers only pairs: one request alone is never answered.
    let server = rpc_server(2);
    let client = Client::<R>::builder()
        .timeout(Duration::from_millis(800))
        .build()
        .expect("a client");
    let options = ChannelOptions::default().max_in_flight(1);
    let conn = Arc::new(over_websocket(&client, &server, options).await);
    let first = {
        let conn = Arc::clone(&conn);
        spawn::<R, _>(async move { conn.request("req 1 a").await })
    };
    let second = {
        let conn = Arc::clone(&conn);
        spawn::<R, _>(async move {
            sleep(Duration::from_millis(100)).await;
            conn.request("req 2 b").await
        })
    };
    // The second waits for the first's place: the server sees one request.
    sleep(Duration::from_millis(300)).await;
    assert_eq!(server.messages(), 1);
    let error = first.await.expect("ran").expect_err("never answered");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:#}");
    let origin = error
        .origin()
        .expect("the timeout names the channel's origin");
    assert_eq!((origin.scheme(), origin.port()), ("ws", server.port()));
    // Its place freed, the second goes out: now a pair, both answered, but
    // the first's answer finds nobody waiting and is queued as a
    // server-initiated message.
    let answer = second.await.expect("ran").expect("answered");
    assert_eq!(text(answer), "res 2 b");
    assert_eq!(text(conn.receive().await.expect("unclaimed")), "res 1 a");
    drop(conn);
    assert_quiescent(&client).await;
}

async fn the_same_connection_over_http2<R: Adapter>() {
    let server = HyperServer::start(HttpOptions {
        protocol: Protocol::Http2,
        ..HttpOptions::default()
    });
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .build()
        .expect("a client");
    let options = ChannelOptions::default().events(server.url("/lines/3").parse().expect("a URI"));
    let url = server.url("/echo").parse().expect("a URI");
    let conn = Arc::new(client.messages_over_http(url, Words, options));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let conn = Arc::clone(&conn);
            spawn::<R, _>(async move { conn.request(format!("req {i} over-h2")).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let answer = task.await.expect("ran").expect("a response");
        // The echo route answers each POST with its body, on its own stream.
        assert_eq!(text(answer), format!("req {i} over-h2"));
    }
    conn.notify("note over-h2").await.expect("notify");
    for i in 0..3 {
        assert_eq!(
            text(conn.receive().await.expect("an event")),
            format!("event {i}")
        );
    }
    assert_eq!(server.accepted(), 1);
    assert_eq!(server.requests(), 18);
    drop(conn);
    assert_quiescent(&client).await;
}

/// The events stream cannot make the client buffer a line without bound: a
/// line over `max_event_line` fails `receive` with a body error saying so,
/// and lines within it are read.
async fn an_events_line_over_its_limit_is_refused<R: Adapter>() {
    let server = HyperServer::start(HttpOptions::default());
    let client = Client::<R>::new();
    let url: http::Uri = server.url("/echo").parse().expect("a URI");
    // `event 0`: seven bytes a line.
    let options = ChannelOptions::default()
        .events(server.url("/lines/3").parse().expect("a URI"))
        .max_event_line(7);
    let conn = client.messages_over_http(url.clone(), Words, options);
    assert_eq!(text(conn.receive().await.expect("an event")), "event 0");
    drop(conn);
    // The deterministic content has a line end at byte 10, then every 251.
    let options = ChannelOptions::default()
        .events(server.url("/chunked/100000").parse().expect("a URI"))
        .max_event_line(100);
    let conn = client.messages_over_http(url, Words, options);
    let first = conn.receive().await.expect("a short first line");
    assert_eq!(first.len(), 10);
    let error = conn.receive().await.expect_err("a line over the limit");
    assert_eq!(error.kind(), ErrorKind::Body);
    assert!(error.to_string().contains("max_event_line"), "{error}");
    support::assert_origin(&error, "http", server.port());
    drop(conn);
    assert_quiescent(&client).await;
}

support::conformance!(
    an_events_line_over_its_limit_is_refused,
    responses_answered_in_reverse_order_find_their_requests,
    notifications_and_server_initiated_messages,
    saturation_waits_and_every_request_has_a_deadline,
    the_same_connection_over_http2,
);
