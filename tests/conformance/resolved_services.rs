//! Services whose endpoints are the addresses a name resolves to
//! (`Service::resolved`), against three in-process servers on one port of
//! 127.0.0.1, 127.0.0.2 and 127.0.0.3, and a resolver that answers the
//! made-up name `api.test` with what the test says:
//!
//! - requests spread over the addresses, and a slow one gets a small share;
//! - once the answer's TTL ends, an address that vanished takes no new
//!   request (none in flight fails) and its connections close, and one that
//!   appeared takes requests;
//! - over TLS, every address is verified against the name, and a name the
//!   certificate does not hold fails with `ErrorKind::Tls`, naming the
//!   service;
//! - a name of one address is a service of one endpoint on one connection,
//!   and a name not configured stays an ordinary origin.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{
    self, assert_quiescent, get_within, load, load_all, spawn, wait_for, Adapter,
};
use muxpool::client::Client;
use muxpool::resolve::Resolved;
use muxpool::{ErrorKind, Metrics, Service};
use muxpool_testkit::certs::Ca;
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};

support::conformance!(
    requests_spread_and_a_slow_address_gets_a_small_share,
    addresses_come_and_go_as_the_answer_changes,
    each_address_is_verified_against_the_name,
    a_name_of_one_address_is_one_endpoint,
);

/// What the test's resolver answers for every name: these addresses (with
/// the port asked for) and this TTL.
type Answer = Arc<Mutex<(Vec<Ipv4Addr>, Option<Duration>)>>;

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// A resolver answering what `answer` holds.
fn resolver(answer: &Answer) -> impl muxpool::Resolve {
    let answer = Arc::clone(answer);
    move |_: &str, port: u16| {
        let (ips, ttl) = answer.lock().unwrap().clone();
        let addrs = ips
            .into_iter()
            .map(|ip| SocketAddr::from((ip, port)))
            .collect();
        async move { Ok::<_, io::Error>(Resolved { addrs, ttl }) }
    }
}

/// Servers on 127.0.0.1, .2 and .3 (and on as many more of `lasts`) on one
/// port, the first with `options(1)`, and so on.
fn servers(lasts: &[u8], options: impl Fn(u8) -> Options) -> Vec<HyperServer> {
    let mut port = 0;
    lasts
        .iter()
        .map(|&last| {
            let server = HyperServer::start(Options {
                addr: Some(SocketAddr::from((ip(last), port))),
                protocol: Protocol::Http1,
                ..options(last)
            });
            port = server.port();
            server
        })
        .collect()
}

/// The service's figures for the endpoint at `addr`, if it has one.
fn endpoint(metrics: &Metrics, addr: SocketAddr) -> Option<muxpool::metrics::EndpointMetrics> {
    metrics.services[0].endpoint(addr).cloned()
}

/// Sends GETs to `url` one after another until `done` holds of the
/// client's figures (the background lookup a stale answer starts needs a
/// request to start it).
async fn send_until<R: Adapter>(
    client: &Client<R>,
    url: &str,
    what: &str,
    done: impl Fn(&Metrics) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done(&client.metrics()) {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out until {what}"
        );
        let response = client.send(get_within(url, Duration::from_secs(5))).await;
        response
            .expect("a request")
            .into_body()
            .bytes()
            .await
            .expect("a body");
        support::sleep(Duration::from_millis(10)).await;
    }
}

/// The three addresses of `api.test` take the requests, each as its speed
/// allows: the one answering 40 ms late gets a small share.
async fn requests_spread_and_a_slow_address_gets_a_small_share<R: Adapter>() {
    let servers = servers(&[1, 2, 3], |last| Options {
        delay: (last == 2).then_some(Duration::from_millis(40)),
        ..Options::default()
    });
    let answer: Answer = Arc::new(Mutex::new((vec![ip(1), ip(2), ip(3)], None)));
    let authority = format!("http://api.test:{}", servers[0].port());
    let client = Client::<R>::builder()
        .resolver(resolver(&answer))
        .service(Service::resolved(&authority).expect("a name"))
        .seed(1)
        .build()
        .expect("a valid client");
    load_all(&client, &format!("{authority}/"), 8, 50).await;

    let served: Vec<usize> = servers.iter().map(HyperServer::requests).collect();
    let total: usize = served.iter().sum();
    assert_eq!(total, 400, "every request reached one address, once");
    assert!(
        served[1] * 100 < total * 15,
        "the slow one served {served:?}"
    );
    assert!(served[0] > 100 && served[2] > 100, "{served:?}");

    // The service and its endpoints, as an explicit one's.
    let metrics = client.metrics();
    let service = &metrics.services[0];
    assert_eq!(service.key.to_string(), authority);
    assert_eq!(service.endpoints.len(), 3);
    assert_eq!(service.latencies.request.count(), 400);
    for server in &servers {
        let view = endpoint(&metrics, server.addr()).expect("an endpoint per address");
        assert_eq!(view.requests, server.requests() as u64);
        assert_eq!(
            view.key.to_string(),
            format!("{authority} at {}", server.addr())
        );
    }
    assert_quiescent(&client).await;
}

