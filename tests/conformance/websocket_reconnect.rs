//! Reconnecting WebSockets against a server that drops every connection after
//! a few messages: each drop is followed by a new WebSocket, messages sent
//! while disconnected are delivered after reconnection in order, a full buffer
//! refuses a message with a typed error instead of losing it, and nothing is
//! left in the pool.

use std::time::Duration;

use crate::support::{self, assert_quiescent, wait_for, within, Adapter};
use muxpool::client::Client;
use muxpool::websocket::{Reconnect, ReconnectingWebSocket};
use muxpool::{ErrorKind, Message, WebSocketError};
use muxpool_testkit::ws_server::{Behavior, Options, WsServer};

fn request(url: &str) -> http::Request<()> {
    http::Request::get(url).body(()).expect("a valid request")
}

async fn recv_text(ws: &mut ReconnectingWebSocket) -> String {
    let message = within(Duration::from_secs(10), "a message", ws.recv())
        .await
        .expect("a message");
    message.as_text().expect("a text message").to_owned()
}

async fn messages_sent_while_disconnected_arrive_after_reconnection<R: Adapter>() {
    let server = WsServer::start(Options {
        behavior: Behavior::DropAfter(3),
        ..Options::default()
    });
    let client = Client::<R>::new();
    let mut ws = client
        .reconnecting_websocket(request(&server.url("/feed")), Reconnect::default())
        .await
        .expect("open");
    for text in ["a", "b", "c"] {
        ws.send(text).await.expect("send");
        assert_eq!(recv_text(&mut ws).await, text);
    }
    // The server drops the first connection after its third message.
    wait_for(Duration::from_secs(5), "the drop is noticed", || {
        client.stats().open == 0
    })
    .await;
    for text in ["d", "e", "f"] {
        ws.send(text).await.expect("kept for the next WebSocket");
    }
    for text in ["d", "e", "f"] {
        assert_eq!(recv_text(&mut ws).await, text);
    }
    assert_eq!(ws.reconnects(), 1);
    assert_eq!(server.accepted(), 2);

    // A receive waiting when the second connection drops waits through the
    // reconnect, and what is sent then goes out on the third.
    wait_for(Duration::from_secs(5), "the second drop is noticed", || {
        client.stats().open == 0
    })
    .await;
    let nothing = support::timeout(Duration::from_millis(300), ws.recv()).await;
    assert!(nothing.is_none(), "{nothing:?}");
    wait_for(Duration::from_secs(10), "the third connection", || {
        server.accepted() == 3
    })
    .await;
    ws.send("g").await.expect("send");
    assert_eq!(recv_text(&mut ws).await, "g");
    assert_eq!(ws.reconnects(), 2);
    assert_eq!(
        server
            .handshakes()
            .iter()
            .filter(|h| h.path == "/feed")
            .count(),
        3
    );
    ws.close().await.expect("close");
    assert_quiescent(&client).await;
}

async fn a_full_buffer_refuses_messages_instead_of_dropping_them<R: Adapter>() {
    let server = WsServer::start(Options {
        behavior: Behavior::DropAfter(1),
        ..Options::default()
    });
    let url = server.url("/");
    let client = Client::<R>::builder()
        .connect_timeout(Duration::from_millis(500))
        .build()
        .expect("a client");
    let mut ws = client
        .reconnecting_websocket(request(&url), Reconnect::with_buffer(2))
        .await
        .expect("open");
    ws.send("only").await.expect("send");
    assert_eq!(recv_text(&mut ws).await, "only");
    // The server goes away for good: every reconnect fails.
    drop(server);
    wait_for(Duration::from_secs(5), "the drop is noticed", || {
        client.stats().open == 0
    })
    .await;
    ws.send("one").await.expect("buffered");
    ws.send("two").await.expect("buffered");
    let error = ws.send("three").await.expect_err("the buffer is full");
    assert_eq!(error.kind(), ErrorKind::WebSocket);
    assert_eq!(
        error.websocket(),
        Some(&WebSocketError::BufferFull { capacity: 2 })
    );
    assert_eq!(
        error.to_string(),
        format!(
            "WebSocket error on {url}: the WebSocket is reconnecting and its buffer of 2 messages is full"
        )
    );
    assert_eq!(ws.buffered(), 2);
    assert!(!ws.is_connected());
    drop(ws);
    // The reconnect task gives up once the WebSocket is dropped.
    wait_for(Duration::from_secs(5), "reconnecting stops", || {
        let stats = client.stats();
        stats.connecting == 0 && stats.waiting == 0
    })
    .await;
    assert_quiescent(&client).await;
}

async fn a_message_over_the_limit_is_refused_and_the_link_goes_on<R: Adapter>() {
    let server = WsServer::start(Options::default());
    let client = Client::<R>::builder()
        .max_websocket_message(100)
        .build()
        .expect("a client");
    let mut ws = client
        .reconnecting_websocket(request(&server.url("/")), Reconnect::default())
        .await
        .expect("open");
    let error = ws
        .send(Message::Binary(vec![0; 101].into()))
        .await
        .expect_err("too large");
    assert!(matches!(
        error.websocket(),
        Some(WebSocketError::MessageTooLarge {
            size: 101,
            max: 100
        })
    ));
    ws.send("fits").await.expect("send");
    assert_eq!(recv_text(&mut ws).await, "fits");
    assert_eq!(ws.reconnects(), 0);
    drop(ws);
    assert_quiescent(&client).await;
}

support::conformance!(
    messages_sent_while_disconnected_arrive_after_reconnection,
    a_full_buffer_refuses_messages_instead_of_dropping_them,
    a_message_over_the_limit_is_refused_and_the_link_goes_on,
);
