//! The pool as the client holds it: the core behind one short lock, and the
//! connections the core names.
//!
//! # Why one lock and no worker
//!
//! Every decision is the core's ([`muxpool_core::Pool`]); this module only carries
//! them out. A request locks the state, asks the core for capacity, and usually
//! leaves with an idle connection in well under a microsecond: no task, no
//! channel, no hop to another thread. Only what must happen in the background
//! runs in a task: a connect (one short-lived task per new connection) and the
//! pool's timers (one task per client, only while the core has a deadline).
//!
//! # The loop
//!
//! Every input to the core is followed by [`State::drain`], which carries out the
//! actions the core queued while the lock is held (granting wakes the waiter,
//! closing takes the transport out of its slot) and collects in [`Effects`] what
//! must happen after the lock is released: wake tasks, spawn connects, drop
//! sockets, wake or start the timer task. Waking and dropping sockets outside
//! the lock keeps it short and free of re-entrancy.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use muxpool_core::{
    Acquire, AcquireOptions, Action, CloseReason, ConnId, Connected, Instant, Lease, Pool,
    RejectReason, Release, Shutdown, Stats, WaiterId,
};

use crate::connect::{connect, Transport};
use crate::deadlines::{earliest, DeadlineId, Deadlines, Due};
use crate::error::{Error, ErrorKind};
use crate::http2::{H2Conn, PingRequest};
use crate::origin::Origin;
use crate::runtime::{Runtime, Timer};
use crate::settings::Settings;
use crate::tls::Negotiated;
use crate::websocket::{Pinger, WsConn};

/// An HTTP/1.1 connection while it is idle in the pool or leased to one request.
pub(crate) struct H1Conn {
    pub(crate) io: Transport,
    /// It has waited in the pool (after a request, or since it came up with no
    /// request to take it): the server may have closed it meanwhile.
    pub(crate) waited: bool,
    /// The read buffer: none while idle; at checkout, one the pool kept from a
    /// finished exchange, if it has one.
    pub(crate) buf: BytesMut,
}

/// How many read buffers of finished exchanges the pool keeps for the next
/// ones, and the largest it keeps. A request that follows another (the usual
/// pattern: a task sends its next request as soon as it has read a response)
/// reads into the buffer the last one left, already in the cache, instead of
/// allocating one; idle connections still hold no buffer, and the pool no more
/// than these few.
const SPARE_BUFFERS: usize = 4;
const SPARE_BUFFER_CAPACITY: usize = 16 * 1024;

/// What the client holds for one connection the core knows.
enum Slot {
    /// A connect task is running for this origin.
    Connecting(Origin),
    /// Ready and not leased: the transport waits here.
    Idle(H1Conn),
    /// Leased: the transport is with the lease holder.
    Leased,
    /// An HTTP/2 connection: shared by its leases, each a stream.
    H2(H2Conn),
    /// A WebSocket, idle: its driver task owns the socket.
    Ws(WsConn),
}

/// What a granted lease is used through.
pub(crate) enum Checked {
    /// An HTTP/1.1 connection, exclusively.
    H1(H1Conn),
    /// A stream on an HTTP/2 connection, sent on this handle of it.
    H2(h2::client::SendRequest<bytes::Bytes>),
    /// A WebSocket, exclusively.
    Ws(WsConn),
}

/// Where a waiting request stands.
enum Waiting {
    Queued(Option<Waker>),
    Granted(Lease),
    Rejected(RejectReason),
}

/// What must happen once the lock is released: usually nothing, so one list
/// that stays empty (and allocates nothing) rather than one per kind.
#[derive(Default)]
#[must_use]
pub(crate) struct Effects {
    list: Vec<Effect>,
    start_timer: bool,
}

/// One thing to do after the lock, in the order of [`Effect::rank`].
enum Effect {
    /// A connection the core closed: dropped (closing its transport) first.
    Drop(Slot),
    /// A health-check PING for an HTTP/2 connection's driver.
    Ping(Arc<PingRequest>),
    /// A health-check ping for a pooled WebSocket.
    WsPing(Pinger),
    /// A task to wake: a waiter answered, the timer, a shutdown finished.
    Wake(Waker),
    /// A connection to open, in a task of its own.
    Open(ConnId, Origin),
}

