//! The invariants of `docs/architecture.md` ("What always holds"), checked
//! against the state itself.
//!
//! Every counter is recounted from the objects, every list walked, every limit and
//! timer compared with what the state implies. Property tests, the simulator and
//! the fuzz targets call this after every input; it is public so that users who
//! drive the core from their own tests can do the same.

use std::collections::HashMap;

use std::hash::Hash;

use crate::id::{ConnId, Handle, KeyId};
use crate::list::List;
use crate::stats::Stats;
use crate::time::Instant;

use super::conn::{Class, Conn, Slot, State};
use super::key::{Circuit, Expiry};
use super::{InvariantViolation, Pool};

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(InvariantViolation(format!($($fmt)+)));
        }
    };
}

#[derive(Default, Clone, Copy)]
struct Recount {
    usable: u32,
    connecting: u32,
    idle: u32,
    busy: u32,
    draining: u32,
    leases: u32,
}

impl<K: Hash + Eq + Clone> Pool<K> {
    /// Checks every invariant the core promises against its current state.
    ///
    /// Meant for tests, simulators and fuzzers: it walks the whole state, so it
    /// costs time proportional to everything the pool holds.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let cfg = &self.config;
        let mut per_key: HashMap<u32, Recount> = HashMap::new();
        let mut lease_counts: HashMap<ConnId, u32> = HashMap::new();
        for (_, &cid) in self.books.leases.iter() {
            ensure!(
                self.books.conns.get(cid).is_some_and(|c| c.multiplexed),
                "a lease entry names {cid:?}, forgotten or exclusive"
            );
            *lease_counts.entry(cid).or_default() += 1;
        }
        for (cid, c) in self.books.conns.iter() {
            ensure!(
                self.keys.contains(c.key),
                "{cid:?} belongs to a forgotten key"
            );
            // Its inline lease is its own (see `Books::leases`).
            let leases = lease_counts.get(&cid).copied().unwrap_or(0) + u32::from(c.inline_out());
            ensure!(
                leases == c.leases,
                "{cid:?} counts {} leases, {} are out",
                c.leases,
                leases
            );
            let r = per_key.entry(c.key.index()).or_default();
            r.leases += c.leases;
            let place = c.place();
            r.usable += u32::from(place.usable());
            match place.class() {
                Some(Class::Connecting) => r.connecting += 1,
                Some(Class::Idle) => r.idle += 1,
                Some(Class::Busy) => r.busy += 1,
                Some(Class::Draining) => r.draining += 1,
                None => ensure!(
                    c.leases > 0,
                    "{cid:?} is closed with no lease out, yet kept"
                ),
            }
            if !c.multiplexed {
                ensure!(c.leases <= 1, "exclusive {cid:?} has {} leases", c.leases);
            }
            ensure!(
                c.leases <= c.capacity + c.grandfathered,
                "{cid:?} has {} leases over capacity {} (+{} from a lowered peer limit)",
                c.leases,
                c.capacity,
                c.grandfathered
            );
            // A check out on a busy connection comes only from `suspect`; the
            // leases it has stay, but no new one is granted (its slot is None).
            if matches!(c.state, State::Connecting { .. }) {
                ensure!(c.leases == 0, "{cid:?} is leased while {:?}", c.state);
            }
            ensure!(
                c.place == place,
                "{cid:?} is placed as {:?}, belongs as {place:?}",
                c.place
            );

            if self.shutdown.is_some() {
                ensure!(
                    !matches!(
                        c.state,
                        State::Connecting { .. } | State::Ready | State::Checking { .. }
                    ) || c.leases > 0,
                    "{cid:?} is {:?} and unleased after shutdown",
                    c.state
                );
            }
        }

