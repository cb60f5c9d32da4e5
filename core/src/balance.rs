//! The balancer: which endpoint of a service a request goes to.
//!
//! A service is a set of endpoints (addresses behind one name, replicas,
//! regions), each its own pool key with its own connections. The
//! [`Balancer`] keeps what is known of each (its priority group and weight,
//! its latency, its requests in flight, its failures) and answers one
//! question per request: which endpoint. It is sans-IO like the [`Pool`]
//! beside it: inputs with the time, no clock, randomness from the seed.
//!
//! - **Choice**: power of two choices. Two endpoints of the chosen group are
//!   drawn by weight, and the cheaper one is taken, its cost being its latency
//!   estimate, plus the expected connect time when it has no capacity free
//!   now (asked of the pool through [`Capacity`]), times its requests in
//!   flight plus one, over its weight. The latency estimate is a
//!   peak-sensitive moving average: a sample above it replaces it, one below
//!   it is blended in by the time since the last, and it decays towards zero
//!   with the time constant [`Balance::decay`] when not refreshed, so that an
//!   endpoint once slow is tried again.
//! - **Outlier ejection**: see [`Outliers`]. An ejected endpoint is taken out
//!   of the choice until its ejection ends; then the next request goes to it
//!   as a probe ([`Pick::is_probe`]), and its outcome readmits it or ejects
//!   it again for longer.
//! - **Priority failover**: see [`Failover`]. Each request first draws a
//!   group by the groups' loads, computed from their health whenever
//!   something changes, then an endpoint in it.
//! - **Endpoints come and go**: [`Balancer::insert`] adds one (or changes its
//!   group and weight); [`Balancer::remove`] stops choosing it at once, while
//!   the requests already sent to it finish and are reported; once none is
//!   left it is forgotten and [`BalanceEvent::Drained`] says so, and its
//!   connections are the pool's to close (they idle out).
//!
//! Everything that changes the groups (an ejection, its end, a readmission,
//! an endpoint added or removed) is cold: the groups are rebuilt then, and
//! [`Balancer::choose`] reads the tables it left, a few comparisons, two
//! random draws and two costs.
//!
//! [`Outliers`]: crate::Outliers
//! [`Failover`]: crate::Failover

use core::fmt;
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use slab::Slab;

use crate::config::{Balance, ConfigError};
use crate::pool::Pool;
use crate::rng::Rng;
use crate::time::Instant;

/// The key hasher, seeded as the pool's is: no OS randomness, and no
/// decision iterates the map.
type SeededState = foldhash::quality::FixedState;

/// Loads are shares of 10,000 (hundredths of a percent).
const WHOLE: u32 = 10_000;

/// Where an endpoint sits in its service: its priority group and its weight.
///
/// Group 0 is the highest priority; traffic goes to a lower one (a larger
/// number) only as the groups above it lose health (see
/// [`Failover`](crate::Failover)). Within a group, endpoints are drawn in
/// proportion to their weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Endpoint {
    /// The priority group, 0 the highest.
    pub priority: u32,
    /// The weight within the group; at least 1.
    pub weight: u32,
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint {
            priority: 0,
            weight: 1,
        }
    }
}

impl Endpoint {
    /// An endpoint in group `priority` with `weight`.
    pub fn new(priority: u32, weight: u32) -> Endpoint {
        Endpoint { priority, weight }
    }
}

/// Whether an endpoint can take a request now, without a new connection: an
/// idle connection, or a free stream on a multiplexed one.
///
/// [`Pool`] answers it for its keys ([`Pool::has_capacity`]); a closure
/// `Fn(&K) -> bool` does too, and `&|_: &K| true` ignores it.
pub trait Capacity<K> {
    /// Whether `key` has capacity free now.
    fn ready(&self, key: &K) -> bool;
}

impl<K, F: Fn(&K) -> bool> Capacity<K> for F {
    #[inline]
    fn ready(&self, key: &K) -> bool {
        self(key)
    }
}

impl<K: Hash + Eq + Clone> Capacity<K> for Pool<K> {
    #[inline]
    fn ready(&self, key: &K) -> bool {
        self.has_capacity(key)
    }
}

/// An endpoint chosen for one request: give it back with
/// [`Balancer::complete`] (or [`Balancer::cancel`]) exactly once. It is
/// neither `Copy` nor `Clone`, so that it can be given back only once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a pick counts as in flight until it is given back"]
pub struct Pick {
    slot: u32,
    generation: u32,
    started: Instant,
    probe: bool,
}

impl Pick {
    /// Whether this request is the probe of an endpoint whose ejection ended:
    /// its outcome readmits the endpoint or ejects it again.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// When it was chosen; its latency is measured from here.
    pub fn started(&self) -> Instant {
        self.started
    }
}

/// How a request sent to an endpoint ended, as the caller judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered, and not with a failure of the endpoint's own.
    Success,
    /// The endpoint failed it: a 5xx, a reset, a timeout.
    Failure,
}

/// An input the balancer could not apply; it changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BalanceError {
    /// No endpoint has this key.
    UnknownEndpoint,
    /// The pick was already given back, or its endpoint is gone.
    StalePick,
    /// The service has no endpoint to choose.
    NoEndpoint,
    /// An endpoint's weight is zero.
    ZeroWeight,
}

impl fmt::Display for BalanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BalanceError::UnknownEndpoint => "no endpoint has this key",
            BalanceError::StalePick => "the pick was already given back or its endpoint is gone",
            BalanceError::NoEndpoint => "the service has no endpoint",
            BalanceError::ZeroWeight => "an endpoint's weight must be at least 1",
        })
    }
}

