//! # muxpool
//!
//! A connection pool and multiplexer for clients of HTTP/1.1, HTTP/2 and WebSocket
//! servers, over TCP and TLS. Every decision (when to open, reuse, queue,
//! multiplex, drain, close, back off) is made by [`core`], a pure state machine
//! with no I/O; runtime adapters do the sockets, TLS and framing.
//!
//! This crate is the facade. With the default `tokio` feature it names the client
//! on tokio (with the `smol` feature, [`smol`] has the same client on smol):
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn run() -> Result<(), muxpool::Error> {
//! let client = muxpool::Client::new();
//! let request = http::Request::get("http://127.0.0.1:8080/")
//!     .body(muxpool::Body::empty())
//!     .expect("a valid request");
//! let response = client.send(request).await?;
//! println!("{}", response.into_body().text().await?);
//! # Ok(())
//! # }
//! ```

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
