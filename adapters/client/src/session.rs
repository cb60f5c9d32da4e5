//! Session affinity: requests of one session go to the connection the
//! session used last, while it can take them.
//!
//! # Why
//!
//! A message protocol over HTTP (MCP, JSON-RPC) often keeps state on the
//! upstream side of a connection, a proxy's upstream or a server process
//! behind a load balancer that pins by connection, so a session wants to stay
//! where it started. A [`Session`] travels with each request as an extension;
//! the pool then offers the session's last connection first
//! ([`AcquireOptions::preferring`](muxpool_core::AcquireOptions::preferring))
//! and records the connection each request gets. It is a preference, never a
//! wait: a connection that is full, draining or gone is passed over, and the
//! session moves to the one it gets next.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use muxpool_core::ConnId;

/// A connection handle that can be read and written through `&self`. Atomics
/// only because the futures that hold it are `Send`; relaxed, since each
/// write stands alone.
#[derive(Debug, Default)]
pub(crate) struct ConnCell {
    /// The connection's slot index plus one; 0 when none.
    index: AtomicU32,
    generation: AtomicU64,
}

impl ConnCell {
    pub(crate) fn set(&self, conn: Option<ConnId>) {
        let (index, generation) = conn.map_or((0, 0), |c| (c.index() + 1, c.generation()));
        self.generation.store(generation, Ordering::Relaxed);
        self.index.store(index, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Option<ConnId> {
        let index = self.index.load(Ordering::Relaxed).checked_sub(1)?;
        Some(ConnId::from_parts(
            index,
            self.generation.load(Ordering::Relaxed),
        ))
    }
}

/// A session: requests that carry it (as a request extension) go to the
/// connection the session's last request used, when it can take them at
/// once. Clones are the same session.
///
/// ```
/// use muxpool_client::{Body, Session};
///
/// let session = Session::new();
/// let mut request = http::Request::post("https://api.example.com/rpc")
///     .body(Body::from("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}"))
///     .expect("a valid request");
/// request.extensions_mut().insert(session.clone());
/// // client.send(request) now prefers the session's connection, and the
/// // next request with `session` prefers the one this one got.
/// ```
#[derive(Debug, Clone, Default)]
pub struct Session {
    last: Arc<ConnCell>,
}

impl Session {
    /// A new session, on no connection yet.
    pub fn new() -> Session {
        Session::default()
    }

    /// Whether the session's requests have been on a connection yet.
    pub fn is_placed(&self) -> bool {
        self.last.get().is_some()
    }

    pub(crate) fn last(&self) -> Option<ConnId> {
        self.last.get()
    }

    pub(crate) fn placed_on(&self, conn: ConnId) {
        self.last.set(Some(conn));
    }
}
