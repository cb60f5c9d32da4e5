//! Health checks: an idle connection whose protocol can ping is checked after an
//! interval of idleness; it takes no lease while the check is out; no answer in
//! time closes it.

use crate::support::*;
use muxpool_core::{Action, CloseReason, Connected, EventError, HealthCheck, PoolConfig};

fn checked() -> PoolConfig {
    let mut c = quiet();
    c.health_check = HealthCheck::new(Some(secs(30)), secs(5));
    c
}

#[test]
fn an_idle_pingable_connection_is_checked_and_an_answer_keeps_it() {
    let mut d = Driver::new(checked());
    let lease = d.first_lease("k", Connected::http2(10));
    d.release(lease);
    d.advance(secs(29));
    assert!(d.actions().is_empty());
    d.advance(secs(1));
    assert_eq!(d.actions(), [Action::HealthCheck { conn: lease.conn() }]);
    // While the check is out, a request waits rather than take an unverified connection.
    let w = d.queued("k");
    d.actions();
    d.advance(millis(10));
    d.pool.handle_health_ok(lease.conn(), d.now).unwrap();
    d.check();
    assert_eq!(grant_of(&d.actions(), w).conn(), lease.conn());
}

#[test]
fn an_unanswered_check_closes_the_connection() {
    let mut d = Driver::new(checked());
    let lease = d.first_lease("k", Connected::websocket());
    d.release(lease);
    d.advance(secs(30));
    assert_eq!(d.actions(), [Action::HealthCheck { conn: lease.conn() }]);
    d.advance(secs(5));
    assert_eq!(
        closes(&d.actions()),
        [(lease.conn(), CloseReason::HealthCheckFailed)]
    );
    assert_eq!(
        d.pool.handle_health_ok(lease.conn(), d.now),
        Err(EventError::Stale(muxpool_core::HandleKind::Connection))
    );
}

#[test]
fn connections_that_cannot_ping_are_never_checked() {
    let mut d = Driver::new(checked());
    let lease = d.first_lease("k", Connected::http1());
    d.release(lease);
    d.advance(secs(3600));
    assert!(d.actions().is_empty());
    assert_eq!(
        d.pool.handle_health_ok(lease.conn(), d.now),
        Err(EventError::WrongState)
    );
}

#[test]
fn busy_connections_are_not_checked() {
    let mut d = Driver::new(checked());
    let lease = d.first_lease("k", Connected::http2(10));
    d.advance(secs(100));
    assert!(d.actions().is_empty());
    d.release(lease);
    d.advance(secs(30));
    assert_eq!(d.actions(), [Action::HealthCheck { conn: lease.conn() }]);
}
