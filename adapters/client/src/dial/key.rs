//! The pool key: which connections may be shared.
//!
//! Two requests may share a connection only if they go to the same scheme, host
//! and port, secured the same way. [`PoolKey`] is exactly that, with the
//! [`TlsIdentity`] of the TLS settings for `https`, so a connection verified
//! against one set of roots, or authenticated with one client certificate, is
//! never handed to a request configured with another.
//!
//! A connection made through a proxy belongs to that proxy as much as to its
//! origin: a tunnel's bytes pass through the proxy, and an `http` request
//! sent to a proxy carries its credentials. So the key holds the proxy's
//! [`Endpoint`] too, credentials included (compared, never printed): such a
//! connection is never handed to a request that goes direct, through another
//! proxy, or with other credentials.
//!
//! A WebSocket is a connection given over to one conversation, opened by a
//! handshake that names a path and carries headers (credentials, the
//! subprotocols asked for). Its key is the origin plus that [`WsTarget`]: a
//! pooled WebSocket is handed out again only to a caller who would have opened
//! exactly the same one.
//!
//! An endpoint of a service (one of the addresses behind its name, see
//! [`Service`](crate::Service)) is a key of its own: the service's origin
//! plus the endpoint's address. Its connections go to that address, and are
//! still verified against the origin's host.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{
    HeaderName, HeaderValue, CONNECTION, HOST, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::uri::{Scheme, Uri};
use http::HeaderMap;

use crate::error::{Error, ErrorKind, Origin};
use crate::proxy::Endpoint;
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

/// Scheme, host, port, TLS identity and proxy (and for an endpoint of a
/// service, its address): the key connections are pooled under.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    security: Security,
    /// Lowercase; an IPv6 literal without brackets.
    host: Host,
    port: u16,
    /// For a WebSocket: the handshake's path and headers.
    websocket: Option<Arc<WsTarget>>,
    /// The proxy connections go through, with its credentials.
    proxy: Option<Arc<Endpoint>>,
    /// For an endpoint of a service: the address its connections go to.
    endpoint: Option<SocketAddr>,
}

/// What a WebSocket handshake asks for beyond its origin: the request target
/// and the caller's headers, which together decide what the server opens.
///
/// Its `Debug` shows the path without its query and the headers' names
/// without their values: a query or a header (`Authorization`, a cookie)
/// often carries a credential.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WsTarget {
    /// The path and query, `/` when the URI has none.
    path: Box<str>,
    /// The caller's headers, sorted by name then value (their order does not
    /// change what is asked for); those the handshake itself sets are left out.
    headers: Box<[(HeaderName, HeaderValue)]>,
}

impl WsTarget {
    /// The request target: the path and query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The caller's handshake headers, in a canonical order.
    pub fn headers(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.headers.iter().map(|(n, v)| (n, v))
    }
}

impl fmt::Debug for WsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsTarget")
            .field("path", &without_query(&self.path))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A request target without its query, which may carry a token.
fn without_query(target: &str) -> &str {
    target.split('?').next().unwrap_or(target)
}

/// Headers every handshake sets itself: the caller's values are not used.
fn is_handshake_header(name: &HeaderName) -> bool {
    name == HOST
        || name == CONNECTION
        || name == UPGRADE
        || name == SEC_WEBSOCKET_KEY
        || name == SEC_WEBSOCKET_VERSION
}

