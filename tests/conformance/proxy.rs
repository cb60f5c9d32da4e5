//! Proxies, through a real one (Debian's tinyproxy) on every runtime: `http`
//! requests forwarded in absolute form, `https` through a `CONNECT` tunnel
//! with HTTP/2 negotiated inside it, `ws` through a tunnel, Basic
//! credentials (a refused tunnel is `ErrorKind::Proxy` with the 407, never
//! the password), tunnels pooled per proxy and origin and never shared with
//! direct connections to the same origin, and `NoProxy` exceptions.
//!
//! Each test returns early with a message when tinyproxy is not installed,
//! unless `MUXPOOL_REQUIRE_TINYPROXY` is set (CI sets it), in which case it
//! fails.

use crate::support::{self, assert_quiescent, get, get_text, tls_trusting_with, Adapter};

use http::Version;
use muxpool::client::Client;
use muxpool::tls::Alpn;
use muxpool::{Body, ErrorKind, Message, NoProxy, Proxy, ProxyChoice};
use muxpool_testkit::certs::{self, Ca};
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};
use muxpool_testkit::tinyproxy::{self, Tinyproxy, TinyproxyOptions};
use muxpool_testkit::ws_server::{self, WsServer};

/// The user and password of the proxy that asks for credentials.
const USER: &str = "muxpool";
const PASSWORD: &str = "s3cret-pa55";

fn proxy(test: &str, auth: bool) -> Option<Tinyproxy> {
    if !tinyproxy::available_or_skip(test) {
        return None;
    }
    let basic_auth = auth.then(|| (USER.to_string(), PASSWORD.to_string()));
    Some(Tinyproxy::start(TinyproxyOptions { basic_auth }).expect("tinyproxy starts"))
}

/// An HTTPS server whose certificate `ca` issued for `127.0.0.1`, offering
/// `alpn`.
fn https_server(ca: &Ca, alpn: &[&[u8]]) -> HyperServer {
    HyperServer::start(Options {
        tls: Some(certs::server_config(&ca.leaf(&["127.0.0.1"]), alpn)),
        protocol: Protocol::Auto,
        ..Options::default()
    })
}

/// A client through `proxy`.
fn client_through<R: Adapter>(proxy: Proxy) -> Client<R> {
    Client::<R>::builder().proxy(proxy).build().unwrap()
}

/// A client trusting `ca`, offering HTTP/1.1, through `proxy`.
fn https_client_through<R: Adapter>(ca: &Ca, proxy: Proxy) -> Client<R> {
    Client::<R>::builder()
        .tls(support::tls_trusting(ca))
        .proxy(proxy)
        .build()
        .unwrap()
}

/// The `CONNECT` requests `proxy` read.
fn connects(proxy: &Tinyproxy) -> Vec<String> {
    proxy
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("CONNECT "))
        .collect()
}

/// The request headers the origin's `/headers` saw, lowercased.
async fn headers_seen<R: Adapter>(client: &Client<R>, server: &HyperServer) -> String {
    get_text(client, server.url("/headers"))
        .await
        .to_ascii_lowercase()
}

/// The request headers `/headers` saw of `request`, lowercased.
async fn headers_sent<R: Adapter>(client: &Client<R>, request: http::Request<Body>) -> String {
    let response = client.send(request).await.expect("GET /headers");
    let text = response.into_body().text().await.expect("the body");
    text.to_ascii_lowercase()
}

/// A GET of `url` that goes as `choice` says.
fn get_choosing(url: String, choice: ProxyChoice) -> http::Request<Body> {
    let mut request = support::request(http::Method::GET, url, Body::empty());
    request.extensions_mut().insert(choice);
    request
}

async fn http_is_forwarded_in_absolute_form<R: Adapter>() {
    let Some(tinyproxy) = proxy("http_is_forwarded_in_absolute_form", false) else {
        return;
    };
    let server = HyperServer::start(Options::default());
    let client = client_through::<R>(Proxy::all(&tinyproxy.url()).unwrap());
    let seen = headers_seen(&client, &server).await;
    assert!(seen.contains("via: 1.1 "), "the proxy forwarded it: {seen}");
    assert!(seen.contains("tinyproxy"), "{seen}");
    assert_eq!(
        tinyproxy.requests(),
        [format!(
            "GET http://127.0.0.1:{}/headers HTTP/1.1",
            server.port()
        )]
    );
    let metrics = client.metrics();
    let key = &metrics.origins[0].key;
    assert_eq!(key.proxy().map(|p| p.port()), Some(tinyproxy.port()));
    assert_eq!(
        key.to_string(),
        format!("http://127.0.0.1:{} via {}", server.port(), tinyproxy.url())
    );
    assert_quiescent(&client).await;
}

