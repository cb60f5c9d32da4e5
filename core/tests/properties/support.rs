//! The shared harness of the property tests: a small reference model of the pool,
//! a driver that feeds the real core and the model the same inputs, and the checks
//! of every invariant of `docs/architecture.md` ("What always holds"), run after every step.
//!
//! ## The model
//!
//! The model does not make the core's decisions. It keeps the bookkeeping a careful
//! caller could keep from the outside (per key a FIFO of waiter ids; every
//! connection with its state, mode, leases, capacity and request count; the counts
//! of everything that happened) and, for each output of the core, checks that it
//! was allowed at that moment: a grant goes to the head waiter of its key, onto a
//! ready connection with a free slot; an open stays within the limits, the backoff
//! and the circuit; a close names a reason that holds; a rejection names a reason
//! that holds; every id is fresh. After each step (an input, the actions it
//! produced, and the timers that became due) it checks what must then be true:
//! nothing overdue is left (deadlines, idle and lifetime limits, health checks), no
//! key with waiters has free capacity or sits idle with room to open, the core's
//! gauges, counters and `conn_info` equal the model's, and the core will wake up in
//! time for the next deadline the model knows of.
//!
//! Where the core decides something the outside cannot predict exactly (lifetime
//! and backoff jitter), the model bounds it: an expiry is allowed from
//! `max_lifetime - lifetime_jitter` on and required from `max_lifetime` on; an
//! open after a connect failure is refused before half the backoff and required
//! after all of it.
//!
//! ## Operations
//!
//! Generated operations name handles by [`Index`] into the model's live sets (the
//! connecting connections, the live leases, the waiting requests...), so that most
//! operations are meaningful whatever came before and shrinking keeps them so.
//! [`Op::Misuse`] passes stale, forged or wrong-state handles to every input and
//! checks that the input is refused and changes nothing.
//!
//! Each case ends by driving the pool to quiescence (connect what is connecting,
//! release every lease, answer health checks, let time pass beyond every deadline)
//! and checking that no request was lost and nothing leaked.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::hash::Hash;
use std::ops::RangeInclusive;
use std::time::Duration;

use muxpool_core::{
    Acquire, AcquireOptions, Action, Backoff, Circuit, CloseReason, ConnId, ConnInfo, ConnState,
    ConnectFailure, Connected, EventError, HandleKind, HealthCheck, Instant, Lease, LeaseId, Mode,
    Pool, PoolConfig, RejectReason, Release, Saturation, Shutdown, Stats, WaiterId,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

/// Keys are small numbers; the pool is driven with `K` made from them.
pub type Key = u8;

/// Keys are `0..MAX_KEYS` at most.
pub const MAX_KEYS: Key = 3;

/// Fails the current check with a message.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

// ------------------------------------------------------------------ generation

/// What a connect turns out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// HTTP/1.1: exclusive, no ping.
    Http1,
    /// WebSocket: exclusive, with ping.
    WebSocket,
    /// HTTP/2 with this peer stream limit, with ping.
    Http2(u32),
}

impl Proto {
    fn connected(self) -> Connected {
        match self {
            Proto::Http1 => Connected::http1(),
            Proto::WebSocket => Connected::websocket(),
            Proto::Http2(n) => Connected::http2(n),
        }
    }
}

/// Which handle a misuse names.
#[derive(Debug, Clone, Copy)]
pub enum Pick {
    /// One the core has finished with (a released lease, an answered waiter, a
    /// closed connection, a closed connection that still has leases out).
    Dead(Index),
    /// A live connection in a state the input does not apply to.
    Live(Index),
    /// One that was never issued.
    Forged(u32, u64),
}

/// An input given a handle it must refuse.
#[derive(Debug, Clone, Copy)]
pub enum Misuse {
    Cancel,
    Release(Release),
    Connected(Proto),
    ConnectFailed,
    PeerMaxStreams(u32),
    GoingAway,
    TransportClosed,
    HealthOk,
    Suspect,
}

/// One generated operation. Handles are named by index into the model's live sets.
#[derive(Debug, Clone)]
pub enum Op {
    /// A request on key `key % keys`, with a deadline `ms` after now (0 = already due).
    Acquire { key: Key, deadline_ms: Option<u64> },
    /// Cancel a waiting request.
    Cancel(Index),
    /// Release a live lease.
    Release(Index, Release),
    /// A connecting connection comes up.
    Connected(Index, Proto),
    /// A connecting connection fails, for good if `true`.
    ConnectFailed(Index, bool),
    /// The peer of a multiplexed connection changes its stream limit.
    PeerMaxStreams(Index, u32),
    /// The peer of a connected connection goes away.
    GoingAway(Index),
    /// The transport of an open connection closes.
    TransportClosed(Index),
    /// A health check is answered.
    HealthOk(Index),
    /// A request on a connection got no answer in time.
    Suspect(Index),
    /// Time passes by this many milliseconds; `handle_timeout` is called.
    Advance(u64),
    /// Time jumps to the core's own next deadline; `handle_timeout` is called.
    AdvanceToDeadline,
    /// The pool shuts down.
    Shutdown(Shutdown),
    /// Key `key % keys`'s minimum of idle connections is set, or cleared.
    SetMinIdle(Key, Option<u32>),
    /// An input with a stale, forged or wrong-state handle.
    Misuse(Misuse, Pick),
}

/// What a test file stresses; picks config ranges and operation weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Everything, evenly.
    General,
    /// Few connections, several keys, long waits: fairness, progress, eviction.
    Contention,
    /// Idle timeout, lifetime, request limits, going away, health checks.
    Lifecycle,
    /// Connect failures: backoff and the circuit breaker.
    Circuit,
    /// Mostly stale, forged and wrong-state handles.
    Handles,
    /// Pre-warming (`min_idle_per_key > 0`).
    MinIdle,
}

/// One generated test case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Keys used: `0..keys`.
    pub keys: u8,
    /// The pool's configuration.
    pub config: PoolConfig,
    /// What every connection made while settling at the end comes up as.
    pub settle_proto: Proto,
    /// The operations.
    pub ops: Vec<Op>,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn opt_ms(
    range: RangeInclusive<u64>,
    none_weight: u32,
    some_weight: u32,
) -> BoxedStrategy<Option<Duration>> {
    prop_oneof![none_weight => Just(None), some_weight => range.prop_map(|v| Some(ms(v)))].boxed()
}

/// A small configuration, so that limits, timeouts and interleavings are reached.
pub fn config(profile: Profile) -> BoxedStrategy<PoolConfig> {
    let lifecycle = profile == Profile::Lifecycle;
    let circuit = profile == Profile::Circuit;
    let contention = profile == Profile::Contention;
    let limits = (
        1u32..=4,                                     // per key
        if contention { 0u32..=2 } else { 0u32..=4 }, // total above per key
        1u32..=3,                                     // connecting per key
        if contention { 3u32..=8 } else { 1u32..=6 }, // waiters per key
        1u32..=4,                                     // streams per connection
        prop_oneof![3 => Just(Saturation::Spill), 1 => Just(Saturation::Queue)],
        if profile == Profile::MinIdle {
            1u32..=2
        } else {
            0u32..=0
        },
    );
    let times = (
        if contention {
            200u64..=2000
        } else {
            20u64..=400
        }, // acquire timeout
        10u64..=300, // connect timeout
        if lifecycle {
            opt_ms(20..=400, 1, 4)
        } else {
            opt_ms(20..=500, 1, 1)
        },
        if lifecycle {
            opt_ms(50..=1000, 1, 4)
        } else {
            opt_ms(100..=1500, 2, 1)
        },
        0u64..=100, // jitter, as a percentage below a third of the lifetime
        if lifecycle {
            prop_oneof![1 => Just(None), 3 => (1u64..=4).prop_map(Some)].boxed()
        } else {
            prop_oneof![3 => Just(None), 1 => (1u64..=5).prop_map(Some)].boxed()
        },
        50u64..=1000, // forget key after
    );
    let resilience = (
        1u64..=40, // backoff initial
        1u32..=8,  // backoff max, as a multiple of initial
        if circuit {
            prop_oneof![1 => Just(None), 4 => (1u32..=3).prop_map(Some)].boxed()
        } else {
            prop_oneof![1 => Just(None), 1 => (1u32..=4).prop_map(Some)].boxed()
        },
        10u64..=400, // open for
        if lifecycle {
            opt_ms(20..=300, 1, 3)
        } else {
            opt_ms(30..=300, 2, 1)
        },
        5u64..=100, // health check timeout
        any::<u64>(),
    );
    (limits, times, resilience)
        .prop_map(|(l, t, r)| {
            let mut c = PoolConfig::default();
            c.max_connections_per_key = l.0;
            c.max_connections = l.0 + l.1;
            c.max_connecting_per_key = l.2;
            c.max_waiters_per_key = l.3;
            c.max_streams_per_connection = l.4;
            c.saturation = l.5;
            c.min_idle_per_key = l.6.min(l.0);
            c.acquire_timeout = ms(t.0);
            c.connect_timeout = ms(t.1);
            c.idle_timeout = t.2;
            c.max_lifetime = t.3;
            c.lifetime_jitter =
                t.3.map_or(Duration::ZERO, |life| life / 3 * t.4 as u32 / 101);
            c.max_requests_per_connection = t.5;
            c.forget_key_after = ms(t.6);
            c.backoff = Backoff::new(ms(r.0), ms(r.0 * u64::from(r.1)));
            c.circuit = Circuit::new(r.2, ms(r.3)).failing_for(ms(r.3 / 2));
            c.health_check = HealthCheck::new(r.4, ms(r.5));
            c.seed = r.6;
            c.validate().expect("generated configs are valid");
            c
        })
        .boxed()
}

fn proto() -> BoxedStrategy<Proto> {
    prop_oneof![
        3 => Just(Proto::Http1),
        1 => Just(Proto::WebSocket),
        4 => (0u32..=5).prop_map(Proto::Http2),
    ]
    .boxed()
}

fn release_how() -> BoxedStrategy<Release> {
    prop_oneof![5 => Just(Release::Reuse), 1 => Just(Release::Close)].boxed()
}

fn advance() -> BoxedStrategy<u64> {
    prop_oneof![3 => 0u64..=5, 4 => 5u64..=60, 3 => 60u64..=400, 1 => 400u64..=3000].boxed()
}

fn misuse() -> BoxedStrategy<(Misuse, Pick)> {
    let kind = prop_oneof![
        Just(Misuse::Cancel),
        release_how().prop_map(Misuse::Release),
        proto().prop_map(Misuse::Connected),
        Just(Misuse::ConnectFailed),
        (0u32..=5).prop_map(Misuse::PeerMaxStreams),
        Just(Misuse::GoingAway),
        Just(Misuse::TransportClosed),
        Just(Misuse::HealthOk),
        Just(Misuse::Suspect),
    ];
    let pick = prop_oneof![
        3 => any::<Index>().prop_map(Pick::Dead),
        2 => any::<Index>().prop_map(Pick::Live),
        1 => (prop_oneof![0u32..=8, Just(u32::MAX)], prop_oneof![Just(0u64), 1u64 << 40..=u64::MAX])
            .prop_map(|(i, g)| Pick::Forged(i, g)),
    ];
    (kind, pick).boxed()
}

/// Operation weights: acquire, release, connected, connect failed, cancel, peer
/// limit, going away, transport closed, health ok, advance, advance to deadline,
/// shutdown, misuse. Shutdown ends the interesting part of a case, so it is rare:
/// about one case in six shuts down.
fn weights(profile: Profile) -> [u32; 13] {
    let w = match profile {
        Profile::General => [20, 14, 12, 4, 3, 3, 2, 2, 4, 8, 8, 0, 3],
        Profile::Contention => [24, 18, 14, 1, 3, 1, 1, 1, 2, 5, 5, 0, 1],
        Profile::Lifecycle => [14, 12, 12, 2, 2, 3, 4, 3, 6, 12, 12, 0, 1],
        Profile::Circuit => [16, 8, 8, 14, 2, 1, 1, 4, 2, 8, 10, 0, 1],
        Profile::Handles => [12, 10, 10, 3, 3, 2, 2, 2, 3, 5, 5, 0, 30],
        Profile::MinIdle => [16, 12, 14, 3, 2, 2, 2, 2, 4, 10, 10, 0, 1],
    };
    let mut scaled = w.map(|x| x * 4);
    scaled[11] = 1;
    scaled
}

