//! The decisions about each key: what settling a key does, and what a key
//! needs opened, evicted, backed off, drained or closed.
//!
//! An input that changes what a key needs ends in [`Pool::settle`] (or
//! [`Pool::settle_key`], for the one key it touched), which drives the keys
//! marked dirty, then the keys blocked at the global limit while there is room.
//! Driving a key grants its waiters onto free capacity in arrival order, then
//! opens what its demand and its minimum of idle connections want, within its
//! limits, the global limit (evicting another key's least recently used idle
//! connection for a waiting request or a circuit's probe), its backoff and its
//! circuit. A failed connect sets the backoff and may open the circuit; a
//! connection that must take no new lease drains, and closes when its last
//! lease is back.

use std::hash::Hash;
use std::time::Duration;

use crate::action::{Action, CloseReason, RejectReason};
use crate::config::Saturation;
use crate::event::ConnectFailure;
use crate::id::{ConnId, KeyId};
use crate::list::Link;
use crate::time::Instant;

use super::conn::{all_link, Class, Conn, Place, State, NO_LEASE};
use super::key::{Circuit, KeyState, Learned};
use super::Pool;

impl<K: Hash + Eq + Clone> Pool<K> {
    pub(super) fn mark_dirty(&mut self, kid: KeyId) {
        if let Some(k) = self.keys.get_mut(kid) {
            if !k.dirty {
                k.dirty = true;
                self.dirty.push_back(kid);
            }
        }
    }

    /// [`Pool::mark_dirty`], then [`Pool::settle`]; when no other key is dirty,
    /// `kid` is driven at once, without the round trip through the queue.
    pub(super) fn settle_key(&mut self, kid: KeyId) {
        if self.dirty.is_empty() && self.keys.contains(kid) {
            self.drive(kid);
        } else {
            self.mark_dirty(kid);
        }
        self.settle();
    }

    /// Drives dirty keys, then keys blocked on the global limit while there is
    /// room or an idle connection to evict.
    ///
    /// Mostly there is nothing to do, which is told here without a call.
    #[inline]
    pub(super) fn settle(&mut self) {
        if !self.dirty.is_empty() || !self.blocked.is_empty() {
            self.settle_queued();
        }
    }

    fn settle_queued(&mut self) {
        loop {
            while let Some(kid) = self.dirty.pop_front() {
                if let Some(k) = self.keys.get_mut(kid) {
                    k.dirty = false;
                    self.drive(kid);
                }
            }
            if self.blocked.is_empty() {
                return;
            }
            // One pass over the keys blocked now, in the order they blocked. A key
            // that still cannot open goes to the back; a pass that opens nothing
            // ends the loop, so this always terminates.
            let connects = self.connects_total;
            for _ in 0..self.blocked.len() {
                let Some(kid) = self.blocked.pop_front() else {
                    break;
                };
                if let Some(k) = self.keys.get_mut(kid) {
                    k.blocked = false;
                    self.drive(kid);
                }
            }
            if self.connects_total == connects && self.dirty.is_empty() {
                return;
            }
        }
    }

    fn drive(&mut self, kid: KeyId) {
        while let Some(k) = self.keys.get(kid) {
            // Free capacity first: a key is mostly driven because it has none.
            let Some(conn) = k.pick(&self.books.conns) else {
                break;
            };
            let Some(waiter) = k.waiters.front(&self.waiters) else {
                break;
            };
            self.grant_waiter(waiter, conn, None);
        }
        self.open_as_needed(kid);
        self.note_emptiness(kid);
    }

    /// How many connections `kid` should open now, before limits.
    pub(super) fn wanted_opens(&self, kid: KeyId) -> u32 {
        let Some(k) = self.keys.get(kid) else {
            return 0;
        };
        if self.shutdown.is_some() {
            return 0;
        }
        match k.circuit {
            Circuit::Open { .. } => return 0,
            Circuit::HalfOpen { probe } => return u32::from(probe.is_none()),
            Circuit::Closed => {}
        }
        // Backoff ends when the core is woken for it, not at the first input that
        // happens to come later: the caller's timers are always a little late.
        if k.backoff_until.is_some() {
            return 0;
        }
        let waiting = k.waiters.len();
        let connecting = k.gauges.get(Class::Connecting);

        let for_demand = match k.learned {
            Learned::Unknown => waiting.min(1),
            Learned::Exclusive => waiting,
            Learned::Multiplexed { .. }
                if self.config.saturation == Saturation::Queue && k.usable > 0 =>
            {
                0
            }
            Learned::Multiplexed { capacity } => waiting.div_ceil(capacity.max(1)),
        };
        let for_idle = k.min_idle.saturating_sub(k.gauges.get(Class::Idle));
        let wanted = (for_demand + for_idle).saturating_sub(connecting);
        if k.learned == Learned::Unknown && connecting > 0 {
            // Learn the protocol from one connection before opening more.
            return 0;
        }
        if k.learned == Learned::Unknown {
            return wanted.min(1);
        }
        wanted
    }

