//! Response head parsing: status, version and fields; incremental parsing that
//! leaves the body in the buffer; informational responses skipped (and 101 kept
//! as final); the limits; and what the end of the connection means before a head
//! is complete.

use super::support::{self, drive, get, open, whole};
use bytes::BytesMut;
use http::{Method, StatusCode, Version};
use muxpool_client::h1::{CloseReason, Error, Framing, Limits, RequestInfo, ResponseParser};

fn parser() -> ResponseParser {
    ResponseParser::new(get(), Limits::default())
}

#[test]
fn status_version_and_fields_are_parsed_in_order() {
    let input = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n";
    let out = open(get(), input).unwrap();
    assert_eq!(out.status, StatusCode::NOT_FOUND);
    assert_eq!(out.version, Version::HTTP_11);
    assert_eq!(out.headers["content-type"], "text/plain");
    let cookies: Vec<_> = out.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(out.headers["x-empty"], "");
    assert_eq!(out.headers.len(), 5);
}

#[test]
fn field_values_are_trimmed_of_surrounding_white_space() {
    let out = open(
        get(),
        b"HTTP/1.1 200 OK\r\nX-A: \t padded value \t\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(out.headers["x-a"], "padded value");
}

#[test]
fn a_partial_head_needs_more_and_consumes_nothing() {
    let mut p = parser();
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"[..]);
    assert!(p.parse(&mut buf).unwrap().is_none());
    assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n");
    buf.extend_from_slice(b"\r");
    assert!(p.parse(&mut buf).unwrap().is_none());
    buf.extend_from_slice(b"\nhello");
    let head = p.parse(&mut buf).unwrap().expect("complete");
    assert_eq!(head.framing(), Framing::Length(5));
    assert_eq!(&buf[..], b"hello", "the body stays in the buffer");
}

#[test]
fn the_head_can_be_turned_into_http_parts() {
    let mut buf =
        BytesMut::from(&b"HTTP/1.0 201 Created\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"[..]);
    let head = parser().parse(&mut buf).unwrap().unwrap();
    assert_eq!(head.parts().status, StatusCode::CREATED);
    let parts = head.into_parts();
    let response = http::Response::from_parts(parts, ());
    assert_eq!(response.version(), Version::HTTP_10);
    assert_eq!(response.headers()["location"], "/x");
}

#[test]
fn http_1_0_is_recognised_and_other_versions_are_not() {
    let out = whole(get(), b"HTTP/1.0 200 OK\r\n\r\nbody").unwrap();
    assert_eq!(out.version, Version::HTTP_10);
    for input in [
        &b"HTTP/2.0 200 OK\r\n\r\n"[..],
        b"HTTP/1.2 200 OK\r\n\r\n",
        b"HTTP/0.9 200 OK\r\n\r\n",
        b"http/1.1 200 OK\r\n\r\n",
    ] {
        let error = parser().parse(&mut BytesMut::from(input)).unwrap_err();
        assert!(
            matches!(error, Error::InvalidHead(_)),
            "{input:?}: {error:?}"
        );
    }
}

#[test]
fn a_missing_reason_phrase_is_accepted() {
    let out = open(get(), b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(out.status, StatusCode::OK);
    let out = open(get(), b"HTTP/1.1 204 \r\n\r\n").unwrap();
    assert_eq!(out.status, StatusCode::NO_CONTENT);
}

#[test]
fn bare_lf_line_endings_are_accepted_in_the_head() {
    let out = open(get(), b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi").unwrap();
    assert_eq!((out.status, &out.body[..]), (StatusCode::OK, &b"hi"[..]));
}

#[test]
fn empty_lines_before_the_status_line_are_skipped() {
    let out = open(get(), b"\r\n\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(out.status, StatusCode::OK);
    let out = support::bytewise(
        get(),
        b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        false,
    )
    .unwrap();
    assert_eq!(out.status, StatusCode::OK);
}

#[test]
fn continue_and_early_hints_are_skipped() {
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    for out in [
        open(get(), input).unwrap(),
        support::bytewise(get(), input, false).unwrap(),
    ] {
        assert_eq!(out.status, StatusCode::OK);
        assert!(
            !out.headers.contains_key("link"),
            "the hints are not the final head's"
        );
        assert_eq!(out.body, b"ok");
        assert!(out.continued);
    }
}

#[test]
fn continue_is_reported_as_soon_as_it_is_skipped() {
    let mut p = parser();
    let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"[..]);
    assert!(!p.received_continue());
    assert!(p.parse(&mut buf).unwrap().is_none());
    assert!(p.received_continue());
    assert_eq!(&buf[..], b"HTTP/1.1 2", "the 100 is consumed");
    let out = open(get(), b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert!(!out.continued);
}

#[test]
fn switching_protocols_is_final_and_leaves_the_rest_to_the_new_protocol() {
    let input = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello";
    let out = open(get(), input).unwrap();
    assert_eq!(out.status, StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(out.framing, Framing::Upgrade);
    assert_eq!(
        out.head_keep_alive.close_reason(),
        Some(CloseReason::Upgraded)
    );
    assert_eq!(out.end.unwrap().close_reason(), Some(CloseReason::Upgraded));
    assert!(out.body.is_empty());
    assert_eq!(out.leftover, b"\x81\x05hello");
}

#[test]
fn a_parser_returns_one_final_head() {
    let mut p = parser();
    let mut buf = BytesMut::from(&b"HTTP/1.1 204 No Content\r\n\r\n"[..]);
    p.parse(&mut buf).unwrap().unwrap();
    assert_eq!(p.parse(&mut buf).unwrap_err(), Error::UnexpectedData);
}

#[test]
fn eof_before_any_byte_says_the_request_may_be_retried() {
    assert_eq!(
        parser().parse_eof(&mut BytesMut::new()).unwrap_err(),
        Error::ClosedBeforeResponse
    );
    let mut p = parser();
    assert!(p.parse(&mut BytesMut::new()).unwrap().is_none());
    assert_eq!(
        p.parse_eof(&mut BytesMut::new()).unwrap_err(),
        Error::ClosedBeforeResponse
    );
}

#[test]
fn eof_inside_a_head_is_a_truncated_head() {
    let mut p = parser();
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
    assert!(p.parse(&mut buf).unwrap().is_none());
    assert_eq!(p.parse_eof(&mut buf).unwrap_err(), Error::TruncatedHead);
    // After an informational head the server has seen the request: not retryable.
    let mut p = parser();
    let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]);
    assert_eq!(p.parse_eof(&mut buf).unwrap_err(), Error::TruncatedHead);
}

#[test]
fn eof_right_after_a_complete_head_still_returns_it() {
    let mut p = parser();
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\n\r\n"[..]);
    let head = p.parse_eof(&mut buf).unwrap();
    assert_eq!(head.framing(), Framing::CloseDelimited);
}

fn head_of_size(total: usize) -> Vec<u8> {
    let start = b"HTTP/1.1 200 OK\r\nX-Pad: ";
    let end = b"\r\nContent-Length: 0\r\n\r\n";
    let mut head = start.to_vec();
    head.resize(total - end.len(), b'a');
    head.extend_from_slice(end);
    assert_eq!(head.len(), total);
    head
}

#[test]
fn a_head_of_exactly_the_byte_limit_is_accepted_and_one_more_byte_is_not() {
    let limits = Limits::default().with_max_header_bytes(1024);
    let out = drive(get(), limits, [&head_of_size(1024)[..]], false).unwrap();
    assert_eq!(out.status, StatusCode::OK);
    let error = drive(get(), limits, [&head_of_size(1025)[..]], false).unwrap_err();
    assert_eq!(error, Error::HeaderTooLarge);
}

#[test]
fn a_head_over_the_byte_limit_fails_before_its_end_arrives() {
    let limits = Limits::default().with_max_header_bytes(1024);
    let head = head_of_size(4096);
    let mut p = ResponseParser::new(get(), limits);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let error = loop {
        buf.extend_from_slice(&head[fed..fed + 100]);
        fed += 100;
        match p.parse(&mut buf) {
            Ok(None) => continue,
            Ok(Some(_)) => panic!("an oversized head was accepted"),
            Err(error) => break error,
        }
    };
    assert_eq!(error, Error::HeaderTooLarge);
    assert!(fed <= 1024 + 100, "failed only after {fed} bytes");
}

fn head_with_fields(count: usize) -> Vec<u8> {
    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 1..count {
        head.extend_from_slice(format!("X-F{i}: {i}\r\n").as_bytes());
    }
    head.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    head
}

#[test]
fn the_field_count_limit_is_exact() {
    let limits = Limits::default().with_max_headers(10);
    let out = drive(get(), limits, [&head_with_fields(10)[..]], false).unwrap();
    assert_eq!(out.headers.len(), 10);
    let error = drive(get(), limits, [&head_with_fields(11)[..]], false).unwrap_err();
    assert_eq!(error, Error::TooManyHeaders);
}

#[test]
fn the_default_limits_allow_100_fields() {
    let out = drive(
        get(),
        Limits::default(),
        [&head_with_fields(100)[..]],
        false,
    )
    .unwrap();
    assert_eq!(out.headers.len(), 100);
    let error = drive(
        get(),
        Limits::default(),
        [&head_with_fields(101)[..]],
        false,
    )
    .unwrap_err();
    assert_eq!(error, Error::TooManyHeaders);
}

#[test]
fn every_field_keeps_its_own_value_however_many_there_are() {
    // Around the number of fields whose places are noted on the stack, and
    // well past it.
    for count in [1, 31, 32, 33, 100] {
        let out = drive(
            get(),
            Limits::default(),
            [&head_with_fields(count)[..]],
            false,
        )
        .unwrap();
        assert_eq!(out.headers.len(), count);
        for i in 1..count {
            let value = out.headers[format!("x-f{i}").as_str()].as_bytes();
            assert_eq!(value, i.to_string().as_bytes(), "field {i} of {count}");
        }
        assert_eq!(out.headers["content-length"], "0");
    }
}

#[test]
fn a_field_limit_above_the_stack_array_works() {
    let limits = Limits::default().with_max_headers(300);
    let out = drive(get(), limits, [&head_with_fields(300)[..]], false).unwrap();
    assert_eq!(out.headers.len(), 300);
    let error = drive(get(), limits, [&head_with_fields(301)[..]], false).unwrap_err();
    assert_eq!(error, Error::TooManyHeaders);
}

#[test]
fn each_informational_head_has_its_own_limits() {
    let limits = Limits::default().with_max_header_bytes(200);
    let mut input = Vec::new();
    for _ in 0..10 {
        input.extend_from_slice(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n");
    }
    input.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(input.len() > 200);
    let out = drive(get(), limits, [&input[..]], false).unwrap();
    assert_eq!(out.status, StatusCode::OK);
}

#[test]
fn a_status_line_that_is_not_http_fails_before_its_end_arrives() {
    for start in [
        &b"garbage"[..],
        b"<html>",
        b"SSH-2.0-",
        b"HTTP/1.1 2x",
        b"HTTP/1.1  200",
    ] {
        let error = parser().parse(&mut BytesMut::from(start)).unwrap_err();
        assert!(
            matches!(error, Error::InvalidHead(_)),
            "{start:?}: {error:?}"
        );
    }
}

#[test]
fn status_codes_outside_100_to_999_are_refused() {
    for input in [
        &b"HTTP/1.1 000 Zero\r\n\r\n"[..],
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 1000 High\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
    ] {
        let error = parser().parse(&mut BytesMut::from(input)).unwrap_err();
        assert!(
            matches!(error, Error::InvalidHead(_)),
            "{input:?}: {error:?}"
        );
    }
    let out = open(get(), b"HTTP/1.1 599 Custom\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(out.status.as_u16(), 599);
}

#[test]
fn the_request_method_shapes_the_parse() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
    let out = open(RequestInfo::new(&Method::HEAD), input).unwrap();
    assert_eq!(out.framing, Framing::Empty);
    let out = open(RequestInfo::new(&Method::GET), input).unwrap();
    assert_eq!(out.framing, Framing::Length(3));
}
