//! Body framing: which responses have a body and how it is delimited
//! (RFC 9112 section 6.3), and the decoding of `Content-Length`, close-delimited
//! and bodiless responses, including the end of the connection in the middle.

use super::support::{bytewise, get, open, whole};
use bytes::BytesMut;
use http::Method;
use muxpool_client::h1::{
    BodyDecoder, BodyEvent, CloseReason, Error, Framing, KeepAlive, Limits, RequestInfo,
};

const CONNECT: fn() -> RequestInfo = || RequestInfo::new(&Method::CONNECT);

#[test]
fn content_length_delimits_the_body_across_reads() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world";
    for out in [
        open(get(), input).unwrap(),
        bytewise(get(), input, false).unwrap(),
    ] {
        assert_eq!(out.framing, Framing::Length(11));
        assert_eq!(out.body, b"hello world");
        assert_eq!(out.end, Some(KeepAlive::REUSABLE));
    }
}

#[test]
fn data_is_split_from_the_read_buffer_without_copying() {
    let mut decoder = BodyDecoder::new(Framing::Length(10), KeepAlive::REUSABLE, Limits::default());
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(b"0123456789");
    let start = buf.as_ptr();
    let Some(BodyEvent::Data(data)) = decoder.decode(&mut buf).unwrap() else {
        panic!("expected data");
    };
    assert_eq!(&data[..], b"0123456789");
    assert_eq!(
        data.as_ptr(),
        start,
        "the data shares the read buffer's memory"
    );
}

#[test]
fn a_body_never_takes_more_than_its_length() {
    let mut decoder = BodyDecoder::new(Framing::Length(3), KeepAlive::REUSABLE, Limits::default());
    let mut buf = BytesMut::from(&b"abcdef"[..]);
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(BodyEvent::Data("abc".into()))
    );
    assert!(decoder.is_complete());
    assert_eq!(&buf[..], b"def");
}

#[test]
fn a_zero_length_ends_at_once() {
    let out = open(get(), b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(out.framing, Framing::Length(0));
    assert!(out.body.is_empty());
    assert_eq!(out.end, Some(KeepAlive::REUSABLE));
}

#[test]
fn a_very_large_length_is_streamed_not_buffered() {
    let mut decoder = BodyDecoder::new(
        Framing::Length(u64::MAX),
        KeepAlive::REUSABLE,
        Limits::default(),
    );
    let mut buf = BytesMut::from(&b"some"[..]);
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(BodyEvent::Data("some".into()))
    );
    assert_eq!(decoder.decode(&mut buf).unwrap(), None);
    assert!(!decoder.is_complete());
}

#[test]
fn equal_repeated_lengths_are_one_length() {
    for fields in [
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5, 5\r\n",
        "Content-Length: 5,5 ,\t5\r\n",
        "Content-Length: 005\r\n",
    ] {
        let input = format!("HTTP/1.1 200 OK\r\n{fields}\r\nhello");
        let out = open(get(), input.as_bytes()).unwrap();
        assert_eq!(out.framing, Framing::Length(5), "{fields:?}");
        assert_eq!(out.body, b"hello");
    }
}

#[test]
fn the_final_coding_chunked_frames_the_body() {
    for te in [
        "chunked",
        "Chunked",
        "gzip, chunked",
        "gzip\r\nTransfer-Encoding: chunked",
        "chunked;",
    ] {
        let input =
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n2\r\nhi\r\n0\r\n\r\n");
        let out = open(get(), input.as_bytes()).unwrap();
        assert_eq!(out.framing, Framing::Chunked, "{te:?}");
        assert_eq!(out.body, b"hi");
        assert_eq!(out.end, Some(KeepAlive::REUSABLE));
    }
}

#[test]
fn a_transfer_coding_that_does_not_end_in_chunked_reads_until_close() {
    for te in ["gzip", "chunked, gzip", "xchunked"] {
        let input = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\nContent-Length: 2\r\n\r\nraw bytes"
        );
        let out = whole(get(), input.as_bytes()).unwrap();
        assert_eq!(out.framing, Framing::CloseDelimited, "{te:?}");
        assert_eq!(out.body, b"raw bytes");
        assert_eq!(
            out.end.unwrap().close_reason(),
            Some(CloseReason::CloseDelimited)
        );
    }
}

