//! Response decompression (features `gzip`, `deflate`, `brotli`, `zstd`):
//! nginx's gzip, and an in-process server sending each coding over
//! HTTP/1.1 and HTTP/2 in small frames, decoded to the original as they
//! stream, trailers passed through; what is left alone (a request with its
//! own `Accept-Encoding` or a `Range`, `HEAD`, 204, 206, 304, decompression
//! turned off); a bomb stopped by the ratio limit with its connection
//! closed, not reused; corrupt, truncated and oversized bodies as typed
//! errors.

use std::time::{Duration, Instant};

use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use muxpool::client::Client;
use muxpool::{Body, Coding, Decompression, DecompressionError, ErrorKind};
use muxpool_testkit::compress::{encode, text, CODINGS};
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};
use muxpool_testkit::nginx::{self, Nginx, NginxOptions, GZIP_TEXT_SIZE};

use crate::support::{self, assert_quiescent, get_text, wait_until, Adapter};

/// The decoded size of the in-process server's bodies.
const N: usize = 100_000;

fn server(protocol: Protocol) -> HyperServer {
    HyperServer::start(Options {
        protocol,
        ..Options::default()
    })
}

fn client_for<R: Adapter>(protocol: Protocol, decompression: Decompression) -> Client<R> {
    Client::<R>::builder()
        .http2_prior_knowledge(protocol == Protocol::Http2)
        .decompression(decompression)
        .build()
        .expect("a client")
}

async fn send<R: Adapter>(client: &Client<R>, request: Request<Body>) -> Response<Body> {
    let what = format!("{} {}", request.method(), request.uri());
    client
        .send(request)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:#}"))
}

fn get(url: String, headers: &[(http::HeaderName, &'static str)]) -> Request<Body> {
    let mut request = support::request(Method::GET, url, Body::empty());
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(name.clone(), HeaderValue::from_static(value));
    }
    request
}

/// The body of `response`, read whole, which must be empty.
async fn assert_empty(response: Response<Body>) {
    let body = response.into_body().bytes().await.expect("an empty body");
    assert!(body.is_empty(), "{} bytes", body.len());
}

/// The error reading the body of `response` ends with, which must be a
/// body error.
async fn body_error(response: Response<Body>, what: &str) -> muxpool::Error {
    let error = response.into_body().bytes().await.expect_err(what);
    assert_eq!(error.kind(), ErrorKind::Body, "{what}: {error:#}");
    error
}

/// Reads a body piece by piece: what it decoded to, and its largest piece.
async fn read_pieces(body: &mut Body) -> (Vec<u8>, usize) {
    let mut all = Vec::new();
    let mut largest = 0;
    while let Some(piece) = body.chunk().await.expect("a piece") {
        largest = largest.max(piece.len());
        all.extend_from_slice(&piece);
    }
    (all, largest)
}

async fn every_coding_decodes_over_http1_and_http2<R: Adapter>() {
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let server = server(protocol);
        let client = client_for::<R>(protocol, Decompression::new());
        for coding in CODINGS {
            for variant in ["", "/chunked"] {
                let url = server.url(&format!("/encoded/{coding}/{N}{variant}"));
                let response =
                    send(&client, get(url.clone(), &[(http::header::TE, "trailers")])).await;
                assert_eq!(response.status(), 200, "{url}");
                assert!(!response.headers().contains_key(CONTENT_ENCODING), "{url}");
                assert!(!response.headers().contains_key(CONTENT_LENGTH), "{url}");
                let mut body = response.into_body();
                let (decoded, largest) = read_pieces(&mut body).await;
                assert!(decoded == text(N), "{url}: {} bytes decoded", decoded.len());
                // Decoded as it streams, in pieces of at most 32 KiB.
                assert!(largest <= 32 * 1024, "{url}: a piece of {largest}");
                if variant == "/chunked" {
                    let trailers = body.trailers().expect("the trailers");
                    assert_eq!(trailers["x-decoded-length"], N.to_string(), "{url}");
                }
            }
        }
        assert_quiescent(&client).await;
        // Every exchange ended clean: one connection served them all.
        assert_eq!(server.accepted(), 1, "{protocol:?}");
    }
}

