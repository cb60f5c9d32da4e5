//! The pool: every connection and waiting request, keyed by origin, and every
//! decision about them.
//!
//! ## How a decision is made
//!
//! Each public input changes a little state and marks the keys it touched as
//! *dirty*. Before the input returns, [`Pool::settle`] drives each dirty key: it
//! first grants waiting requests, in arrival order, onto free capacity (a partly
//! used multiplexed connection before an idle one, and the most recently used idle
//! one first, so the cold ones age out); then it opens as many connections as the
//! remaining demand and the minimum-idle target need, within the per-key, global
//! and connecting limits, the backoff and the circuit. A key that needs a
//! connection but meets the global limit evicts the least recently used idle
//! connection of another key, or waits in a FIFO of blocked keys that is served as
//! soon as any connection closes. So a waiter is granted as soon as its key has
//! capacity or room to open, and never waits for an unrelated event.
//!
//! The hot path (an idle connection taken and returned, a stream slot taken and
//! returned) skips all of that: it moves one connection between two intrusive lists
//! and adjusts counters, with no allocation and no timer work.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use crate::action::{Action, CloseReason, RejectReason};
use crate::config::{ConfigError, PoolConfig, Saturation};
use crate::error::{EventError, HandleKind};
use crate::event::{Acquire, AcquireOptions, Connected, Mode, Release, Shutdown};
use crate::id::{Arena, ConnId, Handle, KeyId, Lease, LeaseId, StreamLease, WaiterId};
use crate::list::{Link, List};
use crate::rng::Rng;
use crate::stats::Stats;
use crate::time::Instant;
use crate::timer::{Target, TimerId, Timers};

mod invariants;

/// A connection's state, as [`Pool::conn_info`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnState {
    /// The open action was issued; no outcome yet.
    Connecting,
    /// Up, and taking leases up to its capacity.
    Ready,
    /// Idle, with a health check out; takes no lease until it is answered.
    Checking,
    /// Takes no new lease; closes when its last lease comes back.
    Draining,
    /// Closed by the core or the transport while leases were still out on it; it
    /// lingers only until they come back.
    Closed,
}

/// What the core knows of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnInfo {
    /// Its state.
    pub state: ConnState,
    /// Exclusive or multiplexed, once connected.
    pub mode: Option<Mode>,
    /// Leases out on it.
    pub leases: u32,
    /// Leases it can take at once: 1 if exclusive, the smaller of our cap and the
    /// peer's limit if multiplexed, 0 before it connects.
    pub capacity: u32,
    /// Leases it has been granted over its life.
    pub requests: u64,
}

/// A broken invariant, found by [`Pool::check_invariants`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvariantViolation(String);

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pool invariant violated: {}", self.0)
    }
}

impl std::error::Error for InvariantViolation {}

/// [`Conn::lease_generation`] while no inline lease is out: arenas count
/// generations from 1.
const NO_LEASE: u64 = 0;

/// The answer to a lease the core does not know (or no longer knows) as out.
/// Cold: it steers the compiler's layout of [`Pool::release`] towards the
/// releases that happen.
#[cold]
fn stale_lease() -> EventError {
    EventError::Stale(HandleKind::Lease)
}

/// The key hasher: foldhash's quality variant, seeded from the configuration, so
/// lookups are fast (the hash is a large share of the hot path), spread keys well,
/// and are reproducible (no OS randomness is read). Lookup is all the map is used
/// for: no decision iterates it.
type SeededState = foldhash::quality::FixedState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting { deadline: Instant },
    Ready,
    Checking { deadline: Instant },
    Draining,
    Closed,
}

/// Where a connection is counted in the gauges. The values are its bits in a
/// [`Place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Connecting = 1,
    Idle = 2,
    Busy = 3,
    Draining = 4,
}

/// Where a connection is in its key's `free` list, if at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    None,
    /// Ready, no lease, capacity to spare: in the idle part, at the front.
    Idle,
    /// Multiplexed, some leases, capacity to spare: in the partial part, at the
    /// back.
    Partial,
}

#[derive(Debug)]
struct Conn {
    key: KeyId,
    state: State,
    multiplexed: bool,
    capacity: u32,
    /// Leases out beyond `capacity` because the peer lowered its limit under them.
    grandfathered: u32,
    leases: u32,
    requests: u64,
    health_checks: bool,
    /// Last time the connection went idle (for the idle timeout).
    idle_since: Instant,
    /// Last time the connection was known alive (for health checks).
    seen_at: Instant,
    expires_at: Option<Instant>,
    drain_reason: CloseReason,
    /// Where it is counted and listed now (see [`Place`]).
    place: Place,
    /// When it last became evictable, in a pool-wide sequence: the least recently
    /// used idle connection has the smallest.
    idle_seq: u64,
    /// The generation of its inline lease (see [`Books::leases`]) while that is
    /// out, always so while an exclusive connection is leased; [`NO_LEASE`]
    /// while it is not (no handle has that generation).
    lease_generation: u64,
    slot_link: Link,
    all_link: Link,
}

/// Where a connection is counted and listed: everything [`Pool::update`] keeps
/// in line with its state. Each connection caches its place, so an update only
/// works out the new one, and does nothing more when it is the same (a stream
/// taken or returned on a busy multiplexed connection changes no place).
///
/// Packed in one byte, so that telling two places apart, and which of their
/// parts differ, is one comparison each:
///
/// - its gauge ([`Place::class`]; `None` once closed),
/// - usable: up, not draining, and with capacity, so it can serve the key now
///   or soon,
/// - evictable: idle and up, so another key may take its room,
/// - the grant list it is on ([`Place::slot`]).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Place(u8);

impl Place {
    const CLASS: u8 = 0b111;
    const USABLE: u8 = 1 << 3;
    const EVICTABLE: u8 = 1 << 4;
    const SLOT_IDLE: u8 = 1 << 5;
    const SLOT_PARTIAL: u8 = 1 << 6;
    const SLOT: u8 = Place::SLOT_IDLE | Place::SLOT_PARTIAL;

    const CONNECTING: Place = Place(Class::Connecting as u8);
    const CLOSED: Place = Place(0);

    fn class(self) -> Option<Class> {
        match self.0 & Place::CLASS {
            1 => Some(Class::Connecting),
            2 => Some(Class::Idle),
            3 => Some(Class::Busy),
            4 => Some(Class::Draining),
            _ => None,
        }
    }

