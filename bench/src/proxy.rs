//! The proxy test: many logical sessions through one pooled client, with
//! pass/fail targets.
//!
//! A proxy multiplexes many downstream sessions onto few upstream connections.
//! This mode plays that: [`SESSIONS`] (10,000) sessions loop `GET /` (body
//! `hello`, read to the end) for `--duration-secs`, all starting at once, through
//! ONE `muxpool::Client` limited to `--connections` (default 100) connections,
//! against an in-process HTTP/2 server (h2c, `SETTINGS_MAX_CONCURRENT_STREAMS`
//! 100). Then it checks:
//!
//! | target | how it is measured |
//! |---|---|
//! | connections used ≤ 100 | the server's accepted count (a fresh server) |
//! | tasks alive ≤ 110 | `num_alive_tasks()` of the client's runtime, sampled every 5 ms once every session has completed a request (the steady state) until the end of the window, minus the [`WORKERS`] tasks this benchmark spawns: the sessions run as futures in a `FuturesUnordered` per worker task, so what remains is the client's own tasks (one driver per HTTP/2 connection, the pool's timer task) |
//! | transport memory ≤ 5 MB | live heap bytes allocated on the client's thread (the client runtime is current-thread, so that is everything the client and its runtime hold), after the run with the connections idle, minus a baseline taken after creating the client and before any request; the server runs on other threads and is not counted |
//! | pool overhead ≤ 1 µs | NOT the client's CPU per request: a microbenchmark of the core alone, `muxpool::sans_io::Pool` acquire + release of one stream on an HTTP/2 connection (`Connected::http2(100)`, 99 other streams out, actions drained after each input, as the adapter does), thread CPU ns per iteration |
//! | failed requests = 0 | errors and wrong bodies |
//!
//! The client's whole CPU time per request (the client thread's `getrusage`,
//! HTTP/2 framing, the socket system calls and the runtime included) is reported
//! beside them, with no target.
//!
//! The client runs on a current-thread runtime on the main thread, pinned to
//! CPU 0; the server on a one-worker multi-thread runtime pinned to CPU 1 (on a
//! machine with at least two CPUs).

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use muxpool::sans_io::{
    Acquire, AcquireOptions, Action, Connected, Instant as CoreInstant, Lease, Pool, PoolConfig,
    Release,
};
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};

use crate::alloc;
use crate::sys::{self, cpu_time, Who};

/// Logical sessions, all started at once.
pub const SESSIONS: usize = 10_000;

/// Tasks the sessions run in (as futures), spawned on the client's runtime;
/// subtracted from the runtime's alive-task count.
pub const WORKERS: usize = 10;

/// Every worker runs as many sessions.
const _: () = assert!(SESSIONS % WORKERS == 0);

/// The server's `SETTINGS_MAX_CONCURRENT_STREAMS`.
const SERVER_STREAMS: u32 = 100;

/// Target: tasks alive in the steady state.
const MAX_TASKS: usize = 110;

/// Target: transport memory, bytes (5 MB, decimal).
const MAX_TRANSPORT_BYTES: f64 = 5_000_000.0;

/// Target: pool overhead per request, ns.
const MAX_POOL_NS: f64 = 1_000.0;

/// How often the alive-task count is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// How long connections get to return to the pool after the run, and the
/// client to settle after it is created.
const SETTLE: Duration = Duration::from_millis(300);

/// How long the sessions may take to finish after the window closes.
const GRACE: Duration = Duration::from_secs(15);

/// Each request's timeout (the client's default is 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Iterations of the core microbenchmark.
const MICRO_ITERS: u32 = 2_000_000;

/// The body `GET /` answers.
const HELLO: &[u8] = b"hello";

/// What the proxy test does.
pub struct Params {
    /// How long the sessions loop.
    pub duration: Duration,
    /// The client's connection limit (per origin).
    pub connections: u32,
}

/// What the sessions share.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Sessions that have completed at least one request.
    ramped: AtomicUsize,
}

impl Counters {
    fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(message);
    }
}

