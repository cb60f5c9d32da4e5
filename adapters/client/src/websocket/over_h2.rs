//! WebSockets over HTTP/2 (RFC 8441): many WebSockets as streams of one
//! connection.
//!
//! When a server announces `SETTINGS_ENABLE_CONNECT_PROTOCOL`, a WebSocket
//! can be opened with an extended CONNECT (`:protocol = websocket`) on an
//! HTTP/2 connection the pool already holds for the origin, instead of a TCP
//! connection, TLS handshake and upgrade of its own. The core counts it like
//! any stream of that connection (its limits hold, its health checks cover
//! it), and the WebSocket holds its stream slot until its driver ends. When
//! the origin's connection is HTTP/1.1, or its server does not offer extended
//! CONNECT, the caller falls back to the HTTP/1.1 upgrade.

use std::sync::Arc;

use http::header::{HeaderValue, SEC_WEBSOCKET_VERSION};
use http::{Method, Request, Version};
use muxpool_core::{Lease, Release};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::conn::h2::h2_headers;
use crate::conn::ws::{start, H2Stream, Opened, WsConn};
use crate::conn::{Clock, Report};
use crate::dial::PoolKey;
use crate::error::{Error, ErrorKind, WebSocketError};
use crate::pool::{LeasedConn, Shared, Timing};
use crate::runtime::Runtime;

/// A stream slot held by a WebSocket's driver, given back when the driver
/// ends, or is dropped without ending.
struct StreamLease<R: Runtime> {
    inner: Arc<Shared<R>>,
    lease: Option<Lease>,
}

impl<R: Runtime> Drop for StreamLease<R> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.inner.release(lease, Release::Reuse);
        }
    }
}

fn stream_error(e: h2::Error) -> Error {
    Error::new(ErrorKind::WebSocket)
        .with_message("the extended CONNECT stream failed")
        .with_source(WebSocketError::Protocol(e.to_string()))
}

/// Opens a WebSocket on a stream of the origin's HTTP/2 connection, if the
/// server offers extended CONNECT there; `None` to fall back to the upgrade.
/// The WebSocket comes leased, its driver running and holding the stream's
/// slot.
pub(crate) async fn open<R: Runtime>(
    inner: &Arc<Shared<R>>,
    origin: &PoolKey,
    request: &Request<()>,
    deadline: std::time::Instant,
    timing: &Timing,
) -> Result<Option<WsConn>, Error> {
    if !origin.is_tls() && !inner.settings.h2_prior_knowledge {
        // Clear text speaks HTTP/2 only with prior knowledge.
        return Ok(None);
    }
    let http = origin.http();
    let (lease, leased) = inner.checkout(&http, Some(deadline)).timed(timing).await?;
    let send = match leased {
        LeasedConn::H2(send, _) if send.is_extended_connect_protocol_enabled() => send,
        LeasedConn::H2(..) => {
            inner.release(lease, Release::Reuse);
            return Ok(None);
        }
        LeasedConn::H1(conn) => {
            // Unused: back to the pool, for HTTP requests.
            inner.check_in(lease, Some(conn));
            return Ok(None);
        }
        LeasedConn::Ws(_) => {
            inner.release(lease, Release::Close);
            return Ok(None);
        }
    };
    let slot = StreamLease {
        inner: Arc::clone(inner),
        lease: Some(lease),
    };
    let scheme = if origin.is_tls() { "https" } else { "http" };
    let authority = request.uri().authority().map_or("", |a| a.as_str());
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut connect = Request::new(());
    *connect.method_mut() = Method::CONNECT;
    *connect.version_mut() = Version::HTTP_2;
    *connect.uri_mut() = format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| Error::new(ErrorKind::Request).with_source(e))?;
    *connect.headers_mut() = h2_headers(request.headers());
    connect
        .headers_mut()
        .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    connect
        .extensions_mut()
        .insert(h2::ext::Protocol::from_static("websocket"));
    let mut send = send.ready().await.map_err(stream_error)?;
    let (response, stream) = send.send_request(connect, false).map_err(stream_error)?;
    let response = response.await.map_err(stream_error)?;
    if response.status() != http::StatusCode::OK {
        return Err(WebSocketError::HandshakeRejected {
            status: response.status().as_u16(),
        }
        .into_error());
    }
    let io = H2Stream::new(stream, response.into_body());
    let socket = WebSocketStream::from_raw_socket(
        io,
        Role::Client,
        Some(inner.settings.ws.protocol_config()),
    )
    .await;
    let Opened { conn, driver } = start(socket);
    conn.lease();
    let clock = Arc::clone(inner) as Arc<dyn Clock>;
    let mut slot = Some(slot);
    inner.runtime.spawn(driver.drive(clock, move |report| {
        if let Report::Closed = report {
            drop(slot.take());
        }
    }));
    Ok(Some(conn))
}
