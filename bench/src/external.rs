//! Load tools run as child processes (wrk, h2load): what every such run shares.
//!
//! The tool inherits the benchmark's CPU pin; its CPU time is the growth of the
//! finished children's rusage, and the connections it opened are the growth of
//! nginx's accepted count.

use std::process::Command;

use muxpool_testkit::nginx::Nginx;

use crate::report::per_request;
use crate::report::Row;
use crate::sys::{cpu_time, CpuTime, ServerClock, Who};

/// What one run of a tool gave.
pub struct Run {
    /// Its standard output.
    pub stdout: String,
    /// Its CPU time, user and system.
    pub cpu: CpuTime,
    /// Connections nginx accepted while it ran.
    pub conns_opened: u64,
    /// How busy nginx's workers were while it ran (see [`Row::server_busy`]).
    pub server_busy: Option<f64>,
}

/// What a tool's output says about its run.
pub struct Summary {
    /// Requests completed.
    pub requests: u64,
    /// The run's length, in seconds.
    pub seconds: f64,
    /// Requests per second, as the tool reports it.
    pub requests_per_sec: f64,
    /// Median latency, µs (NaN when the tool does not say).
    pub p50_us: f64,
    /// 99th percentile latency, µs (NaN when the tool does not say).
    pub p99_us: f64,
    /// Failed requests and wrong responses.
    pub errors: u64,
}

impl Run {
    /// The table row of tool `name` at `concurrency`, as `summary` reports it.
    pub fn row(&self, name: &str, concurrency: usize, summary: Summary) -> Row {
        Row {
            contender: name.to_string(),
            concurrency,
            requests: summary.requests,
            seconds: summary.seconds,
            requests_per_sec: summary.requests_per_sec,
            cpu_us_per_request: per_request(self.cpu.total(), summary.requests),
            user_us_per_request: per_request(self.cpu.user, summary.requests),
            p50_us: summary.p50_us,
            p99_us: summary.p99_us,
            conns_opened: Some(self.conns_opened),
            server_busy: self.server_busy,
            errors: summary.errors,
            first_error: (summary.errors > 0).then(|| self.stdout.trim().to_string()),
            ..Row::default()
        }
    }
}

/// Runs `command` (named `name` in errors) to completion.
pub fn run(name: &str, command: &mut Command, nginx: &Nginx) -> Result<Run, String> {
    let accepted_before = nginx.accepted_connections().map_err(|e| e.to_string())?;
    let server = ServerClock::start(nginx.worker_pids());
    let cpu_before = cpu_time(Who::Children);
    let output = command
        .output()
        .map_err(|e| format!("running {name}: {e}"))?;
    let cpu = cpu_time(Who::Children) - cpu_before;
    let server_busy = server.busy();
    let accepted_after = nginx.accepted_connections().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "{name} exited with {}: {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(Run {
        stdout,
        cpu,
        conns_opened: accepted_after - accepted_before,
        server_busy,
    })
}

/// A tool's duration (`123.45us`, `1.20ms`, `2.00s`, `1.00m`, `1h`) in µs.
pub fn micros(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (value, unit) = text.split_at(split);
    let value: f64 = value.parse().ok()?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(value * scale)
}
