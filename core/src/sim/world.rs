//! The simulated world around the pool: sessions that make requests, origins that
//! connect, serve, stall and fail, and a virtual clock.
//!
//! The clock jumps from one instant to the next at which anything happens: the
//! earliest of the pool's own deadline ([`Pool::poll_timeout`](crate::Pool::poll_timeout))
//! and the world's next scheduled event. The pool's timers run first when both fall
//! on the same instant, exactly as an adapter that wakes on the deadline would. Every
//! input goes through a [`Checker`], so every step is checked.
//!
//! A run has three parts. In the fault phase the origins misbehave at the rates of
//! [`Faults`]. After it the world is healed: nothing fails any more, and requests
//! made once the pool had time to recover ([`Options::fault_phase`] plus a connect
//! timeout, the circuit's open period, the longest backoff and two connects) must
//! not be refused for connect failures or an open circuit, unless connects are
//! configured to time out before the origins can answer. Every session must finish
//! within the most its requests can take (each waits at most the acquire timeout),
//! every request must be answered exactly once, and once the sessions are done and
//! the pool has had the same recovery time, no connect may be left in flight.
//! Then the pool shuts down, and must close everything; the events still
//! scheduled are delivered last, and must all be refused as stale.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;
use std::time::Duration;

use super::check::{Checker, Rule, Violation};
use super::options::{Dice, Options, Protocol};
use crate::{
    Acquire, AcquireOptions, Action, Attempt, CloseReason, Closes, ConnId, Connected, Instant,
    Lease, RejectReason, Rejections, Release, Shutdown, WaiterId,
};

/// What one run did: the figures a person reads, and a fingerprint of the whole
/// trace so that two runs can be compared exactly.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Report {
    /// The seed of the run.
    pub seed: u64,
    /// Sessions run.
    pub sessions: u32,
    /// Requests made.
    pub requests: u64,
    /// Requests granted a lease (and done with it).
    pub completed: u64,
    /// Requests cancelled while waiting.
    pub cancelled: u64,
    /// Requests refused, by reason.
    pub rejections: Rejections,
    /// Requests sent again after their connection was cut under them, as the
    /// retry budget let them.
    pub retries: u64,
    /// Connections the pool opened.
    pub connections_opened: u64,
    /// Connects that failed or timed out.
    pub connect_failures: u64,
    /// Most connections open at once.
    pub peak_connections: u32,
    /// Connections the pool closed, by reason.
    pub closes: Closes,
    /// Connections whose transport was closed under them (server idle close, resets).
    pub transport_closes: u64,
    /// Share of grants that reused a connection.
    pub reuse_rate: f64,
    /// Median time a granted request waited, in virtual time.
    pub wait_p50: Duration,
    /// 99th percentile of the same.
    pub wait_p99: Duration,
    /// Longest time a granted request waited.
    pub wait_max: Duration,
    /// Longest time a refused request waited for its refusal.
    pub reject_max: Duration,
    /// Virtual time from the start to the end of the run.
    pub virtual_time: Duration,
    /// Inputs fed to the pool.
    pub steps: u64,
    /// Fingerprint of the trace (every input, answer and action).
    pub digest: u64,
    /// The trace lines, when [`Options::trace`] was set.
    pub trace: Vec<String>,
}

/// A run that broke a rule: the seed, what broke, and the trace up to it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed of the run.
    pub seed: u64,
    /// What broke.
    pub violation: Violation,
    /// The trace lines, when [`Options::trace`] was set.
    pub trace: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self.trace.len().saturating_sub(40);
        for line in &self.trace[tail..] {
            writeln!(f, "{line}")?;
        }
        write!(
            f,
            "simulation seed {} failed: {}",
            self.seed, self.violation
        )
    }
}

impl std::error::Error for Failure {}

