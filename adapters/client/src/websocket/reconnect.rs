//! A WebSocket that reopens itself when it drops: [`ReconnectingWebSocket`],
//! and the task that reopens it.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

use http::{HeaderMap, Request, Uri};

use super::{at, connect, Message, WebSocket, WebSocketError};
use crate::dial::PoolKey;
use crate::error::{Error, ErrorKind};
use crate::pool::Shared;
use crate::proxy::ProxyChoice;
use crate::runtime::Runtime;

/// How a [`ReconnectingWebSocket`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconnect {
    /// Messages kept while disconnected; one more is refused. Default 1024.
    pub buffer: usize,
    /// The pause after a failed attempt, on top of the pool's own backoff.
    /// Default 100 ms.
    pub pause: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            buffer: 1024,
            pause: Duration::from_millis(100),
        }
    }
}

impl Reconnect {
    /// Keeps up to `buffer` messages while disconnected.
    pub fn with_buffer(buffer: usize) -> Reconnect {
        Reconnect {
            buffer,
            ..Reconnect::default()
        }
    }
}

/// What the caller and the reconnect task share.
#[derive(Default)]
struct Handoff {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Messages sent while disconnected, oldest first.
    buffer: VecDeque<Message>,
    /// A new WebSocket, its buffer written, for the caller to take.
    ready: Option<WebSocket>,
    /// Why reconnecting stopped for good (the client shut down).
    failed: Option<Error>,
    /// A reconnect task is running.
    reconnecting: bool,
    /// The caller closed or dropped it: the task stops.
    abandoned: bool,
    /// The caller waiting for a WebSocket.
    waker: Option<Waker>,
    /// The reconnect task, while it waits for a connection.
    task: Option<Waker>,
}

impl Handoff {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The caller is gone: the task stops, at once if it waits for a
    /// connection (a connect refused again and again keeps a request waiting
    /// until its deadline).
    fn abandon(&self) -> Option<WebSocket> {
        let (ready, task) = {
            let mut st = self.lock();
            st.abandoned = true;
            st.buffer.clear();
            (st.ready.take(), st.task.take())
        };
        if let Some(task) = task {
            task.wake();
        }
        ready
    }

    /// Runs `opening` until it ends or the caller abandons the WebSocket
    /// (`None`).
    async fn unless_abandoned<T>(&self, opening: impl Future<Output = T>) -> Option<T> {
        let mut opening = std::pin::pin!(opening);
        std::future::poll_fn(|cx| {
            {
                let mut st = self.lock();
                if st.abandoned {
                    return Poll::Ready(None);
                }
                st.task = Some(cx.waker().clone());
            }
            opening.as_mut().poll(cx).map(Some)
        })
        .await
    }
}

/// Starts a reconnect task.
type Restart = Arc<dyn Fn(Arc<Handoff>) + Send + Sync>;

/// A WebSocket that is reopened, through the pool, whenever it drops.
///
/// # Why
///
/// Long-lived subscriptions and RPC links outlive any one connection: servers
/// restart, load balancers cut idle links, networks blip. A
/// [`ReconnectingWebSocket`] hides that: when its WebSocket ends for any reason
/// but its own [`close`](ReconnectingWebSocket::close), a background task opens
/// another through the pool (so the pool's backoff and circuit pace the
/// attempts, and its limits and statistics count them), and messages sent
/// meanwhile wait in a bounded buffer, to be written, oldest first, as soon as
/// the new WebSocket is up.
///
/// # What is and is not promised
///
/// A message sent while disconnected is kept until a WebSocket takes it; when
/// the buffer is full, [`send`](ReconnectingWebSocket::send) refuses the
/// message with [`WebSocketError::BufferFull`] rather than dropping anything
/// silently. A message already handed to a WebSocket that then dropped may
/// or may not have reached the server (TCP cannot tell): delivery across a drop
/// is at most once for those, as with any WebSocket. Messages the server sent
/// on the old WebSocket that were not yet received are lost with it.
pub struct ReconnectingWebSocket {
    current: Option<WebSocket>,
    handoff: Arc<Handoff>,
    restart: Restart,
    capacity: usize,
    reconnects: u64,
    /// What every WebSocket is opened for: the origin its own errors name.
    key: Option<PoolKey>,
}

impl fmt::Debug for ReconnectingWebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconnectingWebSocket")
            .field("connected", &self.current.is_some())
            .field("reconnects", &self.reconnects)
            .finish_non_exhaustive()
    }
}

/// Opens the first WebSocket for `request`; later ones are opened the same
/// way, each within `timeout`.
pub(crate) async fn open<R: Runtime>(
    inner: &Arc<Shared<R>>,
    request: Request<()>,
    timeout: Duration,
    options: Reconnect,
) -> Result<ReconnectingWebSocket, Error> {
    if options.buffer == 0 {
        return Err(Error::new(ErrorKind::Config)
            .with_message("a reconnecting WebSocket needs room for one message"));
    }
    let uri = request.uri().clone();
    let headers = request.headers().clone();
    let choice = request.extensions().get::<ProxyChoice>().cloned();
    let first = connect(inner, request, timeout).await?;
    let runner = Arc::clone(inner);
    let restart: Restart = Arc::new(move |handoff| {
        let inner = Arc::clone(&runner);
        let (uri, headers, choice) = (uri.clone(), headers.clone(), choice.clone());
        runner.runtime.spawn(async move {
            let target = (uri, headers, choice);
            reconnect(inner, target, timeout, options.pause, handoff).await;
        });
    });
    Ok(ReconnectingWebSocket {
        key: first.key.clone(),
        current: Some(first),
        handoff: Arc::default(),
        restart,
        capacity: options.buffer,
        reconnects: 0,
    })
}

