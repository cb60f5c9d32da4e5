//! # muxpool-core: the sans-IO connection pool
//!
//! This crate makes every decision of a connection pool and multiplexer (when to
//! open a connection, which one to reuse, who waits, who is refused, when to drain,
//! close, back off or probe) and does nothing else. It has no sockets, no clock, no
//! tasks and no hidden randomness: the caller feeds it events, with the current
//! time, and carries out the [`Action`]s it asks for.
//!
//! Why this shape: a pool's bugs live in its decisions, and decisions tangled with
//! I/O can only be tested through the network. Here the same [`Pool`] is driven by
//! the tokio and smol adapters in production, and by property tests, fuzzers and the
//! deterministic simulator ([`sim`], behind the `sim` feature) in test, so what is
//! tested is exactly what runs. The models are quinn-proto's `Connection` and
//! str0m's `Rtc`: `&mut self` methods for inputs, a poll method for outputs, one
//! deadline getter.
//!
//! ## The run loop
//!
//! [`Pool`]'s documentation is the contract between the core and its caller:
//! which methods are inputs, outputs and getters, how time must move, what a
//! stale handle gets. Its rule, in short: **after every input, drain
//! [`Pool::poll_action`] until it returns `None`, then read
//! [`Pool::poll_timeout`]**, and call [`Pool::handle_timeout`] when that
//! instant comes. This is the loop for one request:
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::Duration;
//! use muxpool_core::{Acquire, AcquireOptions, Action, PoolConfig, Connected, Instant, Pool, Release};
//!
//! let mut pool: Pool<&'static str> = Pool::new(PoolConfig::default()).unwrap();
//! let mut now = Instant::ZERO;
//!
//! // A request for capacity on an origin. Nothing is open yet, so it waits...
//! let waiter = match pool.acquire(&"https://example.com", now, AcquireOptions::default()) {
//!     Ok(Acquire::Queued(waiter)) => waiter,
//!     other => panic!("{other:?}"),
//! };
//!
//! // ...and the core asks for a connection. Drain actions after every input.
//! let mut granted = HashMap::new();
//! loop {
//!     while let Some(action) = pool.poll_action() {
//!         match action {
//!             Action::Open { conn } => {
//!                 // An adapter would connect to `pool.key(conn)` here. Say it came up
//!                 // as HTTP/1.1 two milliseconds later.
//!                 now += Duration::from_millis(2);
//!                 pool.handle_connected(conn, now, Connected::http1()).unwrap();
//!             }
//!             Action::Grant { waiter, lease } => {
//!                 granted.insert(waiter, lease);
//!             }
//!             Action::Reject { waiter, reason } => panic!("{waiter:?}: {reason}"),
//!             Action::Close { .. } | Action::HealthCheck { .. } => {}
//!         }
//!     }
//!     if !granted.is_empty() {
//!         break;
//!     }
//!     // Nothing to do: sleep until the core's next deadline, then tell it the time.
//!     now = pool.poll_timeout().expect("a waiter always has a deadline");
//!     pool.handle_timeout(now);
//! }
//!
//! // Use the connection, then give it back clean: it goes idle, ready for reuse.
//! // Each of these inputs is drained too; neither asks for anything here.
//! let lease = granted[&waiter];
//! pool.release(lease, now, Release::Reuse).unwrap();
//! assert_eq!(pool.poll_action(), None);
//! let again = pool.acquire(&"https://example.com", now, AcquireOptions::default());
//! assert!(matches!(again, Ok(Acquire::Ready(reused)) if reused.conn() == lease.conn()));
//! assert_eq!(pool.poll_action(), None);
//! ```
//!
//! ## What always holds
//!
//! After every input, [`Pool::check_invariants`] holds: connection limits, stream
//! capacity, exclusivity, no grant on a connection that cannot take it, every
//! request answered exactly once, arrival-order service per key, and counters that
//! equal the state. Inputs that name unknown or stale handles are refused with an
//! [`EventError`] and change nothing but the latest time seen; no sequence of
//! inputs panics the core. Taking and returning an idle connection allocates
//! nothing.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

mod action;
mod balance;
mod config;
mod error;
mod event;
mod id;
mod list;
mod pool;
mod retry;
mod rng;
mod sizing;
mod stats;
mod time;
mod timer;

#[cfg(feature = "sim")]
pub mod sim;

pub use action::{Action, CloseReason, RejectReason};
pub use balance::{
    BalanceError, BalanceEvent, BalanceViolation, Balancer, Capacity, Endpoint, EndpointInfo,
    EndpointState, Outcome, Pick,
};
pub use config::{
    Backoff, Balance, Circuit, ConfigError, Failover, HealthCheck, Outliers, PoolConfig,
    RetryBudget, Saturation, Sizing,
};
pub use error::{EventError, HandleKind};
pub use event::{
    Acquire, AcquireOptions, Attempt, ConnectFailure, Connected, Mode, Release, Shutdown,
};
pub use id::{ConnId, Lease, LeaseId, WaiterId};
pub use pool::{ConnInfo, ConnState, InvariantViolation, Pool};
pub use sizing::Sizer;
pub use stats::{ByReason, Closes, Rejections, Stats};
pub use time::Instant;
