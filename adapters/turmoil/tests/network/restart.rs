//! Riding through server restarts on the simulated network, many seeds: the
//! real-nginx test of the conformance suite (`tests/conformance/restart.rs`)
//! with downtimes a real server makes slow to test, and the interleavings
//! only a seed can replay.
//!
//! A steady load of GETs (20 a second, each on its own task, through one
//! client with the default settings: 30 s per request, 10 s per connect, the
//! default backoff and circuit) runs while the server restarts: its
//! connections are cut, it stays down for 0.5 s, 2 s or 10 s, and it comes
//! back on the same address. The server is bounced, and its software takes the
//! downtime to listen again ([`restarting_server_host`]): a server process
//! restarting on a machine that stays up, so every connect meanwhile is
//! refused as soon as its SYN arrives. (turmoil's `Sim::crash` is another
//! fault: the messages sent to a crashed host wait on the network until it is
//! bounced, so a connect to it is neither refused nor reset while it is down,
//! only left unanswered, and refused once it is back, before it listens. The
//! soak crashes hosts.)
//!
//! What a restart may cost:
//!
//! - nothing to a request issued while the server is down: its 30 s outlast
//!   the downtime, so the refused connects fail none. It waits through the
//!   backoff, and the first connect once the server is back serves it, at
//!   most one pause of the backoff (10 s) after that. The connects refused
//!   meanwhile are a round at first and one per pause of the backoff;
//! - nothing to a request issued while the server is up, before the restart
//!   or after it: a restart no longer than the circuit's `failing_for` (10 s)
//!   never opens it (the first connect is refused after the cut, so connects
//!   have failed for less than that when the server is back), so nothing
//!   fails fast then;
//! - only a request in flight when the connections are cut may fail. A GET
//!   cut before any byte of its response, on a connection that served
//!   requests before, is sent once more on a fresh connection, and waits
//!   through the downtime like the others: one cut in the tick it was issued
//!   in (before it reached the server) must succeed. Over HTTP/2 a GET cut
//!   before any byte of its response is sent again whatever its connection,
//!   and the responses here come whole (the server writes each at once), so
//!   none may fail. Over HTTP/1.1 one cut on a connection new to it (the
//!   server may have closed it because of this request) or after part of its
//!   response is not sent again: with requests 50 ms apart and at most 10 ms
//!   of latency, at most one is in flight when the cut falls, so at most one
//!   may fail.
//!
//! A dead origin (down 60 s) still fails fast: once connects have failed for
//! `failing_for`, the circuit opens at the next failure (within one pause of
//! the backoff, so 20 s after the first failure at the latest), and from then
//! on a new request fails at once with [`ErrorKind::CircuitOpen`] instead of
//! waiting for its timeout, while those already waiting fail by their
//! deadline. Once the server is back, a probe (one every `open_for`, 2 s)
//! finds it and requests succeed again.
//!
//! Each seed draws the latency, where in the load the cut falls (anywhere,
//! during an exchange, or just before a request reaches a connection whose
//! close is still on its way), and the pool's jitter. More seeds, or one
//! replayed with every request printed (a failure prints the line):
//!
//! ```text
//! MUXPOOL_TURMOIL_SEEDS=200 cargo test -p muxpool-turmoil --test network -- restart::
//! MUXPOOL_TURMOIL_SEED=7 cargo test -p muxpool-turmoil --test network -- restart::http1_ten --nocapture
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use muxpool_testkit::rng::Rng;
use muxpool_turmoil::{ErrorKind, PoolConfig, Stats};

use crate::support::{
    self, default_client_builder, exchange, get, restarting_server_host, url, Certs, Proto, Replay,
    CLIENT,
};

/// The server's name.
const SERVER: &str = "server.sim";

/// Requests are issued this often: 20 a second.
const PERIOD: Duration = Duration::from_millis(50);

/// The load runs this long, plus a part of a period drawn from the seed,
/// before the server goes down.
const BEFORE: Duration = Duration::from_secs(1);

/// The most a message may take, drawn from the seed up to this: an exchange
/// on a warm connection (two messages) ends well within a period.
const MAX_LATENCY_MS: u64 = 10;

/// The simulation's tick (turmoil's default, which `support::sim` keeps). A
/// message takes one at least: the server's host, added first, runs before
/// the client's in each, so a request issued in the tick before the cut
/// never reached the server, and has no byte of its response.
const TICK: Duration = Duration::from_millis(1);

/// A request still unanswered after this long hangs: the request timeout
/// (30 s) and the read timeout of its body (30 s) end every request sooner.
const HANG: Duration = Duration::from_secs(70);

