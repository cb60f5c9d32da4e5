//! Shared by the `tls` tests: the test certificates of
//! [`muxpool_testkit::certs`] as the client sees them, a TLS 1.2-only server,
//! and a handshake pumped in memory between a client and a server connection
//! (no sockets).

use std::sync::Arc;

use muxpool_client::tls::{CaCertificates, ClientAuth, TlsConfig};
pub use muxpool_testkit::certs::{Ca, Leaf};
use rustls::{ClientConnection, ServerConfig, ServerConnection};

/// A test CA as something a `TlsConfig` can trust.
pub trait Trusted {
    /// This CA's certificate, for `TlsConfigBuilder::add_ca`.
    fn trusted(&self) -> CaCertificates;
}

impl Trusted for Ca {
    fn trusted(&self) -> CaCertificates {
        CaCertificates::from_pem(self.pem()).unwrap()
    }
}

/// A test leaf as the client's own certificate.
pub trait AsClientAuth {
    /// The chain and key, for `TlsConfigBuilder::client_auth`.
    fn client_auth(&self) -> ClientAuth;
}

impl AsClientAuth for Leaf {
    fn client_auth(&self) -> ClientAuth {
        ClientAuth::from_pem(self.cert_pem(), self.key_pem()).unwrap()
    }
}

/// A server presenting `leaf` and speaking only TLS 1.2.
pub fn tls12_server(leaf: &Leaf) -> Arc<ServerConfig> {
    let config = ServerConfig::builder_with_provider(muxpool_testkit::certs::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain_der(), leaf.key_der())
        .unwrap();
    Arc::new(config)
}

/// Which side refused the handshake, and why.
#[derive(Debug)]
pub enum Failed {
    Client(rustls::Error),
    Server(rustls::Error),
}

/// A client connection from `tls` to `host`, handshaken with a fresh connection of
/// `server`.
pub fn connect(
    tls: &TlsConfig,
    host: &str,
    server: &Arc<ServerConfig>,
) -> Result<(ClientConnection, ServerConnection), Failed> {
    let mut client = tls.connect(host).unwrap();
    let mut server = ServerConnection::new(Arc::clone(server)).unwrap();
    handshake(&mut client, &mut server)?;
    Ok((client, server))
}

/// Moves TLS records between the two until neither has anything to send, then
/// checks both finished the handshake. Post-handshake messages (session tickets)
/// are delivered too.
pub fn handshake(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
) -> Result<(), Failed> {
    for _ in 0..32 {
        let sent = client_to_server(client, server)?;
        let received = server_to_client(server, client)?;
        if sent == 0 && received == 0 {
            assert!(
                !client.is_handshaking() && !server.is_handshaking(),
                "the handshake stalled"
            );
            return Ok(());
        }
    }
    panic!("the handshake did not settle");
}

fn client_to_server(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
) -> Result<usize, Failed> {
    let mut buf = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut buf).unwrap();
    }
    let mut rest = &buf[..];
    while !rest.is_empty() {
        server.read_tls(&mut rest).unwrap();
        server.process_new_packets().map_err(Failed::Server)?;
    }
    Ok(buf.len())
}

fn server_to_client(
    server: &mut ServerConnection,
    client: &mut ClientConnection,
) -> Result<usize, Failed> {
    let mut buf = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut buf).unwrap();
    }
    let mut rest = &buf[..];
    while !rest.is_empty() {
        client.read_tls(&mut rest).unwrap();
        client.process_new_packets().map_err(Failed::Client)?;
    }
    Ok(buf.len())
}

/// Sends `data` from the client to the server over the established connection and
/// returns what the server read: proof the session keys agree.
pub fn send_to_server(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
    data: &[u8],
) -> Vec<u8> {
    use std::io::{Read, Write};
    client.writer().write_all(data).unwrap();
    client_to_server(client, server).unwrap();
    let mut got = vec![0; data.len()];
    server.reader().read_exact(&mut got).unwrap();
    got
}

/// A `TlsConfig` trusting only `ca`.
pub fn trusting(ca: &Ca) -> TlsConfig {
    TlsConfig::builder()
        .roots(muxpool_client::tls::Roots::CustomOnly)
        .add_ca(ca.trusted())
        .build()
        .unwrap()
}
