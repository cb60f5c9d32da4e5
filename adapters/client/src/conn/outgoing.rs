//! Request bodies as the client sends them.
//!
//! A request body arrives as any [`http_body::Body`]. Bodies that are already in
//! memory (a [`Body`](crate::Body) made from bytes or a string, or any body whose
//! whole content is ready at once, like `http_body_util::Full`) become
//! [`Outgoing::Full`]: framed with `Content-Length`, written with the head in one
//! write when small, and replayable, so a request that fails on a reused
//! connection before the server answered can be sent again. Anything else is
//! streamed: with `Content-Length` when its size is known exactly, chunked
//! otherwise, with trailers if it has them.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use http_body::Body as HttpBody;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;

use crate::error::{BoxError, Error, ErrorKind};
use crate::h1::RequestBody;

use super::Frame;

/// A request body, ready to send.
pub(crate) enum Outgoing {
    /// No body.
    Empty,
    /// All of it, in memory.
    Full(Bytes),
    /// A stream.
    Stream(Stream),
}

/// A streamed request body.
pub(crate) struct Stream {
    first: Option<Frame>,
    rest: UnsyncBoxBody<Bytes, BoxError>,
    length: Option<u64>,
    started: bool,
}

impl Outgoing {
    /// A body whose whole content is `data`.
    pub(crate) fn whole(data: Bytes) -> Outgoing {
        if data.is_empty() {
            Outgoing::Empty
        } else {
            Outgoing::Full(data)
        }
    }

    /// Takes `body` in: whole if its content is ready at once, streamed
    /// otherwise.
    pub(crate) fn new<B>(body: B) -> Result<Outgoing, Error>
    where
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        if body.is_end_stream() {
            return Ok(Outgoing::Empty);
        }
        let length = body.size_hint().exact();
        let mut body = body
            .map_frame(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
            .map_err(Into::into)
            .boxed_unsync();
        // A body whose content is ready at once is taken whole.
        let mut cx = Context::from_waker(Waker::noop());
        let first = match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(None) => return Ok(Outgoing::Empty),
            Poll::Ready(Some(Err(e))) => return Err(body_error(e)),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) if body.is_end_stream() => return Ok(Outgoing::whole(data)),
                Ok(data) => Some(Frame::Data(data)),
                Err(frame) => frame.into_trailers().ok().map(Frame::Trailers),
            },
            Poll::Pending => None,
        };
        Ok(Outgoing::Stream(Stream {
            first,
            rest: body,
            length,
            started: false,
        }))
    }

    /// How the body is framed on HTTP/1.1.
    pub(crate) fn framing(&self) -> RequestBody {
        match self {
            Outgoing::Empty => RequestBody::Empty,
            Outgoing::Full(data) => RequestBody::Length(data.len() as u64),
            Outgoing::Stream(s) => s.length.map_or(RequestBody::Chunked, RequestBody::Length),
        }
    }

    /// Whether the body can be sent again from its start.
    pub(crate) fn is_replayable(&self) -> bool {
        match self {
            Outgoing::Empty | Outgoing::Full(_) => true,
            Outgoing::Stream(s) => !s.started,
        }
    }
}

fn body_error(e: BoxError) -> Error {
    Error::new(ErrorKind::Body)
        .with_message("the request body failed")
        .with_source(e)
}

impl Stream {
    /// The next frame, or `None` at the end.
    pub(crate) async fn next_frame(&mut self) -> Result<Option<Frame>, Error> {
        self.started = true;
        if let Some(frame) = self.first.take() {
            return Ok(Some(frame));
        }
        loop {
            let Some(frame) = self.rest.frame().await else {
                return Ok(None);
            };
            let frame = frame.map_err(body_error)?;
            match frame.into_data() {
                Ok(data) if data.is_empty() => continue,
                Ok(data) => return Ok(Some(Frame::Data(data))),
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        return Ok(Some(Frame::Trailers(trailers)));
                    }
                }
            }
        }
    }
}
