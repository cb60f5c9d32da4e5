//! The decoders against the usual encoders, fed whole and a byte at a time;
//! their checks (checksums, truncation, bytes after the end); the limits;
//! and which requests and responses are decoded at all.

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, RANGE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use muxpool_testkit::compress::{self, bomb, encode, text};

use super::{Coding, Decoder, Decompression, DecompressionError, CHUNK, RATIO_ALLOWANCE};
use crate::error::{Error, ErrorKind};

/// The coding each of the encoders' names decodes with.
fn coding_of(name: &str) -> Coding {
    match name {
        "gzip" | "x-gzip" => Coding::Gzip,
        "deflate" | "deflate-raw" => Coding::Deflate,
        "br" => Coding::Brotli,
        "zstd" => Coding::Zstd,
        other => panic!("{other}"),
    }
}

fn decoder(coding: Coding, settings: Decompression) -> Decoder {
    Decoder::new(coding, &settings).expect("every coding is compiled in")
}

/// Feeds `pieces` to a decoder as a body's frames would come, and reads
/// everything out; checks that no piece it gave out is larger than
/// [`CHUNK`].
fn decode_all(decoder: &mut Decoder, pieces: &[&[u8]]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for piece in pieces {
        let mut input = Bytes::copy_from_slice(piece);
        while !input.is_empty() || decoder.has_output() {
            if let Some(data) = decoder.decode(&mut input)? {
                assert!(data.len() <= CHUNK);
                out.extend_from_slice(&data);
            }
        }
    }
    while let Some(data) = decoder.decode(&mut Bytes::new())? {
        out.extend_from_slice(&data);
    }
    decoder.finish()?;
    Ok(out)
}

/// What the default decoder of the coding `name` makes of `pieces`.
fn decode_pieces(name: &str, pieces: &[&[u8]]) -> Result<Vec<u8>, Error> {
    decode_all(&mut decoder(coding_of(name), Decompression::new()), pieces)
}

fn cause(error: &Error) -> &DecompressionError {
    assert_eq!(error.kind(), ErrorKind::Body, "{error:#}");
    error.decompression().expect("a decompression error")
}

#[test]
fn every_coding_decodes_whole_and_byte_by_byte() {
    let original = text(300_000);
    for name in compress::CODINGS {
        let encoded = encode(name, &original);
        let whole = decode_pieces(name, &[&encoded]).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(whole == original, "{name}: whole");
        let bytes: Vec<&[u8]> = encoded.chunks(1).collect();
        let split = decode_pieces(name, &bytes).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(split == original, "{name}: byte by byte");
    }
}

#[test]
fn an_empty_body_decodes_to_nothing() {
    for coding in Coding::ALL {
        let out = decode_all(&mut decoder(coding, Decompression::new()), &[]).expect("empty");
        assert!(out.is_empty(), "{coding}");
    }
}

#[test]
fn gzip_members_follow_one_another() {
    let mut encoded = encode("gzip", b"first, ");
    encoded.extend(encode("gzip", b"second"));
    let out = decode_pieces("gzip", &[&encoded]).expect("two members");
    assert_eq!(out, b"first, second");
}

/// A header with every optional field (extra, name, comment, its own CRC),
/// split anywhere.
#[test]
fn gzip_headers_with_every_field() {
    let plain = encode("gzip", b"payload");
    let mut header = vec![0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 0, 0, 0, 0, 0, 255];
    header.extend_from_slice(&[3, 0, b'a', b'b', b'c']);
    header.extend_from_slice(b"name.txt\0a comment\0");
    let mut crc = flate2::Crc::new();
    crc.update(&header);
    header.extend_from_slice(&(crc.sum() as u16).to_le_bytes());
    let mut encoded = header;
    encoded.extend_from_slice(&plain[10..]);
    let pieces: Vec<&[u8]> = encoded.chunks(3).collect();
    let out = decode_pieces("gzip", &pieces).expect("a full header");
    assert_eq!(out, b"payload");

    // The header's CRC is checked.
    let crc_at = encoded.len() - plain.len() + 10 - 1;
    encoded[crc_at] ^= 1;
    let error = decode_pieces("gzip", &[&encoded]).expect_err("a bad header CRC");
    assert!(
        matches!(cause(&error), DecompressionError::Corrupt { .. }),
        "{error:#}"
    );
}

#[test]
fn checksums_are_checked() {
    let original = text(10_000);
    for (name, at_end) in [("gzip", 8), ("deflate", 4)] {
        let mut encoded = encode(name, &original);
        let at = encoded.len() - at_end;
        encoded[at] ^= 0xff;
        let error = decode_pieces(name, &[&encoded]).expect_err("a bad checksum");
        assert!(
            matches!(cause(&error), DecompressionError::Corrupt { .. }),
            "{name}: {error:#}"
        );
    }
}

#[test]
fn a_truncated_stream_is_an_error() {
    let original = text(10_000);
    for name in compress::CODINGS {
        let encoded = encode(name, &original);
        let half = &encoded[..encoded.len() / 2];
        let error = decode_pieces(name, &[half]).expect_err("truncated");
        assert!(
            matches!(cause(&error), DecompressionError::Truncated { .. }),
            "{name}: {error:#}"
        );
        assert!(error.to_string().contains("ended before"), "{error}");
    }
}

