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

/// How a [`Balancer`](crate::Balancer) spreads the requests of one service over
/// its endpoints, and when it stops using one. Start from
/// [`Balance::default`] and set fields.
///
/// ```
/// use std::time::Duration;
/// use muxpool_core::{Balance, Balancer};
///
/// let mut config = Balance::default();
/// config.outliers.consecutive_failures = Some(3); // eject sooner
/// config.failover.failback_after = Duration::from_secs(30); // return later
/// let balancer: Balancer<&str> = Balancer::new(config).unwrap();
/// # let _ = balancer;
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Balance {
    /// The time constant of each endpoint's peak-sensitive moving average of
    /// latency: a sample `decay` old weighs about a third of what a new one
    /// does, and an estimate not refreshed for a few times `decay` falls
    /// towards zero, so that an endpoint once slow is tried again. 10 s, as in
    /// Finagle and linkerd.
    pub decay: Duration,
    /// The latency an endpoint is assumed to have before its first sample.
    /// Its first answers replace it at once when slower (the average follows
    /// peaks), and slowly when faster. 30 ms.
    pub initial_latency: Duration,
    /// What a request is assumed to wait for a new connection (connect and
    /// handshake) on an endpoint with no spare capacity, before the endpoint
    /// has reported a connect time of its own. 30 ms.
    pub initial_connect: Duration,
    /// Outlier ejection.
    pub outliers: Outliers,
    /// Priority groups and failover between them.
    pub failover: Failover,
    /// The seed of every random choice the balancer makes; the client gives
    /// its [`PoolConfig::seed`]. Same seed and same inputs give the same
    /// choices.
    pub seed: u64,
}

impl Default for Balance {
    fn default() -> Self {
        Balance {
            decay: Duration::from_secs(10),
            initial_latency: Duration::from_millis(30),
            initial_connect: Duration::from_millis(30),
            outliers: Outliers::default(),
            failover: Failover::default(),
            seed: PoolConfig::default().seed,
        }
    }
}

/// Outlier ejection: an endpoint that keeps failing is taken out of the
/// rotation for a while, then probed with one request, and readmitted when
/// the probe succeeds. Envoy's outlier detection is the reference.
///
/// An endpoint is ejected after `consecutive_failures` failures in a row
/// (failed connects, and requests the caller reports failed: a 5xx, a reset, a
/// timeout); a success resets the count. It stays out for `base_ejection`
/// times the number of times it was ejected, at most `max_ejection`; the count
/// falls by one for each `base_ejection` it then stays healthy. At most
/// `max_ejection_percent` of a service's endpoints are out at once (and at
/// least one may be); a group whose healthy share falls under
/// `panic_threshold` is in panic, and spreads its traffic over all its
/// endpoints, ejected or not, rather than overload the few left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outliers {
    /// Failures in a row that eject an endpoint; `None` never ejects. 5.
    pub consecutive_failures: Option<u32>,
    /// How long a first ejection lasts; the n-th lasts n times this. 30 s.
    pub base_ejection: Duration,
    /// The longest ejection. 300 s.
    pub max_ejection: Duration,
    /// The largest share of a service's endpoints that may be ejected at once,
    /// in percent, rounded down but never below one endpoint. 50: enough for a
    /// whole group (a region) of two to go, and never more than half.
    pub max_ejection_percent: u32,
    /// Below this share of healthy endpoints, in percent, a group is in panic
    /// and ignores ejections. 50.
    pub panic_threshold: u32,
}

impl Default for Outliers {
    fn default() -> Self {
        Outliers {
            consecutive_failures: Some(5),
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejection_percent: 50,
            panic_threshold: 50,
        }
    }
}

