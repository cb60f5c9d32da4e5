//! An HTTP/2 server written frame by frame, for what HTTP/2 server crates do
//! not do on request: a GOAWAY naming a chosen last stream while later streams
//! are in flight, or a SETTINGS frame that lowers the stream limit in the
//! middle of a connection.
//!
//! `h2`'s server side names in its GOAWAY the last stream it received, and
//! fixes its SETTINGS at the handshake, so [`FrameServer`] speaks the wire
//! format itself (RFC 9113, section 4): frames with their 9-byte headers
//! ([`Frame`]), and HPACK only as far as `:status: 200`, the one byte `0x88`
//! of the static table. It never decodes a request's header block: a test
//! tells requests apart by their stream ids and bodies, and every answer's
//! body names the stream and the connection it came from ([`answer_for`]).
//!
//! Each accepted connection runs the test's own code on a [`FrameConn`],
//! plain prior-knowledge HTTP/2 (h2c) on `127.0.0.1`: the code sends its
//! SETTINGS with [`FrameConn::handshake`], then reads with [`FrameConn::next`]
//! (or [`hold`](FrameConn::hold) a number of requests in flight, or wait for
//! an acknowledgement or for the test while still reading), which answers
//! the client's PINGs and acknowledges its SETTINGS itself and returns at
//! each [`Event`] a test acts on; it sends answers, resets, GOAWAY or new
//! SETTINGS through typed methods. The server logs every request it reads
//! whole, over all connections, with the streams open on its connection at
//! that moment ([`FrameServer::requests`]).
//!
//! The server never opens flow-control windows: over a connection's life the
//! client may send at most 65,535 bytes of request bodies, plenty for the
//! short bodies tests tell requests apart by.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::hyper_server::Listener;

/// What a client sends first on an HTTP/2 connection (RFC 9113, section 3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The identifier of `SETTINGS_MAX_CONCURRENT_STREAMS` (RFC 9113, section 6.5.2).
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// The error code `NO_ERROR` (RFC 9113, section 7).
pub const NO_ERROR: u32 = 0x0;
/// The error code `INTERNAL_ERROR`.
pub const INTERNAL_ERROR: u32 = 0x2;

/// How long [`FrameConn::close`] waits for the client to close its side.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The largest frame payload a [`FrameConn`] reads: the smallest
/// `SETTINGS_MAX_FRAME_SIZE`, which it never raises.
const MAX_PAYLOAD: usize = 16_384;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// The header block of a response `200` with no other field: `:status: 200`
/// from HPACK's static table (index 8, RFC 7541 appendix A).
const STATUS_200: &[u8] = &[0x88];

/// One HTTP/2 frame, as much of it as a test acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// DATA: body bytes of a stream (padding removed).
    Data {
        /// The stream.
        stream: u32,
        /// The bytes.
        data: Vec<u8>,
        /// The sender's last frame on the stream.
        end_stream: bool,
    },
    /// HEADERS: the start of a header block (padding and priority removed).
    Headers {
        /// The stream.
        stream: u32,
        /// The HPACK-encoded header block fragment.
        block: Vec<u8>,
        /// The sender's last frame on the stream (once its header block ends).
        end_stream: bool,
        /// No CONTINUATION follows.
        end_headers: bool,
    },
    /// RST_STREAM: the stream ends at once, with an error code.
    RstStream {
        /// The stream.
        stream: u32,
        /// The error code.
        code: u32,
    },
    /// SETTINGS, or its acknowledgement.
    Settings {
        /// An acknowledgement (with no parameters).
        ack: bool,
        /// The parameters, as (identifier, value) pairs.
        params: Vec<(u16, u32)>,
    },
    /// PING, or its answer.
    Ping {
        /// The answer to a PING.
        ack: bool,
        /// The opaque data, echoed in the answer.
        payload: [u8; 8],
    },
    /// GOAWAY: no stream above `last_stream` was or will be processed.
    GoAway {
        /// The highest stream the sender may have processed.
        last_stream: u32,
        /// The error code.
        code: u32,
    },
    /// WINDOW_UPDATE.
    WindowUpdate {
        /// The stream, or 0 for the connection.
        stream: u32,
        /// The window increment.
        increment: u32,
    },
    /// CONTINUATION: more of a header block.
    Continuation {
        /// The stream.
        stream: u32,
        /// The HPACK-encoded header block fragment.
        block: Vec<u8>,
        /// The header block ends here.
        end_headers: bool,
    },
    /// Any other frame (PRIORITY, PUSH_PROMISE, an unknown type), its
    /// payload passed over: read and ignored, encoded with no payload.
    Other {
        /// The frame type.
        kind: u8,
        /// The stream.
        stream: u32,
    },
}

