//! HTTP/2 against the real nginx: ALPN `h2` over TLS and h2c with prior
//! knowledge, many streams on one connection (counted by nginx), a low
//! `http2_max_concurrent_streams` with more concurrent requests than it allows,
//! GOAWAY after `keepalive_requests` streams, and a large file through flow
//! control. Skipped (with a message) on a machine without nginx, unless
//! `MUXPOOL_REQUIRE_NGINX` is set.

use crate::support::Adapter;

use crate::support::{self, assert_quiescent, get_bytes, get_text, get_text_concurrently};
use muxpool::client::Client;
use muxpool::tls::Alpn;
use muxpool_testkit::certs::Ca;
use muxpool_testkit::nginx::{self, Nginx, NginxOptions, HELLO};

fn start(options: NginxOptions) -> Nginx {
    Nginx::start(options).unwrap_or_else(|e| panic!("starting nginx: {e}"))
}

fn h2c<R: Adapter>(options: NginxOptions) -> (Nginx, Client<R>, String) {
    let server = start(NginxOptions {
        h2c: true,
        ..options
    });
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration");
    let base = server.h2c_base_url();
    (server, client, base)
}

async fn https_h2_multiplexes_on_one_connection<R: Adapter>() {
    if !nginx::available_or_skip("https_h2_multiplexes_on_one_connection") {
        return;
    }
    let ca = Ca::new("muxpool nginx h2 CA");
    let dir = support::cert_dir("nginx-h2");
    let (cert, key) = ca.leaf(&["127.0.0.1"]).write_pem(&dir);
    let server = start(NginxOptions {
        plain: false,
        tls: Some((cert, key)),
        h2: true,
        ..NginxOptions::default()
    });
    let tls = support::tls_trusting_with(&ca, Alpn::Http1AndHttp2);
    let client = Client::<R>::builder().tls(tls).build().expect("a client");
    let url = format!("{}/", server.https_base_url());
    // A cold burst: one handshake, then streams.
    get_text_concurrently(&client, url.clone(), 64, HELLO).await;
    let (_, body) = get_bytes(
        &client,
        format!("{}/bytes/16777216", server.https_base_url()),
    )
    .await;
    assert!(body[..] == nginx::pattern(16_777_216)[..]);
    assert_eq!(server.accepted_connections().expect("nginx status"), 1);
    assert_quiescent(&client).await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn h2c_with_a_low_stream_limit_spills<R: Adapter>() {
    if !nginx::available_or_skip("h2c_with_a_low_stream_limit_spills") {
        return;
    }
    let (server, client, base) = h2c::<R>(NginxOptions {
        http2_max_concurrent_streams: Some(2),
        ..NginxOptions::default()
    });
    assert_eq!(get_text(&client, format!("{base}/")).await, HELLO);
    // 40 requests at once against 2 streams per connection: every one
    // succeeds (none is refused for going over the limit), over more than one
    // connection and no more than the pool allows.
    get_text_concurrently(&client, format!("{base}/"), 40, HELLO).await;
    let accepted = server.accepted_connections().expect("nginx status");
    assert!((2..=20).contains(&accepted), "{accepted} connections");
    assert_quiescent(&client).await;
}

async fn goaway_after_keepalive_requests_is_invisible<R: Adapter>() {
    if !nginx::available_or_skip("goaway_after_keepalive_requests_is_invisible") {
        return;
    }
    let (server, client, base) = h2c::<R>(NginxOptions {
        keepalive_requests: Some(3),
        ..NginxOptions::default()
    });
    for _ in 0..10 {
        assert_eq!(get_text(&client, format!("{base}/")).await, HELLO);
    }
    let accepted = server.accepted_connections().expect("nginx status");
    assert!(
        (4..=5).contains(&accepted),
        "{accepted} connections for 10 requests at 3 each"
    );
    assert_quiescent(&client).await;
}

support::conformance!(
    https_h2_multiplexes_on_one_connection,
    h2c_with_a_low_stream_limit_spills,
    goaway_after_keepalive_requests_is_invisible,
);
