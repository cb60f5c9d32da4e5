//! The hot path allocates nothing (docs/architecture.md, invariant 11).
//!
//! A counting global allocator wraps [`System`] and counts every `alloc`,
//! `alloc_zeroed`, `realloc` and `dealloc` made by the current thread while a
//! thread-local switch is on. The switch is on only inside [`measure`], so the test
//! harness's own threads and bookkeeping never show up, and tests running in
//! parallel do not see each other's allocations. That is why this module can share
//! the behaviour tests' binary: the allocator is the whole binary's, and the other
//! tests allocate through it on their own threads, never counted.
//!
//! Each test builds a pool, brings it to the state the hot path runs in (the
//! connection is up, the slabs, heap and queues have grown to their working size),
//! warms up, and then runs the hot path [`ITERATIONS`] times under the counter,
//! asserting that the count is exactly zero. What "the hot path" is, for each test:
//!
//! - `idle_exclusive_acquire_release`: take an idle HTTP/1.1 connection and give it
//!   back clean;
//! - `multiplexed_stream_acquire_release`: take stream slots on one HTTP/2
//!   connection (from idle, and on a connection already partly used) and give them
//!   back;
//! - `grant_to_queued_waiter`: a request that queues behind a busy connection, the
//!   release that grants it, draining the [`Action::Grant`], and the release of the
//!   granted lease;
//! - `many_keys_acquire_release`: the first test over 1,000 `String` keys, so the
//!   key lookup is covered too.
//!
//! Every iteration also drains [`Pool::poll_action`] and reads [`Pool::poll_timeout`],
//! as an adapter does after each input, and advances the clock, so the timers see
//! time move.
//!
//! `the_counter_sees_allocations` proves the counter is live: a test that allocates
//! under it sees a non-zero count, so a zero elsewhere means something. No test
//! measures time: timing lives in `benches/hot_path.rs`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;
use std::hash::Hash;
use std::hint::black_box;
use std::time::Duration;

use muxpool_core::{
    Acquire, AcquireOptions, Action, Connected, Instant, Lease, Pool, PoolConfig, Release,
};

/// Hot-path iterations measured per test.
const ITERATIONS: usize = 10_000;
/// Iterations run before measuring, so every container reaches its working size.
const WARM_UP: usize = 100;
/// How far the clock moves per iteration.
const TICK: Duration = Duration::from_micros(1);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static DEALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// [`System`], counting the current thread's calls while [`COUNTING`] is on.
struct CountingAlloc;

