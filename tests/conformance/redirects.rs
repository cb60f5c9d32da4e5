//! Redirects: none followed by default; with a limit, each status's rule
//! for the method and the body, a body sent again only when it can be,
//! credentials left behind on the way to another origin, and a loop cut off
//! with `ErrorKind::Redirect`.

use crate::support::{self, assert_quiescent, get, request, Adapter};
use http::Method;
use muxpool::client::Client;
use muxpool::{Body, ErrorKind, Redirect};
use muxpool_testkit::hyper_server::{HyperServer, Options};

fn following<R: Adapter>(max: u32) -> Client<R> {
    Client::<R>::builder()
        .redirect(Redirect::limit(max))
        .build()
        .expect("a client")
}

async fn text<R: Adapter>(client: &Client<R>, request: http::Request<Body>) -> (u16, String) {
    let response = client.send(request).await.expect("answered");
    let status = response.status().as_u16();
    (status, response.into_body().text().await.expect("a body"))
}

async fn none_are_followed_by_default<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    let response = get(&client, server.url("/redirect/302?to=/"))
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "/");
    assert_eq!(response.into_body().text().await.unwrap(), "moved");
}

async fn each_status_keeps_or_changes_the_method_as_browsers_do<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = following::<R>(5);
    let cases = [
        // (status, method, what /method answers after the redirect)
        (301, Method::POST, "GET"),
        (302, Method::POST, "GET"),
        (302, Method::PUT, "PUT"),
        (303, Method::PUT, "GET"),
        (303, Method::HEAD, "HEAD"),
        (307, Method::POST, "POST"),
        (308, Method::DELETE, "DELETE"),
    ];
    for (status, method, then) in cases {
        let url = server.url(&format!("/redirect/{status}?to=/method"));
        let response = client
            .send(request(method.clone(), url, "data"))
            .await
            .unwrap_or_else(|e| panic!("{status} {method}: {e:#}"));
        assert_eq!(response.status(), 200, "{status} {method}");
        let body = response.into_body().text().await.unwrap();
        let want = if method == Method::HEAD { "" } else { then };
        assert_eq!(body, want, "{status} {method}");
    }
    // A chain of three, relative locations included.
    let url = server.url("/redirect/301?to=/redirect/302?to=303?to=/");
    assert_eq!(
        text(&client, request(Method::GET, url, Body::empty())).await,
        (200, "hello".into())
    );
    assert_quiescent(&client).await;
}

async fn a_body_goes_again_only_when_it_can<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = following::<R>(5);
    // In memory: sent again to the 307's target.
    let url = server.url("/redirect/307?to=/echo");
    let (status, body) = text(&client, request(Method::POST, url.clone(), "the payload")).await;
    assert_eq!((status, body.as_str()), (200, "the payload"));
    // A 303 drops it, with the headers that described it.
    let url303 = server.url("/redirect/303?to=/headers");
    let mut with_type = request(Method::POST, url303, "the payload");
    with_type
        .headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    let (_, headers) = text(&client, with_type).await;
    assert!(!headers.contains("content-type"), "{headers}");
    assert!(!headers.contains("content-length: 11"), "{headers}");
    // A stream was sent once: its 307 comes back as it is.
    let stream =
        http_body_util::StreamBody::new(futures_util::stream::iter([Ok::<_, std::io::Error>(
            http_body::Frame::data(bytes::Bytes::from_static(b"streamed")),
        )]));
    let response = client
        .send(request(Method::POST, url, Body::wrap(stream)))
        .await
        .unwrap();
    assert_eq!(response.status(), 307);
}

async fn credentials_stay_with_their_origin<R: Adapter>() {
    let first = HyperServer::start(Options::default());
    let other = HyperServer::start(Options::default());
    let client = following::<R>(5);
    let with_credentials = |url: String| {
        let mut request = request(Method::GET, url, Body::empty());
        let headers = request.headers_mut();
        headers.insert("authorization", "Bearer secret".parse().unwrap());
        headers.insert("cookie", "session=secret".parse().unwrap());
        headers.insert("x-kept", "yes".parse().unwrap());
        request
    };
    // The same origin keeps them.
    let url = first.url("/redirect/302?to=/headers");
    let (_, seen) = text(&client, with_credentials(url)).await;
    assert!(seen.contains("authorization: Bearer secret"), "{seen}");
    assert!(seen.contains("cookie: session=secret"), "{seen}");
    // Another origin (another port) never sees them.
    let url = first.url(&format!("/redirect/302?to={}", other.url("/headers")));
    let (status, seen) = text(&client, with_credentials(url)).await;
    assert_eq!(status, 200);
    assert!(!seen.contains("secret"), "{seen}");
    assert!(seen.contains("x-kept: yes"), "{seen}");
    assert!(
        seen.contains(&format!("host: 127.0.0.1:{}", other.port())),
        "{seen}"
    );
}

async fn a_loop_ends_at_the_limit<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = following::<R>(3);
    let error = get(&client, server.url("/loop")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Redirect, "{error:#}");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(302));
    support::assert_origin(&error, "http", server.port());
    // The first request and three redirects were sent, on one connection.
    assert_eq!(server.requests(), 4);
    assert_eq!(server.accepted(), 1);
    // limit(0) follows none, and says so.
    let error = get(&following::<R>(0), server.url("/loop"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Redirect, "{error:#}");
}

support::conformance!(
    none_are_followed_by_default,
    each_status_keeps_or_changes_the_method_as_browsers_do,
    a_body_goes_again_only_when_it_can,
    credentials_stay_with_their_origin,
    a_loop_ends_at_the_limit,
);
