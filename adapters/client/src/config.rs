//! Everything a client is configured with, fixed when it is built: the
//! settings of every protocol in one place.
//!
//! A leaf: the builder writes these, and every layer above reads them, so
//! they name nothing but the codec's limits, the TLS configuration, the
//! proxies, the resolver, the services and what is decompressed.

use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite;

use crate::decompress::Decompression;
use crate::h1::Limits;
use crate::proxy::Proxies;
use crate::resolve::Resolve;
use crate::service::Service;
use crate::tls::TlsConfig;

/// The largest message a WebSocket sends or accepts unless the
/// [`ClientBuilder`](crate::ClientBuilder) says otherwise: 64 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Which redirects the client follows: none (the default), or up to a
/// number of them per request.
///
/// A client that follows none hands every `3xx` to the caller, as a
/// forwarding proxy must. With a limit, a redirect the rules allow is
/// followed (see [`ClientBuilder::redirect`](crate::ClientBuilder::redirect)),
/// and one more than the limit fails the request with
/// [`ErrorKind::Redirect`](crate::ErrorKind::Redirect).
///
/// ```
/// use muxpool_client::Redirect;
///
/// assert_eq!(Redirect::default(), Redirect::none());
/// assert_eq!(Redirect::limit(10).max(), Some(10));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Redirect {
    max: Option<u32>,
}

impl Redirect {
    /// Follow none: every `3xx` is the caller's. The default.
    pub const fn none() -> Redirect {
        Redirect { max: None }
    }

    /// Follow up to `max` redirects per request (browsers stop at about
    /// 20, curl at 50 when told to follow, reqwest at 10). `limit(0)`
    /// follows none but fails a request that is redirected.
    pub const fn limit(max: u32) -> Redirect {
        Redirect { max: Some(max) }
    }

    /// The most redirects followed per request, or `None` when none are.
    pub const fn max(&self) -> Option<u32> {
        self.max
    }
}

/// The configuration of one client; see [`ClientBuilder`](crate::ClientBuilder).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// The core's configuration.
    pub(crate) pool: muxpool_core::PoolConfig,
    /// TLS for `https` origins.
    pub(crate) tls: TlsConfig,
    /// Limits on what a server can make us buffer in a response head.
    pub(crate) h1_limits: Limits,
    /// From sending a request to its response head.
    pub(crate) request_timeout: Duration,
    /// The longest wait for the next bytes of a response body.
    pub(crate) read_timeout: Duration,
    /// The most [`Body::bytes`](crate::Body::bytes) collects.
    pub(crate) max_collect: usize,
    /// Our side of every HTTP/2 connection.
    pub(crate) h2: H2Settings,
    /// Speak HTTP/2 at once on `http://` origins (h2c with prior knowledge).
    pub(crate) h2_prior_knowledge: bool,
    /// WebSockets: their TLS and message limit.
    pub(crate) ws: WsSettings,
    /// Headers every request carries unless it sets them itself (the
    /// User-Agent among them); empty by default, and then never looked at.
    pub(crate) default_headers: http::HeaderMap,
    /// The proxies requests go through; none, the common case, costs a
    /// branch when a request's key is worked out.
    pub(crate) proxies: Proxies,
    /// Where names lead: the resolver given (or the runtime's) behind a
    /// cache.
    pub(crate) resolver: Arc<dyn Resolve>,
    /// Which redirects are followed: none, by default.
    pub(crate) redirect: Redirect,
    /// What responses are decompressed, and within which limits.
    pub(crate) decompression: Decompression,
    /// The `Accept-Encoding` a request gets when its response may be
    /// decoded; `None` when nothing is (no coding compiled in, or
    /// decompression off), and then nothing else is looked at.
    pub(crate) accept_encoding: Option<http::HeaderValue>,
    /// The services of many endpoints, each balanced; none by default.
    pub(crate) services: Vec<Service>,
}

/// HTTP/2 settings of the client's side of every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct H2Settings {
    pub(crate) initial_stream_window: u32,
    pub(crate) initial_connection_window: u32,
    pub(crate) max_frame_size: u32,
    /// The largest response header list accepted (RFC 9113's
    /// SETTINGS_MAX_HEADER_LIST_SIZE): HTTP/1.1's `max_header_bytes`.
    pub(crate) max_header_list_size: u32,
}

impl Default for H2Settings {
    fn default() -> Self {
        H2Settings {
            initial_stream_window: 256 * 1024,
            initial_connection_window: 1024 * 1024,
            max_frame_size: 16 * 1024,
            max_header_list_size: u32::try_from(Limits::default().max_header_bytes())
                .unwrap_or(u32::MAX),
        }
    }
}

/// The WebSocket settings of a client.
#[derive(Clone, Debug)]
pub(crate) struct WsSettings {
    /// The largest message sent or accepted.
    pub(crate) max_message: usize,
    /// TLS for `wss`: the client's, offering only `http/1.1`.
    pub(crate) tls: TlsConfig,
    /// Open WebSockets as streams of the origin's HTTP/2 connection when its
    /// server offers extended CONNECT (RFC 8441).
    pub(crate) over_http2: bool,
}

impl WsSettings {
    pub(crate) fn new(tls: &TlsConfig, max_message: usize, over_http2: bool) -> WsSettings {
        WsSettings {
            max_message,
            tls: tls.http1_only(),
            over_http2,
        }
    }

    /// tungstenite's configuration for these limits.
    pub(crate) fn protocol_config(&self) -> tungstenite::protocol::WebSocketConfig {
        tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_message))
    }
}
