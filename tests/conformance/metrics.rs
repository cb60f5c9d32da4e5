//! Metrics: the per-origin snapshot agrees with the pool's counters after a
//! known workload, every latency is recorded where its documentation says,
//! and the Prometheus exposition says the same numbers in a form promtool
//! accepts.
//!
//! The promtool test returns early with a message when promtool is not
//! installed, unless `MUXPOOL_REQUIRE_PROMTOOL` is set.

use crate::support::{self, Adapter};

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{assert_quiescent, client_trusting, get_text};
use muxpool::client::Client;
use muxpool::metrics::Metrics;
use muxpool::RequestTimeout;
use muxpool_testkit::certs::Ca;
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};

/// `a` requests to one origin and `b` to another, one after the other.
async fn two_origins<R: Adapter>(a: u64, b: u64) -> (Client<R>, HyperServer, HyperServer) {
    let first = HyperServer::start(Options::default());
    let second = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    for _ in 0..a {
        assert_eq!(get_text(&client, first.url("/")).await, "hello");
    }
    for _ in 0..b {
        assert_eq!(get_text(&client, second.url("/")).await, "hello");
    }
    (client, first, second)
}

/// A GET of `url` that gives up after 300 ms.
fn short_get(url: &str) -> http::Request<muxpool::Body> {
    let mut request = http::Request::get(url)
        .body(muxpool::Body::empty())
        .unwrap();
    request
        .extensions_mut()
        .insert(RequestTimeout(Duration::from_millis(300)));
    request
}

fn origin_label(server: &HyperServer) -> String {
    server.url("").trim_end_matches('/').to_owned()
}

async fn each_origin_has_its_counters_and_latencies<R: Adapter>() {
    let (client, first, second) = two_origins::<R>(7, 3).await;
    let metrics = client.metrics();
    assert_eq!(metrics.stats, client.stats());
    assert_eq!(metrics.origins.len(), 2, "{metrics:#?}");
    for (server, n) in [(&first, 7), (&second, 3)] {
        let label = origin_label(server);
        let origin = metrics
            .origins
            .iter()
            .find(|o| o.key.to_string() == label)
            .unwrap_or_else(|| panic!("no {label} in {metrics:#?}"));
        assert_eq!(
            metrics.origin(&origin.key).map(|o| &o.key),
            Some(&origin.key)
        );
        assert_eq!(origin.stats.grants, n);
        assert_eq!(origin.stats.reused_grants, n - 1);
        assert_eq!(origin.stats.connects, 1);
        let l = &origin.latencies;
        assert_eq!(l.request.count(), n, "{l:#?}");
        assert_eq!(l.wait.count(), n);
        assert_eq!(l.response_head.count(), n);
        assert_eq!(l.connect.count(), 1);
        assert_eq!(l.tls_handshake.count(), 0, "no TLS on plain HTTP");
        // A request takes at least its time to the head, which takes some.
        assert!(l.request.sum() >= l.response_head.sum());
        assert!(!l.response_head.sum().is_zero());
        assert!(!l.connect.sum().is_zero());
    }
    let total = &metrics.latencies;
    assert_eq!(total.request.count(), 10);
    assert_eq!(total.connect.count(), 2);
    assert_eq!(metrics.stats.grants, 10);
    assert_quiescent(&client).await;
}

async fn a_failed_request_counts_in_duration_only<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    // Nothing listens on the second origin: the request fails without a
    // response head.
    let url = format!("http://127.0.0.1:{}/", crate::support::closed_port());
    let failed = client.send(short_get(&url)).await;
    assert!(failed.is_err());
    let total = client.metrics().latencies;
    assert_eq!(total.request.count(), 2, "{total:#?}");
    assert_eq!(total.response_head.count(), 1, "{total:#?}");
}

async fn tls_handshakes_are_timed<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let server = support::tls_http1_server(&ca);
    let client = client_trusting::<R>(&ca);
    for _ in 0..3 {
        assert_eq!(get_text(&client, server.url("/")).await, "hello");
    }
    let metrics = client.metrics();
    let l = &metrics.origins[0].latencies;
    assert_eq!(l.tls_handshake.count(), 1, "{l:#?}");
    assert_eq!(l.connect.count(), 1);
    assert!(l.connect.sum() >= l.tls_handshake.sum());
    assert!(!l.tls_handshake.sum().is_zero());
    assert_quiescent(&client).await;
}

/// The value of the sample `name{labels}` in `text`.
fn sample(text: &str, name: &str, labels: &str) -> f64 {
    let prefix = format!("{name}{{{labels}}} ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"));
    line[prefix.len()..].parse().unwrap()
}

