//! An HTTP/2 connection whose peer stops answering (its socket open, its
//! PINGs unanswered) fails the core's health check: it is closed, and never
//! handed out again; the next request goes out on a new connection. A
//! response body that stops half-way ends at the read timeout, and its
//! connection is checked at once.

use std::time::Duration;

use crate::support::raw_h2::RawH2;
use crate::support::{self, assert_quiescent, get_text, wait_until, within, Adapter};
use bytes::Bytes;
use muxpool::sans_io::{CloseReason, HealthCheck};
use muxpool::{Body, ErrorKind};

async fn a_peer_that_stops_answering_pings_is_closed<R: Adapter>() {
    // Answers the first stream of each connection, then hangs.
    let (server, client) = support::hanging_peer_and_checking_client::<R>();

    assert_eq!(get_text(&client, &server.url).await, "ok");
    wait_until("the hung connection is closed", || client.stats().open == 0).await;
    let stats = client.stats();
    assert_eq!(
        stats.closes[CloseReason::HealthCheckFailed],
        1,
        "{stats:#?}"
    );
    assert_eq!(stats.closes.total(), 1, "{stats:#?}");

    // The next request is not sent on the dead connection: a new one answers.
    let text = within(Duration::from_secs(3), "a request after the close", async {
        get_text(&client, &server.url).await
    })
    .await;
    assert_eq!(text, "ok");
    let stats = client.stats();
    assert_eq!(stats.connects, 2, "{stats:#?}");
    assert_eq!(server.streams(), 2);
    assert_quiescent(&client).await;
}

async fn a_body_that_stops_half_way_times_out_and_its_connection_is_checked<R: Adapter>() {
    // The head and a first piece of the body, then nothing: the stream stays
    // open and the peer hangs.
    let server = RawH2::stalling_after(1, |_, _request, mut respond| {
        if let Ok(mut send) = respond.send_response(http::Response::new(()), false) {
            let _ = send.send_data(Bytes::from_static(b"part"), false);
            // Held open, not ended nor reset.
            tokio::spawn(async move {
                let _send = send;
                std::future::pending::<()>().await;
            });
        }
    });
    let client = support::builder_checking::<R>(HealthCheck::new(None, Duration::from_millis(200)))
        .http2_prior_knowledge(true)
        .read_timeout(Duration::from_millis(300))
        .build()
        .expect("a valid configuration");
    let request = http::Request::get(&server.url).body(Body::empty()).unwrap();
    let mut body = client
        .send(request)
        .await
        .expect("the head arrives")
        .into_body();
    let first = body.chunk().await.expect("the first piece");
    assert_eq!(first.as_deref(), Some(&b"part"[..]));
    let started = std::time::Instant::now();
    let error = within(
        Duration::from_secs(3),
        "the rest of a stalled body",
        body.chunk(),
    )
    .await
    .expect_err("nothing more arrives");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:#}");
    assert_eq!(
        error.to_string(),
        format!(
            "reading the response body from {} timed out after 300ms: \
             no bytes arrived within the read timeout",
            server.url.trim_end_matches('/')
        )
    );
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "timed out after {:?}",
        started.elapsed()
    );
    drop(body);
    // The silent peer fails the check the timeout asked for: its connection
    // is closed, and the next request goes out on a new one.
    wait_until("the hung connection is closed", || client.stats().open == 0).await;
    let stats = client.stats();
    assert_eq!(
        stats.closes[CloseReason::HealthCheckFailed],
        1,
        "{stats:#?}"
    );
    let request = http::Request::get(&server.url).body(Body::empty()).unwrap();
    let response = within(
        Duration::from_secs(3),
        "a request after the close",
        client.send(request),
    )
    .await
    .expect("a new connection answers");
    assert_eq!(response.status(), 200);
    drop(response);
    assert_eq!(client.stats().connects, 2);
    assert_quiescent(&client).await;
}

support::conformance!(
    a_peer_that_stops_answering_pings_is_closed,
    a_body_that_stops_half_way_times_out_and_its_connection_is_checked,
);
