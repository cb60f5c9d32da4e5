//! The spans and events muxpool emits through `tracing`.
//!
//! A request gets a span shaped as OpenTelemetry's HTTP client span (named
//! by its method; `http.request.method`, `url.scheme`, `server.address`,
//! `server.port`, `network.protocol.version`, `http.response.status_code`,
//! `http.request.resend_count`, `error.type`) with muxpool's own fields: the
//! connection it went out on, whether that connection was reused, whether
//! the request waited for it and how long. A connection gets a span of its
//! own from its connect task on (resolution, connect, TLS, the protocol it
//! speaks, why it closed), and the pool's decisions (open, close, reject,
//! GOAWAY, retry) are events, children of the request or connection they
//! concern.
//!
//! # Why it is built this way
//!
//! Tracing is for whoever subscribes, and a client sends requests by the
//! million: without a subscriber a request pays one load of `tracing`'s
//! global level and a branch per site. Every span and event here is behind
//! [`on`], so with nothing listening no span is built, no field computed and
//! no text formatted; fields known only later are `Empty` until recorded,
//! and recorded only on a span that exists. The latencies are the
//! `metrics` module's: a span's wait is read from the times the checkout
//! took anyway, never from a clock reading of its own.
//!
//! Everything is at DEBUG, but a failure nobody else hears of (a health
//! check left unanswered, which closes a connection behind its users'
//! backs), at WARN: a request's own failure is its caller's to report.

use std::net::SocketAddr;
use std::time::Duration;

use http::Method;
use muxpool_core::{CloseReason, ConnId, RejectReason};
use tracing::field::{debug as dbg, display, Empty};
use tracing::{Level, Span};

use crate::dial::PoolKey;
use crate::error::Error;

/// An event of the connection `span` when there is one, else of the span
/// current where it happens (the request's, say).
macro_rules! event_in {
    ($span:expr, $level:expr, $($rest:tt)*) => {
        match $span {
            Some(span) => tracing::event!(parent: span, $level, $($rest)*),
            None => tracing::event!($level, $($rest)*),
        }
    };
}

/// Whether anything listens at DEBUG: one atomic load, false until a
/// subscriber that wants DEBUG from somewhere is set.
#[inline(always)]
pub(crate) fn on() -> bool {
    tracing::level_enabled!(Level::DEBUG)
}

/// The span of one request to `key`: named by its method as OpenTelemetry
/// names HTTP client spans (`GET`, or `HTTP` for a method it does not
/// list), with the fields known later `Empty`.
#[inline]
pub(crate) fn request(method: &Method, key: &PoolKey) -> Span {
    if !on() {
        return Span::none();
    }
    request_span(method, key)
}

#[inline(never)]
fn request_span(method: &Method, key: &PoolKey) -> Span {
    // A span's name is fixed where it is declared: one declaration per
    // method.
    macro_rules! span {
        ($name:literal, $method:expr) => {
            tracing::debug_span!(
                $name,
                otel.kind = "client",
                http.request.method = $method,
                http.request.method_original = Empty,
                url.scheme = key.scheme(),
                server.address = key.host(),
                server.port = key.port(),
                network.protocol.name = "http",
                network.protocol.version = Empty,
                http.response.status_code = Empty,
                http.request.resend_count = Empty,
                "error.type" = Empty,
                muxpool.connection.id = Empty,
                muxpool.connection.reused = Empty,
                muxpool.connection.waited = Empty,
                muxpool.wait.duration = Empty,
            )
        };
    }
    match *method {
        Method::GET => span!("GET", "GET"),
        Method::POST => span!("POST", "POST"),
        Method::PUT => span!("PUT", "PUT"),
        Method::DELETE => span!("DELETE", "DELETE"),
        Method::HEAD => span!("HEAD", "HEAD"),
        Method::PATCH => span!("PATCH", "PATCH"),
        Method::OPTIONS => span!("OPTIONS", "OPTIONS"),
        Method::TRACE => span!("TRACE", "TRACE"),
        Method::CONNECT => span!("CONNECT", "CONNECT"),
        _ => {
            let span = span!("HTTP", "_OTHER");
            span.record("http.request.method_original", method.as_str());
            span
        }
    }
}

