//! The caller's side of the contract, checked after every input.
//!
//! [`Pool::check_invariants`] looks at the core from the inside. [`Checker`] looks
//! at it from the outside, the way an adapter sees it: it keeps its own model of
//! what it was told (which requests wait, which leases are out, which connections
//! it was asked to open and what they turned out to be) and holds every answer and
//! every action against that model. The two views fail differently: a bookkeeping
//! slip inside the core can keep the core consistent with itself and still grant a
//! lease on a connection the caller was told to close; only the outside view sees
//! that.
//!
//! The model is deliberately small and independent of the core's data structures:
//! maps keyed by the handles the core issued, in a deterministic order, and the
//! configuration's numbers.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::hash::Hash;
use std::panic::{self, AssertUnwindSafe};

use crate::{
    Acquire, AcquireOptions, Action, Attempt, CloseReason, ConfigError, ConnId, ConnState,
    ConnectFailure, Connected, EventError, HandleKind, Instant, Lease, LeaseId, Mode, Pool,
    PoolConfig, RejectReason, Release, Shutdown, Stats, WaiterId,
};

/// Which promise of the core a [`Violation`] breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The core panicked (no sequence of inputs may panic it).
    Panic,
    /// [`Pool::check_invariants`] failed.
    Invariant,
    /// The core answered an input differently from what the caller's view implies:
    /// an error for a valid handle, success for a stale one, the wrong error, or a
    /// refusal whose reason does not hold.
    Answer,
    /// A request was answered twice, answered although it was not waiting, or
    /// vanished without an answer; or a lease was issued twice.
    ExactlyOnce,
    /// A lease was granted on a connection that cannot take it.
    Grant,
    /// Waiters of one key were not served in arrival order.
    Fairness,
    /// A request that preferred a connection able to take it at once was
    /// granted another.
    Affinity,
    /// A connection, connect or queue limit was exceeded.
    Limit,
    /// An open, close or health check that the caller's view does not allow.
    Connection,
    /// Something due by `now` did not happen: a deadline, a connect or health-check
    /// timeout, an idle timeout, an expiry.
    Deadline,
    /// A request waits while its key has free capacity, or nothing is scheduled
    /// that could ever answer it.
    Progress,
    /// The core's counters disagree with what the caller saw.
    Accounting,
    /// A simulation did not settle in bounded virtual time, or requests kept
    /// failing after the faults healed.
    Liveness,
}

/// A broken promise, with the step that exposed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The number of the input that exposed it (1 for the first input).
    pub step: u64,
    /// The time of that input.
    pub at: Instant,
    /// The input, as written in the trace.
    pub input: String,
    /// Which promise.
    pub rule: Rule,
    /// What happened, and what should have.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} violated at step {} ({:?}, {}): {}",
            self.rule, self.step, self.at, self.input, self.detail
        )
    }
}

impl std::error::Error for Violation {}

/// What the caller knows of a connection the core asked it to open and has not
/// closed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnView {
    /// What it turned out to be, once connected; `None` while connecting.
    pub connected: Option<Connected>,
    /// Leases out on it.
    pub leases: u32,
    /// Whether a health check was sent on it and not yet answered.
    pub health_check_pending: bool,
}

#[derive(Debug, Clone)]
struct Up {
    at: Instant,
    info: Connected,
    peer_limit: u32,
}

#[derive(Debug, Clone)]
struct ConnModel {
    key: usize,
    opened_at: Instant,
    up: Option<Up>,
    leases: u32,
    requests: u64,
    /// When the last lease came back (or it connected): the idle timeout runs from here.
    idle_since: Instant,
    /// When it was last known alive: health checks are due this long after.
    seen_at: Instant,
    pinged_at: Option<Instant>,
    /// Reported by `suspect` in this step: a health check may go out at once,
    /// leases out or not.
    suspected: bool,
    going_away: bool,
    not_reusable: bool,
}

#[derive(Debug, Clone, Copy)]
struct WaiterModel {
    key: usize,
    arrival: u64,
    since: Instant,
    deadline: Instant,
}

#[derive(Debug)]
struct KeyModel<K> {
    key: K,
    /// Waiters by arrival: the first entry is the one the next grant must name.
    queue: BTreeMap<u64, WaiterId>,
    open: u32,
    connecting: u32,
}

/// FNV-1a over everything written to it: a cheap fingerprint of the trace.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Ok(())
    }
}

