//! Session resumption: shared by every connection of one configuration, never
//! across configurations.

use super::support::{connect, tls12_server, Ca, Trusted};
use muxpool_client::tls::{Roots, TlsConfig};
use muxpool_testkit::certs::server_config;
use rustls::HandshakeKind;

fn config(ca: &Ca, sessions: usize) -> TlsConfig {
    TlsConfig::builder()
        .roots(Roots::CustomOnly)
        .add_ca(ca.trusted())
        .session_cache(sessions)
        .build()
        .unwrap()
}

fn kind(tls: &TlsConfig, host: &str, srv: &std::sync::Arc<rustls::ServerConfig>) -> HandshakeKind {
    let (client, server) = connect(tls, host, srv).unwrap();
    assert_eq!(client.handshake_kind(), server.handshake_kind());
    client.handshake_kind().unwrap()
}

#[test]
fn the_second_connection_of_a_config_resumes() {
    let ca = Ca::new("test root");
    let srv = server_config(&ca.leaf(&["localhost"]), &[]);
    let tls = config(&ca, 16);
    assert_eq!(kind(&tls, "localhost", &srv), HandshakeKind::Full);
    assert_eq!(kind(&tls, "localhost", &srv), HandshakeKind::Resumed);
    assert_eq!(
        kind(&tls.clone(), "localhost", &srv),
        HandshakeKind::Resumed,
        "clones share the cache"
    );
}

#[test]
fn resumption_works_over_tls12_too() {
    let ca = Ca::new("test root");
    let srv = tls12_server(&ca.leaf(&["localhost"]));
    let tls = config(&ca, 16);
    let (client, _) = connect(&tls, "localhost", &srv).unwrap();
    assert_eq!(
        client.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(client.handshake_kind(), Some(HandshakeKind::Full));
    assert_eq!(kind(&tls, "localhost", &srv), HandshakeKind::Resumed);
}

#[test]
fn resumption_is_on_by_default() {
    let ca = Ca::new("test root");
    let srv = server_config(&ca.leaf(&["localhost"]), &[]);
    let tls = TlsConfig::builder()
        .roots(Roots::CustomOnly)
        .add_ca(ca.trusted())
        .build()
        .unwrap();
    kind(&tls, "localhost", &srv);
    assert_eq!(kind(&tls, "localhost", &srv), HandshakeKind::Resumed);
}

#[test]
fn configs_built_alike_do_not_share_sessions() {
    let ca = Ca::new("test root");
    let srv = server_config(&ca.leaf(&["localhost"]), &[]);
    let first = config(&ca, 16);
    let second = config(&ca, 16);
    assert_eq!(first.identity(), second.identity());
    assert_eq!(kind(&first, "localhost", &srv), HandshakeKind::Full);
    assert_eq!(kind(&second, "localhost", &srv), HandshakeKind::Full);
    assert_eq!(kind(&first, "localhost", &srv), HandshakeKind::Resumed);
}

#[test]
fn a_session_is_only_resumed_with_the_server_name_it_was_made_for() {
    let ca = Ca::new("test root");
    let srv = server_config(&ca.leaf(&["localhost", "127.0.0.1"]), &[]);
    let tls = config(&ca, 16);
    assert_eq!(kind(&tls, "localhost", &srv), HandshakeKind::Full);
    assert_eq!(kind(&tls, "127.0.0.1", &srv), HandshakeKind::Full);
    assert_eq!(kind(&tls, "127.0.0.1", &srv), HandshakeKind::Resumed);
}

#[test]
fn a_zero_session_cache_turns_resumption_off() {
    let ca = Ca::new("test root");
    let srv = server_config(&ca.leaf(&["localhost"]), &[]);
    let tls = config(&ca, 0);
    assert_eq!(kind(&tls, "localhost", &srv), HandshakeKind::Full);
    assert_eq!(kind(&tls, "localhost", &srv), HandshakeKind::Full);
}
