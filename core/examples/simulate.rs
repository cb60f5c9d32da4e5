//! The pool under a realistic day, in virtual time: 10,000 client sessions over a
//! few origins of mixed protocols, with a minute of faults (failed and hung
//! connects, resets, GOAWAYs, stream-limit changes, lost pings) and then a healed
//! minute, every step checked by `muxpool_core::sim::Checker`.
//!
//! ```text
//! cargo run --release -p muxpool-core --features sim --example simulate -- [--seed N] [--sessions N]
//! ```
//!
//! It prints the run's options and what the pool did: connections opened, reuse,
//! wait percentiles, refusals and closes by reason, virtual and wall time. A broken
//! rule prints the trace leading to it and the command that replays it, and exits
//! with status 1.

use std::process::ExitCode;
use std::time::Duration;

use muxpool_core::sim::{self, Faults, Options, Origin, Protocol};
use muxpool_core::{HealthCheck, PoolConfig};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A service's view of the world: two HTTP/2 APIs, a legacy HTTP/1.1 one, and a
/// WebSocket feed whose sessions hold their connection for seconds.
fn realistic(seed: u64, sessions: u32) -> Options {
    let mut config = PoolConfig::default();
    config.health_check = HealthCheck::new(Some(Duration::from_secs(10)), Duration::from_secs(2));
    config.seed = seed;
    let requests = (ms(5), ms(200));
    Options {
        seed,
        sessions,
        requests_per_session: 8,
        arrival_span: Duration::from_secs(120),
        burst: 0.2,
        think_time: (ms(10), ms(2_000)),
        cancel: 0.01,
        own_deadline: 0.05,
        retry: 1.0,
        origins: vec![
            Origin {
                weight: 4,
                request_time: requests,
                ..Origin::new(Protocol::Http2 { max_streams: 100 })
            },
            Origin {
                weight: 2,
                request_time: requests,
                ..Origin::new(Protocol::Http2 { max_streams: 128 })
            },
            Origin {
                weight: 2,
                request_time: requests,
                ..Origin::new(Protocol::Http1)
            },
            Origin {
                weight: 1,
                request_time: (ms(500), ms(3_000)),
                ..Origin::new(Protocol::WebSocket)
            },
        ],
        faults: Faults {
            connect_fail: 0.02,
            connect_hang: 0.005,
            reset: 0.002,
            going_away: 0.002,
            limit_change: 0.002,
            lost_ping: 0.05,
            not_reusable: 0.01,
        },
        fault_phase: Duration::from_secs(60),
        config,
        affinity: false,
        trace: false,
    }
}

fn parse_args() -> Result<(u64, u32), String> {
    let (mut seed, mut sessions) = (1, 10_000);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seed" => seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--sessions" => sessions = value()?.parse().map_err(|e| format!("--sessions: {e}"))?,
            _ => {
                return Err(format!(
                    "unknown argument {arg}; expected --seed N, --sessions N"
                ))
            }
        }
    }
    Ok((seed, sessions))
}

fn main() -> ExitCode {
    let (seed, sessions) = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut options = realistic(seed, sessions);
    println!("muxpool simulation: virtual time, every step checked\n{options}\n");
    let started = std::time::Instant::now();
    let result = sim::run(&options);
    let wall = started.elapsed();
    match result {
        Ok(report) => {
            println!("{report}");
            println!(
                "  wall time    {wall:.2?} ({:.1} µs per step)",
                wall.as_secs_f64() * 1e6 / report.steps.max(1) as f64
            );
            ExitCode::SUCCESS
        }
        Err(failure) => {
            // Run again with the trace kept, to show how it came about.
            options.trace = true;
            let failure = sim::run(&options).err().unwrap_or(failure);
            eprintln!("{failure}");
            eprintln!(
                "reproduce: cargo run --release -p muxpool-core --features sim --example simulate -- --seed {seed} --sessions {sessions}"
            );
            ExitCode::FAILURE
        }
    }
}