/// One operation.
pub fn op(profile: Profile) -> BoxedStrategy<Op> {
    let w = weights(profile);
    let deadline = prop_oneof![
        6 => Just(None),
        1 => Just(Some(0)),
        2 => (1u64..=400).prop_map(Some),
    ];
    let ops = prop_oneof![
        w[0] => (0..MAX_KEYS, deadline).prop_map(|(key, deadline_ms)| Op::Acquire { key, deadline_ms }),
        w[1] => (any::<Index>(), release_how()).prop_map(|(i, how)| Op::Release(i, how)),
        w[2] => (any::<Index>(), proto()).prop_map(|(i, p)| Op::Connected(i, p)),
        w[3] => (any::<Index>(), prop::bool::weighted(0.15)).prop_map(|(i, p)| Op::ConnectFailed(i, p)),
        w[4] => any::<Index>().prop_map(Op::Cancel),
        w[5] => (any::<Index>(), 0u32..=5).prop_map(|(i, n)| Op::PeerMaxStreams(i, n)),
        w[6] => any::<Index>().prop_map(Op::GoingAway),
        w[7] => any::<Index>().prop_map(Op::TransportClosed),
        w[8] => any::<Index>().prop_map(Op::HealthOk),
        w[8] / 2 + 1 => any::<Index>().prop_map(Op::Suspect),
        w[9] => advance().prop_map(Op::Advance),
        w[10] => Just(Op::AdvanceToDeadline),
        w[11] => prop_oneof![Just(Shutdown::Graceful), Just(Shutdown::Immediate)].prop_map(Op::Shutdown),
        w[12] => misuse().prop_map(|(m, p)| Op::Misuse(m, p)),
    ];
    if profile != Profile::MinIdle {
        return ops.boxed();
    }
    // Run-time minimums, set and cleared, beside the configured one.
    let min = prop_oneof![1 => Just(None), 3 => (0u32..=5).prop_map(Some)];
    prop_oneof![
        24 => ops,
        1 => (0..MAX_KEYS, min).prop_map(|(key, min)| Op::SetMinIdle(key, min)),
    ]
    .boxed()
}

/// A whole case: keys, configuration and `len` operations.
pub fn case(profile: Profile, len: RangeInclusive<usize>) -> BoxedStrategy<Case> {
    let keys = if profile == Profile::Contention {
        2..=MAX_KEYS
    } else {
        1..=MAX_KEYS
    };
    (
        keys,
        config(profile),
        // Settling needs connections that can serve: a peer limit of at least one.
        prop_oneof![
            Just(Proto::Http1),
            Just(Proto::WebSocket),
            (1u32..=5).prop_map(Proto::Http2)
        ],
        proptest::collection::vec(op(profile), len),
    )
        .prop_map(|(keys, config, settle_proto, ops)| Case {
            keys,
            config,
            settle_proto,
            ops,
        })
        .boxed()
}

/// The proptest configuration of a test file: `default_cases` cases unless
/// `PROPTEST_CASES` says otherwise, and failures persisted next to the test file,
/// `circuit.rs`'s in `circuit.proptest-regressions` (unless
/// `PROPTEST_DISABLE_FAILURE_PERSISTENCE` is set), and replayed from there first.
///
/// Every case runs in a forked child with a time limit of `timeout_ms` (unless
/// `PROPTEST_TIMEOUT` says otherwise; 0 runs in process), so that an input that
/// makes the core loop forever fails, and shrinks, instead of hanging the suite.
pub fn proptest_config(default_cases: u32, timeout_ms: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    if std::env::var_os("PROPTEST_TIMEOUT").is_none() {
        config.timeout = timeout_ms;
    }
    // proptest's own default, `SourceParallel`, finds this binary's `main.rs`
    // and would keep the failures in `core/tests/proptest-regressions/*.txt`
    // instead, away from their tests.
    if config.failure_persistence.is_some() {
        config.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        )));
    }
    config
}

// ----------------------------------------------------------------------- model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MState {
    Connecting,
    Ready,
    Checking,
    Draining,
    /// Closed with leases still out (the core keeps a tombstone until they return).
    Closed,
}

#[derive(Debug, Clone)]
struct MConn {
    key: Key,
    state: MState,
    connected: bool,
    exclusive: bool,
    peer_limit: u32,
    health_checks: bool,
    leases: BTreeSet<LeaseId>,
    requests: u64,
    opened_at: Instant,
    connected_at: Instant,
    idle_since: Instant,
    seen_at: Instant,
    check_sent_at: Instant,
    /// A health check is out on it: sent, not yet answered. It stays out when
    /// the connection starts draining, and closes it at its deadline.
    check_out: bool,
    /// `suspect` was accepted on it in this step: a health check is due at once.
    suspected: bool,
    drain_reason: Option<CloseReason>,
    going_away: bool,
    not_reusable: bool,
    probe: bool,
    /// When it last became ready with no lease (for least-recently-used eviction).
    lru_stamp: u64,
}

impl MConn {
    fn capacity(&self, cfg: &PoolConfig) -> u32 {
        if !self.connected {
            0
        } else if self.exclusive {
            1
        } else {
            self.peer_limit.min(cfg.max_streams_per_connection)
        }
    }

    fn is_open(&self) -> bool {
        self.state != MState::Closed
    }

    fn is_idle(&self) -> bool {
        matches!(self.state, MState::Ready | MState::Checking) && self.leases.is_empty()
    }

    fn has_room(&self, cfg: &PoolConfig) -> bool {
        self.state == MState::Ready && (self.leases.len() as u32) < self.capacity(cfg)
    }

