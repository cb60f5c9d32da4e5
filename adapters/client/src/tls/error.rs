//! The one error type of the TLS module.

use std::error::Error as StdError;
use std::fmt;

use rustls_pki_types::{pem, InvalidDnsNameError};

/// Which input an error about PEM or certificates is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Input {
    /// CA certificates to trust ([`CaCertificates`](super::CaCertificates)).
    CaCertificates,
    /// The client certificate chain for mutual TLS ([`ClientAuth`](super::ClientAuth)).
    ClientCertificate,
    /// The client private key for mutual TLS ([`ClientAuth`](super::ClientAuth)).
    PrivateKey,
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Input::CaCertificates => "the CA certificates",
            Input::ClientCertificate => "the client certificate chain",
            Input::PrivateKey => "the client private key",
        })
    }
}

/// Everything that can go wrong configuring TLS or starting a TLS connection.
///
/// `Display` says what failed in this module's terms; the underlying cause, when
/// there is one, is the [`source`](std::error::Error::source) (the PEM parser's,
/// the platform store's or rustls's own error), so an error reporter that walks
/// the chain prints both.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// The PEM text could not be parsed.
    BadPem {
        /// What the PEM was supposed to hold.
        input: Input,
        /// The parser's complaint.
        source: pem::Error,
    },
    /// The input held no certificate at all (PEM without a `CERTIFICATE` section,
    /// or an empty list).
    NoCertificates {
        /// What the certificates were for.
        input: Input,
    },
    /// A certificate was found but is not a usable X.509 certificate.
    BadCertificate {
        /// What the certificate was for.
        input: Input,
        /// Why rustls refused it.
        source: rustls::Error,
    },
    /// The private key PEM held no `PRIVATE KEY`, `RSA PRIVATE KEY` or
    /// `EC PRIVATE KEY` section.
    NoPrivateKey,
    /// The private key was found but cannot be used: an unsupported algorithm, or
    /// it does not belong to the client certificate.
    BadPrivateKey {
        /// Why rustls refused it.
        source: rustls::Error,
    },
    /// [`Roots::Native`](super::Roots::Native) was asked for, but not one usable
    /// certificate could be loaded from the platform's store.
    NativeRoots {
        /// What went wrong while loading (may be empty: an empty store is an error
        /// on its own).
        errors: Vec<rustls_native_certs::Error>,
    },
    /// The configuration would trust no root at all
    /// ([`Roots::CustomOnly`](super::Roots::CustomOnly) without any CA added), so no
    /// server could ever be verified.
    NoRootCertificates,
    /// No crypto provider to build with: none was passed to
    /// [`TlsConfigBuilder::crypto_provider`](super::TlsConfigBuilder::crypto_provider),
    /// the process has no default installed, and muxpool was built without
    /// its `aws-lc-rs` feature. Pass a provider, install one with
    /// `rustls::crypto::CryptoProvider::install_default` at the start of
    /// `main`, or turn the feature on.
    NoCryptoProvider,
    /// The host is neither a valid DNS name nor an IP address.
    InvalidServerName {
        /// The host as given.
        name: String,
        /// Why it is not a DNS name.
        source: InvalidDnsNameError,
    },
    /// [`negotiated`](super::negotiated) was called before the handshake finished.
    HandshakeIncomplete,
    /// The handshake selected an ALPN protocol that is neither `h2` nor `http/1.1`.
    /// rustls refuses a protocol the client did not offer, and this module offers
    /// only those two, so this means a connection configured elsewhere.
    UnexpectedAlpn {
        /// The protocol the handshake selected.
        protocol: Vec<u8>,
    },
    /// rustls refused something: building the configuration, starting a
    /// connection, or (when an adapter wraps it) the handshake itself. Displayed
    /// as rustls displays it, with rustls's own source, if any.
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::BadPem { input, .. } => write!(f, "invalid PEM in {input}"),
            TlsError::NoCertificates { input } => write!(f, "no certificate found in {input}"),
            TlsError::BadCertificate { input, .. } => {
                write!(f, "unusable certificate in {input}")
            }
            TlsError::NoPrivateKey => f.write_str("no private key found in the client key PEM"),
            TlsError::BadPrivateKey { .. } => f.write_str("unusable client private key"),
            TlsError::NativeRoots { errors } if errors.is_empty() => {
                f.write_str("the platform's root certificate store is empty")
            }
            TlsError::NativeRoots { errors } => write!(
                f,
                "no root certificate could be loaded from the platform's store ({} error{})",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            ),
            TlsError::NoRootCertificates => f.write_str(
                "no root certificate to trust: Roots::CustomOnly needs at least one CA certificate",
            ),
            TlsError::NoCryptoProvider => f.write_str(
                "no rustls crypto provider: pass one to TlsConfigBuilder::crypto_provider, \
                 call CryptoProvider::install_default, or enable muxpool's aws-lc-rs feature",
            ),
            TlsError::InvalidServerName { name, .. } => {
                write!(
                    f,
                    "invalid server name {name:?}: not a DNS name or an IP address"
                )
            }
            TlsError::HandshakeIncomplete => {
                f.write_str("the TLS handshake has not finished: no protocol negotiated yet")
            }
            TlsError::UnexpectedAlpn { protocol } => write!(
                f,
                "the TLS handshake selected an unexpected ALPN protocol {:?}",
                String::from_utf8_lossy(protocol)
            ),
            // Transparent: rustls's messages already say what failed.
            TlsError::Rustls(error) => error.fmt(f),
        }
    }
}

impl StdError for TlsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            TlsError::BadPem { source, .. } => Some(source),
            TlsError::BadCertificate { source, .. } | TlsError::BadPrivateKey { source } => {
                Some(source)
            }
            TlsError::NativeRoots { errors } => errors.first().map(|e| e as _),
            TlsError::InvalidServerName { source, .. } => Some(source),
            TlsError::Rustls(error) => error.source(),
            TlsError::NoCertificates { .. }
            | TlsError::NoPrivateKey
            | TlsError::NoRootCertificates
            | TlsError::NoCryptoProvider
            | TlsError::HandshakeIncomplete
            | TlsError::UnexpectedAlpn { .. } => None,
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(error: rustls::Error) -> TlsError {
        TlsError::Rustls(error)
    }
}

/// What a failed handshake's certificate error means for the caller, when it
/// is one a person can act on: the rustls error inside `error` says what the
/// server presented, this says what to do about it.
pub(crate) fn handshake_advice(error: &std::io::Error) -> Option<&'static str> {
    use rustls::CertificateError as E;
    let rustls::Error::InvalidCertificate(certificate) =
        error.get_ref()?.downcast_ref::<rustls::Error>()?
    else {
        return None;
    };
    let ca_as_leaf = matches!(certificate, E::Other(other)
        if matches!(other.0.downcast_ref(), Some(webpki::Error::CaUsedAsEndEntity)));
    if ca_as_leaf {
        return Some(
            "the server presents a CA certificate as its own (a bare self-signed one); \
             trust a CA and have the server present a certificate that CA issued",
        );
    }
    Some(match certificate {
        E::UnknownIssuer => {
            "the server's certificate is not signed by a trusted root; \
             add its CA with TlsConfigBuilder::add_ca"
        }
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            "the server's certificate does not name this host"
        }
        E::Expired | E::ExpiredContext { .. } | E::NotValidYet | E::NotValidYetContext { .. } => {
            "the server's certificate is outside its validity period"
        }
        _ => return None,
    })
}