/// Time for a connect and a TLS handshake (a few messages of 10 ms at most),
/// on top of what the rules say.
const SLACK: Duration = Duration::from_millis(500);

/// How long the load runs once the server is back from a restart.
const AFTER: Duration = Duration::from_secs(1);

/// A dead origin's downtime: longer than the circuit takes to open and a
/// request's timeout together, so that no request issued while it is down
/// lives to see it back.
const DEAD: Duration = Duration::from_secs(60);

/// How long the load runs once a dead origin is back: past the probe that
/// finds it.
const DEAD_AFTER: Duration = Duration::from_secs(4);

/// Where the cut falls in the load: each seed in turn takes the next, so
/// that any three seeds in a row cover them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// Anywhere in a period.
    Anywhere,
    /// While a request is in flight: the first moment one is from a point
    /// within two latencies of an issue on, so at any point of its exchange
    /// (or just after the next one's issue).
    InFlight,
    /// Less than a latency before a request is issued: it goes to a
    /// connection whose close has not reached the client yet.
    BeforeIssue,
}

impl Placement {
    fn of(seed: u64) -> Placement {
        match seed % 3 {
            0 => Placement::Anywhere,
            1 => Placement::InFlight,
            _ => Placement::BeforeIssue,
        }
    }
}

/// One request of the load and how it ended, in the simulation's time.
struct Request {
    issued: Duration,
    finished: Duration,
    end: End,
}

enum End {
    Ok { status: u16, len: usize },
    Failed(ErrorKind, String),
    Hang,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "issued at {} ms, ended at {} ms: ",
            self.issued.as_millis(),
            self.finished.as_millis()
        )?;
        match &self.end {
            End::Ok { status, len } => write!(f, "{status}, {len} bytes"),
            End::Failed(kind, error) => write!(f, "{kind:?}: {error}"),
            End::Hang => write!(f, "hangs"),
        }
    }
}

/// One seed's run: when the server went down and came back, and every request.
struct Run {
    seed: u64,
    label: String,
    placement: Placement,
    /// When the connections were cut and the server stopped listening.
    cut: Duration,
    /// When the server listened again.
    back: Duration,
    requests: Vec<Request>,
    /// The client's statistics once every request has ended and the connects
    /// still in flight then have too.
    stats: Stats,
    /// The client's settings (the defaults): its request timeout and its pool's.
    timeout: Duration,
    config: PoolConfig,
}

impl Run {
    /// Where a check failed: the seed and how to replay it.
    fn context(&self) -> String {
        format!(
            "{} seed {} (cut at {} ms, back at {} ms; replay with MUXPOOL_TURMOIL_SEED={})",
            self.label,
            self.seed,
            self.cut.as_millis(),
            self.back.as_millis(),
            self.seed
        )
    }
}

