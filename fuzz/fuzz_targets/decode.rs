//! The response decoders (gzip, deflate, brotli, zstd) on arbitrary bytes,
//! fed in pieces of arbitrary sizes under a size and a ratio limit: every
//! decode ends, decoded or with a typed error, within its limits. The harness
//! lives in `muxpool_testkit::decode`, so the client layer's tests replay the
//! corpus on stable through the same code.
//!
//! Run: `cargo +nightly fuzz run decode` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = muxpool_testkit::decode::fuzz_decode(data);
});