impl std::error::Error for BalanceError {}

/// What happened to an endpoint, for logs and metrics; drained with
/// [`Balancer::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BalanceEvent<K> {
    /// Ejected after failing, until the instant given.
    Ejected {
        /// The endpoint.
        key: K,
        /// When its probe may go.
        until: Instant,
    },
    /// Its ejection ended: the next request goes to it as a probe.
    Probing {
        /// The endpoint.
        key: K,
    },
    /// Its probe succeeded: it takes requests again.
    Readmitted {
        /// The endpoint.
        key: K,
    },
    /// Removed, and its last request has come back: forgotten.
    Drained {
        /// The endpoint.
        key: K,
    },
}

/// An endpoint's state, as [`Balancer::endpoint`] tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointState {
    /// Taking requests. `counted` is whether it adds to its group's health
    /// (a readmitted endpoint does once it has stayed healthy for
    /// [`Failover::failback_after`](crate::Failover::failback_after)).
    Healthy {
        /// Whether it counts in its group's health.
        counted: bool,
    },
    /// Ejected until the instant given.
    Ejected {
        /// When its probe may go.
        until: Instant,
    },
    /// Its ejection ended; the probe is out or is the next request.
    Probing,
    /// Removed: chosen no more, its requests in flight finishing.
    Draining,
}

/// What the balancer knows of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct EndpointInfo {
    /// Its group and weight.
    pub endpoint: Endpoint,
    /// Its state.
    pub state: EndpointState,
    /// Requests chosen for it and not yet given back.
    pub outstanding: u32,
    /// Failures in a row.
    pub failures: u32,
    /// The latency estimate at the last input.
    pub latency: Duration,
}

/// A broken invariant of the balancer, found by [`Balancer::check_invariants`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceViolation(String);

impl fmt::Display for BalanceViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "balancer invariant violated: {}", self.0)
    }
}

impl std::error::Error for BalanceViolation {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// Taking requests; readmitted at `since` if that is set, and not yet
    /// counted in its group's health.
    Healthy {
        since: Option<Instant>,
    },
    Ejected {
        until: Instant,
    },
    Probing {
        out: bool,
    },
}

#[derive(Debug)]
struct Entry<K> {
    key: K,
    place: Endpoint,
    generation: u32,
    removed: bool,
    outstanding: u32,
    /// The latency estimate as of `stamp`, in nanoseconds.
    latency: f64,
    stamp: Instant,
    /// The connect-time estimate, in nanoseconds.
    connect: f64,
    failures: u32,
    /// Ejections so far, less one for each base ejection time it then
    /// stayed healthy.
    ejections: u32,
    readmitted: Instant,
    health: Health,
}

impl<K> Entry<K> {
    fn is_ejected(&self) -> bool {
        matches!(self.health, Health::Ejected { .. } | Health::Probing { .. })
    }

    /// Its latency estimate at `now`, decayed since its last sample.
    #[inline]
    fn estimate(&self, now: Instant, tau: f64) -> f64 {
        let elapsed = now.as_nanos().saturating_sub(self.stamp.as_nanos()) as f64;
        self.latency * decay(elapsed / tau)
    }
}

/// `e^-x` for `x >= 0`, as `1 / (1 + x + x²/2 + x³/6)`: within 2 % of it up to
/// `x = 0.6` (half a minute of a 10 s decay is `x = 3`, where both are small),
/// always in `(0, 1]` and decreasing, and a few multiplications instead of a
/// call to `exp` on the path of every request.
#[inline]
fn decay(x: f64) -> f64 {
    1.0 / (1.0 + x * (1.0 + x * (0.5 + x / 6.0)))
}

fn nanos(d: Duration) -> f64 {
    d.as_nanos() as f64
}

/// One priority group, as the last rebuild left it.
#[derive(Debug, Clone, Default)]
struct Group {
    priority: u32,
    /// The endpoints a request in this group may go to.
    members: Vec<u32>,
    /// Running sums of the members' weights.
    cumulative: Vec<u64>,
    /// Whether every member weighs the same (then a draw is one index).
    uniform: bool,
    /// Its health, in shares of [`WHOLE`], after overprovisioning.
    health: u32,
    /// Its load, and the running sum of loads up to it, in shares of [`WHOLE`].
    load: u32,
    upto: u32,
    /// Whether it ignores ejections (its healthy share is under the panic
    /// threshold, or no group has any health).
    panic: bool,
}