    fn lease_count(&self) -> u32 {
        self.leases.len() as u32
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MCircuit {
    Closed,
    Open { until: Instant },
    HalfOpen { probe: Option<ConnId> },
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Counters {
    grants: u64,
    reused_grants: u64,
    waited_grants: u64,
    wait_time: Duration,
    cancelled: u64,
    rejections: [u64; 6],
    connects: u64,
    connect_failures: u64,
    closes: [u64; 10],
    transport_closes: u64,
}

impl Counters {
    fn of(s: &Stats) -> Counters {
        Counters {
            grants: s.grants,
            reused_grants: s.reused_grants,
            waited_grants: s.waited_grants,
            wait_time: s.wait_time,
            cancelled: s.cancelled,
            rejections: RejectReason::ALL.map(|r| s.rejections[r]),
            connects: s.connects,
            connect_failures: s.connect_failures,
            closes: CloseReason::ALL.map(|r| s.closes[r]),
            transport_closes: s.transport_closes,
        }
    }
}

fn reject_slot(r: RejectReason) -> usize {
    RejectReason::ALL
        .iter()
        .position(|x| *x == r)
        .expect("every reason is listed")
}

fn close_slot(r: CloseReason) -> usize {
    CloseReason::ALL
        .iter()
        .position(|x| *x == r)
        .expect("every reason is listed")
}

#[derive(Debug, Clone)]
struct MKey {
    /// The core holds state for this key.
    exists: bool,
    waiters: VecDeque<WaiterId>,
    failures: u32,
    /// After a connect failure: no open before the first instant, and one is due
    /// (if wanted) from the second on.
    backoff: Option<(Instant, Instant)>,
    circuit: MCircuit,
    /// Whether a connection of the key came up multiplexed last (None: never).
    learned: Option<bool>,
    empty_since: Option<Instant>,
    counters: Counters,
    /// When the current run of failed connects began, and when the last of
    /// them failed.
    failing_since: Option<Instant>,
    last_failure: Option<Instant>,
    /// A connect failed this step: waiters due before this instant (the
    /// latest the next connect can come) may be refused with `ConnectFailed`.
    failed_reject_before: Option<Instant>,
    tripped_at_step: Option<usize>,
    /// Its minimum of idle connections, when set at run time.
    min_idle: Option<u32>,
}

impl Default for MKey {
    fn default() -> Self {
        MKey {
            exists: false,
            waiters: VecDeque::new(),
            failures: 0,
            backoff: None,
            circuit: MCircuit::Closed,
            learned: None,
            empty_since: None,
            counters: Counters::default(),
            failing_since: None,
            last_failure: None,
            failed_reject_before: None,
            tripped_at_step: None,
            min_idle: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct MWaiter {
    key: Key,
    deadline: Instant,
    since: Instant,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Granted,
    Rejected(RejectReason),
    Cancelled,
}

/// The reference model.
#[derive(Debug)]
pub struct Model {
    cfg: PoolConfig,
    keys: BTreeMap<Key, MKey>,
    conns: BTreeMap<ConnId, MConn>,
    waiters: BTreeMap<WaiterId, MWaiter>,
    leases: BTreeMap<LeaseId, Lease>,
    ends: BTreeMap<WaiterId, End>,
    dead_waiters: Vec<WaiterId>,
    dead_leases: Vec<Lease>,
    dead_conns: Vec<ConnId>,
    issued_conns: BTreeSet<ConnId>,
    issued_leases: BTreeSet<LeaseId>,
    totals: Counters,
    shutdown: Option<Shutdown>,
    shutdown_step: Option<usize>,
    stamp: u64,
    step: usize,
    now: Instant,
}

const DEAD_KEPT: usize = 64;

fn keep_last<T>(v: &mut Vec<T>, item: T) {
    v.push(item);
    if v.len() > 2 * DEAD_KEPT {
        v.drain(..DEAD_KEPT);
    }
}

impl Model {
    fn new(cfg: PoolConfig) -> Model {
        Model {
            cfg,
            keys: BTreeMap::new(),
            conns: BTreeMap::new(),
            waiters: BTreeMap::new(),
            leases: BTreeMap::new(),
            ends: BTreeMap::new(),
            dead_waiters: Vec::new(),
            dead_leases: Vec::new(),
            dead_conns: Vec::new(),
            issued_conns: BTreeSet::new(),
            issued_leases: BTreeSet::new(),
            totals: Counters::default(),
            shutdown: None,
            shutdown_step: None,
            stamp: 0,
            step: 0,
            now: Instant::ZERO,
        }
    }

    fn key(&mut self, key: Key) -> &mut MKey {
        self.keys.entry(key).or_default()
    }

    fn count(&mut self, key: Option<Key>, f: impl Fn(&mut Counters)) {
        if let Some(key) = key {
            f(&mut self.key(key).counters);
        }
        f(&mut self.totals);
    }

    fn next_stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }

    fn conns_of(&self, key: Key) -> impl Iterator<Item = (&ConnId, &MConn)> {
        self.conns.iter().filter(move |(_, c)| c.key == key)
    }

    fn open_count(&self, key: Option<Key>) -> u32 {
        self.conns
            .values()
            .filter(|c| c.is_open() && key.is_none_or(|k| c.key == k))
            .count() as u32
    }

    fn connecting_count(&self, key: Key) -> u32 {
        self.conns_of(key)
            .filter(|(_, c)| c.state == MState::Connecting)
            .count() as u32
    }

    fn idle_count(&self, key: Key) -> u32 {
        self.conns_of(key).filter(|(_, c)| c.is_idle()).count() as u32
    }

    fn has_room(&self, key: Key) -> bool {
        self.conns_of(key).any(|(_, c)| c.has_room(&self.cfg))
    }

    fn key_is_empty(&self, key: Key) -> bool {
        self.conns_of(key).next().is_none()
            && self
                .keys
                .get(&key)
                .is_none_or(|k| k.waiters.is_empty() && k.min_idle.is_none())
    }

    /// The key's minimum of idle connections: set at run time, or configured.
    fn min_idle(&self, key: Key) -> u32 {
        self.keys
            .get(&key)
            .and_then(|k| k.min_idle)
            .unwrap_or(self.cfg.min_idle_per_key)
    }

    /// `set_min_idle` answered `res`.
    fn on_set_min_idle(&mut self, key: Key, min: Option<u32>, res: u32) -> Result<(), String> {
        if self.shutdown.is_none() {
            let limit = self
                .cfg
                .max_connections_per_key
                .min(self.cfg.max_connections);
            let k = self.key(key);
            if min.is_some() {
                k.exists = true;
            }
            if k.exists {
                k.min_idle = min.map(|m| m.min(limit));
            }
        }
        let want = self.min_idle(key);
        ensure!(
            res == want,
            "set_min_idle({key}, {min:?}) answered {res}, not {want}"
        );
        Ok(())
    }

    fn expiry_window(&self, c: &MConn) -> Option<(Instant, Instant)> {
        let life = self.cfg.max_lifetime?;
        Some((
            c.connected_at
                .saturating_add(life.saturating_sub(self.cfg.lifetime_jitter)),
            c.connected_at.saturating_add(life),
        ))
    }

    fn backoff_base(&self, failures: u32) -> Duration {
        let b = self.cfg.backoff;
        let exp = failures.saturating_sub(1).min(31);
        b.initial.saturating_mul(1u32 << exp).min(b.max)
    }

    fn begin_step(&mut self, now: Instant) {
        self.step += 1;
        self.now = now;
        for k in self.keys.values_mut() {
            k.failed_reject_before = None;
        }
    }

    // --------------------------------------------------------------- grants

    fn grant(
        &mut self,
        waited_since: Option<Instant>,
        lease: Lease,
        key: Key,
    ) -> Result<(), String> {
        let now = self.now;
        let cfg = self.cfg.clone();
        let expiry = self
            .conns
            .get(&lease.conn())
            .and_then(|c| self.expiry_window(c));
        let c = self
            .conns
            .get_mut(&lease.conn())
            .ok_or_else(|| format!("lease {lease:?} is on a connection the model does not know"))?;
        ensure!(
            c.key == key,
            "lease {lease:?} for key {key} is on a connection of key {}",
            c.key
        );
        ensure!(
            c.state == MState::Ready,
            "lease {lease:?} granted on a connection that is {:?}",
            c.state
        );
        let cap = c.capacity(&cfg);
        ensure!(
            c.lease_count() < cap,
            "lease {lease:?} granted on a connection with {} leases and capacity {cap}",
            c.lease_count()
        );
        ensure!(
            !c.exclusive || c.leases.is_empty(),
            "exclusive connection {:?} leased twice",
            lease.conn()
        );
        ensure!(
            cfg.max_requests_per_connection
                .is_none_or(|m| c.requests < m),
            "lease {lease:?} granted on a connection that already served {} requests",
            c.requests
        );
        ensure!(
            expiry.is_none_or(|(_, latest)| now < latest),
            "lease {lease:?} granted on a connection past its maximum lifetime"
        );
        ensure!(
            self.issued_leases.insert(lease.id()),
            "lease id {:?} issued twice",
            lease.id()
        );
        let reused = c.requests > 0;
        c.leases.insert(lease.id());
        c.requests += 1;
        if cfg
            .max_requests_per_connection
            .is_some_and(|m| c.requests >= m)
        {
            c.state = MState::Draining;
            c.drain_reason.get_or_insert(CloseReason::RequestLimit);
        }
        self.leases.insert(lease.id(), lease);
        let waited = waited_since.map(|since| now.saturating_duration_since(since));
        self.count(Some(key), |s| {
            s.grants += 1;
            s.reused_grants += u64::from(reused);
            if let Some(waited) = waited {
                s.waited_grants += 1;
                s.wait_time += waited;
            }
        });
        Ok(())
    }

    fn end_waiter(&mut self, waiter: WaiterId, end: End) -> Result<MWaiter, String> {
        let w = self
            .waiters
            .remove(&waiter)
            .ok_or_else(|| format!("{waiter:?} answered ({end:?}) but it is not waiting (answered twice, or never issued)"))?;
        let k = self.key(w.key);
        let pos = k
            .waiters
            .iter()
            .position(|x| *x == waiter)
            .expect("waiting requests are queued");
        k.waiters.remove(pos);
        ensure!(
            self.ends.insert(waiter, end).is_none(),
            "{waiter:?} ended twice"
        );
        keep_last(&mut self.dead_waiters, waiter);
        Ok(w)
    }

    // --------------------------------------------------------------- inputs

    fn on_acquire(
        &mut self,
        key: Key,
        deadline: Option<Instant>,
        res: Result<Acquire, RejectReason>,
    ) -> Result<(), String> {
        let now = self.now;
        if self.shutdown.is_some() {
            ensure!(
                res == Err(RejectReason::ShuttingDown),
                "acquire after shutdown answered {res:?}"
            );
            self.count(None, |s| {
                s.rejections[reject_slot(RejectReason::ShuttingDown)] += 1
            });
            return Ok(());
        }
        let free = self.has_room(key);
        let max_waiters = self.cfg.max_waiters_per_key;
        let k = self.key(key);
        k.exists = true;
        let queued = k.waiters.len() as u32;
        let circuit_open = k.circuit != MCircuit::Closed;
        let must_refuse =
            circuit_open || queued >= max_waiters || deadline.is_some_and(|d| d <= now);
        match res {
            Ok(Acquire::Ready(lease)) => {
                ensure!(queued == 0, "acquire on key {key} got a lease at once while {queued} requests wait before it");
                self.grant(None, lease, key)?;
            }
            Ok(Acquire::Queued(waiter)) => {
                ensure!(
                    queued > 0 || !free,
                    "acquire on key {key} queued although it has free capacity and no queue"
                );
                ensure!(!must_refuse, "acquire on key {key} queued although it must be refused (circuit open {circuit_open}, {queued} queued, deadline {deadline:?})");
                ensure!(
                    !self.ends.contains_key(&waiter) && !self.waiters.contains_key(&waiter),
                    "waiter id {waiter:?} issued twice"
                );
                let deadline =
                    deadline.unwrap_or_else(|| now.saturating_add(self.cfg.acquire_timeout));
                self.waiters.insert(
                    waiter,
                    MWaiter {
                        key,
                        deadline,
                        since: now,
                    },
                );
                self.key(key).waiters.push_back(waiter);
            }
            Err(reason) => {
                ensure!(
                    queued > 0 || !free,
                    "acquire on key {key} refused ({reason:?}) although it has free capacity"
                );
                let holds = match reason {
                    RejectReason::CircuitOpen => circuit_open,
                    RejectReason::QueueFull => queued >= max_waiters,
                    RejectReason::Timeout => deadline.is_some_and(|d| d <= now),
                    _ => false,
                };
                ensure!(
                    holds,
                    "acquire on key {key} refused with {reason:?}, which does not hold"
                );
                self.count(Some(key), |s| s.rejections[reject_slot(reason)] += 1);
            }
        }
        Ok(())
    }

    fn on_release(
        &mut self,
        lease: Lease,
        how: Release,
        res: Result<(), EventError>,
    ) -> Result<(), String> {
        let live = self.leases.get(&lease.id()) == Some(&lease);
        if !live {
            ensure!(
                res == Err(EventError::Stale(HandleKind::Lease)),
                "release of a dead lease answered {res:?}"
            );
            return Ok(());
        }
        ensure!(
            res.is_ok(),
            "release of live lease {lease:?} refused: {res:?}"
        );
        self.leases.remove(&lease.id());
        keep_last(&mut self.dead_leases, lease);
        let now = self.now;
        let stamp = self.next_stamp();
        let c = self
            .conns
            .get_mut(&lease.conn())
            .expect("a live lease's connection is known");
        c.leases.remove(&lease.id());
        if c.state == MState::Closed {
            if c.leases.is_empty() {
                self.conns.remove(&lease.conn());
                keep_last(&mut self.dead_conns, lease.conn());
            }
            return Ok(());
        }
        if how == Release::Close {
            c.not_reusable = true;
            if c.state != MState::Draining {
                c.state = MState::Draining;
                c.drain_reason = Some(CloseReason::NotReusable);
            }
        }
        if c.leases.is_empty() {
            c.idle_since = now;
            c.seen_at = now;
            if c.state == MState::Ready {
                c.lru_stamp = stamp;
            }
        }
        Ok(())
    }

    fn on_connected(
        &mut self,
        conn: ConnId,
        proto: Proto,
        res: Result<(), EventError>,
    ) -> Result<(), String> {
        let state = self.conns.get(&conn).map(|c| c.state);
        if state != Some(MState::Connecting) {
            let expected = if state.is_some() {
                EventError::WrongState
            } else {
                EventError::Stale(HandleKind::Connection)
            };
            ensure!(
                res == Err(expected),
                "connected on a {state:?} connection answered {res:?}, not {expected:?}"
            );
            return Ok(());
        }
        ensure!(
            res.is_ok(),
            "connected on a connecting connection refused: {res:?}"
        );
        let now = self.now;
        let stamp = self.next_stamp();
        let info = proto.connected();
        let c = self.conns.get_mut(&conn).expect("checked");
        c.state = MState::Ready;
        c.connected = true;
        c.exclusive = matches!(info.mode, Mode::Exclusive);
        c.peer_limit = match info.mode {
            Mode::Multiplexed { max_streams } => max_streams,
            _ => 1,
        };
        c.health_checks = info.health_checks;
        c.connected_at = now;
        c.idle_since = now;
        c.seen_at = now;
        c.lru_stamp = stamp;
        c.probe = false;
        let multiplexed = !c.exclusive;
        let key = c.key;
        let k = self.key(key);
        k.circuit = MCircuit::Closed;
        k.failures = 0;
        k.failing_since = None;
        k.last_failure = None;
        k.backoff = None;
        k.learned = Some(multiplexed);
        Ok(())
    }

    /// A connect failed (reported, transport closed while connecting, or timed
    /// out). A permanent failure may cost every waiter of the key.
    fn connect_failure(&mut self, conn: ConnId, failure: ConnectFailure) {
        let c = self
            .conns
            .remove(&conn)
            .expect("failing connections are known");
        keep_last(&mut self.dead_conns, conn);
        let now = self.now;
        let step = self.step;
        let threshold = self.cfg.circuit.failure_threshold;
        let failing_for = self.cfg.circuit.failing_for;
        let open_for = self.cfg.circuit.open_for;
        self.count(Some(c.key), |s| s.connect_failures += 1);
        if failure == ConnectFailure::Permanent {
            self.key(c.key).failed_reject_before = Some(Instant::MAX);
        }
        // A connect opened no later than the key's last failure is of that round: it
        // counts no failure and sets no new backoff. A probe that fails
        // re-opens the circuit only while it is still the probe: another
        // connect that came up meanwhile closed the circuit, and then this is
        // a first failure like any other.
        let probing = {
            let k = self.key(c.key);
            c.probe && k.circuit == MCircuit::HalfOpen { probe: Some(conn) }
        };
        {
            let k = self.key(c.key);
            if !probing && k.last_failure.is_some_and(|at| c.opened_at <= at) {
                if let Some((_, latest)) = k.backoff {
                    k.failed_reject_before = k.failed_reject_before.max(Some(latest));
                }
                return;
            }
            k.last_failure = Some(now);
        }
        let failures = {
            let k = self.key(c.key);
            k.failures = k.failures.saturating_add(1);
            k.failures
        };
        let base = self.backoff_base(failures);
        let k = self.key(c.key);
        let since = *k.failing_since.get_or_insert(now);
        let trips = probing
            || (k.circuit == MCircuit::Closed
                && threshold.is_some_and(|t| failures >= t)
                && now.saturating_duration_since(since) >= failing_for);
        if trips {
            k.circuit = MCircuit::Open {
                until: now.saturating_add(open_for),
            };
            k.tripped_at_step = Some(step);
            k.backoff = None;
        } else {
            let latest = now.saturating_add(base);
            k.backoff = Some((now.saturating_add(base / 2), latest));
            k.failed_reject_before = k.failed_reject_before.max(Some(latest));
        }
    }

    fn on_connect_failed(
        &mut self,
        conn: ConnId,
        failure: ConnectFailure,
        res: Result<(), EventError>,
    ) -> Result<(), String> {
        let state = self.conns.get(&conn).map(|c| c.state);
        if state != Some(MState::Connecting) {
            ensure!(
                res.is_err(),
                "connect_failed on a {state:?} connection accepted"
            );
            return Ok(());
        }
        ensure!(
            res.is_ok(),
            "connect_failed on a connecting connection refused: {res:?}"
        );
        self.connect_failure(conn, failure);
        Ok(())
    }

    fn on_peer_max_streams(
        &mut self,
        conn: ConnId,
        n: u32,
        res: Result<(), EventError>,
    ) -> Result<(), String> {
        let applies = self.conns.get(&conn).is_some_and(|c| {
            c.connected
                && !c.exclusive
                && matches!(c.state, MState::Ready | MState::Checking | MState::Draining)
        });
        if !applies {
            ensure!(
                res.is_err(),
                "peer_max_streams on {conn:?} accepted though it does not apply"
            );
            return Ok(());
        }
        ensure!(
            res.is_ok(),
            "peer_max_streams on a multiplexed connection refused: {res:?}"
        );
        let c = self.conns.get_mut(&conn).expect("checked");
        c.peer_limit = n;
        let key = c.key;
        self.key(key).learned = Some(true);
        Ok(())
    }

    fn on_going_away(&mut self, conn: ConnId, res: Result<(), EventError>) -> Result<(), String> {
        let state = self.conns.get(&conn).map(|c| c.state);
        if !matches!(
            state,
            Some(MState::Ready | MState::Checking | MState::Draining)
        ) {
            ensure!(
                res.is_err(),
                "going_away on a {state:?} connection accepted"
            );
            return Ok(());
        }
        ensure!(
            res.is_ok(),
            "going_away on a {state:?} connection refused: {res:?}"
        );
        let c = self.conns.get_mut(&conn).expect("checked");
        if c.state == MState::Draining {
            return Ok(());
        }
        c.going_away = true;
        if !c.leases.is_empty() {
            c.state = MState::Draining;
            c.drain_reason = Some(CloseReason::PeerGoingAway);
        }
        Ok(())
    }

    fn on_transport_closed(
        &mut self,
        conn: ConnId,
        res: Result<(), EventError>,
    ) -> Result<(), String> {
        let state = self.conns.get(&conn).map(|c| c.state);
        match state {
            None | Some(MState::Closed) => {
                ensure!(
                    res == Err(EventError::Stale(HandleKind::Connection)),
                    "transport_closed on a {state:?} connection answered {res:?}"
                );
                return Ok(());
            }
            _ => ensure!(
                res.is_ok(),
                "transport_closed on a {state:?} connection refused: {res:?}"
            ),
        }
        if state == Some(MState::Connecting) {
            self.connect_failure(conn, ConnectFailure::Transient);
            return Ok(());
        }
        let c = self.conns.get_mut(&conn).expect("checked");
        let key = c.key;
        if c.leases.is_empty() {
            self.conns.remove(&conn);
            keep_last(&mut self.dead_conns, conn);
        } else {
            c.state = MState::Closed;
        }
        self.count(Some(key), |s| s.transport_closes += 1);
        Ok(())
    }

    fn on_health_ok(&mut self, conn: ConnId, res: Result<(), EventError>) -> Result<(), String> {
        let state = self.conns.get(&conn).map(|c| (c.state, c.check_out));
        if !matches!(
            state,
            Some((MState::Checking, _) | (MState::Draining, true))
        ) {
            ensure!(res.is_err(), "health_ok on a {state:?} connection accepted");
            return Ok(());
        }
        ensure!(
            res.is_ok(),
            "health_ok on a connection with a check out refused: {res:?}"
        );
        let now = self.now;
        let stamp = self.next_stamp();
        let c = self.conns.get_mut(&conn).expect("checked");
        c.check_out = false;
        c.seen_at = now;
        if c.state == MState::Checking {
            c.state = MState::Ready;
            c.lru_stamp = stamp;
        }
        Ok(())
    }

    fn on_cancel(&mut self, waiter: WaiterId, res: Result<(), EventError>) -> Result<(), String> {
        if !self.waiters.contains_key(&waiter) {
            ensure!(
                res == Err(EventError::Stale(HandleKind::Waiter)),
                "cancel of a finished request answered {res:?}"
            );
            return Ok(());
        }
        ensure!(res.is_ok(), "cancel of waiting {waiter:?} refused: {res:?}");
        let w = self.end_waiter(waiter, End::Cancelled)?;
        self.count(Some(w.key), |s| s.cancelled += 1);
        Ok(())
    }

    fn on_shutdown(&mut self, how: Shutdown) {
        let how = if self.shutdown == Some(Shutdown::Immediate) {
            Shutdown::Immediate
        } else {
            how
        };
        self.shutdown = Some(how);
        self.shutdown_step = Some(self.step);
        if how == Shutdown::Graceful {
            for c in self.conns.values_mut() {
                if c.is_open() && !c.leases.is_empty() {
                    c.state = MState::Draining;
                    c.drain_reason = Some(CloseReason::Shutdown);
                }
            }
        }
    }

    // -------------------------------------------------------------- actions

    fn on_open(&mut self, conn: ConnId, key: Option<Key>) -> Result<(), String> {
        let key =
            key.ok_or_else(|| format!("Open {conn:?} names a connection the core does not know"))?;
        ensure!(self.shutdown.is_none(), "Open {conn:?} after shutdown");
        ensure!(
            self.issued_conns.insert(conn),
            "connection id {conn:?} issued twice"
        );
        let now = self.now;
        let min_idle = self.min_idle(key);
        let k = self
            .keys
            .get(&key)
            .ok_or_else(|| format!("Open for key {key}, which was never asked for"))?;
        ensure!(k.exists, "Open for key {key}, which the core had forgotten");
        let mut probe = false;
        match k.circuit {
            MCircuit::Open { until } => {
                ensure!(
                    now >= until,
                    "Open {conn:?} for key {key} while its circuit is open until {until:?}"
                );
                probe = true;
            }
            MCircuit::HalfOpen { probe: None } => probe = true,
            MCircuit::HalfOpen { probe: Some(p) } => {
                return Err(format!(
                    "Open {conn:?} for key {key} while {p:?} is its circuit's probe"
                ));
            }
            MCircuit::Closed => {
                if let Some((earliest, _)) = k.backoff {
                    ensure!(
                        now >= earliest,
                        "Open {conn:?} for key {key} during backoff (no open before {earliest:?})"
                    );
                }
            }
        }
        let waiting = k.waiters.len() as u32;
        let never_learned = k.learned.is_none();
        let connecting = self.connecting_count(key) + 1;
        if !probe {
            ensure!(
                waiting > 0 || min_idle > 0,
                "Open {conn:?} for key {key} with no request waiting and no idle target"
            );
            ensure!(
                connecting <= waiting + min_idle,
                "Open {conn:?} makes {connecting} connects for key {key}, more than its {waiting} waiters and {min_idle} idle target"
            );
        }
        if never_learned {
            ensure!(
                connecting <= 1,
                "Open {conn:?} for key {key}, whose protocol is unknown, while another connect is in flight"
            );
        }
        let k = self.key(key);
        if probe {
            k.circuit = MCircuit::HalfOpen { probe: Some(conn) };
        }
        self.conns.insert(
            conn,
            MConn {
                key,
                state: MState::Connecting,
                connected: false,
                exclusive: false,
                peer_limit: 0,
                health_checks: false,
                leases: BTreeSet::new(),
                requests: 0,
                opened_at: now,
                connected_at: now,
                idle_since: now,
                seen_at: now,
                check_sent_at: now,
                check_out: false,
                suspected: false,
                drain_reason: None,
                going_away: false,
                not_reusable: false,
                probe,
                lru_stamp: 0,
            },
        );
        self.count(Some(key), |s| s.connects += 1);
        self.check_limits(&format!("after Open {conn:?}"))
    }

    fn check_limits(&self, when: &str) -> Result<(), String> {
        let cfg = &self.cfg;
        let total = self.open_count(None);
        ensure!(
            total <= cfg.max_connections,
            "{when}: {total} connections open, over the limit {}",
            cfg.max_connections
        );
        for &key in self.keys.keys() {
            let open = self.open_count(Some(key));
            ensure!(
                open <= cfg.max_connections_per_key,
                "{when}: key {key} has {open} open, over the limit {}",
                cfg.max_connections_per_key
            );
            let connecting = self.connecting_count(key);
            ensure!(
                connecting <= cfg.max_connecting_per_key,
                "{when}: key {key} has {connecting} connecting, over the limit {}",
                cfg.max_connecting_per_key
            );
        }
        for (cid, c) in &self.conns {
            ensure!(
                !c.exclusive || c.leases.len() <= 1,
                "{when}: exclusive {cid:?} has {} leases",
                c.leases.len()
            );
        }
        Ok(())
    }

    fn on_close(&mut self, conn: ConnId, reason: CloseReason) -> Result<(), String> {
        let now = self.now;
        let cfg = self.cfg.clone();
        let c = self.conns.get(&conn).cloned().ok_or_else(|| {
            format!("Close {conn:?} ({reason:?}) names a connection that is not open")
        })?;
        ensure!(
            c.state != MState::Closed,
            "Close {conn:?} ({reason:?}) of a connection already closed"
        );
        if !c.leases.is_empty() {
            // Only an immediate shutdown, or an unanswered check on a connection
            // a request suspected, closes one under its leases.
            ensure!(
                (reason == CloseReason::Shutdown && self.shutdown == Some(Shutdown::Immediate))
                    || (reason == CloseReason::HealthCheckFailed && c.check_out),
                "Close {conn:?} ({reason:?}) while {} leases are out on it",
                c.leases.len()
            );
        }
        // An unanswered check closes a connection whatever else it was
        // waiting for: draining, or a graceful shutdown.
        let check_failed = reason == CloseReason::HealthCheckFailed && c.check_out;
        if self.shutdown.is_some() && !check_failed {
            ensure!(
                reason == CloseReason::Shutdown,
                "Close {conn:?} with {reason:?} after shutdown"
            );
        } else if c.state == MState::Draining && !check_failed {
            ensure!(
                Some(reason) == c.drain_reason,
                "Close {conn:?} with {reason:?}, but it was draining for {:?}",
                c.drain_reason
            );
        } else {
            let idle = c.is_idle();
            let holds = match reason {
                CloseReason::IdleTimeout => {
                    c.state == MState::Ready
                        && idle
                        && cfg
                            .idle_timeout
                            .is_some_and(|t| now >= c.idle_since.saturating_add(t))
                        && self.idle_count(c.key) > self.min_idle(c.key)
                }
                CloseReason::Expired => {
                    idle && self
                        .expiry_window(&c)
                        .is_some_and(|(earliest, _)| now >= earliest)
                }
                CloseReason::RequestLimit => {
                    idle && cfg
                        .max_requests_per_connection
                        .is_some_and(|m| c.requests >= m)
                }
                CloseReason::PeerGoingAway => idle && c.going_away,
                CloseReason::NotReusable => idle && c.not_reusable,
                CloseReason::ConnectTimeout => {
                    c.state == MState::Connecting
                        && now >= c.opened_at.saturating_add(cfg.connect_timeout)
                }
                CloseReason::HealthCheckFailed => {
                    c.check_out && now >= c.check_sent_at.saturating_add(cfg.health_check.timeout)
                }
                CloseReason::Evicted => self.evictable(conn, &c),
                CloseReason::Surplus => {
                    idle && self.keys.get(&c.key).is_some_and(|k| k.waiters.is_empty())
                        && self.idle_count(c.key) > self.min_idle(c.key)
                }
                _ => false,
            };
            ensure!(
                holds,
                "Close {conn:?} with {reason:?}, which does not hold for it: {c:?}"
            );
        }
        if c.state == MState::Connecting && reason == CloseReason::ConnectTimeout {
            self.connect_failure(conn, ConnectFailure::Transient);
        } else {
            let key = c.key;
            if c.probe {
                self.key(key).circuit = MCircuit::HalfOpen { probe: None };
            }
            if c.leases.is_empty() {
                self.conns.remove(&conn);
                keep_last(&mut self.dead_conns, conn);
            } else {
                self.conns.get_mut(&conn).expect("known").state = MState::Closed;
            }
        }
        self.count(Some(c.key), |s| s.closes[close_slot(reason)] += 1);
        Ok(())
    }

    /// An idle connection may be evicted only at the global limit, for another key
    /// that has waiters, and only the least recently used idle one of the others.
    fn evictable(&self, conn: ConnId, c: &MConn) -> bool {
        if !(c.state == MState::Ready && c.leases.is_empty()) {
            return false;
        }
        if self.open_count(None) < self.cfg.max_connections {
            return false;
        }
        let now = self.now;
        // Keys that may take room: those with waiters, and those whose circuit is
        // due a probe (no request can wait for it).
        self.keys.iter().any(|(&r, k)| {
            let wants_probe = match k.circuit {
                MCircuit::HalfOpen { probe } => probe.is_none(),
                MCircuit::Open { until } => now >= until,
                MCircuit::Closed => false,
            };
            r != c.key
                && (!k.waiters.is_empty() || wants_probe)
                && self
                    .conns
                    .iter()
                    .filter(|(id, o)| {
                        **id != conn
                            && o.key != r
                            && o.state == MState::Ready
                            && o.leases.is_empty()
                    })
                    .all(|(_, o)| o.lru_stamp > c.lru_stamp)
        })
    }

    fn on_suspect(&mut self, conn: ConnId, res: Result<(), EventError>) -> Result<(), String> {
        let Some(c) = self.conns.get_mut(&conn) else {
            ensure!(
                res == Err(EventError::Stale(HandleKind::Connection)),
                "suspect on a dead connection answered {res:?}"
            );
            return Ok(());
        };
        match c.state {
            MState::Closed => ensure!(
                res == Err(EventError::Stale(HandleKind::Connection)),
                "suspect on a closed connection answered {res:?}"
            ),
            MState::Connecting => ensure!(
                res == Err(EventError::WrongState),
                "suspect on a connecting connection answered {res:?}"
            ),
            state => {
                ensure!(
                    res.is_ok(),
                    "suspect on a {state:?} connection refused: {res:?}"
                );
                c.suspected = state == MState::Ready && c.health_checks;
            }
        }
        Ok(())
    }

    fn on_health_check(&mut self, conn: ConnId) -> Result<(), String> {
        let now = self.now;
        let interval = self.cfg.health_check.interval;
        let c = self
            .conns
            .get_mut(&conn)
            .ok_or_else(|| format!("HealthCheck {conn:?} names a connection that is not open"))?;
        if c.suspected {
            ensure!(
                c.state == MState::Ready,
                "HealthCheck {conn:?} on a suspected connection that is {:?}",
                c.state
            );
            c.suspected = false;
            c.state = MState::Checking;
            c.check_sent_at = now;
            c.check_out = true;
            return Ok(());
        }
        ensure!(
            c.state == MState::Ready && c.leases.is_empty(),
            "HealthCheck {conn:?} on a connection that is {:?} with {} leases",
            c.state,
            c.leases.len()
        );
        ensure!(
            c.health_checks,
            "HealthCheck {conn:?} on a connection whose protocol has no ping"
        );
        ensure!(
            interval.is_some_and(|i| now >= c.seen_at.saturating_add(i)),
            "HealthCheck {conn:?} before its interval passed (seen at {:?}, interval {interval:?})",
            c.seen_at
        );
        c.state = MState::Checking;
        c.check_sent_at = now;
        c.check_out = true;
        Ok(())
    }

    fn on_grant(&mut self, waiter: WaiterId, lease: Lease) -> Result<(), String> {
        let w = *self.waiters.get(&waiter).ok_or_else(|| {
            format!("Grant to {waiter:?}, which is not waiting (answered twice, or never issued)")
        })?;
        let head = self
            .keys
            .get(&w.key)
            .and_then(|k| k.waiters.front().copied());
        ensure!(
            head == Some(waiter),
            "Grant to {waiter:?} on key {} while {head:?} has waited longer",
            w.key
        );
        self.end_waiter(waiter, End::Granted)?;
        self.grant(Some(w.since), lease, w.key)
    }

    fn on_reject(&mut self, waiter: WaiterId, reason: RejectReason) -> Result<(), String> {
        let now = self.now;
        let step = self.step;
        let w = *self
            .waiters
            .get(&waiter)
            .ok_or_else(|| format!("Reject ({reason:?}) to {waiter:?}, which is not waiting (answered twice, or never issued)"))?;
        let shutdown_now = self.shutdown_step == Some(step);
        let k = self.key(w.key);

        let holds = match reason {
            RejectReason::Timeout => now >= w.deadline,
            // Only a request that cannot wait for the next connect.
            RejectReason::ConnectFailed => k.failed_reject_before.is_some_and(|at| w.deadline < at),
            RejectReason::CircuitOpen => {
                k.tripped_at_step == Some(step)
                    && matches!(k.circuit, MCircuit::Open { until } if w.deadline < until)
            }
            RejectReason::ShuttingDown => shutdown_now,
            _ => false,
        };
        ensure!(
            holds,
            "Reject {waiter:?} (key {}, deadline {:?}) with {reason:?}, which does not hold",
            w.key,
            w.deadline
        );
        self.end_waiter(waiter, End::Rejected(reason))?;
        self.count(Some(w.key), |s| s.rejections[reject_slot(reason)] += 1);
        Ok(())
    }

    fn on_action(&mut self, action: Action, open_key: Option<Key>) -> Result<(), String> {
        match action {
            Action::Open { conn } => self.on_open(conn, open_key),
            Action::Close { conn, reason } => self.on_close(conn, reason),
            Action::Grant { waiter, lease } => self.on_grant(waiter, lease),
            Action::Reject { waiter, reason } => self.on_reject(waiter, reason),
            Action::HealthCheck { conn } => self.on_health_check(conn),
        }
    }

    // ------------------------------------------------------------ end of step

    /// Learns what the core did on its own (expiry), forgets what it forgot, and
    /// checks everything that must hold between steps.
    fn end_step<K: Hash + Eq + Clone>(
        &mut self,
        pool: &Pool<K>,
        key_of: fn(Key) -> K,
    ) -> Result<(), String> {
        let now = self.now;
        let forget_after = self.cfg.forget_key_after;
        // Keys the core forgot.
        let keys: Vec<Key> = self.keys.keys().copied().collect();
        for key in keys {
            let core = pool.key_stats(&key_of(key));
            let empty = self.key_is_empty(key);
            let k = self.key(key);
            match (k.exists, core.is_some()) {
                (true, false) => {
                    ensure!(
                        empty,
                        "key {key} was forgotten while it has connections or waiters"
                    );
                    ensure!(
                        k.empty_since.is_some_and(|t| now >= t.saturating_add(forget_after)),
                        "key {key} was forgotten before it was empty for {forget_after:?} (empty since {:?})",
                        k.empty_since
                    );
                    *k = MKey::default();
                }
                (false, true) => {
                    return Err(format!(
                        "the core holds key {key}, which was never asked for"
                    ))
                }
                _ => {}
            }
        }
        // Expiry: the only change the core makes without an action.
        let windows: Vec<(ConnId, Option<(Instant, Instant)>)> = self
            .conns
            .iter()
            .map(|(id, c)| (*id, self.expiry_window(c)))
            .collect();
        for (cid, window) in windows {
            let info = pool.conn_info(cid);
            let c = self.conns.get_mut(&cid).expect("listed");
            if info.map(|i| i.state) == Some(ConnState::Draining)
                && matches!(c.state, MState::Ready | MState::Checking)
            {
                ensure!(
                    window.is_some_and(|(earliest, _)| now >= earliest),
                    "{cid:?} started draining for no reason the model knows: {c:?}"
                );
                c.state = MState::Draining;
                c.drain_reason = Some(CloseReason::Expired);
            }
        }
        // A connection kept idle past the idle timeout to hold the key's idle target
        // starts its idle clock again when the core looks at it (at its deadline,
        // which has passed by the end of every step).
        if let Some(t) = self.cfg.idle_timeout {
            let kept: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    // (or was, until a health check was sent on it in this step)
                    (c.state == MState::Ready
                        || (c.state == MState::Checking && c.check_sent_at == now))
                        && c.leases.is_empty()
                        && now >= c.idle_since.saturating_add(t)
                        && self.idle_count(c.key) <= self.min_idle(c.key)
                })
                .map(|(id, _)| *id)
                .collect();
            for cid in kept {
                self.conns.get_mut(&cid).expect("listed").idle_since = now;
            }
        }
        // Emptiness, for forgetting.
        let keys: Vec<Key> = self.keys.keys().copied().collect();
        for key in keys {
            let empty = self.key_is_empty(key);
            let k = self.key(key);
            if !k.exists || !empty {
                k.empty_since = None;
            } else if k.empty_since.is_none() {
                k.empty_since = Some(now);
            }
        }
        self.check_limits("after the step")?;
        self.compare(pool, key_of)?;
        self.check_overdue()?;
        self.check_progress()?;
        self.check_wakeup(pool)
    }

    /// The core's counters, gauges and views equal the model's.
    fn compare<K: Hash + Eq + Clone>(
        &self,
        pool: &Pool<K>,
        key_of: fn(Key) -> K,
    ) -> Result<(), String> {
        let cfg = &self.cfg;
        let mut gauges_total = [0u32; 7];
        for (&key, k) in &self.keys {
            let mut g = [0u32; 7]; // open, connecting, idle, busy, draining, leases, waiting
            for (_, c) in self.conns_of(key) {
                match c.state {
                    MState::Connecting => g[1] += 1,
                    MState::Ready | MState::Checking if c.leases.is_empty() => g[2] += 1,
                    MState::Ready | MState::Checking => g[3] += 1,
                    MState::Draining => g[4] += 1,
                    MState::Closed => {}
                }
                g[5] += c.lease_count();
            }
            g[0] = g[1] + g[2] + g[3] + g[4];
            g[6] = k.waiters.len() as u32;
            for (t, v) in gauges_total.iter_mut().zip(g) {
                *t += v;
            }
            let Some(s) = pool.key_stats(&key_of(key)) else {
                ensure!(
                    !k.exists,
                    "key {key} exists in the model but not in the core"
                );
                continue;
            };
            let core = [
                s.open,
                s.connecting,
                s.idle,
                s.busy,
                s.draining,
                s.leases,
                s.waiting,
            ];
            ensure!(
                core == g,
                "key {key} gauges (open, connecting, idle, busy, draining, leases, waiting) are {core:?}, the state is {g:?}"
            );
            let counters = Counters::of(&s);
            ensure!(
                counters == k.counters,
                "key {key} counters are {counters:?}, the model counted {:?}",
                k.counters
            );
        }
        let s = pool.stats();
        let core = [
            s.open,
            s.connecting,
            s.idle,
            s.busy,
            s.draining,
            s.leases,
            s.waiting,
        ];
        ensure!(
            core == gauges_total,
            "pool gauges are {core:?}, the state is {gauges_total:?}"
        );
        let counters = Counters::of(&s);
        ensure!(
            counters == self.totals,
            "pool counters are {counters:?}, the model counted {:?}",
            self.totals
        );
        let core_keys: BTreeSet<Key> = (0..MAX_KEYS)
            .filter(|&key| pool.keys().any(|k| *k == key_of(key)))
            .collect();
        let model_keys: BTreeSet<Key> = self
            .keys
            .iter()
            .filter(|(_, k)| k.exists)
            .map(|(&key, _)| key)
            .collect();
        ensure!(
            pool.keys().count() == core_keys.len(),
            "the core lists keys the test never used"
        );
        ensure!(
            core_keys == model_keys,
            "the core holds keys {core_keys:?}, the model {model_keys:?}"
        );
        for (cid, c) in &self.conns {
            let info = pool.conn_info(*cid).ok_or_else(|| {
                format!(
                    "{cid:?} is unknown to the core, the model has it {:?}",
                    c.state
                )
            })?;
            let state = match c.state {
                MState::Connecting => ConnState::Connecting,
                MState::Ready => ConnState::Ready,
                MState::Checking => ConnState::Checking,
                MState::Draining => ConnState::Draining,
                MState::Closed => ConnState::Closed,
            };
            let mode_ok = match info.mode {
                None => !c.connected,
                Some(Mode::Exclusive) => c.connected && c.exclusive,
                Some(Mode::Multiplexed { .. }) => c.connected && !c.exclusive,
                Some(_) => false,
            };
            let want = (state, c.lease_count(), c.capacity(cfg), c.requests);
            let got = (info.state, info.leases, info.capacity, info.requests);
            ensure!(
                want == got && mode_ok,
                "{cid:?} is (state, leases, capacity, requests) = {got:?} mode {:?} in the core, {want:?} in the model",
                info.mode
            );
            ensure!(
                pool.key(*cid) == Some(&key_of(c.key)),
                "{cid:?} is on the wrong key"
            );
            if c.exclusive {
                ensure!(
                    info.leases <= 1,
                    "exclusive {cid:?} has {} leases",
                    info.leases
                );
            }
        }
        for cid in &self.dead_conns {
            if !self.conns.contains_key(cid) {
                ensure!(
                    pool.conn_info(*cid).is_none(),
                    "closed {cid:?} is still known to the core"
                );
            }
        }
        for lease in self.leases.values() {
            ensure!(
                pool.is_leased(*lease),
                "{lease:?} is out but the core does not know it"
            );
        }
        for lease in &self.dead_leases {
            ensure!(
                !pool.is_leased(*lease),
                "released {lease:?} is still out in the core"
            );
        }
        for (w, mw) in &self.waiters {
            ensure!(
                pool.waiter_key(*w) == Some(&key_of(mw.key)),
                "{w:?} waits on the wrong key in the core"
            );
        }
        for w in &self.dead_waiters {
            ensure!(
                pool.waiter_key(*w).is_none(),
                "finished {w:?} still waits in the core"
            );
        }
        ensure!(
            pool.is_shut_down() == (self.shutdown.is_some() && gauges_total[0] == 0),
            "is_shut_down is {} with shutdown {:?} and {} open",
            pool.is_shut_down(),
            self.shutdown,
            gauges_total[0]
        );
        Ok(())
    }

    /// Nothing that was due by now is left undone.
    fn check_overdue(&self) -> Result<(), String> {
        let now = self.now;
        let cfg = &self.cfg;
        for (w, mw) in &self.waiters {
            ensure!(
                now < mw.deadline,
                "{w:?} still waits past its deadline {:?}",
                mw.deadline
            );
        }
        for (cid, c) in &self.conns {
            match c.state {
                MState::Connecting => ensure!(
                    now < c.opened_at.saturating_add(cfg.connect_timeout),
                    "{cid:?} is still connecting past its connect timeout"
                ),
                MState::Checking => ensure!(
                    now < c.check_sent_at.saturating_add(cfg.health_check.timeout),
                    "{cid:?} still waits for its health check past the timeout"
                ),
                MState::Draining => {
                    ensure!(
                        !c.leases.is_empty(),
                        "{cid:?} drains with no lease out but was not closed"
                    );
                    ensure!(
                        !c.check_out
                            || now < c.check_sent_at.saturating_add(cfg.health_check.timeout),
                        "draining {cid:?} still waits for its health check past the timeout"
                    );
                }
                MState::Closed => ensure!(
                    !c.leases.is_empty(),
                    "closed {cid:?} has no lease out but is still kept"
                ),
                MState::Ready => {}
            }
            if matches!(c.state, MState::Ready | MState::Checking) {
                ensure!(
                    self.expiry_window(c).is_none_or(|(_, latest)| now < latest),
                    "{cid:?} is past its maximum lifetime and still takes leases"
                );
                ensure!(
                    cfg.max_requests_per_connection
                        .is_none_or(|m| c.requests < m),
                    "{cid:?} served {} requests and still takes leases",
                    c.requests
                );
                ensure!(
                    !c.going_away,
                    "{cid:?} is going away and still takes leases"
                );
            }
            if c.state == MState::Ready && c.leases.is_empty() {
                if let Some(t) = cfg.idle_timeout {
                    ensure!(
                        now < c.idle_since.saturating_add(t)
                            || self.idle_count(c.key) <= self.min_idle(c.key),
                        "{cid:?} is idle since {:?}, past the idle timeout, and not closed",
                        c.idle_since
                    );
                }
                if let (true, Some(i)) = (c.health_checks, cfg.health_check.interval) {
                    ensure!(
                        now < c.seen_at.saturating_add(i),
                        "{cid:?} is idle and unchecked since {:?}, past the health check interval",
                        c.seen_at
                    );
                }
            }
        }
        if self.shutdown.is_some() {
            ensure!(
                self.waiters.is_empty(),
                "requests still wait after shutdown"
            );
            for (cid, c) in &self.conns {
                ensure!(
                    matches!(c.state, MState::Draining | MState::Closed),
                    "{cid:?} is {:?} after shutdown",
                    c.state
                );
            }
        }
        Ok(())
    }

    /// Why a key with waiters, nothing connecting and a closed circuit could open a
    /// connection now (backoff aside), or `None` if it cannot or need not.
    fn room_to_open(&self, key: Key) -> Option<String> {
        let cfg = &self.cfg;
        let k = self.keys.get(&key)?;
        if k.waiters.is_empty() || k.circuit != MCircuit::Closed || self.shutdown.is_some() {
            return None;
        }
        if self.connecting_count(key) > 0 {
            return None;
        }
        let total_open = self.open_count(None);
        let open = self.open_count(Some(key));
        if open >= cfg.max_connections_per_key {
            return None;
        }
        let evictable = self
            .conns
            .iter()
            .find(|(_, c)| c.key != key && c.state == MState::Ready && c.leases.is_empty());
        if total_open >= cfg.max_connections && evictable.is_none() {
            return None;
        }
        // Under `Saturation::Queue` a key waits for streams on connections that can
        // take them.
        let queue_on_streams = cfg.saturation == Saturation::Queue
            && k.learned == Some(true)
            && self.conns_of(key).any(|(_, c)| {
                matches!(c.state, MState::Ready | MState::Checking) && c.capacity(cfg) > 0
            });
        if queue_on_streams {
            return None;
        }
        Some(match evictable {
            Some((cid, _)) if total_open >= cfg.max_connections => {
                format!("{open} open for the key, {total_open} in all, idle {cid:?} of another key could be evicted")
            }
            _ => format!("{open} open for the key, {total_open} in all"),
        })
    }

    /// No key with waiters has free capacity, and none sits still with room to open.
    fn check_progress(&self) -> Result<(), String> {
        let now = self.now;
        let cfg = &self.cfg;
        let total_open = self.open_count(None);
        for (&key, k) in &self.keys {
            // After a connect failed this step: a permanent failure leaves no
            // request waiting, a transient one none due before the backoff's
            // earliest end.
            if let Some(before) = k.failed_reject_before {
                let earliest = match k.backoff {
                    _ if before == Instant::MAX => Instant::MAX,
                    Some((earliest, _)) => earliest,
                    None => Instant::ZERO,
                };
                for w in &k.waiters {
                    let deadline = self.waiters[w].deadline;
                    ensure!(
                        deadline >= earliest,
                        "key {key}'s connect failed, but {w:?}, due at {deadline:?} before the next connect ({earliest:?}), still waits"
                    );
                }
            }
            if let (Some(_), MCircuit::Open { until }) = (k.tripped_at_step, k.circuit) {
                for w in &k.waiters {
                    let deadline = self.waiters[w].deadline;
                    ensure!(
                        deadline >= until,
                        "key {key}'s circuit is open until {until:?} but {w:?}, due at {deadline:?}, still waits"
                    );
                }
            }
            let open = self.open_count(Some(key));
            let connecting = self.connecting_count(key);
            if let MCircuit::Open { until } = k.circuit {
                let limited = open >= cfg.max_connections_per_key
                    || connecting >= cfg.max_connecting_per_key
                    || total_open >= cfg.max_connections;
                ensure!(
                    now < until || self.shutdown.is_some() || limited,
                    "key {key}'s circuit is open past {until:?} and no probe was opened"
                );
            }
            // Pre-warming: a key below its idle target opens toward it when it can.
            let target = self.min_idle(key);
            if target > 0 && k.exists && k.circuit == MCircuit::Closed && self.shutdown.is_none() {
                let backoff_over = k.backoff.is_none_or(|(_, latest)| now >= latest);
                let learning = k.learned.is_none() && connecting > 0;
                let room = open < cfg.max_connections_per_key
                    && connecting < cfg.max_connecting_per_key
                    && total_open < cfg.max_connections;
                let warm = self.idle_count(key) + connecting;
                ensure!(
                    warm >= target || !backoff_over || learning || !room,
                    "key {key} has {warm} idle or connecting connections, below its idle target {target}, and room to open"
                );
            }
            if k.waiters.is_empty() {
                continue;
            }
            if let Some((cid, _)) = self.conns_of(key).find(|(_, c)| c.has_room(cfg)) {
                return Err(format!(
                    "key {key} has {} waiters and free capacity on {cid:?}",
                    k.waiters.len()
                ));
            }
            // Waiters of an open circuit wait for its probe, which the check
            // above holds to `open_for`.
            if k.circuit != MCircuit::Closed {
                continue;
            }
            if let Some(room) = self.room_to_open(key) {
                let backoff_over = k.backoff.is_none_or(|(_, latest)| now >= latest);
                ensure!(
                    !backoff_over,
                    "key {key} has {} waiters, nothing connecting, and room to open ({room})",
                    k.waiters.len()
                );
            }
        }
        Ok(())
    }

    /// The core will wake up no later than the next deadline the model knows of.
    fn check_wakeup<K: Hash + Eq + Clone>(&self, pool: &Pool<K>) -> Result<(), String> {
        let cfg = &self.cfg;
        let mut due: Option<(Instant, String)> = None;
        let mut at = |t: Instant, what: String| {
            if due.as_ref().is_none_or(|(d, _)| t < *d) {
                due = Some((t, what));
            }
        };
        for (w, mw) in &self.waiters {
            at(mw.deadline, format!("the deadline of {w:?}"));
        }
        for (cid, c) in &self.conns {
            match c.state {
                MState::Connecting => at(
                    c.opened_at.saturating_add(cfg.connect_timeout),
                    format!("the connect timeout of {cid:?}"),
                ),
                MState::Checking | MState::Draining if c.check_out => at(
                    c.check_sent_at.saturating_add(cfg.health_check.timeout),
                    format!("the health check timeout of {cid:?}"),
                ),
                _ => {}
            }
            if matches!(c.state, MState::Ready | MState::Checking) {
                if let Some((_, latest)) = self.expiry_window(c) {
                    at(latest, format!("the maximum lifetime of {cid:?}"));
                }
            }
            if c.state == MState::Ready && c.leases.is_empty() {
                if let Some(t) = cfg.idle_timeout {
                    if self.idle_count(c.key) > self.min_idle(c.key) {
                        at(
                            c.idle_since.saturating_add(t),
                            format!("the idle timeout of {cid:?}"),
                        );
                    }
                }
                if let (true, Some(i)) = (c.health_checks, cfg.health_check.interval) {
                    at(
                        c.seen_at.saturating_add(i),
                        format!("the health check of {cid:?}"),
                    );
                }
            }
        }
        for (&key, k) in &self.keys {
            if let MCircuit::Open { until } = k.circuit {
                if until > self.now && self.shutdown.is_none() {
                    at(until, format!("the end of key {key}'s open circuit"));
                }
            }
            if let Some((_, latest)) = k.backoff {
                if self.room_to_open(key).is_some() {
                    at(latest, format!("the end of key {key}'s backoff"));
                }
            }
        }
        if let Some((t, what)) = due {
            let next = pool.poll_timeout();
            ensure!(
                next.is_some_and(|n| n <= t),
                "the core asks to be woken at {next:?}, after {what} at {t:?}"
            );
        }
        Ok(())
    }
}

// --------------------------------------------------------------------- harness

/// A concrete input, as given to the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Acquire(Key, Option<Instant>),
    Cancel(WaiterId),
    Release(Lease, Release),
    Connected(ConnId, Proto),
    ConnectFailed(ConnId, ConnectFailure),
    PeerMaxStreams(ConnId, u32),
    GoingAway(ConnId),
    TransportClosed(ConnId),
    HealthOk(ConnId),
    Suspect(ConnId),
    HandleTimeout,
    Shutdown(Shutdown),
    SetMinIdle(Key, Option<u32>),
}

/// What an input returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Acquire(Result<Acquire, RejectReason>),
    Event(Result<(), EventError>),
    /// A count: the minimum of idle connections in force.
    Count(u32),
    Unit,
}

/// Everything that passed between the test and the core, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Trace {
    Input(Instant, Input, Outcome),
    Action(Action),
    Wake(Option<Instant>),
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    Stale(HandleKind),
    WrongState,
    AnyError,
}

