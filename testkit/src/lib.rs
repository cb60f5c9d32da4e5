//! # muxpool-testkit: real servers on loopback
//!
//! muxpool's integration tests and benchmarks talk to real servers, never to
//! mocks. This crate starts them, each on an ephemeral loopback port, each
//! stopped when its handle is dropped:
//!
//! - [`compress`]: each content coding's encoder, compressible text, and
//!   decompression bombs, for the decompression tests.
//! - [`certs`]: test certificate authorities and leaves made with rcgen at run time
//!   (valid, expired, for the wrong host, from an untrusted CA).
//! - [`nginx`]: the Debian nginx binary with a generated configuration (plain,
//!   TLS, HTTP/2, keep-alive limits), and its count of accepted connections.
//! - [`tinyproxy`]: Debian's tinyproxy with a generated configuration, a
//!   real forward proxy (`CONNECT` tunnels, absolute-form requests, Basic
//!   credentials), and the request lines it read.
//! - [`hyper_server`]: in-process HTTP/1.1 and HTTP/2 servers built on hyper, that
//!   count the connections they accept.
//! - [`ws_server`]: an in-process WebSocket server on tungstenite that echoes,
//!   closes, drops or stalls on demand, and records its handshakes.
//! - [`hostile`]: servers that misbehave on purpose (garbage, huge headers,
//!   truncated bodies, resets, silence).
//! - [`h2_frames`]: an HTTP/2 server written frame by frame, whose every
//!   frame a test chooses (a GOAWAY naming a chosen last stream, SETTINGS
//!   changed mid-connection).
//! - [`scripted`]: a server that answers from a script over an in-memory
//!   transport, and the whole client fuzzed against it.
//! - [`runtime`]: where they run: the caller's tokio runtime, or the testkit's
//!   own in the background, so clients on any runtime can use them.
//! - [`rng`]: a small seeded generator, so a randomized test replays from its
//!   seed.
//! - [`layering`]: the module graph of a crate's sources, which the suite
//!   checks for cycles.

#![deny(missing_docs)]

pub mod certs;
pub mod compress;
pub mod decode;
pub mod h2_frames;
pub mod hostile;
pub mod hyper_server;
pub mod layering;
pub mod nginx;
pub mod rng;
pub mod runtime;
pub mod scripted;
pub mod tinyproxy;
pub mod ws_server;
