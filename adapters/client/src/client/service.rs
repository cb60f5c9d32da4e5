//! [`Client`] as a tower [`Service`], so that the layers of the tower
//! ecosystem (tower-http's headers, tracing and compression, tower's
//! timeouts, rate limits and retries) wrap it like any other HTTP client.
//!
//! The service is always ready: the pool itself queues a request that must
//! wait for a connection, within the request's deadline, and refuses one
//! its origin's queue has no room for
//! ([`ErrorKind::PoolExhausted`](crate::ErrorKind::PoolExhausted)). Each call
//! is [`Client::send`] on a clone of the client (clones share the pool), so
//! its future owns everything it needs.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::Client;
use crate::body::Body;
use crate::error::{BoxError, Error};
use crate::runtime::Runtime;

/// A tower [`Service`] that sends each request through the client's pool.
///
/// ```
/// # async fn run(client: muxpool_client::Client<muxpool_testkit::scripted::ScriptedNet>) {
/// use tower_service::Service;
///
/// let mut service = client.clone();
/// let request = http::Request::get("http://127.0.0.1:1/").body(muxpool_client::Body::empty()).unwrap();
/// let _answer = service.call(request).await;
/// # }
/// ```
impl<R: Runtime, B> Service<Request<B>> for Client<R>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send>>;

    /// Always ready: waiting for a connection is the pool's, per request.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let client = self.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let (body, replay) = crate::body::outgoing(body);
            match client.handle.inner.settings.redirect.max() {
                None => client.exchange(&mut parts, body).await,
                Some(max) => client.following(parts, body, replay, max).await,
            }
        })
    }
}
