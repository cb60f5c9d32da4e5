//! One key (an origin) as the pool keeps it, and the requests that wait on it.
//!
//! Every decision about a key reads or changes this record: the lists of its
//! connections and its gauges, its queue and the deadlines of its waiters, what
//! its connections turned out to be, its backoff and circuit, its timer. The
//! decisions live in the modules that make them; the record is apart from them,
//! so that each can use it without using the others. A waiter is kept here too:
//! it is an entry of its key's queue, and its [`Expiry`] tells which of the key's
//! lists, or which timer, covers its deadline.

use crate::id::{Arena, ConnId, KeyId};
use crate::list::{Link, List};
use crate::stats::Stats;
use crate::time::Instant;
use crate::timer::TimerId;

use super::conn::{Class, Conn, Gauges};

pub(super) fn waiter_link(w: &mut Waiter) -> &mut Link {
    &mut w.link
}
pub(super) fn expiring_link(w: &mut Waiter) -> &mut Link {
    &mut w.expiring_link
}

#[derive(Debug)]
pub(super) struct Waiter {
    pub(super) key: KeyId,
    pub(super) since: Instant,
    pub(super) deadline: Instant,
    pub(super) expiry: Expiry,
    /// Its place in its key's queue (arrival order).
    pub(super) link: Link,
    /// Its place in its key's `expiring` list, when [`Expiry::Listed`].
    pub(super) expiring_link: Link,
}

/// What makes a waiter time out at its deadline.
///
/// Most waiters arrive with deadlines in arrival order (the default timeout
/// after `now`, which only grows), so they need no timer of their own: each key
/// keeps them on its `expiring` list, whose deadlines never decrease from front
/// to back, and its one timer fires no later than the front's deadline. A
/// request that waits and is granted then touches no timer at all, and a timed
/// out one is found at the front. A waiter whose deadline is earlier than the
/// list's last (a request with a shorter deadline of its own) gets a timer in
/// the heap instead, so the list stays ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    /// On its key's `expiring` list, covered by the key's timer.
    Listed,
    /// Its own timer in the heap.
    Timer(TimerId),
    /// Its own timer fired; it is being rejected.
    Fired,
}

/// What a key's connections turned out to be, remembered for its next connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Learned {
    Unknown,
    Exclusive,
    Multiplexed { capacity: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Circuit {
    Closed,
    Open { until: Instant },
    HalfOpen { probe: Option<ConnId> },
}

#[derive(Debug)]
pub(super) struct KeyState<K> {
    pub(super) key: K,
    pub(super) learned: Learned,
    /// Every connection that is not closed.
    pub(super) all: List,
    /// The connections with capacity to spare: the idle ones at the front, the
    /// most recently used first, then the partly used multiplexed ones, the
    /// most recently used last. New leases take them from the back while any is
    /// partly used (pack streams, let others idle out), from the front
    /// otherwise ([`KeyState::pick`]). One list rather than two, so that a
    /// multiplexed connection taking its first stream or giving back its last,
    /// when it is at the end of the list its new part begins at (as one alone
    /// in the list is), stays where it is: the hot path of an HTTP/2 request
    /// moves no link.
    pub(super) free: List,
    /// How many connections at the back of `free` are partly used.
    pub(super) partial: u32,
    pub(super) waiters: List,
    /// The waiters whose deadline the key's timer covers, in deadline order (see
    /// [`Expiry`]).
    pub(super) expiring: List,
    /// Its counters, but for the gauges of its connections, which `gauges`
    /// keeps (see [`KeyState::stats`]).
    pub(super) stats: Stats,
    pub(super) gauges: Gauges,
    pub(super) failures: u32,
    /// When the current run of failed connects began, and when the last of
    /// them failed.
    pub(super) failing_since: Option<Instant>,
    pub(super) last_failure: Option<Instant>,
    pub(super) backoff_until: Option<Instant>,
    pub(super) circuit: Circuit,
    /// The key's timer and the instant it is armed for.
    pub(super) timer: Option<(TimerId, Instant)>,
    pub(super) empty_since: Option<Instant>,
    /// Connections that are up, not draining, and have capacity (some may be in use).
    pub(super) usable: u32,
    pub(super) dirty: bool,
    pub(super) blocked: bool,
    /// Its minimum of idle connections: the configured one, or the override
    /// set with [`Pool::set_min_idle`](super::Pool::set_min_idle), clamped to
    /// the limits.
    pub(super) min_idle: u32,
    /// Whether `min_idle` is an override; a key with one is kept while empty.
    pub(super) min_idle_set: bool,
}

impl<K> KeyState<K> {
    pub(super) fn new(key: K, min_idle: u32) -> Self {
        KeyState {
            key,
            learned: Learned::Unknown,
            all: List::default(),
            free: List::default(),
            partial: 0,
            waiters: List::default(),
            expiring: List::default(),
            stats: Stats::default(),
            gauges: Gauges::default(),
            failures: 0,
            failing_since: None,
            last_failure: None,
            backoff_until: None,
            circuit: Circuit::Closed,
            timer: None,
            empty_since: None,
            usable: 0,
            dirty: false,
            blocked: false,
            min_idle,
            min_idle_set: false,
        }
    }

    /// No connection, no waiter, no lease and no minimum of idle connections set
    /// for it: nothing to keep the key for.
    pub(super) fn is_empty(&self) -> bool {
        self.all.is_empty()
            && self.waiters.is_empty()
            && self.stats.leases == 0
            && !self.min_idle_set
    }

    /// The connection a new lease on this key should use: a partly used
    /// multiplexed connection first (pack streams, let others idle out), then
    /// the most recently used idle one.
    #[inline]
    pub(super) fn pick(&self, conns: &Arena<ConnId, Conn>) -> Option<ConnId> {
        if self.partial > 0 {
            self.free.back(conns)
        } else {
            self.free.front(conns)
        }
    }

    /// Its counters, gauges included.
    pub(super) fn stats(&self) -> Stats {
        let mut stats = self.stats;
        let g = &self.gauges;
        stats.open = g.open();
        stats.connecting = g.get(Class::Connecting);
        stats.idle = g.get(Class::Idle);
        stats.busy = g.get(Class::Busy);
        stats.draining = g.get(Class::Draining);
        stats
    }
}
