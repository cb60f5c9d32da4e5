//! muxpool-bench: HTTP clients end to end against nginx on loopback.
//!
//! ```text
//! cargo run --release -p muxpool-bench -- h1 [--duration-secs 5] [--warmup-secs 1]
//!     [--concurrency 1,16,256] [--only hyper-util,reqwest,wrk] [--rounds 1] [--json]
//! cargo run --release -p muxpool-bench -- idle-memory [--h2] [--connections 100]
//!     [--path /bytes/65536] [--only hyper-util,reqwest] [--json]
//! ```
//!
//! **h1** starts nginx (one worker pinned to CPU 1, no access log,
//! `keepalive_requests 100000`, `GET /` answering `hello\n`), pins itself to
//! CPU 0, and for each concurrency level runs each contender for a warm-up and
//! then a measured window: the in-process clients ([`contender::IN_PROCESS`]) on
//! a current-thread tokio runtime with `concurrency` tasks looping requests
//! ([`load`]), then wrk with as many connections ([`wrk`]). It prints a markdown
//! table (or JSON with `--json`) of requests/s, client CPU µs per request,
//! latency p50/p99 and connections nginx accepted. With `--rounds N` every
//! contender runs N times at each concurrency, the rounds interleaved
//! (A B C, A B C, ...) so that a drift in the machine's speed reaches every
//! contender alike, and each figure is the median of the N, with the range of
//! CPU per request beside it ([`report::medians`]); a second table gives each
//! contender's CPU per request over wrk's and over hyper-util's, round by
//! round ([`report::paired`]). The `floor` contender is not a client but the
//! least one does per request ([`contender::Floor`]).
//!
//! **idle-memory** measures the heap bytes each in-process client holds per idle
//! pooled connection ([`idle`]), with a counting global allocator ([`alloc`]):
//! plain HTTP/1.1 against the `h1` mode's nginx, or with `--h2` HTTP/2 over
//! TLS against the `h2` mode's nginx and contenders (`idle_memory` in `h2.rs`).
//!
//! **proxy** (`proxy [--duration-secs 5] [--connections 100]`) runs 10,000
//! sessions through one muxpool client against an in-process h2c server and
//! checks connections, tasks, memory and pool overhead against targets,
//! exiting 1 if one is missed ([`proxy`]).
//!
//! **h2** is the `h1` measurement over HTTP/2 and TLS (ALPN), with h2load as the
//! external reference, plus a table of connections each client opens for a
//! burst of requests on a cold pool ([`h2`]).
//!
//! **per-request** is the `h2` load measurement of two habits side by side:
//! one client shared by every request, and a new client for each request
//! (a new pool, TLS configuration and session cache: a full handshake per
//! request), for muxpool and reqwest (`PerRequest` in
//! [`h2_contender`]).
//!
//! **messages** (`messages [--duration-secs 5] [--concurrency 1,16,256]`)
//! measures request/response messages over one muxpool `Connection`: over one
//! pooled WebSocket and over HTTP/2 streams, against in-process servers, with
//! the client's own CPU per message ([`messages`]).
//!
//! **endpoints** (`endpoints [--seeds 10]`) runs muxpool-core's balancer and
//! adaptive sizing in a simulated world of several endpoints (one slow, one
//! refusing and one black-holed, a region down and back, demand stepping up
//! and down), beside round robin, over many seeds; it prints one table and
//! exits 1 while a target is missed ([`endpoints`]).
//!
//! Progress and warnings go to stderr; the table alone goes to stdout.

mod alloc;
mod contender;
mod endpoints;
mod external;
mod h2;
mod h2_contender;
mod idle;
mod load;
mod messages;
mod proxy;
mod report;
mod sys;
mod wrk;

use std::process::ExitCode;
use std::time::Duration;

use muxpool_testkit::nginx::{self, Nginx, NginxOptions};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