async fn accept_encoding_names_what_is_on<R: Adapter>() {
    let server = server(Protocol::Http1);
    let on = client_for::<R>(Protocol::Http1, Decompression::new());
    let seen = get_text(&on, server.url("/headers")).await;
    assert!(
        seen.lines()
            .any(|l| l == "accept-encoding: gzip, br, zstd, deflate"),
        "{seen}"
    );
    let some = client_for::<R>(
        Protocol::Http1,
        Decompression::new()
            .without(Coding::Zstd)
            .without(Coding::Deflate),
    );
    let seen = get_text(&some, server.url("/headers")).await;
    assert!(
        seen.lines().any(|l| l == "accept-encoding: gzip, br"),
        "{seen}"
    );
    // A coding turned off is read as sent.
    let url = server.url(&format!("/encoded/zstd/{N}"));
    let response = send(&some, get(url, &[])).await;
    assert_eq!(response.headers()[CONTENT_ENCODING], "zstd");
    let body = response.into_body().bytes().await.expect("the body");
    assert!(body[..] == encode("zstd", &text(N))[..]);

    // Off: no Accept-Encoding, every body as sent.
    let off = client_for::<R>(Protocol::Http1, Decompression::off());
    assert!(!off.decompression().is_on());
    let seen = get_text(&off, server.url("/headers")).await;
    assert!(!seen.contains("accept-encoding"), "{seen}");
    let response = send(&off, get(server.url(&format!("/encoded/gzip/{N}")), &[])).await;
    assert_eq!(response.headers()[CONTENT_ENCODING], "gzip");
    let body = response.into_body().bytes().await.expect("the body");
    assert!(body[..] == encode("gzip", &text(N))[..]);
}

/// A request with its own `Accept-Encoding` (its own, or the client's
/// default headers') or a `Range` gets the bytes as sent, headers and all.
async fn the_callers_accept_encoding_and_ranges_are_left_alone<R: Adapter>() {
    let server = server(Protocol::Http1);
    let client = client_for::<R>(Protocol::Http1, Decompression::new());
    let encoded = encode("gzip", &text(N));
    let url = server.url(&format!("/encoded/gzip/{N}"));
    for headers in [
        &[(ACCEPT_ENCODING, "gzip")][..],
        &[(ACCEPT_ENCODING, "identity")][..],
        &[(RANGE, "bytes=0-99")][..],
    ] {
        let response = send(&client, get(url.clone(), headers)).await;
        assert_eq!(response.headers()[CONTENT_ENCODING], "gzip", "{headers:?}");
        assert_eq!(
            response.headers()[CONTENT_LENGTH],
            encoded.len().to_string(),
            "{headers:?}"
        );
        let body = response.into_body().bytes().await.expect("the body");
        assert!(body[..] == encoded[..], "{headers:?}");
    }
    let seen = send(
        &client,
        get(server.url("/headers"), &[(ACCEPT_ENCODING, "br")]),
    )
    .await;
    let seen = seen.into_body().text().await.expect("text");
    assert!(seen.lines().any(|l| l == "accept-encoding: br"), "{seen}");

    let mut defaults = HeaderMap::new();
    defaults.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    let by_default = Client::<R>::builder()
        .default_headers(defaults)
        .build()
        .expect("a client");
    let response = send(&by_default, get(url, &[])).await;
    assert_eq!(response.headers()[CONTENT_ENCODING], "gzip");
    let body = response.into_body().bytes().await.expect("the body");
    assert!(body[..] == encoded[..]);
    assert_quiescent(&client).await;
}

/// `HEAD`, 204, 206 and 304 keep their `Content-Encoding`, over both
/// protocols: there is no body to decode, or only part of one.
async fn head_and_bodiless_or_partial_statuses_are_left_alone<R: Adapter>() {
    let encoded = encode("gzip", &text(N));
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let server = server(protocol);
        let client = client_for::<R>(protocol, Decompression::new());
        let url = server.url(&format!("/encoded/gzip/{N}"));
        let head = support::request(Method::HEAD, url.clone(), Body::empty());
        let response = send(&client, head).await;
        assert_eq!(response.headers()[CONTENT_ENCODING], "gzip", "{protocol:?}");
        assert_eq!(
            response.headers()[CONTENT_LENGTH],
            encoded.len().to_string(),
            "{protocol:?}"
        );
        assert_empty(response).await;
        for status in [204, 304] {
            let response = send(&client, get(format!("{url}/{status}"), &[])).await;
            assert_eq!(response.status(), status);
            assert_eq!(response.headers()[CONTENT_ENCODING], "gzip", "{status}");
            assert_empty(response).await;
        }
        let response = send(&client, get(format!("{url}/206"), &[])).await;
        assert_eq!(response.status(), 206);
        assert_eq!(response.headers()[CONTENT_ENCODING], "gzip");
        assert!(response.headers().contains_key(CONTENT_RANGE));
        let body = response.into_body().bytes().await.expect("the part");
        assert!(body[..] == encoded[..], "{protocol:?}");
        assert_quiescent(&client).await;
    }
}

