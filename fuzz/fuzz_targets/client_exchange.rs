//! The whole client against a scripted server: one to four HTTP requests
//! (HTTP/1.1, or HTTP/2 with prior knowledge) through the pool, over an
//! in-memory transport, answered with fuzzed bytes. Every request must end,
//! with a response or a typed error, and the pool must stay consistent and
//! close every connection at shutdown. The harness lives in
//! `muxpool_testkit::scripted`, so the client layer's tests replay the corpus
//! on stable through the same code.
//!
//! Run: `cargo +nightly fuzz run client_exchange` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = muxpool_testkit::scripted::fuzz_http(data);
});
