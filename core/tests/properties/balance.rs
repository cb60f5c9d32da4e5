//! The balancer under random endpoints, failures, removals and time.
//!
//! After every step its own invariants hold (`Balancer::check_invariants`:
//! the ejected count within its cap, no removed endpoint choosable, loads as
//! health gives them), and every choice is checked from the outside, from
//! what `Balancer::endpoint` says of each endpoint: never a removed endpoint;
//! an ejected one only as its probe or in a group in panic; a group below
//! the first only while the groups above it are under 100 % healthy, by the
//! overprovisioning rule. The same steps twice give the same choices.

use std::time::Duration;

use muxpool_core::{
    Balance, BalanceEvent, Balancer, Endpoint, EndpointState, Instant, Outcome, Pick,
};
use proptest::prelude::*;

use crate::support::proptest_config;

#[derive(Debug, Clone)]
enum Step {
    Insert {
        key: u8,
        priority: u8,
        weight: u8,
    },
    Remove {
        key: u8,
    },
    /// A choice, with which endpoints have capacity now (a bit per key).
    Choose {
        ready: u8,
    },
    Complete {
        which: u8,
        failed: bool,
        after_ms: u16,
    },
    Cancel {
        which: u8,
    },
    ConnectFailed {
        key: u8,
    },
    Advance {
        ms: u32,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0u8..8, 0u8..3, 1u8..4).prop_map(|(key, priority, weight)| Step::Insert { key, priority, weight }),
        1 => (0u8..8).prop_map(|key| Step::Remove { key }),
        6 => any::<u8>().prop_map(|ready| Step::Choose { ready }),
        4 => (any::<u8>(), any::<bool>(), 0u16..500).prop_map(|(which, failed, after_ms)| Step::Complete { which, failed, after_ms }),
        1 => any::<u8>().prop_map(|which| Step::Cancel { which }),
        3 => (0u8..8).prop_map(|key| Step::ConnectFailed { key }),
        1 => prop_oneof![0u32..2_000, 0u32..400_000].prop_map(|ms| Step::Advance { ms }),
    ]
}

fn config() -> Balance {
    let mut config = Balance::default();
    config.outliers.consecutive_failures = Some(2);
    config.outliers.base_ejection = Duration::from_secs(5);
    config.failover.failback_after = Duration::from_secs(3);
    config
}

/// What the choices were, for comparing two runs.
type Trace = Vec<(Option<u8>, bool, Vec<BalanceEvent<u8>>)>;

/// Runs the steps, checking every one; the trace of choices and events.
fn run(steps: &[Step]) -> Result<Trace, TestCaseError> {
    let config = config();
    let mut b: Balancer<u8> = Balancer::new(config).unwrap();
    let mut now = Instant::ZERO;
    let mut out: Vec<Pick> = Vec::new();
    let mut trace = Trace::new();
    for s in steps {
        let mut chosen = None;
        match *s {
            Step::Insert {
                key,
                priority,
                weight,
            } => {
                b.insert(
                    key,
                    Endpoint::new(u32::from(priority), u32::from(weight)),
                    now,
                )
                .unwrap();
            }
            Step::Remove { key } => {
                let _ = b.remove(&key, now);
            }
            Step::Choose { ready } => {
                // What is due by now happens first (as `choose` does), so
                // that the endpoints are read as the choice sees them.
                b.handle_timeout(now);
                let before: Vec<(u8, EndpointState, u32, u32)> = (0..8)
                    .filter_map(|k| {
                        b.endpoint(&k)
                            .map(|i| (k, i.state, i.endpoint.priority, i.endpoint.weight))
                    })
                    .collect();
                if let Ok(pick) = b.choose(now, &|k: &u8| ready & (1 << k) != 0) {
                    let key = *b.key(&pick).expect("a pick names its endpoint");
                    check_choice(&b, &before, key, pick.is_probe())?;
                    chosen = Some((key, pick.is_probe()));
                    out.push(pick);
                }
            }
            Step::Complete {
                which,
                failed,
                after_ms,
            } if !out.is_empty() => {
                let pick = out.swap_remove(usize::from(which) % out.len());
                now += Duration::from_millis(u64::from(after_ms));
                let outcome = if failed {
                    Outcome::Failure
                } else {
                    Outcome::Success
                };
                b.complete(pick, now, outcome).unwrap();
            }
            Step::Cancel { which } if !out.is_empty() => {
                let pick = out.swap_remove(usize::from(which) % out.len());
                b.cancel(pick, now).unwrap();
            }
            Step::ConnectFailed { key } => {
                let _ = b.connect_failed(&key, now);
            }
            Step::Advance { ms } => {
                now += Duration::from_millis(u64::from(ms));
                b.handle_timeout(now);
            }
            _ => {}
        }
        if let Err(e) = b.check_invariants() {
            return Err(TestCaseError::fail(format!("{e} after {s:?}")));
        }
        prop_assert!(b.ejected() <= b.ejection_cap());
        let events = std::iter::from_fn(|| b.poll_event()).collect();
        trace.push((chosen.map(|c| c.0), chosen.is_some_and(|c| c.1), events));
    }
    Ok(trace)
}

