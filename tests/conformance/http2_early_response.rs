//! A server may answer before it has read the whole request, then reset the
//! stream with NO_ERROR to stop the upload (RFC 9113, section 8.1): the caller
//! gets that complete response, not an error from the cut upload. A stream
//! reset without an answer is still an error.

use std::time::Duration;

use crate::support::raw_h2::RawH2;
use crate::support::{self, assert_quiescent, within, Adapter, PatternBody};
use bytes::Bytes;
use http::Method;
use muxpool::client::Client;

/// Far more than the stream's flow-control window: the upload is still going
/// when the server answers.
const UPLOAD: usize = 4 << 20;

fn h2c_client<R: Adapter>() -> Client<R> {
    Client::<R>::builder()
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration")
}

/// Answers `413 too big` at once and drops the request unread: h2's server
/// then ends the stream with RST_STREAM(NO_ERROR) once the answer is out,
/// telling the client to stop sending.
fn answer_early() -> RawH2 {
    RawH2::start(|_, request, mut respond| {
        let response = http::Response::builder()
            .status(413)
            .body(())
            .expect("a response");
        if let Ok(mut send) = respond.send_response(response, false) {
            let _ = send.send_data(Bytes::from_static(b"too big"), true);
        }
        drop(request);
    })
}

async fn an_early_complete_response_is_the_answer<R: Adapter>() {
    let server = answer_early();
    let client = h2c_client::<R>();
    for exact in [true, false] {
        let request = http::Request::post(&server.url)
            .body(muxpool::Body::wrap(PatternBody::new(
                UPLOAD,
                16 * 1024,
                exact,
            )))
            .expect("a request");
        let response = within(
            Duration::from_secs(5),
            "the early answer",
            client.send(request),
        )
        .await
        .expect("the early answer, not the cut upload");
        assert_eq!(response.status(), 413);
        let text = within(
            Duration::from_secs(5),
            "the early answer's body",
            response.into_body().text(),
        )
        .await
        .expect("the whole early answer");
        assert_eq!(text, "too big");
    }
    // An in-memory body, too.
    let request = support::request(Method::POST, &server.url, Bytes::from(vec![7u8; UPLOAD]));
    let response = client.send(request).await.expect("the early answer");
    assert_eq!(
        response.into_body().text().await.expect("its body"),
        "too big"
    );
    assert_eq!(server.streams(), 3);
    assert_quiescent(&client).await;
}

async fn a_reset_without_an_answer_is_an_error<R: Adapter>() {
    let server = RawH2::start(|_, _request, mut respond| {
        respond.send_reset(h2::Reason::INTERNAL_ERROR);
    });
    let client = h2c_client::<R>();
    let request = http::Request::post(&server.url)
        .body(muxpool::Body::wrap(PatternBody::new(
            UPLOAD,
            16 * 1024,
            true,
        )))
        .expect("a request");
    let error = within(Duration::from_secs(5), "the reset", client.send(request))
        .await
        .expect_err("a reset stream is no answer");
    let reason = std::iter::successors(std::error::Error::source(&error), |e| e.source())
        .find_map(|e| e.downcast_ref::<h2::Error>())
        .and_then(h2::Error::reason);
    assert_eq!(reason, Some(h2::Reason::INTERNAL_ERROR), "{error:#}");
    assert_quiescent(&client).await;
}

support::conformance!(
    an_early_complete_response_is_the_answer,
    a_reset_without_an_answer_is_an_error,
);
