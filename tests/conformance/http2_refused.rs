//! A stream the server refuses without processing it (RST_STREAM with
//! REFUSED_STREAM, RFC 9113 section 8.7) is sent again, transparently: the
//! caller sees only the answer. The server here, built on the `h2` crate's
//! server side, refuses every other stream: the first, the third, ...

use crate::support::raw_h2::{ok, RawH2};
use crate::support::{self, Adapter};
use muxpool::client::Client;
use muxpool::Body;

/// Refuses the first, third, ... stream of each connection; answers `ok` to
/// the others.
fn refuse_every_other_stream() -> RawH2 {
    RawH2::start(|seen, _request, mut respond| {
        if seen % 2 == 1 {
            respond.send_reset(h2::Reason::REFUSED_STREAM);
        } else {
            ok(&mut respond, b"ok");
        }
    })
}

async fn a_refused_stream_is_sent_again<R: Adapter>() {
    let server = refuse_every_other_stream();
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration");
    let request = http::Request::get(&server.url)
        .body(Body::empty())
        .expect("a request");
    let response = client.send(request).await.expect("the retry is answered");
    assert_eq!(response.into_body().text().await.expect("text"), "ok");
    assert_eq!(server.streams(), 2, "refused once, then answered");

    // An in-memory body is sent again too.
    let request = http::Request::post(&server.url)
        .body(Body::from("payload"))
        .expect("a request");
    let response = client.send(request).await.expect("the retry is answered");
    assert_eq!(response.into_body().text().await.expect("text"), "ok");
    assert_eq!(server.streams(), 4);
}

support::conformance!(a_refused_stream_is_sent_again,);
