//! The [`ClientBuilder`]: every setting of a client, each with a finite,
//! conservative default.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use muxpool_core::{Backoff, Circuit, HealthCheck, PoolConfig, RetryBudget, Saturation};
use rustls::crypto::CryptoProvider;

use crate::body::DEFAULT_MAX_COLLECT;
use crate::config::{H2Settings, Redirect, Settings, WsSettings, DEFAULT_MAX_MESSAGE};
use crate::decompress::Decompression;
use crate::error::{Error, ErrorKind};
use crate::h1::Limits;
use crate::pool::Shared;
use crate::proxy::{Proxies, Proxy};
use crate::resolve::{CachingResolver, Resolve, RuntimeResolver};
use crate::runtime::Runtime;
use crate::service::Service;
use crate::tls::{Alpn, TlsConfig};

use super::{Client, Handle, DEFAULT_READ_TIMEOUT, DEFAULT_TIMEOUT};

impl<R: Runtime + Default> Client<R> {
    /// A client with the default configuration on the runtime `R`.
    ///
    /// # Panics
    ///
    /// Never with the bundled configuration; see [`ClientBuilder::build`] for the
    /// errors a custom one can have.
    pub fn new() -> Client<R> {
        Client::builder()
            .build()
            .expect("the default configuration is valid")
    }

    /// A builder, starting from the defaults.
    pub fn builder() -> ClientBuilder<R> {
        ClientBuilder::with_runtime(R::default())
    }
}

impl<R: Runtime + Default> Default for Client<R> {
    fn default() -> Self {
        Client::new()
    }
}

/// Builds a [`Client`]: the pool's limits and timeouts, TLS, HTTP limits.
///
/// Every setting has a finite, conservative default.
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder<R> {
    runtime: R,
    pool: PoolConfig,
    named: Named,
    tls: Option<TlsConfig>,
    crypto_provider: Option<Arc<CryptoProvider>>,
    resolver: Option<Arc<dyn Resolve>>,
    redirect: Redirect,
    h1_limits: Limits,
    request_timeout: Duration,
    read_timeout: Duration,
    max_collect: usize,
    h2: H2Settings,
    h2_prior_knowledge: bool,
    max_websocket_message: usize,
    websocket_over_http2: bool,
    default_headers: http::HeaderMap,
    /// The proxies given; when there are none, the environment's unless
    /// `proxy_env` is off.
    proxies: Vec<Proxy>,
    proxy_env: bool,
    decompression: Decompression,
    services: Vec<Service>,
}

impl<R: Runtime> ClientBuilder<R> {
    /// A builder for a client on `runtime`.
    pub fn with_runtime(runtime: R) -> ClientBuilder<R> {
        ClientBuilder {
            runtime,
            pool: default_pool(),
            named: Named::default(),
            tls: None,
            crypto_provider: None,
            resolver: None,
            redirect: Redirect::none(),
            h1_limits: Limits::default(),
            request_timeout: DEFAULT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_collect: DEFAULT_MAX_COLLECT,
            h2: H2Settings::default(),
            h2_prior_knowledge: false,
            max_websocket_message: DEFAULT_MAX_MESSAGE,
            websocket_over_http2: false,
            default_headers: http::HeaderMap::new(),
            proxies: Vec::new(),
            proxy_env: true,
            decompression: Decompression::new(),
            services: Vec::new(),
        }
    }

    /// The whole pool configuration at once (limits, timeouts, backoff,
    /// circuit, seed): the base that the pool settings made by name are laid
    /// over, whether they are made before or after this call, in place of the
    /// client's defaults (which are [`PoolConfig::default`]'s with health
    /// checks on). A seed changed from [`PoolConfig::default`]'s is used as
    /// given; a default one is replaced by the client's own, as without this
    /// call.
    ///
    /// ```
    /// # fn main() -> Result<(), muxpool_client::Error> {
    /// # let runtime = muxpool_testkit::scripted::ScriptedNet::new(Default::default());
    /// use muxpool_client::PoolConfig;
    ///
    /// let mut config = PoolConfig::default();
    /// config.max_connections = 50;
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .max_connections_per_key(4)
    ///     .pool(config)
    ///     .build()?;
    /// assert_eq!(client.pool_config().max_connections, 50);
    /// assert_eq!(client.pool_config().max_connections_per_key, 4);
    /// # Ok(())
    /// # }
    /// ```
    pub fn pool(mut self, config: PoolConfig) -> Self {
        self.pool = config;
        self
    }