impl Effect {
    /// Closes before pings, pings before wakes, wakes before new connects.
    fn rank(&self) -> u8 {
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
    pool: Pool<Origin>,
    conns: Vec<Option<(ConnId, Slot)>>,
    /// Keyed by the full handle: the core reuses a waiter's slot as soon as it
    /// answers it, possibly before the waiting task has collected the answer.
    waiters: HashMap<WaiterId, Waiting>,
    /// The last connect failure per origin, given to the requests it fails.
    connect_errors: HashMap<Origin, Error>,
    timer: TimerState,
    /// Tasks waiting for a shutdown to finish.
    shutdown_waiters: Vec<Waker>,
    /// The last client handle is gone.
    closed: bool,
    /// Empty read buffers for the next HTTP/1.1 exchanges.
    spare_buffers: Vec<BytesMut>,
    /// The deadlines of requests in flight (the timer task expires them).
    deadlines: Deadlines,
}

#[derive(Default)]
struct TimerState {
    running: bool,
    armed: Option<Instant>,
    waker: Option<Waker>,
}

/// The client's shared state, for one runtime.
pub(crate) struct Inner<R: Runtime> {
    pub(crate) runtime: R,
    pub(crate) settings: Settings,
    epoch: std::time::Instant,
    state: Mutex<State>,
    me: Weak<Inner<R>>,
    /// The last request URI's scheme and authority, and its pool key.
    last_origin: Mutex<Option<LastOrigin>>,
}

/// A request URI's scheme and authority, and the pool key they make: most
/// requests go where the one before went, and comparing the two texts costs a
/// fraction of working the key out again (splitting the authority, reading the
/// port, lower-casing the host).
struct LastOrigin {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    origin: Origin,
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

fn slot_mut<I: Copy + PartialEq, T>(
    table: &mut [Option<(I, T)>],
    index: u32,
    id: I,
) -> Option<&mut T> {
    match table.get_mut(index as usize) {
        Some(Some((held, value))) if *held == id => Some(value),
        _ => None,
    }
}

fn put<I, T>(table: &mut Vec<Option<(I, T)>>, index: u32, id: I, value: T) {
    let index = index as usize;
    if table.len() <= index {
        table.resize_with(index + 1, || None);
    }
    table[index] = Some((id, value));
}

fn take<I: Copy + PartialEq, T>(table: &mut [Option<(I, T)>], index: u32, id: I) -> Option<T> {
    let entry = table.get_mut(index as usize)?;
    match entry {
        Some((held, _)) if *held == id => entry.take().map(|(_, v)| v),
        _ => None,
    }
}

impl State {
    /// Forgets a waiting request, giving back the table's room once it empties
    /// after a burst.
    fn take_waiter(&mut self, waiter: WaiterId) -> Option<Waiting> {
        let taken = self.waiters.remove(&waiter);
        if self.waiters.is_empty() && self.waiters.capacity() > WAITERS_SHRINK_ABOVE {
            self.waiters.shrink_to(WAITERS_KEPT);
        }
        taken
    }

