//! Counters: a plain snapshot of what the pool holds and what it has done.
//!
//! The gauges (how many connections are in each state, how many requests wait) are
//! kept as the state changes, and [`Pool::check_invariants`](crate::Pool::check_invariants)
//! recounts them from the state itself: the counters always equal the state.

use core::fmt;
use core::ops::Index;
use core::time::Duration;

use crate::action::{CloseReason, RejectReason};

/// Counts indexed by a reason enum.
///
/// Its `Debug` names each count by its reason's label
/// ([`RejectReason::as_str`], [`CloseReason::as_str`]), so a printed [`Stats`]
/// reads on its own:
///
/// ```
/// let stats = muxpool_core::Stats::default();
/// assert!(format!("{:?}", stats.rejections).starts_with("{timeout: 0, queue_full: 0,"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ByReason<const N: usize>([u64; N]);

/// Writes `counts` as a map from each reason's label to its count.
fn debug_labelled(
    f: &mut fmt::Formatter<'_>,
    labels: impl Iterator<Item = &'static str>,
    counts: &[u64],
) -> fmt::Result {
    f.debug_map()
        .entries(labels.zip(counts.iter()).map(|(l, c)| (Label(l), c)))
        .finish()
}

/// A label printed bare, without the quotes of a string's `Debug`.
struct Label(&'static str);

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for ByReason<6> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_labelled(f, RejectReason::ALL.iter().map(|r| r.as_str()), &self.0)
    }
}

impl fmt::Debug for ByReason<10> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_labelled(f, CloseReason::ALL.iter().map(|r| r.as_str()), &self.0)
    }
}

impl<const N: usize> Default for ByReason<N> {
    fn default() -> Self {
        ByReason([0; N])
    }
}

impl<const N: usize> ByReason<N> {
    /// The sum over every reason.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    pub(crate) fn bump(&mut self, slot: usize) {
        self.0[slot] += 1;
    }
}

impl Index<RejectReason> for ByReason<6> {
    type Output = u64;
    fn index(&self, r: RejectReason) -> &u64 {
        &self.0[r.slot()]
    }
}

impl Index<CloseReason> for ByReason<10> {
    type Output = u64;
    fn index(&self, r: CloseReason) -> &u64 {
        &self.0[r.slot()]
    }
}

/// Rejections by [`RejectReason`].
pub type Rejections = ByReason<6>;
/// Closes by [`CloseReason`].
pub type Closes = ByReason<10>;

/// A snapshot of one key's counters, or of the whole pool's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Connections counted against the limits: connecting, ready and draining.
    pub open: u32,
    /// Connects in flight.
    pub connecting: u32,
    /// Ready connections with no lease out.
    pub idle: u32,
    /// Ready connections with at least one lease out.
    pub busy: u32,
    /// Connections taking no new leases, closing when the last comes back.
    pub draining: u32,
    /// Leases out (requests in flight, or streams on multiplexed connections).
    pub leases: u32,
    /// Requests waiting.
    pub waiting: u32,
    /// Leases granted, at once or after waiting.
    pub grants: u64,
    /// Grants on a connection that had served a request before.
    pub reused_grants: u64,
    /// Grants that had waited in a queue first.
    pub waited_grants: u64,
    /// Total time waited by the requests in `waited_grants`.
    pub wait_time: Duration,
    /// Requests cancelled by the caller while waiting.
    pub cancelled: u64,
    /// Requests refused, by reason.
    pub rejections: Rejections,
    /// Retries the [retry budget](crate::RetryBudget) let through (those it
    /// refused are counted in `rejections`).
    pub retries: u64,
    /// Connects started.
    pub connects: u64,
    /// Connects that failed or timed out.
    pub connect_failures: u64,
    /// Connections the core closed, by reason.
    pub closes: Closes,
    /// Connections whose transport was reported closed (by the peer or an error).
    pub transport_closes: u64,
}

impl Stats {
    /// Fraction of grants that reused a connection, in `0.0..=1.0`.
    pub fn reuse_ratio(&self) -> f64 {
        if self.grants == 0 {
            0.0
        } else {
            self.reused_grants as f64 / self.grants as f64
        }
    }

    pub(crate) fn add(&mut self, other: &Stats) {
        self.open += other.open;
        self.connecting += other.connecting;
        self.idle += other.idle;
        self.busy += other.busy;
        self.draining += other.draining;
        self.leases += other.leases;
        self.waiting += other.waiting;
        self.grants += other.grants;
        self.reused_grants += other.reused_grants;
        self.waited_grants += other.waited_grants;
        self.wait_time += other.wait_time;
        self.cancelled += other.cancelled;
        self.retries += other.retries;
        for i in 0..6 {
            self.rejections.0[i] += other.rejections.0[i];
        }
        self.connects += other.connects;
        self.connect_failures += other.connect_failures;
        for i in 0..10 {
            self.closes.0[i] += other.closes.0[i];
        }
        self.transport_closes += other.transport_closes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_debug_names_every_reason() {
        let mut r = Rejections::default();
        r.bump(RejectReason::ConnectFailed.slot());
        r.bump(RejectReason::RetryBudget.slot());
        r.bump(RejectReason::RetryBudget.slot());
        assert_eq!(
            format!("{r:?}"),
            "{timeout: 0, queue_full: 0, connect_failed: 1, circuit_open: 0, \
             shutting_down: 0, retry_budget: 2}"
        );
    }

    #[test]
    fn closes_debug_names_every_reason() {
        let mut c = Closes::default();
        c.bump(CloseReason::Surplus.slot());
        let text = format!("{c:?}");
        for reason in CloseReason::ALL {
            let n = u64::from(reason == CloseReason::Surplus);
            assert!(
                text.contains(&format!("{}: {n}", reason.as_str())),
                "{text}"
            );
        }
        assert_eq!(text.matches(": ").count(), CloseReason::ALL.len(), "{text}");
    }

    #[test]
    fn stats_debug_is_labelled() {
        let text = format!("{:?}", Stats::default());
        assert!(text.contains("rejections: {timeout: 0,"), "{text}");
        assert!(text.contains("closes: {idle_timeout: 0,"), "{text}");
        assert!(!text.contains("ByReason"), "{text}");
    }
}
