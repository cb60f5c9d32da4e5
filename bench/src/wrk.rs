//! wrk as an external contender: the reference for what an HTTP/1.1 load
//! generator written in C with an event loop costs per request.
//!
//! It runs `wrk -t1 -cN -dSs --latency URL` as a child process. The benchmark
//! process is already pinned to the client CPU and wrk inherits that affinity,
//! so it shares the core the in-process contenders had. Its CPU time is the
//! growth of `getrusage(RUSAGE_CHILDREN)` across the run (wrk is the only child
//! that exits and is waited for meanwhile; nginx keeps running); requests/s,
//! the request count and latency percentiles are parsed from its output. wrk has
//! no warm-up phase: the server and the machine are warm from the runs before.
//! Its "conns opened" is one more than its connection count: nginx counts one
//! extra connection per wrk run, made before the load starts (seen on every
//! run with wrk 4.1 from Debian).

use std::process::Command;
use std::time::Duration;

use muxpool_testkit::nginx::Nginx;

use crate::report::Row;

/// Where Debian installs wrk.
pub const WRK: &str = "/usr/bin/wrk";

/// Whether wrk is installed.
pub fn available() -> bool {
    std::path::Path::new(WRK).exists()
}

/// Runs wrk against `url` with `concurrency` connections for `duration`.
pub fn run(
    nginx: &Nginx,
    url: &str,
    concurrency: usize,
    duration: Duration,
) -> Result<Row, String> {
    let secs = duration.as_secs().max(1);
    let run = crate::external::run(
        "wrk",
        Command::new(WRK).args([
            "-t1",
            &format!("-c{concurrency}"),
            &format!("-d{secs}s"),
            "--latency",
            url,
        ]),
        nginx,
    )?;
    let stdout = &run.stdout;
    let parsed = parse(stdout).ok_or_else(|| format!("cannot parse wrk output:\n{stdout}"))?;
    Ok(run.row(
        "wrk",
        concurrency,
        crate::external::Summary {
            requests: parsed.requests,
            seconds: parsed.seconds,
            requests_per_sec: parsed.requests_per_sec,
            p50_us: parsed.p50_us,
            p99_us: parsed.p99_us,
            errors: parsed.errors,
        },
    ))
}

/// What [`parse`] reads from wrk's output.
#[derive(Debug, PartialEq)]
pub struct Parsed {
    /// `N requests in Xs`: N.
    pub requests: u64,
    /// `N requests in Xs`: X in seconds.
    pub seconds: f64,
    /// `Requests/sec:`.
    pub requests_per_sec: f64,
    /// The `50%` line of the latency distribution, µs.
    pub p50_us: f64,
    /// The `99%` line of the latency distribution, µs.
    pub p99_us: f64,
    /// Socket errors plus non-2xx/3xx responses.
    pub errors: u64,
}

/// Parses wrk's `--latency` output.
pub fn parse(output: &str) -> Option<Parsed> {
    let mut p50 = None;
    let mut p99 = None;
    let mut requests = None;
    let mut requests_per_sec = None;
    let mut errors = 0;
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["50%", value] => p50 = crate::external::micros(value),
            ["99%", value] => p99 = crate::external::micros(value),
            ["Requests/sec:", value] => requests_per_sec = value.parse().ok(),
            [count, "requests", "in", secs, ..] => {
                let secs = secs.trim_end_matches(',');
                requests = Some((count.parse().ok()?, crate::external::micros(secs)? / 1e6));
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", ..] => {
                // "Socket errors: connect 0, read 0, write 0, timeout 0"
                errors += words
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    let (requests, seconds) = requests?;
    Some(Parsed {
        requests,
        seconds,
        requests_per_sec: requests_per_sec?,
        p50_us: p50?,
        p99_us: p99?,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
Running 3s test @ http://127.0.0.1:40000/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   210.12us   55.30us   2.10ms   90.00%
    Req/Sec    75.10k     2.00k   78.00k    80.00%
  Latency Distribution
     50%  201.00us
     75%  220.00us
     90%  250.00us
     99%    1.05ms
  224321 requests in 3.00s, 35.30MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  74773.67
Transfer/sec:     11.77MB
";

    #[test]
    fn parses_wrk_output() {
        assert_eq!(
            parse(OUTPUT),
            Some(Parsed {
                requests: 224321,
                seconds: 3.0,
                requests_per_sec: 74773.67,
                p50_us: 201.0,
                p99_us: 1050.0,
                errors: 3,
            })
        );
        assert_eq!(parse("garbage"), None);
    }
}
