//! muxpool's main job, on loopback with no setup: an HTTP/1.1 server in this
//! process, and a load driven through one pooled `Client`.
//!
//! ```text
//! cargo run --release --example loopback
//! MUXPOOL_TRACE=1 cargo run --release --example loopback   # with muxpool's tracing on stderr
//! ```
//!
//! 64 tasks send 20,000 requests in all over a pool limited to 16 connections to
//! the origin; the server closes every connection after 1,000 requests, as
//! servers with `keepalive_requests` do. The pool queues what the limit does not
//! admit, reuses connections, replaces the ones the server closes, and every
//! request succeeds. Then it prints what the pool did, from
//! `Client::metrics()`: per origin, the requests, reuse and connections, and
//! each latency the pool records as quantiles estimated from its histogram
//! (`Histogram::quantile`); and the client shuts down gracefully.

use std::time::{Duration, Instant};

use muxpool::metrics::{Histogram, Latencies};
use muxpool::{Body, Client};
use muxpool_testkit::hyper_server::{HyperServer, Options};

const TASKS: usize = 64;
const REQUESTS: usize = 20_000;
const PER_ORIGIN: u32 = 16;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // MUXPOOL_TRACE=1 prints muxpool's spans and events (DEBUG) to stderr.
    if std::env::var_os("MUXPOOL_TRACE").is_some() {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .init();
    }
    let server = HyperServer::start(Options {
        close_after_requests: Some(1_000),
        ..Options::default()
    });
    let client = Client::builder()
        .max_connections_per_key(PER_ORIGIN)
        .timeout(Duration::from_secs(10))
        .build()?;
    println!(
        "server: http://{}  (closes each connection after 1000 requests)",
        server.addr()
    );
    println!("client: {TASKS} tasks, {REQUESTS} requests, at most {PER_ORIGIN} connections\n");

    let url = server.url("/");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            for _ in (task..REQUESTS).step_by(TASKS) {
                let request = http::Request::get(&url).body(Body::empty())?;
                let response = client.send(request).await?;
                let status = response.status();
                let body = response.into_body().bytes().await?;
                if status != 200 || &body[..] != b"hello" {
                    return Err(format!("unexpected response: {status} {body:?}").into());
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed();

    let metrics = client.metrics();
    println!(
        "throughput    {:.0} req/s",
        REQUESTS as f64 / elapsed.as_secs_f64()
    );
    for origin in &metrics.origins {
        let (stats, latencies) = (&origin.stats, &origin.latencies);
        println!("\norigin        {}", origin.key);
        println!("requests      {}", latencies.request.count());
        println!(
            "reuse         {:.1}% of grants on a reused connection",
            100.0 * stats.reuse_ratio()
        );
        println!(
            "connections   {} opened by the client, {} accepted by the server",
            stats.connects,
            server.accepted()
        );
        println!(
            "waited        {} grants waited for a connection",
            stats.waited_grants
        );
        print_latencies(latencies);
    }
    let stats = metrics.stats;
    println!(
        "\npool now      {} open, {} idle, {} busy",
        stats.open, stats.idle, stats.busy
    );

    client.shutdown().await;
    let stats = client.stats();
    println!(
        "after shutdown: {} open, {} leases",
        stats.open, stats.leases
    );
    assert_eq!(metrics.latencies.request.count(), REQUESTS as u64);
    assert!(stats.open == 0 && stats.leases == 0);
    Ok(())
}

/// Each latency's count and its quantiles, estimated from its histogram's
/// buckets (so within 2× of the true figure; `max` is the top bucket's
/// bound).
fn print_latencies(l: &Latencies) {
    println!(
        "latency         {:>10} {:>9} {:>9} {:>9}",
        "count", "p50", "p99", "max"
    );
    let rows: [(&str, &Histogram); 6] = [
        ("connection wait", &l.wait),
        ("connect", &l.connect),
        ("TLS handshake", &l.tls_handshake),
        ("response head", &l.response_head),
        ("request", &l.request),
        ("connection life", &l.connection),
    ];
    for (name, h) in rows {
        let q = |q| h.quantile(q).map_or_else(|| "-".to_owned(), short);
        println!(
            "  {name:<16} {:>7} {:>9} {:>9} {:>9}",
            h.count(),
            q(0.5),
            q(0.99),
            q(1.0)
        );
    }
}

/// A duration in three significant figures or so: `850µs`, `1.41ms`, `2.50s`.
fn short(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.0}µs")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}
