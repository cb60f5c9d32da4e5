//! The pool as the client holds it: the core behind one short lock, and the
//! connections the core names.
//!
//! # Why one lock and no worker
//!
//! Every decision is the core's ([`muxpool_core::Pool`]); this module only
//! carries them out. A request locks the state, asks the core for capacity,
//! and usually leaves with an idle connection in well under a microsecond: no
//! task, no channel, no hop to another thread. Only what must happen in the
//! background runs in a task: a connect (one short-lived task per new
//! connection) and the pool's timers (one task per client, only while the core
//! or a request has a deadline).
//!
//! # The parts
//!
//! - [`state`]: what is behind the lock, and the drain that follows every
//!   input to the core;
//! - this module: [`Shared`], the lock and the clock, running what a drain
//!   left to do once the lock is released, and giving leases back;
//! - [`checkout`]: a request waiting for a connection;
//! - [`connect`]: the connect task of one new connection, and what its
//!   driver reports later;
//! - [`timers`] and [`deadlines`]: the pool's timer task, and the table of
//!   request deadlines it expires;
//! - [`services`] and [`pick`]: the balancers of the configured services,
//!   and the endpoint one attempt of a request goes to.

mod checkout;
mod connect;
mod deadlines;
mod pick;
mod services;
mod state;
mod timers;

pub(crate) use checkout::Timing;
pub(crate) use pick::outcome_of;
pub(crate) use state::{LeasedConn, State};

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Poll;

use bytes::BytesMut;
use muxpool_core::{ConnId, Instant, Lease, Pool, Release, Shutdown, Stats};

use crate::config::Settings;
use crate::conn::h1::{H1Conn, H1Lender};
use crate::conn::ws::{WsConn, WsLender};
use crate::conn::{Clock, Lender};
use crate::dial::PoolKey;
use crate::error::{Error, ErrorKind, Origin};
use crate::metrics::Metrics;
use crate::proxy::ProxyChoice;
use crate::runtime::{Runtime, Timer};

use state::{slot_mut, Effect, Effects, Slot, SPARE_BUFFERS, SPARE_BUFFER_CAPACITY};

/// The pool and what every task of one client shares: the runtime, the
/// settings, the state behind the lock.
pub(crate) struct Shared<R: Runtime> {
    pub(crate) runtime: R,
    pub(crate) settings: Settings,
    epoch: std::time::Instant,
    state: Mutex<State>,
    me: Weak<Shared<R>>,
    /// The last request URI's scheme and authority, and its pool key.
    last_key: Mutex<Option<LastKey>>,
    /// The key of each service's authority, and its balancer's index behind
    /// the lock; empty, and never looked into, without services.
    services: std::collections::HashMap<PoolKey, u32>,
}

/// A request URI's scheme and authority, and the pool key they make: most
/// requests go where the one before went, and comparing the two texts costs a
/// fraction of working the key out again (splitting the authority, reading the
/// port, lower-casing the host).
struct LastKey {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    key: PoolKey,
}

impl Effects {
    /// Does what the lock's holder left to do. Most holds leave nothing, which
    /// this sees where it is called, without a call of its own.
    #[inline(always)]
    pub(crate) fn run<R: Runtime>(self, inner: &Shared<R>) {
        if !self.list.is_empty() || self.start_timer {
            self.run_all(inner);
        }
    }

    fn run_all<R: Runtime>(self, inner: &Shared<R>) {
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
                Effect::Open(conn, key) => {
                    if let Some(task) = me() {
                        let span = crate::trace::connection(conn, &key);
                        let traced = span.clone();
                        inner.spawn_in(span, async move { task.open(conn, key, traced).await });
                    }
                }
            }
        }
        if start_timer {
            if let Some(me) = me() {
                inner.spawn_in(tracing::Span::none(), me.timer_task());
            }
        }
    }
}

impl<R: Runtime> Shared<R> {
    pub(crate) fn new(runtime: R, settings: Settings) -> Result<Arc<Shared<R>>, Error> {
        let pool = Pool::new(settings.pool.clone()).map_err(|e| {
            Error::new(ErrorKind::Config)
                .with_message("the pool configuration is invalid")
                .with_source(e)
        })?;
        let (services, balancers) =
            services::build(&settings.services, settings.tls.identity(), &settings.pool)?;
        let epoch = runtime.now();
        Ok(Arc::new_cyclic(|me| Shared {
            runtime,
            settings,
            epoch,
            state: Mutex::new(State::new(pool, balancers)),
            me: me.clone(),
            last_key: Mutex::new(None),
            services,
        }))
    }

