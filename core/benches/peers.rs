//! muxpool-core's hot path side by side with deadpool's and bb8's, in one run.
//!
//! Run with `cargo bench -p muxpool-core --bench peers` (release profile). One
//! iteration is one request's trip through the pool when a connection is idle:
//! take it, touch it, give it back. Every row runs in the same harness: one
//! `block_on` on a current-thread tokio runtime (time driver on, as bb8 needs) runs
//! the whole timed loop in a single task, the way one task uses a pool, and
//! criterion's `iter_custom` times the loop. The connections are trivial values
//! created up front, so no row measures connecting; after warm-up no row opens,
//! recycles away or reaps anything.
//!
//! What each row measures, and what it does not:
//!
//! | row | one iteration |
//! | --- | --- |
//! | `muxpool-core/bare` | `Pool::acquire` of an idle HTTP/1.1 connection, `Pool::release` with `Release::Reuse`, `poll_action` drained after each. The state machine only: synthetic clock, no lock, no future, no waker. This is the number the core's 50 ns target is about. |
//! | `muxpool-core/locked_clock` | the same behind a `std::sync::Mutex` locked once per input, with `std::time::Instant::now()` read per input: the least the client layer adds (it holds the core behind one short lock and passes it the time). Still no future or waker, so it is a floor, not the adapter's cost. |
//! | `deadpool` | `managed::Pool::get().await` then drop of the `Object`, with a `Manager` whose `create` and `recycle` return `Ok` at once; no timeouts. Includes deadpool's semaphore permit, its mutex-guarded queue, the `recycle` call and its metrics bookkeeping (reads the clock), and the async state machine of `get`. |
//! | `bb8` | `Pool::get().await` then drop of the `PooledConnection`, with a `ManageConnection` whose `connect` and `is_valid` return `Ok` at once, default builder settings (so `test_on_check_out` is on and calls the trivial `is_valid`; the `connection_timeout` wraps `get` in a tokio timeout). Includes bb8's lock, its timeout future and the async machinery of `get`. |
//!
//! So deadpool and bb8 rows are each a complete async pool checkout; the muxpool
//! rows are the core's part of one, plus (second row) the lock and clock its
//! client layer adds. The adapter's own future, waker and lease guard are not here;
//! compare its end-to-end figures when it exists.
//!
//! As in `hot_path.rs`, `MUXPOOL_BENCH_CLOCK=thread` times each sample by the
//! thread's CPU time instead of the wall clock, for a machine shared with other
//! work. Every row runs on this one thread (a current-thread runtime; nothing
//! blocks), so that is fair to all four.

mod support;

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant as StdInstant};

use criterion::measurement::Measurement;
use criterion::Criterion;
use muxpool_core::{
    Acquire, AcquireOptions, Action, Connected, Instant, Pool, PoolConfig, Release,
};
use support::{thread_cpu_time, ThreadTime};
use tokio::runtime::Runtime;

const ORIGIN: &str = "https://origin.example.com:443";

/// A stand-in connection: a value to hand out and touch.
#[derive(Debug)]
struct Conn(u64);

/// deadpool's manager: connects and recycles instantly.
struct DeadpoolManager;

impl deadpool::managed::Manager for DeadpoolManager {
    type Type = Conn;
    type Error = Infallible;

    async fn create(&self) -> Result<Conn, Infallible> {
        Ok(Conn(1))
    }

