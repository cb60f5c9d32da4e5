//! Arbitrary bytes in, a checked run of the core out: the body of the `pool_ops`
//! fuzz target, kept here so that the committed corpus replays on stable through
//! exactly the same code (`core/tests/simulation/fuzz_corpus.rs`).
//!
//! The bytes decode (with [`arbitrary`]) into a small configuration (tight
//! limits, durations from a millisecond to a minute) and then into up to
//! [`MAX_OPS`] inputs. Inputs name handles mostly by small indices into the
//! [`Checker`]'s live sets (the n-th waiting request, lease out, open connection),
//! so that most of them do something; the rest forge raw handles from small
//! numbers, which hit live, finished and never-issued handles alike, and leases
//! whose connection part does not match. Time moves forward in steps, waking
//! the core at each of its deadlines on the way as a punctual adapter would (a
//! late wake-up is legitimate too: `a_late_wake_up_is_not_a_stall` in
//! `core/tests/simulation/main.rs`), and an input may carry a time earlier than
//! the last one. The run ends with a graceful shutdown that must leave nothing
//! open.

use core::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

use super::check::{Checker, Violation};
use crate::{
    AcquireOptions, Attempt, Backoff, Circuit, ConnId, ConnectFailure, Connected, HealthCheck,
    Instant, Lease, LeaseId, PoolConfig, Release, RetryBudget, Saturation, Shutdown, WaiterId,
};

/// The most inputs one run applies, so that every run stays fast.
pub const MAX_OPS: usize = 2048;

/// The most deadlines one `Advance` input wakes the core for.
const WAKE_UPS: usize = 64;

/// The keys a run spreads its requests over.
const KEYS: u8 = 3;

fn ms(n: u16) -> Duration {
    Duration::from_millis(u64::from(n))
}

/// The configuration, drawn as small numbers and folded into a valid [`PoolConfig`].
#[derive(Debug, Arbitrary)]
struct Setup {
    per_key: u8,
    extra_total: u8,
    connecting: u8,
    waiters: u8,
    acquire: u16,
    connect: u16,
    idle: Option<u16>,
    lifetime: Option<u16>,
    jitter: u16,
    max_requests: Option<u8>,
    streams: u8,
    queue_when_saturated: bool,
    min_idle: u8,
    backoff: (u16, u16),
    threshold: Option<u8>,
    open_for: u16,
    health_every: Option<u16>,
    health_timeout: u16,
    forget_after: u16,
    seed: u64,
}

impl Setup {
    fn config(&self) -> PoolConfig {
        // Durations start at a millisecond: zero ones trip the core (the
        // `known_bug_zero_*` tests in `core/tests/simulation/main.rs`), and the fuzzer is to
        // look past that.
        let dur = |n: u16| ms(n) + Duration::from_millis(1);
        let mut c = PoolConfig::default();
        c.max_connections_per_key = u32::from(self.per_key % 4) + 1;
        c.max_connections = c.max_connections_per_key + u32::from(self.extra_total % 4);
        c.max_connecting_per_key = u32::from(self.connecting % 3) + 1;
        c.max_waiters_per_key = u32::from(self.waiters % 6);
        c.acquire_timeout = dur(self.acquire);
        c.connect_timeout = dur(self.connect);
        c.idle_timeout = self.idle.map(dur);
        c.max_lifetime = self.lifetime.map(dur);
        c.lifetime_jitter = c
            .max_lifetime
            .map_or(Duration::ZERO, |l| ms(self.jitter).min(l / 2));
        c.max_requests_per_connection = self.max_requests.map(|m| u64::from(m % 8) + 1);
        c.max_streams_per_connection = u32::from(self.streams % 4) + 1;
        c.saturation = match self.queue_when_saturated {
            true => Saturation::Queue,
            false => Saturation::Spill,
        };
        c.min_idle_per_key = u32::from(self.min_idle % 3).min(c.max_connections_per_key);
        let initial = dur(self.backoff.0 % 1000);
        c.backoff = Backoff::new(initial, initial.max(ms(self.backoff.1)));
        let threshold = self.threshold.map(|t| u32::from(t % 4) + 1);
        // Derived, not decoded, so that the corpus keeps its meaning.
        c.circuit = Circuit::new(threshold, dur(self.open_for)).failing_for(initial * 3);
        c.health_check = HealthCheck::new(self.health_every.map(dur), dur(self.health_timeout));
        c.forget_key_after = dur(self.forget_after);
        // Derived from the seed, like the circuit's period: a small budget
        // over a window of a millisecond to two seconds.
        c.retry_budget = RetryBudget::new(
            (self.seed % 60) as u32,
            (self.seed >> 8) as u32 % 3,
            dur((self.seed >> 16) as u16 % 2000),
        );
        c.seed = self.seed;
        c
    }
}

