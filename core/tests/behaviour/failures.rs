//! Connect failures: each costs at most the request at the head of the queue; the
//! key backs off exponentially with seeded jitter; after enough consecutive
//! failures its circuit opens and requests fail fast until a probe succeeds.

use crate::support::*;
use muxpool_core::{Acquire, Backoff, Circuit, Connected, PoolConfig, RejectReason};

fn flaky(threshold: Option<u32>) -> PoolConfig {
    let mut c = quiet();
    c.backoff = Backoff::new(millis(100), secs(10));
    c.circuit = Circuit::new(threshold, secs(5));
    c
}

#[test]
fn a_failed_connect_rejects_the_head_waiter_and_backs_off() {
    let mut d = Driver::new(flaky(None));
    let a = d.queued("k");
    let b = d.queued("k");
    let conn = d.opens(1)[0];
    d.handle_connect_failed(conn);
    assert_eq!(rejects(&d.actions()), [(a, RejectReason::ConnectFailed)]);
    // b still waits, and nothing is opened during the backoff.
    assert!(d.actions().is_empty());
    let backoff_end = d.pool.poll_timeout().unwrap();
    let pause = backoff_end.saturating_duration_since(d.now);
    assert!(pause >= millis(50) && pause <= millis(100), "{pause:?}");
    d.next_deadline();
    let retry = d.opens(1)[0];
    d.handle_connected(retry, Connected::http1());
    let _ = grant_of(&d.actions(), b);
}

#[test]
fn backoff_grows_exponentially_up_to_its_maximum() {
    let mut d = Driver::new(flaky(None));
    let mut pauses = Vec::new();
    for _ in 0..10 {
        let _w = d.queued("k");
        let conn = d.opens(1)[0];
        d.handle_connect_failed(conn);
        d.actions();
        let until = d.pool.poll_timeout().unwrap();
        pauses.push(until.saturating_duration_since(d.now));
        d.next_deadline();
    }
    for (i, p) in pauses.iter().enumerate() {
        let base = (millis(100) * (1 << i.min(20))).min(secs(10));
        assert!(
            *p >= base / 2 && *p <= base,
            "failure {}: {p:?} outside [{:?}, {base:?}]",
            i + 1,
            base / 2
        );
    }
    assert!(pauses[9] >= secs(5), "capped at 10 s, at least half of it");
}

#[test]
fn a_success_resets_the_backoff() {
    let mut d = Driver::new(flaky(None));
    for _ in 0..3 {
        let _w = d.queued("k");
        let conn = d.opens(1)[0];
        d.handle_connect_failed(conn);
        d.actions();
        d.next_deadline();
    }
    let w = d.queued("k");
    let conn = d.opens(1)[0];
    d.handle_connected(conn, Connected::http1());
    let lease = grant_of(&d.actions(), w);
    d.release_closing(lease);
    d.actions();
    let _w = d.queued("k");
    let conn = d.opens(1)[0];
    d.handle_connect_failed(conn);
    d.actions();
    let pause = d
        .pool
        .poll_timeout()
        .unwrap()
        .saturating_duration_since(d.now);
    assert!(pause <= millis(100), "back to the first step: {pause:?}");
}

#[test]
fn the_circuit_opens_after_the_threshold_and_fails_fast() {
    let mut d = Driver::new(flaky(Some(3)));
    let mut waiting = Vec::new();
    for i in 0..3 {
        waiting.push(d.queued("k"));
        waiting.push(d.queued("k"));
        let conn = d.opens(1)[0];
        d.handle_connect_failed(conn);
        let rejected = rejects(&d.actions());
        if i < 2 {
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].1, RejectReason::ConnectFailed);
            d.next_deadline();
        } else {
            // The third failure opens the circuit: every waiter fails at once.
            assert!(rejected.len() >= 2);
            assert!(rejected[1..]
                .iter()
                .all(|(_, r)| *r == RejectReason::CircuitOpen));
        }
    }
    assert_eq!(d.acquire("k"), Err(RejectReason::CircuitOpen));
    assert_eq!(d.pool.stats().waiting, 0);
    // Other keys are not affected.
    assert!(matches!(d.acquire("other"), Ok(Acquire::Queued(_))));
}

#[test]
fn after_the_open_period_one_probe_is_tried_and_its_success_closes_the_circuit() {
    let mut d = Driver::new(flaky(Some(1)));
    let _w = d.queued("k");
    let conn = d.opens(1)[0];
    d.handle_connect_failed(conn);
    d.actions();
    assert_eq!(d.acquire("k"), Err(RejectReason::CircuitOpen));
    d.advance(secs(5));
    let probe = d.opens(1)[0];
    assert_eq!(
        d.acquire("k"),
        Err(RejectReason::CircuitOpen),
        "still failing fast while probing"
    );
    d.handle_connected(probe, Connected::http1());
    assert!(d.actions().is_empty());
    assert_eq!(
        d.ready("k").conn(),
        probe,
        "the probe connection serves requests"
    );
}

#[test]
fn a_failed_probe_opens_the_circuit_again() {
    let mut d = Driver::new(flaky(Some(1)));
    let _w = d.queued("k");
    let conn = d.opens(1)[0];
    d.handle_connect_failed(conn);
    d.advance(secs(5));
    let probe = d.opens(1)[0];
    d.handle_connect_failed(probe);
    let actions = d.actions();
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(d.acquire("k"), Err(RejectReason::CircuitOpen));
    d.advance(secs(5));
    assert_eq!(opens_in(&d.actions()).len(), 1);
}

#[test]
fn an_open_circuit_still_serves_connections_it_already_has() {
    let mut c = flaky(Some(1));
    c.max_connections_per_key = 2;
    let mut d = Driver::new(c);
    let lease = d.first_lease("k", Connected::http1());
    let _w = d.queued("k");
    let conn = d.opens(1)[0];
    d.handle_connect_failed(conn);
    d.actions();
    d.release(lease);
    assert_eq!(d.ready("k").conn(), lease.conn());
}

#[test]
fn a_probe_at_the_global_limit_takes_the_next_connection_another_key_gives_back() {
    // One connection in all: "busy" keeps it, and always has a request
    // waiting for it when its lease comes back.
    let mut c = flaky(Some(1));
    c.max_connections = 1;
    c.max_connections_per_key = 1;
    let mut d = Driver::new(c);
    let _w = d.queued("down");
    let failed = d.opens(1)[0];
    d.handle_connect_failed(failed);
    d.actions();
    let lease = d.first_lease("busy", Connected::http1());
    let next = d.queued("busy");
    // The circuit half-opens, but its probe finds no room.
    d.advance(secs(5));
    assert!(d.actions().is_empty());
    assert_eq!(d.acquire("down"), Err(RejectReason::CircuitOpen));
    // The lease comes back: the connection goes to the probe, not to the
    // waiting request, which queues for room in turn.
    d.release(lease);
    let actions = d.actions();
    assert_eq!(
        closes(&actions),
        [(lease.conn(), muxpool_core::CloseReason::Evicted)]
    );
    assert!(grants(&actions).is_empty(), "{next:?} waits its turn");
    let probe = opens_in(&actions)[0];
    assert_eq!(d.pool.key(probe), Some(&"down"));
    // The probe comes up: the circuit closes, and requests to "down" are
    // taken again rather than refused.
    d.handle_connected(probe, Connected::http1());
    assert!(d.acquire("down").is_ok());
}
