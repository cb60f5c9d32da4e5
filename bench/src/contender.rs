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

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::Either;
use futures_util::TryFutureExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use muxpool::client::ClientBuilder;
use muxpool::runtime::Runtime;

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

    /// Runs `future` (a whole run: the contender is created, used and dropped
    /// inside it) to completion on this contender's single-threaded runtime:
    /// by default a current-thread tokio runtime ([`run_local`]).
    fn block_on<F: Future>(future: F) -> Result<F::Output, String> {
        run_local(future)
    }

    /// Spawns one of a run's tasks on the thread of [`block_on`](Contender::block_on);
    /// the returned future gives its output, or why it failed.
    fn spawn_local<T: 'static>(
        task: impl Future<Output = T> + 'static,
    ) -> impl Future<Output = Result<T, String>> {
        let task = tokio::task::spawn_local(task);
        async move { task.await.map_err(|e| e.to_string()) }
    }

    /// Waits `duration` on this contender's runtime.
    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(duration)
    }
}

/// `future`'s output, or `None` after `limit`, timed on `C`'s runtime.
pub async fn timeout<C: Contender, F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    match futures_util::future::select(pin!(future), pin!(C::sleep(limit))).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
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

/// `GET uri` with `body`, built directly rather than through `http`'s request
/// builder (whose fallible chain moves the request head at every step), so
/// that the in-process clients that take an `http::Request` pay only for the
/// request itself.
pub fn get<B>(uri: &http::Uri, body: B) -> http::Request<B> {
    let mut request = http::Request::new(body);
    *request.uri_mut() = uri.clone();
    request
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
pub const IN_PROCESS: &[Entry] = &[
    entry::<HyperUtil>(),
    entry::<Reqwest>(),
    entry::<Muxpool>(),
    entry::<MuxpoolSmol>(),
    entry::<Floor>(),
];

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
        Ok(self.client.request(get(&self.uri, Empty::new())).await?)
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

/// How a muxpool contender's client is configured for a mode (plain HTTP/1.1
/// here; HTTP/2 over TLS in [`crate::h2_contender`]), whatever its runtime.
pub trait Setup: 'static {
    /// `builder`, configured for the mode.
    fn configure<R: Runtime>(builder: ClientBuilder<R>) -> ClientBuilder<R>;
}

/// muxpool's client on runtime `R`, configured by `S`.
pub struct MuxpoolOn<R: Runtime, S> {
    client: muxpool::client::Client<R>,
    uri: http::Uri,
    setup: PhantomData<S>,
}

impl<R: Runtime, S: Setup> MuxpoolOn<R, S> {
    fn with_runtime(runtime: R, url: &str) -> Self {
        let uri = url.parse().expect("a valid URL");
        let client = S::configure(ClientBuilder::with_runtime(runtime))
            .build()
            .expect("a valid configuration");
        MuxpoolOn {
            client,
            uri,
            setup: PhantomData,
        }
    }

    /// `GET uri`: the client's own future, with only its error boxed, so that
    /// the runner's task holds it as a caller's would (`client.send(r).await`)
    /// and not behind layers of futures that each hold a copy of it.
    fn get(&self) -> impl Future<Output = Result<http::Response<muxpool::Body>, Error>> + '_ {
        self.client
            .send(get(&self.uri, muxpool::Body::empty()))
            .map_err(Error::from)
    }
}

/// Plain HTTP/1.1 with the per-origin limit raised to match the peers.
pub struct Plain;

impl Setup for Plain {
    fn configure<R: Runtime>(builder: ClientBuilder<R>) -> ClientBuilder<R> {
        // As many connections as the peers (which have no limit) open, so the
        // comparison is like for like; muxpool's default is 100 per origin.
        builder.max_connections_per_key(1024)
    }
}

/// muxpool's client on tokio.
pub type Muxpool = MuxpoolOn<muxpool::Tokio, Plain>;

impl<S: Setup> Contender for MuxpoolOn<muxpool::Tokio, S> {
    const NAME: &'static str = "muxpool";
    type Response = http::Response<muxpool::Body>;

    fn new(url: &str) -> Self {
        MuxpoolOn::with_runtime(muxpool::Tokio, url)
    }

    fn send(&self) -> impl Future<Output = Result<Self::Response, Error>> {
        self.get()
    }

    async fn body(response: Self::Response) -> Result<Bytes, Error> {
        Ok(response.into_body().bytes().await?)
    }
}

/// muxpool's client on smol: the run's tasks on a local executor and the
/// client's own tasks (the pool's timer, connects, HTTP/2 drivers) on an
/// executor of the client's, both driven by the one thread of
/// [`Contender::block_on`], as tokio's current-thread runtime drives the
/// other contenders.
pub type MuxpoolSmol = MuxpoolOn<muxpool_smol::Smol, Plain>;

thread_local! {
    /// The executors of the smol run in progress on this thread.
    static SMOL: RefCell<Option<SmolExecutors>> = const { RefCell::new(None) };
}

/// A smol run's executors: the local one for the run's tasks, the shared one
/// for the client's.
type SmolExecutors = (
    Rc<smol::LocalExecutor<'static>>,
    Arc<smol::Executor<'static>>,
);