/// A handle as an input names it.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Handle {
    /// The n-th (modulo their number) of the live handles of its kind.
    Live(u8),
    /// A raw handle rebuilt from a slot index and a generation.
    Forged(u8, u8),
}

/// An event about a connection.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum ConnEvent {
    Connected(Connected),
    Failed,
    PeerMaxStreams(u8),
    GoingAway,
    TransportClosed,
    HealthOk,
    Suspect,
    FailedForGood,
}

/// One input.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Op {
    Acquire {
        /// The key (modulo [`KEYS`]), and above it which attempt of its
        /// request this is: a new one, one asking again, or a retry.
        key: u8,
        deadline: Option<u16>,
        /// A connection preferred (session affinity).
        prefer: Option<Handle>,
    },
    Cancel(Handle),
    Release {
        lease: Handle,
        conn: Option<Handle>,
        close: bool,
    },
    Conn(Handle, ConnEvent),
    /// Time passes; the core is woken at each of its deadlines on the way.
    Advance(u16),
    /// The core is told the time, due or not.
    Tick,
    /// Sleep until the core's next deadline, and tell it.
    Sleep,
    /// The next input carries a time this much earlier than the latest.
    Backdate(u16),
    Shutdown {
        immediate: bool,
    },
}

/// Decodes `data` and runs it through a [`Checker`]: `Err` with the first broken
/// rule. Bytes too short to decode a configuration run nothing.
pub fn run(data: &[u8]) -> Result<(), Violation> {
    run_with(data, false).1
}

/// [`run`], keeping the trace of every input and action: to read what a crashing
/// input does.
pub fn trace(data: &[u8]) -> (Vec<String>, Result<(), Violation>) {
    run_with(data, true)
}

fn run_with(data: &[u8], keep_trace: bool) -> (Vec<String>, Result<(), Violation>) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return (Vec::new(), Ok(()));
    };
    let mut checker: Checker<u8> =
        Checker::new(setup.config()).expect("Setup::config folds into a valid configuration");
    if keep_trace {
        checker.keep_trace();
        let config = format!("{:?}", checker.pool().config());
        checker.note(&config);
    }
    let result = apply(&mut checker, &mut u);
    (checker.trace().to_vec(), result)
}

