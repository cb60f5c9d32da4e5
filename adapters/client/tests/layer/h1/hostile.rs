//! Hostile and broken servers: replies that are not HTTP, heads built to be read
//! two ways (smuggling, response splitting), lengths that lie or overflow, and
//! floods meant to make the client buffer without end. Each must end in a typed
//! error or a connection that is not reused, never a panic, a hang or unbounded
//! buffering.

use super::support::{self, get, open, whole};
use bytes::BytesMut;
use muxpool_client::h1::{
    BodyDecoder, CloseReason, Error, Framing, KeepAlive, Limits, ResponseParser,
};

fn head_error(input: &[u8]) -> Error {
    open(get(), input).expect_err("hostile head accepted")
}

#[test]
fn replies_that_are_not_http_are_refused() {
    for input in [
        &b"garbage\r\n\r\n"[..],
        b"\x16\x03\x03\x00\x2a\x02\x00\x00\x26\x03\x03",
        b"\x00\x00\x00\x00",
        b"HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 OK 200\r\n\r\n",
        b"HTTP/1.1 200 OK\rX-Injected: 1\r\n\r\n",
        b" HTTP/1.1 200 OK\r\n\r\n",
        b"\xff\xfe\xfd",
    ] {
        assert!(
            matches!(head_error(input), Error::InvalidHead(_)),
            "{input:?}"
        );
    }
}

#[test]
fn malformed_fields_are_refused() {
    for field in [
        &b"Content-Length : 5"[..],
        b"Bad Name: x",
        b"No-Colon",
        b": no-name",
        b"X-Nul: a\x00b",
        b"X-Cr: a\rb",
        b"X-Esc: \x1b[31m",
        b"X-Folded: a\r\n b",
        b"\tX-Leading-Tab: 1",
    ] {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        input.extend_from_slice(field);
        input.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
        assert!(
            matches!(head_error(&input), Error::InvalidHead(_)),
            "{:?}",
            String::from_utf8_lossy(field)
        );
    }
}

#[test]
fn content_lengths_that_lie_or_overflow_are_refused() {
    for value in [
        "-1",
        "+5",
        "abc",
        "5.0",
        "0x5",
        "",
        " ",
        "5 5",
        "1e3",
        "18446744073709551616",
        "99999999999999999999999999",
        "5, 6",
        "5,",
        ",5",
        "5, ,5",
        "5, -5",
    ] {
        let input = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\nhello");
        assert_eq!(
            head_error(input.as_bytes()),
            Error::InvalidContentLength,
            "{value:?}"
        );
    }
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    assert_eq!(head_error(input), Error::InvalidContentLength);
}

#[test]
fn the_largest_content_length_is_accepted_and_streamed() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nabc";
    let out = open(get(), input).unwrap();
    assert_eq!(out.framing, Framing::Length(u64::MAX));
    assert_eq!(out.body, b"abc");
    assert_eq!(whole(get(), input).unwrap_err(), Error::TruncatedBody);
}

#[test]
fn obfuscated_transfer_encodings_never_frame_as_chunked_by_accident() {
    // Each of these is either refused or read until close; none is decoded as a
    // chunked body that a differently-parsing peer would frame otherwise.
    for (value, expected) in [
        ("chunked, chunked", None),
        ("chunked\r\nTransfer-Encoding: chunked", None),
        ("\"chunked\"", None),
        ("chunked\x0b", None),
        ("", None),
        (" , ", None),
        ("xchunked", Some(Framing::CloseDelimited)),
        ("chunked-false", Some(Framing::CloseDelimited)),
        ("chunked, identity", Some(Framing::CloseDelimited)),
    ] {
        let input = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {value}\r\n\r\n0\r\n\r\n");
        let result = whole(get(), input.as_bytes());
        match expected {
            None => assert!(
                matches!(result, Err(Error::InvalidHead(_))),
                "{value:?}: {result:?}"
            ),
            Some(framing) => {
                let out = result.unwrap();
                assert_eq!(out.framing, framing, "{value:?}");
                assert_eq!(out.body, b"0\r\n\r\n");
                assert!(!out.end.unwrap().is_reusable());
            }
        }
    }
}

#[test]
fn both_framing_fields_in_either_order_are_decoded_chunked_and_not_reused() {
    for fields in [
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: nonsense\r\n",
    ] {
        let input = format!("HTTP/1.1 200 OK\r\n{fields}\r\n5\r\nhello\r\n0\r\n\r\n");
        let out = open(get(), input.as_bytes()).unwrap();
        assert_eq!(out.body, b"hello", "{fields:?}");
        assert_eq!(
            out.end.unwrap().close_reason(),
            Some(CloseReason::AmbiguousFraming)
        );
    }
}

#[test]
fn a_response_smuggled_after_the_framed_body_is_not_read_as_the_next_one() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 302 Found\r\nLocation: http://evil.example/\r\nContent-Length: 0\r\n\r\n";
    let out = open(get(), input).unwrap();
    assert!(out.body.is_empty());
    assert_eq!(
        out.end.unwrap().close_reason(),
        Some(CloseReason::UnexpectedData)
    );
}

