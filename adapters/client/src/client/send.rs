//! Sending one request through the pool: take a connection, run the
//! exchange on it, and send again when that is safe.
//!
//! An HTTP/1.1 attempt runs in the request's own future (no task of its
//! own): the caller's task writes the request and reads the head, and the
//! response [`Body`] owns the connection until the body ends. An HTTP/2
//! attempt takes a stream slot of a shared connection. A request that
//! failed on a reused connection before any response byte arrived is sent
//! once more, on a fresh connection, when its method and body allow it; a
//! stream an HTTP/2 server refused goes to another connection. Each of these
//! sends spends a retry of the client's budget
//! ([`RetryBudget`](muxpool_core::RetryBudget)); when none is left, the
//! request ends with the failure it would have retried.
//!
//! A request to a [service](crate::Service) asks its balancer for an
//! endpoint at each attempt, and tells it how the attempt ended (see
//! `pool::services`); an endpoint that could not be reached, or a retry,
//! sends it to an endpoint chosen anew.

use std::pin::pin;
use std::sync::Arc;

use bytes::BytesMut;
use http::{request, Method, Response};
use muxpool_core::{Instant, Lease, Outcome, Release};

use super::Idempotent;
use crate::body::Body;
use crate::conn::h1::{encode, exchange, is_open, H1Body, H1Conn, H1Lender};
use crate::conn::h2::H2Body;
use crate::conn::outgoing::Outgoing;
use crate::conn::{Failure, Lender};
use crate::dial::PoolKey;
use crate::error::{Error, ErrorKind};
use crate::h1::ResponseParser;
use crate::pool::{outcome_of, LeasedConn, Shared, Timing};
use crate::runtime::Runtime;
use crate::session::{ConnCell, Session};
use crate::trace::Resend;
use tracing::Span;

/// How many times a request refused by HTTP/2 servers (REFUSED_STREAM, GOAWAY)
/// is sent again before the refusal is returned.
const MAX_REFUSALS: u32 = 8;

/// How many times a request to a service whose chosen endpoint could not
/// be reached (its connect failed, its circuit is open) asks the balancer
/// for another before the failure is returned.
const MAX_REPICKS: u32 = 8;

/// Whether a request refused with `error` before anything was sent may go
/// to another endpoint of its service: the endpoint could not be reached.
fn unreachable(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::Connect | ErrorKind::CircuitOpen)
}

/// Whether a request whose connection failed before any byte of the response
/// may be sent again: the server may have acted on it, so only if sending it
/// twice is safe (an idempotent method, or the caller says so) and its body
/// can be sent again.
fn may_resend(parts: &request::Parts, body: &Outgoing) -> bool {
    body.is_replayable()
        && (is_idempotent(&parts.method)
            || parts.extensions.get::<Idempotent>().is_some()
            || parts.headers.contains_key("idempotency-key"))
}

/// Whether sending `method` twice does what sending it once does (RFC 9110,
/// section 9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Returns a lease whose exchange did not finish, as `how` says: an HTTP/1.1
/// connection is closed (its position in the stream is unknown), an HTTP/2
/// stream slot is given back (the stream is reset, the connection goes on).
struct LeaseGuard<'a, R: Runtime> {
    inner: &'a Shared<R>,
    lease: Option<Lease>,
    how: Release,
}

impl<R: Runtime> Drop for LeaseGuard<'_, R> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.inner.release(lease, self.how);
        }
    }
}

