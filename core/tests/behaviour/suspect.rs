//! A suspected connection: a request on it got no answer in time, so the peer
//! may be gone without a sign (its host vanished, no reset ever came). The core
//! checks it at once, leases out or not, grants nothing on it meanwhile, and
//! closes it when the check goes unanswered.

use crate::support::*;
use muxpool_core::{
    Action, CloseReason, Connected, EventError, HandleKind, HealthCheck, PoolConfig, Release,
    Shutdown,
};

/// No periodic check: only suspicion sends one.
fn config() -> PoolConfig {
    let mut c = quiet();
    c.health_check = HealthCheck::new(None, secs(5));
    c
}

#[test]
fn a_busy_multiplexed_connection_is_checked_at_once() {
    let mut d = Driver::new(config());
    let first = d.first_lease("k", Connected::http2(10));
    let second = d.ready("k");
    assert_eq!(second.conn(), first.conn());
    d.pool.handle_suspect(first.conn(), d.now).unwrap();
    d.check();
    assert_eq!(d.actions(), [Action::HealthCheck { conn: first.conn() }]);
    // No new stream goes to it while the check is out: another connection opens.
    let w = d.queued("k");
    let other = d.opens(1)[0];
    assert_ne!(other, first.conn());
    // Suspecting it again asks for nothing more.
    d.pool.handle_suspect(first.conn(), d.now).unwrap();
    assert!(d.actions().is_empty());
    // The answer makes it grantable again; the waiter takes it.
    d.advance(millis(20));
    d.pool.handle_health_ok(first.conn(), d.now).unwrap();
    d.check();
    assert_eq!(grant_of(&d.actions(), w).conn(), first.conn());
}

#[test]
fn an_unanswered_check_closes_it_under_its_leases() {
    let mut d = Driver::new(config());
    let lease = d.first_lease("k", Connected::http2(10));
    d.pool.handle_suspect(lease.conn(), d.now).unwrap();
    assert_eq!(d.actions(), [Action::HealthCheck { conn: lease.conn() }]);
    d.advance(millis(4_999));
    assert!(d.actions().is_empty());
    d.advance(millis(1));
    assert_eq!(
        closes(&d.actions()),
        [(lease.conn(), CloseReason::HealthCheckFailed)]
    );
    // The lease out on it is still released as usual, and the next request
    // gets a new connection.
    d.pool.release(lease, d.now, Release::Reuse).unwrap();
    d.check();
    assert_eq!(d.pool.stats().open, 0);
    d.queued("k");
    assert_ne!(d.opens(1)[0], lease.conn());
}

#[test]
fn connections_without_a_check_are_left_alone() {
    let mut d = Driver::new(config());
    let h1 = d.first_lease("k", Connected::http1());
    d.pool.handle_suspect(h1.conn(), d.now).unwrap();
    d.check();
    assert!(d.actions().is_empty());
    d.release(h1);
    assert_eq!(d.ready("k").conn(), h1.conn());
}

#[test]
fn draining_connections_are_left_alone() {
    let mut d = Driver::new(config());
    let lease = d.first_lease("k", Connected::http2(10));
    d.pool.handle_going_away(lease.conn(), d.now).unwrap();
    d.actions();
    d.pool.handle_suspect(lease.conn(), d.now).unwrap();
    assert!(d.actions().is_empty());
    d.release(lease);
    assert_eq!(
        closes(&d.actions()),
        [(lease.conn(), CloseReason::PeerGoingAway)]
    );
}

#[test]
fn a_suspected_connection_that_goes_away_still_answers_for_its_check() {
    let mut d = Driver::new(config());
    let lease = d.first_lease("k", Connected::http2(10));
    d.pool.handle_suspect(lease.conn(), d.now).unwrap();
    assert_eq!(d.actions(), [Action::HealthCheck { conn: lease.conn() }]);
    // GOAWAY while the check is out: the connection drains, and the check
    // stays out. Unanswered, it closes the connection under its lease.
    d.pool.handle_going_away(lease.conn(), d.now).unwrap();
    d.check();
    assert!(d.actions().is_empty());
    d.advance(secs(5));
    assert_eq!(
        closes(&d.actions()),
        [(lease.conn(), CloseReason::HealthCheckFailed)]
    );
    d.pool.release(lease, d.now, Release::Reuse).unwrap();
    d.check();
    assert_eq!(d.pool.stats().open, 0);
}

#[test]
fn the_answer_to_a_draining_connections_check_is_taken() {
    let mut d = Driver::new(config());
    let lease = d.first_lease("k", Connected::http2(10));
    d.pool.handle_suspect(lease.conn(), d.now).unwrap();
    d.actions();
    d.pool.handle_going_away(lease.conn(), d.now).unwrap();
    d.actions();
    // The pong to the check sent before the GOAWAY: answered, not refused.
    d.advance(millis(20));
    assert_eq!(d.pool.handle_health_ok(lease.conn(), d.now), Ok(()));
    d.check();
    // No check is out any more: it drains to its last lease, then closes.
    d.advance(secs(10));
    assert!(d.actions().is_empty());
    assert_eq!(
        d.pool.handle_health_ok(lease.conn(), d.now),
        Err(EventError::WrongState)
    );
    d.release(lease);
    assert_eq!(
        closes(&d.actions()),
        [(lease.conn(), CloseReason::PeerGoingAway)]
    );
}

#[test]
fn a_suspected_connection_in_a_graceful_shutdown_still_closes_at_its_check() {
    let mut d = Driver::new(config());
    let lease = d.first_lease("k", Connected::websocket());
    d.pool.handle_suspect(lease.conn(), d.now).unwrap();
    assert_eq!(d.actions(), [Action::HealthCheck { conn: lease.conn() }]);
    d.pool.shutdown(d.now, Shutdown::Graceful);
    d.check();
    assert!(d.actions().is_empty());
    d.advance(secs(5));
    assert_eq!(
        closes(&d.actions()),
        [(lease.conn(), CloseReason::HealthCheckFailed)]
    );
}

#[test]
fn a_connecting_or_unknown_connection_is_refused() {
    let mut d = Driver::new(config());
    d.queued("k");
    let conn = d.opens(1)[0];
    assert_eq!(
        d.pool.handle_suspect(conn, d.now),
        Err(EventError::WrongState)
    );
    d.handle_connect_failed(conn);
    d.actions();
    assert_eq!(
        d.pool.handle_suspect(conn, d.now),
        Err(EventError::Stale(HandleKind::Connection))
    );
    assert!(d.actions().is_empty());
}