/// Runs one simulation: a fault phase, a healed phase, then shutdown, every step
/// checked by a [`Checker`]. Besides the checker's rules, the run fails if a
/// session does not finish within the most its requests can take, if requests
/// made after the pool had time to recover from the faults are refused for
/// connect failures or an open circuit, or if connects are still in flight long
/// after the last session. `Err` carries the first broken rule.
pub fn run(options: &Options) -> Result<Report, Failure> {
    let mut world = World::new(options);
    match world.run() {
        Ok(()) => Ok(world.report()),
        Err(violation) => Err(Failure {
            seed: options.seed,
            violation,
            trace: world.checker.trace().to_vec(),
        }),
    }
}

#[derive(Debug, Clone, Copy)]
enum Event {
    /// A session makes its next request.
    Request(usize),
    /// A session gives up on its request number `.1` if it still waits.
    Cancel(usize, u32),
    /// A session is done with its lease.
    Finish(usize, Lease),
    /// A connect reports: up as `Some`, failed as `None`.
    ConnectDone(ConnId, Option<Connected>),
    /// The server's keep-alive timer, armed when the connection went idle after
    /// its `.1`-th grant.
    ServerIdle(ConnId, u64),
    /// The transport closes under the connection.
    Reset(ConnId),
    /// The peer announces it is going away.
    GoingAway(ConnId),
    /// The peer changes its stream limit.
    PeerLimit(ConnId, u32),
    /// A health check is answered.
    Pong(ConnId),
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Debug)]
struct Session {
    origin: u32,
    left: u32,
    request: u32,
    /// The waiter of its current request, and when it was made.
    waiting: Option<(WaiterId, Instant)>,
    /// The connection its last request was granted.
    last: Option<ConnId>,
    /// Its current request is a retry of one whose connection was cut.
    retrying: bool,
}

#[derive(Debug)]
struct World<'a> {
    opts: &'a Options,
    checker: Checker<u32>,
    /// Draws for the workload (arrivals, durations, latencies, cancels)...
    workload: Dice,
    /// ...and for faults, so that fault rates do not reshape the workload.
    faults: Dice,
    now: Instant,
    healed_at: Instant,
    recovered_at: Instant,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    reacted: u64,
    sessions: Vec<Session>,
    active: usize,
    requests: u64,
    waiting: BTreeMap<WaiterId, usize>,
    /// Grants per connection, for the server's keep-alive timer.
    activity: BTreeMap<ConnId, u64>,
    /// Connections reset under their leases: a request on one was cut.
    reset: BTreeSet<ConnId>,
    waits: Vec<Duration>,
    reject_max: Duration,
    peak: u32,
}

