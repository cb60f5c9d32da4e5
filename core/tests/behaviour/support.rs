//! A small driver for behaviour tests: a pool, a clock, and the actions it asked for.
//!
//! Each test states a scenario step by step and asserts on the exact actions that
//! come out, so the driver does no work of its own beyond keeping time and checking
//! the invariants after every input.

use std::time::Duration;

use muxpool_core::{
    Acquire, AcquireOptions, Action, Attempt, CloseReason, ConnId, Connected, Instant, Lease, Pool,
    PoolConfig, RejectReason, Release, WaiterId,
};

pub struct Driver {
    pub pool: Pool<&'static str>,
    pub now: Instant,
    /// Actions drained by a helper but not consumed by it; `actions()` returns them first.
    pending: Vec<Action>,
}

impl Driver {
    pub fn new(config: PoolConfig) -> Driver {
        Driver {
            pool: Pool::new(config).expect("valid config"),
            now: Instant::ZERO,
            pending: Vec::new(),
        }
    }

    pub fn check(&self) {
        if let Err(e) = self.pool.check_invariants() {
            panic!("{e}");
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.pool.handle_timeout(self.now);
        self.check();
    }

    /// Moves the clock to the pool's next deadline and handles it.
    pub fn next_deadline(&mut self) -> Instant {
        let at = self.pool.poll_timeout().expect("a deadline is armed");
        self.now = self.now.max(at);
        self.pool.handle_timeout(self.now);
        self.check();
        at
    }

    pub fn actions(&mut self) -> Vec<Action> {
        let mut out = std::mem::take(&mut self.pending);
        out.extend(std::iter::from_fn(|| self.pool.poll_action()));
        out
    }

    pub fn acquire(&mut self, key: &'static str) -> Result<Acquire, RejectReason> {
        let r = self.pool.acquire(&key, self.now, AcquireOptions::default());
        self.check();
        r
    }

    pub fn acquire_until(
        &mut self,
        key: &'static str,
        deadline: Instant,
    ) -> Result<Acquire, RejectReason> {
        let r = self
            .pool
            .acquire(&key, self.now, AcquireOptions::with_deadline(deadline));
        self.check();
        r
    }

    /// [`Pool::acquire`] as `attempt` of its request.
    pub fn attempt(
        &mut self,
        key: &'static str,
        attempt: Attempt,
    ) -> Result<Acquire, RejectReason> {
        let options = AcquireOptions::default().attempt(attempt);
        let r = self.pool.acquire(&key, self.now, options);
        self.check();
        r
    }

    pub fn ready(&mut self, key: &'static str) -> Lease {
        match self.acquire(key) {
            Ok(Acquire::Ready(lease)) => lease,
            other => panic!("expected a lease at once, got {other:?}"),
        }
    }

    pub fn queued(&mut self, key: &'static str) -> WaiterId {
        match self.acquire(key) {
            Ok(Acquire::Queued(w)) => w,
            other => panic!("expected to wait, got {other:?}"),
        }
    }

    pub fn handle_connected(&mut self, conn: ConnId, how: Connected) {
        self.pool
            .handle_connected(conn, self.now, how)
            .expect("connecting");
        self.check();
    }

    pub fn handle_connect_failed(&mut self, conn: ConnId) {
        self.pool
            .handle_connect_failed(conn, self.now)
            .expect("connecting");
        self.check();
    }

    pub fn release(&mut self, lease: Lease) {
        self.pool
            .release(lease, self.now, Release::Reuse)
            .expect("leased");
        self.check();
    }

    pub fn release_closing(&mut self, lease: Lease) {
        self.pool
            .release(lease, self.now, Release::Close)
            .expect("leased");
        self.check();
    }

    /// Expects exactly the given number of open actions and returns their conns.
    pub fn opens(&mut self, n: usize) -> Vec<ConnId> {
        let actions = self.actions();
        let conns = opens_in(&actions);
        assert_eq!(conns.len(), n, "open actions in {actions:?}");
        conns
    }

    /// Acquires on a cold key, connects the one connection it opens, returns the
    /// lease granted to the request.
    pub fn first_lease(&mut self, key: &'static str, how: Connected) -> Lease {
        let w = self.queued(key);
        let conn = self.opens(1)[0];
        self.handle_connected(conn, how);
        let mut actions = self.actions();
        let lease = grant_of(&actions, w);
        actions.retain(|a| !matches!(a, Action::Grant { waiter, .. } if *waiter == w));
        self.pending = actions;
        lease
    }
}

impl Driver {
    /// Expects the last input to have closed exactly `closed` for `reason` and
    /// opened a connection in its place; connects it as HTTP/1.1 and returns the
    /// lease it grants to `waiter`.
    pub fn replaced(&mut self, closed: ConnId, reason: CloseReason, waiter: WaiterId) -> Lease {
        let actions = self.actions();
        assert_eq!(closes(&actions), [(closed, reason)]);
        let conn = *opens_in(&actions)
            .first()
            .unwrap_or_else(|| panic!("a connection opens in place of {closed:?}: {actions:?}"));
        self.handle_connected(conn, Connected::http1());
        grant_of(&self.actions(), waiter)
    }
}

pub fn grant_of(actions: &[Action], waiter: WaiterId) -> Lease {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Grant { waiter: w, lease } if *w == waiter => Some(*lease),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no grant for {waiter:?} in {actions:?}"))
}

pub fn grants(actions: &[Action]) -> Vec<(WaiterId, Lease)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Grant { waiter, lease } => Some((*waiter, *lease)),
            _ => None,
        })
        .collect()
}

/// The connections the actions ask to open, in order.
pub fn opens_in(actions: &[Action]) -> Vec<ConnId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Open { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

pub fn closes(actions: &[Action]) -> Vec<(ConnId, CloseReason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Close { conn, reason } => Some((*conn, *reason)),
            _ => None,
        })
        .collect()
}

pub fn rejects(actions: &[Action]) -> Vec<(WaiterId, RejectReason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reject { waiter, reason } => Some((*waiter, *reason)),
            _ => None,
        })
        .collect()
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A config with every timer far away, so tests turn on only what they exercise.
pub fn quiet() -> PoolConfig {
    let mut c = PoolConfig::default();
    c.idle_timeout = None;
    c.max_lifetime = None;
    c.lifetime_jitter = Duration::ZERO;
    c.acquire_timeout = secs(3600);
    c.connect_timeout = secs(3600);
    c
}
