//! What the pool has done, per origin and in total, as numbers a program or a
//! Prometheus server can read.
//!
//! The core counts connections, grants and refusals per key
//! ([`Stats`]); this module adds the latencies only the client layer sees
//! (the wait for a connection, a connect's handshakes, the time to a
//! response), and takes one snapshot of both under the pool's lock, so the
//! figures of one [`Metrics`] agree with each other. The snapshot renders
//! itself in Prometheus's text format ([`Metrics::prometheus`]).
//!
//! The latencies are always recorded: a record is a few additions on a fixed
//! array, under the lock the pool takes anyway or beside it, at instants the
//! client reads for its own purposes (deadlines, the core's time) wherever it
//! can. An origin's figures live as long as the core remembers its key
//! ([`PoolConfig::forget_key_after`](muxpool_core::PoolConfig#structfield.forget_key_after)),
//! so a client that talks to many origins over time holds figures only for
//! the recent ones; the totals keep everything.
//!
//! With the feature `opentelemetry`, the same figures also go to an
//! OpenTelemetry `Meter`, under the semantic conventions' names
//! ([`Client::register_metrics`](crate::Client::register_metrics)).

mod histogram;
#[cfg(feature = "opentelemetry")]
pub(crate) mod otel;
mod prometheus;

pub(crate) use histogram::Sample;
pub use histogram::{Histogram, FINITE_BUCKETS};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use muxpool_core::{Endpoint, EndpointState, Stats};

use crate::dial::PoolKey;

/// The latency histograms of one origin, or of the whole pool.
///
/// Every figure is read from the runtime's clock
/// ([`Runtime::now`](crate::runtime::Runtime::now)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Latencies {
    /// The wait for a connection, per request sent with
    /// [`Client::send`](crate::Client::send) and per WebSocket opened with
    /// [`Client::websocket`](crate::Client::websocket): from the moment its
    /// last attempt asked the pool for a connection to the moment it was
    /// granted one (zero for a connection free at once).
    pub wait: Histogram,
    /// A new connection's connect, per connection that came up: from its
    /// connect task's start (right after the core asked for it) to the pool
    /// learning it is up, covering name resolution, TCP, TLS and the HTTP/2
    /// or WebSocket handshake.
    pub connect: Histogram,
    /// A new connection's TLS handshake alone, per TLS connection that came
    /// up.
    pub tls_handshake: Histogram,
    /// The time to the response head, per request that got one: from the
    /// grant of the connection its last attempt used to the response head
    /// parsed (writing the request, the server's time, reading the head).
    pub response_head: Histogram,
    /// A request's whole duration, per request sent with
    /// [`Client::send`](crate::Client::send), answered or failed: from the
    /// call to its return with a response head or an error, including the
    /// wait, the retries and the body sent before the head came. The response
    /// body's reading is not in it.
    pub request: Histogram,
    /// How long connections lived, per connection that came up and went:
    /// from the pool learning it is up to the pool closing it (idle, expired,
    /// not reusable, shut down...) or learning its transport closed.
    pub connection: Histogram,
}

impl Latencies {
    fn merge(&mut self, other: &Latencies) {
        self.wait.merge(&other.wait);
        self.connect.merge(&other.connect);
        self.tls_handshake.merge(&other.tls_handshake);
        self.response_head.merge(&other.response_head);
        self.request.merge(&other.request);
        self.connection.merge(&other.connection);
    }
}

/// One origin's figures in a [`Metrics`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OriginMetrics {
    /// The origin: scheme, host, port, TLS identity (and for a WebSocket, its
    /// target).
    pub key: PoolKey,
    /// The core's counters for it.
    pub stats: Stats,
    /// Its latencies.
    pub latencies: Latencies,
}