impl PoolKey {
    /// The origin of `uri` (which must be absolute, `http` or `https`), secured
    /// with `tls` when it is `https`.
    pub fn from_uri(uri: &Uri, tls: TlsIdentity) -> Result<PoolKey, Error> {
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            Some(_) => {
                return Err(Error::new(ErrorKind::Request).with_message("unsupported URI scheme"))
            }
            None => return Err(not_absolute()),
        };
        PoolKey::new(uri, https, tls)
    }

    /// The key of a WebSocket to `uri` (`ws` or `wss`) opened with `headers`,
    /// secured with `tls` when it is `wss`.
    pub fn websocket(uri: &Uri, headers: &HeaderMap, tls: TlsIdentity) -> Result<PoolKey, Error> {
        let secure = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("wss") => true,
            Some(s) if s.eq_ignore_ascii_case("ws") => false,
            Some(_) => {
                return Err(Error::new(ErrorKind::Request)
                    .with_message("a WebSocket URI is ws:// or wss://"))
            }
            None => return Err(not_absolute()),
        };
        let mut origin = PoolKey::new(uri, secure, tls)?;
        let mut fields: Vec<(HeaderName, HeaderValue)> = headers
            .iter()
            .filter(|(name, _)| !is_handshake_header(name))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        fields.sort_by(|a, b| (a.0.as_str(), a.1.as_bytes()).cmp(&(b.0.as_str(), b.1.as_bytes())));
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        origin.websocket = Some(Arc::new(WsTarget {
            path: if path.is_empty() { "/" } else { path }.into(),
            headers: fields.into_boxed_slice(),
        }));
        Ok(origin)
    }

    /// The same scheme, host, port and TLS settings, without a WebSocket
    /// target: the key of the HTTP connections to this origin.
    pub fn http(&self) -> PoolKey {
        PoolKey {
            websocket: None,
            ..self.clone()
        }
    }

    fn new(uri: &Uri, https: bool, tls: TlsIdentity) -> Result<PoolKey, Error> {
        let authority = uri
            .authority()
            .ok_or_else(|| Error::new(ErrorKind::Request).with_message("the URI has no host"))?;
        let (raw, port) = split_authority(authority.as_str());
        let host = raw
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(raw);
        if host.is_empty() {
            return Err(Error::new(ErrorKind::Request).with_message("the URI has no host"));
        }
        let port = port
            .and_then(parse_port)
            .unwrap_or(if https { 443 } else { 80 });
        let host = Host::lowercase(host);
        Ok(PoolKey {
            security: if https {
                Security::Tls(tls)
            } else {
                Security::Plain
            },
            host,
            port,
            websocket: None,
            proxy: None,
            endpoint: None,
        })
    }

    /// This key, for connections through `proxy` (or direct, for `None`).
    pub(crate) fn through(mut self, proxy: Option<&Arc<Endpoint>>) -> PoolKey {
        self.proxy = proxy.cloned();
        self
    }

    /// This key, for the endpoint of its service at `addr`: the same
    /// origin, its connections made to `addr` (and direct).
    pub(crate) fn at_endpoint(&self, addr: SocketAddr) -> PoolKey {
        PoolKey {
            endpoint: Some(addr),
            proxy: None,
            ..self.clone()
        }
    }

    /// For an endpoint of a service, the address its connections go to:
    /// the host is the service's name, still what TLS verifies.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.endpoint
    }

    /// The proxy connections to this key go through, if any.
    pub fn proxy(&self) -> Option<&Endpoint> {
        self.proxy.as_deref()
    }

    /// The proxy its requests are sent to in absolute form: that of a plain
    /// `http` origin's key. Every other key's connections through a proxy
    /// are tunnels.
    #[inline]
    pub(crate) fn forwarding_proxy(&self) -> Option<&Endpoint> {
        match (&self.proxy, self.security, &self.websocket) {
            (Some(proxy), Security::Plain, None) => Some(proxy),
            _ => None,
        }
    }

    /// The handshake's target when this is the key of a WebSocket.
    pub fn websocket_target(&self) -> Option<&WsTarget> {
        self.websocket.as_deref()
    }

    /// The host: a lowercase DNS name, or an IP address literal (without brackets).
    pub fn host(&self) -> &str {
        self.host.as_str()
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
        self.host().parse().ok()
    }
}

impl PoolKey {
    /// `http`, `https`, `ws` or `wss`.
    pub(crate) fn scheme(&self) -> &'static str {
        match (self.is_tls(), self.websocket.is_some()) {
            (true, false) => "https",
            (false, false) => "http",
            (true, true) => "wss",
            (false, true) => "ws",
        }
    }

    /// The origin an error with this key names: scheme, host, port, a
    /// WebSocket's path and the proxy's address, never its headers, its
    /// query or the proxy's credentials.
    pub(crate) fn origin(&self) -> Origin {
        let origin = Origin::new(
            self.scheme(),
            self.host(),
            self.port,
            self.websocket.as_deref().map(WsTarget::path),
        );
        match &self.proxy {
            Some(proxy) => origin.through(proxy.to_string()),
            None => origin,
        }
    }
}

impl Error {
    /// This error, naming `key`'s origin unless it names one already. Built
    /// only on the way out of a failure: a request that succeeds never pays
    /// for it.
    pub(crate) fn at(self, key: &PoolKey) -> Error {
        self.with_origin(|| key.origin())
    }
}

/// `Debug` and `Display` print the scheme, host and port, a WebSocket's path
/// without its query, `at` an endpoint's address
/// (`https://api.example:443 at 10.0.0.2:443`) and `via` the proxy's address
/// (`https://example.com:443 via http://proxy.lan:3128`); never a credential.
impl fmt::Debug for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme();
        let host = self.host();
        if host.contains(':') {
            write!(f, "{scheme}://[{host}]:{}", self.port)?;
        } else {
            write!(f, "{scheme}://{host}:{}", self.port)?;
        }
        if let Some(target) = &self.websocket {
            f.write_str(without_query(&target.path))?;
        }
        if let Some(addr) = &self.endpoint {
            write!(f, " at {addr}")?;
        }
        if let Some(proxy) = &self.proxy {
            write!(f, " via {proxy}")?;
        }
        Ok(())
    }
}

