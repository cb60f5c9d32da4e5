//! The builder and the built configuration.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName};

use super::alpn::Alpn;
use super::certs::{CaCertificates, ClientAuth};
use super::error::{Input, TlsError};
use super::identity::{IdentityHasher, TlsIdentity};

/// How many TLS sessions a [`TlsConfig`] remembers for resumption unless told
/// otherwise (rustls's own default). Each entry is a few hundred bytes.
pub const DEFAULT_SESSION_CACHE: usize = 256;

/// The root certificates that server certificates are verified against, before
/// any [`CaCertificates`] added with [`TlsConfigBuilder::add_ca`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Roots {
    /// The Mozilla root program's CAs, compiled in by `webpki-roots`: the same on
    /// every machine, updated with the crate. The default.
    #[default]
    WebPki,
    /// The platform's store (`rustls-native-certs`), loaded once when the
    /// configuration is built: what the machine's administrator trusts, including
    /// corporate CAs. Honours `SSL_CERT_FILE` and `SSL_CERT_DIR`. Loading can take
    /// milliseconds, so build once and share the [`TlsConfig`].
    Native,
    /// No default roots: only the CAs added with [`TlsConfigBuilder::add_ca`] are
    /// trusted. For private deployments and tests. Building fails with
    /// [`TlsError::NoRootCertificates`] if none were added.
    CustomOnly,
}

/// The options of a [`TlsConfig`]; start with [`TlsConfig::builder`].
///
/// Every option has a safe default: webpki roots, no client certificate, ALPN
/// offering h2 then http/1.1, SNI on, a session cache of
/// [`DEFAULT_SESSION_CACHE`] entries. There is no option that turns off
/// certificate or hostname verification.
///
/// ```
/// use muxpool_client::tls::{Alpn, Roots, TlsConfig};
///
/// // WebSocket runs over HTTP/1.1: offer only http/1.1.
/// let tls = TlsConfig::builder()
///     .roots(Roots::WebPki)
///     .alpn(Alpn::Http1Only)
///     .build()?;
/// assert_eq!(tls.client_config().alpn_protocols, vec![b"http/1.1".to_vec()]);
/// # Ok::<(), muxpool_client::tls::TlsError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct TlsConfigBuilder {
    roots: Roots,
    extra_roots: Vec<CertificateDer<'static>>,
    client_auth: Option<ClientAuth>,
    alpn: Alpn,
    session_cache: usize,
    sni: bool,
    provider: Option<Arc<CryptoProvider>>,
}

impl Default for TlsConfigBuilder {
    fn default() -> TlsConfigBuilder {
        TlsConfigBuilder {
            roots: Roots::default(),
            extra_roots: Vec::new(),
            client_auth: None,
            alpn: Alpn::default(),
            session_cache: DEFAULT_SESSION_CACHE,
            sni: true,
            provider: None,
        }
    }
}

impl TlsConfigBuilder {
    /// Which default roots to start from (default [`Roots::WebPki`]). To trust only
    /// your own CA, use [`Roots::CustomOnly`] and [`add_ca`](Self::add_ca).
    pub fn roots(mut self, roots: Roots) -> TlsConfigBuilder {
        self.roots = roots;
        self
    }

    /// Also trusts these CA certificates, on top of [`roots`](Self::roots). May be
    /// called more than once; the certificates accumulate.
    pub fn add_ca(mut self, certs: CaCertificates) -> TlsConfigBuilder {
        self.extra_roots.extend_from_slice(certs.as_der());
        self
    }

    /// Presents this certificate to servers that ask for one (mutual TLS). Without
    /// it, a server that requires a client certificate refuses the handshake.
    pub fn client_auth(mut self, auth: ClientAuth) -> TlsConfigBuilder {
        self.client_auth = Some(auth);
        self
    }

    /// The protocols offered with ALPN (default [`Alpn::Http1AndHttp2`]).
    pub fn alpn(mut self, alpn: Alpn) -> TlsConfigBuilder {
        self.alpn = alpn;
        self
    }

    /// Remembers up to `sessions` TLS sessions, shared by every connection made
    /// from the built configuration (and its clones), so that later handshakes with
    /// the same server resume instead of repeating the full key exchange and
    /// certificate verification. `0` turns resumption off. Default
    /// [`DEFAULT_SESSION_CACHE`].
    ///
    /// Sessions are never shared between two configurations, even built alike:
    /// each build has its own cache.
    pub fn session_cache(mut self, sessions: usize) -> TlsConfigBuilder {
        self.session_cache = sessions;
        self
    }

