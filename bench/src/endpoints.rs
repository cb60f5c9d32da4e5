//! The `endpoints` mode: muxpool-core's `Balancer` and `Sizer` in a
//! simulated world of several endpoints, side by side with round robin.
//!
//! The world is a discrete-event simulation on a virtual clock, seeded: each
//! endpoint has connections (idle, busy, connecting; a connect takes its
//! handshake time, at most 8 in flight (2 in the demand scenario) and 200
//! open per endpoint), answers
//! after a latency drawn from an exponential distribution around its mean,
//! and may be faulted: refusing (connections reset, connects refused),
//! black-holed (connections accepted, never answered) or down with its whole
//! region. Workers send requests in a closed loop, each with a 5 s deadline,
//! each attempt with a 500 ms timeout; an attempt that fails (a timeout, a
//! reset, a refused connect) is sent again, to the endpoint chosen anew,
//! while the request has time left, as the client does for idempotent
//! requests. Idle connections close after 60 s beyond the minimum kept warm.
//!
//! Each scenario runs over many seeds with the core's balancer choosing and
//! with round robin choosing, in the same run; the table gives, per
//! scenario and chooser, the worst seed's figure of each measure, and the
//! target, which the balancer's column must meet.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use muxpool::sans_io::{
    Balance, BalanceEvent, Balancer, Endpoint, Instant, Outcome, Pick, Sizer, Sizing,
};

const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
const DEADLINE: Duration = Duration::from_secs(5);
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_CONNECTING: u32 = 8;
const MAX_OPEN: u32 = 200;

/// SplitMix64, for the world's own draws (latencies), apart from the core's.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An exponential draw with mean `mean`.
    fn exp(&mut self, mean: Duration) -> Duration {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        mean.mul_f64(-(1.0 - u).ln())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Connections reset, connects refused.
    Refuse,
    /// Connections accepted, requests never answered.
    BlackHole,
}

struct Ep {
    region: u32,
    mean: Duration,
    connect_time: Duration,
    fault: Fault,
    /// Idle connections, by when they went idle; the most recent last.
    idle: Vec<Instant>,
    busy: u32,
    connecting: u32,
    queue: VecDeque<usize>,
    min_idle: u32,
    sizer: Option<Sizer>,
    waits: (u128, u64),
    attempts: u64,
}

