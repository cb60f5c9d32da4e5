//! The pool under deterministic simulation (see `muxpool_core::sim`).
//!
//! - `seeds` runs seeds `0..1000`; `MUXPOOL_SIM_SEEDS=N` runs `N` seeds, starting
//!   at `MUXPOOL_SIM_FIRST` (default 0).
//! - `replay` replays the seed in `MUXPOOL_SIM_SEED` (default 0) with its trace:
//!   `MUXPOOL_SIM_SEED=123 cargo test -p muxpool-core --all-features --test simulation -- replay --nocapture`;
//!   `MUXPOOL_SIM_TRACE=1` prints the whole trace.
//! - The rest pin down determinism and a few behaviours through whole runs.
//! - `fuzz_corpus` replays the committed fuzz corpus the same way, and traces one
//!   input on demand.
//!
//! Every step of every run is checked by `sim::Checker`; a failing seed names the
//! command that replays it.

mod fuzz_corpus;

use std::time::Duration;

use muxpool_core::sim::{self, Checker, Faults, Options, Origin, Protocol, Report};
use muxpool_core::{
    Acquire, AcquireOptions, Action, Backoff, Circuit, CloseReason, ConnId, Connected, HealthCheck,
    Instant, Lease, PoolConfig, RejectReason, Release, RetryBudget, WaiterId,
};

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

/// The options of seed `seed`.
fn options_for(seed: u64) -> Options {
    Options::from_seed(seed)
}

fn replay_line(seed: u64) -> String {
    format!("MUXPOOL_SIM_SEED={seed} cargo test -p muxpool-core --all-features --test simulation -- replay --nocapture")
}

/// Runs a scenario test's options, or fails with the run's trace.
fn run(options: &Options) -> Report {
    let mut options = options.clone();
    options.trace = true;
    sim::run(&options).unwrap_or_else(|failure| panic!("{options}\n{failure}"))
}

#[test]
fn seeds() {
    let first = env_u64("MUXPOOL_SIM_FIRST").unwrap_or(0);
    let count = env_u64("MUXPOOL_SIM_SEEDS").unwrap_or(1000);
    let mut failures = Vec::new();
    for seed in first..first + count {
        if let Err(failure) = sim::run(&options_for(seed)) {
            eprintln!(
                "seed {seed}: {}\n  reproduce: {}",
                failure.violation,
                replay_line(seed)
            );
            failures.push(seed);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} seeds failed: {failures:?}",
        failures.len()
    );
}

#[test]
fn replay() {
    let seed = env_u64("MUXPOOL_SIM_SEED").unwrap_or(0);
    let mut options = options_for(seed);
    options.trace = true;
    println!("{options}");
    match sim::run(&options) {
        Ok(report) => {
            if std::env::var_os("MUXPOOL_SIM_TRACE").is_some() {
                report.trace.iter().for_each(|line| println!("{line}"));
            }
            println!("{report}");
        }
        Err(failure) => {
            if std::env::var_os("MUXPOOL_SIM_TRACE").is_some() {
                failure.trace.iter().for_each(|line| println!("{line}"));
            }
            panic!("{failure}\n  reproduce: {}", replay_line(seed));
        }
    }
}

#[test]
fn same_seed_same_run() {
    let mut options = options_for(11);
    options.trace = true;
    let first = run(&options);
    let second = run(&options);
    assert!(
        first.trace.len() > 100,
        "a run this size writes a real trace"
    );
    assert_eq!(first, second, "same seed, same trace and figures");
    assert_eq!(first.to_string(), second.to_string());
    let other = run(&options_for(12));
    assert_ne!(first.digest, other.digest, "the trace depends on the seed");
}

/// Options for a scenario: one origin, no faults, no cancellations, requests
/// that use the pool's acquire timeout.
fn scenario(origin: Origin, sessions: u32) -> Options {
    let mut options = Options::from_seed(1);
    options.origins = vec![origin];
    options.sessions = sessions;
    options.requests_per_session = 1;
    options.arrival_span = Duration::ZERO;
    options.burst = 0.0;
    options.cancel = 0.0;
    options.own_deadline = 0.0;
    options.faults = Faults::NONE;
    options.fault_phase = Duration::ZERO;
    options.config = PoolConfig::default();
    options
}

#[test]
fn h2_cold_burst_opens_one_connection_then_what_demand_needs() {
    let mut origin = Origin::new(Protocol::Http2 { max_streams: 100 });
    origin.request_time = (Duration::from_secs(1), Duration::from_secs(2));
    // 100 requests at the same instant on a cold origin: one connection learns
    // that the origin multiplexes 100 streams, and carries them all.
    let report = run(&scenario(origin.clone(), 100));
    assert_eq!(report.completed, 100);
    assert_eq!(report.connections_opened, 1, "{report}");
    // 250 at once: the first connection takes 100, the 150 left need two more.
    let report = run(&scenario(origin, 250));
    assert_eq!(report.completed, 250);
    assert_eq!(report.connections_opened, 3, "{report}");
}

