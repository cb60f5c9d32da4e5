//! What a simulation runs: the workload, the origins, the faults and the pool's
//! configuration, all drawn from one seed by [`Options::from_seed`].

use core::fmt;
use core::time::Duration;

use crate::rng::Rng;
use crate::{Backoff, Circuit, Connected, HealthCheck, PoolConfig, RetryBudget, Saturation};

/// The simulator's dice: the core's own generator, with the draws a workload needs.
#[derive(Debug, Clone)]
pub(crate) struct Dice(Rng);

impl Dice {
    pub(crate) fn new(seed: u64) -> Dice {
        Dice(Rng::new(seed))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A value in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.0.below_inclusive(hi.saturating_sub(lo))
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.0.next_u64() >> 11) as f64) < p * (1u64 << 53) as f64
    }

    /// A duration in `lo..=hi`.
    pub(crate) fn between(&mut self, (lo, hi): (Duration, Duration)) -> Duration {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.range(nanos(lo), nanos(hi)))
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.range(0, items.len() as u64 - 1) as usize]
    }

    fn maybe<T>(&mut self, p: f64, f: impl FnOnce(&mut Dice) -> T) -> Option<T> {
        self.chance(p).then(|| f(self))
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// What a simulated origin speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1: exclusive connections, no ping.
    Http1,
    /// HTTP/2, with the peer's initial limit on concurrent streams.
    Http2 {
        /// SETTINGS_MAX_CONCURRENT_STREAMS when the connection comes up.
        max_streams: u32,
    },
    /// WebSocket: exclusive connections that answer pings.
    WebSocket,
}

impl Protocol {
    /// What a connection to this origin reports when it comes up.
    pub fn connected(self) -> Connected {
        match self {
            Protocol::Http1 => Connected::http1(),
            Protocol::Http2 { max_streams } => Connected::http2(max_streams),
            Protocol::WebSocket => Connected::websocket(),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Http1 => f.write_str("h1"),
            Protocol::Http2 { max_streams } => write!(f, "h2/{max_streams}"),
            Protocol::WebSocket => f.write_str("ws"),
        }
    }
}

/// One simulated origin: a server the pool keys connections by.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// What it speaks.
    pub protocol: Protocol,
    /// How long a connect takes (the bounds of a uniform draw); a ping's round
    /// trip is drawn from the same range.
    pub connect_latency: (Duration, Duration),
    /// How long a request holds its lease.
    pub request_time: (Duration, Duration),
    /// The server closes a connection idle this long (nginx: 75 s); `None` never.
    pub server_idle_close: Option<Duration>,
    /// Its share of the sessions, relative to the other origins' weights.
    pub weight: u32,
}

impl Origin {
    /// An origin speaking `protocol`, with LAN-like latencies, short requests and
    /// nginx's keep-alive timeout.
    pub fn new(protocol: Protocol) -> Origin {
        Origin {
            protocol,
            connect_latency: (ms(1), ms(20)),
            request_time: (ms(1), ms(50)),
            server_idle_close: Some(secs(75)),
            weight: 1,
        }
    }

    fn random(d: &mut Dice) -> Origin {
        let protocol = match d.range(0, 4) {
            0 | 1 => Protocol::Http1,
            2 => Protocol::WebSocket,
            _ => Protocol::Http2 {
                max_streams: d.pick(&[1, 2, 10, 100, 1000]),
            },
        };
        let latency = ms(d.range(0, 200));
        let request = ms(d.range(1, 2000));
        Origin {
            protocol,
            connect_latency: (latency / 4, latency),
            request_time: (request / 10, request),
            server_idle_close: d.maybe(0.5, |d| ms(d.range(500, 90_000))),
            weight: d.range(1, 5) as u32,
        }
    }
}

/// How often things go wrong during the fault phase; each is a probability in
/// `0.0..=1.0`. After the fault phase none of them happens.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// A connect fails (after its latency).
    pub connect_fail: f64,
    /// A connect hangs: its outcome arrives only after the core gave up on it.
    pub connect_hang: f64,
    /// A granted request's transport is closed under it.
    pub reset: f64,
    /// A granted request's peer announces it is going away.
    pub going_away: f64,
    /// A granted request's HTTP/2 peer changes its stream limit (up, down, to zero),
    /// and restores it a little later.
    pub limit_change: f64,
    /// A health check is never answered.
    pub lost_ping: f64,
    /// A lease comes back not reusable.
    pub not_reusable: f64,
}

