//! What the pool did, as a Prometheus server would scrape it: a short
//! workload against two origins in this process, then the client's metrics
//! in Prometheus's text format on stdout.
//!
//! ```text
//! cargo run --release --example metrics
//! ```
//!
//! One origin speaks HTTP/1.1 in plain text and closes each connection after
//! 100 requests; the other speaks HTTP/2 over TLS (a test CA the client
//! trusts). 16 tasks send 2,000 requests to each, through one pooled
//! `Client` limited to 4 connections per origin, so the exposition shows
//! connects, reuse, waits for a connection, closes by the server, a TLS
//! handshake, and the latency histograms of both origins. `promtool check
//! metrics` accepts the output (the conformance suite checks that).

use std::time::Duration;

use muxpool::tls::{Alpn, CaCertificates, Roots, TlsConfig};
use muxpool::{Body, Client};
use muxpool_testkit::certs::{self, Ca};
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};

const TASKS: usize = 16;
const REQUESTS: usize = 2_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let plain = HyperServer::start(Options {
        protocol: Protocol::Http1,
        close_after_requests: Some(100),
        ..Options::default()
    });
    let ca = Ca::new("muxpool example CA");
    let secure = HyperServer::start(Options {
        tls: Some(certs::server_config(
            &ca.leaf(&["localhost", "127.0.0.1"]),
            &[b"h2"],
        )),
        protocol: Protocol::Http2,
        ..Options::default()
    });
    let tls = TlsConfig::builder()
        .roots(Roots::CustomOnly)
        .add_ca(CaCertificates::from_pem(ca.pem())?)
        .alpn(Alpn::Http2Only)
        .build()?;
    let client = Client::builder()
        .tls(tls)
        .max_connections_per_key(4)
        .timeout(Duration::from_secs(10))
        .build()?;

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let client = client.clone();
        let urls = [plain.url("/"), secure.url("/")];
        tasks.push(tokio::spawn(async move {
            for i in (task..2 * REQUESTS).step_by(TASKS) {
                let request = http::Request::get(&urls[i % 2]).body(Body::empty())?;
                let body = client.send(request).await?.into_body().bytes().await?;
                if &body[..] != b"hello" {
                    return Err(format!("unexpected body: {body:?}").into());
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await??;
    }

    let metrics = client.metrics();
    assert_eq!(metrics.latencies.request.count(), 2 * REQUESTS as u64);
    print!("{}", metrics.prometheus());
    client.shutdown().await;
    Ok(())
}