/// A [`Pool`] driven through a harness that checks every answer and action.
///
/// Call the same inputs as on a [`Pool`]; each returns `Ok` with the pool's own
/// answer, or `Err` with the first [`Violation`] the step exposed. After each
/// input the harness drains every action (read them with [`Checker::actions`]),
/// holds each against its model of the caller's side, runs
/// [`Pool::check_invariants`], and compares the core's counters with what it saw.
///
/// Every input and action is written to a trace whose fingerprint
/// ([`Checker::digest`]) tells two runs apart; [`Checker::keep_trace`] keeps the
/// lines themselves.
#[derive(Debug)]
pub struct Checker<K> {
    pool: Pool<K>,
    config: PoolConfig,
    now: Instant,
    /// The latest `now` given to `handle_timeout`: everything due by then has happened.
    timers_until: Instant,
    step: u64,
    arrivals: u64,
    shutdown: Option<Shutdown>,
    actions: Vec<Action>,
    keys: Vec<KeyModel<K>>,
    index: HashMap<K, usize>,
    conns: BTreeMap<ConnId, ConnModel>,
    waiters: BTreeMap<WaiterId, WaiterModel>,
    leases: BTreeMap<LeaseId, Lease>,
    /// What the core's counters must read; idle, busy and draining are the core's
    /// own classification and are recounted by `check_invariants` instead.
    stats: Stats,
    /// When each new request and each retry let through arrived, for the
    /// retry budget; entries that left the window are dropped.
    requests_at: Vec<Instant>,
    retries_at: Vec<Instant>,
    input: String,
    line: String,
    digest: Fnv,
    trace: Option<Vec<String>>,
}

impl<K: Hash + Eq + Clone + fmt::Debug> Checker<K> {
    /// A checked pool with `config`, or why the configuration is refused.
    pub fn new(config: PoolConfig) -> Result<Checker<K>, ConfigError> {
        Ok(Checker {
            pool: Pool::new(config.clone())?,
            config,
            now: Instant::ZERO,
            timers_until: Instant::ZERO,
            step: 0,
            arrivals: 0,
            shutdown: None,
            actions: Vec::new(),
            keys: Vec::new(),
            index: HashMap::new(),
            conns: BTreeMap::new(),
            waiters: BTreeMap::new(),
            leases: BTreeMap::new(),
            stats: Stats::default(),
            requests_at: Vec::new(),
            retries_at: Vec::new(),
            input: String::new(),
            line: String::new(),
            digest: Fnv(0xcbf2_9ce4_8422_2325),
            trace: None,
        })
    }

    /// Keeps every trace line from now on (see [`Checker::trace`]).
    pub fn keep_trace(&mut self) {
        self.trace.get_or_insert_with(Vec::new);
    }

    /// Writes a line of the driver's own into the trace (and its digest).
    pub fn note(&mut self, text: &str) {
        self.line.clear();
        self.line.push_str(text);
        self.emit_line();
    }

    /// The trace lines kept since [`Checker::keep_trace`].
    pub fn trace(&self) -> &[String] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// A fingerprint of every trace line so far: equal for identical runs.
    pub fn digest(&self) -> u64 {
        self.digest.0
    }

    /// The pool under test.
    pub fn pool(&self) -> &Pool<K> {
        &self.pool
    }

