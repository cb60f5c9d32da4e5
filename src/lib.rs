//! # muxpool
//!
//! A connection pool and multiplexer for clients of HTTP/1.1, HTTP/2 and WebSocket
//! servers, over TCP and TLS. Every decision (when to open, reuse, queue,
//! multiplex, drain, close, back off) is made by [`core`], a pure state machine
//! with no I/O; runtime adapters do the sockets, TLS and framing.
//!
//! This crate is the facade: it re-exports the core today, and the client and its
//! runtime adapters as they are enabled by features.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The sans-IO pool state machine: see [`muxpool_core`].
pub use muxpool_core as core;
