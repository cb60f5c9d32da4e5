//! TLS with rustls, configured once for every runtime.
//!
//! # Why this module exists
//!
//! The client layer runs the TLS handshake itself, on whatever socket the
//! runtime adapter connected (`tokio-rustls` over the client's I/O traits, on
//! every runtime). Everything that decides *how* a connection is secured lives
//! here, once: which roots are trusted, which client certificate is presented,
//! which protocols are offered with ALPN, whether sessions are resumed. An
//! adapter cannot get TLS subtly different from another adapter, because it
//! never touches TLS at all.
//!
//! # The pieces
//!
//! - [`TlsConfig::builder`] collects typed options and [`build`](TlsConfigBuilder::build)s
//!   a [`TlsConfig`]: a cheap, cloneable handle on one shared
//!   `Arc<rustls::ClientConfig>` and the [`TlsIdentity`] computed from its inputs.
//! - [`TlsConfig::client_config`] is the rustls configuration the client's
//!   dialing hands to `tokio-rustls`; [`TlsConfig::connect`] makes a bare
//!   [`rustls::ClientConnection`] for code that drives rustls by hand;
//!   [`server_name`] is the host parsing on its own.
//! - [`negotiated`] maps the ALPN outcome of a finished handshake to
//!   [`Negotiated::Http1`] or [`Negotiated::Http2`], which is what the core needs to
//!   hear (`Connected::http1()` or `Connected::http2(..)`) to learn an origin's
//!   protocol.
//! - [`TlsError`] is the one error type of this module.
//!
//! # Safe by default
//!
//! Certificate chain and hostname verification are always on; there is no switch
//! to turn them off. By default the Mozilla roots bundled by `webpki-roots` are
//! trusted, SNI is sent, h2 and http/1.1 are offered (in that order), and TLS
//! sessions are resumed from an in-memory cache shared by every connection made
//! from one [`TlsConfig`]. The platform's store ([`Roots::Native`]) and private CAs
//! ([`CaCertificates`]) are opt-in, as is mutual TLS ([`ClientAuth`]).
//!
//! # The crypto provider
//!
//! A configuration uses the provider passed to
//! [`TlsConfigBuilder::crypto_provider`], else the process default when the
//! application installed one, else aws-lc-rs (rustls's own default, compiled
//! in by muxpool's `aws-lc-rs` feature, on by default). muxpool never
//! installs a process default and never enables a rustls feature beyond
//! that one, so adding it to a binary changes nothing for the other rustls
//! code there. Without the feature, and with no default installed, building
//! fails with [`TlsError::NoCryptoProvider`]. To use *ring*, pass
//! `rustls::crypto::ring::default_provider()` (from rustls's `ring`
//! feature, enabled by the application) or install it as the process
//! default. A whole `rustls::ClientConfig` made elsewhere is taken as it is
//! by [`TlsConfig::from_rustls`], muxpool setting only its ALPN.
//!
//! # When a handshake fails
//!
//! The error ([`ErrorKind::Tls`](crate::ErrorKind::Tls)) says what to do when
//! the server's certificate is the problem:
//!
//! - *not signed by a trusted root*: the server's CA is private; add it with
//!   [`TlsConfigBuilder::add_ca`] (and [`Roots::CustomOnly`] to trust it
//!   alone).
//! - *a CA certificate as its own*: a certificate made with a bare
//!   `openssl req -x509` is a CA, and rustls refuses a CA as a server's
//!   certificate (`CaUsedAsEndEntity`) even when it is trusted. Make a CA,
//!   trust it, and have it issue the server's certificate (as `mkcert` does);
//!   there is no switch to accept the bare one.
//! - *does not name this host*, *outside its validity period*: the server's
//!   certificate is wrong for this URL, or expired; the fix is on the server.
//!
//! # TLS identity and the pool key
//!
//! A pooled connection carries the TLS settings it was made with: the roots that
//! vouched for the server, the client certificate it presented, the protocol ALPN
//! chose. Handing it to a request configured differently would silently bypass
//! that request's settings (a connection verified against a private CA used by a
//! client that trusts only public roots, or a connection authenticated with one
//! tenant's client certificate used for another). So the core's key includes a
//! [`TlsIdentity`]: a digest of everything that changes what a connection *is*,
//! computed once when the configuration is built. Two configurations built from
//! equal inputs have equal identities and may share connections; any difference
//! in roots, client certificate, ALPN or SNI gives a different identity. Settings
//! that only affect *future* handshakes, such as the session cache, are left out
//! on purpose.
//!
//! # Example
//!
//! ```
//! use muxpool_client::tls::{negotiated, Alpn, Negotiated, TlsConfig, TlsError};
//! use muxpool_core::Connected;
//!
//! // Once per client: loads the roots, sets up verification and the session cache.
//! let tls = TlsConfig::builder().alpn(Alpn::Http1AndHttp2).build()?;
//!
//! // A bare rustls connection, for code that drives rustls by hand.
//! let conn = tls.connect("example.com")?;
//! assert!(conn.is_handshaking());
//!
//! // When the handshake is done, the core learns what the connection is.
//! fn connected(conn: &rustls::ClientConnection, peer_streams: u32) -> Result<Connected, TlsError> {
//!     Ok(match negotiated(conn)? {
//!         Negotiated::Http2 => Connected::http2(peer_streams),
//!         _ => Connected::http1(),
//!     })
//! }
//! # let _ = connected;
//! # Ok::<(), TlsError>(())
//! ```

mod alpn;
mod certs;
mod config;
mod error;
mod identity;
mod name;
mod provider;

pub use alpn::{negotiated, Alpn, Negotiated};
pub use certs::{CaCertificates, ClientAuth};
pub use config::{Roots, TlsConfig, TlsConfigBuilder, DEFAULT_SESSION_CACHE};
pub(crate) use error::handshake_advice;
pub use error::{Input, TlsError};
pub use identity::TlsIdentity;
pub use name::server_name;