    /// Whether to send the server name (SNI) in the handshake (default `true`).
    /// Servers hosting several names need it to pick a certificate; turn it off
    /// only for a server that misbehaves on it. The certificate is verified against
    /// the name either way. SNI is never sent for IP addresses.
    pub fn sni(mut self, enabled: bool) -> TlsConfigBuilder {
        self.sni = enabled;
        self
    }

    /// The rustls crypto provider to build with. Without one, the process
    /// default is used when the application installed one
    /// (`CryptoProvider::install_default`), else aws-lc-rs when muxpool's
    /// `aws-lc-rs` feature (on by default) compiled it in. Building never
    /// installs a process default, so other rustls code in the binary is
    /// unaffected.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use muxpool_client::tls::TlsConfig;
    ///
    /// // TLS 1.3 with AES-256 only, from the aws-lc-rs provider.
    /// let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    /// provider.cipher_suites = vec![rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_256_GCM_SHA384];
    /// let tls = TlsConfig::builder().crypto_provider(Arc::new(provider)).build()?;
    /// assert_eq!(tls.client_config().crypto_provider().cipher_suites.len(), 1);
    /// # Ok::<(), muxpool_client::tls::TlsError>(())
    /// ```
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> TlsConfigBuilder {
        self.provider = Some(provider);
        self
    }

    /// Builds the configuration: chooses the crypto provider, loads the roots, sets up the verifier, the
    /// client certificate, ALPN and the session cache, and computes the
    /// [`TlsIdentity`].
    ///
    /// Errors: [`TlsError::NoCryptoProvider`] if there is no provider to
    /// build with, [`TlsError::NativeRoots`] if [`Roots::Native`] loads no usable
    /// certificate, [`TlsError::NoRootCertificates`] if nothing would be trusted,
    /// [`TlsError::BadCertificate`] or [`TlsError::Rustls`] if rustls refuses an
    /// input.
    pub fn build(self) -> Result<TlsConfig, TlsError> {
        let provider = super::provider::choose(self.provider.as_ref())?;
        let mut id = IdentityHasher::new(&provider)?;
        let mut store = RootCertStore::empty();
        let mut native_root_errors = Vec::new();

        match self.roots {
            Roots::WebPki => {
                id.bytes(b"roots:webpki");
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            Roots::Native => {
                let loaded = rustls_native_certs::load_native_certs();
                let mut certs = loaded.certs;
                certs.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
                certs.dedup();
                // Certificates the platform holds but webpki cannot parse are
                // skipped, as every rustls-based client does: one odd entry must
                // not make the whole store unusable.
                certs.retain(|cert| store.add(cert.clone()).is_ok());
                if certs.is_empty() {
                    return Err(TlsError::NativeRoots {
                        errors: loaded.errors,
                    });
                }
                native_root_errors = loaded.errors;
                id.bytes(b"roots:native");
                id.certs(certs.iter());
            }
            Roots::CustomOnly => id.bytes(b"roots:custom-only"),
        }

        let mut extra = self.extra_roots;
        extra.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
        extra.dedup();
        for cert in &extra {
            store
                .add(cert.clone())
                .map_err(|source| TlsError::BadCertificate {
                    input: Input::CaCertificates,
                    source,
                })?;
        }
        id.bytes(b"extra-roots");
        id.certs(extra.iter());
        if store.is_empty() {
            return Err(TlsError::NoRootCertificates);
        }

        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(store);
        let mut config = match &self.client_auth {
            Some(auth) => {
                id.bytes(b"client-auth");
                id.certs(auth.cert_chain().iter());
                builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(
                    auth.certified_key(&provider)?,
                )))
            }
            None => {
                id.bytes(b"no-client-auth");
                builder.with_no_client_auth()
            }
        };

        let protocols = self.alpn.protocols();
        id.bytes(b"alpn");
        id.bytes(&(protocols.len() as u64).to_be_bytes());
        for protocol in protocols {
            id.bytes(protocol);
        }
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();

        id.bytes(if self.sni { b"sni:on" } else { b"sni:off" });
        config.enable_sni = self.sni;

        config.resumption = match self.session_cache {
            0 => Resumption::disabled(),
            sessions => Resumption::in_memory_sessions(sessions),
        };

        Ok(TlsConfig {
            config: Arc::new(config),
            identity: id.finish(),
            alpn: self.alpn,
            native_root_errors: native_root_errors.into(),
        })
    }
}