impl Frame {
    /// The frame whole on the wire: its 9-byte header, then its payload.
    /// [`Frame::Other`] has no payload.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, flags, stream, payload) = match self {
            Frame::Data {
                stream,
                data,
                end_stream,
            } => (DATA, flag(*end_stream, END_STREAM), *stream, data.clone()),
            Frame::Headers {
                stream,
                block,
                end_stream,
                end_headers,
            } => (
                HEADERS,
                flag(*end_stream, END_STREAM) | flag(*end_headers, END_HEADERS),
                *stream,
                block.clone(),
            ),
            Frame::RstStream { stream, code } => {
                (RST_STREAM, 0, *stream, code.to_be_bytes().to_vec())
            }
            Frame::Settings { ack, params } => {
                let payload = params
                    .iter()
                    .flat_map(|(id, value)| id.to_be_bytes().into_iter().chain(value.to_be_bytes()))
                    .collect();
                (SETTINGS, flag(*ack, ACK), 0, payload)
            }
            Frame::Ping { ack, payload } => (PING, flag(*ack, ACK), 0, payload.to_vec()),
            Frame::GoAway { last_stream, code } => {
                let mut payload = last_stream.to_be_bytes().to_vec();
                payload.extend_from_slice(&code.to_be_bytes());
                (GOAWAY, 0, 0, payload)
            }
            Frame::WindowUpdate { stream, increment } => {
                (WINDOW_UPDATE, 0, *stream, increment.to_be_bytes().to_vec())
            }
            Frame::Continuation {
                stream,
                block,
                end_headers,
            } => (
                CONTINUATION,
                flag(*end_headers, END_HEADERS),
                *stream,
                block.clone(),
            ),
            Frame::Other { kind, stream } => (*kind, 0, *stream, Vec::new()),
        };
        let len = u32::try_from(payload.len()).expect("a payload under 16 MiB");
        let mut out = len.to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// The first frame in `buf` and the bytes it takes, or `None` if `buf`
    /// does not hold one whole frame yet. A payload too short for its type is
    /// an [`io::ErrorKind::InvalidData`] error.
    pub fn decode(buf: &[u8]) -> io::Result<Option<(Frame, usize)>> {
        let Some(header) = buf.get(..9) else {
            return Ok(None);
        };
        let len =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let (kind, flags) = (header[3], header[4]);
        let stream = u32_at(&header[5..]) & 0x7fff_ffff;
        let Some(payload) = buf.get(9..9 + len) else {
            return Ok(None);
        };
        let invalid = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a short frame of type {kind}"),
            )
        };
        let frame = match kind {
            DATA => Frame::Data {
                stream,
                data: unpadded(payload, flags, 0).ok_or_else(invalid)?.to_vec(),
                end_stream: flags & END_STREAM != 0,
            },
            HEADERS => {
                let skip = if flags & PRIORITY != 0 { 5 } else { 0 };
                Frame::Headers {
                    stream,
                    block: unpadded(payload, flags, skip).ok_or_else(invalid)?.to_vec(),
                    end_stream: flags & END_STREAM != 0,
                    end_headers: flags & END_HEADERS != 0,
                }
            }
            RST_STREAM if payload.len() == 4 => Frame::RstStream {
                stream,
                code: u32_at(payload),
            },
            SETTINGS if payload.len() % 6 == 0 => Frame::Settings {
                ack: flags & ACK != 0,
                params: payload
                    .chunks_exact(6)
                    .map(|p| (u16::from_be_bytes([p[0], p[1]]), u32_at(&p[2..])))
                    .collect(),
            },
            PING if payload.len() == 8 => Frame::Ping {
                ack: flags & ACK != 0,
                payload: payload.try_into().expect("eight bytes"),
            },
            GOAWAY if payload.len() >= 8 => Frame::GoAway {
                last_stream: u32_at(payload) & 0x7fff_ffff,
                code: u32_at(&payload[4..]),
            },
            WINDOW_UPDATE if payload.len() == 4 => Frame::WindowUpdate {
                stream,
                increment: u32_at(payload) & 0x7fff_ffff,
            },
            CONTINUATION => Frame::Continuation {
                stream,
                block: payload.to_vec(),
                end_headers: flags & END_HEADERS != 0,
            },
            RST_STREAM | SETTINGS | PING | GOAWAY | WINDOW_UPDATE => return Err(invalid()),
            _ => Frame::Other { kind, stream },
        };
        Ok(Some((frame, 9 + len)))
    }
}