    #[inline(always)]
    fn open_as_needed(&mut self, kid: KeyId) {
        // The key's own limits first, before working out its demand: a key that
        // is at them (as one whose requests queue behind its busy connections
        // is) opens nothing, whatever it wants.
        if self.keys.get(kid).is_some_and(|k| self.below_key_limits(k)) {
            self.open_for_demand(kid);
        }
    }

    pub(super) fn open_for_demand(&mut self, kid: KeyId) {
        let wanted = self.wanted_opens(kid);
        let mut opened = 0;
        while opened < wanted {
            let Some(k) = self.keys.get(kid) else { return };
            if !self.below_key_limits(k) {
                return;
            }
            if self.books.open_total >= self.config.max_connections {
                // Waiting requests, and a half-open circuit's probe (which no request
                // can wait for), may take an idle connection from another key;
                // pre-warming waits for room instead.
                let may_evict =
                    !k.waiters.is_empty() || matches!(k.circuit, Circuit::HalfOpen { .. });
                if may_evict && self.evict_for(kid) {
                    continue;
                }
                self.block(kid);
                return;
            }
            self.open(kid);
            opened += 1;
        }
    }

    /// Whether `k` may start one more connect under its own limits.
    pub(super) fn below_key_limits(&self, k: &KeyState<K>) -> bool {
        k.gauges.open() < self.config.max_connections_per_key
            && k.gauges.get(Class::Connecting) < self.config.max_connecting_per_key
    }

    /// Closes the least recently used idle connection of another key to make room.
    ///
    /// Eviction happens only at the global limit, so the oldest idle connection
    /// is found by a scan here rather than kept in a global list on every acquire
    /// and release, the hot path.
    fn evict_for(&mut self, kid: KeyId) -> bool {
        let oldest = self
            .books
            .conns
            .iter()
            .filter(|(_, c)| c.place.evictable() && c.key != kid)
            .min_by_key(|(_, c)| c.idle_seq)
            .map(|(cid, _)| cid);
        match oldest {
            Some(cid) => {
                self.close(cid, CloseReason::Evicted);
                true
            }
            None => false,
        }
    }

    /// Where the first key blocked at the global limit to open its half-open
    /// circuit's probe stands in the queue of blocked keys.
    fn blocked_probe(&self) -> Option<usize> {
        self.blocked.iter().position(|&kid| {
            self.keys
                .get(kid)
                .is_some_and(|k| k.circuit == Circuit::HalfOpen { probe: None })
        })
    }

    /// Whether a key blocked at the global limit waits to open its half-open
    /// circuit's probe.
    #[cold]
    pub(super) fn probe_blocked(&self) -> bool {
        self.blocked_probe().is_some()
    }

    /// Opens the probe of the first key blocked at the global limit for one,
    /// in the room a connection just left, before any other key can take it.
    pub(super) fn open_blocked_probe(&mut self) {
        let Some(kid) = self.blocked_probe().and_then(|at| self.blocked.remove(at)) else {
            return;
        };
        if let Some(k) = self.keys.get_mut(kid) {
            k.blocked = false;
            self.open_for_demand(kid);
        }
    }

    fn block(&mut self, kid: KeyId) {
        if let Some(k) = self.keys.get_mut(kid) {
            if !k.blocked {
                k.blocked = true;
                self.blocked.push_back(kid);
            }
        }
    }

    fn open(&mut self, kid: KeyId) {
        let deadline = self.now.saturating_add(self.config.connect_timeout);
        let cid = self.books.conns.insert(Conn {
            key: kid,
            state: State::Connecting { deadline },
            multiplexed: false,
            capacity: 0,
            grandfathered: 0,
            leases: 0,
            requests: 0,
            health_checks: false,
            idle_since: self.now,
            seen_at: self.now,
            expires_at: None,
            drain_reason: CloseReason::Surplus,
            place: Place::CONNECTING,
            idle_seq: 0,
            lease_generation: NO_LEASE,
            slot_link: Link::default(),
            all_link: Link::default(),
        });
        let k = self.keys.get_mut(kid).expect("driven keys live");
        k.all.push_back(&mut self.books.conns, cid, all_link);
        // Whatever path opened it (a probe given another key's room, too),
        // a key with a connection is not empty.
        k.empty_since = None;
        if let Circuit::HalfOpen { probe: None } = k.circuit {
            k.circuit = Circuit::HalfOpen { probe: Some(cid) };
        }
        k.stats.connects += 1;
        k.gauges.moved(Place::CLOSED, Place::CONNECTING);
        self.books.open_total += 1;
        self.connects_total += 1;
        self.actions.push_back(Action::Open { conn: cid });
        self.arm(kid, deadline);
    }