/// A built TLS configuration: one shared [`rustls::ClientConfig`] and its
/// [`TlsIdentity`].
///
/// Cloning is cheap and clones share everything, the session cache included, so a
/// client keeps one `TlsConfig` and starts every connection from it.
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    identity: TlsIdentity,
    alpn: Alpn,
    native_root_errors: Arc<[rustls_native_certs::Error]>,
}

impl TlsConfig {
    /// A builder with safe defaults; see [`TlsConfigBuilder`].
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// Wraps a whole `rustls::ClientConfig` made elsewhere: its roots,
    /// verifier, client certificate, crypto provider, resumption and SNI are
    /// used as given. muxpool sets only ALPN, to `alpn`, since the protocol
    /// a handshake negotiates tells the pool what a connection speaks.
    ///
    /// muxpool cannot see into such a configuration to tell two alike, so
    /// each call gives a [`TlsIdentity`] of its own: connections made with it
    /// are never pooled with connections of another configuration.
    ///
    /// Errors: [`TlsError::Rustls`] if the configuration's provider has no
    /// cipher suite.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use muxpool_client::tls::{Alpn, TlsConfig};
    ///
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    /// let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let tls = TlsConfig::from_rustls(config, Alpn::Http1AndHttp2)?;
    /// assert_eq!(tls.client_config().alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_rustls(mut config: ClientConfig, alpn: Alpn) -> Result<TlsConfig, TlsError> {
        static CONFIGS: AtomicU64 = AtomicU64::new(0);
        let mut id = IdentityHasher::new(config.crypto_provider())?;
        id.bytes(b"rustls-config");
        id.bytes(&CONFIGS.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        config.alpn_protocols = alpn.protocols().iter().map(|p| p.to_vec()).collect();
        Ok(TlsConfig {
            config: Arc::new(config),
            identity: id.finish(),
            alpn,
            native_root_errors: Arc::new([]),
        })
    }

    /// Starts a TLS connection to `host` (a DNS name or an IP address, see
    /// [`server_name`](super::server_name)), for code that drives rustls by
    /// hand: it moves bytes between the connection and its socket until the
    /// handshake is done. The client itself hands
    /// [`client_config`](Self::client_config) to `tokio-rustls`.
    ///
    /// Errors: [`TlsError::InvalidServerName`], or [`TlsError::Rustls`] if rustls
    /// cannot start the connection.
    pub fn connect(&self, host: &str) -> Result<ClientConnection, TlsError> {
        self.connect_to(super::server_name(host)?)
    }

    /// Starts a TLS connection to an already parsed server name.
    ///
    /// Errors: [`TlsError::Rustls`] if rustls cannot start the connection.
    pub fn connect_to(&self, name: ServerName<'static>) -> Result<ClientConnection, TlsError> {
        Ok(ClientConnection::new(Arc::clone(&self.config), name)?)
    }

    /// The rustls configuration: what the client's dialing handshakes with.
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The value that keeps connections made with different TLS settings apart in
    /// the pool.
    pub fn identity(&self) -> TlsIdentity {
        self.identity
    }

    /// The protocols this configuration offers.
    pub fn alpn(&self) -> Alpn {
        self.alpn
    }

    /// The same configuration offering only `http/1.1`, for WebSocket
    /// handshakes (RFC 6455 upgrades an HTTP/1.1 request). It shares the
    /// session cache, and keeps the identity: a WebSocket's pool key tells it
    /// apart already.
    pub(crate) fn http1_only(&self) -> TlsConfig {
        if self.alpn == Alpn::Http1Only {
            return self.clone();
        }
        let mut config = ClientConfig::clone(&self.config);
        config.alpn_protocols = Alpn::Http1Only
            .protocols()
            .iter()
            .map(|p| p.to_vec())
            .collect();
        TlsConfig {
            config: Arc::new(config),
            alpn: Alpn::Http1Only,
            ..self.clone()
        }
    }

    /// Problems met while loading [`Roots::Native`] that did not stop the build
    /// (some certificates loaded, some did not), for the caller to log. Empty for
    /// other roots.
    pub fn native_root_errors(&self) -> &[rustls_native_certs::Error] {
        &self.native_root_errors
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("identity", &self.identity)
            .field("alpn", &self.alpn)
            .field("sni", &self.config.enable_sni)
            .finish_non_exhaustive()
    }
}
