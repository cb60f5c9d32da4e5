//! The connect task of one new connection, and what its driver reports for
//! the rest of its life.
//!
//! The core asks for a connection ([`Action::Open`](muxpool_core::Action::Open));
//! a short task dials it (resolve, connect, TLS), finishes the protocol's
//! handshake (HTTP/2's SETTINGS, a WebSocket's upgrade), tells the core what
//! came up, and ends. A connection that needs a task of its own for its life
//! (an HTTP/2 connection, a WebSocket) gets its driver spawned here, which
//! reports to the core through [`Shared::report`].

use std::sync::Arc;

use bytes::BytesMut;
use muxpool_core::{ConnId, ConnectFailure, Connected};
use tracing::Span;

use crate::conn::h1::H1Conn;
use crate::conn::{h2, ws, Report};
use crate::dial::{connect, PoolKey, Transport};
use crate::error::{Error, Step};
use crate::runtime::Runtime;
use crate::timeout::with_deadline;
use crate::tls::Negotiated;

use super::state::{put, take, Lived, Slot};
use super::Shared;

impl<R: Runtime> Shared<R> {
    /// The connect task of one connection, in `span`, the connection's
    /// (kept for its close while it is on).
    pub(crate) async fn open(self: Arc<Self>, conn: ConnId, key: PoolKey, span: Span) {
        // A task dropped before it reports (its runtime shut down) reports a
        // failed connect, so the core does not wait for its timeout.
        struct Unreported<'a, R: Runtime>(&'a Shared<R>, Option<ConnId>);
        impl<R: Runtime> Drop for Unreported<'_, R> {
            fn drop(&mut self) {
                if let Some(conn) = self.1 {
                    self.0.with_state(|st, now| {
                        if take(&mut st.conns, conn.index(), conn).is_some() {
                            let _ = st.pool.handle_connect_failed(conn, now);
                        }
                    });
                }
            }
        }
        let mut unreported = Unreported(&self, Some(conn));
        let started = self.runtime.now();
        let deadline = started + self.settings.pool.connect_timeout;
        let websocket = key.websocket_target().is_some();
        let (tls, h2_prior_knowledge) = match websocket {
            true => (&self.settings.ws.tls, false),
            false => (&self.settings.tls, self.settings.h2_prior_knowledge),
        };
        // The deadline covers every handshake: a server that accepts and then
        // says nothing (no TLS, no SETTINGS, no upgrade) is a failed connect,
        // and its transport goes with this task.
        let result = with_deadline(&self.runtime, deadline, async {
            let resolver = &*self.settings.resolver;
            let c = connect(&self.runtime, resolver, &key, tls, h2_prior_knowledge).await?;
            if websocket {
                let ws = ws::handshake(c.io, &key, &self.settings.ws).await?;
                return Ok((Opened::Ws(Box::new(ws)), c.tls_time));
            }
            if c.protocol == Negotiated::Http2 {
                let h2 = h2::handshake(c.io, self.settings.h2).await?;
                return Ok((Opened::H2(Box::new(h2)), c.tls_time));
            }
            Ok((Opened::H1(c.io), c.tls_time))
        })
        .await
        .unwrap_or_else(|_| {
            Err(Error::timed_out(
                Step::Connect,
                Some(self.settings.pool.connect_timeout),
            ))
        });
        unreported.1 = None;
        let mut driver = None;
        let mut ws_driver = None;
        let dropped = self.with_state(|st, now| match result {
            Ok((opened, tls_time)) => {
                #[cfg_attr(not(feature = "opentelemetry"), allow(unused_variables))]
                let (protocol, version, http_version) = match &opened {
                    Opened::H1(_) => ("http", "1.1", http::Version::HTTP_11),
                    Opened::H2(_) => ("http", "2", http::Version::HTTP_2),
                    Opened::Ws(_) => ("websocket", "13", http::Version::HTTP_11),
                };
                // With nobody waiting, the new connection goes idle, unused.
                let unclaimed = st.pool.key_stats(&key).is_none_or(|s| s.waiting == 0);
                let (info, slot) = match opened {
                    Opened::H1(io) => (
                        Connected::http1(),
                        Slot::Idle(H1Conn {
                            io,
                            waited: unclaimed,
                            buf: BytesMut::new(),
                        }),
                    ),
                    Opened::H2(h2) => {
                        let h2::Handshaken {
                            conn: h2,
                            connection,
                            pings,
                        } = *h2;
                        let info = Connected::http2(h2::max_streams(&connection));
                        let ping = Arc::clone(&h2.ping);
                        driver = Some((connection, pings, ping));
                        (info, Slot::H2(h2))
                    }
                    Opened::Ws(ws) => {
                        let ws::Opened { conn, driver } = *ws;
                        ws_driver = Some(driver);
                        (Connected::websocket(), Slot::Ws(conn))
                    }
                };
                match st.pool.handle_connected(conn, now, info) {
                    Ok(()) => {
                        if st.connect_errors.remove(&key).is_some() {
                            crate::trace::recovered(&span, &key);
                        }
                        put(&mut st.conns, conn.index(), conn, slot);
                        let lived = Lived {
                            since: now,
                            key: key.clone(),
                            #[cfg(feature = "opentelemetry")]
                            version: http_version,
                        };
                        put(&mut st.lived, conn.index(), conn, lived);
                        crate::trace::ready(&span, protocol, version);
                        if !span.is_disabled() {
                            put(&mut st.spans, conn.index(), conn, span.clone());
                        }
                        let took = self.std_instant(now).saturating_duration_since(started);
                        if key.endpoint().is_some() {
                            st.services.connected(&key, now, took);
                        }
                        st.record(&key, |l| {
                            l.connect.record(took);
                            if let Some(tls) = tls_time {
                                l.tls_handshake.record(tls);
                            }
                        });
                        None
                    }
                    Err(_) => {
                        driver = None;
                        ws_driver = None;
                        Some(slot)
                    }
                }
            }
            Err(error) => {
                // A connect the core already gave up on (its deadline came
                // first) is not this key's latest failure.
                crate::trace::connect_failed(&span, &error);
                // An endpoint of a service: its balancer counts the failure,
                // and the requests waiting for it choose another endpoint
                // at once rather than wait out its backoff.
                let endpoint = key.endpoint().is_some();
                if endpoint {
                    st.services.connect_failed(&key, now);
                }
                if let Some(Slot::Connecting(key)) = take(&mut st.conns, conn.index(), conn) {
                    let failure = match endpoint {
                        true => ConnectFailure::Permanent,
                        false => error.connect_failure(),
                    };
                    st.remember_failure(key, error);
                    let _ = st.pool.handle_connect_error(conn, now, failure);
                }
                None
            }
        });
        drop(dropped);
        if let Some((connection, pings, ping)) = driver {
            // The connection's driver is a task of its own, and this one ends:
            // the driver lives as long as the connection, and this task's
            // future keeps room for the connect's state (resolution, Happy
            // Eyeballs, the TLS and HTTP/2 handshakes), a few KB.
            let me = Arc::clone(&self);
            let driver = h2::drive(connection, pings, ping, move |report| {
                me.report(conn, report);
            });
            self.spawn_in(span.clone(), driver);
        }
        if let Some(driver) = ws_driver {
            let me = Arc::clone(&self);
            let pool = Arc::clone(&self) as Arc<dyn crate::conn::Clock>;
            self.spawn_in(
                span,
                driver.drive(pool, move |report| me.report(conn, report)),
            );
        }
    }

    /// What a connection's driver task learned, for the core.
    pub(crate) fn report(&self, conn: ConnId, report: Report) {
        self.with_state(|st, now| match report {
            Report::MaxStreams(n) => {
                let _ = st.pool.handle_peer_max_streams(conn, now, n);
            }
            Report::Pong => {
                let _ = st.pool.handle_health_ok(conn, now);
            }
            Report::Closed => {
                st.ended(conn, now);
                if st.pool.handle_transport_closed(conn, now).is_ok() {
                    let span = take(&mut st.spans, conn.index(), conn);
                    crate::trace::transport_closed(conn, span.as_ref());
                }
                let _ = take(&mut st.conns, conn.index(), conn);
            }
        });
    }
}

/// A connection that came up.
enum Opened {
    H1(Transport),
    H2(Box<h2::Handshaken>),
    Ws(Box<ws::Opened>),
}
