//! Bodies, both ways: chunked responses, trailers, large streamed responses,
//! large streamed request bodies (chunked and with a known length), echo round
//! trips, responses without a body (HEAD, 204, 304) and the connection reused
//! after them, bodies delimited by the end of the connection, HTTP/1.0, and
//! interim (1xx) responses skipped.

use crate::support::{self, spawn, Adapter};

use std::convert::Infallible;

use crate::support::{
    assert_quiescent, capture_one_request, get, get_bytes, get_text, request, PatternBody,
};
use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, HeaderValue, Method};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use muxpool::client::Client;
use muxpool::{Body, ErrorKind};
use muxpool_testkit::hostile::{Behavior, Hostile};
use muxpool_testkit::hyper_server::{byte_at, content, HyperServer, Options};

const MIB: usize = 1024 * 1024;

async fn chunked_response<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    for n in [0, 1, 7, 1000, 100_000, 3 * MIB] {
        let response = get(&client, server.url(&format!("/chunked/{n}")))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        if n > 0 {
            assert!(response.headers().get("content-length").is_none());
            assert_eq!(
                response.headers().get("transfer-encoding").unwrap(),
                "chunked"
            );
        }
        let body = response.into_body().bytes().await.unwrap();
        assert_eq!(body.len(), n);
        assert!(body[..] == content(n)[..], "/chunked/{n} content");
    }
    assert_eq!(server.accepted(), 1, "chunked bodies end cleanly");
    assert_quiescent(&client).await;
}

async fn trailers_with_te_trailers<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    let mut req = request(Method::GET, server.url("/trailers"), Body::empty());
    req.headers_mut()
        .insert("te", HeaderValue::from_static("trailers"));
    let response = client.send(req).await.unwrap();
    assert_eq!(response.headers().get("trailer").unwrap(), "x-checksum");
    let mut body = response.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.chunk().await.unwrap() {
        data.extend_from_slice(&chunk);
    }
    assert_eq!(data, b"data");
    let trailers = body.trailers().expect("trailers after the end");
    assert_eq!(trailers.get("x-checksum").unwrap(), "ok");

    // Through the http-body trait, the trailers are a frame.
    let mut req = request(Method::GET, server.url("/trailers"), Body::empty());
    req.headers_mut()
        .insert("te", HeaderValue::from_static("trailers"));
    let collected = client
        .send(req)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        collected.trailers().and_then(|t| t.get("x-checksum")),
        Some(&HeaderValue::from_static("ok"))
    );
    assert_eq!(collected.to_bytes(), "data");

    // Without `TE: trailers` the server sends none, and the body is the same.
    let response = get(&client, server.url("/trailers")).await.unwrap();
    let mut body = response.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.chunk().await.unwrap() {
        data.extend_from_slice(&chunk);
    }
    assert_eq!(data, b"data");
    assert!(body.trailers().is_none());
    assert_eq!(server.accepted(), 1);
    assert_quiescent(&client).await;
}

async fn large_streamed_response<R: Adapter>() {
    const N: usize = 16 * MIB;
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    let response = get(&client, server.url(&format!("/bytes/{N}")))
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("content-length").unwrap(),
        &N.to_string()
    );
    // Streamed: checked chunk by chunk, never all in memory.
    let mut body = response.into_body();
    let mut offset = 0;
    let mut chunks = 0;
    while let Some(chunk) = body.chunk().await.unwrap() {
        for (i, &b) in chunk.iter().enumerate() {
            if b != byte_at(offset + i) {
                panic!(
                    "byte {} is {b}, expected {}",
                    offset + i,
                    byte_at(offset + i)
                );
            }
        }
        offset += chunk.len();
        chunks += 1;
    }
    assert_eq!(offset, N);
    assert!(chunks > 16, "the body arrived in pieces ({chunks})");

    // And collected whole.
    let (_, body) = get_bytes(&client, server.url(&format!("/bytes/{N}"))).await;
    assert!(body[..] == content(N)[..], "16 MiB collected");
    assert_eq!(server.accepted(), 1);
    assert_quiescent(&client).await;
}

