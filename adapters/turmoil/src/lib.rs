//! # muxpool-turmoil: muxpool's HTTP client inside a turmoil simulation
//!
//! [turmoil](https://docs.rs/turmoil) simulates a network of hosts in one
//! thread: every host runs on its own tokio runtime with a paused clock, the
//! simulation moves virtual time forward in ticks, and one seed decides message
//! latency, so a run can be replayed exactly. Faults are the test's to inject:
//! latency and jitter, held messages, partitions and repairs, crashed and
//! restarted hosts.
//!
//! This crate is muxpool's [`Runtime`] trait for that world, so the whole client
//! (pool, TLS, HTTP/1.1, HTTP/2, timeouts, retries) runs unchanged on the
//! simulated network, and a system already tested under turmoil can use muxpool
//! as its HTTP client there:
//!
//! - connects are [`turmoil::net::TcpStream`]s;
//! - names resolve through the simulation's DNS (its host names): a name that no
//!   host has is an [`io::ErrorKind::NotFound`] error, which the client reports as
//!   a connect error, instead of the fresh address `turmoil::lookup` would invent
//!   for it;
//! - tasks, timers and the clock are the tokio adapter's ([`muxpool_tokio`]),
//!   since a turmoil host *is* a tokio runtime: the client's tasks run on the
//!   host that created them, and its timeouts run on that host's virtual clock.
//!
//! Used outside a simulation, connects and resolution fail with an error (they
//! never panic), and tasks run on the current tokio runtime, if any.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use muxpool_turmoil::{Body, Client};
//!
//! let mut sim = turmoil::Builder::new()
//!     .simulation_duration(Duration::from_secs(60))
//!     .build();
//! sim.host("server", || async {
//!     let listener = turmoil::net::TcpListener::bind("0.0.0.0:80").await?;
//!     // ... accept and serve HTTP/1.1 or HTTP/2 (hyper works here) ...
//! #   drop(listener);
//!     Ok(())
//! });
//! sim.client("client", async {
//!     let client = Client::builder()
//!         .connect_timeout(Duration::from_secs(1))
//!         .timeout(Duration::from_secs(2))
//!         .build()?;
//!     let request = http::Request::get("http://server/").body(Body::empty())?;
//!     match client.send(request).await {
//!         Ok(response) => println!("{}", response.status()),
//!         Err(error) => println!("{:?}: {error:#}", error.kind()),
//!     }
//!     Ok(())
//! });
//! sim.run().expect("the simulation ends");
//! ```
//!
//! Create the client inside the host that uses it (in its `sim.client` or
//! `sim.host` future): its tasks belong to that host, crash with it, and keep
//! its time.
//!
//! ## Replaying a seed
//!
//! A run replays exactly from its seed, also while other simulations run on
//! other threads of the process, as long as nothing in it depends on state the
//! whole process shares. One such state is tokio's: it numbers tasks
//! process-wide, and when a crash or a bounce drops a host's runtime, the tasks
//! spawned on that runtime (`tokio::spawn`) are dropped in an order set by
//! their numbers. Each dropped socket sends a FIN or a RST, whose latency is
//! drawn from the seeded randomness in the order they are sent, so that order
//! decides the rest of the run, and it changes with the tasks other threads
//! spawn meanwhile. Tasks spawned on the host's `LocalSet`
//! (`tokio::task::spawn_local`, where turmoil runs a host's software) are
//! dropped in the order they were spawned: spawn a crashed host's
//! socket-owning tasks, a server's connections for example, there.
//!
//! The client's own tasks (one per connection) are spawned with `tokio::spawn`,
//! since a client may be used from any task of its host. So when a run crashes
//! or bounces the host of a client that has connections open, their order
//! depends on how many tokio tasks the process spawned before and beside it:
//! such a run replays for sure only in a process that runs the same
//! simulations in the same order, one at a time (a test binary of its own, or
//! `--test-threads=1`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

pub use muxpool_client::exports::*;
use muxpool_client::runtime::Runtime;
pub use muxpool_tokio::Sleep;
use muxpool_tokio::Tokio;

/// muxpool's client on a turmoil host.
pub type Client = muxpool_client::Client<Turmoil>;
/// Builds a [`Client`] on a turmoil host.
pub type ClientBuilder = muxpool_client::ClientBuilder<Turmoil>;

/// A TCP connection on the simulated network.
pub type Tcp = turmoil::net::TcpStream;

/// The turmoil simulation, as the client sees it: the simulated network for
/// connects and names, the current host's tokio runtime for the rest.
#[derive(Clone, Copy, Debug, Default)]
pub struct Turmoil;

/// The error for network calls made outside a simulation, where turmoil would
/// panic.
fn outside_simulation() -> io::Error {
    io::Error::other("not inside a turmoil simulation (use the client from a host's task)")
}

/// The addresses of the hosts called `host` (ignoring ASCII case, as DNS does).
///
/// Looking a name up with a pattern only reads the simulation's table, where
/// `turmoil::lookup` would give an unknown name a new address of its own.
fn lookup(host: &str) -> io::Result<Vec<std::net::IpAddr>> {
    let pattern = regex::RegexBuilder::new(&format!("^{}$", regex::escape(host)))
        .case_insensitive(true)
        .build()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let addrs = turmoil::lookup_many(pattern);
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no host named {host:?} in the simulation"),
        ));
    }
    Ok(addrs)
}

impl Runtime for Turmoil {
    type Tcp = Tcp;
    type Timer = Sleep;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        Tokio.spawn(task);
    }

    fn is_reachable(&self) -> bool {
        Tokio.is_reachable()
    }

    fn now(&self) -> Instant {
        Tokio.now()
    }

    fn timer(&self, deadline: Instant) -> Sleep {
        Tokio.timer(deadline)
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<Tcp> {
        if !turmoil::in_simulation() {
            return Err(outside_simulation());
        }
        let tcp = turmoil::net::TcpStream::connect(addr).await?;
        // No effect on the simulated network; said for parity with real sockets.
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if !turmoil::in_simulation() {
            return Err(outside_simulation());
        }
        Ok(lookup(host)?
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }
}