    async fn recycle(
        &self,
        _conn: &mut Conn,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

/// bb8's manager: connects and validates instantly.
struct Bb8Manager;

impl bb8::ManageConnection for Bb8Manager {
    type Connection = Conn;
    type Error = Infallible;

    async fn connect(&self) -> Result<Conn, Infallible> {
        Ok(Conn(1))
    }

    async fn is_valid(&self, _conn: &mut Conn) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut Conn) -> bool {
        false
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

/// A muxpool-core pool with one idle HTTP/1.1 connection on [`ORIGIN`].
fn muxpool_with_idle_connection(now: Instant) -> Pool<&'static str> {
    let mut pool = Pool::new(PoolConfig::default()).expect("valid config");
    let Ok(Acquire::Queued(waiter)) = pool.acquire(&ORIGIN, now, AcquireOptions::default()) else {
        panic!("a cold key queues");
    };
    let Some(Action::Open { conn }) = pool.poll_action() else {
        panic!("a queued request opens a connection");
    };
    pool.handle_connected(conn, now, Connected::http1())
        .expect("connecting");
    let Some(Action::Grant { waiter: w, lease }) = pool.poll_action() else {
        panic!("the connection goes to the waiter");
    };
    assert_eq!(w, waiter);
    pool.release(lease, now, Release::Reuse)
        .expect("live lease");
    assert_eq!(pool.poll_action(), None);
    pool
}

#[inline(always)]
fn take(acquired: Result<Acquire, muxpool_core::RejectReason>) -> muxpool_core::Lease {
    match acquired {
        Ok(Acquire::Ready(lease)) => lease,
        other => panic!("expected an idle connection, got {other:?}"),
    }
}

#[inline(always)]
fn drain(pool: &mut Pool<&'static str>) {
    if let Some(action) = pool.poll_action() {
        panic!("the hot path asked for {action:?}");
    }
}

/// Times one sample of `iters` iterations with the chosen clock.
type Clock = fn() -> Duration;

fn peers<M: Measurement<Value = Duration>>(c: &mut Criterion<M>, clock: Clock) {
    let mut group = c.benchmark_group("checkout_return");
    let rt = runtime();

    group.bench_function("muxpool-core/bare", |b| {
        let mut now = Instant::from_millis(1);
        let mut pool = muxpool_with_idle_connection(now);
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = clock();
                for _ in 0..iters {
                    now += Duration::from_nanos(1);
                    let lease =
                        take(pool.acquire(black_box(&ORIGIN), now, AcquireOptions::default()));
                    drain(&mut pool);
                    black_box(lease.conn());
                    now += Duration::from_nanos(1);
                    pool.release(lease, now, Release::Reuse)
                        .expect("live lease");
                    drain(&mut pool);
                }
                clock() - start
            })
        });
    });

    group.bench_function("muxpool-core/locked_clock", |b| {
        let epoch = StdInstant::now();
        let pool_now = || Instant::from_elapsed(epoch.elapsed());
        let pool = Mutex::new(muxpool_with_idle_connection(pool_now()));
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = clock();
                for _ in 0..iters {
                    let lease = {
                        let mut pool = pool.lock().expect("unpoisoned");
                        let lease = take(pool.acquire(
                            black_box(&ORIGIN),
                            pool_now(),
                            AcquireOptions::default(),
                        ));
                        drain(&mut pool);
                        lease
                    };
                    black_box(lease.conn());
                    let mut pool = pool.lock().expect("unpoisoned");
                    pool.release(lease, pool_now(), Release::Reuse)
                        .expect("live lease");
                    drain(&mut pool);
                }
                clock() - start
            })
        });
    });

    group.bench_function("deadpool", |b| {
        let pool = deadpool::managed::Pool::<DeadpoolManager>::builder(DeadpoolManager)
            .max_size(16)
            .build()
            .expect("a pool without timeouts needs no runtime");
        b.iter_custom(|iters| rt.block_on(timed_checkouts(iters, clock, || pool.get())));
        assert_eq!(pool.status().size, 1, "one connection served every request");
    });

    group.bench_function("bb8", |b| {
        let pool = rt.block_on(async {
            bb8::Pool::builder()
                .max_size(16)
                .build(Bb8Manager)
                .await
                .expect("infallible manager")
        });
        b.iter_custom(|iters| rt.block_on(timed_checkouts(iters, clock, || pool.get())));
        assert_eq!(
            pool.state().connections,
            1,
            "one connection served every request"
        );
    });

    group.finish();
}

/// Times `iters` checkouts, each returned at once, of an async pool whose
/// `checkout` yields a guard that returns the connection when dropped.
async fn timed_checkouts<G, E, F>(
    iters: u64,
    clock: Clock,
    mut checkout: impl FnMut() -> F,
) -> Duration
where
    F: std::future::Future<Output = Result<G, E>>,
    G: std::ops::Deref<Target = Conn>,
    E: std::fmt::Debug,
{
    let start = clock();
    for _ in 0..iters {
        let conn = checkout().await.expect("infallible manager");
        black_box(conn.0);
        drop(conn);
    }
    clock() - start
}

/// The wall clock, as a duration since the first call.
fn wall_clock() -> Duration {
    static EPOCH: OnceLock<StdInstant> = OnceLock::new();
    EPOCH.get_or_init(StdInstant::now).elapsed()
}

fn main() {
    if support::thread_clock_requested() {
        let mut c = Criterion::default()
            .with_measurement(ThreadTime)
            .configure_from_args();
        peers(&mut c, thread_cpu_time);
    } else {
        let mut c = Criterion::default().configure_from_args();
        peers(&mut c, wall_clock);
    }
    Criterion::default().configure_from_args().final_summary();
}