/// The balancer of one service: its endpoints, and which one each request
/// goes to.
///
/// Like [`Pool`], it takes inputs with the time and makes every decision
/// from them and its seed. Its inputs are [`insert`](Balancer::insert),
/// [`remove`](Balancer::remove), [`choose`](Balancer::choose),
/// [`complete`](Balancer::complete), [`cancel`](Balancer::cancel),
/// [`connect_failed`](Balancer::connect_failed),
/// [`connected`](Balancer::connected) and
/// [`handle_timeout`](Balancer::handle_timeout); its outputs
/// [`poll_event`](Balancer::poll_event) (for logs and metrics: nothing needs
/// doing) and [`poll_timeout`](Balancer::poll_timeout), the next instant
/// something changes by itself (an ejection ends). Time never runs
/// backwards: an earlier `now` is read as the latest seen.
///
/// ```
/// use std::time::Duration;
/// use muxpool_core::{Balance, Balancer, Endpoint, Instant, Outcome};
///
/// let mut balancer = Balancer::new(Balance::default()).unwrap();
/// let now = Instant::ZERO;
/// balancer.insert("10.0.0.1:443", Endpoint::default(), now).unwrap();
/// balancer.insert("10.0.0.2:443", Endpoint::default(), now).unwrap();
/// balancer.insert("10.1.0.1:443", Endpoint::new(1, 1), now).unwrap(); // another region
///
/// // Both endpoints of group 0 have a connection free (a pool would say).
/// let pick = balancer.choose(now, &|_: &&str| true).unwrap();
/// assert!(balancer.key(&pick).unwrap().starts_with("10.0."));
///
/// // ... the request is sent to that endpoint, and answered 12 ms later.
/// let later = now + Duration::from_millis(12);
/// balancer.complete(pick, later, Outcome::Success).unwrap();
/// ```
pub struct Balancer<K> {
    config: Balance,
    entries: Slab<Entry<K>>,
    index: HashMap<K, u32, SeededState>,
    groups: Vec<Group>,
    /// The one group with load, when there is exactly one.
    single: Option<usize>,
    /// Endpoints whose probe is the next request.
    probes: VecDeque<u32>,
    /// Ejected or probing endpoints.
    ejected: u32,
    /// The next instant something changes by itself.
    wake: Instant,
    generation: u32,
    tau: f64,
    rng: Rng,
    events: VecDeque<BalanceEvent<K>>,
    now: Instant,
}

impl<K> fmt::Debug for Balancer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("endpoints", &self.entries.len())
            .field("ejected", &self.ejected)
            .field("groups", &self.groups.len())
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Making a balancer, and the inputs that change its endpoints.
impl<K: Hash + Eq + Clone> Balancer<K> {
    /// A balancer with no endpoint yet, or why `config` is refused.
    pub fn new(config: Balance) -> Result<Balancer<K>, ConfigError> {
        config.validate()?;
        Ok(Balancer {
            index: HashMap::with_hasher(SeededState::with_seed(config.seed ^ 0x6261_6c61)),
            entries: Slab::new(),
            groups: Vec::new(),
            single: None,
            probes: VecDeque::new(),
            ejected: 0,
            wake: Instant::MAX,
            generation: 0,
            tau: nanos(config.decay).max(1.0),
            rng: Rng::new(config.seed ^ 0x0062_616c_616e_6365),
            events: VecDeque::new(),
            now: Instant::ZERO,
            config,
        })
    }

    /// Adds an endpoint, or changes the group and weight of one already
    /// there (a removed one that is still draining is taken back).
    pub fn insert(&mut self, key: K, endpoint: Endpoint, now: Instant) -> Result<(), BalanceError> {
        let now = self.tick(now);
        if endpoint.weight == 0 {
            return Err(BalanceError::ZeroWeight);
        }
        if let Some(&slot) = self.index.get(&key) {
            let e = &mut self.entries[slot as usize];
            e.place = endpoint;
            e.removed = false;
        } else {
            self.generation = self.generation.wrapping_add(1);
            let entry = Entry {
                key: key.clone(),
                place: endpoint,
                generation: self.generation,
                removed: false,
                outstanding: 0,
                latency: nanos(self.config.initial_latency),
                stamp: now,
                connect: nanos(self.config.initial_connect),
                failures: 0,
                ejections: 0,
                readmitted: now,
                health: Health::Healthy { since: None },
            };
            let slot = self.entries.insert(entry) as u32;
            self.index.insert(key, slot);
        }
        self.rebuild();
        Ok(())
    }

    /// Removes an endpoint: it is chosen no more, from now on. Requests
    /// already sent to it are still given back; once the last is, it is
    /// forgotten ([`BalanceEvent::Drained`]).
    pub fn remove(&mut self, key: &K, now: Instant) -> Result<(), BalanceError> {
        let now = self.tick(now);
        let slot = *self.index.get(key).ok_or(BalanceError::UnknownEndpoint)?;
        let e = &mut self.entries[slot as usize];
        if e.removed {
            return Ok(());
        }
        e.removed = true;
        if e.is_ejected() {
            e.health = Health::Healthy { since: None };
            self.ejected -= 1;
            self.probes.retain(|&s| s != slot);
        }
        if e.outstanding == 0 {
            self.forget(slot);
        }
        self.enforce_cap(now);
        self.rebuild();
        Ok(())
    }
}

/// Inputs: choosing an endpoint, and what became of the request.
impl<K: Hash + Eq + Clone> Balancer<K> {
    /// Chooses the endpoint for one request, and counts it in flight there
    /// until [`complete`](Balancer::complete) or [`cancel`](Balancer::cancel).
    ///
    /// An endpoint whose ejection ended is chosen first, as a probe. Otherwise
    /// a group is drawn by load, two of its endpoints by weight, and the
    /// cheaper of the two taken; `capacity` tells which of the two can take
    /// the request without a new connection.
    pub fn choose<C: Capacity<K> + ?Sized>(
        &mut self,
        now: Instant,
        capacity: &C,
    ) -> Result<Pick, BalanceError> {
        let now = self.tick(now);
        if now >= self.wake {
            self.refresh(now);
        }
        if !self.probes.is_empty() {
            return Ok(self.probe(now));
        }
        let g = match self.single {
            Some(g) => g,
            None => self.draw_group()?,
        };
        let group = &self.groups[g];
        let slot = match group.members.len() {
            0 => return Err(BalanceError::NoEndpoint),
            1 => group.members[0],
            n => {
                let (a, b) = draw_two(group, n, &mut self.rng);
                let (ea, eb) = (&self.entries[a as usize], &self.entries[b as usize]);
                let tau = self.tau;
                let cost = |e: &Entry<K>, wait: f64| {
                    (e.estimate(now, tau) + wait) * f64::from(e.outstanding + 1)
                        / f64::from(e.place.weight)
                };
                let wait = |e: &Entry<K>| {
                    if capacity.ready(&e.key) {
                        0.0
                    } else {
                        e.connect
                    }
                };
                // `b` is taken when its cost is below `a`'s. Each operation of a
                // cost is monotone in the wait, so `a`'s lies between its cost
                // with no wait and with the connect wait: capacity is asked of
                // `a` only when `b`'s cost falls between the two (the question
                // is a lookup in the pool; the answer is the same either way).
                let cost_b = cost(eb, wait(eb));
                if cost_b < cost(ea, 0.0) {
                    b
                } else if cost_b >= cost(ea, ea.connect) {
                    a
                } else if cost_b < cost(ea, wait(ea)) {
                    b
                } else {
                    a
                }
            }
        };
        let e = &mut self.entries[slot as usize];
        e.outstanding += 1;
        Ok(Pick {
            slot,
            generation: e.generation,
            started: now,
            probe: false,
        })
    }

