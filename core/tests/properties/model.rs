//! Random workloads against the reference model: every input, every kind of
//! configuration, every invariant of `docs/architecture.md` checked after every step.
//!
//! This is the broad net. Each case is a small configuration (one to four
//! connections per key, one to three keys, small stream caps and timeouts, so that
//! limits and timers are reached within a few dozen operations) and a sequence of
//! operations over all of the core's inputs, naming live handles by index. After
//! every step the harness in `support` checks limits, exclusivity, that grants
//! go only to ready connections with room and to the head waiter of their key,
//! that every request ends exactly once, progress, the counters against the state,
//! that nothing overdue is left, that the core wakes up in time, and
//! `check_invariants()`. Each case ends by driving the pool to quiescence and
//! checking that no request was lost and no connection or key was leaked.

use crate::support::{case, proptest_config, run_case, Profile};
use proptest::prelude::*;

proptest! {
    #![proptest_config(proptest_config(600, 10_000))]

    #[test]
    fn every_invariant_holds_after_every_step(case in case(Profile::General, 1..=60)) {
        if let Err(e) = run_case(&case) {
            return Err(TestCaseError::fail(e));
        }
    }
}
