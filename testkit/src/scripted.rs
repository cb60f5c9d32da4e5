//! A scripted server on an in-memory transport, and the whole client driven
//! against it: what a server sends goes through the pool, the protocol drivers
//! and the public API at once, as it does in production, but from a script.
//!
//! # Why
//!
//! The HTTP/1.1 codec has its own fuzz target; this one fuzzes everything
//! around it: the connect task, the HTTP/1.1 exchange and keep-alive check,
//! the HTTP/2 driver on `h2`, the WebSocket handshake on `tungstenite`, the
//! retry of a request cut on a reused connection, timeouts, and the pool that
//! must account for all of it. [`fuzz_http`] and [`fuzz_websocket`] are the
//! fuzz targets `client_exchange` and `ws_handshake`; the client layer's
//! tests replay their committed corpora through the same functions.
//!
//! # What every input must show
//!
//! - Every request ends, with a response whose body reads to its end or to a
//!   typed error, or with a typed error, before a deadline no request may
//!   reach ([`GUARD`]). Time is tokio's paused clock, so a silent server costs
//!   nothing to wait out and a request that never ends is found, not waited
//!   for.
//! - Once every request has ended, the pool's invariants hold, no lease is
//!   out and no request waits.
//! - After a graceful shutdown, no connection is open and every transport the
//!   client was given has been dropped.
//!
//! # The script
//!
//! A script is bytes the server writes, with `0xFF` starting a control pair
//! (see [`Step`]): `FF 00` ends one connection's script and starts the next,
//! `FF 01` waits for the client to send something, `FF 02` lets 200 ms pass,
//! `FF 03` closes the server's sending side, `FF 04` writes the
//! `Sec-WebSocket-Accept` value for the last key the client sent, `FF 05`
//! stays silent until the client closes, and `FF FF` is one `0xFF` byte. A
//! connection whose script ends is closed; a connect with no script left is
//! refused.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Method, Request};
use muxpool_client::runtime::Runtime;
use muxpool_client::{Body, Client, ClientBuilder, ErrorKind, H1Limits};
use muxpool_tokio::{Sleep, Tokio};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::sync::watch;

/// No request may take this long: the client's own timeout is
/// [`REQUEST_TIMEOUT`], and every wait below it is shorter still.
pub const GUARD: Duration = Duration::from_secs(600);

/// The client's request timeout in these runs.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The client's read timeout in these runs.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The most connections one input may script.
pub const MAX_CONNECTIONS: usize = 8;

/// One thing a scripted connection does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Writes these bytes.
    Write(Vec<u8>),
    /// Waits until the client has sent bytes since the last wait, or closed.
    AwaitClient,
    /// Lets 200 ms pass.
    Pause,
    /// Closes the server's sending side; the client reads the end of the
    /// stream, and may still send.
    ShutdownWrite,
    /// Writes the `Sec-WebSocket-Accept` value for the last
    /// `Sec-WebSocket-Key` the client sent.
    Accept,
    /// Sends nothing more until the client closes.
    Silence,
}

/// What a scripted server does, connection after connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    /// The steps of each connection, in the order the client connects.
    pub connections: Vec<Vec<Step>>,
}

impl Script {
    /// Reads a script from its bytes (see the module's documentation).
    pub fn parse(bytes: &[u8]) -> Script {
        let mut connections = vec![Vec::new()];
        let mut i = 0;
        while i < bytes.len() {
            let steps = connections.last_mut().expect("one connection at least");
            let (byte, control) = match (bytes[i], bytes.get(i + 1)) {
                (0xFF, Some(&c)) => (c, true),
                (b, _) => (b, false),
            };
            i += if control { 2 } else { 1 };
            let step = match (control, byte) {
                (true, 0x00) => {
                    if connections.len() == MAX_CONNECTIONS {
                        break;
                    }
                    connections.push(Vec::new());
                    continue;
                }
                (true, 0x01) => Step::AwaitClient,
                (true, 0x02) => Step::Pause,
                (true, 0x03) => Step::ShutdownWrite,
                (true, 0x04) => Step::Accept,
                (true, 0x05) => Step::Silence,
                (true, 0xFF) | (false, _) => {
                    match steps.last_mut() {
                        Some(Step::Write(out)) => out.push(byte),
                        _ => steps.push(Step::Write(vec![byte])),
                    }
                    continue;
                }
                (true, other) => {
                    let pair = [0xFF, other];
                    match steps.last_mut() {
                        Some(Step::Write(out)) => out.extend_from_slice(&pair),
                        _ => steps.push(Step::Write(pair.to_vec())),
                    }
                    continue;
                }
            };
            steps.push(step);
        }
        Script { connections }
    }
}

