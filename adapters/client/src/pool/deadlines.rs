//! The deadlines of requests in flight, kept by the pool beside the core.
//!
//! # Why the pool keeps them
//!
//! Every request has a deadline (its [`RequestTimeout`](crate::RequestTimeout), or the
//! client's), and nearly every request ends long before it. A runtime timer per
//! request (a tokio `Sleep`, an async-io `Timer`) is registered in the
//! runtime's timer wheel or heap when the request first waits and taken out
//! again when it ends: two trips through the runtime's timer, each linking or
//! unlinking the request among other requests' timers, on every request, for a
//! timer that almost never fires.
//!
//! The pool already has one timer task (for the core's deadlines) and a lock
//! that every request takes anyway. So a request's deadline is an entry in a
//! table behind that lock: arming it is taking a free entry (the one the last
//! finished request gave back, still in the cache), ending it is giving the
//! entry back. The table does not keep its entries in order. It keeps only a
//! bound, [`Deadlines::next`], that no armed entry's deadline is earlier than;
//! the pool's timer task sleeps until that bound (or the core's next deadline,
//! whichever comes first), then [`expires`](Deadlines::expire) what is due in
//! one pass and works out the exact bound again. With requests that finish in
//! time, that pass runs about once per timeout period, over the requests then in
//! flight.

use std::task::Waker;

use muxpool_core::Instant;
use slab::Slab;

/// Names an entry of [`Deadlines`]: its slot and the number the table gave
/// the entry when it was armed, so a handle kept past its entry's removal
/// names nothing, whatever the slot holds since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeadlineId {
    index: usize,
    armed: u64,
}

/// What a request learns when it looks at its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// The deadline has not passed (as far as the timer task has looked).
    Pending,
    /// The deadline passed: the request has timed out.
    Expired,
}

/// The earlier of two deadlines, either of which may be missing.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One request's deadline.
#[derive(Debug)]
struct Entry {
    /// Its [`DeadlineId::armed`].
    armed: u64,
    at: Instant,
    /// The request's task; `None` once the deadline has expired (and its task
    /// was woken).
    waker: Option<Waker>,
}

/// Once the table empties, it gives its room back down to this many entries
/// if it had grown past [`SHRINK_ABOVE`], so that a burst of requests does not
/// keep its table for the client's life.
const KEPT: usize = 64;
/// See [`KEPT`].
const SHRINK_ABOVE: usize = 1024;

/// The deadlines of the requests in flight: see the [module](self) docs.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    /// Armed and expired entries (an expired one stays until its request
    /// removes it). A freed slot is the next one taken.
    entries: Slab<Entry>,
    /// Entries armed so far: each entry's number, never reused.
    armed: u64,
    /// No armed entry's deadline is earlier than this; `None` when none is
    /// armed. It may be earlier than every armed deadline (entries removed
    /// since it was worked out), never later.
    next: Option<Instant>,
}

impl Deadlines {
    /// Arms a deadline `at` for the request whose task `waker` wakes.
    pub(crate) fn insert(&mut self, at: Instant, waker: Waker) -> DeadlineId {
        self.armed += 1;
        let armed = self.armed;
        let index = self.entries.insert(Entry {
            armed,
            at,
            waker: Some(waker),
        });
        self.next = earliest(self.next, Some(at));
        DeadlineId { index, armed }
    }

    /// Whether `id`'s deadline has passed; while it has not, `waker` is the one
    /// woken when it does. An unknown `id` reads as expired: its request is
    /// ended rather than left without a deadline.
    pub(crate) fn poll(&mut self, id: DeadlineId, waker: &Waker) -> Due {
        match self.entry_mut(id).and_then(|e| e.waker.as_mut()) {
            Some(held) => {
                if !held.will_wake(waker) {
                    held.clone_from(waker);
                }
                Due::Pending
            }
            None => Due::Expired,
        }
    }

    /// Ends `id`, armed or expired, and frees its slot.
    pub(crate) fn remove(&mut self, id: DeadlineId) {
        if self.entry_mut(id).is_none() {
            return;
        }
        self.entries.remove(id.index);
        if self.entries.is_empty() {
            self.next = None;
            if self.entries.capacity() > SHRINK_ABOVE {
                self.entries = Slab::with_capacity(KEPT);
            }
        }
    }

