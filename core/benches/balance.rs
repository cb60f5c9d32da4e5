//! What choosing an endpoint costs: [`Balancer::choose`] and the
//! [`Balancer::complete`] that gives the pick back, with 3 and with 100
//! endpoints in one group, each endpoint a key of a [`Pool`] with an idle
//! connection, so that the balancer's [`Capacity`] question is the pool's
//! (`Pool::has_capacity`, one lookup of the key) as in the client.
//!
//! Run with `cargo bench -p muxpool-core --bench balance`. The targets are
//! 50 ns with 3 endpoints and 100 ns with 100. Time moves by a microsecond
//! per iteration, so latency estimates decay and are refreshed as in
//! traffic; every answer is a success, so nothing is ejected.
//! `MUXPOOL_BENCH_CLOCK=thread` times by the thread's CPU time (see
//! `hot_path.rs`). With `MUXPOOL_BENCH_ITERATIONS=n` and
//! `MUXPOOL_BENCH_PATH=choose_complete_3` (or `_100`) the binary runs that
//! many iterations untimed, for counting instructions with callgrind.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{BenchmarkId, Criterion};
use muxpool_core::{
    Acquire, AcquireOptions, Action, Balance, Balancer, Capacity, Connected, Endpoint, Instant,
    Outcome, Pool, PoolConfig, Release,
};

/// A pool with one idle HTTP/1.1 connection per key, and a balancer over the keys.
fn setup(n: u64) -> (Pool<u64>, Balancer<u64>) {
    let mut pool = Pool::new(PoolConfig::default()).expect("config");
    let mut balancer = Balancer::new(Balance::default()).expect("config");
    let now = Instant::from_millis(1);
    for key in 0..n {
        balancer
            .insert(key, Endpoint::default(), now)
            .expect("endpoint");
        let Ok(Acquire::Queued(_)) = pool.acquire(&key, now, AcquireOptions::default()) else {
            panic!("nothing is open yet");
        };
        while let Some(action) = pool.poll_action() {
            match action {
                Action::Open { conn } => pool
                    .handle_connected(conn, now, Connected::http1())
                    .expect("up"),
                Action::Grant { lease, .. } => {
                    pool.release(lease, now, Release::Reuse).expect("back")
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert!((0..n).all(|k| pool.has_capacity(&k)));
    (pool, balancer)
}

/// One iteration: a choice, the pool asked for capacity, and its completion.
#[inline(always)]
fn choose_complete(balancer: &mut Balancer<u64>, pool: &Pool<u64>, now: Instant) {
    let pick = balancer
        .choose(now, black_box(pool as &dyn Capacity<u64>))
        .expect("pick");
    balancer
        .complete(pick, now, Outcome::Success)
        .expect("back");
}

fn choose<M: Measurement>(c: &mut Criterion<M>) {
    let mut group = c.benchmark_group("balance");
    for n in [3u64, 100] {
        let (pool, mut balancer) = setup(n);
        let mut now = Instant::from_millis(2);
        group.bench_function(BenchmarkId::new("choose_complete", n), |b| {
            b.iter(|| {
                now += Duration::from_micros(1);
                choose_complete(&mut balancer, &pool, now);
            })
        });
        let mut now = Instant::from_millis(2);
        group.bench_function(
            BenchmarkId::new("choose_complete_no_capacity_hint", n),
            |b| {
                b.iter(|| {
                    now += Duration::from_micros(1);
                    let pick = balancer.choose(now, &|_: &u64| true).expect("pick");
                    balancer
                        .complete(pick, now, Outcome::Success)
                        .expect("back");
                })
            },
        );
    }
    group.finish();
}

/// Runs `choose` and `complete` over the endpoints `MUXPOOL_BENCH_PATH`
/// names `iterations` times, untimed, as the timed loop does.
fn run_counted(iterations: u64) {
    let n = match std::env::var("MUXPOOL_BENCH_PATH").as_deref() {
        Ok("choose_complete_3") => 3,
        Ok("choose_complete_100") => 100,
        other => panic!("MUXPOOL_BENCH_PATH names no balance path: {other:?}"),
    };
    let (pool, mut balancer) = setup(n);
    let mut now = Instant::from_millis(2);
    for _ in 0..iterations {
        now += Duration::from_micros(1);
        choose_complete(&mut balancer, &pool, now);
    }
}

support::bench_main!(run_counted, choose);