fn flag(set: bool, bit: u8) -> u8 {
    if set {
        bit
    } else {
        0
    }
}

fn u32_at(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// A DATA or HEADERS payload without its padding and the `skip` bytes that
/// follow the pad length; `None` if it is shorter than they say.
fn unpadded(payload: &[u8], flags: u8, skip: usize) -> Option<&[u8]> {
    let (pad, rest) = match flags & PADDED != 0 {
        true => (usize::from(*payload.first()?), &payload[1..]),
        false => (0, payload),
    };
    rest.get(skip..rest.len().checked_sub(pad)?)
}

/// The body [`FrameConn::answer`] answers `stream` of connection `conn`
/// with, `c{conn}s{stream}`: the client reads in it which stream of which
/// connection answered (see [`answered_by`]).
pub fn answer_for(conn: usize, stream: u32) -> String {
    format!("c{conn}s{stream}")
}

/// The connection and the stream named in an [`answer_for`] them, or `None`
/// if `answer` is not one.
pub fn answered_by(answer: &str) -> Option<(usize, u32)> {
    let (conn, stream) = answer.strip_prefix('c')?.split_once('s')?;
    Some((conn.parse().ok()?, stream.parse().ok()?))
}

/// What [`FrameConn::next`] returns to a test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A request read whole: its header block and its body up to END_STREAM.
    Request(Received),
    /// The client acknowledged a SETTINGS frame of ours.
    SettingsAck,
    /// The client reset a stream.
    Reset {
        /// The stream.
        stream: u32,
        /// The error code.
        code: u32,
    },
    /// The client closed the connection (or it failed).
    Closed,
}

/// A request a [`FrameServer`] read whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The connection it came on, counted from 0 in the order accepted.
    pub conn: usize,
    /// Its stream on that connection.
    pub stream: u32,
    /// Its body.
    pub body: Vec<u8>,
    /// The streams open on its connection when it was read whole, itself
    /// included: opened by the client, and neither answered nor reset by
    /// either side.
    pub open: usize,
}

#[derive(Debug, Default)]
struct Log {
    accepted: AtomicUsize,
    requests: Mutex<Vec<Received>>,
}

/// A frame-level HTTP/2 server on `127.0.0.1` and an ephemeral port, running
/// the test's code on each connection; stopped (its listener and every
/// connection closed) when dropped.
#[derive(Debug)]
pub struct FrameServer {
    addr: SocketAddr,
    log: Arc<Log>,
    _listener: Listener,
}

impl FrameServer {
    /// Starts a server that runs `on_conn` on each connection it accepts, on
    /// the current tokio runtime, or outside one on the testkit's
    /// [background](crate::runtime::background) runtime. It is ready to
    /// accept as soon as this returns. An error from `on_conn` ends its
    /// connection.
    ///
    /// Panics if `127.0.0.1:0` cannot be bound.
    pub fn start<F, Fut>(on_conn: F) -> FrameServer
    where
        F: Fn(FrameConn) -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let log = Arc::new(Log::default());
        let conn_log = Arc::clone(&log);
        let listener = Listener::spawn(&crate::runtime::servers(), move |stream, _tasks| {
            let index = conn_log.accepted.fetch_add(1, Ordering::SeqCst);
            let conn = on_conn(FrameConn::new(index, stream, Arc::clone(&conn_log)));
            async move {
                let _ = conn.await;
            }
        });
        FrameServer {
            addr: listener.addr,
            log,
            _listener: listener,
        }
    }

    /// `http://127.0.0.1:port{path}`. `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// TCP connections accepted so far (counted in the accept loop).
    pub fn accepted(&self) -> usize {
        self.log.accepted.load(Ordering::SeqCst)
    }

    /// Every request read whole so far, over all connections, in the order
    /// read.
    pub fn requests(&self) -> Vec<Received> {
        self.log.requests.lock().expect("not poisoned").clone()
    }
}

/// A stream the client opened whose request is not whole yet.
#[derive(Debug, Default)]
struct Incoming {
    body: Vec<u8>,
    end_stream: bool,
}

