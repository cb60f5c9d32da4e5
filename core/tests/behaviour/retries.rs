//! The retry budget: retries are let through while they number at most a
//! share of the window's new requests plus a floor, are refused with
//! `RetryBudget` beyond it, spend nothing when refused for another reason,
//! and come back as the window moves on.

use std::time::Duration;

use crate::support::*;
use muxpool_core::{
    Acquire, AcquireOptions, Attempt, Circuit, ConfigError, Connected, PoolConfig, RejectReason,
    RetryBudget,
};

/// 50 % of requests plus 1 a second, over 10 s: a floor of 10 retries.
fn budgeted() -> PoolConfig {
    let mut c = quiet();
    c.retry_budget = RetryBudget::new(50, 1, secs(10));
    c
}

/// A lease at once on "k", taken and given back, as `attempt`.
fn served(d: &mut Driver, attempt: Attempt) -> Result<(), RejectReason> {
    match d.attempt("k", attempt)? {
        Acquire::Ready(lease) => {
            d.release(lease);
            Ok(())
        }
        other => panic!("expected a lease at once, got {other:?}"),
    }
}

#[test]
fn retries_beyond_the_floor_and_the_share_are_refused() {
    let mut d = Driver::new(budgeted());
    let lease = d.first_lease("k", Connected::http1());
    d.release(lease);
    // One request so far (the first lease): the floor of 10, plus half of it,
    // rounded down.
    for n in 0..10 {
        assert_eq!(served(&mut d, Attempt::Retry), Ok(()), "retry {n}");
    }
    assert_eq!(
        served(&mut d, Attempt::Retry),
        Err(RejectReason::RetryBudget)
    );
    // Two more requests earn one more retry.
    served(&mut d, Attempt::First).unwrap();
    served(&mut d, Attempt::First).unwrap();
    assert_eq!(served(&mut d, Attempt::Retry), Ok(()));
    assert_eq!(
        served(&mut d, Attempt::Retry),
        Err(RejectReason::RetryBudget)
    );
    let stats = d.pool.stats();
    assert_eq!(stats.retries, 11);
    assert_eq!(stats.rejections[RejectReason::RetryBudget], 2);
    assert_eq!(d.pool.key_stats(&"k").unwrap().retries, 11);
}

#[test]
fn a_request_asking_again_neither_adds_nor_spends() {
    let mut config = quiet();
    config.retry_budget = RetryBudget::new(100, 0, secs(10));
    let mut d = Driver::new(config);
    let lease = d.first_lease("k", Connected::http1());
    d.release(lease);
    for _ in 0..5 {
        served(&mut d, Attempt::Again).unwrap();
    }
    // Only the first lease's request counts: one retry.
    assert_eq!(served(&mut d, Attempt::Retry), Ok(()));
    assert_eq!(
        served(&mut d, Attempt::Retry),
        Err(RejectReason::RetryBudget)
    );
}

#[test]
fn the_budget_comes_back_as_the_window_moves_on() {
    let mut config = quiet();
    config.retry_budget = RetryBudget::new(0, 1, secs(2));
    let mut d = Driver::new(config);
    let lease = d.first_lease("k", Connected::http1());
    d.release(lease);
    served(&mut d, Attempt::Retry).unwrap();
    served(&mut d, Attempt::Retry).unwrap();
    assert_eq!(
        served(&mut d, Attempt::Retry),
        Err(RejectReason::RetryBudget)
    );
    // The window is ten slots of 200 ms: the retries leave it 2 s after the
    // slot they were counted in began, and not before.
    d.advance(millis(1_999));
    assert_eq!(
        served(&mut d, Attempt::Retry),
        Err(RejectReason::RetryBudget)
    );
    d.advance(millis(1));
    served(&mut d, Attempt::Retry).unwrap();
    served(&mut d, Attempt::Retry).unwrap();
    assert_eq!(
        served(&mut d, Attempt::Retry),
        Err(RejectReason::RetryBudget)
    );
}

#[test]
fn a_retry_refused_for_another_reason_spends_nothing() {
    let mut config = quiet();
    config.retry_budget = RetryBudget::new(0, 1, secs(1));
    config.circuit = Circuit::new(Some(1), secs(60)).failing_for(Duration::ZERO);
    let mut d = Driver::new(config);
    let _waiter = d.queued("k");
    let conn = d.opens(1)[0];
    d.handle_connect_failed(conn);
    // The circuit is open: the retry is refused for it, and spends nothing.
    for _ in 0..3 {
        assert_eq!(
            d.attempt("k", Attempt::Retry),
            Err(RejectReason::CircuitOpen)
        );
    }
    assert_eq!(d.pool.stats().retries, 0);
    // A retry with a deadline already passed, on another key, is refused as
    // late; the one retry of the budget is still there afterwards.
    let late = d.pool.acquire(
        &"other",
        d.now,
        AcquireOptions::with_deadline(d.now).attempt(Attempt::Retry),
    );
    assert_eq!(late, Err(RejectReason::Timeout));
    assert!(matches!(
        d.attempt("other", Attempt::Retry),
        Ok(Acquire::Queued(_))
    ));
    assert_eq!(
        d.attempt("other", Attempt::Retry),
        Err(RejectReason::RetryBudget)
    );
    assert_eq!(d.pool.stats().retries, 1);
}

#[test]
fn no_budget_refuses_every_retry() {
    let mut config = quiet();
    config.retry_budget = RetryBudget::none();
    let mut d = Driver::new(config);
    let lease = d.first_lease("k", Connected::http1());
    d.release(lease);
    for _ in 0..100 {
        served(&mut d, Attempt::First).unwrap();
    }
    assert_eq!(
        served(&mut d, Attempt::Retry),
        Err(RejectReason::RetryBudget)
    );
}

#[test]
fn a_window_of_zero_is_refused() {
    let mut config = PoolConfig::default();
    config.retry_budget = RetryBudget::new(20, 10, Duration::ZERO);
    assert_eq!(
        config.validate(),
        Err(ConfigError::ZeroDuration("retry_budget.window"))
    );
}
