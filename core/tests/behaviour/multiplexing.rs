//! Multiplexed connections: stream capacity is the smaller of our cap and the
//! peer's limit, which may change at any time (even below the streams in flight);
//! a full key spills to a new connection or queues, as configured.

use crate::support::*;
use muxpool_core::{Acquire, Action, Connected, EventError, Saturation};

#[test]
fn capacity_is_the_smaller_of_our_cap_and_the_peers_limit() {
    let mut c = quiet();
    c.max_streams_per_connection = 4;
    let mut d = Driver::new(c);
    let first = d.first_lease("k", Connected::http2(100));
    assert_eq!(d.pool.conn_info(first.conn()).unwrap().capacity, 4);
    let more: Vec<_> = (0..3).map(|_| d.ready("k")).collect();
    assert!(more.iter().all(|l| l.conn() == first.conn()));
    let _w = d.queued("k");
    assert_eq!(
        d.opens(1).len(),
        1,
        "the fifth stream spills to a new connection"
    );
}

#[test]
fn a_peer_limit_below_the_streams_in_flight_stops_new_grants_until_they_drop_under_it() {
    let mut c = quiet();
    c.max_connections_per_key = 1;
    let mut d = Driver::new(c);
    let first = d.first_lease("k", Connected::http2(10));
    let leases: Vec<_> = std::iter::once(first)
        .chain((0..5).map(|_| d.ready("k")))
        .collect();
    d.pool
        .handle_peer_max_streams(first.conn(), d.now, 2)
        .unwrap();
    d.check();
    let w = d.queued("k");
    for l in &leases[..4] {
        d.release(*l);
        assert!(
            d.actions().is_empty(),
            "still at or over the new limit of 2"
        );
    }
    d.release(leases[4]);
    assert_eq!(grant_of(&d.actions(), w).conn(), first.conn());
}

#[test]
fn a_raised_peer_limit_serves_waiters_at_once() {
    let mut c = quiet();
    c.max_connections_per_key = 1;
    let mut d = Driver::new(c);
    let first = d.first_lease("k", Connected::http2(1));
    let w = d.queued("k");
    assert!(d.actions().is_empty());
    d.pool
        .handle_peer_max_streams(first.conn(), d.now, 5)
        .unwrap();
    d.check();
    assert_eq!(grant_of(&d.actions(), w).conn(), first.conn());
}

#[test]
fn queue_saturation_waits_for_a_stream_instead_of_opening() {
    let mut c = quiet();
    c.saturation = Saturation::Queue;
    let mut d = Driver::new(c);
    let first = d.first_lease("k", Connected::http2(1));
    let w = d.queued("k");
    assert!(
        d.actions().is_empty(),
        "strict queueing opens no second connection"
    );
    d.release(first);
    assert_eq!(grant_of(&d.actions(), w).conn(), first.conn());
}

#[test]
fn partly_used_connections_are_filled_before_idle_ones() {
    let mut c = quiet();
    c.max_streams_per_connection = 2;
    let mut d = Driver::new(c);
    let a1 = d.first_lease("k", Connected::http2(2));
    let a2 = d.ready("k");
    let w = d.queued("k");
    let b = d.opens(1)[0];
    d.handle_connected(b, Connected::http2(2));
    let b1 = grant_of(&d.actions(), w);
    assert_eq!(b1.conn(), b);
    d.release(a1);
    d.release(a2);
    // a is idle, b has one stream: the next stream packs onto b.
    assert_eq!(d.ready("k").conn(), b);
    assert!(matches!(d.acquire("k"), Ok(Acquire::Ready(l)) if l.conn() == a1.conn()));
}

#[test]
fn peer_limits_apply_only_to_multiplexed_connections() {
    let mut d = Driver::new(quiet());
    let lease = d.first_lease("k", Connected::http1());
    assert_eq!(
        d.pool.handle_peer_max_streams(lease.conn(), d.now, 5),
        Err(EventError::WrongState)
    );
    let w = d.queued("j");
    let conn = d.opens(1)[0];
    assert_eq!(
        d.pool.handle_peer_max_streams(conn, d.now, 5),
        Err(EventError::WrongState)
    );
    d.handle_connected(conn, Connected::http2(0));
    assert!(
        d.actions()
            .iter()
            .all(|a| !matches!(a, Action::Grant { .. })),
        "a zero limit grants nothing"
    );
    d.pool.handle_peer_max_streams(conn, d.now, 1).unwrap();
    assert_eq!(grant_of(&d.actions(), w).conn(), conn);
}

#[test]
fn queue_saturation_opens_when_no_connection_can_take_streams() {
    let mut c = quiet();
    c.saturation = Saturation::Queue;
    c.max_connections_per_key = 2;
    let mut d = Driver::new(c);
    let w = d.queued("k");
    let first = d.opens(1)[0];
    d.handle_connected(first, Connected::http2(0));
    let second = d.opens(1)[0];
    d.handle_connected(second, Connected::http2(4));
    assert_eq!(grant_of(&d.actions(), w).conn(), second);
}

#[test]
fn queue_saturation_replaces_a_connection_that_starts_draining() {
    let mut c = quiet();
    c.saturation = Saturation::Queue;
    c.max_connections_per_key = 2;
    let mut d = Driver::new(c);
    let a = d.first_lease("k", Connected::http2(2));
    let b = d.ready("k");
    let w = d.queued("k");
    assert!(d.actions().is_empty());
    // The connection cannot be reused: the waiter needs a new one.
    d.release_closing(a);
    let fresh = d.opens(1)[0];
    d.handle_connected(fresh, Connected::http2(2));
    assert_eq!(grant_of(&d.actions(), w).conn(), fresh);
    d.release(b);
}
