//! A request waiting for a connection: the future that asks the core for
//! capacity and, once granted, takes the connection out of its slot.
//!
//! Dropping it at any await point gives back what it holds: a queued request
//! is cancelled, a lease granted but not collected is released.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use muxpool_core::{
    Acquire, AcquireOptions, Attempt, ConnId, Instant, Lease, RejectReason, Release, WaiterId,
};

use crate::dial::PoolKey;
use crate::error::{Error, ErrorKind};
use crate::runtime::Runtime;

use super::state::{LeasedConn, State, Waiting};
use super::Shared;

impl<R: Runtime> Shared<R> {
    /// Waits for a connection to `key`, until `deadline` at the latest.
    pub(crate) fn checkout<'a>(
        &'a self,
        key: &'a PoolKey,
        deadline: Option<std::time::Instant>,
    ) -> Checkout<'a, R> {
        self.checkout_until(key, deadline.map(|at| self.instant(at)))
    }

    /// [`checkout`](Self::checkout) with the deadline in the core's time.
    pub(crate) fn checkout_until<'a>(
        &'a self,
        key: &'a PoolKey,
        deadline: Option<Instant>,
    ) -> Checkout<'a, R> {
        Checkout {
            inner: self,
            key,
            deadline,
            prefer: None,
            waiter: None,
            now: None,
            attempt: Attempt::First,
            retry_of: None,
            started: None,
            timing: None,
        }
    }
}

/// When a checkout first asked for a connection, and when it was granted
/// one: the core's times, read by the checkout anyway. Shared with the
/// request's future by reference, hence atomics (a relaxed load or store is
/// a plain move).
#[derive(Default)]
pub(crate) struct Timing {
    asked: AtomicU64,
    /// The grant's time in nanoseconds plus one; 0 when none yet.
    granted: AtomicU64,
    /// The request's figures are recorded already (with its connection's
    /// return).
    recorded: AtomicBool,
}

impl Timing {
    fn set(&self, asked: Instant, granted: Instant) {
        self.asked.store(asked.as_nanos(), Ordering::Relaxed);
        self.granted
            .store(granted.as_nanos().saturating_add(1), Ordering::Relaxed);
    }

    /// Notes that the request's figures are recorded.
    pub(crate) fn set_recorded(&self) {
        self.recorded.store(true, Ordering::Relaxed);
    }

    /// Whether the request's figures are recorded.
    pub(crate) fn recorded(&self) -> bool {
        self.recorded.load(Ordering::Relaxed)
    }

    /// The first ask's and the grant's times of the last granted checkout.
    pub(crate) fn get(&self) -> Option<(Instant, Instant)> {
        let granted = self.granted.load(Ordering::Relaxed).checked_sub(1)?;
        let asked = self.asked.load(Ordering::Relaxed);
        Some((Instant::from_nanos(asked), Instant::from_nanos(granted)))
    }
}

/// A request waiting for a connection. Dropping it at any point gives back what
/// it holds: a queued request is cancelled, a granted lease is released.
pub(crate) struct Checkout<'a, R: Runtime> {
    inner: &'a Shared<R>,
    key: &'a PoolKey,
    deadline: Option<Instant>,
    prefer: Option<ConnId>,
    waiter: Option<WaiterId>,
    /// A clock reading the caller took just before, for the first poll.
    now: Option<Instant>,
    /// Which attempt of its request the next ask is, for the retry budget.
    attempt: Attempt,
    /// For a retry: the failure it retries, which is the answer if the retry
    /// budget refuses it.
    retry_of: Option<Error>,
    /// The time of the first poll.
    started: Option<Instant>,
    /// Where the first ask's and the grant's times go.
    timing: Option<&'a Timing>,
}

impl<'a, R: Runtime> Checkout<'a, R> {
    /// Offers `conn` first when it can take the request at once (session
    /// affinity).
    pub(crate) fn preferring(mut self, conn: Option<ConnId>) -> Self {
        self.prefer = conn;
        self
    }

    /// The request asks again with nothing of it sent (the connection it was
    /// given turned out closed): it neither adds to the retry budget nor
    /// spends from it.
    pub(crate) fn again(mut self) -> Self {
        self.attempt = Attempt::Again;
        self
    }

    /// The request is sent again after `failure`: it spends a retry of the
    /// budget, and if none is left the checkout ends with `failure` itself.
    pub(crate) fn retrying(mut self, failure: Error) -> Self {
        self.attempt = Attempt::Retry;
        self.retry_of = Some(failure);
        self
    }

    /// Uses `now`, read from the clock just before, as the time of the first
    /// poll: a request reads the clock once to set its deadline and need not
    /// read it again to ask for a connection.
    pub(crate) fn at(mut self, now: Option<Instant>) -> Self {
        self.now = now;
        self
    }

    /// Sets `timing` to the first ask's and the grant's times once granted.
    pub(crate) fn timed(mut self, timing: &'a Timing) -> Self {
        self.timing = Some(timing);
        self
    }
}

impl<R: Runtime> Checkout<'_, R> {
    /// The error for a request the core refused for `reason`, traced: the
    /// failure a retry would have retried when the retry budget refused it,
    /// else the refusal's own.
    fn refused(&mut self, st: &State, reason: RejectReason) -> Error {
        crate::trace::rejected(self.key, reason);
        match (reason, self.retry_of.take()) {
            (RejectReason::RetryBudget, Some(failure)) => failure,
            _ => st.rejection(self.key, reason),
        }
    }
}

impl<R: Runtime> Future for Checkout<'_, R> {
    type Output = Result<(Lease, LeasedConn), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner;
        let now = match self.now.take() {
            Some(now) => now,
            None => inner.now(),
        };
        let started = *self.started.get_or_insert(now);
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
                options = options.attempt(self.attempt);
                // Asking again after a granted connection turned out gone is
                // the same attempt.
                self.attempt = Attempt::Again;
                match st.pool.acquire(self.key, now, options) {
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
                        let error = self.refused(&st, reason);
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
                        return Poll::Ready(Err(self.refused(&st, reason)));
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
                if let Some(timing) = self.timing {
                    timing.set(started, now);
                }
                Poll::Ready(Ok((lease, conn)))
            }
            None => {
                // The core granted a connection whose transport is gone: it
                // closed between the grant and this pickup (its server closed
                // it at once). Nothing was sent on it, so the lease goes back as
                // broken and the request asks again, within its deadline.
                let _ = st.pool.release(lease, now, Release::Close);
                let shut_down = st.pool.is_shut_down();
                let fx = st.drain();
                drop(st);
                fx.run(inner);
                if shut_down {
                    // An immediate shutdown closed it between grant and pickup.
                    return Poll::Ready(Err(Error::new(ErrorKind::ShutDown)));
                }
                self.prefer = None;
                cx.waker().wake_by_ref();
                Poll::Pending
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
                    let how = st.unclaimed(lease);
                    let _ = st.pool.release(lease, now, how);
                }
                _ => {}
            }
        });
    }
}