    /// Carries out the core's queued actions; returns what must happen after the
    /// lock is released.
    fn drain(&mut self) -> Effects {
        let mut fx = Effects::default();
        while let Some(action) = self.pool.poll_action() {
            match action {
                Action::Open { conn } => {
                    if let Some(origin) = self.pool.key(conn).cloned() {
                        put(
                            &mut self.conns,
                            conn.index(),
                            conn,
                            Slot::Connecting(origin.clone()),
                        );
                        fx.list.push(Effect::Open(conn, origin));
                    }
                }
                Action::Close { conn, reason } => match take(&mut self.conns, conn.index(), conn) {
                    Some(slot @ (Slot::Idle(_) | Slot::H2(_) | Slot::Ws(_))) => {
                        fx.list.push(Effect::Drop(slot))
                    }
                    Some(Slot::Connecting(origin)) if reason == CloseReason::ConnectTimeout => {
                        // The core's deadline came first; the connect task will
                        // find its connection forgotten.
                        self.remember_failure(
                            origin,
                            Error::new(ErrorKind::Timeout).with_message("the connect timed out"),
                        );
                    }
                    _ => {}
                },
                Action::Grant { waiter, lease } => {
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
    fn tell_timer(&mut self, next: Instant, fx: &mut Effects) {
        if !self.timer.running && !self.closed {
            self.timer.running = true;
            fx.start_timer = true;
        } else if self.timer.armed.is_none_or(|armed| next < armed) {
            if let Some(w) = self.timer.waker.take() {
                fx.list.push(Effect::Wake(w));
            }
        }
    }

    /// When the timer task must next look: the core's next deadline or the
    /// earliest a request's could be, whichever comes first.
    fn next_deadline(&self) -> Option<Instant> {
        earliest(self.pool.poll_timeout(), self.deadlines.next())
    }

    fn is_drained(&self) -> bool {
        self.pool.is_shut_down() && self.pool.stats().open == 0
    }

    fn remember_failure(&mut self, origin: Origin, error: Error) {
        if self.connect_errors.len() >= MAX_CONNECT_ERRORS {
            self.connect_errors.clear();
        }
        self.connect_errors.insert(origin, error);
    }

    /// The error for a request to `origin` refused for `reason`, with the last
    /// connect failure as its cause when connects are why.
    fn rejection(&self, origin: &Origin, reason: RejectReason) -> Error {
        let error = Error::rejected(reason);
        let cause = match reason {
            RejectReason::ConnectFailed | RejectReason::CircuitOpen => {
                self.connect_errors.get(origin).cloned()
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

    /// Takes the transport of a granted lease out of its slot (HTTP/1.1), or a
    /// handle on its connection (HTTP/2).
    fn check_out(&mut self, lease: Lease) -> Option<Checked> {
        let conn = lease.conn();
        let slot = slot_mut(&mut self.conns, conn.index(), conn)?;
        match slot {
            Slot::H2(c) => return Some(Checked::H2(c.send.clone())),
            Slot::Idle(_) | Slot::Ws(_) => {}
            _ => return None,
        }
        match std::mem::replace(slot, Slot::Leased) {
            Slot::Idle(mut c) => {
                c.buf = self.spare_buffers.pop().unwrap_or_default();
                Some(Checked::H1(c))
            }
            Slot::Ws(c) => Some(Checked::Ws(c)),
            _ => None,
        }
    }
}

impl Effects {
    /// Does what the lock's holder left to do. Most holds leave nothing, which
    /// this sees where it is called, without a call of its own.
    #[inline(always)]
    fn run<R: Runtime>(self, inner: &Inner<R>) {
        if !self.list.is_empty() || self.start_timer {
            self.run_all(inner);
        }
    }

    fn run_all<R: Runtime>(self, inner: &Inner<R>) {
        let Effects {
            mut list,
            start_timer,
        } = self;
        // Stable: within a kind, the order the core gave.
        list.sort_by_key(Effect::rank);
        // The tasks spawned here hold the client; none is spawned once it is
        // going away.
        let me = || inner.me.upgrade();
        for effect in list {
            match effect {
                Effect::Drop(slot) => drop(slot),
                Effect::Ping(ping) => ping.request(),
                Effect::WsPing(ping) => ping.ping(),
                Effect::Wake(waker) => waker.wake(),
                Effect::Open(conn, origin) => {
                    if let Some(task) = me() {
                        inner
                            .runtime
                            .spawn(async move { task.open(conn, origin).await });
                    }
                }
            }
        }
        if start_timer {
            if let Some(me) = me() {
                inner.runtime.spawn(TimerTask {
                    inner: me,
                    timer: None,
                });
            }
        }
    }
}

impl<R: Runtime> Inner<R> {
    pub(crate) fn new(runtime: R, settings: Settings) -> Result<Arc<Inner<R>>, Error> {
        let pool = Pool::new(settings.pool.clone()).map_err(|e| {
            Error::new(ErrorKind::Config)
                .with_message("the pool configuration is invalid")
                .with_source(e)
        })?;
        let epoch = runtime.now();
        Ok(Arc::new_cyclic(|me| Inner {
            runtime,
            settings,
            epoch,
            state: Mutex::new(State {
                pool,
                conns: Vec::new(),
                waiters: HashMap::new(),
                connect_errors: HashMap::new(),
                timer: TimerState::default(),
                shutdown_waiters: Vec::new(),
                closed: false,
                spare_buffers: Vec::new(),
                deadlines: Deadlines::default(),
            }),
            me: me.clone(),
            last_origin: Mutex::new(None),
        }))
    }

    /// The pool key of a request to `uri` (see [`Origin::from_uri`]).
    pub(crate) fn origin_of(&self, uri: &http::Uri) -> Result<Origin, Error> {
        let mut last = self
            .last_origin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let named = uri.scheme().zip(uri.authority());
        if let (Some(last), Some((scheme, authority))) = (last.as_ref(), named) {
            if last.authority.as_str() == authority.as_str() && last.scheme == *scheme {
                return Ok(last.origin.clone());
            }
        }
        let origin = Origin::from_uri(uri, self.settings.tls.identity())?;
        if let Some((scheme, authority)) = named {
            *last = Some(LastOrigin {
                scheme: scheme.clone(),
                authority: authority.clone(),
                origin: origin.clone(),
            });
        }
        Ok(origin)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the core half-updated in a
        // way that matters more than losing the client: keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The core's time for the runtime's `now`.
    pub(crate) fn now(&self) -> Instant {
        self.instant(self.runtime.now())
    }

    pub(crate) fn instant(&self, at: std::time::Instant) -> Instant {
        Instant::from_elapsed(at.saturating_duration_since(self.epoch))
    }

    fn std_instant(&self, at: Instant) -> std::time::Instant {
        self.epoch + at.elapsed_since_epoch()
    }

    /// Runs `f` on the state under the lock, then carries out what it queued.
    fn with_state<T>(&self, f: impl FnOnce(&mut State, Instant) -> T) -> T {
        let now = self.now();
        let mut st = self.lock();
        let out = f(&mut st, now);
        let fx = st.drain();
        drop(st);
        fx.run(self);
        out
    }

    /// Waits for a connection to `origin`, until `deadline` at the latest.
    pub(crate) fn checkout<'a>(
        &'a self,
        origin: &'a Origin,
        deadline: Option<std::time::Instant>,
    ) -> Checkout<'a, R> {
        self.checkout_until(origin, deadline.map(|at| self.instant(at)))
    }

    /// [`checkout`](Self::checkout) with the deadline in the core's time.
    pub(crate) fn checkout_until<'a>(
        &'a self,
        origin: &'a Origin,
        deadline: Option<Instant>,
    ) -> Checkout<'a, R> {
        Checkout {
            inner: self,
            origin,
            deadline,
            prefer: None,
            waiter: None,
            now: None,
        }
    }

    /// Gives a lease back: with its connection when the connection is clean and
    /// may carry another request, without it (closing it) otherwise.
    pub(crate) fn check_in(&self, lease: Lease, conn: Option<H1Conn>) {
        match conn {
            Some(mut c) => {
                let buf = std::mem::take(&mut c.buf);
                self.put_back(lease, Slot::Idle(H1Conn { waited: true, ..c }), buf);
            }
            None => self.release(lease, Release::Close),
        }
    }

    /// Gives a WebSocket lease back: with its WebSocket when it may be used
    /// again, without it (closing it) otherwise.
    pub(crate) fn check_in_ws(&self, lease: Lease, conn: Option<WsConn>) {
        match conn {
            Some(c) => self.put_back(lease, Slot::Ws(c), BytesMut::new()),
            None => self.release(lease, Release::Close),
        }
    }

    /// Returns an exclusive lease as reusable, its connection to its slot.
    /// Puts the connection of `lease` back as `idle`, and keeps `buf` (its read
    /// buffer) for the next exchange when it is empty and the pool has room.
    fn put_back(&self, lease: Lease, idle: Slot, buf: BytesMut) {
        let dropped = self.with_state(|st, now| {
            let kept = buf.is_empty()
                && buf.capacity() > 0
                && buf.capacity() <= SPARE_BUFFER_CAPACITY
                && st.spare_buffers.len() < SPARE_BUFFERS;
            // A buffer not kept is freed after the lock, with the connection.
            let unkept = if kept {
                st.spare_buffers.push(buf);
                None
            } else {
                Some(buf)
            };
            let idle = match st.pool.release(lease, now, Release::Reuse) {
                Ok(()) => match slot_mut(&mut st.conns, lease.conn().index(), lease.conn()) {
                    Some(slot) => {
                        *slot = idle;
                        None
                    }
                    None => Some(idle),
                },
                Err(_) => Some(idle),
            };
            (unkept, idle)
        });
        drop(dropped);
    }

    /// Reports that a connection is going away: no new grants on it.
    pub(crate) fn going_away(&self, conn: muxpool_core::ConnId) {
        self.with_state(|st, now| {
            let _ = st.pool.handle_going_away(conn, now);
        });
    }

    /// A request on `conn` got no answer in time: the core checks the
    /// connection at once (see [`muxpool_core::Pool::handle_suspect`]).
    pub(crate) fn suspect(&self, conn: muxpool_core::ConnId) {
        self.with_state(|st, now| {
            let _ = st.pool.handle_suspect(conn, now);
        });
    }

    /// Gives back a lease without its transport: an HTTP/2 stream slot
    /// (`Reuse`), or an HTTP/1.1 connection that must be closed (`Close`).
    pub(crate) fn release(&self, lease: Lease, how: Release) {
        self.with_state(|st, now| {
            let _ = st.pool.release(lease, now, how);
        });
    }

    pub(crate) fn stats(&self) -> Stats {
        self.lock().pool.stats()
    }

    /// Starts a shutdown; `closed` also stops the timer task for good.
    pub(crate) fn shutdown(&self, how: Shutdown, closed: bool) {
        self.with_state(|st, now| {
            if closed {
                st.closed = true;
                if let Some(w) = st.timer.waker.take() {
                    w.wake();
                }
            }
            st.pool.shutdown(now, how);
        });
    }

    /// Resolves when a shutdown has closed every connection.
    pub(crate) fn drained(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            let mut st = self.lock();
            if st.is_drained() {
                Poll::Ready(())
            } else {
                if !st.shutdown_waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    st.shutdown_waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
    }

    /// The connect task of one connection.
    async fn open(self: Arc<Self>, conn: ConnId, origin: Origin) {
        // A task dropped before it reports (its runtime shut down) reports a
        // failed connect, so the core does not wait for its timeout.
        struct Unreported<'a, R: Runtime>(&'a Inner<R>, Option<ConnId>);
        impl<R: Runtime> Drop for Unreported<'_, R> {
            fn drop(&mut self) {
                if let Some(conn) = self.1 {
                    self.0.with_state(|st, now| {
                        if take(&mut st.conns, conn.index(), conn).is_some() {
                            let _ = st.pool.handle_connect_failed(conn, now);
                        }
                    });
                }
            }
        }
        let mut unreported = Unreported(&self, Some(conn));
        let deadline = self.runtime.now() + self.settings.pool.connect_timeout;
        let websocket = origin.websocket_target().is_some();
        let (tls, h2_prior_knowledge) = match websocket {
            true => (&self.settings.ws.tls, false),
            false => (&self.settings.tls, self.settings.h2_prior_knowledge),
        };
        let result = crate::timeout::with_deadline(&self.runtime, deadline, async {
            let c = connect(&self.runtime, &origin, tls, h2_prior_knowledge).await?;
            if !websocket {
                return Ok(Dialed::Http(c));
            }
            let ws = crate::websocket::handshake(c.io, &origin, &self.settings.ws).await?;
            Ok(Dialed::Ws(ws))
        })
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(ErrorKind::Timeout).with_message("the connect timed out"))
        });
        unreported.1 = None;
        let result = match result {
            Ok(Dialed::Ws(ws)) => Ok(Opened::Ws(Box::new(ws))),
            Ok(Dialed::Http(c)) if c.protocol == Negotiated::Http2 => {
                match crate::http2::handshake(c.io, self.settings.h2).await {
                    Ok(h2) => Ok(Opened::H2(Box::new(h2))),
                    Err(e) => Err(e),
                }
            }
            Ok(Dialed::Http(c)) => Ok(Opened::H1(c.io)),
            Err(e) => Err(e),
        };
        let mut driver = None;
        let mut ws_driver = None;
        let dropped = self.with_state(|st, now| match result {
            Ok(opened) => {
                // With nobody waiting, the new connection goes idle, unused.
                let unclaimed = st.pool.key_stats(&origin).is_none_or(|s| s.waiting == 0);
                let (info, slot) = match opened {
                    Opened::H1(io) => (
                        Connected::http1(),
                        Slot::Idle(H1Conn {
                            io,
                            waited: unclaimed,
                            buf: BytesMut::new(),
                        }),
                    ),
                    Opened::H2(h2) => {
                        let crate::http2::Handshaken {
                            conn: h2,
                            connection,
                            pings,
                        } = *h2;
                        let info = Connected::http2(crate::http2::max_streams(&connection));
                        let ping = Arc::clone(&h2.ping);
                        driver = Some((connection, pings, ping));
                        (info, Slot::H2(h2))
                    }
                    Opened::Ws(ws) => {
                        let crate::websocket::Opened { conn, driver } = *ws;
                        ws_driver = Some(driver);
                        (Connected::websocket(), Slot::Ws(conn))
                    }
                };
                match st.pool.handle_connected(conn, now, info) {
                    Ok(()) => {
                        st.connect_errors.remove(&origin);
                        put(&mut st.conns, conn.index(), conn, slot);
                        None
                    }
                    Err(_) => {
                        driver = None;
                        ws_driver = None;
                        Some(slot)
                    }
                }
            }
            Err(error) => {
                // A connect the core already gave up on (its deadline came
                // first) is not this origin's latest failure.
                if let Some(Slot::Connecting(origin)) = take(&mut st.conns, conn.index(), conn) {
                    st.remember_failure(origin, error);
                    let _ = st.pool.handle_connect_failed(conn, now);
                }
                None
            }
        });
        drop(dropped);
        if let Some((connection, pings, ping)) = driver {
            // The connection's driver is a task of its own, and this one ends:
            // the driver lives as long as the connection, and this task's
            // future keeps room for the connect's state (resolution, Happy
            // Eyeballs, the TLS and HTTP/2 handshakes), a few KB.
            let me = Arc::clone(&self);
            let driver = crate::http2::drive(connection, pings, ping, move |report| {
                me.report(conn, report);
            });
            self.runtime.spawn(driver);
        }
        if let Some(driver) = ws_driver {
            let me = Arc::clone(&self);
            let pool = Arc::clone(&self) as Arc<dyn crate::websocket::WsPool>;
            self.runtime
                .spawn(driver.drive(pool, move |report| me.report(conn, report)));
        }
    }