/// One connection of a [`FrameServer`], in the hands of the test's code.
#[derive(Debug)]
pub struct FrameConn {
    index: usize,
    stream: TcpStream,
    buf: Vec<u8>,
    /// Streams whose request is still arriving.
    incoming: BTreeMap<u32, Incoming>,
    /// Streams the client opened that neither side has ended: the server has
    /// not answered or reset them, the client has not reset them.
    open: BTreeSet<u32>,
    /// SETTINGS frames sent and not yet acknowledged.
    unacknowledged: usize,
    /// Events read by [`FrameConn::hold_until`] or
    /// [`FrameConn::acknowledged`], for [`FrameConn::next`].
    queued: VecDeque<Event>,
    log: Arc<Log>,
}

impl FrameConn {
    fn new(index: usize, stream: TcpStream, log: Arc<Log>) -> FrameConn {
        FrameConn {
            index,
            stream,
            buf: Vec::new(),
            incoming: BTreeMap::new(),
            open: BTreeSet::new(),
            unacknowledged: 0,
            queued: VecDeque::new(),
            log,
        }
    }

    /// The connection's number, counted from 0 in the order accepted.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Sends the server's connection preface, a SETTINGS frame with `params`,
    /// and reads the client's preface.
    pub async fn handshake(&mut self, params: &[(u16, u32)]) -> io::Result<()> {
        self.settings(params).await?;
        while self.buf.len() < PREFACE.len() {
            if !self.fill().await {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        if !self.buf.starts_with(PREFACE) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not an HTTP/2 client preface",
            ));
        }
        self.buf.drain(..PREFACE.len());
        Ok(())
    }

    /// Reads frames up to the next [`Event`] (or returns the first one
    /// [`hold_until`](FrameConn::hold_until) kept). On the way it answers
    /// PINGs, acknowledges the client's SETTINGS and passes over what a test
    /// does not act on (WINDOW_UPDATE, PRIORITY, the client's GOAWAY).
    ///
    /// Not cancel-safe: to wait for something else meanwhile, use
    /// [`hold_until`](FrameConn::hold_until).
    pub async fn next(&mut self) -> io::Result<Event> {
        match self.queued.pop_front() {
            Some(event) => Ok(event),
            None => self.read_event().await,
        }
    }

    /// Reads frames off the wire up to the next event.
    async fn read_event(&mut self) -> io::Result<Event> {
        loop {
            if let Some(event) = self.read_frame().await? {
                return Ok(event);
            }
            if !self.fill().await {
                return Ok(Event::Closed);
            }
        }
    }

    /// Reads until `n` more requests are whole and returns their streams, in
    /// order, unanswered: the test holds them in flight. Acknowledgements and
    /// resets on the way are passed over; a client that closes first is an
    /// [`io::ErrorKind::UnexpectedEof`] error.
    pub async fn hold(&mut self, n: usize) -> io::Result<Vec<u32>> {
        let mut held = Vec::with_capacity(n);
        while held.len() < n {
            match self.next().await? {
                Event::Request(r) => held.push(r.stream),
                Event::Closed => return Err(io::ErrorKind::UnexpectedEof.into()),
                Event::SettingsAck | Event::Reset { .. } => {}
            }
        }
        Ok(held)
    }

    /// Reads until the client has acknowledged every SETTINGS frame sent,
    /// keeping the other events read meanwhile, in order, for
    /// [`next`](FrameConn::next). A client that closes first is an
    /// [`io::ErrorKind::UnexpectedEof`] error.
    pub async fn acknowledged(&mut self) -> io::Result<()> {
        while self.unacknowledged > 0 {
            match self.read_event().await? {
                Event::SettingsAck => {}
                Event::Closed => {
                    self.queued.push_back(Event::Closed);
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                other => self.queued.push_back(other),
            }
        }
        Ok(())
    }

    /// Goes on reading the client's frames (answering its PINGs, counting
    /// the streams it opens) until `signal` completes, and keeps the events
    /// read meanwhile, in order, for [`next`](FrameConn::next): a connection
    /// held waiting for the test still sees every frame when it arrives.
    pub async fn hold_until(&mut self, signal: impl Future<Output = ()>) -> io::Result<()> {
        let mut signal = pin!(signal);
        loop {
            while let Some(event) = self.read_frame().await? {
                self.queued.push_back(event);
            }
            // Only a read is raced against the signal: it reads nothing
            // when it loses.
            let more = tokio::select! {
                () = &mut signal => return Ok(()),
                more = self.fill() => more,
            };
            if !more {
                self.queued.push_back(Event::Closed);
                signal.await;
                return Ok(());
            }
        }
    }

    /// Takes the first whole frame read, if any, and what it means to the
    /// test.
    async fn read_frame(&mut self) -> io::Result<Option<Event>> {
        loop {
            let Some((frame, len)) = Frame::decode(&self.buf)? else {
                if self.buf.len() >= 9 + MAX_PAYLOAD {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a frame over SETTINGS_MAX_FRAME_SIZE",
                    ));
                }
                return Ok(None);
            };
            self.buf.drain(..len);
            if let Some(event) = self.take(frame).await? {
                return Ok(Some(event));
            }
        }
    }

    /// What one frame of the client's means to the test, if anything.
    async fn take(&mut self, frame: Frame) -> io::Result<Option<Event>> {
        let (stream, block_ends, end_stream) = match frame {
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                ..
            } => {
                self.open.insert(stream);
                self.incoming.insert(stream, Incoming::default());
                (stream, end_headers, end_stream)
            }
            Frame::Continuation {
                stream,
                end_headers,
                ..
            } => (stream, end_headers, false),
            Frame::Data {
                stream,
                data,
                end_stream,
            } => {
                if let Some(incoming) = self.incoming.get_mut(&stream) {
                    incoming.body.extend_from_slice(&data);
                }
                (stream, true, end_stream)
            }
            Frame::Settings { ack: true, .. } => {
                self.unacknowledged = self.unacknowledged.saturating_sub(1);
                return Ok(Some(Event::SettingsAck));
            }
            Frame::Settings { ack: false, .. } => {
                self.send(&Frame::Settings {
                    ack: true,
                    params: Vec::new(),
                })
                .await?;
                return Ok(None);
            }
            Frame::Ping {
                ack: false,
                payload,
            } => {
                self.send(&Frame::Ping { ack: true, payload }).await?;
                return Ok(None);
            }
            Frame::RstStream { stream, code } => {
                self.open.remove(&stream);
                self.incoming.remove(&stream);
                return Ok(Some(Event::Reset { stream, code }));
            }
            Frame::Ping { ack: true, .. }
            | Frame::GoAway { .. }
            | Frame::WindowUpdate { .. }
            | Frame::Other { .. } => return Ok(None),
        };
        // A request is whole once its header block has ended and END_STREAM
        // has come (on its HEADERS, or on its last DATA).
        let Some(incoming) = self.incoming.get_mut(&stream) else {
            return Ok(None);
        };
        incoming.end_stream |= end_stream;
        if !(block_ends && incoming.end_stream) {
            return Ok(None);
        }
        let received = Received {
            conn: self.index,
            stream,
            body: self.incoming.remove(&stream).expect("found above").body,
            open: self.open.len(),
        };
        let log = &self.log.requests;
        log.lock().expect("not poisoned").push(received.clone());
        Ok(Some(Event::Request(received)))
    }

    /// Reads more bytes; `false` at the end of the stream or on an error.
    /// Cancel-safe: a read that does not complete reads nothing.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Writes `frame`.
    pub async fn send(&mut self, frame: &Frame) -> io::Result<()> {
        self.stream.write_all(&frame.encode()).await
    }

    /// Sends a SETTINGS frame with `params`; the client has applied it once
    /// it acknowledges it ([`Event::SettingsAck`], or
    /// [`acknowledged`](FrameConn::acknowledged)).
    pub async fn settings(&mut self, params: &[(u16, u32)]) -> io::Result<()> {
        self.unacknowledged += 1;
        self.send(&Frame::Settings {
            ack: false,
            params: params.to_vec(),
        })
        .await
    }

    /// Answers `stream` with `200` and [`answer_for`] it, ending the stream.
    pub async fn answer(&mut self, stream: u32) -> io::Result<()> {
        self.open.remove(&stream);
        let mut out = Frame::Headers {
            stream,
            block: STATUS_200.to_vec(),
            end_stream: false,
            end_headers: true,
        }
        .encode();
        out.extend(
            Frame::Data {
                stream,
                data: answer_for(self.index, stream).into_bytes(),
                end_stream: true,
            }
            .encode(),
        );
        self.stream.write_all(&out).await
    }

    /// Resets `stream` with the error `code`.
    pub async fn reset(&mut self, stream: u32, code: u32) -> io::Result<()> {
        self.open.remove(&stream);
        self.incoming.remove(&stream);
        self.send(&Frame::RstStream { stream, code }).await
    }

    /// Sends GOAWAY: streams above `last_stream` were not processed and will
    /// not be; those at or below it may still be answered.
    pub async fn go_away(&mut self, last_stream: u32, code: u32) -> io::Result<()> {
        self.send(&Frame::GoAway { last_stream, code }).await
    }

    /// [Answers](FrameConn::answer) every request until the client closes
    /// the connection.
    pub async fn answer_all(&mut self) -> io::Result<()> {
        loop {
            match self.next().await? {
                Event::Request(r) => self.answer(r.stream).await?,
                Event::Closed => return Ok(()),
                Event::SettingsAck | Event::Reset { .. } => {}
            }
        }
    }

    /// Closes the server's side (a FIN, no GOAWAY of its own), then reads and
    /// drops what the client still sends until it closes too, for at most
    /// [`CLOSE_GRACE`]: closing with unread bytes would reset the connection
    /// and could take frames already sent with it.
    pub async fn close(mut self) -> io::Result<()> {
        self.stream.shutdown().await?;
        let drain = async {
            let mut chunk = [0u8; 16 * 1024];
            while matches!(self.stream.read(&mut chunk).await, Ok(n) if n > 0) {}
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_decodes_to_what_was_encoded() {
        let frames = [
            Frame::Data {
                stream: 3,
                data: b"body".to_vec(),
                end_stream: true,
            },
            Frame::Headers {
                stream: 5,
                block: STATUS_200.to_vec(),
                end_stream: false,
                end_headers: true,
            },
            Frame::RstStream {
                stream: 7,
                code: INTERNAL_ERROR,
            },
            Frame::Settings {
                ack: false,
                params: vec![(MAX_CONCURRENT_STREAMS, 1), (0x4, 65_535)],
            },
            Frame::Settings {
                ack: true,
                params: Vec::new(),
            },
            Frame::Ping {
                ack: true,
                payload: *b"12345678",
            },
            Frame::GoAway {
                last_stream: 9,
                code: NO_ERROR,
            },
            Frame::WindowUpdate {
                stream: 0,
                increment: 1 << 20,
            },
            Frame::Continuation {
                stream: 5,
                block: vec![0x82],
                end_headers: true,
            },
            Frame::Other {
                kind: 0x2,
                stream: 1,
            },
        ];
        let wire: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let mut at = 0;
        for frame in frames {
            let (decoded, len) = Frame::decode(&wire[at..]).expect("valid").expect("whole");
            assert_eq!(decoded, frame);
            at += len;
        }
        assert_eq!(at, wire.len());
    }

    #[test]
    fn an_answer_names_its_connection_and_stream() {
        assert_eq!(answered_by(&answer_for(2, 13)), Some((2, 13)));
        assert_eq!(answered_by("hello"), None);
    }

    #[test]
    fn a_partial_frame_waits_for_the_rest() {
        let wire = Frame::GoAway {
            last_stream: 1,
            code: NO_ERROR,
        }
        .encode();
        for end in [0, 5, 9, wire.len() - 1] {
            assert_eq!(Frame::decode(&wire[..end]).expect("valid"), None);
        }
    }

    #[test]
    fn padding_and_priority_are_left_out() {
        // HEADERS on stream 1: PADDED | PRIORITY | END_HEADERS, pad length 2,
        // 5 bytes of priority, the block 0x82, 2 bytes of padding.
        let mut wire = vec![
            0,
            0,
            9,
            HEADERS,
            PADDED | PRIORITY | END_HEADERS,
            0,
            0,
            0,
            1,
        ];
        wire.extend_from_slice(&[2, 0, 0, 0, 0, 16, 0x82, 0, 0]);
        let (frame, len) = Frame::decode(&wire).expect("valid").expect("whole");
        assert_eq!(len, wire.len());
        assert_eq!(
            frame,
            Frame::Headers {
                stream: 1,
                block: vec![0x82],
                end_stream: false,
                end_headers: true,
            }
        );
        // Padding longer than the payload is refused.
        let wire = [0, 0, 2, DATA, PADDED, 0, 0, 0, 1, 5, 0];
        assert!(Frame::decode(&wire).is_err());
    }
}
