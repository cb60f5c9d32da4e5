//! The harness of the `decode` fuzz target: a response body in one of the
//! content codings, fed to the client's decoder in pieces whose sizes the
//! input chooses, under limits the input chooses too.
//!
//! Whatever the bytes, decoding must end (decoded, or a typed error), never
//! panic, never give a piece larger than [`CHUNK`], and never decode past a
//! limit by more than one piece: the size limit, and the ratio limit past
//! its allowance. The client layer's tests replay the committed corpus
//! through the same function.

use bytes::Bytes;
use muxpool_client::decompress::{Coding, Decoder, Decompression, CHUNK, RATIO_ALLOWANCE};

/// The size limit every decode runs under.
pub const MAX_SIZE: u64 = 4 << 20;

/// How one decode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The stream decoded whole to this many bytes.
    Whole(u64),
    /// A typed error after this many bytes.
    Failed(u64),
    /// The input was too short to choose a coding, or the coding is not
    /// compiled in.
    Unsupported,
}

/// Decodes `data`: its first byte picks the coding (low two bits) and a
/// ratio limit of 2 or 200 (bit 2), its second seeds the piece sizes (1 to
/// 4,096 bytes), the rest is the compressed body.
pub fn fuzz_decode(data: &[u8]) -> Decoded {
    let [selector, seed, body @ ..] = data else {
        return Decoded::Unsupported;
    };
    let coding = match selector % 4 {
        0 => Coding::Gzip,
        1 => Coding::Deflate,
        2 => Coding::Brotli,
        _ => Coding::Zstd,
    };
    let ratio: u32 = if selector & 4 == 0 { 200 } else { 2 };
    let settings = Decompression::new()
        .max_size(Some(MAX_SIZE))
        .max_ratio(Some(ratio));
    let Some(mut decoder) = Decoder::new(coding, &settings) else {
        return Decoded::Unsupported;
    };
    let mut rest = Bytes::copy_from_slice(body);
    let mut fed = 0u64;
    let mut decoded = 0u64;
    let mut state = u32::from(*seed) | 1;
    // Within the limits, a decode may pass them by one piece at most.
    let bound = |fed: u64| {
        MAX_SIZE.min(RATIO_ALLOWANCE.max(fed.saturating_mul(u64::from(ratio)))) + CHUNK as u64
    };
    let mut step = |decoder: &mut Decoder, piece: &mut Bytes, fed: u64| -> Option<bool> {
        match decoder.decode(piece) {
            Ok(Some(out)) => {
                assert!(out.len() <= CHUNK, "a piece of {} bytes", out.len());
                decoded += out.len() as u64;
                assert!(decoded <= bound(fed), "{decoded} decoded from {fed}");
                Some(true)
            }
            Ok(None) => Some(false),
            Err(_) => None,
        }
    };
    while !rest.is_empty() {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let n = (state >> 16) as usize % 4096 + 1;
        let mut piece = rest.split_to(n.min(rest.len()));
        fed += piece.len() as u64;
        loop {
            match step(&mut decoder, &mut piece, fed) {
                Some(true) => {}
                Some(false) => break,
                None => return Decoded::Failed(decoded),
            }
        }
        assert!(
            piece.is_empty(),
            "a decode that gave nothing left input behind"
        );
    }
    while decoder.has_output() {
        match step(&mut decoder, &mut Bytes::new(), fed) {
            Some(true) => {}
            Some(false) => break,
            None => return Decoded::Failed(decoded),
        }
    }
    match decoder.finish() {
        Ok(()) => Decoded::Whole(decoded),
        Err(_) => Decoded::Failed(decoded),
    }
}
