//! A latency histogram cheap enough to record on every request.
//!
//! Fixed buckets on a power-of-two microsecond scale: 1 µs, 2 µs, 4 µs, …
//! 2²⁴ µs (about 16.8 s), then everything above. The pool's figures span
//! that range (an idle connection is handed out in a microsecond, a TLS
//! connect across an ocean takes a few hundred milliseconds), and a doubling
//! scale keeps the relative error of any quantile under 2× across all of it
//! with 26 counters. Recording is arithmetic on a fixed array: no
//! allocation, no lock of its own (the pool's lock guards it).

use std::fmt;
use std::time::Duration;

/// How many finite bucket bounds a [`Histogram`] has: 2⁰ µs to 2²⁴ µs.
pub const FINITE_BUCKETS: usize = 25;

/// A latency histogram: counts in fixed exponential buckets, their sum and
/// their number.
///
/// Bucket `i` (for `i` below [`FINITE_BUCKETS`]) counts the durations above
/// bucket `i - 1`'s bound and at most 2ⁱ µs; the last counts the rest. The
/// counts are per bucket, not cumulative; [`cumulative`](Histogram::cumulative)
/// gives them as Prometheus's `le` buckets do.
///
/// ```
/// use std::time::Duration;
/// use muxpool_client::metrics::Histogram;
///
/// let mut h = Histogram::default();
/// h.record(Duration::from_micros(3));   // in (2 µs, 4 µs]
/// h.record(Duration::from_millis(20));  // in (16.384 ms, 32.768 ms]
/// assert_eq!(h.count(), 2);
/// assert_eq!(h.sum(), Duration::from_micros(20_003));
/// let le_4us = h.cumulative().find(|(le, _)| *le == Some(Duration::from_micros(4)));
/// assert_eq!(le_4us, Some((Some(Duration::from_micros(4)), 1)));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: [u64; FINITE_BUCKETS + 1],
    sum_nanos: u64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; FINITE_BUCKETS + 1],
            sum_nanos: 0,
            count: 0,
        }
    }
}

impl Histogram {
    /// Counts one duration.
    #[inline]
    pub fn record(&mut self, d: Duration) {
        self.add(Sample::from_nanos(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        ));
    }

    /// Counts one duration whose bucket is already known.
    #[inline]
    pub(crate) fn add(&mut self, s: Sample) {
        self.counts[s.bucket] += 1;
        self.sum_nanos = self.sum_nanos.saturating_add(s.nanos);
        self.count += 1;
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of the recorded durations.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_nanos)
    }

    /// The upper bound of bucket `i`: 2ⁱ µs, or `None` for the last bucket
    /// (no bound).
    pub fn bound(i: usize) -> Option<Duration> {
        (i < FINITE_BUCKETS).then(|| Duration::from_micros(1 << i))
    }

    /// Each bucket's bound (`None` for +∞) and how many durations were at
    /// most that bound, in increasing order; the last count is
    /// [`count`](Histogram::count).
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<Duration>, u64)> + '_ {
        self.counts.iter().enumerate().scan(0u64, |acc, (i, n)| {
            *acc += n;
            Some((Histogram::bound(i), *acc))
        })
    }

    /// An estimate of the `q`-quantile (`q` from 0 to 1: 0.5 the median,
    /// 0.99 the 99th percentile, 1 the maximum) of the recorded durations,
    /// or `None` if none was recorded.
    ///
    /// Only bucket counts are kept, so the estimate is worked out as
    /// Prometheus's `histogram_quantile` does: the bucket that holds the
    /// quantile's rank is found, and the value is interpolated linearly
    /// between its bounds (the first bucket's lower bound is zero). The true
    /// quantile lies in the same bucket, so above 1 µs the estimate is
    /// within a factor of two of it. `q = 1` gives the upper bound of the highest non-empty
    /// bucket: a bound on the maximum, not the maximum itself. A quantile that
    /// falls in the last bucket (above 2²⁴ µs) is given as that bucket's lower
    /// bound, 2²⁴ µs: the histogram knows no more of it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use muxpool_client::metrics::Histogram;
    ///
    /// let mut h = Histogram::default();
    /// for us in [100, 110, 120, 900] {
    ///     h.record(Duration::from_micros(us));
    /// }
    /// // Three of four are in (64 µs, 128 µs], one in (512 µs, 1024 µs].
    /// let p50 = h.quantile(0.5).unwrap();
    /// assert!(p50 > Duration::from_micros(64) && p50 <= Duration::from_micros(128));
    /// assert_eq!(h.quantile(1.0), Some(Duration::from_micros(1024)));
    /// assert_eq!(Histogram::default().quantile(0.5), None);
    /// ```
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * self.count as f64;
        let mut below = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            if n == 0 || ((below + n) as f64) < rank {
                below += n;
                continue;
            }
            let lower = i.checked_sub(1).and_then(Histogram::bound);
            let lower = lower.unwrap_or(Duration::ZERO);
            let Some(upper) = Histogram::bound(i) else {
                return Some(lower);
            };
            let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
            return Some(lower + (upper - lower).mul_f64(within));
        }
        // Unreachable with a positive count: the last non-empty bucket holds
        // the rank `count`.
        None
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.sum_nanos = self.sum_nanos.saturating_add(other.sum_nanos);
        self.count += other.count;
    }
}