impl Ep {
    fn open(&self) -> u32 {
        self.idle.len() as u32 + self.busy + self.connecting
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Queued,
    Sent,
    Done,
}

struct Attempt {
    req: usize,
    ep: usize,
    pick: Option<Pick>,
    since: Instant,
    stage: Stage,
}

struct Req {
    worker: usize,
    arrival: Instant,
    deadline: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Tick,
    Arrive {
        worker: usize,
    },
    ConnectDone {
        ep: usize,
        ok: bool,
        started: Instant,
    },
    Response {
        attempt: usize,
    },
    Timeout {
        attempt: usize,
    },
}

/// What happens to the world at an instant of a scenario.
#[derive(Debug, Clone, Copy)]
enum Change {
    Fault(usize, Fault),
    Concurrency(usize),
}

#[derive(Clone)]
struct Scenario {
    endpoints: Vec<(u32, Duration, Duration)>,
    concurrency: usize,
    timeline: Vec<(Duration, Change)>,
    end: Duration,
    sizing: bool,
    /// Connects in flight at most per endpoint.
    max_connecting: u32,
}

enum Chooser {
    Core(Box<Balancer<usize>>),
    RoundRobin(usize),
}

/// What one run measured.
#[derive(Default, Debug)]
struct Measured {
    latencies: Vec<Duration>,
    failed: u64,
    attempts_per_ep: Vec<u64>,
    /// Per 100 ms window: attempts started per region.
    windows: Vec<[u64; 2]>,
    /// Per second: (average wait, connections open).
    seconds: Vec<(Duration, u32)>,
    /// Per second: the waits for a connection (total in ns, count).
    wait_sums: Vec<(u128, u64)>,
    /// When each idle connection closed (the idle timeout, beyond the warm
    /// minimum).
    idle_closes: Vec<Instant>,
    /// Balancer events, with their times.
    events: Vec<(Instant, BalanceEvent<usize>)>,
    /// When each endpoint's first failure happened.
    first_failure: Vec<Option<Instant>>,
}

struct World {
    now: Instant,
    rng: Rng,
    eps: Vec<Ep>,
    attempts: Vec<Attempt>,
    reqs: Vec<Req>,
    heap: BinaryHeap<Reverse<(Instant, u64, Ev)>>,
    seq: u64,
    chooser: Chooser,
    concurrency: usize,
    workers: usize,
    m: Measured,
    window: [u64; 2],
    /// Waits for a connection in the current second: total, count.
    second: (u128, u64),
    max_connecting: u32,
}

impl World {
    fn new(s: &Scenario, seed: u64, core: bool) -> World {
        let mut balance = Balance::default();
        balance.seed = seed;
        let chooser = if core {
            let mut b = Balancer::new(balance).expect("valid balance");
            for (i, &(region, _, _)) in s.endpoints.iter().enumerate() {
                b.insert(i, Endpoint::new(region, 1), Instant::ZERO)
                    .expect("endpoint");
            }
            Chooser::Core(Box::new(b))
        } else {
            Chooser::RoundRobin(0)
        };
        let eps = s
            .endpoints
            .iter()
            .map(|&(region, mean, connect_time)| {
                let sizer = s
                    .sizing
                    .then(|| Sizer::new(Sizing::default()).expect("rule"));
                Ep {
                    region,
                    mean,
                    connect_time,
                    fault: Fault::None,
                    idle: Vec::new(),
                    busy: 0,
                    connecting: 0,
                    queue: VecDeque::new(),
                    min_idle: sizer.as_ref().map_or(0, Sizer::target),
                    sizer,
                    waits: (0, 0),
                    attempts: 0,
                }
            })
            .collect::<Vec<_>>();
        let n = eps.len();
        let mut w = World {
            now: Instant::ZERO,
            rng: Rng(seed ^ 0x5eed),
            eps,
            attempts: Vec::new(),
            reqs: Vec::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            chooser,
            concurrency: s.concurrency,
            workers: 0,
            m: Measured {
                first_failure: vec![None; n],
                ..Measured::default()
            },
            window: [0; 2],
            second: (0, 0),
            max_connecting: s.max_connecting,
        };
        w.at(Instant::ZERO, Ev::Tick);
        w.grow_workers();
        for ep in 0..n {
            w.settle(ep);
        }
        w
    }

