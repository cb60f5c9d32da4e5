//! One seed, one run: the soak's trace (every fault as applied, every request's
//! end time and outcome, the final statistics) is the same each time a seed is
//! run, also while other simulations run at the same time on other threads of
//! the process (as tests of one binary do), and another seed gives another
//! trace.
//!
//! What could make runs of one seed differ is state shared by the whole process.
//! tokio numbers tasks process-wide, and a runtime drops its tasks, when a
//! crashed or bounced host's runtime goes, in an order set by those numbers: the
//! sockets they own then send their FINs and RSTs in that order, each drawing
//! its latency from the seeded randomness. So the servers serve every
//! connection from a task of the host's `LocalSet`, which drops its tasks in the
//! order they were spawned (see `support::server_host`). And the client is built
//! inside its host, so its clock starts on the host's virtual clock rather than
//! the real one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use crate::support::soak;

/// The seeds replayed, each by several threads at once.
const SEEDS: [u64; 2] = [3, 11];
/// How many threads run each seed in a round.
const THREADS_PER_SEED: usize = 2;
/// How many rounds of concurrent runs.
const ROUNDS: usize = 2;

/// Panics, naming the first line that differs, unless `run` is `reference`.
fn assert_same(seed: u64, what: &str, reference: &[String], run: &[String]) {
    if let Some(at) = (0..reference.len().max(run.len())).find(|&i| reference.get(i) != run.get(i))
    {
        panic!(
            "seed {seed} diverged ({what}) at line {at}:\n  first:  {:?}\n  replay: {:?}",
            reference.get(at),
            run.get(at)
        );
    }
}

/// Spawns one tokio task after another on a runtime of this thread until
/// `done`: other work of the process that takes task ids meanwhile.
fn spawn_tasks_until(done: &AtomicBool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        while !done.load(Ordering::SeqCst) {
            tokio::spawn(async {}).await.expect("an empty task");
            thread::sleep(Duration::from_micros(10));
        }
    });
}

#[test]
fn a_seed_replays_exactly_and_another_seed_differs() {
    // One run at a time first (of this test's; the binary's other tests may be
    // running meanwhile): the references.
    let references: Vec<Vec<String>> = SEEDS.iter().map(|&seed| soak::run(seed).trace()).collect();
    for (&seed, reference) in SEEDS.iter().zip(&references) {
        assert_same(seed, "run again alone", reference, &soak::run(seed).trace());
    }

    // Then every seed on several threads at once, started together, beside a
    // thread that keeps spawning tokio tasks of its own.
    for round in 0..ROUNDS {
        let runs = SEEDS.len() * THREADS_PER_SEED;
        let start = Arc::new(Barrier::new(runs));
        let done = Arc::new(AtomicBool::new(false));
        let neighbour = {
            let done = Arc::clone(&done);
            thread::spawn(move || spawn_tasks_until(&done))
        };
        let handles: Vec<_> = (0..runs)
            .map(|i| {
                let seed = SEEDS[i % SEEDS.len()];
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    (seed, soak::run(seed).trace())
                })
            })
            .collect();
        for handle in handles {
            let (seed, trace) = handle.join().expect("a simulation thread");
            let reference = &references[SEEDS.iter().position(|&s| s == seed).unwrap()];
            let what = format!("round {round}, {runs} simulations at once");
            assert_same(seed, &what, reference, &trace);
        }
        done.store(true, Ordering::SeqCst);
        neighbour.join().expect("the task-spawning thread");
    }

    assert_ne!(soak::run(3).trace(), soak::run(4).trace());
}
