//! Name resolution: the hook a client finds addresses through, and the cache
//! in front of it.
//!
//! # Why this module exists
//!
//! Where a name leads is a deployment's business: a service mesh answers from
//! its own registry, a test points a real name at loopback, a sidecar wants
//! DNS over its own transport. Writing a whole [`Runtime`] to change that is
//! out of proportion, so the client asks a [`Resolve`] (set with
//! [`ClientBuilder::resolver`](crate::ClientBuilder::resolver), an async
//! closure or a type), and by default the runtime's own resolver.
//!
//! The runtime's resolver (the system's `getaddrinfo` on tokio and smol) says
//! nothing about how long its answer holds, and a pool that opens connections
//! in bursts would ask it the same question many times a second. So whatever
//! resolves, a [`CachingResolver`] sits in front of it: an answer is kept for
//! the TTL its resolver gave, or [`DEFAULT_TTL`] when it gave none. Failures
//! are not kept: the next connect asks again.
//!
//! IP literals never reach a resolver; the client connects to them as they
//! are.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::runtime::Runtime;

/// How long a [`CachingResolver`] keeps an answer whose resolver gave no TTL:
/// long enough that a burst of connects asks once, short enough that a moved
/// service is found within half a minute.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// How many names a [`CachingResolver`] keeps unless told otherwise.
pub const DEFAULT_CACHED_NAMES: usize = 1024;

/// The future a [`Resolve`] returns.
pub type Resolving = Pin<Box<dyn Future<Output = io::Result<Resolved>> + Send>>;

/// What a resolver found for a name: its addresses, in the order to try
/// them, and how long they hold, if the resolver knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The addresses, with the port asked for.
    pub addrs: Vec<SocketAddr>,
    /// How long the answer may be kept ([`None`]: the resolver does not say;
    /// a [`CachingResolver`] keeps it for its default).
    pub ttl: Option<Duration>,
}

impl From<Vec<SocketAddr>> for Resolved {
    fn from(addrs: Vec<SocketAddr>) -> Resolved {
        Resolved { addrs, ttl: None }
    }
}

/// Finds the addresses of a name.
///
/// Implemented by any `Fn(&str, u16) -> impl Future<Output =
/// io::Result<T>>` where `T` is a `Vec<SocketAddr>` or a [`Resolved`], so a
/// closure is a resolver:
///
/// ```
/// use std::net::SocketAddr;
///
/// // `api.example` is this machine's port 8443; every other name, nowhere.
/// let resolver = |name: &str, port: u16| {
///     let found = match name {
///         "api.example" => vec![SocketAddr::from(([127, 0, 0, 1], 8443))],
///         _ => Vec::new(),
///     };
///     let _ = port;
///     async move { Ok::<_, std::io::Error>(found) }
/// };
/// # fn takes(_: impl muxpool_client::resolve::Resolve) {}
/// takes(resolver);
/// ```
///
/// An empty answer fails the connect with "the name has no address".
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `name` (a DNS name, never an IP literal), each with
    /// `port`.
    fn resolve(&self, name: &str, port: u16) -> Resolving;
}

impl fmt::Debug for dyn Resolve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolve")
    }
}

impl<F, Fut, T> Resolve for F
where
    F: Fn(&str, u16) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<T>> + Send + 'static,
    T: Into<Resolved>,
{
    fn resolve(&self, name: &str, port: u16) -> Resolving {
        let found = self(name, port);
        Box::pin(async move { found.await.map(Into::into) })
    }
}

/// The runtime's own resolver ([`Runtime::resolve`]), as a [`Resolve`].
pub(crate) struct RuntimeResolver<R: Runtime>(pub(crate) R);

impl<R: Runtime> Resolve for RuntimeResolver<R> {
    fn resolve(&self, name: &str, port: u16) -> Resolving {
        let runtime = self.0.clone();
        let name = name.to_owned();
        Box::pin(async move { runtime.resolve(&name, port).await.map(Resolved::from) })
    }
}

