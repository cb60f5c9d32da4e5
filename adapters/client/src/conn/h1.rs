//! One HTTP/1.1 connection: the I/O around the codec in
//! [`crate::h1`].
//!
//! The caller's own task writes the request and reads the response head; the
//! response body is read by whoever polls the [`Body`](crate::Body), which owns
//! the connection until the body ends. Then, and only then, the connection goes
//! back to the pool, and only if the framing proved it clean: the body read to
//! its end, no byte beyond it, keep-alive on both sides. Anything else (an error,
//! a body dropped half-read) closes it. No task is spawned per connection.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use muxpool_core::{ConnId, Lease};
use tokio::io::AsyncWriteExt;
use tokio_util::io::poll_read_buf;

use http::request;
use tokio::io::ReadBuf;

use crate::dial::Transport;
use crate::error::{Error, ErrorKind, Origin};
use crate::h1::{
    self, encode_forwarded_request, encode_request, BodyDecoder, BodyEncoder, BodyEvent,
    EncodedRequest, ResponseHead, ResponseParser, TargetForm,
};
use crate::proxy::Endpoint;

use super::outgoing::{Outgoing, Stream};
use super::{Clock, Failure, Frame, Read, ReadTimeout};

/// An HTTP/1.1 connection while it is idle in the pool or leased to one request.
pub(crate) struct H1Conn {
    pub(crate) io: Transport,
    /// It has waited in the pool (after a request, or since it came up with no
    /// request to take it): the server may have closed it meanwhile.
    pub(crate) waited: bool,
    /// The read buffer: none while idle; at checkout, one the pool kept from a
    /// finished exchange, if it has one.
    pub(crate) buf: BytesMut,
}

/// The pool as an HTTP/1.1 response body sees it: the connection goes back
/// when the body ends.
pub(crate) trait H1Lender: Clock {
    /// Returns `lease`, with its connection if it is clean.
    fn check_in(&self, lease: Lease, conn: Option<H1Conn>);
    /// The origin `conn` serves, for an error to name; asked only while a
    /// lease on it is held, and only when a failure is being reported.
    fn origin(&self, conn: ConnId) -> Option<Origin>;
}

/// Whether a connection that sat idle is still open, as far as can be seen
/// without waiting: no end of stream, no reset, no unexpected bytes.
///
/// The probe is a read, polled with the calling task's context: a read that
/// would block leaves the task registered for the connection's readiness,
/// which is what the read of the response does next anyway, so that read
/// finds its waker in place instead of swapping a stand-in out for it.
pub(crate) async fn is_open(conn: &mut H1Conn) -> bool {
    std::future::poll_fn(|cx| {
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        let pending = tokio::io::AsyncRead::poll_read(Pin::new(&mut conn.io), cx, &mut buf);
        Poll::Ready(pending.is_pending())
    })
    .await
}

/// Encodes the request head into `buf`, the connection's empty read buffer:
/// the head is written from there, and the same memory then takes the
/// response, so a request allocates no buffer of its own for its head. On a
/// connection to a forward `proxy`, the head is the proxy's: absolute form,
/// with its credentials.
pub(crate) fn encode(
    parts: &request::Parts,
    body: &Outgoing,
    proxy: Option<&Endpoint>,
    buf: &mut BytesMut,
) -> Result<EncodedRequest, Error> {
    // The room the response will be read into, made now: one allocation for
    // the head and then the response.
    make_room(buf);
    match proxy {
        None => encode_request(parts, body.framing(), TargetForm::Origin, buf),
        Some(proxy) => encode_forwarded_request(parts, body.framing(), proxy.authorization(), buf),
    }
    .map_err(protocol)
}

/// Read buffer size: what one read asks the socket for.
const READ_SIZE: usize = 8 * 1024;

/// Makes room in `buf` for the next read: a read buffer's worth when less than
/// half of one is left.
pub(crate) fn make_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_SIZE / 2 {
        buf.reserve(READ_SIZE);
    }
}