    /// The TLS configuration for `https` origins. By default: the bundled Mozilla
    /// roots, verification on, h2 and http/1.1 offered with ALPN (the server
    /// chooses; one client speaks both), and the crypto provider chosen as
    /// [`crypto_provider`](Self::crypto_provider) says. A whole
    /// `rustls::ClientConfig` made elsewhere comes in through
    /// [`TlsConfig::from_rustls`].
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Which redirects the client follows: none by default, so that every
    /// `3xx` is the caller's (a forwarding proxy must see them), or up to
    /// [`Redirect::limit`] per request.
    ///
    /// A redirect is followed as browsers and curl follow it: `301` and
    /// `302` keep the method and body except that a `POST` becomes a `GET`
    /// without a body; `303` makes any method but `HEAD` a `GET` without a
    /// body; `307` and `308` keep both, and are followed only when the body
    /// can be sent again (one in memory; a stream is sent once, and its
    /// `307` or `308` comes back as it is). A redirect to another origin
    /// (scheme, host or port) never carries `Authorization`,
    /// `Proxy-Authorization`, `Cookie` or `Host`. The chain shares the
    /// request's one timeout; one redirect more than the limit fails it with
    /// [`ErrorKind::Redirect`](crate::ErrorKind::Redirect).
    ///
    /// ```
    /// # fn main() -> Result<(), muxpool_client::Error> {
    /// # let runtime = muxpool_testkit::scripted::ScriptedNet::new(Default::default());
    /// use muxpool_client::Redirect;
    ///
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .redirect(Redirect::limit(10))
    ///     .build()?;
    /// # drop(client);
    /// # Ok(())
    /// # }
    /// ```
    pub fn redirect(mut self, policy: Redirect) -> Self {
        self.redirect = policy;
        self
    }

    /// Where names lead: the client finds a host's addresses through
    /// `resolver` instead of the runtime's resolver (the system's
    /// `getaddrinfo` on tokio and smol). A closure `Fn(&str, u16) -> impl
    /// Future<Output = io::Result<Vec<SocketAddr>>>` is a resolver, as is
    /// any [`Resolve`].
    ///
    /// Whichever resolves, a [`CachingResolver`](crate::CachingResolver)
    /// sits in front of it, timed by the runtime's clock: an answer is kept
    /// for the TTL it came with ([`Resolved::ttl`](crate::resolve::Resolved)),
    /// or [`DEFAULT_TTL`](crate::resolve::DEFAULT_TTL) when it came with none;
    /// failures are not kept. IP literals are never resolved. Each
    /// connection is still verified against the name in the URL, not the
    /// address.
    ///
    /// ```
    /// # async fn demo<R: muxpool_client::runtime::Runtime>(runtime: R) -> Result<(), muxpool_client::Error> {
    /// use std::net::SocketAddr;
    ///
    /// // `api.internal` is a service on this machine; other names as usual.
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .resolver(|name: &str, port: u16| {
    ///         let name = name.to_owned();
    ///         async move {
    ///             match name.as_str() {
    ///                 "api.internal" => Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]),
    ///                 _ => tokio::net::lookup_host((name.as_str(), port)).await.map(Vec::from_iter),
    ///             }
    ///         }
    ///     })
    ///     .build()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// The rustls crypto provider of the default TLS configuration (a
    /// configuration passed to [`tls`](Self::tls) carries its own). Without
    /// one, the process default is used when the application installed one,
    /// else aws-lc-rs when muxpool's `aws-lc-rs` feature (on by default)
    /// compiled it in; see [`crate::tls`]. muxpool never installs a process
    /// default itself.
    ///
    /// ```
    /// # async fn demo<R: muxpool_client::runtime::Runtime>(runtime: R) -> Result<(), muxpool_client::Error> {
    /// use std::sync::Arc;
    ///
    /// // TLS 1.3 only, from aws-lc-rs.
    /// let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    /// provider.cipher_suites.retain(|suite| suite.tls13().is_some());
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .crypto_provider(Arc::new(provider))
    ///     .build()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.crypto_provider = Some(provider);
        self
    }

    /// Limits on the response heads a server can make the client buffer.
    /// HTTP/2 responses are held to `max_header_bytes` too: it is the header
    /// list size the client announces (SETTINGS_MAX_HEADER_LIST_SIZE), and a
    /// response over it fails with [`ErrorKind::Protocol`](crate::ErrorKind)
    /// saying so.
    pub fn h1_limits(mut self, limits: Limits) -> Self {
        self.h1_limits = limits;
        self
    }

    /// How long a request may take until its response head. Default 30 s; a
    /// request can override it with a [`RequestTimeout`](crate::RequestTimeout) extension.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The longest wait for the next bytes of a response body. Default 30 s.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The most [`Body::bytes`](crate::Body::bytes) and
    /// [`Body::text`](crate::Body::text) collect. Default 64 MiB.
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_collect = bytes;
        self
    }

