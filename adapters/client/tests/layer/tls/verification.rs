//! Server certificate verification: on by default, against the configured roots,
//! checking the chain, the validity period and the host name.

use super::support::{connect, send_to_server, trusting, Ca, Failed, Trusted};
use muxpool_client::tls::{Roots, TlsConfig};
use muxpool_testkit::certs::server_config;
use rcgen::date_time_ymd;
use rustls::{CertificateError, Error};

fn client_cert_error(result: Result<impl Sized, Failed>) -> CertificateError {
    match result {
        Err(Failed::Client(Error::InvalidCertificate(e))) => e,
        Err(other) => panic!("expected the client to refuse the certificate, got {other:?}"),
        Ok(_) => panic!("expected the client to refuse the certificate, but it was accepted"),
    }
}

#[test]
fn a_valid_chain_is_accepted_and_the_connection_carries_data() {
    let ca = Ca::new("test root");
    let srv = server_config(&ca.leaf(&["localhost"]), &[]);
    let (mut client, mut server) = connect(&trusting(&ca), "localhost", &srv).unwrap();
    assert_eq!(send_to_server(&mut client, &mut server, b"hello"), b"hello");
    assert_eq!(
        server.server_name(),
        Some("localhost"),
        "SNI is sent by default"
    );
}

#[test]
fn a_chain_through_an_intermediate_is_accepted() {
    let root = Ca::new("test root");
    let intermediate = root.intermediate("test intermediate");
    let leaf = intermediate
        .leaf(&["localhost"])
        .with_intermediate(&intermediate);
    let srv = server_config(&leaf, &[]);
    connect(&trusting(&root), "localhost", &srv).unwrap();
}

#[test]
fn a_leaf_without_its_intermediate_is_refused() {
    let root = Ca::new("test root");
    let intermediate = root.intermediate("test intermediate");
    let srv = server_config(&intermediate.leaf(&["localhost"]), &[]);
    let err = client_cert_error(connect(&trusting(&root), "localhost", &srv));
    assert_eq!(err, CertificateError::UnknownIssuer);
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    let ca = Ca::new("test root");
    let srv = server_config(&ca.leaf(&["example.com"]), &[]);
    let err = client_cert_error(connect(&trusting(&ca), "localhost", &srv));
    assert!(
        matches!(
            err,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn an_expired_certificate_is_refused() {
    let ca = Ca::new("test root");
    let srv = server_config(
        &ca.leaf_valid(
            &["localhost"],
            date_time_ymd(2000, 1, 1),
            date_time_ymd(2001, 1, 1),
        ),
        &[],
    );
    let err = client_cert_error(connect(&trusting(&ca), "localhost", &srv));
    assert!(
        matches!(
            err,
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn a_certificate_not_yet_valid_is_refused() {
    let ca = Ca::new("test root");
    let srv = server_config(
        &ca.leaf_valid(
            &["localhost"],
            date_time_ymd(2200, 1, 1),
            date_time_ymd(2201, 1, 1),
        ),
        &[],
    );
    let err = client_cert_error(connect(&trusting(&ca), "localhost", &srv));
    assert!(
        matches!(
            err,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn a_certificate_from_an_untrusted_ca_is_refused() {
    let trusted = Ca::new("trusted root");
    let other = Ca::new("other root");
    let srv = server_config(&other.leaf(&["localhost"]), &[]);
    let err = client_cert_error(connect(&trusting(&trusted), "localhost", &srv));
    assert_eq!(err, CertificateError::UnknownIssuer);
}

#[test]
fn the_default_roots_do_not_trust_a_private_ca() {
    let ca = Ca::new("test root");
    let srv = server_config(&ca.leaf(&["localhost"]), &[]);
    let default = TlsConfig::builder().build().unwrap();
    let err = client_cert_error(connect(&default, "localhost", &srv));
    assert_eq!(err, CertificateError::UnknownIssuer);
}

#[test]
fn cas_added_more_than_once_accumulate() {
    let first = Ca::new("first root");
    let second = Ca::new("second root");
    let tls = TlsConfig::builder()
        .roots(Roots::CustomOnly)
        .add_ca(first.trusted())
        .add_ca(second.trusted())
        .build()
        .unwrap();
    for ca in [&first, &second] {
        let srv = server_config(&ca.leaf(&["localhost"]), &[]);
        connect(&tls, "localhost", &srv).unwrap();
    }
    let third = Ca::new("third root");
    let srv = server_config(&third.leaf(&["localhost"]), &[]);
    assert_eq!(
        client_cert_error(connect(&tls, "localhost", &srv)),
        CertificateError::UnknownIssuer
    );
}

#[test]
fn a_ca_added_to_the_default_roots_is_trusted() {
    let ca = Ca::new("test root");
    let srv = server_config(&ca.leaf(&["localhost"]), &[]);
    let tls = TlsConfig::builder().add_ca(ca.trusted()).build().unwrap();
    connect(&tls, "localhost", &srv).unwrap();
}
