//! The retry budget's ledger: how many requests and retries the pool has seen
//! lately, and whether one more retry fits.
//!
//! Retries are what turn a sick origin into a dead one: when every request
//! fails and is sent again, the origin takes twice the load at the moment it
//! can least bear it. The budget bounds retries to a share of the requests of
//! the last [`RetryBudget::window`], plus a small floor so that a client with
//! little traffic still retries, as Finagle's and Envoy's budgets do.
//!
//! The window is [`SLOTS`] slots of equal width, each counting the requests and
//! retries that fell in it; the window at an instant is the slot holding it and
//! the slots before it. A request in the current slot costs a comparison and
//! an increment (a request is counted on the hot path); only crossing into a
//! later slot does more, and never more than clearing every slot once. Counts are exact: the property tests compare
//! them with a plain list of timestamps.

use core::time::Duration;

use crate::config::RetryBudget;
use crate::time::Instant;

/// Slots in a window.
pub(crate) const SLOTS: usize = 10;

/// The counts behind [`RetryBudget`], for one pool.
#[derive(Debug, Clone)]
pub(crate) struct RetryLedger {
    /// The share of requests that may be retried, in percent.
    percent: u64,
    /// Retries allowed in any window whatever the requests.
    floor: u64,
    /// Nanoseconds per slot, at least 1.
    width: u64,
    /// Where the current slot ends, in nanoseconds since [`Instant::ZERO`]:
    /// slot `n` covers `[n * width, (n + 1) * width)`.
    current_end: u64,
    /// The current slot's counts, kept apart so that counting a request is
    /// one increment.
    current_requests: u64,
    current_retries: u64,
    /// The earlier slots' counts, by slot; `head` is the current slot's
    /// place, empty until the slot ends.
    head: usize,
    requests: [u64; SLOTS],
    retries: [u64; SLOTS],
    /// The sums over the earlier slots.
    past_requests: u64,
    past_retries: u64,
}

impl RetryLedger {
    pub(crate) fn new(budget: &RetryBudget) -> RetryLedger {
        let window = u64::try_from(budget.window.as_nanos()).unwrap_or(u64::MAX);
        let width = (window / SLOTS as u64).max(1);
        RetryLedger {
            percent: u64::from(budget.percent),
            floor: floor(budget.min_per_second, budget.window),
            width,
            current_end: width,
            current_requests: 0,
            current_retries: 0,
            head: 0,
            requests: [0; SLOTS],
            retries: [0; SLOTS],
            past_requests: 0,
            past_retries: 0,
        }
    }

    /// Counts a new request at `now`.
    #[inline]
    pub(crate) fn deposit(&mut self, now: Instant) {
        self.advance(now);
        self.current_requests += 1;
    }

    /// Counts a retry at `now` if the window has room for one more, and says
    /// whether it had.
    pub(crate) fn withdraw(&mut self, now: Instant) -> bool {
        self.advance(now);
        let (_, retries) = self.counts();
        if retries >= self.allowance() {
            return false;
        }
        self.current_retries += 1;
        true
    }

    /// Takes back the retry [`withdraw`](Self::withdraw) counted last, at the
    /// same instant: the request was refused for another reason, and a retry
    /// that never went out spends nothing.
    pub(crate) fn refund(&mut self) {
        debug_assert!(self.current_retries > 0, "a refund follows a withdrawal");
        self.current_retries -= 1;
    }

    /// Retries the window allows: the floor, plus the share of its requests.
    fn allowance(&self) -> u64 {
        let (requests, _) = self.counts();
        self.floor
            .saturating_add(requests.saturating_mul(self.percent) / 100)
    }

    /// Requests and retries counted in the window as of the last input.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.past_requests + self.current_requests,
            self.past_retries + self.current_retries,
        )
    }

    /// Moves the window to `now`: the slots that ended drop their counts.
    #[inline]
    fn advance(&mut self, now: Instant) {
        let now = now.as_nanos();
        if now >= self.current_end {
            self.turn(now);
        }
    }

    #[cold]
    fn turn(&mut self, now: u64) {
        let passed = (now - self.current_end) / self.width + 1;
        // The current slot joins the earlier ones...
        self.requests[self.head] = std::mem::take(&mut self.current_requests);
        self.retries[self.head] = std::mem::take(&mut self.current_retries);
        self.past_requests += self.requests[self.head];
        self.past_retries += self.retries[self.head];
        // ...and the window moves on, a slot at a time: the slot it enters
        // is the one that left it.
        for _ in 0..passed.min(SLOTS as u64) {
            self.head = (self.head + 1) % SLOTS;
            self.past_requests -= std::mem::take(&mut self.requests[self.head]);
            self.past_retries -= std::mem::take(&mut self.retries[self.head]);
        }
        self.current_end = self
            .current_end
            .saturating_add(passed.saturating_mul(self.width));
    }
}

/// Retries allowed in any window: `min_per_second` for each second of it.
fn floor(min_per_second: u32, window: Duration) -> u64 {
    let retries = u128::from(min_per_second) * window.as_millis() / 1000;
    u64::try_from(retries).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(percent: u32, min_per_second: u32, window_ms: u64) -> RetryBudget {
        RetryBudget::new(percent, min_per_second, Duration::from_millis(window_ms))
    }

    #[test]
    fn the_floor_allows_retries_without_requests() {
        let mut ledger = RetryLedger::new(&budget(20, 2, 1000));
        let now = Instant::from_millis(5);
        assert!(ledger.withdraw(now));
        assert!(ledger.withdraw(now));
        assert!(!ledger.withdraw(now), "two a second over one second");
    }

    #[test]
    fn requests_add_their_share() {
        let mut ledger = RetryLedger::new(&budget(20, 0, 10_000));
        let now = Instant::from_millis(1);
        for _ in 0..10 {
            ledger.deposit(now);
        }
        assert!(ledger.withdraw(now));
        assert!(ledger.withdraw(now));
        assert!(!ledger.withdraw(now), "20 % of 10 requests");
        ledger.refund();
        assert!(ledger.withdraw(now), "a refund makes room again");
    }

    #[test]
    fn counts_leave_the_window_slot_by_slot() {
        let mut ledger = RetryLedger::new(&budget(100, 0, 1000));
        ledger.deposit(Instant::from_millis(0));
        ledger.deposit(Instant::from_millis(150));
        assert!(ledger.withdraw(Instant::from_millis(150)));
        assert_eq!(ledger.counts(), (2, 1));
        // The slot [0, 100) ms leaves at 1000 ms, the slot [100, 200) at 1100.
        ledger.deposit(Instant::from_millis(1000));
        assert_eq!(ledger.counts(), (2, 1));
        ledger.deposit(Instant::from_millis(1100));
        assert_eq!(ledger.counts(), (2, 0));
        // A long silence empties the window.
        ledger.deposit(Instant::from_millis(60_000));
        assert_eq!(ledger.counts(), (1, 0));
    }
}
