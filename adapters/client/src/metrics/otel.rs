//! The pool's figures as OpenTelemetry instruments, under the HTTP client
//! semantic conventions' names (feature `opentelemetry`).
//!
//! What the pool already counts is read, not counted twice: the gauges
//! (`http.client.open_connections`, `http.client.active_requests`) are
//! observable instruments whose callbacks take a [`Metrics`] snapshot when the
//! SDK collects, so they cost a request nothing. A histogram cannot be
//! observed, and the semantic conventions want each request's method, status
//! and error on it, which the pool's own histograms do not split by: so
//! `http.client.request.duration` is recorded per request, outside the pool's
//! lock, and only once instruments are registered
//! ([`Client::register_metrics`](crate::Client::register_metrics)).
//!
//! `http.client.connection.duration` is recorded per connection as it goes,
//! under the pool's lock (a connection's close is rare beside its requests),
//! from the instant the pool kept when it came up.

use std::time::Duration;

use http::{Method, StatusCode, Version};
use opentelemetry::metrics::{AsyncInstrument, Histogram, Meter};
use opentelemetry::KeyValue;

use super::Metrics;
use crate::dial::PoolKey;
use crate::error::ErrorKind;
use crate::semconv::{method_name, protocol_version};

/// The semantic conventions' advised bucket bounds for
/// `http.client.request.duration`, in seconds.
const REQUEST_DURATION_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Bucket bounds for `http.client.connection.duration`, in seconds: the
/// request buckets' range, then on to an hour, since a pooled connection
/// lives from milliseconds (one request, `Connection: close`) to its
/// lifetime limit.
const CONNECTION_DURATION_BOUNDS: [f64; 19] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0,
];

/// The instrument a connection records into as it goes.
pub(crate) struct ConnectionDurations {
    histogram: Histogram<f64>,
}

impl ConnectionDurations {
    /// Records one connection to `key`, speaking `version`, that lived
    /// `lived`.
    pub(crate) fn record(&self, key: &PoolKey, version: Version, lived: Duration) {
        let mut attributes = Vec::with_capacity(4);
        attributes.extend(origin(key));
        if let Some(version) = protocol_version(version) {
            attributes.push(KeyValue::new("network.protocol.version", version));
        }
        self.histogram.record(lived.as_secs_f64(), &attributes);
    }
}

/// The instrument a request records into as it ends.
pub(crate) struct RequestDurations {
    histogram: Histogram<f64>,
}

/// How a request ended, as the histogram's attributes tell it.
pub(crate) enum Ended {
    /// With a response head.
    Answered(StatusCode, Version),
    /// With an error of this kind.
    Failed(ErrorKind),
}

impl RequestDurations {
    /// Records one request to `key`, sent with `method`, that took `took`.
    pub(crate) fn record(&self, key: &PoolKey, method: &Method, ended: Ended, took: Duration) {
        let mut attributes = Vec::with_capacity(7);
        attributes.extend(origin(key));
        attributes.push(KeyValue::new("http.request.method", method_name(method)));
        match ended {
            Ended::Answered(status, version) => {
                attributes.push(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status.as_u16()),
                ));
                if let Some(version) = protocol_version(version) {
                    attributes.push(KeyValue::new("network.protocol.version", version));
                }
                if status.is_client_error() || status.is_server_error() {
                    attributes.push(KeyValue::new("error.type", status.as_str().to_owned()));
                }
            }
            Ended::Failed(kind) => {
                attributes.push(KeyValue::new("error.type", kind.as_str()));
            }
        }
        self.histogram.record(took.as_secs_f64(), &attributes);
    }
}

