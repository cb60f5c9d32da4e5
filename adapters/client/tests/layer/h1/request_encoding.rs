//! Request encoding: the request line in each target form, `Host`, the caller's
//! fields, the body framing the codec owns, and the refusal of anything that
//! would let a server read a different request than the one meant.

use super::support::parts;
use bytes::BytesMut;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Version};
use muxpool_client::h1::{
    encode_request, BodyEncoder, EncodedRequest, Error, RequestBody, TargetForm,
};
use proptest::prelude::*;

fn encode(
    parts: &http::request::Parts,
    body: RequestBody,
    form: TargetForm,
) -> Result<(String, EncodedRequest), Error> {
    let mut dst = BytesMut::new();
    let encoded = encode_request(parts, body, form, &mut dst)?;
    Ok((
        String::from_utf8(dst.to_vec()).expect("ascii head"),
        encoded,
    ))
}

fn head(parts: &http::request::Parts, body: RequestBody) -> String {
    encode(parts, body, TargetForm::Origin)
        .expect("encodable")
        .0
}

fn refused(parts: &http::request::Parts, body: RequestBody) -> Error {
    let mut dst = BytesMut::from(&b"earlier bytes"[..]);
    let error = encode_request(parts, body, TargetForm::Origin, &mut dst).expect_err("refused");
    assert_eq!(
        &dst[..],
        b"earlier bytes",
        "a refused request must leave dst as it was"
    );
    error
}

#[test]
fn origin_form_sends_path_and_query_and_derives_host_from_the_authority() {
    let p = parts(Method::GET, "http://example.com:8080/a/b?x=1&y");
    assert_eq!(
        head(&p, RequestBody::Empty),
        "GET /a/b?x=1&y HTTP/1.1\r\nhost: example.com:8080\r\n\r\n"
    );
}

#[test]
fn an_empty_path_is_sent_as_slash() {
    let p = parts(Method::GET, "http://example.com");
    assert_eq!(
        head(&p, RequestBody::Empty),
        "GET / HTTP/1.1\r\nhost: example.com\r\n\r\n"
    );
    let p = parts(Method::GET, "http://example.com?q=1");
    assert_eq!(
        head(&p, RequestBody::Empty),
        "GET /?q=1 HTTP/1.1\r\nhost: example.com\r\n\r\n"
    );
}

#[test]
fn absolute_form_sends_the_whole_uri_for_a_proxy() {
    let p = parts(Method::GET, "http://example.com/a?b=c");
    let (text, _) = encode(&p, RequestBody::Empty, TargetForm::Absolute).unwrap();
    assert_eq!(
        text,
        "GET http://example.com/a?b=c HTTP/1.1\r\nhost: example.com\r\n\r\n"
    );
}

#[test]
fn absolute_form_needs_a_scheme_and_an_authority() {
    let mut p = parts(Method::GET, "/only/a/path");
    p.headers
        .insert(HOST, HeaderValue::from_static("example.com"));
    let mut dst = BytesMut::new();
    let error = encode_request(&p, RequestBody::Empty, TargetForm::Absolute, &mut dst).unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
    assert!(dst.is_empty());
}

#[test]
fn user_information_is_never_sent() {
    let p = parts(Method::GET, "http://user:secret@example.com/x");
    let (origin, _) = encode(&p, RequestBody::Empty, TargetForm::Origin).unwrap();
    let (absolute, _) = encode(&p, RequestBody::Empty, TargetForm::Absolute).unwrap();
    assert_eq!(origin, "GET /x HTTP/1.1\r\nhost: example.com\r\n\r\n");
    assert_eq!(
        absolute,
        "GET http://example.com/x HTTP/1.1\r\nhost: example.com\r\n\r\n"
    );
}

#[test]
fn connect_uses_the_authority_form_whatever_the_form_asked() {
    let p = parts(Method::CONNECT, "example.com:443");
    for form in [TargetForm::Origin, TargetForm::Absolute] {
        let (text, encoded) = encode(&p, RequestBody::Empty, form).unwrap();
        assert_eq!(
            text,
            "CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n"
        );
        assert!(encoded.info.is_connect());
    }
}

