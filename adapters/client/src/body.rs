//! [`Body`]: the body of a response, and a convenient request body.
//!
//! A response body streams straight from its connection: nothing is read before
//! the caller asks, so a slow reader holds back the server through TCP rather
//! than filling memory (backpressure). When a body is read to its end, its
//! connection goes back to the pool; dropping it early closes the connection.
//! Small responses that arrive with their head are complete already, and their
//! connection is back in the pool before the caller sees the response.
//!
//! `Body` implements [`http_body::Body`], so it works with the whole http-body
//! ecosystem, and has the conveniences most callers want: [`Body::bytes`],
//! [`Body::text`] and [`Body::chunk`].
//!
//! A compressed response the client decodes (see `crate::decompress`) is
//! the same `Body`, decoded a piece at a time as its frames are read: the
//! compressed body is never held whole, and backpressure still reaches the
//! server.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::BoxBody;

use crate::conn::h1::H1Body;
use crate::conn::h2::H2Body;
use crate::conn::outgoing::Outgoing;
use crate::conn::Read;
use crate::decompress::{Decoder, Decompression};
use crate::error::{BoxError, Error, ErrorKind, Origin};

/// The most [`Body::bytes`] collects unless the client is configured otherwise.
pub const DEFAULT_MAX_COLLECT: usize = 64 * 1024 * 1024;

/// A streaming body: the body of a response, or of a request.
pub struct Body {
    kind: Kind,
    // Boxed: trailers are rare, and a response (this body inline) is moved
    // whole through every layer that returns it.
    trailers: Option<Box<HeaderMap>>,
    max_collect: usize,
}

enum Kind {
    Empty,
    Full(Bytes),
    H1(Box<H1Body>),
    H2(Box<H2Body>),
    Boxed(BoxBody<Bytes, BoxError>),
    /// A compressed response body, decoded as it is read.
    Decoded(Box<Decoded>),
}

impl Body {
    /// A body with no content.
    pub fn empty() -> Body {
        Body::with(Kind::Empty)
    }

    /// A body that streams `body`: any `http_body::Body`, such as
    /// `http_body_util::StreamBody` over a stream of frames. Its size hint
    /// goes with it, so a body of known length is sent with
    /// `Content-Length`. It can be sent once: a redirect that keeps the
    /// body is not followed for it.
    pub fn wrap<B>(body: B) -> Body
    where
        B: http_body::Body + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        Body::with(Kind::Boxed(BoxBody::new(IntoBytes { inner: body })))
    }

    fn with(kind: Kind) -> Body {
        Body {
            kind,
            trailers: None,
            max_collect: DEFAULT_MAX_COLLECT,
        }
    }

    pub(crate) fn h1(body: H1Body, max_collect: usize) -> Body {
        Body {
            max_collect,
            ..Body::with(Kind::H1(Box::new(body)))
        }
    }

    pub(crate) fn h2(body: H2Body, max_collect: usize) -> Body {
        Body {
            max_collect,
            ..Body::with(Kind::H2(Box::new(body)))
        }
    }

    pub(crate) fn full(data: Bytes, trailers: Option<HeaderMap>) -> Body {
        Body {
            trailers: trailers.map(Box::new),
            ..Body::with(if data.is_empty() {
                Kind::Empty
            } else {
                Kind::Full(data)
            })
        }
    }

    /// The content, if it is all in memory; the body is left empty.
    fn take_full(&mut self) -> Option<Bytes> {
        match std::mem::replace(&mut self.kind, Kind::Empty) {
            Kind::Empty => Some(Bytes::new()),
            Kind::Full(data) => Some(data),
            other => {
                self.kind = other;
                None
            }
        }
    }

    /// The next chunk of data, or `None` at the end. Trailers, if any, are kept
    /// for [`trailers`](Self::trailers).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Body`] when the body is truncated or malformed,
    /// [`ErrorKind::Timeout`] when no bytes arrived within the read timeout.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            let Some(frame) = self.frame_owned().await? else {
                return Ok(None);
            };
            match frame.into_data() {
                Ok(data) => return Ok(Some(data)),
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        self.trailers = Some(Box::new(trailers));
                    }
                }
            }
        }
    }

    async fn frame_owned(&mut self) -> Result<Option<Frame<Bytes>>, Error> {
        std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut *self), cx))
            .await
            .transpose()
    }

    /// The trailers of the body, once it has been read to its end.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_deref()
    }

    /// Reads the whole body.
    ///
    /// # Errors
    ///
    /// Those of [`chunk`](Self::chunk), and [`ErrorKind::Body`] when the body is
    /// longer than the client's `max_response_body` (64 MiB by default).
    pub async fn bytes(mut self) -> Result<Bytes, Error> {
        if let Some(data) = self.take_full() {
            return Ok(data);
        }
        let limit = self.max_collect;
        let Some(first) = self.chunk().await? else {
            return Ok(Bytes::new());
        };
        let Some(second) = self.chunk().await? else {
            return Ok(first);
        };
        let mut all = BytesMut::with_capacity(
            http_body::Body::size_hint(&self)
                .exact()
                .map_or(0, |n| n as usize)
                .saturating_add(first.len() + second.len())
                .min(limit),
        );
        for part in [first, second] {
            collect(&mut all, &part, limit).map_err(|e| self.named(e))?;
        }
        while let Some(part) = self.chunk().await? {
            collect(&mut all, &part, limit).map_err(|e| self.named(e))?;
        }
        Ok(all.freeze())
    }

    /// Reads the whole body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// Those of [`bytes`](Self::bytes), and [`ErrorKind::Body`] if the body is
    /// not valid UTF-8.
    pub async fn text(self) -> Result<String, Error> {
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.into()).map_err(|e| {
            Error::new(ErrorKind::Body)
                .with_message("the body is not valid UTF-8")
                .with_source(e)
        })
    }
}

