//! Following redirects: which answers are followed, where to, and with which
//! method, body and headers.
//!
//! The rules are the ones browsers and curl follow (RFC 9110, section 15.4):
//!
//! - `301` and `302` keep the method and body, except that a `POST` becomes
//!   a `GET` without a body (what every browser does, and the RFC allows);
//! - `303` makes any method but `HEAD` a `GET` without a body;
//! - `307` and `308` keep the method and the body, which must be sent again:
//!   a body in memory is; a streamed one, which can be sent once, is not, and
//!   the `307` or `308` comes back to the caller as it is.
//!
//! A redirect to another origin (scheme, host or port) never carries the
//! request's credentials: `Authorization`, `Proxy-Authorization`, `Cookie`
//! and `Host` are left behind. The whole chain shares the request's one
//! timeout.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::request::Parts;
use http::{Method, Response, StatusCode, Uri};

use super::{Client, RequestTimeout};
use crate::body::Body;
use crate::conn::outgoing::Outgoing;
use crate::error::{Error, Step};
use crate::runtime::Runtime;

/// The request headers that describe its body, dropped with the body when
/// a redirect makes the request a `GET`.
const BODY_HEADERS: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::TRANSFER_ENCODING,
];

/// The request headers that carry credentials or name the origin, dropped
/// when a redirect leads to another origin.
const ORIGIN_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    header::HOST,
];

/// A redirect response's body is read to its end (so that its connection
/// can be reused) when it is at most this long; a longer one is dropped,
/// and its connection with it.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// Sends the request, and then each request its redirects lead to, up to
/// `max`, within the request's one timeout. `replay` is the body's content
/// when it can be sent again.
pub(super) async fn follow<R: Runtime>(
    client: &Client<R>,
    mut parts: Parts,
    body: Result<Outgoing, Error>,
    replay: Option<Bytes>,
    max: u32,
) -> Result<Response<Body>, Error> {
    let timeout = client.timeout_of(&parts.extensions);
    let started = client.handle.inner.runtime.now();
    let mut body = Some(body);
    let mut followed = 0;
    loop {
        let this = match body.take() {
            Some(first) => first,
            None => Ok(replay
                .clone()
                .map_or_else(Body::empty, Body::from)
                .into_outgoing()?),
        };
        let response = client.exchange(&mut parts.clone(), this).await?;
        let Some(next) = next_request(&parts, &response, replay.is_some()) else {
            return Ok(response);
        };
        if followed == max {
            return Err(at(
                client,
                &parts,
                Error::too_many_redirects(response.status()),
            ));
        }
        followed += 1;
        drain(response).await;
        let spent = client
            .handle
            .inner
            .runtime
            .now()
            .saturating_duration_since(started);
        let Some(left) = remaining(timeout, spent) else {
            return Err(at(
                client,
                &parts,
                Error::timed_out(Step::Request, Some(timeout)),
            ));
        };
        let (next, keeps_body) = next;
        parts = next;
        parts.extensions.insert(RequestTimeout(left));
        if !keeps_body {
            body = Some(Ok(Outgoing::whole(Bytes::new())));
        }
    }
}

/// `error`, naming the origin of the request it ended.
fn at<R: Runtime>(client: &Client<R>, request: &Parts, error: Error) -> Error {
    match client.handle.inner.key_of(&request.uri) {
        Ok(key) => error.at(&key),
        Err(_) => error,
    }
}

/// The request `response` redirects `request` to, if the rules follow it,
/// and whether it keeps the body. `replayable`: the body can be sent again.
fn next_request(
    request: &Parts,
    response: &Response<Body>,
    replayable: bool,
) -> Option<(Parts, bool)> {
    let status = response.status();
    let keeps_method = match status {
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => request.method != Method::POST,
        StatusCode::SEE_OTHER => request.method == Method::HEAD,
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => true,
        _ => return None,
    };
    let location = response.headers().get(header::LOCATION)?.to_str().ok()?;
    let target = resolve(&request.uri, location)?;
    let carries_body =
        keeps_method && request.method != Method::GET && request.method != Method::HEAD;
    if carries_body && !replayable {
        // A streamed body was sent once and cannot be sent again.
        return None;
    }
    let mut next = request.clone();
    if !keeps_method {
        next.method = Method::GET;
        strip(&mut next.headers, &BODY_HEADERS);
    }
    if !same_origin(&request.uri, &target) {
        strip(&mut next.headers, &ORIGIN_HEADERS);
    }
    next.uri = target;
    Some((next, keeps_method))
}