#[test]
fn connect_takes_the_default_port_of_the_scheme_or_refuses() {
    let p = parts(Method::CONNECT, "https://example.com");
    assert!(head(&p, RequestBody::Empty).starts_with("CONNECT example.com:443 HTTP/1.1\r\n"));
    let p = parts(Method::CONNECT, "http://[::1]");
    assert!(head(&p, RequestBody::Empty).starts_with("CONNECT [::1]:80 HTTP/1.1\r\n"));
    let p = parts(Method::CONNECT, "example.com");
    assert!(matches!(
        refused(&p, RequestBody::Empty),
        Error::InvalidRequest(_)
    ));
}

#[test]
fn the_asterisk_form_is_sent_for_server_wide_options() {
    let mut p = parts(Method::OPTIONS, "*");
    assert!(
        matches!(refused(&p, RequestBody::Empty), Error::InvalidRequest(_)),
        "no Host"
    );
    p.headers
        .insert(HOST, HeaderValue::from_static("example.com"));
    assert_eq!(
        head(&p, RequestBody::Empty),
        "OPTIONS * HTTP/1.1\r\nhost: example.com\r\n\r\n"
    );
}

#[test]
fn a_callers_host_is_kept_and_written_first_once() {
    let mut p = parts(Method::GET, "http://example.com/");
    p.headers.insert("accept", HeaderValue::from_static("*/*"));
    p.headers
        .insert(HOST, HeaderValue::from_static("virtual.example"));
    p.headers.insert("x-trace", HeaderValue::from_static("1"));
    let text = head(&p, RequestBody::Empty);
    assert!(
        text.starts_with("GET / HTTP/1.1\r\nhost: virtual.example\r\n"),
        "{text}"
    );
    assert_eq!(text.matches("host:").count(), 1);
    assert!(text.contains("accept: */*\r\n") && text.contains("x-trace: 1\r\n"));
    assert!(text.ends_with("\r\n\r\n"));
}

#[test]
fn repeated_fields_are_each_written_in_order() {
    let mut p = parts(Method::GET, "http://example.com/");
    p.headers.append("cookie", HeaderValue::from_static("a=1"));
    p.headers.append("cookie", HeaderValue::from_static("b=2"));
    let text = head(&p, RequestBody::Empty);
    assert!(text.contains("cookie: a=1\r\ncookie: b=2\r\n"), "{text}");
}

#[test]
fn a_request_without_host_or_authority_is_refused() {
    let p = parts(Method::GET, "/path");
    assert!(matches!(
        refused(&p, RequestBody::Empty),
        Error::InvalidRequest(_)
    ));
}

#[test]
fn two_host_fields_are_refused() {
    let mut p = parts(Method::GET, "http://example.com/");
    p.headers
        .append(HOST, HeaderValue::from_static("a.example"));
    p.headers
        .append(HOST, HeaderValue::from_static("b.example"));
    assert!(matches!(
        refused(&p, RequestBody::Empty),
        Error::InvalidRequest(_)
    ));
}

#[test]
fn an_empty_host_is_refused() {
    let mut p = parts(Method::GET, "http://example.com/");
    p.headers.insert(HOST, HeaderValue::from_static(""));
    assert!(matches!(
        refused(&p, RequestBody::Empty),
        Error::InvalidRequest(_)
    ));
}

#[test]
fn methods_without_content_get_no_framing_and_post_put_patch_get_a_zero_length() {
    for method in [
        Method::GET,
        Method::HEAD,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
    ] {
        let text = head(&parts(method.clone(), "http://h/"), RequestBody::Empty);
        assert!(
            !text.contains("content-length") && !text.contains("transfer-encoding"),
            "{method}: {text}"
        );
    }
    for method in [Method::POST, Method::PUT, Method::PATCH] {
        let text = head(&parts(method.clone(), "http://h/"), RequestBody::Empty);
        assert!(
            text.ends_with("content-length: 0\r\n\r\n"),
            "{method}: {text}"
        );
    }
}

#[test]
fn a_known_length_is_sent_as_content_length() {
    let text = head(&parts(Method::PUT, "http://h/"), RequestBody::Length(1234));
    assert_eq!(
        text,
        "PUT / HTTP/1.1\r\nhost: h\r\ncontent-length: 1234\r\n\r\n"
    );
    let text = head(&parts(Method::GET, "http://h/"), RequestBody::Length(0));
    assert!(
        text.ends_with("content-length: 0\r\n\r\n"),
        "an explicit zero is sent: {text}"
    );
}