/// JSON, behind the `json` feature.
#[cfg(feature = "json")]
impl Body {
    /// A body holding `value` serialized as JSON. Set the request's
    /// `Content-Type` to `application/json` too.
    ///
    /// ```
    /// let body = muxpool_client::Body::from_json(&["a", "b"])?;
    /// let request = http::Request::post("http://127.0.0.1:1/items")
    ///     .header(http::header::CONTENT_TYPE, "application/json")
    ///     .body(body)
    ///     .expect("a request");
    /// # Ok::<(), muxpool_client::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Request`] when `value` cannot be serialized (a map with
    /// keys that are not strings, a `Serialize` impl that fails).
    pub fn from_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Body, Error> {
        serde_json::to_vec(value).map(Body::from).map_err(|e| {
            Error::new(ErrorKind::Request)
                .with_message("the body could not be serialized as JSON")
                .with_source(e)
        })
    }

    /// Reads the whole body, as [`bytes`](Body::bytes) does (within the
    /// same limit), and parses it as JSON into a `T`.
    ///
    /// # Errors
    ///
    /// As [`bytes`](Body::bytes); and [`ErrorKind::Body`] when the body is not
    /// JSON for a `T`, with serde_json's error (line, column, what was
    /// expected) as the cause.
    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(ErrorKind::Body)
                .with_message("the body is not the JSON expected")
                .with_source(e)
        })
    }
}

impl Body {
    /// `error`, naming the origin of the response this body is reading, when
    /// it still reads one.
    fn named(&self, error: Error) -> Error {
        match self.origin() {
            Some(origin) => error.with_origin(|| origin),
            None => error,
        }
    }

    /// The origin of the response this body is reading, while it reads one.
    fn origin(&self) -> Option<Origin> {
        match &self.kind {
            Kind::H1(body) => body.origin(),
            Kind::H2(body) => body.origin(),
            Kind::Decoded(decoded) => decoded.inner.origin(),
            _ => None,
        }
    }
}

