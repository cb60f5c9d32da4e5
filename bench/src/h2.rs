//! The `h2` mode: the `h1` load measurement, over HTTP/2 and TLS.
//!
//! It makes a test CA and a certificate for `127.0.0.1`, starts its own nginx
//! (TLS listener only, `h2` offered by ALPN, one worker pinned to CPU 1, no
//! access log, `keepalive_requests` of a billion, nginx's default of 128 concurrent
//! streams per connection), pins itself to CPU 0, and then:
//!
//! 1. checks that each in-process contender ([`IN_PROCESS`], from
//!    [`crate::h2_contender`]) gets an HTTP/2 response, and skips it (as a
//!    failure) if not;
//! 2. for each concurrency level, runs each contender through
//!    [`crate::load::run`], the same closed loop as `h1`, then h2load
//!    (`run_h2load_row`) as the external reference, as wrk is for `h1`;
//! 3. "connections opened on a cold pool": a fresh client per contender fires
//!    [`COLD_BURST`] requests at once ([`cold`]) and the table shows how many
//!    connections nginx accepted for them.
//!
//! # h2load
//!
//! `h2load -t 1 -c CONNS -m STREAMS -D SECS --log-file F URL`: one thread, inheriting this process's pin to CPU 0. Concurrency C
//! maps onto `CONNS = ceil(C / 128)` connections of `STREAMS = ceil(C / CONNS)`
//! streams each (128 is nginx's stream limit), which is exactly C at 1, 16 and
//! 256 (1x1, 1x16, 2x128). Requests/s and the request count come from its
//! `finished in` and `requests:` lines, CPU from `RUSAGE_CHILDREN` as for wrk,
//! and p50/p99 from the per-request log (its third column, µs until the end of
//! the response); writing that log costs h2load a little CPU per request. Like
//! wrk, it has no warm-up (with `--warm-up-time`, its CPU time would cover the
//! warm-up but its request count not): the server and the machine are warm
//! from the runs before, and its CPU time includes its TLS handshakes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use muxpool_testkit::certs::Ca;
use muxpool_testkit::nginx::{self, Nginx, NginxOptions};

use crate::contender::timeout;
use crate::h2_contender::{
    HyperUtilTls, MuxpoolSmolTls, MuxpoolTls, PerRequest, ReqwestTls, Versioned,
};
use crate::report;
use crate::sys;
use crate::{load, Args};

/// Where Debian installs h2load (package nghttp2-client).
pub const H2LOAD: &str = "/usr/bin/h2load";

/// nginx's default `http2_max_concurrent_streams`, which h2load's streams per
/// connection stay within.
const NGINX_STREAMS: usize = 128;

/// nginx's `keepalive_requests`: on HTTP/2 it is the number of streams after
/// which nginx sends GOAWAY, and the fast clients pass `h1` mode's 100,000
/// within a second on one connection; this many keeps every run on the
/// connections it opened.
const KEEPALIVE_REQUESTS: u32 = 1_000_000_000;

/// Requests a fresh client fires at once in the cold-pool table.
pub const COLD_BURST: usize = 256;

/// How long a cold burst may take before it is given up.
const COLD_TIMEOUT: Duration = Duration::from_secs(30);

/// One in-process contender of this mode and its monomorphized runners.
pub struct Entry {
    /// [`crate::contender::Contender::NAME`].
    pub name: &'static str,
    /// [`load::run`] for this contender.
    pub load: fn(&load::Params) -> load::Outcome,
    /// [`check`] for this contender.
    pub check: fn(&str) -> Result<http::Version, String>,
    /// [`cold`] for this contender.
    pub cold: fn(&Nginx, &str) -> Result<ColdRow, String>,
    /// [`crate::idle::run`] for this contender.
    pub idle: fn(&crate::idle::Params) -> crate::idle::Outcome,
}