/// What the load run measured.
struct Measured {
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    seconds: f64,
    cpu: Duration,
    accepted: usize,
    client_open_max: u32,
    tasks_baseline: usize,
    tasks_max_steady: Option<usize>,
    tasks_max_all: usize,
    steady_samples: usize,
    tasks_after: usize,
    transport_bytes: isize,
    open_after: u32,
    idle_after: u32,
}

/// Runs the proxy test, prints the table on stdout, and fails if a target is
/// missed.
pub fn run(params: &Params) -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = cpus >= 2;
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .on_thread_start(move || {
            if pin {
                let _ = sys::pin_to_cpu(sys::SERVER_CPU);
            }
        })
        .build()
        .map_err(|e| format!("server runtime: {e}"))?;
    let server = HyperServer::start_on(
        server_runtime.handle(),
        Options {
            protocol: Protocol::Http2,
            max_concurrent_streams: Some(SERVER_STREAMS),
            ..Options::default()
        },
    );
    if pin {
        sys::pin_to_cpu(sys::CLIENT_CPU).map_err(|e| format!("pinning to CPU 0: {e}"))?;
        eprintln!(
            "h2c server on {} (CPU {}), client on CPU {}",
            server.url("/"),
            sys::SERVER_CPU,
            sys::CLIENT_CPU
        );
    } else {
        eprintln!("warning: {cpus} CPU(s): client and server are not pinned apart");
    }
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("client runtime: {e}"))?;
    eprintln!(
        "proxy: {SESSIONS} sessions for {:?} through one client limited to {} connections...",
        params.duration, params.connections
    );
    let measured = client_runtime.block_on(load(params, &server));
    drop(client_runtime);
    drop(server);
    server_runtime.shutdown_timeout(Duration::from_secs(1));
    let measured = measured?;

    eprintln!("core microbenchmark ({MICRO_ITERS} acquire + release)...");
    let pool_ns = pool_overhead_ns()?;

    let (table, failed) = report(params, &measured, pool_ns);
    print!("{table}");
    if failed > 0 {
        return Err(format!("{failed} target(s) missed"));
    }
    Ok(())
}

/// The load run, on the client's runtime.
async fn load(params: &Params, server: &HyperServer) -> Result<Measured, String> {
    let metrics = tokio::runtime::Handle::current().metrics();
    alloc::count_this_thread();
    let counters = Arc::new(Counters::default());
    let uri: http::Uri = server
        .url("/")
        .parse()
        .map_err(|e| format!("server URL: {e}"))?;
    let client = muxpool::Client::builder()
        .http2_prior_knowledge(true)
        .max_connections_per_key(params.connections)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| format!("building the client: {e}"))?;
    tokio::time::sleep(SETTLE).await;
    let accepted_before = server.accepted();
    let tasks_baseline = metrics.num_alive_tasks();
    let baseline = alloc::thread_live_bytes();

    let cpu_start = cpu_time(Who::Thread);
    let start = Instant::now();
    let deadline = start + params.duration;
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            tokio::spawn(worker(
                client.clone(),
                uri.clone(),
                SESSIONS / WORKERS,
                deadline,
                Arc::clone(&counters),
            ))
        })
        .collect();

    let mut tasks_max_all = 0;
    let mut tasks_max_steady: Option<usize> = None;
    let mut steady_samples = 0;
    let mut client_open_max = 0;
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < deadline {
        tick.tick().await;
        let alive = metrics.num_alive_tasks();
        tasks_max_all = tasks_max_all.max(alive);
        client_open_max = client_open_max.max(client.stats().open);
        if counters.ramped.load(Ordering::Relaxed) == SESSIONS && Instant::now() < deadline {
            tasks_max_steady = Some(tasks_max_steady.unwrap_or(0).max(alive));
            steady_samples += 1;
        }
    }
    let joined = tokio::time::timeout(GRACE, async {
        for worker in workers {
            if let Err(e) = worker.await {
                counters.error(format!("worker task failed: {e}"));
            }
        }
    })
    .await;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = (cpu_time(Who::Thread) - cpu_start).total();
    if joined.is_err() {
        return Err(format!(
            "the sessions did not finish within {GRACE:?} after the window"
        ));
    }

    tokio::time::sleep(SETTLE).await;
    let transport_bytes = alloc::thread_live_bytes() - baseline;
    let stats = client.stats();
    let tasks_after = metrics.num_alive_tasks();
    let accepted = server.accepted() - accepted_before;
    // Close the connections before the runtime goes (bounded).
    let _ = tokio::time::timeout(Duration::from_secs(2), client.shutdown()).await;
    drop(client);

    let first_error = counters
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(Measured {
        requests: counters.requests.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        first_error,
        seconds,
        cpu,
        accepted,
        client_open_max,
        tasks_baseline,
        tasks_max_steady: tasks_max_steady.map(|t| t.saturating_sub(WORKERS)),
        tasks_max_all,
        steady_samples,
        tasks_after,
        transport_bytes,
        open_after: stats.open,
        idle_after: stats.idle,
    })
}