/// A runtime on tokio whose network is a [`Script`]: each connect gets the
/// next connection's script, served by a task on the other end of an
/// in-memory stream; every name resolves to one loopback address.
#[derive(Clone, Debug)]
pub struct ScriptedNet {
    scripts: Arc<Mutex<VecDeque<Vec<Step>>>>,
    /// Transports given out and not yet dropped.
    live: Arc<AtomicUsize>,
}

impl ScriptedNet {
    /// A network that serves `script`.
    pub fn new(script: Script) -> ScriptedNet {
        ScriptedNet {
            scripts: Arc::new(Mutex::new(script.connections.into())),
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Transports given to the client and not yet dropped.
    pub fn live_transports(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Handles on this network other than this one: the client's, and its
    /// tasks'.
    pub fn other_handles(&self) -> usize {
        Arc::strong_count(&self.scripts) - 1
    }

    /// Connections scripted and not yet connected to.
    pub fn unused_scripts(&self) -> usize {
        self.scripts.lock().expect("not poisoned").len()
    }
}

/// The client's end of a scripted connection.
#[derive(Debug)]
pub struct ScriptedStream {
    io: DuplexStream,
    live: Arc<AtomicUsize>,
}

impl Drop for ScriptedStream {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for ScriptedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for ScriptedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Runtime for ScriptedNet {
    type Tcp = ScriptedStream;
    type Timer = Sleep;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        Tokio.spawn(task);
    }

    fn is_reachable(&self) -> bool {
        Tokio.is_reachable()
    }

    fn now(&self) -> Instant {
        Tokio.now()
    }

    fn timer(&self, deadline: Instant) -> Sleep {
        Tokio.timer(deadline)
    }

    async fn connect(&self, _addr: SocketAddr) -> io::Result<ScriptedStream> {
        let steps = self.scripts.lock().expect("not poisoned").pop_front();
        let Some(steps) = steps else {
            return Err(io::ErrorKind::ConnectionRefused.into());
        };
        let (client, server) = tokio::io::duplex(16 * 1024);
        tokio::spawn(serve(server, steps));
        self.live.fetch_add(1, Ordering::Relaxed);
        Ok(ScriptedStream {
            io: client,
            live: Arc::clone(&self.live),
        })
    }

    async fn resolve(&self, _host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
    }
}

/// Serves one connection's steps, then closes it.
async fn serve(io: DuplexStream, steps: Vec<Step>) {
    let (mut reader, mut writer) = tokio::io::split(io);
    let (received_tx, mut received) = watch::channel(Vec::new());
    let reading = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut buf).await {
            received_tx.send_modify(|all| all.extend_from_slice(&buf[..n]));
        }
        // Dropping the sender tells the steps the client has closed; the
        // reader half is kept until the script ends.
        reader
    });
    for step in steps {
        let written = match step {
            Step::Write(bytes) => writer.write_all(&bytes).await,
            Step::AwaitClient => {
                // An error means the client closed: the script goes on.
                let _ = received.changed().await;
                Ok(())
            }
            Step::Pause => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(())
            }
            Step::ShutdownWrite => writer.shutdown().await,
            Step::Accept => {
                let accept = last_websocket_key(&received.borrow())
                    .map(|key| tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key));
                writer
                    .write_all(accept.unwrap_or_default().as_bytes())
                    .await
            }
            Step::Silence => {
                while received.changed().await.is_ok() {}
                Ok(())
            }
        };
        if written.is_err() {
            break;
        }
        let _ = writer.flush().await;
    }
    // Closed whole, as a server that exits closes its socket: both halves are
    // dropped, so the client's writes fail from here on.
    reading.abort();
}

/// The value of the last `Sec-WebSocket-Key` field in what the client sent.
fn last_websocket_key(sent: &[u8]) -> Option<Vec<u8>> {
    const NAME: &[u8] = b"sec-websocket-key:";
    let at = sent
        .windows(NAME.len())
        .rposition(|w| w.eq_ignore_ascii_case(NAME))?;
    let value = &sent[at + NAME.len()..];
    let end = value
        .iter()
        .position(|&b| b == b'\r')
        .unwrap_or(value.len());
    Some(value[..end].trim_ascii().to_vec())
}

