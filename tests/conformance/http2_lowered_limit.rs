//! A server may lower SETTINGS_MAX_CONCURRENT_STREAMS at any time, even below
//! the streams it has open (RFC 9113, section 6.5.2): once the client has
//! acknowledged it, the client opens no stream on that connection until it
//! is under the new limit. The pool learns the new limit from the
//! connection's driver, and what it does with the requests the connection can
//! no longer take is its saturation policy's: by default they go out on
//! another connection (`Saturation::Spill`); with `Saturation::Queue` they
//! wait in the pool for a stream of this one. Either way every request is
//! answered.
//!
//! The server, written frame by frame, announces 100 streams, holds three in
//! flight on its first connection, lowers its limit to one, and holds them
//! until the test has seen where the next requests went. Every answer says
//! which stream of which connection it came from.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::{
    self, assert_quiescent, get_text, spawn_get_text, wait_until, within, Adapter, Task, DEADLINE,
};
use muxpool::client::Client;
use muxpool::sans_io::Saturation;
use muxpool::PoolConfig;
use muxpool_testkit::h2_frames::{answer_for, answered_by, FrameServer, MAX_CONCURRENT_STREAMS};
use tokio::sync::Notify;

/// The limit every connection announces first.
const FIRST_LIMIT: u32 = 100;

/// The limit the first connection lowers it to.
const LOWERED: u32 = 1;

/// The streams the first connection holds when it lowers its limit: 3, 5, 7.
const HELD: usize = 3;

/// `n` GETs at once, each on its own task.
fn spawn_gets<R: Adapter>(client: &Client<R>, server: &FrameServer, n: usize) -> Vec<Task<String>> {
    (0..n)
        .map(|_| spawn_get_text(client, server.url("/")))
        .collect()
}

/// Where the test and the first connection meet.
#[derive(Default)]
struct Lowering {
    /// The client acknowledged the lowered limit.
    acknowledged: AtomicBool,
    /// Lets the first connection answer the streams it holds.
    release: Notify,
}

/// A server whose first connection answers stream 1, holds the next
/// [`HELD`] streams, lowers its limit to [`LOWERED`] and, once the client has
/// acknowledged it, holds them until released, then answers every stream.
/// Every other connection answers every stream.
fn lowering_server(lowering: &Arc<Lowering>) -> FrameServer {
    let lowering = Arc::clone(lowering);
    FrameServer::start(move |mut conn| {
        let lowering = Arc::clone(&lowering);
        async move {
            conn.handshake(&[(MAX_CONCURRENT_STREAMS, FIRST_LIMIT)])
                .await?;
            if conn.index() != 0 {
                return conn.answer_all().await;
            }
            conn.hold(1).await?;
            conn.answer(1).await?;
            let held = conn.hold(HELD).await?;
            conn.settings(&[(MAX_CONCURRENT_STREAMS, LOWERED)]).await?;
            conn.acknowledged().await?;
            lowering.acknowledged.store(true, Ordering::SeqCst);
            conn.hold_until(lowering.release.notified()).await?;
            for stream in held {
                conn.answer(stream).await?;
            }
            conn.answer_all().await
        }
    })
}

/// A client on `saturation`, its first request answered on stream 1, and
/// [`HELD`] more in flight, once the client has acknowledged the lowered
/// limit: their tasks, each giving its answer.
async fn lowered_under_load<R: Adapter>(
    server: &FrameServer,
    lowering: &Lowering,
    saturation: Saturation,
) -> (Client<R>, Vec<Task<String>>) {
    let mut pool = PoolConfig::default();
    pool.saturation = saturation;
    let client = Client::<R>::builder()
        .pool(pool)
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration");
    assert_eq!(get_text(&client, server.url("/")).await, answer_for(0, 1));
    let held = spawn_gets(&client, server, HELD);
    wait_until("the server holds its streams", || {
        server.requests().len() == 1 + HELD
    })
    .await;
    wait_until("the client acknowledges the lowered limit", || {
        lowering.acknowledged.load(Ordering::SeqCst)
    })
    .await;
    (client, held)
}

/// Every request the first connection read after its held streams: each
/// found at most [`LOWERED`] streams open, itself included.
fn assert_the_first_connection_kept_the_limit(server: &FrameServer) {
    let held_last = 1 + 2 * HELD as u32;
    for r in server.requests() {
        if r.conn == 0 && r.stream > held_last {
            assert!(
                r.open <= LOWERED as usize,
                "stream {} opened with {} open: {:?}",
                r.stream,
                r.open,
                server.requests()
            );
        }
    }
}

async fn a_lowered_stream_limit_spills_to_another_connection<R: Adapter>() {
    let lowering = Arc::new(Lowering::default());
    let server = lowering_server(&lowering);
    let (client, held) = lowered_under_load::<R>(&server, &lowering, Saturation::Spill).await;

    // The first connection is over its new limit: the next requests go out
    // on another, and are answered while its streams are still held.
    let more = spawn_gets(&client, &server, 3);
    for task in more {
        let text = within(DEADLINE, "a request beyond the lowered limit", task)
            .await
            .expect("the task ran");
        let (conn, _) = answered_by(&text).expect("an answer");
        assert_ne!(conn, 0, "{text}");
    }
    let on_first = server.requests().iter().filter(|r| r.conn == 0).count();
    assert_eq!(on_first, 1 + HELD, "{:?}", server.requests());

    lowering.release.notify_one();
    let mut answers = Vec::new();
    for task in held {
        answers.push(task.await.expect("the task ran"));
    }
    answers.sort();
    assert_eq!(
        answers,
        [answer_for(0, 3), answer_for(0, 5), answer_for(0, 7)]
    );
    assert_the_first_connection_kept_the_limit(&server);
    // At most one connection more for each request beyond the limit: the
    // pool opens as many as the lowered limit says the requests need, and
    // the first to come up (announcing 100 streams) takes them all.
    assert_quiescent(&client).await;
    let accepted = server.accepted();
    assert!((2..=4).contains(&accepted), "{accepted} connections");
    assert_eq!(client.stats().connects, accepted as u64);
}

async fn a_lowered_stream_limit_queues_requests_when_told_to<R: Adapter>() {
    let lowering = Arc::new(Lowering::default());
    let server = lowering_server(&lowering);
    let (client, held) = lowered_under_load::<R>(&server, &lowering, Saturation::Queue).await;

    // The only connection is over its new limit: the next requests wait in
    // the pool, and none reaches the server.
    let more = spawn_gets(&client, &server, 3);
    wait_until("the pool queues the requests beyond the limit", || {
        client.stats().waiting == 3
    })
    .await;
    assert_eq!(server.requests().len(), 1 + HELD);

    // The held streams answered, the waiting requests go out on the same
    // connection one at a time.
    lowering.release.notify_one();
    let mut answers = Vec::new();
    for task in held.into_iter().chain(more) {
        answers.push(task.await.expect("the task ran"));
    }
    answers.sort();
    let mut expected: Vec<String> = [3, 5, 7, 9, 11, 13]
        .into_iter()
        .map(|stream| answer_for(0, stream))
        .collect();
    expected.sort();
    assert_eq!(answers, expected);
    assert_the_first_connection_kept_the_limit(&server);
    assert_eq!(server.accepted(), 1);
    assert_quiescent(&client).await;
}

support::conformance!(
    a_lowered_stream_limit_spills_to_another_connection,
    a_lowered_stream_limit_queues_requests_when_told_to,
);