async fn max_response_body_limits_collecting<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::builder()
        .max_response_body(100_000)
        .build()
        .unwrap();
    let (_, body) = get_bytes(&client, server.url("/bytes/100000")).await;
    assert_eq!(body.len(), 100_000);
    let error = get(&client, server.url("/bytes/100001"))
        .await
        .unwrap()
        .into_body()
        .bytes()
        .await
        .expect_err("over the limit");
    assert_eq!(error.kind(), ErrorKind::Body, "{error:#}");
    assert_eq!(
        error.to_string(),
        format!(
            "body error on a request to http://127.0.0.1:{}: the body is larger than the limit",
            server.port()
        )
    );
    assert_quiescent(&client).await;
}

async fn large_chunked_request_body_from_a_stream<R: Adapter>() {
    const N: usize = 8 * MIB;
    const FRAME: usize = 64 * 1024;
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    // A futures stream of frames, produced by another task through a channel.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    spawn::<R, _>(async move {
        for start in (0..N).step_by(FRAME) {
            let frame: Vec<u8> = (start..(start + FRAME).min(N)).map(byte_at).collect();
            if tx.send(Bytes::from(frame)).await.is_err() {
                return;
            }
        }
    });
    let frames = stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|next| next.map(|data| Ok::<_, Infallible>(Frame::data(data))))
    });
    let req = http::Request::post(server.url("/echo"))
        .body(Body::wrap(StreamBody::new(frames)))
        .unwrap();
    let response = client.send(req).await.unwrap();
    assert_eq!(response.status(), 200);
    // The request was chunked, so hyper streams the echo chunked too.
    assert_eq!(
        response.headers().get("transfer-encoding").unwrap(),
        "chunked"
    );
    let body = response.into_body().bytes().await.unwrap();
    assert_eq!(body.len(), N);
    assert!(body[..] == content(N)[..], "8 MiB echoed");
    assert_eq!(server.accepted(), 1);
    assert_quiescent(&client).await;
}

async fn large_request_body_with_known_length<R: Adapter>() {
    const N: usize = 8 * MIB;
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    let req = http::Request::put(server.url("/echo"))
        .body(Body::wrap(PatternBody::new(N, 100_000, true)))
        .unwrap();
    let response = client.send(req).await.unwrap();
    // Sent with Content-Length, so the echo has it too.
    assert_eq!(
        response.headers().get("content-length").unwrap(),
        &N.to_string()
    );
    let body = response.into_body().bytes().await.unwrap();
    assert!(body[..] == content(N)[..], "8 MiB echoed");

    // The same stream without a known length goes chunked.
    let req = http::Request::put(server.url("/echo"))
        .body(Body::wrap(PatternBody::new(300_000, 4096, false)))
        .unwrap();
    let response = client.send(req).await.unwrap();
    assert!(response.headers().get("content-length").is_none());
    let body = response.into_body().bytes().await.unwrap();
    assert!(body[..] == content(300_000)[..]);
    assert_eq!(server.accepted(), 1, "streamed request bodies end cleanly");
    assert_quiescent(&client).await;
}

