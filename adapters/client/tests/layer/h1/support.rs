//! Helpers shared by the HTTP/1.1 codec tests: build requests, and drive a whole
//! response through the parser and the body decoder, fed in any pieces.

use http::{Method, Request};
pub use muxpool_client::h1::harness::{drive, Outcome};
use muxpool_client::h1::{Error, Limits, RequestInfo};

/// The parts of a request with `method` and `uri` and no fields.
pub fn parts(method: Method, uri: &str) -> http::request::Parts {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .expect("valid test request")
        .into_parts()
        .0
}

/// `RequestInfo` for a GET.
pub fn get() -> RequestInfo {
    RequestInfo::new(&Method::GET)
}

/// Feeds all of `input` at once, then EOF.
pub fn whole(request: RequestInfo, input: &[u8]) -> Result<Outcome, Error> {
    drive(request, Limits::default(), [input], true)
}

/// Feeds all of `input` at once, without EOF.
pub fn open(request: RequestInfo, input: &[u8]) -> Result<Outcome, Error> {
    drive(request, Limits::default(), [input], false)
}

/// Feeds `input` one byte at a time, then EOF if asked.
pub fn bytewise(request: RequestInfo, input: &[u8], eof: bool) -> Result<Outcome, Error> {
    drive(request, Limits::default(), input.chunks(1), eof)
}
