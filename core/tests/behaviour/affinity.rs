//! Session affinity: a request may name the connection it prefers (its
//! session's last one). The core grants on it when it has room at once, and
//! otherwise serves the request like any other.

use crate::support::*;
use muxpool_core::{Acquire, AcquireOptions, Connected, Lease};

fn preferring(d: &mut Driver, key: &'static str, conn: muxpool_core::ConnId) -> Acquire {
    let r = d
        .pool
        .acquire(&key, d.now, AcquireOptions::default().preferring(conn))
        .expect("not refused");
    d.check();
    r
}

/// Two idle HTTP/1.1 connections of "k": (the older, the more recently used).
fn two_idle(d: &mut Driver) -> (Lease, Lease) {
    let a = d.first_lease("k", Connected::http1());
    let w = d.queued("k");
    let b = d.opens(1)[0];
    d.handle_connected(b, Connected::http1());
    let b = grant_of(&d.actions(), w);
    d.release(a);
    d.release(b);
    (a, b)
}

#[test]
fn a_preferred_idle_connection_is_granted_over_the_most_recent_one() {
    let mut d = Driver::new(quiet());
    let (a, b) = two_idle(&mut d);
    // Without a preference the most recently used one comes first.
    let plain = d.ready("k");
    assert_eq!(plain.conn(), b.conn());
    d.release(plain);
    match preferring(&mut d, "k", a.conn()) {
        Acquire::Ready(lease) => assert_eq!(lease.conn(), a.conn()),
        other => panic!("expected a lease at once, got {other:?}"),
    }
}

#[test]
fn a_preferred_multiplexed_connection_with_room_is_granted() {
    let mut d = Driver::new(quiet());
    let first = d.first_lease("k", Connected::http2(1));
    // The first connection is full: a second opens.
    let w = d.queued("k");
    let second = d.opens(1)[0];
    d.handle_connected(second, Connected::http2(1));
    let on_second = grant_of(&d.actions(), w);
    assert_eq!(on_second.conn(), second);
    d.release(first);
    d.release(on_second);
    for conn in [first.conn(), second, first.conn()] {
        match preferring(&mut d, "k", conn) {
            Acquire::Ready(lease) => {
                assert_eq!(lease.conn(), conn);
                d.release(lease);
            }
            other => panic!("expected a lease at once, got {other:?}"),
        }
    }
}

#[test]
fn a_full_draining_foreign_or_unknown_preference_is_passed_over() {
    let mut d = Driver::new(quiet());
    let (a, b) = two_idle(&mut d);
    // Full: the other one.
    let on_a = d.ready("k");
    assert_eq!(on_a.conn(), b.conn());
    let took_a = match preferring(&mut d, "k", b.conn()) {
        Acquire::Ready(lease) => lease,
        other => panic!("expected a lease at once, got {other:?}"),
    };
    assert_eq!(took_a.conn(), a.conn());
    d.release(on_a);
    d.release(took_a);
    // Draining: the other one.
    d.pool.handle_going_away(a.conn(), d.now).unwrap();
    d.actions();
    match preferring(&mut d, "k", a.conn()) {
        Acquire::Ready(lease) => {
            assert_eq!(lease.conn(), b.conn());
            d.release(lease);
        }
        other => panic!("expected a lease at once, got {other:?}"),
    }
    // Another key's connection: that key's own capacity (none yet) decides.
    assert!(matches!(
        preferring(&mut d, "other", b.conn()),
        Acquire::Queued(_)
    ));
    // A connection that is gone: as if none were named.
    let forged = muxpool_core::ConnId::from_parts(7, 99);
    match preferring(&mut d, "k", forged) {
        Acquire::Ready(lease) => assert_eq!(lease.conn(), b.conn()),
        other => panic!("expected a lease at once, got {other:?}"),
    }
}

#[test]
fn a_request_that_waits_is_served_in_order_wherever_capacity_frees() {
    let mut config = quiet();
    config.max_connections_per_key = 2;
    let mut d = Driver::new(config);
    let (a, b) = two_idle(&mut d);
    let on_b = d.ready("k");
    let on_a = d.ready("k");
    assert_eq!((on_b.conn(), on_a.conn()), (b.conn(), a.conn()));
    // No room, and no room to open: the request waits. It prefers `a`, but
    // `b` frees first and serves it.
    let waiter = match preferring(&mut d, "k", a.conn()) {
        Acquire::Queued(w) => w,
        other => panic!("expected to wait, got {other:?}"),
    };
    d.release(on_b);
    assert_eq!(grant_of(&d.actions(), waiter).conn(), b.conn());
    d.release(on_a);
}