/// What the core shows from the outside, to see that a refused input changed nothing.
#[derive(Debug, PartialEq)]
struct Snapshot {
    stats: Stats,
    keys: Vec<Option<Stats>>,
    conns: Vec<Option<ConnInfo>>,
    leased: Vec<bool>,
    waiting: Vec<bool>,
    wake: Option<Instant>,
}

/// Drives a [`Pool`] and the [`Model`] with the same inputs and checks them.
pub struct Harness<K> {
    pub pool: Pool<K>,
    key_of: fn(Key) -> K,
    keys: u8,
    model: Model,
    now: Instant,
    trace: Vec<Trace>,
}

impl<K: Hash + Eq + Clone> Harness<K> {
    /// A pool with `config`, driven on keys `key_of(0..keys)`.
    pub fn new(config: PoolConfig, keys: u8, key_of: fn(Key) -> K) -> Harness<K> {
        Harness {
            pool: Pool::new(config.clone()).expect("generated configs are valid"),
            key_of,
            keys: keys.max(1),
            model: Model::new(config),
            now: Instant::ZERO,
            trace: Vec::new(),
        }
    }

    /// Everything that passed between the test and the core so far.
    pub fn trace(&self) -> &[Trace] {
        &self.trace
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Runs a whole case: every operation, then quiescence. The error says what
    /// broke, at which operation, with the last exchanges with the core.
    pub fn run(&mut self, case: &Case) -> Result<(), String> {
        for (i, op) in case.ops.iter().enumerate() {
            self.apply(op)
                .map_err(|e| self.report(&format!("operation {i} ({op:?})"), e))?;
        }
        self.quiesce(case.settle_proto)
            .map_err(|e| self.report("quiescence", e))
    }

    fn report(&self, at: &str, error: String) -> String {
        let mut s = format!(
            "{error}\n  at {at}, time {:?}\n  last exchanges with the core:\n",
            self.now
        );
        let start = self.trace.len().saturating_sub(40);
        for t in &self.trace[start..] {
            let _ = writeln!(s, "    {t:?}");
        }
        s
    }

    fn key_index(&self, k: &K) -> Option<Key> {
        (0..self.keys).find(|&i| (self.key_of)(i) == *k)
    }

    fn conns_where(&self, f: impl Fn(&MConn) -> bool) -> Vec<ConnId> {
        self.model
            .conns
            .iter()
            .filter(|(_, c)| f(c))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Applies one generated operation (nothing, if it names nothing that exists).
    pub fn apply(&mut self, op: &Op) -> Result<(), String> {
        let pick = |v: Vec<ConnId>, i: &Index| (!v.is_empty()).then(|| *i.get(&v));
        let input = match op {
            Op::Acquire { key, deadline_ms } => Some(Input::Acquire(
                key % self.keys,
                deadline_ms.map(|d| self.now.saturating_add(ms(d))),
            )),
            Op::Cancel(i) => {
                let v: Vec<WaiterId> = self.model.waiters.keys().copied().collect();
                (!v.is_empty()).then(|| Input::Cancel(*i.get(&v)))
            }
            Op::Release(i, how) => {
                let v: Vec<Lease> = self.model.leases.values().copied().collect();
                (!v.is_empty()).then(|| Input::Release(*i.get(&v), *how))
            }
            Op::Connected(i, p) => pick(self.conns_where(|c| c.state == MState::Connecting), i)
                .map(|c| Input::Connected(c, *p)),
            Op::ConnectFailed(i, permanent) => {
                let failure = if *permanent {
                    ConnectFailure::Permanent
                } else {
                    ConnectFailure::Transient
                };
                pick(self.conns_where(|c| c.state == MState::Connecting), i)
                    .map(|c| Input::ConnectFailed(c, failure))
            }
            Op::PeerMaxStreams(i, n) => pick(
                self.conns_where(|c| c.connected && !c.exclusive && c.state != MState::Closed),
                i,
            )
            .map(|c| Input::PeerMaxStreams(c, *n)),
            Op::GoingAway(i) => pick(
                self.conns_where(|c| {
                    matches!(c.state, MState::Ready | MState::Checking | MState::Draining)
                }),
                i,
            )
            .map(Input::GoingAway),
            Op::TransportClosed(i) => {
                pick(self.conns_where(MConn::is_open), i).map(Input::TransportClosed)
            }
            Op::HealthOk(i) => pick(self.conns_where(|c| c.check_out), i).map(Input::HealthOk),
            Op::Suspect(i) => pick(
                self.conns_where(|c| c.connected && c.state != MState::Closed),
                i,
            )
            .map(Input::Suspect),
            Op::Advance(d) => {
                self.now = self.now.saturating_add(ms(*d));
                Some(Input::HandleTimeout)
            }
            Op::AdvanceToDeadline => self.pool.poll_timeout().map(|t| {
                self.now = self.now.max(t);
                Input::HandleTimeout
            }),
            Op::Shutdown(how) => Some(Input::Shutdown(*how)),
            Op::SetMinIdle(key, min) => Some(Input::SetMinIdle(key % self.keys, *min)),
            Op::Misuse(m, p) => return self.misuse(*m, *p),
        };
        match input {
            Some(input) => self.input(input),
            None => Ok(()),
        }
    }

    fn call(&mut self, input: &Input) -> Outcome {
        let now = self.now;
        let p = &mut self.pool;
        match *input {
            Input::Acquire(key, deadline) => {
                let options =
                    deadline.map_or_else(AcquireOptions::default, AcquireOptions::with_deadline);
                Outcome::Acquire(p.acquire(&(self.key_of)(key), now, options))
            }
            Input::Cancel(w) => Outcome::Event(p.cancel(w, now)),
            Input::Release(lease, how) => Outcome::Event(p.release(lease, now, how)),
            Input::Connected(c, proto) => {
                Outcome::Event(p.handle_connected(c, now, proto.connected()))
            }
            Input::ConnectFailed(c, f) => Outcome::Event(p.handle_connect_error(c, now, f)),
            Input::PeerMaxStreams(c, n) => Outcome::Event(p.handle_peer_max_streams(c, now, n)),
            Input::GoingAway(c) => Outcome::Event(p.handle_going_away(c, now)),
            Input::TransportClosed(c) => Outcome::Event(p.handle_transport_closed(c, now)),
            Input::HealthOk(c) => Outcome::Event(p.handle_health_ok(c, now)),
            Input::Suspect(c) => Outcome::Event(p.handle_suspect(c, now)),
            Input::HandleTimeout => {
                p.handle_timeout(now);
                Outcome::Unit
            }
            Input::Shutdown(how) => {
                p.shutdown(now, how);
                Outcome::Unit
            }
            Input::SetMinIdle(key, min) => {
                Outcome::Count(p.set_min_idle(&(self.key_of)(key), now, min))
            }
        }
    }

    /// One step: an input, the actions it produced, the timers due by now, and the
    /// checks of everything that must then hold.
    pub fn input(&mut self, input: Input) -> Result<(), String> {
        self.model.begin_step(self.now);
        let outcome = self.call(&input);
        self.trace
            .push(Trace::Input(self.now, input.clone(), outcome.clone()));
        let m = &mut self.model;
        match (&input, outcome) {
            (Input::Acquire(key, deadline), Outcome::Acquire(res)) => {
                m.on_acquire(*key, *deadline, res)?
            }
            (Input::Cancel(w), Outcome::Event(res)) => m.on_cancel(*w, res)?,
            (Input::Release(l, how), Outcome::Event(res)) => m.on_release(*l, *how, res)?,
            (Input::Connected(c, p), Outcome::Event(res)) => m.on_connected(*c, *p, res)?,
            (Input::ConnectFailed(c, f), Outcome::Event(res)) => {
                m.on_connect_failed(*c, *f, res)?
            }
            (Input::PeerMaxStreams(c, n), Outcome::Event(res)) => {
                m.on_peer_max_streams(*c, *n, res)?
            }
            (Input::GoingAway(c), Outcome::Event(res)) => m.on_going_away(*c, res)?,
            (Input::TransportClosed(c), Outcome::Event(res)) => m.on_transport_closed(*c, res)?,
            (Input::HealthOk(c), Outcome::Event(res)) => m.on_health_ok(*c, res)?,
            (Input::Suspect(c), Outcome::Event(res)) => m.on_suspect(*c, res)?,
            (Input::HandleTimeout, Outcome::Unit) => {}
            (Input::Shutdown(how), Outcome::Unit) => m.on_shutdown(*how),
            (Input::SetMinIdle(key, min), Outcome::Count(res)) => {
                m.on_set_min_idle(*key, *min, res)?
            }
            (input, outcome) => return Err(format!("{input:?} answered {outcome:?}")),
        }
        self.drain()?;
        if let Some((c, _)) = self.model.conns.iter().find(|(_, c)| c.suspected) {
            return Err(format!("suspect({c:?}) asked for no health check"));
        }
        // A caller wakes the core whenever its deadline has come.
        let mut rounds = 0;
        while let Some(t) = self.pool.poll_timeout() {
            if t > self.now {
                break;
            }
            rounds += 1;
            ensure!(
                rounds <= 8,
                "the core keeps asking to be woken at {t:?}, which has passed (now {:?})",
                self.now
            );
            self.pool.handle_timeout(self.now);
            self.trace
                .push(Trace::Input(self.now, Input::HandleTimeout, Outcome::Unit));
            self.drain()?;
        }
        self.trace.push(Trace::Wake(self.pool.poll_timeout()));
        self.model.end_step(&self.pool, self.key_of)
    }

    fn drain(&mut self) -> Result<(), String> {
        while let Some(action) = self.pool.poll_action() {
            self.trace.push(Trace::Action(action));
            let open_key = match action {
                Action::Open { conn } => self.pool.key(conn).and_then(|k| self.key_index(k)),
                _ => None,
            };
            self.model.on_action(action, open_key)?;
        }
        self.pool
            .check_invariants()
            .map_err(|e| format!("check_invariants: {e}"))
    }

    fn snapshot(&self) -> Snapshot {
        let m = &self.model;
        let conns = m.conns.keys().chain(m.dead_conns.iter());
        let leases = m.leases.values().chain(m.dead_leases.iter());
        let waiters = m.waiters.keys().chain(m.dead_waiters.iter());
        Snapshot {
            stats: self.pool.stats(),
            keys: (0..self.keys)
                .map(|k| self.pool.key_stats(&(self.key_of)(k)))
                .collect(),
            conns: conns.map(|c| self.pool.conn_info(*c)).collect(),
            leased: leases.map(|l| self.pool.is_leased(*l)).collect(),
            waiting: waiters
                .map(|w| self.pool.waiter_key(*w).is_some())
                .collect(),
            wake: self.pool.poll_timeout(),
        }
    }

    /// Resolves a misuse to an input the core must refuse, and what it must say.
    fn resolve_misuse(&self, m: Misuse, pick: Pick) -> Option<(Input, Expect)> {
        let model = &self.model;
        let tombstones = self.conns_where(|c| c.state == MState::Closed);
        let dead_conn = |i: Index| -> Option<(ConnId, Expect)> {
            let mut v: Vec<(ConnId, Expect)> = model
                .dead_conns
                .iter()
                .filter(|c| !model.conns.contains_key(c))
                .map(|c| (*c, Expect::Stale(HandleKind::Connection)))
                .collect();
            // The close action promises `Stale` for a closed connection; the core
            // answers some inputs on one with leases still out with `WrongState`.
            v.extend(tombstones.iter().map(|c| (*c, Expect::AnyError)));
            (!v.is_empty()).then(|| *i.get(&v))
        };
        let conn = |live: &dyn Fn(&MConn) -> bool| -> Option<(ConnId, Expect)> {
            match pick {
                Pick::Dead(i) => dead_conn(i),
                Pick::Live(i) => {
                    let v = self.conns_where(|c| c.state != MState::Closed && live(c));
                    (!v.is_empty()).then(|| (*i.get(&v), Expect::WrongState))
                }
                Pick::Forged(index, generation) => {
                    let c = ConnId::from_parts(index, generation);
                    (!model.issued_conns.contains(&c))
                        .then_some((c, Expect::Stale(HandleKind::Connection)))
                }
            }
        };
        match m {
            Misuse::Cancel => {
                let w = match pick {
                    Pick::Dead(i) | Pick::Live(i) => {
                        (!model.dead_waiters.is_empty()).then(|| *i.get(&model.dead_waiters))?
                    }
                    Pick::Forged(index, generation) => {
                        let w = WaiterId::from_parts(index, generation);
                        if model.waiters.contains_key(&w) || model.ends.contains_key(&w) {
                            return None;
                        }
                        w
                    }
                };
                Some((Input::Cancel(w), Expect::Stale(HandleKind::Waiter)))
            }
            Misuse::Release(how) => {
                let dead = &model.dead_leases;
                if dead.is_empty() {
                    return None;
                }
                let lease = match pick {
                    Pick::Dead(i) | Pick::Live(i) => *i.get(dead),
                    Pick::Forged(index, _) => dead[index as usize % dead.len()],
                };
                Some((Input::Release(lease, how), Expect::Stale(HandleKind::Lease)))
            }
            Misuse::Connected(p) => {
                conn(&|c| c.state != MState::Connecting).map(|(c, e)| (Input::Connected(c, p), e))
            }
            Misuse::ConnectFailed => conn(&|c| c.state != MState::Connecting)
                .map(|(c, e)| (Input::ConnectFailed(c, ConnectFailure::Transient), e)),
            Misuse::PeerMaxStreams(n) => conn(&|c| !c.connected || c.exclusive)
                .map(|(c, e)| (Input::PeerMaxStreams(c, n), e)),
            Misuse::GoingAway => {
                conn(&|c| c.state == MState::Connecting).map(|(c, e)| (Input::GoingAway(c), e))
            }
            Misuse::TransportClosed => {
                let (c, e) = match pick {
                    Pick::Live(i) => dead_conn(i)?,
                    _ => conn(&|_| false)?,
                };
                let e = if matches!(e, Expect::AnyError) {
                    Expect::Stale(HandleKind::Connection)
                } else {
                    e
                };
                Some((Input::TransportClosed(c), e))
            }
            Misuse::HealthOk => conn(&|c| !c.check_out).map(|(c, e)| (Input::HealthOk(c), e)),
            Misuse::Suspect => {
                conn(&|c| c.state == MState::Connecting).map(|(c, e)| (Input::Suspect(c), e))
            }
        }
    }

    /// An input with a stale, forged or wrong-state handle: refused, and nothing
    /// changes (no action, same counters, same views, same deadline).
    pub fn misuse(&mut self, m: Misuse, pick: Pick) -> Result<(), String> {
        match self.resolve_misuse(m, pick) {
            Some((input, expect)) => self.refused(input, expect),
            None => Ok(()),
        }
    }

    fn refused(&mut self, input: Input, expect: Expect) -> Result<(), String> {
        let before = self.snapshot();
        let outcome = self.call(&input);
        self.trace
            .push(Trace::Input(self.now, input.clone(), outcome.clone()));
        let err = match outcome {
            Outcome::Event(Err(e)) => e,
            other => {
                return Err(format!(
                    "{input:?} was accepted ({other:?}); its handle is stale, forged or in the wrong state"
                ))
            }
        };
        let right = match expect {
            Expect::Stale(kind) => err == EventError::Stale(kind),
            Expect::WrongState => err == EventError::WrongState,
            Expect::AnyError => true,
        };
        ensure!(
            right,
            "{input:?} was refused with {err:?}, expected {expect:?}"
        );
        if let Some(action) = self.pool.poll_action() {
            return Err(format!("the refused {input:?} produced {action:?}"));
        }
        let after = self.snapshot();
        ensure!(
            before == after,
            "the refused {input:?} changed the pool:\n  before {before:?}\n  after  {after:?}"
        );
        self.pool
            .check_invariants()
            .map_err(|e| format!("check_invariants after a refused input: {e}"))
    }

    /// Connects what is connecting, releases every lease, answers health checks, and
    /// lets time pass beyond every deadline; then checks that every request ended
    /// exactly once and nothing is left behind.
    pub fn quiesce(&mut self, proto: Proto) -> Result<(), String> {
        let cfg = self.model.cfg.clone();
        let horizon = [
            cfg.acquire_timeout,
            cfg.connect_timeout,
            cfg.idle_timeout.unwrap_or_default(),
            cfg.max_lifetime.unwrap_or_default(),
            cfg.forget_key_after,
            cfg.circuit.open_for,
            cfg.backoff.max,
            cfg.health_check.interval.unwrap_or_default() + cfg.health_check.timeout,
        ]
        .into_iter()
        .sum::<Duration>()
            + ms(1);
        let mut jumps = 0;
        for _ in 0..2_000 {
            if let Some(&c) = self.conns_where(|c| c.state == MState::Connecting).first() {
                self.input(Input::Connected(c, proto))?;
            } else if let Some(&lease) = self.model.leases.values().next() {
                self.input(Input::Release(lease, Release::Reuse))?;
            } else if let Some(&c) = self.conns_where(|c| c.check_out).first() {
                self.input(Input::HealthOk(c))?;
            } else if !self.model.waiters.is_empty() {
                let t = self
                    .pool
                    .poll_timeout()
                    .ok_or("requests wait but the core has no deadline")?;
                self.now = self.now.max(t);
                self.input(Input::HandleTimeout)?;
            } else if jumps < 6 && (self.pool.stats().open > 0 || self.pool.keys().next().is_some())
            {
                jumps += 1;
                self.now = self.now.saturating_add(horizon);
                self.input(Input::HandleTimeout)?;
            } else {
                break;
            }
        }
        let m = &self.model;
        ensure!(
            m.waiters.is_empty(),
            "requests still wait at the end: {:?}",
            m.waiters.keys().collect::<Vec<_>>()
        );
        ensure!(m.leases.is_empty(), "leases still out at the end");
        let stats = self.pool.stats();
        ensure!(
            stats.waiting == 0 && stats.leases == 0 && stats.connecting == 0,
            "the core still holds work: {stats:?}"
        );
        let ended = m.ends.len() as u64;
        let t = &m.totals;
        let answered = t.waited_grants
            + t.cancelled
            + m.ends
                .values()
                .filter(|e| matches!(e, End::Rejected(_)))
                .count() as u64;
        ensure!(
            ended == answered,
            "{ended} requests ended, the counters account for {answered}"
        );
        if m.shutdown.is_some() {
            ensure!(
                self.pool.is_shut_down(),
                "shut down, idle, but not is_shut_down()"
            );
        }
        let retires = cfg.idle_timeout.is_some() || cfg.max_lifetime.is_some();
        // (A key with a minimum set at run time is kept, and its connections.)
        let set = m.keys.values().any(|k| k.min_idle.is_some());
        if retires && cfg.min_idle_per_key == 0 && !set {
            ensure!(
                stats.open == 0,
                "connections are left open long after their last use: {stats:?}"
            );
            let left: Vec<&K> = self.pool.keys().collect();
            ensure!(
                left.is_empty(),
                "{} keys are remembered long after their last use",
                left.len()
            );
        }
        Ok(())
    }
}

impl<K: Hash + Eq + Clone> Harness<K> {
    /// The index of the next exchange in the trace, to look at what came after.
    pub fn mark(&self) -> usize {
        self.trace.len()
    }

    /// The actions drained since `mark`.
    pub fn actions_since(&self, mark: usize) -> Vec<Action> {
        self.trace[mark..]
            .iter()
            .filter_map(|t| match t {
                Trace::Action(a) => Some(*a),
                _ => None,
            })
            .collect()
    }

    /// Asks for capacity on `key` (checked like every step) and returns the answer.
    pub fn acquire(
        &mut self,
        key: Key,
        deadline: Option<Instant>,
    ) -> Result<Result<Acquire, RejectReason>, String> {
        let mark = self.mark();
        self.input(Input::Acquire(key, deadline))?;
        match &self.trace[mark] {
            Trace::Input(_, _, Outcome::Acquire(res)) => Ok(*res),
            other => Err(format!("unexpected trace entry {other:?}")),
        }
    }

    /// Lets time pass to `t` (if later) and calls `handle_timeout`.
    pub fn advance_to(&mut self, t: Instant) -> Result<(), String> {
        self.now = self.now.max(t);
        self.input(Input::HandleTimeout)
    }

    /// Lets time pass to the core's next deadline; false if it has none.
    pub fn advance_to_deadline(&mut self) -> Result<bool, String> {
        match self.pool.poll_timeout() {
            Some(t) => self.advance_to(t).map(|()| true),
            None => Ok(false),
        }
    }

    /// The connections of `key` that are connecting.
    pub fn connecting(&self, key: Key) -> Vec<ConnId> {
        self.conns_where(|c| c.key == key && c.state == MState::Connecting)
    }

    /// The leases out, oldest first.
    pub fn leases(&self) -> Vec<Lease> {
        self.model.leases.values().copied().collect()
    }

    /// How many requests wait on `key`.
    pub fn waiting(&self, key: Key) -> usize {
        self.model.keys.get(&key).map_or(0, |k| k.waiters.len())
    }

    /// Checks, from the trace alone, that each key's requests were granted in the
    /// order they arrived: no grant while an earlier request on the key still waits.
    pub fn check_fifo_from_trace(&self) -> Result<(), String> {
        let mut queues: BTreeMap<Key, VecDeque<WaiterId>> = BTreeMap::new();
        let mut key_of: BTreeMap<WaiterId, Key> = BTreeMap::new();
        let drop_waiter = |queues: &mut BTreeMap<Key, VecDeque<WaiterId>>,
                           key_of: &BTreeMap<WaiterId, Key>,
                           w: &WaiterId| {
            if let Some(q) = key_of.get(w).and_then(|k| queues.get_mut(k)) {
                q.retain(|x| x != w);
            }
        };
        for t in &self.trace {
            match t {
                Trace::Input(
                    _,
                    Input::Acquire(key, _),
                    Outcome::Acquire(Ok(Acquire::Queued(w))),
                ) => {
                    queues.entry(*key).or_default().push_back(*w);
                    key_of.insert(*w, *key);
                }
                Trace::Input(_, Input::Cancel(w), Outcome::Event(Ok(()))) => {
                    drop_waiter(&mut queues, &key_of, w)
                }
                Trace::Action(Action::Reject { waiter, .. }) => {
                    drop_waiter(&mut queues, &key_of, waiter)
                }
                Trace::Action(Action::Grant { waiter, .. }) => {
                    let key = key_of
                        .get(waiter)
                        .ok_or_else(|| format!("grant to unknown {waiter:?}"))?;
                    let q = queues.get_mut(key).expect("queued keys have queues");
                    ensure!(
                        q.front() == Some(waiter),
                        "{waiter:?} on key {key} was granted while {:?} arrived earlier and still waited",
                        q.front()
                    );
                    q.pop_front();
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// After quiescence: every waiter and lease ever issued, and every connection
    /// that is closed, is refused by every input that names it, and nothing changes.
    pub fn check_finished_handles_refused(&mut self) -> Result<(), String> {
        let mut conns = BTreeSet::new();
        let mut waiters = BTreeSet::new();
        let mut leases = BTreeMap::new();
        for t in &self.trace {
            match t {
                Trace::Action(Action::Open { conn }) => {
                    conns.insert(*conn);
                }
                Trace::Action(Action::Grant { waiter, lease }) => {
                    waiters.insert(*waiter);
                    leases.insert(lease.id(), *lease);
                }
                Trace::Action(Action::Reject { waiter, .. }) => {
                    waiters.insert(*waiter);
                }
                Trace::Input(_, _, Outcome::Acquire(Ok(Acquire::Queued(w)))) => {
                    waiters.insert(*w);
                }
                Trace::Input(_, _, Outcome::Acquire(Ok(Acquire::Ready(l)))) => {
                    leases.insert(l.id(), *l);
                }
                _ => {}
            }
        }
        ensure!(
            self.model.waiters.is_empty() && self.model.leases.is_empty(),
            "not quiescent"
        );
        let conn = Expect::Stale(HandleKind::Connection);
        let mut probes: Vec<(Input, Expect)> = Vec::new();
        for c in conns
            .into_iter()
            .filter(|c| !self.model.conns.contains_key(c))
        {
            probes.extend([
                (Input::Connected(c, Proto::Http1), conn),
                (Input::Connected(c, Proto::Http2(3)), conn),
                (Input::ConnectFailed(c, ConnectFailure::Permanent), conn),
                (Input::PeerMaxStreams(c, 2), conn),
                (Input::GoingAway(c), conn),
                (Input::TransportClosed(c), conn),
                (Input::HealthOk(c), conn),
                (Input::Suspect(c), conn),
            ]);
        }
        for w in waiters {
            probes.push((Input::Cancel(w), Expect::Stale(HandleKind::Waiter)));
        }
        for l in leases.into_values() {
            probes.push((
                Input::Release(l, Release::Reuse),
                Expect::Stale(HandleKind::Lease),
            ));
            probes.push((
                Input::Release(l, Release::Close),
                Expect::Stale(HandleKind::Lease),
            ));
        }
        for (input, expect) in probes {
            self.refused(input, expect)?;
        }
        Ok(())
    }
}

/// Runs a case on a fresh pool with `u8` keys.
pub fn run_case(case: &Case) -> Result<(), String> {
    Harness::new(case.config.clone(), case.keys, |k| k).run(case)
}

/// Runs a case on a fresh pool with keys `key_of(0..keys)`, and returns everything
/// that passed between the test and the core, with how the run ended.
pub fn trace_of<K: Hash + Eq + Clone>(
    case: &Case,
    key_of: fn(Key) -> K,
) -> (Vec<Trace>, Result<(), String>) {
    let mut h = Harness::new(case.config.clone(), case.keys, key_of);
    let result = h.run(case);
    (h.trace, result)
}
