//! The core's hot path, timed: what one request costs the pool when capacity is
//! free, or when it waits for capacity that frees up.
//!
//! Run with `cargo bench -p muxpool-core --bench hot_path` (release profile). The
//! target is under 50 ns per operation; `tests/behaviour/no_alloc.rs` proves the
//! same paths allocate nothing.
//!
//! Every benchmark drives a [`Pool`] exactly as an adapter does: each input is
//! given a fresh `now` (one nanosecond later than the last, so simulated time stays
//! far below every timeout however many iterations criterion runs), and after each
//! input the actions are drained with [`Pool::poll_action`] and the next deadline
//! is read with [`Pool::poll_timeout`] (and [`Pool::handle_timeout`] called if it
//! has passed, which it never does here). The connections are already up: opening
//! and connecting is not the hot path. One iteration is:
//!
//! | benchmark | one iteration |
//! | --- | --- |
//! | `hot_path/idle_http1` | acquire an idle HTTP/1.1 connection (`Acquire::Ready`), release it (`Release::Reuse`) |
//! | `hot_path/h2_stream_idle_conn` | acquire a stream on an idle HTTP/2 connection, release it |
//! | `hot_path/h2_stream_busy_conn` | the same on an HTTP/2 connection with 10 other streams out (the partly-used list) |
//! | `hot_path/grant_to_waiter` | the connection (one per key) is busy: acquire queues (`Acquire::Queued`: a waiter, its deadline on the key's list under the key's timer), release of the busy lease grants the waiter, `Action::Grant` drained; the granted lease is the busy one of the next iteration |
//! | `keys/{u64,string}/{1,1000,10000}` | acquire + release an idle HTTP/1.1 connection, each iteration on the next of N keys (visited in a scattered order), each key with its own connection: the cost of the key lookup (hashing the key, probing the index) and of cache misses as the pool grows |
//!
//! String keys look like `https://origin-417.example.com:443` (35 bytes), what an
//! adapter's origin key hashes like.
//!
//! ## Instructions
//!
//! Wall and CPU time on a shared machine move by tens of percent between runs;
//! instruction counts do not. With `MUXPOOL_BENCH_ITERATIONS=n` and
//! `MUXPOOL_BENCH_PATH=<name>` (one of the `hot_path/` names) the binary runs that
//! hot path `n` times, untimed, and exits, so that under
//! `valgrind --tool=callgrind` the difference between two runs (say `n` = 100,000
//! and 200,000), divided by the difference in `n`, is the instructions of one
//! iteration, set-up excluded. The README has the command.
//!
//! ## Clock
//!
//! By default criterion's wall clock times each sample. On a machine shared with
//! other work, wall time also counts the time this thread waits for a core, so
//! set `MUXPOOL_BENCH_CLOCK=thread` to time samples by the thread's own CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) instead: the pool runs on one thread and never
//! blocks, so that is its cost without the waiting. Both print in ns.

mod support;

use std::fmt::Debug;
use std::hash::Hash;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{Bencher, BenchmarkId, Criterion};
use muxpool_core::{
    Acquire, AcquireOptions, Action, Connected, Instant, Lease, Pool, PoolConfig, Release,
};

/// A pool and the clock an adapter would feed it.
struct Driver<K> {
    pool: Pool<K>,
    now: Instant,
}

impl<K: Hash + Eq + Clone + Debug> Driver<K> {
    fn new(config: PoolConfig) -> Self {
        Driver {
            pool: Pool::new(config).expect("valid config"),
            now: Instant::from_millis(1),
        }
    }

    /// A fresh `now` for the next input.
    #[inline(always)]
    fn tick(&mut self) -> Instant {
        self.now += Duration::from_nanos(1);
        self.now
    }

    /// What an adapter does after every input on the hot path: drain the actions
    /// (there are none) and honour the next deadline (never due here).
    #[inline(always)]
    fn after_input(&mut self) {
        if let Some(action) = self.pool.poll_action() {
            unexpected(action);
        }
        if self.pool.poll_timeout().is_some_and(|at| at <= self.now) {
            self.pool.handle_timeout(self.now);
        }
    }

