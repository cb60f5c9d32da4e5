//! Adaptive sizing: the minimum of warm connections per endpoint, following
//! measured demand.
//!
//! A pool with too few warm connections makes a burst wait for connects and
//! handshakes; one with too many holds sockets on both sides for nothing. The
//! [`Sizer`] is a pure rule between the two: every [`Sizing::interval`] the
//! caller tells it the average wait for a connection and the utilisation it
//! measured over the interval, and it answers with the new target, which the
//! caller gives the pool as the key's minimum of idle connections
//! ([`Pool::set_min_idle`](crate::Pool::set_min_idle)). No clock, no state but
//! the target and the next instant it may move.

use core::time::Duration;

use crate::config::{ConfigError, Sizing};
use crate::time::Instant;

/// The minimum of warm connections for one endpoint (or one pool), moved by
/// the [`Sizing`] rule.
///
/// ```
/// use std::time::Duration;
/// use muxpool_core::{Instant, Sizer, Sizing};
///
/// let mut sizer = Sizer::new(Sizing::default()).unwrap();
/// assert_eq!(sizer.target(), 10);
/// let t = Instant::ZERO;
/// sizer.tick(t, Duration::ZERO, 50); // the first tick starts the clock
/// // Ten seconds in which requests waited 250 ms on average: grow by 1.2×.
/// let later = t + Duration::from_secs(10);
/// assert_eq!(sizer.tick(later, Duration::from_millis(250), 100), Some(12));
/// ```
#[derive(Debug, Clone)]
pub struct Sizer {
    rule: Sizing,
    target: u32,
    next: Option<Instant>,
}

impl Sizer {
    /// A sizer at the rule's minimum, or why the rule is refused.
    pub fn new(rule: Sizing) -> Result<Sizer, ConfigError> {
        rule.validate()?;
        Ok(Sizer {
            target: rule.min,
            rule,
            next: None,
        })
    }

    /// The target now.
    pub fn target(&self) -> u32 {
        self.target
    }

    /// When the target may move next; `None` before the first tick.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// Tells the sizer what the caller measured since its last tick: the
    /// average wait for a connection, and utilisation (the share of open
    /// connections in use, in percent). Once an interval has passed since the
    /// last move, the target moves by the rule, and the new one is returned
    /// if it changed. The first tick only starts the interval.
    pub fn tick(&mut self, now: Instant, wait: Duration, utilisation: u32) -> Option<u32> {
        let Some(next) = self.next else {
            self.next = Some(now + self.rule.interval);
            return None;
        };
        if now < next {
            return None;
        }
        self.next = Some(now + self.rule.interval);
        let rule = &self.rule;
        let target = u64::from(self.target);
        let moved = if wait > rule.wait_above {
            (target * u64::from(rule.grow_percent)).div_ceil(100)
        } else if utilisation < rule.utilisation_below {
            target * u64::from(rule.shrink_percent) / 100
        } else {
            target
        };
        let moved = moved.clamp(u64::from(rule.min), u64::from(rule.max)) as u32;
        if moved == self.target {
            return None;
        }
        self.target = moved;
        Some(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    const SLOW: Duration = Duration::from_millis(150);

    #[test]
    fn grows_under_waits_up_to_the_max() {
        let mut sizer = Sizer::new(Sizing::default()).unwrap();
        assert_eq!(sizer.tick(at(0), SLOW, 100), None);
        let mut seen = vec![];
        for i in 1..=40 {
            if let Some(t) = sizer.tick(at(10 * i), SLOW, 100) {
                seen.push(t);
            }
        }
        assert_eq!(&seen[..4], [12, 15, 18, 22]);
        assert_eq!(sizer.target(), 500);
        assert_eq!(seen.last(), Some(&500));
    }

    #[test]
    fn shrinks_when_idle_down_to_the_min() {
        let rule = Sizing {
            min: 2,
            ..Sizing::default()
        };
        let mut sizer = Sizer::new(rule).unwrap();
        sizer.tick(at(0), SLOW, 100);
        for i in 1..=10 {
            sizer.tick(at(10 * i), SLOW, 100);
        }
        let grown = sizer.target();
        assert!(grown > 20);
        assert_eq!(
            sizer.tick(at(110), Duration::ZERO, 10),
            Some(grown * 8 / 10)
        );
        for i in 12..=60 {
            sizer.tick(at(10 * i), Duration::ZERO, 10);
        }
        assert_eq!(sizer.target(), 2);
    }

    #[test]
    fn holds_between_intervals_and_in_the_band() {
        let mut sizer = Sizer::new(Sizing::default()).unwrap();
        sizer.tick(at(0), SLOW, 100);
        assert_eq!(sizer.tick(at(9), SLOW, 100), None, "not yet an interval");
        assert_eq!(sizer.tick(at(10), Duration::from_millis(50), 60), None);
        assert_eq!(sizer.poll_timeout(), Some(at(20)));
        assert_eq!(sizer.target(), 10);
    }

    #[test]
    fn bad_rules_are_refused() {
        let rule = Sizing {
            min: 600,
            ..Sizing::default()
        };
        assert!(Sizer::new(rule).is_err());
        let rule = Sizing {
            grow_percent: 100,
            ..Sizing::default()
        };
        assert_eq!(
            Sizer::new(rule).unwrap_err(),
            ConfigError::OutOfRange("sizing.grow_percent")
        );
    }
}
