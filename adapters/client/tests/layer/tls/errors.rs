//! Errors: each bad input gives its own typed error, with a readable message and
//! the underlying cause as its source.

use std::error::Error as _;

use super::support::Ca;
use muxpool_client::tls::{CaCertificates, ClientAuth, Input, Roots, TlsConfig, TlsError};
use rustls::InconsistentKeys;
use rustls_pki_types::pem;

const BAD_BASE64: &str =
    "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n";
const NO_END: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n";
const NOT_X509: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
const NOT_A_KEY: &str = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

#[test]
fn bad_ca_pem() {
    match CaCertificates::from_pem(BAD_BASE64) {
        Err(TlsError::BadPem {
            input: Input::CaCertificates,
            source: pem::Error::Base64Decode(_),
        }) => {}
        other => panic!("{other:?}"),
    }
    match CaCertificates::from_pem(NO_END) {
        Err(TlsError::BadPem {
            input: Input::CaCertificates,
            source: pem::Error::MissingSectionEnd { .. },
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn ca_pem_without_a_certificate() {
    for pem in ["", "just some text\n", NOT_A_KEY] {
        assert!(
            matches!(
                CaCertificates::from_pem(pem),
                Err(TlsError::NoCertificates {
                    input: Input::CaCertificates
                })
            ),
            "{pem:?}"
        );
    }
    assert!(matches!(
        CaCertificates::from_der([]),
        Err(TlsError::NoCertificates { .. })
    ));
}

#[test]
fn ca_pem_that_is_not_a_certificate() {
    assert!(matches!(
        CaCertificates::from_pem(NOT_X509),
        Err(TlsError::BadCertificate {
            input: Input::CaCertificates,
            source: rustls::Error::InvalidCertificate(_),
        })
    ));
}

#[test]
fn ca_pem_ignores_text_around_certificates() {
    let (a, b) = (Ca::new("a"), Ca::new("b"));
    let bundle = format!("# bundle\n{}\nsome comment\n{}", a.pem(), b.pem());
    let certs = CaCertificates::from_pem(bundle.as_bytes()).unwrap();
    assert_eq!(certs.as_der(), &[a.der(), b.der()]);
}

#[test]
fn client_certificate_and_key_errors() {
    let leaf = Ca::new("client root").client_leaf("tenant-a");
    let other = Ca::new("client root").client_leaf("tenant-b");

    assert!(matches!(
        ClientAuth::from_pem(BAD_BASE64, leaf.key_pem()),
        Err(TlsError::BadPem {
            input: Input::ClientCertificate,
            ..
        })
    ));
    assert!(matches!(
        ClientAuth::from_pem(leaf.key_pem(), leaf.key_pem()),
        Err(TlsError::NoCertificates {
            input: Input::ClientCertificate
        })
    ));
    assert!(matches!(
        ClientAuth::from_pem(leaf.cert_pem(), leaf.cert_pem()),
        Err(TlsError::NoPrivateKey)
    ));
    assert!(matches!(
        ClientAuth::from_pem(leaf.cert_pem(), "-----BEGIN PRIVATE KEY-----\nAAAA\n"),
        Err(TlsError::BadPem {
            input: Input::PrivateKey,
            ..
        })
    ));
    assert!(matches!(
        ClientAuth::from_pem(leaf.cert_pem(), NOT_A_KEY),
        Err(TlsError::BadPrivateKey { .. })
    ));
    assert!(matches!(
        ClientAuth::from_pem(leaf.cert_pem(), other.key_pem()),
        Err(TlsError::BadPrivateKey {
            source: rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)
        })
    ));
    assert!(matches!(
        ClientAuth::from_der(Vec::new(), leaf.key_der()),
        Err(TlsError::NoCertificates {
            input: Input::ClientCertificate
        })
    ));
}

#[test]
fn trusting_nothing_is_refused() {
    assert!(matches!(
        TlsConfig::builder().roots(Roots::CustomOnly).build(),
        Err(TlsError::NoRootCertificates)
    ));
}

#[test]
fn messages_are_readable_and_causes_are_sources() {
    let leaf = Ca::new("client root").client_leaf("tenant-a");
    let other = Ca::new("client root").client_leaf("tenant-b");
    let cases: Vec<(TlsError, &str, bool)> = vec![
        (
            CaCertificates::from_pem(BAD_BASE64).unwrap_err(),
            "invalid PEM in the CA certificates",
            true,
        ),
        (
            CaCertificates::from_pem("").unwrap_err(),
            "no certificate found in the CA certificates",
            false,
        ),
        (
            CaCertificates::from_pem(NOT_X509).unwrap_err(),
            "unusable certificate in the CA certificates",
            true,
        ),
        (
            ClientAuth::from_pem(leaf.cert_pem(), "").unwrap_err(),
            "no private key found in the client key PEM",
            false,
        ),
        (
            ClientAuth::from_pem(leaf.cert_pem(), other.key_pem()).unwrap_err(),
            "unusable client private key",
            true,
        ),
        (
            muxpool_client::tls::server_name("no spaces allowed").unwrap_err(),
            "invalid server name \"no spaces allowed\": not a DNS name or an IP address",
            true,
        ),
        (
            TlsConfig::builder()
                .roots(Roots::CustomOnly)
                .build()
                .unwrap_err(),
            "no root certificate to trust: Roots::CustomOnly needs at least one CA certificate",
            false,
        ),
        (
            TlsError::NativeRoots { errors: Vec::new() },
            "the platform's root certificate store is empty",
            false,
        ),
        (
            TlsError::UnexpectedAlpn {
                protocol: b"spdy/3.1".to_vec(),
            },
            "the TLS handshake selected an unexpected ALPN protocol \"spdy/3.1\"",
            false,
        ),
    ];
    for (error, message, has_source) in cases {
        assert_eq!(error.to_string(), message);
        assert_eq!(error.source().is_some(), has_source, "{message}");
        if let Some(source) = error.source() {
            assert!(
                !message.contains(&source.to_string()),
                "the cause is not repeated in the message: {message}"
            );
        }
    }
}

#[test]
fn rustls_errors_pass_through() {
    let error = TlsError::from(rustls::Error::NoApplicationProtocol);
    assert_eq!(
        error.to_string(),
        rustls::Error::NoApplicationProtocol.to_string()
    );
    assert!(matches!(
        error,
        TlsError::Rustls(rustls::Error::NoApplicationProtocol)
    ));
}

#[test]
fn errors_are_send_sync_and_static() {
    fn check<E: std::error::Error + Send + Sync + 'static>() {}
    check::<TlsError>();
}