/// A choice checked against the endpoints as they were just before it.
fn check_choice(
    b: &Balancer<u8>,
    before: &[(u8, EndpointState, u32, u32)],
    key: u8,
    probe: bool,
) -> Result<(), TestCaseError> {
    let (_, state, priority, _) = *before
        .iter()
        .find(|e| e.0 == key)
        .ok_or_else(|| TestCaseError::fail("chose an unknown endpoint"))?;
    prop_assert!(state != EndpointState::Draining, "chose a removed endpoint");
    if probe {
        return Ok(());
    }
    let overprovisioning = u64::from(b.config().failover.overprovisioning);
    let threshold = u64::from(b.config().outliers.panic_threshold);
    let health = |p: u32| {
        let (mut total, mut counted, mut admitted) = (0u64, 0u64, 0u64);
        for &(_, s, q, w) in before {
            if q != p || s == EndpointState::Draining {
                continue;
            }
            total += u64::from(w);
            if let EndpointState::Healthy { counted: c } = s {
                admitted += u64::from(w);
                if c {
                    counted += u64::from(w);
                }
            }
        }
        let health = (counted * overprovisioning * 100 / total).min(10_000);
        (health, admitted * 100 < threshold * total)
    };
    let mut priorities: Vec<u32> = before
        .iter()
        .filter(|e| e.1 != EndpointState::Draining)
        .map(|e| e.2)
        .collect();
    priorities.sort_unstable();
    priorities.dedup();
    let total_health: u64 = priorities.iter().map(|&p| health(p).0).sum();
    let above: u64 = priorities
        .iter()
        .filter(|&&p| p < priority)
        .map(|&p| health(p).0)
        .sum();
    let (_, panic) = health(priority);
    if total_health > 0 {
        prop_assert!(
            above < 10_000,
            "chose group {priority} while the groups above are {above} healthy"
        );
        prop_assert!(
            panic || matches!(state, EndpointState::Healthy { .. }),
            "chose an ejected endpoint ({state:?}) outside panic"
        );
    } else {
        prop_assert_eq!(
            Some(&priority),
            priorities.first(),
            "no health: the first group; {:?} {:?}",
            before,
            b.loads().collect::<Vec<_>>()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(256, 10_000))]

    #[test]
    fn choices_keep_the_rules(steps in proptest::collection::vec(step(), 1..200)) {
        run(&steps)?;
    }

    #[test]
    fn same_steps_same_choices(steps in proptest::collection::vec(step(), 1..120)) {
        let first = run(&steps)?;
        let second = run(&steps)?;
        prop_assert!(first == second, "two runs of the same steps differ");
    }
}