impl CountingAlloc {
    fn note(counter: &'static std::thread::LocalKey<Cell<u64>>) {
        // `try_with`: the allocator may be called while thread-locals are being
        // torn down; such calls are never measured.
        let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
        if counting {
            let _ = counter.try_with(|c| c.set(c.get() + 1));
        }
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counting touches only
// `const`-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::note(&ALLOCS);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::note(&ALLOCS);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::note(&ALLOCS);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::note(&DEALLOCS);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Heap traffic seen on this thread while a closure ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Traffic {
    /// `alloc`, `alloc_zeroed` and `realloc` calls.
    allocs: u64,
    /// `dealloc` calls.
    deallocs: u64,
}

impl Traffic {
    const NONE: Traffic = Traffic {
        allocs: 0,
        deallocs: 0,
    };
}

/// Runs `f` with the counter on, and returns what it allocated and freed.
fn measure<R>(f: impl FnOnce() -> R) -> (R, Traffic) {
    ALLOCS.with(|c| c.set(0));
    DEALLOCS.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    let traffic = Traffic {
        allocs: ALLOCS.with(Cell::get),
        deallocs: DEALLOCS.with(Cell::get),
    };
    (out, traffic)
}

/// Opens and connects one connection on `key`; returns the lease its first
/// request got (still out).
fn bring_up<K: Hash + Eq + Clone + Debug>(
    pool: &mut Pool<K>,
    key: &K,
    now: Instant,
    how: Connected,
) -> Lease {
    let waiter = match pool.acquire(key, now, AcquireOptions::default()) {
        Ok(Acquire::Queued(waiter)) => waiter,
        other => panic!("a cold key queues the first request, got {other:?}"),
    };
    let conn = match pool.poll_action() {
        Some(Action::Open { conn }) => conn,
        other => panic!("a queued request opens a connection, got {other:?}"),
    };
    assert_eq!(pool.poll_action(), None);
    pool.handle_connected(conn, now, how).expect("connecting");
    let lease = match pool.poll_action() {
        Some(Action::Grant { waiter: w, lease }) if w == waiter => lease,
        other => panic!("the connection goes to the waiter, got {other:?}"),
    };
    assert_eq!(pool.poll_action(), None);
    lease
}

/// A pool with one connection up on `"origin"`, and the lease the first request
/// got on it (still out).
fn pool_with_connection(
    config: PoolConfig,
    how: Connected,
) -> (Pool<&'static str>, Lease, Instant) {
    let mut pool = Pool::new(config).expect("valid config");
    let now = Instant::from_millis(1);
    let lease = bring_up(&mut pool, &"origin", now, how);
    (pool, lease, now)
}

/// What an adapter does after every input: drain the actions (the hot path must
/// produce none) and read the next deadline.
fn drain_nothing<K: Hash + Eq + Clone>(pool: &mut Pool<K>) {
    if let Some(action) = pool.poll_action() {
        panic!("the hot path asked for {action:?}");
    }
    black_box(pool.poll_timeout());
}

fn acquire_ready(pool: &mut Pool<&'static str>, now: Instant) -> Lease {
    match pool.acquire(black_box(&"origin"), now, AcquireOptions::default()) {
        Ok(Acquire::Ready(lease)) => lease,
        other => panic!("expected a lease at once, got {other:?}"),
    }
}

#[test]
fn the_counter_sees_allocations() {
    let (v, traffic) = measure(|| {
        let mut v: Vec<u64> = black_box(Vec::new());
        v.push(black_box(1));
        v
    });
    assert_eq!(
        traffic,
        Traffic {
            allocs: 1,
            deallocs: 0
        }
    );
    let ((), traffic) = measure(|| drop(v));
    assert_eq!(
        traffic,
        Traffic {
            allocs: 0,
            deallocs: 1
        }
    );

    // And it sees the pool's own allocations: a cold key allocates (the key is
    // cloned into the index, the slabs grow), so a zero below is not the counter
    // being blind to the pool.
    let mut pool: Pool<String> = Pool::new(PoolConfig::default()).expect("valid config");
    let key = String::from("https://cold.example");
    let (_, traffic) = measure(|| pool.acquire(&key, Instant::ZERO, AcquireOptions::default()));
    assert!(
        traffic.allocs > 0,
        "a cold key must allocate, saw {traffic:?}"
    );
}

#[test]
fn idle_exclusive_acquire_release() {
    let (mut pool, lease, mut now) =
        pool_with_connection(PoolConfig::default(), Connected::http1());
    pool.release(lease, now, Release::Reuse)
        .expect("live lease");
    drain_nothing(&mut pool);

    let mut cycle = |pool: &mut Pool<&'static str>, n: usize| {
        for _ in 0..n {
            now += TICK;
            let lease = acquire_ready(pool, now);
            drain_nothing(pool);
            now += TICK;
            pool.release(black_box(lease), now, Release::Reuse)
                .expect("live lease");
            drain_nothing(pool);
        }
    };
    cycle(&mut pool, WARM_UP);
    let ((), traffic) = measure(|| cycle(&mut pool, ITERATIONS));
    assert_eq!(traffic, Traffic::NONE, "idle HTTP/1.1 acquire + release");

    let stats = pool.stats();
    assert_eq!((stats.open, stats.idle, stats.leases), (1, 1, 0));
    assert_eq!(stats.grants, 1 + (WARM_UP + ITERATIONS) as u64);
    assert_eq!(stats.connects, 1, "every request reused the one connection");
    pool.check_invariants().expect("invariants hold");
}

#[test]
fn multiplexed_stream_acquire_release() {
    let (mut pool, held, mut now) =
        pool_with_connection(PoolConfig::default(), Connected::http2(100));
    let conn = held.conn();

    // Streams on a connection that is otherwise idle, and on one with a stream
    // already out (a partly used connection, on the other grant list).
    let cycle = |pool: &mut Pool<&'static str>, now: &mut Instant, n: usize| {
        for _ in 0..n {
            let mut leases = [None; 4];
            for slot in &mut leases {
                *now += TICK;
                let now = *now;
                let lease = acquire_ready(pool, now);
                assert_eq!(lease.conn(), conn, "streams share the connection");
                drain_nothing(pool);
                *slot = Some(lease);
            }
            for lease in leases.into_iter().flatten() {
                *now += TICK;
                pool.release(black_box(lease), *now, Release::Reuse)
                    .expect("live lease");
                drain_nothing(pool);
            }
        }
    };

    // With one stream held for the whole run: partial -> partial.
    cycle(&mut pool, &mut now, WARM_UP);
    let ((), traffic) = measure(|| cycle(&mut pool, &mut now, ITERATIONS));
    assert_eq!(
        traffic,
        Traffic::NONE,
        "HTTP/2 streams on a busy connection"
    );

    // With none held: idle -> partial -> idle.
    pool.release(held, now, Release::Reuse).expect("live lease");
    drain_nothing(&mut pool);
    cycle(&mut pool, &mut now, WARM_UP);
    let ((), traffic) = measure(|| cycle(&mut pool, &mut now, ITERATIONS));
    assert_eq!(
        traffic,
        Traffic::NONE,
        "HTTP/2 streams on an idle connection"
    );

    let stats = pool.stats();
    assert_eq!((stats.open, stats.idle, stats.leases), (1, 1, 0));
    assert_eq!(stats.connects, 1);
    pool.check_invariants().expect("invariants hold");
}

