//! Shared by the self-tests of the in-process servers.

use std::time::Duration;

/// Polls `condition` every 10 ms until it holds, for about a second at most;
/// the caller asserts what it expects afterwards.
pub async fn settle(mut condition: impl FnMut() -> bool) {
    for _ in 0..100 {
        if condition() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A runtime with one worker thread, for starting a server from synchronous
/// code with `start_on`.
pub fn one_worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}
