//! Everything the core's decisions can be tuned by, with defaults users asked for.
//!
//! The defaults are finite everywhere: no request waits forever, no connection lives
//! forever, and the idle timeout is shorter than common servers' (nginx closes idle
//! keep-alive connections after 75 s), so the pool retires an idle connection
//! before the server does and a request rarely meets a connection the server has
//! just closed.

use core::fmt;
use core::time::Duration;

/// What to do when every multiplexed connection of a key is at its stream limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Saturation {
    /// Open another connection (within the per-key and global maxima).
    Spill,
    /// Queue the request until a stream frees up; open a new connection only when
    /// the key has none that can take streams.
    Queue,
}

/// Exponential backoff after connect failures, with jitter from the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// The pause after the first failure.
    pub initial: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// Backoff between `initial` and `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max }
    }
}

/// The per-key circuit breaker: it opens once a key's connects have failed
/// both often enough and for long enough, so that a dead origin fails new
/// requests at once while a restarting one (down for a few seconds) does not.
///
/// While it is closed, a failed connect fails no request that can outlast the
/// backoff: the core connects again when the backoff ends, and the requests
/// waiting are served once the origin is back. When it opens, new requests
/// are refused at once ([`RejectReason::CircuitOpen`](crate::RejectReason)),
/// requests already waiting stay until their deadlines, and after `open_for`
/// one probe connection is tried: if it connects the circuit closes and
/// serves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Circuit {
    /// Consecutive connect failures that open the circuit; `None` never opens it.
    pub failure_threshold: Option<u32>,
    /// How long connects must have been failing, from the first failure in a
    /// row, before the circuit opens: a restart shorter than this never opens
    /// it, whatever the number of failures.
    pub failing_for: Duration,
    /// How long the circuit stays open before one probe connection is tried.
    pub open_for: Duration,
}

impl Default for Circuit {
    fn default() -> Self {
        Circuit {
            failure_threshold: Some(5),
            failing_for: Duration::from_secs(10),
            open_for: Duration::from_secs(2),
        }
    }
}

impl Circuit {
    /// A circuit that opens after `failure_threshold` failures in a row over at
    /// least [`failing_for`](Circuit::failing_for) (10 s), for `open_for`.
    pub fn new(failure_threshold: Option<u32>, open_for: Duration) -> Circuit {
        Circuit {
            failure_threshold,
            open_for,
            ..Circuit::default()
        }
    }

    /// The circuit with `failing_for` instead.
    pub fn failing_for(mut self, failing_for: Duration) -> Circuit {
        self.failing_for = failing_for;
        self
    }
}

/// The retry budget: how many requests may be sent again after a failure,
/// over the whole pool, so that an origin in trouble is not hit by a storm of
/// retries.
///
/// Over any [`window`](RetryBudget::window), retries may number at most
/// [`percent`](RetryBudget::percent) of the new requests in it, plus
/// [`min_per_second`](RetryBudget::min_per_second) for each second of it. The
/// defaults (20 %, 10 a second, over 10 s) are Finagle's: a client sending 1,000
/// requests a second to an origin that fails them all sends at most 1,210, not
/// 2,000, while a client sending a few a second retries every failure.
///
/// A retry is an [`Acquire`](crate::Acquire) with
/// [`Attempt::Retry`](crate::Attempt::Retry); a new request, with
/// [`Attempt::First`](crate::Attempt::First), adds to the budget. A retry
/// over the budget is refused with
/// [`RejectReason::RetryBudget`](crate::RejectReason::RetryBudget).
///
/// ```
/// use std::time::Duration;
/// use muxpool_core::{PoolConfig, RetryBudget};
///
/// let mut config = PoolConfig::default();
/// // Retries up to 10 % of requests, plus 1 a second, over the last 30 s.
/// config.retry_budget = RetryBudget::new(10, 1, Duration::from_secs(30));
/// // Or no retries at all.
/// config.retry_budget = RetryBudget::none();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryBudget {
    /// Retries allowed per 100 new requests in the window (above 100 allows
    /// more retries than requests).
    pub percent: u32,
    /// Retries allowed each second of the window whatever the requests, so
    /// that a client with little traffic still retries.
    pub min_per_second: u32,
    /// How far back requests and retries are counted; not zero.
    pub window: Duration,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            percent: 20,
            min_per_second: 10,
            window: Duration::from_secs(10),
        }
    }
}

