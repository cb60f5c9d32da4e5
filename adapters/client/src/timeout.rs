//! Deadlines on futures, with the runtime's timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::runtime::Runtime;

/// The deadline passed first.
#[derive(Debug)]
pub(crate) struct Elapsed;

/// Runs `future` until `deadline`; `Err(Elapsed)` if the deadline comes first
/// (the future is then dropped).
pub(crate) fn with_deadline<R: Runtime, F: Future>(
    runtime: &R,
    deadline: Instant,
    future: F,
) -> Until<R::Timer, F> {
    until(runtime.timer(deadline), future)
}

/// Runs `future` until `timer` fires; `Err(Elapsed)` if it fires first.
pub(crate) fn until<T: Future<Output = ()>, F: Future>(timer: T, future: F) -> Until<T, F> {
    Until { future, timer }
}

pin_project_lite::pin_project! {
    /// A future raced against a timer. A struct rather than an `async fn`: the
    /// future is held once, in place, where an `async fn` would keep its
    /// argument and the pinned copy it polls side by side, and a request's
    /// future is moved (copied) whole each time it is handed on.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct Until<T, F> {
        #[pin]
        future: F,
        #[pin]
        timer: T,
    }
}

impl<T: Future<Output = ()>, F: Future> Future for Until<T, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.future.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        this.timer.poll(cx).map(|()| Err(Elapsed))
    }
}
