//! What is behind the pool's lock: the core, the connections it names, the
//! requests waiting on it.
//!
//! Every input to the core is followed by [`State::drain`], which carries out
//! the actions the core queued while the lock is held (granting wakes the
//! waiter, closing takes the transport out of its slot) and collects in
//! [`Effects`] what must happen once the lock is released: wake tasks, spawn
//! connects, drop sockets, wake or start the timer task. This module knows no
//! runtime: running the effects is the pool's (`super`).

use std::collections::HashMap;
use std::sync::Arc;
use std::task::Waker;

use bytes::BytesMut;
use muxpool_core::{
    Action, CloseReason, ConnId, Instant, Lease, Pool, RejectReason, Release, WaiterId,
};

use crate::conn::h1::H1Conn;
use crate::conn::h2::{H2Conn, PingRequest};
use crate::conn::ws::{Pinger, WsConn};
use crate::dial::PoolKey;
use crate::error::{Error, Step};
use crate::metrics::{Latencies, Metrics, Recorder, Sample};

use super::deadlines::{earliest, Deadlines};
use super::services::Services;

/// How many read buffers of finished exchanges the pool keeps for the next
/// ones, and the largest it keeps. A request that follows another (the usual
/// pattern: a task sends its next request as soon as it has read a response)
/// reads into the buffer the last one left, already in the cache, instead of
/// allocating one; idle connections still hold no buffer, and the pool no more
/// than these few.
pub(crate) const SPARE_BUFFERS: usize = 4;
pub(crate) const SPARE_BUFFER_CAPACITY: usize = 16 * 1024;

/// What the client holds for one connection the core knows.
pub(crate) enum Slot {
    /// A connect task is running for this key.
    Connecting(PoolKey),
    /// Ready and not leased: the transport waits here.
    Idle(H1Conn),
    /// Leased: the transport is with the lease holder.
    Leased,
    /// An HTTP/2 connection: shared by its leases, each a stream.
    H2(H2Conn),
    /// A WebSocket, idle: its driver task owns the socket.
    Ws(WsConn),
}

/// The connection a granted lease is used through.
pub(crate) enum LeasedConn {
    /// An HTTP/1.1 connection, exclusively.
    H1(H1Conn),
    /// A stream on an HTTP/2 connection, sent on this handle of it; and
    /// whether the connection carried a stream before.
    H2(h2::client::SendRequest<bytes::Bytes>, bool),
    /// A WebSocket, exclusively.
    Ws(WsConn),
}

/// Where a waiting request stands.
pub(crate) enum Waiting {
    Queued(Option<Waker>),
    Granted(Lease),
    Rejected(RejectReason),
}

/// What must happen once the lock is released: usually nothing, so one list
/// that stays empty (and allocates nothing) rather than one per kind.
#[derive(Default)]
#[must_use]
pub(crate) struct Effects {
    pub(crate) list: Vec<Effect>,
    pub(crate) start_timer: bool,
}

/// One thing to do after the lock, in the order of [`Effect::rank`].
pub(crate) enum Effect {
    /// A connection the core closed: dropped (closing its transport) first.
    Drop(Slot),
    /// A health-check PING for an HTTP/2 connection's driver.
    Ping(Arc<PingRequest>),
    /// A health-check ping for a pooled WebSocket.
    WsPing(Pinger),
    /// A task to wake: a waiter answered, the timer, a shutdown finished.
    Wake(Waker),
    /// A connection to open, in a task of its own.
    Open(ConnId, PoolKey),
}

impl Effect {
    /// Closes before pings, pings before wakes, wakes before new connects.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            Effect::Drop(_) => 0,
            Effect::Ping(_) => 1,
            Effect::WsPing(_) => 2,
            Effect::Wake(_) => 3,
            Effect::Open(..) => 4,
        }
    }
}

