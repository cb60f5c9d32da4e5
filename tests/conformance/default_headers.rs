//! Headers set on the builder go with every request that does not set them
//! itself, over HTTP/1.1 and HTTP/2 alike, and with WebSocket handshakes: a request's own value of a header
//! replaces the defaults' values of it, and a header given several values by
//! default is sent with all of them.

use crate::support::{self, get_text, Adapter};
use http::HeaderValue;
use muxpool::client::Client;
use muxpool::Body;
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};

async fn default_headers_go_with_every_request<R: Adapter>() {
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let server = HyperServer::start(Options {
            protocol,
            ..Options::default()
        });
        let mut defaults = http::HeaderMap::new();
        defaults.insert("x-api-version", HeaderValue::from_static("2"));
        defaults.append("x-team", HeaderValue::from_static("a"));
        defaults.append("x-team", HeaderValue::from_static("b"));
        let client = Client::<R>::builder()
            .http2_prior_knowledge(protocol == Protocol::Http2)
            .default_headers(defaults)
            .user_agent(HeaderValue::from_static("inventory-sync/1.4"))
            .build()
            .expect("a client");
        let seen = get_text(&client, server.url("/headers")).await;
        for line in [
            "user-agent: inventory-sync/1.4",
            "x-api-version: 2",
            "x-team: a",
            "x-team: b",
        ] {
            assert!(seen.lines().any(|l| l == line), "{line} in\n{seen}");
        }

        // The request's own value wins, and only for that header.
        let request = http::Request::get(server.url("/headers"))
            .header("user-agent", "probe")
            .header("x-team", "c")
            .body(Body::empty())
            .expect("a request");
        let response = client.send(request).await.expect("an answer");
        let seen = response.into_body().text().await.expect("text");
        let lines: Vec<&str> = seen.lines().collect();
        assert!(lines.contains(&"user-agent: probe"), "{seen}");
        assert!(lines.contains(&"x-team: c"), "{seen}");
        assert!(!lines.contains(&"x-team: a"), "{seen}");
        assert!(lines.contains(&"x-api-version: 2"), "{seen}");
    }
}

/// Without defaults, the client adds no header of its own choosing (no
/// `User-Agent`).
async fn no_user_agent_unless_set<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    let seen = get_text(&client, server.url("/headers")).await;
    assert!(!seen.to_ascii_lowercase().contains("user-agent"), "{seen}");
}

async fn a_websocket_handshake_carries_the_defaults<R: Adapter>() {
    use muxpool_testkit::ws_server::{Behavior, Options as WsOptions, WsServer};
    let server = WsServer::start(WsOptions {
        behavior: Behavior::Echo,
        ..WsOptions::default()
    });
    let client = Client::<R>::builder()
        .user_agent(HeaderValue::from_static("inventory-sync/1.4"))
        .build()
        .expect("a client");
    let open = |user_agent: Option<&'static str>| {
        let mut request = http::Request::get(server.url("/chat"));
        if let Some(agent) = user_agent {
            request = request.header("user-agent", agent);
        }
        client.websocket(request.body(()).unwrap())
    };
    drop(open(None).await.expect("opened"));
    drop(open(Some("probe")).await.expect("opened"));
    // The first is pooled for the handshake it made: opened again alike,
    // it is reused.
    drop(open(None).await.expect("opened"));
    let agents: Vec<_> = server
        .handshakes()
        .iter()
        .map(|h| h.headers.get("user-agent").cloned())
        .collect();
    assert_eq!(
        agents,
        [
            Some(HeaderValue::from_static("inventory-sync/1.4")),
            Some(HeaderValue::from_static("probe")),
        ]
    );
}

support::conformance!(
    a_websocket_handshake_carries_the_defaults,
    default_headers_go_with_every_request,
    no_user_agent_unless_set,
);