/// Failover between priority groups (regions, zones): traffic stays in the
/// highest-priority group while enough of it is healthy, and spills to the
/// next in proportion as its health drops, as Envoy's priority levels do.
///
/// A group's health is its healthy weight over its whole weight, times
/// `overprovisioning` percent, at most 100 %: with the default 140, a group
/// keeps all its traffic while at least 5 of 7 of it is healthy. The groups
/// take traffic in priority order, each its health's share of what the ones
/// before it left; when all of them together are under 100 %, their shares
/// are scaled up to it.
///
/// An endpoint readmitted after an ejection takes requests at once, but adds to
/// its group's health only once it has stayed healthy for `failback_after`:
/// traffic leaves a failing group at once and comes back to a healed one once
/// it has proved itself, so that a group failing on and off does not pull
/// traffic back and forth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failover {
    /// Overprovisioning, in percent; at least 100. 140, as in Envoy.
    pub overprovisioning: u32,
    /// How long a readmitted endpoint must stay healthy before it counts in
    /// its group's health again. 10 s.
    pub failback_after: Duration,
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            overprovisioning: 140,
            failback_after: Duration::from_secs(10),
        }
    }
}

impl Balance {
    /// Checks the configuration; [`Balancer::new`](crate::Balancer::new) calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let durations = [
            ("balance.decay", self.decay),
            (
                "balance.outliers.base_ejection",
                self.outliers.base_ejection,
            ),
            ("balance.outliers.max_ejection", self.outliers.max_ejection),
        ];
        for (name, value) in durations {
            if value.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        if self.outliers.consecutive_failures == Some(0) {
            return Err(ConfigError::ZeroLimit(
                "balance.outliers.consecutive_failures",
            ));
        }
        if self.outliers.max_ejection < self.outliers.base_ejection {
            return Err(ConfigError::OutOfRange("balance.outliers.max_ejection"));
        }
        if self.outliers.max_ejection_percent > 100 {
            return Err(ConfigError::OutOfRange(
                "balance.outliers.max_ejection_percent",
            ));
        }
        if self.outliers.panic_threshold > 100 {
            return Err(ConfigError::OutOfRange("balance.outliers.panic_threshold"));
        }
        if !(100..=LIMIT_CEILING).contains(&self.failover.overprovisioning) {
            return Err(ConfigError::OutOfRange("balance.failover.overprovisioning"));
        }
        Ok(())
    }
}

/// The rule by which a [`Sizer`](crate::Sizer) sets the minimum of warm
/// connections per endpoint from measured demand.
///
/// Every `interval`, the target grows by `grow_percent` (rounded up) when the
/// average wait for a connection over the interval exceeded `wait_above`,
/// and shrinks by `shrink_percent` (rounded down) when utilisation, the
/// share of open connections in use, stayed under `utilisation_below`
/// percent; always within `min..=max`. The defaults (every 10 s, 1.2× above
/// 100 ms of wait, 0.8× under 30 %, within 10 and 500) are the starting rule
/// users asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sizing {
    /// How often the target moves.
    pub interval: Duration,
    /// The average wait above which the target grows.
    pub wait_above: Duration,
    /// The utilisation, in percent, under which the target shrinks.
    pub utilisation_below: u32,
    /// Growth, in percent of the target (above 100).
    pub grow_percent: u32,
    /// Shrinkage, in percent of the target (under 100).
    pub shrink_percent: u32,
    /// The smallest target, and the first.
    pub min: u32,
    /// The largest target.
    pub max: u32,
}

impl Default for Sizing {
    fn default() -> Self {
        Sizing {
            interval: Duration::from_secs(10),
            wait_above: Duration::from_millis(100),
            utilisation_below: 30,
            grow_percent: 120,
            shrink_percent: 80,
            min: 10,
            max: 500,
        }
    }
}

impl Sizing {
    /// Checks the rule; [`Sizer::new`](crate::Sizer::new) calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::ZeroDuration("sizing.interval"));
        }
        if !(101..=LIMIT_CEILING).contains(&self.grow_percent) {
            return Err(ConfigError::OutOfRange("sizing.grow_percent"));
        }
        if self.shrink_percent >= 100 {
            return Err(ConfigError::OutOfRange("sizing.shrink_percent"));
        }
        if self.utilisation_below > 100 {
            return Err(ConfigError::OutOfRange("sizing.utilisation_below"));
        }
        if self.min > self.max || self.max > LIMIT_CEILING {
            return Err(ConfigError::OutOfRange("sizing.min and sizing.max"));
        }
        Ok(())
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
    /// A setting is outside the range it is documented with.
    OutOfRange(&'static str),
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
            ConfigError::OutOfRange(name) => write!(f, "{name} is out of its range"),
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
