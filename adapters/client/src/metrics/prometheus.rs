//! The Prometheus text exposition of a [`Metrics`] snapshot.
//!
//! Names follow OpenTelemetry's HTTP client conventions in Prometheus form
//! where one exists (`http_client_request_duration_seconds`,
//! `http_client_open_connections`), and carry a `muxpool_` prefix for what is
//! the pool's own (its refusals, closes, retries, connects). Every series has
//! an `origin` label; the pool's totals are their sums. A service's
//! balancer adds series per endpoint, labelled `service` and `endpoint`
//! (an endpoint is also an origin of its own). The README lists every name
//! in one table.

use std::fmt::{self, Write};

use muxpool_core::{CloseReason, EndpointState, RejectReason, Stats};

use super::{EndpointMetrics, Histogram, Latencies, Metrics};

impl Metrics {
    /// The snapshot in Prometheus's text exposition format (version 0.0.4),
    /// for a `/metrics` endpoint: one `origin` label per origin, label values
    /// escaped.
    ///
    /// ```
    /// # use muxpool_client::metrics::Metrics;
    /// fn serve(metrics: &Metrics) -> String {
    ///     metrics.prometheus()
    /// }
    /// ```
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(4096 + 8192 * self.origins.len());
        self.write_prometheus(&mut out)
            .expect("writing to a String cannot fail");
        out
    }

    /// Writes [`prometheus`](Metrics::prometheus)'s text to `out`.
    ///
    /// # Errors
    ///
    /// Whatever `out` returns.
    pub fn write_prometheus(&self, out: &mut impl Write) -> fmt::Result {
        let origins = self.grouped();
        let mut w = Writer {
            out,
            origins: &origins,
        };
        w.gauge_states(
            "http_client_open_connections",
            "Connections counted against the pool's limits, by state.",
            &[
                ("idle", |s| s.idle.into()),
                ("active", |s| s.busy.into()),
                ("connecting", |s| s.connecting.into()),
                ("draining", |s| s.draining.into()),
            ],
        )?;
        for &(name, kind, help, f) in SCALARS {
            w.scalar(name, kind, help, f)?;
        }
        w.by_reason(
            "muxpool_rejections_total",
            "Requests the pool refused, by reason.",
            RejectReason::ALL.iter().map(|r| (r.as_str(), *r)),
            |s, r| s.rejections[r],
        )?;
        w.by_reason(
            "muxpool_closes_total",
            "Connections the pool closed, by reason.",
            CloseReason::ALL.iter().map(|r| (r.as_str(), *r)),
            |s, r| s.closes[r],
        )?;
        for &(name, help, f) in HISTOGRAMS {
            w.histogram(name, help, f)?;
        }
        if !self.services.is_empty() {
            self.write_endpoints(w.out)?;
        }
        Ok(())
    }

    /// The balancers' series: one per endpoint of each service, labelled
    /// `service` (its authority) and `endpoint` (its address). The
    /// endpoint's connections and latencies are its origin's series.
    fn write_endpoints(&self, out: &mut impl Write) -> fmt::Result {
        for &(name, kind, help, f) in ENDPOINT_SERIES {
            writeln!(out, "# HELP {name} {help}")?;
            writeln!(out, "# TYPE {name} {kind}")?;
            for service in &self.services {
                let label = service.key.to_string();
                for e in &service.endpoints {
                    write!(out, "{name}{{service=\"")?;
                    escape(out, &label)?;
                    writeln!(out, "\",endpoint=\"{}\"}} {}", e.address, f(e))?;
                }
            }
        }
        Ok(())
    }

    /// The origins by label value, each service's authority among them
    /// (its requests' latencies; its connections are its endpoints'). Keys
    /// that differ only in what the label does not show (a TLS identity)
    /// are summed into one series: two series with the same labels are not
    /// valid.
    fn grouped(&self) -> Vec<Origin> {
        let services = self
            .services
            .iter()
            .map(|s| (s.key.to_string(), None, &s.latencies));
        let mut all: Vec<(String, Option<Stats>, &Latencies)> = self
            .origins
            .iter()
            .map(|o| (o.key.to_string(), Some(o.stats), &o.latencies))
            .chain(services)
            .collect();
        if !self.services.is_empty() {
            all.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let mut out: Vec<Origin> = Vec::with_capacity(all.len());
        for (label, stats, latencies) in all {
            match out.last_mut() {
                // Ordered by this very text.
                Some(last) if last.label == label => {
                    last.stats.extend(stats);
                    last.latencies.merge(latencies);
                }
                _ => out.push(Origin {
                    label,
                    stats: stats.into_iter().collect(),
                    latencies: latencies.clone(),
                }),
            }
        }
        out
    }
}