impl Faults {
    /// No faults at all.
    pub const NONE: Faults = Faults {
        connect_fail: 0.0,
        connect_hang: 0.0,
        reset: 0.0,
        going_away: 0.0,
        limit_change: 0.0,
        lost_ping: 0.0,
        not_reusable: 0.0,
    };

    fn random(d: &mut Dice) -> Faults {
        let mut rate = || d.pick(&[0.0, 0.0, 0.01, 0.05, 0.2, 0.6]);
        Faults {
            connect_fail: rate(),
            connect_hang: rate(),
            reset: rate(),
            going_away: rate(),
            limit_change: rate(),
            lost_ping: rate(),
            not_reusable: rate(),
        }
    }
}

/// Everything a simulation run is made of. [`Options::from_seed`] draws a whole
/// set from one seed; fields can then be overridden for a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The seed of every random choice of the run (workload, latencies, faults).
    /// Same options, same run, to the byte.
    pub seed: u64,
    /// Client sessions: each makes its requests one after another.
    pub sessions: u32,
    /// Each session makes between 1 and this many requests.
    pub requests_per_session: u32,
    /// Sessions start within this span from the beginning.
    pub arrival_span: Duration,
    /// The share of sessions that start in bursts, all at the same instant as
    /// others (the first burst is at time zero, on cold origins).
    pub burst: f64,
    /// The pause between a session's requests.
    pub think_time: (Duration, Duration),
    /// The chance that a request that has to wait is cancelled after a while.
    pub cancel: f64,
    /// The chance that a request carries its own deadline, anywhere from now to
    /// the configured acquire timeout.
    pub own_deadline: f64,
    /// The chance that a request whose connection was reset under it is sent
    /// again, once, as an [`Attempt::Retry`](crate::Attempt::Retry).
    pub retry: f64,
    /// The origins; sessions pick one by weight.
    pub origins: Vec<Origin>,
    /// The fault rates of the fault phase.
    pub faults: Faults,
    /// Faults are injected only before this instant; after it the run is healed,
    /// and requests made once recovery had time to happen must not fail for
    /// connect failures or an open circuit.
    pub fault_phase: Duration,
    /// The pool's configuration.
    pub config: PoolConfig,
    /// Session affinity: each request of a session prefers the connection its
    /// previous request was granted.
    pub affinity: bool,
    /// Keep every trace line in the report (for replay and comparison).
    pub trace: bool,
}

impl Options {
    /// A moderate run drawn entirely from `seed`: a few origins of mixed
    /// protocols, tens of sessions, fault rates from none to heavy, and a pool
    /// configuration that ranges from the defaults to tight limits and short
    /// timeouts.
    pub fn from_seed(seed: u64) -> Options {
        let mut d = Dice::new(seed ^ 0x5eed_0f0f_0071_0115);
        let origins = (0..d.range(1, 4)).map(|_| Origin::random(&mut d)).collect();
        let arrival_span = secs(d.range(5, 120));
        let fault_phase = arrival_span.mul_f64(d.pick(&[0.0, 0.3, 0.5, 0.8]));
        // Retries draw from dice of their own, so that every seed keeps the
        // rest of its scenario.
        let mut r = Dice::new(seed ^ 0x7e72_1e5b_0d6e_7000);
        let mut config = random_config(&mut d);
        config.retry_budget = match r.pick(&[0, 1, 2]) {
            0 => RetryBudget::default(),
            1 => RetryBudget::none(),
            _ => RetryBudget::new(
                r.range(0, 50) as u32,
                r.range(0, 2) as u32,
                ms(r.range(1, 10_000)),
            ),
        };
        Options {
            seed,
            sessions: d.range(5, 80) as u32,
            requests_per_session: d.range(1, 8) as u32,
            arrival_span,
            burst: d.pick(&[0.0, 0.3, 0.9]),
            think_time: (ms(0), ms(d.range(0, 3000))),
            cancel: d.pick(&[0.0, 0.05, 0.3]),
            own_deadline: d.pick(&[0.0, 0.1, 0.3]),
            origins,
            faults: Faults::random(&mut d),
            fault_phase,
            config,
            affinity: d.pick(&[false, true]),
            retry: r.pick(&[0.0, 0.5, 1.0]),
            trace: false,
        }
    }

    /// The longest a connect can take to report, successful or not.
    pub(crate) fn max_connect_latency(&self) -> Duration {
        self.origins
            .iter()
            .map(|o| o.connect_latency.1)
            .max()
            .unwrap_or_default()
    }

    /// How long after the faults stop the pool may still refuse requests for
    /// them: a hung connect timing out, the circuit it opens, and the probe.
    pub(crate) fn recovery(&self) -> Duration {
        let c = &self.config;
        c.connect_timeout
            + c.circuit.open_for
            + c.backoff.max
            + self.max_connect_latency() * 2
            + secs(1)
    }
}