/// Runs the load against a server speaking `proto` that restarts, down for
/// `down`, and keeps it running `after` once the server listens again.
fn run(seed: u64, proto: Proto, down: Duration, after: Duration) -> Run {
    let mut rng = Rng::new(seed);
    let latency_ms = 1 + rng.below(MAX_LATENCY_MS);
    let latency = Duration::from_millis(latency_ms);
    let period_ms = PERIOD.as_millis() as u64;
    let placement = Placement::of(seed);
    let earliest = BEFORE
        + Duration::from_millis(match placement {
            Placement::Anywhere => rng.below(period_ms),
            Placement::InFlight => rng.below(2 * latency_ms),
            Placement::BeforeIssue => period_ms - 1 - rng.below(latency_ms),
        });

    let certs = Certs::new(&[SERVER]);
    let mut sim = support::sim(seed, latency);
    let listening = restarting_server_host(&mut sim, SERVER, proto, &certs, down);
    let builder = default_client_builder(seed, &certs);
    let requests = Rc::new(RefCell::new(Vec::new()));
    let in_flight = Rc::new(Cell::new(0u32));
    let settled = Rc::new(RefCell::new(None));
    let cut = Rc::new(Cell::new(None));
    {
        let requests = Rc::clone(&requests);
        let in_flight = Rc::clone(&in_flight);
        let settled = Rc::clone(&settled);
        let cut = Rc::clone(&cut);
        let listening = listening.clone();
        sim.client(CLIENT, async move {
            let client = builder.build().expect("a client");
            let target = url(SERVER, "/");
            let start = tokio::time::Instant::now();
            let mut tasks = Vec::new();
            for i in 0u32.. {
                let back = cut
                    .get()
                    .and_then(|cut| listening.since().filter(|&since| since > cut));
                if back.is_some_and(|back| sim_now() >= back + after) {
                    break;
                }
                let client = client.clone();
                let target = target.clone();
                let requests = Rc::clone(&requests);
                let in_flight = Rc::clone(&in_flight);
                tasks.push(tokio::task::spawn_local(async move {
                    let issued = sim_now();
                    in_flight.set(in_flight.get() + 1);
                    let end =
                        match tokio::time::timeout(HANG, exchange(&client, get(&target))).await {
                            Ok(Ok((status, len))) => End::Ok {
                                status: status.as_u16(),
                                len,
                            },
                            Ok(Err(error)) => End::Failed(error.kind(), format!("{error:#}")),
                            Err(_) => End::Hang,
                        };
                    in_flight.set(in_flight.get() - 1);
                    requests.borrow_mut().push(Request {
                        issued,
                        finished: sim_now(),
                        end,
                    });
                }));
                tokio::time::sleep_until(start + PERIOD * (i + 1)).await;
            }
            for task in tasks {
                task.await.expect("a request task");
            }
            let config = client.pool_config().clone();
            let stats = support::settled_stats(&client, config.connect_timeout).await;
            *settled.borrow_mut() = Some((stats, client.request_timeout(), config));
            Ok(())
        });
    }

    loop {
        let finished = sim.step().expect("the simulation runs");
        let now = sim.elapsed();
        let due = now >= earliest
            && match placement {
                Placement::InFlight => in_flight.get() > 0,
                Placement::Anywhere | Placement::BeforeIssue => true,
            };
        if cut.get().is_none() && due {
            sim.bounce(SERVER);
            cut.set(Some(now));
        }
        if finished {
            break;
        }
    }

    let cut = cut.get().expect("the server went down");
    let back = listening
        .since()
        .filter(|&since| since > cut)
        .expect("the server listens again");
    let (stats, timeout, config) = settled.take().expect("the client host finished");
    let mut requests = requests.take();
    requests.sort_by_key(|r| r.issued);
    Run {
        seed,
        label: format!("{proto:?} down {down:?}, cut {placement:?}"),
        placement,
        cut,
        back,
        requests,
        stats,
        timeout,
        config,
    }
}

/// The simulation's time, read on a host.
fn sim_now() -> Duration {
    turmoil::sim_elapsed().expect("on a host of the simulation")
}

/// Whether `request` was in flight when the connections were cut: issued no
/// later than the cut (one issued at the cut's instant may have gone first)
/// and not yet ended.
fn in_flight_at_cut(run: &Run, request: &Request) -> bool {
    request.issued <= run.cut && request.finished >= run.cut
}

/// What one seed's run showed, summed over the seeds of a case.
#[derive(Default)]
struct Tally {
    requests: usize,
    /// Requests in flight when the connections were cut.
    in_flight: usize,
    /// Those of them that failed.
    failed: usize,
    /// The longest a request issued while the server was down waited.
    longest_wait: Duration,
    /// The longest from the cut to the first request refused at once by the
    /// open circuit (a dead origin).
    open_after: Duration,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests, {} in flight at the cut, {} of them failed",
            self.requests, self.in_flight, self.failed
        )
    }
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.in_flight += other.in_flight;
        self.failed += other.failed;
        self.longest_wait = self.longest_wait.max(other.longest_wait);
        self.open_after = self.open_after.max(other.open_after);
    }
}

/// Checks a request issued no later than the cut: it succeeds, unless it was
/// in flight at the cut; counts it.
fn check_issued_up(run: &Run, request: &Request, tally: &mut Tally) {
    let context = run.context();
    let in_flight = in_flight_at_cut(run, request);
    tally.in_flight += usize::from(in_flight);
    match &request.end {
        End::Ok { status, len } => assert_eq!((*status, *len), (200, 5), "{context}: {request}"),
        End::Failed(..) if in_flight => tally.failed += 1,
        End::Failed(..) => panic!("{context}: only a request cut in flight may fail: {request}"),
        End::Hang => panic!("{context}: a request hangs: {request}"),
    }
}

