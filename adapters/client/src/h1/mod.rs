//! HTTP/1.1 framing for the client, sans-IO: bytes in, bytes and events out.
//!
//! This is the one place muxpool frames HTTP/1.1, written once for every runtime.
//! It opens no socket, spawns nothing, awaits nothing and reads no clock: the
//! adapters read into a `BytesMut`, hand it here, and write what is encoded
//! into theirs. That keeps the code that decides where a message ends testable
//! byte by byte, split any way the network likes, which is where HTTP/1.1
//! clients go wrong.
//!
//! One exchange on a connection goes through four pieces:
//!
//! 1. [`encode_request`] writes a request head from `http::request::Parts`,
//!    choosing the request-target form and the body framing, and refusing
//!    anything that would let the server read a different request (header
//!    injection, smuggling through conflicting framing fields).
//! 2. [`BodyEncoder`] frames the request body: counted against its
//!    `Content-Length`, or chunked with optional trailers.
//! 3. [`ResponseParser`] parses the response head incrementally under
//!    [`Limits`], skips informational responses, and decides the body
//!    [`Framing`] and a first [`KeepAlive`] decision.
//! 4. [`BodyDecoder`] decodes the body into [`BodyEvent`]s: data split zero-copy
//!    from the read buffer, trailers, and the end with the final keep-alive
//!    decision, which is the only thing that may send a connection back to the
//!    pool.
//!
//! Every failure is an [`Error`]; no input makes any of them panic.
//!
//! The client uses the codec through its own layers; the module is public
//! only with the `unstable` feature, for muxpool's own tests, fuzzing and
//! benchmarks, with no promise that it stays as it is. Its [`Limits`] and
//! [`Error`] are always public, as [`H1Limits`](crate::H1Limits) and
//! [`H1Error`](crate::H1Error).
//!
//! # One exchange
//!
//! ```
//! # #[cfg(feature = "unstable")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use bytes::BytesMut;
//! use http::Request;
//! use muxpool_client::h1::{
//!     encode_request, BodyEvent, Limits, RequestBody, ResponseParser, TargetForm,
//! };
//!
//! let (parts, ()) = Request::get("http://example.com/hello").body(())?.into_parts();
//! let mut out = BytesMut::new();
//! let request = encode_request(&parts, RequestBody::Empty, TargetForm::Origin, &mut out)?;
//! assert_eq!(&out[..], b"GET /hello HTTP/1.1\r\nhost: example.com\r\n\r\n");
//!
//! // The adapter writes `out`, then reads into `input` until a head is parsed.
//! let mut input = BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"[..]);
//! let mut parser = ResponseParser::new(request.info, Limits::default());
//! let head = parser.parse(&mut input)?.expect("complete head");
//! assert_eq!(head.status(), 200);
//!
//! let mut body = head.body_decoder();
//! let mut received = Vec::new();
//! let keep_alive = loop {
//!     match body.decode(&mut input)? {
//!         Some(BodyEvent::Data(data)) => received.extend_from_slice(&data),
//!         Some(BodyEvent::End(keep_alive)) => break keep_alive,
//!         Some(_) => {}
//!         None => unreachable!("read more into `input`, or call decode_eof at EOF"),
//!     }
//! };
//! assert_eq!(received, b"hi");
//! assert!(keep_alive.is_reusable()); // release the connection to the pool
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "unstable"))]
//! # fn main() {}
//! ```

// Without the `unstable` feature, parts of the codec's interface serve only
// its tests.
#![cfg_attr(not(feature = "unstable"), allow(dead_code, unused_imports))]

mod decoder;
mod encoder;
mod error;
mod fields;
#[cfg(feature = "unstable")]
pub mod harness;
mod keep_alive;
mod limits;
mod request;
mod response;

pub use decoder::{BodyDecoder, BodyEvent, Framing};
pub use encoder::{BodyEncoder, RequestBody};
pub use error::Error;
pub use keep_alive::{CloseReason, KeepAlive};
pub use limits::Limits;
pub(crate) use request::without_userinfo;
pub use request::{
    encode_forwarded_request, encode_request, EncodedRequest, RequestInfo, TargetForm,
};
pub use response::{ResponseHead, ResponseParser};
