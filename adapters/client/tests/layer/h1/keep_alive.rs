//! The keep-alive decision: a connection is reusable only when every step proved
//! it clean (both heads allow it, the body was framed and read to its end, and
//! nothing followed it), and the reason it is not travels with the decision.

use super::support::{get, open, parts, whole};
use bytes::BytesMut;
use http::header::{HeaderValue, CONNECTION};
use http::Method;
use muxpool_client::h1::{
    encode_request, BodyDecoder, BodyEncoder, BodyEvent, CloseReason, Error, Framing, KeepAlive,
    Limits, RequestBody, RequestInfo, TargetForm,
};

fn reason(input: &[u8]) -> Option<CloseReason> {
    open(get(), input)
        .unwrap()
        .end
        .expect("body complete")
        .close_reason()
}

#[test]
fn http_1_1_is_reusable_by_default_once_the_body_is_read() {
    assert_eq!(
        reason(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        None
    );
    assert_eq!(
        reason(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
        None
    );
}

#[test]
fn the_head_decision_is_not_the_final_one_until_the_body_ends() {
    let out = open(get(), b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel").unwrap();
    assert!(out.head_keep_alive.is_reusable());
    assert_eq!(out.end, None, "no decision while the body is unread");
}

#[test]
fn connection_close_from_the_server_closes() {
    for value in ["close", "Close", "keep-alive, close", "CLOSE , upgrade"] {
        let input = format!("HTTP/1.1 200 OK\r\nConnection: {value}\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            reason(input.as_bytes()),
            Some(CloseReason::ServerClose),
            "{value:?}"
        );
    }
    let input =
        b"HTTP/1.1 200 OK\r\nConnection: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(reason(input), Some(CloseReason::ServerClose));
    let input = b"HTTP/1.1 200 OK\r\nConnection: closed, enclose\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(reason(input), None, "only the whole token counts");
}

#[test]
fn http_1_0_is_reusable_only_with_an_explicit_keep_alive() {
    assert_eq!(
        reason(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Some(CloseReason::ServerClose)
    );
    assert_eq!(
        reason(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"),
        None
    );
    assert_eq!(
        reason(b"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n"),
        Some(CloseReason::ServerClose)
    );
}

#[test]
fn a_request_that_asked_for_close_is_not_reused() {
    let mut request = parts(Method::GET, "http://h/");
    request
        .headers
        .insert(CONNECTION, HeaderValue::from_static("close"));
    let encoded = encode_request(
        &request,
        RequestBody::Empty,
        TargetForm::Origin,
        &mut BytesMut::new(),
    )
    .unwrap();
    let out = open(
        encoded.info,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        out.end.unwrap().close_reason(),
        Some(CloseReason::RequestClose)
    );
    let out = open(get().with_close(true), b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
    assert_eq!(
        out.end.unwrap().close_reason(),
        Some(CloseReason::RequestClose)
    );
}

#[test]
fn a_close_delimited_body_is_never_reusable() {
    let out = whole(
        get(),
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nbody",
    )
    .unwrap();
    assert_eq!(
        out.end.unwrap().close_reason(),
        Some(CloseReason::CloseDelimited)
    );
    let mut d = BodyDecoder::new(
        Framing::CloseDelimited,
        KeepAlive::REUSABLE,
        Limits::default(),
    );
    assert_eq!(
        d.decode_eof(&mut BytesMut::new()).unwrap(),
        BodyEvent::End(KeepAlive::close(CloseReason::CloseDelimited))
    );
}

#[test]
fn bytes_after_a_framed_body_make_the_connection_unusable() {
    let cases: [(RequestInfo, &[u8]); 4] = [
        (
            get(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
        ),
        (
            get(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n\r\n",
        ),
        (get(), b"HTTP/1.1 204 No Content\r\n\r\nbody anyway"),
        (
            RequestInfo::new(&Method::HEAD),
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody",
        ),
    ];
    for (request, input) in cases {
        let out = open(request, input).unwrap();
        assert_eq!(
            out.end.unwrap().close_reason(),
            Some(CloseReason::UnexpectedData),
            "{input:?}"
        );
        assert!(!out.leftover.is_empty());
    }
}

#[test]
fn a_second_response_in_the_same_read_is_not_trusted() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let out = open(get(), input).unwrap();
    assert_eq!(out.body, b"ok");
    assert_eq!(
        out.end.unwrap().close_reason(),
        Some(CloseReason::UnexpectedData)
    );
}

#[test]
fn bytes_after_the_body_keep_the_first_reason_when_the_connection_closes_anyway() {
    let input = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nokEXTRA";
    assert_eq!(reason(input), Some(CloseReason::ServerClose));
}

#[test]
fn after_the_end_more_bytes_are_an_error_and_no_bytes_repeat_the_end() {
    let mut d = BodyDecoder::new(Framing::Length(2), KeepAlive::REUSABLE, Limits::default());
    let mut buf = BytesMut::from(&b"ok"[..]);
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Some(BodyEvent::Data("ok".into()))
    );
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Some(BodyEvent::End(KeepAlive::REUSABLE))
    );
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Some(BodyEvent::End(KeepAlive::REUSABLE))
    );
    assert_eq!(
        d.decode_eof(&mut buf).unwrap(),
        BodyEvent::End(KeepAlive::REUSABLE)
    );
    buf.extend_from_slice(b"late");
    assert_eq!(d.decode(&mut buf), Err(Error::UnexpectedData));
}

#[test]
fn an_upgrade_is_never_returned_to_the_pool() {
    let out = open(
        get(),
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    )
    .unwrap();
    assert!(!out.head_keep_alive.is_reusable());
    assert_eq!(out.end.unwrap().close_reason(), Some(CloseReason::Upgraded));
}

#[test]
fn an_unfinished_request_body_makes_the_connection_unusable() {
    let mut encoder = BodyEncoder::new(RequestBody::Length(10));
    encoder.encode(b"part", &mut BytesMut::new()).unwrap();
    let decision = KeepAlive::REUSABLE.with_request_body(&encoder);
    assert_eq!(
        decision.close_reason(),
        Some(CloseReason::RequestBodyIncomplete)
    );
    encoder.encode(b"of it!", &mut BytesMut::new()).unwrap();
    assert!(KeepAlive::REUSABLE
        .with_request_body(&encoder)
        .is_reusable());

    let chunked = BodyEncoder::new(RequestBody::Chunked);
    assert!(!KeepAlive::REUSABLE
        .with_request_body(&chunked)
        .is_reusable());
}

#[test]
fn a_closed_decision_keeps_its_first_reason() {
    let closed = KeepAlive::close(CloseReason::ServerClose);
    assert_eq!(
        closed.and_close(CloseReason::UnexpectedData).close_reason(),
        Some(CloseReason::ServerClose)
    );
    assert_eq!(
        KeepAlive::REUSABLE
            .and_close(CloseReason::UnexpectedData)
            .close_reason(),
        Some(CloseReason::UnexpectedData)
    );
    assert_eq!(KeepAlive::REUSABLE.close_reason(), None);
}
