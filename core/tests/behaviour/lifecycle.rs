//! A connection's life: connect timeout, idle timeout, maximum lifetime with
//! seeded jitter, maximum requests, and draining (no new lease, closed when the
//! last one is back).

use crate::support::*;
use muxpool_core::{Action, CloseReason, Connected, Instant, Pool, PoolConfig};

#[test]
fn a_connect_that_takes_too_long_is_closed_and_counted_as_a_failure() {
    let mut c = quiet();
    c.connect_timeout = secs(10);
    let mut d = Driver::new(c);
    let w = d.queued("k");
    let conn = d.opens(1)[0];
    assert_eq!(d.next_deadline(), Instant::ZERO + secs(10));
    let actions = d.actions();
    assert_eq!(closes(&actions), [(conn, CloseReason::ConnectTimeout)]);
    // The request can wait for the next connect, after the backoff.
    assert!(rejects(&actions).is_empty());
    assert_eq!(d.pool.stats().connect_failures, 1);
    assert_eq!(d.pool.key_stats(&"k").unwrap().waiting, 1, "{w:?} waits");
    assert!(
        d.pool
            .handle_connected(conn, d.now, Connected::http1())
            .is_err(),
        "too late"
    );
}

#[test]
fn an_idle_connection_closes_after_the_idle_timeout() {
    let mut c = quiet();
    c.idle_timeout = Some(secs(60));
    let mut d = Driver::new(c);
    let lease = d.first_lease("k", Connected::http1());
    d.advance(secs(5));
    d.release(lease);
    d.advance(secs(59));
    assert!(d.actions().is_empty());
    d.advance(secs(1));
    assert_eq!(
        closes(&d.actions()),
        [(lease.conn(), CloseReason::IdleTimeout)]
    );
    assert_eq!(d.pool.stats().open, 0);
}

#[test]
fn reuse_restarts_the_idle_clock() {
    let mut c = quiet();
    c.idle_timeout = Some(secs(60));
    let mut d = Driver::new(c);
    let lease = d.first_lease("k", Connected::http1());
    d.release(lease);
    d.advance(secs(50));
    let again = d.ready("k");
    d.advance(secs(5));
    d.release(again);
    d.advance(secs(59));
    assert!(
        d.actions().is_empty(),
        "idle for 59 s since the last release"
    );
    d.advance(secs(1));
    assert_eq!(
        closes(&d.actions()),
        [(lease.conn(), CloseReason::IdleTimeout)]
    );
}

#[test]
fn an_expired_connection_drains_and_closes_when_its_lease_returns() {
    let mut c = quiet();
    c.max_lifetime = Some(secs(300));
    c.lifetime_jitter = secs(30);
    let mut d = Driver::new(c);
    let lease = d.first_lease("k", Connected::http1());
    d.advance(secs(269));
    assert!(d.actions().is_empty(), "never before lifetime minus jitter");
    d.advance(secs(31));
    assert!(d.actions().is_empty(), "busy: it drains instead of closing");
    assert_eq!(d.pool.stats().draining, 1);
    d.release(lease);
    assert_eq!(closes(&d.actions()), [(lease.conn(), CloseReason::Expired)]);
}

#[test]
fn lifetime_jitter_spreads_a_fleet_and_depends_only_on_the_seed() {
    let expiries = |seed: u64| {
        let mut c = quiet();
        c.max_lifetime = Some(secs(300));
        c.lifetime_jitter = secs(30);
        c.max_connecting_per_key = 20;
        c.seed = seed;
        let mut d = Driver::new(c);
        let first = d.first_lease("k", Connected::http1());
        let waiters: Vec<_> = (0..19).map(|_| d.queued("k")).collect();
        for conn in d.opens(19) {
            d.handle_connected(conn, Connected::http1());
        }
        let mut leases = vec![first];
        leases.extend(grants(&d.actions()).into_iter().map(|(_, l)| l));
        assert_eq!(leases.len(), 1 + waiters.len());
        for l in leases {
            d.release(l);
        }
        let mut closed_at = Vec::new();
        while d.pool.stats().open > 0 {
            let at = d.next_deadline();
            for (_, reason) in closes(&d.actions()) {
                assert_eq!(reason, CloseReason::Expired);
                closed_at.push(at);
            }
        }
        closed_at
    };
    let a = expiries(1);
    assert_eq!(a, expiries(1), "same seed, same expiries");
    assert_ne!(a, expiries(2), "another seed, other expiries");
    let lo = Instant::ZERO + secs(270);
    let hi = Instant::ZERO + secs(300);
    assert!(a.iter().all(|t| (lo..=hi).contains(t)), "{a:?}");
    let mut distinct = a.clone();
    distinct.dedup();
    assert!(
        distinct.len() > 10,
        "a fleet made together does not expire together"
    );
}