/// The [`Entry`] for contender `C`.
pub const fn entry<C: Versioned>() -> Entry {
    Entry {
        name: C::NAME,
        load: load::run::<C>,
        check: check::<C>,
        cold: cold::<C>,
        idle: crate::idle::run::<C>,
    }
}

/// The in-process contenders, in the order they run.
pub const IN_PROCESS: &[Entry] = &[
    entry::<HyperUtilTls>(),
    entry::<ReqwestTls>(),
    entry::<MuxpoolTls>(),
    entry::<MuxpoolSmolTls>(),
];

/// One contender's line in the cold-pool table.
#[derive(Clone, Debug, Default)]
pub struct ColdRow {
    /// The contender's name.
    pub contender: String,
    /// Requests fired at once.
    pub burst: usize,
    /// Requests answered with the expected body.
    pub ok: usize,
    /// Responses that came over HTTP/2.
    pub h2: usize,
    /// Connections nginx accepted during the burst.
    pub conns_opened: u64,
    /// The first error, if any.
    pub first_error: Option<String>,
}

/// Runs the mode, or with `--h2` the `idle-memory` mode over HTTP/2 and TLS.
pub fn run(args: &Args) -> Result<(), String> {
    nginx::available().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("muxpool-bench-h2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let result = with_dir(args, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn with_dir(args: &Args, dir: &Path) -> Result<(), String> {
    let ca = Ca::new("muxpool-bench test CA");
    let (cert, key) = ca.leaf(&["127.0.0.1", "localhost"]).write_pem(dir);
    crate::h2_contender::set_ca(ca.pem(), ca.der());
    let nginx = start_nginx(cert, key)?;
    if args.h2 {
        return idle_memory(args, &nginx);
    }
    if args.mode == "per-request" {
        return per_request(args, &nginx);
    }
    load_and_cold(args, &nginx, dir)
}

/// The `per-request` mode's contenders: each client shared by every
/// request, and built anew for each.
const PER_REQUEST: &[Entry] = &[
    entry::<MuxpoolTls>(),
    entry::<PerRequest<MuxpoolTls>>(),
    entry::<ReqwestTls>(),
    entry::<PerRequest<ReqwestTls>>(),
];

/// `per-request`: the load table of a shared client beside a client made
/// for every request, over TLS to this mode's nginx.
fn per_request(args: &Args, nginx: &Nginx) -> Result<(), String> {
    let url = format!("{}/", nginx.https_base_url());
    let mut failures = 0;
    let contenders: Vec<_> = PER_REQUEST
        .iter()
        .filter(|e| args.selected(e.name))
        .map(|e| (e.name, e.load))
        .collect();
    let (rows, _) = crate::load_table(&contenders, nginx, &url, args, &mut failures, &[], |_| None);
    if args.json {
        println!("{}", report::json(&rows));
    } else {
        print!("{}", report::markdown(&rows));
    }
    if failures > 0 {
        return Err(format!("{failures} run(s) failed"));
    }
    Ok(())
}

/// `idle-memory --h2`: the idle-memory measurement with this mode's contenders,
/// each of which must get HTTP/2.
fn idle_memory(args: &Args, nginx: &Nginx) -> Result<(), String> {
    let base = nginx.https_base_url();
    let mut failures = 0;
    let entries: Vec<crate::IdleEntry> = checked(args, &format!("{base}/"), &mut failures)
        .into_iter()
        .map(|e| (e.name, e.idle))
        .collect();
    crate::idle_memory(args, nginx, &base, &entries)?;
    if failures > 0 {
        return Err(format!("{failures} contender(s) skipped"));
    }
    Ok(())
}

/// The selected contenders that get an HTTP/2 response from `url`; each one
/// that does not is reported and counted in `failures`.
fn checked(args: &Args, url: &str, failures: &mut usize) -> Vec<&'static Entry> {
    let mut entries = Vec::new();
    for entry in IN_PROCESS.iter().filter(|e| args.selected(e.name)) {
        match (entry.check)(url) {
            Ok(http::Version::HTTP_2) => entries.push(entry),
            Ok(version) => {
                eprintln!(
                    "error: {}: got {version:?}, not HTTP/2; skipped",
                    entry.name
                );
                *failures += 1;
            }
            Err(e) => {
                eprintln!("error: {}: {e}; skipped", entry.name);
                *failures += 1;
            }
        }
    }
    entries
}