/// The checks of a restart the client rides through (see the module's
/// documentation).
fn check_ride_through(run: &Run, max_cut: usize) -> Tally {
    let context = run.context();
    let backoff = run.config.backoff.max;
    let (mut up_before, mut while_down, mut up_after) = (0, 0, 0);
    let mut tally = Tally {
        requests: run.requests.len(),
        ..Tally::default()
    };
    for request in &run.requests {
        if request.issued <= run.cut {
            up_before += 1;
            check_issued_up(run, request, &mut tally);
            if let End::Failed(kind, _) = &request.end {
                assert!(
                    matches!(kind, ErrorKind::Protocol | ErrorKind::Body),
                    "{context}: a request cut in flight fails as cut: {request}"
                );
                assert!(
                    run.cut - request.issued > TICK,
                    "{context}: a request cut before it reached the server, on a \
                     connection that served the one before, is sent again: {request}"
                );
            }
        } else {
            if request.issued < run.back {
                while_down += 1;
                tally.longest_wait = tally.longest_wait.max(request.finished - request.issued);
            } else {
                up_after += 1;
            }
            match &request.end {
                End::Ok { status, len } => {
                    assert_eq!((*status, *len), (200, 5), "{context}: {request}");
                }
                _ => panic!("{context}: a request issued after the cut fails: {request}"),
            }
        }
        // Served by the first connect once the server is back, which the
        // backoff delays by at most its longest pause.
        let served_by = request.issued.max(run.back) + backoff + SLACK;
        assert!(
            request.finished <= served_by,
            "{context}: served more than a backoff after the server came back: {request}"
        );
    }
    assert!(
        tally.failed <= max_cut,
        "{context}: {} requests cut in flight failed, more than {max_cut}",
        tally.failed
    );
    assert!(
        up_before > 0 && while_down > 0 && up_after > 0,
        "{context}: the load covers the restart \
         ({up_before} before, {while_down} while down, {up_after} after)"
    );
    let most = max_refused_connects(&run.config, run.back - run.cut);
    assert!(
        (1..=most).contains(&run.stats.connect_failures),
        "{context}: connects were refused while the server was down, at most {most} \
         with the backoff: {:?}",
        run.stats
    );
    check_end(run, &tally);
    tally
}

/// The most connects a downtime of `down` may see refused: a round of them
/// (at most `max_connecting_per_key`, opened together) at first, then one
/// after each pause of the backoff, each at least half of its exponential
/// base, while the server is still down.
fn max_refused_connects(config: &PoolConfig, down: Duration) -> u64 {
    let mut rounds = 1;
    let mut base = config.backoff.initial;
    let mut since_first = base / 2;
    while since_first < down {
        rounds += 1;
        base = (base * 2).min(config.backoff.max);
        since_first += base / 2;
    }
    rounds * u64::from(config.max_connecting_per_key)
}

/// What every run ends with: the cut fell where the seed placed it, and the
/// pool is left with nothing in use.
fn check_end(run: &Run, tally: &Tally) {
    assert!(
        run.placement != Placement::InFlight || tally.in_flight > 0,
        "{}: no request was in flight at the cut",
        run.context()
    );
    support::assert_quiescent(&run.stats);
}

/// The checks of a dead origin (see the module's documentation).
fn check_dead_origin(run: &Run) -> Tally {
    let context = run.context();
    let circuit = run.config.circuit;
    // The circuit opens at the first connect failure once connects have
    // failed for `failing_for`: within one backoff of it.
    let open_by = run.cut + circuit.failing_for + run.config.backoff.max + SLACK;
    // Open, it lets a probe through every `open_for`: one finds the server.
    let probe_by = run.back + circuit.open_for + SLACK;
    let mut tally = Tally {
        requests: run.requests.len(),
        ..Tally::default()
    };
    let mut found_again = None;
    for request in &run.requests {
        let waited = request.finished - request.issued;
        if request.issued <= run.cut {
            check_issued_up(run, request, &mut tally);
        } else if request.issued < run.back {
            let End::Failed(kind, _) = &request.end else {
                panic!("{context}: a request to the dead origin ends so: {request}");
            };
            assert!(
                matches!(
                    kind,
                    ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::CircuitOpen
                ),
                "{context}: a request to the dead origin fails as refused: {request}"
            );
            assert!(
                waited <= run.timeout + SLACK,
                "{context}: a request waits past its timeout: {request}"
            );
            if request.issued >= open_by {
                assert!(
                    *kind == ErrorKind::CircuitOpen && waited.is_zero(),
                    "{context}: the circuit refuses a new request at once: {request}"
                );
            }
            if *kind == ErrorKind::CircuitOpen && waited.is_zero() && tally.open_after.is_zero() {
                tally.open_after = request.issued - run.cut;
            }
        } else {
            match &request.end {
                End::Ok { status, len } => {
                    assert_eq!((*status, *len), (200, 5), "{context}: {request}");
                    found_again.get_or_insert(request.finished);
                }
                End::Failed(ErrorKind::CircuitOpen, _)
                    if request.issued < probe_by && waited.is_zero() => {}
                _ => panic!("{context}: a request after the origin came back fails: {request}"),
            }
        }
    }
    let found_again = found_again.unwrap_or_else(|| panic!("{context}: no request succeeds again"));
    assert!(
        found_again <= probe_by,
        "{context}: a probe finds the server back by {} ms, not {} ms",
        probe_by.as_millis(),
        found_again.as_millis()
    );
    assert!(
        run.requests.iter().any(|r| r.issued >= probe_by),
        "{context}: the load runs past the probe"
    );
    check_end(run, &tally);
    tally
}