/// One worker task: `sessions` sessions as futures, polled together.
async fn worker(
    client: muxpool::Client,
    uri: http::Uri,
    sessions: usize,
    deadline: Instant,
    counters: Arc<Counters>,
) {
    let mut running: FuturesUnordered<_> = (0..sessions)
        .map(|_| session(&client, &uri, deadline, &counters))
        .collect();
    while running.next().await.is_some() {}
}

/// One logical session: `GET /` back to back until the deadline.
async fn session(client: &muxpool::Client, uri: &http::Uri, deadline: Instant, c: &Counters) {
    let mut ramped = false;
    while Instant::now() < deadline {
        let request = crate::contender::get(uri, muxpool::Body::empty());
        let result = match client.send(request).await {
            Ok(response) => response.into_body().bytes().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(body) if body == HELLO => {
                c.requests.fetch_add(1, Ordering::Relaxed);
                if !ramped {
                    ramped = true;
                    c.ramped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(body) => c.error(format!("unexpected body {body:?}")),
            Err(e) => {
                c.error(e.to_string());
                // Do not spin on a dead server.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The core's hot path for one HTTP/2 request, in thread CPU ns: acquire a
/// stream on a connection with 99 of its 100 streams out, release it, draining
/// the actions and reading the next deadline after each input as the adapter
/// does.
fn pool_overhead_ns() -> Result<f64, String> {
    let mut pool: Pool<String> =
        Pool::new(PoolConfig::default()).map_err(|e| format!("core pool: {e}"))?;
    let key = "http://127.0.0.1:8080".to_string();
    let mut now = CoreInstant::from_millis(1);
    let mut tick = || {
        now += Duration::from_nanos(1);
        now
    };
    let waiter = match pool.acquire(&key, tick(), AcquireOptions::default()) {
        Ok(Acquire::Queued(waiter)) => waiter,
        other => return Err(format!("the first acquire should queue, got {other:?}")),
    };
    let conn = match pool.poll_action() {
        Some(Action::Open { conn }) => conn,
        other => return Err(format!("expected an open, got {other:?}")),
    };
    pool.handle_connected(conn, tick(), Connected::http2(100))
        .map_err(|e| format!("connected: {e:?}"))?;
    let first = match pool.poll_action() {
        Some(Action::Grant { waiter: w, lease }) if w == waiter => lease,
        other => return Err(format!("expected the grant, got {other:?}")),
    };
    let mut held: Vec<Lease> = vec![first];
    for _ in 0..98 {
        match pool.acquire(&key, tick(), AcquireOptions::default()) {
            Ok(Acquire::Ready(lease)) => held.push(lease),
            other => return Err(format!("expected a stream, got {other:?}")),
        }
    }
    while pool.poll_action().is_some() {}

    let mut one = |pool: &mut Pool<String>| -> Result<(), String> {
        let t = tick();
        let lease = match pool.acquire(black_box(&key), t, AcquireOptions::default()) {
            Ok(Acquire::Ready(lease)) => lease,
            other => return Err(format!("expected the last stream, got {other:?}")),
        };
        after_input(pool, t)?;
        let t = tick();
        pool.release(black_box(lease), t, Release::Reuse)
            .map_err(|e| format!("release: {e:?}"))?;
        after_input(pool, t)?;
        Ok(())
    };
    for _ in 0..MICRO_ITERS / 10 {
        one(&mut pool)?;
    }
    let cpu_start = cpu_time(Who::Thread);
    for _ in 0..MICRO_ITERS {
        one(&mut pool)?;
    }
    let cpu = (cpu_time(Who::Thread) - cpu_start).total();
    black_box(held);
    Ok(cpu.as_secs_f64() * 1e9 / f64::from(MICRO_ITERS))
}

/// What the adapter does after each input: drain the actions (there are none
/// on this path), honour the next deadline (never due here).
#[inline(always)]
fn after_input(pool: &mut Pool<String>, now: CoreInstant) -> Result<(), String> {
    if let Some(action) = pool.poll_action() {
        return Err(format!("the hot path asked for {action:?}"));
    }
    if pool.poll_timeout().is_some_and(|at| at <= now) {
        pool.handle_timeout(now);
    }
    Ok(())
}

/// The markdown report, and how many targets were missed.
fn report(params: &Params, m: &Measured, pool_ns: f64) -> (String, usize) {
    let mut out = String::new();
    let mut failed = 0;
    let mut row = |out: &mut String, metric: &str, measured: String, target: &str, ok: bool| {
        if !ok {
            failed += 1;
        }
        let verdict = if ok { "PASS" } else { "FAIL" };
        let _ = writeln!(out, "| {metric} | {measured} | {target} | {verdict} |");
    };
    out.push_str("| target | measured | limit | result |\n|---|---:|---:|---|\n");
    let limit = params.connections as usize;
    row(
        &mut out,
        "connections used (server accepted)",
        m.accepted.to_string(),
        &format!("≤ {limit}"),
        m.accepted <= limit && m.accepted > 0,
    );
    let tasks = m
        .tasks_max_steady
        .map_or("no steady state".to_string(), |t| {
            format!("{t} (max of {} samples)", m.steady_samples)
        });
    row(
        &mut out,
        &format!("tasks alive, steady state (runtime alive − {WORKERS} bench workers)"),
        tasks,
        &format!("≤ {MAX_TASKS}"),
        m.tasks_max_steady.is_some_and(|t| t <= MAX_TASKS),
    );
    let conns = m.open_after.max(1);
    row(
        &mut out,
        &format!(
            "transport memory, {} idle conns (client-thread live heap − baseline)",
            m.open_after
        ),
        format!(
            "{:.2} MB ({:.1} KB/conn)",
            m.transport_bytes as f64 / 1e6,
            m.transport_bytes as f64 / 1e3 / f64::from(conns)
        ),
        "≤ 5 MB",
        (m.transport_bytes as f64) <= MAX_TRANSPORT_BYTES,
    );
    row(
        &mut out,
        "pool overhead/request (core acquire+release microbench, h2 stream, thread CPU)",
        format!("{pool_ns:.0} ns"),
        "≤ 1 µs",
        pool_ns <= MAX_POOL_NS,
    );
    let errors = match &m.first_error {
        Some(first) => format!("{} (first: {first})", m.errors),
        None => m.errors.to_string(),
    };
    row(
        &mut out,
        "failed requests",
        errors,
        "0",
        m.errors == 0 && m.requests > 0,
    );

    let requests = m.requests.max(1) as f64;
    out.push_str("\n| also measured (no target) | value |\n|---|---:|\n");
    let mut info = |name: &str, value: String| {
        let _ = writeln!(out, "| {name} | {value} |");
    };
    info("sessions", SESSIONS.to_string());
    info("requests completed", m.requests.to_string());
    info("throughput", format!("{:.0} req/s", requests / m.seconds));
    info(
        "client CPU per request (client thread getrusage, whole run)",
        format!("{:.2} µs", m.cpu.as_secs_f64() * 1e6 / requests),
    );
    info(
        "client-side max open connections (pool stats, sampled)",
        m.client_open_max.to_string(),
    );
    info(
        "tasks alive before the run (client created, no request)",
        m.tasks_baseline.to_string(),
    );
    info(
        "tasks alive max over the whole run, ramp-up included (raw, workers included)",
        m.tasks_max_all.to_string(),
    );
    info(
        "tasks alive after the run (workers done, conns idle)",
        m.tasks_after.to_string(),
    );
    info(
        "pool after the run: open / idle",
        format!("{} / {}", m.open_after, m.idle_after),
    );
    (out, failed)
}
