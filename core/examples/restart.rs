//! What a server restart costs, and how fast a dead origin fails, under the
//! circuit breaker's rule: the figures `docs/architecture.md` gives, from the
//! sans-IO core alone, in virtual time.
//!
//! One origin serves HTTP/1.1 requests arriving 20 a second, each allowed 30 s
//! (the client's default timeout) and holding its connection 5 ms. At 10 s the
//! origin goes down: its connections are cut (a request in flight on one fails,
//! whatever the pool does), and every connect fails 1 ms after it starts until
//! the origin is back. Counted: the requests that failed though they were
//! issued while the origin was up, those issued while it was down, and the
//! longest any request waited. For an origin that never comes back: how long
//! after the outage began new requests are refused at once.
//!
//! Run: `cargo run --release -p muxpool-core --example restart`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use muxpool_core::{
    Acquire, AcquireOptions, Action, Circuit, ConnId, Connected, Instant, Lease, Pool, PoolConfig,
    RejectReason, Release, WaiterId,
};

const ARRIVAL_EVERY: Duration = Duration::from_millis(50);
const TIMEOUT: Duration = Duration::from_secs(30);
const SERVICE: Duration = Duration::from_millis(5);
const CONNECT: Duration = Duration::from_millis(1);
const OUTAGE_AT: Duration = Duration::from_secs(10);
const ARRIVALS_UNTIL: Duration = Duration::from_secs(90);
/// Past the last request's deadline: the probes of a dead origin's circuit go
/// on for good, so the run stops here.
const RUN_UNTIL: Duration = Duration::from_secs(125);

#[derive(Clone, Copy, Debug)]
enum Event {
    Arrive,
    Connected(ConnId),
    Done(Lease),
    Outage,
}

#[derive(Default, Debug)]
struct Outcome {
    failed_while_up: u32,
    failed_while_down: u32,
    cut_in_flight: u32,
    longest_wait: Duration,
    /// When a request arriving during the outage was first refused at once.
    refused_at_once_after: Option<Duration>,
}

