//! Connection lifecycle: idle timeout, maximum lifetime (with jitter), maximum
//! requests per connection, the peer going away, health checks, and releases that
//! do not allow reuse.
//!
//! Each of these retires a connection "once nothing uses it", and each has its own
//! [`CloseReason`]. The random walks here turn those limits on, keep them small,
//! and lean on the passage of time. The harness checks every close against its
//! reason (an idle timeout only after the idle timeout, an expiry only after the
//! lifetime less its jitter, a request limit only at the limit...), that a
//! connection that should take no new lease gets none, and that nothing is left
//! overdue after the core has been woken at its deadline. Two directed properties
//! pin the request limit and going away down exactly.

use crate::support::{case, proptest_config, Harness, Input, Profile, Proto};
use muxpool_core::{Acquire, Action, CloseReason, PoolConfig, Release};
use proptest::prelude::*;

fn exclusive_or_multiplexed() -> impl Strategy<Value = Proto> {
    prop_oneof![
        Just(Proto::Http1),
        Just(Proto::WebSocket),
        (1u32..=4).prop_map(Proto::Http2)
    ]
}

fn small_config(seed: u64) -> PoolConfig {
    let mut c = PoolConfig::default();
    c.max_connections_per_key = 1;
    c.max_connections = 1;
    c.idle_timeout = None;
    c.max_lifetime = None;
    c.seed = seed;
    c
}

/// Serves `requests` requests one after another on key 0; returns the harness.
fn serve_one_by_one(
    config: PoolConfig,
    proto: Proto,
    requests: u64,
) -> Result<Harness<u8>, String> {
    let mut h = Harness::new(config, 1, |k| k);
    for _ in 0..requests {
        match h.acquire(0, None)? {
            Ok(Acquire::Ready(lease)) => h.input(Input::Release(lease, Release::Reuse))?,
            Ok(Acquire::Queued(_)) => {
                let conn = *h
                    .connecting(0)
                    .first()
                    .ok_or("a queued request on an empty key opened nothing")?;
                h.input(Input::Connected(conn, proto))?;
                let lease = *h
                    .leases()
                    .first()
                    .ok_or("the new connection was not granted")?;
                h.input(Input::Release(lease, Release::Reuse))?;
            }
            Err(e) => return Err(format!("refused: {e:?}")),
        }
    }
    Ok(h)
}

proptest! {
    #![proptest_config(proptest_config(256, 10_000))]

    #[test]
    fn connections_retire_once_unused_with_the_right_reason(case in case(Profile::Lifecycle, 1..=60)) {
        let mut h = Harness::new(case.config.clone(), case.keys, |k| k);
        if let Err(e) = h.run(&case) {
            return Err(TestCaseError::fail(e));
        }
    }

    /// With a limit of `max` requests, each connection serves exactly `max`
    /// requests and is closed with `RequestLimit` when the last one is released.
    #[test]
    fn a_connection_serves_exactly_its_request_limit(
        max in 1u64..=4,
        rounds in 1u64..=3,
        proto in exclusive_or_multiplexed(),
        seed in any::<u64>(),
    ) {
        let mut config = small_config(seed);
        config.max_requests_per_connection = Some(max);
        let h = serve_one_by_one(config, proto, max * rounds).map_err(TestCaseError::fail)?;
        let actions = h.actions_since(0);
        let opens = actions.iter().filter(|a| matches!(a, Action::Open { .. })).count() as u64;
        let closes: Vec<_> = actions.iter().filter_map(|a| match a {
            Action::Close { reason, .. } => Some(*reason),
            _ => None,
        }).collect();
        prop_assert_eq!(opens, rounds, "one connection per {} requests", max);
        prop_assert_eq!(closes, vec![CloseReason::RequestLimit; rounds as usize]);
        prop_assert_eq!(h.pool.stats().reused_grants, (max - 1) * rounds);
    }

    /// A connection whose peer goes away while leases are out takes no new lease,
    /// and is closed with `PeerGoingAway` when the last one comes back.
    #[test]
    fn a_departing_peer_drains_then_closes(streams in 2u32..=4, held in 1u32..=4, seed in any::<u64>()) {
        let held = held.min(streams);
        let mut config = small_config(seed);
        config.max_streams_per_connection = streams;
        let mut h = Harness::new(config, 1, |k| k);
        let check = |h: &mut Harness<u8>| -> Result<(), String> {
            for _ in 0..held {
                // The harness tracks the waiter or lease; the model holds it.
                let _answer = h.acquire(0, None)?.map_err(|e| format!("refused: {e:?}"))?;
            }
            let conn = h.connecting(0)[0];
            h.input(Input::Connected(conn, Proto::Http2(streams)))?;
            let leases = h.leases();
            if leases.len() != held as usize {
                return Err(format!("{} of {held} requests granted", leases.len()));
            }
            h.input(Input::GoingAway(conn))?;
            // A new request must not land on the departing connection.
            let mark = h.mark();
            if let Ok(Acquire::Ready(lease)) = h.acquire(0, None)? {
                return Err(format!("granted {lease:?} on a departing connection"));
            }
            for lease in leases {
                h.input(Input::Release(lease, Release::Reuse))?;
            }
            let closed = h.actions_since(mark).into_iter().any(|a| {
                a == Action::Close { conn, reason: CloseReason::PeerGoingAway }
            });
            if !closed {
                return Err("the departed connection was not closed with PeerGoingAway".into());
            }
            h.quiesce(Proto::Http1)
        };
        check(&mut h).map_err(TestCaseError::fail)?;
    }
}