#[test]
fn grant_to_queued_waiter() {
    // One connection per key, so a request that finds it busy waits for it
    // instead of asking for another connection.
    let mut config = PoolConfig::default();
    config.max_connections_per_key = 1;
    let (mut pool, first, mut now) = pool_with_connection(config, Connected::http1());
    pool.release(first, now, Release::Reuse)
        .expect("live lease");
    drain_nothing(&mut pool);

    let mut cycle = |pool: &mut Pool<&'static str>, n: usize| {
        for _ in 0..n {
            now += TICK;
            let busy = acquire_ready(pool, now);
            drain_nothing(pool);

            now += TICK;
            let waiter = match pool.acquire(black_box(&"origin"), now, AcquireOptions::default()) {
                Ok(Acquire::Queued(waiter)) => waiter,
                other => panic!("the connection is busy: expected to queue, got {other:?}"),
            };
            drain_nothing(pool);

            now += TICK;
            pool.release(black_box(busy), now, Release::Reuse)
                .expect("live lease");
            let granted = match pool.poll_action() {
                Some(Action::Grant { waiter: w, lease }) if w == waiter => lease,
                other => panic!("the release grants the waiter, got {other:?}"),
            };
            assert_eq!(granted.conn(), busy.conn());
            drain_nothing(pool);

            now += TICK;
            pool.release(black_box(granted), now, Release::Reuse)
                .expect("live lease");
            drain_nothing(pool);
        }
    };
    cycle(&mut pool, WARM_UP);
    let ((), traffic) = measure(|| cycle(&mut pool, ITERATIONS));
    assert_eq!(traffic, Traffic::NONE, "queue, grant on release, release");

    let stats = pool.stats();
    assert_eq!((stats.open, stats.idle, stats.waiting), (1, 1, 0));
    assert_eq!(stats.waited_grants, 1 + (WARM_UP + ITERATIONS) as u64);
    assert_eq!(stats.connects, 1);
    pool.check_invariants().expect("invariants hold");
}

#[test]
fn many_keys_acquire_release() {
    // 1,000 origins with one idle HTTP/1.1 connection each, visited in a scattered
    // order: the key lookup (hashing a `String`, probing the index) allocates
    // nothing either.
    const KEYS: usize = 1_000;
    let mut pool: Pool<String> = Pool::new(PoolConfig::default()).expect("valid config");
    let mut now = Instant::from_millis(1);
    let keys: Vec<String> = (0..KEYS)
        .map(|i| format!("https://origin-{i}.example.com:443"))
        .collect();
    for key in &keys {
        let lease = bring_up(&mut pool, key, now, Connected::http1());
        pool.release(lease, now, Release::Reuse)
            .expect("live lease");
        drain_nothing(&mut pool);
    }

    let mut cycle = |pool: &mut Pool<String>, n: usize| {
        for i in 0..n {
            let key = &keys[(i * 617) % KEYS];
            now += TICK;
            let lease = match pool.acquire(black_box(key), now, AcquireOptions::default()) {
                Ok(Acquire::Ready(lease)) => lease,
                other => panic!("expected a lease at once, got {other:?}"),
            };
            drain_nothing(pool);
            now += TICK;
            pool.release(black_box(lease), now, Release::Reuse)
                .expect("live lease");
            drain_nothing(pool);
        }
    };
    cycle(&mut pool, KEYS);
    let ((), traffic) = measure(|| cycle(&mut pool, ITERATIONS));
    assert_eq!(traffic, Traffic::NONE, "acquire + release over 1,000 keys");

    let stats = pool.stats();
    assert_eq!((stats.open, stats.idle), (KEYS as u32, KEYS as u32));
    assert_eq!(stats.connects, KEYS as u64);
    pool.check_invariants().expect("invariants hold");
}
