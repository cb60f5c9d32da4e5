//! Encoding a request head.
//!
//! The caller describes a request with `http`'s types and says how its body is
//! framed; the encoder writes the request line, `Host`, the caller's fields and
//! the framing field into the caller's buffer, and hands back a [`BodyEncoder`]
//! for the body and a [`RequestInfo`] for the response parser.
//!
//! The framing of what we send is decided here and nowhere else. A caller's
//! `Content-Length` or `Transfer-Encoding` is accepted only when it says exactly
//! what the declared body framing says, since a request whose fields and body
//! disagree is the raw material of request smuggling: a front end and a back end
//! that read different lengths see different requests. For the same reason every
//! field name must be a token, every value must be free of CR, LF and other
//! control bytes, and a request has at most one `Host`. `http`'s types already
//! uphold most of this, but they can be built unchecked, and the cost of checking
//! again is one pass over bytes we copy anyway.

use bytes::{BufMut, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, PROXY_AUTHORIZATION, TRANSFER_ENCODING};
use http::{request, HeaderValue, Method, Version};

use super::encoder::{BodyEncoder, RequestBody};
use super::fields::{
    is_field_value, is_token_str, list_items, parse_decimal, put_decimal, trim_ows,
    ConnectionTokens,
};
use super::Error;

/// Which form of request-target to send (RFC 9112 section 3.2).
///
/// A `CONNECT` request always uses the authority form (`host:port`), whatever
/// this says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetForm {
    /// The path and query (`/index.html?q=1`), for a request to an origin server.
    #[default]
    Origin,
    /// The whole URI (`http://example.com/index.html?q=1`), for a request to a
    /// forward proxy.
    Absolute,
}

/// What the response parser needs to know about the request it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    head: bool,
    connect: bool,
    close: bool,
}

impl RequestInfo {
    /// A request with `method`, not asking to close the connection.
    pub fn new(method: &Method) -> RequestInfo {
        RequestInfo {
            head: method == Method::HEAD,
            connect: method == Method::CONNECT,
            close: false,
        }
    }

    /// This request, asking (or not) to close the connection after the response.
    #[must_use]
    pub fn with_close(mut self, close: bool) -> RequestInfo {
        self.close = close;
        self
    }

    /// Whether the request was a `HEAD`, whose response has no body.
    pub fn is_head(&self) -> bool {
        self.head
    }

    /// Whether the request was a `CONNECT`, whose successful response turns the
    /// connection into a tunnel.
    pub fn is_connect(&self) -> bool {
        self.connect
    }

    /// Whether the request asked to close the connection after the response.
    pub fn wants_close(&self) -> bool {
        self.close
    }
}

/// What [`encode_request`] wrote: the facts the response parser needs, and the
/// encoder for the body that must follow the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncodedRequest {
    /// The request, as the response parser needs to know it.
    pub info: RequestInfo,
    /// The encoder for the request body.
    pub body: BodyEncoder,
}