/// Builds the instruments on `meter`: the observable ones read `snapshot`
/// (which gives `None` once the client is gone) at each collection; the
/// histograms are returned for the requests and the connections to record
/// into.
pub(crate) fn register(
    meter: &Meter,
    snapshot: impl Fn() -> Option<Metrics> + Clone + Send + Sync + 'static,
) -> (RequestDurations, ConnectionDurations) {
    let connections = meter
        .f64_histogram("http.client.connection.duration")
        .with_unit("s")
        .with_description("The duration of the successfully established outbound HTTP connections.")
        .with_boundaries(CONNECTION_DURATION_BOUNDS.to_vec())
        .build();
    let histogram = meter
        .f64_histogram("http.client.request.duration")
        .with_unit("s")
        .with_description("Duration of HTTP client requests.")
        .with_boundaries(REQUEST_DURATION_BOUNDS.to_vec())
        .build();
    let open = snapshot.clone();
    meter
        .i64_observable_up_down_counter("http.client.open_connections")
        .with_unit("{connection}")
        .with_description(
            "Number of outbound HTTP connections that are currently active or idle on the client.",
        )
        .with_callback(move |observer| {
            if let Some(m) = open() {
                observe_open_connections(&m, observer);
            }
        })
        .build();
    meter
        .i64_observable_up_down_counter("http.client.active_requests")
        .with_unit("{request}")
        .with_description("Number of active HTTP requests.")
        .with_callback(move |observer| {
            if let Some(m) = snapshot() {
                observe_active_requests(&m, observer);
            }
        })
        .build();
    (
        RequestDurations { histogram },
        ConnectionDurations {
            histogram: connections,
        },
    )
}

/// `server.address`, `server.port` and `url.scheme` of `key`.
fn origin(key: &PoolKey) -> [KeyValue; 3] {
    let scheme = match (key.websocket_target().is_some(), key.is_tls()) {
        (false, false) => "http",
        (false, true) => "https",
        (true, false) => "ws",
        (true, true) => "wss",
    };
    [
        KeyValue::new("server.address", key.host().to_owned()),
        KeyValue::new("server.port", i64::from(key.port())),
        KeyValue::new("url.scheme", scheme),
    ]
}

/// Per origin (keys that differ only in what the attributes do not show, a
/// TLS identity or a WebSocket's target, summed): `f`'s numbers.
fn per_origin<const N: usize>(
    m: &Metrics,
    f: impl Fn(&muxpool_core::Stats) -> [i64; N],
) -> Vec<([KeyValue; 3], [i64; N])> {
    let mut out: Vec<([KeyValue; 3], [i64; N])> = Vec::with_capacity(m.origins.len());
    for o in &m.origins {
        let attrs = origin(&o.key);
        let values = f(&o.stats);
        match out.iter_mut().find(|(a, _)| *a == attrs) {
            Some((_, sum)) => sum.iter_mut().zip(values).for_each(|(s, v)| *s += v),
            None => out.push((attrs, values)),
        }
    }
    out
}

/// `active`: connections carrying a request (draining ones included, as
/// they close once their last request ends); `idle`: connections waiting
/// for one. Connections still connecting are not yet HTTP connections.
fn observe_open_connections(m: &Metrics, observer: &dyn AsyncInstrument<i64>) {
    let counts = per_origin(m, |s| {
        [i64::from(s.busy) + i64::from(s.draining), i64::from(s.idle)]
    });
    for (attrs, [active, idle]) in counts {
        for (state, n) in [("active", active), ("idle", idle)] {
            let mut with_state = attrs.to_vec();
            with_state.push(KeyValue::new("http.connection.state", state));
            observer.observe(n, &with_state);
        }
    }
}

/// Requests holding a connection: one per HTTP/1.1 connection in use, one
/// per HTTP/2 stream (the same number as Prometheus's
/// `http_client_active_requests`).
fn observe_active_requests(m: &Metrics, observer: &dyn AsyncInstrument<i64>) {
    for (attrs, [leases]) in per_origin(m, |s| [i64::from(s.leases)]) {
        observer.observe(leases, &attrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_have_their_labels() {
        assert_eq!(ErrorKind::PoolExhausted.as_str(), "pool_exhausted");
    }
}
