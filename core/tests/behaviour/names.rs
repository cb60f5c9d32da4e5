//! What the core names and prints: the reasons' labels are stable (metrics
//! use them), every message says what it is about, and a configuration is
//! refused exactly at its limits.

use std::time::Duration;

use muxpool_core::{
    CloseReason, ConfigError, Connected, EventError, HandleKind, PoolConfig, RejectReason,
};

use crate::support::*;

#[test]
fn reject_reasons_have_stable_labels_and_say_what_happened() {
    let labels: Vec<_> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        labels,
        [
            "timeout",
            "queue_full",
            "connect_failed",
            "circuit_open",
            "shutting_down",
            "retry_budget"
        ]
    );
    assert_eq!(
        RejectReason::Timeout.to_string(),
        "timed out waiting for a connection"
    );
    assert_eq!(
        RejectReason::CircuitOpen.to_string(),
        "the origin's circuit is open after repeated failures"
    );
}

#[test]
fn close_reasons_have_stable_labels_and_print_them() {
    let labels: Vec<_> = CloseReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        labels,
        [
            "idle_timeout",
            "expired",
            "request_limit",
            "peer_going_away",
            "not_reusable",
            "connect_timeout",
            "health_check_failed",
            "evicted",
            "surplus",
            "shutdown",
        ]
    );
    for reason in CloseReason::ALL {
        assert_eq!(reason.to_string(), reason.as_str());
    }
}

#[test]
fn event_errors_say_which_handle() {
    assert_eq!(
        EventError::Stale(HandleKind::Connection).to_string(),
        "unknown or closed connection"
    );
    assert_eq!(
        EventError::Stale(HandleKind::Lease).to_string(),
        "unknown or released lease"
    );
}

#[test]
fn a_lease_and_a_pool_print_what_they_hold() {
    let mut d = Driver::new(quiet());
    let lease = d.first_lease("k", Connected::http1());
    assert_eq!(
        format!("{lease:?}"),
        format!("{:?}@{:?}", lease.id(), lease.conn())
    );
    let pool = format!("{:?}", d.pool);
    assert!(
        pool.starts_with("Pool {") && pool.contains("open: 1"),
        "{pool}"
    );
}

#[test]
fn limits_are_refused_above_the_ceiling_and_not_at_it() {
    let ceiling = u32::MAX / 2;
    let mut config = PoolConfig::default();
    config.max_connections = ceiling;
    config.max_waiters_per_key = ceiling;
    assert_eq!(config.validate(), Ok(()));
    config.max_connections = ceiling + 1;
    assert_eq!(
        config.validate(),
        Err(ConfigError::TooLarge("max_connections"))
    );
}

#[test]
fn a_backoff_is_refused_if_its_start_is_zero_or_above_its_cap() {
    let backoff = |initial, max| {
        let mut config = PoolConfig::default();
        config.backoff.initial = initial;
        config.backoff.max = max;
        config.validate()
    };
    let s = Duration::from_secs;
    assert_eq!(backoff(Duration::ZERO, s(10)), Err(ConfigError::BadBackoff));
    assert_eq!(backoff(s(11), s(10)), Err(ConfigError::BadBackoff));
    assert_eq!(backoff(s(10), s(10)), Ok(()));
}
