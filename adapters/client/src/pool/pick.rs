//! The endpoint one attempt of a request to a service goes to: chosen by
//! the service's balancer under the pool's lock ([`Shared::pick`]), and
//! given back when the attempt ends ([`Picked`]).

use muxpool_core::{Instant, Outcome, Pick};

use crate::dial::PoolKey;
use crate::error::{Error, ErrorKind};
use crate::runtime::Runtime;

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
    pub(crate) fn pick(
        &self,
        key: &PoolKey,
        deadline: Instant,
    ) -> Result<Option<Picked<'_, R>>, Error> {
        let Some(&service) = self.services.get(key) else {
            return Ok(None);
        };
        let chosen = self.with_state(|st, now| st.services.choose(service, now, &st.pool));
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
                .with_source(e)),
        }
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