/// Prints every request of a replayed run (one seed named in the environment).
fn print_if_replayed(run: &Run) {
    if std::env::var_os("MUXPOOL_TURMOIL_SEED").is_some() {
        println!("{}", run.context());
        for request in &run.requests {
            println!("  {request}");
        }
        println!("  {:?}", run.stats);
    }
}

/// Runs `proto`'s server down for `down` over the seeds, the load going on
/// `after` it is back, checks each run with `check`, and sums what they
/// showed.
fn over_seeds(
    proto: Proto,
    down: Duration,
    after: Duration,
    seeds: u64,
    check: impl Fn(&Run) -> Tally,
) -> Tally {
    let mut tally = Tally::default();
    for seed in support::seeds(seeds) {
        let _replay = Replay::new("restart", seed);
        let run = run(seed, proto, down, after);
        print_if_replayed(&run);
        tally.add(check(&run));
    }
    tally
}

/// Runs a restart of `down` over the seeds; `max_cut` requests cut in flight
/// may fail in each.
fn rides_through(proto: Proto, down: Duration, seeds: u64, max_cut: usize) {
    let wall = Instant::now();
    let tally = over_seeds(proto, down, AFTER, seeds, |run| {
        check_ride_through(run, max_cut)
    });
    println!(
        "{proto:?} down {down:?}: {tally}, the longest wait {:?}, {:?} of wall time",
        tally.longest_wait,
        wall.elapsed()
    );
}

/// Runs a dead origin over the seeds.
fn dead_origin(proto: Proto, seeds: u64) {
    let wall = Instant::now();
    let tally = over_seeds(proto, DEAD, DEAD_AFTER, seeds, check_dead_origin);
    println!(
        "{proto:?} dead: {tally}, refused at once at the latest {:?} after the cut, \
         {:?} of wall time",
        tally.open_after,
        wall.elapsed()
    );
}

/// Over HTTP/2 a GET cut in flight is sent again: none fails.
const HTTP2_MAX_CUT: usize = 0;

/// Over HTTP/1.1 the one request in flight at the cut may fail, if its
/// connection was new to it or part of its response had come.
const HTTP1_MAX_CUT: usize = 1;

/// Seeds per case, so that each takes a few seconds of CPU in a debug build:
/// a seed's run is the downtime and two seconds of virtual time.
const HALF_SECOND_SEEDS: u64 = 64;
const TWO_SECOND_SEEDS: u64 = 48;
const TEN_SECOND_SEEDS: u64 = 24;

/// Seeds per dead origin: each is over a minute of virtual time.
const DEAD_SEEDS: u64 = 6;

#[test]
fn http1_half_second_restart() {
    rides_through(
        Proto::H1,
        Duration::from_millis(500),
        HALF_SECOND_SEEDS,
        HTTP1_MAX_CUT,
    );
}

#[test]
fn http1_two_second_restart() {
    rides_through(
        Proto::H1,
        Duration::from_secs(2),
        TWO_SECOND_SEEDS,
        HTTP1_MAX_CUT,
    );
}

#[test]
fn http1_ten_second_restart() {
    rides_through(
        Proto::H1,
        Duration::from_secs(10),
        TEN_SECOND_SEEDS,
        HTTP1_MAX_CUT,
    );
}

#[test]
fn http2_half_second_restart() {
    rides_through(
        Proto::H2,
        Duration::from_millis(500),
        HALF_SECOND_SEEDS,
        HTTP2_MAX_CUT,
    );
}

#[test]
fn http2_two_second_restart() {
    rides_through(
        Proto::H2,
        Duration::from_secs(2),
        TWO_SECOND_SEEDS,
        HTTP2_MAX_CUT,
    );
}

#[test]
fn http2_ten_second_restart() {
    rides_through(
        Proto::H2,
        Duration::from_secs(10),
        TEN_SECOND_SEEDS,
        HTTP2_MAX_CUT,
    );
}

#[test]
fn http1_dead_origin_fails_fast() {
    dead_origin(Proto::H1, DEAD_SEEDS);
}

#[test]
fn http2_dead_origin_fails_fast() {
    dead_origin(Proto::H2, DEAD_SEEDS);
}
