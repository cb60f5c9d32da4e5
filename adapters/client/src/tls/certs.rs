//! Certificates and keys given to a [`TlsConfig`](super::TlsConfig), parsed and
//! checked when they are made so that a mistake is reported where it was made.

use std::fmt;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::{Input, TlsError};

/// CA certificates to trust, in addition to or instead of the default roots (see
/// [`Roots`](super::Roots)).
///
/// Every certificate has been checked to be usable as a trust anchor.
///
/// ```
/// # use muxpool_client::tls::{CaCertificates, TlsError, Input};
/// let err = CaCertificates::from_pem("not a certificate").unwrap_err();
/// assert!(matches!(err, TlsError::NoCertificates { input: Input::CaCertificates }));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CaCertificates {
    certs: Vec<CertificateDer<'static>>,
}

impl CaCertificates {
    /// Parses every `CERTIFICATE` section of `pem` (the bytes of a `.pem` or `.crt`
    /// file; other sections and text around them are ignored).
    ///
    /// Errors: [`TlsError::BadPem`] if the PEM is malformed,
    /// [`TlsError::NoCertificates`] if it holds no certificate,
    /// [`TlsError::BadCertificate`] if one is not a usable X.509 CA certificate.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<CaCertificates, TlsError> {
        let certs = parse_certificates(pem.as_ref(), Input::CaCertificates)?;
        CaCertificates::from_der(certs)
    }

    /// Takes DER-encoded certificates.
    ///
    /// Errors: [`TlsError::NoCertificates`] if there are none,
    /// [`TlsError::BadCertificate`] if one is not a usable X.509 CA certificate.
    pub fn from_der(
        certs: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<CaCertificates, TlsError> {
        let certs: Vec<_> = certs.into_iter().collect();
        if certs.is_empty() {
            return Err(TlsError::NoCertificates {
                input: Input::CaCertificates,
            });
        }
        let mut scratch = RootCertStore::empty();
        for cert in &certs {
            scratch
                .add(cert.clone())
                .map_err(|source| TlsError::BadCertificate {
                    input: Input::CaCertificates,
                    source,
                })?;
        }
        Ok(CaCertificates { certs })
    }

    /// The certificates, DER-encoded, in the order given.
    pub fn as_der(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }
}

impl fmt::Debug for CaCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaCertificates")
            .field("count", &self.certs.len())
            .finish()
    }
}

/// A client certificate chain and its private key, for servers that require
/// mutual TLS.
///
/// The key is loaded by the crypto provider and checked to match the
/// certificate when this is made (with the provider a configuration would use
/// now, see [`TlsConfigBuilder::crypto_provider`](super::TlsConfigBuilder::crypto_provider)),
/// and loaded again by the provider the configuration is built with. Cloning is
/// cheap (the chain and key are shared), and `Debug` never shows the key.
#[derive(Clone)]
pub struct ClientAuth {
    chain: Arc<[CertificateDer<'static>]>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl ClientAuth {
    /// Parses the certificate chain (end-entity certificate first, then any
    /// intermediates) from `cert_chain_pem` and the private key (PKCS#8, PKCS#1 or
    /// SEC1) from `key_pem`. Both may be the same bytes if one file holds both.
    ///
    /// Errors: [`TlsError::BadPem`] (for [`Input::ClientCertificate`] or
    /// [`Input::PrivateKey`]), [`TlsError::NoCertificates`],
    /// [`TlsError::NoPrivateKey`], and [`TlsError::BadPrivateKey`] if the key's
    /// algorithm is unsupported or the key does not belong to the certificate.
    pub fn from_pem(
        cert_chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Result<ClientAuth, TlsError> {
        let chain = parse_certificates(cert_chain_pem.as_ref(), Input::ClientCertificate)?;
        let key = match PrivateKeyDer::from_pem_slice(key_pem.as_ref()) {
            Ok(key) => key,
            Err(pem::Error::NoItemsFound) => return Err(TlsError::NoPrivateKey),
            Err(source) => {
                return Err(TlsError::BadPem {
                    input: Input::PrivateKey,
                    source,
                })
            }
        };
        ClientAuth::from_der(chain, key)
    }

    /// Takes a DER-encoded chain (end-entity certificate first) and private key.
    ///
    /// Errors: [`TlsError::NoCertificates`] for an empty chain,
    /// [`TlsError::BadPrivateKey`] if the key's algorithm is unsupported or the key
    /// does not belong to the certificate.
    pub fn from_der(
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<ClientAuth, TlsError> {
        if cert_chain.is_empty() {
            return Err(TlsError::NoCertificates {
                input: Input::ClientCertificate,
            });
        }
        let auth = ClientAuth {
            chain: cert_chain.into(),
            key: Arc::new(key),
        };
        // Checked now when a provider is at hand, so that a wrong key fails
        // where it is given; `TlsConfigBuilder::build` checks again with its
        // own provider.
        if let Ok(provider) = super::provider::choose(None) {
            auth.certified_key(&provider)?;
        }
        Ok(auth)
    }

    /// The certificate chain, DER-encoded, end-entity certificate first.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The chain with its key loaded by `provider`.
    ///
    /// Errors: [`TlsError::BadPrivateKey`] if the provider cannot use the key
    /// or it does not belong to the certificate.
    pub(super) fn certified_key(
        &self,
        provider: &CryptoProvider,
    ) -> Result<Arc<CertifiedKey>, TlsError> {
        CertifiedKey::from_der(self.chain.to_vec(), self.key.clone_key(), provider)
            .map(Arc::new)
            .map_err(|source| TlsError::BadPrivateKey { source })
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Every `CERTIFICATE` section of `pem`; an error if it is malformed or has none.
fn parse_certificates(pem: &[u8], input: Input) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::BadPem { input, source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates { input });
    }
    Ok(certs)
}
