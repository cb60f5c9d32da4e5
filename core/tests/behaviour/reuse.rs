//! Connection reuse: an idle connection is handed out again, most recently used
//! first, so the least used connections age out under the idle timeout.

use crate::support::*;
use muxpool_core::Connected;

#[test]
fn a_released_connection_is_reused_without_opening_another() {
    let mut d = Driver::new(quiet());
    let first = d.first_lease("a", Connected::http1());
    d.release(first);
    let again = d.ready("a");
    assert_eq!(again.conn(), first.conn());
    assert!(d.actions().is_empty(), "no new connection is opened");
    let s = d.pool.stats();
    assert_eq!((s.grants, s.reused_grants, s.connects), (2, 1, 1));
}

#[test]
fn the_most_recently_used_idle_connection_goes_first() {
    let mut d = Driver::new(quiet());
    let a = d.first_lease("k", Connected::http1());
    let w = d.queued("k");
    let conn = d.opens(1)[0];
    d.handle_connected(conn, Connected::http1());
    let b = grant_of(&d.actions(), w);
    d.release(a);
    d.advance(millis(5));
    d.release(b);
    // b went idle last, so b comes back first, then a.
    assert_eq!(d.ready("k").conn(), b.conn());
    assert_eq!(d.ready("k").conn(), a.conn());
}

#[test]
fn connections_are_never_shared_across_keys() {
    let mut d = Driver::new(quiet());
    let a = d.first_lease("a", Connected::http1());
    d.release(a);
    let w = d.queued("b");
    let conn = d.opens(1)[0];
    assert_ne!(conn, a.conn());
    assert_eq!(d.pool.key(conn), Some(&"b"));
    d.handle_connected(conn, Connected::http1());
    assert_eq!(grant_of(&d.actions(), w).conn(), conn);
}