#[test]
fn a_streamed_body_is_sent_chunked() {
    let text = head(&parts(Method::POST, "http://h/"), RequestBody::Chunked);
    assert_eq!(
        text,
        "POST / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n"
    );
}

#[test]
fn a_callers_framing_field_is_accepted_only_when_it_agrees() {
    let mut p = parts(Method::POST, "http://h/");
    p.headers
        .insert(CONTENT_LENGTH, HeaderValue::from_static("5"));
    let text = head(&p, RequestBody::Length(5));
    assert_eq!(text.matches("content-length").count(), 1, "{text}");
    assert!(matches!(
        refused(&p, RequestBody::Length(6)),
        Error::InvalidRequest(_)
    ));
    assert!(matches!(
        refused(&p, RequestBody::Empty),
        Error::InvalidRequest(_)
    ));
    assert!(matches!(
        refused(&p, RequestBody::Chunked),
        Error::InvalidRequest(_)
    ));

    let mut p = parts(Method::POST, "http://h/");
    p.headers
        .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    assert_eq!(
        head(&p, RequestBody::Empty)
            .matches("content-length: 0")
            .count(),
        1
    );

    let mut p = parts(Method::POST, "http://h/");
    p.headers
        .insert(TRANSFER_ENCODING, HeaderValue::from_static("gzip, chunked"));
    let text = head(&p, RequestBody::Chunked);
    assert!(
        text.contains("transfer-encoding: gzip, chunked\r\n"),
        "{text}"
    );
    assert_eq!(text.matches("transfer-encoding").count(), 1, "{text}");
    assert!(matches!(
        refused(&p, RequestBody::Length(3)),
        Error::InvalidRequest(_)
    ));
    assert!(matches!(
        refused(&p, RequestBody::Empty),
        Error::InvalidRequest(_)
    ));
}

#[test]
fn framing_fields_that_could_smuggle_a_request_are_refused() {
    let cases: [&[(&str, &str)]; 6] = [
        &[("content-length", "5"), ("content-length", "5")],
        &[("content-length", "5, 5")],
        &[("content-length", "+5")],
        &[("transfer-encoding", "chunked, gzip")],
        &[("transfer-encoding", "chunked, chunked")],
        &[("transfer-encoding", "chunked"), ("content-length", "5")],
    ];
    for fields in cases {
        for body in [RequestBody::Length(5), RequestBody::Chunked] {
            let mut p = parts(Method::POST, "http://h/");
            for (name, value) in fields {
                p.headers.append(*name, HeaderValue::from_static(value));
            }
            let error = refused(&p, body);
            assert!(
                matches!(error, Error::InvalidRequest(_)),
                "{fields:?} {body:?}: {error:?}"
            );
        }
    }
}

#[test]
fn http_1_0_requests_close_unless_kept_alive_and_cannot_be_chunked() {
    let mut p = parts(Method::GET, "http://h/");
    p.version = Version::HTTP_10;
    let (text, encoded) = encode(&p, RequestBody::Empty, TargetForm::Origin).unwrap();
    assert_eq!(text, "GET / HTTP/1.0\r\nhost: h\r\n\r\n");
    assert!(encoded.info.wants_close());
    assert!(matches!(
        refused(&p, RequestBody::Chunked),
        Error::InvalidRequest(_)
    ));

    p.headers
        .insert(CONNECTION, HeaderValue::from_static("Keep-Alive"));
    let (_, encoded) = encode(&p, RequestBody::Empty, TargetForm::Origin).unwrap();
    assert!(!encoded.info.wants_close());
}

#[test]
fn other_versions_are_sent_as_http_1_1() {
    let mut p = parts(Method::GET, "http://h/");
    p.version = Version::HTTP_2;
    assert!(head(&p, RequestBody::Empty).starts_with("GET / HTTP/1.1\r\n"));
}