/// The response to a request [`Decompression::prepare`] let through,
/// decoded as it is read when its `Content-Encoding` is one `settings`
/// enables (its `Content-Encoding` and `Content-Length` are then gone);
/// otherwise as it came.
pub(crate) fn decompressed(
    response: http::Response<Body>,
    settings: &Decompression,
) -> http::Response<Body> {
    let (mut head, body) = response.into_parts();
    let Some(decoder) = settings.decoder_for(head.status, &mut head.headers) else {
        return http::Response::from_parts(head, body);
    };
    let mut inner = body;
    let body = Body {
        // Trailers that came with the whole body are already out of its
        // frames: they stay where `trailers()` finds them.
        trailers: inner.trailers.take(),
        max_collect: inner.max_collect,
        kind: Kind::Decoded(Box::new(Decoded {
            inner,
            decoder,
            input: Bytes::new(),
            trailers: None,
            state: Decoding::Reading,
        })),
    };
    http::Response::from_parts(head, body)
}

/// A body decoded as it is read: each frame of the compressed body is fed
/// to the decoder, which gives out pieces of at most
/// [`CHUNK`](crate::decompress::CHUNK) bytes; the next frame is read only
/// once the last one is used up. Trailers pass through, after the data.
struct Decoded {
    inner: Body,
    decoder: Decoder,
    /// What is left of the last compressed frame.
    input: Bytes,
    /// The compressed body's trailers, given out once the data is.
    trailers: Option<HeaderMap>,
    state: Decoding,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Decoding {
    /// The compressed body has more.
    Reading,
    /// The compressed body ended; what the decoder holds goes out.
    Draining,
    /// Everything went out, or an error did.
    Done,
}

impl Decoded {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        loop {
            match self.state {
                Decoding::Done => return Poll::Ready(None),
                Decoding::Draining => {
                    match self.decoder.decode(&mut self.input) {
                        Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                        Ok(None) => {}
                        Err(e) => return Poll::Ready(Some(Err(self.fail(e)))),
                    }
                    if let Err(e) = self.decoder.finish() {
                        return Poll::Ready(Some(Err(self.fail(e))));
                    }
                    self.state = Decoding::Done;
                    return Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))));
                }
                Decoding::Reading => {
                    if !self.input.is_empty() || self.decoder.has_output() {
                        match self.decoder.decode(&mut self.input) {
                            Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                            Ok(None) => {}
                            Err(e) => return Poll::Ready(Some(Err(self.fail(e)))),
                        }
                    }
                    match std::task::ready!(http_body::Body::poll_frame(
                        Pin::new(&mut self.inner),
                        cx
                    )) {
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(data) => self.input = data,
                            // Kept for the end; the compressed body is read
                            // on to its end (an HTTP/1.1 connection goes back
                            // to the pool only then).
                            Err(frame) => self.trailers = frame.into_trailers().ok(),
                        },
                        None => self.state = Decoding::Draining,
                        Some(Err(e)) => {
                            self.state = Decoding::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                }
            }
        }
    }

    /// Ends the body with `error`, naming its origin, and lets go of the
    /// compressed body at once: its HTTP/1.1 connection closes, its HTTP/2
    /// stream is reset, rather than wait for the caller to drop it.
    fn fail(&mut self, error: Error) -> Error {
        let error = self.inner.named(error);
        self.inner = Body::empty();
        self.input = Bytes::new();
        self.trailers = None;
        self.state = Decoding::Done;
        error
    }
}

