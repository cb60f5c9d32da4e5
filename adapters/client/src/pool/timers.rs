//! The pool's timer task, and the request deadlines it keeps.
//!
//! One task per client sleeps until the earliest of the core's next deadline
//! ([`muxpool_core::Pool::poll_timeout`]), the earliest request deadline in
//! the table ([`deadlines`](super::deadlines)) and the services' balancers'
//! next deadline, then feeds the core and the balancers the time and wakes
//! the requests that are due. A request's deadline is an entry in
//! that table, behind the pool's lock, not a runtime timer of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use muxpool_core::Instant;

use crate::runtime::{Runtime, Timer};

use super::deadlines::{DeadlineId, Due};
use super::state::{Effect, Effects};
use super::Shared;

impl<R: Runtime> Shared<R> {
    /// A request's deadline `at`, kept by the pool (see
    /// [`deadlines`](super::deadlines)): resolves once it has passed.
    pub(crate) fn request_timer(&self, at: Instant) -> RequestTimer<'_, R> {
        RequestTimer {
            inner: self,
            at,
            id: None,
        }
    }

    /// The pool's timer task, to be spawned when the state asks for one.
    pub(crate) fn timer_task(self: Arc<Self>) -> impl Future<Output = ()> + Send {
        TimerTask {
            inner: self,
            timer: None,
        }
    }
}

/// A request's deadline: armed in the pool's table on its first poll, given
/// back when dropped. Resolves once the pool's timer task has found it due.
pub(crate) struct RequestTimer<'a, R: Runtime> {
    inner: &'a Shared<R>,
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
    inner: Arc<Shared<R>>,
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
            let balancers_due = st.services.wake.is_some_and(|at| at <= now);
            if core_due || requests_due || balancers_due {
                if core_due {
                    st.pool.handle_timeout(now);
                }
                if balancers_due {
                    st.services.handle_timeout(now);
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
