//! Where the in-process servers run: the caller's tokio runtime, or one of the
//! testkit's own in the background.
//!
//! A client test on another runtime (smol, a simulator) has no tokio runtime
//! around it, yet its servers are built on hyper and tokio. They then run on a
//! small multi-thread runtime that the testkit starts once per process and
//! keeps for its life, so a test needs no setup whichever runtime drives its
//! client.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

/// The runtime servers started from here run on: the current tokio runtime
/// when called inside one, else [`background`].
pub fn servers() -> Handle {
    Handle::try_current().unwrap_or_else(|_| background().clone())
}

/// The testkit's own runtime: two worker threads, started on first use and
/// kept until the process exits.
pub fn background() -> &'static Handle {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("testkit-servers")
                .enable_all()
                .build()
                .expect("the testkit's server runtime starts")
        })
        .handle()
}
