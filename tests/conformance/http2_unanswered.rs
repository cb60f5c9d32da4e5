//! A busy HTTP/2 connection whose peer vanished without a sign (its socket
//! open, no reset, no GOAWAY, nothing answered) is found out by the first
//! request that times out on it: the core checks it with a PING at once, even
//! with no periodic health checks configured, hands it to no later request while
//! the check is out, and closes it when the PING goes unanswered.

use std::time::Duration;

use crate::support::raw_h2::{ok, RawH2};
use crate::support::{
    self, assert_quiescent, get_text, h2c_client_checking, request, wait_until, within, Adapter,
};
use http::Method;
use muxpool::sans_io::{CloseReason, HealthCheck};
use muxpool::RequestTimeout;
use muxpool::{Body, ErrorKind};

async fn a_request_that_times_out_gets_its_connection_checked<R: Adapter>() {
    // Answers the first stream of each connection, then hangs: no frame is read
    // or written on it again.
    let server = RawH2::stalling_after(1, |_, _request, mut respond| ok(&mut respond, b"ok"));
    let client = h2c_client_checking::<R>(HealthCheck::new(None, Duration::from_millis(300)));

    assert_eq!(get_text(&client, &server.url).await, "ok");
    let mut hung = request(Method::GET, &server.url, Body::empty());
    hung.extensions_mut()
        .insert(RequestTimeout(Duration::from_millis(200)));
    let error = client.send(hung).await.expect_err("no answer comes");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:#}");

    // The next request does not go to the connection being checked: a new one
    // answers it, well before the check's deadline.
    let text = within(
        Duration::from_secs(3),
        "a request after the timeout",
        async { get_text(&client, &server.url).await },
    )
    .await;
    assert_eq!(text, "ok");
    assert_eq!(client.stats().connects, 2, "{:#?}", client.stats());

    // The hung connection's PING goes unanswered: it is closed.
    wait_until("the hung connection is closed", || {
        client.stats().closes[CloseReason::HealthCheckFailed] == 1
    })
    .await;
    let stats = client.stats();
    assert_eq!(stats.open, 1, "{stats:#?}");
    assert_eq!(stats.closes.total(), 1, "{stats:#?}");
    // Streams the server read: the two answered ones.
    assert_eq!(server.streams(), 2);
    assert_quiescent(&client).await;
}

support::conformance!(a_request_that_times_out_gets_its_connection_checked);
