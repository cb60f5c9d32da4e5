//! The pool: every connection and waiting request, by key, and every decision
//! about them.
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
//! capacity or room to open, and never waits for an unrelated event. A
//! half-open circuit's probe has no waiter to hold its place, and other keys'
//! requests can keep every connection busy for ever: a connection given back
//! while a probe is blocked goes to the probe.
//!
//! The hot path (an idle connection taken and returned, a stream slot taken and
//! returned) skips all of that: it moves one connection between two intrusive lists
//! and adjusts counters, with no allocation and no timer work.
//!
//! ## Where things are
//!
//! This module holds [`Pool`]: its fields, its public methods and the helpers
//! they share. The first three modules below hold the records the pool keeps
//! and the bookkeeping on them, each importing only the ones before it; the
//! decisions are methods of [`Pool`] in the modules after them, which import
//! this module and the records but never each other. So a module's imports
//! never lead back to it.
//!
//! - `conn`: a connection's record, and where its state puts it.
//! - `key`: a key's record, and a waiting request's.
//! - `accounting`: the bookkeeping of a grant or a release: the hot path.
//! - `waiters`: requests joining and leaving a key's queue.
//! - `policy`: settling keys: granting, opening, evicting, backing off, the
//!   circuit, draining and closing.
//! - `timers`: deadlines, and what happens when they pass.
//! - `invariants`: [`Pool::check_invariants`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;

use crate::action::{Action, CloseReason, RejectReason};
use crate::config::{ConfigError, PoolConfig};
use crate::error::{EventError, HandleKind};
use crate::event::{
    Acquire, AcquireOptions, Attempt, ConnectFailure, Connected, Mode, Release, Shutdown,
};
use crate::id::{Arena, ConnId, Handle, KeyId, Lease, StreamLease, WaiterId};
use crate::retry::RetryLedger;
use crate::rng::Rng;
use crate::stats::Stats;
use crate::time::Instant;
use crate::timer::Timers;

mod accounting;
mod conn;
mod invariants;
mod key;
mod policy;
mod timers;
mod waiters;

use accounting::{Books, Granted};
use conn::{Class, Conn, Place, Slot, State, NO_LEASE};
use key::{Circuit, KeyState, Learned, Waiter};

pub use conn::{ConnInfo, ConnState};

/// A broken invariant, found by [`Pool::check_invariants`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvariantViolation(String);

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pool invariant violated: {}", self.0)
    }
}

impl std::error::Error for InvariantViolation {}

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