    /// What a connection's driver task learned, for the core.
    fn report(&self, conn: ConnId, report: crate::http2::Report) {
        self.with_state(|st, now| match report {
            crate::http2::Report::MaxStreams(n) => {
                let _ = st.pool.handle_peer_max_streams(conn, now, n);
            }
            crate::http2::Report::Pong => {
                let _ = st.pool.handle_health_ok(conn, now);
            }
            crate::http2::Report::Closed => {
                let _ = st.pool.handle_transport_closed(conn, now);
                let _ = take(&mut st.conns, conn.index(), conn);
            }
        });
    }
}

/// A connect that finished: an HTTP connection, or a WebSocket after its
/// handshake.
enum Dialed {
    Http(crate::connect::Connection),
    Ws(crate::websocket::Opened),
}

/// A connection that came up.
enum Opened {
    H1(crate::connect::Transport),
    H2(Box<crate::http2::Handshaken>),
    Ws(Box<crate::websocket::Opened>),
}

/// A request waiting for a connection. Dropping it at any point gives back what
/// it holds: a queued request is cancelled, a granted lease is released.
pub(crate) struct Checkout<'a, R: Runtime> {
    inner: &'a Inner<R>,
    origin: &'a Origin,
    deadline: Option<Instant>,
    prefer: Option<muxpool_core::ConnId>,
    waiter: Option<WaiterId>,
    /// A clock reading the caller took just before, for the first poll.
    now: Option<Instant>,
}

impl<R: Runtime> Checkout<'_, R> {
    /// Offers `conn` first when it can take the request at once (session
    /// affinity).
    pub(crate) fn preferring(mut self, conn: Option<muxpool_core::ConnId>) -> Self {
        self.prefer = conn;
        self
    }