async fn request_body_framing_on_the_wire<R: Adapter>() {
    let client = Client::<R>::new();

    // A stream of unknown length: chunked, with its trailers.
    let (url, captured) = capture_one_request().await;
    let mut trailers = HeaderMap::new();
    trailers.insert("x-sum", HeaderValue::from_static("42"));
    let frames = stream::iter(vec![
        Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"hello "))),
        Ok(Frame::data(Bytes::from_static(b"world"))),
        Ok(Frame::trailers(trailers)),
    ]);
    let req = http::Request::post(format!("{url}/upload"))
        .body(Body::wrap(StreamBody::new(frames)))
        .unwrap();
    let response = client.send(req).await.unwrap();
    assert_eq!(response.status(), 204);
    let wire = String::from_utf8(captured.await.unwrap()).unwrap();
    let (head, body) = wire.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("post /upload http/1.1\r\n"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert_eq!(
        body, "6\r\nhello \r\n5\r\nworld\r\n0\r\nx-sum: 42\r\n\r\n",
        "chunks, the last chunk, the trailers"
    );

    // A stream of known length: Content-Length, no chunking.
    let (url, captured) = capture_one_request().await;
    let req = http::Request::put(format!("{url}/upload"))
        .body(Body::wrap(PatternBody::new(50_000, 4096, true)))
        .unwrap();
    assert_eq!(client.send(req).await.unwrap().status(), 204);
    let wire = captured.await.unwrap();
    let end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&wire[..end]).to_ascii_lowercase();
    assert!(head.contains("content-length: 50000"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(wire[end + 4..] == content(50_000)[..]);

    // A body in memory: Content-Length.
    let (url, captured) = capture_one_request().await;
    assert_eq!(
        client
            .send(request(Method::POST, format!("{url}/x"), "abc"))
            .await
            .unwrap()
            .status(),
        204
    );
    let wire = String::from_utf8(captured.await.unwrap()).unwrap();
    assert!(
        wire.to_ascii_lowercase().contains("content-length: 3\r\n"),
        "{wire}"
    );
    assert!(wire.ends_with("\r\n\r\nabc"), "{wire}");
}

async fn a_failing_request_body_stream_is_a_body_error<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    let frames = stream::iter(vec![
        Ok(Frame::data(Bytes::from_static(b"part"))),
        Err(std::io::Error::other("the source broke")),
    ]);
    let req = http::Request::post(server.url("/echo"))
        .body(Body::wrap(StreamBody::new(frames)))
        .unwrap();
    let error = client.send(req).await.expect_err("the body failed");
    assert_eq!(error.kind(), ErrorKind::Body, "{error:#}");
    assert!(
        format!("{error:#}").contains("the source broke"),
        "{error:#}"
    );
    assert_quiescent(&client).await;
    // The half-sent connection was not reused.
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(server.accepted(), 2);
}

async fn echo_round_trips<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let cases: Vec<Body> = vec![
        Body::from("hello"),
        Body::from(String::from("a string body")),
        Body::from(binary.clone()),
        Body::from(Bytes::from(content(MIB))),
        Body::from(&b"static bytes"[..]),
        Body::empty(),
        Body::wrap(http_body_util::Full::new(Bytes::from_static(b"wrapped"))),
    ];
    let expected: Vec<Vec<u8>> = vec![
        b"hello".to_vec(),
        b"a string body".to_vec(),
        binary,
        content(MIB),
        b"static bytes".to_vec(),
        Vec::new(),
        b"wrapped".to_vec(),
    ];
    for (body, expected) in cases.into_iter().zip(expected) {
        let mut req = request(Method::POST, server.url("/echo"), body);
        req.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/x-test"),
        );
        let response = client.send(req).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/x-test"
        );
        let got = response.into_body().bytes().await.unwrap();
        assert!(got[..] == expected[..], "echo of {} bytes", expected.len());
    }
    // Methods and headers arrive as sent.
    for method in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ] {
        let response = client
            .send(request(
                method.clone(),
                server.url("/method"),
                Body::empty(),
            ))
            .await
            .unwrap();
        assert_eq!(response.into_body().text().await.unwrap(), method.as_str());
    }
    let mut req = request(Method::GET, server.url("/headers"), Body::empty());
    req.headers_mut()
        .insert("x-custom", HeaderValue::from_static("value-1"));
    let headers = client
        .send(req)
        .await
        .unwrap()
        .into_body()
        .text()
        .await
        .unwrap();
    assert!(headers.contains("x-custom: value-1\n"), "{headers}");
    assert!(
        headers.contains(&format!("host: {}\n", server.addr())),
        "{headers}"
    );
    assert_eq!(server.accepted(), 1);
    assert_quiescent(&client).await;
}

async fn responses_without_a_body_keep_the_connection<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();

    // HEAD: the Content-Length describes the GET's body; none follows.
    let response = client
        .send(request(Method::HEAD, server.url("/"), Body::empty()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("content-length").unwrap(), "5");
    assert!(response.into_body().bytes().await.unwrap().is_empty());
    assert_eq!(get_text(&client, server.url("/")).await, "hello");

    // HEAD of a large body.
    let response = client
        .send(request(
            Method::HEAD,
            server.url("/bytes/1000000"),
            Body::empty(),
        ))
        .await
        .unwrap();
    assert!(response.into_body().bytes().await.unwrap().is_empty());
    assert_eq!(get_text(&client, server.url("/")).await, "hello");

    for status in [204, 304] {
        let (got, body) = get_bytes(&client, server.url(&format!("/status/{status}"))).await;
        assert_eq!(got, status);
        assert!(body.is_empty());
        assert_eq!(get_text(&client, server.url("/")).await, "hello");
    }
    assert_eq!(
        server.accepted(),
        1,
        "every bodiless response kept the connection"
    );
    assert_eq!(client.stats().reused_grants, 7);
    assert_quiescent(&client).await;
}