/// Request body chunks up to this size are copied next to their framing, so that
/// one write carries both.
const COPY_LIMIT: usize = 8 * 1024;

fn io_error(kind: ErrorKind, message: &'static str, e: std::io::Error) -> Error {
    let kind = if e.kind() == std::io::ErrorKind::TimedOut {
        ErrorKind::Timeout
    } else if e
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
    {
        // A TLS alert on the first read: with TLS 1.3 the server judges the
        // client's certificate after the client has finished its handshake.
        ErrorKind::Tls
    } else {
        kind
    };
    Error::new(kind).with_message(message).with_source(e)
}

pub(crate) fn protocol(e: h1::Error) -> Error {
    let kind = match e {
        h1::Error::TruncatedBody | h1::Error::InvalidChunk(_) => ErrorKind::Body,
        h1::Error::InvalidRequest(_) => ErrorKind::Request,
        h1::Error::RequestBodyLength => ErrorKind::Body,
        _ => ErrorKind::Protocol,
    };
    Error::new(kind).with_source(e)
}

/// Writes the encoded head (what `conn`'s buffer holds), then the body, then
/// reads the response head into the same buffer. Returns the head and the
/// bytes read past it.
pub(crate) async fn exchange(
    conn: &mut H1Conn,
    encoder: &mut BodyEncoder,
    body: &mut Outgoing,
    parser: &mut ResponseParser,
) -> Result<(ResponseHead, BytesMut), Failure> {
    let mut buf = std::mem::take(&mut conn.buf);
    let sent = std::pin::pin!(write_body(conn, &mut buf, encoder, body)).await;
    // Written: the buffer now takes the response.
    buf.clear();
    if let Err(error) = sent {
        return Err(Failure {
            replayable: body.is_replayable(),
            going_away: false,
            cut: false,
            error,
        });
    }
    loop {
        match parser.parse(&mut buf) {
            Ok(Some(head)) => return Ok((head, buf)),
            Ok(None) => {}
            Err(e) => {
                return Err(Failure {
                    error: protocol(e),
                    replayable: false,
                    going_away: false,
                    cut: false,
                })
            }
        }
        let start = buf.len();
        make_room(&mut buf);
        let read =
            std::future::poll_fn(|cx| poll_read_buf(Pin::new(&mut conn.io), cx, &mut buf)).await;
        let nothing = start == 0 && buf.is_empty();
        match read {
            Ok(0) => {
                return match parser.parse_eof(&mut buf) {
                    Ok(head) => Ok((head, buf)),
                    Err(e) => Err(Failure {
                        replayable: nothing
                            && e == h1::Error::ClosedBeforeResponse
                            && body.is_replayable(),
                        going_away: false,
                        cut: false,
                        error: protocol(e),
                    }),
                }
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Failure {
                    replayable: nothing && body.is_replayable(),
                    going_away: false,
                    cut: false,
                    error: io_error(ErrorKind::Protocol, "reading the response failed", e),
                })
            }
        }
    }
}

async fn write_body(
    conn: &mut H1Conn,
    out: &mut BytesMut,
    encoder: &mut BodyEncoder,
    body: &mut Outgoing,
) -> Result<(), Error> {
    match body {
        Outgoing::Empty => {
            encoder.finish(None, out).map_err(protocol)?;
        }
        Outgoing::Full(data) => {
            write_data(conn, out, encoder, data).await?;
            encoder.finish(None, out).map_err(protocol)?;
        }
        // A stream's future holds every await of its loop; boxed, it does not
        // make every request's future (moved whole at each call) larger.
        Outgoing::Stream(stream) => Box::pin(write_stream(conn, out, encoder, stream)).await?,
    }
    if !out.is_empty() {
        conn.io.write_all(out).await.map_err(write_failed)?;
    }
    conn.io.flush().await.map_err(write_failed)
}