        let mut totals = Stats::default();
        for (kid, k) in self.keys.iter() {
            ensure!(
                self.index.get(&k.key) == Some(&kid),
                "{kid:?} is missing from the key index"
            );
            // A key counted as empty is forgotten when its time comes; one
            // that is not would be woken for that forever.
            ensure!(
                k.empty_since.is_none() || k.is_empty(),
                "{kid:?} counts as empty since {:?} but is not",
                k.empty_since
            );
            // A key's minimum of idle connections is the configured one unless
            // set, and never above what the limits let it open.
            ensure!(
                k.min_idle_set || k.min_idle == self.config.min_idle_per_key,
                "{kid:?} keeps {} idle connections, not the configured {}",
                k.min_idle,
                self.config.min_idle_per_key
            );
            ensure!(
                k.min_idle <= self.config.max_connections_per_key
                    && k.min_idle <= self.config.max_connections,
                "{kid:?} keeps {} idle connections, above its limits",
                k.min_idle
            );
            let r = per_key.get(&kid.index()).copied().unwrap_or_default();
            let s = &k.stats();
            ensure!(
                (s.connecting, s.idle, s.busy, s.draining, s.leases)
                    == (r.connecting, r.idle, r.busy, r.draining, r.leases),
                "{kid:?} gauges (connecting, idle, busy, draining, leases) = {:?}, state = {:?}",
                (s.connecting, s.idle, s.busy, s.draining, s.leases),
                (r.connecting, r.idle, r.busy, r.draining, r.leases)
            );
            ensure!(
                s.open == s.connecting + s.idle + s.busy + s.draining,
                "{kid:?} open count {} is not the sum of its parts",
                s.open
            );
            ensure!(
                s.open <= cfg.max_connections_per_key,
                "{kid:?} has {} open connections over the limit {}",
                s.open,
                cfg.max_connections_per_key
            );
            ensure!(
                s.connecting <= cfg.max_connecting_per_key,
                "{kid:?} has {} connecting",
                s.connecting
            );
            ensure!(
                k.usable == r.usable,
                "{kid:?} counts {} usable connections, state has {}",
                k.usable,
                r.usable
            );
            self.check_lists(kid)?;
            ensure!(
                s.waiting == k.waiters.len(),
                "{kid:?} counts {} waiters, queues {}",
                s.waiting,
                k.waiters.len()
            );
            ensure!(
                s.waiting <= cfg.max_waiters_per_key,
                "{kid:?} queue is over its bound"
            );
            if s.waiting > 0 {
                ensure!(
                    k.pick(&self.books.conns).is_none(),
                    "{kid:?} has waiters and free capacity"
                );
                // A circuit that opened refused the waiters its probe comes
                // too late for, and takes no new ones.
                if let Circuit::Open { until } = k.circuit {
                    let mut at = k.waiters.front(&self.waiters);
                    while let Some(w) = at {
                        let waiter = self.waiters.get(w).expect("queued waiters live");
                        ensure!(
                            waiter.deadline >= until,
                            "{kid:?} keeps {w:?} waiting past its deadline for a probe at {until:?}"
                        );
                        at = k.waiters.next_shared(&self.waiters, w, |w| &w.link);
                    }
                }
                let wanted = self.wanted_opens(kid);
                let evictable = self
                    .books
                    .conns
                    .iter()
                    .any(|(_, c)| c.place().evictable() && c.key != kid);
                let limited = s.open >= cfg.max_connections_per_key
                    || s.connecting >= cfg.max_connecting_per_key
                    || (self.books.open_total >= cfg.max_connections && k.blocked && !evictable);
                ensure!(
                    wanted == 0 || limited,
                    "{kid:?} has waiters and wants {wanted} connections it is not opening"
                );
            }
            self.check_key_timer(kid)?;
            totals.add(s);
        }
        ensure!(
            self.books.open_total == totals.open,
            "the pool counts {} open connections, its keys {}",
            self.books.open_total,
            totals.open
        );
        let t = &totals;
        ensure!(
            t.open <= cfg.max_connections,
            "{} connections open over the limit {}",
            t.open,
            cfg.max_connections
        );
        ensure!(
            self.index.len() == self.keys.len(),
            "key index and key table differ"
        );

        let mut listed: HashMap<u32, u32> = HashMap::new();
        for (w, waiter) in self.waiters.iter() {
            ensure!(
                self.keys.contains(waiter.key),
                "{w:?} waits on a forgotten key"
            );
            match waiter.expiry {
                Expiry::Listed => *listed.entry(waiter.key.index()).or_default() += 1,
                Expiry::Timer(timer) => ensure!(
                    self.timers.deadline(timer) == Some(waiter.deadline),
                    "{w:?} deadline timer is gone or moved"
                ),
                Expiry::Fired => {
                    return Err(InvariantViolation(format!(
                        "{w:?} timed out but still waits"
                    )))
                }
            }
        }
        for (kid, k) in self.keys.iter() {
            let expected = listed.get(&kid.index()).copied().unwrap_or(0);
            ensure!(
                k.expiring.len() == expected,
                "{kid:?} lists {} expiring waiters, {expected} are listed",
                k.expiring.len()
            );
            let mut last = Instant::ZERO;
            let mut at = k.expiring.front(&self.waiters);
            while let Some(w) = at {
                let waiter = self.waiters.get(w).expect("listed waiters live");
                ensure!(
                    waiter.key == kid && waiter.deadline >= last,
                    "{kid:?} lists {w:?} out of deadline order"
                );
                last = waiter.deadline;
                at = k
                    .expiring
                    .next_shared(&self.waiters, w, |w| &w.expiring_link);
            }
        }
        if self.shutdown.is_some() {
            ensure!(self.waiters.len() == 0, "requests wait after shutdown");
        }
        Ok(())
    }

    fn check_lists(&self, kid: KeyId) -> Result<(), InvariantViolation> {
        let k = self.keys.get(kid).expect("iterating live keys");
        let members = |list: &List, want: &dyn Fn(&Conn) -> bool, name: &str| {
            let expected = self
                .books
                .conns
                .iter()
                .filter(|(_, c)| c.key == kid && want(c))
                .count() as u32;
            ensure!(
                list.len() == expected,
                "{kid:?} {name} list holds {}, expected {expected}",
                list.len()
            );
            Ok(())
        };
        members(&k.free, &|c| c.place.slot() != Slot::None, "free")?;
        // The idle connections first, then the partly used ones.
        let idle = k.free.len() - k.partial.min(k.free.len());
        let mut at = k.free.front(&self.books.conns);
        let mut seen = 0;
        while let Some(cid) = at {
            let c = self.books.conns.get(cid).expect("listed connections live");
            let want = if seen < idle {
                Slot::Idle
            } else {
                Slot::Partial
            };
            ensure!(
                c.place.slot() == want,
                "{kid:?} lists {cid:?} ({:?}) at {seen} of its free list, with {} partly used last",
                c.place.slot(),
                k.partial
            );
            seen += 1;
            at = k.free.next_shared(&self.books.conns, cid, |c| &c.slot_link);
        }
        members(&k.all, &|c| !matches!(c.state, State::Closed), "all")?;
        Ok(())
    }

    /// A key's timer may fire early, never late.
    fn check_key_timer(&self, kid: KeyId) -> Result<(), InvariantViolation> {
        let k = self.keys.get(kid).expect("iterating live keys");
        if let Some((timer, cached)) = k.timer {
            let heap = self.timers.deadline(timer);
            ensure!(
                heap == Some(cached),
                "{kid:?} caches its timer at {cached:?}, the heap has {heap:?}"
            );
        }
        let due = self
            .books
            .conns
            .iter()
            .filter(|(_, c)| c.key == kid)
            .filter_map(|(_, c)| self.conn_deadline(c))
            .chain(self.key_deadline(k))
            .min();
        if let Some(due) = due {
            let armed = k.timer.map(|(_, at)| at);
            ensure!(
                armed.is_some_and(|armed| armed <= due),
                "{kid:?} has something due at {due:?} but its timer is {armed:?}"
            );
        }
        Ok(())
    }
}

