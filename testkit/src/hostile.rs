//! Servers that misbehave on purpose.
//!
//! A client is only as good as its handling of broken servers: garbage instead
//! of HTTP, endless headers, bodies cut short, resets, silence, connections
//! closed between keep-alive requests, extra bytes after a response. Real HTTP
//! server crates refuse to do these things, so [`Hostile`] is written on a raw
//! tokio [`TcpListener`](tokio::net::TcpListener) and writes exactly the bytes
//! each [`Behavior`] calls for.
//!
//! Every accepted connection reads a request head (up to the blank line, at most
//! [`MAX_HEAD`] bytes) and its body (by `Content-Length` or chunked framing)
//! before misbehaving, unless the behaviour says otherwise; reading the body
//! matters, because closing a socket with unread bytes sends a reset instead of
//! a clean end of stream. Keep-alive behaviours loop and answer every request
//! of the connection.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Handle;

use crate::hyper_server::{content, Listener};

/// The longest request head (request line and headers) a hostile server reads;
/// a longer one ends the connection.
pub const MAX_HEAD: usize = 64 * 1024;

/// The longest line (a chunk size, a trailer) in a chunked request body.
const MAX_LINE: usize = 8 * 1024;

/// What a [`Hostile`] server does with each connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behavior {
    /// Reads the request, writes bytes that are not HTTP, closes.
    Garbage,
    /// Reads the request, writes `HTTP/1.1 200 OK` and one header whose value is
    /// `bytes` long, never ends the head, and keeps the socket open until the
    /// client closes it.
    HugeHeaders {
        /// The length of the header value.
        bytes: usize,
    },
    /// Answers with `Content-Length: declared` but sends only the first `sent`
    /// bytes of [`content`], then closes (a clean
    /// end of stream).
    TruncatedBody {
        /// The `Content-Length` the response declares.
        declared: usize,
        /// The body bytes actually sent.
        sent: usize,
    },
    /// Answers with a chunked body cut in the middle of a chunk (`hello`, then
    /// `abc` of a 16-byte chunk), then closes.
    TruncatedChunked,
    /// Reads the request, then closes with `SO_LINGER` 0: the client gets a
    /// reset.
    Reset,
    /// Resets the connection as soon as it is accepted, before reading anything.
    ResetBeforeRequest,
    /// Reads requests and never answers; keeps the socket open until the client
    /// closes it or the server is dropped.
    Silent,
    /// Sends a valid head with `Content-Length: 100`, then nothing; keeps the
    /// socket open until the client closes it or the server is dropped.
    NoAnswerAfterHead,
    /// Answers `requests` keep-alive requests correctly (200, body `ok`, no
    /// `Connection: close`), then closes the socket silently: a server closing
    /// an idle keep-alive connection. With 0, closes on the first request
    /// without answering.
    CloseAfter {
        /// How many requests to answer before closing.
        requests: usize,
    },
    /// Sends `100 Continue` as soon as the request head is read, then (after
    /// the body) `103 Early Hints`, then a 200 with body `ok`; keep-alive.
    Informational,
    /// Answers `HTTP/1.1 200` without `Content-Length`, with
    /// `Connection: close`, then `body`, then closes: the end of the stream
    /// delimits the body.
    CloseDelimited {
        /// The body.
        body: Vec<u8>,
    },
    /// Answers `HTTP/1.0 200` with `Content-Length` and `body`, no keep-alive,
    /// then closes.
    Http10 {
        /// The body.
        body: Vec<u8>,
    },
    /// Writes exactly these bytes as the response to every request, keep-alive.
    Script(Vec<u8>),
    /// Answers 200 with body `ok` followed, in the same write, by garbage bytes:
    /// a connection that must not be reused. Keeps answering the same way.
    AnswerThenGarbage,
}

/// The bytes [`Behavior::Garbage`] writes.
pub const GARBAGE: &[u8] = b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n";