    /// Uses `now`, read from the clock just before, as the time of the first
    /// poll: a request reads the clock once to set its deadline and need not
    /// read it again to ask for a connection.
    pub(crate) fn at(mut self, now: Option<Instant>) -> Self {
        self.now = now;
        self
    }
}

impl<R: Runtime> Future for Checkout<'_, R> {
    type Output = Result<(Lease, Checked), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner;
        let now = match self.now.take() {
            Some(now) => now,
            None => inner.now(),
        };
        let mut st = inner.lock();
        let lease = match self.waiter {
            None => {
                let mut options = match self.deadline {
                    Some(at) => AcquireOptions::with_deadline(at),
                    None => AcquireOptions::default(),
                };
                if let Some(conn) = self.prefer {
                    options = options.preferring(conn);
                }
                match st.pool.acquire(self.origin, now, options) {
                    Ok(Acquire::Ready(lease)) => lease,
                    Ok(Acquire::Queued(waiter)) => {
                        st.waiters
                            .insert(waiter, Waiting::Queued(Some(cx.waker().clone())));
                        self.waiter = Some(waiter);
                        let fx = st.drain();
                        drop(st);
                        fx.run(inner);
                        return Poll::Pending;
                    }
                    Err(reason) => {
                        let fx = st.drain();
                        let error = st.rejection(self.origin, reason);
                        drop(st);
                        fx.run(inner);
                        return Poll::Ready(Err(error));
                    }
                }
            }
            Some(waiter) => {
                let Some(w) = st.waiters.get_mut(&waiter) else {
                    return Poll::Ready(Err(Error::new(ErrorKind::ShutDown)));
                };
                match w {
                    Waiting::Queued(waker) => {
                        if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                            *waker = Some(cx.waker().clone());
                        }
                        return Poll::Pending;
                    }
                    Waiting::Granted(_) | Waiting::Rejected(_) => {}
                }
                self.waiter = None;
                match st.take_waiter(waiter) {
                    Some(Waiting::Granted(lease)) => lease,
                    Some(Waiting::Rejected(reason)) => {
                        return Poll::Ready(Err(st.rejection(self.origin, reason)))
                    }
                    _ => return Poll::Ready(Err(Error::new(ErrorKind::ShutDown))),
                }
            }
        };
        match st.check_out(lease) {
            Some(conn) => {
                let fx = st.drain();
                drop(st);
                fx.run(inner);
                Poll::Ready(Ok((lease, conn)))
            }
            None => {
                // The core granted a connection whose transport is not here; give
                // the lease back as broken rather than use it.
                let _ = st.pool.release(lease, now, Release::Close);
                let error = if st.pool.is_shut_down() {
                    // An immediate shutdown closed it between grant and pickup.
                    Error::new(ErrorKind::ShutDown)
                } else {
                    Error::new(ErrorKind::Protocol)
                        .with_message("the granted connection has no transport")
                };
                let fx = st.drain();
                drop(st);
                fx.run(inner);
                Poll::Ready(Err(error))
            }
        }
    }
}

