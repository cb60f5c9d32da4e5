//! Pre-warming: `min_idle_per_key` connections kept open and idle per key.
//!
//! With a minimum idle target, the core opens connections for a key before they
//! are asked for (after the key's protocol is learned, within the limits, the
//! backoff and the circuit), and the idle timeout closes only the idle connections
//! above the target. The harness checks every step as everywhere, plus that a key
//! below its idle target with room to open is opening toward it.
//!
//! Cases run in a forked child with a short time limit: an input that makes
//! `handle_timeout` loop forever fails, and is shrunk, instead of hanging.

use crate::support::{case, proptest_config, Harness, Profile};
use proptest::prelude::*;

proptest! {
    #![proptest_config(proptest_config(256, 2_000))]

    #[test]
    fn idle_targets_are_kept_without_breaking_anything(case in case(Profile::MinIdle, 1..=30)) {
        let mut h = Harness::new(case.config.clone(), case.keys, |k| k);
        if let Err(e) = h.run(&case) {
            return Err(TestCaseError::fail(e));
        }
    }
}
