//! Chunked bodies: sizes in any case with leading zeros, extensions ignored,
//! trailers parsed under the head's limits, strict CRLFs, bounded size lines,
//! overflow, and truncation at every point; and the request encoder's chunks
//! decoded back to what was sent.

use super::support::{bytewise, drive, get, open, whole};
use bytes::BytesMut;
use http::header::HeaderValue;
use http::HeaderMap;
use muxpool_client::h1::{
    BodyDecoder, BodyEncoder, BodyEvent, Error, Framing, KeepAlive, Limits, RequestBody,
};
use proptest::prelude::*;

fn decoder() -> BodyDecoder {
    BodyDecoder::new(Framing::Chunked, KeepAlive::REUSABLE, Limits::default())
}

/// Decodes `body` whole, then at EOF: the data, the trailers and the end.
fn decode_all(
    body: &[u8],
    limits: Limits,
) -> Result<(Vec<u8>, Option<HeaderMap>, KeepAlive), Error> {
    let mut decoder = BodyDecoder::new(Framing::Chunked, KeepAlive::REUSABLE, limits);
    let mut buf = BytesMut::from(body);
    let (mut data, mut trailers) = (Vec::new(), None);
    loop {
        match decoder.decode_eof(&mut buf)? {
            BodyEvent::Data(bytes) => data.extend_from_slice(&bytes),
            BodyEvent::Trailers(map) => trailers = Some(map),
            BodyEvent::End(keep_alive) => return Ok((data, trailers, keep_alive)),
            other => panic!("unknown event {other:?}"),
        }
    }
}

fn chunk_error(body: &[u8]) -> Error {
    decode_all(body, Limits::default()).expect_err("malformed chunked body accepted")
}

fn response(body: &[u8]) -> Vec<u8> {
    let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    input.extend_from_slice(body);
    input
}

#[test]
fn chunks_are_joined_and_the_last_chunk_ends_the_body() {
    let input = response(b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n");
    for out in [
        open(get(), &input).unwrap(),
        bytewise(get(), &input, false).unwrap(),
    ] {
        assert_eq!(out.body, b"hello world");
        assert_eq!(out.trailers, None);
        assert_eq!(out.end, Some(KeepAlive::REUSABLE));
        assert!(out.leftover.is_empty());
    }
}

#[test]
fn sizes_are_hex_in_either_case_with_leading_zeros() {
    let mut body = b"A\r\n0123456789\r\n000b\r\n0123456789a\r\n1f\r\n".to_vec();
    body.extend_from_slice(&[b'x'; 31]);
    body.extend_from_slice(b"\r\n000\r\n\r\n");
    let (data, _, _) = decode_all(&body, Limits::default()).unwrap();
    assert_eq!(data.len(), 10 + 11 + 31);
}

#[test]
fn extensions_are_ignored() {
    let body = b"5;name=value;flag\r\nhello\r\n3 ; q=\"quoted; string\"\r\nabc\r\n0;last\r\n\r\n";
    let (data, _, _) = decode_all(body, Limits::default()).unwrap();
    assert_eq!(data, b"helloabc");
}

#[test]
fn white_space_after_the_size_is_tolerated() {
    let (data, _, _) = decode_all(b"2 \t\r\nhi\r\n0\r\n\r\n", Limits::default()).unwrap();
    assert_eq!(data, b"hi");
}

#[test]
fn a_chunk_arriving_in_pieces_is_yielded_as_it_comes() {
    let mut d = decoder();
    let mut buf = BytesMut::from(&b"a\r\n0123"[..]);
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Some(BodyEvent::Data("0123".into()))
    );
    assert_eq!(d.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(b"456789\r");
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Some(BodyEvent::Data("456789".into()))
    );
    assert_eq!(d.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(b"\n0\r\n\r\n");
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Some(BodyEvent::End(KeepAlive::REUSABLE))
    );
}

#[test]
fn chunk_data_is_split_from_the_read_buffer_without_copying() {
    let mut d = decoder();
    let mut buf = BytesMut::from(&b"4\r\ndata\r\n"[..]);
    let start = buf.as_ptr();
    let Some(BodyEvent::Data(data)) = d.decode(&mut buf).unwrap() else {
        panic!("expected data");
    };
    assert_eq!(data.as_ptr(), start.wrapping_add(3));
}