    /// Spawns `task` on the runtime, in `span`, and, while anything listens,
    /// with the subscriber of the task that spawns it: what a connect task
    /// or a connection's driver reports goes where the request that caused
    /// it reports.
    pub(crate) fn spawn_in(
        &self,
        span: tracing::Span,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        use tracing::instrument::{Instrument, WithSubscriber};
        if crate::trace::on() {
            self.runtime
                .spawn(task.instrument(span).with_current_subscriber());
        } else {
            self.runtime.spawn(task);
        }
    }

    /// The pool key of a request to `uri` (see [`PoolKey::from_uri`]).
    pub(crate) fn key_of(&self, uri: &http::Uri) -> Result<PoolKey, Error> {
        let mut last = self
            .last_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let named = uri.scheme().zip(uri.authority());
        if let (Some(last), Some((scheme, authority))) = (last.as_ref(), named) {
            if last.authority.as_str() == authority.as_str() && last.scheme == *scheme {
                return Ok(last.key.clone());
            }
        }
        let mut key = PoolKey::from_uri(uri, self.settings.tls.identity())?;
        // A service's endpoints are reached directly.
        if !self.settings.proxies.is_empty() && !self.is_service(&key) {
            key = self.proxied(key, None);
        }
        if let Some((scheme, authority)) = named {
            *last = Some(LastKey {
                scheme: scheme.clone(),
                authority: authority.clone(),
                key: key.clone(),
            });
        }
        Ok(key)
    }

    /// The pool key of a request to `uri` that chose its proxy itself.
    pub(crate) fn key_choosing(
        &self,
        uri: &http::Uri,
        choice: &ProxyChoice,
    ) -> Result<PoolKey, Error> {
        let key = PoolKey::from_uri(uri, self.settings.tls.identity())?;
        Ok(self.proxied(key, Some(choice)))
    }

