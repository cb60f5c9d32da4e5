//! Compressed bodies for the decompression tests: each content coding's
//! encoder, compressible text to feed them, and decompression bombs.
//!
//! The encoders are the usual crates (flate2, brotli, zstd) at modest
//! levels, so that the tests' debug builds encode quickly. A bomb is made
//! without compressing all it decodes to: a run of zeros is compressed
//! once, and its compressed form repeated (deflate blocks after a sync
//! flush, or whole zstd frames), so a gibibyte of zeros costs the test a
//! few milliseconds.

use std::io::Write;

use flate2::{Compress, Compression, Crc, FlushCompress};

/// The content codings the encoders speak, by their names in
/// `Content-Encoding`; `deflate-raw` is a raw deflate stream (RFC 1951),
/// sent as `deflate`, as some servers do.
pub const CODINGS: [&str; 5] = ["gzip", "deflate", "deflate-raw", "br", "zstd"];

/// `n` bytes of compressible text: numbered lines of a few words, with
/// enough variety that each coding has work to do.
pub fn text(n: usize) -> Vec<u8> {
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
    ];
    let mut out = Vec::with_capacity(n + 64);
    let mut i = 0usize;
    while out.len() < n {
        let _ = writeln!(
            out,
            "{i:06} {} {} {}",
            words[i % 7],
            words[(i / 7) % 7],
            words[(i * 13) % 7]
        );
        i += 1;
    }
    out.truncate(n);
    out
}

/// `data` encoded in `coding` (one of [`CODINGS`]).
///
/// # Panics
///
/// On a coding it does not know.
pub fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" | "x-gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
            e.write_all(data).expect("writing to memory");
            e.finish().expect("writing to memory")
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Compression::new(6));
            e.write_all(data).expect("writing to memory");
            e.finish().expect("writing to memory")
        }
        "deflate-raw" => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::new(6));
            e.write_all(data).expect("writing to memory");
            e.finish().expect("writing to memory")
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                e.write_all(data).expect("writing to memory");
            }
            out
        }
        "zstd" => zstd::bulk::compress(data, 3).expect("zstd compresses"),
        other => panic!("no encoder for {other:?}"),
    }
}

/// The name `coding` is sent under in `Content-Encoding`.
pub fn header_name(coding: &str) -> &str {
    match coding {
        "deflate-raw" => "deflate",
        other => other,
    }
}

/// One mebibyte, the unit bombs are made of.
const MIB: usize = 1024 * 1024;

/// A decompression bomb: `mib` MiB of zeros in `coding` (`gzip`, `deflate`
/// or `zstd`), about a thousandth of that for the deflate codings and far
/// less for zstd. The stream is valid to its end (checksums included).
///
/// # Panics
///
/// On another coding, or `mib` under 2.
pub fn bomb(coding: &str, mib: usize) -> Vec<u8> {
    assert!(mib >= 2, "a bomb of at least 2 MiB");
    let zeros = vec![0u8; MIB];
    match coding {
        "gzip" | "deflate" => {
            let gzip = coding == "gzip";
            let mut out = if gzip {
                vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]
            } else {
                // zlib: deflate, 32 KiB window, best compression, FCHECK.
                vec![0x78, 0xda]
            };
            // The first MiB, then a MiB that refers back only to zeros: its
            // blocks, byte-aligned by the sync flush, decode to a MiB of
            // zeros wherever they stand after zeros.
            let mut deflate = Compress::new(Compression::best(), false);
            let first = deflate_chunk(&mut deflate, &zeros, FlushCompress::Sync);
            let again = deflate_chunk(&mut deflate, &zeros, FlushCompress::Sync);
            out.extend_from_slice(&first);
            for _ in 1..mib {
                out.extend_from_slice(&again);
            }
            out.extend_from_slice(&deflate_chunk(&mut deflate, &[], FlushCompress::Finish));
            let total = (mib * MIB) as u64;
            if gzip {
                let mut one = Crc::new();
                one.update(&zeros);
                let mut crc = Crc::new();
                for _ in 0..mib {
                    crc.combine(&one);
                }
                out.extend_from_slice(&crc.sum().to_le_bytes());
                out.extend_from_slice(&(total as u32).to_le_bytes());
            } else {
                // Adler-32 of zeros: A stays 1, B adds 1 a byte.
                let adler = (((total % 65521) as u32) << 16) | 1;
                out.extend_from_slice(&adler.to_be_bytes());
            }
            out
        }
        "zstd" => {
            let frame = zstd::bulk::compress(&zeros, 3).expect("zstd compresses");
            frame.repeat(mib)
        }
        other => panic!("no bomb for {other:?}"),
    }
}

/// What `deflate` makes of `input` with `flush`.
fn deflate_chunk(deflate: &mut Compress, input: &[u8], flush: FlushCompress) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 100 + 1024);
    let mut offset = 0;
    loop {
        let before = deflate.total_in();
        deflate
            .compress_vec(&input[offset..], &mut out, flush)
            .expect("deflate compresses");
        offset += (deflate.total_in() - before) as usize;
        if offset == input.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity().max(1024));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// A bomb is a valid stream of the zeros it claims, checksums and all.
    #[test]
    fn bombs_decode_to_zeros() {
        for coding in ["gzip", "deflate", "zstd"] {
            let bomb = bomb(coding, 4);
            let mut decoded = Vec::new();
            match coding {
                "gzip" => flate2::read::GzDecoder::new(&bomb[..]).read_to_end(&mut decoded),
                "deflate" => flate2::read::ZlibDecoder::new(&bomb[..]).read_to_end(&mut decoded),
                _ => zstd::stream::read::Decoder::new(&bomb[..])
                    .expect("a decoder")
                    .read_to_end(&mut decoded),
            }
            .unwrap_or_else(|e| panic!("{coding}: {e}"));
            assert_eq!(decoded.len(), 4 * MIB, "{coding}");
            assert!(decoded.iter().all(|&b| b == 0), "{coding}");
            assert!(bomb.len() < 4 * MIB / 200, "{coding}: {} bytes", bomb.len());
        }
    }
}
