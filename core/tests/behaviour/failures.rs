//! Connect failures: a failed connect fails only the requests that cannot
//! wait for the next one; the key backs off exponentially with seeded jitter;
//! once connects have failed often enough and for long enough its circuit
//! opens, new requests fail fast, and one probe finds the origin again.

use std::time::Duration;

use crate::support::*;
use muxpool_core::{
    Acquire, Backoff, Circuit, ConnectFailure, Connected, PoolConfig, RejectReason,
};

/// Backoff from 100 ms to 10 s; a circuit that opens on `threshold` failures
/// however short the run (the probe's mechanics, apart from the rule of
/// when it opens).
fn flaky(threshold: Option<u32>) -> PoolConfig {
    let mut c = quiet();
    c.backoff = Backoff::new(millis(100), secs(10));
    c.circuit = Circuit::new(threshold, secs(5)).failing_for(Duration::ZERO);
    c
}

#[test]
fn a_failed_connect_fails_only_the_requests_that_cannot_wait_for_the_next() {
    let mut d = Driver::new(flaky(None));
    // The backoff after a first failure is 50 to 100 ms: `short` cannot wait
    // for the next connect, `long` can.
    let short = match d.acquire_until("k", d.now + millis(10)) {
        Ok(Acquire::Queued(w)) => w,
        other => panic!("expected to wait, got {other:?}"),
    };
    let long = d.queued("k");
    let conn = d.opens(1)[0];
    d.handle_connect_failed(conn);
    assert_eq!(
        rejects(&d.actions()),
        [(short, RejectReason::ConnectFailed)]
    );
    // Nothing is opened during the backoff.
    d.advance(millis(49));
    assert!(opens_in(&d.actions()).is_empty());
    d.advance(millis(51));
    let retry = opens_in(&d.actions())[0];
    d.handle_connected(retry, Connected::http1());
    let _ = grant_of(&d.actions(), long);
}

/// The requests a failed connect refuses are those due strictly before the
/// next attempt: one due at the very instant the probe starts waits for it.
#[test]
fn a_request_due_as_the_probe_starts_waits_for_it() {
    let mut d = Driver::new(flaky(Some(1)));
    let queued = |d: &mut Driver, deadline| match d.acquire_until("k", deadline) {
        Ok(Acquire::Queued(w)) => w,
        other => panic!("expected to wait, got {other:?}"),
    };
    let probe_at = d.now + secs(5);
    let just_before = d.now + (secs(5) - Duration::from_nanos(1));
    let before = queued(&mut d, just_before);
    let at = queued(&mut d, probe_at);
    let conn = d.opens(1)[0];
    d.handle_connect_failed(conn);
    assert_eq!(rejects(&d.actions()), [(before, RejectReason::CircuitOpen)]);
    assert_eq!(d.pool.key_stats(&"k").unwrap().waiting, 1, "{at:?} waits");
}

/// A failure the next connect would repeat (an untrusted certificate, a name
/// that does not resolve) fails every waiting request at once, and still
/// backs off.
#[test]
fn a_permanent_failure_fails_every_waiting_request() {
    let mut d = Driver::new(flaky(None));
    let a = d.queued("k");
    let b = d.queued("k");
    let conn = d.opens(1)[0];
    d.pool
        .handle_connect_error(conn, d.now, ConnectFailure::Permanent)
        .unwrap();
    d.check();
    assert_eq!(
        rejects(&d.actions()),
        [
            (a, RejectReason::ConnectFailed),
            (b, RejectReason::ConnectFailed)
        ]
    );
    let _c = d.queued("k");
    assert!(opens_in(&d.actions()).is_empty(), "backing off");
}

/// Connects made together fail together: they count as one failure, so the
/// backoff grows once per round, not once per connect.
#[test]
fn connects_made_together_count_as_one_failure() {
    let mut c = flaky(None);
    c.max_connecting_per_key = 3;
    let mut d = Driver::new(c);
    // A first connection teaches the key it is HTTP/1.1: one per request.
    let lease = d.first_lease("k", Connected::http1());
    d.release_closing(lease);
    d.actions();
    let _waiting: Vec<_> = (0..3).map(|_| d.queued("k")).collect();
    let round = d.opens(3);
    for conn in round {
        d.handle_connect_failed(conn);
    }
    d.actions();
    // One failure's backoff is at most 100 ms; three would be 200 to 400.
    d.advance(millis(100));
    assert!(!opens_in(&d.actions()).is_empty(), "connecting again");
}

