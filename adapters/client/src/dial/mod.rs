//! Dialing: the pool key a request is pooled under, and opening a transport
//! to it (resolve, connect with Happy Eyeballs, TLS).
//!
//! Written once for every runtime over [`Runtime`]: the runtime only connects one
//! address and resolves one name. Here, every resolved address is tried, IPv6 and
//! IPv4 interleaved, a new attempt starting when the previous one fails or has
//! not succeeded within [`ATTEMPT_DELAY`] (RFC 8305's "connection attempt
//! delay"), and the first to connect wins; the others are dropped, which closes
//! them. Then, for `https`, the TLS handshake with the client's [`TlsConfig`],
//! whose ALPN outcome tells the pool what the connection is.
//!
//! A key naming an endpoint of a service connects to the endpoint's address,
//! resolving nothing; TLS names and verifies the service's host all the same.
//!
//! Through a proxy (the key's), the connection is made to the proxy, and
//! then either kept as it is, for a plain `http` origin whose requests the
//! proxy forwards, or turned into a tunnel to the origin with `CONNECT`
//! ([`tunnel`]), inside which the rest (TLS, HTTP/2, a WebSocket) is what it
//! would be direct.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

mod key;
mod tunnel;

pub use key::{PoolKey, Security, WsTarget};

use crate::error::{Error, ErrorKind};
use crate::resolve::Resolve;
use crate::runtime::{Io, Runtime, Timer};
use crate::tls::{negotiated, Negotiated, TlsConfig};

/// How long one connection attempt runs alone before the next address is tried
/// alongside it.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// A transport, boxed so that plain and TLS connections of every runtime have one
/// type.
pub(crate) type Transport = Box<dyn Io>;

/// A transport ready for HTTP, and the protocol it negotiated.
pub(crate) struct Dialed {
    pub(crate) io: Transport,
    pub(crate) protocol: Negotiated,
    /// How long the TLS handshake took, for a TLS connection.
    pub(crate) tls_time: Option<Duration>,
}

/// Opens a connection to `origin`, through its key's proxy if it has one.
/// Deadlines are the caller's. A failure names `origin` (and the proxy).
pub(crate) async fn connect<R: Runtime>(
    runtime: &R,
    resolver: &dyn Resolve,
    origin: &PoolKey,
    tls: &TlsConfig,
    h2_prior_knowledge: bool,
) -> Result<Dialed, Error> {
    dial(runtime, resolver, origin, tls, h2_prior_knowledge)
        .await
        .map_err(|e| e.at(origin))
}

async fn dial<R: Runtime>(
    runtime: &R,
    resolver: &dyn Resolve,
    origin: &PoolKey,
    tls: &TlsConfig,
    h2_prior_knowledge: bool,
) -> Result<Dialed, Error> {
    let Some(proxy) = origin.proxy() else {
        // An endpoint of a service is its address; the host stays the name
        // TLS verifies.
        let (port, ip) = match origin.endpoint() {
            Some(addr) => (addr.port(), Some(addr.ip())),
            None => (origin.port(), origin.ip()),
        };
        let tcp = tcp(runtime, resolver, origin.host(), port, ip).await?;
        return secure(runtime, origin, tls, h2_prior_knowledge, tcp).await;
    };
    let tcp = tcp(runtime, resolver, proxy.host(), proxy.port(), proxy.ip()).await?;
    // A plain `http` origin's requests go to the proxy itself, in absolute
    // form; anything else needs the bytes carried as they are: a tunnel.
    let forwarded = origin.forwarding_proxy().is_some() && !h2_prior_knowledge;
    crate::trace::through_proxy(origin, !forwarded);
    if forwarded {
        return Ok(Dialed {
            io: Box::new(tcp),
            protocol: Negotiated::Http1,
            tls_time: None,
        });
    }
    let tunnel = tunnel::open(tcp, origin, proxy).await?;
    secure(runtime, origin, tls, h2_prior_knowledge, tunnel).await
}

/// A TCP connection to `host` (found by `resolver` unless it is the literal
/// `ip`) and `port`, by Happy Eyeballs.
async fn tcp<R: Runtime>(
    runtime: &R,
    resolver: &dyn Resolve,
    host: &str,
    port: u16,
    ip: Option<std::net::IpAddr>,
) -> Result<R::Tcp, Error> {
    let addrs = match ip {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => resolver
            .resolve(host, port)
            .await
            .map(|resolved| resolved.addrs)
            .map_err(|e| {
                Error::new(ErrorKind::Connect)
                    .with_message("name resolution failed")
                    .with_source(e)
            })
            .inspect(|addrs| crate::trace::resolved(host, addrs))?,
    };
    if addrs.is_empty() {
        return Err(Error::new(ErrorKind::Connect).with_message("the name has no address"));
    }
    let (tcp, peer) = happy_eyeballs(runtime, interleave(addrs))
        .await
        .map_err(|e| Error::new(ErrorKind::Connect).with_source(e))?;
    crate::trace::tcp_connected(peer);
    Ok(tcp)
}