    fn at(&mut self, t: Instant, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, ev)));
    }

    fn grow_workers(&mut self) {
        while self.workers < self.concurrency {
            let worker = self.workers;
            self.workers += 1;
            self.at(self.now, Ev::Arrive { worker });
        }
    }

    fn drain_events(&mut self) {
        if let Chooser::Core(b) = &mut self.chooser {
            while let Some(e) = b.poll_event() {
                self.m.events.push((self.now, e));
            }
        }
    }

    fn run(mut self, s: &Scenario) -> Measured {
        let mut timeline = s.timeline.clone();
        timeline.sort_by_key(|&(at, _)| at);
        let mut timeline: VecDeque<_> = timeline.into();
        let end = Instant::ZERO + s.end;
        while let Some(Reverse((t, _, ev))) = self.heap.pop() {
            if t > end {
                break;
            }
            self.now = t;
            while timeline
                .front()
                .is_some_and(|&(at, _)| Instant::ZERO + at <= t)
            {
                let (_, change) = timeline.pop_front().expect("front");
                self.apply(change);
            }
            match ev {
                Ev::Tick => self.tick(),
                Ev::Arrive { worker } => self.arrive(worker),
                Ev::ConnectDone { ep, ok, started } => self.connect_done(ep, ok, started),
                Ev::Response { attempt } => self.response(attempt),
                Ev::Timeout { attempt } => self.timeout(attempt),
            }
            self.drain_events();
        }
        self.m.attempts_per_ep = self.eps.iter().map(|e| e.attempts).collect();
        self.m
    }

    fn apply(&mut self, change: Change) {
        match change {
            Change::Concurrency(n) => {
                self.concurrency = n;
                self.grow_workers();
            }
            Change::Fault(ep, fault) => {
                self.eps[ep].fault = fault;
                if fault == Fault::Refuse {
                    // Every connection is reset: what was sent on them fails.
                    self.eps[ep].idle.clear();
                    let sent: Vec<usize> = (0..self.attempts.len())
                        .filter(|&a| {
                            self.attempts[a].ep == ep && self.attempts[a].stage == Stage::Sent
                        })
                        .collect();
                    for a in sent {
                        self.eps[ep].busy -= 1;
                        self.fail_attempt(a, true);
                    }
                }
            }
        }
    }

    fn tick(&mut self) {
        let ms = self.now.as_nanos() / 1_000_000;
        if ms % 100 == 0 {
            self.m.windows.push(std::mem::take(&mut self.window));
        }
        if ms % 1000 == 0 {
            let (sum, n) = std::mem::take(&mut self.second);
            self.m.wait_sums.push((sum, n));
            let avg = Duration::from_nanos(sum.checked_div(u128::from(n)).unwrap_or(0) as u64);
            let open = self.eps.iter().map(Ep::open).sum();
            self.m.seconds.push((avg, open));
            let now = self.now;
            for ep in 0..self.eps.len() {
                let e = &mut self.eps[ep];
                // Idle connections beyond the warm minimum close after the idle timeout.
                while e.idle.len() as u32 > e.min_idle
                    && e.idle.first().is_some_and(|&t| t + IDLE_TIMEOUT <= now)
                {
                    e.idle.remove(0);
                    self.m.idle_closes.push(now);
                }
                let open = e.open().max(1);
                let utilisation = e.busy * 100 / open;
                let wait = Duration::from_nanos(
                    e.waits.0.checked_div(u128::from(e.waits.1)).unwrap_or(0) as u64,
                );
                if let Some(target) = e
                    .sizer
                    .as_mut()
                    .and_then(|s| s.tick(now, wait, utilisation))
                {
                    e.min_idle = target;
                }
                if e.sizer
                    .as_ref()
                    .is_some_and(|s| s.poll_timeout() == Some(now + Duration::from_secs(10)))
                {
                    e.waits = (0, 0);
                }
                self.settle(ep);
            }
            if let Chooser::Core(b) = &mut self.chooser {
                b.handle_timeout(now);
            }
        }
        self.at(self.now + Duration::from_millis(100), Ev::Tick);
    }

    fn arrive(&mut self, worker: usize) {
        if worker >= self.concurrency {
            self.workers = self.workers.min(worker);
            return;
        }
        let req = self.reqs.len();
        self.reqs.push(Req {
            worker,
            arrival: self.now,
            deadline: self.now + DEADLINE,
        });
        self.start(req);
    }

    /// Starts an attempt of `req`, or fails the request if its time is up.
    fn start(&mut self, req: usize) {
        let now = self.now;
        if now >= self.reqs[req].deadline {
            self.m.failed += 1;
            let worker = self.reqs[req].worker;
            self.at(now, Ev::Arrive { worker });
            return;
        }
        let eps = &self.eps;
        let (ep, pick) = match &mut self.chooser {
            Chooser::Core(b) => {
                let pick = b
                    .choose(now, &|k: &usize| !eps[*k].idle.is_empty())
                    .expect("endpoints");
                (*b.key(&pick).expect("held"), Some(pick))
            }
            Chooser::RoundRobin(next) => {
                let ep = *next % eps.len();
                *next += 1;
                (ep, None)
            }
        };
        let attempt = self.attempts.len();
        self.attempts.push(Attempt {
            req,
            ep,
            pick,
            since: now,
            stage: Stage::Queued,
        });
        self.eps[ep].attempts += 1;
        self.window[(self.eps[ep].region as usize).min(1)] += 1;
        let timeout = (now + ATTEMPT_TIMEOUT).min(self.reqs[req].deadline);
        self.at(timeout, Ev::Timeout { attempt });
        self.eps[ep].queue.push_back(attempt);
        self.settle(ep);
    }

    /// Grants queued attempts onto idle connections, then opens what the
    /// queue and the warm minimum want.
    fn settle(&mut self, ep: usize) {
        while !self.eps[ep].idle.is_empty() {
            let Some(a) = self.eps[ep].queue.pop_front() else {
                break;
            };
            self.eps[ep].idle.pop();
            self.send(a);
        }
        let e = &self.eps[ep];
        let wanted = (e.queue.len() as u32 + e.min_idle.saturating_sub(e.idle.len() as u32))
            .saturating_sub(e.connecting);
        let room = self
            .max_connecting
            .saturating_sub(e.connecting)
            .min(MAX_OPEN.saturating_sub(e.open()));
        for _ in 0..wanted.min(room) {
            let e = &mut self.eps[ep];
            e.connecting += 1;
            let (took, ok) = match e.fault {
                Fault::Refuse => (Duration::from_millis(1), false),
                _ => (e.connect_time, true),
            };
            let started = self.now;
            self.at(self.now + took, Ev::ConnectDone { ep, ok, started });
        }
    }

    fn send(&mut self, a: usize) {
        let now = self.now;
        let at = &mut self.attempts[a];
        at.stage = Stage::Sent;
        let ep = at.ep;
        let e = &mut self.eps[ep];
        e.busy += 1;
        e.waits.0 += now.saturating_duration_since(at.since).as_nanos();
        e.waits.1 += 1;
        self.second.0 += now.saturating_duration_since(at.since).as_nanos();
        self.second.1 += 1;
        if e.fault != Fault::BlackHole {
            let latency = self.rng.exp(e.mean);
            self.at(now + latency, Ev::Response { attempt: a });
        }
    }

    fn connect_done(&mut self, ep: usize, ok: bool, started: Instant) {
        let now = self.now;
        self.eps[ep].connecting -= 1;
        if ok && self.eps[ep].fault != Fault::Refuse {
            self.eps[ep].idle.push(now);
            if let Chooser::Core(b) = &mut self.chooser {
                let _ = b.connected(&ep, now, now.saturating_duration_since(started));
            }
        } else {
            if let Chooser::Core(b) = &mut self.chooser {
                let _ = b.connect_failed(&ep, now);
            }
            self.m.first_failure[ep].get_or_insert(now);
            // The requests waiting for it were never sent: each goes again.
            let queued: Vec<usize> = self.eps[ep].queue.drain(..).collect();
            for a in queued {
                self.fail_attempt(a, false);
            }
        }
        self.settle(ep);
    }

    fn response(&mut self, a: usize) {
        if self.attempts[a].stage != Stage::Sent {
            return;
        }
        let now = self.now;
        self.attempts[a].stage = Stage::Done;
        let ep = self.attempts[a].ep;
        self.eps[ep].busy -= 1;
        self.eps[ep].idle.push(now);
        if let (Chooser::Core(b), Some(pick)) = (&mut self.chooser, self.attempts[a].pick.take()) {
            b.complete(pick, now, Outcome::Success).expect("pick");
        }
        let req = self.attempts[a].req;
        self.m
            .latencies
            .push(now.saturating_duration_since(self.reqs[req].arrival));
        let worker = self.reqs[req].worker;
        self.at(now, Ev::Arrive { worker });
        self.settle(ep);
    }

    fn timeout(&mut self, a: usize) {
        match self.attempts[a].stage {
            Stage::Done => {}
            Stage::Queued => {
                let ep = self.attempts[a].ep;
                self.eps[ep].queue.retain(|&q| q != a);
                self.fail_attempt(a, true);
            }
            Stage::Sent => {
                // The connection is given up on: closed.
                let ep = self.attempts[a].ep;
                self.eps[ep].busy -= 1;
                self.fail_attempt(a, true);
                self.settle(ep);
            }
        }
    }

    /// An attempt failed (`reached`: the endpoint had it) or was never sent:
    /// its request goes again.
    fn fail_attempt(&mut self, a: usize, reached: bool) {
        let now = self.now;
        self.attempts[a].stage = Stage::Done;
        let ep = self.attempts[a].ep;
        if reached {
            self.m.first_failure[ep].get_or_insert(now);
        }
        if let (Chooser::Core(b), Some(pick)) = (&mut self.chooser, self.attempts[a].pick.take()) {
            if reached {
                b.complete(pick, now, Outcome::Failure).expect("pick");
            } else {
                b.cancel(pick, now).expect("pick");
            }
        }
        let req = self.attempts[a].req;
        self.start(req);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn p99(latencies: &mut [Duration]) -> Duration {
    latencies.sort_unstable();
    latencies
        .get(latencies.len().saturating_sub(1) * 99 / 100)
        .copied()
        .unwrap_or_default()
}

/// A measure over seeds: the worst seed's figure for each chooser.
struct Row {
    scenario: &'static str,
    measure: &'static str,
    core: f64,
    baseline: f64,
    target: String,
    met: bool,
    unit: &'static str,
}

fn worst(values: impl Iterator<Item = f64>, higher_is_worse: bool) -> f64 {
    values.fold(if higher_is_worse { f64::MIN } else { f64::MAX }, |w, v| {
        if higher_is_worse {
            w.max(v)
        } else {
            w.min(v)
        }
    })
}

fn both(s: &Scenario, seeds: u64) -> (Vec<Measured>, Vec<Measured>) {
    let core = (1..=seeds)
        .map(|seed| World::new(s, seed, true).run(s))
        .collect();
    let rr = (1..=seeds)
        .map(|seed| World::new(s, seed, false).run(s))
        .collect();
    (core, rr)
}

/// (1) Three endpoints, one ten times slower.
fn slow_endpoint(seeds: u64, rows: &mut Vec<Row>) {
    let s = Scenario {
        endpoints: vec![(0, ms(10), ms(5)), (0, ms(10), ms(5)), (0, ms(100), ms(5))],
        concurrency: 30,
        timeline: vec![],
        end: secs(60),
        sizing: false,
        max_connecting: MAX_CONNECTING,
    };
    let (core, rr) = both(&s, seeds);
    let share = |m: &Measured| {
        m.attempts_per_ep[2] as f64 / m.attempts_per_ep.iter().sum::<u64>() as f64 * 100.0
    };
    let core_share = worst(core.iter().map(share), true);
    rows.push(Row {
        scenario: "1 one slow",
        measure: "share of requests to the slow endpoint",
        core: core_share,
        baseline: worst(rr.iter().map(share), true),
        target: "≤ 10 %".into(),
        met: core_share <= 10.0,
        unit: "%",
    });
    // p99 ratio, seed by seed.
    let mut ratios = vec![];
    let mut core_p99 = vec![];
    let mut rr_p99 = vec![];
    for (mut c, mut r) in core.into_iter().zip(rr) {
        let (cp, rp) = (p99(&mut c.latencies), p99(&mut r.latencies));
        ratios.push(cp.as_secs_f64() / rp.as_secs_f64());
        core_p99.push(cp.as_secs_f64() * 1e3);
        rr_p99.push(rp.as_secs_f64() * 1e3);
    }
    rows.push(Row {
        scenario: "1 one slow",
        measure: "p99 latency",
        core: worst(core_p99.into_iter(), true),
        baseline: worst(rr_p99.into_iter(), true),
        target: "≤ ⅓ of round robin's, each seed".into(),
        met: ratios.iter().all(|&r| r <= 1.0 / 3.0),
        unit: "ms",
    });
}

/// Requests that failed, worst seed.
fn failed_row(scenario: &'static str, core: &[Measured], rr: &[Measured], rows: &mut Vec<Row>) {
    let c = worst(core.iter().map(|m| m.failed as f64), true);
    rows.push(Row {
        scenario,
        measure: "requests failed (5 s deadline, retried)",
        core: c,
        baseline: worst(rr.iter().map(|m| m.failed as f64), true),
        target: "0".into(),
        met: c == 0.0,
        unit: "",
    });
}

/// (2) One endpoint refuses connections, one black-holes; both heal.
fn faults(seeds: u64, rows: &mut Vec<Row>) {
    let endpoints = vec![(0, ms(10), ms(5)); 5];
    let s = Scenario {
        endpoints,
        concurrency: 30,
        timeline: vec![
            (secs(10), Change::Fault(3, Fault::Refuse)),
            (secs(10), Change::Fault(4, Fault::BlackHole)),
            (secs(40), Change::Fault(3, Fault::None)),
            (secs(40), Change::Fault(4, Fault::None)),
        ],
        end: secs(200),
        sizing: false,
        max_connecting: MAX_CONNECTING,
    };
    let (core, rr) = both(&s, seeds);
    failed_row("2 refuse + black hole", &core, &rr, rows);
    let ejected_after = |m: &Measured, ep: usize| -> f64 {
        let first = m.first_failure[ep].unwrap_or(Instant::MAX);
        m.events
            .iter()
            .find(|(_, e)| matches!(e, BalanceEvent::Ejected { key, .. } if *key == ep))
            .map_or(f64::INFINITY, |(t, _)| {
                t.saturating_duration_since(first).as_secs_f64() * 1e3
            })
    };
    for (ep, what) in [
        (3, "refusing: ejected after its first failure"),
        (4, "black hole: ejected after its first failure"),
    ] {
        let c = worst(core.iter().map(|m| ejected_after(m, ep)), true);
        rows.push(Row {
            scenario: "2 refuse + black hole",
            measure: what,
            core: c,
            baseline: f64::NAN,
            target: "≤ 1000 ms".into(),
            met: c <= 1000.0,
            unit: "ms",
        });
    }
    let readmitted = |m: &Measured| -> f64 {
        let heal = Instant::ZERO + secs(40);
        [3usize, 4]
            .iter()
            .map(|&ep| {
                m.events
                    .iter()
                    .find(|(t, e)| {
                        *t >= heal && matches!(e, BalanceEvent::Readmitted { key } if *key == ep)
                    })
                    .map_or(f64::INFINITY, |(t, _)| {
                        t.saturating_duration_since(heal).as_secs_f64()
                    })
            })
            .fold(0.0, f64::max)
    };
    let c = worst(core.iter().map(readmitted), true);
    rows.push(Row {
        scenario: "2 refuse + black hole",
        measure: "both probed and readmitted, after healing at 40 s",
        core: c,
        baseline: f64::NAN,
        target: "before the end (160 s)".into(),
        met: c.is_finite(),
        unit: "s",
    });
}

/// (3) A whole region goes down and comes back.
fn region(seeds: u64, rows: &mut Vec<Row>) {
    let mut endpoints = vec![(0, ms(10), ms(5)); 3];
    endpoints.extend(vec![(1, ms(30), ms(40)); 3]);
    let down = 20;
    let up = 60;
    let mut timeline = vec![];
    for ep in 0..3 {
        timeline.push((secs(down), Change::Fault(ep, Fault::Refuse)));
        timeline.push((secs(up), Change::Fault(ep, Fault::None)));
    }
    let s = Scenario {
        endpoints,
        concurrency: 30,
        timeline,
        end: secs(200),
        sizing: false,
        max_connecting: MAX_CONNECTING,
    };
    let (core, rr) = both(&s, seeds);
    failed_row("3 region down", &core, &rr, rows);
    // Windows of 100 ms: where attempts went.
    let moved = |m: &Measured| -> f64 {
        let start = (down * 10) as usize + 1;
        m.windows[start..]
            .iter()
            .position(|w| w[1] as f64 >= 0.9 * (w[0] + w[1]).max(1) as f64)
            .map_or(f64::INFINITY, |i| (i + 1) as f64 * 100.0)
    };
    let c = worst(core.iter().map(moved), true);
    rows.push(Row {
        scenario: "3 region down",
        measure: "90 % of attempts in the next region after the outage",
        core: c,
        baseline: worst(rr.iter().map(moved), true),
        target: "≤ 1000 ms".into(),
        met: c <= 1000.0,
        unit: "ms",
    });
    // Which region has most attempts, second by second: switches count flaps.
    let switches = |m: &Measured| -> (f64, bool) {
        let mut last = 0;
        let mut switches = 0;
        for second in m.windows.chunks(10) {
            let (a, b) = second.iter().fold((0, 0), |(a, b), w| (a + w[0], b + w[1]));
            let major = usize::from(b > a);
            if major != last {
                switches += 1;
                last = major;
            }
        }
        (f64::from(switches), last == 0)
    };
    let c = worst(core.iter().map(|m| switches(m).0), true);
    let back = core.iter().all(|m| switches(m).1);
    rows.push(Row {
        scenario: "3 region down",
        measure: "switches of the busier region (away and back: 2)",
        core: c,
        baseline: worst(rr.iter().map(|m| switches(m).0), true),
        target: "2, back at the end".into(),
        met: c == 2.0 && back,
        unit: "",
    });
}

/// One figure of a run.
type Figure<'a> = dyn Fn(&Measured) -> f64 + 'a;

/// (4) Demand steps from 10 to 500 concurrent requests and back, with the
/// `Sizer` moving each endpoint's warm minimum; the balancer also runs
/// without sizing, for the wait after the step up and the idle connections
/// closed after demand fell, side by side.
fn demand(seeds: u64, rows: &mut Vec<Row>) {
    let s = Scenario {
        endpoints: vec![(0, ms(20), ms(100)); 3],
        concurrency: 10,
        timeline: vec![
            (secs(20), Change::Concurrency(500)),
            (secs(80), Change::Concurrency(10)),
        ],
        end: secs(240),
        sizing: true,
        // A 100 ms handshake, two at a time per endpoint: the step up waits
        // for connects, which is where a warm minimum can help.
        max_connecting: 2,
    };
    let (core, rr) = both(&s, seeds);
    // The balancer again, with no sizing: nothing kept warm beyond demand.
    let no_sizing_world = Scenario {
        sizing: false,
        ..s.clone()
    };
    let no_sizing: Vec<Measured> = (1..=seeds)
        .map(|seed| World::new(&no_sizing_world, seed, true).run(&no_sizing_world))
        .collect();
    failed_row("4 demand 10 → 500 → 10", &core, &rr, rows);
    let settled = |m: &Measured| -> f64 {
        // From the step, seconds until the average wait is under 100 ms.
        m.seconds[21..]
            .iter()
            .position(|&(wait, _)| wait < ms(100))
            .map_or(f64::INFINITY, |i| (i + 1) as f64)
    };
    let c = worst(core.iter().map(settled), true);
    rows.push(Row {
        scenario: "4 demand 10 → 500 → 10",
        measure: "average wait under 100 ms after the step up",
        core: c,
        baseline: worst(rr.iter().map(settled), true),
        target: "≤ 30 s".into(),
        met: c <= 30.0,
        unit: "s",
    });
    let peak = |m: &Measured| m.seconds[20..80].iter().map(|s| s.1).max().unwrap_or(0) as f64;
    rows.push(Row {
        scenario: "4 demand 10 → 500 → 10",
        measure: "warm connections at the peak",
        core: worst(core.iter().map(peak), false),
        baseline: worst(rr.iter().map(peak), false),
        target: "follow demand".into(),
        met: true,
        unit: "",
    });
    // The balancer with the Sizer against the balancer without, over the 30 s
    // after the step up (20 s to 50 s): the average wait for a connection.
    let step_wait = |m: &Measured| -> f64 {
        let (sum, n) = m.wait_sums[21..=50]
            .iter()
            .fold((0u128, 0u64), |(s, n), &(ws, wn)| (s + ws, n + wn));
        sum.checked_div(u128::from(n)).unwrap_or(0) as f64 / 1e6
    };
    // Idle connections closed by the idle timeout once demand fell (80 s on).
    let fell = Instant::ZERO + secs(80);
    let closed = |m: &Measured| m.idle_closes.iter().filter(|&&t| t >= fell).count() as f64;
    let compared: [(&str, &Figure<'_>, &str); 2] = [
        (
            "average wait in the 30 s after the step up (balancer with the Sizer / without)",
            &step_wait,
            "ms",
        ),
        (
            "idle connections closed after demand fell (balancer with the Sizer / without)",
            &closed,
            "",
        ),
    ];
    for (measure, f, unit) in compared {
        rows.push(Row {
            scenario: "4 demand 10 → 500 → 10",
            measure,
            core: worst(core.iter().map(f), true),
            baseline: worst(no_sizing.iter().map(f), true),
            target: "compared, no target".into(),
            met: true,
            unit,
        });
    }
    let after = |m: &Measured| m.seconds.last().map_or(0, |s| s.1) as f64;
    let c = worst(core.iter().map(after), true);
    rows.push(Row {
        scenario: "4 demand 10 → 500 → 10",
        measure: "connections open 160 s after demand fell",
        core: c,
        baseline: worst(rr.iter().map(after), true),
        target: "≤ 60 (the warm minimum, 3 × 10, and demand)".into(),
        met: c <= 60.0,
        unit: "",
    });
}

/// Runs every scenario over `seeds` seeds; prints the table; whether every
/// target was met.
pub fn run(seeds: u64) -> bool {
    let mut rows = vec![];
    eprintln!("endpoints: {seeds} seeds per scenario and chooser");
    slow_endpoint(seeds, &mut rows);
    faults(seeds, &mut rows);
    region(seeds, &mut rows);
    demand(seeds, &mut rows);
    println!(
        "| scenario | measure (worst of {seeds} seeds) | balancer | round robin | target | met |"
    );
    println!("|---|---|---:|---:|---|---|");
    let fmt = |v: f64, unit: &str| {
        if v.is_nan() {
            "-".to_string()
        } else if v.is_infinite() {
            "never".to_string()
        } else if v.fract() == 0.0 {
            format!("{v:.0} {unit}")
        } else {
            format!("{v:.1} {unit}")
        }
    };
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.measure,
            fmt(r.core, r.unit).trim(),
            fmt(r.baseline, r.unit).trim(),
            r.target,
            if r.met { "yes" } else { "**missed**" }
        );
    }
    rows.iter().all(|r| r.met)
}