/// Runs the workload with the origin down from 10 s for `down` (`None`: for
/// good).
fn run(config: &PoolConfig, down: Option<Duration>) -> Outcome {
    let mut pool: Pool<&str> = Pool::new(config.clone()).expect("a valid configuration");
    let at = |d: Duration| Instant::ZERO.saturating_add(d);
    let outage = at(OUTAGE_AT);
    let back = down.map(|d| outage.saturating_add(d));
    let is_down = |t: Instant| t >= outage && back.is_none_or(|b| t < b);
    let mut events: BTreeMap<(Instant, u64), Event> = BTreeMap::new();
    let mut seq = 0u64;
    let mut schedule = |events: &mut BTreeMap<(Instant, u64), Event>, t: Instant, e: Event| {
        seq += 1;
        events.insert((t, seq), e);
    };
    schedule(&mut events, Instant::ZERO, Event::Arrive);
    schedule(&mut events, outage, Event::Outage);
    let mut waiting: HashMap<WaiterId, Instant> = HashMap::new();
    let mut leased: HashMap<ConnId, Lease> = HashMap::new();
    let mut ready: Vec<ConnId> = Vec::new();
    let mut out = Outcome::default();
    let fail = |out: &mut Outcome, issued: Instant, now: Instant| {
        if is_down(issued) {
            out.failed_while_down += 1;
        } else {
            out.failed_while_up += 1;
        }
        out.longest_wait = out.longest_wait.max(now.saturating_duration_since(issued));
    };
    loop {
        let next_event = events.keys().next().map(|&(t, _)| t);
        let next_timer = pool.poll_timeout();
        let now = match (next_event, next_timer) {
            (None, None) => break,
            (Some(e), Some(t)) => e.min(t),
            (Some(e), None) => e,
            (None, Some(t)) => t,
        };
        if now > at(RUN_UNTIL) {
            break;
        }
        if next_timer.is_some_and(|t| t <= now) {
            pool.handle_timeout(now);
        }
        while let Some(entry) = events.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Event::Arrive => {
                    let options = AcquireOptions::with_deadline(now.saturating_add(TIMEOUT));
                    match pool.acquire(&"origin", now, options) {
                        Ok(Acquire::Ready(lease)) => {
                            leased.insert(lease.conn(), lease);
                            schedule(&mut events, now.saturating_add(SERVICE), Event::Done(lease));
                        }
                        Ok(Acquire::Queued(w)) => {
                            waiting.insert(w, now);
                        }
                        Err(reason) => {
                            if reason == RejectReason::CircuitOpen && is_down(now) {
                                let after = now.saturating_duration_since(outage);
                                out.refused_at_once_after.get_or_insert(after);
                            }
                            fail(&mut out, now, now);
                        }
                    }
                    let next = now.saturating_add(ARRIVAL_EVERY);
                    if next < at(ARRIVALS_UNTIL) {
                        schedule(&mut events, next, Event::Arrive);
                    }
                }
                Event::Connected(conn) => {
                    let result = if is_down(now) {
                        pool.handle_connect_failed(conn, now)
                    } else {
                        ready.push(conn);
                        pool.handle_connected(conn, now, Connected::http1())
                    };
                    // A connect the core gave up on meanwhile is stale: fine.
                    let _ = result;
                }
                Event::Done(lease) => {
                    if leased.remove(&lease.conn()).is_some() {
                        pool.release(lease, now, Release::Reuse)
                            .expect("a live lease");
                    }
                }
                Event::Outage => {
                    for conn in ready.drain(..) {
                        if let Some(lease) = leased.remove(&conn) {
                            out.cut_in_flight += 1;
                            let _ = pool.release(lease, now, Release::Close);
                        }
                        let _ = pool.handle_transport_closed(conn, now);
                    }
                }
            }
        }
        while let Some(action) = pool.poll_action() {
            match action {
                Action::Open { conn } => {
                    schedule(
                        &mut events,
                        now.saturating_add(CONNECT),
                        Event::Connected(conn),
                    );
                }
                Action::Grant { waiter, lease } => {
                    let issued = waiting.remove(&waiter).expect("a waiter");
                    out.longest_wait = out.longest_wait.max(now.saturating_duration_since(issued));
                    leased.insert(lease.conn(), lease);
                    schedule(&mut events, now.saturating_add(SERVICE), Event::Done(lease));
                }
                Action::Reject { waiter, .. } => {
                    let issued = waiting.remove(&waiter).expect("a waiter");
                    fail(&mut out, issued, now);
                }
                Action::Close { conn, .. } => ready.retain(|&c| c != conn),
                // HTTP/1.1 connections declare no health checks.
                Action::HealthCheck { .. } => {}
            }
        }
    }
    out
}

fn main() {
    let circuit = |failing_for: u64, open_for: u64| {
        let mut c = Circuit::default().failing_for(Duration::from_secs(failing_for));
        c.open_for = Duration::from_secs(open_for);
        c
    };
    let rules = [
        ("default: 10 s, then probes 2 s apart", Circuit::default()),
        ("failing_for 0 s, open_for 5 s", circuit(0, 5)),
        ("failing_for 5 s, open_for 2 s", circuit(5, 2)),
        ("failing_for 10 s, open_for 5 s", circuit(10, 5)),
        ("failing_for 20 s, open_for 2 s", circuit(20, 2)),
    ];
    println!(
        "{:<38} {:>9} {:>15} {:>17} {:>12} {:>14}",
        "circuit",
        "downtime",
        "failed while up",
        "failed while down",
        "longest wait",
        "dead: refused"
    );
    for (name, circuit) in rules {
        let mut config = PoolConfig::default();
        config.circuit = circuit;
        let dead = run(&config, None);
        let refused = dead.refused_at_once_after.map_or("never".into(), |d| {
            format!("after {:.1} s", d.as_secs_f64())
        });
        for down in [500, 2_000, 10_000, 30_000].map(Duration::from_millis) {
            let o = run(&config, Some(down));
            println!(
                "{:<38} {:>8.1}s {:>15} {:>17} {:>11.1}s {:>14}",
                name,
                down.as_secs_f64(),
                o.failed_while_up,
                o.failed_while_down,
                o.longest_wait.as_secs_f64(),
                refused,
            );
        }
    }
}