fn write_failed(e: std::io::Error) -> Error {
    io_error(ErrorKind::Protocol, "writing the request failed", e)
}

/// Writes the head, then the frames of `stream` as they come, then frames its
/// end into `out`.
async fn write_stream(
    conn: &mut H1Conn,
    out: &mut BytesMut,
    encoder: &mut BodyEncoder,
    stream: &mut Stream,
) -> Result<(), Error> {
    // The head goes out first: the body may take its time.
    conn.io.write_all(out).await.map_err(write_failed)?;
    out.clear();
    let mut trailers: Option<HeaderMap> = None;
    while let Some(frame) = stream.next_frame().await? {
        match frame {
            Frame::Data(data) => {
                write_data(conn, out, encoder, &data).await?;
                if out.len() >= COPY_LIMIT {
                    conn.io.write_all(out).await.map_err(write_failed)?;
                    out.clear();
                }
            }
            Frame::Trailers(t) => trailers = Some(t),
        }
    }
    encoder.finish(trailers.as_ref(), out).map_err(protocol)
}

/// Frames `data` into `out`; a large chunk is written from where it is rather
/// than copied, and `out` keeps only what must follow it.
async fn write_data(
    conn: &mut H1Conn,
    out: &mut BytesMut,
    encoder: &mut BodyEncoder,
    data: &[u8],
) -> Result<(), Error> {
    if data.len() <= COPY_LIMIT {
        return encoder.encode(data, out).map_err(protocol);
    }
    let suffix = encoder.data_prefix(data.len(), out).map_err(protocol)?;
    conn.io.write_all(out).await.map_err(write_failed)?;
    out.clear();
    conn.io.write_all(data).await.map_err(write_failed)?;
    out.extend_from_slice(suffix);
    Ok(())
}

/// The response body of an HTTP/1.1 exchange, owning its connection.
pub(crate) struct H1Body {
    conn: Option<H1Conn>,
    lease: Lease,
    pool: Arc<dyn H1Lender>,
    buf: BytesMut,
    decoder: BodyDecoder,
    read_timeout: ReadTimeout,
    remaining_hint: Option<u64>,
    /// Events decoded ahead, while trying to complete the body from the buffer.
    ahead: std::collections::VecDeque<Read>,
    done: bool,
}

impl H1Body {
    pub(crate) fn new(
        conn: H1Conn,
        lease: Lease,
        pool: Arc<dyn H1Lender>,
        buf: BytesMut,
        decoder: BodyDecoder,
        read_timeout: Duration,
        length: Option<u64>,
    ) -> H1Body {
        H1Body {
            conn: Some(conn),
            lease,
            pool,
            buf,
            decoder,
            read_timeout: ReadTimeout::new(read_timeout),
            remaining_hint: length,
            ahead: std::collections::VecDeque::new(),
            done: false,
        }
    }

    pub(crate) fn is_end(&self) -> bool {
        self.done && self.ahead.is_empty()
    }

    /// Decodes what the buffer holds. When that is the whole body (the common
    /// case of a small response arriving with its head), the connection is back
    /// in the pool already and the content is returned; otherwise the events
    /// decoded so far are kept for the reader.
    pub(crate) fn complete_from_buffer(
        &mut self,
    ) -> Result<Option<(Bytes, Option<HeaderMap>)>, Error> {
        let mut data = None;
        let mut trailers = None;
        loop {
            match self.decode_buffered()? {
                None => break,
                Some(Read::End) if self.ahead.is_empty() => {
                    return Ok(Some((data.take().unwrap_or_default(), trailers.take())))
                }
                Some(Read::End) => {
                    self.ahead.push_back(Read::End);
                    break;
                }
                Some(Read::Data(d)) if data.is_none() && self.ahead.is_empty() => data = Some(d),
                Some(Read::Trailers(t)) if trailers.is_none() && self.ahead.is_empty() => {
                    trailers = Some(t)
                }
                Some(other) => {
                    self.ahead.extend(data.take().map(Read::Data));
                    self.ahead.extend(trailers.take().map(Read::Trailers));
                    self.ahead.push_back(other);
                }
            }
        }
        self.ahead.extend(data.map(Read::Data));
        self.ahead.extend(trailers.map(Read::Trailers));
        Ok(None)
    }

