//! The balancers of the configured services, behind the pool's lock.
//!
//! A request to a service's authority asks its [`Balancer`] for an endpoint
//! at each attempt ([`Services::choose`], through `pool::pick`), under the
//! lock that also holds the [`Pool`] answering the balancer's capacity
//! questions, and gives the pick back when the attempt ends
//! ([`Services::give_back`]). The connect task reports each endpoint's
//! connects ([`Services::connected`], [`Services::connect_failed`]), and
//! the timer task wakes the balancers at their deadlines
//! ([`Services::handle_timeout`]). A client with no service holds an empty
//! table and none of this runs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use muxpool_core::{
    Balance, BalanceError, BalanceEvent, Balancer, Endpoint, Instant, Outcome, Pick, Pool,
    PoolConfig,
};

use crate::dial::PoolKey;
use crate::error::{Error, ErrorKind};
use crate::metrics::{EndpointMetrics, ServiceMetrics};
use crate::service::Service;
use crate::tls::TlsIdentity;

/// Every configured service's balancer, and each endpoint's counters.
#[derive(Default)]
pub(crate) struct Services {
    list: Vec<Balanced>,
    /// Each endpoint's key: its service's index, and its counters.
    endpoints: HashMap<PoolKey, Counters>,
    /// The earliest deadline of any balancer.
    pub(crate) wake: Option<Instant>,
}

/// One service: its authority's key and its balancer, and for a resolved
/// service what its name last resolved to.
struct Balanced {
    key: PoolKey,
    balancer: Balancer<PoolKey>,
    dns: Option<Dns>,
}

/// What a resolved service's name last resolved to.
#[derive(Default)]
struct Dns {
    /// The addresses that are its endpoints now.
    addrs: Vec<SocketAddr>,
    /// When they go stale; `None` before the first answer.
    expires: Option<Instant>,
    /// Whether a lookup in the background is under way.
    refreshing: bool,
}

/// Whether a service's endpoints can be chosen from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Given, or resolved and still within their TTL.
    Fresh,
    /// Resolved, past their TTL: usable while the caller resolves the name
    /// again in the background (it is now marked as under way).
    Stale,
    /// Resolved, with no answer yet: the caller resolves the name first.
    Missing,
}

/// How long a failed lookup of a resolved service's name keeps the old
/// answer before the next request tries again.
const RETRY_LOOKUP: Duration = Duration::from_secs(1);

/// What the client counts of one endpoint beside its balancer.
struct Counters {
    service: u32,
    requests: u64,
    ejections: u64,
}