    /// Whether it is counted as `class`: [`Place::class`] without the match.
    fn is(self, class: Class) -> bool {
        self.0 & Place::CLASS == class as u8
    }

    fn usable(self) -> bool {
        self.0 & Place::USABLE != 0
    }

    fn evictable(self) -> bool {
        self.0 & Place::EVICTABLE != 0
    }

    fn slot(self) -> Slot {
        match self.0 & Place::SLOT {
            Place::SLOT_IDLE => Slot::Idle,
            Place::SLOT_PARTIAL => Slot::Partial,
            _ => Slot::None,
        }
    }
}

impl fmt::Debug for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Place")
            .field("class", &self.class())
            .field("usable", &self.usable())
            .field("evictable", &self.evictable())
            .field("slot", &self.slot())
            .finish()
    }
}

impl Conn {
    /// The place the connection's state calls for, in one look at the state.
    #[inline]
    fn place(&self) -> Place {
        let usable = if self.capacity > 0 { Place::USABLE } else { 0 };
        let bits = match self.state {
            State::Connecting { .. } => return Place::CONNECTING,
            State::Ready if self.leases == 0 => {
                let slot = if self.capacity > 0 {
                    Place::SLOT_IDLE
                } else {
                    0
                };
                Class::Idle as u8 | usable | Place::EVICTABLE | slot
            }
            State::Ready => {
                let slot = if self.leases < self.capacity {
                    Place::SLOT_PARTIAL
                } else {
                    0
                };
                Class::Busy as u8 | usable | slot
            }
            State::Checking { .. } if self.leases == 0 => Class::Idle as u8 | usable,
            State::Checking { .. } => Class::Busy as u8 | usable,
            State::Draining => Class::Draining as u8,
            State::Closed => return Place::CLOSED,
        };
        Place(bits)
    }

    /// Whether `lease` is the inline lease out on this connection.
    fn holds_inline(&self, lease: Lease) -> bool {
        self.inline_out() && lease.id() == LeaseId::inline(lease.conn(), self.lease_generation)
    }

    /// Whether its inline lease is out.
    fn inline_out(&self) -> bool {
        self.lease_generation != NO_LEASE
    }

    fn info(&self) -> ConnInfo {
        let connected = !matches!(self.state, State::Connecting { .. });
        ConnInfo {
            state: match self.state {
                State::Connecting { .. } => ConnState::Connecting,
                State::Ready => ConnState::Ready,
                State::Checking { .. } => ConnState::Checking,
                State::Draining => ConnState::Draining,
                State::Closed => ConnState::Closed,
            },
            mode: connected.then_some(if self.multiplexed {
                Mode::Multiplexed {
                    max_streams: self.capacity,
                }
            } else {
                Mode::Exclusive
            }),
            leases: self.leases,
            capacity: self.capacity,
            requests: self.requests,
        }
    }
}

fn slot_link(c: &mut Conn) -> &mut Link {
    &mut c.slot_link
}
fn all_link(c: &mut Conn) -> &mut Link {
    &mut c.all_link
}

fn waiter_link(w: &mut Waiter) -> &mut Link {
    &mut w.link
}
fn expiring_link(w: &mut Waiter) -> &mut Link {
    &mut w.expiring_link
}

/// How a lease comes to be granted.
#[derive(Debug, Clone, Copy)]
enum Granted {
    /// At once, to the request that asked for it.
    AtOnce,
    /// To a request that waited this long, on free capacity.
    Waited(Duration),
    /// To a request that waited this long, on the capacity of a lease just
    /// released on the same connection, which is not counted back first: the
    /// released lease's entry, renamed, is the new lease (`Some`), or, if it was
    /// the connection's inline lease (see [`Books::leases`]), the grant renames
    /// that (`None`).
    HandedOn(Duration, Option<LeaseId>),
}

