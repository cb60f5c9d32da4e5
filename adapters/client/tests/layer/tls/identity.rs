//! TlsIdentity: equal for configurations built from equal inputs, different for
//! any difference in roots, client certificate, ALPN or SNI.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use super::support::{AsClientAuth, Ca, Trusted};
use muxpool_client::tls::{Alpn, CaCertificates, Roots, TlsConfig, TlsConfigBuilder, TlsIdentity};

fn id(builder: TlsConfigBuilder) -> TlsIdentity {
    builder.build().unwrap().identity()
}

fn hash_of(identity: TlsIdentity) -> u64 {
    let mut hasher = DefaultHasher::new();
    identity.hash(&mut hasher);
    hasher.finish()
}

#[test]
fn equal_inputs_give_equal_identities_and_hashes() {
    let ca = Ca::new("test root");
    let client = Ca::new("client root").client_leaf("tenant-a");
    let build = || {
        id(TlsConfig::builder()
            .roots(Roots::CustomOnly)
            .add_ca(ca.trusted())
            .client_auth(client.client_auth())
            .alpn(Alpn::Http1Only))
    };
    let (a, b) = (build(), build());
    assert_eq!(a, b);
    assert_eq!(hash_of(a), hash_of(b));
    assert_eq!(id(TlsConfig::builder()), id(TlsConfig::builder()));
}

#[test]
fn a_clone_has_the_same_identity() {
    let tls = TlsConfig::builder().build().unwrap();
    assert_eq!(tls.clone().identity(), tls.identity());
}

#[test]
fn the_order_cas_are_added_in_does_not_matter_nor_duplicates() {
    let (a, b) = (Ca::new("a"), Ca::new("b"));
    let ab = id(TlsConfig::builder().add_ca(a.trusted()).add_ca(b.trusted()));
    let ba = id(TlsConfig::builder().add_ca(b.trusted()).add_ca(a.trusted()));
    let both_in_one = id(TlsConfig::builder()
        .add_ca(CaCertificates::from_pem(format!("{}{}", b.pem(), a.pem())).unwrap()));
    let twice = id(TlsConfig::builder()
        .add_ca(a.trusted())
        .add_ca(b.trusted())
        .add_ca(a.trusted()));
    assert_eq!(ab, ba);
    assert_eq!(ab, both_in_one);
    assert_eq!(ab, twice);
}

#[test]
fn every_setting_that_changes_a_connection_changes_the_identity() {
    let (a, b) = (Ca::new("a"), Ca::new("b"));
    let client_ca = Ca::new("client root");
    let (alice, bob) = (client_ca.client_leaf("alice"), client_ca.client_leaf("bob"));
    let base = || {
        TlsConfig::builder()
            .roots(Roots::CustomOnly)
            .add_ca(a.trusted())
    };

    let variants = [
        ("base", id(base())),
        (
            "another CA",
            id(TlsConfig::builder()
                .roots(Roots::CustomOnly)
                .add_ca(b.trusted())),
        ),
        ("an extra CA", id(base().add_ca(b.trusted()))),
        (
            "webpki roots too",
            id(TlsConfig::builder().add_ca(a.trusted())),
        ),
        ("webpki roots only", id(TlsConfig::builder())),
        (
            "client cert alice",
            id(base().client_auth(alice.client_auth())),
        ),
        ("client cert bob", id(base().client_auth(bob.client_auth()))),
        ("ALPN http/1.1", id(base().alpn(Alpn::Http1Only))),
        ("ALPN h2", id(base().alpn(Alpn::Http2Only))),
        ("ALPN none", id(base().alpn(Alpn::None))),
        ("no SNI", id(base().sni(false))),
        (
            "TLS 1.3 suites only",
            id(base().crypto_provider(tls13_only())),
        ),
    ];
    let mut seen = HashSet::new();
    for (name, identity) in variants {
        assert!(
            seen.insert(identity),
            "{name} collides with an earlier variant"
        );
    }
    assert_eq!(seen.len(), variants.len());
}

/// The aws-lc-rs provider without its TLS 1.2 suites: a provider that
/// negotiates differently.
fn tls13_only() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .retain(|suite| suite.tls13().is_some());
    std::sync::Arc::new(provider)
}

#[test]
fn the_same_provider_passed_again_gives_the_same_identity() {
    let with = || TlsConfig::builder().crypto_provider(tls13_only());
    assert_eq!(id(with()), id(with()));
    // The compiled-in provider, chosen or given, is one provider.
    let given = TlsConfig::builder().crypto_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ));
    assert_eq!(id(given), id(TlsConfig::builder()));
}

#[test]
fn the_session_cache_does_not_change_the_identity() {
    // It only affects later handshakes, not what an established connection is.
    assert_eq!(
        id(TlsConfig::builder().session_cache(0)),
        id(TlsConfig::builder().session_cache(1000))
    );
}

#[test]
fn identities_work_as_map_keys() {
    let (a, b) = (Ca::new("a"), Ca::new("b"));
    let mut pool: HashSet<(&str, u16, TlsIdentity)> = HashSet::new();
    let ta = TlsConfig::builder().add_ca(a.trusted()).build().unwrap();
    let tb = TlsConfig::builder().add_ca(b.trusted()).build().unwrap();
    let ta_again = TlsConfig::builder().add_ca(a.trusted()).build().unwrap();
    assert!(pool.insert(("example.com", 443, ta.identity())));
    assert!(pool.insert(("example.com", 443, tb.identity())));
    assert!(!pool.insert(("example.com", 443, ta_again.identity())));
}

#[test]
fn debug_and_display_show_a_short_digest() {
    let identity = id(TlsConfig::builder());
    let shown = identity.to_string();
    assert_eq!(shown.len(), 16);
    assert!(shown.chars().all(|c| c.is_ascii_hexdigit()), "{shown}");
    assert_eq!(format!("{identity:?}"), format!("TlsIdentity({shown})"));
    assert!(identity
        .as_bytes()
        .starts_with(&u64::from_str_radix(&shown, 16).unwrap().to_be_bytes()));
}