    /// A connect failed or timed out: forget the connection, back off (or
    /// open the circuit), and reject the waiters that cannot wait for the next
    /// connect, or every waiter of the key if the failure is permanent.
    pub(super) fn fail_connect(
        &mut self,
        cid: ConnId,
        close: Option<CloseReason>,
        failure: ConnectFailure,
    ) {
        // A connecting connection was last seen when it was opened.
        let (kid, started) = {
            let c = self.books.conns.get(cid).expect("failing connections live");
            (c.key, c.seen_at)
        };
        let was_probe = self
            .keys
            .get(kid)
            .is_some_and(|k| k.circuit == Circuit::HalfOpen { probe: Some(cid) });
        if let Some(reason) = close {
            self.actions.push_back(Action::Close { conn: cid, reason });
            self.count(kid, |s| s.closes.bump(reason.slot()));
        }
        self.forget_conn(cid);
        self.count(kid, |s| s.connect_failures += 1);
        let now = self.now;
        if failure == ConnectFailure::Permanent {
            self.reject_due_before(kid, Instant::MAX, RejectReason::ConnectFailed);
        }
        let k = self.keys.get_mut(kid).expect("a connection's key lives");
        // Connects made together fail together: one opened no later than the
        // key's last failure belongs to that round, and neither counts again nor
        // backs off further.
        if !was_probe && k.last_failure.is_some_and(|at| started <= at) {
            if let Some(until) = k.backoff_until {
                self.reject_due_before(kid, until, RejectReason::ConnectFailed);
            }
            self.mark_dirty(kid);
            return;
        }
        k.last_failure = Some(now);
        k.failures = k.failures.saturating_add(1);
        let failures = k.failures;
        let since = *k.failing_since.get_or_insert(now);
        let circuit = self.config.circuit;
        let trips = was_probe
            || (k.circuit == Circuit::Closed
                && circuit.failure_threshold.is_some_and(|t| failures >= t)
                && now.saturating_duration_since(since) >= circuit.failing_for);
        // The next connect comes when the circuit lets a probe through, or
        // when the backoff ends; only the requests that cannot wait that long
        // fail now, with the connect's failure (or the open circuit) as the
        // reason: the others are served by a later connect.
        let (until, reason) = if trips {
            let until = now.saturating_add(circuit.open_for);
            k.circuit = Circuit::Open { until };
            (until, RejectReason::CircuitOpen)
        } else {
            let delay = self.backoff_delay(failures);
            let until = now.saturating_add(delay);
            self.keys.get_mut(kid).expect("live").backoff_until = Some(until);
            (until, RejectReason::ConnectFailed)
        };
        self.reject_due_before(kid, until, reason);
        self.arm(kid, until);
        self.mark_dirty(kid);
    }

    fn backoff_delay(&mut self, failures: u32) -> Duration {
        let b = self.config.backoff;
        let exp = failures.saturating_sub(1).min(32);
        let base = b.initial.saturating_mul(1u32 << exp.min(31)).min(b.max);
        // Equal jitter: half fixed, half random, so the delay never collapses to 0.
        let half = base / 2;
        half + self.jitter(base - half)
    }

    pub(super) fn jitter(&mut self, span: Duration) -> Duration {
        let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.below_inclusive(nanos))
    }

    /// No new leases; close now if none is out.
    pub(super) fn drain(&mut self, cid: ConnId, reason: CloseReason) {
        let Some(c) = self.books.conns.get(cid) else {
            return;
        };
        if c.leases == 0 {
            self.close(cid, reason);
        } else {
            let kid = c.key;
            self.update(cid, |c| {
                c.state = c.state.draining();
                c.drain_reason = reason;
            });
            self.mark_dirty(kid);
        }
    }

    /// The core closes a connection: the caller is told, and the core forgets it.
    pub(super) fn close(&mut self, cid: ConnId, reason: CloseReason) {
        let kid = self
            .books
            .conns
            .get(cid)
            .expect("closing connections live")
            .key;
        self.actions.push_back(Action::Close { conn: cid, reason });
        self.count(kid, |s| s.closes.bump(reason.slot()));
        self.forget_conn(cid);
    }

    /// Takes a connection out of every list and count; keeps it as a tombstone
    /// while leases are out on it.
    pub(super) fn forget_conn(&mut self, cid: ConnId) {
        let kid = self.books.conns.get(cid).expect("live").key;
        self.update(cid, |c| c.state = State::Closed);
        let k = self.keys.get_mut(kid).expect("a connection's key lives");
        k.all.remove(&mut self.books.conns, cid, all_link);
        if let Circuit::HalfOpen { probe: Some(p) } = k.circuit {
            if p == cid {
                k.circuit = Circuit::HalfOpen { probe: None };
            }
        }
        if self.books.conns.get(cid).expect("live").leases == 0 {
            self.books.conns.remove(cid);
        }
        self.mark_dirty(kid);
    }
}