const USAGE: &str = "\
usage:
  muxpool-bench h1 [--duration-secs N] [--warmup-secs N] [--concurrency 1,16,256]
                   [--only NAME,...] [--rounds N] [--json]
      (--rounds N: each contender N times, interleaved; medians and CPU ranges)
  muxpool-bench idle-memory [--h2] [--connections N] [--path /bytes/65536] [--only NAME,...]
                            [--json]
      (--h2: HTTP/2 over TLS, as in the h2 mode)
  muxpool-bench h2 [--duration-secs N] [--warmup-secs N] [--concurrency 1,16,256]
                   [--only NAME,...] [--rounds N] [--json]
      (HTTP/2 over TLS; h2load as the external reference; then a cold-pool burst)
  muxpool-bench proxy [--duration-secs N] [--connections N]
      (10,000 sessions over one muxpool client against an in-process h2c server;
       prints measured vs targets and exits 1 if one is missed)

  muxpool-bench messages [--duration-secs N] [--warmup-secs N] [--concurrency 1,16,256] [--json]
      (request/response over one pooled WebSocket and over HTTP/2 streams, in-process servers)
  muxpool-bench per-request [--duration-secs N] [--warmup-secs N] [--concurrency 1,16,256]
                            [--only NAME,...] [--rounds N] [--json]
      (HTTP/2 over TLS as in h2: one shared client beside a new client for every request)

  muxpool-bench endpoints [--seeds N]
      (the core's balancer in a simulated world of endpoints, beside round robin,
       over N seeds (10); prints one table and exits 1 if a target is missed)

  Any mode: --trace sets a tracing subscriber (tracing-subscriber's fmt, muxpool's
  DEBUG spans and events, written to nowhere), for what tracing costs when listened to.

Contenders: hyper-util, reqwest, muxpool, muxpool-smol, floor (in process), wrk (h1 only), h2load (h2 only).";

/// The command line.
struct Args {
    mode: String,
    duration: Duration,
    warmup: Duration,
    concurrency: Vec<usize>,
    connections: usize,
    /// Runs of each contender at each concurrency (`h1`, `h2`).
    rounds: usize,
    path: String,
    only: Option<Vec<String>>,
    json: bool,
    /// `idle-memory` over HTTP/2 and TLS.
    h2: bool,
    /// A tracing subscriber listens to muxpool at DEBUG.
    trace: bool,
    /// Seeds per scenario (`endpoints`).
    seeds: u64,
}

impl Args {
    fn parse() -> Result<Args, String> {
        let mut raw = std::env::args().skip(1);
        let mode = raw.next().ok_or("no mode given")?;
        if ![
            "h1",
            "h2",
            "idle-memory",
            "proxy",
            "messages",
            "per-request",
            "endpoints",
        ]
        .contains(&mode.as_str())
        {
            return Err(format!("unknown mode {mode:?}"));
        }
        let mut args = Args {
            mode,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            concurrency: vec![1, 16, 256],
            connections: 100,
            rounds: 1,
            path: "/bytes/65536".to_string(),
            only: None,
            json: false,
            h2: false,
            trace: false,
            seeds: 10,
        };
        while let Some(flag) = raw.next() {
            let mut value = || raw.next().ok_or(format!("{flag} needs a value"));
            let number = |text: String| -> Result<u64, String> {
                text.parse().map_err(|e| format!("{flag} {text:?}: {e}"))
            };
            match flag.as_str() {
                "--duration-secs" => args.duration = Duration::from_secs(number(value()?)?),
                "--warmup-secs" => args.warmup = Duration::from_secs(number(value()?)?),
                "--concurrency" => {
                    args.concurrency = value()?
                        .split(',')
                        .map(|c| {
                            c.trim()
                                .parse()
                                .map_err(|e| format!("--concurrency {c:?}: {e}"))
                        })
                        .collect::<Result<_, _>>()?;
                    if args.concurrency.contains(&0) {
                        return Err("--concurrency must be at least 1".into());
                    }
                }
                "--connections" => args.connections = number(value()?)?.max(1) as usize,
                "--rounds" => {
                    args.rounds = usize::try_from(number(value()?)?).unwrap_or(usize::MAX);
                    if args.rounds == 0 {
                        return Err("--rounds must be at least 1".into());
                    }
                }
                "--path" => args.path = value()?,
                "--only" => {
                    args.only = Some(value()?.split(',').map(|s| s.trim().to_string()).collect())
                }
                "--seeds" => args.seeds = number(value()?)?.max(1),
                "--json" => args.json = true,
                "--h2" => args.h2 = true,
                "--trace" => args.trace = true,
                "-h" | "--help" => return Err(String::new()),
                _ => return Err(format!("unknown flag {flag:?}")),
            }
        }
        if args.h2 && args.mode != "idle-memory" {
            return Err("--h2 is a flag of idle-memory (the h2 mode is HTTP/2 already)".into());
        }
        if args.duration.is_zero() {
            return Err("--duration-secs must be at least 1".into());
        }
        Ok(args)
    }

