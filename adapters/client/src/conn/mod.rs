//! One connection, knowing nothing of the pool.
//!
//! # Why this layer
//!
//! What a connection does (frame a request, read a response, answer pings,
//! report that the peer changed its limits or went away) is the same
//! whichever pool holds it, and the pool's decisions are the same whichever
//! protocol a connection speaks. So each protocol is a sibling here,
//! [`h1`], [`h2`] and [`ws`], none importing another; what they share is
//! this module: how a request body is taken in ([`outgoing`]), how far a
//! failed exchange got ([`Failure`]), the frames of bodies ([`Frame`],
//! [`Read`]), what a connection's driver reports ([`Report`]), and the pool
//! as a connection sees it ([`Lender`]): where a lease goes back, the origin
//! an error names, and the runtime's clock for read timeouts. The pool
//! (`crate::pool`) implements [`Lender`] and holds the connections; hyper's
//! `client/conn/{http1,http2}` over a shared `dispatch` is the model.

pub(crate) mod h1;
pub(crate) mod h2;
pub(crate) mod outgoing;
pub(crate) mod ws;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use muxpool_core::{ConnId, Lease, Release};

use crate::error::{Error, Origin, Step};
use crate::runtime::Timer;

/// How far an exchange got before it failed.
pub(crate) struct Failure {
    pub(crate) error: Error,
    /// No byte of a response arrived, and the request body was not consumed: the
    /// request may be sent again on another connection.
    pub(crate) replayable: bool,
    /// The connection is going away (an HTTP/2 GOAWAY): it must get no new
    /// requests, and a request it refused goes to another connection.
    pub(crate) going_away: bool,
    /// The connection itself failed (closed or reset) before any byte of the
    /// response: the server may have processed the request or not, so only an
    /// idempotent one may be sent again, on another connection.
    pub(crate) cut: bool,
}

/// One frame of a request body.
pub(crate) enum Frame {
    Data(Bytes),
    Trailers(HeaderMap),
}

/// What reading a body produced.
pub(crate) enum Read {
    Data(Bytes),
    Trailers(HeaderMap),
    End,
}

/// What the driver reports.
pub(crate) enum Report {
    /// The peer's limit on concurrent streams changed.
    MaxStreams(u32),
    /// A PING was answered.
    Pong,
    /// The connection ended; nothing follows.
    Closed,
}

/// The runtime's clock, without its type: what a connection needs for its
/// own timeouts (a body's read timeout, a closing handshake's grace).
pub(crate) trait Clock: Send + Sync {
    /// A timer for `deadline` on the client's runtime.
    fn timer(&self, deadline: std::time::Instant) -> Pin<Box<dyn Timer>>;
    /// The runtime's now.
    fn now(&self) -> std::time::Instant;
}

/// The pool as a connection sees it: where a lease goes back.
pub(crate) trait Lender: Clock {
    /// Gives `lease` back without its transport: a stream slot (`Reuse`), or
    /// a connection that must be closed (`Close`).
    fn release(&self, lease: Lease, how: Release);
    /// Tells the pool that `conn` left a request unanswered for too long: its
    /// peer may be gone without a sign, and the pool checks it at once.
    fn suspect(&self, conn: ConnId);
    /// The origin `conn` serves, for an error to name; asked only while a
    /// lease on it is held, and only when a failure is being reported.
    fn origin(&self, conn: ConnId) -> Option<Origin>;
}

/// A response body's read timeout: the longest wait for its next bytes. One
/// timer per body, armed when a read first waits and moved forward only when
/// bytes arrived since it was last set.
pub(crate) struct ReadTimeout {
    timeout: Duration,
    timer: Option<Pin<Box<dyn Timer>>>,
    /// Bytes arrived since the timer was last set.
    progressed: bool,
}

impl ReadTimeout {
    pub(crate) fn new(timeout: Duration) -> ReadTimeout {
        ReadTimeout {
            timeout,
            timer: None,
            progressed: false,
        }
    }

    /// Bytes arrived.
    pub(crate) fn progress(&mut self) {
        self.progressed = true;
    }

    /// Polled when a read waits: ready once a whole timeout passed with no
    /// bytes.
    pub(crate) fn poll_expired(&mut self, clock: &dyn Clock, cx: &mut Context<'_>) -> Poll<()> {
        let timer = match &mut self.timer {
            Some(t) => {
                if std::mem::take(&mut self.progressed) {
                    t.as_mut().reset(clock.now() + self.timeout);
                }
                t
            }
            None => {
                self.progressed = false;
                self.timer.insert(clock.timer(clock.now() + self.timeout))
            }
        };
        timer.as_mut().poll(cx)
    }
}

impl ReadTimeout {
    /// The error of a body whose read timeout passed.
    pub(crate) fn expired(&self) -> Error {
        Error::timed_out(Step::BodyRead, Some(self.timeout))
            .with_message("no bytes arrived within the read timeout")
    }
}