    /// Speak HTTP/2 at once on `http://` origins (h2c with prior knowledge, RFC
    /// 9113 section 3.3), for servers known to support it. Off by default.
    pub fn http2_prior_knowledge(mut self, enabled: bool) -> Self {
        self.h2_prior_knowledge = enabled;
        self
    }

    /// HTTP/2 flow-control windows we grant the server: per stream and per
    /// connection. Defaults 256 KiB and 1 MiB.
    pub fn http2_windows(mut self, stream: u32, connection: u32) -> Self {
        self.h2.initial_stream_window = stream;
        self.h2.initial_connection_window = connection;
        self
    }

    /// The largest HTTP/2 frame payload we accept. Default 16 KiB.
    pub fn http2_max_frame_size(mut self, bytes: u32) -> Self {
        self.h2.max_frame_size = bytes;
        self
    }

    /// The largest WebSocket message sent or accepted, in bytes. Default
    /// 64 MiB. A larger one to send is refused with
    /// [`WebSocketError::MessageTooLarge`](crate::WebSocketError::MessageTooLarge);
    /// a larger one from the server ends its WebSocket with that error.
    pub fn max_websocket_message(mut self, bytes: usize) -> Self {
        self.max_websocket_message = bytes;
        self
    }

    /// Open WebSockets as streams of the origin's HTTP/2 connection (RFC
    /// 8441, extended CONNECT) when its server offers that, so that many
    /// WebSockets share one connection; otherwise, and for `ws://` without
    /// [`http2_prior_knowledge`](Self::http2_prior_knowledge), they fall back
    /// to the HTTP/1.1 upgrade. Off by default.
    pub fn websocket_over_http2(mut self, enabled: bool) -> Self {
        self.websocket_over_http2 = enabled;
        self
    }