    fn selected(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| o == name))
    }
}

fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.mode == "idle-memory" {
        alloc::enable();
    }
    if args.trace {
        trace_to_nowhere();
    }
    if args.mode == "endpoints" {
        return if endpoints::run(args.seeds) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    if args.mode == "proxy" {
        let params = proxy::Params {
            duration: args.duration,
            connections: u32::try_from(args.connections).unwrap_or(u32::MAX),
        };
        return match proxy::run(&params) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.mode == "messages" {
        let rows = messages::run(&args.concurrency, args.warmup, args.duration);
        if args.json {
            println!("{}", report::json(&rows));
        } else {
            print!("{}", report::markdown(&rows));
        }
        return if rows.len() == 2 * args.concurrency.len() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    if args.mode == "h2" || args.mode == "per-request" || args.h2 {
        return match h2::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let result = start_nginx().and_then(|nginx| match args.mode.as_str() {
        "h1" => h1(&args, &nginx),
        _ => {
            let entries: Vec<IdleEntry> = contender::IN_PROCESS
                .iter()
                .map(|e| (e.name, e.idle))
                .collect();
            idle_memory(&args, &nginx, &nginx.base_url(), &entries)
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// nginx as the benchmarks want it; then pins this process to the client CPU.
fn start_nginx() -> Result<Nginx, String> {
    nginx::available().map_err(|e| e.to_string())?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // CLIENT_CPU and SERVER_CPU are 0 and 1.
    let pin = cpus >= 2;
    let nginx = Nginx::start(NginxOptions {
        workers: 1,
        access_log: false,
        keepalive_requests: Some(100_000),
        worker_cpu_affinity: pin.then(sys::nginx_worker_mask),
        ..NginxOptions::default()
    })
    .map_err(|e| format!("starting nginx: {e}"))?;
    if pin {
        sys::pin_to_cpu(sys::CLIENT_CPU).map_err(|e| format!("pinning to CPU 0: {e}"))?;
        eprintln!(
            "nginx on {} (worker on CPU {}), benchmark on CPU {}",
            nginx.base_url(),
            sys::SERVER_CPU,
            sys::CLIENT_CPU
        );
    } else {
        eprintln!("warning: {cpus} CPU(s): client and server are not pinned apart");
    }
    Ok(nginx)
}

fn h1(args: &Args, nginx: &Nginx) -> Result<(), String> {
    let url = format!("{}/", nginx.base_url());
    let run_wrk = args.selected("wrk") && {
        let there = wrk::available();
        if !there {
            eprintln!("warning: {} not found, skipping wrk", wrk::WRK);
        }
        there
    };
    let contenders: Vec<_> = contender::IN_PROCESS
        .iter()
        .filter(|e| args.selected(e.name))
        .map(|e| (e.name, e.load))
        .collect();
    let mut failures = 0;
    let (rows, pairs) = load_table(
        &contenders,
        nginx,
        &url,
        args,
        &mut failures,
        H1_REFERENCES,
        |concurrency| {
            run_wrk.then(|| {
                eprintln!("wrk at concurrency {concurrency}...");
                ("wrk", wrk::run(nginx, &url, concurrency, args.duration))
            })
        },
    );
    if args.json {
        println!("{}", report::json(&rows));
    } else {
        print!("{}", report::markdown(&rows));
        print!("{}", report::paired_markdown(&pairs));
    }
    if failures > 0 {
        return Err(format!("{failures} run(s) failed"));
    }
    Ok(())
}

/// What the `h1` table holds clients' CPU per request against: wrk (at or
/// under its figure) and hyper-util's legacy client (three quarters of its
/// figure or less).
const H1_REFERENCES: &[report::Reference] = &[
    report::Reference {
        name: "wrk",
        target: 1.0,
    },
    report::Reference {
        name: "hyper-util",
        target: 0.75,
    },
];

/// A contender of the load table: its name and its runner.
type LoadEntry = (&'static str, fn(&load::Params) -> load::Outcome);

/// Runs every contender at every concurrency of `args` against `url`, then, at
/// each concurrency, the external tool `external` starts (if any), all of them
/// `args.rounds` times in turn; one row per contender and concurrency, the
/// medians of its rounds, and, over several rounds, the round-by-round ratios
/// of every contender's CPU per request to each of `references`. Failed runs
/// are counted in `failures`.
fn load_table(
    contenders: &[LoadEntry],
    nginx: &Nginx,
    url: &str,
    args: &Args,
    failures: &mut usize,
    references: &[report::Reference],
    mut external: impl FnMut(usize) -> Option<(&'static str, load::Outcome)>,
) -> (Vec<report::Row>, Vec<report::Paired>) {
    let mut rows = Vec::new();
    for &concurrency in &args.concurrency {
        for round in 1..=args.rounds {
            if args.rounds > 1 {
                eprintln!(
                    "round {round} of {} at concurrency {concurrency}",
                    args.rounds
                );
            }
            for &(name, run) in contenders {
                eprintln!("{name} at concurrency {concurrency}...");
                let params = load::Params {
                    nginx,
                    url: url.to_string(),
                    expected_body: nginx::HELLO.as_bytes(),
                    concurrency,
                    warmup: args.warmup,
                    duration: args.duration,
                };
                record(&mut rows, failures, name, round, run(&params));
            }
            if let Some((name, row)) = external(concurrency) {
                record(&mut rows, failures, name, round, row);
            }
        }
    }
    let pairs = if args.rounds > 1 {
        report::paired(&rows, references)
    } else {
        Vec::new()
    };
    (report::medians(rows), pairs)
}

/// Keeps a run's row, numbered with its `round`, or reports its failure.
fn record(
    rows: &mut Vec<report::Row>,
    failures: &mut usize,
    name: &str,
    round: usize,
    row: load::Outcome,
) {
    match row {
        Ok(mut row) => {
            row.round = round;
            if row.errors > 0 {
                eprintln!(
                    "warning: {name}: {} errors, first: {}",
                    row.errors,
                    row.first_error.as_deref().unwrap_or("?")
                );
            }
            rows.push(row);
        }
        Err(e) => {
            eprintln!("error: {name}: {e}");
            *failures += 1;
        }
    }
}

/// A contender of the idle-memory table: its name and its runner.
type IdleEntry = (&'static str, fn(&idle::Params) -> idle::Outcome);

/// Measures the idle memory of every selected contender of `entries` against
/// `base_url` (nginx's, plain or TLS), and prints the table.
fn idle_memory(
    args: &Args,
    nginx: &Nginx,
    base_url: &str,
    entries: &[IdleEntry],
) -> Result<(), String> {
    let mut rows = Vec::new();
    for &(name, idle) in entries.iter().filter(|(name, _)| args.selected(name)) {
        eprintln!("{name} with {} connections...", args.connections);
        // By default a 64 KiB body: it does not arrive with its head, so every
        // response holds its connection until its body is read, whichever client
        // reads it. (muxpool gives a connection back as soon as a response is
        // complete, so with a small body it opens fewer connections.)
        let params = idle::Params {
            nginx,
            url: format!("{base_url}{}", args.path),
            connections: args.connections,
            client_per_connection: args.h2,
        };
        let row = idle(&params).map_err(|e| format!("{name}: {e}"))?;
        if row.server_idle != row.connections {
            eprintln!(
                "warning: {name}: nginx sees {} idle connections after round one, not {}",
                row.server_idle, row.connections
            );
        }
        rows.push(row);
    }
    if args.json {
        println!("{}", report::idle_json(&rows));
    } else {
        print!("{}", report::idle_markdown(&rows));
    }
    Ok(())
}

/// Sets a global subscriber as an application would, tracing-subscriber's
/// `fmt` with muxpool's spans and events at DEBUG, formatting every event
/// and writing it to nowhere: what tracing costs a request when someone
/// listens.
fn trace_to_nowhere() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_target("muxpool_client", tracing::Level::DEBUG),
        )
        .init();
}
