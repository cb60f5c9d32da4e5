//! What the simulation tests share: HTTP/1.1 and HTTP/2 server hosts over TLS
//! (which may take a while to listen again once bounced), a client configured
//! for the simulation or with the defaults, seeds from the environment, and the
//! checks that the pool ended clean.
//!
//! The servers are testkit's hyper servers ([`serve_io`]), each connection
//! accepted on the simulated network instead of a real socket. Both speak TLS
//! so that one client reaches both kinds: ALPN picks HTTP/1.1 on one host and
//! HTTP/2 on the other, as it would in production.

#![allow(dead_code)] // Each test module uses a part of this.

pub mod soak;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use muxpool_testkit::certs::{self, Ca, Leaf};
use muxpool_testkit::hyper_server::{serve_io, Options, Protocol};
use muxpool_turmoil::tls::{CaCertificates, Roots, TlsConfig};
use muxpool_turmoil::{Body, ClientBuilder, PoolConfig, Stats};
use turmoil::Sim;

/// The port every server host listens on.
pub const PORT: u16 = 443;

/// The name of the host the client runs on.
pub const CLIENT: &str = "client";

/// Which protocol a server host speaks (what its ALPN offers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// HTTP/1.1 only.
    H1,
    /// HTTP/2 only.
    H2,
}

/// A certificate authority and one leaf for every server name of a test.
pub struct Certs {
    pub ca: Ca,
    pub leaf: Leaf,
}

impl Certs {
    pub fn new(names: &[&str]) -> Certs {
        let ca = Ca::new("muxpool simulation CA");
        let leaf = ca.leaf(names);
        Certs { ca, leaf }
    }

    /// The client's TLS configuration: only this authority is trusted.
    pub fn client_tls(&self) -> TlsConfig {
        let ca = CaCertificates::from_pem(self.ca.pem()).expect("the test CA parses");
        TlsConfig::builder()
            .roots(Roots::CustomOnly)
            .add_ca(ca)
            .build()
            .expect("the client TLS configuration")
    }
}

/// A simulation with `latency` as the most a message may take (and no least),
/// long enough for any test here, with turmoil's randomness seeded by `seed`.
pub fn sim<'a>(seed: u64, latency: Duration) -> Sim<'a> {
    turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(600))
        .min_message_latency(Duration::ZERO)
        .max_message_latency(latency)
        .rng_seed(seed)
        .build()
}

/// Adds a server host called `name` speaking `proto` over TLS on [`PORT`], with
/// testkit's routes. A bounced host starts listening again at once.
pub fn server_host(sim: &mut Sim<'_>, name: &str, proto: Proto, certs: &Certs) {
    restarting_server_host(sim, name, proto, certs, Duration::ZERO);
}

/// When a server host last started listening, in the simulation's time.
#[derive(Clone, Debug, Default)]
pub struct Listening(Rc<Cell<Option<Duration>>>);

impl Listening {
    /// When the host's software last bound its port: once it is bounced,
    /// a later time as soon as it listens again.
    pub fn since(&self) -> Option<Duration> {
        self.0.get()
    }
}

/// Adds a server host as [`server_host`] does, whose software, once bounced,
/// takes `startup` before it listens again: a server process restarting on a
/// machine that stays up. The bounce cuts the connections the host had (each
/// closed socket sends a FIN, or a RST when it held unread bytes), and until
/// the software listens again every connect to the host is refused as soon as
/// its SYN arrives, since nothing is bound to the port.
///
/// Each connection is served by a task of the host's `LocalSet`
/// (`spawn_local`), not of its runtime (`tokio::spawn`): a crash or a bounce
/// drops the host's tasks, and each dropped socket sends a FIN or a RST whose
/// latency is drawn from the simulation's seeded randomness, so the order of
/// those drops is part of the run. A `LocalSet` drops its tasks in the order they
/// were spawned; a runtime drops them in an order set by their task ids, which
/// tokio numbers process-wide, so it would change with the tasks other threads
/// of the process spawn (another simulation running beside this one).
pub fn restarting_server_host(
    sim: &mut Sim<'_>,
    name: &str,
    proto: Proto,
    certs: &Certs,
    startup: Duration,
) -> Listening {
    let (alpn, protocol): (&[&[u8]], _) = match proto {
        Proto::H1 => (&[b"http/1.1"], Protocol::Http1),
        Proto::H2 => (&[b"h2"], Protocol::Http2),
    };
    let options = Arc::new(Options {
        tls: Some(certs::server_config(&certs.leaf, alpn)),
        protocol,
        ..Options::default()
    });
    let listening = Listening::default();
    let starts = Rc::new(Cell::new(0u32));
    let host_listening = listening.clone();
    sim.host(name, move || {
        let options = Arc::clone(&options);
        let listening = host_listening.clone();
        let restarted = starts.replace(starts.get() + 1) > 0;
        async move {
            if restarted && !startup.is_zero() {
                tokio::time::sleep(startup).await;
            }
            let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
            listening.0.set(turmoil::sim_elapsed());
            loop {
                let (stream, _) = listener.accept().await?;
                tokio::task::spawn_local(serve_io(stream, Arc::clone(&options)));
            }
        }
    });
    listening
}

