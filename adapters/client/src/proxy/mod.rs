//! HTTP proxies: which requests go through one, and the proxy a connection
//! is made through.
//!
//! Many networks let clients out only through a forward proxy, and the tools
//! that run there agree on how to find it: the `HTTP_PROXY` family of
//! environment variables, read as curl and reqwest read them. So a client
//! reads them when it is built, unless told not to
//! ([`ClientBuilder::no_proxy`](crate::ClientBuilder::no_proxy)) or given
//! proxies of its own ([`ClientBuilder::proxy`](crate::ClientBuilder::proxy),
//! which replace the environment's).
//!
//! How a request goes through a proxy depends on its origin:
//!
//! - `https` and `wss`: a tunnel. The client asks the proxy for
//!   `CONNECT host:port`, and on a `2xx` runs TLS with the origin inside the
//!   tunnel, with the usual verification and ALPN, so HTTP/2 works through
//!   the proxy. The proxy sees the origin's name and port, never a request.
//! - `http`: each request goes to the proxy in absolute form
//!   (`GET http://host:port/path HTTP/1.1`) with the proxy's credentials; the
//!   proxy forwards it.
//! - `ws`, and `http` with HTTP/2 prior knowledge: a tunnel too, since the
//!   proxy would not forward them.
//!
//! The proxy is part of a connection's [`PoolKey`](crate::PoolKey): one made
//! through a proxy is never handed to a request that goes direct, or through
//! another proxy, or with other credentials. Credentials are compared, never
//! printed: an [`Endpoint`] prints as `http://host:port`.
//!
//! Only `http://` proxies are supported: the client speaks to the proxy in
//! clear text (its `CONNECT` and, for `http` origins, its requests), as curl
//! and most proxies do by default. TLS to the proxy itself (`https://`
//! proxies) and SOCKS are not.

mod env;
mod no_proxy;

pub use no_proxy::NoProxy;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderValue;

use crate::error::{Error, ErrorKind};

/// A proxy, and which requests go through it: those to `http` origins, to
/// `https` origins, or all, but for its [exceptions](Proxy::no_proxy).
///
/// Made from a URL: `http://host:port`, with optional credentials for Basic
/// authentication (`http://user:password@host:port`, percent-encoded as URLs
/// are); the port defaults to 80. A URL without a scheme (`proxy.lan:3128`)
/// is taken as `http://`.
///
/// ```
/// use muxpool_client::{NoProxy, Proxy};
///
/// let proxy = Proxy::all("http://user:secret@proxy.lan:3128")?
///     .no_proxy(NoProxy::parse("localhost, .internal.example, 10.0.0.0/8"));
/// assert_eq!(proxy.endpoint().to_string(), "http://proxy.lan:3128");
/// assert!(proxy.endpoint().has_credentials());
/// assert!(!format!("{proxy:?}").contains("secret"));
/// # Ok::<(), muxpool_client::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Proxy {
    endpoint: Arc<Endpoint>,
    scope: Scope,
    no_proxy: NoProxy,
}

/// Which origins a proxy serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    All,
    /// `http` and `ws`.
    Http,
    /// `https` and `wss`.
    Https,
}

/// Where a proxy is and how the client identifies itself to it: the part of
/// a [`PoolKey`](crate::PoolKey) that says a connection goes through it.
///
/// Two endpoints are equal when their host, port and credentials are: the
/// credentials are compared, and never printed. `Display` is
/// `http://host:port`; `Debug` adds whether there are credentials.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Lowercase; an IPv6 literal without brackets.
    host: Box<str>,
    port: u16,
    /// `Basic ...`, marked sensitive.
    authorization: Option<HeaderValue>,
}

impl Proxy {
    /// A proxy for every request.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `url` is not an `http://` URL with a host.
    pub fn all(url: &str) -> Result<Proxy, Error> {
        Proxy::new(url, Scope::All)
    }

    /// A proxy for requests to `http` (and `ws`) origins only.
    ///
    /// # Errors
    ///
    /// As [`Proxy::all`].
    pub fn http(url: &str) -> Result<Proxy, Error> {
        Proxy::new(url, Scope::Http)
    }

    /// A proxy for requests to `https` (and `wss`) origins only.
    ///
    /// # Errors
    ///
    /// As [`Proxy::all`].
    pub fn https(url: &str) -> Result<Proxy, Error> {
        Proxy::new(url, Scope::Https)
    }

    fn new(url: &str, scope: Scope) -> Result<Proxy, Error> {
        Ok(Proxy {
            endpoint: Arc::new(Endpoint::parse(url)?),
            scope,
            no_proxy: NoProxy::default(),
        })
    }