/// The checker finds what it promises to find: each test breaks one thing in
/// a consistent pool and expects the violation named.
#[cfg(test)]
mod tests {
    use crate::{Acquire, AcquireOptions, Action, Connected, Instant, Pool, PoolConfig, Release};

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn violation(pool: &Pool<&'static str>) -> String {
        pool.check_invariants()
            .expect_err("the broken pool is found out")
            .to_string()
    }

    /// Two idle connections on key "k", both back in the pool.
    fn two_idle() -> Pool<&'static str> {
        let mut pool = Pool::new(PoolConfig::default()).unwrap();
        let mut leases = Vec::new();
        for _ in 0..2 {
            assert!(matches!(
                pool.acquire(&"k", at(0), AcquireOptions::default()),
                Ok(Acquire::Queued(_))
            ));
            let Some(Action::Open { conn }) = pool.poll_action() else {
                panic!("a connection opens for the waiter");
            };
            pool.handle_connected(conn, at(0), Connected::http1())
                .unwrap();
            let Some(Action::Grant { lease, .. }) = pool.poll_action() else {
                panic!("the waiter is granted");
            };
            leases.push(lease);
        }
        for lease in leases {
            pool.release(lease, at(0), Release::Reuse).unwrap();
        }
        while pool.poll_action().is_some() {}
        pool.check_invariants().unwrap();
        pool
    }

    #[test]
    fn a_violation_says_it_is_one() {
        let mut pool = two_idle();
        let (kid, _) = pool.keys.iter().next().unwrap();
        pool.keys.get_mut(kid).unwrap().partial = 2;
        assert!(violation(&pool).starts_with("pool invariant violated: "));
    }

    #[test]
    fn the_whole_free_list_is_walked() {
        let mut pool = two_idle();
        let (kid, _) = pool.keys.iter().next().unwrap();
        // The second connection is idle, but would have to be partly used.
        pool.keys.get_mut(kid).unwrap().partial = 1;
        assert!(violation(&pool).contains("at 1 of its free list"));
    }

    #[test]
    fn the_whole_expiring_list_is_walked() {
        let mut pool: Pool<&'static str> = Pool::new(PoolConfig::default()).unwrap();
        for now in [0, 10] {
            assert!(matches!(
                pool.acquire(&"k", at(now), AcquireOptions::default()),
                Ok(Acquire::Queued(_))
            ));
        }
        pool.check_invariants().unwrap();
        let (second, _) = pool.waiters.iter().nth(1).unwrap();
        pool.waiters.get_mut(second).unwrap().deadline = at(1);
        assert!(violation(&pool).contains("out of deadline order"));
    }

    #[test]
    fn a_connection_of_a_forgotten_key_is_found() {
        let mut pool = two_idle();
        let (kid, _) = pool.keys.iter().next().unwrap();
        // The key's entry is replaced: same slot, new generation.
        let key = pool.keys.remove(kid).unwrap();
        pool.keys.insert(key);
        assert!(violation(&pool).contains("belongs to a forgotten key"));
    }
}