#[test]
fn connection_close_in_the_request_is_reported() {
    let mut p = parts(Method::GET, "http://h/");
    let (_, encoded) = encode(&p, RequestBody::Empty, TargetForm::Origin).unwrap();
    assert!(!encoded.info.wants_close());
    p.headers
        .insert(CONNECTION, HeaderValue::from_static("upgrade, Close"));
    let (_, encoded) = encode(&p, RequestBody::Empty, TargetForm::Origin).unwrap();
    assert!(encoded.info.wants_close());
}

#[test]
fn the_info_remembers_head_requests() {
    let (_, encoded) = encode(
        &parts(Method::HEAD, "http://h/"),
        RequestBody::Empty,
        TargetForm::Origin,
    )
    .unwrap();
    assert!(encoded.info.is_head() && !encoded.info.is_connect());
}

#[test]
fn encoding_appends_after_what_the_buffer_holds() {
    let mut dst = BytesMut::from(&b"previous request bytes|"[..]);
    encode_request(
        &parts(Method::GET, "http://h/"),
        RequestBody::Empty,
        TargetForm::Origin,
        &mut dst,
    )
    .unwrap();
    assert_eq!(
        &dst[..],
        b"previous request bytes|GET / HTTP/1.1\r\nhost: h\r\n\r\n"
    );
}

#[test]
fn a_length_body_is_counted_and_cannot_overrun_or_fall_short() {
    let mut dst = BytesMut::new();
    let mut body = BodyEncoder::new(RequestBody::Length(8));
    body.encode(b"hello", &mut dst).unwrap();
    assert!(!body.is_finished());
    assert_eq!(
        body.finish(None, &mut dst),
        Err(Error::RequestBodyLength),
        "3 bytes missing"
    );
    assert_eq!(
        body.encode(b"world", &mut dst),
        Err(Error::RequestBodyLength)
    );
    assert_eq!(&dst[..], b"hello", "a refused piece writes nothing");
    assert_eq!(body.data_prefix(3, &mut dst), Ok(&b""[..]));
    assert!(body.is_finished());
    body.finish(None, &mut dst).unwrap();
    assert_eq!(body.encode(b"!", &mut dst), Err(Error::RequestBodyLength));
    assert_eq!(&dst[..], b"hello");
}

#[test]
fn an_empty_body_accepts_no_data_and_no_trailers() {
    let mut dst = BytesMut::new();
    let mut body = BodyEncoder::new(RequestBody::Empty);
    assert!(body.is_finished());
    body.encode(b"", &mut dst).unwrap();
    assert_eq!(body.encode(b"x", &mut dst), Err(Error::RequestBodyLength));
    let mut trailers = HeaderMap::new();
    trailers.insert("x-sum", HeaderValue::from_static("1"));
    assert!(matches!(
        body.finish(Some(&trailers), &mut dst),
        Err(Error::InvalidRequest(_))
    ));
    body.finish(None, &mut dst).unwrap();
    assert!(dst.is_empty());
}

#[test]
fn a_chunked_body_frames_each_piece_and_never_writes_an_early_last_chunk() {
    let mut dst = BytesMut::new();
    let mut body = BodyEncoder::new(RequestBody::Chunked);
    body.encode(b"hello", &mut dst).unwrap();
    body.encode(b"", &mut dst).unwrap();
    body.encode(&[b'x'; 300], &mut dst).unwrap();
    assert!(!body.is_finished());
    body.finish(None, &mut dst).unwrap();
    assert!(body.is_finished());
    let mut expected = b"5\r\nhello\r\n12c\r\n".to_vec();
    expected.extend_from_slice(&[b'x'; 300]);
    expected.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(&dst[..], &expected[..]);
    assert_eq!(
        body.encode(b"late", &mut dst),
        Err(Error::RequestBodyLength)
    );
    body.finish(None, &mut dst).unwrap();
    assert_eq!(&dst[..], &expected[..], "finishing twice writes nothing");
}

#[test]
fn a_chunk_prefix_lets_the_data_be_written_from_where_it_lies() {
    let mut dst = BytesMut::new();
    let mut body = BodyEncoder::new(RequestBody::Chunked);
    let suffix = body.data_prefix(4096, &mut dst).unwrap();
    assert_eq!((&dst[..], suffix), (&b"1000\r\n"[..], &b"\r\n"[..]));
    dst.clear();
    assert_eq!(body.data_prefix(0, &mut dst), Ok(&b""[..]));
    assert!(dst.is_empty());
}