/// Everything behind the lock.
pub(crate) struct State {
    pub(crate) pool: Pool<PoolKey>,
    pub(crate) conns: Vec<Option<(ConnId, Slot)>>,
    /// Keyed by the full handle: the core reuses a waiter's slot as soon as it
    /// answers it, possibly before the waiting task has collected the answer.
    pub(crate) waiters: HashMap<WaiterId, Waiting>,
    /// The last connect failure per key, given to the requests it fails.
    pub(crate) connect_errors: HashMap<PoolKey, Error>,
    pub(crate) timer: TimerState,
    /// Tasks waiting for a shutdown to finish.
    pub(crate) shutdown_waiters: Vec<Waker>,
    /// The last client handle is gone.
    pub(crate) closed: bool,
    /// Empty read buffers for the next HTTP/1.1 exchanges.
    pub(crate) spare_buffers: Vec<BytesMut>,
    /// The deadlines of requests in flight (the timer task expires them).
    pub(crate) deadlines: Deadlines,
    /// The latency histograms, per key and in total.
    pub(crate) latencies: Recorder,
    /// The span of each connection that has one (tracing was on when it
    /// opened), indexed as `conns`: a close is recorded in it.
    pub(crate) spans: Vec<Option<(ConnId, tracing::Span)>>,
    /// Each connection that came up, indexed as `conns`: how long it lived
    /// is recorded when it goes.
    pub(crate) lived: Vec<Option<(ConnId, Lived)>>,
    /// The OpenTelemetry histogram connections record into as they go, once
    /// registered.
    #[cfg(feature = "opentelemetry")]
    pub(crate) otel_connections: Option<crate::metrics::otel::ConnectionDurations>,
    /// The balancers of the configured services (none, usually).
    pub(crate) services: Services,
}

/// A connection that came up: when, under which key, and for the
/// OpenTelemetry histogram, speaking which HTTP version (a WebSocket's is
/// HTTP/1.1, which it upgraded).
pub(crate) struct Lived {
    pub(crate) since: Instant,
    pub(crate) key: PoolKey,
    #[cfg(feature = "opentelemetry")]
    pub(crate) version: http::Version,
}

#[derive(Default)]
pub(crate) struct TimerState {
    pub(crate) running: bool,
    pub(crate) armed: Option<Instant>,
    pub(crate) waker: Option<Waker>,
}

/// Keep at most this many remembered connect failures.
const MAX_CONNECT_ERRORS: usize = 1024;

/// The table of waiting requests, once empty, is given back down to room for
/// this many if it grew past [`WAITERS_SHRINK_ABOVE`]: a burst (10,000 waiting
/// requests take about 1 MB) does not stay allocated for the client's life.
const WAITERS_KEPT: usize = 64;

/// See [`WAITERS_KEPT`]; the gap between the two keeps a queue that comes and
/// goes in the hundreds from reallocating each time it empties.
const WAITERS_SHRINK_ABOVE: usize = 1024;

pub(crate) fn slot_mut<I: Copy + PartialEq, T>(
    table: &mut [Option<(I, T)>],
    index: u32,
    id: I,
) -> Option<&mut T> {
    match table.get_mut(index as usize) {
        Some(Some((held, value))) if *held == id => Some(value),
        _ => None,
    }
}

pub(crate) fn put<I, T>(table: &mut Vec<Option<(I, T)>>, index: u32, id: I, value: T) {
    let index = index as usize;
    if table.len() <= index {
        table.resize_with(index + 1, || None);
    }
    table[index] = Some((id, value));
}

pub(crate) fn take<I: Copy + PartialEq, T>(
    table: &mut [Option<(I, T)>],
    index: u32,
    id: I,
) -> Option<T> {
    let entry = table.get_mut(index as usize)?;
    match entry {
        Some((held, _)) if *held == id => entry.take().map(|(_, v)| v),
        _ => None,
    }
}

impl State {
    /// The state of a new pool around `pool`.
    pub(crate) fn new(pool: Pool<PoolKey>, services: Services) -> State {
        State {
            pool,
            conns: Vec::new(),
            waiters: HashMap::new(),
            connect_errors: HashMap::new(),
            timer: TimerState::default(),
            shutdown_waiters: Vec::new(),
            closed: false,
            spare_buffers: Vec::new(),
            deadlines: Deadlines::default(),
            latencies: Recorder::default(),
            spans: Vec::new(),
            lived: Vec::new(),
            #[cfg(feature = "opentelemetry")]
            otel_connections: None,
            services,
        }
    }

    /// Records how long `conn` lived, if it came up, at `now`: called
    /// wherever the pool learns a connection is gone (the core closed it, or
    /// its transport closed under it).
    pub(crate) fn ended(&mut self, conn: ConnId, now: Instant) {
        let Some(lived) = take(&mut self.lived, conn.index(), conn) else {
            return;
        };
        let took =
            std::time::Duration::from_nanos(now.as_nanos().saturating_sub(lived.since.as_nanos()));
        self.record(&lived.key, |l| l.connection.record(took));
        #[cfg(feature = "opentelemetry")]
        if let Some(otel) = &self.otel_connections {
            otel.record(&lived.key, lived.version, took);
        }
    }

    /// Records latencies of `key` (and the totals) with `f`.
    #[inline]
    pub(crate) fn record(&mut self, key: &PoolKey, f: impl Fn(&mut Latencies)) {
        let (pool, services) = (&self.pool, &self.services);
        self.latencies.record(
            key,
            |k| pool.key_stats(k).is_some() || services.is_service(k),
            f,
        );
    }

