//! The core's property tests, one binary: random workloads against the
//! reference model and the invariant checks in `support`, one module per area.
//!
//! Every case runs in a forked child of this binary (see
//! `support::proptest_config`), which reruns just the one test by its name here,
//! `circuit::…`, `model::…`. Each module's failures are kept and replayed from
//! `<module>.proptest-regressions` beside it.

mod support;

mod balance;
mod circuit;
mod contention;
mod determinism;
mod handles;
mod lifecycle;
mod min_idle;
mod model;
