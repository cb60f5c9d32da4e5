//! What a server sends, through the HTTP/1.1 response parser and body decoder,
//! read whole and in arbitrary pieces: the two readings must agree and the
//! codec keep its promises. The harness lives in
//! `muxpool_client::h1::harness::fuzz`, so the client layer's tests replay the
//! corpus on stable through the same code.
//!
//! Run: `cargo +nightly fuzz run h1_response` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| muxpool_client::h1::harness::fuzz(data));
