//! Backoff and the circuit breaker.
//!
//! After a connect failure the core waits before the next connect to the key
//! (exponential, with jitter from the seed), and refuses only the waiters due
//! before it could come (`ConnectFailed`). After `failure_threshold`
//! consecutive failures over at least `failing_for` the key's circuit opens:
//! the waiters due before its probe are rejected with `CircuitOpen`, the others
//! wait for it, new requests are refused with `CircuitOpen`, and nothing is
//! opened for `open_for`; then one probe connection is opened. A probe that
//! connects closes the circuit and serves the waiters; one that fails opens it
//! again.
//!
//! The random walks here are heavy in connect failures, transport closes and
//! connect timeouts; the harness checks every open against the backoff (none
//! before half the backoff, one due after all of it) and the circuit, every
//! `ConnectFailed` and `CircuitOpen` rejection against a failure that justifies
//! it, and that a circuit past `open_for` has its probe. A directed property walks
//! one key through the whole cycle.

use std::time::Duration;

use crate::support::{case, proptest_config, Harness, Input, Profile, Proto};
use muxpool_core::{
    Acquire, Action, Backoff, Circuit, ConnectFailure, Instant, PoolConfig, RejectReason,
};
use proptest::prelude::*;

/// Fails connects on key 0 until `failures` have failed in a row; returns the time
/// of the last failure.
fn fail_connects(h: &mut Harness<u8>, failures: u32) -> Result<Instant, String> {
    for _ in 0..failures {
        if h.waiting(0) == 0 {
            match h.acquire(0, None)? {
                Ok(Acquire::Queued(_)) => {}
                other => return Err(format!("expected to queue, got {other:?}")),
            }
        }
        // Wait out the backoff for the connect.
        let mut conn = h.connecting(0).first().copied();
        while conn.is_none() {
            if !h.advance_to_deadline()? {
                return Err(
                    "a request waits, nothing connects, and the core has no deadline".into(),
                );
            }
            conn = h.connecting(0).first().copied();
        }
        h.input(Input::ConnectFailed(
            conn.expect("checked"),
            ConnectFailure::Transient,
        ))?;
    }
    Ok(h.now())
}

proptest! {
    #![proptest_config(proptest_config(256, 10_000))]

    #[test]
    fn backoff_and_circuit_rules_hold_under_failures(case in case(Profile::Circuit, 1..=60)) {
        let mut h = Harness::new(case.config.clone(), case.keys, |k| k);
        if let Err(e) = h.run(&case) {
            return Err(TestCaseError::fail(e));
        }
    }

    /// Threshold failures open the circuit (`failing_for` zero: however short
    /// the run); new requests fail fast until `open_for` while the one waiting
    /// stays; then exactly one probe; its success closes the circuit and serves
    /// the waiting request, its failure opens it again for another `open_for`.
    #[test]
    fn the_circuit_opens_probes_and_closes(
        threshold in 1u32..=4,
        open_for_ms in 10u64..=300,
        backoff_ms in 1u64..=20,
        probe_connects in any::<bool>(),
        proto in prop_oneof![Just(Proto::Http1), (1u32..=3).prop_map(Proto::Http2)],
        seed in any::<u64>(),
    ) {
        let open_for = Duration::from_millis(open_for_ms);
        let mut config = PoolConfig::default();
        config.max_connections_per_key = 2;
        config.max_connecting_per_key = 1;
        config.acquire_timeout = Duration::from_secs(60);
        config.connect_timeout = Duration::from_secs(30);
        config.backoff = Backoff::new(Duration::from_millis(backoff_ms), Duration::from_millis(backoff_ms * 4));
        config.circuit = Circuit::new(Some(threshold), open_for).failing_for(Duration::ZERO);
        config.seed = seed;
        let mut h = Harness::new(config, 1, |k| k);
        let walk = |h: &mut Harness<u8>| -> Result<(), String> {
            let tripped = fail_connects(h, threshold)?;
            if h.waiting(0) != 1 {
                return Err("the request that can wait for the probe does not".into());
            }
            let refused = h.acquire(0, None)?;
            if refused != Err(RejectReason::CircuitOpen) {
                return Err(format!("a request to an open circuit got {refused:?}"));
            }
            // Nothing opens while the circuit is open...
            let mark = h.mark();
            h.advance_to(tripped + (open_for - Duration::from_nanos(1)))?;
            let early = h.actions_since(mark);
            if early.iter().any(|a| matches!(a, Action::Open { .. })) {
                return Err(format!("opened before open_for: {early:?}"));
            }
            // ...then exactly one probe.
            h.advance_to(tripped + open_for)?;
            let probes = h.connecting(0);
            if probes.len() != 1 {
                return Err(format!("{} probes after open_for", probes.len()));
            }
            if probe_connects {
                h.input(Input::Connected(probes[0], proto))?;
                if h.waiting(0) != 0 {
                    return Err("a good probe did not serve the waiting request".into());
                }
                if let Err(reason) = h.acquire(0, None)? {
                    return Err(format!("after a good probe a request got {reason:?}"));
                }
            } else {
                let failed = h.now();
                h.input(Input::ConnectFailed(probes[0], ConnectFailure::Transient))?;
                let refused = h.acquire(0, None)?;
                if refused != Err(RejectReason::CircuitOpen) {
                    return Err(format!("after a failed probe a request got {refused:?}"));
                }
                if !h.connecting(0).is_empty() {
                    return Err("a failed probe was followed at once by another connect".into());
                }
                let mark = h.mark();
                h.advance_to(failed + (open_for - Duration::from_nanos(1)))?;
                if h.actions_since(mark).iter().any(|a| matches!(a, Action::Open { .. })) {
                    return Err("opened again before open_for after a failed probe".into());
                }
                h.advance_to(failed + open_for)?;
                if h.connecting(0).len() != 1 {
                    return Err("no second probe after open_for".into());
                }
            }
            h.quiesce(proto)
        };
        walk(&mut h).map_err(TestCaseError::fail)?;
    }
}
