//! An idle HTTP/2 connection whose peer stops answering (its socket open, its
//! PINGs unanswered) fails the core's health check: it is closed, and never
//! handed out again; the next request goes out on a new connection.

use std::time::Duration;

use crate::support::raw_h2::{ok, RawH2};
use crate::support::{
    self, assert_quiescent, get_text, h2c_client_checking, wait_until, within, Adapter,
};
use muxpool::sans_io::{CloseReason, HealthCheck};

async fn a_peer_that_stops_answering_pings_is_closed<R: Adapter>() {
    // Answers the first stream of each connection, then hangs.
    let server = RawH2::stalling_after(1, |_, _request, mut respond| ok(&mut respond, b"ok"));
    let client = h2c_client_checking::<R>(HealthCheck::new(
        Some(Duration::from_millis(50)),
        Duration::from_millis(200),
    ));

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

support::conformance!(a_peer_that_stops_answering_pings_is_closed);