/// The extra bytes [`Behavior::AnswerThenGarbage`] writes after the response.
pub const TRAILING_GARBAGE: &[u8] = b"GARBAGE AFTER THE RESPONSE\r\n";

/// A misbehaving server on `127.0.0.1` and an ephemeral port, stopped (its
/// listener and every connection closed) when dropped.
#[derive(Debug)]
pub struct Hostile {
    addr: SocketAddr,
    stats: Arc<Stats>,
    _listener: Listener,
}

#[derive(Debug, Default)]
struct Stats {
    accepted: AtomicUsize,
    requests: AtomicUsize,
}

impl Hostile {
    /// Starts a server behaving as `behavior` with every connection, on the
    /// current tokio runtime (multi-thread or current-thread), or outside one on
    /// the testkit's [background](crate::runtime::background) runtime. It is
    /// ready to accept as soon as this returns.
    ///
    /// Panics if `127.0.0.1:0` cannot be bound.
    pub fn start(behavior: Behavior) -> Hostile {
        Hostile::start_on(&crate::runtime::servers(), behavior)
    }

    /// Starts a server on the runtime behind `handle`, from any thread, async or
    /// not.
    pub fn start_on(handle: &Handle, behavior: Behavior) -> Hostile {
        let stats = Arc::new(Stats::default());
        let behavior = Arc::new(behavior);
        let conn_stats = Arc::clone(&stats);
        let listener = Listener::spawn(handle, move |stream, _tasks| {
            conn_stats.accepted.fetch_add(1, Ordering::SeqCst);
            let behavior = Arc::clone(&behavior);
            let stats = Arc::clone(&conn_stats);
            async move {
                // An I/O error just ends the connection.
                let _ = misbehave(stream, &behavior, &stats).await;
            }
        });
        Hostile {
            addr: listener.addr,
            stats,
            _listener: listener,
        }
    }

    /// The address the server listens on (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:port{path}`. `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// TCP connections accepted so far (counted in the accept loop).
    pub fn accepted(&self) -> usize {
        self.stats.accepted.load(Ordering::SeqCst)
    }

