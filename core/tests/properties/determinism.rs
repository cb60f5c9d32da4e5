//! Same inputs, same outputs.
//!
//! The core has no clock, no hidden randomness (jitter comes from the configured
//! seed) and must not let hash order leak into its decisions. So running the same
//! case twice must give the same exchange with the core, step for step: every
//! answer, every action with its ids, every deadline. And running it with keys of
//! another type (strings instead of bytes, so every hash differs) must give the
//! same exchange too: ids are slab slots, and no decision may iterate a hash map.
//!
//! This compares whole traces, whether or not the run found a broken invariant
//! (that is for the other tests to report).

use crate::support::{case, proptest_config, trace_of, Profile};
use proptest::prelude::*;

proptest! {
    #![proptest_config(proptest_config(128, 10_000))]

    #[test]
    fn same_inputs_give_the_same_outputs(case in case(Profile::General, 1..=60)) {
        let (first, first_end) = trace_of(&case, |k| k);
        let (second, second_end) = trace_of(&case, |k| k);
        prop_assert_eq!(&first_end, &second_end);
        prop_assert!(first == second, "two runs of the same case differ");
        let (named, named_end) = trace_of(&case, |k| format!("https://origin-{k}.example:443"));
        prop_assert_eq!(&first_end, &named_end);
        prop_assert!(first == named, "the same case with string keys differs");
    }
}
