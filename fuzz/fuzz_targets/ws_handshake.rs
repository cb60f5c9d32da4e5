//! A WebSocket opened through the pool against a scripted server whose
//! handshake response and frames are fuzzed bytes, over an in-memory
//! transport: the opening must succeed or fail with a typed error, the
//! messages after it end the same way, and the pool must stay consistent and
//! close every connection at shutdown. The harness lives in
//! `muxpool_testkit::scripted`, so the client layer's tests replay the corpus
//! on stable through the same code.
//!
//! Run: `cargo +nightly fuzz run ws_handshake` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = muxpool_testkit::scripted::fuzz_websocket(data);
});
