//! Fairness and progress under contention: few connections shared by several keys.
//!
//! Configurations here have one to four connections per key and at most two more
//! in all, two or three keys, long acquire timeouts and deep queues, and the
//! operations are mostly requests and releases. That is where a pool can serve a
//! key out of order, leave a request waiting while capacity sits free, forget a key
//! that was blocked on the global limit, or evict the wrong idle connection. The
//! harness checks every step (the head waiter of its key gets each grant; a key
//! with waiters has no free capacity and, if nothing is connecting, no room to
//! open, counting the idle connections of other keys it may evict; an eviction
//! takes the least recently used idle connection of another key). Independently,
//! grant order is rechecked from the trace alone.

use crate::support::{case, proptest_config, Harness, Profile};
use proptest::prelude::*;

proptest! {
    #![proptest_config(proptest_config(400, 10_000))]

    #[test]
    fn waiters_are_served_in_order_and_never_stall(case in case(Profile::Contention, 1..=80)) {
        let mut h = Harness::new(case.config.clone(), case.keys, |k| k);
        let result = h.run(&case).and_then(|()| h.check_fifo_from_trace());
        if let Err(e) = result {
            return Err(TestCaseError::fail(e));
        }
    }
}