/// What a request's span learns once it has an answer (or none): the
/// response's status and version, or the error's kind; and the wait for its
/// connection, from the checkout's times (`granted`: asked, granted, in
/// nanoseconds of the pool's clock).
pub(crate) fn answered(
    span: &Span,
    outcome: Result<(http::StatusCode, http::Version), &Error>,
    granted: Option<(u64, u64)>,
) {
    if span.is_disabled() {
        return;
    }
    match outcome {
        Ok((status, version)) => {
            span.record("http.response.status_code", status.as_u16());
            if let Some(version) = crate::semconv::protocol_version(version) {
                span.record("network.protocol.version", version);
            }
            if status.as_u16() >= 400 {
                // OpenTelemetry: a client span's error is its status code.
                span.record("error.type", status.as_str());
            }
        }
        Err(error) => {
            span.record("error.type", error.kind().as_str());
        }
    }
    if let Some((asked, at)) = granted {
        let wait = at.saturating_sub(asked);
        span.record("muxpool.connection.waited", wait > 0);
        span.record(
            "muxpool.wait.duration",
            Duration::from_nanos(wait).as_secs_f64(),
        );
    }
}

/// A request's span learns the connection it goes out on, and whether that
/// connection carried a request before.
#[inline]
pub(crate) fn placed(span: &Span, conn: ConnId, reused: bool) {
    if span.is_disabled() {
        return;
    }
    span.record("muxpool.connection.id", dbg(conn));
    span.record("muxpool.connection.reused", reused);
}

/// Why a request is sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resend {
    /// An HTTP/2 server refused the stream unprocessed (REFUSED_STREAM).
    RefusedStream,
    /// Above the last stream id of an HTTP/2 GOAWAY: not processed.
    GoAway,
    /// Its connection failed before any byte of the response.
    ConnectionCut,
}

impl Resend {
    fn as_str(self) -> &'static str {
        match self {
            Resend::RefusedStream => "refused_stream",
            Resend::GoAway => "goaway",
            Resend::ConnectionCut => "connection_cut",
        }
    }
}

/// A request goes again, its `count`th resend, for `why`.
#[cold]
pub(crate) fn resend(span: &Span, count: u32, why: Resend) {
    if span.is_disabled() {
        return;
    }
    span.record("http.request.resend_count", count);
    tracing::debug!(
        parent: span,
        http.request.resend_count = count,
        muxpool.retry.reason = why.as_str(),
        "request sent again"
    );
}

/// The span of one connection to `key`, from its connect task on: a root of
/// its own (it outlives the request that asked for it), following from
/// the span current when the pool opened it.
pub(crate) fn connection(conn: ConnId, key: &PoolKey) -> Span {
    if !on() {
        return Span::none();
    }
    let span = tracing::debug_span!(
        parent: None,
        "connection",
        muxpool.connection.id = dbg(conn),
        url.scheme = key.scheme(),
        server.address = key.host(),
        server.port = key.port(),
        network.peer.address = Empty,
        network.peer.port = Empty,
        network.protocol.name = Empty,
        network.protocol.version = Empty,
        tls.protocol.version = Empty,
        tls.next_protocol = Empty,
        tls.resumed = Empty,
        "error.type" = Empty,
        muxpool.close_reason = Empty,
        muxpool.proxy = Empty,
    );
    span.follows_from(Span::current());
    span
}

/// The connect task resolved its origin's name.
pub(crate) fn resolved(host: &str, addresses: &[SocketAddr]) {
    tracing::debug!(
        server.address = host,
        addresses = addresses.len(),
        "name resolved"
    );
}

/// The connect task's TCP connection to `peer` is up.
pub(crate) fn tcp_connected(peer: SocketAddr) {
    if !on() {
        return;
    }
    let span = Span::current();
    span.record("network.peer.address", display(peer.ip()));
    span.record("network.peer.port", peer.port());
    tracing::debug!(
        network.peer.address = %peer.ip(),
        network.peer.port = peer.port(),
        "tcp connected"
    );
}

/// The connect task's TCP connection is to `key`'s proxy, which forwards
/// the connection's requests, or carries a `tunnel` to the origin. The
/// proxy's address only: never its credentials.
pub(crate) fn through_proxy(key: &PoolKey, tunnel: bool) {
    if !on() {
        return;
    }
    let Some(proxy) = key.proxy() else {
        return;
    };
    Span::current().record("muxpool.proxy", display(proxy));
    tracing::debug!(
        muxpool.proxy = %proxy,
        muxpool.proxy.tunnel = tunnel,
        "connected to a proxy"
    );
}

/// The connect task's TLS handshake is done: its version, the protocol
/// ALPN chose, whether a session was resumed, and how long it took.
pub(crate) fn tls_handshaken(session: &rustls::ClientConnection, took: Duration) {
    if !on() {
        return;
    }
    let version = match session.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "1.2",
        _ => "other",
    };
    let alpn = session
        .alpn_protocol()
        .and_then(|p| std::str::from_utf8(p).ok());
    let resumed = matches!(
        session.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
    let span = Span::current();
    span.record("tls.protocol.version", version);
    if let Some(alpn) = alpn {
        span.record("tls.next_protocol", alpn);
    }
    span.record("tls.resumed", resumed);
    tracing::debug!(
        tls.protocol.version = version,
        tls.next_protocol = alpn,
        tls.resumed = resumed,
        tls.handshake.duration = took.as_secs_f64(),
        "tls handshake done"
    );
}