async fn connections_record_how_long_they_lived_as_they_go<R: Adapter>() {
    // A server that closes each HTTP/1.1 connection after its response: the
    // client closes its side as the response ends.
    let closing = HyperServer::start(Options {
        keep_alive: false,
        ..Options::default()
    });
    let client = Client::<R>::new();
    let lived = |client: &Client<R>| client.metrics().latencies.connection.count();
    for _ in 0..3 {
        assert_eq!(get_text(&client, closing.url("/")).await, "hello");
    }
    assert_quiescent(&client).await;
    assert_eq!(lived(&client), 3, "each closed connection");
    let origin = &client.metrics().origins[0];
    assert_eq!(origin.key.port(), closing.addr().port());
    assert_eq!(origin.latencies.connection.count(), 3);
    assert!(origin.latencies.connection.sum() > Duration::ZERO);

    // An HTTP/2 connection lives on while its server does...
    let h2 = HyperServer::start(Options {
        protocol: Protocol::Http2,
        ..Options::default()
    });
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .build()
        .unwrap();
    assert_eq!(get_text(&client, h2.url("/")).await, "hello");
    assert_eq!(lived(&client), 0);
    // ...and records when its transport closes under the pool.
    drop(h2);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lived(&client) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the close went unseen"
        );
        support::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(lived(&client), 1);
    assert_eq!(client.stats().transport_closes, 1);
}

async fn the_exposition_says_what_stats_say<R: Adapter>() {
    let (client, first, second) = two_origins::<R>(5, 2).await;
    let metrics = client.metrics();
    let text = metrics.prometheus();
    let stats = client.stats();
    let mut grants = 0.0;
    let mut requests = 0.0;
    let mut connects = 0.0;
    let mut idle = 0.0;
    for (server, n) in [(&first, 5.0), (&second, 2.0)] {
        let o = format!("origin=\"{}\"", origin_label(server));
        assert_eq!(sample(&text, "muxpool_grants_total", &o), n);
        assert_eq!(sample(&text, "muxpool_reused_grants_total", &o), n - 1.0);
        assert_eq!(
            sample(&text, "http_client_request_duration_seconds_count", &o),
            n
        );
        assert_eq!(
            sample(
                &text,
                "http_client_request_duration_seconds_bucket",
                &format!("{o},le=\"+Inf\"")
            ),
            n
        );
        assert_eq!(
            sample(
                &text,
                "muxpool_rejections_total",
                &format!("{o},reason=\"timeout\"")
            ),
            0.0
        );
        grants += sample(&text, "muxpool_grants_total", &o);
        requests += sample(&text, "http_client_request_duration_seconds_count", &o);
        connects += sample(&text, "muxpool_connects_total", &o);
        idle += sample(
            &text,
            "http_client_open_connections",
            &format!("{o},state=\"idle\""),
        );
    }
    assert_eq!(grants, stats.grants as f64);
    assert_eq!(requests, metrics.latencies.request.count() as f64);
    assert_eq!(connects, stats.connects as f64);
    assert_eq!(idle, f64::from(stats.idle));
    let sum: f64 = [&first, &second]
        .iter()
        .map(|s| {
            let o = format!("origin=\"{}\"", origin_label(s));
            sample(&text, "http_client_request_duration_seconds_sum", &o)
        })
        .sum();
    let expected = metrics.latencies.request.sum().as_secs_f64();
    assert!((sum - expected).abs() < 1e-6, "{sum} vs {expected}");
    assert_quiescent(&client).await;
}

/// Runs `promtool check metrics` on `text`, failing on any complaint.
pub fn promtool_check(text: &str) {
    let required = std::env::var_os("MUXPOOL_REQUIRE_PROMTOOL").is_some();
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            eprintln!("promtool is not installed: the exposition is not checked");
            return;
        }
        Err(e) => panic!("promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {}\n{said}\non:\n{text}",
        out.status
    );
}

async fn promtool_accepts_the_exposition<R: Adapter>() {
    let (client, _first, _second) = two_origins::<R>(3, 1).await;
    // A failure, so the rejection and close counters are not all zero.
    let _ = client.send(short_get("http://127.0.0.1:1/")).await;
    let metrics: Metrics = client.metrics();
    assert!(metrics.origins.len() >= 3);
    promtool_check(&metrics.prometheus());
    // An empty pool's exposition (no series, only HELP and TYPE) is valid too.
    let empty = Client::<R>::new();
    promtool_check(&empty.metrics().prometheus());
    support::assert_quiescent(&client).await;
}

support::conformance!(
    each_origin_has_its_counters_and_latencies,
    a_failed_request_counts_in_duration_only,
    tls_handshakes_are_timed,
    connections_record_how_long_they_lived_as_they_go,
    the_exposition_says_what_stats_say,
    promtool_accepts_the_exposition,
);
