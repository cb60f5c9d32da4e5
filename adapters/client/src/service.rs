//! Services of many endpoints, as configured: an authority that requests
//! name, and the addresses behind it.
//!
//! A leaf: the builder takes [`Service`]s in, and the pool makes a
//! [`Balancer`](muxpool_core::Balancer) of each when the client is built.

use std::net::SocketAddr;

use http::uri::{Scheme, Uri};
use muxpool_core::{Balance, Endpoint};

use crate::error::{Error, ErrorKind};

/// One service: the authority requests are sent to (`https://api.example`),
/// and the endpoints that serve it, each an address with its priority group
/// and weight ([`Endpoint`]).
///
/// Given to [`ClientBuilder::service`](crate::ClientBuilder::service), it
/// makes every request to that scheme, host and port go to one of the
/// endpoints, chosen per request by a [`Balancer`](muxpool_core::Balancer):
/// the cheaper of two drawn by weight (latency times requests in flight,
/// preferring one with a connection free), endpoints that keep failing
/// ejected for a while and probed, lower priority groups used as the higher
/// ones lose health. Each endpoint has its own connections; each is
/// verified against the service's host (SNI and certificate), never its
/// address. Endpoints are reached directly, never through a proxy.
///
/// ```
/// use std::net::SocketAddr;
/// use muxpool_client::{Balance, Endpoint, Service};
///
/// let mut balance = Balance::default();
/// balance.outliers.consecutive_failures = Some(3);
/// let service = Service::new("https://api.example")?
///     .endpoint(SocketAddr::from(([10, 0, 0, 1], 443)))
///     .endpoint_with(SocketAddr::from(([10, 0, 0, 2], 443)), Endpoint::new(0, 2)) // twice the share
///     .endpoint_with(SocketAddr::from(([10, 1, 0, 1], 443)), Endpoint::new(1, 1)) // another region
///     .balance(balance);
/// assert_eq!(service.endpoints().count(), 3);
/// # Ok::<(), muxpool_client::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Service {
    authority: Uri,
    endpoints: Vec<(SocketAddr, Endpoint)>,
    balance: Balance,
    resolved: bool,
}

