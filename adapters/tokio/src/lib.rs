//! # muxpool-tokio: muxpool's HTTP client on tokio
//!
//! The whole client ([`muxpool_client`]: the pool, dialing, TLS, HTTP/1.1,
//! HTTP/2, WebSocket) runs on any runtime that implements its small
//! [`Runtime`] trait; this crate is that trait for tokio, and nothing else:
//! tasks go to `tokio::spawn`, timers are `tokio::time::Sleep` (so a test with a
//! paused clock controls the pool's time too), connects are
//! `tokio::net::TcpStream` with `TCP_NODELAY`, and names resolve through
//! `tokio::net::lookup_host`. It names the client [`Client`] and re-exports
//! the client layer's names ([`Body`], [`Error`], [`RequestTimeout`], [`tls`],
//! ...); the `muxpool` facade re-exports the same, and is the usual way in.
//!
//! ```toml
//! [dependencies]
//! muxpool-tokio = { git = "https://github.com/muxpool/muxpool" }
//! http = "1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! A request with a client-wide timeout and a shorter one of its own:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use muxpool_tokio::{Body, Client, ErrorKind, RequestTimeout};
//!
//! // With tokio's `macros` feature, `#[tokio::main] async fn main` does this in one line.
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//!     runtime.block_on(fetch())
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
//! A `Client` must be used from within a tokio runtime (it spawns its connect
//! and timer tasks there), and can be created anywhere; used outside one, a
//! request fails at once with [`ErrorKind::Runtime`]. Next:
//! [`TlsConfig`](tls::TlsConfig) for a private CA,
//! [`Client::websocket`](muxpool_client::Client::websocket) for WebSockets
//! from the same pool, and the `muxpool` facade's documentation for the whole
//! tour.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Instant;

pub use muxpool_client::exports::*;
use muxpool_client::runtime::{Runtime, Timer};

/// muxpool's client on tokio.
pub type Client = muxpool_client::Client<Tokio>;
/// Builds a [`Client`] on tokio.
pub type ClientBuilder = muxpool_client::ClientBuilder<Tokio>;

/// The tokio runtime, as the client sees it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

pin_project_lite::pin_project! {
    /// A tokio timer.
    #[derive(Debug)]
    pub struct Sleep {
        #[pin]
        sleep: tokio::time::Sleep,
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.project().sleep.poll(cx)
    }
}

impl Timer for Sleep {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.project().sleep.reset(deadline.into());
    }
}

impl Runtime for Tokio {
    type Tcp = tokio::net::TcpStream;
    type Timer = Sleep;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        // Outside any runtime (a response dropped after its runtime was shut
        // down) there is nowhere to run the task: it is dropped, as the runtime
        // would have dropped it.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            drop(handle.spawn(task));
        }
    }

    fn is_reachable(&self) -> bool {
        tokio::runtime::Handle::try_current().is_ok()
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn timer(&self, deadline: Instant) -> Sleep {
        Sleep {
            sleep: tokio::time::sleep_until(deadline.into()),
        }
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}