    /// Records the figures of a request to `key`, from `start` (the call)
    /// to `end` (its head, or its failure): its duration, and when a
    /// checkout was granted (`granted`: asked, granted) its wait and, if it
    /// was `answered`, its time to the head.
    pub(crate) fn record_request(
        &mut self,
        key: &PoolKey,
        start: Instant,
        granted: Option<(Instant, Instant)>,
        end: Instant,
        answered: bool,
    ) {
        let since = |from: Instant, to: Instant| {
            Sample::from_nanos(to.as_nanos().saturating_sub(from.as_nanos()))
        };
        let request = since(start, end);
        let granted =
            granted.map(|(asked, at)| (since(asked, at), answered.then(|| since(at, end))));
        self.record(key, |l| {
            l.request.add(request);
            if let Some((wait, head)) = granted {
                l.wait.add(wait);
                if let Some(head) = head {
                    l.response_head.add(head);
                }
            }
        });
    }

    /// The pool's figures, in total and per key the core knows.
    pub(crate) fn metrics(&self) -> Metrics {
        let pool = &self.pool;
        let mut metrics = self.latencies.snapshot(
            pool.stats(),
            pool.keys()
                .map(|k| (k, pool.key_stats(k).unwrap_or_default())),
        );
        metrics.services = self
            .services
            .snapshot(pool, |k| self.latencies.get(k).cloned());
        metrics
    }

    /// Forgets a waiting request, giving back the table's room once it empties
    /// after a burst.
    pub(crate) fn take_waiter(&mut self, waiter: WaiterId) -> Option<Waiting> {
        let taken = self.waiters.remove(&waiter);
        if self.waiters.is_empty() && self.waiters.capacity() > WAITERS_SHRINK_ABOVE {
            self.waiters.shrink_to(WAITERS_KEPT);
        }
        taken
    }

    /// Carries out the core's queued actions; returns what must happen after the
    /// lock is released.
    pub(crate) fn drain(&mut self) -> Effects {
        let mut fx = Effects::default();
        while let Some(action) = self.pool.poll_action() {
            match action {
                Action::Open { conn } => {
                    if let Some(key) = self.pool.key(conn).cloned() {
                        put(
                            &mut self.conns,
                            conn.index(),
                            conn,
                            Slot::Connecting(key.clone()),
                        );
                        crate::trace::opening(conn, &key);
                        fx.list.push(Effect::Open(conn, key));
                    }
                }
                Action::Close { conn, reason } => {
                    let span = take(&mut self.spans, conn.index(), conn);
                    crate::trace::closed(conn, reason, span.as_ref());
                    self.ended(conn, self.pool.now());
                    match take(&mut self.conns, conn.index(), conn) {
                        Some(slot @ (Slot::Idle(_) | Slot::H2(_) | Slot::Ws(_))) => {
                            fx.list.push(Effect::Drop(slot))
                        }
                        Some(Slot::Connecting(key)) if reason == CloseReason::ConnectTimeout => {
                            // The core's deadline came first; the connect task
                            // will find its connection forgotten.
                            let after = self.pool.config().connect_timeout;
                            self.remember_failure(
                                key,
                                Error::timed_out(Step::Connect, Some(after)),
                            );
                        }
                        _ => {}
                    }
                }
                Action::Grant { waiter, lease } => {
                    // A WebSocket is its holder's from the grant on: what its
                    // server sends before the holder picks it up is kept for
                    // the holder, not taken for a message to nobody.
                    let conn = lease.conn();
                    if let Some(Slot::Ws(c)) = slot_mut(&mut self.conns, conn.index(), conn) {
                        c.lease();
                    }
                    self.answer(waiter, Waiting::Granted(lease), &mut fx);
                }
                Action::Reject { waiter, reason } => {
                    self.answer(waiter, Waiting::Rejected(reason), &mut fx);
                }
                Action::HealthCheck { conn } => {
                    // Only HTTP/2 connections and WebSockets declare health
                    // checks; on any other the core's deadline closes the
                    // connection.
                    match slot_mut(&mut self.conns, conn.index(), conn) {
                        Some(Slot::H2(c)) => fx.list.push(Effect::Ping(Arc::clone(&c.ping))),
                        Some(Slot::Ws(c)) => fx.list.push(Effect::WsPing(c.pinger())),
                        _ => {}
                    }
                }
            }
        }
        self.after_inputs(&mut fx);
        fx
    }

