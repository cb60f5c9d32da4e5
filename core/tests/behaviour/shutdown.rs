//! Shutdown: graceful (refuse new requests, reject waiters, close idle and
//! connecting connections, close busy ones when their leases come back) and
//! immediate (close everything now).

use crate::support::*;
use muxpool_core::{CloseReason, Connected, RejectReason, Shutdown};

#[test]
fn graceful_shutdown_lets_leases_finish() {
    let mut c = quiet();
    c.max_connections_per_key = 2;
    let mut d = Driver::new(c);
    let busy = d.first_lease("k", Connected::http1());
    let w = d.queued("k");
    let connecting = d.opens(1)[0];
    let idle = d.first_lease("j", Connected::http1());
    d.release(idle);
    d.pool.shutdown(d.now, Shutdown::Graceful);
    d.check();
    let actions = d.actions();
    assert_eq!(rejects(&actions), [(w, RejectReason::ShuttingDown)]);
    let mut closed = closes(&actions);
    closed.sort();
    let mut expected = vec![
        (connecting, CloseReason::Shutdown),
        (idle.conn(), CloseReason::Shutdown),
    ];
    expected.sort();
    assert_eq!(closed, expected);
    assert_eq!(d.acquire("k"), Err(RejectReason::ShuttingDown));
    assert!(!d.pool.is_shut_down(), "a lease is still out");
    d.release(busy);
    assert_eq!(closes(&d.actions()), [(busy.conn(), CloseReason::Shutdown)]);
    assert!(d.pool.is_shut_down());
}

#[test]
fn immediate_shutdown_closes_busy_connections_too() {
    let mut d = Driver::new(quiet());
    let busy = d.first_lease("k", Connected::http2(10));
    let second = d.ready("k");
    d.pool.shutdown(d.now, Shutdown::Immediate);
    d.check();
    assert_eq!(closes(&d.actions()), [(busy.conn(), CloseReason::Shutdown)]);
    assert!(d.pool.is_shut_down());
    // Leases out on the closed connection still come back cleanly, once each.
    d.release(busy);
    d.release(second);
    assert!(d
        .pool
        .release(second, d.now, muxpool_core::Release::Reuse)
        .is_err());
    assert_eq!(d.pool.stats().leases, 0);
}

#[test]
fn a_second_shutdown_can_only_make_it_more_immediate() {
    let mut d = Driver::new(quiet());
    let busy = d.first_lease("k", Connected::http1());
    d.pool.shutdown(d.now, Shutdown::Graceful);
    assert!(d.actions().is_empty());
    d.pool.shutdown(d.now, Shutdown::Immediate);
    assert_eq!(closes(&d.actions()), [(busy.conn(), CloseReason::Shutdown)]);
    d.pool.shutdown(d.now, Shutdown::Graceful);
    assert!(d.actions().is_empty());
    d.check();
}

#[test]
fn connects_finishing_after_shutdown_are_refused() {
    let mut d = Driver::new(quiet());
    let _w = d.queued("k");
    let conn = d.opens(1)[0];
    d.pool.shutdown(d.now, Shutdown::Graceful);
    d.actions();
    assert!(d
        .pool
        .handle_connected(conn, d.now, Connected::http1())
        .is_err());
    d.check();
}