/// The load table and the cold-pool table.
fn load_and_cold(args: &Args, nginx: &Nginx, dir: &Path) -> Result<(), String> {
    let url = format!("{}/", nginx.https_base_url());

    let mut failures = 0;
    let entries = checked(args, &url, &mut failures);
    let run_h2load = args.selected("h2load") && {
        let there = Path::new(H2LOAD).exists();
        if !there {
            eprintln!("warning: {H2LOAD} not found, skipping h2load");
        }
        there
    };

    let contenders: Vec<_> = entries.iter().map(|e| (e.name, e.load)).collect();
    let (rows, _) = crate::load_table(
        &contenders,
        nginx,
        &url,
        args,
        &mut failures,
        &[],
        |concurrency| {
            run_h2load.then(|| {
                eprintln!("h2load at concurrency {concurrency}...");
                (
                    "h2load",
                    run_h2load_row(nginx, &url, dir, concurrency, args),
                )
            })
        },
    );

    let mut cold_rows = Vec::new();
    for entry in &entries {
        eprintln!("{}: cold burst of {COLD_BURST}...", entry.name);
        match (entry.cold)(nginx, &url) {
            Ok(row) => {
                if let Some(e) = &row.first_error {
                    eprintln!(
                        "warning: {}: {} of {} failed, first: {e}",
                        entry.name,
                        row.burst - row.ok,
                        row.burst
                    );
                }
                cold_rows.push(row);
            }
            Err(e) => {
                eprintln!("error: {}: {e}", entry.name);
                failures += 1;
            }
        }
    }

    if args.json {
        println!(
            "{{\"load\":{},\"cold_pool\":{}}}",
            report::json(&rows),
            cold_json(&cold_rows)
        );
    } else {
        print!("{}", report::markdown(&rows));
        println!();
        println!("Connections opened on a cold pool ({COLD_BURST} requests at once from a fresh client):");
        println!();
        print!("{}", cold_markdown(&cold_rows));
    }
    if failures > 0 {
        return Err(format!("{failures} run(s) failed"));
    }
    Ok(())
}

/// nginx with a TLS listener offering h2, tuned and pinned like `h1` mode's;
/// then pins this process to the client CPU.
fn start_nginx(cert: PathBuf, key: PathBuf) -> Result<Nginx, String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = cpus >= 2;
    let nginx = Nginx::start(NginxOptions {
        plain: false,
        tls: Some((cert, key)),
        h2: true,
        workers: 1,
        access_log: false,
        keepalive_requests: Some(KEEPALIVE_REQUESTS),
        worker_cpu_affinity: pin.then(sys::nginx_worker_mask),
        ..NginxOptions::default()
    })
    .map_err(|e| format!("starting nginx: {e}"))?;
    if pin {
        sys::pin_to_cpu(sys::CLIENT_CPU).map_err(|e| format!("pinning to CPU 0: {e}"))?;
        eprintln!(
            "nginx on {} (worker on CPU {}), benchmark on CPU {}",
            nginx.https_base_url(),
            sys::SERVER_CPU,
            sys::CLIENT_CPU
        );
    } else {
        eprintln!("warning: {cpus} CPU(s): client and server are not pinned apart");
    }
    Ok(nginx)
}

/// One request with a fresh `C`: the HTTP version of its response.
pub fn check<C: Versioned>(url: &str) -> Result<http::Version, String> {
    C::block_on(async {
        let client = C::new(url);
        let response = client.send().await.map_err(|e| e.to_string())?;
        let version = C::version(&response);
        C::body(response).await.map_err(|e| e.to_string())?;
        Ok(version)
    })?
}

