//! Shared by the `tls_*` tests: certificates made with rcgen at run time, rustls
//! servers, and a handshake pumped in memory between a client and a server
//! connection (no sockets).

#![allow(dead_code)] // each test file uses a different part of this

use std::sync::Arc;

use muxpool_client::tls::{CaCertificates, ClientAuth, TlsConfig};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority that can issue certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    /// A self-signed root CA.
    pub fn new(name: &str) -> Ca {
        let issuer =
            CertifiedIssuer::self_signed(ca_params(name), KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, name: &str) -> Ca {
        let issuer =
            CertifiedIssuer::signed_by(ca_params(name), KeyPair::generate().unwrap(), &self.issuer)
                .unwrap();
        Ca { issuer }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// This CA as something a `TlsConfig` can trust.
    pub fn trusted(&self) -> CaCertificates {
        CaCertificates::from_pem(self.pem()).unwrap()
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid now.
    pub fn server_leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, ExtendedKeyUsagePurpose::ServerAuth, |_| {})
    }

    /// A client certificate, valid now.
    pub fn client_leaf(&self, name: &str) -> Leaf {
        self.leaf_with(&[name], ExtendedKeyUsagePurpose::ClientAuth, |_| {})
    }

    /// A server certificate for `names` valid only from `not_before` to `not_after`.
    pub fn server_leaf_valid(
        &self,
        names: &[&str],
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> Leaf {
        self.leaf_with(names, ExtendedKeyUsagePurpose::ServerAuth, |params| {
            params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
            params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        })
    }

    fn leaf_with(
        &self,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].clone());
        params.use_authority_key_identifier_extension = true;
        params.key_usages.push(KeyUsagePurpose::DigitalSignature);
        params.extended_key_usages.push(usage);
        adjust(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone()],
            chain_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// An end-entity certificate (plus any intermediates) and its private key.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub chain_pem: String,
    pub key_der: Vec<u8>,
    pub key_pem: String,
}

impl Leaf {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key_der.clone()).into()
    }

    /// The same leaf, sent with `intermediate`'s certificate after it.
    pub fn with_intermediate(mut self, intermediate: &Ca) -> Leaf {
        self.chain.push(intermediate.der());
        self.chain_pem.push_str(&intermediate.pem());
        self
    }

    pub fn client_auth(&self) -> ClientAuth {
        ClientAuth::from_pem(&self.chain_pem, &self.key_pem).unwrap()
    }
}

/// A server presenting `leaf` and offering `alpn` (empty: no ALPN).
pub fn server(leaf: &Leaf, alpn: &[&[u8]]) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain.clone(), leaf.key())
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A server speaking only TLS 1.2.
pub fn tls12_server(leaf: &Leaf) -> Arc<ServerConfig> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain.clone(), leaf.key())
        .unwrap();
    Arc::new(config)
}

/// A server that requires a client certificate issued by `client_ca`.
pub fn server_requiring_client_auth(leaf: &Leaf, client_ca: &Ca) -> Arc<ServerConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(client_ca.der()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .unwrap();
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(leaf.chain.clone(), leaf.key())
        .unwrap();
    Arc::new(config)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
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
