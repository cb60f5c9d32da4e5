//! The task that owns one WebSocket's socket.
//!
//! # Why a task per WebSocket
//!
//! A WebSocket must be read even when nobody waits for a message: the server's
//! pings want pongs, its close frame wants an answer, and a pooled WebSocket's
//! health-check pong must be noticed while it sits idle. So one task owns the
//! socket for its whole life and does all of that; the holder only sends and
//! receives messages over two bounded channels. The task is a hand-written
//! future with a handful of fields, no bigger than the socket it owns.
//!
//! # How it ends
//!
//! The first of: the server's close handshake, an I/O or protocol error, a
//! message arriving while the WebSocket is idle in the pool (whoever it was
//! for is gone), the holder's close, or the holder's end going away (the pool
//! closed the WebSocket, or a holder dropped it unclean). After the last two
//! the task sends a close frame and waits [`CLOSE_GRACE`] at most for the
//! server's. It then records why it ended, reports [`Report::Closed`] to the
//! pool, and drops the socket.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_sink::Sink;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_util::sync::PollSender;

use super::{websocket_error, Command, Message, WsShared};
use crate::conn::{Clock, Report};
use crate::error::WebSocketError;
use crate::runtime::Timer;

/// How long a closing WebSocket waits for the server's close frame.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A framed WebSocket: messages in, messages out.
pub(crate) trait Socket:
    Stream<Item = Result<Frame, tungstenite::Error>>
    + Sink<Frame, Error = tungstenite::Error>
    + Send
    + Unpin
    + 'static
{
}

impl<T> Socket for T where
    T: Stream<Item = Result<Frame, tungstenite::Error>>
        + Sink<Frame, Error = tungstenite::Error>
        + Send
        + Unpin
        + 'static
{
}

/// A driver before it is spawned.
pub(crate) struct Parts {
    socket: Box<dyn Socket>,
    commands: mpsc::Receiver<Command>,
    incoming: mpsc::Sender<Message>,
    shared: Arc<WsShared>,
}

impl Parts {
    pub(crate) fn new(
        socket: Box<dyn Socket>,
        commands: mpsc::Receiver<Command>,
        incoming: mpsc::Sender<Message>,
        shared: Arc<WsShared>,
    ) -> Parts {
        Parts {
            socket,
            commands,
            incoming,
            shared,
        }
    }

    /// The driver's future: it runs until the WebSocket ends, calling
    /// `report` with answered pings and, last, [`Report::Closed`].
    pub(crate) fn drive<F: FnMut(Report) + Send + Unpin + 'static>(
        self,
        clock: Arc<dyn Clock>,
        report: F,
    ) -> Driver<F> {
        Driver {
            socket: self.socket,
            commands: self.commands,
            incoming: PollSender::new(self.incoming),
            shared: self.shared,
            clock,
            report,
            unflushed: false,
            awaiting_pong: false,
            peer_close: None,
            closing: false,
            grace: None,
        }
    }
}

/// The driver task of one WebSocket.
pub(crate) struct Driver<F> {
    socket: Box<dyn Socket>,
    commands: mpsc::Receiver<Command>,
    incoming: PollSender<Message>,
    shared: Arc<WsShared>,
    clock: Arc<dyn Clock>,
    report: F,
    /// Frames were handed to the socket since it was last flushed.
    unflushed: bool,
    /// A health-check ping is out.
    awaiting_pong: bool,
    /// The server's close frame, once it came.
    peer_close: Option<WebSocketError>,
    /// This side sent its close frame.
    closing: bool,
    /// The deadline for the closing handshake, once this side sent its
    /// close frame.
    grace: Option<Pin<Box<dyn Timer>>>,
}

