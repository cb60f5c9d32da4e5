//! What is due when: the deadlines of connections and keys, the one timer per
//! key that covers them, and what happens when it fires.
//!
//! Each key has one timer, armed no later than the earliest of its deadlines:
//! its connections' (a connect or a health check that times out, an idle
//! connection's idle timeout and next health check, an expiry), its listed
//! waiters', the end of its backoff or open circuit, and the instant it is
//! forgotten once empty. The timer is only ever moved earlier as things change,
//! and may fire early: [`Pool::maintain`] then applies everything due on the key
//! and re-arms the timer for what is left. So the hot path seldom touches the
//! heap, which holds one entry per key, and one for each waiter whose deadline
//! comes before that of a waiter queued ahead of it (see [`Expiry`]).

use std::hash::Hash;
use std::time::Duration;

use crate::action::{Action, CloseReason, RejectReason};
use crate::event::ConnectFailure;
use crate::id::{ConnId, KeyId};
use crate::time::Instant;
use crate::timer::Target;

use super::conn::{all_link, Class, Conn, State};
use super::key::{Circuit, Expiry, KeyState};
use super::Pool;

impl<K: Hash + Eq + Clone> Pool<K> {
    pub(super) fn handle_due(&mut self, now: Instant) {
        while let Some(target) = self.timers.pop_due(now) {
            match target {
                Target::Waiter(waiter) => {
                    if let Some(w) = self.waiters.get_mut(waiter) {
                        w.expiry = Expiry::Fired;
                        self.reject(waiter, RejectReason::Timeout);
                    }
                }
                Target::Key(kid) => {
                    if let Some(k) = self.keys.get_mut(kid) {
                        k.timer = None;
                        self.maintain(kid);
                    }
                }
            }
        }
        self.settle();
    }

    /// The next instant something is due on a connection.
    pub(super) fn conn_deadline(&self, c: &Conn) -> Option<Instant> {
        let cfg = &self.config;
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        match c.state {
            State::Connecting { deadline }
            | State::Checking { deadline }
            | State::DrainingChecked { deadline } => at(deadline),
            State::Ready if c.leases == 0 => {
                if let Some(idle) = cfg.idle_timeout {
                    at(c.idle_since.saturating_add(idle));
                }
                if let (true, Some(every)) = (c.health_checks, cfg.health_check.interval) {
                    at(c.seen_at.saturating_add(every));
                }
            }
            _ => {}
        }
        if matches!(c.state, State::Ready | State::Checking { .. }) {
            if let Some(expires) = c.expires_at {
                at(expires);
            }
        }
        next
    }

    pub(super) fn arm_for_conn(&mut self, cid: ConnId) {
        let Some(c) = self.books.conns.get(cid) else {
            return;
        };
        if let Some(at) = self.conn_deadline(c) {
            self.arm(c.key, at);
        }
    }

    /// Makes sure the key's timer fires no later than `at`.
    pub(super) fn arm(&mut self, kid: KeyId, at: Instant) {
        let Some(k) = self.keys.get_mut(kid) else {
            return;
        };
        match k.timer {
            Some((timer, armed)) => {
                if armed > at {
                    self.timers.reschedule(timer, at);
                    k.timer = Some((timer, at));
                }
            }
            None => k.timer = Some((self.timers.insert(at, Target::Key(kid)), at)),
        }
    }

    /// A key's timer fired: apply everything due on it, and re-arm for the rest.
    pub(super) fn maintain(&mut self, kid: KeyId) {
        let now = self.now;
        while let Some(w) = self
            .keys
            .get(kid)
            .and_then(|k| k.expiring.front(&self.waiters))
        {
            if self.waiters.get(w).is_none_or(|w| w.deadline > now) {
                break;
            }
            self.reject(w, RejectReason::Timeout);
        }
        let mut next: Option<Instant> = None;
        let mut cursor = self
            .keys
            .get(kid)
            .and_then(|k| k.all.front(&self.books.conns));
        while let Some(cid) = cursor {
            let k = self.keys.get(kid).expect("maintained keys live");
            cursor = k.all.next(&mut self.books.conns, cid, all_link);
            self.maintain_conn(cid);
            let due = self
                .books
                .conns
                .get(cid)
                .and_then(|c| self.conn_deadline(c));
            next = next.into_iter().chain(due).min();
        }
        let Some(k) = self.keys.get_mut(kid) else {
            return;
        };
        if k.backoff_until.is_some_and(|t| t <= now) {
            k.backoff_until = None;
        }
        if let Circuit::Open { until } = k.circuit {
            if until <= now {
                k.circuit = Circuit::HalfOpen { probe: None };
            }
        }
        let forget = k
            .empty_since
            .map(|t| t.saturating_add(self.config.forget_key_after));
        if forget.is_some_and(|t| t <= now) && self.key_is_empty(kid) {
            self.forget_key(kid);
            return;
        }
        let k = self.keys.get(kid).expect("not forgotten");
        if let Some(at) = next.into_iter().chain(self.key_deadline(k)).min() {
            // Everything due by `now` was just handled; a deadline not after it
            // would wake the key again at once, forever.
            debug_assert!(at > now, "{kid:?} re-armed at {at:?}, not after {now:?}");
            self.arm(kid, at.max(now.saturating_add(Duration::from_nanos(1))));
        }
        self.mark_dirty(kid);
    }

