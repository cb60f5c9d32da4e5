//! Pooled WebSockets against an in-process tungstenite server, on every
//! runtime: echo of text and binary up to 16 MiB, reuse of a returned
//! WebSocket, keys per path and headers, closes by the server (after N
//! messages, when idle), abrupt drops, health-check pings answered and
//! unanswered, `wss` with a test CA, the message limit, senders on other
//! tasks and the lease they belong to, and no lease or connection left
//! behind.

use std::time::Duration;

use crate::support::{self, assert_quiescent, sleep, tls_trusting_with, wait_for, within, Adapter};
use bytes::Bytes;
use muxpool::client::Client;
use muxpool::sans_io::{CloseReason, HealthCheck};
use muxpool::tls::Alpn;
use muxpool::{ErrorKind, Message, WebSocket, WebSocketError};
use muxpool_testkit::certs::{self, Ca};
use muxpool_testkit::hyper_server::{content, HyperServer, Options as HttpOptions};
use muxpool_testkit::ws_server::{Behavior, Options, WsServer};

fn server(behavior: Behavior) -> WsServer {
    WsServer::start(Options {
        behavior,
        ..Options::default()
    })
}

fn request(url: &str) -> http::Request<()> {
    http::Request::get(url).body(()).expect("a valid request")
}

async fn open<R: Adapter>(client: &Client<R>, url: &str) -> WebSocket {
    client
        .websocket(request(url))
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e:#}"))
}

async fn echo(ws: &mut WebSocket, message: Message) {
    ws.send(message.clone()).await.expect("send");
    let back = ws.recv().await.expect("recv");
    assert!(back == message, "echoed {back:?}, sent {message:?}");
}

/// The WebSocket failure behind `error`.
fn ws_error(error: &muxpool::Error) -> WebSocketError {
    assert_eq!(error.kind(), ErrorKind::WebSocket, "{error:#}");
    error.websocket().cloned().expect("a WebSocket cause")
}

fn client_with_health<R: Adapter>(interval: Duration, timeout: Duration) -> Client<R> {
    support::builder_checking::<R>(HealthCheck::new(Some(interval), timeout))
        .build()
        .expect("a valid configuration")
}

async fn text_and_binary_up_to_16_mib_echo<R: Adapter>() {
    let server = server(Behavior::Echo);
    let client = Client::<R>::new();
    let mut ws = open(&client, &server.url("/echo")).await;
    echo(&mut ws, Message::Text(String::new())).await;
    echo(&mut ws, "hello".into()).await;
    echo(&mut ws, Message::Text("é".repeat(100_000))).await;
    for len in [0, 1, 125, 126, 65_535, 65_536, 1 << 20, 16 << 20] {
        echo(&mut ws, Message::Binary(Bytes::from(content(len)))).await;
    }
    assert_eq!(server.messages(), 11);
    drop(ws);
    assert_quiescent(&client).await;
}

async fn a_returned_websocket_is_reused<R: Adapter>() {
    let server = server(Behavior::Echo);
    let client = Client::<R>::new();
    for i in 0..5 {
        let mut ws = open(&client, &server.url("/chat")).await;
        echo(&mut ws, Message::Text(format!("round {i}"))).await;
    }
    assert_eq!(server.accepted(), 1);
    assert_eq!(server.handshakes().len(), 1);
    let stats = client.stats();
    assert_eq!(stats.connects, 1, "{stats:#?}");
    assert_eq!(stats.open, 1, "{stats:#?}");
    assert_quiescent(&client).await;
}

async fn websockets_are_pooled_per_path_and_headers<R: Adapter>() {
    let server = server(Behavior::Echo);
    let client = Client::<R>::new();
    let with_token = |token: &str| {
        http::Request::get(server.url("/a"))
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .expect("a valid request")
    };
    for _ in 0..2 {
        let mut a = open(&client, &server.url("/a")).await;
        let mut b = open(&client, &server.url("/b?room=1")).await;
        let mut one = client.websocket(with_token("one")).await.expect("open");
        let mut two = client.websocket(with_token("two")).await.expect("open");
        for ws in [&mut a, &mut b, &mut one, &mut two] {
            echo(ws, "ping".into()).await;
        }
    }
    // Four keys, one WebSocket each, each reused once.
    assert_eq!(server.accepted(), 4);
    let handshakes = server.handshakes();
    let paths: Vec<&str> = handshakes.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths, ["/a", "/b?room=1", "/a", "/a"]);
    assert_eq!(handshakes[2].headers["authorization"], "Bearer one");
    assert_eq!(handshakes[3].headers["authorization"], "Bearer two");
    assert_quiescent(&client).await;
}