impl<R: Runtime> Drop for Checkout<'_, R> {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        self.inner.with_state(|st, now| {
            match st.take_waiter(waiter) {
                Some(Waiting::Queued(_)) => {
                    let _ = st.pool.cancel(waiter, now);
                }
                Some(Waiting::Granted(lease)) => {
                    // Never used: the transport is still in its slot.
                    let _ = st.pool.release(lease, now, Release::Reuse);
                }
                _ => {}
            }
        });
    }
}

impl<R: Runtime> Inner<R> {
    /// A request's deadline `at`, kept by the pool (see
    /// [`deadlines`](crate::deadlines)): resolves once it has passed.
    pub(crate) fn request_timer(&self, at: Instant) -> RequestTimer<'_, R> {
        RequestTimer {
            inner: self,
            at,
            id: None,
        }
    }
}

/// A request's deadline: armed in the pool's table on its first poll, given
/// back when dropped. Resolves once the pool's timer task has found it due.
pub(crate) struct RequestTimer<'a, R: Runtime> {
    inner: &'a Inner<R>,
    at: Instant,
    id: Option<DeadlineId>,
}

impl<R: Runtime> Future for RequestTimer<'_, R> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = self.inner;
        let mut st = inner.lock();
        match self.id {
            Some(id) => match st.deadlines.poll(id, cx.waker()) {
                Due::Pending => Poll::Pending,
                Due::Expired => Poll::Ready(()),
            },
            None => {
                let id = st.deadlines.insert(self.at, cx.waker().clone());
                self.id = Some(id);
                // The timer task learns of a deadline earlier than it sleeps
                // for (or starts); a later one, the usual case, it finds when
                // it wakes.
                let mut fx = Effects::default();
                st.tell_timer(self.at, &mut fx);
                drop(st);
                fx.run(inner);
                Poll::Pending
            }
        }
    }
}

