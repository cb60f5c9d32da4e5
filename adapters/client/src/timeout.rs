//! Deadlines on futures, with the runtime's timer.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Instant;

use crate::runtime::Runtime;

/// The deadline passed first.
#[derive(Debug)]
pub(crate) struct Elapsed;

/// Runs `future` until `deadline`; `Err(Elapsed)` if the deadline comes first
/// (the future is then dropped).
pub(crate) async fn with_deadline<R: Runtime, F: Future>(
    runtime: &R,
    deadline: Instant,
    future: F,
) -> Result<F::Output, Elapsed> {
    until(runtime.timer(deadline), future).await
}

/// Runs `future` until `timer` fires; `Err(Elapsed)` if it fires first.
pub(crate) async fn until<F: Future>(
    timer: impl Future<Output = ()>,
    future: F,
) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    let mut timer = pin!(timer);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        timer.as_mut().poll(cx).map(|()| Err(Elapsed))
    })
    .await
}
