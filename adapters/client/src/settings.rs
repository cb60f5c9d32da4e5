//! Everything a client is configured with, fixed when it is built.

use std::time::Duration;

use crate::h1::Limits;
use crate::tls::TlsConfig;

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
    pub(crate) h2: crate::http2::H2Settings,
    /// Speak HTTP/2 at once on `http://` origins (h2c with prior knowledge).
    pub(crate) h2_prior_knowledge: bool,
    /// WebSockets: their TLS and message limit.
    pub(crate) ws: crate::websocket::WsSettings,
}
