//! The in-process HTTP clients under test, behind one small trait.
//!
//! A contender is a client that can send `GET url` and collect the body. The
//! load and idle-memory runners are generic over [`Contender`], so each client's
//! calls are monomorphized into the loop with no dynamic dispatch in the way.
//! [`IN_PROCESS`] lists the contenders every mode runs, in order.
//!
//! # Adding a contender
//!
//! 1. Write a type and `impl Contender for It` (see [`HyperUtil`]: `NAME`,
//!    `new`, `send`, `body`).
//! 2. Add `entry::<It>()` to [`IN_PROCESS`].
//!

use std::future::Future;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Any error a contender reports; the runners only count and print them.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// An HTTP client under test.
///
/// The runners create one with [`new`](Contender::new) inside a current-thread
/// tokio runtime (inside a `LocalSet`, so neither the client nor its futures
/// need to be `Send`), share it between their tasks behind an `Rc`, and drop it
/// with the runtime at the end of each run.
pub trait Contender: 'static {
    /// The name in the result tables.
    const NAME: &'static str;

    /// What [`send`](Contender::send) returns: the response head, with its body
    /// not yet read (the idle-memory mode holds it to keep the connection busy).
    type Response: 'static;

    /// A client with default settings, except that it keeps every idle
    /// connection (no cap on idle connections per host), which will only ever
    /// send `GET url`.
    fn new(url: &str) -> Self;

    /// Sends `GET url` and returns once the response head has arrived.
    fn send(&self) -> impl Future<Output = Result<Self::Response, Error>>;

    /// Reads the whole body of `response`.
    fn body(response: Self::Response) -> impl Future<Output = Result<Bytes, Error>>;
}

/// Runs `future` to completion in a `LocalSet` on a fresh current-thread tokio
/// runtime (the runtime the runners create their contenders in), and drops
/// both before returning, closing whatever connections the future left open.
pub fn run_local<F: Future>(future: F) -> Result<F::Output, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    Ok(local.block_on(&runtime, future))
}

/// One row of [`IN_PROCESS`]: a contender's name and its monomorphized runners.
pub struct Entry {
    /// [`Contender::NAME`].
    pub name: &'static str,
    /// [`crate::load::run`] for this contender.
    pub load: fn(&crate::load::Params) -> crate::load::Outcome,
    /// [`crate::idle::run`] for this contender.
    pub idle: fn(&crate::idle::Params) -> crate::idle::Outcome,
}

/// The [`Entry`] for contender `C`.
pub const fn entry<C: Contender>() -> Entry {
    Entry {
        name: C::NAME,
        load: crate::load::run::<C>,
        idle: crate::idle::run::<C>,
    }
}

/// Every in-process contender, in the order they run.
pub const IN_PROCESS: &[Entry] = &[entry::<HyperUtil>(), entry::<Reqwest>(), entry::<Muxpool>()];

/// hyper-util's legacy pooled client over plain HTTP/1.1:
/// `Client::builder(TokioExecutor::new()).build_http()`.
pub struct HyperUtil {
    client: Client<HttpConnector, Empty<Bytes>>,
    uri: http::Uri,
}

impl Contender for HyperUtil {
    const NAME: &'static str = "hyper-util";
    type Response = http::Response<hyper::body::Incoming>;

    fn new(url: &str) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(usize::MAX)
            .build_http();
        let uri = url.parse().expect("a valid URL");
        HyperUtil { client, uri }
    }

    async fn send(&self) -> Result<Self::Response, Error> {
        Ok(self.client.get(self.uri.clone()).await?)
    }

    async fn body(response: Self::Response) -> Result<Bytes, Error> {
        Ok(response.into_body().collect().await?.to_bytes())
    }
}

/// reqwest 0.12 without TLS, with unlimited idle connections per host.
pub struct Reqwest {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl Contender for Reqwest {
    const NAME: &'static str = "reqwest";
    type Response = reqwest::Response;

    fn new(url: &str) -> Self {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .build()
            .expect("a reqwest client");
        let url = url.parse().expect("a valid URL");
        Reqwest { client, url }
    }

    async fn send(&self) -> Result<Self::Response, Error> {
        Ok(self.client.get(self.url.clone()).send().await?)
    }

    async fn body(response: Self::Response) -> Result<Bytes, Error> {
        Ok(response.bytes().await?)
    }
}

/// muxpool's client, with the per-origin limit raised to match the peers.
pub struct Muxpool {
    client: muxpool::Client,
    uri: http::Uri,
}

impl Contender for Muxpool {
    const NAME: &'static str = "muxpool";
    type Response = http::Response<muxpool::Body>;

    fn new(url: &str) -> Self {
        let uri = url.parse().expect("a valid URL");
        // As many connections as the peers (which have no limit) open, so the
        // comparison is like for like; muxpool's default is 100 per origin.
        let client = muxpool::Client::builder()
            .max_connections_per_origin(1024)
            .build()
            .expect("a valid configuration");
        Muxpool { client, uri }
    }

    async fn send(&self) -> Result<Self::Response, Error> {
        let request = http::Request::get(self.uri.clone()).body(muxpool::Body::empty())?;
        Ok(self.client.send(request).await?)
    }

    async fn body(response: Self::Response) -> Result<Bytes, Error> {
        Ok(response.into_body().bytes().await?)
    }
}
