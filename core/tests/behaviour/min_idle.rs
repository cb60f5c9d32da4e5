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

/// Sets `key`'s minimum at run time, checking the pool after.
fn set(d: &mut Driver, key: &'static str, min: Option<u32>) -> u32 {
    let in_force = d.pool.set_min_idle(&key, d.now, min);
    d.check();
    in_force
}

#[test]
fn a_minimum_set_at_run_time_warms_a_key_never_asked_for() {
    let mut d = Driver::new(warm(0));
    assert_eq!(set(&mut d, "k", Some(3)), 3);
    // The protocol is learned from one connection before more are opened.
    let first = d.opens(1)[0];
    d.handle_connected(first, Connected::http1());
    for conn in d.opens(2) {
        d.handle_connected(conn, Connected::http1());
    }
    assert!(d.actions().is_empty());
    assert_eq!(d.pool.key_stats(&"k").unwrap().idle, 3);
    // Another key keeps the configured minimum.
    assert_eq!(d.pool.min_idle(&"other"), 0);
}

#[test]
fn lowering_the_minimum_lets_the_idle_timeout_close_down_to_it() {
    let mut d = Driver::new(warm(0));
    set(&mut d, "k", Some(3));
    let first = d.opens(1)[0];
    d.handle_connected(first, Connected::http1());
    for conn in d.opens(2) {
        d.handle_connected(conn, Connected::http1());
    }
    d.advance(secs(90));
    assert!(
        d.actions().is_empty(),
        "three idle are kept at a minimum of 3"
    );
    // Kept when looked at (at 90 s), their idle clocks started again: they
    // are looked at next at 150 s, under the new minimum.
    set(&mut d, "k", Some(1));
    assert!(d.actions().is_empty());
    d.advance(secs(60));
    let closed = closes(&d.actions());
    assert_eq!(
        closed.len(),
        2,
        "the idle timeout closes down to the new minimum"
    );
    assert!(closed.iter().all(|c| c.1 == CloseReason::IdleTimeout));
    assert_eq!(d.pool.key_stats(&"k").unwrap().idle, 1);
}

#[test]
fn clearing_the_minimum_goes_back_to_the_configured_one_and_lets_the_key_go() {
    let mut c = warm(1);
    c.forget_key_after = secs(10);
    let mut d = Driver::new(c);
    assert_eq!(set(&mut d, "k", Some(0)), 0);
    // Held at 0 and empty, the key is still remembered: it keeps its minimum.
    d.advance(secs(60));
    assert_eq!(d.pool.min_idle(&"k"), 0);
    assert!(d.pool.key_stats(&"k").is_some());
    assert!(d.actions().is_empty());
    // Cleared, the key is held to the configured minimum again.
    assert_eq!(set(&mut d, "k", None), 1);
    d.opens(1);
}

#[test]
fn the_minimum_is_clamped_to_the_limits() {
    let mut c = warm(0);
    c.max_connections_per_key = 4;
    c.max_connections = 6;
    let mut d = Driver::new(c);
    assert_eq!(set(&mut d, "k", Some(500)), 4);
    let mut c = warm(0);
    c.max_connections_per_key = 4;
    c.max_connections = 4;
    c.max_connecting_per_key = 4;
    let mut d = Driver::new(c);
    assert_eq!(set(&mut d, "a", Some(4)), 4);
    let first = d.opens(1)[0];
    d.handle_connected(first, Connected::http1());
    d.opens(3);
    // The global limit is reached: pre-warming another key evicts nothing.
    assert_eq!(set(&mut d, "b", Some(3)), 3);
    assert!(d.actions().is_empty());
}

#[test]
fn after_shutdown_a_minimum_changes_nothing() {
    let mut d = Driver::new(warm(0));
    d.pool.shutdown(d.now, muxpool_core::Shutdown::Graceful);
    assert_eq!(set(&mut d, "k", Some(2)), 0);
    assert!(d.pool.key_stats(&"k").is_none());
    assert!(d.actions().is_empty());
}