#[test]
fn chunked_trailers_are_written_after_the_last_chunk() {
    let mut dst = BytesMut::new();
    let mut body = BodyEncoder::new(RequestBody::Chunked);
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("abc"));
    body.finish(Some(&trailers), &mut dst).unwrap();
    assert_eq!(&dst[..], b"0\r\nx-checksum: abc\r\n\r\n");
}

#[test]
fn framing_and_routing_fields_are_refused_as_trailers() {
    for name in [CONTENT_LENGTH, TRANSFER_ENCODING, HOST] {
        let mut dst = BytesMut::new();
        let mut body = BodyEncoder::new(RequestBody::Chunked);
        body.encode(b"data", &mut dst).unwrap();
        let before = dst.clone();
        let mut trailers = HeaderMap::new();
        trailers.insert(name.clone(), HeaderValue::from_static("1"));
        assert!(
            matches!(
                body.finish(Some(&trailers), &mut dst),
                Err(Error::InvalidRequest(_))
            ),
            "{name}"
        );
        assert_eq!(dst, before, "{name}: nothing written");
        assert!(!body.is_finished());
    }
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

proptest! {
    /// Whatever valid request is encoded, an HTTP/1.1 request parser reads back
    /// the same method, target, fields and framing.
    #[test]
    fn an_encoded_head_parses_back_to_the_same_request(
        method in "[A-Z]{1,8}",
        path in "(/[a-z0-9._~%-]{0,8}){1,4}",
        query in proptest::option::of("[a-z0-9=&]{0,12}"),
        fields in proptest::collection::vec((token(), "[ -~]{0,20}"), 0..8),
        body in prop_oneof![
            Just(RequestBody::Empty),
            any::<u64>().prop_map(RequestBody::Length),
            Just(RequestBody::Chunked),
        ],
    ) {
        prop_assume!(method != "CONNECT", "CONNECT has its own target form");
        let uri = match &query {
            Some(query) => format!("http://example.com{path}?{query}"),
            None => format!("http://example.com{path}"),
        };
        let mut request = parts(Method::from_bytes(method.as_bytes()).unwrap(), &uri);
        for (name, value) in &fields {
            let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            if [HOST, CONTENT_LENGTH, TRANSFER_ENCODING].contains(&name) {
                continue;
            }
            request.headers.append(name, HeaderValue::from_str(value.trim()).unwrap());
        }
        let mut dst = BytesMut::new();
        encode_request(&request, body, TargetForm::Origin, &mut dst).unwrap();

        let mut slots = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Request::new(&mut slots);
        let len = parsed.parse(&dst).unwrap();
        prop_assert_eq!(len, httparse::Status::Complete(dst.len()));
        prop_assert_eq!(parsed.method, Some(method.as_str()));
        let target = match &query {
            Some(query) => format!("{path}?{query}"),
            None => path.clone(),
        };
        prop_assert_eq!(parsed.path, Some(target.as_str()));
        prop_assert_eq!(parsed.version, Some(1));
        prop_assert_eq!(parsed.headers[0].name, "host");
        prop_assert_eq!(parsed.headers[0].value, b"example.com");
        let mut read = HeaderMap::new();
        for field in parsed.headers.iter().skip(1) {
            read.append(
                http::HeaderName::from_bytes(field.name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(field.value).unwrap(),
            );
        }
        let framing = (read.remove(CONTENT_LENGTH), read.remove(TRANSFER_ENCODING));
        let expected_length = match body {
            RequestBody::Length(n) => Some(n.to_string()),
            RequestBody::Empty if ["POST", "PUT", "PATCH"].contains(&method.as_str()) => Some("0".into()),
            _ => None,
        };
        prop_assert_eq!(framing.0.map(|v| v.to_str().unwrap().to_owned()), expected_length);
        prop_assert_eq!(framing.1.is_some(), body == RequestBody::Chunked);
        prop_assert_eq!(read, {
            let mut sent = request.headers.clone();
            sent.remove(HOST);
            sent
        });
    }
}
