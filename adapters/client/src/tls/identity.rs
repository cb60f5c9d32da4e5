//! The TLS part of a pool key.

use std::fmt;
use std::hash::{Hash, Hasher};

use rustls::crypto::hash::{self, Context, HashAlgorithm};
use rustls::crypto::CryptoProvider;
use rustls::SupportedCipherSuite;
use rustls_pki_types::CertificateDer;

use super::error::TlsError;

/// What distinguishes connections made with different TLS settings; part of the
/// key under which the pool files a connection.
///
/// A pooled connection keeps the TLS settings it was made with: the roots that
/// verified the server, the client certificate it presented, the protocols ALPN
/// offered, whether SNI was sent. A request must only ever be given a connection
/// made with its own settings, so the core's key carries this value alongside the
/// scheme, host and port.
///
/// It is a SHA-256 digest (with a provider narrowed to suites without
/// SHA-256, their hash cut to 32 bytes) of a canonical encoding of those inputs, computed once
/// by [`TlsConfigBuilder::build`](super::TlsConfigBuilder::build): comparing and
/// hashing it is as cheap as for a small integer, and it is `Copy`. Equal inputs
/// give equal identities, so two configurations built alike share connections;
/// a collision between different inputs would need a SHA-256 collision. What goes
/// in:
///
/// - the kind of [`Roots`](super::Roots); for [`Roots::Native`](super::Roots::Native)
///   the DER bytes of every certificate loaded (the store can change between two
///   builds); [`Roots::WebPki`](super::Roots::WebPki) is fixed in the binary, so
///   its name stands for its content;
/// - the DER bytes of every added CA certificate, as a sorted set (the order CAs
///   are added in does not change what is trusted);
/// - the client certificate chain, in order (the private key is determined by
///   the certificate, and secret material stays out of keys and logs);
/// - the ALPN protocol list, in order, and the SNI flag;
/// - the crypto provider's cipher suites and key exchange groups, in order,
///   and whether it is in FIPS mode;
/// - a version tag, so the encoding can change without silent clashes.
///
/// A configuration made from a whole `rustls::ClientConfig`
/// ([`TlsConfig::from_rustls`](super::TlsConfig::from_rustls)) has inputs
/// muxpool cannot see into, so each one gets an identity of its own.
///
/// The session cache is left out: it affects future handshakes, not what an
/// established connection is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TlsIdentity([u8; 32]);

impl TlsIdentity {
    /// The 32 bytes of the digest, for logs or an external key.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Hash for TlsIdentity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The digest is uniformly distributed: eight of its bytes are as good a hash
        // as all thirty-two, and equal identities still hash equally.
        let mut head = [0; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsIdentity({self})")
    }
}

/// The first eight bytes in hex: enough to tell identities apart in a log.
impl fmt::Display for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0[..8].iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Builds a [`TlsIdentity`] from a sequence of length-prefixed fields, so that no
/// two different sequences encode to the same bytes.
pub(super) struct IdentityHasher {
    ctx: Box<dyn Context>,
}

impl IdentityHasher {
    /// Starts a digest with `provider`'s SHA-256, and puts in what the
    /// provider offers (cipher suites, key exchange groups, FIPS mode): two
    /// providers that negotiate differently make different connections.
    ///
    /// Errors: [`TlsError::Rustls`] if the provider has no cipher suite, which
    /// rustls refuses too.
    pub(super) fn new(provider: &CryptoProvider) -> Result<IdentityHasher, TlsError> {
        let mut hasher = IdentityHasher {
            ctx: hash_of(provider)?.start(),
        };
        hasher.bytes(b"muxpool-tls-identity/2");
        hasher.bytes(b"cipher-suites");
        hasher
            .ctx
            .update(&(provider.cipher_suites.len() as u64).to_be_bytes());
        for suite in &provider.cipher_suites {
            hasher.ctx.update(&u16::from(suite.suite()).to_be_bytes());
        }
        hasher.bytes(b"kx-groups");
        hasher
            .ctx
            .update(&(provider.kx_groups.len() as u64).to_be_bytes());
        for group in &provider.kx_groups {
            hasher.ctx.update(&u16::from(group.name()).to_be_bytes());
        }
        hasher.bytes(if provider.fips() {
            b"fips:on"
        } else {
            b"fips:off"
        });
        Ok(hasher)
    }

    pub(super) fn bytes(&mut self, bytes: &[u8]) {
        self.ctx.update(&(bytes.len() as u64).to_be_bytes());
        self.ctx.update(bytes);
    }

    pub(super) fn certs<'a>(
        &mut self,
        certs: impl ExactSizeIterator<Item = &'a CertificateDer<'a>>,
    ) {
        self.ctx.update(&(certs.len() as u64).to_be_bytes());
        for cert in certs {
            self.bytes(cert);
        }
    }

    pub(super) fn finish(self) -> TlsIdentity {
        let mut out = [0; 32];
        out.copy_from_slice(&self.ctx.finish().as_ref()[..32]);
        TlsIdentity(out)
    }
}

/// SHA-256 from the configuration's own provider, so that no other hash
/// crate is needed; for a provider narrowed to suites without it, the
/// stronger hash those suites use (cut to 32 bytes by `finish`). The suites
/// are in the digest, so two configurations compared always used one hash.
fn hash_of(provider: &CryptoProvider) -> Result<&'static dyn hash::Hash, TlsError> {
    let hashes = || {
        provider.cipher_suites.iter().map(|suite| match suite {
            SupportedCipherSuite::Tls13(suite) => suite.common.hash_provider,
            SupportedCipherSuite::Tls12(suite) => suite.common.hash_provider,
        })
    };
    hashes()
        .find(|hash| hash.algorithm() == HashAlgorithm::SHA256)
        .or_else(|| hashes().find(|hash| hash.output_len() >= 32))
        .ok_or(TlsError::Rustls(rustls::Error::General(
            "the crypto provider has no cipher suite".into(),
        )))
}