/// A restart: connects fail for a while, the requests wait through it, and
/// the first connect that succeeds serves them; none fails.
#[test]
fn requests_wait_through_a_short_outage() {
    let mut c = flaky(Some(5));
    c.circuit.failing_for = secs(10);
    let mut d = Driver::new(c);
    let waiting: Vec<_> = (0..3).map(|_| d.queued("k")).collect();
    // Down for about 2 s: every connect in it fails.
    let up_at = d.now + secs(2);
    let mut failures = 0;
    loop {
        let conn = d.opens(1)[0];
        if d.now >= up_at {
            d.handle_connected(conn, Connected::http1());
            break;
        }
        d.handle_connect_failed(conn);
        failures += 1;
        assert!(rejects(&d.actions()).is_empty(), "no request fails");
        d.next_deadline();
    }
    assert!(
        failures >= 5,
        "more failures than the threshold: {failures}"
    );
    let first = grant_of(&d.actions(), waiting[0]);
    d.release(first);
    let _ = grant_of(&d.actions(), waiting[1]);
    assert!(matches!(d.acquire("k"), Ok(Acquire::Queued(_))), "not open");
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
    let w = d.queued("k");
    for _ in 0..3 {
        let conn = d.opens(1)[0];
        d.handle_connect_failed(conn);
        d.actions();
        d.next_deadline();
    }
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

/// The circuit opens at the first failure that is both the threshold's and
/// at least `failing_for` after the run began; from then on new requests fail
/// at once, and the waiting ones whose deadlines come before the probe fail
/// with `CircuitOpen`, the others wait for it.
#[test]
fn the_circuit_opens_once_connects_failed_often_and_long_enough() {
    let mut c = flaky(Some(3));
    c.circuit.failing_for = secs(10);
    let mut d = Driver::new(c);
    let start = d.now;
    let long = d.queued("k");
    let mut conn = d.opens(1)[0];
    let opened_at = loop {
        d.handle_connect_failed(conn);
        assert!(rejects(&d.actions()).iter().all(|&(w, _)| w != long));
        // A request that cannot wait for the next connect fails with the
        // connect's failure once it comes; after the circuit opens, at once.
        match d.acquire_until("k", d.now + secs(1)) {
            Err(RejectReason::CircuitOpen) => break d.now,
            Ok(Acquire::Queued(_)) => {}
            other => panic!("{other:?}"),
        }
        conn = loop {
            d.next_deadline();
            if let Some(&next) = opens_in(&d.actions()).first() {
                break next;
            }
        };
    };
    assert!(opened_at.saturating_duration_since(start) >= secs(10));
    // The long request still waits, for the probe.
    assert_eq!(d.pool.key_stats(&"k").unwrap().waiting, 1, "{long:?} waits");
    assert_eq!(d.acquire("k"), Err(RejectReason::CircuitOpen));
    // Other keys are not affected.
    assert!(matches!(d.acquire("other"), Ok(Acquire::Queued(_))));
}

#[test]
fn below_failing_for_no_number_of_failures_opens_the_circuit() {
    let mut c = flaky(Some(1));
    c.circuit.failing_for = secs(60);
    c.backoff = Backoff::new(millis(10), millis(10));
    let mut d = Driver::new(c);
    let _w = d.queued("k");
    for _ in 0..100 {
        let conn = d.opens(1)[0];
        d.handle_connect_failed(conn);
        d.actions();
        assert!(matches!(d.acquire("k"), Ok(Acquire::Queued(_))));
        d.next_deadline();
    }
}

#[test]
fn after_the_open_period_one_probe_is_tried_and_its_success_closes_the_circuit() {
    let mut d = Driver::new(flaky(Some(1)));
    let w = d.queued("k");
    let conn = d.opens(1)[0];
    d.handle_connect_failed(conn);
    assert!(d.actions().is_empty(), "the request waits for the probe");
    assert_eq!(d.acquire("k"), Err(RejectReason::CircuitOpen));
    d.advance(secs(5));
    let probe = d.opens(1)[0];
    assert_eq!(
        d.acquire("k"),
        Err(RejectReason::CircuitOpen),
        "still failing fast while probing"
    );
    d.handle_connected(probe, Connected::http1());
    let lease = grant_of(&d.actions(), w);
    assert_eq!(lease.conn(), probe, "the probe serves the waiting request");
    d.release(lease);
    assert_eq!(d.ready("k").conn(), probe, "and requests after it");
}

#[test]
fn a_failed_probe_opens_the_circuit_again() {
    let mut d = Driver::new(flaky(Some(1)));
    let _w = d.queued("k");
    let conn = d.opens(1)[0];
    d.handle_connect_failed(conn);
    d.advance(secs(5));
    let probe = d.opens(1)[0];
    d.actions();
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
    let w = d.queued("k");
    let conn = d.opens(1)[0];
    d.handle_connect_failed(conn);
    d.actions();
    d.release(lease);
    assert_eq!(grant_of(&d.actions(), w).conn(), lease.conn());
}

#[test]
fn a_probe_at_the_global_limit_takes_the_next_connection_another_key_gives_back() {
    // One connection in all: "busy" keeps it, and always has a request
    // waiting for it when its lease comes back.
    let mut c = flaky(Some(1));
    c.max_connections = 1;
    c.max_connections_per_key = 1;
    let mut d = Driver::new(c);
    let down = match d.acquire_until("down", d.now + secs(1)) {
        Ok(Acquire::Queued(w)) => w,
        other => panic!("expected to wait, got {other:?}"),
    };
    let failed = d.opens(1)[0];
    d.handle_connect_failed(failed);
    assert_eq!(rejects(&d.actions()), [(down, RejectReason::CircuitOpen)]);
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