/// How the client of one input is set up, from the input's first byte.
#[derive(Clone, Copy, Debug)]
struct Options(u8);

impl Options {
    /// HTTP/2 with prior knowledge, else HTTP/1.1.
    fn http2(self) -> bool {
        self.0 & 0x01 != 0
    }

    /// One to four requests.
    fn requests(self) -> usize {
        usize::from(self.0 >> 1 & 0x03) + 1
    }

    /// All at once, else one after another.
    fn concurrent(self) -> bool {
        self.0 & 0x08 != 0
    }

    /// Small limits: on fields, on a response body, on a WebSocket message.
    fn tight(self) -> bool {
        self.0 & 0x10 != 0
    }

    /// Requests with a body (POST, replayable), else GET and HEAD in turn.
    fn with_bodies(self) -> bool {
        self.0 & 0x20 != 0
    }

    /// For WebSockets: closes gracefully at the end, else drops.
    fn close(self) -> bool {
        self.0 & 0x40 != 0
    }

    /// One connection per key, else two.
    fn one_connection(self) -> bool {
        self.0 & 0x80 != 0
    }
}

fn client(net: &ScriptedNet, options: Options) -> Client<ScriptedNet> {
    let max_connections = if options.one_connection() { 1 } else { 2 };
    let mut builder = ClientBuilder::with_runtime(net.clone())
        .seed(0x5c91_97ed)
        .max_connections_per_key(max_connections)
        .connect_timeout(Duration::from_secs(1))
        .timeout(REQUEST_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .http2_prior_knowledge(options.http2());
    if options.tight() {
        builder = builder
            .h1_limits(
                H1Limits::default()
                    .with_max_headers(8)
                    .with_max_header_bytes(512)
                    .with_max_chunk_line(16),
            )
            .max_response_body(256)
            .max_websocket_message(64);
    }
    builder.build().expect("the client builds")
}

fn request(options: Options, n: usize) -> Request<Body> {
    let uri = format!("http://scripted.test/{n}");
    let request = if options.with_bodies() {
        Request::post(uri).body(Body::from(format!("request {n}")))
    } else {
        let method = if n % 2 == 1 {
            Method::HEAD
        } else {
            Method::GET
        };
        Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
    };
    request.expect("a valid request")
}

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// With a response: its status, the body bytes read, and the error that
    /// cut the body short, if one did.
    Response {
        /// The response's status code.
        status: u16,
        /// Body bytes read.
        body: usize,
        /// What ended the body early.
        error: Option<ErrorKind>,
    },
    /// With an error, and no response.
    Failed(ErrorKind),
}

/// One request, to its end: the response and its whole body, or an error.
async fn exchange(client: &Client<ScriptedNet>, request: Request<Body>) -> Ended {
    match client.send(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut read = 0;
            loop {
                match body.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    Ok(None) => {
                        let _ = body.trailers();
                        break Ended::Response {
                            status,
                            body: read,
                            error: None,
                        };
                    }
                    Err(e) => {
                        let _ = format!("{e:#}");
                        break Ended::Response {
                            status,
                            body: read,
                            error: Some(e.kind()),
                        };
                    }
                }
            }
        }
        Err(e) => {
            let _ = format!("{e:#}");
            Ended::Failed(e.kind())
        }
    }
}

/// Runs `work` against a client on `script`'s network under tokio's paused
/// clock, then checks what every input must show (the module's
/// documentation). Panics on any breach.
fn run<F, Fut, T>(script: Script, options: Options, work: F) -> T
where
    F: FnOnce(Client<ScriptedNet>) -> Fut,
    Fut: Future<Output = (Client<ScriptedNet>, T)>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    let net = ScriptedNet::new(script);
    runtime.block_on(async {
        let client = client(&net, options);
        let (client, ended) = tokio::time::timeout(GUARD, work(client))
            .await
            .expect("a request outlived every deadline");
        client
            .check_invariants()
            .expect("the pool's invariants hold");
        let stats = client.stats();
        assert_eq!(
            stats.leases, 0,
            "no lease is out once requests end: {stats:?}"
        );
        assert_eq!(
            stats.waiting, 0,
            "no request waits once requests end: {stats:?}"
        );
        tokio::time::timeout(GUARD, client.shutdown())
            .await
            .expect("a graceful shutdown ends");
        let stats = client.stats();
        assert_eq!(
            stats.open, 0,
            "no connection is open after shutdown: {stats:?}"
        );
        drop(client);
        // Let the connections' tasks see the end and drop their transports: a
        // closing WebSocket waits up to 2 s for its server's close frame.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            net.live_transports(),
            0,
            "every transport is dropped after shutdown"
        );
        assert_eq!(net.other_handles(), 0, "no task of the client outlives it");
        ended
    })
}

