//! The requests that wait: how one joins its key's queue, and how it leaves it.
//!
//! A request that cannot be served at once either is refused then (counted by
//! [`Pool::refuse`]) or waits in its key's queue, in arrival order, until one
//! [`Action::Grant`] or [`Action::Reject`] answers it or it is cancelled. Each
//! of those ways out goes through [`Pool::remove_waiter`], which takes it out of
//! the queue and of whatever covers its deadline, so a request is answered at
//! most once and no timer outlives it.

use std::hash::Hash;

use crate::action::{Action, RejectReason};
use crate::error::{EventError, HandleKind};
use crate::id::{ConnId, KeyId, Lease, LeaseId, WaiterId};
use crate::list::Link;
use crate::time::Instant;
use crate::timer::Target;

use super::accounting::Granted;
use super::key::{expiring_link, waiter_link, Expiry, Waiter};
use super::Pool;

impl<K: Hash + Eq + Clone> Pool<K> {
    /// Puts a request that arrived at `now` at the back of `kid`'s queue, to
    /// time out at `deadline` (see [`Expiry`]).
    #[inline(always)]
    pub(super) fn enqueue(&mut self, kid: KeyId, now: Instant, deadline: Instant) -> WaiterId {
        let k = self.keys.get(kid).expect("indexed keys are live");
        // Listed if its deadline keeps the key's list in order (see `Expiry`); the
        // new waiter is made with its links to the lists' backs already set.
        let listed = k
            .expiring
            .back(&self.waiters)
            .and_then(|w| self.waiters.get(w))
            .is_none_or(|w| w.deadline <= deadline);
        let waiter = self.waiters.insert(Waiter {
            key: kid,
            since: now,
            deadline,
            expiry: Expiry::Listed,
            link: k.waiters.back_link(),
            expiring_link: if listed {
                k.expiring.back_link()
            } else {
                Link::default()
            },
        });
        let k = self.keys.get_mut(kid).expect("indexed keys are live");
        k.waiters
            .attach_back(&mut self.waiters, waiter.index(), waiter_link);
        k.stats.waiting += 1;
        k.empty_since = None;
        if listed {
            k.expiring
                .attach_back(&mut self.waiters, waiter.index(), expiring_link);
            if k.timer.is_none_or(|(_, armed)| armed > deadline) {
                self.arm(kid, deadline);
            }
        } else {
            let timer = self.timers.insert(deadline, Target::Waiter(waiter));
            self.waiters.get_mut(waiter).expect("just inserted").expiry = Expiry::Timer(timer);
        }
        waiter
    }

    /// Answers a waiting request with a lease on `cid`; `handed_on`: on the
    /// capacity of a lease just released on the same connection (see [`Granted`]).
    #[inline(always)]
    pub(super) fn grant_waiter(
        &mut self,
        waiter: WaiterId,
        cid: ConnId,
        handed_on: Option<Option<LeaseId>>,
    ) {
        let (kid, since) = self.remove_waiter(waiter).expect("granted waiters live");
        let waited = self.now.saturating_duration_since(since);
        let how = match handed_on {
            Some(lease) => Granted::HandedOn(waited, lease),
            None => Granted::Waited(waited),
        };
        let lease = self.grant(kid, cid, how);
        self.actions.push_back(Action::Grant { waiter, lease });
    }

    /// A new lease on `cid`, a connection of `kid` (the key its waiter named,
    /// which the connection need not be looked up for).
    #[inline(always)]
    fn grant(&mut self, kid: KeyId, cid: ConnId, how: Granted) -> Lease {
        let k = self.keys.get_mut(kid).expect("a connection's key lives");
        let max_requests = self.config.max_requests_per_connection;
        self.books.grant(k, cid, how, max_requests)
    }

    /// Refuses the waiters of `kid` whose deadline comes before `at`.
    pub(super) fn reject_due_before(&mut self, kid: KeyId, at: Instant, reason: RejectReason) {
        let mut next = self
            .keys
            .get(kid)
            .and_then(|k| k.waiters.front(&self.waiters));
        while let Some(w) = next {
            let waiter = self.waiters.get(w).expect("queued waiters live");
            let due = waiter.deadline < at;
            next = self
                .keys
                .get(kid)
                .and_then(|k| k.waiters.next_shared(&self.waiters, w, |w| &w.link));
            if due {
                self.reject(w, reason);
            }
        }
    }

    pub(super) fn reject(&mut self, waiter: WaiterId, reason: RejectReason) {
        if let Ok((kid, _)) = self.remove_waiter(waiter) {
            self.count(kid, |s| s.rejections.bump(reason.slot()));
            self.actions.push_back(Action::Reject { waiter, reason });
            self.mark_dirty(kid);
        }
    }

    /// Counts a refusal of a request that never waited.
    pub(super) fn refuse(&mut self, kid: Option<KeyId>, reason: RejectReason) -> RejectReason {
        match kid {
            Some(kid) => self.count(kid, |s| s.rejections.bump(reason.slot())),
            None => self.retired.rejections.bump(reason.slot()),
        }
        reason
    }

    /// Takes a waiter out of its queue and the timers; returns its key and the
    /// time it arrived.
    #[inline(always)]
    pub(super) fn remove_waiter(
        &mut self,
        waiter: WaiterId,
    ) -> Result<(KeyId, Instant), EventError> {
        let w = self
            .waiters
            .remove(waiter)
            .ok_or(EventError::Stale(HandleKind::Waiter))?;
        let k = self.keys.get_mut(w.key).expect("a waiter's key lives");
        k.waiters.unlink(&mut self.waiters, w.link, waiter_link);
        k.stats.waiting -= 1;
        match w.expiry {
            Expiry::Listed => k
                .expiring
                .unlink(&mut self.waiters, w.expiring_link, expiring_link),
            Expiry::Timer(timer) => self.timers.remove(timer),
            Expiry::Fired => {}
        }
        Ok((w.key, w.since))
    }
}