impl RetryBudget {
    /// Retries up to `percent` of the requests of the last `window`, plus
    /// `min_per_second` for each second of it.
    pub fn new(percent: u32, min_per_second: u32, window: Duration) -> RetryBudget {
        RetryBudget {
            percent,
            min_per_second,
            window,
        }
    }

    /// A budget that allows no retry.
    pub fn none() -> RetryBudget {
        RetryBudget::new(0, 0, Duration::from_secs(1))
    }
}

/// Periodic health checks on idle connections whose protocol has them (an HTTP/2
/// or WebSocket ping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthCheck {
    /// Check a connection after it has been idle this long; `None` turns checks off.
    pub interval: Option<Duration>,
    /// How long the answer may take before the connection is closed.
    pub timeout: Duration,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            interval: None,
            timeout: Duration::from_secs(10),
        }
    }
}

impl HealthCheck {
    /// Checks every `interval` of idleness, answered within `timeout`.
    pub fn new(interval: Option<Duration>, timeout: Duration) -> HealthCheck {
        HealthCheck { interval, timeout }
    }
}

/// The pool's configuration. Start from [`PoolConfig::default`] and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Connections per key, counting connecting, ready and draining ones.
    pub max_connections_per_key: u32,
    /// Connections over all keys, counted the same way.
    pub max_connections: u32,
    /// Connects in flight per key, so that a burst never becomes a connection storm.
    pub max_connecting_per_key: u32,
    /// Requests that may wait per key; one more is rejected at once.
    pub max_waiters_per_key: u32,
    /// How long a request waits when it names no deadline of its own.
    pub acquire_timeout: Duration,
    /// How long a connect may take, from the open action to the connected event.
    pub connect_timeout: Duration,
    /// Close a connection idle this long; `None` keeps idle connections.
    pub idle_timeout: Option<Duration>,
    /// Retire a connection this long after it connected; `None` never retires.
    pub max_lifetime: Option<Duration>,
    /// Each connection's lifetime is shortened by a random part of this, drawn from
    /// the seed, so a fleet of connections made together does not expire together.
    pub lifetime_jitter: Duration,
    /// Retire a connection after this many grants; `None` is unlimited.
    pub max_requests_per_connection: Option<u64>,
    /// Our own cap on concurrent streams on one multiplexed connection; the
    /// connection's capacity is the smaller of this and the peer's limit.
    pub max_streams_per_connection: u32,
    /// What to do when every multiplexed connection of a key is full.
    pub saturation: Saturation,
    /// Idle connections to keep open per key (pre-warming); 0 turns it off.
    pub min_idle_per_key: u32,
    /// Backoff after connect failures.
    pub backoff: Backoff,
    /// The circuit breaker.
    pub circuit: Circuit,
    /// Health checks on idle connections.
    pub health_check: HealthCheck,
    /// How many requests may be sent again after failures, over the pool.
    pub retry_budget: RetryBudget,
    /// Forget what was learned about a key (its protocol, its failures) after it
    /// has had no connection and no waiter for this long.
    pub forget_key_after: Duration,
    /// The seed of every random choice the core makes (jitter), and of the key
    /// hasher. Same seed and same inputs give the same outputs.
    pub seed: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_connections_per_key: 100,
            max_connections: 10_000,
            max_connecting_per_key: 8,
            max_waiters_per_key: 10_000,
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(60)),
            max_lifetime: Some(Duration::from_secs(300)),
            lifetime_jitter: Duration::from_secs(30),
            max_requests_per_connection: None,
            max_streams_per_connection: 256,
            saturation: Saturation::Spill,
            min_idle_per_key: 0,
            backoff: Backoff::default(),
            circuit: Circuit::default(),
            health_check: HealthCheck::default(),
            retry_budget: RetryBudget::default(),
            forget_key_after: Duration::from_secs(600),
            seed: 0x6d75_7870_6f6f_6c00,
        }
    }
}