/// The sans-IO connection pool: every connection and waiting request, by key,
/// and every decision about them.
///
/// `K` is the pool key: anything hashable that tells apart connections that
/// must never be shared (the client's `PoolKey` is scheme, host, port and TLS
/// identity, and a WebSocket's target).
///
/// A `Pool` does no I/O, reads no clock and starts no task. Its caller (an
/// adapter, a test, the simulator) gives it *inputs*, each with the current time,
/// and carries out the *outputs* it asks for; *getters* read its state. What
/// follows is the contract between the two; the [crate documentation](crate)
/// shows it in code.
///
/// # Methods
///
/// **Inputs** take `&mut self` and `now`, change the pool's state, and return
/// at once. They are the only methods that make decisions.
///
/// - *Requests*, from the application: [`acquire`](Pool::acquire),
///   [`cancel`](Pool::cancel), [`release`](Pool::release) and
///   [`shutdown`](Pool::shutdown).
/// - *Events*, from the connections, their transports and the clock:
///   [`handle_connected`](Pool::handle_connected),
///   [`handle_connect_failed`](Pool::handle_connect_failed) and
///   [`handle_connect_error`](Pool::handle_connect_error),
///   [`handle_peer_max_streams`](Pool::handle_peer_max_streams),
///   [`handle_going_away`](Pool::handle_going_away),
///   [`handle_transport_closed`](Pool::handle_transport_closed),
///   [`handle_health_ok`](Pool::handle_health_ok),
///   [`handle_suspect`](Pool::handle_suspect) and
///   [`handle_timeout`](Pool::handle_timeout).
///
/// **Outputs** say what the inputs decided: [`poll_action`](Pool::poll_action)
/// hands out the next [`Action`] to carry out, and
/// [`poll_timeout`](Pool::poll_timeout) the instant at which to call
/// `handle_timeout`.
///
/// **Getters** take `&self` and change nothing: [`key`](Pool::key),
/// [`waiter_key`](Pool::waiter_key), [`conn_info`](Pool::conn_info),
/// [`is_leased`](Pool::is_leased), [`stats`](Pool::stats),
/// [`key_stats`](Pool::key_stats), [`has_capacity`](Pool::has_capacity), [`keys`](Pool::keys),
/// [`is_shut_down`](Pool::is_shut_down), [`now`](Pool::now),
/// [`config`](Pool::config) and [`check_invariants`](Pool::check_invariants).
///
/// # The run loop
///
/// **After every input, drain [`poll_action`](Pool::poll_action) until it
/// returns `None`, then read [`poll_timeout`](Pool::poll_timeout).** Actions are
/// the only way a decision leaves the core, in the order it was made, and the
/// deadline is the only way the core asks to be woken: an action left in the
/// queue is a connection never opened or closed or a request never answered, and
/// a deadline not kept is a timeout that never happens. So a caller's loop is:
///
/// 1. Wait for the first of: a request from the application, an event from a
///    connection, or the instant `poll_timeout` last returned.
/// 2. Read the clock, and give the core that one input with the time as `now`
///    ([`handle_timeout`](Pool::handle_timeout) when the deadline came).
/// 3. Drain `poll_action` until it returns `None`, carrying out each action in
///    order. An input given meanwhile (a connect that fails at once, say) is
///    fine: its actions queue behind the ones not yet drained.
/// 4. Read `poll_timeout`, and set the one timer to it: no timer if it is
///    `None`, at once if it has passed. Go back to 1.
///
/// # Time
///
/// `now` must not go backwards from one input to the next: take it from a
/// monotonic clock (the adapters count from a `std::time::Instant` taken at
/// start). The core does not rely on it: every input reads its `now` as the later
/// of it and the latest time seen, which [`now`](Pool::now) returns, and does
/// everything at that time (a waiter's arrival and deadline, a connection's idle
/// time, the end of a backoff). So an earlier `now` is read as the latest time
/// seen, and the core's clock never runs backwards.
///
/// Only [`handle_timeout`](Pool::handle_timeout) makes what is due happen.
/// Another input whose `now` is past `poll_timeout` moves the clock, but what
/// was due stays pending until `handle_timeout` is called, so a late timer
/// delays a timeout and never loses it. Calling `handle_timeout` early, or
/// more often than asked, is harmless: only what is due by its `now` happens.
///
/// # Stale and unknown handles
///
/// Handles ([`ConnId`], [`WaiterId`], [`Lease`]) can outlive what they name: a
/// connection the core closed, a request already answered, a lease already
/// released. An input that names one of those, or a handle never issued, is
/// refused with [`EventError::Stale`]; an event that does not apply to the
/// connection's state (connected twice, a health check answered that was never
/// asked for) with [`EventError::WrongState`]. Either way nothing changes, no
/// state, counter, action or deadline, but for the latest time seen, which the
/// input's `now` still moves forward. Such inputs are the races a caller cannot
/// avoid (the core closed a connection on a timeout while the caller was
/// reporting it up): the error is for logging, never a reason to panic. Getters
/// answer `None`, or `false`, for a handle that names nothing.
///
/// # Exhaustive outputs, open reasons
///
/// [`Action`] and [`Acquire`] are exhaustive on purpose: a `match` on them needs
/// no wildcard arm, so a new action or answer fails to compile in every adapter
/// rather than fall into a `_ => {}` and be dropped, a connection never opened or
/// a request never answered. [`RejectReason`] and [`CloseReason`] are
/// `#[non_exhaustive]`: a caller maps a reason to its own errors and metrics, and
/// mapping one it does not know to a general fallback (a generic error, a plain
/// close) is always safe, so reasons can be added without breaking adapters.
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
    /// Recent requests and retries, for the retry budget.
    retries: RetryLedger,
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

/// Making a pool.
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
            retries: RetryLedger::new(&config.retry_budget),
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
}