/// A number per origin: its name, type, help text, and where it is read.
type Scalar = (&'static str, &'static str, &'static str, Field);

/// Every number per origin but those by reason and the histograms.
const SCALARS: &[Scalar] = &[
    (
        "http_client_active_requests",
        "gauge",
        "Requests in flight: leases out, one per HTTP/1.1 connection in use or HTTP/2 stream.",
        |s| s.leases.into(),
    ),
    (
        "muxpool_pending_requests",
        "gauge",
        "Requests waiting for a connection.",
        |s| s.waiting.into(),
    ),
    (
        "muxpool_grants_total",
        "counter",
        "Connections (or streams) granted to requests.",
        |s| s.grants,
    ),
    (
        "muxpool_reused_grants_total",
        "counter",
        "Grants on a connection that had served a request before.",
        |s| s.reused_grants,
    ),
    (
        "muxpool_waited_grants_total",
        "counter",
        "Grants that waited in a queue first.",
        |s| s.waited_grants,
    ),
    (
        "muxpool_cancelled_total",
        "counter",
        "Requests given up by their caller while waiting for a connection.",
        |s| s.cancelled,
    ),
    (
        "muxpool_retries_total",
        "counter",
        "Requests sent again that the retry budget let through.",
        |s| s.retries,
    ),
    (
        "muxpool_connects_total",
        "counter",
        "Connects started.",
        |s| s.connects,
    ),
    (
        "muxpool_connect_failures_total",
        "counter",
        "Connects that failed or timed out.",
        |s| s.connect_failures,
    ),
    (
        "muxpool_transport_closes_total",
        "counter",
        "Connections whose transport closed under the pool (by the peer or an error).",
        |s| s.transport_closes,
    ),
];

/// A histogram per origin: its name, help text, and which latency.
type Hist = (&'static str, &'static str, fn(&Latencies) -> &Histogram);

const HISTOGRAMS: &[Hist] = &[
    (
        "http_client_request_duration_seconds",
        "Duration of requests, from the call to the response head or the error.",
        |l| &l.request,
    ),
    (
        "muxpool_connection_wait_duration_seconds",
        "Time a request waited for a connection.",
        |l| &l.wait,
    ),
    (
        "muxpool_response_head_duration_seconds",
        "Time from the grant of a connection to the response head.",
        |l| &l.response_head,
    ),
    (
        "muxpool_connect_duration_seconds",
        "Time to open a connection: resolution, TCP, TLS and protocol handshakes.",
        |l| &l.connect,
    ),
    (
        "muxpool_tls_handshake_duration_seconds",
        "Time of a new connection's TLS handshake.",
        |l| &l.tls_handshake,
    ),
    (
        "http_client_connection_duration_seconds",
        "How long connections lived, from up to closed.",
        |l| &l.connection,
    ),
];

/// A number per endpoint of a service: its name, type, help text, and
/// where it is read.
type EndpointSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&EndpointMetrics) -> f64,
);

const ENDPOINT_SERIES: &[EndpointSeries] = &[
    (
        "muxpool_endpoint_requests_total",
        "counter",
        "Attempts of requests the balancer chose the endpoint for.",
        |e| e.requests as f64,
    ),
    (
        "muxpool_endpoint_ejections_total",
        "counter",
        "Times the endpoint was ejected for failing.",
        |e| e.ejections as f64,
    ),
    (
        "muxpool_endpoint_ejected",
        "gauge",
        "1 while the endpoint is ejected or probed, else 0.",
        |e| match e.state {
            EndpointState::Ejected { .. } | EndpointState::Probing => 1.0,
            _ => 0.0,
        },
    ),
    (
        "muxpool_endpoint_outstanding_requests",
        "gauge",
        "Requests chosen for the endpoint and not yet answered.",
        |e| f64::from(e.outstanding),
    ),
    (
        "muxpool_endpoint_latency_seconds",
        "gauge",
        "The balancer's latency estimate of the endpoint (peak-sensitive moving average).",
        |e| e.latency.as_secs_f64(),
    ),
];

