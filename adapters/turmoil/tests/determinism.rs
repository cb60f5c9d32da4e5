//! One seed, one run: the soak's trace (every fault as applied, every request's
//! end time and outcome, the final statistics) is the same each time a seed is
//! run, and another seed gives another trace.
//!
//! One test, so that the simulations run one after the other. Two simulations
//! running at once on two threads of one process can still differ, now and then,
//! by some milliseconds of virtual time: some state is shared between them, or
//! read off the real clock, and it has not been found yet. That would make this
//! check fail for a reason outside the seed. (One such cause is known and fixed:
//! a client built outside its host takes its clock's origin from the real clock,
//! so the soak builds its client inside the client's host.)

mod support;

use support::soak;

#[test]
fn a_seed_replays_exactly_and_another_seed_differs() {
    for seed in [3, 11] {
        let first = soak::run(seed).trace();
        let second = soak::run(seed).trace();
        if let Some(at) =
            (0..first.len().max(second.len())).find(|&i| first.get(i) != second.get(i))
        {
            panic!(
                "seed {seed} diverged at line {at}:\n  first:  {:?}\n  second: {:?}",
                first.get(at),
                second.get(at)
            );
        }
    }
    assert_ne!(soak::run(3).trace(), soak::run(4).trace());
}