fn smol_executors() -> SmolExecutors {
    SMOL.with(|s| s.borrow().clone())
        .expect("a smol contender runs inside its block_on")
}

impl<S: Setup> Contender for MuxpoolOn<muxpool_smol::Smol, S> {
    const NAME: &'static str = "muxpool-smol";
    type Response = http::Response<muxpool::Body>;

    fn new(url: &str) -> Self {
        let (_, executor) = smol_executors();
        MuxpoolOn::with_runtime(muxpool_smol::Smol::on(executor), url)
    }

    fn send(&self) -> impl Future<Output = Result<Self::Response, Error>> {
        self.get()
    }

    async fn body(response: Self::Response) -> Result<Bytes, Error> {
        Ok(response.into_body().bytes().await?)
    }

    fn block_on<F: Future>(future: F) -> Result<F::Output, String> {
        let local = Rc::new(smol::LocalExecutor::new());
        let executor = Arc::new(smol::Executor::new());
        SMOL.with(|s| *s.borrow_mut() = Some((Rc::clone(&local), Arc::clone(&executor))));
        let out = smol::block_on(executor.run(local.run(future)));
        SMOL.with(|s| *s.borrow_mut() = None);
        Ok(out)
    }

    fn spawn_local<T: 'static>(
        task: impl Future<Output = T> + 'static,
    ) -> impl Future<Output = Result<T, String>> {
        let (local, _) = smol_executors();
        let task = local.spawn(task);
        async move { Ok(task.await) }
    }

    async fn sleep(duration: Duration) {
        smol::Timer::after(duration).await;
    }
}

/// The floor under any pooled HTTP/1.1 client on tokio that answers with
/// `http` types: not a client anyone should use, but the least such a client
/// does per request, to see what the rest of a real one costs.
///
/// It takes a connection off a stack (or connects one), encodes the request
/// head and parses the response head with muxpool's HTTP/1.1 codec (httparse,
/// then an `http::HeaderMap` whose values share the read buffer), reads a
/// `Content-Length` body whole, and puts the connection back. No limits, no
/// timeouts, no retries, no check that an idle connection is still open, no
/// other framing: whatever goes wrong is an error, and the connection is
/// dropped.
pub struct Floor {
    addr: std::net::SocketAddr,
    uri: http::Uri,
    idle: RefCell<Vec<FloorConn>>,
}

/// A connection of [`Floor`], and its read buffer.
struct FloorConn {
    io: tokio::net::TcpStream,
    buf: bytes::BytesMut,
}

impl Floor {
    async fn exchange(&self, conn: &mut FloorConn) -> Result<http::Response<Bytes>, Error> {
        use muxpool_client::h1::{
            encode_request, Framing, Limits, RequestBody, ResponseParser, TargetForm,
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let request = get(&self.uri, ());
        let (parts, ()) = request.into_parts();
        conn.buf.clear();
        conn.buf.reserve(4096);
        let encoded = encode_request(
            &parts,
            RequestBody::Empty,
            TargetForm::Origin,
            &mut conn.buf,
        )?;
        conn.io.write_all(&conn.buf).await?;
        conn.buf.clear();
        let mut parser = ResponseParser::new(encoded.info, Limits::default());
        let head = loop {
            if conn.io.read_buf(&mut conn.buf).await? == 0 {
                return Err("closed before a response".into());
            }
            if let Some(head) = parser.parse(&mut conn.buf)? {
                break head;
            }
        };
        let Framing::Length(length) = head.framing() else {
            return Err("not a Content-Length body".into());
        };
        let length = usize::try_from(length)?;
        while conn.buf.len() < length {
            if conn.io.read_buf(&mut conn.buf).await? == 0 {
                return Err("closed inside the body".into());
            }
        }
        if conn.buf.len() > length || !head.keep_alive().is_reusable() {
            return Err("more than the body, or not reusable".into());
        }
        let body = conn.buf.split().freeze();
        Ok(http::Response::from_parts(head.into_parts(), body))
    }
}

impl Contender for Floor {
    const NAME: &'static str = "floor";
    type Response = http::Response<Bytes>;

    fn new(url: &str) -> Self {
        let uri: http::Uri = url.parse().expect("a valid URL");
        let authority = uri.authority().expect("a URL with a host");
        let addr = authority.as_str().parse().expect("an IP address and port");
        Floor {
            addr,
            uri,
            idle: RefCell::new(Vec::new()),
        }
    }

    async fn send(&self) -> Result<Self::Response, Error> {
        let taken = self.idle.borrow_mut().pop();
        let mut conn = match taken {
            Some(conn) => conn,
            None => {
                let io = tokio::net::TcpStream::connect(self.addr).await?;
                io.set_nodelay(true)?;
                FloorConn {
                    io,
                    buf: bytes::BytesMut::new(),
                }
            }
        };
        let response = self.exchange(&mut conn).await?;
        self.idle.borrow_mut().push(conn);
        Ok(response)
    }

    async fn body(response: Self::Response) -> Result<Bytes, Error> {
        Ok(response.into_body())
    }
}