    /// This proxy with Basic credentials, in place of any its URL gave.
    ///
    /// ```
    /// let proxy = muxpool_client::Proxy::all("http://proxy.lan:3128")?
    ///     .basic_auth("alice", "s3cret");
    /// assert!(proxy.endpoint().has_credentials());
    /// # Ok::<(), muxpool_client::Error>(())
    /// ```
    pub fn basic_auth(mut self, user: &str, password: &str) -> Proxy {
        let mut endpoint = (*self.endpoint).clone();
        endpoint.authorization = Some(basic(user.as_bytes(), password.as_bytes()));
        self.endpoint = Arc::new(endpoint);
        self
    }

    /// Origins that do not go through this proxy (in place of any given
    /// before).
    pub fn no_proxy(mut self, rules: NoProxy) -> Proxy {
        self.no_proxy = rules;
        self
    }

    /// Where the proxy is.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// This proxy's endpoint when it serves an origin (`tls` for `https` and
    /// `wss`) at `host` and `port`.
    pub(crate) fn serving(&self, tls: bool, host: &str, port: u16) -> Option<&Arc<Endpoint>> {
        let scheme = match self.scope {
            Scope::All => true,
            Scope::Http => !tls,
            Scope::Https => tls,
        };
        (scheme && !self.no_proxy.matches(host, port)).then_some(&self.endpoint)
    }
}

impl Endpoint {
    /// The proxy's host: a lowercase name, or an IP address literal (without
    /// brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the client sends the proxy credentials.
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }

    /// The host as an IP address, when it is a literal.
    pub(crate) fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The `Proxy-Authorization` value, when there are credentials.
    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }

    /// Reads `http://[user:password@]host[:port][/]`, or the same without
    /// `http://`.
    fn parse(url: &str) -> Result<Endpoint, Error> {
        let invalid = |message| Error::new(ErrorKind::Config).with_message(message);
        let url = url.trim();
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(invalid(
                    "https:// proxies are not supported: use an http:// proxy",
                ))
            }
            Some(_) => return Err(invalid("only http:// proxies are supported")),
            None => url,
        };
        // The authority ends at the path, if any; only `/` is expected there.
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let parsed: http::uri::Authority = host_port
            .parse()
            .map_err(|_| invalid("the proxy URL has no valid host"))?;
        let host = parsed.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(invalid("the proxy URL has no valid host"));
        }
        // What follows the host: nothing, or `:` and the port.
        let port = match host_port[parsed.host().len()..].strip_prefix(':') {
            None => 80,
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| invalid("the proxy URL's port is not a port number"))?,
        };
        let authorization = userinfo.map(|userinfo| {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            basic(&percent_decode(user), &percent_decode(password))
        });
        Ok(Endpoint {
            host: host.to_ascii_lowercase().into(),
            port,
            authorization,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}", self.host, self.port)
        }
    }
}

/// The address, and whether there are credentials: never what they are.
impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &format_args!("{self}"))
            .field("credentials", &self.has_credentials())
            .finish()
    }
}

/// A request's own choice of proxy, in place of the client's: put it in the
/// request's extensions.
///
/// ```
/// use muxpool_client::{Body, Proxy, ProxyChoice};
///
/// let mut direct = http::Request::get("http://intranet.example/").body(Body::empty())?;
/// direct.extensions_mut().insert(ProxyChoice::Direct);
///
/// let mut through = http::Request::get("https://example.com/").body(Body::empty())?;
/// let proxy = Proxy::all("http://proxy.lan:3128")?;
/// through.extensions_mut().insert(ProxyChoice::Through(proxy));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ProxyChoice {
    /// No proxy: the request connects to its origin directly.
    Direct,
    /// Through this proxy, when it serves the request's origin (its scheme,
    /// and not one of its exceptions); directly otherwise.
    Through(Proxy),
}

impl ProxyChoice {
    /// The proxy this choice sends a request to an origin through.
    pub(crate) fn serving(&self, tls: bool, host: &str, port: u16) -> Option<&Arc<Endpoint>> {
        match self {
            ProxyChoice::Direct => None,
            ProxyChoice::Through(proxy) => proxy.serving(tls, host, port),
        }
    }
}

/// The proxies of one client, the first that serves an origin chosen: none
/// (the common case, one branch), those the builder was given, or the
/// environment's.
#[derive(Clone, Debug, Default)]
pub(crate) struct Proxies {
    list: Box<[Proxy]>,
}

impl Proxies {
    /// These proxies, tried in order.
    pub(crate) fn new(list: Vec<Proxy>) -> Proxies {
        Proxies {
            list: list.into_boxed_slice(),
        }
    }

    /// The environment's proxies, read now (see [`env`]). Variables that
    /// name no usable proxy are skipped, with a warning that names them
    /// (never their values, which may hold credentials).
    pub(crate) fn from_env() -> Proxies {
        let read = env::from_vars(|name| std::env::var(name).ok());
        for name in read.skipped {
            tracing::warn!(
                variable = name,
                "the proxy variable is not an http:// proxy URL and is ignored"
            );
        }
        read.proxies
    }

