//! Encoding a request body in its declared framing.
//!
//! A `Content-Length` body is passed through and counted, so that neither more
//! nor fewer bytes than declared can be sent: the server would read the surplus
//! as the start of the next request, or wait for the missing bytes forever. A
//! chunked body frames each piece as a chunk and ends with the last chunk and the
//! trailer section. An empty piece is never framed, because a zero-size chunk
//! would end the body.
//!
//! Data can be copied into the output buffer ([`BodyEncoder::encode`]) or sent
//! from where it lies: [`BodyEncoder::data_prefix`] writes only the framing
//! before the data and returns the framing to send after it, for a vectored
//! write of prefix, data and suffix.

use bytes::{BufMut, BytesMut};
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::HeaderMap;

use super::fields::{is_field_value, is_token_str, put_hex};
use super::Error;

/// How the body of a request is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestBody {
    /// No body. `GET`, `HEAD` and the other methods that define no meaning for
    /// content get no framing field; `POST`, `PUT` and `PATCH` get
    /// `Content-Length: 0`, as RFC 9110 section 8.6 asks.
    Empty,
    /// A body of exactly this many bytes, framed by `Content-Length`.
    Length(u64),
    /// A body of unknown length, framed by `Transfer-Encoding: chunked`
    /// (HTTP/1.1 only), with optional trailers.
    Chunked,
}

/// The encoder for one request body, returned by
/// [`encode_request`](super::encode_request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyEncoder {
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A `Content-Length` body (or no body) with this many bytes still to send.
    Length { remaining: u64 },
    /// A chunked body, open for more chunks.
    Chunked,
    /// The body is complete.
    Done,
}

impl BodyEncoder {
    /// An encoder for a body framed as `body`.
    pub fn new(body: RequestBody) -> BodyEncoder {
        let state = match body {
            RequestBody::Empty => State::Length { remaining: 0 },
            RequestBody::Length(remaining) => State::Length { remaining },
            RequestBody::Chunked => State::Chunked,
        };
        BodyEncoder { state }
    }

    /// Appends `data`, framed, to `dst`.
    ///
    /// # Errors
    ///
    /// [`Error::RequestBodyLength`] if `data` goes past the declared length or
    /// the body was finished; `dst` is then unchanged.
    pub fn encode(&mut self, data: &[u8], dst: &mut BytesMut) -> Result<(), Error> {
        let suffix = self.data_prefix(data.len(), dst)?;
        dst.put_slice(data);
        dst.put_slice(suffix);
        Ok(())
    }

    /// Appends to `dst` the framing that goes before `len` bytes of data, counts
    /// them as sent, and returns the framing that must follow them. The caller
    /// sends `dst`, then the data, then the returned suffix.
    ///
    /// # Errors
    ///
    /// [`Error::RequestBodyLength`] if `len` bytes go past the declared length or
    /// the body was finished; `dst` is then unchanged.
    pub fn data_prefix(&mut self, len: usize, dst: &mut BytesMut) -> Result<&'static [u8], Error> {
        let len64 = u64::try_from(len).map_err(|_| Error::RequestBodyLength)?;
        match &mut self.state {
            State::Length { remaining } => {
                *remaining = remaining
                    .checked_sub(len64)
                    .ok_or(Error::RequestBodyLength)?;
                Ok(b"")
            }
            State::Chunked if len == 0 => Ok(b""),
            State::Chunked => {
                put_hex(dst, len64);
                dst.put_slice(b"\r\n");
                Ok(b"\r\n")
            }
            State::Done if len == 0 => Ok(b""),
            State::Done => Err(Error::RequestBodyLength),
        }
    }

    /// Ends the body: for a chunked body, appends the last chunk, the
    /// `trailers` and the empty line that ends them; for a `Content-Length` body,
    /// checks that every declared byte was given. Finishing a finished body
    /// without trailers does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::RequestBodyLength`] if declared bytes are missing, or trailers
    /// are given for a finished body; [`Error::InvalidRequest`] if trailers are
    /// given for a body that is not chunked, or a trailer has an invalid name or
    /// value or is a framing or routing field (`Content-Length`,
    /// `Transfer-Encoding`, `Host`). On error `dst` is unchanged.
    pub fn finish(
        &mut self,
        trailers: Option<&HeaderMap>,
        dst: &mut BytesMut,
    ) -> Result<(), Error> {
        let trailers = trailers.filter(|trailers| !trailers.is_empty());
        match self.state {
            State::Length { remaining: 0 } => {
                if trailers.is_some() {
                    return Err(Error::InvalidRequest("trailers need a chunked body"));
                }
            }
            State::Length { .. } => return Err(Error::RequestBodyLength),
            State::Chunked => {
                let start = dst.len();
                dst.put_slice(b"0\r\n");
                if let Err(error) = put_trailers(trailers, dst) {
                    dst.truncate(start);
                    return Err(error);
                }
                dst.put_slice(b"\r\n");
            }
            State::Done if trailers.is_some() => return Err(Error::RequestBodyLength),
            State::Done => {}
        }
        self.state = State::Done;
        Ok(())
    }

    /// Whether every byte the server expects has been encoded: the declared
    /// length reached, or the last chunk written.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::Length { remaining: 0 })
    }
}

fn put_trailers(trailers: Option<&HeaderMap>, dst: &mut BytesMut) -> Result<(), Error> {
    for (name, value) in trailers.into_iter().flatten() {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == HOST {
            return Err(Error::InvalidRequest(
                "framing or routing field in trailers",
            ));
        }
        if !is_token_str(name.as_str().as_bytes()) {
            return Err(Error::InvalidRequest("invalid trailer name"));
        }
        if !is_field_value(value.as_bytes()) {
            return Err(Error::InvalidRequest("invalid trailer value"));
        }
        dst.put_slice(name.as_str().as_bytes());
        dst.put_slice(b": ");
        dst.put_slice(value.as_bytes());
        dst.put_slice(b"\r\n");
    }
    Ok(())
}