    /// The timer and shutdown bookkeeping every input ends with.
    fn after_inputs(&mut self, fx: &mut Effects) {
        if let Some(next) = self.next_deadline() {
            self.tell_timer(next, fx);
        }
        if !self.shutdown_waiters.is_empty() && self.is_drained() {
            fx.list
                .extend(self.shutdown_waiters.drain(..).map(Effect::Wake));
        }
    }

    /// Starts the timer task, or wakes it, if it must look at `next` (a
    /// deadline of the core's or a request's) and would not otherwise.
    pub(crate) fn tell_timer(&mut self, next: Instant, fx: &mut Effects) {
        if !self.timer.running && !self.closed {
            self.timer.running = true;
            fx.start_timer = true;
        } else if self.timer.armed.is_none_or(|armed| next < armed) {
            if let Some(w) = self.timer.waker.take() {
                fx.list.push(Effect::Wake(w));
            }
        }
    }

    /// When the timer task must next look: the core's next deadline, the
    /// earliest a request's could be, or a balancer's, whichever comes
    /// first.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        earliest(
            earliest(self.pool.poll_timeout(), self.deadlines.next()),
            self.services.wake,
        )
    }

    pub(crate) fn is_drained(&self) -> bool {
        self.pool.is_shut_down() && self.pool.stats().open == 0
    }

    pub(crate) fn remember_failure(&mut self, key: PoolKey, error: Error) {
        if self.connect_errors.len() >= MAX_CONNECT_ERRORS {
            self.connect_errors.clear();
        }
        let error = error.at(&key);
        self.connect_errors.insert(key, error);
    }

    /// The error for a request to `key` refused for `reason`, naming its
    /// origin, with the last connect failure as its cause when connects are
    /// why.
    pub(crate) fn rejection(&self, key: &PoolKey, reason: RejectReason) -> Error {
        self.rejection_cause(key, reason).at(key)
    }

    fn rejection_cause(&self, key: &PoolKey, reason: RejectReason) -> Error {
        if reason == RejectReason::Timeout {
            // Not a pool with no room: the connection opened for the request
            // was still connecting or in its TLS or HTTP/2 handshake, or the
            // origin's connects kept failing until the deadline.
            if self.pool.key_stats(key).is_some_and(|s| s.connecting > 0) {
                return Error::timed_out(Step::Checkout, None).with_message(
                    "a connection was still opening (connect, TLS or HTTP/2 handshake)",
                );
            }
            if let Some(cause) = self.connect_errors.get(key) {
                return Error::timed_out(Step::Checkout, None)
                    .with_message("its connects kept failing")
                    .with_source(cause.clone());
            }
        }
        let error = Error::rejected(reason);
        let cause = match reason {
            RejectReason::ConnectFailed | RejectReason::CircuitOpen => {
                self.connect_errors.get(key).cloned()
            }
            _ => None,
        };
        match cause {
            Some(cause) if reason == RejectReason::ConnectFailed => cause,
            Some(cause) => error.with_source(cause),
            None => error,
        }
    }

    fn answer(&mut self, waiter: WaiterId, answer: Waiting, fx: &mut Effects) {
        if let Some(w) = self.waiters.get_mut(&waiter) {
            if let Waiting::Queued(Some(waker)) = std::mem::replace(w, answer) {
                fx.list.push(Effect::Wake(waker));
            }
        }
    }

    /// How a lease granted and never picked up goes back: a WebSocket that
    /// received something meanwhile cannot wait in the pool.
    pub(crate) fn unclaimed(&mut self, lease: Lease) -> Release {
        let conn = lease.conn();
        match slot_mut(&mut self.conns, conn.index(), conn) {
            Some(Slot::Ws(c)) if !c.release() => Release::Close,
            _ => Release::Reuse,
        }
    }

    /// Takes the transport of a granted lease out of its slot (HTTP/1.1), or a
    /// handle on its connection (HTTP/2).
    pub(crate) fn check_out(&mut self, lease: Lease) -> Option<LeasedConn> {
        let conn = lease.conn();
        let slot = slot_mut(&mut self.conns, conn.index(), conn)?;
        match slot {
            Slot::H2(c) => {
                let reused = std::mem::replace(&mut c.used, true);
                return Some(LeasedConn::H2(c.send.clone(), reused));
            }
            Slot::Idle(_) | Slot::Ws(_) => {}
            _ => return None,
        }
        match std::mem::replace(slot, Slot::Leased) {
            Slot::Idle(mut c) => {
                c.buf = self.spare_buffers.pop().unwrap_or_default();
                Some(LeasedConn::H1(c))
            }
            Slot::Ws(c) => Some(LeasedConn::Ws(c)),
            _ => None,
        }
    }
}
