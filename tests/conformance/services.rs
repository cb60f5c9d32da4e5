//! Services of many endpoints against real servers on loopback: three
//! in-process servers on 127.0.0.1, 127.0.0.2 and 127.0.0.3 behind one
//! service authority that resolves nowhere (`api.test`), so every request
//! reaches a server only through the balancer.
//!
//! - a slow endpoint gets a small share of the traffic;
//! - an endpoint killed under load loses no request (each is a GET with
//!   time left), is ejected, and once started again on the same address is
//!   probed, readmitted and takes traffic again;
//! - over TLS, every endpoint is verified against the service's name, which
//!   its certificate names, not the address the connection went to;
//! - the real nginx, on 127.0.0.1, is one endpoint beside two in-process
//!   servers (skipped without nginx, unless `MUXPOOL_REQUIRE_NGINX` is set).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{
    self, assert_quiescent, get_within, load, load_all, spawn, wait_for, Adapter,
};
use muxpool::client::Client;
use muxpool::{Backoff, Balance, EndpointState, ErrorKind, Metrics, Service};
use muxpool_testkit::certs::Ca;
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};

support::conformance!(
    a_slow_endpoint_gets_a_small_share,
    a_killed_endpoint_is_ejected_and_comes_back,
    each_endpoint_is_verified_against_the_service_name,
    nginx_is_one_endpoint_among_three,
);

/// The loopback addresses the three endpoints listen on.
const HOSTS: [[u8; 4]; 3] = [[127, 0, 0, 1], [127, 0, 0, 2], [127, 0, 0, 3]];

/// A server on `ip` and an ephemeral port, with `options`.
fn server_on(ip: [u8; 4], options: Options) -> HyperServer {
    server_at(SocketAddr::from((ip, 0)), options)
}

/// A server on `addr`, with `options`.
fn server_at(addr: SocketAddr, options: Options) -> HyperServer {
    HyperServer::start(Options {
        addr: Some(addr),
        protocol: Protocol::Http1,
        ..options
    })
}

/// The service `authority` of the servers' addresses, with `balance`.
fn service_of(authority: &str, servers: &[&HyperServer], balance: Balance) -> Service {
    servers
        .iter()
        .fold(
            Service::new(authority).expect("a valid authority"),
            |s, server| s.endpoint(server.addr()),
        )
        .balance(balance)
}

/// The service's figures for the endpoint at `addr`.
fn endpoint(metrics: &Metrics, addr: SocketAddr) -> muxpool::metrics::EndpointMetrics {
    metrics.services[0]
        .endpoint(addr)
        .cloned()
        .unwrap_or_else(|| panic!("no endpoint {addr} in {:?}", metrics.services))
}

/// One endpoint answers 40 ms late: the balancer's latency estimate of it
/// stays high, and the other two take nearly everything.
async fn a_slow_endpoint_gets_a_small_share<R: Adapter>() {
    let fast_a = server_on(HOSTS[0], Options::default());
    let slow = server_on(
        HOSTS[1],
        Options {
            delay: Some(Duration::from_millis(40)),
            ..Options::default()
        },
    );
    let fast_b = server_on(HOSTS[2], Options::default());
    let service = service_of(
        "http://api.test",
        &[&fast_a, &slow, &fast_b],
        Balance::default(),
    );
    let client = Client::<R>::builder()
        .service(service)
        .seed(1)
        .build()
        .expect("a valid client");
    load_all(&client, "http://api.test/", 8, 50).await;

    let total = fast_a.requests() + slow.requests() + fast_b.requests();
    assert_eq!(total, 400, "every request reached one endpoint, once");
    let share = slow.requests() as f64 / total as f64;
    assert!(
        share < 0.15,
        "the slow endpoint served {} of {total}",
        slow.requests()
    );
    for fast in [&fast_a, &fast_b] {
        assert!(fast.requests() > 100, "{} of {total}", fast.requests());
    }

    // The client's view agrees with the servers'.
    let metrics = client.metrics();
    let service = &metrics.services[0];
    assert_eq!(service.key.to_string(), "http://api.test:80");
    assert_eq!(service.latencies.request.count(), 400);
    let slow_view = endpoint(&metrics, slow.addr());
    assert_eq!(slow_view.requests, slow.requests() as u64);
    assert!((service.share(&slow_view) - share).abs() < 1e-9);
    let fast_view = endpoint(&metrics, fast_a.addr());
    assert!(
        slow_view.latency > fast_view.latency,
        "{slow_view:?} against {fast_view:?}"
    );
    assert!(matches!(slow_view.state, EndpointState::Healthy { .. }));
    // Each endpoint is an origin of its own, with its connections.
    let origin = metrics
        .origin(&fast_view.key)
        .expect("the endpoint's origin");
    assert_eq!(
        origin.key.to_string(),
        format!("http://api.test:80 at {}", fast_a.addr())
    );
    assert_eq!(origin.stats.open, fast_view.open);
    assert!(origin.latencies.connect.count() >= 1);
    let text = metrics.prometheus();
    assert!(
        text.contains(&format!(
            "muxpool_endpoint_requests_total{{service=\"http://api.test:80\",endpoint=\"{}\"}} {}",
            slow.addr(),
            slow.requests()
        )),
        "{text}"
    );
    // The service's requests are its authority's series; the pool's
    // totals are still the sums.
    assert!(
        text.contains(
            "http_client_request_duration_seconds_count{origin=\"http://api.test:80\"} 400"
        ),
        "{text}"
    );
    crate::metrics::promtool_check(&text);
    assert_quiescent(&client).await;
}