    /// No armed deadline is earlier than this; `None` when none is armed.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.next
    }

    /// Expires every armed deadline at or before `now`, handing each one's
    /// waker to `wake`, and works out [`next`](Deadlines::next) exactly.
    pub(crate) fn expire(&mut self, now: Instant, mut wake: impl FnMut(Waker)) {
        let mut next: Option<Instant> = None;
        for (_, entry) in &mut self.entries {
            if entry.waker.is_none() {
                continue;
            }
            if entry.at <= now {
                wake(entry.waker.take().expect("checked above"));
            } else {
                next = earliest(next, Some(entry.at));
            }
        }
        self.next = next;
    }

    fn entry_mut(&mut self, id: DeadlineId) -> Option<&mut Entry> {
        self.entries
            .get_mut(id.index)
            .filter(|e| e.armed == id.armed)
    }

    /// Entries armed or expired and not yet removed.
    #[cfg(test)]
    fn live(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    /// A waker that counts its wakes.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (Arc::clone(&count), Waker::from(count))
    }

    fn at(secs: u64) -> Instant {
        Instant::from_elapsed(Duration::from_secs(secs))
    }

    #[test]
    fn a_deadline_expires_at_its_time_and_not_before() {
        let mut d = Deadlines::default();
        let (count, w) = waker();
        let id = d.insert(at(10), w.clone());
        assert_eq!(d.next(), Some(at(10)));
        let mut woken = Vec::new();
        d.expire(at(9), |w| woken.push(w));
        assert!(woken.is_empty());
        assert_eq!(d.poll(id, &w), Due::Pending);
        d.expire(at(10), |w| woken.push(w));
        assert_eq!(woken.len(), 1);
        woken.drain(..).for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(d.poll(id, &w), Due::Expired);
        assert_eq!(d.next(), None);
        d.remove(id);
        assert_eq!(d.live(), 0);
    }

    #[test]
    fn the_bound_is_never_later_than_an_armed_deadline() {
        let mut d = Deadlines::default();
        let (_, w) = waker();
        let late = d.insert(at(30), w.clone());
        let early = d.insert(at(5), w.clone());
        assert_eq!(d.next(), Some(at(5)));
        // Removing the earliest leaves the bound early (lazy), never late.
        d.remove(early);
        assert_eq!(d.next(), Some(at(5)));
        // A pass with nothing due works it out exactly.
        d.expire(at(6), |_| panic!("nothing is due"));
        assert_eq!(d.next(), Some(at(30)));
        assert_eq!(d.poll(late, &w), Due::Pending);
    }

    #[test]
    fn a_removed_entry_is_not_woken_and_its_handle_names_nothing() {
        let mut d = Deadlines::default();
        let (count, w) = waker();
        let old = d.insert(at(1), w.clone());
        d.remove(old);
        // The slot is reused under a new number.
        let new = d.insert(at(100), w.clone());
        assert_ne!(old, new);
        d.expire(at(50), |w| w.wake());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        // The stale handle reads as expired and removing it changes nothing.
        assert_eq!(d.poll(old, &w), Due::Expired);
        d.remove(old);
        assert_eq!(d.live(), 1);
        assert_eq!(d.poll(new, &w), Due::Pending);
    }

    #[test]
    fn the_latest_waker_is_the_one_woken() {
        let mut d = Deadlines::default();
        let (first, w1) = waker();
        let (second, w2) = waker();
        let id = d.insert(at(1), w1);
        assert_eq!(d.poll(id, &w2), Due::Pending);
        d.expire(at(1), Waker::wake);
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn freed_slots_are_reused_most_recent_first_and_a_burst_is_given_back() {
        let mut d = Deadlines::default();
        let (_, w) = waker();
        let ids: Vec<_> = (0..2000).map(|i| d.insert(at(i), w.clone())).collect();
        assert_eq!(d.live(), 2000);
        d.remove(ids[7]);
        d.remove(ids[3]);
        let again = [d.insert(at(1), w.clone()), d.insert(at(1), w.clone())];
        assert_eq!(again[0].index, 3);
        assert_eq!(again[1].index, 7);
        for id in ids
            .iter()
            .filter(|id| id.index != 3 && id.index != 7)
            .chain(&again)
        {
            d.remove(*id);
        }
        assert_eq!(d.live(), 0);
        assert_eq!(d.next(), None);
        assert!(d.entries.capacity() <= KEPT);
        // Starts over cleanly, and no handle from before names a new slot.
        let id = d.insert(at(1), w.clone());
        assert_eq!(d.poll(id, &w), Due::Pending);
        for old in ids.iter().chain(&again) {
            assert_ne!(*old, id);
            d.remove(*old);
        }
        assert_eq!(d.live(), 1);
        assert_eq!(d.poll(id, &w), Due::Pending);
    }
}