/// Inputs: the application's requests. Like every input, each takes `now`, and
/// is followed by draining the actions (see [the run loop](Pool#the-run-loop)).
impl<K: Hash + Eq + Clone> Pool<K> {
    /// Asks for capacity on `key`: a lease now if some is free, otherwise a place in
    /// the key's queue (answered later by [`Action::Grant`] or [`Action::Reject`]).
    ///
    /// Free capacity is granted whenever nobody is queued ahead on the key, even
    /// while its circuit is open (the circuit is about new connections). Otherwise
    /// the request is refused at once, with the reason, when the pool is shutting
    /// down, the key's circuit is open or half-open, its queue is full, or its
    /// deadline has already passed.
    ///
    /// [`AcquireOptions::attempt`] says which attempt of its request this is: a
    /// [`Attempt::Retry`] is refused with [`RejectReason::RetryBudget`] when the
    /// [retry budget](crate::RetryBudget) is spent, and spends nothing when it
    /// is refused for another reason.
    pub fn acquire(
        &mut self,
        key: &K,
        now: Instant,
        options: AcquireOptions,
    ) -> Result<Acquire, RejectReason> {
        let now = self.tick(now);
        match options.attempt {
            Attempt::First => self.retries.deposit(now),
            Attempt::Again => {}
            Attempt::Retry => return self.acquire_retry(key, now, options),
        }
        self.acquire_now(key, now, options)
    }

    /// [`Pool::acquire`] for a retry: the budget first, then as any request.
    #[cold]
    fn acquire_retry(
        &mut self,
        key: &K,
        now: Instant,
        options: AcquireOptions,
    ) -> Result<Acquire, RejectReason> {
        if self.shutdown.is_some() {
            return self.acquire_now(key, now, options);
        }
        let kid = self.lookup_or_insert(key);
        if !self.retries.withdraw(now) {
            let reason = self.refuse(Some(kid), RejectReason::RetryBudget);
            // A key created only to refuse a request must still be forgotten.
            self.settle_key(kid);
            return Err(reason);
        }
        let acquired = self.acquire_now(key, now, options);
        match acquired {
            Ok(_) => self.count(kid, |s| s.retries += 1),
            Err(_) => self.retries.refund(),
        }
        acquired
    }