/// A fresh `C` sends [`COLD_BURST`] requests at once; counts what nginx
/// accepted meanwhile.
pub fn cold<C: Versioned>(nginx: &Nginx, url: &str) -> Result<ColdRow, String> {
    let before = nginx.accepted_connections().map_err(|e| e.to_string())?;
    let mut row = C::block_on(async {
        let client = Rc::new(C::new(url));
        let tasks: Vec<_> = (0..COLD_BURST)
            .map(|_| {
                let client = Rc::clone(&client);
                C::spawn_local(async move {
                    let response = client.send().await?;
                    let h2 = C::version(&response) == http::Version::HTTP_2;
                    let body = C::body(response).await?;
                    Ok::<_, crate::contender::Error>((h2, body))
                })
            })
            .collect();
        let mut row = ColdRow {
            contender: C::NAME.to_string(),
            burst: COLD_BURST,
            ..ColdRow::default()
        };
        for task in tasks {
            let outcome = match timeout::<C, _>(COLD_TIMEOUT, task).await {
                Some(Ok(Ok((h2, body)))) if body == nginx::HELLO.as_bytes() => {
                    row.ok += 1;
                    row.h2 += usize::from(h2);
                    continue;
                }
                Some(Ok(Ok((_, body)))) => format!("unexpected body {body:?}"),
                Some(Ok(Err(e))) => e.to_string(),
                Some(Err(e)) => format!("task failed: {e}"),
                None => format!("no answer within {COLD_TIMEOUT:?}"),
            };
            row.first_error.get_or_insert(outcome);
        }
        // Let nginx accept whatever is still in its backlog before it is
        // counted.
        C::sleep(Duration::from_millis(100)).await;
        row
    })?;
    let after = nginx.accepted_connections().map_err(|e| e.to_string())?;
    row.conns_opened = after - before;
    Ok(row)
}

/// The cold-pool table.
pub fn cold_markdown(rows: &[ColdRow]) -> String {
    let mut out = String::new();
    out.push_str("| contender | requests at once | ok | over h2 | conns opened |\n");
    out.push_str("|---|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.contender, r.burst, r.ok, r.h2, r.conns_opened
        );
    }
    out
}

/// The cold-pool rows as a JSON array.
pub fn cold_json(rows: &[ColdRow]) -> String {
    let objects: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"contender\":\"{}\",\"burst\":{},\"ok\":{},\"h2\":{},\"conns_opened\":{}}}",
                r.contender, r.burst, r.ok, r.h2, r.conns_opened
            )
        })
        .collect();
    format!("[{}]", objects.join(","))
}

/// h2load's connections and streams per connection for `concurrency`
/// requests in flight (see the module documentation).
pub fn h2load_shape(concurrency: usize) -> (usize, usize) {
    let conns = concurrency.div_ceil(NGINX_STREAMS).max(1);
    (conns, concurrency.div_ceil(conns))
}

fn run_h2load_row(
    nginx: &Nginx,
    url: &str,
    dir: &Path,
    concurrency: usize,
    args: &Args,
) -> load::Outcome {
    let (conns, streams) = h2load_shape(concurrency);
    let log = dir.join("h2load.log");
    let run = crate::external::run(
        "h2load",
        Command::new(H2LOAD)
            .args(["-t", "1"])
            .args(["-c", &conns.to_string()])
            .args(["-m", &streams.to_string()])
            .args(["-D", &args.duration.as_secs().max(1).to_string()])
            .arg(format!("--log-file={}", log.display()))
            .arg(url),
        nginx,
    )?;
    let stdout = &run.stdout;
    let parsed = parse(stdout).ok_or_else(|| format!("cannot parse h2load output:\n{stdout}"))?;
    let latencies = std::fs::read_to_string(&log)
        .map(|text| log_latencies(&text))
        .unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let quantile = |q: f64| {
        if latencies.is_empty() {
            f64::NAN
        } else {
            let index = ((latencies.len() - 1) as f64 * q).round() as usize;
            latencies[index] as f64
        }
    };
    Ok(run.row(
        "h2load",
        concurrency,
        crate::external::Summary {
            requests: parsed.requests,
            seconds: parsed.seconds,
            requests_per_sec: parsed.requests_per_sec,
            p50_us: quantile(0.50),
            p99_us: quantile(0.99),
            errors: parsed.errors,
        },
    ))
}