/// The reconnect task: opens WebSockets until one takes the whole buffer,
/// then hands it over.
async fn reconnect<R: Runtime>(
    inner: Arc<Shared<R>>,
    (uri, headers, choice): (Uri, HeaderMap, Option<ProxyChoice>),
    timeout: Duration,
    pause: Duration,
    handoff: Arc<Handoff>,
) {
    loop {
        if handoff.lock().abandoned {
            return;
        }
        let mut request = Request::new(());
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers.clone();
        if let Some(choice) = &choice {
            request.extensions_mut().insert(choice.clone());
        }
        let Some(opened) = handoff
            .unless_abandoned(connect(&inner, request, timeout))
            .await
        else {
            return;
        };
        let mut ws = match opened {
            Ok(ws) => ws,
            Err(error) if error.kind() == ErrorKind::ShutDown => {
                let mut st = handoff.lock();
                st.failed = Some(error);
                st.reconnecting = false;
                if let Some(waker) = st.waker.take() {
                    drop(st);
                    waker.wake();
                }
                return;
            }
            Err(_) => {
                inner.runtime.timer(inner.runtime.now() + pause).await;
                continue;
            }
        };
        // The buffer goes out oldest first; the WebSocket is handed over
        // once it is empty, under the lock, so that nothing the caller sends
        // meanwhile overtakes it.
        loop {
            let next = {
                let mut st = handoff.lock();
                match st.buffer.pop_front() {
                    Some(message) => message,
                    None => {
                        st.reconnecting = false;
                        if st.abandoned {
                            return;
                        }
                        st.ready = Some(ws);
                        let waker = st.waker.take();
                        drop(st);
                        if let Some(waker) = waker {
                            waker.wake();
                        }
                        return;
                    }
                }
            };
            if let Err((message, _)) = ws.send_or_return(next).await {
                handoff.lock().buffer.push_front(message);
                break;
            }
        }
    }
}

impl ReconnectingWebSocket {
    /// Takes a WebSocket the reconnect task handed over, if there is one.
    fn adopt(&mut self) -> Result<(), Error> {
        if self.current.is_some() {
            return Ok(());
        }
        let mut st = self.handoff.lock();
        if let Some(ws) = st.ready.take() {
            self.current = Some(ws);
            self.reconnects += 1;
            return Ok(());
        }
        match &st.failed {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// The current WebSocket ended: start reconnecting.
    fn lost(&mut self) {
        self.current = None;
        let mut st = self.handoff.lock();
        if st.reconnecting || st.abandoned || st.ready.is_some() {
            return;
        }
        st.reconnecting = true;
        drop(st);
        (self.restart)(Arc::clone(&self.handoff));
    }

    /// Sends `message` now, or keeps it for the next WebSocket while
    /// disconnected.
    ///
    /// # Errors
    ///
    /// [`WebSocketError::BufferFull`] when disconnected with the buffer full
    /// (the message is not taken), [`WebSocketError::MessageTooLarge`] for a
    /// message over the limit, [`ErrorKind::ShutDown`] once the client is gone.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        let mut message = message.into();
        loop {
            self.adopt()?;
            let Some(ws) = self.current.as_mut() else {
                let mut st = self.handoff.lock();
                if st.ready.is_some() {
                    // Handed over just now: send on it.
                    continue;
                }
                if st.buffer.len() >= self.capacity {
                    let full = WebSocketError::BufferFull {
                        capacity: self.capacity,
                    };
                    return Err(at(full.into_error(), self.key.as_ref()));
                }
                st.buffer.push_back(message);
                return Ok(());
            };
            if message.len() > ws.max_message {
                return ws.send(message).await;
            }
            match ws.send_or_return(message).await {
                Ok(()) => return Ok(()),
                Err((back, _)) => {
                    message = back;
                    self.lost();
                }
            }
        }
    }

    /// The next message from the server, waiting through reconnects.
    ///
    /// # Errors
    ///
    /// [`WebSocketError::MessageTooLarge`] when the server sent a message over
    /// the limit (the WebSocket is then reopened), [`ErrorKind::ShutDown`] once
    /// the client is gone.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        loop {
            self.adopt()?;
            match self.current.as_mut() {
                Some(ws) => match ws.recv().await {
                    Ok(message) => return Ok(message),
                    Err(error) => {
                        self.lost();
                        if matches!(
                            error.websocket(),
                            Some(WebSocketError::MessageTooLarge { .. })
                        ) {
                            return Err(error);
                        }
                    }
                },
                None => self.reconnected().await?,
            }
        }
    }

    /// Waits until the reconnect task hands a WebSocket over.
    async fn reconnected(&mut self) -> Result<(), Error> {
        self.lost();
        std::future::poll_fn(|cx| {
            let mut st = self.handoff.lock();
            if st.ready.is_some() {
                return Poll::Ready(Ok(()));
            }
            if let Some(error) = &st.failed {
                return Poll::Ready(Err(error.clone()));
            }
            st.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// How many times the WebSocket was reopened.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Whether a WebSocket is up now (as far as this side knows).
    pub fn is_connected(&self) -> bool {
        self.current.as_ref().is_some_and(|ws| !ws.is_closed())
    }

    /// Messages waiting for the next WebSocket.
    pub fn buffered(&self) -> usize {
        self.handoff.lock().buffer.len()
    }

    /// Closes the current WebSocket and stops reconnecting; messages still
    /// buffered are discarded.
    pub async fn close(mut self) -> Result<(), Error> {
        drop(self.handoff.abandon());
        match self.current.take() {
            Some(ws) => ws.close().await,
            None => Ok(()),
        }
    }
}

impl Drop for ReconnectingWebSocket {
    fn drop(&mut self) {
        drop(self.handoff.abandon());
    }
}