async fn a_close_by_the_server_is_a_typed_error<R: Adapter>() {
    let server = server(Behavior::CloseAfter(2));
    let client = Client::<R>::new();
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "one".into()).await;
    echo(&mut ws, "two".into()).await;
    let error = ws.recv().await.expect_err("the server closed");
    assert_eq!(
        ws_error(&error),
        WebSocketError::Closed {
            code: 4000,
            reason: "enough".into()
        }
    );
    // The line names the WebSocket's origin and path.
    assert_eq!(
        error.to_string(),
        format!(
            "WebSocket error on ws://127.0.0.1:{}/: the server closed the WebSocket (code 4000: enough)",
            server.port()
        )
    );
    assert_eq!(
        error.origin().map(|o| (o.scheme(), o.port(), o.path())),
        Some(("ws", server.port(), Some("/")))
    );
    assert!(ws.is_closed());
    let error = ws.send("three").await.expect_err("closed");
    assert!(matches!(ws_error(&error), WebSocketError::Closed { .. }));
    drop(ws);
    wait_for(
        Duration::from_secs(5),
        "the WebSocket leaves the pool",
        || client.stats().open == 0,
    )
    .await;
    // The next one is a new connection.
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "again".into()).await;
    assert_eq!(server.accepted(), 2);
    drop(ws);
    assert_quiescent(&client).await;
}

async fn an_idle_close_by_the_server_removes_the_websocket<R: Adapter>() {
    let server = server(Behavior::IdleClose(Duration::from_millis(300)));
    let client = Client::<R>::new();
    // Idle in the pool: the close frame ends it there.
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "hi".into()).await;
    drop(ws);
    wait_for(
        Duration::from_secs(5),
        "the idle WebSocket is closed",
        || client.stats().open == 0,
    )
    .await;
    assert_eq!(client.stats().transport_closes, 1);
    // Leased and idle: the holder hears why.
    let mut ws = open(&client, &server.url("/")).await;
    assert_eq!(server.accepted(), 2);
    let error = within(Duration::from_secs(5), "the idle close", ws.recv())
        .await
        .expect_err("closed");
    assert_eq!(
        ws_error(&error),
        WebSocketError::Closed {
            code: 1001,
            reason: "idle".into()
        }
    );
    drop(ws);
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
}

async fn an_abrupt_drop_is_told_apart_from_a_close<R: Adapter>() {
    let server = server(Behavior::DropAfter(1));
    let client = Client::<R>::new();
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "last".into()).await;
    let error = ws.recv().await.expect_err("the server dropped");
    assert_eq!(ws_error(&error), WebSocketError::Dropped);
    drop(ws);
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
    // Idle in the pool, the drop removes it too.
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "one".into()).await;
    drop(ws);
    wait_for(
        Duration::from_secs(5),
        "the dropped WebSocket leaves",
        || client.stats().open == 0,
    )
    .await;
    assert_eq!(server.accepted(), 2);
    assert_quiescent(&client).await;
}

async fn an_idle_websocket_that_stops_answering_pings_is_closed<R: Adapter>() {
    // Pings every second once idle; an answer may take 2 s.
    let server = server(Behavior::StallAfter(1));
    let client = client_with_health::<R>(Duration::from_secs(1), Duration::from_secs(2));
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "then silence".into()).await;
    drop(ws);
    assert_eq!(client.stats().idle, 1);
    wait_for(
        Duration::from_secs(15),
        "the silent WebSocket is closed",
        || client.stats().open == 0,
    )
    .await;
    let stats = client.stats();
    assert_eq!(
        stats.closes[CloseReason::HealthCheckFailed],
        1,
        "{stats:#?}"
    );
    assert_eq!(server.pings(), 0);
    // The next caller gets a new WebSocket.
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "fresh".into()).await;
    assert_eq!(server.accepted(), 2);
    drop(ws);
    assert_quiescent(&client).await;
}

