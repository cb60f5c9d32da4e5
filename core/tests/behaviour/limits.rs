//! Connection limits: per key, in total, and connects in flight, all counting
//! connecting, ready and draining connections; and how a key that meets the global
//! limit still makes progress.

use crate::support::*;
use muxpool_core::{Acquire, CloseReason, Connected};

#[test]
fn per_key_limit_caps_opens_and_queues_the_rest() {
    let mut c = quiet();
    c.max_connections_per_key = 2;
    let mut d = Driver::new(c);
    let first = d.first_lease("k", Connected::http1());
    let _w1 = d.queued("k");
    let _w2 = d.queued("k");
    let _w3 = d.queued("k");
    assert_eq!(d.opens(1).len(), 1, "one more, up to the limit of 2");
    assert_eq!(d.pool.key_stats(&"k").unwrap().open, 2);
    d.release(first);
    assert_eq!(grants(&d.actions()).len(), 1);
}

#[test]
fn connects_in_flight_are_capped_per_key() {
    let mut c = quiet();
    c.max_connecting_per_key = 2;
    let mut d = Driver::new(c);
    let first = d.first_lease("k", Connected::http1());
    for _ in 0..5 {
        d.queued("k");
    }
    let conns = d.opens(2);
    d.handle_connected(conns[0], Connected::http1());
    // One connect finished: one waiter served, one more connect started.
    let actions = d.actions();
    assert_eq!(grants(&actions).len(), 1);
    assert_eq!(opens_in(&actions).len(), 1);
    d.release(first);
}

#[test]
fn global_limit_evicts_the_least_recently_used_idle_connection_of_another_key() {
    let mut c = quiet();
    c.max_connections = 2;
    c.max_connections_per_key = 2;
    let mut d = Driver::new(c);
    let a = d.first_lease("a", Connected::http1());
    let b = d.first_lease("b", Connected::http1());
    d.release(a);
    d.advance(millis(1));
    d.release(b);
    // "c" needs a connection; "a" went idle first, so it is evicted.
    let w = d.queued("c");
    d.replaced(a.conn(), CloseReason::Evicted, w);
    assert_eq!(d.pool.stats().open, 2);
}

#[test]
fn a_key_blocked_on_the_global_limit_opens_as_soon_as_any_connection_closes() {
    let mut c = quiet();
    c.max_connections = 1;
    c.max_connections_per_key = 1;
    let mut d = Driver::new(c);
    let a = d.first_lease("a", Connected::http1());
    let w = d.queued("b");
    assert!(d.actions().is_empty(), "nothing idle to evict: b waits");
    // The unrelated connection closes: b opens at once.
    d.release_closing(a);
    d.replaced(a.conn(), CloseReason::NotReusable, w);
}

#[test]
fn draining_connections_count_against_the_limits() {
    let mut c = quiet();
    c.max_connections_per_key = 1;
    let mut d = Driver::new(c);
    let lease = d.first_lease("k", Connected::http1());
    d.pool.handle_going_away(lease.conn(), d.now).unwrap();
    d.check();
    let w = d.queued("k");
    assert!(
        d.actions().is_empty(),
        "the draining connection holds the only slot"
    );
    d.release(lease);
    d.replaced(lease.conn(), CloseReason::PeerGoingAway, w);
    assert!(matches!(d.acquire("k"), Ok(Acquire::Queued(_))));
}

#[test]
fn a_connection_going_idle_anywhere_serves_a_key_blocked_on_the_global_limit() {
    let mut c = quiet();
    c.max_connections = 1;
    c.max_connections_per_key = 1;
    let mut d = Driver::new(c);
    let a = d.first_lease("a", Connected::http1());
    let w = d.queued("b");
    assert!(d.actions().is_empty());
    // "a" goes idle: it is evicted at once for "b", which is waiting.
    d.release(a);
    d.replaced(a.conn(), CloseReason::Evicted, w);
}

#[test]
fn pre_warming_blocked_on_the_global_limit_resumes_when_room_frees() {
    let mut c = quiet();
    c.max_connections = 1;
    c.max_connections_per_key = 1;
    c.min_idle_per_key = 1;
    let mut d = Driver::new(c);
    let a = d.first_lease("a", Connected::http1());
    // "b" wants one idle connection but there is no room, and pre-warming
    // never evicts.
    let w = d.queued("b");
    d.pool.cancel(w, d.now).unwrap();
    d.check();
    assert!(d.actions().is_empty());
    d.release_closing(a);
    let actions = d.actions();
    assert_eq!(closes(&actions), [(a.conn(), CloseReason::NotReusable)]);
    assert_eq!(
        opens_in(&actions).len(),
        1,
        "the room goes to a pre-warm connection: {actions:?}"
    );
}
