//! Property: no input panics the response parser or the body decoder, every call
//! terminates, and while waiting for more bytes neither holds more than its
//! limit. Inputs are arbitrary bytes, and arbitrary bytes behind plausible heads
//! and inside plausible chunked bodies so that the deeper states are reached.

use bytes::BytesMut;
use http::Method;
use muxpool_client::h1::{
    BodyDecoder, BodyEvent, Error, Framing, KeepAlive, Limits, RequestInfo, ResponseParser,
};
use proptest::prelude::*;

/// Feeds `input` in `pieces`-sized reads through a parser and decoder, then EOF.
/// Returns how the exchange ended; panics (failing the property) only on a
/// broken invariant.
fn exercise(request: RequestInfo, limits: Limits, input: &[u8], piece: usize) -> Result<(), Error> {
    let mut parser = ResponseParser::new(request, limits);
    let mut decoder: Option<BodyDecoder> = None;
    let mut buf = BytesMut::new();
    let mut ended = false;
    let mut advance =
        |buf: &mut BytesMut, decoder: &mut Option<BodyDecoder>| -> Result<bool, Error> {
            if decoder.is_none() {
                match parser.parse(buf)? {
                    Some(head) => *decoder = Some(head.body_decoder()),
                    None => {
                        assert!(
                            buf.len() <= limits.max_header_bytes(),
                            "parser waits holding {} bytes",
                            buf.len()
                        );
                        return Ok(false);
                    }
                }
            }
            let decoder = decoder.as_mut().expect("decoder");
            for _ in 0..=buf.len() + 2 {
                let before = buf.len();
                match decoder.decode(buf)? {
                    Some(BodyEvent::Data(data)) => assert!(!data.is_empty() && buf.len() < before),
                    Some(BodyEvent::Trailers(trailers)) => assert!(!trailers.is_empty()),
                    Some(BodyEvent::End(_)) => return Ok(true),
                    Some(_) => {}
                    None => return Ok(false),
                }
            }
            panic!("decode made no progress");
        };
    for chunk in input.chunks(piece.max(1)) {
        buf.extend_from_slice(chunk);
        if advance(&mut buf, &mut decoder)? {
            ended = true;
            break;
        }
    }
    if ended {
        return Ok(());
    }
    let decoder = match decoder.as_mut() {
        Some(decoder) => decoder,
        None => decoder.insert(parser.parse_eof(&mut buf)?.body_decoder()),
    };
    for _ in 0..=buf.len() + 2 {
        if let BodyEvent::End(_) = decoder.decode_eof(&mut buf)? {
            return Ok(());
        }
    }
    panic!("decode_eof made no progress");
}

fn request() -> impl Strategy<Value = RequestInfo> {
    prop_oneof![
        Just(RequestInfo::new(&Method::GET)),
        Just(RequestInfo::new(&Method::HEAD)),
        Just(RequestInfo::new(&Method::CONNECT)),
        Just(RequestInfo::new(&Method::GET).with_close(true)),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::default()),
        (0usize..200, 0usize..8, 0usize..24).prop_map(|(bytes, count, line)| {
            Limits::default()
                .with_max_header_bytes(bytes)
                .with_max_headers(count)
                .with_max_chunk_line(line)
        }),
    ]
}

/// Bytes biased towards HTTP syntax.
fn http_ish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b": ".to_vec()),
        Just(b";".to_vec()),
        Just(b",".to_vec()),
        Just(b" ".to_vec()),
        Just(b"0".to_vec()),
        Just(b"ffffffffffffffffff".to_vec()),
        Just(b"HTTP/1.1 ".to_vec()),
        Just(b"HTTP/1.0 ".to_vec()),
        Just(b"100 Continue\r\n\r\n".to_vec()),
        Just(b"101 ".to_vec()),
        Just(b"200 OK".to_vec()),
        Just(b"204".to_vec()),
        Just(b"Content-Length".to_vec()),
        Just(b"Transfer-Encoding".to_vec()),
        Just(b"chunked".to_vec()),
        Just(b"Connection".to_vec()),
        Just(b"close".to_vec()),
        Just(b"5".to_vec()),
        Just(b"A".to_vec()),
        Just(b"hello".to_vec()),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

const HEADS: [&[u8]; 5] = [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(
        request in request(),
        limits in limits(),
        input in proptest::collection::vec(any::<u8>(), 0..512),
        piece in 1usize..64,
    ) {
        let _ = exercise(request, limits, &input, piece);
    }

    #[test]
    fn http_like_bytes_never_panic(
        request in request(),
        limits in limits(),
        head in proptest::sample::select(&HEADS[..]),
        rest in http_ish(),
        piece in 1usize..16,
    ) {
        let input = [head, &rest[..]].concat();
        let _ = exercise(request, limits, &input, piece);
    }

    #[test]
    fn arbitrary_chunked_bodies_never_panic(
        limits in limits(),
        body in http_ish(),
        piece in 1usize..16,
    ) {
        let mut decoder = BodyDecoder::new(Framing::Chunked, KeepAlive::REUSABLE, limits);
        let mut buf = BytesMut::new();
        'feed: for chunk in body.chunks(piece) {
            buf.extend_from_slice(chunk);
            for _ in 0..=buf.len() + 2 {
                match decoder.decode(&mut buf) {
                    Ok(Some(BodyEvent::End(_))) | Err(_) => break 'feed,
                    Ok(None) => continue 'feed,
                    Ok(Some(_)) => {}
                }
            }
            panic!("decode made no progress");
        }
    }
}
