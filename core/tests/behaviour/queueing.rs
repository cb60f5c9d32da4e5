//! Waiting requests: served in arrival order, bounded per key, answered exactly once
//! (granted, rejected at their deadline, or withdrawn by cancel).

use crate::support::*;
use muxpool_core::{Acquire, Action, Connected, EventError, HandleKind, RejectReason};

fn one_connection() -> muxpool_core::PoolConfig {
    let mut c = quiet();
    c.max_connections_per_key = 1;
    c.max_waiters_per_key = 3;
    c
}

#[test]
fn waiters_are_granted_in_arrival_order() {
    let mut d = Driver::new(one_connection());
    let lease = d.first_lease("k", Connected::http1());
    let waiters: Vec<_> = (0..3).map(|_| d.queued("k")).collect();
    assert!(d.actions().is_empty(), "at the per-key limit nothing opens");
    let mut lease = lease;
    for w in waiters {
        d.release(lease);
        let granted = grants(&d.actions());
        assert_eq!(granted.len(), 1);
        assert_eq!(granted[0].0, w, "the oldest waiter goes first");
        lease = granted[0].1;
    }
    d.release(lease);
    assert_eq!(
        d.pool.stats().waited_grants,
        4,
        "the first request waited for the connect too"
    );
}

#[test]
fn a_full_queue_refuses_at_once() {
    let mut d = Driver::new(one_connection());
    let _lease = d.first_lease("k", Connected::http1());
    for _ in 0..3 {
        d.queued("k");
    }
    assert_eq!(d.acquire("k"), Err(RejectReason::QueueFull));
    assert_eq!(d.pool.stats().rejections[RejectReason::QueueFull], 1);
    // Another key has its own queue.
    assert!(matches!(d.acquire("other"), Ok(Acquire::Queued(_))));
}

#[test]
fn a_waiter_is_rejected_at_its_deadline_not_before() {
    let mut d = Driver::new(one_connection());
    let _lease = d.first_lease("k", Connected::http1());
    let deadline = d.now + secs(2);
    let w = match d.acquire_until("k", deadline) {
        Ok(Acquire::Queued(w)) => w,
        other => panic!("{other:?}"),
    };
    assert_eq!(d.pool.poll_timeout(), Some(deadline));
    d.advance(millis(1999));
    assert!(d.actions().is_empty());
    d.advance(millis(1));
    assert_eq!(rejects(&d.actions()), [(w, RejectReason::Timeout)]);
    assert_eq!(
        d.pool.cancel(w, d.now),
        Err(EventError::Stale(HandleKind::Waiter))
    );
}

#[test]
fn waiters_whose_deadlines_come_out_of_arrival_order_each_time_out_at_their_own() {
    let mut c = one_connection();
    c.max_waiters_per_key = 10;
    let mut d = Driver::new(c);
    let lease = d.first_lease("k", Connected::http1());
    let start = d.now;
    let queue = |d: &mut Driver, after: u64| match d.acquire_until("k", start + secs(after)) {
        Ok(Acquire::Queued(w)) => w,
        other => panic!("{other:?}"),
    };
    // 5 and 8 come in order; 2 is sooner than the 5 ahead of it, 6 than the 8.
    let five = queue(&mut d, 5);
    let two = queue(&mut d, 2);
    let eight = queue(&mut d, 8);
    let six = queue(&mut d, 6);
    let nine = queue(&mut d, 9);
    assert_eq!(d.pool.poll_timeout(), Some(start + secs(2)));
    d.pool.cancel(six, d.now).expect("waiting");
    d.check();
    let mut timed_out = Vec::new();
    while timed_out.len() < 3 {
        let at = d.next_deadline();
        for (w, reason) in rejects(&d.actions()) {
            assert_eq!(reason, RejectReason::Timeout);
            timed_out.push((w, at.saturating_duration_since(start)));
        }
    }
    assert_eq!(
        timed_out,
        [(two, secs(2)), (five, secs(5)), (eight, secs(8))],
        "each at its own deadline, the cancelled one never"
    );
    d.release(lease);
    assert_eq!(grants(&d.actions())[0].0, nine, "the one left is granted");
}

#[test]
fn a_deadline_already_past_is_refused_at_once() {
    let mut d = Driver::new(one_connection());
    let _lease = d.first_lease("k", Connected::http1());
    assert_eq!(d.acquire_until("k", d.now), Err(RejectReason::Timeout));
    assert_eq!(d.pool.stats().waiting, 0);
}

#[test]
fn the_default_acquire_timeout_is_finite() {
    let mut c = one_connection();
    c.acquire_timeout = secs(30);
    let mut d = Driver::new(c);
    let _lease = d.first_lease("k", Connected::http1());
    let w = d.queued("k");
    assert_eq!(d.next_deadline(), muxpool_core::Instant::ZERO + secs(30));
    assert_eq!(rejects(&d.actions()), [(w, RejectReason::Timeout)]);
}

#[test]
fn cancel_withdraws_a_waiter_and_keeps_the_order_of_the_rest() {
    let mut d = Driver::new(one_connection());
    let lease = d.first_lease("k", Connected::http1());
    let a = d.queued("k");
    let b = d.queued("k");
    let c = d.queued("k");
    d.pool.cancel(b, d.now).unwrap();
    d.check();
    assert_eq!(
        d.pool.cancel(b, d.now),
        Err(EventError::Stale(HandleKind::Waiter))
    );
    assert!(d.actions().is_empty(), "a cancel is not answered");
    d.release(lease);
    let first = grants(&d.actions());
    assert_eq!(first[0].0, a);
    d.release(first[0].1);
    assert_eq!(grants(&d.actions())[0].0, c);
    let s = d.pool.stats();
    assert_eq!((s.cancelled, s.waiting), (1, 0));
}

#[test]
fn a_grant_already_issued_cannot_be_cancelled() {
    let mut d = Driver::new(one_connection());
    let w = d.queued("k");
    let conn = d.opens(1)[0];
    d.pool
        .handle_connected(conn, d.now, Connected::http1())
        .unwrap();
    // The grant is among the undrained actions: the waiter has been answered.
    assert_eq!(
        d.pool.cancel(w, d.now),
        Err(EventError::Stale(HandleKind::Waiter))
    );
    let actions = d.actions();
    assert!(matches!(actions[..], [Action::Grant { waiter, .. }] if waiter == w));
}
