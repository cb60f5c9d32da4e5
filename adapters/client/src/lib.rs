//! # muxpool-client: the runtime-agnostic client layer
//!
//! Everything muxpool's HTTP client does that is the same on every async runtime
//! lives here, written once: the public [`Client`], the pool glue that carries out
//! the decisions of [`muxpool_core`], connecting with Happy Eyeballs, TLS
//! configuration with rustls ([`tls`]) and HTTP/1.1 framing ([`h1`]). A runtime
//! adapter implements the small [`Runtime`](runtime::Runtime) trait (spawn, time,
//! TCP connect, name resolution) and nothing else.
//!
//! # Using it
//!
//! Applications use the adapter crate for their runtime (`muxpool-tokio`, or the
//! `muxpool` facade), which names `Client` for its runtime. The client is the
//! same on every runtime:
//!
//! ```
//! use muxpool_client::{runtime::Runtime, Body, Client, Error};
//!
//! async fn fetch<R: Runtime>(client: &Client<R>) -> Result<String, Error> {
//!     let request = http::Request::get("http://127.0.0.1:8080/")
//!         .body(Body::empty())
//!         .expect("a valid request");
//!     client.send(request).await?.into_body().text().await
//! }
//! ```

// One `unsafe` block, in `h1::fields`, builds header values the parser has
// already checked; every other line is safe code.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod body;
mod client;
mod connect;
pub mod connection;
mod deadlines;
mod error;
pub mod h1;
mod http1;
mod http2;
mod origin;
mod outgoing;
mod pool;
pub mod runtime;
mod session;
mod settings;
mod timeout;
pub mod tls;
pub mod websocket;

pub use body::{Body, DEFAULT_MAX_COLLECT};
pub use client::{Client, ClientBuilder, Timeout, DEFAULT_READ_TIMEOUT, DEFAULT_TIMEOUT};
pub use connect::ATTEMPT_DELAY;
pub use error::{Error, ErrorKind, Result};
pub use muxpool_core::{PoolConfig, Stats};
pub use origin::{Origin, Security, WsTarget};
pub use session::Session;
pub use websocket::{Message, WebSocket, WebSocketError};
