//! Arbitrary sequences of the pool's inputs, every step checked by
//! `muxpool_core::sim::Checker`. The decoding and the checks live in
//! `muxpool_core::sim::fuzz`, so `core/tests/simulation/fuzz_corpus.rs` replays the corpus on
//! stable through the same code.
//!
//! Run: `cargo +nightly fuzz run pool_ops` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = muxpool_core::sim::fuzz::run(data) {
        panic!("{violation}");
    }
});