/// `api.test` answers three addresses for 200 ms, then two: once the TTL
/// ends, 127.0.0.2 takes no new request, none in flight fails, and its
/// connection closes as it idles out. Then a fourth address appears and
/// takes requests.
async fn addresses_come_and_go_as_the_answer_changes<R: Adapter>() {
    let servers = servers(&[1, 2, 3, 4], |_| Options::default());
    let ttl = Some(Duration::from_millis(200));
    let answer: Answer = Arc::new(Mutex::new((vec![ip(1), ip(2), ip(3)], ttl)));
    let authority = format!("http://api.test:{}", servers[0].port());
    let url = format!("{authority}/");
    let client = Client::<R>::builder()
        .resolver(resolver(&answer))
        .service(Service::resolved(&authority).expect("a name"))
        .idle_timeout(Some(Duration::from_millis(500)))
        .build()
        .expect("a valid client");
    load_all(&client, &url, 4, 20).await;
    for server in &servers[..3] {
        assert!(server.requests() > 0, "{} served none", server.addr());
    }
    assert_eq!(servers[3].requests(), 0, "not in the answer yet");

    // The answer loses 127.0.0.2 under load: nothing fails, and once the
    // TTL is over it leaves the service.
    let stop = Arc::new(AtomicBool::new(false));
    let running = {
        let (client, stop, url) = (client.clone(), Arc::clone(&stop), url.clone());
        spawn::<R, _>(
            async move { load(&client, &url, 4, None, &stop, Duration::from_secs(5)).await },
        )
    };
    support::sleep(Duration::from_millis(50)).await;
    answer.lock().unwrap().0 = vec![ip(1), ip(3)];
    let removed = servers[1].addr();
    wait_for(
        Duration::from_secs(10),
        "127.0.0.2 leaves the service",
        || endpoint(&client.metrics(), removed).is_none(),
    )
    .await;
    support::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::SeqCst);
    let failures = running.await.expect("the load");
    assert!(failures.is_empty(), "{failures:?}");
    let before = servers[1].requests();
    load_all(&client, &url, 4, 20).await;
    assert_eq!(
        servers[1].requests(),
        before,
        "a removed address took requests"
    );
    wait_for(
        Duration::from_secs(10),
        "127.0.0.2's connections close",
        || servers[1].open_connections() == 0,
    )
    .await;

    // 127.0.0.4 appears, and takes its part.
    answer.lock().unwrap().0 = vec![ip(1), ip(3), ip(4)];
    let added = servers[3].addr();
    send_until(&client, &url, "127.0.0.4 joins", |m| {
        endpoint(m, added).is_some()
    })
    .await;
    load_all(&client, &url, 4, 30).await;
    assert!(servers[3].requests() > 0, "the new address served none");
    assert_eq!(servers[1].requests(), before);
    assert_eq!(client.metrics().services[0].endpoints.len(), 3);
    assert_quiescent(&client).await;
}

/// Over TLS, each address presents a certificate for `api.test` only:
/// every request succeeds, on every address. Another name for the same
/// addresses fails verification, and the error names that service.
async fn each_address_is_verified_against_the_name<R: Adapter>() {
    let ca = Ca::new("resolved services test CA");
    let leaf = ca.leaf(&["api.test"]);
    let tls = muxpool_testkit::certs::server_config(&leaf, &[b"http/1.1"]);
    let servers = servers(&[1, 2, 3], |_| Options {
        tls: Some(Arc::clone(&tls)),
        ..Options::default()
    });
    let answer: Answer = Arc::new(Mutex::new((vec![ip(1), ip(2), ip(3)], None)));
    let port = servers[0].port();
    let client = Client::<R>::builder()
        .tls(support::tls_trusting(&ca))
        .resolver(resolver(&answer))
        .service(Service::resolved(&format!("https://api.test:{port}")).expect("a name"))
        .service(Service::resolved(&format!("https://other.test:{port}")).expect("a name"))
        .build()
        .expect("a valid client");
    load_all(&client, &format!("https://api.test:{port}/"), 6, 20).await;
    for server in &servers {
        assert!(server.requests() > 0, "{} served none", server.addr());
    }

    let error = client
        .send(get_within(
            format!("https://other.test:{port}/"),
            Duration::from_secs(5),
        ))
        .await
        .expect_err("a certificate for another name");
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:#}");
    let origin = error.origin().expect("the error names the service");
    assert_eq!(origin.host(), "other.test", "{error:#}");
    assert_quiescent(&client).await;
}

/// A resolved name of one address is a service of one endpoint, its
/// requests on one connection as an ordinary origin's; a name the client
/// was not told of, resolving to the same server, is an ordinary origin.
async fn a_name_of_one_address_is_one_endpoint<R: Adapter>() {
    let server = HyperServer::start(Options {
        addr: Some(SocketAddr::new(IpAddr::V4(ip(1)), 0)),
        protocol: Protocol::Http1,
        ..Options::default()
    });
    let answer: Answer = Arc::new(Mutex::new((vec![ip(1)], None)));
    let port = server.port();
    let client = Client::<R>::builder()
        .resolver(resolver(&answer))
        .service(Service::resolved(&format!("http://api.test:{port}")).expect("a name"))
        .build()
        .expect("a valid client");
    for _ in 0..5 {
        let url = format!("http://api.test:{port}/");
        let response = client.send(get_within(&url, Duration::from_secs(5))).await;
        assert_eq!(response.expect("an answer").status(), 200);
    }
    assert_eq!(server.accepted(), 1, "one connection, reused");
    let metrics = client.metrics();
    assert_eq!(metrics.services.len(), 1);
    assert_eq!(metrics.services[0].endpoints.len(), 1);
    assert_eq!(
        endpoint(&metrics, server.addr())
            .expect("its endpoint")
            .requests,
        5
    );

    let url = format!("http://plain.test:{port}/");
    let response = client.send(get_within(&url, Duration::from_secs(5))).await;
    assert_eq!(response.expect("an answer").status(), 200);
    let metrics = client.metrics();
    assert_eq!(metrics.services.len(), 1, "no service of its own");
    assert!(
        metrics
            .origins
            .iter()
            .any(|o| o.key.to_string() == format!("http://plain.test:{port}")),
        "{:?}",
        metrics
            .origins
            .iter()
            .map(|o| o.key.to_string())
            .collect::<Vec<_>>()
    );
    assert_quiescent(&client).await;
}
