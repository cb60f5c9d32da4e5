//! # muxpool
//!
//! A connection pool and multiplexer for clients of HTTP/1.1, HTTP/2 and WebSocket
//! servers, over TCP and TLS. Every decision (when to open, reuse, queue,
//! multiplex, drain, close, back off) is made by [`sans_io`], a pure state
//! machine with no I/O. The HTTP client around it ([`client`]: dialing, TLS,
//! HTTP/1.1, HTTP/2, WebSocket) is written once for every runtime; a runtime
//! adapter only spawns tasks, keeps time, connects and resolves.
//!
//! This crate is the facade. With the default `tokio` feature it names the
//! client on tokio: [`Client`], [`ClientBuilder`], [`Tokio`]. With the `smol`
//! feature, `muxpool::smol` is the same client on smol (the `muxpool-smol`
//! crate). Everything else ([`Body`], [`Error`], [`RequestTimeout`], [`tls`],
//! [`websocket`], ...) is the client layer's, the same on every runtime.
//!
//! # A first program
//!
//! The crates are not on crates.io; depend on the repository, with `http` to
//! build requests and tokio's `macros` and `rt-multi-thread` features for
//! `#[tokio::main]`:
//!
//! ```toml
//! [dependencies]
//! muxpool = { git = "https://github.com/muxpool/muxpool" }
//! http = "1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! One client per process, cloned into every task that needs it. A request is
//! an `http::Request` with a [`Body`]; the response's body streams from the
//! connection, and the connection goes back to the pool when it has been read.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use muxpool::{Body, Client, RequestTimeout};
//!
//! # #[cfg(feature = "tokio")]
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = Client::builder()
//!         .timeout(Duration::from_secs(10)) // every request, from send to the response head
//!         .build()?;
//!
//!     let mut request = http::Request::get("https://example.com/").body(Body::empty())?;
//!     // This one request may take 2 s at most.
//!     request.extensions_mut().insert(RequestTimeout(Duration::from_secs(2)));
//!
//!     let response = client.send(request).await?;
//!     println!("{}", response.status());
//!     println!("{}", response.into_body().text().await?);
//!     Ok(())
//! }
//! # #[cfg(not(feature = "tokio"))]
//! # fn main() {}
//! ```
//!
//! # Timeouts
//!
//! - [`ClientBuilder::timeout`](client::ClientBuilder::timeout) bounds every
//!   request, from [`send`](client::Client::send) to its response head
//!   (default 30 s); a [`RequestTimeout`] in a request's extensions replaces
//!   it for that request. The wait for a pooled connection, the connect and the
//!   retry on a fresh connection all count against it.
//! - [`read_timeout`](client::ClientBuilder::read_timeout) bounds each wait
//!   for the next bytes of a response body (default 30 s).
//! - [`connect_timeout`](client::ClientBuilder::connect_timeout) bounds a
//!   connect: resolution, TCP and TLS (default 10 s).
//! - [`idle_timeout`](client::ClientBuilder::idle_timeout) and
//!   [`max_lifetime`](client::ClientBuilder::max_lifetime) retire pooled
//!   connections (defaults 60 s and 300 s).
//!
//! # Trusting a private CA
//!
//! TLS verification is always on. By default the bundled Mozilla roots are
//! trusted; [`tls::TlsConfig`] adds CA certificates of your own
//! ([`tls::CaCertificates`]), uses the platform's store
//! ([`tls::Roots::Native`]), or trusts only your CAs
//! ([`tls::Roots::CustomOnly`]). Connections made with different TLS settings
//! are never shared: the TLS identity is part of the [`PoolKey`].
//!
//! ```no_run
//! use muxpool::tls::{CaCertificates, Roots, TlsConfig};
//! use muxpool::{Body, Client};
//!
//! # #[cfg(feature = "tokio")]
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let ca = CaCertificates::from_pem(std::fs::read("ca.pem")?)?;
//!     let tls = TlsConfig::builder()
//!         .roots(Roots::WebPki) // the default; Roots::CustomOnly trusts `ca` alone
//!         .add_ca(ca)
//!         .build()?;
//!     let client = Client::builder().tls(tls).build()?;
//!
//!     let request = http::Request::get("https://internal.example/").body(Body::empty())?;
//!     println!("{}", client.send(request).await?.status());
//!     Ok(())
//! }
//! # #[cfg(not(feature = "tokio"))]
//! # fn main() {}
//! ```
//!
//! # Errors
//!
//! Every failure is one [`Error`]: its [`kind`](Error::kind) says what the
//! caller can do about it, [`is_timeout`](Error::is_timeout) singles out
//! deadlines, and its [`source`](std::error::Error::source) chain says exactly
//! what happened (`{:#}` prints the whole chain). Port 1 of the local machine
//! is closed, so this program takes the [`ErrorKind::Connect`] arm:
//!
//! ```
//! use muxpool::{Body, Client, Error, ErrorKind};
//!
//! async fn fetch(client: &Client, url: &str) -> Result<String, Error> {
//!     let request = http::Request::get(url).body(Body::empty()).expect("a valid request");
//!     client.send(request).await?.into_body().text().await
//! }
//!
//! # #[cfg(feature = "tokio")]
//! #[tokio::main]
//! async fn main() {
//!     let client = Client::new();
//!     match fetch(&client, "http://127.0.0.1:1/").await {
//!         Ok(text) => println!("{text}"),
//!         Err(e) if e.is_timeout() => eprintln!("too slow: {e}"),
//!         Err(e) => match e.kind() {
//!             // Worth another try later.
//!             ErrorKind::Connect | ErrorKind::PoolExhausted | ErrorKind::CircuitOpen => {
//!                 eprintln!("unavailable: {e:#}")
//!             }
//!             // A certificate to trust, or a name to fix.
//!             ErrorKind::Tls => eprintln!("TLS: {e:#}"),
//!             _ => eprintln!("failed: {e:#}"),
//!         },
//!     }
//! }
//! # #[cfg(not(feature = "tokio"))]
//! # fn main() {}
//! ```
//!
//! # Where to go next
//!
//! - WebSockets from the same pool: [`Client::websocket`](client::Client::websocket),
//!   the [`websocket`] module, and [`ReconnectingWebSocket`] for one that
//!   reopens itself.
//! - Message protocols (JSON-RPC, MCP and the like) over a WebSocket or over
//!   HTTP with one interface: [`MessageChannel`], from
//!   [`Client::messages_over_websocket`](client::Client::messages_over_websocket)
//!   and [`Client::messages_over_http`](client::Client::messages_over_http).
//! - Compressed responses, decoded as they stream: the features `gzip`,
//!   `deflate`, `brotli` and `zstd`, and [`Decompression`] for what is
//!   decoded and its limits against decompression bombs.
//! - The pool's limits, backoff, circuit breaker and health checks:
//!   [`PoolConfig`] and [`ClientBuilder::pool`](client::ClientBuilder::pool);
//!   what it is doing: [`Client::stats`](client::Client::stats).
//! - The core on its own, to drive from I/O of your own: [`sans_io`].
//! - Another runtime: [`runtime::Runtime`], and `docs/writing-an-adapter.md`
//!   in the repository.
//! - How the pieces fit:
//!   [docs/architecture.md](https://github.com/muxpool/muxpool/blob/main/docs/architecture.md).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The sans-IO pool state machine that makes every decision: see
/// [`muxpool_core`].
pub use muxpool_core as sans_io;

/// The runtime-agnostic client layer: see [`muxpool_client`].
pub use muxpool_client as client;

#[cfg(feature = "tokio")]
pub use muxpool_tokio::{Client, ClientBuilder, Tokio};

/// The client on smol: see [`muxpool_smol`].
#[cfg(feature = "smol")]
pub use muxpool_smol as smol;

pub use muxpool_client::exports::*;

/// The README's Rust examples, compiled (and the runnable ones run) as doc
/// tests, so that what the README shows is what the crates accept.
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The examples of `docs/common-tasks.md`, compiled as doc tests.
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../docs/common-tasks.md")]
pub struct CommonTasksDoctests;