fn strip(headers: &mut HeaderMap, names: &[HeaderName]) {
    for name in names {
        headers.remove(name);
    }
}

/// Whether two absolute URIs have one origin: scheme, host and port (the
/// scheme's default when none is written).
fn same_origin(a: &Uri, b: &Uri) -> bool {
    let port = |u: &Uri| {
        u.port_u16().or(match u.scheme_str() {
            Some("https" | "wss") => Some(443),
            Some("http" | "ws") => Some(80),
            _ => None,
        })
    };
    a.scheme() == b.scheme()
        && a.host().map(str::to_ascii_lowercase) == b.host().map(str::to_ascii_lowercase)
        && port(a) == port(b)
}

/// `location` resolved against `base` (RFC 3986, section 5.2): an absolute
/// URI as it is, a scheme-relative or absolute path on the base's scheme
/// or authority, a relative path against the base's directory. Only `http`
/// and `https` targets are followed; a fragment is dropped.
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    let location = location.split('#').next().unwrap_or_default();
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let absolute = if let Some((target_scheme, _)) = location.split_once("://") {
        if target_scheme.contains(['/', '?']) {
            None
        } else {
            Some(location.to_owned())
        }
    } else {
        None
    };
    let text = match absolute {
        Some(text) => text,
        None if location.starts_with("//") => format!("{scheme}:{location}"),
        None if location.starts_with('/') => format!("{scheme}://{authority}{location}"),
        None if location.starts_with('?') => {
            format!("{scheme}://{authority}{}{location}", base.path())
        }
        None => {
            let dir = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
            format!("{scheme}://{authority}{dir}/{location}")
        }
    };
    let uri: Uri = text.parse().ok()?;
    let uri = remove_dot_segments(uri)?;
    matches!(uri.scheme_str(), Some("http" | "https")).then_some(uri)
}

/// `uri` with `.` and `..` segments of its path resolved away.
fn remove_dot_segments(uri: Uri) -> Option<Uri> {
    let path = uri.path();
    if !path.split('/').any(|s| s == "." || s == "..") {
        return Some(uri);
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
        if i == last && (*segment == "." || *segment == "..") {
            out.push("");
        }
    }
    let mut path = format!("/{}", out.join("/"));
    if let Some(query) = uri.query() {
        path.push('?');
        path.push_str(query);
    }
    let mut parts = uri.into_parts();
    parts.path_and_query = Some(path.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// Reads a redirect's body to its end when it is short, so that its
/// connection goes back to the pool; drops a long one.
async fn drain(response: Response<Body>) {
    use http_body::Body as _;
    let body = response.into_body();
    if body.size_hint().upper().is_some_and(|n| n <= DRAIN_LIMIT) {
        let _ = body.bytes().await;
    }
}

/// How long the request may still take, for the next hop: the whole chain
/// shares one timeout.
fn remaining(timeout: Duration, spent: Duration) -> Option<Duration> {
    timeout.checked_sub(spent).filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn locations_resolve_as_rfc_3986_says() {
        let base = uri("http://a.example/b/c/d?q");
        for (location, want) in [
            ("https://other.example/x", "https://other.example/x"),
            ("//other.example/x", "http://other.example/x"),
            ("/x/y", "http://a.example/x/y"),
            ("g", "http://a.example/b/c/g"),
            ("../g", "http://a.example/b/g"),
            ("./g?z", "http://a.example/b/c/g?z"),
            ("?z", "http://a.example/b/c/d?z"),
            ("/a/b/../../c#frag", "http://a.example/c"),
        ] {
            assert_eq!(
                resolve(&base, location)
                    .as_ref()
                    .map(Uri::to_string)
                    .as_deref(),
                Some(want),
                "{location}"
            );
        }
        assert_eq!(resolve(&base, "ftp://files.example/x"), None);
        assert_eq!(resolve(&base, "http://[bad"), None);
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin(
            &uri("http://a.example/x"),
            &uri("http://A.example:80/y")
        ));
        assert!(!same_origin(
            &uri("http://a.example/"),
            &uri("https://a.example/")
        ));
        assert!(!same_origin(
            &uri("http://a.example/"),
            &uri("http://a.example:8080/")
        ));
        assert!(!same_origin(
            &uri("http://a.example/"),
            &uri("http://b.example/")
        ));
    }

    #[test]
    fn the_chain_shares_one_timeout() {
        let second = Duration::from_secs(1);
        assert_eq!(remaining(3 * second, second), Some(2 * second));
        assert_eq!(remaining(second, second), None);
        assert_eq!(remaining(second, 2 * second), None);
    }
}