/// A configuration the core refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A limit that must be at least one is zero.
    ZeroLimit(&'static str),
    /// `min_idle_per_key` exceeds `max_connections_per_key`.
    MinIdleAboveMax,
    /// `max_connections_per_key` exceeds `max_connections`.
    PerKeyAboveTotal,
    /// `backoff.initial` is zero or above `backoff.max`.
    BadBackoff,
    /// `lifetime_jitter` is not shorter than `max_lifetime`.
    JitterAboveLifetime,
    /// A limit is larger than the core can index (`u32::MAX / 2`).
    TooLarge(&'static str),
    /// A duration that must be positive is zero.
    ZeroDuration(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroLimit(name) => write!(f, "{name} must be at least 1"),
            ConfigError::MinIdleAboveMax => {
                f.write_str("min_idle_per_key must not exceed max_connections_per_key")
            }
            ConfigError::PerKeyAboveTotal => {
                f.write_str("max_connections_per_key must not exceed max_connections")
            }
            ConfigError::BadBackoff => {
                f.write_str("backoff.initial must be non-zero and at most backoff.max")
            }
            ConfigError::JitterAboveLifetime => {
                f.write_str("lifetime_jitter must be shorter than max_lifetime")
            }
            ConfigError::TooLarge(name) => write!(f, "{name} is larger than the core supports"),
            ConfigError::ZeroDuration(name) => write!(f, "{name} must be longer than zero"),
        }
    }
}

impl std::error::Error for ConfigError {}

const LIMIT_CEILING: u32 = u32::MAX / 2;

impl PoolConfig {
    /// Checks the configuration; [`Pool::new`](crate::Pool::new) calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let limits = [
            ("max_connections_per_key", self.max_connections_per_key),
            ("max_connections", self.max_connections),
            ("max_connecting_per_key", self.max_connecting_per_key),
            (
                "max_streams_per_connection",
                self.max_streams_per_connection,
            ),
        ];
        for (name, value) in limits {
            if value == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        let sized = [
            ("max_connections", self.max_connections),
            ("max_waiters_per_key", self.max_waiters_per_key),
        ];
        for (name, value) in sized {
            if value > LIMIT_CEILING {
                return Err(ConfigError::TooLarge(name));
            }
        }
        // A zero duration would make something due the instant it is armed, over
        // and over: each of these must be positive when set.
        let durations = [
            ("acquire_timeout", Some(self.acquire_timeout)),
            ("connect_timeout", Some(self.connect_timeout)),
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
            ("forget_key_after", Some(self.forget_key_after)),
            ("circuit.open_for", Some(self.circuit.open_for)),
            ("health_check.interval", self.health_check.interval),
            ("health_check.timeout", Some(self.health_check.timeout)),
            ("retry_budget.window", Some(self.retry_budget.window)),
        ];
        for (name, value) in durations {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        if self.max_requests_per_connection == Some(0) {
            return Err(ConfigError::ZeroLimit("max_requests_per_connection"));
        }
        if self.circuit.failure_threshold == Some(0) {
            return Err(ConfigError::ZeroLimit("circuit.failure_threshold"));
        }
        if self.min_idle_per_key > self.max_connections_per_key {
            return Err(ConfigError::MinIdleAboveMax);
        }
        if self.max_connections_per_key > self.max_connections {
            return Err(ConfigError::PerKeyAboveTotal);
        }
        if self.backoff.initial.is_zero() || self.backoff.initial > self.backoff.max {
            return Err(ConfigError::BadBackoff);
        }
        if let Some(lifetime) = self.max_lifetime {
            if self.lifetime_jitter >= lifetime {
                return Err(ConfigError::JitterAboveLifetime);
            }
        }
        Ok(())
    }
}