/// The host (an IPv6 literal with its brackets) and the port text of an
/// authority `http` has validated, as `Authority::host` and
/// `Authority::port_u16` read them, in one pass over its bytes: this runs for
/// every request.
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    let host_port = crate::h1::without_userinfo(authority);
    let end = if host_port.starts_with('[') {
        host_port
            .bytes()
            .position(|b| b == b']')
            .map(|close| close + 1)
    } else {
        host_port.bytes().position(|b| b == b':')
    };
    match end {
        Some(end) => (&host_port[..end], host_port[end..].strip_prefix(':')),
        None => (host_port, None),
    }
}

/// The longest host held in place; longer ones are allocated. 38 bytes keep a
/// [`Host`] at 40 bytes and hold every host but the rare long name.
const INLINE_HOST: usize = 38;

/// A lowercase host, held in place when short (nearly always), so that the key
/// every request builds costs no allocation. Equality and hashing are those of
/// the text, whichever way it is held.
#[derive(Clone)]
enum Host {
    Inline { len: u8, bytes: [u8; INLINE_HOST] },
    Heap(Box<str>),
}

impl Host {
    /// `host`, lower-cased.
    fn lowercase(host: &str) -> Host {
        if host.len() > INLINE_HOST {
            return Host::Heap(host.to_ascii_lowercase().into_boxed_str());
        }
        let mut bytes = [0; INLINE_HOST];
        let text = &mut bytes[..host.len()];
        text.copy_from_slice(host.as_bytes());
        // The text only: the zeros after it are lowercase already.
        text.make_ascii_lowercase();
        Host::Inline {
            len: host.len() as u8,
            bytes,
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Lower-casing ASCII letters keeps the text the valid UTF-8 it was.
            Host::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Host::Heap(host) => host,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Host::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Host::Heap(host) => host.as_bytes(),
        }
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Host {
    fn eq(&self, other: &Host) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Host {}

impl std::hash::Hash for Host {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes: the bytes, then a byte no UTF-8 text contains.
        state.write(self.as_bytes());
        state.write_u8(0xff);
    }
}

/// A port number: one to five digits, at most 65,535.
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 {
        return None;
    }
    let mut port: u32 = 0;
    for b in text.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        port = port * 10 + u32::from(b - b'0');
    }
    u16::try_from(port).ok()
}