impl<R: Runtime> Drop for RequestTimer<'_, R> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.inner.lock().deadlines.remove(id);
        }
    }
}

/// The pool's one background task: wakes the core at its deadlines, and
/// expires the requests' deadlines that are due.
struct TimerTask<R: Runtime> {
    inner: Arc<Inner<R>>,
    timer: Option<Pin<Box<R::Timer>>>,
}

impl<R: Runtime> Drop for TimerTask<R> {
    fn drop(&mut self) {
        // Finished, or dropped with its runtime: either way the next input that
        // leaves the core a deadline starts a new one (on the runtime of the
        // task that gives that input).
        let mut st = self.inner.lock();
        st.timer.running = false;
        st.timer.armed = None;
        st.timer.waker = None;
    }
}

impl<R: Runtime> Future for TimerTask<R> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            let inner = &*this.inner;
            let now = inner.now();
            let mut st = inner.lock();
            if st.closed {
                return Poll::Ready(());
            }
            let core_due = st.pool.poll_timeout().is_some_and(|at| at <= now);
            let requests_due = st.deadlines.next().is_some_and(|at| at <= now);
            if core_due || requests_due {
                if core_due {
                    st.pool.handle_timeout(now);
                }
                st.timer.armed = None;
                let mut fx = st.drain();
                if requests_due {
                    st.deadlines
                        .expire(now, |waker| fx.list.push(Effect::Wake(waker)));
                }
                drop(st);
                fx.run(inner);
                continue;
            }
            let next = st.next_deadline();
            st.timer.armed = next;
            if !st
                .timer
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                st.timer.waker = Some(cx.waker().clone());
            }
            drop(st);
            let Some(at) = next else {
                return Poll::Pending;
            };
            let deadline = inner.std_instant(at);
            match &mut this.timer {
                Some(t) => t.as_mut().reset(deadline),
                None => this.timer = Some(Box::pin(inner.runtime.timer(deadline))),
            }
            let timer = this.timer.as_mut().expect("set above");
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}