async fn answered_pings_keep_an_idle_websocket<R: Adapter>() {
    let server = server(Behavior::Echo);
    let client = client_with_health::<R>(Duration::from_millis(300), Duration::from_secs(5));
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "hi".into()).await;
    drop(ws);
    wait_for(Duration::from_secs(20), "three pings are answered", || {
        server.pings() >= 3
    })
    .await;
    // Alive through every check, on both sides.
    let stats = client.stats();
    assert_eq!(stats.open, 1, "{stats:#?}");
    assert_eq!(stats.closes.total(), 0, "{stats:#?}");
    assert_eq!(server.open(), 1);
    assert_eq!(server.accepted(), 1);
    // Still usable. (A caller that comes while a check is out gets a new
    // WebSocket rather than wait: the core grants no connection mid-check.)
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "still here".into()).await;
    drop(ws);
    assert_quiescent(&client).await;
    assert_eq!(client.stats().closes.total(), 0);
}

async fn wss_with_a_test_ca_offers_only_http1<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    // The server prefers h2: a client offering it would get it, and no
    // WebSocket upgrade. The WebSocket offers http/1.1 alone.
    let server = WsServer::start(Options {
        tls: Some(certs::server_config(
            &ca.leaf(&["127.0.0.1"]),
            &[b"h2", b"http/1.1"],
        )),
        behavior: Behavior::Echo,
        ..Options::default()
    });
    let client = Client::<R>::builder()
        .tls(tls_trusting_with(&ca, Alpn::Http1AndHttp2))
        .build()
        .expect("a client");
    assert!(server.url("/").starts_with("wss://"));
    for _ in 0..2 {
        let mut ws = open(&client, &server.url("/secure")).await;
        echo(&mut ws, Message::Binary(Bytes::from(content(100_000)))).await;
    }
    assert_eq!(server.accepted(), 1);
    assert_eq!(server.alpn(), [Some(b"http/1.1".to_vec())]);
    assert_quiescent(&client).await;

    // A client that does not trust the CA fails the TLS handshake.
    let stranger = Client::<R>::builder()
        .tls(tls_trusting_with(&Ca::new("another CA"), Alpn::Http1Only))
        .build()
        .expect("a client");
    let error = stranger
        .websocket(request(&server.url("/secure")))
        .await
        .expect_err("an untrusted certificate");
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:#}");
    assert_quiescent(&stranger).await;
}

async fn messages_over_the_limit_are_refused<R: Adapter>() {
    let server = server(Behavior::Echo);
    let client = Client::<R>::builder()
        .max_websocket_message(1024)
        .build()
        .expect("a client");
    let mut ws = open(&client, &server.url("/")).await;
    // Too large to send: refused here, and the WebSocket goes on.
    let error = ws
        .send(Message::Binary(Bytes::from(vec![0; 2048])))
        .await
        .expect_err("too large");
    assert_eq!(
        ws_error(&error),
        WebSocketError::MessageTooLarge {
            size: 2048,
            max: 1024
        }
    );
    echo(&mut ws, Message::Binary(Bytes::from(vec![7; 1024]))).await;
    // Too large from the server: the WebSocket ends with that error.
    ws.send("send 4096").await.expect("send");
    let error = ws.recv().await.expect_err("too large");
    assert!(
        matches!(
            ws_error(&error),
            WebSocketError::MessageTooLarge { max: 1024, .. }
        ),
        "{error:#}"
    );
    drop(ws);
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
}

async fn a_refused_upgrade_is_a_typed_error<R: Adapter>() {
    // An HTTP server that answers the upgrade request like any other: 200.
    let http = HyperServer::start(HttpOptions::default());
    let client = Client::<R>::new();
    let url = format!("ws://127.0.0.1:{}/", http.port());
    let error = client
        .websocket(request(&url))
        .await
        .expect_err("no upgrade");
    assert_eq!(
        ws_error(&error),
        WebSocketError::HandshakeRejected { status: 200 }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "WebSocket error on ws://127.0.0.1:{}/: the WebSocket handshake failed: \
             the server refused the WebSocket upgrade with status 200",
            http.port()
        )
    );
    let error = client
        .websocket(request("http://127.0.0.1:1/"))
        .await
        .expect_err("not a WebSocket URI");
    assert_eq!(error.kind(), ErrorKind::Request);
    assert_quiescent(&client).await;
}

async fn a_closed_websocket_leaves_the_pool<R: Adapter>() {
    let server = server(Behavior::Echo);
    let client = Client::<R>::new();
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "bye".into()).await;
    ws.close().await.expect("a clean close");
    wait_for(Duration::from_secs(5), "the server sees the close", || {
        server.open() == 0
    })
    .await;
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
}