/// A snapshot of the pool's figures, in total and per origin, taken under the
/// pool's lock at once: see [`Client::metrics`](crate::Client::metrics).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Metrics {
    /// The core's counters over every origin (as
    /// [`Client::stats`](crate::Client::stats) gives them).
    pub stats: Stats,
    /// The latencies over every origin, forgotten ones included.
    pub latencies: Latencies,
    /// Each origin the core knows, ordered by its name (the key's `Display`).
    /// An endpoint of a service is an origin of its own (its key names its
    /// address), with its connections and their figures.
    pub origins: Vec<OriginMetrics>,
    /// Each [service](crate::Service), in the order configured: its
    /// requests' latencies and its balancer's view of each endpoint.
    pub services: Vec<ServiceMetrics>,
}

impl Metrics {
    /// The figures of the origin `key`, if the core knows it.
    pub fn origin(&self, key: &PoolKey) -> Option<&OriginMetrics> {
        self.origins.iter().find(|o| &o.key == key)
    }
}

/// One service's figures in a [`Metrics`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServiceMetrics {
    /// The service's authority, as its requests name it (no endpoint).
    pub key: PoolKey,
    /// Its requests' latencies, as their callers saw them: their duration
    /// (every endpoint tried included), their wait for a connection and
    /// their time to the response head. Connects are their endpoint's.
    pub latencies: Latencies,
    /// Its endpoints, in the balancer's order; one removed and still
    /// draining among them until its last request is back.
    pub endpoints: Vec<EndpointMetrics>,
}

impl ServiceMetrics {
    /// The share of the service's requests that went to `endpoint`, from 0
    /// to 1 (0 before any request).
    pub fn share(&self, endpoint: &EndpointMetrics) -> f64 {
        let total: u64 = self.endpoints.iter().map(|e| e.requests).sum();
        match total {
            0 => 0.0,
            total => endpoint.requests as f64 / total as f64,
        }
    }

    /// The endpoint at `addr`, if the service has it.
    pub fn endpoint(&self, addr: SocketAddr) -> Option<&EndpointMetrics> {
        self.endpoints.iter().find(|e| e.address == addr)
    }
}

/// What the balancer of a service knows of one endpoint, and what its pool
/// key holds.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EndpointMetrics {
    /// The endpoint's pool key: its figures as an origin are under it in
    /// [`Metrics::origins`].
    pub key: PoolKey,
    /// Its address.
    pub address: SocketAddr,
    /// Its priority group and weight.
    pub endpoint: Endpoint,
    /// Healthy, ejected (until when), probing or draining.
    pub state: EndpointState,
    /// Attempts of requests the balancer chose it for, since the client
    /// was built.
    pub requests: u64,
    /// Times it was ejected.
    pub ejections: u64,
    /// Failures in a row now (failed connects, failed requests).
    pub failures: u32,
    /// The balancer's latency estimate (a peak-sensitive moving average of
    /// the time from the choice to the response head).
    pub latency: Duration,
    /// Requests chosen for it and not yet answered.
    pub outstanding: u32,
    /// Connections its key holds open (connecting, idle, busy, draining).
    pub open: u32,
}

/// The latencies behind the pool's lock: the totals, and one set per key the
/// core knows.
///
/// Most requests go where the one before went, so the key recorded last keeps
/// its latencies out of the table: recording for it again compares two keys
/// instead of hashing one (hashing a key costs more than the rest of a
/// record together).
#[derive(Default)]
pub(crate) struct Recorder {
    total: Latencies,
    last: Option<(PoolKey, Box<Latencies>)>,
    /// Every other key's latencies.
    by_key: HashMap<PoolKey, Box<Latencies>>,
    /// Past this many keys, the ones the core forgot are dropped.
    prune_above: usize,
}

/// Keys held before the first look for forgotten ones.
const PRUNE_FLOOR: usize = 64;

impl Recorder {
    /// Records into `key`'s latencies and the totals; `known` says whether
    /// the core still knows a key, for dropping the forgotten ones when the
    /// table grows.
    #[inline]
    pub(crate) fn record(
        &mut self,
        key: &PoolKey,
        known: impl Fn(&PoolKey) -> bool,
        f: impl Fn(&mut Latencies),
    ) {
        f(&mut self.total);
        if let Some((last, l)) = &mut self.last {
            if last == key {
                f(l);
                return;
            }
        }
        self.switch_to(key, known);
        if let Some((_, l)) = &mut self.last {
            f(l);
        }
    }

