//! OpenTelemetry's HTTP semantic conventions' values for what a request is:
//! its method and its protocol version, written once for the request spans
//! (`trace`) and the OpenTelemetry instruments (`metrics::otel`), which must
//! name them alike.

use http::Version;

/// `http.request.method`: the method when RFC 9110 (or RFC 5789, `PATCH`)
/// names it, `_OTHER` for any other. The request spans spell the same table
/// out as literals, since a span's name must be one.
#[cfg(any(feature = "opentelemetry", test))]
pub(crate) fn method_name(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::PATCH => "PATCH",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// `network.protocol.version` of a version muxpool speaks (`1.0`, `1.1`,
/// `2`); `None` for any other.
pub(crate) fn protocol_version(version: Version) -> Option<&'static str> {
    match version {
        Version::HTTP_10 => Some("1.0"),
        Version::HTTP_11 => Some("1.1"),
        Version::HTTP_2 => Some("2"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn methods_and_versions_have_their_convention_names() {
        assert_eq!(method_name(&Method::GET), "GET");
        assert_eq!(method_name(&Method::PATCH), "PATCH");
        assert_eq!(
            method_name(&Method::from_bytes(b"PURGE").unwrap()),
            "_OTHER"
        );
        assert_eq!(protocol_version(Version::HTTP_11), Some("1.1"));
        assert_eq!(protocol_version(Version::HTTP_2), Some("2"));
        assert_eq!(protocol_version(Version::HTTP_3), None);
    }
}