/// Appends the head of the request `parts` to `dst`.
///
/// The head is the request line (with `parts.version`: HTTP/1.0 if asked,
/// HTTP/1.1 otherwise), `Host` (the caller's, or else the URI's authority
/// without user information), the caller's fields in the order of their map,
/// the framing field for `body`, and the empty line. Nothing but `dst` is
/// allocated; on error `dst` is left as it was.
///
/// # Errors
///
/// [`Error::InvalidRequest`] when the request cannot be sent safely: an invalid
/// method, target, field name or value; more than one `Host`, or none and no
/// authority in the URI; a caller's `Content-Length` or `Transfer-Encoding` that
/// contradicts `body`; a chunked body on HTTP/1.0; a `CONNECT` without a port.
pub fn encode_request(
    parts: &request::Parts,
    body: RequestBody,
    form: TargetForm,
    dst: &mut BytesMut,
) -> Result<EncodedRequest, Error> {
    let start = dst.len();
    let result = write_request(parts, body, form, None, dst);
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

/// Appends the head of the request `parts` to `dst` as a forward proxy
/// takes it: in absolute form, and with `proxy_authorization` as its
/// `Proxy-Authorization` (in place of the caller's) when there is one.
/// Otherwise as [`encode_request`], with the same errors.
pub fn encode_forwarded_request(
    parts: &request::Parts,
    body: RequestBody,
    proxy_authorization: Option<&HeaderValue>,
    dst: &mut BytesMut,
) -> Result<EncodedRequest, Error> {
    let start = dst.len();
    let result = write_request(
        parts,
        body,
        TargetForm::Absolute,
        proxy_authorization.map(HeaderValue::as_bytes),
        dst,
    );
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

/// Writes the head; `proxy_authorization`, when given, replaces the
/// caller's `Proxy-Authorization`.
fn write_request(
    parts: &request::Parts,
    body: RequestBody,
    form: TargetForm,
    proxy_authorization: Option<&[u8]>,
    dst: &mut BytesMut,
) -> Result<EncodedRequest, Error> {
    let method = parts.method.as_str();
    if !is_token_str(method.as_bytes()) {
        return Err(Error::InvalidRequest("invalid method"));
    }
    let http10 = parts.version == Version::HTTP_10;
    if http10 && body == RequestBody::Chunked {
        return Err(Error::InvalidRequest("a chunked body needs HTTP/1.1"));
    }
    dst.reserve(256);
    dst.put_slice(method.as_bytes());
    dst.put_u8(b' ');
    write_target(parts, form, dst)?;
    dst.put_slice(if http10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });

    write_host(parts, dst)?;
    let mut framed = false;
    let mut connection = ConnectionTokens::default();
    for (name, value) in &parts.headers {
        if name == HOST || (proxy_authorization.is_some() && name == PROXY_AUTHORIZATION) {
            continue;
        }
        let value = value.as_bytes();
        if !is_token_str(name.as_str().as_bytes()) {
            return Err(Error::InvalidRequest("invalid header name"));
        }
        if !is_field_value(value) {
            return Err(Error::InvalidRequest("invalid header value"));
        }
        if name == CONTENT_LENGTH {
            check_content_length(framed, value, body)?;
            framed = true;
        } else if name == TRANSFER_ENCODING {
            check_transfer_encoding(framed, value, body)?;
            framed = true;
        } else if name == CONNECTION {
            connection.add(value);
        }
        put_field(dst, name.as_str().as_bytes(), value);
    }
    if let Some(credentials) = proxy_authorization {
        if !is_field_value(credentials) {
            return Err(Error::InvalidRequest("invalid header value"));
        }
        put_field(dst, b"proxy-authorization", credentials);
    }
    if !framed {
        write_framing(&parts.method, body, dst);
    }
    dst.put_slice(b"\r\n");

    Ok(EncodedRequest {
        info: RequestInfo::new(&parts.method).with_close(connection.closes(http10)),
        body: BodyEncoder::new(body),
    })
}

/// Writes the request-target, then checks it is one word of visible ASCII.
fn write_target(parts: &request::Parts, form: TargetForm, dst: &mut BytesMut) -> Result<(), Error> {
    let uri = &parts.uri;
    let start = dst.len();
    if parts.method == Method::CONNECT {
        let authority = uri
            .authority()
            .ok_or(Error::InvalidRequest("CONNECT needs host:port"))?;
        let host_port = without_userinfo(authority.as_str());
        dst.put_slice(host_port.as_bytes());
        if !has_port(host_port) {
            let port = match uri.scheme_str() {
                Some("http") => 80,
                Some("https") => 443,
                _ => return Err(Error::InvalidRequest("CONNECT needs host:port")),
            };
            dst.put_u8(b':');
            put_decimal(dst, port);
        }
    } else {
        if form == TargetForm::Absolute {
            let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
                return Err(Error::InvalidRequest(
                    "absolute-form needs a scheme and an authority",
                ));
            };
            dst.put_slice(scheme.as_bytes());
            dst.put_slice(b"://");
            dst.put_slice(without_userinfo(authority.as_str()).as_bytes());
        }
        let path = uri.path();
        dst.put_slice(if path.is_empty() { "/" } else { path }.as_bytes());
        if let Some(query) = uri.query() {
            dst.put_u8(b'?');
            dst.put_slice(query.as_bytes());
        }
    }
    let target = dst.get(start..).unwrap_or_default();
    if target.is_empty() || !target.iter().all(|b| (b'!'..=b'~').contains(b)) {
        return Err(Error::InvalidRequest("invalid request target"));
    }
    Ok(())
}

/// Writes the one `Host` field first, as RFC 9112 section 3.2 asks.
fn write_host(parts: &request::Parts, dst: &mut BytesMut) -> Result<(), Error> {
    let mut hosts = parts.headers.get_all(HOST).into_iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(Error::InvalidRequest("more than one Host header")),
        (Some(host), None) if is_field_value(host.as_bytes()) => host.as_bytes(),
        (Some(_), None) => return Err(Error::InvalidRequest("invalid Host")),
        // An `http` authority holds URI characters only, every one of them
        // allowed in a field value: only its emptiness needs a look.
        (None, _) => parts
            .uri
            .authority()
            .map(|authority| without_userinfo(authority.as_str()).as_bytes())
            .ok_or(Error::InvalidRequest(
                "no Host header and no authority in the URI",
            ))?,
    };
    if host.is_empty() {
        return Err(Error::InvalidRequest("invalid Host"));
    }
    put_field(dst, b"host", host);
    Ok(())
}

/// A caller's `Content-Length` must be the only one and state the declared length.
fn check_content_length(framed: bool, value: &[u8], body: RequestBody) -> Result<(), Error> {
    if framed {
        return Err(Error::InvalidRequest("more than one framing header"));
    }
    let declared = match body {
        RequestBody::Empty => 0,
        RequestBody::Length(n) => n,
        RequestBody::Chunked => {
            return Err(Error::InvalidRequest("Content-Length with a chunked body"))
        }
    };
    match parse_decimal(trim_ows(value)) {
        Some(n) if n == declared => Ok(()),
        _ => Err(Error::InvalidRequest(
            "Content-Length disagrees with the body length",
        )),
    }
}

