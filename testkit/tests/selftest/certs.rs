//! Self-tests of the test certificates: real TLS handshakes on loopback (a
//! tokio-rustls client against a TLS [`HyperServer`]) that succeed for valid
//! leaves and fail for expired ones, the wrong host, an untrusted CA or a
//! missing client certificate.

use std::sync::Arc;

use muxpool_testkit::certs::{self, Ca, Leaf};
use muxpool_testkit::hyper_server::{HyperServer, Options};
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn serve(config: Arc<ServerConfig>) -> HyperServer {
    HyperServer::start(Options {
        tls: Some(config),
        ..Options::default()
    })
}

/// Handshakes with `server` as `name`, with `client`, sends a request and
/// returns the response (the server reports a refused client certificate only
/// after the client's handshake completed, on the first read).
async fn fetch(
    server: &HyperServer,
    client: Arc<rustls::ClientConfig>,
    name: &str,
) -> std::io::Result<String> {
    let stream = TcpStream::connect(server.addr()).await?;
    let connector = tokio_rustls::TlsConnector::from(client);
    let name = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let mut tls = connector.connect(name, stream).await?;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok(response)
}

/// Fetches from a server presenting `leaf` as `localhost`, trusting only `ca`.
async fn fetch_from(leaf: &Leaf, ca: &Ca) -> std::io::Result<String> {
    let server = serve(certs::server_config(leaf, &[]));
    fetch(&server, certs::client_config(ca, &[]), "localhost").await
}

fn assert_refused(result: std::io::Result<String>, why: &str) {
    match result {
        Ok(response) => panic!("expected a failure ({why}), got {response:?}"),
        Err(e) => assert!(
            e.to_string().to_lowercase().contains(why),
            "expected {why:?} in {e}"
        ),
    }
}

#[tokio::test]
async fn valid_leaf_for_dns_names_and_ip_addresses() {
    let ca = Ca::new("testkit CA");
    let server = serve(certs::server_config(
        &ca.leaf(&["localhost", "127.0.0.1"]),
        &[],
    ));
    for name in ["localhost", "127.0.0.1"] {
        let response = fetch(&server, certs::client_config(&ca, &[]), name)
            .await
            .unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.ends_with("hello"));
    }
}

#[tokio::test]
async fn expired_leaf_is_refused() {
    let ca = Ca::new("testkit CA");
    let result = fetch_from(&ca.expired_leaf(&["localhost"]), &ca).await;
    assert_refused(result, "expired");
}

#[tokio::test]
async fn wrong_host_is_refused() {
    let ca = Ca::new("testkit CA");
    let result = fetch_from(&ca.leaf(&["example.test"]), &ca).await;
    assert_refused(result, "not valid for name");
}

#[tokio::test]
async fn untrusted_ca_is_refused() {
    let ca = Ca::new("testkit CA");
    let other = Ca::new("someone else");
    let result = fetch_from(&other.leaf(&["localhost"]), &ca).await;
    assert_refused(result, "unknownissuer");
}

#[tokio::test]
async fn intermediate_chain_verifies_when_sent() {
    let root = Ca::new("testkit root");
    let intermediate = root.intermediate("testkit intermediate");
    let leaf = intermediate.leaf(&["localhost"]);

    let result = fetch_from(&leaf, &root).await;
    assert_refused(result, "unknownissuer");

    fetch_from(&leaf.with_intermediate(&intermediate), &root)
        .await
        .unwrap();
}

#[tokio::test]
async fn client_certificates() {
    let ca = Ca::new("testkit CA");
    let clients = Ca::new("testkit client CA");
    let server = serve(certs::server_config_with_client_auth(
        &ca.leaf(&["localhost"]),
        &clients,
        &[],
    ));

    let without = certs::client_config(&ca, &[]);
    assert!(fetch(&server, without, "localhost").await.is_err());

    let client_leaf: Leaf = clients.client_leaf("client.test");
    let with = rustls::ClientConfig::builder_with_provider(certs::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(ca.root_store())
        .with_client_auth_cert(client_leaf.chain_der(), client_leaf.key_der())
        .unwrap();
    let response = fetch(&server, Arc::new(with), "localhost").await.unwrap();
    assert!(response.ends_with("hello"));
}

#[test]
fn pem_encodings_and_files() {
    let ca = Ca::new("testkit CA");
    assert!(ca.pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(!ca.der().is_empty());
    let leaf = ca.leaf(&["localhost"]);
    assert!(leaf.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(leaf.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(leaf.chain_der().len(), 1);

    let dir = std::env::temp_dir().join(format!("muxpool-testkit-certs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = leaf.write_pem(&dir);
    let (cert2, key2) = ca.leaf(&["localhost"]).write_pem(&dir);
    assert_ne!(cert, cert2, "unique names");
    assert_ne!(key, key2);
    assert_eq!(std::fs::read_to_string(&cert).unwrap(), leaf.cert_pem());
    assert_eq!(std::fs::read_to_string(&key).unwrap(), leaf.key_pem());
    std::fs::remove_dir_all(&dir).unwrap();
}