pub(super) async fn execute<R: Runtime>(
    inner: &Arc<Shared<R>>,
    key: &PoolKey,
    parts: &request::Parts,
    body: &mut Outgoing,
    (now, deadline): (Instant, Instant),
    (awaiting, timing, span): (&ConnCell, &Timing, &Span),
) -> Result<Response<Body>, Error> {
    let session = parts.extensions.get::<Session>();
    let mut retried = false;
    let mut refusals = 0;
    // Sends after the first, and why the next checkout sends again: told
    // once that checkout is granted (the retry budget may refuse it).
    let mut resends = 0;
    let mut resend: Option<Resend> = None;
    // The failure the next checkout retries, which spends from the client's
    // retry budget (and is the answer if none is left); or whether it asks
    // again for an attempt that sent nothing.
    let mut retry_of: Option<Error> = None;
    let mut again = false;
    let mut repicks = 0;
    // The clock was read for the deadline; later attempts read it afresh.
    let start = now;
    let mut now = Some(now);
    loop {
        // A request to a service asks its balancer for an endpoint at each
        // attempt, and gives it back when the attempt ends (or, dropped, as
        // the guard says); a request to any other origin pays this branch.
        let mut picked = match inner.balanced() {
            false => None,
            true => inner.pick(key, deadline).await?,
        };
        let balanced = picked.is_some();
        let target = picked.as_ref().map_or(key, |p| p.key());
        let mut checkout = inner
            .checkout_until(target, Some(deadline))
            .preferring(session.and_then(Session::last))
            .at(now.take())
            .timed(timing);
        if let Some(failure) = retry_of.take() {
            checkout = checkout.retrying(failure);
        } else if std::mem::take(&mut again) {
            checkout = checkout.again();
        }
        let granted = checkout.await;
        let (lease, checked) = match granted {
            Ok(granted) => granted,
            // The endpoint could not be reached: another is chosen, nothing
            // having been sent.
            Err(error) if balanced && repicks < MAX_REPICKS && unreachable(&error) => {
                repicks += 1;
                again = true;
                continue;
            }
            Err(error) => return Err(error),
        };
        if let Some(why) = resend.take() {
            resends += 1;
            crate::trace::resend(span, resends, why);
        }
        let placed = |reused| crate::trace::placed(span, lease.conn(), reused);
        if let Some(session) = session {
            session.placed_on(lease.conn());
        }
        let mut conn = match checked {
            LeasedConn::H1(conn) => conn,
            LeasedConn::Ws(_) => {
                // An HTTP origin's key never names a WebSocket.
                inner.release(lease, Release::Close);
                return Err(Error::new(ErrorKind::Protocol)
                    .with_message("the pool granted a WebSocket for an HTTP request"));
            }
            LeasedConn::H2(send, reused) => {
                placed(reused);
                // Each attempt's future is built where it is awaited, not
                // moved into this one.
                let attempt = pin!(over_h2(inner, lease, send, parts, body, awaiting)).await;
                match attempt {
                    Ok(response) => {
                        if let Some(picked) = picked {
                            picked.complete(outcome_of(response.status()));
                        }
                        return Ok(response);
                    }
                    Err(failure) => {
                        // A refused stream never reached the endpoint's
                        // application: the pick is dropped, cancelled.
                        if let Some(picked) = picked.take().filter(|_| !failure.replayable) {
                            picked.complete(Outcome::Failure);
                        }
                        // A stream the server refused without processing it
                        // (REFUSED_STREAM, or beyond a GOAWAY's last stream) goes
                        // to another connection, transparently: the server said it
                        // did nothing with it. The request's deadline, and a cap,
                        // bound the attempts.
                        // The server said it did nothing with it: any method
                        // whose body can be sent again goes again.
                        if failure.replayable && refusals < MAX_REFUSALS && body.is_replayable() {
                            refusals += 1;
                            resend = Some(match failure.going_away {
                                true => Resend::GoAway,
                                false => Resend::RefusedStream,
                            });
                            retry_of = Some(failure.error);
                            continue;
                        }
                        // A connection cut before any byte of the response
                        // (its server restarted, the network reset it): an
                        // idempotent request is sent once more, on a fresh
                        // connection, since this one is closed.
                        if failure.cut && !retried && may_resend(parts, body) {
                            retried = true;
                            resend = Some(Resend::ConnectionCut);
                            retry_of = Some(failure.error);
                            continue;
                        }
                        return Err(failure.error);
                    }
                }
            }
        };
        let reused = conn.waited;
        placed(reused);
        // A retry goes to a fresh connection. The failure showed that this
        // server drops idle connections, and the pool offers the most recently
        // used first, so any idle one it offers now has waited at least as long
        // as the one that failed: it is closed rather than trusted, and the pool
        // opens a new one.
        if reused && (retried || !is_open(&mut conn).await) {
            inner.check_in(lease, None);
            again = true;
            continue;
        }
        // Encoded here, once the connection is known to speak HTTP/1.1: a
        // request that goes over HTTP/2 never needs the HTTP/1.1 head.
        let mut encoded = match encode(parts, body, key.forwarding_proxy(), &mut conn.buf) {
            Ok(encoded) => encoded,
            Err(error) => {
                // Nothing was written (the encoder left the buffer as it
                // was): the connection is as clean as it came.
                inner.check_in(lease, Some(conn));
                return Err(error);
            }
        };
        // One attempt on this connection, in this future (not one of its
        // own): if it fails, or this future is dropped, the guard closes the
        // connection, whose position in the stream is then unknown.
        let mut guard = LeaseGuard {
            inner,
            lease: Some(lease),
            how: Release::Close,
        };
        let mut parser = ResponseParser::new(encoded.info, inner.settings.h1_limits);
        let attempt = pin!(exchange(&mut conn, &mut encoded.body, body, &mut parser)).await;
        match attempt {
            Ok((head, buf)) => {
                guard.lease = None;
                if let Some(picked) = picked {
                    picked.complete(outcome_of(head.status()));
                }
                return respond(inner, lease, conn, head, buf, (key, start, timing));
            }
            Err(failure) => {
                drop(guard);
                if let Some(picked) = picked.take() {
                    picked.complete(Outcome::Failure);
                }
                // Cut before any response byte: sent once more when that is
                // safe, on a fresh connection; a service's goes to an
                // endpoint chosen anew, another server, even when this
                // connection was fresh.
                if failure.replayable && (reused || balanced) && !retried && may_resend(parts, body)
                {
                    retried = true;
                    resend = Some(Resend::ConnectionCut);
                    retry_of = Some(failure.error);
                    continue;
                }
                return Err(failure.error);
            }
        }
    }
}

