//! The client as a tower `Service`: tower's and tower-http's layers wrap it
//! as they wrap any HTTP client, and what they do reaches the server; on
//! tokio, tower's own timeout too.

use std::time::Duration;

use crate::support::{self, Adapter};
use http::HeaderValue;
use muxpool::client::Client;
use muxpool::Body;
use muxpool_testkit::hyper_server::{HyperServer, Options};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::set_header::SetRequestHeaderLayer;

async fn tower_layers_wrap_the_client<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    // Layers that need no runtime of their own (tower's timeout sleeps on
    // tokio's clock, so it wraps the tokio client only).
    let service = ServiceBuilder::new()
        .map_response(|response: http::Response<Body>| {
            let mut response = response;
            response
                .headers_mut()
                .insert("x-mapped", HeaderValue::from_static("1"));
            response
        })
        .layer(SetRequestHeaderLayer::overriding(
            http::header::USER_AGENT,
            HeaderValue::from_static("layered/1"),
        ))
        .service(client.clone());
    let request = http::Request::get(server.url("/headers"))
        .body(Body::empty())
        .expect("a request");
    let response = service.clone().oneshot(request).await.expect("an answer");
    assert_eq!(response.headers()["x-mapped"], "1");
    let seen = response.into_body().text().await.expect("text");
    assert!(seen.lines().any(|l| l == "user-agent: layered/1"), "{seen}");

    // A failure comes through the layers as the client's error.
    let url = format!("http://127.0.0.1:{}/", support::closed_port());
    let request = http::Request::get(url)
        .extension(muxpool::RequestTimeout(Duration::from_millis(300)))
        .body(Body::empty())
        .expect("a request");
    let error = service.oneshot(request).await.expect_err("nothing listens");
    assert!(
        matches!(
            error.kind(),
            muxpool::ErrorKind::Connect | muxpool::ErrorKind::Timeout
        ),
        "{error:#}"
    );
    // Both requests went through the one pool the client shares.
    assert_eq!(client.stats().grants, 1);
}

/// tower's timeout (tokio's clock) around the tokio client: a request the
/// server never answers ends with the layer's error, and the pool gets its
/// connection back.
#[tokio::test]
async fn a_tower_timeout_wraps_the_tokio_client() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}/", listener.local_addr().expect("an address"));
    let client = Client::<muxpool::Tokio>::new();
    let service = ServiceBuilder::new()
        .timeout(Duration::from_millis(200))
        .service(client.clone());
    let request = http::Request::get(url)
        .body(Body::empty())
        .expect("a request");
    let error = service.oneshot(request).await.expect_err("never answered");
    assert!(
        error.is::<tower::timeout::error::Elapsed>(),
        "the layer's timeout: {error}"
    );
    drop(listener);
    support::assert_quiescent(&client).await;
}

support::conformance!(tower_layers_wrap_the_client,);
