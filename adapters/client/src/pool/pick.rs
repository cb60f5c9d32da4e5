//! The endpoint one attempt of a request to a service goes to: chosen by
//! the service's balancer under the pool's lock ([`Shared::pick`]), and
//! given back when the attempt ends ([`Picked`]).
//!
//! A resolved service's endpoints are its name's addresses: the first
//! attempt resolves the name and waits for it; one that finds the answer
//! past its TTL is sent on it while a task looks the name up again
//! ([`Shared::refresh`]), so that no request waits on DNS once there is an
//! answer.

use muxpool_core::{Instant, Outcome, Pick};

use crate::dial::PoolKey;
use crate::error::{Error, ErrorKind};
use crate::resolve::{Resolved, DEFAULT_TTL};
use crate::runtime::Runtime;

use super::services::Freshness;
use super::Shared;

impl<R: Runtime> Shared<R> {
    /// Whether any service is configured: the one branch a request to an
    /// ordinary origin pays.
    #[inline(always)]
    pub(crate) fn balanced(&self) -> bool {
        !self.services.is_empty()
    }

    /// Whether `key` is a service's authority.
    pub(crate) fn is_service(&self, key: &PoolKey) -> bool {
        self.balanced() && self.services.contains_key(key)
    }

    /// The endpoint an attempt of a request to `key` goes to, when `key` is
    /// a service's authority: chosen by its balancer, counted in flight
    /// there until the [`Picked`] is given back. `deadline` is the
    /// request's: a pick dropped after it is a timeout.
    pub(crate) async fn pick(
        &self,
        key: &PoolKey,
        deadline: Instant,
    ) -> Result<Option<Picked<'_, R>>, Error> {
        let Some(&service) = self.services.get(key) else {
            return Ok(None);
        };
        let mut looked_up = false;
        let chosen = loop {
            let step = self.with_state(|st, now| match st.services.freshness(service, now) {
                Freshness::Missing => None,
                fresh => Some((fresh, st.services.choose(service, now, &st.pool))),
            });
            match step {
                Some((fresh, chosen)) => {
                    if fresh == Freshness::Stale {
                        self.refresh(service, key);
                    }
                    break chosen;
                }
                // Answered, yet without an answer again (another request's
                // lookup failed in between): no endpoint, rather than ask
                // once more.
                None if looked_up => break Err(muxpool_core::BalanceError::NoEndpoint),
                None => {
                    let found = self.settings.resolver.resolve(key.host(), key.port()).await;
                    self.take_answer(service, key, found)?;
                    looked_up = true;
                }
            }
        };
        match chosen {
            Ok((pick, endpoint)) => Ok(Some(Picked {
                inner: self,
                service,
                pick: Some(pick),
                key: endpoint,
                deadline,
            })),
            Err(e) => Err(Error::new(ErrorKind::Connect)
                .with_message("the service has no endpoint to choose")
                .with_origin(|| key.origin())
                .with_source(e)),
        }
    }

    /// Looks the name of the resolved `service` (whose authority is `key`)
    /// up again in a task of its own, its requests going on meanwhile.
    fn refresh(&self, service: u32, key: &PoolKey) {
        let Some(me) = self.me.upgrade() else {
            return;
        };
        let key = key.clone();
        let lookup = self.settings.resolver.resolve(key.host(), key.port());
        self.spawn_in(tracing::Span::none(), async move {
            let found = lookup.await;
            let _ = me.take_answer(service, &key, found);
        });
    }

    /// Gives the resolved `service` what its name resolved to: its
    /// endpoints are then the addresses found. A failed or empty answer
    /// keeps the endpoints it has, and is the error of a request that has
    /// none, naming the service.
    fn take_answer(
        &self,
        service: u32,
        key: &PoolKey,
        found: std::io::Result<Resolved>,
    ) -> Result<(), Error> {
        let failed = |why: &'static str| {
            Error::new(ErrorKind::Connect)
                .with_message(why)
                .with_origin(|| key.origin())
        };
        let error = match found {
            Ok(Resolved { addrs, ttl }) if !addrs.is_empty() => {
                crate::trace::resolved(key.host(), &addrs);
                let ttl = ttl.unwrap_or(DEFAULT_TTL);
                self.with_state(|st, now| st.services.resolved(service, &addrs, ttl, now));
                return Ok(());
            }
            Ok(_) => failed("the service's name has no address"),
            Err(e) => failed("the service's name did not resolve").with_source(e),
        };
        self.with_state(|st, now| st.services.resolve_failed(service, now));
        Err(error)
    }

    /// Gives a pick of `service` back: with how its request ended, or
    /// cancelled (`None`).
    fn give_back(&self, service: u32, pick: Pick, outcome: Option<Outcome>) {
        self.with_state(|st, now| st.services.give_back(service, pick, now, outcome));
    }
}

/// The endpoint one attempt of a request goes to, counted in flight by its
/// balancer until given back: [`complete`](Picked::complete) once the
/// attempt ends at the endpoint, or dropped when it never reached it (a
/// cancel), or when the request ran out of time (a failure).
pub(crate) struct Picked<'a, R: Runtime> {
    inner: &'a Shared<R>,
    service: u32,
    pick: Option<Pick>,
    key: PoolKey,
    deadline: Instant,
}

impl<R: Runtime> Picked<'_, R> {
    /// The endpoint's pool key.
    pub(crate) fn key(&self) -> &PoolKey {
        &self.key
    }

    /// The attempt ended at the endpoint: answered (`Success`, or `Failure`
    /// for a 5xx) or failed there.
    pub(crate) fn complete(mut self, outcome: Outcome) {
        if let Some(pick) = self.pick.take() {
            self.inner.give_back(self.service, pick, Some(outcome));
        }
    }
}

impl<R: Runtime> Drop for Picked<'_, R> {
    fn drop(&mut self) {
        if let Some(pick) = self.pick.take() {
            // Dropped with its request past its deadline: the endpoint did
            // not answer in time. Otherwise nothing reached it.
            let timed_out = self.inner.now() >= self.deadline;
            let outcome = timed_out.then_some(Outcome::Failure);
            self.inner.give_back(self.service, pick, outcome);
        }
    }
}

/// How an answer with `status` counts for its endpoint: a 5xx is its
/// failure, anything else a success.
pub(crate) fn outcome_of(status: http::StatusCode) -> Outcome {
    match status.is_server_error() {
        true => Outcome::Failure,
        false => Outcome::Success,
    }
}