fn collect(all: &mut BytesMut, part: &[u8], limit: usize) -> Result<(), Error> {
    if all.len().saturating_add(part.len()) > limit {
        return Err(Error::new(ErrorKind::Body).with_message("the body is larger than the limit"));
    }
    all.extend_from_slice(part);
    Ok(())
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(_) => match std::mem::replace(&mut self.kind, Kind::Empty) {
                Kind::Full(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                _ => Poll::Ready(None),
            },
            Kind::H1(body) => frame(body.poll_read(cx)),
            Kind::H2(body) => frame(body.poll_read(cx)),
            Kind::Boxed(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|e| Error::new(ErrorKind::Body).with_source(e)),
            Kind::Decoded(decoded) => decoded.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(data) => data.is_empty(),
            Kind::H1(body) => body.is_end(),
            Kind::H2(body) => body.is_end(),
            Kind::Boxed(body) => body.is_end_stream(),
            Kind::Decoded(decoded) => decoded.state == Decoding::Done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(data) => SizeHint::with_exact(data.len() as u64),
            Kind::H1(body) => body
                .exact_remaining()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
            Kind::H2(_) | Kind::Decoded(_) => SizeHint::default(),
            Kind::Boxed(body) => body.size_hint(),
        }
    }
}

fn frame(read: Poll<Result<Read, Error>>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
    read.map(|read| match read {
        Ok(Read::Data(data)) => Some(Ok(Frame::data(data))),
        Ok(Read::Trailers(t)) => Some(Ok(Frame::trailers(t))),
        Ok(Read::End) => None,
        Err(e) => Some(Err(e)),
    })
}

pin_project_lite::pin_project! {
    /// A body whose data comes out as `Bytes` and whose errors are boxed,
    /// its end and size hint told as they are.
    struct IntoBytes<B> {
        #[pin]
        inner: B,
    }
}

impl<B> http_body::Body for IntoBytes<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().inner.poll_frame(cx).map(|frame| {
            frame.map(|frame| match frame {
                Ok(frame) => Ok(frame.map_data(|mut data| data.copy_to_bytes(data.remaining()))),
                Err(e) => Err(e.into()),
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "empty",
            Kind::Full(_) => "full",
            Kind::H1(_) => "http/1.1 stream",
            Kind::H2(_) => "http/2 stream",
            Kind::Boxed(_) => "stream",
            Kind::Decoded(_) => "decoded stream",
        };
        f.debug_struct("Body").field("kind", &kind).finish()
    }
}

impl From<Bytes> for Body {
    fn from(data: Bytes) -> Body {
        Body::full(data, None)
    }
}

impl From<Vec<u8>> for Body {
    fn from(data: Vec<u8>) -> Body {
        Body::from(Bytes::from(data))
    }
}

impl From<String> for Body {
    fn from(data: String) -> Body {
        Body::from(Bytes::from(data))
    }
}

impl From<&'static str> for Body {
    fn from(data: &'static str) -> Body {
        Body::from(Bytes::from_static(data.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(data: &'static [u8]) -> Body {
        Body::from(Bytes::from_static(data))
    }
}

impl From<()> for Body {
    fn from((): ()) -> Body {
        Body::empty()
    }
}

impl Body {
    /// This body taken in for sending: whole when its content is in memory,
    /// without a look at its frames; streamed otherwise.
    pub(crate) fn into_outgoing(mut self) -> Result<Outgoing, Error> {
        match self.take_full() {
            Some(data) => Ok(Outgoing::whole(data)),
            None => Outgoing::new(self),
        }
    }

    /// The content, when it is all in memory, for sending it again (a
    /// redirect that keeps the body); `None` for a stream, which can be
    /// sent once.
    pub(crate) fn replayable(&self) -> Option<Bytes> {
        match &self.kind {
            Kind::Empty => Some(Bytes::new()),
            Kind::Full(data) => Some(data.clone()),
            _ => None,
        }
    }
}

/// A request body of any type, as a [`Body`] when it is one (so that
/// content in memory is sent whole and can be sent again), streamed as
/// [`Outgoing::new`] finds it otherwise.
pub(crate) fn outgoing<B>(body: B) -> (Result<Outgoing, Error>, Option<Bytes>)
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut body = Some(body);
    if let Some(ours) = (&mut body as &mut dyn std::any::Any).downcast_mut::<Option<Body>>() {
        let ours = ours.take().expect("taken once");
        let replay = ours.replayable();
        return (ours.into_outgoing(), replay);
    }
    (Outgoing::new(body.expect("not taken")), None)
}
