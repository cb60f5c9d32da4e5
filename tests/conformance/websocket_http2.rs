//! WebSockets over HTTP/2 (RFC 8441) on every runtime: when the server offers
//! extended CONNECT, many WebSockets share one HTTP/2 connection as streams,
//! counted by the core like any other; when it does not, or the origin speaks
//! HTTP/1.1, they fall back to the HTTP/1.1 upgrade.

use std::time::Duration;

use crate::support::{
    self, assert_quiescent, spawn, tls_trusting_with, wait_until, within, Adapter,
};
use muxpool::client::Client;
use muxpool::tls::Alpn;
use muxpool::{Message, WebSocketError};
use muxpool_testkit::certs::{self, Ca};
use muxpool_testkit::ws_server::{Behavior, Options, WsServer};

fn h2_server(extended_connect: bool, behavior: Behavior) -> WsServer {
    WsServer::start(Options {
        http2: true,
        extended_connect,
        behavior,
        ..Options::default()
    })
}

fn client<R: Adapter>(prior_knowledge: bool) -> Client<R> {
    Client::<R>::builder()
        .http2_prior_knowledge(prior_knowledge)
        .websocket_over_http2(true)
        .build()
        .expect("a client")
}

fn request(url: &str) -> http::Request<()> {
    http::Request::get(url)
        .header("x-tenant", "blue")
        .body(())
        .expect("a valid request")
}

async fn many_websockets_share_one_http2_connection<R: Adapter>() {
    let server = h2_server(true, Behavior::Echo);
    let client = client::<R>(true);
    let mut sockets = Vec::new();
    for _ in 0..20 {
        sockets.push(
            client
                .websocket(request(&server.url("/rpc")))
                .await
                .expect("open"),
        );
    }
    // Every WebSocket talks at once, each on its own task.
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            spawn::<R, _>(async move {
                for j in 0..10 {
                    let text = format!("{i}.{j}");
                    ws.send(text.as_str()).await.expect("send");
                    let back = ws.recv().await.expect("recv");
                    assert_eq!(back, Message::Text(text));
                }
                ws
            })
        })
        .collect();
    let mut sockets = Vec::new();
    for task in tasks {
        sockets.push(
            within(Duration::from_secs(20), "the echoes", task)
                .await
                .expect("ran"),
        );
    }
    assert_eq!(server.accepted(), 1);
    assert_eq!(server.h2_connections(), 1);
    assert_eq!(server.h2_websockets(), 20);
    let stats = client.stats();
    assert_eq!(stats.open, 1, "{stats:#?}");
    assert_eq!(stats.leases, 20, "{stats:#?}");
    let handshake = &server.handshakes()[0];
    assert_eq!(handshake.path, "/rpc");
    assert_eq!(handshake.headers["x-tenant"], "blue");
    drop(sockets);
    // Each driver closes its stream and gives its slot back.
    assert_quiescent(&client).await;
    wait_until("the server's WebSockets end", || server.open() == 0).await;
    // The connection stays, for the next ones.
    let mut ws = client
        .websocket(request(&server.url("/rpc")))
        .await
        .expect("open");
    ws.send("again").await.expect("send");
    assert_eq!(
        ws.recv().await.expect("recv"),
        Message::Text("again".into())
    );
    assert_eq!(server.accepted(), 1);
    drop(ws);
    assert_quiescent(&client).await;
}

async fn a_close_by_the_server_ends_only_its_stream<R: Adapter>() {
    let server = h2_server(true, Behavior::CloseAfter(1));
    let client = client::<R>(true);
    let mut first = client
        .websocket(request(&server.url("/")))
        .await
        .expect("open");
    let mut second = client
        .websocket(request(&server.url("/")))
        .await
        .expect("open");
    first.send("one").await.expect("send");
    assert_eq!(
        first.recv().await.expect("recv"),
        Message::Text("one".into())
    );
    let error = first.recv().await.expect_err("closed");
    assert_eq!(
        error.websocket(),
        Some(&WebSocketError::Closed {
            code: 4000,
            reason: "enough".into()
        })
    );
    second.send("two").await.expect("send");
    assert_eq!(
        second.recv().await.expect("recv"),
        Message::Text("two".into())
    );
    drop((first, second));
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 1);
    assert_eq!(server.accepted(), 1);
}

async fn without_extended_connect_websockets_fall_back_to_http1<R: Adapter>() {
    let server = h2_server(false, Behavior::Echo);
    let client = client::<R>(true);
    for _ in 0..3 {
        let mut ws = client
            .websocket(request(&server.url("/")))
            .await
            .expect("open");
        ws.send("via upgrade").await.expect("send");
        assert_eq!(
            ws.recv().await.expect("recv"),
            Message::Text("via upgrade".into())
        );
    }
    // One HTTP/2 connection, to learn the server does not offer it; one
    // pooled WebSocket of its own, reused.
    assert_eq!(server.h2_connections(), 1);
    assert_eq!(server.h2_websockets(), 0);
    assert_eq!(server.accepted(), 2);
    assert_quiescent(&client).await;
}

async fn clear_text_without_prior_knowledge_goes_straight_to_the_upgrade<R: Adapter>() {
    let server = h2_server(true, Behavior::Echo);
    let client = client::<R>(false);
    let mut ws = client
        .websocket(request(&server.url("/")))
        .await
        .expect("open");
    ws.send("plain").await.expect("send");
    assert_eq!(
        ws.recv().await.expect("recv"),
        Message::Text("plain".into())
    );
    assert_eq!(server.h2_connections(), 0);
    assert_eq!(server.accepted(), 1);
    drop(ws);
    assert_quiescent(&client).await;
}

async fn wss_shares_the_origins_tls_http2_connection<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let leaf = ca.leaf(&["127.0.0.1"]);
    let server = WsServer::start(Options {
        http2: true,
        extended_connect: true,
        tls: Some(certs::server_config(&leaf, &[b"h2", b"http/1.1"])),
        ..Options::default()
    });
    let client = Client::<R>::builder()
        .tls(tls_trusting_with(&ca, Alpn::Http1AndHttp2))
        .websocket_over_http2(true)
        .build()
        .expect("a client");
    let url = server.url("/rpc");
    assert!(url.starts_with("wss://"), "{url}");
    let mut sockets = Vec::new();
    for i in 0..5 {
        let mut ws = client.websocket(request(&url)).await.expect("open");
        let text = format!("secure {i}");
        ws.send(text.as_str()).await.expect("send");
        assert_eq!(ws.recv().await.expect("recv"), Message::Text(text));
        sockets.push(ws);
    }
    // One TLS connection, ALPN h2, five WebSockets on its streams.
    assert_eq!(server.accepted(), 1);
    assert_eq!(server.alpn(), [Some(b"h2".to_vec())]);
    assert_eq!(server.h2_connections(), 1);
    assert_eq!(server.h2_websockets(), 5);
    assert_eq!(client.stats().open, 1, "{:#?}", client.stats());
    drop(sockets);
    assert_quiescent(&client).await;
}

support::conformance!(
    many_websockets_share_one_http2_connection,
    wss_shares_the_origins_tls_http2_connection,
    a_close_by_the_server_ends_only_its_stream,
    without_extended_connect_websockets_fall_back_to_http1,
    clear_text_without_prior_knowledge_goes_straight_to_the_upgrade,
);
