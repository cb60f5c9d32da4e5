//! The vocabulary of the core's inputs: what a request asks for, what a connection
//! turned out to be, how a lease comes back, how the pool shuts down.

use crate::id::{ConnId, Lease, WaiterId};
use crate::time::Instant;

/// How a connection carries requests, learned when it comes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum Mode {
    /// One request at a time: HTTP/1.1, or a WebSocket.
    Exclusive,
    /// Many concurrent streams: HTTP/2. `max_streams` is the peer's limit
    /// (SETTINGS_MAX_CONCURRENT_STREAMS); the connection's capacity is the smaller
    /// of it and [`PoolConfig::max_streams_per_connection`](crate::PoolConfig::max_streams_per_connection).
    Multiplexed {
        /// The peer's limit on concurrent streams.
        max_streams: u32,
    },
}

/// What the caller learned when a connection came up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Connected {
    /// Exclusive or multiplexed.
    pub mode: Mode,
    /// Whether its protocol can answer a health check (an HTTP/2 or WebSocket ping).
    pub health_checks: bool,
}

impl Connected {
    /// An HTTP/1.1 connection: exclusive, no ping.
    pub const fn http1() -> Connected {
        Connected {
            mode: Mode::Exclusive,
            health_checks: false,
        }
    }

    /// An HTTP/2 connection whose peer allows `max_streams` concurrent streams.
    pub const fn http2(max_streams: u32) -> Connected {
        Connected {
            mode: Mode::Multiplexed { max_streams },
            health_checks: true,
        }
    }

    /// A WebSocket: exclusive, with ping.
    pub const fn websocket() -> Connected {
        Connected {
            mode: Mode::Exclusive,
            health_checks: true,
        }
    }
}

/// Options of one request for capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub struct AcquireOptions {
    /// Give up at this instant; `None` waits [`PoolConfig::acquire_timeout`](crate::PoolConfig::acquire_timeout).
    pub deadline: Option<Instant>,
    /// Session affinity: take a lease on this connection when it can give one
    /// at once (a session's previous connection, say), rather than the one the
    /// core would pick. Only a choice among free capacity: a request that has
    /// to wait is served in arrival order like any other, wherever capacity
    /// frees up first, and a preferred connection that is gone, draining, full
    /// or of another key is passed over.
    pub prefer: Option<ConnId>,
    /// Which attempt of its request this is: a new request adds to the
    /// [retry budget](crate::RetryBudget), a retry spends from it.
    pub attempt: Attempt,
}

/// Which attempt of a request an [`Acquire`] is, for the
/// [retry budget](crate::RetryBudget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum Attempt {
    /// A new request: it adds its share to the retry budget.
    #[default]
    First,
    /// The same attempt asking again, nothing of it sent (the connection it
    /// was granted closed before use): neither adds nor spends.
    Again,
    /// The request is sent again after a failure: it spends one retry, and
    /// is refused with [`RejectReason::RetryBudget`](crate::RejectReason::RetryBudget)
    /// when none is left.
    Retry,
}

impl AcquireOptions {
    /// Waits until `deadline` at the latest.
    pub const fn with_deadline(deadline: Instant) -> AcquireOptions {
        AcquireOptions {
            deadline: Some(deadline),
            prefer: None,
            attempt: Attempt::First,
        }
    }

    /// The same options, for `attempt` of the request.
    pub const fn attempt(mut self, attempt: Attempt) -> AcquireOptions {
        self.attempt = attempt;
        self
    }

    /// The same options, preferring `conn` (see [`prefer`](Self::prefer)).
    pub const fn preferring(mut self, conn: ConnId) -> AcquireOptions {
        self.prefer = Some(conn);
        self
    }
}

/// The answer to [`Pool::acquire`](crate::Pool::acquire) when the request is not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a lease or waiter the caller drops is capacity never given back"]
pub enum Acquire {
    /// Capacity was free: use it now, release it later.
    Ready(Lease),
    /// The request waits; an [`Action::Grant`](crate::Action::Grant) or
    /// [`Action::Reject`](crate::Action::Reject) naming this waiter will answer it,
    /// unless it is cancelled first.
    Queued(WaiterId),
}

/// How a lease comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum Release {
    /// The connection is clean and may serve another request (an HTTP/1.1 response
    /// read to its end with keep-alive, an HTTP/2 stream finished).
    Reuse,
    /// The connection must not be used again (a body left unread, `Connection:
    /// close`, a protocol error); the core closes it once no lease is out on it.
    Close,
}

/// What a failed connect says about the next one to the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The next may succeed: the connect was refused or reset, or timed out (a
    /// server restarting, a network blip). The requests that can wait for the
    /// next connect, after the backoff, wait for it.
    Transient,
    /// The next would fail the same way: the name does not resolve, the
    /// server's certificate is not trusted, the server refused the protocol.
    /// Every request waiting for the key fails now.
    Permanent,
}

/// How to shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum Shutdown {
    /// Refuse new requests, reject the waiting ones, close idle connections, and
    /// close each busy one when its last lease comes back.
    Graceful,
    /// Also close busy connections now.
    Immediate,
}
