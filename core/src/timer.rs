//! The core's deadlines in one indexed min-heap.
//!
//! Two kinds of timer live here. Each key has at most one, armed at the earliest
//! deadline of its connections, its backoff, circuit and forget times, and the
//! waiters on its `expiring` list (those whose deadlines arrived in order, most of
//! them: see `Expiry` in the pool). A waiting request whose deadline is out of
//! that order has its own, removed when it is granted or cancelled. So the heap
//! never holds dead entries, its size is bounded by what is live, and a request
//! that waits and is granted mostly touches no timer.
//!
//! A key's timer is only ever moved earlier when something changes; when it
//! fires, the key looks at its waiters and connections and re-arms for what is
//! left. So returning a connection to idle, the hot path, touches the heap only
//! when the key has no timer at all.
//!
//! Ties are broken by insertion order, so the firing order is a pure function of
//! the inputs.

use slab::Slab;

use crate::id::{KeyId, WaiterId};
use crate::time::Instant;

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Key(KeyId),
    Waiter(WaiterId),
}

/// A timer's name: stable while it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerId(u32);

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Instant,
    seq: u64,
    id: u32,
    target: Target,
}

impl Entry {
    fn before(&self, other: &Entry) -> bool {
        (self.at, self.seq) < (other.at, other.seq)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: Vec<Entry>,
    /// Timer id -> its position in `heap`.
    positions: Slab<u32>,
    seq: u64,
}

impl Timers {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn insert(&mut self, at: Instant, target: Target) -> TimerId {
        let pos = self.heap.len();
        let id = self.positions.insert(pos as u32) as u32;
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            id,
            target,
        });
        self.sift_up(pos);
        TimerId(id)
    }

    pub(crate) fn deadline(&self, id: TimerId) -> Option<Instant> {
        let pos = *self.positions.get(id.0 as usize)?;
        Some(self.heap[pos as usize].at)
    }

    /// Moves a live timer to `at` (earlier or later).
    pub(crate) fn reschedule(&mut self, id: TimerId, at: Instant) {
        let Some(&pos) = self.positions.get(id.0 as usize) else {
            return;
        };
        let pos = pos as usize;
        let earlier = at < self.heap[pos].at;
        self.seq += 1;
        self.heap[pos].at = at;
        self.heap[pos].seq = self.seq;
        if earlier {
            self.sift_up(pos);
        } else {
            self.sift_down(pos);
        }
    }

    pub(crate) fn remove(&mut self, id: TimerId) {
        let Some(pos) = self.positions.try_remove(id.0 as usize) else {
            return;
        };
        let pos = pos as usize;
        let last = self.heap.len() - 1;
        if pos != last {
            self.heap.swap(pos, last);
            self.positions[self.heap[pos].id as usize] = pos as u32;
        }
        self.heap.pop();
        if pos < self.heap.len() {
            self.sift_up(pos);
            self.sift_down(pos);
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|e| e.at)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Target> {
        let first = *self.heap.first()?;
        if first.at > now {
            return None;
        }
        self.remove(TimerId(first.id));
        Some(first.target)
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !self.heap[pos].before(&self.heap[parent]) {
                break;
            }
            self.swap(pos, parent);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let len = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && self.heap[right].before(&self.heap[left]) {
                right
            } else {
                left
            };
            if !self.heap[child].before(&self.heap[pos]) {
                break;
            }
            self.swap(pos, child);
            pos = child;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.positions[self.heap[a].id as usize] = a as u32;
        self.positions[self.heap[b].id as usize] = b as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Handle;

    fn waiter(i: u32) -> Target {
        Target::Waiter(WaiterId::new(i, 1))
    }

    #[test]
    fn pops_in_deadline_then_insertion_order() {
        let mut t = Timers::default();
        let mut ids = Vec::new();
        for (i, at) in [50u64, 10, 30, 10, 70, 20].into_iter().enumerate() {
            ids.push(t.insert(Instant::from_nanos(at), waiter(i as u32)));
        }
        t.remove(ids[2]);
        t.reschedule(ids[4], Instant::from_nanos(5));
        let mut order = Vec::new();
        while let Some(target) = t.pop_due(Instant::from_nanos(100)) {
            order.push(target);
        }
        assert_eq!(
            order,
            [waiter(4), waiter(1), waiter(3), waiter(5), waiter(0)]
        );
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn nothing_pops_before_its_time() {
        let mut t = Timers::default();
        let id = t.insert(Instant::from_nanos(10), waiter(0));
        assert_eq!(t.pop_due(Instant::from_nanos(9)), None);
        assert_eq!(t.deadline(id), Some(Instant::from_nanos(10)));
        assert_eq!(t.next_deadline(), Some(Instant::from_nanos(10)));
        assert_eq!(t.pop_due(Instant::from_nanos(10)), Some(waiter(0)));
        assert_eq!(t.deadline(id), None);
    }
}