#[derive(Debug)]
struct Waiter {
    key: KeyId,
    since: Instant,
    deadline: Instant,
    expiry: Expiry,
    /// Its place in its key's queue (arrival order).
    link: Link,
    /// Its place in its key's `expiring` list, when [`Expiry::Listed`].
    expiring_link: Link,
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
enum Expiry {
    /// On its key's `expiring` list, covered by the key's timer.
    Listed,
    /// Its own timer in the heap.
    Timer(TimerId),
    /// Its own timer fired; it is being rejected.
    Fired,
}

/// What a key's connections turned out to be, remembered for its next connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Learned {
    Unknown,
    Exclusive,
    Multiplexed { capacity: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Circuit {
    Closed,
    Open { until: Instant },
    HalfOpen { probe: Option<ConnId> },
}

#[derive(Debug)]
struct KeyState<K> {
    key: K,
    learned: Learned,
    /// Every connection that is not closed.
    all: List,
    /// The connections with capacity to spare: the idle ones at the front, the
    /// most recently used first, then the partly used multiplexed ones, the
    /// most recently used last. New leases take them from the back while any is
    /// partly used (pack streams, let others idle out), from the front
    /// otherwise ([`KeyState::pick`]). One list rather than two, so that a
    /// multiplexed connection taking its first stream or giving back its last,
    /// when it is at the end of the list its new part begins at (as one alone
    /// in the list is), stays where it is: the hot path of an HTTP/2 request
    /// moves no link.
    free: List,
    /// How many connections at the back of `free` are partly used.
    partial: u32,
    waiters: List,
    /// The waiters whose deadline the key's timer covers, in deadline order (see
    /// [`Expiry`]).
    expiring: List,
    /// Its counters, but for the gauges of its connections, which `gauges`
    /// keeps (see [`KeyState::stats`]).
    stats: Stats,
    gauges: Gauges,
    failures: u32,
    backoff_until: Option<Instant>,
    circuit: Circuit,
    /// The key's timer and the instant it is armed for.
    timer: Option<(TimerId, Instant)>,
    empty_since: Option<Instant>,
    /// Connections that are up, not draining, and have capacity (some may be in use).
    usable: u32,
    dirty: bool,
    blocked: bool,
}

impl<K> KeyState<K> {
    fn new(key: K) -> Self {
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
            backoff_until: None,
            circuit: Circuit::Closed,
            timer: None,
            empty_since: None,
            usable: 0,
            dirty: false,
            blocked: false,
        }
    }

    /// No connection, no waiter and no lease: nothing to keep the key for.
    fn is_empty(&self) -> bool {
        self.all.is_empty() && self.waiters.is_empty() && self.stats.leases == 0
    }

    /// The connection a new lease on this key should use: a partly used
    /// multiplexed connection first (pack streams, let others idle out), then
    /// the most recently used idle one.
    fn pick(&self, conns: &Arena<ConnId, Conn>) -> Option<ConnId> {
        if self.partial > 0 {
            self.free.back(conns)
        } else {
            self.free.front(conns)
        }
    }

    /// Its counters, gauges included.
    fn stats(&self) -> Stats {
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

/// A key's connections counted by class, indexed by a [`Place`]'s class bits,
/// so that moving a connection from one class to another indexes twice and
/// matches on nothing. Slot 0 is a closed connection's: every connection that
/// opens is counted out of it and every one that closes back in, so it holds
/// minus the number open, wrapping.
#[derive(Debug, Default, Clone, Copy)]
struct Gauges([u32; 8]);

impl Gauges {
    fn get(&self, class: Class) -> u32 {
        self.0[class as usize]
    }

    /// Connections open: every class but closed.
    fn open(&self) -> u32 {
        self.0[0].wrapping_neg()
    }

    /// Counts a connection out of the class of `before` and into that of `after`.
    #[inline(always)]
    fn moved(&mut self, before: Place, after: Place) {
        let from = &mut self.0[usize::from(before.0 & Place::CLASS)];
        *from = from.wrapping_sub(1);
        let to = &mut self.0[usize::from(after.0 & Place::CLASS)];
        *to = to.wrapping_add(1);
    }
}

/// The connections and their leases, and the pool-wide counts that move with
/// them: everything a grant or a release changes besides the state of the
/// connection's key. Kept apart from the keys, so that the hot path can hold a
/// key and reach its connections with each looked up once.
struct Books {
    conns: Arena<ConnId, Conn>,
    /// The leases out on multiplexed connections beside their inline ones,
    /// each naming its connection. A connection's first lease out is its
    /// inline one, named after the connection with a generation from this
    /// arena's counter ([`LeaseId::inline`], [`Conn::lease_generation`]): granting and
    /// releasing it touches the connection alone, which both look up anyway.
    /// An exclusive connection has no other; a multiplexed one takes an entry
    /// here for each stream it grants while its inline lease is out.
    leases: Arena<StreamLease, ConnId>,
    /// The next [`Conn::idle_seq`].
    idle_seq: u64,
    /// Connections open over all keys (the global limit's count).
    open_total: u32,
}

impl Books {
    /// A new lease on `cid`, whose key is `k` (see [`Pool::grant`]).
    #[inline(always)]
    fn grant<K>(
        &mut self,
        k: &mut KeyState<K>,
        cid: ConnId,
        how: Granted,
        max_requests: Option<u64>,
    ) -> Lease {
        let (added, waited) = match how {
            Granted::AtOnce => (1, None),
            Granted::Waited(waited) => (1, Some(waited)),
            Granted::HandedOn(waited, _) => (0, Some(waited)),
        };
        // The generation the next handle gets, which names an inline lease
        // (another comes with its entry); see `Books::leases`. Taken only once
        // the connection is updated, so that nothing is written to the pool
        // before it is looked up. A lease handed on is inline if the released
        // one was (it has no entry to rename).
        let generation = self.leases.next_generation();
        let f = |c: &mut Conn| {
            c.leases += added;
            c.requests += 1;
            let inline = match how {
                Granted::HandedOn(_, renewed) => renewed.is_none(),
                _ => !c.inline_out(),
            };
            if inline {
                c.lease_generation = generation;
            }
            if max_requests.is_some_and(|max| c.requests >= max) {
                c.state = State::Draining;
                c.drain_reason = CloseReason::RequestLimit;
            }
            inline
        };
        let g = |s: &mut Stats, c: &Conn| {
            s.grants += 1;
            s.reused_grants += u64::from(c.requests > 1);
            s.leases += added;
            if let Some(waited) = waited {
                s.waited_grants += 1;
                s.wait_time += waited;
            }
        };
        let inline = 'granted: {
            if let Granted::HandedOn(..) = how {
                let c = self.conns.get_mut(cid).expect("granted connections live");
                if max_requests.is_none_or(|max| c.requests + 1 < max) {
                    // Its leases, state and capacity stay as they are, and so do its
                    // counts and lists: no need to bring them in line.
                    let inline = f(c);
                    g(&mut k.stats, c);
                    break 'granted inline;
                }
            }
            self.update(k, cid, f, g).is_some_and(|(_, inline)| inline)
        };
        let id = match how {
            Granted::HandedOn(_, Some(renewed)) => renewed,
            _ if inline => LeaseId::inline(cid, self.leases.fresh_generation()),
            _ => self.leases.insert(cid).lease_id(),
        };
        Lease::new(id, cid)
    }

    /// Applies `f` to a connection and `g` to the counters of its key `k`
    /// (given the changed connection), then brings the key's counts and list,
    /// and the pool's, in line with the connection's new state. Returns its new
    /// place (`None` if the connection is unknown), which often tells the caller
    /// enough not to look the connection up again, and what `f` returned.
    #[inline(always)]
    fn update<K, R>(
        &mut self,
        k: &mut KeyState<K>,
        cid: ConnId,
        f: impl FnOnce(&mut Conn) -> R,
        g: impl Fn(&mut Stats, &Conn),
    ) -> Option<(Place, R)> {
        let c = self.conns.get_mut(cid)?;
        let before = c.place;
        let r = f(c);
        let after = c.place();
        g(&mut k.stats, c);
        if before == after {
            return Some((after, r));
        }
        c.place = after;
        let changed = before.0 ^ after.0;
        if changed & after.0 & Place::EVICTABLE != 0 {
            c.idle_seq = self.idle_seq;
            self.idle_seq += 1;
        }
        if changed & Place::USABLE != 0 {
            if after.usable() {
                k.usable += 1;
            } else {
                k.usable -= 1;
            }
        }
        if changed & Place::CLASS != 0 {
            k.gauges.moved(before, after);
            if before == Place::CLOSED {
                self.open_total += 1;
            } else if after == Place::CLOSED {
                self.open_total -= 1;
            }
        }
        if changed & Place::SLOT != 0 {
            let listed = before.0 & Place::SLOT != 0;
            // The slot's bits, not `Place::slot`: the list ends below are told
            // apart without a match on them.
            let to = after.0 & Place::SLOT;
            if changed & Place::SLOT_PARTIAL != 0 {
                if to == Place::SLOT_PARTIAL {
                    k.partial += 1;
                } else {
                    k.partial -= 1;
                }
            }
            let was = c.slot_link;
            // Idle ones go to the front, partly used ones to the back; one listed
            // at that end already stays (see `KeyState::free`).
            let stays = listed
                && match to {
                    Place::SLOT_IDLE => was.is_first(),
                    Place::SLOT_PARTIAL => was.is_last(),
                    _ => false,
                };
            if !stays {
                // The connection is at hand: its own link is set here, and the
                // list only mends its neighbours. One that moves is not at the end
                // it goes to, so its leaving does not change that end.
                c.slot_link = match to {
                    Place::SLOT_IDLE => k.free.front_link(),
                    Place::SLOT_PARTIAL => k.free.back_link(),
                    _ => Link::default(),
                };
                if listed {
                    k.free.unlink(&mut self.conns, was, slot_link);
                }
                let index = cid.index();
                match to {
                    Place::SLOT_IDLE => k.free.attach_front(&mut self.conns, index, slot_link),
                    Place::SLOT_PARTIAL => k.free.attach_back(&mut self.conns, index, slot_link),
                    _ => {}
                }
            }
        }
        Some((after, r))
    }
}

/// The sans-IO connection pool. See the [crate documentation](crate) for the run
/// loop.
///
/// `K` names an origin: anything hashable that tells apart connections that must
/// never be shared (the adapters use scheme, host, port and TLS identity).
pub struct Pool<K> {
    config: PoolConfig,
    keys: Arena<KeyId, KeyState<K>>,
    index: HashMap<K, KeyId, SeededState>,
    /// The key the last [`Pool::acquire`] named. Consecutive requests mostly name
    /// the same origin (a client of one API, a proxy's upstream), and comparing
    /// with one key costs a fraction of hashing it and probing the index, the
    /// largest share of a request's cost otherwise. A stale id (the key was
    /// forgotten) names nothing; no decision depends on it.
    last_key: Option<KeyId>,
    books: Books,
    waiters: Arena<WaiterId, Waiter>,
    actions: VecDeque<Action>,
    timers: Timers,

    dirty: VecDeque<KeyId>,
    blocked: VecDeque<KeyId>,
    /// The counters of keys already forgotten; [`Pool::stats`] adds the live keys'.
    retired: Stats,
    /// Connects started over the pool's life.
    connects_total: u64,
    /// The soonest an idle connection's own deadlines can come after it went
    /// idle: the shorter of the idle timeout and the health check interval, in
    /// nanoseconds (added to `now` on every release that idles a connection);
    /// `u64::MAX` if there is neither.
    idle_wake: u64,
    rng: Rng,
    now: Instant,
    shutdown: Option<Shutdown>,
}

impl<K> fmt::Debug for Pool<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("keys", &self.keys.len())
            .field("open", &self.books.open_total)
            .field("now", &self.now)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone> Pool<K> {
    /// A pool with `config`, or why the configuration is refused.
    pub fn new(config: PoolConfig) -> Result<Pool<K>, ConfigError> {
        config.validate()?;
        let conns = (config.max_connections as usize).min(1024);
        Ok(Pool {
            index: HashMap::with_hasher(SeededState::with_seed(config.seed ^ 0x6b65_7973)),
            last_key: None,
            keys: Arena::new(),
            books: Books {
                conns: Arena::with_capacity(conns),
                leases: Arena::with_capacity(conns),
                idle_seq: 0,
                open_total: 0,
            },
            waiters: Arena::new(),
            actions: VecDeque::with_capacity(64),
            timers: Timers::default(),

            dirty: VecDeque::new(),
            blocked: VecDeque::new(),
            retired: Stats::default(),
            connects_total: 0,
            idle_wake: [config.idle_timeout, config.health_check.interval]
                .into_iter()
                .flatten()
                .min()
                .map_or(u64::MAX, |d| {
                    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
                }),
            rng: Rng::new(config.seed),
            now: Instant::ZERO,
            shutdown: None,
            config,
        })
    }

    /// The configuration the pool runs with.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    // ----------------------------------------------------------------- inputs

    /// Asks for capacity on `key`: a lease now if some is free, otherwise a place in
    /// the key's queue (answered later by [`Action::Grant`] or [`Action::Reject`]).
    ///
    /// Free capacity is granted whenever nobody is queued ahead on the key, even
    /// while its circuit is open (the circuit is about new connections). Otherwise
    /// the request is refused at once, with the reason, when the pool is shutting
    /// down, the key's circuit is open or half-open, its queue is full, or its
    /// deadline has already passed.
    pub fn acquire(
        &mut self,
        key: &K,
        now: Instant,
        options: AcquireOptions,
    ) -> Result<Acquire, RejectReason> {
        let now = self.tick(now);
        if self.shutdown.is_some() {
            return Err(self.refuse(None, RejectReason::ShuttingDown));
        }
        // The key the last request named is compared first (see
        // `Pool::last_key`), and its state used as found there, not looked up
        // again; on a mismatch the index names the key.
        let mut indexed = None;
        let kid = loop {
            let Some(kid) = indexed.or(self.last_key) else {
                indexed = Some(self.lookup_or_insert(key));
                continue;
            };
            let k = match self.keys.get_mut(kid) {
                Some(k) if indexed.is_some() || k.key == *key => k,
                _ if indexed.is_none() => {
                    indexed = Some(self.lookup_or_insert(key));
                    continue;
                }
                _ => unreachable!("indexed keys are live"),
            };
            if !k.waiters.is_empty() {
                break kid;
            }
            let books = &mut self.books;
            let preferred = options.prefer.filter(|&c| {
                books
                    .conns
                    .get(c)
                    .is_some_and(|c| c.key == kid && c.place.slot() != Slot::None)
            });
            if let Some(conn) = preferred.or_else(|| k.pick(&books.conns)) {
                let max_requests = self.config.max_requests_per_connection;
                let lease = books.grant(k, conn, Granted::AtOnce, max_requests);
                if self.config.min_idle_per_key > 0 {
                    self.settle_key(kid);
                }
                return Ok(Acquire::Ready(lease));
            }
            break kid;
        };
        let k = self.keys.get(kid).expect("indexed keys are live");
        let reason = if !matches!(k.circuit, Circuit::Closed) {
            Some(RejectReason::CircuitOpen)
        } else if k.waiters.len() >= self.config.max_waiters_per_key {
            Some(RejectReason::QueueFull)
        } else if options.deadline.is_some_and(|d| d <= now) {
            Some(RejectReason::Timeout)
        } else {
            None
        };
        if let Some(reason) = reason {
            let reason = self.refuse(Some(kid), reason);
            // A key created only to refuse a request must still be forgotten.
            self.settle_key(kid);
            return Err(reason);
        }
        let deadline = options
            .deadline
            .unwrap_or_else(|| now.saturating_add(self.config.acquire_timeout));
        // Queueing changes nothing about the key's connections: if it is at its
        // own limits now, it still is after.
        let may_open = self.below_key_limits(k);
        let waiter = self.enqueue(kid, now, deadline);
        // Driving the key could only open connections: it has no free capacity
        // (that was looked for above, or others wait already, which a settled
        // key with capacity never has), and it is not empty now.
        if may_open {
            self.open_for_demand(kid);
        }
        self.settle();
        Ok(Acquire::Queued(waiter))
    }

    /// Withdraws a waiting request. No action answers it.
    ///
    /// A request that was already granted or rejected is stale: if a grant for it
    /// is among the undrained actions, the caller must still release that lease.
    pub fn cancel(&mut self, waiter: WaiterId, now: Instant) -> Result<(), EventError> {
        self.tick(now);
        let (kid, _) = self.remove_waiter(waiter)?;
        self.count(kid, |s| s.cancelled += 1);
        self.settle_key(kid);
        Ok(())
    }

    /// Gives a lease back. With [`Release::Reuse`] the capacity goes to the next
    /// waiter or back to idle; with [`Release::Close`] the connection takes no new
    /// lease and is closed once its last lease is back.
    pub fn release(&mut self, lease: Lease, now: Instant, how: Release) -> Result<(), EventError> {
        let now = self.tick(now);
        let cid = lease.conn();
        let Some(conn) = self.books.conns.get(cid) else {
            return Err(stale_lease());
        };
        // An inline lease is its connection's; another has an entry of its own
        // (see `Books::leases`).
        let entry = match StreamLease::of(lease.id()) {
            Some(stream) => match self.books.leases.entry(stream).filter(|e| *e.get() == cid) {
                Some(entry) => Some(entry),
                None => return Err(stale_lease()),
            },
            None if conn.holds_inline(lease) => None,
            None => return Err(stale_lease()),
        };
        let inline = entry.is_none();
        let kid = conn.key;
        // What the rest needs of the key, which releasing the lease does not change.
        let k = self.keys.get_mut(kid).expect("a connection's key lives");
        let head = k.waiters.front(&self.waiters);
        let armed = k.timer.map(|(_, at)| at);
        if let (Some(waiter), State::Ready) = (head, conn.state) {
            if how == Release::Reuse && conn.leases <= conn.capacity {
                // Hot path: the freed capacity goes straight to the head waiter. A
                // key with waiters has no other free capacity (each input settles
                // it), so this is the connection `pick` would choose; it never
                // passes through the idle list, and nothing else about the key
                // changes unless this grant meets the connection's request limit.
                // The lease's own entry, renamed, is the waiter's lease.
                // Whether the grant meets that limit (and so drains the connection)
                // is known from its count now, without looking it up again after.
                let limited = self
                    .config
                    .max_requests_per_connection
                    .is_some_and(|max| conn.requests + 1 >= max);
                let renewed = entry.map(|entry| entry.renew().lease_id());
                self.grant_waiter(waiter, cid, Some(renewed));
                if limited {
                    self.settle_key(kid);
                }
                return Ok(());
            }
        }
        if let Some(entry) = entry {
            entry.remove();
        }
        if conn.state == State::Closed {
            let conn = self
                .books
                .conns
                .get_mut(cid)
                .expect("a lease's connection lives");
            conn.leases -= 1;
            if inline {
                conn.lease_generation = NO_LEASE;
            }
            let gone = conn.leases == 0;
            self.count(kid, |s| s.leases -= 1);
            if gone {
                self.books.conns.remove(cid);
                self.settle_key(kid);
            }
            return Ok(());
        }
        let expires_at = conn.expires_at;
        let place = self.books.update(
            k,
            cid,
            |c| {
                c.leases -= 1;
                if inline {
                    c.lease_generation = NO_LEASE;
                }
                if c.grandfathered > 0 {
                    c.grandfathered = c.grandfathered.min(c.leases.saturating_sub(c.capacity));
                }
                if how == Release::Close && !matches!(c.state, State::Draining) {
                    c.state = State::Draining;
                    c.drain_reason = CloseReason::NotReusable;
                }
                if c.leases == 0 {
                    c.idle_since = now;
                    c.seen_at = now;
                }
            },
            |s, _| s.leases -= 1,
        );
        let place = place.map(|(place, ())| place);
        if place.is_some_and(|p| p.is(Class::Draining)) {
            let conn = self.books.conns.get(cid).expect("still open");
            if conn.leases == 0 {
                let reason = conn.drain_reason;
                self.close(cid, reason);
            }
            // Its key lost capacity: it may need another connection.
            self.settle_key(kid);
            return Ok(());
        }
        let went_idle = place.is_some_and(|p| p.is(Class::Idle));
        // The key's timer usually fires early enough already. Freed capacity the
        // head waiter could not take (a lease the peer's lowered limit left over)
        // still wakes the key, and a connection gone idle may be evicted for a key
        // blocked at the global limit.
        //
        // A connection gone idle has new deadlines (idle timeout, health check),
        // none sooner than `idle_wake` from now, or its expiry; any other it has
        // (a check's answer) the key's timer covers already. So when the timer
        // fires by then, the exact deadline need not be worked out.
        if went_idle {
            // Without either deadline this is `Instant::MAX`, and only a key with
            // no timer at all looks further.
            let wake = Instant::from_nanos(now.as_nanos().saturating_add(self.idle_wake));
            let soonest = expires_at.map_or(wake, |expires| wake.min(expires));
            if armed.is_none_or(|armed| armed > soonest) {
                let conn = self.books.conns.get(cid).expect("still open");
                if let Some(at) = self.conn_deadline(conn) {
                    if armed.is_none_or(|armed| armed > at) {
                        self.arm(kid, at);
                    }
                }
            }
        }
        if head.is_some() || (went_idle && !self.blocked.is_empty()) {
            self.settle_key(kid);
        }
        Ok(())
    }

    /// Reports that a connection the core asked for is up, and what it is.
    pub fn handle_connected(
        &mut self,
        conn: ConnId,
        now: Instant,
        info: Connected,
    ) -> Result<(), EventError> {
        let now = self.tick(now);
        let c = self.live(conn)?;
        if !matches!(c.state, State::Connecting { .. }) {
            return Err(EventError::WrongState);
        }
        let kid = c.key;
        let (multiplexed, capacity) = match info.mode {
            Mode::Exclusive => (false, 1),
            Mode::Multiplexed { max_streams } => (
                true,
                max_streams.min(self.config.max_streams_per_connection),
            ),
        };
        let expires_at = self.config.max_lifetime.map(|lifetime| {
            let jitter = self.jitter(self.config.lifetime_jitter);
            now.saturating_add(lifetime.saturating_sub(jitter))
        });
        self.update(conn, |c| {
            c.state = State::Ready;
            c.multiplexed = multiplexed;
            c.capacity = capacity;
            c.health_checks = info.health_checks;
            c.idle_since = now;
            c.seen_at = now;
            c.expires_at = expires_at;
        });
        let k = self.keys.get_mut(kid).expect("a connection's key lives");
        k.learned = if multiplexed {
            Learned::Multiplexed { capacity }
        } else {
            Learned::Exclusive
        };
        k.failures = 0;
        k.backoff_until = None;
        k.circuit = Circuit::Closed;
        self.arm_for_conn(conn);
        self.settle_key(kid);
        Ok(())
    }

    /// Reports that a connect failed. Counts toward backoff and the circuit, and
    /// rejects the oldest waiter of the key if it was waiting on this connect.
    pub fn handle_connect_failed(&mut self, conn: ConnId, now: Instant) -> Result<(), EventError> {
        self.tick(now);
        let c = self.live(conn)?;
        if !matches!(c.state, State::Connecting { .. }) {
            return Err(EventError::WrongState);
        }
        self.fail_connect(conn, None);
        self.settle();
        Ok(())
    }

    /// Reports a change of the peer's limit on concurrent streams (an HTTP/2
    /// SETTINGS frame). It may fall below the streams in flight: no new stream is
    /// granted until they drop under it.
    pub fn handle_peer_max_streams(
        &mut self,
        conn: ConnId,
        now: Instant,
        max_streams: u32,
    ) -> Result<(), EventError> {
        self.tick(now);
        let c = self.live(conn)?;
        if !c.multiplexed || matches!(c.state, State::Connecting { .. } | State::Closed) {
            return Err(EventError::WrongState);
        }
        let kid = c.key;
        let capacity = max_streams.min(self.config.max_streams_per_connection);
        self.update(conn, |c| {
            c.capacity = capacity;
            c.grandfathered = c.leases.saturating_sub(capacity);
        });
        if let Some(k) = self.keys.get_mut(kid) {
            k.learned = Learned::Multiplexed { capacity };
        }
        self.settle_key(kid);
        Ok(())
    }

    /// Reports that the peer is going away (HTTP/2 GOAWAY, `Connection: close`):
    /// no new lease; closed when the last one is back.
    pub fn handle_going_away(&mut self, conn: ConnId, now: Instant) -> Result<(), EventError> {
        self.tick(now);
        let c = self.live(conn)?;
        match c.state {
            State::Connecting { .. } | State::Closed => return Err(EventError::WrongState),
            State::Draining => return Ok(()),
            State::Ready | State::Checking { .. } => {}
        }
        self.drain(conn, CloseReason::PeerGoingAway);
        self.settle();
        Ok(())
    }

    /// Reports that a connection's transport closed (the peer closed it, or an I/O
    /// error). Leases still out on it may be released as usual. A connection still
    /// connecting counts as a failed connect.
    pub fn handle_transport_closed(
        &mut self,
        conn: ConnId,
        now: Instant,
    ) -> Result<(), EventError> {
        self.tick(now);
        let c = self.live(conn)?;
        match c.state {
            State::Connecting { .. } => self.fail_connect(conn, None),
            _ => {
                let kid = c.key;
                self.count(kid, |s| s.transport_closes += 1);
                self.forget_conn(conn);
            }
        }
        self.settle();
        Ok(())
    }

    /// Reports that the health check asked for by [`Action::HealthCheck`] was
    /// answered: the connection is alive and may be leased again.
    pub fn handle_health_ok(&mut self, conn: ConnId, now: Instant) -> Result<(), EventError> {
        let now = self.tick(now);
        let c = self.live(conn)?;
        if !matches!(c.state, State::Checking { .. }) {
            return Err(EventError::WrongState);
        }
        let kid = c.key;
        self.update(conn, |c| {
            c.state = State::Ready;
            c.seen_at = now;
        });
        self.arm_for_conn(conn);
        self.settle_key(kid);
        Ok(())
    }

    /// Reports that a connection may have died without a sign: a request on it
    /// got no answer in time, as when the peer's host vanished without a reset
    /// and the transport cannot tell. If its protocol has a health check, one is
    /// asked for at once ([`Action::HealthCheck`]), leases out or not; no new
    /// lease is granted on it until [`Pool::handle_health_ok`] answers, and it closes
    /// ([`CloseReason::HealthCheckFailed`]) if no answer comes within the health
    /// check's timeout. Leases out on it stay valid and are released as usual.
    ///
    /// A connection already being checked, draining, or whose protocol has no
    /// health check is left as it is (an exclusive connection whose request
    /// failed is closed by its lease's release instead).
    pub fn handle_suspect(&mut self, conn: ConnId, now: Instant) -> Result<(), EventError> {
        let now = self.tick(now);
        let c = self.live(conn)?;
        match c.state {
            State::Connecting { .. } | State::Closed => return Err(EventError::WrongState),
            State::Ready if c.health_checks => {}
            State::Ready | State::Checking { .. } | State::Draining => return Ok(()),
        }
        let kid = c.key;
        let deadline = now.saturating_add(self.config.health_check.timeout);
        self.update(conn, |c| c.state = State::Checking { deadline });
        self.actions.push_back(Action::HealthCheck { conn });
        self.arm(kid, deadline);
        Ok(())
    }

    /// Tells the core the time: whatever was due by `now` happens (requests time
    /// out, connects time out, idle and expired connections close, health checks
    /// are sent, backoff ends, circuits half-open).
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        // Handling what is due can arm more for `now` (a key emptied by a timeout
        // is due to be forgotten); rounds go on until nothing due is left. Every
        // duration is positive (`PoolConfig::validate`), so this ends after a round
        // or two; the bound only guards the caller against a core bug.
        for _ in 0..16 {
            self.handle_due(now);
            if self.timers.next_deadline().is_none_or(|at| at > now) {
                return;
            }
        }
        debug_assert!(false, "timers still due at {now:?} after 16 rounds");
    }

    fn handle_due(&mut self, now: Instant) {
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

    /// Shuts the pool down. Waiting requests are rejected, new ones refused, idle
    /// and connecting connections closed; busy ones are closed now
    /// ([`Shutdown::Immediate`]) or when their last lease comes back
    /// ([`Shutdown::Graceful`]). Calling it again can only make it more immediate.
    pub fn shutdown(&mut self, now: Instant, how: Shutdown) {
        self.tick(now);
        let how = match self.shutdown {
            Some(Shutdown::Immediate) => Shutdown::Immediate,
            _ => how,
        };
        self.shutdown = Some(how);
        let waiting: Vec<WaiterId> = self.waiters.iter().map(|(w, _)| w).collect();
        let mut by_key: Vec<(KeyId, Instant, WaiterId)> = waiting
            .into_iter()
            .filter_map(|w| self.waiters.get(w).map(|x| (x.key, x.since, w)))
            .collect();
        // Arrival order within each key, keys in slot order: deterministic.
        by_key.sort_by_key(|&(k, since, w)| (k.index(), since, w.generation()));
        for (_, _, w) in by_key {
            self.reject(w, RejectReason::ShuttingDown);
        }
        let conns: Vec<ConnId> = self.books.conns.iter().map(|(c, _)| c).collect();
        for cid in conns {
            let Some(c) = self.books.conns.get(cid) else {
                continue;
            };
            match (c.state, c.leases, how) {
                (State::Closed, _, _) => {}
                (State::Draining, _, Shutdown::Graceful) => {
                    self.update(cid, |c| c.drain_reason = CloseReason::Shutdown);
                }
                (_, 0, _) | (_, _, Shutdown::Immediate) => self.close(cid, CloseReason::Shutdown),
                _ => self.drain(cid, CloseReason::Shutdown),
            }
        }
        self.settle();
    }

    // ---------------------------------------------------------------- outputs

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next instant at which [`Pool::handle_timeout`] must be called, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// The key a connection belongs to.
    pub fn key(&self, conn: ConnId) -> Option<&K> {
        let c = self.books.conns.get(conn)?;
        Some(&self.keys.get(c.key)?.key)
    }

    /// The key a waiting request waits on.
    pub fn waiter_key(&self, waiter: WaiterId) -> Option<&K> {
        let w = self.waiters.get(waiter)?;
        Some(&self.keys.get(w.key)?.key)
    }

    /// What the core knows of a connection.
    pub fn conn_info(&self, conn: ConnId) -> Option<ConnInfo> {
        self.books.conns.get(conn).map(Conn::info)
    }

    /// Whether a lease is still out.
    pub fn is_leased(&self, lease: Lease) -> bool {
        let entry = || StreamLease::of(lease.id()).and_then(|s| self.books.leases.get(s));
        self.books
            .conns
            .get(lease.conn())
            .is_some_and(|c| c.holds_inline(lease) || entry() == Some(&lease.conn()))
    }

    /// Counters over the whole pool's life: the live keys' and the forgotten keys'.
    ///
    /// Summed over the keys on each call, so that the hot path keeps one set of
    /// counters, not two.
    pub fn stats(&self) -> Stats {
        let mut total = self.retired;
        for (_, k) in self.keys.iter() {
            total.add(&k.stats());
        }
        total
    }

    /// One key's counters, while the core remembers the key.
    pub fn key_stats(&self, key: &K) -> Option<Stats> {
        let kid = self.index.get(key)?;
        Some(self.keys.get(*kid)?.stats())
    }

    /// The keys the core holds state for, in a stable order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.keys.iter().map(|(_, k)| &k.key)
    }

    /// Whether a shutdown was asked for and no connection is left open.
    pub fn is_shut_down(&self) -> bool {
        self.shutdown.is_some() && self.books.open_total == 0
    }

    /// The latest time the core has been told.
    pub fn now(&self) -> Instant {
        self.now
    }

    // ------------------------------------------------------------- decisions

    /// A connection events may name: known, and not closed. A connection the core
    /// closed while leases were out lingers for their release only.
    fn live(&self, conn: ConnId) -> Result<&Conn, EventError> {
        match self.books.conns.get(conn) {
            Some(c) if !matches!(c.state, State::Closed) => Ok(c),
            _ => Err(EventError::Stale(HandleKind::Connection)),
        }
    }

    /// Time only moves forward: an earlier `now` is read as the latest seen.
    fn tick(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    /// The id of `key` in the index, remembered now if it was not; it becomes
    /// [`Pool::last_key`].
    fn lookup_or_insert(&mut self, key: &K) -> KeyId {
        let kid = match self.index.get(key) {
            Some(&kid) => kid,
            None => self.insert_key(key.clone()),
        };
        self.last_key = Some(kid);
        kid
    }

    fn insert_key(&mut self, key: K) -> KeyId {
        let kid = self.keys.insert(KeyState::new(key.clone()));
        self.index.insert(key, kid);
        kid
    }

    fn mark_dirty(&mut self, kid: KeyId) {
        if let Some(k) = self.keys.get_mut(kid) {
            if !k.dirty {
                k.dirty = true;
                self.dirty.push_back(kid);
            }
        }
    }

    /// [`Pool::mark_dirty`], then [`Pool::settle`]; when no other key is dirty,
    /// `kid` is driven at once, without the round trip through the queue.
    fn settle_key(&mut self, kid: KeyId) {
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
    fn settle(&mut self) {
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

    /// Answers a waiting request with a lease on `cid`; `handed_on`: on the
    /// capacity of a lease just released on the same connection (see [`Granted`]).
    #[inline(always)]
    fn grant_waiter(&mut self, waiter: WaiterId, cid: ConnId, handed_on: Option<Option<LeaseId>>) {
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

    /// How many connections `kid` should open now, before limits.
    fn wanted_opens(&self, kid: KeyId) -> u32 {
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
        let for_idle = self
            .config
            .min_idle_per_key
            .saturating_sub(k.gauges.get(Class::Idle));
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

    fn open_for_demand(&mut self, kid: KeyId) {
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
    fn below_key_limits(&self, k: &KeyState<K>) -> bool {
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

    /// A connect failed or timed out: forget the connection, reject the head waiter
    /// if the connect was wanted for it, back off, and perhaps open the circuit.
    fn fail_connect(&mut self, cid: ConnId, close: Option<CloseReason>) {
        let kid = self
            .books
            .conns
            .get(cid)
            .expect("failing connections live")
            .key;
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
        let k = self.keys.get_mut(kid).expect("a connection's key lives");
        k.failures = k.failures.saturating_add(1);
        let failures = k.failures;
        let trips = was_probe
            || self
                .config
                .circuit
                .failure_threshold
                .is_some_and(|t| failures >= t && k.circuit == Circuit::Closed);
        if let Some(head) = k.waiters.front(&self.waiters) {
            // Each failed connect costs at most one request: the one at the head,
            // which it was opened for (or would have served first).
            if k.gauges.get(Class::Connecting) < k.waiters.len() || k.learned == Learned::Unknown {
                self.reject(head, RejectReason::ConnectFailed);
            }
        }
        if trips {
            let until = now.saturating_add(self.config.circuit.open_for);
            self.keys.get_mut(kid).expect("live").circuit = Circuit::Open { until };
            self.reject_all(kid, RejectReason::CircuitOpen);
            self.arm(kid, until);
        } else {
            let delay = self.backoff_delay(failures);
            let until = now.saturating_add(delay);
            self.keys.get_mut(kid).expect("live").backoff_until = Some(until);
            self.arm(kid, until);
        }
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

    fn jitter(&mut self, span: Duration) -> Duration {
        let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.below_inclusive(nanos))
    }

    fn reject_all(&mut self, kid: KeyId, reason: RejectReason) {
        while let Some(w) = self
            .keys
            .get(kid)
            .and_then(|k| k.waiters.front(&self.waiters))
        {
            self.reject(w, reason);
        }
    }

    fn reject(&mut self, waiter: WaiterId, reason: RejectReason) {
        if let Ok((kid, _)) = self.remove_waiter(waiter) {
            self.count(kid, |s| s.rejections.bump(reason.slot()));
            self.actions.push_back(Action::Reject { waiter, reason });
            self.mark_dirty(kid);
        }
    }

    /// Counts a refusal of a request that never waited.
    fn refuse(&mut self, kid: Option<KeyId>, reason: RejectReason) -> RejectReason {
        match kid {
            Some(kid) => self.count(kid, |s| s.rejections.bump(reason.slot())),
            None => self.retired.rejections.bump(reason.slot()),
        }
        reason
    }

    /// Puts a request that arrived at `now` at the back of `kid`'s queue, to
    /// time out at `deadline` (see [`Expiry`]).
    #[inline(always)]
    fn enqueue(&mut self, kid: KeyId, now: Instant, deadline: Instant) -> WaiterId {
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

    /// Takes a waiter out of its queue and the timers; returns its key and the
    /// time it arrived.
    #[inline(always)]
    fn remove_waiter(&mut self, waiter: WaiterId) -> Result<(KeyId, Instant), EventError> {
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

    /// No new leases; close now if none is out.
    fn drain(&mut self, cid: ConnId, reason: CloseReason) {
        let Some(c) = self.books.conns.get(cid) else {
            return;
        };
        if c.leases == 0 {
            self.close(cid, reason);
        } else {
            let kid = c.key;
            self.update(cid, |c| {
                c.state = State::Draining;
                c.drain_reason = reason;
            });
            self.mark_dirty(kid);
        }
    }

    /// The core closes a connection: the caller is told, and the core forgets it.
    fn close(&mut self, cid: ConnId, reason: CloseReason) {
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
    fn forget_conn(&mut self, cid: ConnId) {
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

    /// Applies `f` to a connection, then brings its counts and list memberships in
    /// line with its new state. Every change of a connection goes through here.
    fn update(&mut self, cid: ConnId, f: impl FnOnce(&mut Conn)) {
        self.update_counting(cid, f, |_, _| {});
    }

    /// [`Pool::update`], also applying `g` to the counters of the connection's key
    /// (given the changed connection), in the same visit: [`Books::update`] with
    /// the key looked up.
    #[inline(always)]
    fn update_counting(
        &mut self,
        cid: ConnId,
        f: impl FnOnce(&mut Conn),
        g: impl Fn(&mut Stats, &Conn),
    ) -> Option<Place> {
        let kid = self.books.conns.get(cid)?.key;
        let k = self.keys.get_mut(kid).expect("a connection's key lives");
        self.books.update(k, cid, f, g).map(|(place, ())| place)
    }

    /// Bumps a counter of a key.
    fn count(&mut self, kid: KeyId, f: impl Fn(&mut Stats)) {
        if let Some(k) = self.keys.get_mut(kid) {
            f(&mut k.stats);
        }
    }

    // ----------------------------------------------------------------- timers

    /// The next instant something is due on a connection.
    fn conn_deadline(&self, c: &Conn) -> Option<Instant> {
        let cfg = &self.config;
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        match c.state {
            State::Connecting { deadline } | State::Checking { deadline } => at(deadline),
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

    fn arm_for_conn(&mut self, cid: ConnId) {
        let Some(c) = self.books.conns.get(cid) else {
            return;
        };
        if let Some(at) = self.conn_deadline(c) {
            self.arm(c.key, at);
        }
    }

    /// Makes sure the key's timer fires no later than `at`.
    fn arm(&mut self, kid: KeyId, at: Instant) {
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
    fn maintain(&mut self, kid: KeyId) {
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
    fn key_deadline(&self, k: &KeyState<K>) -> Option<Instant> {
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
                self.fail_connect(cid, Some(CloseReason::ConnectTimeout));
                return;
            }
            State::Checking { deadline } if deadline <= now => {
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
            let idle = self.keys.get(kid).map_or(0, |k| k.gauges.get(Class::Idle));
            if idle > cfg.min_idle_per_key {
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

    fn note_emptiness(&mut self, kid: KeyId) {
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
