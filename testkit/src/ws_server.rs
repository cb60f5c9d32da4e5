//! An in-process WebSocket server built on tungstenite.
//!
//! The WebSocket tests need a real server that does on demand what production
//! servers do by accident: close after a number of messages, close a
//! connection idle too long, drop the TCP connection without a close frame,
//! stop reading (so pings go unanswered). A [`WsServer`] runs on the testkit's
//! server runtime, on `127.0.0.1` and an ephemeral port, plain or over TLS,
//! counts the connections it accepts and the pings it receives, records every
//! handshake's path and headers, and stops when it is dropped.
//!
//! With [`Options::http2`] the same port also speaks HTTP/2 in clear text
//! (prior knowledge) and, with [`Options::extended_connect`], serves
//! WebSockets over HTTP/2 streams (RFC 8441): many on one connection.
//!
//! Every behaviour echoes text and binary messages as they come, except one
//! request: the text `send {n}` is answered with a binary message of
//! [`content`]`(n)`, so a test can make the server send more than it received.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::HeaderMap;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::runtime::Handle;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::hyper_server::{content, Listener};

/// What a [`WsServer`] does on each connection, besides echoing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behavior {
    /// Echo every message, for as long as the client likes.
    #[default]
    Echo,
    /// Echo `n` messages, then close with code 4000 and reason `enough`.
    CloseAfter(usize),
    /// Echo; close (code 1001, reason `idle`) a connection that has received
    /// nothing for this long.
    IdleClose(Duration),
    /// Echo `n` messages, then drop the TCP connection without a close frame.
    DropAfter(usize),
    /// Echo `n` messages, then stop reading while keeping the socket open:
    /// pings go unanswered, close frames too.
    StallAfter(usize),
    /// A message protocol whose server finishes requests out of order: each
    /// text `req {id} {body}` is held until `n` are held, then all are
    /// answered `res {id} {body}`, the last first; a notification
    /// `note {body}` is answered by a server-initiated `push {body}`.
    Rpc(usize),
}

/// How a [`WsServer`] serves.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Serve `wss` with this TLS configuration
    /// ([`certs::server_config`](crate::certs::server_config) with ALPN
    /// `http/1.1`). `None`: plain `ws`.
    pub tls: Option<Arc<ServerConfig>>,
    /// What to do besides echoing.
    pub behavior: Behavior,
    /// Also speak HTTP/2: in plain text with prior knowledge (a connection
    /// that starts with the HTTP/2 preface), over TLS when ALPN picks `h2`
    /// (the TLS configuration must offer it).
    pub http2: bool,
    /// With [`http2`](Self::http2): announce extended CONNECT and serve
    /// WebSockets on HTTP/2 streams. Without it, a CONNECT is refused.
    pub extended_connect: bool,
}

/// One handshake the server accepted: the request's path (with its query)
/// and headers.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// The request target.
    pub path: String,
    /// The request headers.
    pub headers: HeaderMap,
}

#[derive(Debug, Default)]
struct Stats {
    accepted: AtomicUsize,
    open: AtomicUsize,
    messages: AtomicUsize,
    pings: AtomicUsize,
    handshakes: Mutex<Vec<Handshake>>,
    alpn: Mutex<Vec<Option<Vec<u8>>>>,
    h2_connections: AtomicUsize,
    h2_websockets: AtomicUsize,
}

impl Stats {
    fn record(&self, uri: &http::Uri, headers: &HeaderMap) {
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let headers = headers.clone();
        let mut handshakes = self.handshakes.lock().unwrap_or_else(|p| p.into_inner());
        handshakes.push(Handshake { path, headers });
    }
}

/// An in-process WebSocket server on `127.0.0.1` and an ephemeral port,
/// stopped (its listener and every connection closed) when dropped.
#[derive(Debug)]
pub struct WsServer {
    addr: SocketAddr,
    tls: bool,
    stats: Arc<Stats>,
    _listener: Listener,
}

/// The largest message the server accepts: above anything a test sends.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