/// Under a steady load, the endpoint on 127.0.0.2 is killed: its requests
/// in flight and those sent to it before it is ejected go to the others,
/// and none fails. Started again on the same address, it is probed once its
/// ejection ends, readmitted, and serves again.
async fn a_killed_endpoint_is_ejected_and_comes_back<R: Adapter>() {
    let first = server_on(HOSTS[0], Options::default());
    let victim = server_on(HOSTS[1], Options::default());
    let third = server_on(HOSTS[2], Options::default());
    let victim_addr = victim.addr();
    let mut balance = Balance::default();
    balance.outliers.base_ejection = Duration::from_millis(300);
    balance.outliers.max_ejection = Duration::from_secs(1);
    let service = service_of("http://api.test", &[&first, &victim, &third], balance);
    let client = Client::<R>::builder()
        .service(service)
        // Connects to the killed endpoint back off briefly: its probe, once
        // it is back, does not wait out a long pause.
        .backoff(Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ))
        .build()
        .expect("a valid client");
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let client = client.clone();
        let stop = Arc::clone(&stop);
        spawn::<R, _>(async move {
            load(
                &client,
                "http://api.test/",
                8,
                None,
                &stop,
                Duration::from_secs(10),
            )
            .await
        })
    };
    wait_for(Duration::from_secs(5), "the victim to serve", || {
        victim.requests() > 20
    })
    .await;
    drop(victim);

    wait_for(Duration::from_secs(10), "the victim's ejection", || {
        let view = endpoint(&client.metrics(), victim_addr);
        view.ejections >= 1
    })
    .await;
    let served = first.requests() + third.requests();
    wait_for(Duration::from_secs(5), "the others to serve on", || {
        first.requests() + third.requests() > served + 50
    })
    .await;

    let back = server_at(victim_addr, Options::default());
    assert_eq!(back.addr(), victim_addr);
    wait_for(Duration::from_secs(10), "the victim to serve again", || {
        back.requests() > 20
    })
    .await;
    let view = endpoint(&client.metrics(), victim_addr);
    assert!(
        matches!(view.state, EndpointState::Healthy { .. }),
        "{view:?}"
    );
    stop.store(true, Ordering::SeqCst);
    let failures = load.await.expect("the load");
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
    assert_quiescent(&client).await;
}

/// Over TLS, each endpoint presents a certificate for the service's name
/// only, not for its address: every request succeeds, on every endpoint.
/// The same endpoints under another name fail verification.
async fn each_endpoint_is_verified_against_the_service_name<R: Adapter>() {
    let ca = Ca::new("services test CA");
    let leaf = ca.leaf(&["api.test"]);
    let tls = muxpool_testkit::certs::server_config(&leaf, &[b"http/1.1"]);
    let servers: Vec<HyperServer> = HOSTS
        .iter()
        .map(|&ip| {
            server_on(
                ip,
                Options {
                    tls: Some(Arc::clone(&tls)),
                    ..Options::default()
                },
            )
        })
        .collect();
    let refs: Vec<&HyperServer> = servers.iter().collect();
    let client = Client::<R>::builder()
        .tls(support::tls_trusting(&ca))
        .service(service_of("https://api.test", &refs, Balance::default()))
        .service(service_of("https://other.test", &refs, Balance::default()))
        .build()
        .expect("a valid client");
    load_all(&client, "https://api.test/", 6, 20).await;
    for server in &servers {
        assert!(server.requests() > 0, "{} served none", server.addr());
    }

    let error = client
        .send(get_within("https://other.test/", Duration::from_secs(5)))
        .await
        .expect_err("a certificate for another name");
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:#}");
    assert_quiescent(&client).await;
}

/// nginx on 127.0.0.1 and two in-process servers on 127.0.0.2 and
/// 127.0.0.3 serve one service: each takes a part, and none fails.
async fn nginx_is_one_endpoint_among_three<R: Adapter>() {
    if !muxpool_testkit::nginx::available_or_skip("nginx_is_one_endpoint_among_three") {
        return;
    }
    let nginx = muxpool_testkit::nginx::Nginx::start(Default::default())
        .unwrap_or_else(|e| panic!("starting nginx: {e}"));
    let nginx_addr =
        SocketAddr::from((HOSTS[0], nginx.http_port().expect("nginx's plain listener")));
    let second = server_on(HOSTS[1], Options::default());
    let third = server_on(HOSTS[2], Options::default());
    let service = Service::new("http://api.test")
        .expect("a valid authority")
        .endpoint(nginx_addr)
        .endpoint(second.addr())
        .endpoint(third.addr());
    let client = Client::<R>::builder()
        .service(service)
        .build()
        .expect("a valid client");
    load_all(&client, "http://api.test/", 6, 50).await;
    let metrics = client.metrics();
    let by_nginx = endpoint(&metrics, nginx_addr).requests;
    assert_eq!(
        by_nginx + (second.requests() + third.requests()) as u64,
        300,
        "each request went to one endpoint"
    );
    for (name, served) in [
        ("nginx", by_nginx),
        ("the second", second.requests() as u64),
        ("the third", third.requests() as u64),
    ] {
        assert!(served > 0, "{name} served none of 300");
    }
    assert_quiescent(&client).await;
}
