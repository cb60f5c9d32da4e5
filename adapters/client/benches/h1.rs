//! The HTTP/1.1 codec on its own, timed: what one exchange costs the client
//! in framing, apart from the pool, the runtime and the socket.
//!
//! Run with `cargo bench -p muxpool-client --bench h1` (release profile). One
//! iteration is:
//!
//! | benchmark | one iteration |
//! | --- | --- |
//! | `h1/encode_get` | encode the head of `GET http://127.0.0.1:8080/` (no fields of the caller's) into a reused buffer |
//! | `h1/response` | parse an nginx response head (`Server`, `Date`, `Content-Type`, `Content-Length: 6`, `Connection: keep-alive`) into `http`'s response parts, then decode its 6-byte body to the end |
//!
//! The response is what nginx answers to the load benchmark's request, so this
//! is the framing half of the client's CPU per request there.
//!
//! ## Instructions
//!
//! With `MUXPOOL_BENCH_ITERATIONS=n` and `MUXPOOL_BENCH_PATH=<name>` (one of the
//! `h1/` names) the binary runs that benchmark `n` times, untimed, and exits:
//! under `valgrind --tool=callgrind` the difference between two runs divided by
//! the difference in `n` is the instructions of one iteration, as for the
//! core's `hot_path` bench (the README has the command).

use std::hint::black_box;

use bytes::BytesMut;
use criterion::Criterion;
use http::request;
use muxpool_client::h1::{
    encode_request, BodyEvent, Limits, RequestBody, RequestInfo, ResponseParser, TargetForm,
};

/// nginx's answer to `GET /` in the load benchmark, head and body.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.22.1\r\n\
Date: Thu, 03 Dec 2026 17:30:26 GMT\r\n\
Content-Type: text/plain\r\n\
Content-Length: 6\r\n\
Connection: keep-alive\r\n\
\r\n\
hello\n";

fn request_parts() -> request::Parts {
    let (parts, ()) = http::Request::get("http://127.0.0.1:8080/")
        .body(())
        .expect("a valid request")
        .into_parts();
    parts
}

/// Encodes the request head into `out`, which is cleared first.
fn encode_get(parts: &request::Parts, out: &mut BytesMut) {
    out.clear();
    let encoded = encode_request(parts, RequestBody::Empty, TargetForm::Origin, out)
        .expect("a valid request");
    black_box(encoded);
}

/// Parses [`RESPONSE`] and decodes its body; returns the body's length.
fn response(limits: Limits) -> usize {
    let mut input = BytesMut::from(RESPONSE);
    let mut parser = ResponseParser::new(RequestInfo::new(&http::Method::GET), limits);
    let head = parser
        .parse(&mut input)
        .expect("a valid head")
        .expect("a complete head");
    let mut decoder = head.body_decoder();
    let parts = black_box(head.into_parts());
    let mut length = 0;
    loop {
        match decoder.decode(&mut input).expect("a valid body") {
            Some(BodyEvent::Data(data)) => length += data.len(),
            Some(BodyEvent::End(keep_alive)) => {
                assert!(keep_alive.is_reusable());
                break;
            }
            Some(_) => {}
            None => panic!("the body is all in the buffer"),
        }
    }
    drop(parts);
    length
}

/// Runs benchmark `path` `n` times, untimed (for instruction counts).
fn run_untimed(path: &str, n: u64) {
    let parts = request_parts();
    let mut out = BytesMut::with_capacity(256);
    let limits = Limits::default();
    for _ in 0..n {
        match path {
            "h1/encode_get" => encode_get(black_box(&parts), &mut out),
            "h1/response" => {
                black_box(response(black_box(limits)));
            }
            other => panic!("no benchmark {other}"),
        }
    }
}

fn main() {
    if let (Ok(path), Ok(n)) = (
        std::env::var("MUXPOOL_BENCH_PATH"),
        std::env::var("MUXPOOL_BENCH_ITERATIONS"),
    ) {
        run_untimed(
            &path,
            n.parse().expect("MUXPOOL_BENCH_ITERATIONS is a number"),
        );
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let parts = request_parts();
    let mut out = BytesMut::with_capacity(256);
    c.bench_function("h1/encode_get", |b| {
        b.iter(|| encode_get(black_box(&parts), &mut out))
    });
    let limits = Limits::default();
    c.bench_function("h1/response", |b| {
        b.iter(|| black_box(response(black_box(limits))))
    });
    c.final_summary();
}