/// The `client_exchange` fuzz target: one to four HTTP requests (HTTP/1.1,
/// or HTTP/2 with prior knowledge) through the pool against a scripted
/// server. The first byte sets the client up; the rest is the [`Script`].
/// Returns how each request ended, in order.
pub fn fuzz_http(data: &[u8]) -> Vec<Ended> {
    let Some((&flags, script)) = data.split_first() else {
        return Vec::new();
    };
    let options = Options(flags);
    run(Script::parse(script), options, |client| async move {
        let requests = (0..options.requests()).map(|n| request(options, n));
        let mut ended = Vec::new();
        if options.concurrent() {
            let client = &client;
            ended = futures_util::future::join_all(requests.map(|r| exchange(client, r))).await;
        } else {
            for request in requests {
                ended.push(exchange(&client, request).await);
            }
        }
        (client, ended)
    })
}

/// The `ws_handshake` fuzz target: a WebSocket opened through the pool
/// against a scripted server, then a message sent, up to three received, and
/// a close or a drop. The first byte sets the client up; the rest is the
/// [`Script`], whose `FF 04` answers the client's key. Returns the messages
/// received, or why the WebSocket did not open.
pub fn fuzz_websocket(data: &[u8]) -> Result<usize, ErrorKind> {
    let Some((&flags, script)) = data.split_first() else {
        return Ok(0);
    };
    let options = Options(flags);
    run(Script::parse(script), options, |client| async move {
        let request = Request::get("ws://scripted.test/socket")
            .body(())
            .expect("a valid request");
        let opened = match client.websocket(request).await {
            Ok(mut ws) => {
                let _ = ws.send("hello").await;
                let mut received = 0;
                for _ in 0..options.requests() - 1 {
                    // A WebSocket may stay silent for as long as it likes.
                    match tokio::time::timeout(REQUEST_TIMEOUT, ws.recv()).await {
                        Ok(Ok(_)) => received += 1,
                        Ok(Err(e)) => {
                            let _ = (e.kind(), format!("{e:#}"));
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if options.close() {
                    let _ = ws.close().await;
                }
                Ok(received)
            }
            Err(e) => {
                let _ = format!("{e:#}");
                Err(e.kind())
            }
        };
        (client, opened)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_reads_back_from_its_bytes() {
        let script = Script {
            connections: vec![
                vec![
                    Step::AwaitClient,
                    Step::Write(b"HTTP/1.1 200 OK\r\n\xFF".to_vec()),
                    Step::Pause,
                    Step::ShutdownWrite,
                ],
                vec![Step::Accept, Step::Silence],
            ],
        };
        let bytes = b"\xFF\x01HTTP/1.1 200 OK\r\n\xFF\xFF\xFF\x02\xFF\x03\xFF\x00\xFF\x04\xFF\x05";
        assert_eq!(Script::parse(bytes), script);
    }

    #[test]
    fn an_unknown_control_pair_is_two_bytes_to_write() {
        let script = Script::parse(b"a\xFF\x10b");
        assert_eq!(
            script.connections,
            vec![vec![Step::Write(b"a\xFF\x10b".to_vec())]]
        );
    }

    #[test]
    fn the_key_is_the_last_one_sent() {
        let sent = b"GET / HTTP/1.1\r\nSec-WebSocket-Key: one\r\n\r\nGET / HTTP/1.1\r\nsec-websocket-key:  two \r\n\r\n";
        assert_eq!(last_websocket_key(sent), Some(b"two".to_vec()));
        assert_eq!(last_websocket_key(b"GET / HTTP/1.1\r\n\r\n"), None);
    }
}
