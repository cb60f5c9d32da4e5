//! OpenTelemetry (feature `opentelemetry`): after a known workload, an SDK
//! with an in-memory exporter holds the semantic conventions' instruments,
//! with their units and attributes, and the numbers `metrics()` says.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{self, assert_quiescent, get_text, Adapter};

use muxpool::client::Client;
use muxpool::RequestTimeout;
use muxpool_testkit::hyper_server::{HyperServer, Options};
use opentelemetry::metrics::MeterProvider;
use opentelemetry::Value;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

/// An SDK pipeline whose exporter keeps what it is given.
fn sdk() -> (SdkMeterProvider, InMemoryMetricExporter) {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    (provider, exporter)
}

/// What one instrument exported: its unit, and its points' attributes with
/// their value (a sum's) or their count and sum (a histogram's).
struct Exported {
    unit: String,
    sums: Vec<(Vec<String>, i64)>,
    histograms: Vec<(Vec<String>, u64, f64)>,
}

/// The last export's metrics, by name.
fn collect(
    provider: &SdkMeterProvider,
    exporter: &InMemoryMetricExporter,
) -> BTreeMap<String, Exported> {
    exporter.reset();
    provider.force_flush().unwrap();
    let mut out = BTreeMap::new();
    for resource in exporter.get_finished_metrics().unwrap() {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics() {
                out.insert(metric.name().to_owned(), exported(metric));
            }
        }
    }
    out
}

fn exported(metric: &Metric) -> Exported {
    let mut e = Exported {
        unit: metric.unit().to_owned(),
        sums: Vec::new(),
        histograms: Vec::new(),
    };
    match metric.data() {
        AggregatedMetrics::I64(MetricData::Sum(sum)) => {
            assert!(
                !sum.is_monotonic(),
                "{} is an up-down counter",
                metric.name()
            );
            e.sums = sum
                .data_points()
                .map(|p| (attrs(p.attributes()), p.value()))
                .collect();
        }
        AggregatedMetrics::F64(MetricData::Histogram(h)) => {
            e.histograms = h
                .data_points()
                .map(|p| (attrs(p.attributes()), p.count(), p.sum()))
                .collect();
        }
        other => panic!("{}: unexpected data {other:?}", metric.name()),
    }
    e
}

/// Attributes as text, sorted: `key=value`.
fn attrs<'a>(kvs: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> Vec<String> {
    let mut v: Vec<String> = kvs
        .map(|kv| {
            let value = match &kv.value {
                Value::I64(n) => n.to_string(),
                other => other.as_str().into_owned(),
            };
            format!("{}={value}", kv.key)
        })
        .collect();
    v.sort();
    v
}

fn origin_attrs(server: &HyperServer) -> Vec<String> {
    vec![
        "server.address=127.0.0.1".to_owned(),
        format!("server.port={}", server.addr().port()),
        "url.scheme=http".to_owned(),
    ]
}

fn with(mut base: Vec<String>, more: &[&str]) -> Vec<String> {
    base.extend(more.iter().map(|s| (*s).to_owned()));
    base.sort();
    base
}

