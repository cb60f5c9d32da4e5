//! ALPN: which protocols a connection offers, and what the handshake chose.

use rustls::CommonState;

use super::error::TlsError;

const H2: &[u8] = b"h2";
const HTTP11: &[u8] = b"http/1.1";

/// The application protocols offered in the TLS handshake (ALPN).
///
/// The server picks one of them; [`negotiated`] reads its choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Alpn {
    /// Offer `h2`, then `http/1.1`: HTTP/2 wherever the server speaks it. The
    /// default, and what browsers do.
    #[default]
    Http1AndHttp2,
    /// Offer only `http/1.1`. Use this for WebSocket, which runs over HTTP/1.1
    /// (RFC 6455), and for servers whose HTTP/2 must be avoided. A server that
    /// speaks only `h2` refuses the handshake (`no_application_protocol`).
    Http1Only,
    /// Offer only `h2`. A server that knows ALPN but not `h2` refuses the
    /// handshake; a server that ignores ALPN selects nothing, which [`negotiated`]
    /// reports as [`Negotiated::Http1`], so a caller that needs HTTP/2 should treat
    /// that as a failure.
    Http2Only,
    /// Send no ALPN extension. The server cannot signal HTTP/2, so the connection
    /// is HTTP/1.1.
    None,
}

impl Alpn {
    /// The protocol names sent in the ClientHello, in order of preference.
    pub const fn protocols(self) -> &'static [&'static [u8]] {
        match self {
            Alpn::Http1AndHttp2 => &[H2, HTTP11],
            Alpn::Http1Only => &[HTTP11],
            Alpn::Http2Only => &[H2],
            Alpn::None => &[],
        }
    }
}

/// The HTTP version a finished handshake settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Negotiated {
    /// HTTP/1.1: `http/1.1` was selected, or no protocol at all (a server without
    /// ALPN, or [`Alpn::None`]).
    Http1,
    /// HTTP/2: `h2` was selected.
    Http2,
}

impl Negotiated {
    /// Maps the ALPN protocol a handshake selected (`None` if none was) to an HTTP
    /// version; `None` for a protocol that is neither `h2` nor `http/1.1`.
    ///
    /// ```
    /// # use muxpool_client::tls::Negotiated;
    /// assert_eq!(Negotiated::from_alpn(Some(b"h2")), Some(Negotiated::Http2));
    /// assert_eq!(Negotiated::from_alpn(None), Some(Negotiated::Http1));
    /// assert_eq!(Negotiated::from_alpn(Some(b"spdy/3.1")), None);
    /// ```
    pub fn from_alpn(protocol: Option<&[u8]>) -> Option<Negotiated> {
        match protocol {
            None | Some(HTTP11) => Some(Negotiated::Http1),
            Some(H2) => Some(Negotiated::Http2),
            Some(_) => None,
        }
    }
}

/// The HTTP version the finished handshake of `conn` settled on.
///
/// Takes any rustls connection state, so a `&rustls::ClientConnection` works
/// directly. Errors: [`TlsError::HandshakeIncomplete`] while the handshake is
/// still running (ALPN may not be known yet), and [`TlsError::UnexpectedAlpn`] for
/// a protocol that is neither `h2` nor `http/1.1`, which a connection made by a
/// [`TlsConfig`](super::TlsConfig) never selects.
pub fn negotiated(conn: &CommonState) -> Result<Negotiated, TlsError> {
    if conn.is_handshaking() {
        return Err(TlsError::HandshakeIncomplete);
    }
    let protocol = conn.alpn_protocol();
    Negotiated::from_alpn(protocol).ok_or_else(|| TlsError::UnexpectedAlpn {
        protocol: protocol.unwrap_or_default().to_vec(),
    })
}