fn not_absolute() -> Error {
    Error::new(ErrorKind::Request).with_message("the URI is not absolute (no scheme)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_websocket_key_prints_no_query_or_header_value() {
        let tls = crate::tls::TlsConfig::builder()
            .build()
            .expect("the default TLS configuration")
            .identity();
        let uri: Uri = "wss://user:secret@Feed.example/live?token=hunter2"
            .parse()
            .expect("a URI");
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer hunter2"),
        );
        let key = PoolKey::websocket(&uri, &headers, tls).expect("a key");
        assert_eq!(key.to_string(), "wss://feed.example:443/live");
        let target = key.websocket_target().expect("a WebSocket's key");
        assert_eq!(target.path(), "/live?token=hunter2", "the handshake's");
        for printed in [
            format!("{key}"),
            format!("{key:?}"),
            format!("{target:?}"),
            format!("{target:#?}"),
        ] {
            assert!(!printed.contains("hunter2"), "{printed}");
            assert!(!printed.contains("secret"), "{printed}");
        }
        assert!(format!("{target:?}").contains("authorization"));
    }

    #[test]
    fn a_proxied_key_is_its_own_and_prints_no_credential() {
        let tls = crate::tls::TlsConfig::builder()
            .build()
            .expect("the default TLS configuration")
            .identity();
        let uri: Uri = "https://example.com/".parse().expect("a URI");
        let direct = PoolKey::from_uri(&uri, tls).expect("a key");
        let proxy = |url: &str| Arc::new(crate::Proxy::all(url).unwrap().endpoint().clone());
        let first = direct.clone().through(Some(&proxy("http://u:hunter2@p:1")));
        let second = direct.clone().through(Some(&proxy("http://u:other@p:1")));
        let anonymous = direct.clone().through(Some(&proxy("http://p:1")));
        let elsewhere = direct.clone().through(Some(&proxy("http://q:1")));
        let keys = [&direct, &first, &second, &anonymous, &elsewhere];
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert_eq!(i == j, a == b, "{a} and {b}");
            }
        }
        assert_eq!(
            first,
            direct.clone().through(Some(&proxy("http://u:hunter2@p:1")))
        );
        assert_eq!(first.to_string(), "https://example.com:443 via http://p:1");
        let origin = first.origin();
        assert_eq!(origin.proxy(), Some("http://p:1"));
        for printed in [
            format!("{first:?}"),
            format!("{origin:?}"),
            format!("{:?}", first.proxy()),
        ] {
            assert!(!printed.contains("hunter2"), "{printed}");
            assert!(!printed.contains("Basic"), "{printed}");
        }
        // Plain http is forwarded; https, and a WebSocket, tunnel.
        assert!(first.forwarding_proxy().is_none());
        let plain = PoolKey::from_uri(&"http://example.com/".parse().unwrap(), tls)
            .unwrap()
            .through(Some(&proxy("http://p:1")));
        assert!(plain.forwarding_proxy().is_some());
        assert!(plain.http().forwarding_proxy().is_some());
        let ws = PoolKey::websocket(
            &"ws://example.com/".parse().unwrap(),
            &HeaderMap::new(),
            tls,
        )
        .unwrap()
        .through(Some(&proxy("http://p:1")));
        assert!(ws.forwarding_proxy().is_none());
        assert!(ws.http().proxy().is_some());
    }

    #[test]
    fn an_endpoint_is_a_key_of_its_own_under_its_service_name() {
        let tls = crate::tls::TlsConfig::builder()
            .build()
            .expect("the default TLS configuration")
            .identity();
        let service = PoolKey::from_uri(&"https://API.example/".parse().unwrap(), tls).unwrap();
        let addr: SocketAddr = "10.0.0.2:8443".parse().unwrap();
        let endpoint = service.at_endpoint(addr);
        assert_ne!(endpoint, service);
        assert_ne!(
            endpoint,
            service.at_endpoint("10.0.0.3:8443".parse().unwrap())
        );
        assert_eq!(endpoint, service.at_endpoint(addr));
        // The name TLS verifies stays the service's.
        assert_eq!(endpoint.host(), "api.example");
        assert_eq!(endpoint.port(), 443);
        assert_eq!(endpoint.endpoint(), Some(addr));
        assert_eq!(service.endpoint(), None);
        assert_eq!(
            endpoint.to_string(),
            "https://api.example:443 at 10.0.0.2:8443"
        );
        // Never through a proxy.
        let proxied = service.through(Some(&Arc::new(
            crate::Proxy::all("http://p:1").unwrap().endpoint().clone(),
        )));
        assert!(proxied.at_endpoint(addr).proxy().is_none());
    }

    #[test]
    fn hosts_are_lowercase_text_however_they_are_held() {
        use std::hash::BuildHasher;
        let hasher = std::collections::hash_map::RandomState::new();
        let long = "A-Very-Long-Host-Name-Of-Forty-Bytes-Or.example";
        for text in [
            "Example.COM",
            "127.0.0.1",
            "::1",
            long,
            &long[..INLINE_HOST],
            "",
        ] {
            let host = Host::lowercase(text);
            assert_eq!(host.as_str(), text.to_ascii_lowercase());
            assert_eq!(
                hasher.hash_one(&host),
                hasher.hash_one(text.to_ascii_lowercase())
            );
        }
        assert!(matches!(Host::lowercase(long), Host::Heap(_)));
        assert!(matches!(
            Host::lowercase(&long[..INLINE_HOST]),
            Host::Inline { .. }
        ));
        assert_eq!(Host::lowercase("A.b"), Host::lowercase("a.B"));
        assert_ne!(Host::lowercase("a.b"), Host::lowercase("a.b."));
    }

    #[test]
    fn ports_are_what_u16_parses_of_plain_digits() {
        for text in [
            "", "0", "80", "08080", "65535", "65536", "99999", "123456", "+1", "1a", " 1",
        ] {
            let expected = text
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| text.parse::<u16>().ok())
                .flatten()
                .filter(|_| text.len() <= 5);
            assert_eq!(parse_port(text), expected, "{text:?}");
        }
    }

    #[test]
    fn splits_authorities_as_http_reads_them() {
        for text in [
            "example.com",
            "example.com:8080",
            "example.com:",
            "user@example.com",
            "user:secret@example.com",
            "user:secret@example.com:8443",
            "[::1]",
            "[::1]:8443",
            "user@[fe80::1]:99",
            "127.0.0.1:65535",
        ] {
            let authority: http::uri::Authority = text.parse().expect("a valid authority");
            let (host, port) = split_authority(authority.as_str());
            assert_eq!(host, authority.host(), "{text}");
            assert_eq!(
                port.and_then(|p| p.parse::<u16>().ok()),
                authority.port_u16(),
                "{text}"
            );
        }
    }
}
