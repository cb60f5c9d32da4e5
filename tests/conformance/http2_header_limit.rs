//! An HTTP/2 response head is held to the same limit as an HTTP/1.1 one
//! (`H1Limits::max_header_bytes`, announced as SETTINGS_MAX_HEADER_LIST_SIZE):
//! a server cannot make the client buffer more, the failure says which limit,
//! and only that stream fails.

use crate::support::raw_h2::{ok, RawH2};
use crate::support::{self, Adapter};
use muxpool::client::Client;
use muxpool::{Body, ErrorKind, H1Limits};

/// The first stream of each connection gets 100 fields of 1 KiB (about
/// 100 KiB, over the default 64 KiB); the others a small answer.
fn large_heads_first() -> RawH2 {
    RawH2::start(|seen, _request, mut respond| {
        if seen > 1 {
            return ok(&mut respond, b"small");
        }
        let mut response = http::Response::builder();
        for n in 0..100 {
            response = response.header(format!("x-field-{n}"), "v".repeat(1024));
        }
        let response = response.body(()).expect("a response");
        if let Ok(mut send) = respond.send_response(response, false) {
            let _ = send.send_data(bytes::Bytes::from_static(b"large"), true);
        }
    })
}

async fn get<R: Adapter>(client: &Client<R>, url: &str) -> Result<String, muxpool::Error> {
    let request = http::Request::get(url)
        .body(Body::empty())
        .expect("a request");
    client.send(request).await?.into_body().text().await
}

async fn a_response_head_over_the_limit_fails_that_stream<R: Adapter>() {
    let server = large_heads_first();
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration");
    let error = get(&client, &server.url).await.expect_err("over the limit");
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(error.to_string().contains("max_header_bytes"), "{error}");
    // The connection goes on: the next stream on it is answered.
    assert_eq!(get(&client, &server.url).await.expect("answered"), "small");
    assert_eq!(client.stats().connects, 1);

    // With a larger limit, the same head is read.
    let server = large_heads_first();
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .h1_limits(H1Limits::default().with_max_header_bytes(256 * 1024))
        .build()
        .expect("a valid configuration");
    assert_eq!(
        get(&client, &server.url).await.expect("within the limit"),
        "large"
    );
}

support::conformance!(a_response_head_over_the_limit_fails_that_stream,);