    /// Gives a pick back with how its request ended: its latency (from the
    /// pick to `now`) refreshes the endpoint's estimate, and its outcome its
    /// failure count, which may eject it (or, for a probe, readmit it).
    pub fn complete(
        &mut self,
        pick: Pick,
        now: Instant,
        outcome: Outcome,
    ) -> Result<(), BalanceError> {
        let now = self.tick(now);
        let tau = self.tau;
        let e = self.entry_of(&pick)?;
        e.outstanding -= 1;
        let sample = nanos(now.saturating_duration_since(pick.started));
        let elapsed = now.as_nanos().saturating_sub(e.stamp.as_nanos()) as f64;
        let w = decay(elapsed / tau);
        let current = e.latency * w;
        e.latency = if sample > current {
            sample
        } else {
            current + (sample - current) * (1.0 - w)
        };
        e.stamp = now;
        match outcome {
            Outcome::Success => self.succeeded(pick.slot, now),
            Outcome::Failure => self.failed(pick.slot, now),
        }
        self.forget_if_drained(pick.slot);
        Ok(())
    }

    /// Gives a pick back whose request never reached the endpoint (cancelled,
    /// or refused before it was sent): no sample, no outcome. A probe
    /// cancelled goes to the next request.
    pub fn cancel(&mut self, pick: Pick, now: Instant) -> Result<(), BalanceError> {
        self.tick(now);
        let e = self.entry_of(&pick)?;
        e.outstanding -= 1;
        if pick.probe && matches!(e.health, Health::Probing { out: true }) {
            e.health = Health::Probing { out: false };
            self.probes.push_front(pick.slot);
        }
        self.forget_if_drained(pick.slot);
        Ok(())
    }

    /// A connect to the endpoint failed: a failure, as a failed request is.
    pub fn connect_failed(&mut self, key: &K, now: Instant) -> Result<(), BalanceError> {
        let now = self.tick(now);
        let slot = *self.index.get(key).ok_or(BalanceError::UnknownEndpoint)?;
        self.failed(slot, now);
        Ok(())
    }

    /// A connect to the endpoint succeeded after `took`: its connect-time
    /// estimate moves a quarter of the way to it.
    pub fn connected(&mut self, key: &K, now: Instant, took: Duration) -> Result<(), BalanceError> {
        self.tick(now);
        let slot = *self.index.get(key).ok_or(BalanceError::UnknownEndpoint)?;
        let e = &mut self.entries[slot as usize];
        e.connect += (nanos(took) - e.connect) / 4.0;
        Ok(())
    }

    /// Makes what is due by `now` happen: ejections that ended start their
    /// probes, readmitted endpoints that stayed healthy count again. Every
    /// other input does this too; call it at [`poll_timeout`](Balancer::poll_timeout)
    /// for the events to come on time when no request comes.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        if now >= self.wake {
            self.refresh(now);
        }
    }
}

/// Outputs and getters.
impl<K: Hash + Eq + Clone> Balancer<K> {
    /// The next event, in the order they happened.
    pub fn poll_event(&mut self) -> Option<BalanceEvent<K>> {
        self.events.pop_front()
    }