async fn https_tunnels_with_http2_inside<R: Adapter>() {
    let Some(tinyproxy) = proxy("https_tunnels_with_http2_inside", false) else {
        return;
    };
    let ca = Ca::new("muxpool test CA");
    let server = https_server(&ca, &[b"h2", b"http/1.1"]);
    let client = Client::<R>::builder()
        .tls(tls_trusting_with(&ca, Alpn::Http1AndHttp2))
        .proxy(Proxy::https(&tinyproxy.url()).unwrap())
        .build()
        .unwrap();
    for _ in 0..3 {
        let response = get(&client, server.url("/"))
            .await
            .expect("through the tunnel");
        assert_eq!(
            response.version(),
            Version::HTTP_2,
            "ALPN inside the tunnel"
        );
        assert_eq!(response.into_body().text().await.unwrap(), "hello");
    }
    support::get_text_concurrently(&client, server.url("/"), 8, "hello").await;
    assert_eq!(server.accepted(), 1, "one HTTP/2 connection");
    assert_eq!(
        connects(&tinyproxy),
        [format!("CONNECT 127.0.0.1:{} HTTP/1.1", server.port())],
        "one tunnel"
    );
    assert_quiescent(&client).await;
}

async fn websockets_tunnel_too<R: Adapter>() {
    let Some(tinyproxy) = proxy("websockets_tunnel_too", false) else {
        return;
    };
    let server = WsServer::start(ws_server::Options::default());
    let client = client_through::<R>(Proxy::all(&tinyproxy.url()).unwrap());
    let request = http::Request::get(server.url("/echo")).body(()).unwrap();
    let mut ws = client.websocket(request).await.expect("through the tunnel");
    ws.send(Message::Text("over a tunnel".into()))
        .await
        .unwrap();
    assert_eq!(
        ws.recv().await.unwrap(),
        Message::Text("over a tunnel".into())
    );
    assert_eq!(
        connects(&tinyproxy),
        [format!("CONNECT 127.0.0.1:{} HTTP/1.1", server.port())]
    );
}

async fn basic_credentials_open_the_tunnel<R: Adapter>() {
    let Some(tinyproxy) = proxy("basic_credentials_open_the_tunnel", true) else {
        return;
    };
    let ca = Ca::new("muxpool test CA");
    let server = https_server(&ca, &[b"http/1.1"]);
    let without = https_client_through::<R>(&ca, Proxy::all(&tinyproxy.url()).unwrap());
    let error = get(&without, server.url("/"))
        .await
        .expect_err("the proxy wants credentials");
    assert_eq!(error.kind(), ErrorKind::Proxy, "{error:#}");
    assert_eq!(
        error.status(),
        Some(http::StatusCode::PROXY_AUTHENTICATION_REQUIRED)
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the proxy {} refused a tunnel to https://127.0.0.1:{}: 407 Proxy Authentication Required",
            tinyproxy.url(),
            server.port()
        )
    );
    let origin = error.origin().expect("it names the origin");
    assert_eq!(origin.proxy(), Some(tinyproxy.url().as_str()));
    assert_quiescent(&without).await;

    // The credentials in the URL, percent-encoded, or given apart.
    let in_url = format!(
        "http://{USER}:{}@127.0.0.1:{}",
        PASSWORD.replace('-', "%2D"),
        tinyproxy.port()
    );
    for proxy in [
        Proxy::all(&in_url).unwrap(),
        Proxy::all(&tinyproxy.url())
            .unwrap()
            .basic_auth(USER, PASSWORD),
    ] {
        let with = https_client_through::<R>(&ca, proxy);
        assert_eq!(get_text(&with, server.url("/")).await, "hello");
        // Wrong credentials are refused the same way, and never printed.
        let wrong = Proxy::all(&tinyproxy.url())
            .unwrap()
            .basic_auth(USER, "wrong-password");
        let wrong = https_client_through::<R>(&ca, wrong);
        let error = get(&wrong, server.url("/")).await.expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::Proxy, "{error:#}");
        // tinyproxy answers wrong credentials with 401, missing ones with 407.
        assert!(
            matches!(error.status().map(|s| s.as_u16()), Some(401 | 407)),
            "{error}"
        );
        for printed in [
            format!("{error}"),
            format!("{error:#}"),
            format!("{error:?}"),
        ] {
            assert!(!printed.contains("wrong-password"), "{printed}");
            assert!(!printed.contains("Basic"), "{printed}");
        }
        for printed in [format!("{with:?}"), format!("{:?}", with.metrics())] {
            assert!(!printed.contains(PASSWORD), "{printed}");
        }
    }
}

