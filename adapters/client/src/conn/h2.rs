//! HTTP/2 on a pooled connection: the `h2` crate frames, the pool decides.
//!
//! One task per connection drives `h2`'s connection future (it must be polled
//! for any stream to make progress). The same task reports to the core what the
//! connection learns: the peer's stream limit whenever its SETTINGS change, the
//! answer to a health-check PING, and the end of the connection. A request takes
//! a stream slot from the core (a lease), sends on a clone of the connection's
//! `SendRequest`, and gives the slot back when its response body ends or is
//! dropped. Flow-control capacity is released as the caller consumes the body,
//! so a slow reader stalls only its own stream.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use h2::client::{Connection, SendRequest};
use h2::{Ping, PingPong, RecvStream, SendStream};
use http::header::{CONNECTION, HOST, TRANSFER_ENCODING, UPGRADE};
use http::{request, HeaderMap, HeaderName, Response, Version};
use muxpool_core::{Lease, Release};

use crate::config::H2Settings;
use crate::dial::Transport;
use crate::error::{Error, ErrorKind, Origin};

use super::outgoing::Outgoing;
use super::{Failure, Frame, Lender, Read, ReadTimeout, Report};

/// Asks a connection's driver to send a PING.
#[derive(Default)]
pub(crate) struct PingRequest {
    wanted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl PingRequest {
    pub(crate) fn request(&self) {
        self.wanted.store(true, Ordering::Release);
        let waker = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// What the pool holds for a ready HTTP/2 connection.
#[derive(Clone)]
pub(crate) struct H2Conn {
    pub(crate) send: SendRequest<Bytes>,
    pub(crate) ping: Arc<PingRequest>,
    /// A stream was leased on it before.
    pub(crate) used: bool,
}

fn h2_error(kind: ErrorKind, message: &'static str, e: h2::Error) -> Error {
    Error::new(kind).with_message(message).with_source(e)
}

/// A connection after its handshake, before its driver task takes it.
pub(crate) struct Handshaken {
    pub(crate) conn: H2Conn,
    pub(crate) connection: Connection<Transport, Bytes>,
    pub(crate) pings: Option<PingPong>,
}

/// The client side of the HTTP/2 handshake on `io`, up to the server's SETTINGS.
///
/// The server's first frame is its SETTINGS (RFC 9113 section 3.4), so once a
/// PING sent after the handshake is answered, the server's stream limit is
/// known: the core learns the connection's real capacity, not a guess.
pub(crate) async fn handshake(io: Transport, settings: H2Settings) -> Result<Handshaken, Error> {
    let (send, mut connection) = h2::client::Builder::new()
        .initial_window_size(settings.initial_stream_window)
        .initial_connection_window_size(settings.initial_connection_window)
        .max_frame_size(settings.max_frame_size)
        .max_header_list_size(settings.max_header_list_size)
        .enable_push(false)
        .handshake(io)
        .await
        .map_err(|e| h2_error(ErrorKind::Protocol, "the HTTP/2 handshake failed", e))?;
    let mut pings = connection.ping_pong();
    if let Some(pings) = pings.as_mut() {
        pings
            .send_ping(Ping::opaque())
            .map_err(|e| h2_error(ErrorKind::Protocol, "the HTTP/2 handshake failed", e))?;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = Pin::new(&mut connection).poll(cx) {
                let error = match result {
                    Err(e) => h2_error(ErrorKind::Protocol, "the HTTP/2 handshake failed", e),
                    Ok(()) => Error::new(ErrorKind::Protocol).with_message(
                        "the server closed the connection during the HTTP/2 handshake",
                    ),
                };
                return Poll::Ready(Err(error));
            }
            pings.poll_pong(cx).map(|pong| {
                pong.map(drop)
                    .map_err(|e| h2_error(ErrorKind::Protocol, "the HTTP/2 handshake failed", e))
            })
        })
        .await?;
        // The connection goes on in a task of its own (see `drive`); the pong
        // waiter registered here would otherwise keep this task's waker, and
        // with it the finished task's memory, until the next health check.
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(Err(e)) = pings.poll_pong(&mut cx) {
            return Err(h2_error(
                ErrorKind::Protocol,
                "the HTTP/2 handshake failed",
                e,
            ));
        }
    }
    Ok(Handshaken {
        conn: H2Conn {
            send,
            ping: Arc::new(PingRequest::default()),
            used: false,
        },
        connection,
        pings,
    })
}

/// The peer's current stream limit, as the core counts it.
pub(crate) fn max_streams(connection: &Connection<Transport, Bytes>) -> u32 {
    u32::try_from(connection.max_concurrent_send_streams()).unwrap_or(u32::MAX)
}

/// Drives `connection` to its end, calling `report` with what it learns and,
/// last, [`Report::Closed`].
///
/// The future owns the connection and is no bigger than it and a few fields:
/// it is the connection's task for as long as the connection lives (an `async
/// fn` would hold its arguments and their moved copies side by side).
pub(crate) fn drive(
    mut connection: Connection<Transport, Bytes>,
    mut pings: Option<PingPong>,
    ping: Arc<PingRequest>,
    mut report: impl FnMut(Report) + Send,
) -> impl Future<Output = ()> + Send {
    let mut limit = max_streams(&connection);
    let mut awaiting_pong = false;
    std::future::poll_fn(move |cx| {
        if Pin::new(&mut connection).poll(cx).is_ready() {
            report(Report::Closed);
            return Poll::Ready(());
        }
        let now = max_streams(&connection);
        if now != limit {
            limit = now;
            report(Report::MaxStreams(now));
        }
        if let Some(pings) = pings.as_mut() {
            let mut waker = ping.waker.lock().unwrap_or_else(|p| p.into_inner());
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
            drop(waker);
            if ping.wanted.swap(false, Ordering::AcqRel)
                && !awaiting_pong
                && pings.send_ping(Ping::opaque()).is_ok()
            {
                awaiting_pong = true;
            }
            if awaiting_pong {
                match pings.poll_pong(cx) {
                    Poll::Ready(Ok(_)) => {
                        awaiting_pong = false;
                        report(Report::Pong);
                    }
                    Poll::Ready(Err(_)) => awaiting_pong = false,
                    Poll::Pending => {}
                }
            }
        }
        Poll::Pending
    })
}

/// Fields that mean something only to an HTTP/1.1 connection, which HTTP/2
/// forbids (RFC 9113 section 8.2.2); `Host` is carried by `:authority`.
pub(crate) fn h2_headers(headers: &HeaderMap) -> HeaderMap {
    // Built at compile time: `from_static` at run time looks the name up.
    const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
    const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if name == CONNECTION
            || name == TRANSFER_ENCODING
            || name == UPGRADE
            || name == HOST
            || *name == KEEP_ALIVE
            || *name == PROXY_CONNECTION
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The rest of a request body, still being sent when the response head came.
pub(crate) type Upload = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;

/// Sends the request on a new stream and waits for its response head, sending
/// the body meanwhile (a server may answer before it has read all of it, and
/// an echo must be read while it is sent). Returns what is left of the body to
/// send, if anything.
pub(crate) async fn exchange(
    send: SendRequest<Bytes>,
    parts: &request::Parts,
    body: &mut Outgoing,
) -> Result<(Response<RecvStream>, Option<Upload>), Failure> {
    let refused = |error: h2::Error, replayable: bool| Failure {
        replayable: replayable
            && (error.reason() == Some(h2::Reason::REFUSED_STREAM) || error.is_go_away()),
        going_away: error.is_go_away(),
        cut: error.is_io(),
        error: head_error(error),
    };
    let mut send = send.ready().await.map_err(|e| refused(e, true))?;
    let mut request = http::Request::new(());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = Version::HTTP_2;
    *request.headers_mut() = h2_headers(&parts.headers);
    let end = matches!(body, Outgoing::Empty);
    let (mut response, mut stream) = send
        .send_request(request, end)
        .map_err(|e| refused(e, body.is_replayable()))?;
    if end {
        return Ok((response.await.map_err(|e| refused(e, true))?, None));
    }
    // An in-memory body stays here, for a retry if the server refuses the
    // stream; a streamed one moves into the upload (what is left in `body` is
    // then empty, and every failure from here on is marked not replayable).
    let replayable = matches!(body, Outgoing::Full(_));
    let owned = match body {
        Outgoing::Full(data) => Outgoing::Full(data.clone()),
        other => std::mem::replace(other, Outgoing::Empty),
    };
    let mut upload: Option<Upload> = Some(Box::pin(async move {
        let mut owned = owned;
        send_body(&mut stream, &mut owned).await
    }));
    std::future::poll_fn(|cx| {
        if let Some(up) = upload.as_mut() {
            match up.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => upload = None,
                Poll::Ready(Err(failure)) => return Poll::Ready(Err(failure)),
                Poll::Pending => {}
            }
        }
        match Pin::new(&mut response).poll(cx) {
            Poll::Ready(Ok(head)) => Poll::Ready(Ok((head, upload.take()))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(refused(e, replayable))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// What a failed wait for a response head tells the caller. h2 resets a
/// stream whose response head it refuses (malformed, or a header list over
/// SETTINGS_MAX_HEADER_LIST_SIZE) with its own PROTOCOL_ERROR, which would
/// otherwise read as any other broken stream.
fn head_error(error: h2::Error) -> Error {
    let refused_here = error.is_reset()
        && error.is_library()
        && error.reason() == Some(h2::Reason::PROTOCOL_ERROR);
    let message = if refused_here {
        "the HTTP/2 response head was refused: malformed, or its header list over the limit (H1Limits::max_header_bytes)"
    } else {
        "the HTTP/2 stream failed"
    };
    h2_error(ErrorKind::Protocol, message, error)
}

/// Sends the request body. An HTTP/2 error while sending means the server
/// stopped reading the request (it reset the stream, perhaps right after a
/// complete response: RFC 9113, section 8.1) or the connection failed; either
/// way the response side reports what became of the exchange, so sending just
/// stops. A body that fails to produce its data fails the exchange, and the
/// stream is reset so the server does not wait for the rest.
async fn send_body(stream: &mut SendStream<Bytes>, body: &mut Outgoing) -> Result<(), Failure> {
    let _stopped = match body {
        Outgoing::Empty => stream.send_data(Bytes::new(), true),
        Outgoing::Full(data) => send_data(stream, data.clone(), true).await,
        Outgoing::Stream(s) => loop {
            let frame = match s.next_frame().await {
                Ok(frame) => frame,
                Err(error) => {
                    stream.send_reset(h2::Reason::CANCEL);
                    return Err(Failure {
                        replayable: false,
                        going_away: false,
                        cut: false,
                        error,
                    });
                }
            };
            let sent = match frame {
                Some(Frame::Data(data)) => send_data(stream, data, false).await,
                Some(Frame::Trailers(t)) => break stream.send_trailers(t),
                None => break stream.send_data(Bytes::new(), true),
            };
            if sent.is_err() {
                break sent;
            }
        },
    };
    Ok(())
}

/// Sends `data` as the peer's flow control allows: waits for capacity, never
/// buffers more than was granted.
async fn send_data(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), h2::Error> {
    if data.is_empty() {
        return if end {
            stream.send_data(data, true)
        } else {
            Ok(())
        };
    }
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = std::future::poll_fn(|cx| stream.poll_capacity(cx))
            .await
            .ok_or_else(|| h2::Error::from(h2::Reason::CANCEL))??;
        let chunk = data.split_to(granted.min(data.len()));
        let last = end && data.is_empty();
        stream.send_data(chunk, last)?;
    }
    Ok(())
}

/// The response body of an HTTP/2 stream. Its stream slot goes back to the pool
/// when the body ends or is dropped.
pub(crate) struct H2Body {
    recv: RecvStream,
    /// The rest of the request body, sent as the response is read. In a mutex
    /// only so that the body is `Sync`; it is never contended.
    upload: Option<Mutex<Upload>>,
    lease: Option<Lease>,
    pool: Arc<dyn Lender>,
    data_done: bool,
    read_timeout: ReadTimeout,
}

impl H2Body {
    pub(crate) fn new(
        recv: RecvStream,
        upload: Option<Upload>,
        lease: Lease,
        pool: Arc<dyn Lender>,
        read_timeout: Duration,
    ) -> H2Body {
        let mut body = H2Body {
            recv,
            upload: upload.map(Mutex::new),
            lease: Some(lease),
            pool,
            data_done: false,
            read_timeout: ReadTimeout::new(read_timeout),
        };
        if body.recv.is_end_stream() {
            body.finish();
        }
        body
    }

    fn finish(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.pool.release(lease, Release::Reuse);
        }
    }

    /// The origin this body's stream is on, while it holds the stream slot.
    pub(crate) fn origin(&self) -> Option<Origin> {
        self.pool.origin(self.lease?.conn())
    }

    /// Ends the body with `error`, which names the origin: asked of the pool
    /// before the stream slot goes back.
    fn fail(&mut self, mut error: Error) -> Error {
        if let Some(origin) = self.origin() {
            error = error.with_origin(|| origin);
        }
        self.finish();
        error
    }

    pub(crate) fn is_end(&self) -> bool {
        self.lease.is_none()
    }

    /// The next part of the body, within the read timeout. A stream that
    /// stays silent for a whole read timeout is given up, and its connection
    /// suspected: its peer may have vanished without a reset, and the other
    /// streams on it would wait as long.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<Read, Error>> {
        if let Poll::Ready(read) = self.poll_stream(cx) {
            self.read_timeout.progress();
            return Poll::Ready(read);
        }
        ready!(self.read_timeout.poll_expired(&*self.pool, cx));
        if let Some(lease) = self.lease {
            self.pool.suspect(lease.conn());
        }
        let expired = self.read_timeout.expired();
        Poll::Ready(Err(self.fail(expired)))
    }

    fn poll_stream(&mut self, cx: &mut Context<'_>) -> Poll<Result<Read, Error>> {
        if self.lease.is_none() {
            return Poll::Ready(Ok(Read::End));
        }
        if let Some(upload) = self.upload.as_mut() {
            let upload = upload.get_mut().unwrap_or_else(|p| p.into_inner());
            match upload.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => self.upload = None,
                Poll::Ready(Err(failure)) => {
                    self.upload = None;
                    return Poll::Ready(Err(self.fail(failure.error)));
                }
                Poll::Pending => {}
            }
        }
        if !self.data_done {
            match self.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    // The caller has the bytes: the peer may send as many more.
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Ok(Read::Data(data)));
                }
                Poll::Ready(Some(Err(e))) => {
                    let error = h2_error(ErrorKind::Body, "reading the response body failed", e);
                    return Poll::Ready(Err(self.fail(error)));
                }
                Poll::Ready(None) => self.data_done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        let trailers = std::task::ready!(self.recv.poll_trailers(cx));
        Poll::Ready(match trailers {
            Ok(trailers) => {
                self.finish();
                Ok(trailers.map_or(Read::End, Read::Trailers))
            }
            Err(e) => Err(self.fail(h2_error(
                ErrorKind::Body,
                "reading the response trailers failed",
                e,
            ))),
        })
    }
}

impl Drop for H2Body {
    fn drop(&mut self) {
        // Dropping the `RecvStream` resets the stream if it is still open; the
        // connection goes on serving the others.
        self.finish();
    }
}