/// A gibibyte of zeros in a megabyte of gzip (and in zstd) is stopped by
/// the ratio limit soon after the first MiB, with a typed error, and its
/// connection is closed (an HTTP/2 stream reset), never reused.
async fn a_bomb_is_stopped_and_its_connection_closed<R: Adapter>() {
    for (protocol, coding) in [
        (Protocol::Http1, "gzip"),
        (Protocol::Http2, "gzip"),
        (Protocol::Http1, "zstd"),
        (Protocol::Http2, "deflate"),
    ] {
        let server = server(protocol);
        let client = client_for::<R>(protocol, Decompression::new());
        let started = Instant::now();
        let response = send(
            &client,
            get(server.url(&format!("/bomb/{coding}/1024")), &[]),
        )
        .await;
        let error = body_error(response, "the limit stops it").await;
        match error.decompression() {
            Some(DecompressionError::RatioExceeded {
                max_ratio: 200,
                decoded,
                ..
            }) => assert!(*decoded < 4 << 20, "{coding}: {decoded} decoded"),
            other => panic!("{protocol:?} {coding}: {other:?} ({error:#})"),
        }
        let origin = error.origin().expect("the error names its origin");
        assert_eq!(origin.port(), server.port());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_quiescent(&client).await;
        match protocol {
            // The connection was given up half-read: closed, not pooled.
            Protocol::Http1 => {
                assert_eq!(client.stats().open, 0, "{coding}");
                wait_until("the server sees the connection closed", || {
                    server.open_connections() == 0
                })
                .await;
            }
            // The stream was reset; the connection goes on.
            _ => assert_eq!(client.stats().open, 1),
        }
        // The next request is served as usual.
        assert_eq!(get_text(&client, server.url("/")).await, "hello");
    }
}

async fn corrupt_truncated_and_oversized_bodies_are_typed_errors<R: Adapter>() {
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let server = server(protocol);
        let client = client_for::<R>(protocol, Decompression::new());
        for coding in CODINGS {
            for (variant, truncated) in [("garbage", false), ("truncated", true)] {
                let url = server.url(&format!("/encoded/{coding}/{N}/{variant}"));
                let response = send(&client, get(url.clone(), &[])).await;
                let error = body_error(response, &url).await;
                let cause = error.decompression().expect("a decompression error");
                assert!(
                    match truncated {
                        true => matches!(cause, DecompressionError::Truncated { .. }),
                        false => matches!(cause, DecompressionError::Corrupt { .. }),
                    },
                    "{url}: {cause:?}"
                );
            }
        }
        let small = client_for::<R>(protocol, Decompression::new().max_size(Some(10_000)));
        let url = server.url(&format!("/encoded/br/{N}"));
        let response = send(&small, get(url, &[])).await;
        let error = body_error(response, "too large").await;
        assert_eq!(
            error.decompression(),
            Some(&DecompressionError::SizeExceeded {
                coding: Coding::Brotli,
                max_size: 10_000
            }),
            "{error:#}"
        );
        assert_quiescent(&client).await;
        assert_quiescent(&small).await;
    }
}

/// nginx's `gzip on`, over HTTP/1.1 (chunked) and h2c: the file comes back
/// as it is on disk; nginx did compress it (asked by hand, it says so);
/// a range is served uncompressed.
async fn nginx_gzip<R: Adapter>() {
    if !nginx::available_or_skip("nginx_gzip") {
        return;
    }
    let server = Nginx::start(NginxOptions {
        h2c: true,
        ..NginxOptions::default()
    })
    .unwrap_or_else(|e| panic!("starting nginx: {e}"));
    let original = text(GZIP_TEXT_SIZE);
    for (base, h2) in [(server.base_url(), false), (server.h2c_base_url(), true)] {
        let client = Client::<R>::builder()
            .http2_prior_knowledge(h2)
            .build()
            .expect("a client");
        let url = format!("{base}/gzip/text");
        let response = send(&client, get(url.clone(), &[])).await;
        assert_eq!(response.status(), 200);
        assert!(!response.headers().contains_key(CONTENT_ENCODING), "{url}");
        assert!(!response.headers().contains_key(CONTENT_LENGTH), "{url}");
        assert_eq!(response.headers()[http::header::VARY], "Accept-Encoding");
        let body = response.into_body().bytes().await.expect("the file");
        assert!(body[..] == original[..], "{url}: {} bytes", body.len());

        let by_hand = send(&client, get(url.clone(), &[(ACCEPT_ENCODING, "gzip")])).await;
        assert_eq!(by_hand.headers()[CONTENT_ENCODING], "gzip");
        let compressed = by_hand.into_body().bytes().await.expect("the file");
        assert!(
            compressed.len() < original.len() / 3,
            "{}",
            compressed.len()
        );

        let range = send(&client, get(url, &[(RANGE, "bytes=100-199")])).await;
        assert_eq!(range.status(), 206);
        assert!(!range.headers().contains_key(CONTENT_ENCODING));
        let part = range.into_body().bytes().await.expect("the range");
        assert!(part[..] == original[100..200]);
        assert_quiescent(&client).await;
    }
}

support::conformance!(
    every_coding_decodes_over_http1_and_http2,
    accept_encoding_names_what_is_on,
    the_callers_accept_encoding_and_ranges_are_left_alone,
    head_and_bodiless_or_partial_statuses_are_left_alone,
    a_bomb_is_stopped_and_its_connection_closed,
    corrupt_truncated_and_oversized_bodies_are_typed_errors,
    nginx_gzip,
);
