//! The resolver hook: a name the system does not know, led to a loopback
//! server by the client's resolver, over plain HTTP and over TLS verified
//! against the name (not the address); answers kept by the cache in front
//! of it; and a resolver's failure or empty answer as a connect error.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::{self, assert_quiescent, get, get_text, tls_trusting, Adapter};
use muxpool::client::Client;
use muxpool::ErrorKind;
use muxpool_testkit::certs::{self, Ca};
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};

/// A resolver's answer, ready at once.
type Answer = std::future::Ready<io::Result<Vec<SocketAddr>>>;

/// A resolver that sends `api.internal` to this machine and counts its
/// lookups; any other name has no address.
fn to_loopback() -> (
    Arc<AtomicUsize>,
    impl Fn(&str, u16) -> Answer + Send + Sync + 'static,
) {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let resolver = move |name: &str, port: u16| {
        counter.fetch_add(1, Ordering::Relaxed);
        std::future::ready(Ok(match name {
            "api.internal" => vec![SocketAddr::from(([127, 0, 0, 1], port))],
            _ => Vec::new(),
        }))
    };
    (asked, resolver)
}

async fn a_name_goes_where_the_resolver_says<R: Adapter>() {
    // Each connection is closed after its response: every request connects.
    let server = HyperServer::start(Options {
        keep_alive: false,
        ..Options::default()
    });
    let (asked, resolver) = to_loopback();
    let client = Client::<R>::builder().resolver(resolver).build().unwrap();
    let url = format!("http://api.internal:{}/", server.port());
    for _ in 0..5 {
        assert_eq!(get_text(&client, &url).await, "hello");
    }
    assert_eq!(server.accepted(), 5);
    assert_eq!(
        asked.load(Ordering::Relaxed),
        1,
        "the cache answers after the first"
    );
    // An address is never resolved.
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(asked.load(Ordering::Relaxed), 1);
    assert_quiescent(&client).await;
}

async fn tls_is_verified_against_the_name_not_the_address<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let named = HyperServer::start(Options {
        tls: Some(certs::server_config(
            &ca.leaf(&["api.internal"]),
            &[b"http/1.1"],
        )),
        protocol: Protocol::Http1,
        ..Options::default()
    });
    let (_, resolver) = to_loopback();
    let client = Client::<R>::builder()
        .tls(tls_trusting(&ca))
        .resolver(resolver)
        .build()
        .unwrap();
    let url = format!("https://api.internal:{}/", named.port());
    assert_eq!(get_text(&client, &url).await, "hello");
    // A certificate for the address alone does not do for the name.
    let addressed = HyperServer::start(Options {
        tls: Some(certs::server_config(
            &ca.leaf(&["127.0.0.1"]),
            &[b"http/1.1"],
        )),
        protocol: Protocol::Http1,
        ..Options::default()
    });
    let url = format!("https://api.internal:{}/", addressed.port());
    let error = get(&client, &url).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:#}");
}

async fn a_resolver_failure_is_a_connect_error<R: Adapter>() {
    let failing = |_: &str, _: u16| {
        std::future::ready(Err::<Vec<SocketAddr>, _>(io::Error::other(
            "the registry is down",
        )))
    };
    let client = Client::<R>::builder().resolver(failing).build().unwrap();
    let error = get(&client, "http://api.internal:8080/").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error:#}");
    let text = format!("{error:#}");
    assert!(text.contains("name resolution failed"), "{text}");
    assert!(text.contains("the registry is down"), "{text}");
    assert!(text.contains("http://api.internal:8080"), "{text}");

    let (asked, resolver) = to_loopback();
    let client = Client::<R>::builder().resolver(resolver).build().unwrap();
    for _ in 0..2 {
        let error = get(&client, "http://nowhere.internal:8080/")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Connect, "{error:#}");
        assert!(error.to_string().contains("no address"), "{error}");
    }
    // An empty answer is not kept.
    assert!(asked.load(Ordering::Relaxed) >= 2);
}

support::conformance!(
    a_name_goes_where_the_resolver_says,
    tls_is_verified_against_the_name_not_the_address,
    a_resolver_failure_is_a_connect_error,
);
