//! ALPN: what each mode offers, and what it negotiates against servers that offer
//! h2, http/1.1, both, or nothing.

use super::support::{self, connect, Ca, Failed, Trusted};
use muxpool_client::tls::{negotiated, Alpn, Negotiated, Roots, TlsConfig, TlsError};
use muxpool_testkit::certs::server_config;
use rustls::Error;

const H2: &[u8] = b"h2";
const H1: &[u8] = b"http/1.1";

/// What a handshake between `mode` and a server offering `offer` came to.
#[derive(Debug, PartialEq)]
enum Outcome {
    Speaks(Negotiated),
    /// The server refused: no protocol in common.
    NoCommonProtocol,
}

fn handshake(ca: &Ca, mode: Alpn, offer: &[&[u8]]) -> Outcome {
    let tls = TlsConfig::builder()
        .roots(Roots::CustomOnly)
        .add_ca(ca.trusted())
        .alpn(mode)
        .build()
        .unwrap();
    let srv = server_config(&ca.leaf(&["localhost"]), offer);
    match connect(&tls, "localhost", &srv) {
        Ok((client, server)) => {
            assert_eq!(client.alpn_protocol(), server.alpn_protocol());
            Outcome::Speaks(negotiated(&client).unwrap())
        }
        Err(Failed::Server(Error::NoApplicationProtocol)) => Outcome::NoCommonProtocol,
        Err(other) => panic!("{mode:?} against {offer:?}: unexpected failure {other:?}"),
    }
}

#[test]
fn each_mode_offers_its_protocols_in_order() {
    assert_eq!(Alpn::default(), Alpn::Http1AndHttp2);
    let cases: [(Alpn, &[&[u8]]); 4] = [
        (Alpn::Http1AndHttp2, &[H2, H1]),
        (Alpn::Http1Only, &[H1]),
        (Alpn::Http2Only, &[H2]),
        (Alpn::None, &[]),
    ];
    for (mode, expected) in cases {
        assert_eq!(mode.protocols(), expected);
        let tls = TlsConfig::builder().alpn(mode).build().unwrap();
        assert_eq!(tls.alpn(), mode);
        let offered: Vec<&[u8]> = tls
            .client_config()
            .alpn_protocols
            .iter()
            .map(|p| p.as_slice())
            .collect();
        assert_eq!(offered, expected, "{mode:?}");
    }
}

#[test]
fn negotiation_matrix() {
    use Negotiated::{Http1, Http2};
    use Outcome::{NoCommonProtocol, Speaks};
    let ca = Ca::new("test root");
    let servers: [&[&[u8]]; 5] = [&[H2], &[H1], &[H2, H1], &[H1, H2], &[]];
    #[rustfmt::skip]
    let expected = [
        // server offers:  h2                 http/1.1          h2,http/1.1   http/1.1,h2   nothing
        (Alpn::Http1AndHttp2, [Speaks(Http2), Speaks(Http1), Speaks(Http2), Speaks(Http1), Speaks(Http1)]),
        (Alpn::Http1Only, [NoCommonProtocol, Speaks(Http1), Speaks(Http1), Speaks(Http1), Speaks(Http1)]),
        (Alpn::Http2Only, [Speaks(Http2), NoCommonProtocol, Speaks(Http2), Speaks(Http2), Speaks(Http1)]),
        (Alpn::None, [Speaks(Http1), Speaks(Http1), Speaks(Http1), Speaks(Http1), Speaks(Http1)]),
    ];
    for (mode, outcomes) in expected {
        for (offer, want) in servers.iter().zip(outcomes) {
            assert_eq!(
                handshake(&ca, mode, offer),
                want,
                "{mode:?} against a server offering {offer:?}"
            );
        }
    }
}

#[test]
fn no_alpn_on_the_wire_means_http1() {
    let ca = Ca::new("test root");
    let tls = TlsConfig::builder()
        .roots(Roots::CustomOnly)
        .add_ca(ca.trusted())
        .alpn(Alpn::None)
        .build()
        .unwrap();
    let srv = server_config(&ca.leaf(&["localhost"]), &[H2, H1]);
    let (client, server) = connect(&tls, "localhost", &srv).unwrap();
    assert_eq!(client.alpn_protocol(), None);
    assert_eq!(server.alpn_protocol(), None);
    assert_eq!(negotiated(&client).unwrap(), Negotiated::Http1);
}

#[test]
fn negotiated_refuses_to_answer_before_the_handshake_ends() {
    let tls = TlsConfig::builder().build().unwrap();
    let conn = tls.connect("example.com").unwrap();
    assert!(matches!(
        negotiated(&conn),
        Err(TlsError::HandshakeIncomplete)
    ));
}

#[test]
fn a_protocol_other_than_h1_or_h2_is_reported_not_guessed() {
    // A TlsConfig never offers anything else; a connection configured elsewhere can.
    let ca = Ca::new("test root");
    let tls = TlsConfig::builder()
        .roots(Roots::CustomOnly)
        .add_ca(ca.trusted())
        .build()
        .unwrap();
    let mut config = (**tls.client_config()).clone();
    config.alpn_protocols = vec![b"spdy/3.1".to_vec()];
    let mut client =
        rustls::ClientConnection::new(std::sync::Arc::new(config), "localhost".try_into().unwrap())
            .unwrap();
    let srv = server_config(&ca.leaf(&["localhost"]), &[b"spdy/3.1"]);
    let mut server = rustls::ServerConnection::new(srv).unwrap();
    support::handshake(&mut client, &mut server).unwrap();
    match negotiated(&client) {
        Err(TlsError::UnexpectedAlpn { protocol }) => assert_eq!(protocol, b"spdy/3.1"),
        other => panic!("expected UnexpectedAlpn, got {other:?}"),
    }
}

#[test]
fn alpn_ids_map_to_http_versions() {
    assert_eq!(Negotiated::from_alpn(Some(b"h2")), Some(Negotiated::Http2));
    assert_eq!(
        Negotiated::from_alpn(Some(b"http/1.1")),
        Some(Negotiated::Http1)
    );
    assert_eq!(Negotiated::from_alpn(None), Some(Negotiated::Http1));
    assert_eq!(Negotiated::from_alpn(Some(b"h3")), None);
    assert_eq!(Negotiated::from_alpn(Some(b"")), None);
}
