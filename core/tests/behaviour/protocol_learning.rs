//! A key's protocol is learned from its first connection: a cold burst opens one
//! connection, learns whether it multiplexes, then opens exactly what the waiting
//! demand needs, and the key remembers what it learned for next time.

use crate::support::*;
use muxpool_core::Connected;

#[test]
fn a_cold_burst_opens_one_connection_first() {
    let mut d = Driver::new(quiet());
    let waiters: Vec<_> = (0..50).map(|_| d.queued("k")).collect();
    let conn = d.opens(1)[0];
    assert_eq!(d.pool.key_stats(&"k").unwrap().connecting, 1);
    d.handle_connected(conn, Connected::http2(100));
    let granted = grants(&d.actions());
    assert_eq!(
        granted.len(),
        50,
        "the whole burst multiplexes on one connection"
    );
    assert!(granted.iter().all(|(_, l)| l.conn() == conn));
    assert_eq!(granted.iter().map(|(w, _)| *w).collect::<Vec<_>>(), waiters);
}

#[test]
fn a_burst_larger_than_the_stream_limit_opens_what_the_rest_needs() {
    let mut d = Driver::new(quiet());
    for _ in 0..25 {
        d.queued("k");
    }
    let conn = d.opens(1)[0];
    d.handle_connected(conn, Connected::http2(10));
    let actions = d.actions();
    assert_eq!(grants(&actions).len(), 10);
    let opens = opens_in(&actions).len();
    assert_eq!(
        opens, 2,
        "15 waiting at 10 streams each need 2 more connections"
    );
}

#[test]
fn an_http1_origin_opens_one_connection_per_waiter_after_learning() {
    let mut c = quiet();
    c.max_connecting_per_key = 100;
    let mut d = Driver::new(c);
    for _ in 0..5 {
        d.queued("k");
    }
    let conn = d.opens(1)[0];
    d.handle_connected(conn, Connected::http1());
    let actions = d.actions();
    assert_eq!(grants(&actions).len(), 1);
    let opens = opens_in(&actions).len();
    assert_eq!(opens, 4);
}

#[test]
fn the_learned_protocol_is_remembered_across_connections() {
    let mut c = quiet();
    c.max_connecting_per_key = 100;
    let mut d = Driver::new(c);
    let lease = d.first_lease("k", Connected::http1());
    d.release_closing(lease);
    d.actions();
    // The key has no connection now, but it is known to be HTTP/1.1: a burst of
    // three opens three at once instead of learning again.
    for _ in 0..3 {
        d.queued("k");
    }
    d.opens(3);
}