    /// The latest time any input carried.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Inputs applied so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The actions the last input produced, in order.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// Requests waiting for an answer, in handle order.
    pub fn waiters(&self) -> impl ExactSizeIterator<Item = WaiterId> + '_ {
        self.waiters.keys().copied()
    }

    /// Leases out, in handle order.
    pub fn leases(&self) -> impl ExactSizeIterator<Item = Lease> + '_ {
        self.leases.values().copied()
    }

    /// Connections the core asked for and has not closed, in handle order.
    pub fn conns(&self) -> impl ExactSizeIterator<Item = ConnId> + '_ {
        self.conns.keys().copied()
    }

    /// What the caller knows of `conn`, if it is open.
    pub fn conn(&self, conn: ConnId) -> Option<ConnView> {
        self.conns.get(&conn).map(|c| ConnView {
            connected: c.up.as_ref().map(|up| up.info),
            leases: c.leases,
            health_check_pending: c.pinged_at.is_some(),
        })
    }

    // ------------------------------------------------------------------ inputs

    /// [`Pool::acquire`], checked.
    pub fn acquire(
        &mut self,
        key: &K,
        now: Instant,
        options: AcquireOptions,
    ) -> Result<Result<Acquire, RejectReason>, Violation> {
        self.begin(
            now,
            format_args!(
                "acquire({key:?}, deadline {:?}, prefer {:?}{})",
                options.deadline,
                options.prefer,
                match options.attempt {
                    Attempt::First => "",
                    Attempt::Again => ", again",
                    Attempt::Retry => ", retry",
                }
            ),
        );
        // The preferred connection, if it is this key's and has room now, as
        // the core itself reports it.
        let preferred = options.prefer.filter(|&conn| {
            self.pool.key(conn) == Some(key)
                && self
                    .pool
                    .conn_info(conn)
                    .is_some_and(|c| c.state == ConnState::Ready && c.leases < c.capacity)
        });
        let got = self.guard(|pool| pool.acquire(key, now, options))?;
        let retry = options.attempt == Attempt::Retry && self.shutdown.is_none();
        let budget_room = self.retry_budget_room();
        if retry && !budget_room && got != Err(RejectReason::RetryBudget) {
            return Err(self.violation(
                Rule::Limit,
                format!("a retry over the retry budget got {got:?}"),
            ));
        }
        match options.attempt {
            Attempt::First => self.requests_at.push(self.now),
            Attempt::Retry if got.is_ok() => {
                self.retries_at.push(self.now);
                self.stats.retries += 1;
            }
            _ => {}
        }
        let k = self.key_index(key);
        let queued = self.keys[k].queue.len() as u32;
        let queue_full = queued >= self.config.max_waiters_per_key;
        let late = options.deadline.is_some_and(|d| d <= self.now);
        if self.shutdown.is_some() && got != Err(RejectReason::ShuttingDown) {
            return Err(self.violation(
                Rule::Answer,
                format!("after shutdown, acquire gave {got:?}"),
            ));
        }
        match got {
            Ok(Acquire::Ready(lease)) => {
                if queued > 0 {
                    let detail = format!("granted at once while {queued} requests wait on the key");
                    return Err(self.violation(Rule::Fairness, detail));
                }
                if let Some(conn) = preferred.filter(|&c| c != lease.conn()) {
                    let detail = format!("preferred {conn:?}, which had room, but got {lease:?}");
                    return Err(self.violation(Rule::Affinity, detail));
                }
                self.lease_out(lease, k)?;
            }
            Ok(Acquire::Queued(waiter)) => {
                if self.waiters.contains_key(&waiter) {
                    return Err(
                        self.violation(Rule::ExactlyOnce, format!("{waiter:?} issued twice"))
                    );
                }
                if late {
                    return Err(self.violation(
                        Rule::Answer,
                        "queued a request whose deadline has passed".into(),
                    ));
                }
                if queue_full {
                    return Err(self.violation(
                        Rule::Limit,
                        format!("queued past max_waiters_per_key ({queued})"),
                    ));
                }
                let deadline = options
                    .deadline
                    .unwrap_or_else(|| self.now.saturating_add(self.config.acquire_timeout));
                self.arrivals += 1;
                let arrival = self.arrivals;
                self.keys[k].queue.insert(arrival, waiter);
                self.waiters.insert(
                    waiter,
                    WaiterModel {
                        key: k,
                        arrival,
                        since: self.now,
                        deadline,
                    },
                );
                self.stats.waiting += 1;
            }
            Err(reason) => {
                let holds = match reason {
                    RejectReason::ShuttingDown => self.shutdown.is_some(),
                    RejectReason::Timeout => late,
                    RejectReason::QueueFull => queue_full,
                    // The circuit is the core's own state; the caller cannot see it.
                    RejectReason::CircuitOpen => true,
                    RejectReason::ConnectFailed => false,
                    RejectReason::RetryBudget => retry && !budget_room,
                };
                if !holds {
                    return Err(self.violation(
                        Rule::Answer,
                        format!("refused with {reason:?}, which does not hold"),
                    ));
                }
                self.stats.rejections.bump(reason.slot());
            }
        }
        self.finish(&got)?;
        Ok(got)
    }

    /// Whether the retry budget has room for one more retry now, counted from
    /// the arrivals themselves: the window is the slot of `now` and the slots
    /// before it, each a tenth of the window wide.
    fn retry_budget_room(&mut self) -> bool {
        let budget = self.config.retry_budget;
        let width = (budget.window.as_nanos() / 10).max(1);
        let slot = |t: Instant| u128::from(t.as_nanos()) / width;
        let first = (slot(self.now) + 1).saturating_sub(10);
        self.requests_at.retain(|&t| slot(t) >= first);
        self.retries_at.retain(|&t| slot(t) >= first);
        let floor = u128::from(budget.min_per_second) * budget.window.as_millis() / 1000;
        let share = self.requests_at.len() as u128 * u128::from(budget.percent) / 100;
        (self.retries_at.len() as u128) < floor + share
    }

    /// [`Pool::cancel`], checked.
    pub fn cancel(
        &mut self,
        waiter: WaiterId,
        now: Instant,
    ) -> Result<Result<(), EventError>, Violation> {
        self.begin(now, format_args!("cancel({waiter:?})"));
        let got = self.guard(|pool| pool.cancel(waiter, now))?;
        let expected = match self.waiters.contains_key(&waiter) {
            true => Ok(()),
            false => Err(EventError::Stale(HandleKind::Waiter)),
        };
        self.answer(expected, &got)?;
        if got.is_ok() {
            self.unqueue(waiter);
            self.stats.cancelled += 1;
        }
        self.finish(&got)?;
        Ok(got)
    }

    /// [`Pool::release`], checked.
    pub fn release(
        &mut self,
        lease: Lease,
        now: Instant,
        how: Release,
    ) -> Result<Result<(), EventError>, Violation> {
        self.begin(now, format_args!("release({lease:?}, {how:?})"));
        let got = self.guard(|pool| pool.release(lease, now, how))?;
        let expected = match self.leases.get(&lease.id()) {
            Some(out) if *out == lease => Ok(()),
            _ => Err(EventError::Stale(HandleKind::Lease)),
        };
        self.answer(expected, &got)?;
        if got.is_ok() {
            self.leases.remove(&lease.id());
            self.stats.leases -= 1;
            let now = self.now;
            if let Some(c) = self.conns.get_mut(&lease.conn()) {
                c.leases -= 1;
                c.not_reusable |= how == Release::Close;
                if c.leases == 0 {
                    c.idle_since = now;
                    c.seen_at = now;
                }
            }
        }
        self.finish(&got)?;
        Ok(got)
    }

    /// [`Pool::handle_connected`], checked.
    pub fn handle_connected(
        &mut self,
        conn: ConnId,
        now: Instant,
        info: Connected,
    ) -> Result<Result<(), EventError>, Violation> {
        self.conn_event(
            now,
            format_args!("connected({conn:?}, {info:?})"),
            conn,
            |pool| pool.handle_connected(conn, now, info),
            |c| c.up.is_none(),
            |this| {
                let now = this.now;
                let c = this
                    .conns
                    .get_mut(&conn)
                    .expect("expected Ok only for a known connection");
                let peer_limit = match info.mode {
                    Mode::Multiplexed { max_streams } => max_streams,
                    Mode::Exclusive => 1,
                };
                c.up = Some(Up {
                    at: now,
                    info,
                    peer_limit,
                });
                c.idle_since = now;
                c.seen_at = now;
                this.keys[c.key].connecting -= 1;
                this.stats.connecting -= 1;
            },
        )
    }

    /// [`Pool::handle_connect_failed`], checked.
    pub fn handle_connect_failed(
        &mut self,
        conn: ConnId,
        now: Instant,
    ) -> Result<Result<(), EventError>, Violation> {
        self.handle_connect_error(conn, now, ConnectFailure::Transient)
    }

    /// [`Pool::handle_connect_error`], checked.
    pub fn handle_connect_error(
        &mut self,
        conn: ConnId,
        now: Instant,
        failure: ConnectFailure,
    ) -> Result<Result<(), EventError>, Violation> {
        self.conn_event(
            now,
            format_args!("connect_error({conn:?}, {failure:?})"),
            conn,
            |pool| pool.handle_connect_error(conn, now, failure),
            |c| c.up.is_none(),
            |this| {
                this.forget_conn(conn);
                this.stats.connect_failures += 1;
            },
        )
    }

    /// [`Pool::handle_peer_max_streams`], checked.
    pub fn handle_peer_max_streams(
        &mut self,
        conn: ConnId,
        now: Instant,
        max_streams: u32,
    ) -> Result<Result<(), EventError>, Violation> {
        let multiplexed = |c: &ConnModel| {
            c.up.as_ref()
                .is_some_and(|up| matches!(up.info.mode, Mode::Multiplexed { .. }))
        };
        self.conn_event(
            now,
            format_args!("peer_max_streams({conn:?}, {max_streams})"),
            conn,
            |pool| pool.handle_peer_max_streams(conn, now, max_streams),
            multiplexed,
            |this| {
                let up = this.conns.get_mut(&conn).and_then(|c| c.up.as_mut());
                up.expect("expected Ok only for a connected connection")
                    .peer_limit = max_streams;
            },
        )
    }

    /// [`Pool::handle_going_away`], checked.
    pub fn handle_going_away(
        &mut self,
        conn: ConnId,
        now: Instant,
    ) -> Result<Result<(), EventError>, Violation> {
        self.conn_event(
            now,
            format_args!("going_away({conn:?})"),
            conn,
            |pool| pool.handle_going_away(conn, now),
            |c| c.up.is_some(),
            |this| {
                this.conns
                    .get_mut(&conn)
                    .expect("expected Ok only for a known connection")
                    .going_away = true;
            },
        )
    }

    /// [`Pool::handle_transport_closed`], checked.
    pub fn handle_transport_closed(
        &mut self,
        conn: ConnId,
        now: Instant,
    ) -> Result<Result<(), EventError>, Violation> {
        self.conn_event(
            now,
            format_args!("transport_closed({conn:?})"),
            conn,
            |pool| pool.handle_transport_closed(conn, now),
            |_| true,
            |this| {
                if this.forget_conn(conn).up.is_some() {
                    this.stats.transport_closes += 1;
                } else {
                    this.stats.connect_failures += 1;
                }
            },
        )
    }

    /// [`Pool::handle_health_ok`], checked.
    pub fn handle_health_ok(
        &mut self,
        conn: ConnId,
        now: Instant,
    ) -> Result<Result<(), EventError>, Violation> {
        self.conn_event(
            now,
            format_args!("health_ok({conn:?})"),
            conn,
            |pool| pool.handle_health_ok(conn, now),
            |c| c.pinged_at.is_some(),
            |this| {
                let now = this.now;
                let c = this
                    .conns
                    .get_mut(&conn)
                    .expect("expected Ok only for a known connection");
                c.pinged_at = None;
                c.seen_at = now;
            },
        )
    }

    /// [`Pool::handle_suspect`], checked.
    pub fn handle_suspect(
        &mut self,
        conn: ConnId,
        now: Instant,
    ) -> Result<Result<(), EventError>, Violation> {
        let got = self.conn_event(
            now,
            format_args!("suspect({conn:?})"),
            conn,
            |pool| pool.handle_suspect(conn, now),
            |c| c.up.is_some(),
            |this| {
                let c = this
                    .conns
                    .get_mut(&conn)
                    .expect("expected Ok only for a known connection");
                c.suspected = true;
            },
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.suspected = false;
        }
        got
    }

    /// [`Pool::handle_timeout`], checked; also checks that everything due by `now`
    /// has happened.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Violation> {
        self.begin(now, format_args!("handle_timeout"));
        self.guard(|pool| pool.handle_timeout(now))?;
        self.timers_until = self.now;
        self.finish(&())?;
        self.check_nothing_overdue()
    }

    /// [`Pool::shutdown`], checked; also checks that no request is left waiting.
    pub fn shutdown(&mut self, now: Instant, how: Shutdown) -> Result<(), Violation> {
        self.begin(now, format_args!("shutdown({how:?})"));
        self.guard(|pool| pool.shutdown(now, how))?;
        if self.shutdown != Some(Shutdown::Immediate) {
            self.shutdown = Some(how);
        }
        self.finish(&())?;
        if let Some(w) = self.waiters.keys().next() {
            return Err(self.violation(
                Rule::ExactlyOnce,
                format!("{w:?} still waits after shutdown"),
            ));
        }
        Ok(())
    }

    /// Ends a run: shuts down the pool `how`, gives back every lease still out, and
    /// checks that the pool is then fully shut down with no connection left open.
    pub fn wind_down(&mut self, now: Instant, how: Shutdown) -> Result<(), Violation> {
        self.shutdown(now, how)?;
        while let Some(lease) = self.leases.values().next().copied() {
            let _ = self.release(lease, now, Release::Reuse)?;
        }
        if !self.pool.is_shut_down() || !self.conns.is_empty() {
            let detail = format!(
                "shut down with every lease back, yet {} connections are open",
                self.pool.stats().open
            );
            return Err(self.violation(Rule::Liveness, detail));
        }
        Ok(())
    }

    /// A violation of `rule` at the current step, for checks made by a driver (the
    /// simulator's liveness checks).
    pub fn violation(&self, rule: Rule, detail: String) -> Violation {
        Violation {
            step: self.step,
            at: self.now,
            input: self.input.clone(),
            rule,
            detail,
        }
    }

    // --------------------------------------------------------------- the step

    /// One event about a connection, checked: the input is traced, the core's
    /// answer is checked against whether the event `applies` to the connection as
    /// the caller knows it, and `on_ok` updates that knowledge when the core took it.
    fn conn_event(
        &mut self,
        now: Instant,
        input: fmt::Arguments<'_>,
        conn: ConnId,
        call: impl FnOnce(&mut Pool<K>) -> Result<(), EventError>,
        applies: impl Fn(&ConnModel) -> bool,
        on_ok: impl FnOnce(&mut Self),
    ) -> Result<Result<(), EventError>, Violation> {
        self.begin(now, input);
        let got = self.guard(call)?;
        self.answer_conn(conn, applies, &got)?;
        if got.is_ok() {
            on_ok(self);
        }
        self.finish(&got)?;
        Ok(got)
    }

    fn begin(&mut self, now: Instant, input: fmt::Arguments<'_>) {
        self.step += 1;
        self.now = self.now.max(now);
        self.actions.clear();
        self.input.clear();
        let _ = self.input.write_fmt(input);
        if now < self.now {
            let _ = write!(self.input, " at {now:?}");
        }
    }

    /// Drains and checks the actions of the step, writes the trace, then audits.
    fn finish(&mut self, result: &dyn fmt::Debug) -> Result<(), Violation> {
        self.line.clear();
        let _ = write!(self.line, "{:?} {} -> {:?}", self.now, self.input, result);
        self.emit_line();
        while let Some(action) = self.pool.poll_action() {
            self.actions.push(action);
            self.line.clear();
            let _ = write!(self.line, "  {action:?}");
            if let Action::Open { conn } = action {
                let _ = write!(self.line, " for {:?}", self.pool.key(conn));
            }
            self.emit_line();
            self.apply(action)?;
        }
        self.audit()
    }

    fn emit_line(&mut self) {
        let _ = self.digest.write_str(&self.line);
        let _ = self.digest.write_char('\n');
        if let Some(trace) = &mut self.trace {
            trace.push(self.line.clone());
        }
    }

    fn apply(&mut self, action: Action) -> Result<(), Violation> {
        match action {
            Action::Open { conn } => self.on_open(conn),
            Action::Close { conn, reason } => self.on_close(conn, reason),
            Action::Grant { waiter, lease } => {
                let Some(w) = self.waiters.get(&waiter).copied() else {
                    let detail = format!("grant names {waiter:?}, which is not waiting");
                    return Err(self.violation(Rule::ExactlyOnce, detail));
                };
                if let Some((_, head)) = self.keys[w.key].queue.first_key_value() {
                    if *head != waiter {
                        let detail = format!("granted {waiter:?} while {head:?} waits ahead of it");
                        return Err(self.violation(Rule::Fairness, detail));
                    }
                }
                self.unqueue(waiter);
                self.stats.waited_grants += 1;
                self.stats.wait_time += self.now.saturating_duration_since(w.since);
                self.lease_out(lease, w.key)
            }
            Action::Reject { waiter, reason } => {
                let Some(w) = self.waiters.get(&waiter).copied() else {
                    let detail = format!("reject names {waiter:?}, which is not waiting");
                    return Err(self.violation(Rule::ExactlyOnce, detail));
                };
                let wrong = match reason {
                    RejectReason::Timeout if w.deadline > self.now => Some(Rule::Deadline),
                    RejectReason::ShuttingDown if self.shutdown.is_none() => Some(Rule::Answer),
                    RejectReason::QueueFull => Some(Rule::Answer),
                    _ => None,
                };
                if let Some(rule) = wrong {
                    let detail = format!(
                        "{waiter:?} (deadline {:?}) rejected with {reason:?}",
                        w.deadline
                    );
                    return Err(self.violation(rule, detail));
                }
                self.unqueue(waiter);
                self.stats.rejections.bump(reason.slot());
                Ok(())
            }
            Action::HealthCheck { conn } => {
                let (now, interval) = (self.now, self.config.health_check.interval);
                let why_not = match self.conns.get(&conn) {
                    None => Some("it is not open".to_string()),
                    Some(c) => match &c.up {
                        None => Some("it is still connecting".into()),
                        Some(up) if !up.info.health_checks => {
                            Some("its protocol has no health check".into())
                        }
                        Some(_) if c.pinged_at.is_some() => {
                            Some("a health check is already out".into())
                        }
                        Some(_) if c.suspected => None,
                        Some(_) if c.leases > 0 => {
                            Some(format!("{} leases are out on it", c.leases))
                        }
                        Some(_) if interval.is_none_or(|i| c.seen_at.saturating_add(i) > now) => {
                            Some(format!("it was seen alive at {:?}", c.seen_at))
                        }
                        Some(_) => None,
                    },
                };
                if let Some(why) = why_not {
                    return Err(self
                        .violation(Rule::Connection, format!("health check on {conn:?}: {why}")));
                }
                self.conns.get_mut(&conn).expect("checked above").pinged_at = Some(now);
                Ok(())
            }
        }
    }

    fn on_open(&mut self, conn: ConnId) -> Result<(), Violation> {
        let key = self.pool.key(conn).cloned();
        let why_not = if self.conns.contains_key(&conn) {
            Some("it is already open")
        } else if self.shutdown.is_some() {
            Some("the pool is shut down")
        } else if key.is_none() {
            Some("the core does not know its key")
        } else {
            None
        };
        if let Some(why) = why_not {
            return Err(self.violation(Rule::Connection, format!("open {conn:?}: {why}")));
        }
        let k = self.key_index(&key.expect("checked above"));
        self.conns.insert(
            conn,
            ConnModel {
                key: k,
                opened_at: self.now,
                up: None,
                leases: 0,
                requests: 0,
                idle_since: self.now,
                seen_at: self.now,
                pinged_at: None,
                suspected: false,
                going_away: false,
                not_reusable: false,
            },
        );
        let km = &mut self.keys[k];
        km.open += 1;
        km.connecting += 1;
        self.stats.open += 1;
        self.stats.connecting += 1;
        self.stats.connects += 1;
        let cfg = &self.config;
        let (open, connecting, total) = (km.open, km.connecting, self.stats.open);
        if open > cfg.max_connections_per_key
            || connecting > cfg.max_connecting_per_key
            || total > cfg.max_connections
        {
            let detail = format!(
                "{conn:?} makes {open} open and {connecting} connecting on its key, {total} in all"
            );
            return Err(self.violation(Rule::Limit, detail));
        }
        Ok(())
    }

    fn on_close(&mut self, conn: ConnId, reason: CloseReason) -> Result<(), Violation> {
        let Some(c) = self.conns.get(&conn) else {
            return Err(self.violation(
                Rule::Connection,
                format!("close names {conn:?}, which is not open"),
            ));
        };
        let cfg = &self.config;
        let now = self.now;
        let due = |from: Instant, after: Option<core::time::Duration>| {
            after.is_some_and(|d| from.saturating_add(d) <= now)
        };
        let holds = match reason {
            // Under its leases only by an immediate shutdown, or by a check
            // (asked for by `suspect`) that went unanswered.
            _ if c.leases > 0
                && !(reason == CloseReason::Shutdown
                    && self.shutdown == Some(Shutdown::Immediate))
                && reason != CloseReason::HealthCheckFailed =>
            {
                false
            }
            CloseReason::ConnectTimeout => {
                c.up.is_none() && due(c.opened_at, Some(cfg.connect_timeout))
            }
            CloseReason::HealthCheckFailed => c
                .pinged_at
                .is_some_and(|p| due(p, Some(cfg.health_check.timeout))),
            CloseReason::IdleTimeout => c.up.is_some() && due(c.idle_since, cfg.idle_timeout),
            CloseReason::Expired => c.up.as_ref().is_some_and(|up| {
                due(
                    up.at,
                    cfg.max_lifetime
                        .map(|l| l.saturating_sub(cfg.lifetime_jitter)),
                )
            }),
            CloseReason::RequestLimit => cfg
                .max_requests_per_connection
                .is_some_and(|m| c.requests >= m),
            CloseReason::PeerGoingAway => c.going_away,
            CloseReason::NotReusable => c.not_reusable,
            CloseReason::Evicted | CloseReason::Surplus => c.up.is_some(),
            CloseReason::Shutdown => self.shutdown.is_some(),
        };
        if !holds {
            let detail = format!("closed {conn:?} ({c:?}) for {reason:?}, which does not hold");
            return Err(self.violation(Rule::Connection, detail));
        }
        self.forget_conn(conn);
        self.stats.closes.bump(reason.slot());
        if reason == CloseReason::ConnectTimeout {
            self.stats.connect_failures += 1;
        }
        Ok(())
    }

    /// Records a lease handed out on `key`, at once or to a waiter, after checking
    /// that its connection could take it.
    fn lease_out(&mut self, lease: Lease, key: usize) -> Result<(), Violation> {
        if self.leases.contains_key(&lease.id()) {
            return Err(self.violation(Rule::ExactlyOnce, format!("{lease:?} issued twice")));
        }
        let why_not = match self.conns.get(&lease.conn()) {
            None => Some("it is not open".to_string()),
            Some(c) if c.key != key => Some(format!("it belongs to {:?}", self.keys[c.key].key)),
            Some(c) => self.unusable(c),
        };
        if let Some(why) = why_not {
            return Err(self.violation(Rule::Grant, format!("{lease:?} granted, but {why}")));
        }
        let c = self.conns.get_mut(&lease.conn()).expect("checked above");
        self.stats.reused_grants += u64::from(c.requests > 0);
        c.leases += 1;
        c.requests += 1;
        self.stats.grants += 1;
        self.stats.leases += 1;
        self.leases.insert(lease.id(), lease);
        Ok(())
    }

    /// Why a connection cannot take one more lease, as far as the caller can tell.
    fn unusable(&self, c: &ConnModel) -> Option<String> {
        let cfg = &self.config;
        let Some(up) = &c.up else {
            return Some("it is still connecting".into());
        };
        let capacity = match up.info.mode {
            Mode::Exclusive => 1,
            Mode::Multiplexed { .. } => up.peer_limit.min(cfg.max_streams_per_connection),
        };
        if c.pinged_at.is_some() {
            Some("a health check is out on it".into())
        } else if c.going_away {
            Some("its peer is going away".into())
        } else if c.not_reusable {
            Some("a lease on it came back not reusable".into())
        } else if self.shutdown.is_some() {
            Some("the pool is shut down".into())
        } else if c.leases >= capacity {
            Some(format!("it is at capacity, {} of {capacity}", c.leases))
        } else if cfg
            .max_requests_per_connection
            .is_some_and(|m| c.requests >= m)
        {
            Some(format!(
                "it has served {} requests, its maximum",
                c.requests
            ))
        } else if cfg
            .max_lifetime
            .is_some_and(|l| up.at.saturating_add(l) <= self.timers_until)
        {
            Some(format!(
                "it connected at {:?} and is past its maximum lifetime",
                up.at
            ))
        } else {
            None
        }
    }

    // ------------------------------------------------------------- the audit

    /// What must hold after every step, whatever the input.
    fn audit(&self) -> Result<(), Violation> {
        if let Err(e) = self.pool.check_invariants() {
            return Err(self.violation(Rule::Invariant, e.to_string()));
        }
        let got = self.pool.stats();
        let mut expected = self.stats;
        (expected.idle, expected.busy, expected.draining) = (got.idle, got.busy, got.draining);
        if got != expected {
            let detail = format!("the core counts {got:?}\nthe caller saw {expected:?}");
            return Err(self.violation(Rule::Accounting, detail));
        }
        for (w, model) in &self.waiters {
            if self.pool.waiter_key(*w) != Some(&self.keys[model.key].key) {
                return Err(self.violation(
                    Rule::ExactlyOnce,
                    format!("{w:?} vanished without an answer"),
                ));
            }
        }
        for lease in self.leases.values() {
            if !self.pool.is_leased(*lease) {
                return Err(
                    self.violation(Rule::ExactlyOnce, format!("{lease:?} vanished while out"))
                );
            }
        }
        for (conn, c) in &self.conns {
            let Some((_, w)) = self.keys[c.key].queue.first_key_value() else {
                continue;
            };
            let ready = self.pool.conn_info(*conn).map(|i| i.state) == Some(ConnState::Ready);
            if ready && self.unusable(c).is_none() {
                let detail = format!("{w:?} waits while {conn:?} has room for it");
                return Err(self.violation(Rule::Progress, detail));
            }
        }
        if (!self.waiters.is_empty() || self.stats.connecting > 0)
            && self.pool.poll_timeout().is_none()
        {
            let detail =
                "requests wait or connects are out, yet the core asks for no wake-up".into();
            return Err(self.violation(Rule::Progress, detail));
        }
        Ok(())
    }

    /// After `handle_timeout(now)`: everything due by `now` has happened.
    fn check_nothing_overdue(&self) -> Result<(), Violation> {
        let (cfg, now) = (&self.config, self.now);
        let due = |from: Instant, after: Option<core::time::Duration>| {
            after.is_some_and(|d| from.saturating_add(d) <= now)
        };
        if let Some((w, m)) = self.waiters.iter().find(|(_, m)| m.deadline <= now) {
            let detail = format!("{w:?} still waits past its deadline {:?}", m.deadline);
            return Err(self.violation(Rule::Deadline, detail));
        }
        for (conn, c) in &self.conns {
            let idle = c.leases == 0 && c.pinged_at.is_none();
            let overdue = match &c.up {
                None => due(c.opened_at, Some(cfg.connect_timeout)).then_some("connect timeout"),
                Some(_)
                    if c.pinged_at
                        .is_some_and(|p| due(p, Some(cfg.health_check.timeout))) =>
                {
                    Some("health check timeout")
                }
                Some(up) if c.leases == 0 && due(up.at, cfg.max_lifetime) => {
                    Some("maximum lifetime")
                }
                Some(_)
                    if idle && cfg.min_idle_per_key == 0 && due(c.idle_since, cfg.idle_timeout) =>
                {
                    Some("idle timeout")
                }
                Some(up)
                    if idle
                        && up.info.health_checks
                        && due(c.seen_at, cfg.health_check.interval) =>
                {
                    Some("health check interval")
                }
                Some(_) => None,
            };
            if let Some(what) = overdue {
                return Err(self.violation(
                    Rule::Deadline,
                    format!("{conn:?} is past its {what}: {c:?}"),
                ));
            }
        }
        if let Some(next) = self.pool.poll_timeout().filter(|&t| t <= now) {
            let detail = format!("a timer due at {next:?} is still pending after handle_timeout");
            return Err(self.violation(Rule::Deadline, detail));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- helpers

    /// Applies an input to the pool, turning a panic into a violation.
    fn guard<T>(&mut self, input: impl FnOnce(&mut Pool<K>) -> T) -> Result<T, Violation> {
        let pool = &mut self.pool;
        let payload = match panic::catch_unwind(AssertUnwindSafe(move || input(pool))) {
            Ok(answer) => return Ok(answer),
            Err(payload) => payload,
        };
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        self.line.clear();
        let _ = write!(self.line, "{:?} {} -> panicked", self.now, self.input);
        self.emit_line();
        Err(self.violation(Rule::Panic, message))
    }

    fn key_index(&mut self, key: &K) -> usize {
        if let Some(&k) = self.index.get(key) {
            return k;
        }
        self.keys.push(KeyModel {
            key: key.clone(),
            queue: BTreeMap::new(),
            open: 0,
            connecting: 0,
        });
        self.index.insert(key.clone(), self.keys.len() - 1);
        self.keys.len() - 1
    }

    /// Checks the answer to an event naming `conn`: `Ok` if the caller's view of
    /// it passes `applies`, `WrongState` if not, `Stale` if it is not open.
    fn answer_conn<T: fmt::Debug>(
        &self,
        conn: ConnId,
        applies: impl Fn(&ConnModel) -> bool,
        got: &Result<T, EventError>,
    ) -> Result<(), Violation> {
        let expected = match self.conns.get(&conn) {
            None => Err(EventError::Stale(HandleKind::Connection)),
            Some(c) if applies(c) => Ok(()),
            Some(_) => Err(EventError::WrongState),
        };
        self.answer(expected, got)
    }

    fn answer<T: fmt::Debug>(
        &self,
        expected: Result<(), EventError>,
        got: &Result<T, EventError>,
    ) -> Result<(), Violation> {
        let same = match (&expected, got) {
            (Ok(()), Ok(_)) => true,
            (Err(e), Err(g)) => e == g,
            _ => false,
        };
        if same {
            return Ok(());
        }
        Err(self.violation(Rule::Answer, format!("expected {expected:?}, got {got:?}")))
    }

    fn unqueue(&mut self, waiter: WaiterId) {
        if let Some(w) = self.waiters.remove(&waiter) {
            self.keys[w.key].queue.remove(&w.arrival);
            self.stats.waiting -= 1;
        }
    }

    /// Forgets an open connection; its leases stay out until released.
    fn forget_conn(&mut self, conn: ConnId) -> ConnModel {
        let c = self
            .conns
            .remove(&conn)
            .expect("forgetting an open connection");
        let k = &mut self.keys[c.key];
        k.open -= 1;
        self.stats.open -= 1;
        if c.up.is_none() {
            k.connecting -= 1;
            self.stats.connecting -= 1;
        }
        c
    }
}