    pub(crate) fn exact_remaining(&self) -> Option<u64> {
        if self.done {
            Some(0)
        } else {
            self.remaining_hint
        }
    }

    /// Decodes what is already buffered, without reading.
    pub(crate) fn decode_buffered(&mut self) -> Result<Option<Read>, Error> {
        if self.done {
            return Ok(Some(Read::End));
        }
        match self.decoder.decode(&mut self.buf) {
            Ok(Some(event)) => Ok(Some(self.event(event))),
            Ok(None) => Ok(None),
            Err(e) => Err(self.fail(protocol(e))),
        }
    }

    fn event(&mut self, event: BodyEvent) -> Read {
        match event {
            BodyEvent::Data(data) => {
                if let Some(left) = &mut self.remaining_hint {
                    *left = left.saturating_sub(data.len() as u64);
                }
                Read::Data(data)
            }
            BodyEvent::Trailers(t) => Read::Trailers(t),
            BodyEvent::End(keep_alive) => {
                self.done = true;
                let clean = keep_alive.is_reusable() && self.buf.is_empty();
                // A clean connection takes its read buffer back to the pool,
                // which keeps it for the next exchange, not for this one idle.
                let conn = self.conn.take().filter(|_| clean).map(|mut conn| {
                    conn.buf = std::mem::take(&mut self.buf);
                    conn
                });
                self.pool.check_in(self.lease, conn);
                self.buf = BytesMut::new();
                Read::End
            }
        }
    }

    /// The origin this body's connection serves, while it holds the lease.
    pub(crate) fn origin(&self) -> Option<Origin> {
        self.conn.as_ref()?;
        self.pool.origin(self.lease.conn())
    }

    /// Ends the body with `error`, which names the origin: asked of the pool
    /// before the lease goes back.
    fn fail(&mut self, mut error: Error) -> Error {
        if let Some(origin) = self.origin() {
            error = error.with_origin(|| origin);
        }
        self.done = true;
        if let Some(conn) = self.conn.take() {
            drop(conn);
            self.pool.check_in(self.lease, None);
        }
        error
    }

    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<Read, Error>> {
        if let Some(read) = self.ahead.pop_front() {
            return Poll::Ready(Ok(read));
        }
        loop {
            if let Some(read) = self.decode_buffered()? {
                return Poll::Ready(Ok(read));
            }
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(Ok(Read::End));
            };
            make_room(&mut self.buf);
            match poll_read_buf(Pin::new(&mut conn.io), cx, &mut self.buf) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(match self.decoder.decode_eof(&mut self.buf) {
                        Ok(event) => {
                            // The connection is closed: whatever the framing said,
                            // it cannot be reused.
                            self.conn = None;
                            Ok(self.event(event))
                        }
                        Err(e) => Err(self.fail(protocol(e))),
                    });
                }
                Poll::Ready(Ok(_)) => {
                    self.read_timeout.progress();
                }
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(self.fail(io_error(
                        ErrorKind::Body,
                        "reading the response body failed",
                        e,
                    ))))
                }
                Poll::Pending => {
                    ready!(self.read_timeout.poll_expired(&*self.pool, cx));
                    let expired = self.read_timeout.expired();
                    return Poll::Ready(Err(self.fail(expired)));
                }
            }
        }
    }
}

impl Drop for H1Body {
    fn drop(&mut self) {
        if !self.done {
            // Read half-way: the connection's position in the stream is unknown
            // to the next request, so it is closed.
            self.conn = None;
            self.pool.check_in(self.lease, None);
        }
    }
}