/// The services of a client: the table of their keys, which requests look
/// at without the lock, and their balancers, which go behind it.
pub(crate) fn build(
    services: &[Service],
    tls: TlsIdentity,
    pool: &PoolConfig,
) -> Result<(HashMap<PoolKey, u32>, Services), Error> {
    let mut index: HashMap<PoolKey, u32> = HashMap::new();
    let mut out = Services::default();
    for service in services {
        let key = PoolKey::from_uri(service.authority(), tls).map_err(|e| {
            Error::new(ErrorKind::Config)
                .with_message("a service's authority is not a valid origin")
                .with_source(e)
        })?;
        let mut config = *service.balance_config();
        let n = u64::try_from(out.list.len()).unwrap_or(u64::MAX);
        if config.seed == Balance::default().seed {
            // Each service its own draws, from the client's seed.
            config.seed = pool.seed ^ n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        let mut balancer = Balancer::new(config).map_err(|e| {
            Error::new(ErrorKind::Config)
                .with_message("a service's balance configuration is invalid")
                .with_source(e)
        })?;
        let slot = match index.get(&key) {
            // Given twice: the last is kept.
            Some(&slot) => {
                out.endpoints.retain(|_, c| c.service != slot);
                slot
            }
            None => u32::try_from(out.list.len()).unwrap_or(u32::MAX),
        };
        for (addr, endpoint) in service.endpoints() {
            let endpoint_key = key.at_endpoint(addr);
            balancer
                .insert(endpoint_key.clone(), endpoint, Instant::ZERO)
                .map_err(|e| {
                    Error::new(ErrorKind::Config)
                        .with_message("a service's endpoint is invalid")
                        .with_source(e)
                })?;
            out.endpoints.insert(
                endpoint_key,
                Counters {
                    service: slot,
                    requests: 0,
                    ejections: 0,
                },
            );
        }
        let balanced = Balanced {
            key: key.clone(),
            balancer,
            dns: service.is_resolved().then(Dns::default),
        };
        match out.list.get_mut(slot as usize) {
            Some(held) => *held = balanced,
            None => out.list.push(balanced),
        }
        index.insert(key, slot);
    }
    Ok((index, out))
}

impl Services {
    /// Chooses the endpoint of one attempt of a request to `service`,
    /// asking `pool` which endpoints have capacity now; counted there.
    pub(crate) fn choose(
        &mut self,
        service: u32,
        now: Instant,
        pool: &Pool<PoolKey>,
    ) -> Result<(Pick, PoolKey), BalanceError> {
        let balancer = &mut self.list[service as usize].balancer;
        let chosen =
            balancer
                .choose(now, pool)
                .and_then(|pick| match balancer.key(&pick).cloned() {
                    Some(key) => Ok((pick, key)),
                    None => {
                        let _ = balancer.cancel(pick, now);
                        Err(BalanceError::NoEndpoint)
                    }
                });
        if let Ok((_, key)) = &chosen {
            if let Some(c) = self.endpoints.get_mut(key) {
                c.requests += 1;
            }
        }
        self.after_input();
        chosen
    }

    /// Gives a pick of `service` back: with how its request ended, or
    /// cancelled (`None`).
    pub(crate) fn give_back(
        &mut self,
        service: u32,
        pick: Pick,
        now: Instant,
        outcome: Option<Outcome>,
    ) {
        let balancer = &mut self.list[service as usize].balancer;
        let _ = match outcome {
            Some(outcome) => balancer.complete(pick, now, outcome),
            None => balancer.cancel(pick, now),
        };
        self.after_input();
    }

    /// Whether the endpoints of `service` can be chosen from as they are;
    /// a stale answer is marked as being looked up again, once.
    pub(crate) fn freshness(&mut self, service: u32, now: Instant) -> Freshness {
        let Some(dns) = self.list[service as usize].dns.as_mut() else {
            return Freshness::Fresh;
        };
        match dns.expires {
            None => Freshness::Missing,
            Some(at) if now < at || dns.refreshing => Freshness::Fresh,
            Some(_) => {
                dns.refreshing = true;
                Freshness::Stale
            }
        }
    }

    /// A resolved service's name resolved to `addrs` (not empty), good for
    /// `ttl`: the addresses new to it become endpoints, and those no longer
    /// there are removed (chosen no more; their requests in flight finish).
    pub(crate) fn resolved(
        &mut self,
        service: u32,
        addrs: &[SocketAddr],
        ttl: Duration,
        now: Instant,
    ) {
        let s = &mut self.list[service as usize];
        let Some(dns) = s.dns.as_mut() else {
            return;
        };
        for &gone in dns.addrs.iter().filter(|a| !addrs.contains(a)) {
            let _ = s.balancer.remove(&s.key.at_endpoint(gone), now);
        }
        for &new in addrs.iter().filter(|a| !dns.addrs.contains(a)) {
            let key = s.key.at_endpoint(new);
            if s.balancer
                .insert(key.clone(), Endpoint::default(), now)
                .is_ok()
            {
                self.endpoints.entry(key).or_insert(Counters {
                    service,
                    requests: 0,
                    ejections: 0,
                });
            }
        }
        dns.addrs = addrs.to_vec();
        dns.expires = Some(now + ttl);
        dns.refreshing = false;
        self.after_input();
    }

    /// A lookup of a resolved service's name failed: the answer it has, if
    /// any, is kept, and the next request after [`RETRY_LOOKUP`] tries
    /// again.
    pub(crate) fn resolve_failed(&mut self, service: u32, now: Instant) {
        if let Some(dns) = self.list[service as usize].dns.as_mut() {
            if dns.expires.is_some() {
                dns.expires = Some(now + RETRY_LOOKUP);
            }
            dns.refreshing = false;
        }
    }

    /// Whether `key` is a service's authority (for keeping its figures).
    pub(crate) fn is_service(&self, key: &PoolKey) -> bool {
        self.list.iter().any(|s| &s.key == key)
    }

    /// A connect to an endpoint came up after `took`.
    pub(crate) fn connected(&mut self, key: &PoolKey, now: Instant, took: Duration) {
        if let Some(service) = self.endpoints.get(key).map(|c| c.service) {
            let _ = self.list[service as usize]
                .balancer
                .connected(key, now, took);
            self.after_input();
        }
    }

    /// A connect to an endpoint failed.
    pub(crate) fn connect_failed(&mut self, key: &PoolKey, now: Instant) {
        if let Some(service) = self.endpoints.get(key).map(|c| c.service) {
            let _ = self.list[service as usize]
                .balancer
                .connect_failed(key, now);
            self.after_input();
        }
    }

    /// Makes what is due by `now` happen in every balancer.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        for s in &mut self.list {
            if s.balancer.poll_timeout().is_some_and(|at| at <= now) {
                s.balancer.handle_timeout(now);
            }
        }
        self.after_input();
    }

    /// Counts and traces what the balancers did, and finds their next
    /// deadline.
    fn after_input(&mut self) {
        let mut wake: Option<Instant> = None;
        for s in &mut self.list {
            while let Some(event) = s.balancer.poll_event() {
                let (key, what) = match &event {
                    BalanceEvent::Ejected { key, .. } => (key, "ejected"),
                    BalanceEvent::Probing { key } => (key, "probing"),
                    BalanceEvent::Readmitted { key } => (key, "readmitted"),
                    BalanceEvent::Drained { key } => (key, "drained"),
                    _ => continue,
                };
                if what == "ejected" {
                    if let Some(c) = self.endpoints.get_mut(key) {
                        c.ejections += 1;
                    }
                }
                if what == "drained" {
                    // Removed, and its last request back: forgotten.
                    self.endpoints.remove(key);
                }
                crate::trace::endpoint(key, what);
            }
            if let Some(at) = s.balancer.poll_timeout() {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        self.wake = wake;
    }

    /// Each service's figures: its requests' latencies (from `latencies`)
    /// and its balancer's view of each endpoint, with what `pool` holds.
    pub(crate) fn snapshot(
        &self,
        pool: &Pool<PoolKey>,
        latencies: impl Fn(&PoolKey) -> Option<crate::metrics::Latencies>,
    ) -> Vec<ServiceMetrics> {
        self.list
            .iter()
            .map(|s| ServiceMetrics {
                key: s.key.clone(),
                latencies: latencies(&s.key).unwrap_or_default(),
                endpoints: s
                    .balancer
                    .keys()
                    .filter_map(|key| {
                        let info = s.balancer.endpoint(key)?;
                        let counters = self.endpoints.get(key);
                        Some(EndpointMetrics {
                            key: key.clone(),
                            address: key.endpoint().unwrap_or(SocketAddr::from(([0; 4], 0))),
                            endpoint: info.endpoint,
                            state: info.state,
                            requests: counters.map_or(0, |c| c.requests),
                            ejections: counters.map_or(0, |c| c.ejections),
                            failures: info.failures,
                            latency: info.latency,
                            outstanding: info.outstanding,
                            open: pool.key_stats(key).map_or(0, |st| st.open),
                        })
                    })
                    .collect(),
            })
            .collect()
    }
}
