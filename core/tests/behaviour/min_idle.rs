//! Pre-warming: a key keeps a minimum of idle connections, restored after use,
//! failures and expiry, and the idle timeout never closes below it.

use crate::support::*;
use muxpool_core::{CloseReason, Connected, PoolConfig};

fn warm(min_idle: u32) -> PoolConfig {
    let mut c = quiet();
    c.min_idle_per_key = min_idle;
    c.idle_timeout = Some(secs(60));
    c
}

#[test]
fn using_an_idle_connection_opens_a_replacement() {
    let mut d = Driver::new(warm(1));
    let lease = d.first_lease("k", Connected::http1());
    // The first connect served the request, leaving no idle connection: refill.
    let spare = d.opens(1)[0];
    d.handle_connected(spare, Connected::http1());
    assert!(d.actions().is_empty());
    assert_eq!(d.pool.key_stats(&"k").unwrap().idle, 1);
    let taken = d.ready("k");
    assert_eq!(taken.conn(), spare);
    d.opens(1);
    d.release(lease);
    d.release(taken);
}

#[test]
fn the_idle_timeout_keeps_the_minimum() {
    let mut d = Driver::new(warm(1));
    let a = d.first_lease("k", Connected::http1());
    let b = d.opens(1)[0];
    d.handle_connected(b, Connected::http1());
    d.release(a);
    assert_eq!(d.pool.key_stats(&"k").unwrap().idle, 2);
    d.advance(secs(60));
    let closed = closes(&d.actions());
    assert_eq!(
        closed.len(),
        1,
        "one of two idle closes, the minimum of one stays"
    );
    assert_eq!(closed[0].1, CloseReason::IdleTimeout);
    d.advance(secs(600));
    assert!(d.actions().is_empty());
    assert_eq!(d.pool.key_stats(&"k").unwrap().idle, 1);
}

#[test]
fn a_lost_idle_connection_is_replaced() {
    let mut d = Driver::new(warm(2));
    let lease = d.first_lease("k", Connected::http1());
    for conn in d.opens(2) {
        d.handle_connected(conn, Connected::http1());
    }
    d.release(lease);
    d.actions();
    d.pool.handle_transport_closed(lease.conn(), d.now).unwrap();
    d.check();
    // Two idle remain: no refill needed.
    assert!(d.actions().is_empty());
    let idle = d.ready("k");
    d.pool.handle_transport_closed(idle.conn(), d.now).unwrap();
    d.check();
    let actions = d.actions();
    assert_eq!(opens_in(&actions).len(), 1);
}