async fn unclean_drops_leak_nothing<R: Adapter>() {
    let server = server(Behavior::Echo);
    let client = Client::<R>::new();
    // A reply left unread: the WebSocket is not reused.
    let mut ws = open(&client, &server.url("/")).await;
    ws.send("unread").await.expect("send");
    wait_for(Duration::from_secs(5), "the server echoes", || {
        server.messages() == 1
    })
    .await;
    sleep(Duration::from_millis(50)).await;
    drop(ws);
    assert_quiescent(&client).await;
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "fresh".into()).await;
    assert_eq!(server.accepted(), 2);
    // A receive abandoned half-way, and an open abandoned half-way.
    let pending = support::timeout(Duration::from_millis(50), ws.recv()).await;
    assert!(pending.is_none());
    drop(ws);
    let abandoned = support::timeout(
        Duration::from_micros(1),
        client.websocket(request(&server.url("/other"))),
    )
    .await;
    drop(abandoned);
    assert_quiescent(&client).await;
    // Many at once, dropped at once.
    let mut many = Vec::new();
    for _ in 0..20 {
        many.push(open(&client, &server.url("/many")).await);
    }
    assert_eq!(client.stats().busy, 20);
    drop(many);
    assert_quiescent(&client).await;
    client.shutdown().await;
    assert_eq!(client.stats().open, 0);
}

async fn a_sender_sends_from_another_task_while_the_owner_receives<R: Adapter>() {
    let server = server(Behavior::Echo);
    let client = Client::<R>::new();
    let mut ws = open(&client, &server.url("/senders")).await;
    let sender = ws.sender();
    assert!(!sender.is_closed());
    client.runtime().spawn(async move {
        for i in 0..3 {
            sender.send(format!("from a task {i}")).await.expect("send");
        }
    });
    for i in 0..3 {
        let back = within(Duration::from_secs(5), "an echo", ws.recv())
            .await
            .expect("recv");
        assert_eq!(back.as_text(), Some(format!("from a task {i}").as_str()));
    }
    drop(ws);
    assert_quiescent(&client).await;
}

async fn a_websocket_goes_back_to_the_pool_once_its_senders_are_gone<R: Adapter>() {
    let server = server(Behavior::Echo);
    let client = Client::<R>::new();
    let mut ws = open(&client, &server.url("/")).await;
    let sender = ws.sender();
    sender.send("one").await.expect("send");
    assert_eq!(ws.recv().await.expect("recv").as_text(), Some("one"));
    drop(sender);
    drop(ws);
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "two".into()).await;
    assert_eq!(server.accepted(), 1);
    drop(ws);
    assert_quiescent(&client).await;
}

async fn a_websocket_dropped_with_a_live_sender_is_closed_not_pooled<R: Adapter>() {
    let server = server(Behavior::Echo);
    let client = Client::<R>::new();
    let mut ws = open(&client, &server.url("/")).await;
    let sender = ws.sender();
    echo(&mut ws, "one".into()).await;
    drop(ws);
    // The WebSocket closes, and its sender reaches nothing any more...
    wait_for(Duration::from_secs(5), "the server sees the close", || {
        server.open() == 0
    })
    .await;
    let error = sender
        .send("stale")
        .await
        .expect_err("a sender of a dropped WebSocket sends nothing");
    assert_eq!(error.kind(), ErrorKind::WebSocket, "{error:#}");
    assert!(sender.is_closed());
    assert!(sender.ended().is_some());
    // ...least of all the WebSocket the next caller gets, which is its own.
    let mut ws = open(&client, &server.url("/")).await;
    echo(&mut ws, "two".into()).await;
    assert_eq!(server.accepted(), 2);
    assert_eq!(server.messages(), 2, "the stale message never left");
    drop(ws);
    drop(sender);
    assert_quiescent(&client).await;
}

support::conformance!(
    text_and_binary_up_to_16_mib_echo,
    a_returned_websocket_is_reused,
    websockets_are_pooled_per_path_and_headers,
    a_close_by_the_server_is_a_typed_error,
    an_idle_close_by_the_server_removes_the_websocket,
    an_abrupt_drop_is_told_apart_from_a_close,
    an_idle_websocket_that_stops_answering_pings_is_closed,
    answered_pings_keep_an_idle_websocket,
    wss_with_a_test_ca_offers_only_http1,
    messages_over_the_limit_are_refused,
    a_refused_upgrade_is_a_typed_error,
    a_closed_websocket_leaves_the_pool,
    unclean_drops_leak_nothing,
    a_sender_sends_from_another_task_while_the_owner_receives,
    a_websocket_goes_back_to_the_pool_once_its_senders_are_gone,
    a_websocket_dropped_with_a_live_sender_is_closed_not_pooled,
);
