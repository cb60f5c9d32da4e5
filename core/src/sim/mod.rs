//! Deterministic simulation, and the checking harness shared with the fuzzers.
//!
//! A connection pool fails in the interleavings: a connect that reports after it
//! timed out, a peer that lowers its stream limit under in-flight streams, a health
//! check that is never answered while a burst arrives. Such orders are rare on a
//! real network and impossible to replay there. Because the core has no clock, no
//! I/O and no hidden randomness, it can instead be driven through them on purpose:
//! a seed expands into a workload and a schedule of faults, a virtual clock jumps
//! from one event to the next, and every step is checked. A failing seed replays
//! the same run to the byte, so a failure found once is a failure reproduced
//! forever. (The approach is FoundationDB's and TigerBeetle's.)
//!
//! Three parts, one harness:
//!
//! - [`Checker`] wraps a [`Pool`](crate::Pool) and checks every answer and action
//!   against its own model of the caller's side (which requests wait, which leases
//!   are out, which connections are open and what they are), besides
//!   [`Pool::check_invariants`](crate::Pool::check_invariants). It returns a typed
//!   [`Violation`] rather than panicking, so that a driver can say how to
//!   reproduce it. The simulator, the fuzz targets and tests all drive the pool
//!   through it.
//! - [`run`] simulates sessions against origins under [`Options`] (drawn from a
//!   seed by [`Options::from_seed`]) and returns a [`Report`], or a [`Failure`]
//!   with the seed and the trace that led to it.
//! - `fuzz::run` (with the `arbitrary` feature) turns arbitrary bytes into a
//!   configuration and a sequence of inputs, for cargo-fuzz and for replaying the
//!   committed corpus on stable.
//!
//! ```
//! use muxpool_core::sim::{self, Options};
//!
//! let options = Options::from_seed(7);
//! let report = sim::run(&options).unwrap_or_else(|failure| panic!("{failure}"));
//! assert_eq!(report.requests, report.completed + report.cancelled + report.rejections.total());
//! // The same seed is the same run.
//! assert_eq!(sim::run(&options).unwrap().digest, report.digest);
//! ```

mod check;
#[cfg(feature = "arbitrary")]
pub mod fuzz;
mod options;
mod world;

pub use check::{Checker, ConnView, Rule, Violation};
pub use options::{Faults, Options, Origin, Protocol};
pub use world::{run, Failure, Report};
