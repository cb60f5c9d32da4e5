//! The in-process contenders of the `h2` mode: the same three clients as
//! [`crate::contender`], over TLS, offering `h2` and `http/1.1` with ALPN so
//! that nginx picks HTTP/2.
//!
//! [`Contender::new`] takes only a URL, so the TLS settings (the test CA) come
//! from [`set_ca`], called once by [`crate::h2`] before any contender is built.
//! Every instance builds its own TLS configuration from them, so no TLS session
//! cache is shared between two runs: each run starts with full handshakes.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use muxpool::client::ClientBuilder;
use muxpool::runtime::Runtime;
use muxpool::tls::{Alpn, CaCertificates, Roots, TlsConfig};
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::contender::{Contender, Error, MuxpoolOn, Setup};

/// A rustls configuration with the aws-lc-rs provider trusting only the test
/// CA, for the contenders that take one.
fn rustls_config() -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(ca().der.clone()).expect("a valid CA certificate");
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("rustls: protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The CA that issued nginx's certificate, the only root the contenders trust.
struct Ca {
    pem: String,
    der: CertificateDer<'static>,
}

static CA: OnceLock<Ca> = OnceLock::new();

/// Sets the CA every contender of this module trusts; only the first call counts.
pub fn set_ca(pem: String, der: CertificateDer<'static>) {
    let _ = CA.set(Ca { pem, der });
}

fn ca() -> &'static Ca {
    CA.get()
        .expect("h2_contender::set_ca is called before any contender is built")
}

/// A contender whose responses tell which HTTP version carried them, so the
/// `h2` mode can check that ALPN chose HTTP/2.
pub trait Versioned: Contender {
    /// The version `response` arrived with.
    fn version(response: &Self::Response) -> http::Version;
}

/// hyper-util's legacy pooled client over hyper-rustls (ring, TLS 1.2 and 1.3),
/// offering `h2` then `http/1.1`, with unlimited idle connections per host.
pub struct HyperUtilTls {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    uri: http::Uri,
}

impl Contender for HyperUtilTls {
    const NAME: &'static str = "hyper-util";
    type Response = http::Response<hyper::body::Incoming>;

    fn new(url: &str) -> Self {
        let config = rustls_config();
        // hyper-rustls sets ALPN itself from the protocols enabled: h2, then
        // http/1.1.
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .enable_http2()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(usize::MAX)
            .build(connector);
        let uri = url.parse().expect("a valid URL");
        HyperUtilTls { client, uri }
    }

    async fn send(&self) -> Result<Self::Response, Error> {
        Ok(self
            .client
            .request(crate::contender::get(&self.uri, Empty::new()))
            .await?)
    }

    async fn body(response: Self::Response) -> Result<Bytes, Error> {
        Ok(response.into_body().collect().await?.to_bytes())
    }
}

impl Versioned for HyperUtilTls {
    fn version(response: &Self::Response) -> http::Version {
        response.version()
    }
}

/// reqwest 0.12 with rustls (aws-lc-rs), trusting only the test CA, HTTP/2 by
/// ALPN, with unlimited idle connections per host.
pub struct ReqwestTls {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl Contender for ReqwestTls {
    const NAME: &'static str = "reqwest";
    type Response = reqwest::Response;

    fn new(url: &str) -> Self {
        let mut config = rustls_config();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .pool_max_idle_per_host(usize::MAX)
            .build()
            .expect("a reqwest client");
        let url = url.parse().expect("a valid URL");
        ReqwestTls { client, url }
    }

    async fn send(&self) -> Result<Self::Response, Error> {
        Ok(self.client.get(self.url.clone()).send().await?)
    }

    async fn body(response: Self::Response) -> Result<Bytes, Error> {
        Ok(response.bytes().await?)
    }
}

impl Versioned for ReqwestTls {
    fn version(response: &Self::Response) -> http::Version {
        response.version()
    }
}

/// muxpool's client with default settings and a TLS configuration trusting
/// only the test CA, offering `h2` then `http/1.1`.
pub struct Tls;

impl Setup for Tls {
    fn configure<R: Runtime>(builder: ClientBuilder<R>) -> ClientBuilder<R> {
        let tls = TlsConfig::builder()
            .roots(Roots::CustomOnly)
            .add_ca(CaCertificates::from_pem(&ca().pem).expect("a valid CA"))
            .alpn(Alpn::Http1AndHttp2)
            .build()
            .expect("a valid TLS configuration");
        builder.tls(tls)
    }
}

/// muxpool over TLS on tokio.
pub type MuxpoolTls = MuxpoolOn<muxpool::Tokio, Tls>;
/// muxpool over TLS on smol.
pub type MuxpoolSmolTls = MuxpoolOn<muxpool_smol::Smol, Tls>;

impl<R: Runtime> Versioned for MuxpoolOn<R, Tls>
where
    Self: Contender<Response = http::Response<muxpool::Body>>,
{
    fn version(response: &Self::Response) -> http::Version {
        response.version()
    }
}

/// The name of `C` built anew for every request, in the `per-request` table.
pub trait PerRequestName {
    /// The row's name.
    const PER_REQUEST: &'static str;
}

impl PerRequestName for MuxpoolTls {
    const PER_REQUEST: &'static str = "muxpool, a client per request";
}

impl PerRequestName for ReqwestTls {
    const PER_REQUEST: &'static str = "reqwest, a client per request";
}

/// Contender `C` built anew for every request, as code does that makes a
/// client (and with it a pool, a TLS configuration and its session cache)
/// in each call: every request pays for the client, a connection and a
/// full TLS handshake. The client is dropped as the response head arrives;
/// the body is read after, as the connection closes.
pub struct PerRequest<C> {
    url: String,
    client: std::marker::PhantomData<C>,
}

impl<C: Contender + PerRequestName> Contender for PerRequest<C> {
    const NAME: &'static str = C::PER_REQUEST;
    type Response = C::Response;

    fn new(url: &str) -> Self {
        PerRequest {
            url: url.to_owned(),
            client: std::marker::PhantomData,
        }
    }

    async fn send(&self) -> Result<Self::Response, Error> {
        C::new(&self.url).send().await
    }

    async fn body(response: Self::Response) -> Result<Bytes, Error> {
        C::body(response).await
    }
}

impl<C: Versioned + PerRequestName> Versioned for PerRequest<C> {
    fn version(response: &Self::Response) -> http::Version {
        C::version(response)
    }
}