    /// `key`, through the proxy that serves its origin: the one `choice`
    /// names, or else the client's.
    pub(crate) fn proxied(&self, key: PoolKey, choice: Option<&ProxyChoice>) -> PoolKey {
        let (tls, host, port) = (key.is_tls(), key.host(), key.port());
        let proxy = match choice {
            Some(choice) => choice.serving(tls, host, port),
            None => self.settings.proxies.serving(tls, host, port),
        };
        key.through(proxy)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
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

    pub(crate) fn std_instant(&self, at: Instant) -> std::time::Instant {
        self.epoch + at.elapsed_since_epoch()
    }

    /// Runs `f` on the state under the lock, then carries out what it queued.
    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&mut State, Instant) -> T) -> T {
        let now = self.now();
        let mut st = self.lock();
        let out = f(&mut st, now);
        let fx = st.drain();
        drop(st);
        fx.run(self);
        out
    }

    /// Gives a lease back: with its connection when the connection is clean and
    /// may carry another request, without it (closing it) otherwise.
    pub(crate) fn check_in(&self, lease: Lease, conn: Option<H1Conn>) {
        self.check_in_then(lease, conn, |_, _| {});
    }

    /// [`check_in`](Self::check_in), then `then` under the same hold of the
    /// lock, with its clock reading: a request whose response came whole
    /// records its figures here, with no lock or clock reading of its own.
    pub(crate) fn check_in_then(
        &self,
        lease: Lease,
        conn: Option<H1Conn>,
        then: impl FnOnce(&mut State, Instant),
    ) {
        match conn {
            Some(mut c) => {
                let buf = std::mem::take(&mut c.buf);
                self.put_back(lease, Slot::Idle(H1Conn { waited: true, ..c }), buf, then);
            }
            None => self.with_state(|st, now| {
                let _ = st.pool.release(lease, now, Release::Close);
                then(st, now);
            }),
        }
    }

    /// Gives a WebSocket lease back: with its WebSocket when it may be used
    /// again, without it (closing it) otherwise.
    pub(crate) fn check_in_ws(&self, lease: Lease, conn: Option<WsConn>) {
        match conn {
            Some(c) => self.put_back(lease, Slot::Ws(c), BytesMut::new(), |_, _| {}),
            None => self.release(lease, Release::Close),
        }
    }

    /// Returns an exclusive lease as reusable, its connection to its slot.
    /// Puts the connection of `lease` back as `idle`, and keeps `buf` (its read
    /// buffer) for the next exchange when it is empty and the pool has room.
    fn put_back(
        &self,
        lease: Lease,
        idle: Slot,
        buf: BytesMut,
        then: impl FnOnce(&mut State, Instant),
    ) {
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
            then(st, now);
            (unkept, idle)
        });
        drop(dropped);
    }

    /// Reports that a connection is going away: no new grants on it.
    pub(crate) fn going_away(&self, conn: ConnId) {
        self.with_state(|st, now| {
            if crate::trace::on() {
                let span = slot_mut(&mut st.spans, conn.index(), conn);
                crate::trace::going_away(conn, span.as_deref());
            }
            let _ = st.pool.handle_going_away(conn, now);
        });
    }

    /// The origin of `conn`'s key, for an error to name: read under the lock,
    /// only when a failure is reported.
    pub(crate) fn origin(&self, conn: ConnId) -> Option<Origin> {
        self.lock().pool.key(conn).map(PoolKey::origin)
    }

    /// A request on `conn` got no answer in time: the core checks the
    /// connection at once (see [`muxpool_core::Pool::handle_suspect`]).
    pub(crate) fn suspect(&self, conn: ConnId) {
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

    /// The pool's figures, taken under one hold of the lock.
    pub(crate) fn metrics(&self) -> Metrics {
        self.lock().metrics()
    }

    /// Records a request's figures (see [`State::record_request`]), ended
    /// now.
    pub(crate) fn record_request(
        &self,
        key: &PoolKey,
        start: Instant,
        timing: &Timing,
        answered: bool,
    ) {
        let end = self.now();
        self.lock()
            .record_request(key, start, timing.get(), end, answered);
    }

    /// Records the wait of a checkout on `key` that was granted (see
    /// [`Timing`]), for a WebSocket's open, which no request records.
    pub(crate) fn record_wait(&self, key: &PoolKey, timing: &Timing) {
        if let Some((asked, granted)) = timing.get() {
            let wait = std::time::Duration::from_nanos(
                granted.as_nanos().saturating_sub(asked.as_nanos()),
            );
            self.lock().record(key, |l| l.wait.record(wait));
        }
    }

    /// Whether `conn` had a lease before its current one: for a trace to
    /// tell a reused connection from a new one.
    pub(crate) fn served_before(&self, conn: ConnId) -> bool {
        self.lock()
            .pool
            .conn_info(conn)
            .is_some_and(|info| info.requests > 1)
    }

    #[cfg(feature = "unstable")]
    pub(crate) fn check_invariants(&self) -> Result<(), muxpool_core::InvariantViolation> {
        self.lock().pool.check_invariants()
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
}

impl<R: Runtime> Clock for Shared<R> {
    fn timer(&self, deadline: std::time::Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(self.runtime.timer(deadline))
    }

    fn now(&self) -> std::time::Instant {
        self.runtime.now()
    }
}

impl<R: Runtime> Lender for Shared<R> {
    fn release(&self, lease: Lease, how: Release) {
        Shared::release(self, lease, how);
    }

    fn suspect(&self, conn: ConnId) {
        Shared::suspect(self, conn);
    }

    fn origin(&self, conn: ConnId) -> Option<Origin> {
        Shared::origin(self, conn)
    }
}

impl<R: Runtime> H1Lender for Shared<R> {
    fn check_in(&self, lease: Lease, conn: Option<H1Conn>) {
        Shared::check_in(self, lease, conn);
    }

    fn origin(&self, conn: ConnId) -> Option<Origin> {
        Shared::origin(self, conn)
    }
}

impl<R: Runtime> WsLender for Shared<R> {
    fn check_in_ws(&self, lease: Lease, conn: Option<WsConn>) {
        Shared::check_in_ws(self, lease, conn);
    }
}