async fn error_statuses_are_responses<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    for status in [400, 404, 500, 503] {
        let (got, _) = get_bytes(&client, server.url(&format!("/status/{status}"))).await;
        assert_eq!(got, status);
    }
    let (got, body) = get_bytes(&client, server.url("/no/such/route")).await;
    assert_eq!((got, &body[..]), (404, &b"not found"[..]));
    assert_eq!(server.accepted(), 1);
}

async fn close_delimited_response<R: Adapter>() {
    let payload = content(200_000);
    let server = Hostile::start(Behavior::CloseDelimited {
        body: payload.clone(),
    });
    let client = Client::<R>::new();
    for _ in 0..2 {
        let (status, body) = get_bytes(&client, server.url("/")).await;
        assert_eq!(status, 200);
        assert!(body[..] == payload[..], "the body up to the end of stream");
    }
    assert_eq!(
        server.accepted(),
        2,
        "a close-delimited connection is not reused"
    );
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
}

async fn http10_response<R: Adapter>() {
    let server = Hostile::start(Behavior::Http10 {
        body: b"from 1.0".to_vec(),
    });
    let client = Client::<R>::new();
    for _ in 0..2 {
        let response = get(&client, server.url("/")).await.unwrap();
        assert_eq!(response.version(), http::Version::HTTP_10);
        assert_eq!(response.into_body().text().await.unwrap(), "from 1.0");
    }
    assert_eq!(
        server.accepted(),
        2,
        "HTTP/1.0 without keep-alive is not reused"
    );
    assert_quiescent(&client).await;
}

async fn informational_responses_are_skipped<R: Adapter>() {
    let server = Hostile::start(Behavior::Informational);
    let client = Client::<R>::new();
    for _ in 0..3 {
        let response = client
            .send(request(Method::POST, server.url("/"), "body"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "100 and 103 are not the response");
        assert!(response.headers().get("link").is_none());
        assert_eq!(response.into_body().text().await.unwrap(), "ok");
    }
    assert_eq!(server.accepted(), 1, "keep-alive across interim responses");
    assert_quiescent(&client).await;
}

/// A request's body may be any type a `Body` is made from: sent whole, with
/// its length.
async fn request_bodies_of_every_common_type<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    let url = server.url("/echo");
    async fn echoed<R: Adapter, B: Into<Body>>(client: &Client<R>, url: &str, body: B) -> Bytes {
        let request = http::Request::post(url).body(body).unwrap();
        let response = client.send(request).await.unwrap();
        response.into_body().bytes().await.unwrap()
    }
    assert_eq!(echoed(&client, &url, ()).await, "");
    assert_eq!(echoed(&client, &url, "str").await, "str");
    assert_eq!(
        echoed(&client, &url, String::from("string")).await,
        "string"
    );
    assert_eq!(echoed(&client, &url, b"vec".to_vec()).await, "vec");
    assert_eq!(
        echoed(&client, &url, Bytes::from_static(b"bytes")).await,
        "bytes"
    );
    assert_eq!(echoed(&client, &url, &b"slice"[..]).await, "slice");
    assert_eq!(server.accepted(), 1, "every one on the kept connection");
}

support::conformance!(
    request_bodies_of_every_common_type,
    chunked_response,
    trailers_with_te_trailers,
    large_streamed_response,
    max_response_body_limits_collecting,
    large_chunked_request_body_from_a_stream,
    large_request_body_with_known_length,
    request_body_framing_on_the_wire,
    a_failing_request_body_stream_is_a_body_error,
    echo_round_trips,
    responses_without_a_body_keep_the_connection,
    error_statuses_are_responses,
    close_delimited_response,
    http10_response,
    informational_responses_are_skipped,
);