fn apply(checker: &mut Checker<u8>, u: &mut Unstructured<'_>) -> Result<(), Violation> {
    let mut now = Instant::ZERO;
    let mut backdate = Duration::ZERO;
    // Once the bytes run out, `arbitrary` would go on decoding zeros: stop there.
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let Ok(op) = Op::arbitrary(u) else { break };
        let at = Instant::from_nanos(now.as_nanos().saturating_sub(backdate.as_nanos() as u64));
        backdate = Duration::ZERO;
        match op {
            Op::Acquire {
                key,
                deadline,
                prefer,
            } => {
                let mut options = deadline.map_or(AcquireOptions::default(), |d| {
                    AcquireOptions::with_deadline(now + ms(d))
                });
                if let Some(conn) =
                    prefer.and_then(|c| resolve(c, checker.conns(), ConnId::from_parts))
                {
                    options = options.preferring(conn);
                }
                options = options.attempt(match key / KEYS % 4 {
                    0 | 1 => Attempt::First,
                    2 => Attempt::Again,
                    _ => Attempt::Retry,
                });
                let _ = checker.acquire(&(key % KEYS), at, options)?;
            }
            Op::Cancel(waiter) => {
                if let Some(waiter) = resolve(waiter, checker.waiters(), WaiterId::from_parts) {
                    let _ = checker.cancel(waiter, at)?;
                }
            }
            Op::Release { lease, conn, close } => {
                let how = if close {
                    Release::Close
                } else {
                    Release::Reuse
                };
                let forge = |i, g| Lease::new(LeaseId::from_parts(i, g), ConnId::from_parts(i, g));
                if let Some(mut lease) = resolve(lease, checker.leases(), forge) {
                    if let Some(conn) =
                        conn.and_then(|c| resolve(c, checker.conns(), ConnId::from_parts))
                    {
                        lease = Lease::new(lease.id(), conn);
                    }
                    let _ = checker.release(lease, at, how)?;
                }
            }
            Op::Conn(conn, event) => {
                let Some(conn) = resolve(conn, checker.conns(), ConnId::from_parts) else {
                    continue;
                };
                let _ = match event {
                    ConnEvent::Connected(info) => checker.handle_connected(conn, at, info)?,
                    ConnEvent::Failed => checker.handle_connect_failed(conn, at)?,
                    ConnEvent::FailedForGood => {
                        checker.handle_connect_error(conn, at, ConnectFailure::Permanent)?
                    }
                    ConnEvent::PeerMaxStreams(max) => {
                        checker.handle_peer_max_streams(conn, at, u32::from(max))?
                    }
                    ConnEvent::GoingAway => checker.handle_going_away(conn, at)?,
                    ConnEvent::TransportClosed => checker.handle_transport_closed(conn, at)?,
                    ConnEvent::HealthOk => checker.handle_health_ok(conn, at)?,
                    ConnEvent::Suspect => checker.handle_suspect(conn, at)?,
                };
            }
            Op::Advance(by) => {
                // At most WAKE_UPS deadlines per step, so that a millisecond health
                // check interval cannot make one input cost a minute of wake-ups;
                // time then stops at the last deadline met, never past one missed.
                let mut until = now + ms(by);
                for _ in 0..WAKE_UPS {
                    let Some(due) = checker.pool().poll_timeout().filter(|&t| t <= until) else {
                        break;
                    };
                    now = now.max(due);
                    checker.handle_timeout(now)?;
                }
                if checker.pool().poll_timeout().is_some_and(|t| t <= until) {
                    until = now;
                }
                now = until;
            }
            Op::Tick => checker.handle_timeout(at)?,
            Op::Sleep => {
                now = now.max(checker.pool().poll_timeout().unwrap_or(now));
                checker.handle_timeout(now)?;
            }
            Op::Backdate(by) => backdate = ms(by),
            Op::Shutdown { immediate } => {
                let how = if immediate {
                    Shutdown::Immediate
                } else {
                    Shutdown::Graceful
                };
                checker.shutdown(at, how)?;
            }
        }
    }
    checker.wind_down(now, Shutdown::Graceful)
}

/// The handle an input names: the n-th live one, or a forged one.
fn resolve<H>(
    handle: Handle,
    mut live: impl ExactSizeIterator<Item = H>,
    forge: impl Fn(u32, u64) -> H,
) -> Option<H> {
    match handle {
        Handle::Live(n) if live.len() > 0 => live.nth(usize::from(n) % live.len()),
        Handle::Live(_) => None,
        Handle::Forged(index, generation) => Some(forge(u32::from(index), u64::from(generation))),
    }
}
