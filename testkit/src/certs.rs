//! Test certificates, made with rcgen at run time.
//!
//! TLS tests need certificate authorities and leaves that are valid, expired, for
//! the wrong host or from an untrusted CA. Checking such files into the repository
//! would make them expire on their own one day; generating them when a test runs
//! keeps every case exactly what its name says. A [`Ca`] issues [`Leaf`]s;
//! [`server_config`] turns a leaf into a rustls server configuration (ring
//! provider, chosen explicitly so no process-wide default is needed) and
//! [`Leaf::write_pem`] writes it where nginx can read it.
//!
//! These are test helpers: they panic (with a message) when rcgen or rustls
//! refuse something, which only happens on a bug in the caller.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority that issues certificates: a root made by [`Ca::new`] or
/// an intermediate made by [`Ca::intermediate`].
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A fresh self-signed root CA whose common name is `name`.
    pub fn new(name: &str) -> Ca {
        let issuer = CertifiedIssuer::self_signed(ca_params(name), new_key())
            .expect("rcgen: self-signing the test CA");
        Ca { issuer }
    }

    /// An intermediate CA with common name `name`, signed by this CA. Leaves it
    /// issues verify only when sent with it: see [`Leaf::with_intermediate`].
    pub fn intermediate(&self, name: &str) -> Ca {
        let issuer = CertifiedIssuer::signed_by(ca_params(name), new_key(), &self.issuer)
            .expect("rcgen: signing the intermediate CA");
        Ca { issuer }
    }

    /// A self-signed CA certificate that also names `names`: what a server
    /// made with a bare `openssl req -x509` presents, a CA used as its own
    /// server certificate. Serve it with [`Ca::as_leaf`].
    pub fn self_signed_server(names: &[&str]) -> Ca {
        let mut params = ca_params(names[0]);
        params.subject_alt_names =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("rcgen: invalid certificate name")
                .subject_alt_names;
        let issuer = CertifiedIssuer::self_signed(params, new_key())
            .expect("rcgen: self-signing the certificate");
        Ca { issuer }
    }

    /// This CA's own certificate and key, served as a server's certificate.
    pub fn as_leaf(&self) -> Leaf {
        let key = self.issuer.key();
        Leaf {
            chain: vec![self.der()],
            chain_pem: self.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }

    /// This CA's certificate, PEM encoded.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// This CA's certificate, DER encoded.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A root store trusting only this CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.der())
            .expect("rustls: adding the test CA to a root store");
        roots
    }

    /// A server certificate for `names`, valid now (from a day ago to a year from
    /// now). Names that parse as IP addresses become IP address SANs, the others
    /// DNS name SANs; the first name is also the common name.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth, |_| {})
    }

    /// A server certificate for `names` whose validity lies entirely in the past
    /// (from 30 days ago to 1 day ago).
    pub fn expired_leaf(&self, names: &[&str]) -> Leaf {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth, |params| {
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::days(30);
            params.not_after = now - time::Duration::days(1);
        })
    }

    /// A server certificate for `names` valid only from `not_before` to
    /// `not_after` (for "not yet valid" cases and the like).
    pub fn leaf_valid(
        &self,
        names: &[&str],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Leaf {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth, |params| {
            params.not_before = not_before;
            params.not_after = not_after;
        })
    }

    /// A client certificate (extended key usage: client authentication) whose
    /// common name and SAN are `name`, valid now.
    pub fn client_leaf(&self, name: &str) -> Leaf {
        self.issue(&[name], ExtendedKeyUsagePurpose::ClientAuth, |_| {})
    }

    fn issue(
        &self,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Leaf {
        assert!(
            !names.is_empty(),
            "a leaf certificate needs at least one name"
        );
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        // `CertificateParams::new` turns names that parse as IP addresses into IP
        // address SANs and the rest into DNS name SANs.
        let mut params =
            CertificateParams::new(names.clone()).expect("rcgen: invalid certificate name");
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].clone());
        params.use_authority_key_identifier_extension = true;
        params.key_usages.push(KeyUsagePurpose::DigitalSignature);
        params.extended_key_usages.push(usage);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(365);
        adjust(&mut params);
        let key = new_key();
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("rcgen: signing the leaf certificate");
        Leaf {
            chain: vec![cert.der().clone()],
            chain_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn new_key() -> KeyPair {
    KeyPair::generate().expect("rcgen: generating a key pair")
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("rcgen: CA parameters");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(60);
    params.not_after = now + time::Duration::days(3650);
    params
}

/// An end-entity certificate, the intermediates sent after it, and its private
/// key (PKCS#8).
#[derive(Clone)]
pub struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    chain_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Leaf {
    /// The certificate chain (leaf first, then any intermediates), PEM encoded.
    pub fn cert_pem(&self) -> String {
        self.chain_pem.clone()
    }

    /// The private key, PKCS#8 PEM encoded.
    pub fn key_pem(&self) -> String {
        self.key_pem.clone()
    }

    /// The certificate chain (leaf first, then any intermediates), DER encoded.
    pub fn chain_der(&self) -> Vec<CertificateDer<'static>> {
        self.chain.clone()
    }

    /// The private key, PKCS#8 DER encoded.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key_der.clone()).into()
    }

    /// The same leaf, sent with `intermediate`'s certificate after it.
    pub fn with_intermediate(mut self, intermediate: &Ca) -> Leaf {
        self.chain.push(intermediate.der());
        self.chain_pem.push_str(&intermediate.pem());
        self
    }

    /// Writes the chain and the key as PEM files into `dir` (which must exist)
    /// under names unique in this process, and returns `(cert_path, key_path)`:
    /// what nginx's `ssl_certificate` and `ssl_certificate_key` want.
    ///
    /// Panics if a file cannot be written.
    pub fn write_pem(&self, dir: &Path) -> (PathBuf, PathBuf) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let cert_path = dir.join(format!("leaf-{n}.crt.pem"));
        let key_path = dir.join(format!("leaf-{n}.key.pem"));
        std::fs::write(&cert_path, &self.chain_pem)
            .unwrap_or_else(|e| panic!("writing {}: {e}", cert_path.display()));
        std::fs::write(&key_path, &self.key_pem)
            .unwrap_or_else(|e| panic!("writing {}: {e}", key_path.display()));
        (cert_path, key_path)
    }
}

/// The aws-lc-rs crypto provider, chosen explicitly so no process-wide default
/// provider has to be installed.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A rustls server configuration presenting `leaf`, offering the ALPN protocols
/// `alpn` in that order (empty: no ALPN), TLS 1.2 and 1.3, no client
/// authentication.
pub fn server_config(leaf: &Leaf, alpn: &[&[u8]]) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("rustls: protocol versions")
        .with_no_client_auth()
        .with_single_cert(leaf.chain_der(), leaf.key_der())
        .expect("rustls: the leaf certificate or key");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Like [`server_config`], but the server requires a client certificate issued
/// by `client_ca`.
pub fn server_config_with_client_auth(
    leaf: &Leaf,
    client_ca: &Ca,
    alpn: &[&[u8]],
) -> Arc<ServerConfig> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_ca.root_store()), provider())
            .build()
            .expect("rustls: client certificate verifier");
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("rustls: protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(leaf.chain_der(), leaf.key_der())
        .expect("rustls: the leaf certificate or key");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A rustls client configuration trusting only `ca`, offering `alpn` (empty: no
/// ALPN), without client authentication: for tests that need a plain TLS client
/// (the self-tests of these servers, for one).
pub fn client_config(ca: &Ca, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("rustls: protocol versions")
        .with_root_certificates(ca.root_store())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}
