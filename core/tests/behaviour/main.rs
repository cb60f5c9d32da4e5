//! The core's behaviour tests, one binary: each module states scenarios of one
//! area step by step with the driver in `support` and asserts on the exact
//! actions that come out.
//!
//! `no_alloc` installs a counting global allocator for the whole binary; it
//! counts only its own thread's calls, and only while it measures, so the other
//! tests running beside it neither see it nor show up in its counts.

mod support;

mod affinity;
mod failures;
mod health;
mod lifecycle;
mod limits;
mod min_idle;
mod multiplexing;
mod names;
mod no_alloc;
mod protocol_learning;
mod queueing;
mod retries;
mod reuse;
mod shutdown;
mod stale_handles;
mod suspect;
