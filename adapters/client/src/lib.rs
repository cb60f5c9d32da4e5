//! # muxpool-client: the runtime-agnostic client layer
//!
//! Everything muxpool's HTTP client does that is the same on every async runtime
//! lives here, written once: TLS configuration with rustls ([`tls`]) and HTTP/1.1
//! framing ([`h1`]), both sans-IO, so the tokio and smol adapters only move bytes,
//! spawn tasks and keep time.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod h1;
pub mod tls;