    /// The next instant something changes by itself; `None` while nothing
    /// is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.wake != Instant::MAX).then_some(self.wake)
    }

    /// The endpoint a pick names, while the balancer holds it.
    pub fn key(&self, pick: &Pick) -> Option<&K> {
        let e = self.entries.get(pick.slot as usize)?;
        (e.generation == pick.generation).then_some(&e.key)
    }

    /// What the balancer knows of an endpoint.
    pub fn endpoint(&self, key: &K) -> Option<EndpointInfo> {
        let e = &self.entries[*self.index.get(key)? as usize];
        let state = match e.health {
            _ if e.removed => EndpointState::Draining,
            Health::Healthy { since } => EndpointState::Healthy {
                counted: since.is_none(),
            },
            Health::Ejected { until } => EndpointState::Ejected { until },
            Health::Probing { .. } => EndpointState::Probing,
        };
        Some(EndpointInfo {
            endpoint: e.place,
            state,
            outstanding: e.outstanding,
            failures: e.failures,
            latency: Duration::from_nanos(e.estimate(self.now, self.tau) as u64),
        })
    }

    /// Every endpoint held (removed ones still draining among them), in a
    /// stable order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(_, e)| &e.key)
    }

    /// Endpoints ejected or probing now.
    pub fn ejected(&self) -> u32 {
        self.ejected
    }

    /// The most endpoints that may be ejected at once, with the endpoints
    /// held now (see [`Outliers::max_ejection_percent`](crate::Outliers)).
    pub fn ejection_cap(&self) -> u32 {
        let live = self.entries.iter().filter(|(_, e)| !e.removed).count() as u32;
        match self.config.outliers.max_ejection_percent {
            0 => 0,
            percent => (live * percent / 100).max(1).min(live),
        }
    }

    /// Each group's priority and load, in shares of 10,000, highest
    /// priority first: what a request's group is drawn by.
    pub fn loads(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.groups.iter().map(|g| (g.priority, g.load))
    }

    /// The latest time the balancer has been told.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Balance {
        &self.config
    }

    /// Checks what must always hold: the ejected count is what the endpoints
    /// say and within [`ejection_cap`](Balancer::ejection_cap); no removed
    /// endpoint can be chosen, nor an ejected one outside a group in panic;
    /// the groups' loads are what their health gives, so that a group below
    /// the first with endpoints has load only while the groups above it are
    /// under 100 % together.
    pub fn check_invariants(&self) -> Result<(), BalanceViolation> {
        let fail = |what: String| Err(BalanceViolation(what));
        let ejected = self
            .entries
            .iter()
            .filter(|(_, e)| !e.removed && e.is_ejected())
            .count() as u32;
        if ejected != self.ejected {
            return fail(format!(
                "{} ejected, {ejected} by the endpoints",
                self.ejected
            ));
        }
        if ejected > self.ejection_cap() {
            return fail(format!(
                "{ejected} ejected, above the cap of {}",
                self.ejection_cap()
            ));
        }
        for (slot, e) in self.entries.iter() {
            if self.index.get(&e.key) != Some(&(slot as u32)) {
                return fail(format!("endpoint {slot} is not indexed"));
            }
            if e.removed && e.outstanding == 0 {
                return fail(format!("endpoint {slot} is drained but held"));
            }
        }
        for &slot in &self.probes {
            let e = &self.entries[slot as usize];
            if e.removed || e.health != (Health::Probing { out: false }) {
                return fail(format!(
                    "endpoint {slot} is queued to probe as {:?}",
                    e.health
                ));
            }
        }
        let expected = self.groups_now();
        let mut above = 0u32;
        for (i, (g, want)) in self.groups.iter().zip(&expected).enumerate() {
            if (g.priority, g.health, g.load, g.panic)
                != (want.priority, want.health, want.load, want.panic)
                || g.members != want.members
            {
                return fail(format!(
                    "group {} is stale: {g:?}, not {want:?}",
                    g.priority
                ));
            }
            for &m in &g.members {
                let e = &self.entries[m as usize];
                if e.removed || (!g.panic && !matches!(e.health, Health::Healthy { .. })) {
                    return fail(format!("endpoint {m} may be chosen as {:?}", e.health));
                }
            }
            let any_health = self.groups.iter().any(|g| g.health > 0);
            if i > 0 && g.load > 0 && any_health && above >= WHOLE {
                return fail(format!(
                    "group {} has load below healthy groups",
                    g.priority
                ));
            }
            above = above.saturating_add(g.health);
        }
        if self.groups.len() != expected.len() {
            return fail("groups are stale".into());
        }
        Ok(())
    }
}

