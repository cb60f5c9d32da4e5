//! Handles: stale, forged and wrong-state handles are refused and change nothing;
//! ids are never reused.
//!
//! Every input that names a handle (cancel, release, connected, connect failed,
//! peer stream limit, going away, transport closed, health answered) is given, in
//! the middle of random workloads, a handle the core has finished with (a released
//! lease, an answered or cancelled request, a closed connection, including one
//! whose leases are still out), a forged one (never issued; slot indices that are
//! live with generations that are not), or a live connection in a state the input
//! does not apply to. Each must be answered with the right `EventError`, produce
//! no action, and leave every counter, gauge, view and deadline as it was. The
//! harness also checks that every issued connection, waiter and lease id is new.
//! At the end of each case, every finished handle of the run is tried against
//! every input once more.

use crate::support::{case, proptest_config, Harness, Profile};
use proptest::prelude::*;

proptest! {
    #![proptest_config(proptest_config(256, 10_000))]

    #[test]
    fn finished_and_forged_handles_change_nothing(case in case(Profile::Handles, 1..=60)) {
        let mut h = Harness::new(case.config.clone(), case.keys, |k| k);
        let result = h.run(&case).and_then(|()| h.check_finished_handles_refused());
        if let Err(e) = result {
            return Err(TestCaseError::fail(e));
        }
    }
}
