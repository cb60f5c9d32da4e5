//! The core's only source of randomness: a small generator seeded by the caller.
//!
//! Backoff jitter and lifetime jitter must spread a fleet out, yet the same inputs
//! must give the same outputs. So randomness is a pure function of
//! [`PoolConfig::seed`](crate::PoolConfig::seed) and of the order of the calls that need it.

/// SplitMix64: tiny, fast, and statistically good enough to spread timers.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..=bound`, uniform enough for jitter.
    pub(crate) fn below_inclusive(&mut self, bound: u64) -> u64 {
        if bound == u64::MAX {
            return self.next_u64();
        }
        // Multiply-shift: no modulo bias worth speaking of for jitter, no division.
        ((u128::from(self.next_u64()) * (u128::from(bound) + 1)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn bounded_values_stay_in_range() {
        let mut r = Rng::new(1);
        for bound in [0u64, 1, 2, 10, 1_000_000, u64::MAX] {
            for _ in 0..1000 {
                assert!(r.below_inclusive(bound) <= bound);
            }
        }
    }
}