    /// Request heads read so far, over all connections.
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

async fn misbehave(stream: TcpStream, behavior: &Behavior, stats: &Stats) -> io::Result<()> {
    if matches!(behavior, Behavior::ResetBeforeRequest) {
        return reset(stream);
    }
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    let mut answered = 0;
    loop {
        let Some(head) = conn.read_head().await? else {
            return Ok(()); // the client closed
        };
        stats.requests.fetch_add(1, Ordering::SeqCst);
        if matches!(behavior, Behavior::Informational) {
            conn.write(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        conn.discard_body(&head).await?;
        match behavior {
            Behavior::Garbage => {
                conn.write(GARBAGE).await?;
                return conn.close().await;
            }
            Behavior::HugeHeaders { bytes } => {
                conn.write(b"HTTP/1.1 200 OK\r\nx-huge: ").await?;
                let filler = [b'a'; 16 * 1024];
                let mut left = *bytes;
                while left > 0 {
                    let n = left.min(filler.len());
                    conn.write(&filler[..n]).await?;
                    left -= n;
                }
                return conn.hold().await;
            }
            Behavior::TruncatedBody { declared, sent } => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\n\r\n");
                let mut response = head.into_bytes();
                response.extend_from_slice(&content(*sent));
                conn.write(&response).await?;
                return conn.close().await;
            }
            Behavior::TruncatedChunked => {
                conn.write(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                      5\r\nhello\r\n10\r\nabc",
                )
                .await?;
                return conn.close().await;
            }
            Behavior::Reset => return reset(conn.stream),
            Behavior::Silent => {}
            Behavior::NoAnswerAfterHead => {
                conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
                    .await?;
                return conn.hold().await;
            }
            Behavior::CloseAfter { requests } => {
                if answered >= *requests {
                    return conn.close().await;
                }
                conn.write(OK).await?;
                answered += 1;
                if answered >= *requests {
                    return conn.close().await;
                }
            }
            Behavior::Informational => {
                conn.write(
                    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
                      HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                )
                .await?;
            }
            Behavior::CloseDelimited { body } => {
                let mut response = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
                response.extend_from_slice(body);
                conn.write(&response).await?;
                return conn.close().await;
            }
            Behavior::Http10 { body } => {
                let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let mut response = head.into_bytes();
                response.extend_from_slice(body);
                conn.write(&response).await?;
                return conn.close().await;
            }
            Behavior::Script(bytes) => conn.write(bytes).await?,
            Behavior::AnswerThenGarbage => {
                let mut response = OK.to_vec();
                response.extend_from_slice(TRAILING_GARBAGE);
                conn.write(&response).await?;
            }
            // Handled before reading the request.
            Behavior::ResetBeforeRequest => return reset(conn.stream),
        }
    }
}

/// Closes `stream` with a reset (`SO_LINGER` 0).
fn reset(stream: TcpStream) -> io::Result<()> {
    stream.set_zero_linger()?;
    drop(stream);
    Ok(())
}

/// What the body framing of a request head says.
#[derive(Debug, Default)]
struct Head {
    content_length: u64,
    chunked: bool,
}

/// A connection with the bytes read but not yet consumed.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Reads more bytes into `buf`; false at the end of the stream.
    async fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0; 8 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Reads a request head up to its blank line. `None` if the client closed
    /// before sending a byte of it; an error if it closed in the middle or the
    /// head exceeds [`MAX_HEAD`].
    async fn read_head(&mut self) -> io::Result<Option<Head>> {
        loop {
            // Tolerate blank lines before a request (RFC 9112, 2.2).
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
            }
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = parse_head(&self.buf[..end]);
                self.buf.drain(..end + 4);
                return Ok(Some(head));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("request head too long"));
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// Reads and drops the request body `head` announces.
    async fn discard_body(&mut self, head: &Head) -> io::Result<()> {
        if head.chunked {
            loop {
                let line = self.read_line().await?;
                let size = line.split(|&b| b == b';').next().unwrap_or(&[]);
                let size = std::str::from_utf8(size)
                    .ok()
                    .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                    .ok_or_else(|| invalid("bad chunk size"))?;
                if size == 0 {
                    // Trailers, up to a blank line.
                    while !self.read_line().await?.is_empty() {}
                    return Ok(());
                }
                self.skip(size).await?;
                if !self.read_line().await?.is_empty() {
                    return Err(invalid("chunk not followed by CRLF"));
                }
            }
        } else {
            self.skip(head.content_length).await
        }
    }

    /// Reads a line, without its line ending.
    async fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = find(&self.buf, b"\n") {
                let mut line: Vec<u8> = self.buf.drain(..end + 1).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(invalid("line too long"));
            }
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Reads and drops `n` bytes.
    async fn skip(&mut self, mut n: u64) -> io::Result<()> {
        loop {
            let here = usize::try_from(n).unwrap_or(usize::MAX).min(self.buf.len());
            self.buf.drain(..here);
            n -= here as u64;
            if n == 0 {
                return Ok(());
            }
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Ends the stream cleanly (FIN) and drops the socket.
    async fn close(mut self) -> io::Result<()> {
        self.stream.shutdown().await
    }

    /// Keeps the socket open, reading and dropping whatever arrives, until the
    /// client closes it (or the server is dropped).
    async fn hold(mut self) -> io::Result<()> {
        self.buf.clear();
        while self.fill().await? {
            self.buf.clear();
        }
        Ok(())
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Finds the body framing in a request head (without its blank line).
fn parse_head(head: &[u8]) -> Head {
    let mut parsed = Head::default();
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
        let value = String::from_utf8_lossy(&line[colon + 1..])
            .trim()
            .to_ascii_lowercase();
        match name.trim() {
            "content-length" => parsed.content_length = value.parse().unwrap_or(0),
            "transfer-encoding" => parsed.chunked = value.ends_with("chunked"),
            _ => {}
        }
    }
    parsed
}
