//! The client conformance suite, one binary: each module is one area of the
//! client, and each of its tests runs on every adapter, tokio and smol
//! (`bodies::on_tokio::…`, `bodies::on_smol::…`), through `conformance!` in
//! `support`.
//!
//! The nginx and tinyproxy tests return early with a message when their
//! server is not installed, unless `MUXPOOL_REQUIRE_NGINX` or
//! `MUXPOOL_REQUIRE_TINYPROXY` is set.

mod support;

mod bodies;
mod cancellation;
mod channel;
mod deadlines;
#[cfg(all(
    feature = "gzip",
    feature = "deflate",
    feature = "brotli",
    feature = "zstd"
))]
mod decompression;
mod default_headers;
mod errors;
mod hostile;
mod http2;
mod http2_dead_peer;
mod http2_early_response;
mod http2_goaway;
mod http2_header_limit;
mod http2_lowered_limit;
mod http2_refused;
mod http2_unanswered;
#[cfg(feature = "json")]
mod json;
mod keep_alive;
mod metrics;
mod nginx;
mod nginx_http2;
#[cfg(feature = "opentelemetry")]
mod otel;
mod proxy;
mod proxy_failures;
mod redirects;
mod resolved_services;
mod resolver;
mod restart;
mod retry;
mod runtimes;
mod server_close;
mod services;
mod session_affinity;
mod smol_executor;
mod tls;
mod tower;
mod traces;
mod types;
mod websocket;
mod websocket_http2;
mod websocket_reconnect;