/// The decisions behind the inputs.
impl<K: Hash + Eq + Clone> Balancer<K> {
    fn tick(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    fn entry_of(&mut self, pick: &Pick) -> Result<&mut Entry<K>, BalanceError> {
        match self.entries.get_mut(pick.slot as usize) {
            Some(e) if e.generation == pick.generation && e.outstanding > 0 => Ok(e),
            _ => Err(BalanceError::StalePick),
        }
    }

    #[cold]
    fn draw_group(&mut self) -> Result<usize, BalanceError> {
        let r = self.rng.below_inclusive(u64::from(WHOLE - 1)) as u32;
        self.groups
            .iter()
            .position(|g| r < g.upto)
            .ok_or(BalanceError::NoEndpoint)
    }

    #[cold]
    fn probe(&mut self, now: Instant) -> Pick {
        let slot = self.probes.pop_front().expect("a probe is queued");
        let e = &mut self.entries[slot as usize];
        e.health = Health::Probing { out: true };
        e.outstanding += 1;
        Pick {
            slot,
            generation: e.generation,
            started: now,
            probe: true,
        }
    }

    fn succeeded(&mut self, slot: u32, now: Instant) {
        let e = &mut self.entries[slot as usize];
        e.failures = 0;
        if matches!(e.health, Health::Probing { out: true }) && !e.removed {
            e.health = Health::Healthy { since: Some(now) };
            e.readmitted = now;
            self.ejected -= 1;
            let key = e.key.clone();
            self.wake = self.wake.min(now + self.config.failover.failback_after);
            self.events.push_back(BalanceEvent::Readmitted { key });
            self.rebuild();
        }
    }

    fn failed(&mut self, slot: u32, now: Instant) {
        let Some(threshold) = self.config.outliers.consecutive_failures else {
            return;
        };
        let cap = self.ejection_cap();
        let e = &mut self.entries[slot as usize];
        e.failures = e.failures.saturating_add(1);
        if e.removed {
            return;
        }
        match e.health {
            Health::Probing { out: true } => self.eject(slot, now),
            Health::Healthy { .. } if e.failures >= threshold && self.ejected < cap => {
                self.ejected += 1;
                self.eject(slot, now);
            }
            _ => {}
        }
    }

    /// Ejects an endpoint (already counted in `ejected`) for its next term.
    fn eject(&mut self, slot: u32, now: Instant) {
        let outliers = self.config.outliers;
        let e = &mut self.entries[slot as usize];
        if matches!(e.health, Health::Healthy { .. }) {
            // Each base ejection time it stayed healthy forgives one ejection.
            let base = outliers.base_ejection.as_nanos().max(1);
            let healthy = now.saturating_duration_since(e.readmitted).as_nanos();
            let forgiven = u32::try_from(healthy / base).unwrap_or(u32::MAX);
            e.ejections = e.ejections.saturating_sub(forgiven);
        }
        e.ejections = e.ejections.saturating_add(1);
        let term = outliers
            .base_ejection
            .saturating_mul(e.ejections)
            .min(outliers.max_ejection);
        let until = now + term;
        e.health = Health::Ejected { until };
        let key = e.key.clone();
        self.wake = self.wake.min(until);
        self.events.push_back(BalanceEvent::Ejected { key, until });
        self.rebuild();
    }

    /// Past ejections end, readmitted endpoints that stayed healthy count.
    #[cold]
    fn refresh(&mut self, now: Instant) {
        let failback = self.config.failover.failback_after;
        let mut wake = Instant::MAX;
        let mut changed = false;
        for (slot, e) in self.entries.iter_mut() {
            match e.health {
                Health::Ejected { until } if until <= now => {
                    e.health = Health::Probing { out: false };
                    self.probes.push_back(slot as u32);
                    self.events
                        .push_back(BalanceEvent::Probing { key: e.key.clone() });
                }
                Health::Ejected { until } => wake = wake.min(until),
                Health::Healthy { since: Some(t) } if t + failback <= now => {
                    e.health = Health::Healthy { since: None };
                    changed = true;
                }
                Health::Healthy { since: Some(t) } => wake = wake.min(t + failback),
                _ => {}
            }
        }
        self.wake = wake;
        if changed {
            self.rebuild();
        }
    }

    /// Readmits ejected endpoints, those whose terms end first, while more
    /// are out than the cap allows (after endpoints were removed).
    fn enforce_cap(&mut self, now: Instant) {
        while self.ejected > self.ejection_cap() {
            let first = self
                .entries
                .iter()
                .filter(|(_, e)| !e.removed && e.is_ejected())
                .min_by_key(|(_, e)| match e.health {
                    Health::Ejected { until } => until,
                    _ => Instant::ZERO,
                })
                .map(|(slot, _)| slot as u32);
            let Some(slot) = first else { return };
            let e = &mut self.entries[slot as usize];
            e.health = Health::Healthy { since: Some(now) };
            e.readmitted = now;
            self.ejected -= 1;
            self.probes.retain(|&s| s != slot);
            self.wake = self.wake.min(now + self.config.failover.failback_after);
            let key = e.key.clone();
            self.events.push_back(BalanceEvent::Readmitted { key });
        }
    }

    fn forget_if_drained(&mut self, slot: u32) {
        let e = &self.entries[slot as usize];
        if e.removed && e.outstanding == 0 {
            self.forget(slot);
            self.rebuild();
        }
    }

    fn forget(&mut self, slot: u32) {
        let e = self.entries.remove(slot as usize);
        self.index.remove(&e.key);
        self.events.push_back(BalanceEvent::Drained { key: e.key });
    }

    /// Rebuilds the groups from the endpoints.
    #[cold]
    fn rebuild(&mut self) {
        self.groups = self.groups_now();
        let with_load = self.groups.iter().filter(|g| g.load > 0).count();
        self.single = match with_load {
            1 => self.groups.iter().position(|g| g.load > 0),
            _ => None,
        };
    }

    /// The groups as the endpoints make them now: members, health, loads.
    fn groups_now(&self) -> Vec<Group> {
        let mut priorities: Vec<u32> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.removed)
            .map(|(_, e)| e.place.priority)
            .collect();
        priorities.sort_unstable();
        priorities.dedup();
        let outliers = self.config.outliers;
        let overprovisioning = u64::from(self.config.failover.overprovisioning);
        let mut groups: Vec<Group> = priorities
            .into_iter()
            .map(|priority| {
                let (mut total, mut admitted, mut counted) = (0u64, 0u64, 0u64);
                for (_, e) in self.entries.iter() {
                    if e.removed || e.place.priority != priority {
                        continue;
                    }
                    let w = u64::from(e.place.weight);
                    total += w;
                    if let Health::Healthy { since } = e.health {
                        admitted += w;
                        if since.is_none() {
                            counted += w;
                        }
                    }
                }
                let health = (counted * overprovisioning * u64::from(WHOLE) / 100 / total)
                    .min(u64::from(WHOLE)) as u32;
                let panic = admitted * 100 < u64::from(outliers.panic_threshold) * total;
                Group {
                    priority,
                    health,
                    panic,
                    ..Group::default()
                }
            })
            .collect();
        // Loads: each group its health's share of what the ones above left;
        // scaled up to the whole when all together are under it.
        let mut left = WHOLE;
        for g in &mut groups {
            g.load = g.health.min(left);
            left -= g.load;
        }
        let sum: u64 = groups.iter().map(|g| u64::from(g.health)).sum();
        if left > 0 && sum > 0 {
            for g in &mut groups {
                g.load = (u64::from(g.health) * u64::from(WHOLE) / sum) as u32;
            }
        } else if sum == 0 {
            // No health anywhere: the first group takes everything, in panic.
            if let Some(first) = groups.first_mut() {
                first.load = WHOLE;
                first.panic = true;
            }
        }
        let mut upto = 0;
        for g in &mut groups {
            upto += g.load;
            g.upto = upto;
        }
        // Rounding down may leave a share or two: the last group with load has it.
        if let Some(last) = groups.iter_mut().rev().find(|g| g.load > 0) {
            last.upto = WHOLE;
        }
        for g in &mut groups {
            let mut sum = 0u64;
            for (slot, e) in self.entries.iter() {
                let eligible = !e.removed
                    && e.place.priority == g.priority
                    && (g.panic || matches!(e.health, Health::Healthy { .. }));
                if eligible {
                    sum += u64::from(e.place.weight);
                    g.members.push(slot as u32);
                    g.cumulative.push(sum);
                }
            }
            let first = g
                .members
                .first()
                .map(|&m| self.entries[m as usize].place.weight);
            g.uniform = g
                .members
                .iter()
                .all(|&m| Some(self.entries[m as usize].place.weight) == first);
        }
        groups
    }
}