#[test]
fn dead_origin_trips_its_circuit_and_fails_requests_fast() {
    let mut options = scenario(Origin::new(Protocol::Http1), 60);
    options.requests_per_session = 3;
    options.arrival_span = Duration::from_secs(20);
    options.think_time = (Duration::ZERO, Duration::from_secs(1));
    options.burst = 0.3;
    options.faults = Faults {
        connect_fail: 1.0,
        ..Faults::NONE
    };
    options.fault_phase = Duration::MAX;
    let open_for = Duration::from_secs(2);
    let failing_for = Duration::from_secs(2);
    options.config.circuit = Circuit::new(Some(3), open_for).failing_for(failing_for);
    options.config.acquire_timeout = Duration::from_secs(30);
    let report = run(&options);

    assert_eq!(report.completed, 0);
    assert_eq!(
        report.rejections[RejectReason::Timeout],
        0,
        "no request waits out its deadline: {report}"
    );
    // Once connects have failed for `failing_for`, new requests are refused
    // at once: most of those arriving over 20 s.
    let refused_fast = report.rejections[RejectReason::CircuitOpen];
    assert!(refused_fast * 10 >= report.requests * 8, "{report}");
    assert!(report.reject_max < Duration::from_secs(30), "{report}");
    // The connects of the first `failing_for` (backoff from 100 ms), then one
    // probe per open period.
    let probes = report.virtual_time.as_secs_f64() / open_for.as_secs_f64();
    assert!(
        (report.connections_opened as f64) <= 7.0 + probes + 1.0,
        "{report}"
    );
}

#[test]
fn requests_cut_under_load_retry_within_the_budget() {
    let mut origin = Origin::new(Protocol::Http2 { max_streams: 100 });
    origin.request_time = (Duration::from_millis(50), Duration::from_millis(500));
    let mut options = scenario(origin, 200);
    options.requests_per_session = 5;
    options.arrival_span = Duration::from_secs(60);
    options.think_time = (Duration::ZERO, Duration::from_millis(500));
    // Every other request is cut under its lease, and every cut one is sent
    // again: far more retries than a budget of 10 % and no floor allows.
    options.faults = Faults {
        reset: 0.5,
        ..Faults::NONE
    };
    options.fault_phase = Duration::MAX;
    options.retry = 1.0;
    options.config.retry_budget = RetryBudget::new(10, 0, Duration::from_secs(10));
    let report = run(&options);

    let refused = report.rejections[RejectReason::RetryBudget];
    assert!(report.retries > 0 && refused > 0, "{report}");
    // Any window's retries are at most a tenth of its requests, so over the
    // run (two windows overlap at most) a fifth.
    let first = report.requests - report.retries - refused;
    assert!(report.retries * 5 <= first, "{report}");
}

#[test]
fn unanswered_health_checks_close_connections_and_requests_go_elsewhere() {
    let mut origin = Origin::new(Protocol::Http2 { max_streams: 100 });
    origin.server_idle_close = None;
    let mut options = scenario(origin, 20);
    options.requests_per_session = 5;
    options.arrival_span = Duration::from_secs(10);
    options.think_time = (Duration::from_secs(2), Duration::from_secs(4));
    options.faults = Faults {
        lost_ping: 1.0,
        ..Faults::NONE
    };
    options.fault_phase = Duration::MAX;
    options.config.health_check =
        HealthCheck::new(Some(Duration::from_secs(1)), Duration::from_millis(500));
    let report = run(&options);

    assert!(
        report.closes[CloseReason::HealthCheckFailed] > 0,
        "{report}"
    );
    assert_eq!(report.completed, report.requests, "{report}");
}

// ------------------------------------------------------------------------------
// Core bugs found by the simulator and the fuzzer, each kept as the smallest
// input sequence that showed it, asserting the behaviour the core promises.

/// Unwraps a checked step, failing the test with the violation.
fn ok<T>(step: Result<T, sim::Violation>) -> T {
    step.unwrap_or_else(|violation| panic!("{violation}"))
}

fn queued(answer: Result<Acquire, RejectReason>) -> WaiterId {
    match answer {
        Ok(Acquire::Queued(waiter)) => waiter,
        other => panic!("expected to queue, got {other:?}"),
    }
}

/// The connection the last input asked to open.
fn opened(checker: &Checker<&'static str>) -> ConnId {
    checker
        .actions()
        .iter()
        .find_map(|a| match a {
            Action::Open { conn } => Some(*conn),
            _ => None,
        })
        .expect("an open action")
}