impl Service {
    /// A service named `authority`: `http` or `https`, a host and an
    /// optional port (the scheme's by default), no path beyond `/`. It has
    /// no endpoint yet.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for anything else.
    pub fn new(authority: &str) -> Result<Service, Error> {
        let invalid = |why: &'static str| Error::new(ErrorKind::Config).with_message(why);
        let uri: Uri = authority
            .parse()
            .map_err(|e| invalid("a service's authority is not a URI").with_source(e))?;
        match uri.scheme() {
            Some(s) if *s == Scheme::HTTP || *s == Scheme::HTTPS => {}
            _ => return Err(invalid("a service's authority is http:// or https://")),
        }
        if uri.authority().is_none() {
            return Err(invalid("a service's authority has no host"));
        }
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(invalid("a service's authority has no path or query"));
        }
        Ok(Service {
            authority: uri,
            endpoints: Vec::new(),
            balance: Balance::default(),
            resolved: false,
        })
    }

    /// A service named `authority` whose endpoints are the addresses its
    /// host resolves to, through the client's resolver
    /// ([`ClientBuilder::resolver`](crate::ClientBuilder::resolver)): one
    /// endpoint per address, all in the first priority group with weight 1.
    ///
    /// The first request to the authority resolves the name (and waits for
    /// it); the answer is kept for its TTL
    /// ([`Resolved::ttl`](crate::resolve::Resolved), or
    /// [`DEFAULT_TTL`](crate::resolve::DEFAULT_TTL) when the resolver gives
    /// none). The first request after it expires is sent on the old answer
    /// while the name is resolved again in the background: an address that
    /// appeared becomes an endpoint, and one that vanished is removed (it
    /// takes no new request, and those in flight finish). A lookup that
    /// fails keeps the old answer and is tried again a second later.
    ///
    /// Each connection is still verified against the host (SNI and
    /// certificate), never the address. Opt-in, per name: every other
    /// origin is dialed as before, by Happy Eyeballs over all its
    /// addresses on one set of connections, and pays nothing.
    ///
    /// ```
    /// use muxpool_client::Service;
    ///
    /// // One endpoint per address `api.example` has, kept as its TTL says.
    /// let service = Service::resolved("https://api.example")?;
    /// assert!(service.is_resolved());
    /// assert_eq!(service.endpoints().count(), 0);
    /// # Ok::<(), muxpool_client::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for what [`new`](Self::new) refuses, and for
    /// a host that is an IP address (nothing to resolve).
    pub fn resolved(authority: &str) -> Result<Service, Error> {
        let service = Service::new(authority)?;
        let host = service.authority.host().unwrap_or_default();
        if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
            return Err(Error::new(ErrorKind::Config)
                .with_message("a resolved service's host is a name, not an address"));
        }
        Ok(Service {
            resolved: true,
            ..service
        })
    }

    /// Whether the endpoints come from the resolver
    /// ([`resolved`](Self::resolved)) rather than from the list given.
    pub fn is_resolved(&self) -> bool {
        self.resolved
    }

    /// Adds an endpoint at `addr` in the first priority group, with weight 1.
    pub fn endpoint(self, addr: SocketAddr) -> Service {
        self.endpoint_with(addr, Endpoint::default())
    }

    /// Adds an endpoint at `addr` with its priority group (0 first) and
    /// weight; an address given twice keeps the last.
    pub fn endpoint_with(mut self, addr: SocketAddr, endpoint: Endpoint) -> Service {
        self.endpoints.retain(|(a, _)| *a != addr);
        self.endpoints.push((addr, endpoint));
        self
    }

    /// How requests are spread and endpoints ejected; by default
    /// [`Balance::default`], seeded by the client's seed.
    pub fn balance(mut self, balance: Balance) -> Service {
        self.balance = balance;
        self
    }

    /// The authority requests name: scheme, host and port.
    pub fn authority(&self) -> &Uri {
        &self.authority
    }

    /// The endpoints, in the order given.
    pub fn endpoints(&self) -> impl Iterator<Item = (SocketAddr, Endpoint)> + '_ {
        self.endpoints.iter().copied()
    }

    /// The balancer's configuration.
    pub fn balance_config(&self) -> &Balance {
        &self.balance
    }

    /// Checks what the builder cannot take: no endpoint (or, resolved,
    /// endpoints given), a weight of zero, a balancer configuration the
    /// core refuses.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |why: &'static str| Error::new(ErrorKind::Config).with_message(why);
        if self.resolved && !self.endpoints.is_empty() {
            return Err(invalid(
                "a resolved service takes its endpoints from the resolver, not given ones",
            ));
        }
        if self.endpoints.is_empty() && !self.resolved {
            return Err(invalid("a service needs at least one endpoint"));
        }
        if self.endpoints.iter().any(|(_, e)| e.weight == 0) {
            return Err(invalid("an endpoint's weight must be at least 1"));
        }
        self.balance
            .validate()
            .map_err(|e| invalid("a service's balance configuration is invalid").with_source(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authority_is_a_scheme_and_a_host_only() {
        for good in [
            "https://api.example",
            "http://api.example:8080/",
            "https://[::1]:1",
        ] {
            assert!(Service::new(good).is_ok(), "{good}");
        }
        for bad in [
            "api.example",
            "ftp://api.example",
            "https://api.example/v1",
            "https://api.example/?q",
            "/path",
        ] {
            let error = Service::new(bad).expect_err(bad);
            assert_eq!(error.kind(), ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn a_service_needs_endpoints_of_some_weight() {
        let service = Service::new("https://api.example").unwrap();
        assert!(service.validate().is_err(), "no endpoint");
        let addr = SocketAddr::from(([10, 0, 0, 1], 443));
        let service = service.endpoint(addr);
        assert!(service.validate().is_ok());
        let weightless = service.clone().endpoint_with(addr, Endpoint::new(0, 0));
        assert_eq!(weightless.endpoints().count(), 1, "the last kept");
        assert!(weightless.validate().is_err());
        let mut balance = Balance::default();
        balance.decay = std::time::Duration::ZERO;
        assert!(service.balance(balance).validate().is_err());
    }

    #[test]
    fn a_resolved_service_names_a_host_and_takes_no_endpoint() {
        let service = Service::resolved("https://api.example").unwrap();
        assert!(service.is_resolved() && service.validate().is_ok());
        let addr = SocketAddr::from(([10, 0, 0, 1], 443));
        assert!(service.endpoint(addr).validate().is_err());
        for literal in ["https://10.0.0.1", "http://[::1]:8080"] {
            let error = Service::resolved(literal).expect_err(literal);
            assert_eq!(error.kind(), ErrorKind::Config, "{literal}");
        }
    }
}