async fn basic_credentials_go_with_each_forwarded_request<R: Adapter>() {
    let Some(tinyproxy) = proxy("basic_credentials_go_with_each_forwarded_request", true) else {
        return;
    };
    let server = HyperServer::start(Options::default());
    // An `http` request the proxy refuses is answered: the 407 is the
    // response, as any proxy's answer to a request it was sent.
    let without = client_through::<R>(Proxy::http(&tinyproxy.url()).unwrap());
    let response = get(&without, server.url("/headers")).await.unwrap();
    assert_eq!(
        response.status(),
        http::StatusCode::PROXY_AUTHENTICATION_REQUIRED
    );
    assert_eq!(server.requests(), 0);
    let with = client_through::<R>(
        Proxy::http(&tinyproxy.url())
            .unwrap()
            .basic_auth(USER, PASSWORD),
    );
    for _ in 0..2 {
        let seen = headers_seen(&with, &server).await;
        assert!(seen.contains("via: 1.1 "), "{seen}");
        // The proxy's credentials are the proxy's: the origin never sees
        // them.
        assert!(!seen.contains("proxy-authorization"), "{seen}");
    }
    assert_eq!(server.requests(), 2);
}

async fn tunnels_are_pooled_apart_from_direct_connections<R: Adapter>() {
    let Some(tinyproxy) = proxy("tunnels_are_pooled_apart_from_direct_connections", false) else {
        return;
    };
    let ca = Ca::new("muxpool test CA");
    let server = https_server(&ca, &[b"http/1.1"]);
    let client = https_client_through::<R>(&ca, Proxy::all(&tinyproxy.url()).unwrap());
    let url = server.url("/");
    let direct = || get_choosing(url.clone(), ProxyChoice::Direct);
    for round in 0..3 {
        assert_eq!(get_text(&client, &url).await, "hello", "round {round}");
        let response = client.send(direct()).await.expect("direct");
        assert_eq!(response.into_body().text().await.unwrap(), "hello");
    }
    // One tunnel and one direct connection, each reused by its own kind.
    assert_eq!(server.accepted(), 2);
    assert_eq!(
        connects(&tinyproxy).len(),
        1,
        "one tunnel for three requests"
    );
    let stats = client.stats();
    assert_eq!((stats.open, stats.reused_grants), (2, 4), "{stats:#?}");
    let metrics = client.metrics();
    let mut keys: Vec<String> = metrics.origins.iter().map(|o| o.key.to_string()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("https://127.0.0.1:{}", server.port()),
            format!(
                "https://127.0.0.1:{} via {}",
                server.port(),
                tinyproxy.url()
            ),
        ]
    );

    // Plain http too: a direct request to the origin never rides the
    // proxy's connection, nor a proxied one a direct connection.
    let plain = HyperServer::start(Options::default());
    for _ in 0..2 {
        assert!(headers_seen(&client, &plain).await.contains("via: "));
        let direct = get_choosing(plain.url("/headers"), ProxyChoice::Direct);
        let seen = headers_sent(&client, direct).await;
        assert!(!seen.contains("via: "), "direct: {seen}");
    }
    assert_quiescent(&client).await;
}

async fn no_proxy_goes_direct<R: Adapter>() {
    let Some(tinyproxy) = proxy("no_proxy_goes_direct", false) else {
        return;
    };
    let server = HyperServer::start(Options::default());
    let client = client_through::<R>(
        Proxy::all(&tinyproxy.url())
            .unwrap()
            .no_proxy(NoProxy::parse("localhost, 10.0.0.0/8")),
    );
    // `localhost` is an exception; `127.0.0.1` is not.
    let by_name = format!("http://localhost:{}/headers", server.port());
    let seen = get_text(&client, &by_name).await.to_ascii_lowercase();
    assert!(!seen.contains("via: "), "direct: {seen}");
    assert!(tinyproxy.requests().is_empty());
    assert!(headers_seen(&client, &server).await.contains("via: "));
    assert_eq!(tinyproxy.requests().len(), 1);
    // A request's own choice goes through a proxy the client would not use.
    let direct = Client::<R>::builder().no_proxy().build().unwrap();
    let through = Proxy::all(&tinyproxy.url()).unwrap();
    let request = get_choosing(server.url("/headers"), ProxyChoice::Through(through));
    let seen = headers_sent(&direct, request).await;
    assert!(seen.contains("via: "), "{seen}");
    assert!(!headers_seen(&direct, &server).await.contains("via: "));
}

support::conformance!(
    http_is_forwarded_in_absolute_form,
    https_tunnels_with_http2_inside,
    websockets_tunnel_too,
    basic_credentials_open_the_tunnel,
    basic_credentials_go_with_each_forwarded_request,
    tunnels_are_pooled_apart_from_direct_connections,
    no_proxy_goes_direct,
);