impl<'a> World<'a> {
    fn new(opts: &'a Options) -> World<'a> {
        let mut checker = Checker::new(opts.config.clone())
            .expect("simulation options carry a valid configuration");
        if opts.trace {
            checker.keep_trace();
        }
        let healed_at = Instant::ZERO.saturating_add(opts.fault_phase);
        let mut world = World {
            opts,
            checker,
            workload: Dice::new(opts.seed),
            faults: Dice::new(opts.seed ^ 0xfa17_5eed),
            now: Instant::ZERO,
            healed_at,
            recovered_at: healed_at.saturating_add(opts.recovery()),
            queue: BinaryHeap::new(),
            seq: 0,
            reacted: 0,
            sessions: Vec::new(),
            active: opts.sessions as usize,
            requests: 0,
            waiting: BTreeMap::new(),
            activity: BTreeMap::new(),
            reset: BTreeSet::new(),
            waits: Vec::new(),
            reject_max: Duration::ZERO,
            peak: 0,
        };
        world.plan_sessions();
        world
    }

    /// Draws every session's origin, length and start: some alone, some in bursts
    /// that start together (the first burst at time zero, on cold origins).
    fn plan_sessions(&mut self) {
        let (opts, d) = (self.opts, &mut self.workload);
        let span = (Duration::ZERO, opts.arrival_span);
        let bursts: Vec<Duration> = std::iter::once(Duration::ZERO)
            .chain((0..opts.sessions / 16).map(|_| d.between(span)))
            .collect();
        let total_weight: u64 = opts
            .origins
            .iter()
            .map(|o| u64::from(o.weight.max(1)))
            .sum();
        let mut starts = Vec::with_capacity(opts.sessions as usize);
        for _ in 0..opts.sessions {
            let mut ticket = d.range(0, total_weight - 1);
            let origin = opts.origins.iter().position(|o| {
                let w = u64::from(o.weight.max(1));
                let hit = ticket < w;
                ticket = ticket.saturating_sub(w);
                hit
            });
            let start = if d.chance(opts.burst) {
                bursts[d.range(0, bursts.len() as u64 - 1) as usize]
            } else {
                d.between(span)
            };
            self.sessions.push(Session {
                origin: origin.unwrap_or(0) as u32,
                left: d.range(1, u64::from(opts.requests_per_session.max(1))) as u32,
                request: 0,
                last: None,
                waiting: None,
                retrying: false,
            });
            starts.push(start);
        }
        for (s, start) in starts.into_iter().enumerate() {
            self.schedule_at(Instant::ZERO.saturating_add(start), Event::Request(s));
        }
    }

    fn run(&mut self) -> Result<(), Violation> {
        let opts = self.opts;
        let longest_request = opts.origins.iter().map(|o| o.request_time.1).max();
        // A request cut under its lease is sent once more: two attempts.
        let per_request = (opts.config.acquire_timeout + longest_request.unwrap_or_default()) * 2
            + opts.think_time.1;
        let bound = opts.arrival_span
            + per_request * opts.requests_per_session.max(1)
            + Duration::from_secs(1);
        while self.active > 0 {
            if !self.advance()? {
                let detail = format!(
                    "nothing scheduled, yet {} sessions are unfinished",
                    self.active
                );
                return Err(self.checker.violation(Rule::Progress, detail));
            }
            if self.now.elapsed_since_epoch() > bound {
                let detail = format!(
                    "{} sessions still running after {bound:?}, the most they could take",
                    self.active
                );
                return Err(self.checker.violation(Rule::Liveness, detail));
            }
        }
        let answered = {
            let s = self.checker.pool().stats();
            s.grants + s.cancelled + s.rejections.total()
        };
        if answered != self.requests {
            let detail = format!("{} requests made, {answered} answered", self.requests);
            return Err(self.checker.violation(Rule::ExactlyOnce, detail));
        }
        // Settle: connects still in flight (pre-warming, or opened for a request
        // that was since answered) must report or time out, once the world is
        // healed and the pool had time to recover.
        let settle_by = self
            .now
            .max(self.healed_at)
            .saturating_add(self.opts.recovery());
        while self.checker.pool().stats().connecting > 0 {
            if self.now > settle_by {
                let detail = format!("connects still in flight after {settle_by:?}");
                return Err(self.checker.violation(Rule::Liveness, detail));
            }
            if !self.advance()? {
                break;
            }
        }
        self.checker.wind_down(self.now, Shutdown::Graceful)?;
        // Whatever the world still had scheduled now names closed connections or
        // finished sessions: every such event must be refused as stale.
        while let Some(Reverse(next)) = self.queue.pop() {
            self.now = self.now.max(next.at);
            self.dispatch(next.event)?;
        }
        Ok(())
    }

    /// Moves to the next instant anything happens and does it. `false` when
    /// nothing is left to happen.
    fn advance(&mut self) -> Result<bool, Violation> {
        let timer = self.checker.pool().poll_timeout();
        let event = self.queue.peek().map(|Reverse(s)| s.at);
        match (timer, event) {
            (Some(t), e) if e.is_none_or(|e| t <= e) => {
                self.now = self.now.max(t);
                self.checker.handle_timeout(self.now)?;
                self.react()?;
            }
            _ => {
                let Some(Reverse(next)) = self.queue.pop() else {
                    return Ok(false);
                };
                self.now = self.now.max(next.at);
                self.dispatch(next.event)?;
            }
        }
        self.peak = self.peak.max(self.checker.pool().stats().open);
        Ok(true)
    }

    fn dispatch(&mut self, event: Event) -> Result<(), Violation> {
        let now = self.now;
        match event {
            Event::Request(s) => self.request(s)?,
            Event::Cancel(s, request) => {
                let session = &self.sessions[s];
                if let (Some((waiter, since)), true) = (session.waiting, session.request == request)
                {
                    if self.checker.cancel(waiter, now)?.is_ok() {
                        self.waiting.remove(&waiter);
                        self.sessions[s].waiting = None;
                        self.reject_max = self.reject_max.max(now.saturating_duration_since(since));
                        self.next_request(s);
                    }
                }
            }
            Event::Finish(s, lease) => {
                let how = match self.faulty() && self.faults.chance(self.opts.faults.not_reusable) {
                    true => Release::Close,
                    false => Release::Reuse,
                };
                let _ = self.checker.release(lease, now, how)?;
                self.arm_server_idle(lease.conn());
                // A request whose connection was reset under it failed; the
                // session may send it again, once, as a retry.
                let session = &mut self.sessions[s];
                if self.reset.contains(&lease.conn())
                    && !session.retrying
                    && self.workload.chance(self.opts.retry)
                {
                    session.retrying = true;
                    self.schedule(Duration::ZERO, Event::Request(s));
                } else {
                    self.next_request(s);
                }
            }
            Event::ConnectDone(conn, Some(info)) => {
                if self.checker.handle_connected(conn, now, info)?.is_ok() {
                    self.arm_server_idle(conn);
                }
            }
            Event::ConnectDone(conn, None) => {
                let _ = self.checker.handle_connect_failed(conn, now)?;
            }
            Event::ServerIdle(conn, grants) => {
                let idle = self.checker.conn(conn).is_some_and(|c| c.leases == 0);
                if idle && self.activity.get(&conn) == Some(&grants) {
                    let _ = self.checker.handle_transport_closed(conn, now)?;
                }
            }
            Event::Reset(conn) => {
                self.reset.insert(conn);
                let _ = self.checker.handle_transport_closed(conn, now)?;
            }
            Event::GoingAway(conn) => {
                let _ = self.checker.handle_going_away(conn, now)?;
            }
            Event::PeerLimit(conn, max) => {
                let _ = self.checker.handle_peer_max_streams(conn, now, max)?;
            }
            Event::Pong(conn) => {
                let _ = self.checker.handle_health_ok(conn, now)?;
            }
        }
        self.react()
    }

    fn request(&mut self, s: usize) -> Result<(), Violation> {
        let now = self.now;
        let timeout = self.opts.config.acquire_timeout;
        let mut options = match self.workload.chance(self.opts.own_deadline) {
            true => AcquireOptions::with_deadline(
                now.saturating_add(self.workload.between((Duration::ZERO, timeout))),
            ),
            false => AcquireOptions::default(),
        };
        if let Some(last) = self.sessions[s].last.filter(|_| self.opts.affinity) {
            options = options.preferring(last);
        }
        if self.sessions[s].retrying {
            options = options.attempt(Attempt::Retry);
        }
        self.requests += 1;
        let session = &mut self.sessions[s];
        session.request += 1;
        let (origin, request) = (session.origin, session.request);
        match self.checker.acquire(&origin, now, options)? {
            Ok(Acquire::Ready(lease)) => self.hold(s, lease, now),
            Ok(Acquire::Queued(waiter)) => {
                self.waiting.insert(waiter, s);
                self.sessions[s].waiting = Some((waiter, now));
                if self.workload.chance(self.opts.cancel) {
                    let after = self.workload.between((Duration::ZERO, timeout));
                    self.schedule(after, Event::Cancel(s, request));
                }
            }
            Err(reason) => self.refused(s, reason, now)?,
        }
        Ok(())
    }

    /// Carries out the actions of the checker's last step, once.
    fn react(&mut self) -> Result<(), Violation> {
        if self.reacted == self.checker.steps() {
            return Ok(());
        }
        self.reacted = self.checker.steps();
        for i in 0..self.checker.actions().len() {
            match self.checker.actions()[i] {
                Action::Open { conn } => self.open(conn),
                Action::Grant { waiter, lease } => {
                    if let Some(s) = self.waiting.remove(&waiter) {
                        let since = self.sessions[s]
                            .waiting
                            .take()
                            .map_or(self.now, |(_, since)| since);
                        self.hold(s, lease, since);
                    }
                }
                Action::Reject { waiter, reason } => {
                    if let Some(s) = self.waiting.remove(&waiter) {
                        let since = self.sessions[s]
                            .waiting
                            .take()
                            .map_or(self.now, |(_, since)| since);
                        self.refused(s, reason, since)?;
                    }
                }
                Action::Close { .. } => {}
                Action::HealthCheck { conn } => {
                    if !(self.faulty() && self.faults.chance(self.opts.faults.lost_ping)) {
                        let rtt = self.latency(conn);
                        self.schedule(rtt, Event::Pong(conn));
                    }
                }
            }
        }
        Ok(())
    }

    /// The origin decides how the connect goes.
    fn open(&mut self, conn: ConnId) {
        let Some(&origin) = self.checker.pool().key(conn) else {
            return;
        };
        let latency = self.latency(conn);
        let info = self.opts.origins[origin as usize].protocol.connected();
        let f = self.opts.faults;
        let faulty = self.faulty();
        if faulty && self.faults.chance(f.connect_hang) {
            self.schedule(
                self.opts.config.connect_timeout + latency,
                Event::ConnectDone(conn, Some(info)),
            );
        } else if faulty && self.faults.chance(f.connect_fail) {
            self.schedule(latency, Event::ConnectDone(conn, None));
        } else {
            self.schedule(latency, Event::ConnectDone(conn, Some(info)));
        }
        self.activity.insert(conn, 0);
    }

    /// A session got its lease: it uses it for a while, during which the origin
    /// may misbehave.
    fn hold(&mut self, s: usize, lease: Lease, since: Instant) {
        self.waits.push(self.now.saturating_duration_since(since));
        let conn = lease.conn();
        self.sessions[s].last = Some(conn);
        *self.activity.entry(conn).or_default() += 1;
        let opts = self.opts;
        let origin = &opts.origins[self.sessions[s].origin as usize];
        let duration = self.workload.between(origin.request_time);
        self.schedule(duration, Event::Finish(s, lease));
        if !self.faulty() {
            return;
        }
        let (f, during) = (self.opts.faults, (Duration::ZERO, duration));
        if self.faults.chance(f.reset) {
            let at = self.faults.between(during);
            self.schedule(at, Event::Reset(conn));
        }
        if self.faults.chance(f.going_away) {
            let at = self.faults.between(during);
            self.schedule(at, Event::GoingAway(conn));
        }
        if let Protocol::Http2 { max_streams } = origin.protocol {
            if self.faults.chance(f.limit_change) {
                let at = self.faults.between(during);
                let limit = self.faults.range(0, u64::from(max_streams) * 2) as u32;
                let restore = at
                    + self
                        .faults
                        .between((Duration::ZERO, Duration::from_secs(10)));
                self.schedule(at, Event::PeerLimit(conn, limit));
                self.schedule(restore, Event::PeerLimit(conn, max_streams));
            }
        }
    }

    /// A request was refused, at once or after waiting since `since`.
    fn refused(&mut self, s: usize, reason: RejectReason, since: Instant) -> Result<(), Violation> {
        self.reject_max = self
            .reject_max
            .max(self.now.saturating_duration_since(since));
        // A connect slower than the connect timeout fails without any fault; then
        // refusals are the configuration's doing, and nothing is promised.
        let connects_succeed = self.opts.config.connect_timeout > self.opts.max_connect_latency();
        let recovered = since >= self.recovered_at && connects_succeed;
        if recovered
            && matches!(
                reason,
                RejectReason::ConnectFailed | RejectReason::CircuitOpen
            )
        {
            let detail = format!(
                "a request made at {since:?}, after the faults stopped at {:?} and the pool had until {:?} to recover, was refused: {reason:?}",
                self.healed_at, self.recovered_at
            );
            return Err(self.checker.violation(Rule::Liveness, detail));
        }
        self.next_request(s);
        Ok(())
    }

    fn next_request(&mut self, s: usize) {
        let session = &mut self.sessions[s];
        session.retrying = false;
        session.left -= 1;
        if session.left == 0 {
            self.active -= 1;
        } else {
            let think = self.workload.between(self.opts.think_time);
            self.schedule(think, Event::Request(s));
        }
    }

    /// The server closes the connection if it is still idle after its keep-alive.
    fn arm_server_idle(&mut self, conn: ConnId) {
        let idle = self.checker.conn(conn).is_some_and(|c| c.leases == 0);
        let Some(&origin) = self.checker.pool().key(conn) else {
            return;
        };
        if let (true, Some(after)) = (idle, self.opts.origins[origin as usize].server_idle_close) {
            let grants = self.activity.get(&conn).copied().unwrap_or(0);
            self.schedule(after, Event::ServerIdle(conn, grants));
        }
    }

    fn latency(&mut self, conn: ConnId) -> Duration {
        let origin = self.checker.pool().key(conn).map_or(0, |&o| o as usize);
        self.workload
            .between(self.opts.origins[origin].connect_latency)
    }

    fn faulty(&self) -> bool {
        self.now < self.healed_at
    }

    fn schedule(&mut self, after: Duration, event: Event) {
        self.schedule_at(self.now.saturating_add(after), event);
    }

    fn schedule_at(&mut self, at: Instant, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    fn report(&mut self) -> Report {
        let stats = self.checker.pool().stats();
        self.waits.sort_unstable();
        let quantile = |q: f64| {
            let rank = ((self.waits.len() as f64 * q).ceil() as usize).max(1);
            self.waits.get(rank - 1).copied().unwrap_or_default()
        };
        Report {
            seed: self.opts.seed,
            sessions: self.opts.sessions,
            requests: self.requests,
            completed: stats.grants,
            cancelled: stats.cancelled,
            rejections: stats.rejections,
            retries: stats.retries,
            connections_opened: stats.connects,
            connect_failures: stats.connect_failures,
            peak_connections: self.peak,
            closes: stats.closes,
            transport_closes: stats.transport_closes,
            reuse_rate: stats.reuse_ratio(),
            wait_p50: quantile(0.5),
            wait_p99: quantile(0.99),
            wait_max: self.waits.last().copied().unwrap_or_default(),
            reject_max: self.reject_max,
            virtual_time: self.now.elapsed_since_epoch(),
            steps: self.checker.steps(),
            digest: self.checker.digest(),
            trace: self.checker.trace().to_vec(),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: {} sessions made {} requests",
            self.seed, self.sessions, self.requests
        )?;
        writeln!(
            f,
            "  requests     {} granted, {} cancelled, {} refused, {} retries",
            self.completed,
            self.cancelled,
            self.rejections.total(),
            self.retries
        )?;
        writeln!(
            f,
            "  connections  {} opened, {} failed to connect, at most {} open at once",
            self.connections_opened, self.connect_failures, self.peak_connections
        )?;
        writeln!(
            f,
            "  reuse        {:.1}% of grants reused a connection",
            self.reuse_rate * 100.0
        )?;
        writeln!(
            f,
            "  wait         p50 {:.1?}, p99 {:.1?}, max {:.1?} (refusals within {:.1?})",
            self.wait_p50, self.wait_p99, self.wait_max, self.reject_max
        )?;
        let refusals: Vec<String> = RejectReason::ALL
            .iter()
            .filter(|&&r| self.rejections[r] > 0)
            .map(|&r| format!("{} {}", r.as_str(), self.rejections[r]))
            .collect();
        writeln!(f, "  refused by   {}", list_or_none(&refusals))?;
        let closes: Vec<String> = CloseReason::ALL
            .iter()
            .filter(|&&r| self.closes[r] > 0)
            .map(|&r| format!("{} {}", r.as_str(), self.closes[r]))
            .chain(
                (self.transport_closes > 0)
                    .then(|| format!("by the transport {}", self.transport_closes)),
            )
            .collect();
        writeln!(f, "  closed by    {}", list_or_none(&closes))?;
        write!(
            f,
            "  virtual time {:.3?} in {} steps (trace digest {:016x})",
            self.virtual_time, self.steps, self.digest
        )
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