    /// The next instant something is due on the key itself: its first listed
    /// waiter times out, its backoff ends, its circuit half-opens, or it is
    /// forgotten.
    pub(super) fn key_deadline(&self, k: &KeyState<K>) -> Option<Instant> {
        let expires = k
            .expiring
            .front(&self.waiters)
            .and_then(|w| self.waiters.get(w))
            .map(|w| w.deadline);
        let reopen = match k.circuit {
            Circuit::Open { until } => Some(until),
            _ => None,
        };
        let forget = k
            .empty_since
            .map(|t| t.saturating_add(self.config.forget_key_after));
        [expires, k.backoff_until, reopen, forget]
            .into_iter()
            .flatten()
            .min()
    }

    fn maintain_conn(&mut self, cid: ConnId) {
        let now = self.now;
        let Some(c) = self.books.conns.get(cid) else {
            return;
        };
        let cfg = &self.config;
        match c.state {
            State::Connecting { deadline } if deadline <= now => {
                self.fail_connect(
                    cid,
                    Some(CloseReason::ConnectTimeout),
                    ConnectFailure::Transient,
                );
                return;
            }
            State::Checking { deadline } | State::DrainingChecked { deadline }
                if deadline <= now =>
            {
                self.close(cid, CloseReason::HealthCheckFailed);
                return;
            }
            _ => {}
        }
        if matches!(c.state, State::Ready | State::Checking { .. })
            && c.expires_at.is_some_and(|t| t <= now)
        {
            self.drain(cid, CloseReason::Expired);
            return;
        }
        if !matches!(c.state, State::Ready) || c.leases != 0 {
            return;
        }
        let kid = c.key;
        if cfg
            .idle_timeout
            .is_some_and(|t| c.idle_since.saturating_add(t) <= now)
        {
            let above_min = self
                .keys
                .get(kid)
                .is_some_and(|k| k.gauges.get(Class::Idle) > k.min_idle);
            if above_min {
                self.close(cid, CloseReason::IdleTimeout);
                return;
            }
            // Kept to hold the key's minimum: its idle clock starts again, so it is
            // looked at once per idle timeout, not on every wake-up.
            self.update(cid, |c| c.idle_since = now);
        }
        let Some(c) = self.books.conns.get(cid) else {
            return;
        };
        let cfg = &self.config;
        if let (true, Some(every)) = (c.health_checks, cfg.health_check.interval) {
            if c.seen_at.saturating_add(every) <= now {
                let deadline = now.saturating_add(cfg.health_check.timeout);
                self.update(cid, |c| c.state = State::Checking { deadline });
                self.actions.push_back(Action::HealthCheck { conn: cid });
            }
        }
    }

    fn key_is_empty(&self, kid: KeyId) -> bool {
        self.keys.get(kid).is_some_and(KeyState::is_empty)
    }

    pub(super) fn note_emptiness(&mut self, kid: KeyId) {
        let now = self.now;
        let forget_after = self.config.forget_key_after;
        let Some(k) = self.keys.get_mut(kid) else {
            return;
        };
        match (k.is_empty(), k.empty_since) {
            (true, None) => {
                k.empty_since = Some(now);
                self.arm(kid, now.saturating_add(forget_after));
            }
            (false, Some(_)) => k.empty_since = None,
            _ => {}
        }
    }

    fn forget_key(&mut self, kid: KeyId) {
        if let Some(k) = self.keys.remove(kid) {
            if let Some((timer, _)) = k.timer {
                self.timers.remove(timer);
            }
            self.index.remove(&k.key);
            // Its counters live on in the pool's totals.
            self.retired.add(&k.stats());
            // A forgotten key may still sit in the blocked or dirty queues; both
            // skip stale ids.
        }
    }
}