#[test]
fn trailers_are_returned_before_the_end() {
    let input = response(b"2\r\nhi\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\nx-other: 2\r\n\r\n");
    for out in [
        open(get(), &input).unwrap(),
        bytewise(get(), &input, false).unwrap(),
    ] {
        assert_eq!(out.body, b"hi");
        let trailers = out.trailers.expect("trailers");
        assert_eq!(trailers["x-checksum"], "abc");
        assert_eq!(
            trailers.get_all("x-other").iter().collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert_eq!(out.end, Some(KeepAlive::REUSABLE));
    }
}

#[test]
fn trailers_are_held_to_the_header_limits() {
    let limits = Limits::default()
        .with_max_header_bytes(64)
        .with_max_headers(2);
    let ok = b"0\r\nA: 1\r\nB: 2\r\n\r\n";
    assert!(decode_all(ok, limits).unwrap().1.is_some());
    let many = b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(decode_all(many, limits).unwrap_err(), Error::TooManyHeaders);
    let mut large = b"0\r\nA: ".to_vec();
    large.extend_from_slice(&[b'v'; 100]);
    assert_eq!(
        decode_all(&large, limits).unwrap_err(),
        Error::HeaderTooLarge,
        "fails before the end arrives"
    );
}

#[test]
fn malformed_trailers_are_refused() {
    for body in [
        &b"0\r\nBad Name: 1\r\n\r\n"[..],
        b"0\r\nNo-Colon\r\n\r\n",
        b"0\r\nA: \x01\r\n\r\n",
    ] {
        assert!(
            matches!(chunk_error(body), Error::InvalidHead(_)),
            "{body:?}"
        );
    }
}

#[test]
fn a_size_that_is_not_hex_fails_at_once() {
    let mut d = decoder();
    assert!(matches!(
        d.decode(&mut BytesMut::from(&b"x"[..])),
        Err(Error::InvalidChunk(_))
    ));
    for body in [
        &b"\r\n"[..],
        b";ext\r\n",
        b"-1\r\n",
        b"+5\r\n",
        b"0x5\r\n",
        b" 5\r\n",
        b"5g\r\n",
    ] {
        assert!(
            matches!(chunk_error(body), Error::InvalidChunk(_)),
            "{body:?}"
        );
    }
}

#[test]
fn a_size_that_overflows_u64_is_refused() {
    let error = chunk_error(b"10000000000000000\r\n");
    assert_eq!(error, Error::InvalidChunk("chunk size overflows"));
    let error = chunk_error(b"fffffffffffffffffffffffffffffff\r\n");
    assert_eq!(error, Error::InvalidChunk("chunk size overflows"));
    // The largest size parses, and then the body is simply truncated.
    assert_eq!(
        chunk_error(b"ffffffffffffffff\r\nabc"),
        Error::TruncatedBody
    );
}

#[test]
fn framing_lines_must_end_in_crlf() {
    for body in [
        &b"5\nhello\r\n0\r\n\r\n"[..],
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"5\r\nhello\r\n0\n\r\n",
        b"5\r\nhello\r\n0\r\n\n",
        b"5\r\nhello\r\n0\r\n\rX",
        b"5\r\r\nhello\r\n0\r\n\r\n",
    ] {
        assert!(
            matches!(chunk_error(body), Error::InvalidChunk(_)),
            "{body:?}"
        );
    }
}

#[test]
fn a_missing_crlf_after_data_is_caught_from_its_first_byte() {
    let mut d = decoder();
    let mut buf = BytesMut::from(&b"2\r\nhiX"[..]);
    assert!(matches!(d.decode(&mut buf), Ok(Some(BodyEvent::Data(_)))));
    assert!(matches!(d.decode(&mut buf), Err(Error::InvalidChunk(_))));
}

#[test]
fn control_bytes_in_extensions_are_refused() {
    for body in [
        &b"5;a=\rb\r\nhello\r\n0\r\n\r\n"[..],
        b"5;\x00\r\nhello\r\n0\r\n\r\n",
        b"5;\x7f\r\nhello\r\n0\r\n\r\n",
    ] {
        assert!(
            matches!(chunk_error(body), Error::InvalidChunk(_)),
            "{body:?}"
        );
    }
}

#[test]
fn the_size_line_limit_is_exact_and_holds_before_the_line_ends() {
    let limits = Limits::default().with_max_chunk_line(16);
    // "2;" + 10 bytes of extension + CRLF = 16 bytes.
    let exact = b"2;0123456789ab\r\nhi\r\n0\r\n\r\n";
    assert_eq!(decode_all(exact, limits).unwrap().0, b"hi");
    let over = b"2;0123456789abc\r\nhi\r\n0\r\n\r\n";
    assert!(matches!(
        decode_all(over, limits),
        Err(Error::InvalidChunk(_))
    ));

    let mut d = BodyDecoder::new(Framing::Chunked, KeepAlive::REUSABLE, limits);
    let mut buf = BytesMut::from(&b"2;"[..]);
    let error = loop {
        match d.decode(&mut buf) {
            Ok(None) => buf.extend_from_slice(b"x"),
            Ok(Some(event)) => panic!("unexpected {event:?}"),
            Err(error) => break error,
        }
    };
    assert!(matches!(error, Error::InvalidChunk(_)));
    assert!(
        buf.len() <= 17,
        "buffered {} bytes of one size line",
        buf.len()
    );
}

#[test]
fn the_default_size_line_limit_stops_endless_extensions() {
    let mut body = b"1;".to_vec();
    body.extend_from_slice(&[b'e'; 10_000]);
    body.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    assert!(matches!(chunk_error(&body), Error::InvalidChunk(_)));
}

#[test]
fn eof_anywhere_before_the_end_of_the_trailer_section_is_a_truncated_body() {
    let complete = b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";
    for cut in 0..complete.len() {
        let error = chunk_error(&complete[..cut]);
        assert_eq!(error, Error::TruncatedBody, "cut at {cut}");
    }
    assert!(decode_all(complete, Limits::default()).is_ok());
    let error = whole(get(), &response(b"5\r\nhello\r\n")).unwrap_err();
    assert_eq!(error, Error::TruncatedBody);
}

#[test]
fn a_chunked_response_read_through_the_whole_pipeline_in_random_pieces() {
    let input = response(b"3\r\nabc\r\n0\r\n\r\n");
    for split in 1..input.len() {
        let (a, b) = input.split_at(split);
        let out = drive(get(), Limits::default(), [a, b], false).unwrap();
        assert_eq!(out.body, b"abc", "split at {split}");
        assert_eq!(out.end, Some(KeepAlive::REUSABLE));
    }
}

proptest! {
    /// What the request body encoder frames, the response body decoder reads
    /// back: the same bytes and the same trailers, however the encoded bytes are
    /// split.
    #[test]
    fn encoded_chunks_decode_to_the_same_data_and_trailers(
        pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        trailers in proptest::collection::vec(("x-[a-z]{1,8}", "[!-~]{1,16}"), 0..4),
        split in 1usize..64,
    ) {
        let mut wire = BytesMut::new();
        let mut encoder = BodyEncoder::new(RequestBody::Chunked);
        for piece in &pieces {
            encoder.encode(piece, &mut wire).unwrap();
        }
        let mut map = HeaderMap::new();
        for (name, value) in &trailers {
            map.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        encoder.finish(Some(&map), &mut wire).unwrap();

        let mut decoder = decoder();
        let mut buf = BytesMut::new();
        let (mut data, mut decoded_trailers, mut end) = (Vec::new(), None, None);
        for piece in wire.chunks(split) {
            buf.extend_from_slice(piece);
            while end.is_none() {
                match decoder.decode(&mut buf).unwrap() {
                    Some(BodyEvent::Data(bytes)) => data.extend_from_slice(&bytes),
                    Some(BodyEvent::Trailers(t)) => decoded_trailers = Some(t),
                    Some(BodyEvent::End(keep_alive)) => end = Some(keep_alive),
                    Some(other) => panic!("unknown event {other:?}"),
                    None => break,
                }
            }
        }
        prop_assert_eq!(data, pieces.concat());
        prop_assert_eq!(decoded_trailers.unwrap_or_default(), map);
        prop_assert_eq!(end, Some(KeepAlive::REUSABLE));
    }
}
