//! # muxpool-client: the runtime-agnostic client layer
//!
//! Everything muxpool's HTTP client does that is the same on every async
//! runtime lives here, written once: the public [`Client`], the pool glue that
//! carries out the decisions of [`muxpool_core`], dialing (Happy Eyeballs,
//! TLS with rustls: [`tls`]), HTTP/1.1 framing, HTTP/2 through `h2`, and
//! WebSockets through `tungstenite`. A runtime adapter implements the small
//! [`Runtime`](runtime::Runtime) trait (spawn, time, TCP connect, name
//! resolution) and nothing else.
//!
//! # Using it
//!
//! Applications use the adapter crate for their runtime (`muxpool-tokio`,
//! `muxpool-smol`, or the `muxpool` facade), which names `Client` for its
//! runtime and re-exports [`exports`]. The client is the same on every
//! runtime:
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
//!
//! # Layers
//!
//! Each module imports only from the ones below it (the suite checks that no
//! two import each other in a cycle); `docs/architecture.md` in the
//! repository draws the whole picture.
//!
//! 1. Leaves: `error`, `config`, [`runtime`], the HTTP/1.1 codec (`h1`),
//!    [`tls`], [`proxy`] (which requests go through which proxy), `service`
//!    (a [`Service`] of many endpoints, as configured), the
//!    decoders of compressed bodies (`decompress`, one Cargo feature per
//!    coding), and the small `timeout` and `session` helpers.
//! 2. `dial`: the [`PoolKey`] and opening a transport to it; beside it,
//!    [`metrics`] and `trace` (the `tracing` spans and events).
//! 3. `conn`: one connection, knowing nothing of the pool, one sibling per
//!    protocol (`conn::h1`, `conn::h2`, `conn::ws`).
//! 4. `pool`: the core behind one lock, checkout, the connect task, timers.
//! 5. The public API: [`Body`], [`Client`] and its builder, [`websocket`],
//!    and the message [`channel`].

// One `unsafe` block, in `h1::fields`, builds header values the parser has
// already checked; every other line is safe code.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod body;
pub mod channel;
mod client;
mod config;
mod conn;
// The decoders are unstable interface for fuzzing, behind `unstable`.
#[cfg(feature = "unstable")]
pub mod decompress;
#[cfg(not(feature = "unstable"))]
mod decompress;
mod dial;
mod error;
#[cfg(feature = "unstable")]
pub mod h1;
#[cfg(not(feature = "unstable"))]
mod h1;
pub mod metrics;
mod pool;
pub mod proxy;
pub mod resolve;
mod response;
pub mod runtime;
mod semconv;
mod service;
mod session;
mod timeout;
pub mod tls;
mod trace;
pub mod websocket;

pub use body::{Body, DEFAULT_MAX_COLLECT};
pub use client::{
    Client, ClientBuilder, Idempotent, RequestTimeout, DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_HEALTH_CHECK_TIMEOUT, DEFAULT_READ_TIMEOUT, DEFAULT_TIMEOUT,
};
pub use config::Redirect;
pub use decompress::{
    Coding, Decompression, DecompressionError, DEFAULT_MAX_RATIO, RATIO_ALLOWANCE,
};
pub use dial::{PoolKey, Security, WsTarget, ATTEMPT_DELAY};
pub use error::{Error, ErrorKind, Origin, Result, WebSocketError};
pub use h1::{Error as H1Error, Limits as H1Limits};
pub use muxpool_core::{
    Backoff, Balance, Circuit, Endpoint, EndpointState, Failover, HealthCheck, Outliers,
    PoolConfig, RetryBudget, Saturation, Stats,
};
pub use proxy::{NoProxy, Proxy, ProxyChoice};
pub use resolve::{CachingResolver, Resolve};
pub use response::ResponseExt;
pub use service::Service;
pub use session::Session;
pub use websocket::{Message, WebSocket, WebSocketSender};

/// The names every runtime's crate re-exports, one list for all of them:
/// `muxpool-tokio`, `muxpool-smol` and the `muxpool` facade each say
/// `pub use muxpool_client::exports::*;` and add their runtime's `Client`
/// and `ClientBuilder`.
pub mod exports {
    pub use crate::channel::{ChannelOptions, Codec, MessageChannel};
    pub use crate::websocket::{Reconnect, ReconnectingWebSocket};
    pub use crate::{
        metrics, metrics::Metrics, proxy, resolve, runtime, tls, websocket, Backoff, Balance, Body,
        CachingResolver, Circuit, Coding, Decompression, DecompressionError, Endpoint,
        EndpointState, Error, ErrorKind, Failover, H1Error, H1Limits, HealthCheck, Idempotent,
        Message, NoProxy, Origin, Outliers, PoolConfig, PoolKey, Proxy, ProxyChoice, Redirect,
        RequestTimeout, Resolve, ResponseExt, Result, RetryBudget, Saturation, Service, Session,
        Stats, WebSocket, WebSocketError, WebSocketSender,
    };
}
