//! Inputs that name unknown, stale or forged handles are refused with a typed error
//! and change nothing: not the counters, not the actions, not the deadlines.

use crate::support::*;
use muxpool_core::{ConnId, Connected, EventError, HandleKind, Release, WaiterId};

fn snapshot(d: &Driver) -> (muxpool_core::Stats, Option<muxpool_core::Instant>) {
    (d.pool.stats(), d.pool.poll_timeout())
}

#[test]
fn every_input_refuses_a_forged_connection() {
    let mut d = Driver::new(quiet());
    let lease = d.first_lease("k", Connected::http1());
    let before = snapshot(&d);
    let now = d.now;
    for forged in [
        ConnId::from_parts(lease.conn().index(), lease.conn().generation() + 1),
        ConnId::from_parts(lease.conn().index() + 100, 1),
        ConnId::from_parts(u32::MAX, u64::MAX),
    ] {
        let stale = Err(EventError::Stale(HandleKind::Connection));
        assert_eq!(
            d.pool.handle_connected(forged, now, Connected::http1()),
            stale
        );
        assert_eq!(d.pool.handle_connect_failed(forged, now), stale);
        assert_eq!(d.pool.handle_peer_max_streams(forged, now, 1), stale);
        assert_eq!(d.pool.handle_going_away(forged, now), stale);
        assert_eq!(d.pool.handle_transport_closed(forged, now), stale);
        assert_eq!(d.pool.handle_health_ok(forged, now), stale);
        assert_eq!(d.pool.key(forged), None);
        assert_eq!(d.pool.conn_info(forged), None);
    }
    assert_eq!(snapshot(&d), before);
    assert!(d.actions().is_empty());
    d.check();
}

#[test]
fn a_lease_is_released_once_and_only_on_its_own_connection() {
    let mut d = Driver::new(quiet());
    let lease = d.first_lease("k", Connected::http1());
    d.release(lease);
    let before = snapshot(&d);
    assert_eq!(
        d.pool.release(lease, d.now, Release::Reuse),
        Err(EventError::Stale(HandleKind::Lease))
    );
    assert_eq!(snapshot(&d), before);
    // A new lease on the same connection is a new handle; the old one stays dead.
    let again = d.ready("k");
    assert_ne!(again, lease);
    assert_eq!(
        d.pool.release(lease, d.now, Release::Close),
        Err(EventError::Stale(HandleKind::Lease))
    );
    assert!(d.pool.is_leased(again));
    d.check();
}

#[test]
fn waiters_are_answered_once() {
    let mut d = Driver::new(quiet());
    let w = d.queued("k");
    d.pool.cancel(w, d.now).unwrap();
    let before = snapshot(&d);
    assert_eq!(
        d.pool.cancel(w, d.now),
        Err(EventError::Stale(HandleKind::Waiter))
    );
    assert_eq!(
        d.pool.cancel(WaiterId::from_parts(9, 9), d.now),
        Err(EventError::Stale(HandleKind::Waiter))
    );
    assert_eq!(snapshot(&d), before);
}

#[test]
fn events_in_the_wrong_state_are_refused_and_change_nothing() {
    let mut d = Driver::new(quiet());
    let w = d.queued("k");
    let conn = d.opens(1)[0];
    let before = snapshot(&d);
    assert_eq!(
        d.pool.handle_going_away(conn, d.now),
        Err(EventError::WrongState)
    );
    assert_eq!(
        d.pool.handle_health_ok(conn, d.now),
        Err(EventError::WrongState)
    );
    assert_eq!(snapshot(&d), before);
    d.handle_connected(conn, Connected::http1());
    let _ = grant_of(&d.actions(), w);
    let before = snapshot(&d);
    assert_eq!(
        d.pool.handle_connected(conn, d.now, Connected::http1()),
        Err(EventError::WrongState)
    );
    assert_eq!(
        d.pool.handle_connect_failed(conn, d.now),
        Err(EventError::WrongState)
    );
    assert_eq!(snapshot(&d), before);
    d.check();
}

#[test]
fn time_never_runs_backwards() {
    let mut d = Driver::new(quiet());
    d.advance(secs(10));
    let late = d.now;
    d.pool.handle_timeout(muxpool_core::Instant::ZERO);
    assert_eq!(d.pool.now(), late);
    d.check();
}