fn normal_close() -> Frame {
    Frame::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

impl<F: FnMut(Report) + Send + Unpin + 'static> Driver<F> {
    /// Hands `frame` to the socket, which said it is ready for one.
    fn start_send(&mut self, frame: Frame) -> Result<(), WebSocketError> {
        self.unflushed = true;
        Pin::new(&mut self.socket)
            .start_send(frame)
            .map_err(|e| self.failure(&e))
    }

    fn failure(&self, error: &tungstenite::Error) -> WebSocketError {
        websocket_error(error, self.peer_close.as_ref())
    }

    /// Takes what the holder (or the pool) asked for, while the socket has
    /// room; `Ok(true)` if something was done.
    fn poll_commands(&mut self, cx: &mut Context<'_>) -> Result<bool, WebSocketError> {
        if self.closing {
            return Ok(false);
        }
        match Pin::new(&mut self.socket).poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Err(self.failure(&e)),
            Poll::Pending => return Ok(false),
        }
        let frame = match self.commands.poll_recv(cx) {
            Poll::Ready(Some(Command::Send(message))) => message.into_frame(),
            Poll::Ready(Some(Command::Ping)) => {
                if self.awaiting_pong {
                    return Ok(true);
                }
                self.awaiting_pong = true;
                Frame::Ping(Default::default())
            }
            // The holder closes, or nobody holds this WebSocket any more:
            // close it politely, for a little while. Once closing, commands
            // are no longer read, so the deadline is set here either way.
            Poll::Ready(Some(Command::Close) | None) => {
                self.closing = true;
                let deadline = self.clock.now() + CLOSE_GRACE;
                self.grace = Some(self.clock.timer(deadline));
                normal_close()
            }
            Poll::Pending => return Ok(false),
        };
        self.start_send(frame)?;
        Ok(true)
    }

    /// Reads one frame, when the holder has room for a message; `Ok(true)` if
    /// something was read, `Err` when the WebSocket ended.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Result<bool, WebSocketError> {
        let discard = match self.incoming.poll_reserve(cx) {
            Poll::Ready(Ok(())) => false,
            // The holder's end is gone: read on, for the close frame.
            Poll::Ready(Err(_)) => true,
            Poll::Pending => return Ok(false),
        };
        let frame = match Pin::new(&mut self.socket).poll_next(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Err(self.failure(&e)),
            Poll::Ready(None) => {
                return Err(self.peer_close.clone().unwrap_or(if self.closing {
                    WebSocketError::ClosedLocally
                } else {
                    WebSocketError::Dropped
                }))
            }
            Poll::Pending => return Ok(false),
        };
        let message = match frame {
            Frame::Text(text) => Message::Text(text.as_str().to_owned()),
            Frame::Binary(data) => Message::Binary(data),
            Frame::Pong(_) => {
                if std::mem::take(&mut self.awaiting_pong) {
                    (self.report)(Report::Pong);
                }
                return Ok(true);
            }
            Frame::Ping(_) => {
                // tungstenite queued the pong; it goes out with the next flush.
                self.unflushed = true;
                return Ok(true);
            }
            Frame::Close(_) if self.closing => {
                // The server's answer to our close frame.
                return Ok(true);
            }
            Frame::Close(frame) => {
                self.peer_close = Some(match frame {
                    Some(frame) => WebSocketError::Closed {
                        code: frame.code.into(),
                        reason: frame.reason.as_str().to_owned(),
                    },
                    None => WebSocketError::Closed {
                        code: 1005,
                        reason: String::new(),
                    },
                });
                // tungstenite queued the answering close frame.
                self.unflushed = true;
                return Ok(true);
            }
            Frame::Frame(_) => return Ok(true),
        };
        if discard {
            return Ok(true);
        }
        if !self.shared.leased.load(Ordering::SeqCst) {
            return Err(WebSocketError::Protocol(
                "a message arrived while the WebSocket was idle in the pool".into(),
            ));
        }
        // Reserved above; a holder gone since then just misses it.
        let _ = self.incoming.send_item(message);
        Ok(true)
    }

    fn step(&mut self, cx: &mut Context<'_>) -> Poll<WebSocketError> {
        loop {
            if let Some(grace) = self.grace.as_mut() {
                if grace.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(WebSocketError::ClosedLocally);
                }
            }
            let mut progress = match self.poll_commands(cx) {
                Ok(progress) => progress,
                Err(fate) => return Poll::Ready(fate),
            };
            if self.unflushed {
                match Pin::new(&mut self.socket).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.unflushed = false,
                    Poll::Ready(Err(e)) => return Poll::Ready(self.failure(&e)),
                    Poll::Pending => {}
                }
            }
            match self.poll_read(cx) {
                Ok(read) => progress |= read,
                Err(fate) => return Poll::Ready(fate),
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }
}

impl<F: FnMut(Report) + Send + Unpin + 'static> Future for Driver<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let fate = std::task::ready!(this.step(cx));
        this.shared.set_fate(fate);
        (this.report)(Report::Closed);
        // Whoever waits on the channels learns the fate now.
        this.commands.close();
        this.incoming.close();
        Poll::Ready(())
    }
}