#[test]
fn bytes_after_the_end_are_an_error() {
    for name in compress::CODINGS {
        let mut encoded = encode(name, b"some text");
        encoded.extend_from_slice(b"garbage after the stream");
        let error = decode_pieces(name, &[&encoded]).expect_err("trailing garbage");
        assert!(
            matches!(cause(&error), DecompressionError::Corrupt { .. }),
            "{name}: {error:#}"
        );
    }
}

/// A bomb stops within a piece of the ratio's limit, having decoded little
/// more than the allowance; a size limit stops any body.
#[test]
fn limits_stop_bombs() {
    for name in ["gzip", "deflate", "zstd"] {
        let bomb = bomb(name, 64);
        let mut decoder = decoder(coding_of(name), Decompression::new());
        let error = decode_all(&mut decoder, &[&bomb]).expect_err("a bomb");
        match cause(&error) {
            DecompressionError::RatioExceeded {
                max_ratio: 200,
                compressed,
                decoded,
                ..
            } => {
                assert!(*decoded > RATIO_ALLOWANCE, "{name}");
                assert!(*decoded <= (compressed * 200).max(RATIO_ALLOWANCE) + CHUNK as u64);
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    let original = text(300_000);
    let settings = Decompression::new().max_size(Some(100_000));
    for name in compress::CODINGS {
        let encoded = encode(name, &original);
        let error = decode_all(&mut decoder(coding_of(name), settings), &[&encoded])
            .expect_err("too large");
        assert_eq!(
            cause(&error),
            &DecompressionError::SizeExceeded {
                coding: coding_of(name),
                max_size: 100_000
            },
            "{name}"
        );
    }

    // Without a ratio limit, the bomb decodes (its checksums pass).
    let bomb = bomb("gzip", 8);
    let mut unlimited = decoder(Coding::Gzip, Decompression::new().max_ratio(None));
    let out = decode_all(&mut unlimited, &[&bomb]).expect("no limit");
    assert_eq!(out.len(), 8 << 20);
}

/// A small body that compresses very well is within the allowance.
#[test]
fn small_bodies_may_compress_very_well() {
    let zeros = vec![0u8; RATIO_ALLOWANCE as usize];
    for name in compress::CODINGS {
        let encoded = encode(name, &zeros);
        assert!(encoded.len() * 200 < zeros.len(), "{name}");
        let out = decode_pieces(name, &[&encoded]).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(out.len(), zeros.len());
    }
}

#[test]
fn requests_ask_unless_they_said_otherwise() {
    let settings = Decompression::new();
    let accept = settings.accept_encoding().expect("codings compiled in");
    assert_eq!(accept, "gzip, br, zstd, deflate");
    assert_eq!(
        Decompression::off()
            .with(Coding::Zstd)
            .with(Coding::Gzip)
            .accept_encoding()
            .expect("two"),
        "gzip, zstd"
    );
    assert_eq!(Decompression::off().accept_encoding(), None);
    assert!(!Decompression::off().is_on());

    let mut headers = HeaderMap::new();
    assert!(Decompression::prepare(&Method::GET, &mut headers, &accept));
    assert_eq!(headers[ACCEPT_ENCODING], accept);

    for (method, name, value) in [
        (Method::HEAD, None, ""),
        (Method::GET, Some(ACCEPT_ENCODING), "identity"),
        (Method::GET, Some(RANGE), "bytes=0-99"),
    ] {
        let mut headers = HeaderMap::new();
        if let Some(name) = name.clone() {
            headers.insert(name, HeaderValue::from_static(value));
        }
        assert!(
            !Decompression::prepare(&method, &mut headers, &accept),
            "{method} {name:?}"
        );
        assert_eq!(
            headers
                .get(ACCEPT_ENCODING)
                .map(|v| v.to_str().unwrap_or("")),
            (name == Some(ACCEPT_ENCODING)).then_some("identity"),
        );
    }
}

#[test]
fn which_responses_are_decoded() {
    let settings = Decompression::new();
    let decoded = |status: u16, encodings: &[&str]| {
        let mut headers = HeaderMap::new();
        for e in encodings {
            headers.append(CONTENT_ENCODING, HeaderValue::from_str(e).expect("a value"));
        }
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("10"));
        let status = StatusCode::from_u16(status).expect("a status");
        let decoder = settings.decoder_for(status, &mut headers);
        // Headers go exactly when the body is decoded.
        assert_eq!(
            decoder.is_some(),
            !headers.contains_key(CONTENT_LENGTH) && !headers.contains_key(CONTENT_ENCODING)
        );
        decoder.is_some()
    };
    for coding in ["gzip", "GZip", " x-gzip", "deflate", "br", "zstd "] {
        assert!(decoded(200, &[coding]), "{coding}");
        assert!(decoded(404, &[coding]), "{coding}");
    }
    assert!(!decoded(200, &[]));
    assert!(!decoded(200, &["identity"]));
    assert!(!decoded(200, &["compress"]));
    assert!(!decoded(200, &["gzip, br"]));
    assert!(!decoded(200, &["gzip", "br"]));
    for status in [204, 206, 304] {
        assert!(!decoded(status, &["gzip"]), "{status}");
    }

    // A coding turned off is left alone.
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
    let without = Decompression::new().without(Coding::Brotli);
    assert!(without.decoder_for(StatusCode::OK, &mut headers).is_none());
    assert!(headers.contains_key(CONTENT_ENCODING));
}
