//! # muxpool-smol: muxpool's HTTP client on smol
//!
//! The whole client ([`muxpool_client`]: the pool, dialing, TLS, HTTP/1.1,
//! HTTP/2, WebSocket) runs on any runtime that implements its small
//! [`Runtime`] trait; this crate is that trait for smol, and nothing else:
//! tasks go to smol's global executor (or to an [`Executor`] of your own),
//! timers are [`async_io::Timer`]s, connects are [`async_net::TcpStream`]s with
//! `TCP_NODELAY`, and names resolve through [`async_net::resolve`]. It names
//! the client [`Client`] and re-exports the client layer's names ([`Body`],
//! [`Error`], [`RequestTimeout`], [`tls`], ...). The `muxpool` facade with
//! its `smol` feature (and without its default `tokio` one) re-exports this
//! crate as `muxpool::smol`.
//!
//! ```toml
//! [dependencies]
//! muxpool-smol = { git = "https://github.com/muxpool/muxpool" }
//! http = "1"
//! smol = "2"
//! ```
//!
//! A request with a client-wide timeout and a shorter one of its own:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use muxpool_smol::{Body, Client, ErrorKind, RequestTimeout};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     smol::block_on(fetch())
//! }
//!
//! async fn fetch() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = Client::builder().timeout(Duration::from_secs(10)).build()?;
//!     let mut request = http::Request::get("https://example.com/").body(Body::empty())?;
//!     request.extensions_mut().insert(RequestTimeout(Duration::from_secs(2)));
//!     match client.send(request).await {
//!         Ok(response) => println!("{}: {}", response.status(), response.into_body().text().await?),
//!         Err(e) if e.is_timeout() => println!("no answer within 2 s"),
//!         Err(e) if e.kind() == ErrorKind::Tls => println!("untrusted server: {e:#}"),
//!         Err(e) => return Err(e.into()),
//!     }
//!     Ok(())
//! }
//! ```
//!
//! A `Client` needs no runtime to be created or used: smol's reactor and global
//! executor start on first use, on threads of their own. To keep the client's
//! tasks on an executor you run yourself, build it with
//! [`ClientBuilder::with_runtime`](muxpool_client::ClientBuilder::with_runtime)
//! and [`Smol::on`].
//!
//! The client frames HTTP on tokio's `AsyncRead`/`AsyncWrite` traits (the traits
//! only: no tokio runtime is involved), because `h2` and the TLS stream speak
//! them; smol's sockets speak the `futures-io` traits, and [`Tcp`] bridges the
//! two, here and nowhere else.
//!
//! Next: [`TlsConfig`](tls::TlsConfig) for a private CA,
//! [`Client::websocket`](muxpool_client::Client::websocket) for WebSockets
//! from the same pool, and the `muxpool` facade's documentation for the whole
//! tour.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

pub use async_executor::Executor;
pub use muxpool_client::exports::*;
use muxpool_client::runtime::{Runtime, Timer};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

/// muxpool's client on smol.
pub type Client = muxpool_client::Client<Smol>;
/// Builds a [`Client`] on smol.
pub type ClientBuilder = muxpool_client::ClientBuilder<Smol>;

/// A TCP connection on smol, speaking the I/O traits the client frames on.
pub type Tcp = Compat<async_net::TcpStream>;

/// The smol runtime, as the client sees it: the global executor by default, or
/// an executor of your own.
#[derive(Clone, Debug, Default)]
pub struct Smol {
    executor: Option<Arc<Executor<'static>>>,
}

impl Smol {
    /// Spawns the client's tasks on `executor` instead of smol's global one. The
    /// executor must be run (for example with `executor.run(...)` on a thread)
    /// for as long as the client is used.
    pub fn on(executor: Arc<Executor<'static>>) -> Smol {
        Smol {
            executor: Some(executor),
        }
    }
}

/// A smol timer.
#[derive(Debug)]
pub struct Sleep(async_io::Timer);

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}

impl Timer for Sleep {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.set_at(deadline);
    }
}

impl Runtime for Smol {
    type Tcp = Tcp;
    type Timer = Sleep;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        match &self.executor {
            Some(executor) => executor.spawn(task).detach(),
            None => smol::spawn(task).detach(),
        }
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn timer(&self, deadline: Instant) -> Sleep {
        Sleep(async_io::Timer::at(deadline))
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<Tcp> {
        let tcp = async_net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(tcp.compat())
    }

    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        async_net::resolve((host, port)).await
    }
}