impl WsServer {
    /// Starts a server on the current tokio runtime, or outside one on the
    /// testkit's [background](crate::runtime::background) runtime; it accepts
    /// as soon as this returns.
    pub fn start(options: Options) -> WsServer {
        WsServer::start_on(&crate::runtime::servers(), options)
    }

    /// Starts a server on the runtime behind `handle`.
    pub fn start_on(handle: &Handle, options: Options) -> WsServer {
        let stats = Arc::new(Stats::default());
        let tls = options.tls.is_some();
        let options = Arc::new(options);
        let conn_stats = Arc::clone(&stats);
        let listener = Listener::spawn(handle, move |stream, tasks| {
            conn_stats.accepted.fetch_add(1, Ordering::SeqCst);
            let stats = Arc::clone(&conn_stats);
            let options = Arc::clone(&options);
            async move {
                match &options.tls {
                    Some(config) => {
                        let acceptor = TlsAcceptor::from(Arc::clone(config));
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                            let h2 = alpn.as_deref() == Some(b"h2");
                            stats
                                .alpn
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(alpn);
                            if h2 && options.http2 {
                                serve_h2(stream, &options, stats, tasks).await;
                            } else {
                                serve(stream, options.behavior, &stats).await;
                            }
                        }
                    }
                    None if options.http2 && is_h2(&stream).await => {
                        serve_h2(stream, &options, stats, tasks).await;
                    }
                    None => serve(stream, options.behavior, &stats).await,
                }
            }
        });
        WsServer {
            addr: listener.addr,
            tls,
            stats,
            _listener: listener,
        }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `ws://127.0.0.1:port{path}`, or `wss://…` with TLS.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.stats.accepted.load(Ordering::SeqCst)
    }

    /// WebSockets open now (handshake done, not yet ended).
    pub fn open(&self) -> usize {
        self.stats.open.load(Ordering::SeqCst)
    }

    /// Text and binary messages received, over every connection.
    pub fn messages(&self) -> usize {
        self.stats.messages.load(Ordering::SeqCst)
    }

    /// Pings received, over every connection.
    pub fn pings(&self) -> usize {
        self.stats.pings.load(Ordering::SeqCst)
    }

    /// The ALPN protocol each TLS connection settled on, in order (`None`
    /// where none was).
    pub fn alpn(&self) -> Vec<Option<Vec<u8>>> {
        self.stats
            .alpn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// HTTP/2 connections served so far.
    pub fn h2_connections(&self) -> usize {
        self.stats.h2_connections.load(Ordering::SeqCst)
    }

    /// WebSockets opened on HTTP/2 streams so far.
    pub fn h2_websockets(&self) -> usize {
        self.stats.h2_websockets.load(Ordering::SeqCst)
    }

    /// Every handshake accepted so far, in order.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.stats
            .handshakes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The server's protocol settings: room for the largest test message.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Whether the client opened with the HTTP/2 connection preface.
async fn is_h2(stream: &tokio::net::TcpStream) -> bool {
    let mut head = [0u8; 4];
    loop {
        match stream.peek(&mut head).await {
            Ok(n) if n >= 4 || n == 0 => return &head[..n] == b"PRI ",
            Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(_) => return false,
        }
    }
}

/// Serves HTTP/2: each extended CONNECT for `websocket` becomes a WebSocket
/// on its stream, in a task of its own.
async fn serve_h2<S>(
    stream: S,
    options: &Options,
    stats: Arc<Stats>,
    tasks: crate::hyper_server::Tasks,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = h2::server::Builder::new();
    if options.extended_connect {
        builder.enable_connect_protocol();
    }
    let Ok(mut conn) = builder.handshake::<_, bytes::Bytes>(stream).await else {
        return;
    };
    stats.h2_connections.fetch_add(1, Ordering::SeqCst);
    while let Some(Ok((request, mut respond))) = conn.accept().await {
        let websocket = request.method() == http::Method::CONNECT
            && request
                .extensions()
                .get::<h2::ext::Protocol>()
                .is_some_and(|p| p.as_str() == "websocket");
        if !websocket || !options.extended_connect {
            let mut refused = http::Response::new(());
            *refused.status_mut() = http::StatusCode::NOT_FOUND;
            let _ = respond.send_response(refused, true);
            continue;
        }
        stats.record(request.uri(), request.headers());
        let Ok(send) = respond.send_response(http::Response::new(()), false) else {
            continue;
        };
        let io = muxpool_client::websocket::H2Stream::new(send, request.into_body());
        let (stats, behavior) = (Arc::clone(&stats), options.behavior);
        tasks.spawn(async move {
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config())).await;
            stats.h2_websockets.fetch_add(1, Ordering::SeqCst);
            stats.open.fetch_add(1, Ordering::SeqCst);
            let _ = converse(ws, behavior, &stats).await;
            stats.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

async fn serve<S>(stream: S, behavior: Behavior, stats: &Stats)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The callback's error type is tungstenite's, fixed by its signature.
    #[allow(clippy::result_large_err)]
    let record = |request: &Request, response: Response| {
        stats.record(request.uri(), request.headers());
        Ok(response)
    };
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, record, Some(config())).await
    else {
        return;
    };
    stats.open.fetch_add(1, Ordering::SeqCst);
    let _ = converse(ws, behavior, stats).await;
    stats.open.fetch_sub(1, Ordering::SeqCst);
}

async fn converse<S>(
    mut ws: WebSocketStream<S>,
    behavior: Behavior,
    stats: &Stats,
) -> Result<(), tokio_tungstenite::tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut echoed = 0;
    let mut held: Vec<String> = Vec::new();
    loop {
        let next = match behavior {
            Behavior::IdleClose(idle) => match tokio::time::timeout(idle, ws.next()).await {
                Ok(next) => next,
                Err(_) => {
                    return close(ws, CloseCode::Away, "idle").await;
                }
            },
            _ => ws.next().await,
        };
        let message = match next {
            None => return Ok(()),
            Some(message) => message?,
        };
        let answer = match message {
            Message::Ping(_) => {
                stats.pings.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            Message::Text(text) if matches!(behavior, Behavior::Rpc(_)) => {
                stats.messages.fetch_add(1, Ordering::SeqCst);
                let Behavior::Rpc(batch) = behavior else {
                    continue;
                };
                if let Some(request) = text.as_str().strip_prefix("req ") {
                    held.push(request.to_owned());
                    if held.len() >= batch {
                        while let Some(request) = held.pop() {
                            ws.send(Message::Text(format!("res {request}").into()))
                                .await?;
                        }
                    }
                } else if let Some(note) = text.as_str().strip_prefix("note ") {
                    ws.send(Message::Text(format!("push {note}").into()))
                        .await?;
                }
                continue;
            }
            Message::Text(text) => match text.as_str().strip_prefix("send ") {
                Some(n) => Message::Binary(content(n.trim().parse().unwrap_or(0)).into()),
                None => Message::Text(text),
            },
            Message::Binary(data) => Message::Binary(data),
            Message::Pong(_) | Message::Frame(_) | Message::Close(_) => continue,
        };
        stats.messages.fetch_add(1, Ordering::SeqCst);
        ws.send(answer).await?;
        echoed += 1;
        match behavior {
            Behavior::CloseAfter(n) if echoed == n => {
                return close(ws, CloseCode::Library(4000), "enough").await;
            }
            Behavior::DropAfter(n) if echoed == n => return Ok(()),
            Behavior::StallAfter(n) if echoed == n => {
                // The socket stays open, unread, until the server stops.
                return std::future::pending().await;
            }
            _ => {}
        }
    }
}

/// Sends a close frame and reads until the client's answer ends the stream.
async fn close<S>(
    mut ws: WebSocketStream<S>,
    code: CloseCode,
    reason: &str,
) -> Result<(), tokio_tungstenite::tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
    .await?;
    let drain = async { while let Some(Ok(_)) = ws.next().await {} };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
    Ok(())
}