/// A cache in front of another resolver: each name's answer is kept for the
/// TTL it came with, or a default TTL when it came with none, and the
/// addresses are handed out again with the port asked for. Failures are not
/// kept. A client puts one in front of whatever resolver it is given.
///
/// ```
/// use std::net::SocketAddr;
/// use std::time::Duration;
/// use muxpool_client::resolve::{CachingResolver, Resolve};
///
/// let cached = CachingResolver::new(|_: &str, port: u16| async move {
///     Ok::<_, std::io::Error>(vec![SocketAddr::from(([127, 0, 0, 1], port))])
/// })
/// .default_ttl(Duration::from_secs(5));
/// # let _ = cached.resolve("example.com", 80);
/// ```
pub struct CachingResolver {
    inner: Arc<dyn Resolve>,
    cache: Arc<Mutex<Cache>>,
    default_ttl: Duration,
    now: Arc<dyn Fn() -> Instant + Send + Sync>,
}

/// The names a [`CachingResolver`] holds, each with its addresses (their
/// ports as the first asker had them) and when they expire.
struct Cache {
    names: HashMap<Box<str>, (Vec<SocketAddr>, Instant)>,
    capacity: usize,
}

impl CachingResolver {
    /// A cache of up to [`DEFAULT_CACHED_NAMES`] names in front of
    /// `resolver`, keeping answers without a TTL for [`DEFAULT_TTL`], timed
    /// by the system clock.
    pub fn new(resolver: impl Resolve) -> CachingResolver {
        CachingResolver::over(Arc::new(resolver))
    }

    /// [`new`](Self::new), over a shared resolver.
    pub(crate) fn over(resolver: Arc<dyn Resolve>) -> CachingResolver {
        CachingResolver {
            inner: resolver,
            cache: Arc::new(Mutex::new(Cache {
                names: HashMap::new(),
                capacity: DEFAULT_CACHED_NAMES,
            })),
            default_ttl: DEFAULT_TTL,
            now: Arc::new(Instant::now),
        }
    }

    /// Keeps answers that came without a TTL this long; zero keeps none of
    /// them.
    pub fn default_ttl(mut self, ttl: Duration) -> CachingResolver {
        self.default_ttl = ttl;
        self
    }

    /// Holds at most `names` names; when full, the one expiring first
    /// makes room.
    pub fn capacity(self, names: usize) -> CachingResolver {
        lock(&self.cache).capacity = names.max(1);
        self
    }

    /// Reads the time from `now` instead of the system clock: a client
    /// times its cache with its runtime's clock.
    pub(crate) fn clock(mut self, now: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.now = Arc::new(now);
        self
    }
}

impl Resolve for CachingResolver {
    fn resolve(&self, name: &str, port: u16) -> Resolving {
        let now = (self.now)();
        if let Some((addrs, expires)) = lock(&self.cache).names.get(name) {
            if now < *expires {
                let addrs = addrs
                    .iter()
                    .map(|a| SocketAddr::new(a.ip(), port))
                    .collect();
                return Box::pin(std::future::ready(Ok(Resolved {
                    addrs,
                    ttl: Some(*expires - now),
                })));
            }
        }
        let found = self.inner.resolve(name, port);
        let cache = Arc::clone(&self.cache);
        let (name, default_ttl) = (Box::<str>::from(name), self.default_ttl);
        Box::pin(async move {
            let resolved = found.await?;
            let ttl = resolved.ttl.unwrap_or(default_ttl);
            if !ttl.is_zero() && !resolved.addrs.is_empty() {
                lock(&cache).insert(name, resolved.addrs.clone(), now + ttl, now);
            }
            Ok(resolved)
        })
    }
}

impl Cache {
    fn insert(&mut self, name: Box<str>, addrs: Vec<SocketAddr>, expires: Instant, now: Instant) {
        if self.names.len() >= self.capacity && !self.names.contains_key(&name) {
            self.names.retain(|_, (_, at)| *at > now);
            if self.names.len() >= self.capacity {
                let first = self
                    .names
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(n, _)| n.clone());
                if let Some(first) = first {
                    self.names.remove(&first);
                }
            }
        }
        self.names.insert(name, (addrs, expires));
    }
}

impl fmt::Debug for CachingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cache = lock(&self.cache);
        f.debug_struct("CachingResolver")
            .field("names", &cache.names.len())
            .field("capacity", &cache.capacity)
            .field("default_ttl", &self.default_ttl)
            .finish_non_exhaustive()
    }
}

fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use super::*;

    /// A resolver that counts its lookups and answers `127.0.0.N` for the
    /// Nth, with `ttl`.
    fn counting(ttl: Option<Duration>) -> (Arc<AtomicUsize>, impl Resolve) {
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&asked);
        let resolver = move |name: &str, port: u16| {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            let fails = name == "fails.example";
            async move {
                if fails {
                    return Err(io::Error::other("no such name"));
                }
                let ip = std::net::Ipv4Addr::new(127, 0, 0, n as u8);
                Ok(Resolved {
                    addrs: vec![SocketAddr::from((ip, port))],
                    ttl,
                })
            }
        };
        (asked, resolver)
    }

    /// A clock moved by hand, in seconds from a fixed start.
    fn clock() -> (Arc<AtomicU64>, impl Fn() -> Instant + Send + Sync) {
        let start = Instant::now();
        let secs = Arc::new(AtomicU64::new(0));
        let read = Arc::clone(&secs);
        (secs, move || {
            start + Duration::from_secs(read.load(Ordering::Relaxed))
        })
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("the test resolvers answer at once"),
        }
    }

    fn first(resolver: &impl Resolve, name: &str, port: u16) -> SocketAddr {
        block_on(resolver.resolve(name, port)).unwrap().addrs[0]
    }

    #[test]
    fn an_answer_without_a_ttl_is_kept_for_the_default() {
        let (asked, inner) = counting(None);
        let (secs, now) = clock();
        let cached = CachingResolver::new(inner).clock(now);
        assert_eq!(
            first(&cached, "a.example", 80),
            "127.0.0.1:80".parse().unwrap()
        );
        // Kept, and given the port asked for.
        assert_eq!(
            first(&cached, "a.example", 443),
            "127.0.0.1:443".parse().unwrap()
        );
        secs.store(DEFAULT_TTL.as_secs() - 1, Ordering::Relaxed);
        first(&cached, "a.example", 80);
        assert_eq!(asked.load(Ordering::Relaxed), 1);
        secs.store(DEFAULT_TTL.as_secs(), Ordering::Relaxed);
        assert_eq!(
            first(&cached, "a.example", 80),
            "127.0.0.2:80".parse().unwrap()
        );
        assert_eq!(asked.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_ttl_given_is_honoured() {
        let (asked, inner) = counting(Some(Duration::from_secs(2)));
        let (secs, now) = clock();
        let cached = CachingResolver::new(inner).clock(now);
        first(&cached, "a.example", 80);
        secs.store(1, Ordering::Relaxed);
        first(&cached, "a.example", 80);
        assert_eq!(asked.load(Ordering::Relaxed), 1);
        secs.store(2, Ordering::Relaxed);
        first(&cached, "a.example", 80);
        assert_eq!(asked.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn failures_and_a_zero_ttl_are_not_kept() {
        let (asked, inner) = counting(None);
        let cached = CachingResolver::new(inner).default_ttl(Duration::ZERO);
        first(&cached, "a.example", 80);
        first(&cached, "a.example", 80);
        assert_eq!(asked.load(Ordering::Relaxed), 2);
        let (asked, inner) = counting(None);
        let cached = CachingResolver::new(inner);
        for _ in 0..2 {
            assert!(block_on(cached.resolve("fails.example", 80)).is_err());
        }
        assert_eq!(asked.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_full_cache_drops_the_name_expiring_first() {
        let (asked, inner) = counting(None);
        let (secs, now) = clock();
        let cached = CachingResolver::new(inner).clock(now).capacity(2);
        first(&cached, "a.example", 80);
        secs.store(1, Ordering::Relaxed);
        first(&cached, "b.example", 80);
        first(&cached, "c.example", 80);
        assert_eq!(lock(&cached.cache).names.len(), 2);
        // `a` expired first and made room; `b` is still there.
        first(&cached, "b.example", 80);
        assert_eq!(asked.load(Ordering::Relaxed), 3);
        first(&cached, "a.example", 80);
        assert_eq!(asked.load(Ordering::Relaxed), 4);
    }
}