    /// Opens and connects one connection on `key`; returns the lease its first
    /// request got (still out).
    fn bring_up(&mut self, key: &K, how: Connected) -> Lease {
        let now = self.tick();
        let waiter = match self.pool.acquire(key, now, AcquireOptions::default()) {
            Ok(Acquire::Queued(waiter)) => waiter,
            other => panic!("a key with no free connection queues, got {other:?}"),
        };
        let conn = match self.pool.poll_action() {
            Some(Action::Open { conn }) => conn,
            other => panic!("expected an open, got {other:?}"),
        };
        self.pool
            .handle_connected(conn, now, how)
            .expect("connecting");
        match self.pool.poll_action() {
            Some(Action::Grant { waiter: w, lease }) if w == waiter => lease,
            other => panic!("expected the grant, got {other:?}"),
        }
    }

    /// A key with one idle connection.
    fn bring_up_idle(&mut self, key: &K, how: Connected) {
        let lease = self.bring_up(key, how);
        let now = self.tick();
        self.pool
            .release(lease, now, Release::Reuse)
            .expect("live lease");
        self.after_input();
    }

    /// One request on capacity that is free: acquire, then release.
    #[inline(always)]
    fn acquire_release(&mut self, key: &K) {
        let now = self.tick();
        let lease = match self
            .pool
            .acquire(black_box(key), now, AcquireOptions::default())
        {
            Ok(Acquire::Ready(lease)) => lease,
            other => panic!("expected a lease at once, got {other:?}"),
        };
        self.after_input();
        let now = self.tick();
        self.pool
            .release(black_box(lease), now, Release::Reuse)
            .expect("live lease");
        self.after_input();
    }
}

#[cold]
#[inline(never)]
fn unexpected(action: Action) -> ! {
    panic!("the hot path asked for {action:?}")
}

const ORIGIN: &str = "https://origin.example.com:443";

/// How a hot path's iterations are run: timed by criterion, or a given number
/// of them (for counting instructions).
trait Iterations {
    fn run(&mut self, step: impl FnMut());
}

impl<M: Measurement> Iterations for Bencher<'_, M> {
    fn run(&mut self, step: impl FnMut()) {
        self.iter(step);
    }
}

/// A fixed number of iterations, untimed.
struct Counted(u64);

impl Iterations for Counted {
    fn run(&mut self, mut step: impl FnMut()) {
        for _ in 0..self.0 {
            step();
        }
    }
}

fn idle_http1(it: &mut impl Iterations) {
    let mut d = Driver::new(PoolConfig::default());
    d.bring_up_idle(&ORIGIN, Connected::http1());
    it.run(|| d.acquire_release(&ORIGIN));
    d.pool.check_invariants().expect("invariants hold");
}

fn h2_stream_idle_conn(it: &mut impl Iterations) {
    let mut d = Driver::new(PoolConfig::default());
    d.bring_up_idle(&ORIGIN, Connected::http2(100));
    it.run(|| d.acquire_release(&ORIGIN));
    assert_eq!(d.pool.stats().connects, 1);
    d.pool.check_invariants().expect("invariants hold");
}

fn h2_stream_busy_conn(it: &mut impl Iterations) {
    let mut d = Driver::new(PoolConfig::default());
    let first = d.bring_up(&ORIGIN, Connected::http2(100));
    let held: Vec<Lease> = (0..9)
        .map(|_| {
            let now = d.tick();
            match d.pool.acquire(&ORIGIN, now, AcquireOptions::default()) {
                Ok(Acquire::Ready(lease)) => lease,
                other => panic!("expected a stream, got {other:?}"),
            }
        })
        .collect();
    it.run(|| d.acquire_release(&ORIGIN));
    assert_eq!(d.pool.stats().leases, 10);
    assert_eq!(d.pool.stats().connects, 1);
    d.pool.check_invariants().expect("invariants hold");
    black_box((first, held));
}

