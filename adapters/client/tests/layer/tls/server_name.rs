//! Server names: parsing hosts (DNS names, IPv4, IPv6), verifying certificates
//! issued for IP addresses, and SNI.

use std::error::Error as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::support::{connect, trusting, Ca, Failed, Trusted};
use muxpool_client::tls::{server_name, Roots, TlsConfig, TlsError};
use muxpool_testkit::certs::server_config;
use rustls::{CertificateError, Error};
use rustls_pki_types::ServerName;

#[test]
fn hosts_parse_to_dns_names_and_ip_addresses() {
    assert_eq!(
        server_name("example.com").unwrap(),
        ServerName::try_from("example.com").unwrap()
    );
    assert_eq!(
        server_name("127.0.0.1").unwrap(),
        ServerName::from(IpAddr::V4(Ipv4Addr::LOCALHOST))
    );
    assert_eq!(
        server_name("::1").unwrap(),
        ServerName::from(IpAddr::V6(Ipv6Addr::LOCALHOST))
    );
    assert_eq!(
        server_name("[::1]").unwrap(),
        ServerName::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        "the brackets of a URI authority are accepted"
    );
}

#[test]
fn invalid_hosts_are_typed_errors() {
    for host in [
        "",
        "example.com:443",
        "exa mple.com",
        "[not-an-ip]",
        "[127.0.0.1]",
        "a/b",
    ] {
        match server_name(host) {
            Err(err @ TlsError::InvalidServerName { .. }) => {
                let TlsError::InvalidServerName { name, .. } = &err else {
                    unreachable!()
                };
                assert_eq!(name, host);
                assert!(err.to_string().contains("invalid server name"), "{err}");
                assert!(err.source().is_some(), "the DNS name error is the source");
            }
            other => panic!("{host:?}: expected InvalidServerName, got {other:?}"),
        }
    }
    let tls = TlsConfig::builder().build().unwrap();
    assert!(matches!(
        tls.connect("example.com:443"),
        Err(TlsError::InvalidServerName { .. })
    ));
}

#[test]
fn a_certificate_for_an_ipv4_address_verifies_that_address() {
    let ca = Ca::new("test root");
    let srv = server_config(&ca.leaf(&["127.0.0.1"]), &[]);
    let (_, accepted) = connect(&trusting(&ca), "127.0.0.1", &srv).unwrap();
    assert_eq!(
        accepted.server_name(),
        None,
        "no SNI is sent for an IP address"
    );

    match connect(&trusting(&ca), "127.0.0.2", &srv) {
        Err(Failed::Client(Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ))) => {}
        other => panic!("expected NotValidForName, got {:?}", other.err()),
    }
}

#[test]
fn a_certificate_for_an_ipv6_address_verifies_that_address() {
    let ca = Ca::new("test root");
    let srv = server_config(&ca.leaf(&["::1"]), &[]);
    connect(&trusting(&ca), "[::1]", &srv).unwrap();
    connect(&trusting(&ca), "::1", &srv).unwrap();
    assert!(connect(&trusting(&ca), "127.0.0.1", &srv).is_err());
}

#[test]
fn a_dns_name_does_not_match_an_ip_address_certificate() {
    let ca = Ca::new("test root");
    let srv = server_config(&ca.leaf(&["127.0.0.1"]), &[]);
    assert!(matches!(
        connect(&trusting(&ca), "localhost", &srv),
        Err(Failed::Client(Error::InvalidCertificate(_)))
    ));
}

#[test]
fn sni_can_be_turned_off_but_the_name_is_still_verified() {
    let ca = Ca::new("test root");
    let no_sni = TlsConfig::builder()
        .roots(Roots::CustomOnly)
        .add_ca(ca.trusted())
        .sni(false)
        .build()
        .unwrap();
    assert!(!no_sni.client_config().enable_sni);

    let srv = server_config(&ca.leaf(&["localhost"]), &[]);
    let (_, accepted) = connect(&no_sni, "localhost", &srv).unwrap();
    assert_eq!(accepted.server_name(), None);

    let wrong = server_config(&ca.leaf(&["example.com"]), &[]);
    assert!(matches!(
        connect(&no_sni, "localhost", &wrong),
        Err(Failed::Client(Error::InvalidCertificate(_)))
    ));
}
