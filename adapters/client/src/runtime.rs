//! What an async runtime must provide: the small trait every adapter implements.
//!
//! # Why a trait, and why so small
//!
//! Everything the client does is the same on every runtime except four things:
//! opening a TCP connection, resolving a name, keeping time, and spawning a task.
//! Those sit behind [`Runtime`]; everything else (the pool, TLS, HTTP framing, the
//! public [`Client`](crate::Client)) is written once, here, against it. The tokio
//! adapter is a few dozen lines, and a simulated network is one more adapter.
//!
//! The byte streams are tokio's [`AsyncRead`] and [`AsyncWrite`] traits (the
//! traits only, which run on any executor): `h2` and the TLS stream need them, so
//! a runtime whose sockets speak another I/O trait bridges them once, in its
//! adapter.
//!
//! The repository's `docs/writing-an-adapter.md` walks through writing one,
//! with smol's adapter as the example and how a new adapter joins the client's
//! conformance suite.
//!
//! # The smallest adapter
//!
//! ```
//! use std::future::Future;
//! use std::io;
//! use std::net::SocketAddr;
//! use std::pin::Pin;
//! use std::task::{Context, Poll};
//! use std::time::Instant;
//!
//! use muxpool_client::runtime::{Runtime, Timer};
//!
//! /// A runtime with no network: every connect fails, time never passes.
//! #[derive(Clone, Default)]
//! struct Offline;
//!
//! struct Never;
//! impl Future for Never {
//!     type Output = ();
//!     fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
//!         Poll::Pending
//!     }
//! }
//! impl Timer for Never {
//!     fn reset(self: Pin<&mut Self>, _: Instant) {}
//! }
//!
//! impl Runtime for Offline {
//!     type Tcp = tokio::io::DuplexStream;
//!     type Timer = Never;
//!     fn spawn<F: Future<Output = ()> + Send + 'static>(&self, _task: F) {}
//!     fn now(&self) -> Instant {
//!         Instant::now()
//!     }
//!     fn timer(&self, _deadline: Instant) -> Never {
//!         Never
//!     }
//!     fn connect(&self, _addr: SocketAddr) -> impl Future<Output = io::Result<Self::Tcp>> + Send {
//!         async { Err(io::Error::from(io::ErrorKind::NetworkUnreachable)) }
//!     }
//!     fn resolve(
//!         &self,
//!         _host: &str,
//!         _port: u16,
//!     ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send {
//!         async { Ok(Vec::new()) }
//!     }
//! }
//! ```

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Instant;

pub use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream the client can frame HTTP on: a TCP connection, or TLS over one.
pub trait Io: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Io for T {}

/// A timer that fires once at its deadline, and can be moved to another one.
pub trait Timer: Future<Output = ()> + Send + Sync + 'static {
    /// Fires at `deadline` instead (and again, if it had fired).
    fn reset(self: Pin<&mut Self>, deadline: Instant);
}

/// The services of one async runtime.
///
/// Implementations are cheap handles: they are cloned into every connect task.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A connected TCP stream, with `TCP_NODELAY` set.
    type Tcp: Io;
    /// The runtime's timer.
    type Timer: Timer;

    /// Runs `task` to completion in the background. When the runtime is gone
    /// (shut down, or not reachable from the calling thread) the task is dropped
    /// instead; this must never panic.
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F);

    /// Whether the calling thread can use this runtime now: spawn its tasks
    /// and arm its timers. Where it cannot (a tokio client used outside any
    /// tokio runtime), the client refuses requests at once with
    /// [`ErrorKind::Runtime`](crate::ErrorKind::Runtime) rather than wait for
    /// tasks that never run. The default says it always can.
    fn is_reachable(&self) -> bool {
        true
    }

    /// The current time. A runtime with a virtual clock returns its own.
    fn now(&self) -> Instant;

    /// A timer that fires at `deadline`.
    fn timer(&self, deadline: Instant) -> Self::Timer;

    /// Connects to `addr` and sets `TCP_NODELAY`. Timeouts are the caller's.
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Tcp>> + Send;

    /// The addresses of `host` (a DNS name, never an IP literal), in the order the
    /// resolver gives them.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;
}