fn grant_to_waiter(it: &mut impl Iterations) {
    let mut config = PoolConfig::default();
    config.max_connections_per_key = 1;
    let mut d = Driver::new(config);
    let mut busy = d.bring_up(&ORIGIN, Connected::http1());
    it.run(|| {
        let now = d.tick();
        let waiter = match d
            .pool
            .acquire(black_box(&ORIGIN), now, AcquireOptions::default())
        {
            Ok(Acquire::Queued(waiter)) => waiter,
            other => panic!("the connection is busy: expected to queue, got {other:?}"),
        };
        d.after_input();
        let now = d.tick();
        d.pool
            .release(black_box(busy), now, Release::Reuse)
            .expect("live lease");
        busy = match d.pool.poll_action() {
            Some(Action::Grant { waiter: w, lease }) if w == waiter => lease,
            Some(other) => unexpected(other),
            None => panic!("the release must grant the waiter"),
        };
        d.after_input();
    });
    let stats = d.pool.stats();
    assert_eq!((stats.connects, stats.waiting, stats.leases), (1, 0, 1));
    d.pool.check_invariants().expect("invariants hold");
}

fn hot_path<M: Measurement>(c: &mut Criterion<M>) {
    let mut group = c.benchmark_group("hot_path");
    group.bench_function("idle_http1", |b| idle_http1(b));
    group.bench_function("h2_stream_idle_conn", |b| h2_stream_idle_conn(b));
    group.bench_function("h2_stream_busy_conn", |b| h2_stream_busy_conn(b));
    group.bench_function("grant_to_waiter", |b| grant_to_waiter(b));
    group.finish();
}

/// Runs the hot path `MUXPOOL_BENCH_PATH` names `iterations` times, untimed.
fn run_counted(iterations: u64) {
    let it = &mut Counted(iterations);
    match std::env::var("MUXPOOL_BENCH_PATH").as_deref() {
        Ok("idle_http1") => idle_http1(it),
        Ok("h2_stream_idle_conn") => h2_stream_idle_conn(it),
        Ok("h2_stream_busy_conn") => h2_stream_busy_conn(it),
        Ok("grant_to_waiter") => grant_to_waiter(it),
        other => panic!("MUXPOOL_BENCH_PATH names no hot path: {other:?}"),
    }
}

/// A visiting order over `n` keys that jumps around (a stride coprime with `n`),
/// so consecutive requests touch unrelated slots, as interleaved origins do. The
/// strides are primes, so one is coprime with `n` exactly when it does not divide it.
fn scattered(n: usize) -> Vec<usize> {
    let stride = [7919, 617, 1]
        .into_iter()
        .find(|s| n % s != 0 || *s == 1)
        .unwrap_or(1);
    (0..n).map(|i| (i * stride) % n).collect()
}

fn keys_bench<M: Measurement, K: Hash + Eq + Clone + Debug>(
    c: &mut Criterion<M>,
    name: &str,
    make_key: impl Fn(usize) -> K,
) {
    let mut group = c.benchmark_group(format!("keys/{name}"));
    for n in [1usize, 1_000, 10_000] {
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let mut config = PoolConfig::default();
            config.max_connections = 10_000;
            let mut d = Driver::new(config);
            let keys: Vec<K> = (0..n).map(&make_key).collect();
            for key in &keys {
                d.bring_up_idle(key, Connected::http1());
            }
            let order: Vec<&K> = scattered(n).into_iter().map(|i| &keys[i]).collect();
            let mut at = 0;
            b.iter(|| {
                d.acquire_release(order[at]);
                at += 1;
                if at == order.len() {
                    at = 0;
                }
            });
            let stats = d.pool.stats();
            assert_eq!((stats.open, stats.idle), (n as u32, n as u32));
            assert_eq!(stats.connects, n as u64);
        });
    }
    group.finish();
}

fn many_keys<M: Measurement>(c: &mut Criterion<M>) {
    keys_bench(c, "u64", |i| i as u64);
    keys_bench(c, "string", |i| {
        format!("https://origin-{i}.example.com:443")
    });
}

support::bench_main!(run_counted, hot_path, many_keys);