/// A connection is up and speaks `protocol` at `version` (`http` 1.1 or 2,
/// or a `websocket`).
pub(crate) fn ready(span: &Span, protocol: &'static str, version: &'static str) {
    if span.is_disabled() {
        return;
    }
    span.record("network.protocol.name", protocol);
    span.record("network.protocol.version", version);
    tracing::debug!(
        parent: span,
        network.protocol.name = protocol,
        network.protocol.version = version,
        "connection ready"
    );
}

/// A connect failed.
pub(crate) fn connect_failed(span: &Span, error: &Error) {
    if span.is_disabled() {
        return;
    }
    span.record("error.type", error.kind().as_str());
    tracing::debug!(parent: span, error = %error, "connect failed");
}

/// A connect succeeded where the last ones to its origin had failed: the
/// origin is back, and its circuit, if it was open, closes.
pub(crate) fn recovered(span: &Span, key: &PoolKey) {
    if span.is_disabled() {
        return;
    }
    tracing::debug!(
        parent: span,
        server.address = key.host(),
        server.port = key.port(),
        "connects succeed again, circuit closed"
    );
}

/// The pool decided to open a connection to `key`.
#[cold]
pub(crate) fn opening(conn: ConnId, key: &PoolKey) {
    tracing::debug!(
        muxpool.connection.id = ?conn,
        server.address = key.host(),
        server.port = key.port(),
        "pool opens a connection"
    );
}

/// The pool closed `conn` for `reason`; `span` is the connection's, when it
/// has one. A health check left unanswered is a warning besides: nobody
/// else is told.
#[cold]
pub(crate) fn closed(conn: ConnId, reason: CloseReason, span: Option<&Span>) {
    if !tracing::level_enabled!(Level::WARN) {
        return;
    }
    if let Some(span) = span {
        span.record("muxpool.close_reason", reason.as_str());
    }
    event_in!(
        span,
        Level::DEBUG,
        muxpool.connection.id = ?conn,
        muxpool.close_reason = reason.as_str(),
        "pool closes a connection"
    );
    if reason == CloseReason::HealthCheckFailed {
        event_in!(span, Level::WARN, muxpool.connection.id = ?conn, "health check failed");
    }
}

/// `conn`'s transport closed under it (the peer closed it, or it failed).
#[cold]
pub(crate) fn transport_closed(conn: ConnId, span: Option<&Span>) {
    if !on() {
        return;
    }
    if let Some(span) = span {
        span.record("muxpool.close_reason", "transport_closed");
    }
    event_in!(
        span,
        Level::DEBUG,
        muxpool.connection.id = ?conn,
        muxpool.close_reason = "transport_closed",
        "connection closed by its transport"
    );
}

/// The pool refused a request to `key` for `reason`; refused for an open
/// circuit, it says so.
#[cold]
pub(crate) fn rejected(key: &PoolKey, reason: RejectReason) {
    if !on() {
        return;
    }
    if reason == RejectReason::CircuitOpen {
        tracing::debug!(
            server.address = key.host(),
            server.port = key.port(),
            muxpool.reject_reason = reason.as_str(),
            "circuit open, request rejected"
        );
    } else {
        tracing::debug!(
            server.address = key.host(),
            server.port = key.port(),
            muxpool.reject_reason = reason.as_str(),
            "pool rejects a request"
        );
    }
}

/// `conn`'s peer sent a GOAWAY: the connection takes no new stream. An
/// event of the connection's span while the pool holds it, else of the
/// request that learned it (its driver may have reported the connection
/// closed first).
#[cold]
pub(crate) fn going_away(conn: ConnId, span: Option<&Span>) {
    event_in!(
        span,
        Level::DEBUG,
        muxpool.connection.id = ?conn,
        "goaway received"
    );
}

/// What a service's balancer did to one of its endpoints (`what`: ejected,
/// probing, readmitted, drained); an ejection is a warning.
#[cold]
pub(crate) fn endpoint(key: &PoolKey, what: &'static str) {
    if !on() {
        return;
    }
    let addr = key.endpoint().map(|a| a.to_string());
    if what == "ejected" {
        tracing::warn!(
            server.address = key.host(),
            server.port = key.port(),
            muxpool.endpoint = addr.as_deref(),
            "endpoint ejected after failing"
        );
    } else {
        tracing::debug!(
            server.address = key.host(),
            server.port = key.port(),
            muxpool.endpoint = addr.as_deref(),
            muxpool.endpoint_event = what,
            "endpoint event"
        );
    }
}
