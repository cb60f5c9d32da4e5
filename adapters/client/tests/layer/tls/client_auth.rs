//! Mutual TLS: a client certificate is presented to servers that require one.

use super::support::{connect, send_to_server, AsClientAuth, Ca, Failed, Trusted};
use muxpool_client::tls::{ClientAuth, Roots, TlsConfig};
use muxpool_testkit::certs::server_config_with_client_auth;
use rustls::{CertificateError, Error};

fn client(server_ca: &Ca, auth: Option<ClientAuth>) -> TlsConfig {
    let builder = TlsConfig::builder()
        .roots(Roots::CustomOnly)
        .add_ca(server_ca.trusted());
    match auth {
        Some(auth) => builder.client_auth(auth),
        None => builder,
    }
    .build()
    .unwrap()
}

#[test]
fn a_server_requiring_client_auth_accepts_the_client_certificate() {
    let server_ca = Ca::new("server root");
    let client_ca = Ca::new("client root");
    let leaf = client_ca.client_leaf("tenant-a");
    let srv = server_config_with_client_auth(&server_ca.leaf(&["localhost"]), &client_ca, &[]);

    let tls = client(&server_ca, Some(leaf.client_auth()));
    let (mut client, mut server) = connect(&tls, "localhost", &srv).unwrap();
    assert_eq!(
        server.peer_certificates(),
        Some(&leaf.chain_der()[..]),
        "the server saw our certificate"
    );
    assert_eq!(send_to_server(&mut client, &mut server, b"hi"), b"hi");
}

#[test]
fn a_client_chain_with_an_intermediate_is_accepted() {
    let server_ca = Ca::new("server root");
    let client_root = Ca::new("client root");
    let client_intermediate = client_root.intermediate("client intermediate");
    let leaf = client_intermediate
        .client_leaf("tenant-a")
        .with_intermediate(&client_intermediate);
    let auth = leaf.client_auth();
    assert_eq!(auth.cert_chain().len(), 2);
    let srv = server_config_with_client_auth(&server_ca.leaf(&["localhost"]), &client_root, &[]);
    connect(&client(&server_ca, Some(auth)), "localhost", &srv).unwrap();
}

#[test]
fn without_a_client_certificate_the_server_refuses() {
    let server_ca = Ca::new("server root");
    let client_ca = Ca::new("client root");
    let srv = server_config_with_client_auth(&server_ca.leaf(&["localhost"]), &client_ca, &[]);
    match connect(&client(&server_ca, None), "localhost", &srv) {
        Err(Failed::Server(Error::NoCertificatesPresented)) => {}
        other => panic!("expected NoCertificatesPresented, got {:?}", other.err()),
    }
}

#[test]
fn a_client_certificate_from_a_ca_the_server_does_not_trust_is_refused() {
    let server_ca = Ca::new("server root");
    let client_ca = Ca::new("client root");
    let stranger = Ca::new("stranger root");
    let srv = server_config_with_client_auth(&server_ca.leaf(&["localhost"]), &client_ca, &[]);
    let tls = client(
        &server_ca,
        Some(stranger.client_leaf("tenant-a").client_auth()),
    );
    match connect(&tls, "localhost", &srv) {
        Err(Failed::Server(Error::InvalidCertificate(CertificateError::UnknownIssuer))) => {}
        other => panic!(
            "expected UnknownIssuer on the server, got {:?}",
            other.err()
        ),
    }
}

#[test]
fn client_auth_from_der_works_like_from_pem() {
    let server_ca = Ca::new("server root");
    let client_ca = Ca::new("client root");
    let leaf = client_ca.client_leaf("tenant-a");
    let auth = ClientAuth::from_der(leaf.chain_der(), leaf.key_der()).unwrap();
    let srv = server_config_with_client_auth(&server_ca.leaf(&["localhost"]), &client_ca, &[]);
    connect(&client(&server_ca, Some(auth)), "localhost", &srv).unwrap();
}

#[test]
fn one_pem_holding_both_certificate_and_key_works() {
    let server_ca = Ca::new("server root");
    let client_ca = Ca::new("client root");
    let leaf = client_ca.client_leaf("tenant-a");
    let both = format!("{}{}", leaf.cert_pem(), leaf.key_pem());
    let auth = ClientAuth::from_pem(&both, &both).unwrap();
    let srv = server_config_with_client_auth(&server_ca.leaf(&["localhost"]), &client_ca, &[]);
    connect(&client(&server_ca, Some(auth)), "localhost", &srv).unwrap();
}

#[test]
fn debug_never_shows_the_key() {
    let client_ca = Ca::new("client root");
    let leaf = client_ca.client_leaf("tenant-a");
    assert_eq!(
        format!("{:?}", leaf.client_auth()),
        "ClientAuth { certificates: 1, .. }"
    );
}