    /// [`Pool::acquire`] once the retry budget has had its say.
    fn acquire_now(
        &mut self,
        key: &K,
        now: Instant,
        options: AcquireOptions,
    ) -> Result<Acquire, RejectReason> {
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
                let warm = k.min_idle > 0;
                let lease = books.grant(k, conn, Granted::AtOnce, max_requests);
                if warm {
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
            // A key blocked at the global limit may need this connection more
            // (see below): the slow path looks.
            if how == Release::Reuse && conn.leases <= conn.capacity && self.blocked.is_empty() {
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
                if how == Release::Close && !c.state.is_draining() {
                    c.state = c.state.draining();
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
        if head.is_some() && place.is_some_and(|p| p.is(Class::Idle)) && self.probe_blocked() {
            // A half-open circuit's probe is blocked at the global limit. Handed
            // to its own key's next request, this connection (like every other,
            // while their keys have requests waiting) would never go idle for
            // the probe to take, and the circuit would refuse requests for
            // ever: it goes to the probe instead, and its key queues for room.
            self.close(cid, CloseReason::Evicted);
            self.open_blocked_probe();
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
                (state, _, Shutdown::Graceful) if state.is_draining() => {
                    self.update(cid, |c| c.drain_reason = CloseReason::Shutdown);
                }
                (_, 0, _) | (_, _, Shutdown::Immediate) => self.close(cid, CloseReason::Shutdown),
                _ => self.drain(cid, CloseReason::Shutdown),
            }
        }
        self.settle();
    }

    /// Sets `key`'s minimum of idle connections at run time, in place of
    /// [`PoolConfig::min_idle_per_key`], or with `None` goes back to it. What a
    /// caller sizing each key (with a [`Sizer`](crate::Sizer)) gives the pool.
    ///
    /// The minimum is kept exactly as the configured one is: the key opens
    /// toward it (within its limits, the global limit, its backoff and its
    /// circuit), and the idle timeout closes only the idle connections above
    /// it; lowering it lets those past their idle timeout close now. It is
    /// clamped to `max_connections_per_key` and `max_connections`, and the
    /// minimum in force is returned. A key with a minimum set is remembered
    /// while it holds nothing, until `None` clears the minimum. After
    /// [`Pool::shutdown`] this changes nothing.
    ///
    /// ```
    /// use muxpool_core::{Action, Instant, Pool, PoolConfig};
    ///
    /// let mut pool: Pool<&str> = Pool::new(PoolConfig::default()).unwrap();
    /// let now = Instant::ZERO;
    /// assert_eq!(pool.set_min_idle(&"origin", now, Some(2)), 2);
    /// // The key's protocol is learned from one connection before more open.
    /// assert!(matches!(pool.poll_action(), Some(Action::Open { .. })));
    /// assert_eq!(pool.min_idle(&"origin"), 2);
    /// assert_eq!(pool.set_min_idle(&"origin", now, None), 0);
    /// ```
    pub fn set_min_idle(&mut self, key: &K, now: Instant, min: Option<u32>) -> u32 {
        self.tick(now);
        let configured = self.config.min_idle_per_key;
        if self.shutdown.is_some() {
            return self.min_idle(key);
        }
        let kid = match min {
            Some(_) => self.lookup_or_insert(key),
            None => match self.index.get(key) {
                Some(&kid) => kid,
                None => return configured,
            },
        };
        let limit = self
            .config
            .max_connections_per_key
            .min(self.config.max_connections);
        let k = self.keys.get_mut(kid).expect("indexed keys are live");
        k.min_idle = min.map_or(configured, |m| m.min(limit));
        k.min_idle_set = min.is_some();
        let in_force = k.min_idle;
        self.note_emptiness(kid);
        // Applies at once what the new minimum makes due (an idle connection
        // past its timeout no longer kept), re-arms the key and drives it.
        self.maintain(kid);
        self.settle();
        in_force
    }
}

/// Inputs: events, from the connections, their transports and the clock. An
/// event that names a connection the core no longer holds, or that does not
/// apply to its state, is refused with an [`EventError`] and changes nothing
/// (see [stale and unknown handles](Pool#stale-and-unknown-handles)).
impl<K: Hash + Eq + Clone> Pool<K> {
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
        k.failing_since = None;
        k.last_failure = None;
        k.backoff_until = None;
        k.circuit = Circuit::Closed;
        self.arm_for_conn(conn);
        self.settle_key(kid);
        Ok(())
    }

    /// Reports that a connect failed, and may succeed if tried again
    /// ([`ConnectFailure::Transient`]): see
    /// [`handle_connect_error`](Pool::handle_connect_error).
    pub fn handle_connect_failed(&mut self, conn: ConnId, now: Instant) -> Result<(), EventError> {
        self.handle_connect_error(conn, now, ConnectFailure::Transient)
    }

    /// Reports that a connect failed, and whether the next may succeed. It
    /// counts toward the backoff and the circuit, unless the connect was made
    /// together with one that failed already (opened before that failure). A
    /// transient failure fails the requests of the key that cannot wait for
    /// the next connect (due before the backoff ends, or before the probe of
    /// the circuit it opened); a permanent one fails them all.
    pub fn handle_connect_error(
        &mut self,
        conn: ConnId,
        now: Instant,
        failure: ConnectFailure,
    ) -> Result<(), EventError> {
        self.tick(now);
        let c = self.live(conn)?;
        if !matches!(c.state, State::Connecting { .. }) {
            return Err(EventError::WrongState);
        }
        self.fail_connect(conn, None, failure);
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
    /// no new lease; closed when the last one is back, or at the deadline of a
    /// health check still out on it, unanswered.
    pub fn handle_going_away(&mut self, conn: ConnId, now: Instant) -> Result<(), EventError> {
        self.tick(now);
        let c = self.live(conn)?;
        match c.state {
            State::Connecting { .. } | State::Closed => return Err(EventError::WrongState),
            State::Draining | State::DrainingChecked { .. } => return Ok(()),
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
            State::Connecting { .. } => self.fail_connect(conn, None, ConnectFailure::Transient),
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
    /// answered: the connection is alive and may be leased again. A
    /// connection that started draining while its check was out (the peer went
    /// away, a graceful shutdown) takes the answer too, and drains on; had the
    /// answer not come, it would have closed at the check's deadline, leases
    /// out or not. With no check out, the answer is refused with
    /// [`EventError::WrongState`].
    pub fn handle_health_ok(&mut self, conn: ConnId, now: Instant) -> Result<(), EventError> {
        let now = self.tick(now);
        let c = self.live(conn)?;
        let answered = match c.state {
            State::Checking { .. } => State::Ready,
            // Suspected, then draining: the answer clears the check, and the
            // connection drains on.
            State::DrainingChecked { .. } => State::Draining,
            _ => return Err(EventError::WrongState),
        };
        let kid = c.key;
        self.update(conn, |c| {
            c.state = answered;
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
            State::Ready
            | State::Checking { .. }
            | State::Draining
            | State::DrainingChecked { .. } => return Ok(()),
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
}

/// Outputs: what the inputs decided. Drain [`poll_action`](Pool::poll_action)
/// after every input, then read [`poll_timeout`](Pool::poll_timeout) (see [the
/// run loop](Pool#the-run-loop)).
impl<K: Hash + Eq + Clone> Pool<K> {
    /// The next action to carry out, in the order the core decided them;
    /// `None` once every action has been handed out.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next instant at which [`Pool::handle_timeout`] must be called;
    /// `None` while nothing is pending. It may have passed already (then call it
    /// at once), and only an input changes it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }
}

/// Getters: the pool's state, read without changing it.
impl<K: Hash + Eq + Clone> Pool<K> {
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

    /// Whether `key` can take a request now without a new connection: it has an
    /// idle connection or a free stream on a multiplexed one, and no request
    /// waits ahead. What a [`Balancer`](crate::Balancer) asks of each endpoint
    /// it weighs ([`Capacity`](crate::Capacity)); one lookup of the key.
    pub fn has_capacity(&self, key: &K) -> bool {
        self.index.get(key).is_some_and(|&kid| {
            self.keys
                .get(kid)
                .is_some_and(|k| k.waiters.is_empty() && !k.free.is_empty())
        })
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

    /// `key`'s minimum of idle connections in force: the one set with
    /// [`Pool::set_min_idle`], or the configured one.
    pub fn min_idle(&self, key: &K) -> u32 {
        self.index
            .get(key)
            .and_then(|&kid| self.keys.get(kid))
            .map_or(self.config.min_idle_per_key, |k| k.min_idle)
    }

    /// The configuration the pool runs with.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }
}

/// What the inputs and the decisions share: the clock, looking up a key or a
/// live connection, and changing a connection or a key's counters.
impl<K: Hash + Eq + Clone> Pool<K> {
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
        let kid = self
            .keys
            .insert(KeyState::new(key.clone(), self.config.min_idle_per_key));
        self.index.insert(key, kid);
        kid
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{Acquire, AcquireOptions, Action, Connected, Instant, Pool, PoolConfig, Release};

    /// Every input, not only `handle_timeout`, reads an earlier `now` as the
    /// latest time seen, and does what it does at that time.
    #[test]
    fn an_earlier_now_is_read_as_the_latest_seen() {
        let config = PoolConfig::default();
        let mut pool: Pool<&str> = Pool::new(config.clone()).unwrap();
        let late = Instant::from_millis(10_000);
        let early = Instant::from_millis(1);
        pool.handle_timeout(late);

        let waiter = match pool.acquire(&"k", early, AcquireOptions::default()) {
            Ok(Acquire::Queued(waiter)) => waiter,
            other => panic!("nothing is open, so the request waits: {other:?}"),
        };
        assert_eq!(pool.now(), late);
        // The request waits, and its connect runs, from the latest time seen.
        let first_due = config.acquire_timeout.min(config.connect_timeout);
        assert_eq!(pool.poll_timeout(), Some(late + first_due));
        let conn = match pool.poll_action() {
            Some(Action::Open { conn }) => conn,
            other => panic!("expected an open, got {other:?}"),
        };

        pool.handle_connected(conn, early, Connected::http1())
            .unwrap();
        let lease = match pool.poll_action() {
            Some(Action::Grant { waiter: w, lease }) if w == waiter => lease,
            other => panic!("expected the grant, got {other:?}"),
        };
        // It arrived and was granted at the same latest time: it waited for nothing.
        assert_eq!(pool.stats().wait_time, Duration::ZERO);

        pool.release(lease, early, Release::Reuse).unwrap();
        assert_eq!(pool.poll_action(), None);
        assert_eq!(pool.now(), late);
        pool.check_invariants().unwrap();
    }
}