/// One number read from a [`Stats`].
type Field = fn(&Stats) -> u64;

/// One `origin` label value and what it sums.
struct Origin {
    label: String,
    stats: Vec<Stats>,
    latencies: Latencies,
}

impl Origin {
    fn sum(&self, f: impl Fn(&Stats) -> u64) -> u64 {
        self.stats.iter().map(f).sum()
    }
}

struct Writer<'a, W: Write> {
    out: &'a mut W,
    origins: &'a [Origin],
}

impl<W: Write> Writer<'_, W> {
    fn head(&mut self, name: &str, kind: &str, help: &str) -> fmt::Result {
        writeln!(self.out, "# HELP {name} {help}")?;
        writeln!(self.out, "# TYPE {name} {kind}")
    }

    fn origin(&mut self, origin: &Origin) -> fmt::Result {
        self.out.write_str("origin=\"")?;
        escape(self.out, &origin.label)?;
        self.out.write_char('"')
    }

    fn scalar(&mut self, name: &str, kind: &str, help: &str, f: Field) -> fmt::Result {
        self.head(name, kind, help)?;
        for o in self.origins {
            write!(self.out, "{name}{{")?;
            self.origin(o)?;
            writeln!(self.out, "}} {}", o.sum(f))?;
        }
        Ok(())
    }

    fn gauge_states(&mut self, name: &str, help: &str, states: &[(&str, Field)]) -> fmt::Result {
        self.head(name, "gauge", help)?;
        for o in self.origins {
            for (state, f) in states {
                write!(self.out, "{name}{{")?;
                self.origin(o)?;
                writeln!(self.out, ",state=\"{state}\"}} {}", o.sum(f))?;
            }
        }
        Ok(())
    }

    fn by_reason<T: Copy>(
        &mut self,
        name: &str,
        help: &str,
        reasons: impl Iterator<Item = (&'static str, T)> + Clone,
        f: impl Fn(&Stats, T) -> u64,
    ) -> fmt::Result {
        self.head(name, "counter", help)?;
        for o in self.origins {
            for (label, reason) in reasons.clone() {
                write!(self.out, "{name}{{")?;
                self.origin(o)?;
                writeln!(
                    self.out,
                    ",reason=\"{label}\"}} {}",
                    o.sum(|s| f(s, reason))
                )?;
            }
        }
        Ok(())
    }

    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        f: fn(&Latencies) -> &Histogram,
    ) -> fmt::Result {
        self.head(name, "histogram", help)?;
        for o in self.origins {
            let h = f(&o.latencies);
            for (bound, n) in h.cumulative() {
                write!(self.out, "{name}_bucket{{")?;
                self.origin(o)?;
                match bound {
                    Some(b) => writeln!(self.out, ",le=\"{}\"}} {n}", b.as_secs_f64())?,
                    None => writeln!(self.out, ",le=\"+Inf\"}} {n}")?,
                }
            }
            write!(self.out, "{name}_sum{{")?;
            self.origin(o)?;
            writeln!(self.out, "}} {}", h.sum().as_secs_f64())?;
            write!(self.out, "{name}_count{{")?;
            self.origin(o)?;
            writeln!(self.out, "}} {}", h.count())?;
        }
        Ok(())
    }
}

/// Writes a label value escaped as the text format requires: a backslash, a
/// double quote and a line feed each become a backslash sequence.
fn escape(out: &mut impl Write, value: &str) -> fmt::Result {
    let mut rest = value;
    while let Some(i) = rest.find(['\\', '"', '\n']) {
        out.write_str(&rest[..i])?;
        out.write_str(match rest.as_bytes()[i] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        })?;
        rest = &rest[i + 1..];
    }
    out.write_str(rest)
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        escape(&mut s, "ws://h:1/a\"b\\c\nd}").unwrap();
        assert_eq!(s, "ws://h:1/a\\\"b\\\\c\\nd}");
    }
}
