//! muxpool's main job, on loopback with no setup: an HTTP/1.1 server in this
//! process, and a load driven through one pooled `Client`.
//!
//! ```text
//! cargo run --release --example loopback
//! ```
//!
//! 64 tasks send 20,000 requests in all over a pool limited to 16 connections to
//! the origin; the server closes every connection after 1,000 requests, as
//! servers with `keepalive_requests` do. The pool queues what the limit does not
//! admit, reuses connections, replaces the ones the server closes, and every
//! request succeeds. Then the client shuts down gracefully.

use std::time::{Duration, Instant};

use muxpool::{Body, Client};
use muxpool_testkit::hyper_server::{HyperServer, Options};

const TASKS: usize = 64;
const REQUESTS: usize = 20_000;
const PER_ORIGIN: u32 = 16;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
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
            let mut latencies = Vec::new();
            for _ in (task..REQUESTS).step_by(TASKS) {
                let sent = Instant::now();
                let request = http::Request::get(&url).body(Body::empty())?;
                let response = client.send(request).await?;
                let status = response.status();
                let body = response.into_body().bytes().await?;
                if status != 200 || &body[..] != b"hello" {
                    return Err(format!("unexpected response: {status} {body:?}").into());
                }
                latencies.push(sent.elapsed());
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(REQUESTS);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let stats = client.stats();

    println!("requests      {}", latencies.len());
    println!(
        "throughput    {:.0} req/s",
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!("latency p50   {:?}", latencies[latencies.len() / 2]);
    println!("latency p99   {:?}", latencies[latencies.len() * 99 / 100]);
    println!(
        "connections   {} opened by the client, {} accepted by the server",
        stats.connects,
        server.accepted()
    );
    println!(
        "reuse         {:.1}% of grants on a reused connection",
        100.0 * stats.reused_grants as f64 / stats.grants.max(1) as f64
    );
    println!(
        "waited        {} grants waited for a connection, {:?} in all",
        stats.waited_grants, stats.wait_time
    );
    println!(
        "pool now      {} open, {} idle, {} busy",
        stats.open, stats.idle, stats.busy
    );

    client.shutdown().await;
    let stats = client.stats();
    println!(
        "after shutdown: {} open, {} leases",
        stats.open, stats.leases
    );
    assert_eq!(latencies.len(), REQUESTS);
    assert!(stats.open == 0 && stats.leases == 0);
    Ok(())
}