async fn the_instruments_say_what_metrics_say<R: Adapter>() {
    let (provider, exporter) = sdk();
    let first = HyperServer::start(Options::default());
    let second = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    client.register_metrics(&provider.meter("muxpool"));
    // A second registration changes nothing.
    client.register_metrics(&provider.meter("muxpool"));
    for _ in 0..5 {
        assert_eq!(get_text(&client, first.url("/")).await, "hello");
    }
    for _ in 0..2 {
        assert_eq!(get_text(&client, second.url("/")).await, "hello");
    }
    // A server error, and a method the conventions do not name.
    for (method, path, status) in [("POST", "/status/503", 503), ("PURGE", "/method", 200)] {
        let request = http::Request::builder()
            .method(method)
            .uri(second.url(path))
            .body(muxpool::Body::empty())
            .unwrap();
        let response = client.send(request).await.unwrap();
        assert_eq!(response.status(), status);
        response.into_body().bytes().await.unwrap();
    }
    // One request that fails: its origin is gone.
    let gone = HyperServer::start(Options::default());
    let gone_attrs = origin_attrs(&gone);
    let url = gone.url("/");
    drop(gone);
    let mut request = http::Request::get(&url)
        .body(muxpool::Body::empty())
        .unwrap();
    request
        .extensions_mut()
        .insert(RequestTimeout(Duration::from_millis(300)));
    let error = client.send(request).await.unwrap_err();
    assert_quiescent(&client).await;

    let metrics = collect(&provider, &exporter);
    let snapshot = client.metrics();

    let duration = &metrics["http.client.request.duration"];
    assert_eq!(duration.unit, "s");
    let mut points = duration.histograms.clone();
    points.sort_by(|a, b| a.0.cmp(&b.0));
    let answered = [
        "http.request.method=GET",
        "http.response.status_code=200",
        "network.protocol.version=1.1",
    ];
    let error_type = format!("error.type={}", error_kind_name(error.kind()));
    let mut expected = vec![
        (with(origin_attrs(&first), &answered), 5),
        (with(origin_attrs(&second), &answered), 2),
        (
            with(
                origin_attrs(&second),
                &[
                    "http.request.method=POST",
                    "http.response.status_code=503",
                    "network.protocol.version=1.1",
                    "error.type=503",
                ],
            ),
            1,
        ),
        (
            with(
                origin_attrs(&second),
                &[
                    "http.request.method=_OTHER",
                    "http.response.status_code=200",
                    "network.protocol.version=1.1",
                ],
            ),
            1,
        ),
        (
            with(gone_attrs, &["http.request.method=GET", &error_type]),
            1,
        ),
    ];
    expected.sort();
    let counts: Vec<_> = points.iter().map(|(a, n, _)| (a.clone(), *n)).collect();
    assert_eq!(counts, expected, "{points:#?}");
    assert!(points.iter().all(|(_, _, sum)| *sum > 0.0));
    let total: u64 = points.iter().map(|(_, n, _)| n).sum();
    assert_eq!(total, snapshot.latencies.request.count());

    let open = &metrics["http.client.open_connections"];
    assert_eq!(open.unit, "{connection}");
    let open = &open.sums;
    for server in [&first, &second] {
        let stats = snapshot
            .origins
            .iter()
            .find(|o| o.key.port() == server.addr().port())
            .unwrap()
            .stats;
        let of = |state: &str| {
            let want = with(
                origin_attrs(server),
                &[&format!("http.connection.state={state}")],
            );
            open.iter()
                .find(|(a, _)| *a == want)
                .unwrap_or_else(|| panic!("no {want:?} in {open:#?}"))
                .1
        };
        assert_eq!(of("idle"), i64::from(stats.idle));
        assert_eq!(of("idle"), 1);
        assert_eq!(of("active"), i64::from(stats.busy + stats.draining));
    }

    let active = &metrics["http.client.active_requests"];
    assert_eq!(active.unit, "{request}");
    let active = &active.sums;
    assert!(active.iter().any(|(a, _)| *a == origin_attrs(&first)));
    assert!(active.iter().all(|(_, n)| *n == 0), "{active:#?}");
    let lived = |metrics: &BTreeMap<String, Exported>| {
        metrics
            .get("http.client.connection.duration")
            .map_or(0, |d| d.histograms.iter().map(|(_, n, _)| n).sum::<u64>())
    };
    assert_eq!(lived(&metrics), 0, "no connection has gone yet");

    // The shutdown closes the two idle connections: each records how long
    // it lived, under its origin and protocol version.
    client.shutdown().await;
    let metrics = collect(&provider, &exporter);
    let durations = &metrics["http.client.connection.duration"];
    assert_eq!(durations.unit, "s");
    let mut points: Vec<_> = durations
        .histograms
        .iter()
        .map(|(a, n, _)| (a.clone(), *n))
        .collect();
    points.sort();
    let mut expected: Vec<_> = [&first, &second]
        .into_iter()
        .map(|server| {
            (
                with(origin_attrs(server), &["network.protocol.version=1.1"]),
                1,
            )
        })
        .collect();
    expected.sort();
    assert_eq!(points, expected, "{:#?}", durations.histograms);
    assert!(durations.histograms.iter().all(|(_, _, sum)| *sum > 0.0));
    assert_eq!(
        lived(&metrics),
        client.metrics().latencies.connection.count()
    );

    // Once the client is gone, the observable instruments report nothing
    // and hold nothing of it.
    drop(client);
    let metrics = collect(&provider, &exporter);
    if let Some(open) = metrics.get("http.client.open_connections") {
        assert!(open.sums.iter().all(|(_, n)| *n == 0), "{:#?}", open.sums);
    }
    provider.shutdown().unwrap();
}

/// `error.type` as the client names an error kind.
fn error_kind_name(kind: muxpool::ErrorKind) -> &'static str {
    match kind {
        muxpool::ErrorKind::Timeout => "timeout",
        muxpool::ErrorKind::Connect => "connect",
        muxpool::ErrorKind::CircuitOpen => "circuit_open",
        other => panic!("unexpected failure: {other:?}"),
    }
}

support::conformance!(the_instruments_say_what_metrics_say);