#[test]
fn a_header_flood_is_cut_off_at_the_limit_without_buffering_more() {
    let limits = Limits::default();
    let mut parser = ResponseParser::new(get(), limits);
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nX-Flood: "[..]);
    let mut fed = buf.len();
    let error = loop {
        match parser.parse(&mut buf) {
            Ok(None) => {
                assert!(
                    buf.len() <= limits.max_header_bytes(),
                    "held {} bytes",
                    buf.len()
                );
                buf.extend_from_slice(&[b'a'; 8192]);
                fed += 8192;
                assert!(fed < 1 << 20, "never refused");
            }
            Ok(Some(_)) => panic!("flood accepted"),
            Err(error) => break error,
        }
    };
    assert_eq!(error, Error::HeaderTooLarge);
}

#[test]
fn a_flood_of_tiny_fields_is_refused_by_count() {
    let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
    for _ in 0..10_000 {
        input.extend_from_slice(b"a:\r\n");
    }
    input.extend_from_slice(b"\r\n");
    assert_eq!(head_error(&input), Error::TooManyHeaders);
}

#[test]
fn a_flood_of_empty_lines_before_the_status_line_is_dropped_as_it_arrives() {
    let mut parser = ResponseParser::new(get(), Limits::default());
    let mut buf = BytesMut::new();
    for _ in 0..1000 {
        buf.extend_from_slice(&b"\r\n".repeat(64));
        assert!(parser.parse(&mut buf).unwrap().is_none());
        assert!(buf.is_empty(), "empty lines are not kept");
    }
    buf.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
    assert!(parser.parse(&mut buf).unwrap().is_some());
}

#[test]
fn a_flood_of_informational_responses_is_consumed_as_it_arrives() {
    let mut parser = ResponseParser::new(get(), Limits::default());
    let mut buf = BytesMut::new();
    for _ in 0..1000 {
        buf.extend_from_slice(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
        );
        assert!(parser.parse(&mut buf).unwrap().is_none());
        assert!(buf.is_empty());
    }
    buf.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(parser.parse(&mut buf).unwrap().unwrap().status(), 200);
}

#[test]
fn a_chunk_size_line_flood_is_cut_off_at_the_limit() {
    let limits = Limits::default();
    let mut decoder = BodyDecoder::new(Framing::Chunked, KeepAlive::REUSABLE, limits);
    let mut buf = BytesMut::from(&b"1;"[..]);
    let error = loop {
        match decoder.decode(&mut buf) {
            Ok(None) => {
                assert!(buf.len() <= limits.max_chunk_line());
                buf.extend_from_slice(&[b'x'; 1000]);
            }
            other => break other.expect_err("flood accepted"),
        }
    };
    assert!(matches!(error, Error::InvalidChunk(_)));
}

#[test]
fn a_trailer_flood_is_cut_off_at_the_limit() {
    let limits = Limits::default();
    let mut decoder = BodyDecoder::new(Framing::Chunked, KeepAlive::REUSABLE, limits);
    let mut buf = BytesMut::from(&b"0\r\nX-Trailer: "[..]);
    let error = loop {
        match decoder.decode(&mut buf) {
            Ok(None) => {
                assert!(buf.len() <= limits.max_header_bytes());
                buf.extend_from_slice(&[b'x'; 8192]);
            }
            other => break other.expect_err("flood accepted"),
        }
    };
    assert_eq!(error, Error::HeaderTooLarge);
}

#[test]
fn a_lying_chunked_body_is_caught() {
    let chunked = |body: &[u8]| {
        let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        input.extend_from_slice(body);
        whole(get(), &input).unwrap_err()
    };
    let overflow = chunked(b"10000000000000000\r\n");
    assert!(matches!(overflow, Error::InvalidChunk(_)), "{overflow:?}");
    let longer_than_its_size = chunked(b"5\r\nhello world\r\n0\r\n\r\n");
    assert!(matches!(longer_than_its_size, Error::InvalidChunk(_)));
    assert_eq!(chunked(b"5\r\nhel"), Error::TruncatedBody);
    assert_eq!(chunked(b"5\r\nhello\r\n"), Error::TruncatedBody);
}

#[test]
fn zero_limits_refuse_everything_without_panicking() {
    let zero = Limits::default()
        .with_max_header_bytes(0)
        .with_max_headers(0)
        .with_max_chunk_line(0);
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        support::drive(get(), zero, [&input[..]], false).unwrap_err(),
        Error::HeaderTooLarge
    );
    let no_fields = Limits::default().with_max_headers(0);
    assert_eq!(
        support::drive(get(), no_fields, [&input[..]], false).unwrap_err(),
        Error::TooManyHeaders
    );
    let out = support::drive(get(), no_fields, [&b"HTTP/1.1 200 OK\r\n\r\n"[..]], true).unwrap();
    assert_eq!(out.framing, Framing::CloseDelimited);
    let mut decoder = BodyDecoder::new(Framing::Chunked, KeepAlive::REUSABLE, zero);
    assert!(matches!(
        decoder.decode(&mut BytesMut::from(&b"0\r\n\r\n"[..])),
        Err(Error::InvalidChunk(_))
    ));
}