/// What [`parse`] reads from h2load's output.
#[derive(Debug, PartialEq)]
pub struct Parsed {
    /// `requests: ... N succeeded`.
    pub requests: u64,
    /// `finished in Xs`, in seconds.
    pub seconds: f64,
    /// `finished in Xs, R req/s`: R.
    pub requests_per_sec: f64,
    /// Failed requests plus 4xx and 5xx responses.
    pub errors: u64,
}

/// The number before `label` in a comma-separated h2load line
/// (`10 succeeded, 0 failed`).
fn count_before(words: &[&str], label: &str) -> Option<u64> {
    let at = words
        .iter()
        .position(|w| w.trim_end_matches(',') == label)?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}

/// Parses h2load's summary.
pub fn parse(output: &str) -> Option<Parsed> {
    let mut finished = None;
    let mut requests = None;
    let mut errors = 0;
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["finished", "in", secs, rate, "req/s,", ..] => {
                finished = Some((
                    crate::external::micros(secs.trim_end_matches(','))? / 1e6,
                    rate.parse().ok()?,
                ));
            }
            ["requests:", ..] => {
                requests = Some(count_before(&words, "succeeded")?);
                errors += count_before(&words, "failed")?;
            }
            ["status", "codes:", ..] => {
                errors += count_before(&words, "4xx")? + count_before(&words, "5xx")?;
            }
            _ => {}
        }
    }
    let (seconds, requests_per_sec) = finished?;
    Some(Parsed {
        requests: requests?,
        seconds,
        requests_per_sec,
        errors,
    })
}

/// The third column of h2load's `--log-file` (µs until the end of the
/// response), sorted.
pub fn log_latencies(log: &str) -> Vec<u64> {
    let mut latencies: Vec<u64> = log
        .lines()
        .filter_map(|line| line.split('\t').nth(2)?.trim().parse().ok())
        .collect();
    latencies.sort_unstable();
    latencies
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 1s of warm-up time and 3s of main duration for measurements.
TLS Protocol: TLSv1.3
Cipher: TLS_AES_256_GCM_SHA384
Server Temp Key: X25519 253 bits
Application protocol: h2

finished in 3.00s, 81234.33 req/s, 2.65MB/s
requests: 243703 total, 243959 started, 243703 done, 243700 succeeded, 3 failed, 3 errored, 0 timeout
status codes: 243700 2xx, 0 3xx, 1 4xx, 0 5xx
traffic: 7.95MB (8339845) total, 2.56MB (2681093) headers (space savings 95.56%), 1.39MB (1462218) data
                     min         max         mean         sd        +/- sd
time for request:      190us      9.78ms      3.14ms       615us    71.25%
";

    #[test]
    fn parses_h2load_output() {
        assert_eq!(
            parse(OUTPUT),
            Some(Parsed {
                requests: 243700,
                seconds: 3.0,
                requests_per_sec: 81234.33,
                errors: 4,
            })
        );
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn reads_the_log() {
        assert_eq!(
            log_latencies("1700000000000000\t200\t350\n1700000000000100\t200\t120\n"),
            vec![120, 350]
        );
    }

    #[test]
    fn shapes_concurrency() {
        assert_eq!(h2load_shape(1), (1, 1));
        assert_eq!(h2load_shape(16), (1, 16));
        assert_eq!(h2load_shape(256), (2, 128));
        assert_eq!(h2load_shape(300), (3, 100));
    }
}
