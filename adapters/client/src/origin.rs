//! The pool key: which connections may be shared.
//!
//! Two requests may share a connection only if they go to the same scheme, host
//! and port, secured the same way. [`Origin`] is exactly that, with the
//! [`TlsIdentity`] of the TLS settings for `https`, so a connection verified
//! against one set of roots, or authenticated with one client certificate, is
//! never handed to a request configured with another.

use std::fmt;
use std::net::IpAddr;

use http::uri::{Scheme, Uri};

use crate::error::{Error, ErrorKind};
use crate::tls::TlsIdentity;

/// Whether an origin is reached in clear text or over TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Security {
    /// `http://`: plain TCP.
    Plain,
    /// `https://`: TLS with these settings.
    Tls(TlsIdentity),
}

/// Scheme, host, port and TLS identity: the key connections are pooled under.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    security: Security,
    /// Lowercase; an IPv6 literal without brackets.
    host: Box<str>,
    port: u16,
}

impl Origin {
    /// The origin of `uri` (which must be absolute, `http` or `https`), secured
    /// with `tls` when it is `https`.
    pub fn from_uri(uri: &Uri, tls: TlsIdentity) -> Result<Origin, Error> {
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            Some(_) => {
                return Err(Error::new(ErrorKind::Request).with_message("unsupported URI scheme"))
            }
            None => {
                return Err(Error::new(ErrorKind::Request)
                    .with_message("the URI is not absolute (no scheme)"))
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| Error::new(ErrorKind::Request).with_message("the URI has no host"))?;
        let raw = authority.host();
        let host = raw
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(raw);
        if host.is_empty() {
            return Err(Error::new(ErrorKind::Request).with_message("the URI has no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            host.to_ascii_lowercase().into_boxed_str()
        } else {
            host.into()
        };
        Ok(Origin {
            security: if https {
                Security::Tls(tls)
            } else {
                Security::Plain
            },
            host,
            port,
        })
    }

    /// The host: a lowercase DNS name, or an IP address literal (without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Plain or TLS.
    pub fn security(&self) -> Security {
        self.security
    }

    /// Whether the origin is reached over TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.security, Security::Tls(_))
    }

    /// The host as an IP address, when it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.is_tls() { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}
