//! Load tools run as child processes (wrk, h2load): what every such run shares.
//!
//! The tool inherits the benchmark's CPU pin; its CPU time is the growth of the
//! finished children's rusage, and the connections it opened are the growth of
//! nginx's accepted count.

use std::process::Command;
use std::time::Duration;

use muxpool_testkit::nginx::Nginx;

use crate::sys::{cpu_time, Who};

/// What one run of a tool gave.
pub struct Run {
    /// Its standard output.
    pub stdout: String,
    /// Its CPU time, user and system.
    pub cpu: Duration,
    /// Connections nginx accepted while it ran.
    pub conns_opened: u64,
}

/// Runs `command` (named `name` in errors) to completion.
pub fn run(name: &str, command: &mut Command, nginx: &Nginx) -> Result<Run, String> {
    let accepted_before = nginx.accepted_connections().map_err(|e| e.to_string())?;
    let cpu_before = cpu_time(Who::Children);
    let output = command
        .output()
        .map_err(|e| format!("running {name}: {e}"))?;
    let cpu = cpu_time(Who::Children) - cpu_before;
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