fn random_config(d: &mut Dice) -> PoolConfig {
    let mut c = PoolConfig::default();
    c.seed = d.next_u64();
    c.max_connections_per_key = d.pick(&[1, 2, 4, 8, 100]);
    c.max_connections = c.max_connections_per_key.max(d.pick(&[2, 3, 8, 10_000]));
    c.max_connecting_per_key = d.pick(&[1, 2, 8]);
    c.max_waiters_per_key = d.pick(&[1, 8, 10_000]);
    c.acquire_timeout = ms(d.range(100, 30_000));
    c.connect_timeout = ms(d.range(50, 10_000));
    c.idle_timeout = d.maybe(0.8, |d| ms(d.range(100, 60_000)));
    c.max_lifetime = d.maybe(0.7, |d| ms(d.range(1_000, 300_000)));
    c.lifetime_jitter = c.max_lifetime.map_or(Duration::ZERO, |l| l / 10);
    c.max_requests_per_connection = d.maybe(0.3, |d| d.range(1, 100));
    c.max_streams_per_connection = d.pick(&[1, 3, 100, 256]);
    c.saturation = d.pick(&[Saturation::Spill, Saturation::Queue]);
    c.min_idle_per_key = d.pick(&[0, 0, 0, 1, 2]).min(c.max_connections_per_key);
    let initial = ms(d.range(1, 500));
    c.backoff = Backoff::new(initial, initial.max(ms(d.range(100, 10_000))));
    // A run of failures must last four initial backoffs to open the circuit:
    // from a few milliseconds to two seconds, with no draw of its own, so
    // that every seed keeps the scenario it had.
    c.circuit = Circuit::new(
        d.maybe(0.7, |d| d.range(1, 6) as u32),
        ms(d.range(100, 5_000)),
    )
    .failing_for(initial * 4);
    c.health_check = HealthCheck::new(
        d.maybe(0.5, |d| ms(d.range(100, 30_000))),
        ms(d.range(10, 5_000)),
    );
    c.forget_key_after = ms(d.range(100, 600_000));
    c
}

fn percent(p: f64) -> String {
    format!("{}%", (p * 1000.0).round() / 10.0)
}

impl fmt::Display for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "seed {}: {} sessions of 1..={} requests starting within {:?} ({} in bursts), think {:?}..{:?}, cancel {}, own deadline {}, retry {}, affinity {}",
            self.seed,
            self.sessions,
            self.requests_per_session,
            self.arrival_span,
            percent(self.burst),
            self.think_time.0,
            self.think_time.1,
            percent(self.cancel),
            percent(self.own_deadline),
            percent(self.retry),
            if self.affinity { "on" } else { "off" },
        )?;
        for (i, o) in self.origins.iter().enumerate() {
            writeln!(
                f,
                "  origin {i}: {} weight {}, connect {:?}..{:?}, requests {:?}..{:?}, server idle close {:?}",
                o.protocol,
                o.weight,
                o.connect_latency.0,
                o.connect_latency.1,
                o.request_time.0,
                o.request_time.1,
                o.server_idle_close,
            )?;
        }
        let x = &self.faults;
        writeln!(
            f,
            "  faults for {:?}: connect fail {}, hang {}, reset {}, going away {}, limit change {}, lost ping {}, not reusable {}",
            self.fault_phase,
            percent(x.connect_fail),
            percent(x.connect_hang),
            percent(x.reset),
            percent(x.going_away),
            percent(x.limit_change),
            percent(x.lost_ping),
            percent(x.not_reusable),
        )?;
        write!(
            f,
            "  pool: {}/key {} total {} connecting/key {} waiters/key, {:?} saturation, {} streams/conn, {} min idle, acquire {:?}, connect {:?}, idle {:?}, lifetime {:?}, requests/conn {:?}, circuit {:?} for {:?}, health every {:?}, retries {}% + {}/s over {:?}",
            c.max_connections_per_key,
            c.max_connections,
            c.max_connecting_per_key,
            c.max_waiters_per_key,
            c.saturation,
            c.max_streams_per_connection,
            c.min_idle_per_key,
            c.acquire_timeout,
            c.connect_timeout,
            c.idle_timeout,
            c.max_lifetime,
            c.max_requests_per_connection,
            c.circuit.failure_threshold,
            c.circuit.open_for,
            c.health_check.interval,
            c.retry_budget.percent,
            c.retry_budget.min_per_second,
            c.retry_budget.window,
        )
    }
}