    /// Makes `key` the last recorded, its latencies out of the table (new
    /// ones if it has none), and the previous last back in it.
    #[cold]
    fn switch_to(&mut self, key: &PoolKey, known: impl Fn(&PoolKey) -> bool) {
        if let Some((k, l)) = self.last.take() {
            self.by_key.insert(k, l);
        }
        let l = match self.by_key.remove(key) {
            Some(l) => l,
            None => {
                if self.by_key.len() >= self.prune_above.max(PRUNE_FLOOR) {
                    self.by_key.retain(|k, _| known(k));
                    self.prune_above = self.by_key.len() * 2;
                }
                Box::default()
            }
        };
        self.last = Some((key.clone(), l));
    }

    /// The latencies of `key`, if any were recorded.
    pub(crate) fn get(&self, key: &PoolKey) -> Option<&Latencies> {
        match &self.last {
            Some((k, l)) if k == key => Some(l),
            _ => self.by_key.get(key).map(|l| &**l),
        }
    }

    /// The figures of the pool (`stats`) and of each key given with its
    /// counters.
    pub(crate) fn snapshot<'a>(
        &self,
        stats: Stats,
        keys: impl Iterator<Item = (&'a PoolKey, Stats)>,
    ) -> Metrics {
        let mut origins: Vec<OriginMetrics> = keys
            .map(|(key, stats)| OriginMetrics {
                key: key.clone(),
                stats,
                latencies: self.get(key).cloned().unwrap_or_default(),
            })
            .collect();
        origins.sort_by_cached_key(|o| o.key.to_string());
        Metrics {
            stats,
            latencies: self.total.clone(),
            origins,
            services: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tls::TlsConfig;

    fn key(n: usize) -> PoolKey {
        let uri: http::Uri = format!("http://h{n}.example:80/").parse().unwrap();
        PoolKey::from_uri(&uri, TlsConfig::builder().build().unwrap().identity()).unwrap()
    }

    #[test]
    fn forgotten_keys_do_not_accumulate() {
        let mut r = Recorder::default();
        let kept = key(0);
        for n in 0..10_000 {
            let k = if n % 2 == 0 { kept.clone() } else { key(n) };
            // The core knows only `kept`.
            r.record(
                &k,
                |k| *k == kept,
                |l| l.request.record(Duration::from_micros(5)),
            );
            assert!(r.by_key.len() <= PRUNE_FLOOR + 1, "{}", r.by_key.len());
        }
        assert_eq!(r.total.request.count(), 10_000);
        assert_eq!(r.get(&kept).unwrap().request.count(), 5_000);
        // The last key recorded is found whether in the table or not.
        r.record(&kept, |_| true, |l| l.wait.record(Duration::ZERO));
        r.record(&kept, |_| true, |l| l.wait.record(Duration::ZERO));
        assert_eq!(r.get(&kept).unwrap().wait.count(), 2);
        assert_eq!(r.get(&key(1)), None, "forgotten");
    }

    #[test]
    fn a_snapshot_has_each_known_key_in_order() {
        let mut r = Recorder::default();
        let (a, b) = (key(1), key(2));
        r.record(&b, |_| true, |l| l.connect.record(Duration::from_millis(1)));
        let stats = Stats::default();
        let m = r.snapshot(stats, [(&b, stats), (&a, stats)].into_iter());
        let names: Vec<_> = m.origins.iter().map(|o| o.key.to_string()).collect();
        assert_eq!(names, ["http://h1.example:80", "http://h2.example:80"]);
        assert_eq!(m.origin(&b).unwrap().latencies.connect.count(), 1);
        assert_eq!(m.origin(&a).unwrap().latencies, Latencies::default());
        assert_eq!(m.latencies.connect.count(), 1);
    }
}