/// One attempt of a request on a stream of an HTTP/2 connection. On failure
/// the stream slot is back with the pool, and a connection going away is
/// marked so.
async fn over_h2<R: Runtime>(
    inner: &Arc<Shared<R>>,
    lease: Lease,
    send: h2::client::SendRequest<bytes::Bytes>,
    parts: &request::Parts,
    body: &mut Outgoing,
    awaiting: &ConnCell,
) -> Result<Response<Body>, Failure> {
    let mut guard = LeaseGuard {
        inner,
        lease: Some(lease),
        how: Release::Reuse,
    };
    awaiting.set(Some(lease.conn()));
    let exchanged = pin!(crate::conn::h2::exchange(send, parts, body)).await;
    awaiting.set(None);
    match exchanged {
        Ok((response, upload)) => {
            guard.lease = None;
            let (head, recv) = response.into_parts();
            let pool: Arc<dyn Lender> = Arc::clone(inner) as Arc<dyn Lender>;
            let body = Body::h2(
                H2Body::new(recv, upload, lease, pool, inner.settings.read_timeout),
                inner.settings.max_collect,
            );
            Ok(Response::from_parts(head, body))
        }
        Err(failure) => {
            if failure.cut {
                // The connection is gone: it takes no further stream.
                guard.how = Release::Close;
            }
            drop(guard);
            if failure.going_away {
                // No new stream goes to this connection.
                inner.going_away(lease.conn());
            }
            Err(failure)
        }
    }
}

fn respond<R: Runtime>(
    inner: &Arc<Shared<R>>,
    lease: Lease,
    conn: H1Conn,
    head: crate::h1::ResponseHead,
    mut buf: BytesMut,
    (key, start, timing): (&PoolKey, Instant, &Timing),
) -> Result<Response<Body>, Error> {
    if let Some(data) = head.whole_body(&mut buf) {
        // The body came whole with its head (the usual small response): the
        // connection goes back to the pool now, as clean as the head says,
        // with its emptied buffer for the next exchange.
        let conn = head
            .keep_alive()
            .is_reusable()
            .then(|| H1Conn { buf, ..conn });
        // The request is answered: its figures are recorded under the lock
        // that takes the connection back, with that lock's clock reading.
        inner.check_in_then(lease, conn, |st, end| {
            st.record_request(key, start, timing.get(), end, true);
            timing.set_recorded();
        });
        return Ok(Response::from_parts(
            head.into_parts(),
            Body::full(data, None),
        ));
    }
    let length = head.known_length();
    let decoder = head.body_decoder();
    let parts = head.into_parts();
    let pool: Arc<dyn H1Lender> = Arc::clone(inner) as Arc<dyn H1Lender>;
    let mut h1 = H1Body::new(
        conn,
        lease,
        pool,
        buf,
        decoder,
        inner.settings.read_timeout,
        length,
    );
    let body = match h1.complete_from_buffer()? {
        Some((data, trailers)) => Body::full(data, trailers),
        None => Body::h1(h1, inner.settings.max_collect),
    };
    Ok(Response::from_parts(parts, body))
}