/// A duration and its bucket, worked out once for the histograms of an
/// origin and of the pool, and before the lock is taken.
#[derive(Clone, Copy)]
pub(crate) struct Sample {
    nanos: u64,
    bucket: usize,
}

impl Sample {
    #[inline]
    pub(crate) fn from_nanos(nanos: u64) -> Sample {
        Sample {
            nanos,
            bucket: bucket_of(nanos),
        }
    }
}

/// The bucket of a duration of `nanos`: the smallest `i` with
/// `nanos <= 2ⁱ µs`, or the last bucket.
#[inline]
fn bucket_of(nanos: u64) -> usize {
    // nanos <= 2^i * 1000  <=>  ceil(nanos / 1000) <= 2^i.
    let micros = nanos.div_ceil(1000);
    if micros <= 1 {
        return 0;
    }
    let i = (u64::BITS - (micros - 1).leading_zeros()) as usize;
    i.min(FINITE_BUCKETS)
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("sum", &self.sum())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_are_inclusive() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1_000), 0);
        assert_eq!(bucket_of(1_001), 1);
        assert_eq!(bucket_of(2_000), 1);
        assert_eq!(bucket_of(2_001), 2);
        assert_eq!(bucket_of(4_000), 2);
        assert_eq!(bucket_of(4_001), 3);
        let top = (1u64 << (FINITE_BUCKETS - 1)) * 1000;
        assert_eq!(bucket_of(top), FINITE_BUCKETS - 1);
        assert_eq!(bucket_of(top + 1), FINITE_BUCKETS);
        assert_eq!(bucket_of(u64::MAX), FINITE_BUCKETS);
    }

    #[test]
    fn every_duration_lands_in_the_bucket_its_bound_says() {
        for nanos in (0..40_000_000u64).step_by(997) {
            let i = bucket_of(nanos);
            let d = Duration::from_nanos(nanos);
            if let Some(bound) = Histogram::bound(i) {
                assert!(d <= bound, "{d:?} above bucket {i}'s bound {bound:?}");
            }
            if i > 0 {
                let below = Histogram::bound(i - 1).unwrap();
                assert!(d > below, "{d:?} belongs below bucket {i}");
            }
        }
    }

    #[test]
    fn quantiles_fall_in_the_bucket_of_the_true_quantile() {
        // 1,000 durations spread from 1 µs to about 10 s, each recorded once.
        let mut durations: Vec<Duration> = (0..1_000u32)
            .map(|i| Duration::from_nanos(1_000 + u64::from(i).pow(3) * 10))
            .collect();
        durations.sort();
        let mut h = Histogram::default();
        for d in &durations {
            h.record(*d);
        }
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let estimate = h.quantile(q).unwrap();
            let rank = ((q * 1_000.0).ceil() as usize).clamp(1, 1_000);
            let truth = durations[rank - 1];
            let i = bucket_of(u64::try_from(truth.as_nanos()).unwrap());
            let upper = Histogram::bound(i).unwrap();
            let lower = i
                .checked_sub(1)
                .and_then(Histogram::bound)
                .unwrap_or_default();
            assert!(
                lower <= estimate && estimate <= upper,
                "q {q}: {estimate:?} outside ({lower:?}, {upper:?}] holding {truth:?}"
            );
        }
        // The maximum's estimate bounds it from above.
        assert!(h.quantile(1.0).unwrap() >= *durations.last().unwrap());
        assert_eq!(h.quantile(1.0), Histogram::bound(bucket_of(10_000_000_000)));
    }

    #[test]
    fn quantiles_of_one_bucket_and_of_the_last() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for _ in 0..4 {
            h.record(Duration::from_micros(3)); // (2 µs, 4 µs]
        }
        assert_eq!(h.quantile(0.0), Some(Duration::from_micros(2)));
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(3)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_micros(4)));
        // Out-of-range q is clamped.
        assert_eq!(h.quantile(7.0), Some(Duration::from_micros(4)));
        // Above the last bound only the bound is known.
        h.record(Duration::from_secs(60));
        let top = Histogram::bound(FINITE_BUCKETS - 1).unwrap();
        assert_eq!(h.quantile(1.0), Some(top));
        assert_eq!(
            h.quantile(0.5),
            Some(Duration::from_micros(3) + Duration::from_nanos(250))
        );
    }

    #[test]
    fn cumulative_counts_end_at_the_count() {
        let mut h = Histogram::default();
        for us in [0, 1, 3, 900, 5_000_000, 100_000_000] {
            h.record(Duration::from_micros(us));
        }
        let c: Vec<_> = h.cumulative().collect();
        assert_eq!(c.len(), FINITE_BUCKETS + 1);
        assert_eq!(c[0], (Some(Duration::from_micros(1)), 2));
        assert_eq!(c[2].1, 3);
        assert_eq!(c[FINITE_BUCKETS - 1].1, 5);
        assert_eq!(c[FINITE_BUCKETS], (None, 6));
        assert!(c.windows(2).all(|w| w[0].1 <= w[1].1));
        let mut m = Histogram::default();
        m.merge(&h);
        m.merge(&h);
        assert_eq!(m.count(), 12);
        assert_eq!(m.sum(), h.sum() * 2);
    }
}