#[test]
fn chunked_wins_over_content_length_but_the_connection_is_not_reused() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
    let out = open(get(), input).unwrap();
    assert_eq!(out.framing, Framing::Chunked);
    assert_eq!(out.body, b"hi");
    assert_eq!(
        out.head_keep_alive.close_reason(),
        Some(CloseReason::AmbiguousFraming)
    );
    assert_eq!(
        out.end.unwrap().close_reason(),
        Some(CloseReason::AmbiguousFraming)
    );
}

#[test]
fn transfer_encoding_in_an_http_1_0_response_is_faulty_framing() {
    let input = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
    assert!(matches!(open(get(), input), Err(Error::InvalidHead(_))));
}

#[test]
fn without_length_or_coding_the_body_runs_until_close() {
    for input in [
        &b"HTTP/1.1 200 OK\r\n\r\nuntil the end"[..],
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nuntil the end",
    ] {
        let out = whole(get(), input).unwrap();
        assert_eq!(out.framing, Framing::CloseDelimited);
        assert_eq!(out.body, b"until the end");
        assert_eq!(
            out.end.unwrap().close_reason(),
            Some(CloseReason::CloseDelimited)
        );
        let out = bytewise(get(), input, true).unwrap();
        assert_eq!(out.body, b"until the end");
    }
}

#[test]
fn a_close_delimited_body_does_not_end_before_the_connection() {
    let out = open(get(), b"HTTP/1.1 200 OK\r\n\r\npartial").unwrap();
    assert_eq!(out.body, b"partial");
    assert_eq!(out.end, None);
}

#[test]
fn head_204_and_304_responses_have_no_body_whatever_their_fields_say() {
    let cases: [(RequestInfo, &[u8]); 4] = [
        (
            RequestInfo::new(&Method::HEAD),
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
        ),
        (
            RequestInfo::new(&Method::HEAD),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        (get(), b"HTTP/1.1 204 No Content\r\n\r\n"),
        (
            get(),
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\nETag: \"x\"\r\n\r\n",
        ),
    ];
    for (request, input) in cases {
        let out = open(request, input).unwrap();
        assert_eq!(out.framing, Framing::Empty, "{input:?}");
        assert!(out.body.is_empty());
        assert_eq!(out.end, Some(KeepAlive::REUSABLE), "{input:?}");
    }
}

#[test]
fn a_head_response_is_not_waiting_for_its_content_length() {
    let out = open(
        RequestInfo::new(&Method::HEAD),
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
    )
    .unwrap();
    assert_eq!(out.headers["content-length"], "1000");
}

#[test]
fn a_successful_connect_becomes_a_tunnel_with_the_bytes_that_follow() {
    let out = open(
        CONNECT(),
        b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x01tls",
    )
    .unwrap();
    assert_eq!(out.framing, Framing::Upgrade);
    assert_eq!(out.leftover, b"\x16\x03\x01tls");
    assert_eq!(out.end.unwrap().close_reason(), Some(CloseReason::Upgraded));
}

#[test]
fn a_refused_connect_has_an_ordinary_body() {
    let out = open(
        CONNECT(),
        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\ndeny",
    )
    .unwrap();
    assert_eq!(out.framing, Framing::Length(4));
    assert_eq!(out.body, b"deny");
    assert_eq!(out.end, Some(KeepAlive::REUSABLE));
}

#[test]
fn eof_before_the_content_length_is_a_truncated_body_after_the_data_so_far() {
    let mut decoder = BodyDecoder::new(Framing::Length(10), KeepAlive::REUSABLE, Limits::default());
    let mut buf = BytesMut::from(&b"hello"[..]);
    assert_eq!(
        decoder.decode_eof(&mut buf).unwrap(),
        BodyEvent::Data("hello".into())
    );
    assert_eq!(
        decoder.decode_eof(&mut buf).unwrap_err(),
        Error::TruncatedBody
    );
    let error = whole(get(), b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello").unwrap_err();
    assert_eq!(error, Error::TruncatedBody);
}

#[test]
fn eof_exactly_at_the_content_length_is_a_complete_body() {
    let out = whole(get(), b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
    assert_eq!(out.body, b"hello");
    assert_eq!(out.end, Some(KeepAlive::REUSABLE));
}

#[test]
fn eof_right_after_the_head_of_a_length_body_is_truncated() {
    let error = whole(get(), b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n").unwrap_err();
    assert_eq!(error, Error::TruncatedBody);
}

#[test]
fn eof_on_a_bodiless_response_is_fine() {
    let out = whole(get(), b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
    assert_eq!(out.end, Some(KeepAlive::REUSABLE));
}