    /// Headers every request sent with [`Client::send`] carries unless it
    /// sets them itself (a request's own value of a header replaces all of
    /// the defaults' values of it). Added to those set before. None by
    /// default.
    ///
    /// ```
    /// # fn main() -> Result<(), muxpool_client::Error> {
    /// # let runtime = muxpool_testkit::scripted::ScriptedNet::new(Default::default());
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-api-version", http::HeaderValue::from_static("2"));
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .default_headers(headers)
    ///     .user_agent(http::HeaderValue::from_static("inventory-sync/1.4"))
    ///     .build()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn default_headers(mut self, headers: http::HeaderMap) -> Self {
        for name in headers.keys() {
            self.default_headers.remove(name);
            for value in headers.get_all(name) {
                self.default_headers.append(name.clone(), value.clone());
            }
        }
        self
    }

    /// The `User-Agent` every request carries unless it sets its own. None by
    /// default: the client sends no `User-Agent` of its own.
    pub fn user_agent(mut self, agent: http::HeaderValue) -> Self {
        self.default_headers.insert(http::header::USER_AGENT, agent);
        self
    }

    /// Sends requests through `proxy`: those to the origins it serves (all,
    /// `http` or `https` ones, but its exceptions). Proxies given this way
    /// replace the environment's; given more than once, the first that
    /// serves an origin is used.
    ///
    /// `https` and `wss` origins are reached through a `CONNECT` tunnel, with
    /// TLS (and HTTP/2, when the origin offers it) inside; each request to
    /// an `http` origin goes to the proxy in absolute form. A proxy that
    /// refuses a tunnel fails the request with
    /// [`ErrorKind::Proxy`]; one that refuses an `http` request
    /// answers it (a `407` response, say). See [`crate::proxy`].
    ///
    /// ```
    /// # fn main() -> Result<(), muxpool_client::Error> {
    /// # let runtime = muxpool_testkit::scripted::ScriptedNet::new(Default::default());
    /// use muxpool_client::{NoProxy, Proxy};
    ///
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .proxy(
    ///         Proxy::https("http://proxy.lan:3128")?
    ///             .basic_auth("alice", "s3cret")
    ///             .no_proxy(NoProxy::parse("localhost, .internal.example")),
    ///     )
    ///     .build()?;
    /// # drop(client);
    /// # Ok(())
    /// # }
    /// ```
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxies.push(proxy);
        self
    }

    /// No proxy: every request connects to its origin directly, whatever the
    /// environment says, and the proxies given before are forgotten (those
    /// given after are used).
    ///
    /// By default, a client without [`proxy`](Self::proxy) takes its proxies
    /// from the environment when it is built, as curl does: `https_proxy`
    /// for `https` and `wss` origins, `http_proxy` for `http` and `ws` ones
    /// (and `HTTP_PROXY`, but not in a CGI program, where `REQUEST_METHOD`
    /// is set and `HTTP_PROXY` is a request's header), `all_proxy` for
    /// either when its own is not set, each read in lowercase first, then
    /// uppercase; `no_proxy` lists the exceptions ([`NoProxy`](crate::NoProxy)),
    /// and loopback origins (`localhost`, `127.0.0.0/8`, `::1`) are always
    /// among them. A variable that is not an `http://` proxy URL is ignored,
    /// with a warning through `tracing`.
    ///
    /// ```
    /// # fn main() -> Result<(), muxpool_client::Error> {
    /// # let runtime = muxpool_testkit::scripted::ScriptedNet::new(Default::default());
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .no_proxy()
    ///     .build()?;
    /// # drop(client);
    /// # Ok(())
    /// # }
    /// ```
    pub fn no_proxy(mut self) -> Self {
        self.proxies.clear();
        self.proxy_env = false;
        self
    }

    /// What responses the client decompresses, and within which limits.
    /// By default every coding compiled in (the Cargo features `gzip`,
    /// `deflate`, `brotli`, `zstd`; none by default), a decoded body held
    /// to 200 times the compressed bytes it came from
    /// ([`Decompression`] says why); [`Decompression::off`] turns it off.
    ///
    /// With a coding on, a request is sent with `Accept-Encoding` naming
    /// the enabled codings, and a response in one of them comes back
    /// decoded as it is read, without its `Content-Encoding` and
    /// `Content-Length`. A request that sets its own `Accept-Encoding` (or
    /// gets one from [`default_headers`](Self::default_headers)), asks for a
    /// `Range`, or is a `HEAD` is sent as it is, and its response comes back
    /// as the server sent it; so do responses with status 204, 206 or 304,
    /// in an unknown coding, or in several.
    ///
    /// ```
    /// # fn main() -> Result<(), muxpool_client::Error> {
    /// # let runtime = muxpool_testkit::scripted::ScriptedNet::new(Default::default());
    /// use muxpool_client::{Coding, Decompression};
    ///
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .decompression(
    ///         Decompression::new()
    ///             .without(Coding::Deflate)
    ///             .max_ratio(Some(50)) // a bomb stops at 50 times what it sent
    ///             .max_size(Some(256 << 20)), // and any body at 256 MiB decoded
    ///     )
    ///     .build()?;
    /// assert!(!client.decompression().is_enabled(Coding::Deflate));
    /// # Ok(())
    /// # }
    /// ```
    pub fn decompression(mut self, decompression: Decompression) -> Self {
        self.decompression = decompression;
        self
    }

    /// A service of many endpoints: every request to its authority (scheme,
    /// host and port) goes to one of its endpoints, chosen per request by
    /// its balancer (see [`Service`]). Each endpoint is an origin of its own
    /// in the pool (its own connections, limits, circuit and
    /// [metrics](crate::Client::metrics)), verified against the service's
    /// host. A request that failed to reach an endpoint (its connect
    /// refused, its circuit open) or that was cut before any response byte
    /// and may be sent again goes to an endpoint chosen anew. Given twice
    /// for one authority, the last is kept. None by default, and then a
    /// request pays one branch for the feature.
    ///
    /// A [`Service::resolved`] takes its endpoints from the
    /// [resolver](Self::resolver) instead: one per address its name has,
    /// looked up again as the answer's TTL ends.
    ///
    /// ```
    /// # fn main() -> Result<(), muxpool_client::Error> {
    /// # let runtime = muxpool_testkit::scripted::ScriptedNet::new(Default::default());
    /// use std::net::SocketAddr;
    /// use muxpool_client::{Endpoint, Service};
    ///
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .service(
    ///         Service::new("https://api.example")?
    ///             .endpoint(SocketAddr::from(([10, 0, 0, 1], 443)))
    ///             .endpoint(SocketAddr::from(([10, 0, 0, 2], 443)))
    ///             .endpoint_with(SocketAddr::from(([10, 1, 0, 1], 443)), Endpoint::new(1, 1)),
    ///     )
    ///     // One endpoint per address of `search.example`, as DNS says.
    ///     .service(Service::resolved("https://search.example")?)
    ///     .build()?;
    /// # drop(client);
    /// # Ok(())
    /// # }
    /// ```
    pub fn service(mut self, service: Service) -> Self {
        self.services.push(service);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the pool configuration is refused (a zero
    /// limit, a zero timeout), the default TLS configuration cannot be built,
    /// or a [`service`](Self::service) has no endpoint (or, resolved, has
    /// endpoints given), an endpoint of weight zero, or a balancer
    /// configuration the core refuses.
    pub fn build(self) -> Result<Client<R>, Error> {
        let config_error = |message| Error::new(ErrorKind::Config).with_message(message);
        if self.request_timeout.is_zero() || self.read_timeout.is_zero() {
            return Err(config_error("timeouts must be longer than zero"));
        }
        let tls = match self.tls {
            Some(tls) => tls,
            None => {
                let mut tls = TlsConfig::builder().alpn(Alpn::Http1AndHttp2);
                if let Some(provider) = self.crypto_provider {
                    tls = tls.crypto_provider(provider);
                }
                tls.build().map_err(|e| {
                    config_error("the default TLS configuration failed").with_source(e)
                })?
            }
        };
        let seeded = self.named.seed.is_some() || self.pool.seed != PoolConfig::default().seed;
        let mut pool = self.pool;
        self.named.apply(&mut pool);
        if let (Some(Some(lifetime)), None) = (self.named.max_lifetime, self.named.lifetime_jitter)
        {
            // A lifetime set by name keeps the jitter below it.
            pool.lifetime_jitter = pool.lifetime_jitter.min(lifetime / 2);
        }
        if !seeded {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(pool.seed);
            pool.seed = hasher.finish();
        }
        for service in &self.services {
            service.validate()?;
        }
        let ws = WsSettings::new(&tls, self.max_websocket_message, self.websocket_over_http2);
        let settings = Settings {
            ws,
            pool,
            tls,
            h1_limits: self.h1_limits,
            request_timeout: self.request_timeout,
            read_timeout: self.read_timeout,
            max_collect: self.max_collect,
            h2: H2Settings {
                max_header_list_size: u32::try_from(self.h1_limits.max_header_bytes())
                    .unwrap_or(u32::MAX),
                ..self.h2
            },
            h2_prior_knowledge: self.h2_prior_knowledge,
            default_headers: self.default_headers,
            proxies: match (self.proxies.is_empty(), self.proxy_env) {
                (false, _) => Proxies::new(self.proxies),
                (true, true) => Proxies::from_env(),
                (true, false) => Proxies::default(),
            },
            redirect: self.redirect,
            resolver: {
                let runtime = self.runtime.clone();
                let inner = self
                    .resolver
                    .unwrap_or_else(|| Arc::new(RuntimeResolver(self.runtime.clone())));
                Arc::new(CachingResolver::over(inner).clock(move || runtime.now()))
            },
            accept_encoding: self.decompression.accept_encoding(),
            decompression: self.decompression,
            services: self.services,
        };
        Ok(Client {
            handle: Arc::new(Handle {
                inner: Shared::new(self.runtime, settings)?,
                #[cfg(feature = "opentelemetry")]
                otel: std::sync::OnceLock::new(),
            }),
        })
    }
}

/// How long an HTTP/2 or WebSocket connection waits idle in the pool before
/// the client pings it, by default: a connection the network or a middlebox
/// dropped without a word (NAT and load balancer idle timeouts are often a
/// few minutes) is found and closed before a request is sent on it.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// How long the ping's answer may take, by default.
pub const DEFAULT_HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The client's pool configuration before any setting: the core's defaults,
/// with health checks on.
fn default_pool() -> PoolConfig {
    let mut pool = PoolConfig::default();
    pool.health_check = HealthCheck::new(
        Some(DEFAULT_HEALTH_CHECK_INTERVAL),
        DEFAULT_HEALTH_CHECK_TIMEOUT,
    );
    pool
}

/// Declares the pool settings a builder makes by name: a field of [`Named`]
/// for each, the builder's method that sets it, and the step of
/// [`Named::apply`] that lays it over the base configuration.
macro_rules! named_pool_settings {
    ($($(#[$doc:meta])* $setter:ident($arg:ident: $ty:ty) => $field:ident;)*) => {
        /// The pool settings made by name, kept apart from the configuration
        /// given whole ([`ClientBuilder::pool`]) and laid over it when the
        /// client is built: the order of the calls does not matter.
        #[derive(Debug, Default, Clone, Copy)]
        struct Named {
            $($field: Option<$ty>,)*
        }

        impl Named {
            fn apply(&self, pool: &mut PoolConfig) {
                $(if let Some(value) = self.$field {
                    pool.$field = value;
                })*
            }
        }

        /// The pool's settings by name, each laid over
        /// [`pool`](ClientBuilder::pool)'s configuration whatever the order of
        /// the calls.
        impl<R: Runtime> ClientBuilder<R> {
            $($(#[$doc])*
            pub fn $setter(mut self, $arg: $ty) -> Self {
                self.named.$field = Some($arg);
                self
            })*
        }
    };
}

named_pool_settings! {
    /// The seed of the pool's random choices (lifetime jitter, backoff
    /// jitter), so that a test or a simulation replays them. By default each
    /// client draws its own, so that a fleet of processes does not expire its
    /// connections or retry its connects in step.
    ///
    /// ```
    /// # fn main() -> Result<(), muxpool_client::Error> {
    /// # let runtime = muxpool_testkit::scripted::ScriptedNet::new(Default::default());
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .seed(7)
    ///     .build()?;
    /// assert_eq!(client.pool_config().seed, 7);
    /// # Ok(())
    /// # }
    /// ```
    seed(seed: u64) => seed;

    /// Connections per origin (scheme, host, port, TLS settings). Default 100.
    max_connections_per_key(max: u32) => max_connections_per_key;

    /// Connections over all origins. Default 10,000.
    max_connections(max: u32) => max_connections;

    /// Connects in flight per origin at once, so that a burst of requests on
    /// a cold origin never becomes a storm of connects. Default 8.
    max_connecting_per_key(max: u32) => max_connecting_per_key;

    /// Requests that may wait for a connection per origin; more are refused with
    /// [`ErrorKind::PoolExhausted`]. Default 10,000.
    max_waiting_per_key(max: u32) => max_waiters_per_key;

    /// How long a connect (resolution, TCP, TLS, the HTTP/2 handshake) may
    /// take. Default 10 s.
    connect_timeout(timeout: Duration) => connect_timeout;

    /// Close connections idle this long; `None` keeps them. Default 60 s,
    /// shorter than common servers' keep-alive timeouts so the client closes
    /// first.
    idle_timeout(timeout: Option<Duration>) => idle_timeout;

    /// Retire connections this long after they connected; `None` never
    /// retires them. Default 300 s. The lifetime jitter is kept under half of
    /// it unless set by name too.
    max_lifetime(lifetime: Option<Duration>) => max_lifetime;

    /// Each connection's lifetime is shortened by a random part of this, so
    /// that connections made together do not expire together. Default 30 s;
    /// it must be shorter than [`max_lifetime`](Self::max_lifetime).
    lifetime_jitter(jitter: Duration) => lifetime_jitter;

    /// Retire a connection after this many requests; `None` is unlimited
    /// (the default). For servers that leak per connection, or to spread
    /// load behind a connection-level balancer.
    max_requests_per_connection(max: Option<u64>) => max_requests_per_connection;

    /// Our cap on concurrent streams per HTTP/2 connection (the connection's
    /// capacity is the smaller of this and the server's limit). Default 256.
    max_streams_per_connection(max: u32) => max_streams_per_connection;

    /// What a request does when every HTTP/2 connection of its origin is at
    /// its stream limit: open another ([`Saturation::Spill`], the default) or
    /// wait for a stream ([`Saturation::Queue`]).
    saturation(mode: Saturation) => saturation;

    /// Idle connections to keep open per origin, opened ahead of demand
    /// (pre-warming); 0, the default, opens connections only for requests.
    min_idle_per_key(min: u32) => min_idle_per_key;

    /// The pause between connects after failures: exponential from
    /// `initial` to `max`, with jitter. Default 100 ms to 10 s.
    ///
    /// ```
    /// # fn main() -> Result<(), muxpool_client::Error> {
    /// # let runtime = muxpool_testkit::scripted::ScriptedNet::new(Default::default());
    /// use std::time::Duration;
    /// use muxpool_client::{Backoff, Circuit};
    ///
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .backoff(Backoff::new(Duration::from_millis(50), Duration::from_secs(2)))
    ///     // Fail fast after 3 s of failing connects, probe every second.
    ///     .circuit(Circuit::new(Some(5), Duration::from_secs(1)).failing_for(Duration::from_secs(3)))
    ///     .build()?;
    /// assert_eq!(client.pool_config().circuit.failing_for, Duration::from_secs(3));
    /// # Ok(())
    /// # }
    /// ```
    backoff(backoff: Backoff) => backoff;

    /// The circuit breaker: when an origin's connects have failed often and
    /// long enough, new requests to it fail at once with
    /// [`ErrorKind::CircuitOpen`] until a probe connects. Default: 5 failures
    /// over at least 10 s, probing every 2 s.
    circuit(circuit: Circuit) => circuit;

    /// Health checks of idle connections whose protocol has them (an HTTP/2
    /// or WebSocket ping; HTTP/1.1 has none): how long a connection is idle
    /// before it is checked, and how long the answer may take; a connection
    /// that does not answer is closed. Default: every
    /// [`DEFAULT_HEALTH_CHECK_INTERVAL`] (30 s) of idleness, answered within
    /// [`DEFAULT_HEALTH_CHECK_TIMEOUT`] (10 s); `HealthCheck::new(None, ..)`
    /// turns them off.
    ///
    /// ```
    /// # fn main() -> Result<(), muxpool_client::Error> {
    /// # let runtime = muxpool_testkit::scripted::ScriptedNet::new(Default::default());
    /// use std::time::Duration;
    /// use muxpool_client::HealthCheck;
    ///
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .health_check(HealthCheck::new(Some(Duration::from_secs(30)), Duration::from_secs(5)))
    ///     .build()?;
    /// assert!(client.pool_config().health_check.interval.is_some());
    /// # Ok(())
    /// # }
    /// ```
    health_check(check: HealthCheck) => health_check;

    /// Forget what was learned about an origin (its protocol, its failures)
    /// after it has had no connection and no request for this long. Default
    /// 600 s.
    forget_origin_after(after: Duration) => forget_key_after;

    /// How many requests the client may send again after failures (a
    /// connection cut before the response, a stream an HTTP/2 server
    /// refused): at most `budget.percent` of the new requests of the last
    /// `budget.window`, plus `budget.min_per_second`, over every origin
    /// together, so that an origin in trouble is not hit by a storm of
    /// retries. Default: 20 % plus 10 a second, over 10 s. A request over the
    /// budget ends with the failure it would have retried;
    /// [`Client::stats`](crate::Client::stats) counts the retries sent
    /// (`retries`) and those refused (`rejections[RejectReason::RetryBudget]`).
    ///
    /// ```
    /// # fn main() -> Result<(), muxpool_client::Error> {
    /// # let runtime = muxpool_testkit::scripted::ScriptedNet::new(Default::default());
    /// use std::time::Duration;
    /// use muxpool_client::RetryBudget;
    ///
    /// let client = muxpool_client::ClientBuilder::with_runtime(runtime)
    ///     .retry_budget(RetryBudget::new(10, 1, Duration::from_secs(30)))
    ///     .build()?;
    /// assert_eq!(client.pool_config().retry_budget.percent, 10);
    /// # Ok(())
    /// # }
    /// ```
    retry_budget(budget: RetryBudget) => retry_budget;
}