/// Two different members of a group, drawn by weight.
#[inline]
fn draw_two(group: &Group, n: usize, rng: &mut Rng) -> (u32, u32) {
    let (i, j) = if group.uniform {
        let last = n as u64 - 1;
        (
            rng.below_inclusive(last) as usize,
            rng.below_inclusive(last) as usize,
        )
    } else {
        let total = group.cumulative[n - 1] - 1;
        let mut draw = || {
            let r = rng.below_inclusive(total);
            group.cumulative.partition_point(|&c| c <= r)
        };
        (draw(), draw())
    };
    let j = if i == j { (j + 1) % n } else { j };
    (group.members[i], group.members[j])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn always(_: &&str) -> bool {
        true
    }

    fn balancer(endpoints: &[(&'static str, u32)]) -> Balancer<&'static str> {
        let mut b = Balancer::new(Balance::default()).unwrap();
        for &(key, priority) in endpoints {
            b.insert(key, Endpoint::new(priority, 1), Instant::ZERO)
                .unwrap();
        }
        b.check_invariants().unwrap();
        b
    }

    /// Runs `n` requests one after the other, each answered by `answer`,
    /// and counts where they went.
    fn run(
        b: &mut Balancer<&'static str>,
        from: u64,
        n: u64,
        answer: impl Fn(&str) -> (u64, Outcome),
    ) -> HashMap<&'static str, u64> {
        let mut counts = HashMap::new();
        let mut now = ms(from);
        for _ in 0..n {
            let pick = b.choose(now, &always).unwrap();
            let key = *b.key(&pick).unwrap();
            *counts.entry(key).or_default() += 1;
            let (took, outcome) = answer(key);
            now += Duration::from_millis(took);
            b.complete(pick, now, outcome).unwrap();
            b.check_invariants().unwrap();
        }
        counts
    }

    #[test]
    fn the_slow_endpoint_gets_little() {
        let mut b = balancer(&[("a", 0), ("b", 0), ("slow", 0)]);
        let counts = run(&mut b, 0, 3000, |k| {
            (if k == "slow" { 50 } else { 5 }, Outcome::Success)
        });
        assert!(counts.get("slow").copied().unwrap_or(0) < 300, "{counts:?}");
    }

    #[test]
    fn capacity_now_is_preferred() {
        let mut b = balancer(&[("cold", 0), ("warm", 0)]);
        let warm_only = |k: &&str| *k == "warm";
        for i in 0..100 {
            let pick = b.choose(ms(i), &warm_only).unwrap();
            assert_eq!(b.key(&pick), Some(&"warm"));
            b.complete(pick, ms(i), Outcome::Success).unwrap();
        }
    }

    #[test]
    fn failures_eject_and_a_probe_readmits() {
        let mut b = balancer(&[("a", 0), ("b", 0), ("bad", 0)]);
        run(&mut b, 0, 200, |k| {
            (
                1,
                if k == "bad" {
                    Outcome::Failure
                } else {
                    Outcome::Success
                },
            )
        });
        let until = match b.endpoint(&"bad").unwrap().state {
            EndpointState::Ejected { until } => until,
            other => panic!("not ejected: {other:?}"),
        };
        assert!(matches!(
            b.poll_event(),
            Some(BalanceEvent::Ejected { key: "bad", .. })
        ));
        assert_eq!(b.poll_timeout(), Some(until));
        // Ejected, it gets nothing.
        let counts = run(&mut b, 300, 100, |_| (1, Outcome::Success));
        assert_eq!(counts.get("bad"), None);
        // Its term ends: the next request is its probe.
        let pick = b.choose(until, &always).unwrap();
        assert!(pick.is_probe());
        assert_eq!(b.key(&pick), Some(&"bad"));
        b.complete(pick, until + Duration::from_millis(1), Outcome::Success)
            .unwrap();
        assert_eq!(
            b.endpoint(&"bad").unwrap().state,
            EndpointState::Healthy { counted: false }
        );
        b.check_invariants().unwrap();
    }

    #[test]
    fn a_failed_probe_ejects_for_longer() {
        let mut b = balancer(&[("a", 0), ("bad", 0)]);
        for _ in 0..5 {
            b.connect_failed(&"bad", ms(0)).unwrap();
        }
        let first = ms(0) + Balance::default().outliers.base_ejection;
        assert_eq!(
            b.endpoint(&"bad").unwrap().state,
            EndpointState::Ejected { until: first }
        );
        let pick = b.choose(first, &always).unwrap();
        assert!(pick.is_probe());
        b.complete(pick, first, Outcome::Failure).unwrap();
        let second = first + Balance::default().outliers.base_ejection * 2;
        assert_eq!(
            b.endpoint(&"bad").unwrap().state,
            EndpointState::Ejected { until: second }
        );
        b.check_invariants().unwrap();
    }

    #[test]
    fn ejections_stop_at_the_cap() {
        let mut b = balancer(&[("a", 0), ("b", 0), ("c", 0), ("d", 0)]);
        for key in ["a", "b", "c"] {
            for _ in 0..5 {
                b.connect_failed(&key, ms(0)).unwrap();
            }
        }
        assert_eq!(b.ejection_cap(), 2);
        assert_eq!(b.ejected(), 2);
        assert!(matches!(
            b.endpoint(&"c").unwrap().state,
            EndpointState::Healthy { .. }
        ));
        b.check_invariants().unwrap();
    }

    #[test]
    fn traffic_spills_to_the_next_group_and_comes_back() {
        let mut b = balancer(&[("a", 0), ("b", 0), ("c", 0), ("x", 1), ("y", 1), ("z", 1)]);
        assert_eq!(b.loads().collect::<Vec<_>>(), [(0, WHOLE), (1, 0)]);
        // One of three down: 2/3 × 1.4 = 93.33 % stays.
        for _ in 0..5 {
            b.connect_failed(&"a", ms(0)).unwrap();
        }
        assert_eq!(b.loads().collect::<Vec<_>>(), [(0, 9333), (1, 667)]);
        // Two of three: 1/3 × 1.4 = 46.66 % stays.
        for _ in 0..5 {
            b.connect_failed(&"b", ms(0)).unwrap();
        }
        assert_eq!(b.loads().collect::<Vec<_>>(), [(0, 4666), (1, 5334)]);
        b.check_invariants().unwrap();
        // Both probed back: they take requests at once, and count again once
        // they have stayed healthy for the failback time.
        let end = ms(0) + Balance::default().outliers.base_ejection;
        for _ in 0..2 {
            let pick = b.choose(end, &always).unwrap();
            assert!(pick.is_probe());
            b.complete(pick, end, Outcome::Success).unwrap();
        }
        assert_eq!(b.loads().collect::<Vec<_>>(), [(0, 4666), (1, 5334)]);
        let back = end + Balance::default().failover.failback_after;
        b.handle_timeout(back);
        assert_eq!(b.loads().collect::<Vec<_>>(), [(0, WHOLE), (1, 0)]);
        b.check_invariants().unwrap();
    }

    #[test]
    fn a_removed_endpoint_drains() {
        let mut b = balancer(&[("a", 0), ("gone", 0)]);
        let only_gone = |k: &&str| *k == "gone";
        let pick = b.choose(ms(0), &only_gone).unwrap();
        assert_eq!(b.key(&pick), Some(&"gone"));
        b.remove(&"gone", ms(1)).unwrap();
        assert_eq!(b.endpoint(&"gone").unwrap().state, EndpointState::Draining);
        for i in 0..50 {
            let other = b.choose(ms(1 + i), &only_gone).unwrap();
            assert_eq!(b.key(&other), Some(&"a"));
            b.cancel(other, ms(1 + i)).unwrap();
        }
        let stale = Pick { ..pick };
        b.complete(pick, ms(100), Outcome::Success).unwrap();
        assert_eq!(b.poll_event(), Some(BalanceEvent::Drained { key: "gone" }));
        assert_eq!(b.endpoint(&"gone"), None);
        assert_eq!(
            b.complete(stale, ms(100), Outcome::Success),
            Err(BalanceError::StalePick)
        );
        b.check_invariants().unwrap();
    }

    #[test]
    fn a_lone_endpoint_ejected_is_still_chosen() {
        let mut b = balancer(&[("only", 0)]);
        for _ in 0..5 {
            b.connect_failed(&"only", ms(0)).unwrap();
        }
        assert_eq!(b.ejected(), 1);
        let pick = b.choose(ms(1), &always).unwrap();
        assert_eq!(b.key(&pick), Some(&"only"));
        b.check_invariants().unwrap();
    }

    #[test]
    fn weights_share_the_traffic() {
        let mut b = Balancer::new(Balance::default()).unwrap();
        b.insert("heavy", Endpoint::new(0, 3), ms(0)).unwrap();
        b.insert("light", Endpoint::new(0, 1), ms(0)).unwrap();
        let counts = run(&mut b, 0, 4000, |_| (1, Outcome::Success));
        let heavy = counts["heavy"] as f64 / 4000.0;
        assert!(heavy > 0.6, "{counts:?}");
    }

    #[test]
    fn errors_change_nothing() {
        let mut b = balancer(&[]);
        assert_eq!(b.choose(ms(0), &always), Err(BalanceError::NoEndpoint));
        assert_eq!(b.remove(&"x", ms(0)), Err(BalanceError::UnknownEndpoint));
        assert_eq!(
            b.insert("x", Endpoint::new(0, 0), ms(0)),
            Err(BalanceError::ZeroWeight)
        );
        assert_eq!(
            b.connect_failed(&"x", ms(0)),
            Err(BalanceError::UnknownEndpoint)
        );
        b.check_invariants().unwrap();
    }

    #[test]
    fn decay_is_close_to_exp() {
        for x in [0.0, 0.01, 0.1, 0.3, 0.6] {
            let ratio = decay(x) / (-x).exp();
            assert!((ratio - 1.0).abs() < 0.02, "{x}: {ratio}");
        }
        assert!(decay(3.0) < 0.1 && decay(100.0) > 0.0);
    }
}
