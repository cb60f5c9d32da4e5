//! Against the real nginx: keep-alive reuse counted by nginx's own accepted
//! connections, `keepalive_requests` closing connections, a 16 MiB static file,
//! a chunked response, an echo, and https with a test CA. Each test is skipped
//! (with a message) on a machine without nginx, unless `MUXPOOL_REQUIRE_NGINX`
//! is set.

use crate::support::Adapter;

use crate::support::{self, assert_quiescent, get, get_bytes, get_text, get_text_times, request};
use http::Method;
use muxpool::client::Client;
use muxpool_testkit::certs::Ca;
use muxpool_testkit::nginx::{self, Nginx, NginxOptions, CHUNKED_BODY, HELLO};

fn start(options: NginxOptions) -> Nginx {
    Nginx::start(options).unwrap_or_else(|e| panic!("starting nginx: {e}"))
}

async fn keep_alive_reuse<R: Adapter>() {
    if !nginx::available_or_skip("keep_alive_reuse") {
        return;
    }
    let server = start(NginxOptions::default());
    let client = Client::<R>::new();
    let url = format!("{}/", server.base_url());
    for _ in 0..20 {
        assert_eq!(get_text(&client, &url).await, HELLO);
    }
    assert_eq!(server.accepted_connections().unwrap(), 1);
    assert_eq!(client.stats().reused_grants, 19);
    assert_quiescent(&client).await;
}

async fn keepalive_requests_limit<R: Adapter>() {
    if !nginx::available_or_skip("keepalive_requests_limit") {
        return;
    }
    let server = start(NginxOptions {
        keepalive_requests: Some(3),
        ..NginxOptions::default()
    });
    let client = Client::<R>::new();
    let url = format!("{}/", server.base_url());
    get_text_times(&client, &url, 10, HELLO).await;
    // nginx closes after every third response (with `Connection: close`):
    // ceil(10 / 3) connections.
    assert_eq!(server.accepted_connections().unwrap(), 4);
    assert_quiescent(&client).await;
}

async fn large_file<R: Adapter>() {
    if !nginx::available_or_skip("large_file") {
        return;
    }
    let server = start(NginxOptions::default());
    let client = Client::<R>::new();
    for n in nginx::BYTES_SIZES {
        let (status, body) = get_bytes(&client, format!("{}/bytes/{n}", server.base_url())).await;
        assert_eq!(status, 200);
        assert_eq!(body.len(), n);
        assert!(body[..] == nginx::pattern(n)[..], "/bytes/{n} content");
    }
    assert_eq!(server.accepted_connections().unwrap(), 1);
    assert_quiescent(&client).await;
}

async fn chunked_and_echo<R: Adapter>() {
    if !nginx::available_or_skip("chunked_and_echo") {
        return;
    }
    let server = start(NginxOptions::default());
    let client = Client::<R>::new();
    let response = get(&client, format!("{}/chunked", server.base_url()))
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("transfer-encoding").unwrap(),
        "chunked"
    );
    let mut body = response.into_body();
    let mut got = Vec::new();
    while let Some(chunk) = body.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, CHUNKED_BODY.as_bytes());

    let payload = nginx::pattern(300_000);
    let response = client
        .send(request(
            Method::POST,
            format!("{}/echo", server.base_url()),
            payload.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed = response.into_body().bytes().await.unwrap();
    assert!(echoed[..] == payload[..]);

    let (status, _) = get_bytes(&client, format!("{}/nothing-here", server.base_url())).await;
    assert_eq!(status, 404);
    assert_eq!(server.accepted_connections().unwrap(), 1);
    assert_quiescent(&client).await;
}

async fn https_with_a_test_ca<R: Adapter>() {
    if !nginx::available_or_skip("https_with_a_test_ca") {
        return;
    }
    let ca = Ca::new("muxpool nginx test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let dir = support::cert_dir("client-nginx");
    let (cert, key) = leaf.write_pem(&dir);
    let server = start(NginxOptions {
        plain: false,
        tls: Some((cert, key)),
        ..NginxOptions::default()
    });
    let client = support::client_trusting::<R>(&ca);
    let url = format!("{}/", server.https_base_url());
    for _ in 0..5 {
        assert_eq!(get_text(&client, &url).await, HELLO);
    }
    let (_, body) = get_bytes(
        &client,
        format!("{}/bytes/1048576", server.https_base_url()),
    )
    .await;
    assert!(body[..] == nginx::pattern(1_048_576)[..]);
    assert_eq!(server.accepted_connections().unwrap(), 1);

    // Not trusted without the test CA.
    let error = get(&Client::<R>::new(), &url).await.expect_err("untrusted");
    assert_eq!(error.kind(), muxpool::ErrorKind::Tls, "{error:#}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

support::conformance!(
    keep_alive_reuse,
    keepalive_requests_limit,
    large_file,
    chunked_and_echo,
    https_with_a_test_ca,
);