#[test]
fn a_connection_retires_after_its_maximum_requests() {
    let mut c = quiet();
    c.max_requests_per_connection = Some(2);
    let mut d = Driver::new(c);
    let first = d.first_lease("k", Connected::http1());
    d.release(first);
    let second = d.ready("k");
    assert_eq!(second.conn(), first.conn());
    d.release(second);
    assert_eq!(
        closes(&d.actions()),
        [(first.conn(), CloseReason::RequestLimit)]
    );
}

#[test]
fn a_stream_cap_on_requests_drains_a_multiplexed_connection() {
    let mut c = quiet();
    c.max_requests_per_connection = Some(3);
    let mut d = Driver::new(c);
    let a = d.first_lease("k", Connected::http2(100));
    let b = d.ready("k");
    let c3 = d.ready("k");
    let w = d.queued("k");
    let fresh = d.opens(1)[0];
    for l in [a, b] {
        d.release(l);
        assert!(
            d.actions().is_empty(),
            "draining: not closed while a stream is out"
        );
    }
    d.release(c3);
    assert_eq!(
        closes(&d.actions()),
        [(a.conn(), CloseReason::RequestLimit)]
    );
    d.handle_connected(fresh, Connected::http2(100));
    assert_eq!(grant_of(&d.actions(), w).conn(), fresh);
}

#[test]
fn going_away_closes_an_idle_connection_at_once() {
    let mut d = Driver::new(quiet());
    let lease = d.first_lease("k", Connected::http2(10));
    d.release(lease);
    d.pool.handle_going_away(lease.conn(), d.now).unwrap();
    d.check();
    assert_eq!(
        closes(&d.actions()),
        [(lease.conn(), CloseReason::PeerGoingAway)]
    );
}

#[test]
fn a_lease_returned_as_not_reusable_closes_its_connection() {
    let mut d = Driver::new(quiet());
    let lease = d.first_lease("k", Connected::http1());
    d.release_closing(lease);
    assert_eq!(
        closes(&d.actions()),
        [(lease.conn(), CloseReason::NotReusable)]
    );
    assert_eq!(d.pool.stats().closes[CloseReason::NotReusable], 1);
}

#[test]
fn a_transport_closed_under_a_lease_frees_the_slot_and_the_lease_still_returns() {
    let mut c = quiet();
    c.max_connections_per_key = 1;
    let mut d = Driver::new(c);
    let lease = d.first_lease("k", Connected::http1());
    let w = d.queued("k");
    d.pool.handle_transport_closed(lease.conn(), d.now).unwrap();
    d.check();
    let conn = d.opens(1)[0];
    assert_ne!(conn, lease.conn());
    d.release(lease);
    assert!(
        d.pool
            .release(lease, d.now, muxpool_core::Release::Reuse)
            .is_err(),
        "once"
    );
    d.handle_connected(conn, Connected::http1());
    assert_eq!(grant_of(&d.actions(), w).conn(), conn);
    assert_eq!(d.pool.stats().transport_closes, 1);
}

#[test]
fn idle_keys_are_forgotten_after_a_while() {
    let mut c = quiet();
    c.forget_key_after = secs(600);
    let mut d = Driver::new(c);
    let lease = d.first_lease("k", Connected::http1());
    d.release_closing(lease);
    d.actions();
    assert!(d.pool.key_stats(&"k").is_some());
    d.advance(secs(600));
    assert!(d.pool.key_stats(&"k").is_none());
    assert_eq!(d.pool.poll_timeout(), None, "nothing left to wake for");
}

#[test]
fn invalid_configurations_are_refused_with_a_reason() {
    let mut c = PoolConfig::default();
    c.max_connections_per_key = 0;
    assert!(Pool::<u32>::new(c).is_err());
    let mut c = PoolConfig::default();
    c.min_idle_per_key = c.max_connections_per_key + 1;
    assert_eq!(
        Pool::<u32>::new(c).unwrap_err(),
        muxpool_core::ConfigError::MinIdleAboveMax
    );
    let mut c = PoolConfig::default();
    c.max_lifetime = Some(secs(1));
    c.lifetime_jitter = secs(1);
    assert!(Pool::<u32>::new(c)
        .unwrap_err()
        .to_string()
        .contains("lifetime_jitter"));
    assert!(Pool::<u32>::new(PoolConfig::default()).is_ok());
    let _: Option<Action> = None;
}