/// The lease the last input granted to `waiter`.
fn granted(checker: &Checker<&'static str>, waiter: WaiterId) -> Lease {
    checker
        .actions()
        .iter()
        .find_map(|a| match a {
            Action::Grant { waiter: w, lease } if *w == waiter => Some(*lease),
            _ => None,
        })
        .expect("a grant")
}

const T0: Instant = Instant::ZERO;

/// A circuit that half-opens while the global limit is full of another key's idle
/// connections gets its probe by evicting one: a half-open key refuses requests,
/// so no waiter can make room for it (seen in the simulator as `CircuitOpen`
/// refusals long after the faults stopped).
#[test]
fn half_open_probe_evicts_under_the_global_limit() {
    let mut config = PoolConfig::default();
    config.max_connections = 1;
    config.max_connections_per_key = 1;
    config.circuit = Circuit::new(Some(1), Duration::from_secs(1));
    let mut c = Checker::new(config).unwrap();
    let _ = queued(ok(c.acquire(&"a", T0, AcquireOptions::default())));
    ok(c.handle_connect_failed(opened(&c), T0)).unwrap(); // "a" trips its circuit
    let b = queued(ok(c.acquire(&"b", T0, AcquireOptions::default())));
    ok(c.handle_connected(opened(&c), T0, Connected::http1())).unwrap();
    ok(c.release(granted(&c, b), T0, Release::Reuse)).unwrap(); // "b" idles, holding the only slot
    let half_open = T0 + Duration::from_secs(1);
    ok(c.handle_timeout(half_open));
    let probes = c
        .actions()
        .iter()
        .filter(|a| matches!(a, Action::Open { .. }))
        .count();
    assert_eq!(
        probes, 1,
        "the half-open key should evict the idle connection for its probe"
    );
}

/// Seeds in which a circuit half-opened while the global limit was full of
/// other keys' busy connections, each handed straight to its own key's next
/// request when its lease came back: none ever went idle for the probe to
/// evict, and the circuit refused requests with `CircuitOpen` long after the
/// faults stopped. The next connection given back while a probe waits goes
/// to the probe.
#[test]
fn a_half_open_probe_is_not_starved_by_busy_keys() {
    for seed in [5270, 24321, 28050, 64523, 128813] {
        run(&options_for(seed));
    }
}

/// With a tiny `forget_key_after`, a timeout that empties a key makes forgetting
/// it due at once: `handle_timeout` must handle that too before returning.
#[test]
fn handle_timeout_leaves_nothing_due() {
    let mut config = PoolConfig::default();
    config.forget_key_after = Duration::from_nanos(1);
    let timeout = config.connect_timeout;
    let mut c = Checker::new(config).unwrap();
    let _ = queued(ok(c.acquire(&"a", T0, AcquireOptions::default())));
    // The connect times out, its waiter is refused, the key is empty.
    ok(c.handle_timeout(T0 + timeout + Duration::from_nanos(1)));
    assert!(c.pool().poll_timeout().is_none_or(|at| at > c.now()));
}

/// Zero durations made things due the instant they were armed, over and over
/// (a zero idle timeout with `min_idle_per_key` re-armed a key every
/// nanosecond): the configuration refuses them.
#[test]
fn zero_durations_are_refused() {
    let mut config = PoolConfig::default();
    config.idle_timeout = Some(Duration::ZERO);
    config.min_idle_per_key = 1;
    assert!(matches!(
        Checker::<&str>::new(config),
        Err(muxpool_core::ConfigError::ZeroDuration("idle_timeout"))
    ));
    let mut config = PoolConfig::default();
    config.forget_key_after = Duration::ZERO;
    assert!(Checker::<&str>::new(config).is_err());
    let mut config = PoolConfig::default();
    config.connect_timeout = Duration::ZERO;
    assert!(Checker::<&str>::new(config).is_err());
}

/// An input that arrives after a key's backoff ended but before the caller's
/// timer woke the core (timers are always a little late) is no stall: the core
/// waits for the wake-up it asked for.
#[test]
fn a_late_wake_up_is_not_a_stall() {
    let mut config = PoolConfig::default();
    config.backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(1));
    let timeout = config.connect_timeout;
    let mut c = Checker::new(config).unwrap();
    let _ = queued(ok(c.acquire(&"a", T0, AcquireOptions::default())));
    let _ = queued(ok(c.acquire(&"a", T0, AcquireOptions::default())));
    // The connect times out; the first request is refused, the second waits out
    // a 1 ms backoff, and the core asks to be woken when it ends.
    ok(c.handle_timeout(T0 + timeout));
    // A request on another key arrives 100 ms later, before that wake-up.
    let _ = ok(c.acquire(
        &"b",
        T0 + timeout + Duration::from_millis(100),
        AcquireOptions::default(),
    ));
}