/// A client builder with the default settings but for the pool seeded with
/// `seed` (so its jitter replays) and the test CA.
pub fn default_client_builder(seed: u64, certs: &Certs) -> ClientBuilder {
    ClientBuilder::with_runtime(muxpool_turmoil::Turmoil)
        .seed(seed)
        .tls(certs.client_tls())
}

/// A client builder for the simulation: the pool seeded with `seed` (so its
/// jitter replays), the test CA, and timeouts short enough that a fault ends a
/// request within a few seconds of virtual time.
pub fn client_builder(seed: u64, certs: &Certs) -> ClientBuilder {
    let mut pool = PoolConfig::default();
    pool.seed = seed;
    pool.acquire_timeout = Duration::from_secs(3);
    pool.connect_timeout = Duration::from_secs(1);
    pool.health_check.interval = Some(Duration::from_millis(500));
    pool.health_check.timeout = Duration::from_millis(500);
    default_client_builder(seed, certs)
        .pool(pool)
        .timeout(Duration::from_secs(2))
        .read_timeout(Duration::from_secs(1))
}

/// `https://{host}:{PORT}{path}`.
pub fn url(host: &str, path: &str) -> String {
    format!("https://{host}:{PORT}{path}")
}

/// A GET of `url`, without a body.
pub fn get(url: &str) -> http::Request<Body> {
    http::Request::get(url)
        .body(Body::empty())
        .expect("a valid request")
}

/// How one request ended: `ok <status> <body length>`, or the error's kind.
pub fn outcome(result: Result<(http::StatusCode, usize), muxpool_turmoil::Error>) -> String {
    match result {
        Ok((status, len)) => format!("ok {} {len}", status.as_u16()),
        Err(error) => format!("{:?}", error.kind()),
    }
}

/// Sends `request` with `client` and reads the whole response body.
pub async fn exchange(
    client: &muxpool_turmoil::Client,
    request: http::Request<Body>,
) -> Result<(http::StatusCode, usize), muxpool_turmoil::Error> {
    let response = client.send(request).await?;
    let status = response.status();
    let body = response.into_body().bytes().await?;
    Ok((status, body.len()))
}

/// The client's statistics once nothing is in use, or once `limit` has
/// passed: connects the pool started for requests that others served meanwhile
/// may still be finishing when the last request ends, and end within the
/// connect timeout.
pub async fn settled_stats(client: &muxpool_turmoil::Client, limit: Duration) -> Stats {
    let until = tokio::time::Instant::now() + limit;
    loop {
        let stats = client.stats();
        let in_use = stats.busy + stats.leases + stats.waiting + stats.connecting;
        if (in_use == 0 && stats.open == stats.idle) || tokio::time::Instant::now() >= until {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Panics unless nothing is in use: no lease, no waiter, no connect, no busy
/// connection; every open connection idle.
pub fn assert_quiescent(stats: &Stats) {
    assert_eq!(stats.busy, 0, "busy connections at the end: {stats:?}");
    assert_eq!(stats.leases, 0, "leases out at the end: {stats:?}");
    assert_eq!(stats.waiting, 0, "waiting requests at the end: {stats:?}");
    assert_eq!(
        stats.connecting, 0,
        "connects in flight at the end: {stats:?}"
    );
    assert_eq!(
        stats.open, stats.idle,
        "open connections not idle: {stats:?}"
    );
}

/// Prints how to replay a seed if a check of its run panics while this lives:
/// the tests of the module `module` with `MUXPOOL_TURMOIL_SEED` set to it.
pub struct Replay {
    module: &'static str,
    seed: u64,
}

impl Replay {
    pub fn new(module: &'static str, seed: u64) -> Replay {
        Replay { module, seed }
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{module} failed for seed {seed}; replay it with:\n  \
                 MUXPOOL_TURMOIL_SEED={seed} cargo test -p muxpool-turmoil --test network -- \
                 {module}:: --nocapture",
                module = self.module,
                seed = self.seed,
            );
        }
    }
}

/// The seeds to run: the one in `MUXPOOL_TURMOIL_SEED` alone (a replay), or
/// `MUXPOOL_TURMOIL_SEEDS` of them from 1 (default `default_count`).
pub fn seeds(default_count: u64) -> Vec<u64> {
    if let Ok(seed) = std::env::var("MUXPOOL_TURMOIL_SEED") {
        let seed = seed
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("MUXPOOL_TURMOIL_SEED={seed:?} is not a u64"));
        return vec![seed];
    }
    let count = match std::env::var("MUXPOOL_TURMOIL_SEEDS") {
        Ok(count) => count
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("MUXPOOL_TURMOIL_SEEDS={count:?} is not a count")),
        Err(_) => default_count,
    };
    (1..=count).collect()
}
