//! muxpool next to other rustls code in one binary.
//!
//! This binary links rustls with its default features, as an application
//! using reqwest or hyper-rustls does. muxpool must leave rustls's
//! process-wide state alone: it enables no provider feature beyond rustls's
//! own default (a second one makes `rustls::ClientConfig::builder()` panic,
//! unable to choose) and installs no process default, yet uses the one the
//! application installed.
//!
//! It holds one test on purpose: a process default, once installed, stays for
//! the life of the process, so the steps must run in this order and alone.

use std::sync::Arc;

use muxpool::tls::{Alpn, CaCertificates, Roots, TlsConfig};
use muxpool::{Body, Client};
use muxpool_testkit::certs::{self, Ca};
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};
use rustls::crypto::CryptoProvider;

fn tls_trusting(ca: &Ca) -> TlsConfig {
    TlsConfig::builder()
        .roots(Roots::CustomOnly)
        .add_ca(CaCertificates::from_pem(ca.pem()).expect("the test CA parses"))
        .alpn(Alpn::Http1AndHttp2)
        .build()
        .expect("a TLS configuration with no process default installed")
}

async fn get_text(client: &Client, url: String) -> String {
    let request = http::Request::get(url).body(Body::empty()).unwrap();
    let response = client.send(request).await.expect("an https request");
    response.into_body().text().await.unwrap()
}

#[tokio::test]
async fn muxpool_leaves_the_process_crypto_provider_to_the_application() {
    let ca = Ca::new("muxpool coexistence CA");
    let server = HyperServer::start(Options {
        tls: Some(certs::server_config(
            &ca.leaf(&["127.0.0.1"]),
            &[b"h2", b"http/1.1"],
        )),
        protocol: Protocol::Auto,
        ..Options::default()
    });

    // muxpool works over TLS with no process default installed...
    let client = Client::builder()
        .tls(tls_trusting(&ca))
        .build()
        .expect("a client");
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    // ...and installs none behind the application's back.
    assert!(
        CryptoProvider::get_default().is_none(),
        "muxpool installed a process default crypto provider"
    );

    // rustls's own builder, as other crates call it, still finds exactly one
    // provider compiled in; it installs that one as the process default.
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let installed = CryptoProvider::get_default().expect("rustls installed its default");
    assert!(Arc::ptr_eq(config.crypto_provider(), installed));

    // A configuration built from now on uses the process default.
    let tls = tls_trusting(&ca);
    assert!(
        Arc::ptr_eq(tls.client_config().crypto_provider(), installed),
        "muxpool ignored the process default crypto provider"
    );
    let client = Client::builder().tls(tls).build().expect("a client");
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
}