/// `io`, a connection to `origin` (or a tunnel to it), made ready for HTTP:
/// TLS for an `https` or `wss` origin, whose ALPN says the protocol; as it
/// is for a plain one.
async fn secure<R: Runtime, T: Io>(
    runtime: &R,
    origin: &PoolKey,
    tls: &TlsConfig,
    h2_prior_knowledge: bool,
    io: T,
) -> Result<Dialed, Error> {
    if !origin.is_tls() {
        return Ok(Dialed {
            io: Box::new(io),
            protocol: if h2_prior_knowledge {
                Negotiated::Http2
            } else {
                Negotiated::Http1
            },
            tls_time: None,
        });
    }
    let name = crate::tls::server_name(origin.host())
        .map_err(|e| Error::new(ErrorKind::Tls).with_source(e))?;
    let connector = tokio_rustls::TlsConnector::from(tls.client_config().clone());
    let tls_start = runtime.now();
    let stream = connector.connect(name, io).await.map_err(|e| {
        let error = Error::new(ErrorKind::Tls);
        match crate::tls::handshake_advice(&e) {
            Some(advice) => error.with_message(advice),
            None => error,
        }
        .with_source(e)
    })?;
    let protocol =
        negotiated(stream.get_ref().1).map_err(|e| Error::new(ErrorKind::Tls).with_source(e))?;
    let tls_time = runtime.now().saturating_duration_since(tls_start);
    crate::trace::tls_handshaken(stream.get_ref().1, tls_time);
    Ok(Dialed {
        io: Box::new(stream),
        protocol,
        tls_time: Some(tls_time),
    })
}

/// Orders addresses as RFC 8305 asks: alternate families, starting with the
/// family of the resolver's first answer.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addrs[0].is_ipv6();
    let (mut first, mut second): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(first.len() + second.len());
    first.reverse();
    second.reverse();
    loop {
        match (first.pop(), second.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

type Attempt<T> = Pin<Box<dyn Future<Output = io::Result<(T, SocketAddr)>> + Send>>;

/// Connects to the first address of `addrs` that answers, starting the next
/// attempt when one fails or after [`ATTEMPT_DELAY`]; with the address that
/// answered.
async fn happy_eyeballs<R: Runtime>(
    runtime: &R,
    addrs: Vec<SocketAddr>,
) -> io::Result<(R::Tcp, SocketAddr)> {
    let mut pending = addrs.into_iter();
    let mut attempts: Vec<Attempt<R::Tcp>> = Vec::new();
    let mut last_error = None;
    let mut timer = Box::pin(runtime.timer(runtime.now() + ATTEMPT_DELAY));
    let start = |attempts: &mut Vec<Attempt<R::Tcp>>, addr| {
        let rt = runtime.clone();
        attempts.push(Box::pin(async move {
            rt.connect(addr).await.map(|t| (t, addr))
        }));
    };
    if let Some(addr) = pending.next() {
        start(&mut attempts, addr);
    }
    std::future::poll_fn(|cx: &mut Context<'_>| loop {
        let mut i = 0;
        let mut started = false;
        while i < attempts.len() {
            match attempts[i].as_mut().poll(cx) {
                Poll::Ready(Ok(tcp)) => return Poll::Ready(Ok(tcp)),
                Poll::Ready(Err(e)) => {
                    last_error = Some(e);
                    drop(attempts.swap_remove(i));
                    if let Some(addr) = pending.next() {
                        start(&mut attempts, addr);
                        timer.as_mut().reset(runtime.now() + ATTEMPT_DELAY);
                        started = true;
                    }
                }
                Poll::Pending => i += 1,
            }
        }
        if attempts.is_empty() {
            return Poll::Ready(Err(last_error.take().unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "no address to connect to")
            })));
        }
        if started {
            continue;
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => match pending.next() {
                Some(addr) => {
                    start(&mut attempts, addr);
                    timer.as_mut().reset(runtime.now() + ATTEMPT_DELAY);
                }
                None => {
                    timer
                        .as_mut()
                        .reset(runtime.now() + Duration::from_secs(3600));
                    return Poll::Pending;
                }
            },
            Poll::Pending => return Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::interleave;
    use std::net::SocketAddr;

    #[test]
    fn families_alternate_starting_with_the_first_answer() {
        let a: Vec<SocketAddr> = ["[::1]:1", "[::2]:1", "10.0.0.1:1", "[::3]:1", "10.0.0.2:1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let got: Vec<String> = interleave(a).iter().map(|a| a.to_string()).collect();
        assert_eq!(
            got,
            ["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "[::3]:1"]
        );
    }
}