/// A caller's `Transfer-Encoding` must be the only one, declare a chunked body,
/// and end in `chunked`, which it names once.
fn check_transfer_encoding(framed: bool, value: &[u8], body: RequestBody) -> Result<(), Error> {
    if framed {
        return Err(Error::InvalidRequest("more than one framing header"));
    }
    if body != RequestBody::Chunked {
        return Err(Error::InvalidRequest(
            "Transfer-Encoding without a chunked body",
        ));
    }
    let is_chunked = |item: &[u8]| item.eq_ignore_ascii_case(b"chunked");
    let chunked = list_items(value).filter(|item| is_chunked(item)).count();
    match list_items(value).last() {
        Some(last) if is_chunked(last) && chunked == 1 => Ok(()),
        _ => Err(Error::InvalidRequest(
            "Transfer-Encoding must end in chunked, once",
        )),
    }
}

/// Writes the framing field the codec owns, when the caller did not give it.
fn write_framing(method: &Method, body: RequestBody, dst: &mut BytesMut) {
    match body {
        RequestBody::Empty => {
            if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
                dst.put_slice(b"content-length: 0\r\n");
            }
        }
        RequestBody::Length(n) => {
            dst.put_slice(b"content-length: ");
            put_decimal(dst, n);
            dst.put_slice(b"\r\n");
        }
        RequestBody::Chunked => dst.put_slice(b"transfer-encoding: chunked\r\n"),
    }
}

fn put_field(dst: &mut BytesMut, name: &[u8], value: &[u8]) {
    dst.put_slice(name);
    dst.put_slice(b": ");
    dst.put_slice(value);
    dst.put_slice(b"\r\n");
}

/// `host[:port]` of an authority: user information is never sent (RFC 9110
/// section 4.2.4).
pub(crate) fn without_userinfo(authority: &str) -> &str {
    // A byte loop: authorities are short, too short for a vectorized search
    // to pay for its set-up.
    match authority.bytes().rposition(|b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    }
}

/// Whether `host_port` (a bracketed IPv6 literal or a name, then maybe `:port`)
/// has a non-empty port.
fn has_port(host_port: &str) -> bool {
    let after_host = if host_port.starts_with('[') {
        host_port.find(']').and_then(|end| host_port.get(end + 1..))
    } else {
        host_port.find(':').and_then(|colon| host_port.get(colon..))
    };
    matches!(after_host, Some(rest) if rest.len() > 1 && rest.starts_with(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_hold_only_field_value_bytes() {
        // `write_host` sends a URI's authority as `Host` without checking it
        // byte by byte: every byte `http` lets into an authority, alone or
        // among others, must be one a field value may hold.
        let mut accepted = 0;
        for b in 0..=u8::MAX {
            for bytes in [vec![b], vec![b'a', b, b'z'], vec![b'a', b'@', b]] {
                if let Ok(authority) = http::uri::Authority::try_from(bytes.as_slice()) {
                    accepted += 1;
                    let host = without_userinfo(authority.as_str()).as_bytes();
                    assert!(is_field_value(host), "{bytes:?}");
                }
            }
        }
        assert!(accepted > 150, "only {accepted} authorities accepted");
    }

    #[test]
    fn ports_are_found_after_names_and_ipv6_literals() {
        assert!(has_port("example.com:443"));
        assert!(has_port("[::1]:8080"));
        assert!(!has_port("example.com"));
        assert!(!has_port("example.com:"));
        assert!(!has_port("[::1]"));
        assert!(!has_port("[::1"));
    }

    #[test]
    fn a_forwarded_request_is_absolute_with_the_proxy_s_credentials() {
        let (mut parts, ()) = http::Request::get("http://user:pw@Example.com:8080/a?b")
            .header("proxy-authorization", "Basic caller")
            .header("x-a", "1")
            .body(())
            .unwrap()
            .into_parts();
        let credentials = HeaderValue::from_static("Basic cHJveHk6cHc=");
        let mut out = BytesMut::new();
        encode_forwarded_request(&parts, RequestBody::Empty, Some(&credentials), &mut out).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "GET http://Example.com:8080/a?b HTTP/1.1\r\nhost: Example.com:8080\r\n\
             x-a: 1\r\nproxy-authorization: Basic cHJveHk6cHc=\r\n\r\n"
        );
        // Without credentials of its own, the caller's header goes as it is.
        out.clear();
        encode_forwarded_request(&parts, RequestBody::Empty, None, &mut out).unwrap();
        assert!(std::str::from_utf8(&out)
            .unwrap()
            .contains("proxy-authorization: Basic caller"));
        // A direct request is untouched.
        parts.headers.remove("proxy-authorization");
        out.clear();
        encode_request(&parts, RequestBody::Empty, TargetForm::Origin, &mut out).unwrap();
        assert!(out.starts_with(b"GET /a?b HTTP/1.1\r\n"));
    }

    #[test]
    fn user_information_is_dropped() {
        assert_eq!(without_userinfo("user:pw@host:1"), "host:1");
        assert_eq!(without_userinfo("a@b@host"), "host");
        assert_eq!(without_userinfo("host"), "host");
    }
}
