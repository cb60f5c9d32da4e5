//! What the core asks its caller to do, and the reasons it gives.

use core::fmt;

use crate::id::{ConnId, Lease, WaiterId};

/// One thing the caller must do, drained from [`Pool::poll_action`](crate::Pool::poll_action).
///
/// Actions are plain data and allocate nothing. They must be carried out in the
/// order they are drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "an action the caller drops is a connection never opened or closed, or a request never answered"]
pub enum Action {
    /// Open a connection for the key of `conn` ([`Pool::key`](crate::Pool::key)),
    /// then report [`Pool::handle_connected`](crate::Pool::handle_connected) or
    /// [`Pool::handle_connect_failed`](crate::Pool::handle_connect_failed).
    Open {
        /// The new connection.
        conn: ConnId,
    },
    /// Close the connection and forget it. The core has already forgotten it: events
    /// that name it from now on are answered with
    /// [`EventError::Stale`](crate::EventError::Stale). Leases still out on it may be
    /// released as usual.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// A waiting request got its capacity.
    Grant {
        /// The request, as returned by [`Pool::acquire`](crate::Pool::acquire).
        waiter: WaiterId,
        /// What it got.
        lease: Lease,
    },
    /// A waiting request will not get capacity.
    Reject {
        /// The request.
        waiter: WaiterId,
        /// Why.
        reason: RejectReason,
    },
    /// Send a health check (a ping) on a connection, then report
    /// [`Pool::handle_health_ok`](crate::Pool::handle_health_ok) when it is answered. No answer in
    /// time closes the connection. Asked for on idle connections at the health
    /// check interval, and at once on one reported by
    /// [`Pool::handle_suspect`](crate::Pool::handle_suspect), leases out or not.
    HealthCheck {
        /// The connection.
        conn: ConnId,
    },
}

/// Why a request for capacity was refused, at once or after waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// Its deadline passed.
    Timeout,
    /// The key's queue was full.
    QueueFull,
    /// The connection opened for it failed.
    ConnectFailed,
    /// The key's circuit is open after repeated connect failures.
    CircuitOpen,
    /// The pool is shutting down.
    ShuttingDown,
    /// A retry found the [retry budget](crate::RetryBudget) spent.
    RetryBudget,
}

impl RejectReason {
    /// Every reason, for tables of counters.
    pub const ALL: [RejectReason; 6] = [
        RejectReason::Timeout,
        RejectReason::QueueFull,
        RejectReason::ConnectFailed,
        RejectReason::CircuitOpen,
        RejectReason::ShuttingDown,
        RejectReason::RetryBudget,
    ];

    pub(crate) const fn slot(self) -> usize {
        match self {
            RejectReason::Timeout => 0,
            RejectReason::QueueFull => 1,
            RejectReason::ConnectFailed => 2,
            RejectReason::CircuitOpen => 3,
            RejectReason::ShuttingDown => 4,
            RejectReason::RetryBudget => 5,
        }
    }

    /// A short lowercase name, stable for metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::Timeout => "timeout",
            RejectReason::QueueFull => "queue_full",
            RejectReason::ConnectFailed => "connect_failed",
            RejectReason::CircuitOpen => "circuit_open",
            RejectReason::ShuttingDown => "shutting_down",
            RejectReason::RetryBudget => "retry_budget",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectReason::Timeout => "timed out waiting for a connection",
            RejectReason::QueueFull => "too many requests waiting for this origin",
            RejectReason::ConnectFailed => "the connection opened for the request failed",
            RejectReason::CircuitOpen => "the origin's circuit is open after repeated failures",
            RejectReason::ShuttingDown => "the pool is shutting down",
            RejectReason::RetryBudget => "the retry budget is spent",
        })
    }
}

impl std::error::Error for RejectReason {}

/// Why the core closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// Idle past the idle timeout.
    IdleTimeout,
    /// Past its maximum lifetime.
    Expired,
    /// Served its maximum number of requests.
    RequestLimit,
    /// The peer is going away, and the last lease came back.
    PeerGoingAway,
    /// A lease was released as not reusable.
    NotReusable,
    /// The connect did not finish in time.
    ConnectTimeout,
    /// A health check was not answered in time.
    HealthCheckFailed,
    /// Closed to make room under the global limit for a key that needs a connection.
    Evicted,
    /// Not needed: its key has no demand and enough idle connections.
    Surplus,
    /// The pool is shutting down.
    Shutdown,
}

impl CloseReason {
    /// Every reason, for tables of counters.
    pub const ALL: [CloseReason; 10] = [
        CloseReason::IdleTimeout,
        CloseReason::Expired,
        CloseReason::RequestLimit,
        CloseReason::PeerGoingAway,
        CloseReason::NotReusable,
        CloseReason::ConnectTimeout,
        CloseReason::HealthCheckFailed,
        CloseReason::Evicted,
        CloseReason::Surplus,
        CloseReason::Shutdown,
    ];

    pub(crate) const fn slot(self) -> usize {
        match self {
            CloseReason::IdleTimeout => 0,
            CloseReason::Expired => 1,
            CloseReason::RequestLimit => 2,
            CloseReason::PeerGoingAway => 3,
            CloseReason::NotReusable => 4,
            CloseReason::ConnectTimeout => 5,
            CloseReason::HealthCheckFailed => 6,
            CloseReason::Evicted => 7,
            CloseReason::Surplus => 8,
            CloseReason::Shutdown => 9,
        }
    }

    /// A short lowercase name, stable for metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Expired => "expired",
            CloseReason::RequestLimit => "request_limit",
            CloseReason::PeerGoingAway => "peer_going_away",
            CloseReason::NotReusable => "not_reusable",
            CloseReason::ConnectTimeout => "connect_timeout",
            CloseReason::HealthCheckFailed => "health_check_failed",
            CloseReason::Evicted => "evicted",
            CloseReason::Surplus => "surplus",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
