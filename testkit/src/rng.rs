//! A small seeded random number generator for tests that expand one seed into a
//! workload.
//!
//! A failing randomized test is only useful if its seed replays it, on any
//! machine and with any version of the dependencies: so the generator is these
//! few lines (xorshift64*), not a crate whose streams may change.

/// A deterministic generator (xorshift64*): the same seed gives the same numbers.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (0, which xorshift cannot leave, is taken
    /// as 1).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`; `n` must not be zero.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_seed_gives_one_stream() {
        let first: Vec<u64> = {
            let mut rng = Rng::new(42);
            (0..8).map(|_| rng.next_u64()).collect()
        };
        let mut rng = Rng::new(42);
        assert_eq!(first, (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>());
        let mut other = Rng::new(43);
        assert_ne!(first[0], other.next_u64());
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = Rng::new(7);
        assert!((0..1000).all(|_| rng.below(5) < 5));
    }
}
