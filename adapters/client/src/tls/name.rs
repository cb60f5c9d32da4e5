//! Host strings to rustls server names.

use std::net::Ipv6Addr;

use rustls_pki_types::ServerName;

use super::error::TlsError;

/// Parses a host into the name a certificate is verified against.
///
/// Accepts DNS names (`example.com`, also with a trailing dot), IPv4 addresses
/// (`127.0.0.1`) and IPv6 addresses with or without the brackets of a URI
/// authority (`::1` or `[::1]`, as `http::Uri::host` returns it). For an IP
/// address the certificate must carry that address as an IP subject alternative
/// name, and no SNI is sent (TLS forbids IP addresses in SNI).
///
/// Errors: [`TlsError::InvalidServerName`] for anything else, such as an empty
/// string, a name with a port (`example.com:443`) or illegal characters.
///
/// ```
/// # use muxpool_client::tls::server_name;
/// use rustls_pki_types::ServerName;
/// assert!(matches!(server_name("[::1]")?, ServerName::IpAddress(_)));
/// assert!(matches!(server_name("example.com")?, ServerName::DnsName(_)));
/// assert!(server_name("example.com:443").is_err());
/// # Ok::<(), muxpool_client::tls::TlsError>(())
/// ```
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if let Ok(ip) = inner.parse::<Ipv6Addr>() {
            return Ok(ServerName::from(ip));
        }
    }
    ServerName::try_from(host.to_owned()).map_err(|source| TlsError::InvalidServerName {
        name: host.to_owned(),
        source,
    })
}