    /// The proxy a request to an origin (`tls` for `https` and `wss`) at
    /// `host` and `port` goes through.
    #[inline]
    pub(crate) fn serving(&self, tls: bool, host: &str, port: u16) -> Option<&Arc<Endpoint>> {
        if self.list.is_empty() {
            return None;
        }
        self.list.iter().find_map(|p| p.serving(tls, host, port))
    }

    /// Whether there is none.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// `Basic base64(user:password)`, marked sensitive.
fn basic(user: &[u8], password: &[u8]) -> HeaderValue {
    let mut pair = Vec::with_capacity(user.len() + 1 + password.len());
    pair.extend_from_slice(user);
    pair.push(b':');
    pair.extend_from_slice(password);
    let mut value = b"Basic ".to_vec();
    base64(&pair, &mut value);
    let mut value = HeaderValue::from_bytes(&value).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

/// Appends the standard, padded base64 of `input` to `out`.
fn base64(input: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

/// `text` with its `%XX` escapes decoded; a `%` not followed by two hex
/// digits is kept as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_the_standard_padded_one() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("user:pass", "dXNlcjpwYXNz"),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            let mut out = Vec::new();
            base64(input.as_bytes(), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{input:?}");
        }
    }

    #[test]
    fn urls_give_host_port_and_credentials() {
        let e = Endpoint::parse("http://user:pass@Proxy.LAN:3128/").unwrap();
        assert_eq!((e.host(), e.port()), ("proxy.lan", 3128));
        assert_eq!(e.authorization().unwrap(), "Basic dXNlcjpwYXNz");
        assert!(e.authorization().unwrap().is_sensitive());
        let e = Endpoint::parse("proxy.lan").unwrap();
        assert_eq!(
            (e.host(), e.port(), e.has_credentials()),
            ("proxy.lan", 80, false)
        );
        let e = Endpoint::parse("HTTP://[::1]:8080").unwrap();
        assert_eq!((e.host(), e.port()), ("::1", 8080));
        assert_eq!(e.to_string(), "http://[::1]:8080");
        // Percent-encoded credentials are decoded; a password may hold `:`
        // and `@` once encoded.
        let e = Endpoint::parse("http://a%40b:p%3Aw%40@10.0.0.1:1").unwrap();
        let mut expected = b"Basic ".to_vec();
        base64(b"a@b:p:w@", &mut expected);
        assert_eq!(e.authorization().unwrap().as_bytes(), &expected[..]);
        // A user without a password.
        let e = Endpoint::parse("http://alice@proxy:1").unwrap();
        let mut expected = b"Basic ".to_vec();
        base64(b"alice:", &mut expected);
        assert_eq!(e.authorization().unwrap().as_bytes(), &expected[..]);
    }

    #[test]
    fn unsupported_or_malformed_urls_are_refused() {
        for url in [
            "https://proxy:443",
            "socks5://proxy:1080",
            "http://",
            "http://:3128",
            "http://proxy:",
            "http://proxy:99999",
            "http://pro xy:1",
            "",
        ] {
            let error = Endpoint::parse(url).expect_err(url);
            assert_eq!(error.kind(), ErrorKind::Config, "{url}");
        }
    }

    #[test]
    fn credentials_are_compared_and_never_printed() {
        let a = Proxy::all("http://u:first@proxy:1").unwrap();
        let b = Proxy::all("http://u:second@proxy:1").unwrap();
        let none = Proxy::all("http://proxy:1").unwrap();
        assert_ne!(a.endpoint(), b.endpoint());
        assert_ne!(a.endpoint(), none.endpoint());
        assert_eq!(
            a.endpoint(),
            Proxy::all("proxy:1")
                .unwrap()
                .basic_auth("u", "first")
                .endpoint()
        );
        for printed in [
            format!("{a:?}"),
            format!("{a:#?}"),
            a.endpoint().to_string(),
            format!("{:?}", a.endpoint()),
        ] {
            assert!(!printed.contains("first"), "{printed}");
            assert!(!printed.contains("dTpmaXJzdA"), "{printed}");
        }
    }

    #[test]
    fn a_proxy_serves_its_schemes_but_its_exceptions() {
        let http = Proxy::http("http://p:1").unwrap();
        let https = Proxy::https("http://p:1").unwrap();
        let all = Proxy::all("http://p:1")
            .unwrap()
            .no_proxy(NoProxy::parse(".internal"));
        assert!(http.serving(false, "a.example", 80).is_some());
        assert!(http.serving(true, "a.example", 443).is_none());
        assert!(https.serving(true, "a.example", 443).is_some());
        assert!(https.serving(false, "a.example", 80).is_none());
        assert!(all.serving(true, "a.example", 443).is_some());
        assert!(all.serving(false, "db.internal", 80).is_none());
        let proxies = Proxies::new(vec![https, all]);
        assert!(proxies.serving(false, "db.internal", 80).is_none());
        assert!(proxies.serving(false, "a.example", 80).is_some());
        assert!(Proxies::default().serving(true, "a.example", 443).is_none());
    }
}
