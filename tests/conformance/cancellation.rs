//! Cancellation safety and shutdown: `send` futures dropped at random points
//! (queued, connecting, writing, waiting for the head) and response bodies
//! dropped half-read, under load, leak neither a lease nor a connection; the
//! client keeps working. `shutdown` waits for responses in progress, then
//! every later request fails with `ErrorKind::ShutDown`.

use crate::support::{self, spawn, Adapter};

use std::time::Duration;

use crate::support::{
    assert_quiescent, get, get_text, is_quiescent, spawn_get, spawn_get_text, within, Rng,
};
use muxpool::client::Client;
use muxpool::ErrorKind;
use muxpool_testkit::hyper_server::{content, HyperServer, Options, Protocol};

/// One task of the load: a request cancelled, or read partly, or read whole,
/// as `rng` decides.
async fn chaos<R: Adapter>(client: Client<R>, base: String, seed: u64) {
    let mut rng = Rng::new(seed);
    for _ in 0..6 {
        let path = match rng.below(5) {
            0 => "/".to_owned(),
            1 => format!("/slow/{}", rng.below(30)),
            2 => format!("/bytes/{}", rng.below(400_000)),
            3 => format!("/chunked/{}", rng.below(200_000)),
            _ => "/echo".to_owned(),
        };
        let url = format!("{base}{path}");
        let request = if path == "/echo" {
            support::request(
                http::Method::POST,
                url,
                bytes::Bytes::from(content(rng.below(100_000) as usize)),
            )
        } else {
            support::request(http::Method::GET, url, muxpool::Body::empty())
        };
        match rng.below(3) {
            // Drop `send` at a random moment.
            0 => {
                let limit = Duration::from_micros(rng.below(20_000));
                let _ = support::timeout(limit, client.send(request)).await;
            }
            // Read part of the body, then drop it.
            1 => {
                let Ok(response) = client.send(request).await else {
                    continue;
                };
                let mut body = response.into_body();
                for _ in 0..rng.below(4) {
                    if !matches!(body.chunk().await, Ok(Some(_))) {
                        break;
                    }
                }
                if rng.below(2) == 0 {
                    // Or drop it while a read is pending.
                    let limit = Duration::from_micros(rng.below(2_000));
                    let _ = support::timeout(limit, body.chunk()).await;
                }
            }
            // Read it all, under a random deadline.
            _ => {
                let limit = Duration::from_micros(rng.below(50_000));
                let _ = support::timeout(limit, async {
                    let response = client.send(request).await?;
                    response.into_body().bytes().await
                })
                .await;
            }
        }
    }
}

/// 200 chaos tasks at once, seeded from `salt`, within a bounded time.
async fn load<R: Adapter>(client: &Client<R>, server: &HyperServer, salt: u64) {
    let base = server.url("");
    let tasks: Vec<_> = (1..=200u64)
        .map(|seed| {
            spawn::<R, _>(chaos::<R>(
                client.clone(),
                base.clone(),
                seed.wrapping_mul(salt),
            ))
        })
        .collect();
    within(Duration::from_secs(20), "the chaos tasks", async {
        for task in tasks {
            task.await.expect("no task panicked");
        }
    })
    .await;
}

/// The client still works at full concurrency, and is left quiescent.
async fn still_serves<R: Adapter>(client: &Client<R>, server: &HyperServer) {
    let mut checks = Vec::new();
    for _ in 0..32 {
        let client = client.clone();
        let url = server.url("/bytes/10000");
        checks.push(spawn::<R, _>(async move {
            get(&client, url).await.unwrap().into_body().bytes().await
        }));
    }
    for check in checks {
        assert_eq!(check.await.unwrap().unwrap(), content(10_000));
    }
    assert_quiescent(client).await;
}

async fn cancelled_requests_and_dropped_bodies_leak_nothing<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::builder()
        .max_connections_per_key(16)
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    load::<R>(&client, &server, 0x9e37_79b9_7f4a_7c15).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "the load took {elapsed:?}"
    );

    // Nothing is held: no lease, no waiter, no connect, every open connection
    // idle, and never more connections than the limit.
    assert_quiescent(&client).await;
    let stats = client.stats();
    assert!(stats.open <= 16, "{stats:#?}");
    assert!(stats.grants > 0);
    assert!(
        stats.cancelled > 0 || stats.closes.total() > 0,
        "the load did cancel something: {stats:#?}"
    );
    // The server sees no more connections than the client holds, once the
    // closed ones are gone.
    support::wait_until("the server sees the closes", || {
        server.open_connections() <= stats.open as usize
    })
    .await;

    // And the client still works, at full concurrency.
    still_serves::<R>(&client, &server).await;
}

async fn cancelled_http2_streams_leak_nothing<R: Adapter>() {
    // The same load over HTTP/2: dropped `send` futures and bodies give their
    // stream slots back, and the connection keeps serving.
    let server = HyperServer::start(Options {
        protocol: Protocol::Http2,
        ..Options::default()
    });
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .max_connections_per_key(4)
        .build()
        .unwrap();
    load::<R>(&client, &server, 0x2545_f491_4f6c_dd1d).await;
    assert_quiescent(&client).await;
    let stats = client.stats();
    assert!(stats.open <= 4, "{stats:#?}");
    assert!(stats.grants > 0);
    still_serves::<R>(&client, &server).await;
}

async fn cancelled_while_queued_and_while_connecting<R: Adapter>() {
    // One connection allowed: most requests wait in the queue, and are all
    // dropped there.
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::builder()
        .max_connections_per_key(1)
        .build()
        .unwrap();
    let holder = spawn_get_text(&client, server.url("/slow/1000"));
    support::wait_until("the slow request holds the connection", || {
        server.requests() == 1
    })
    .await;
    let mut waiting = Vec::new();
    for _ in 0..50 {
        waiting.push(spawn_get(&client, server.url("/")));
    }
    support::wait_until("the requests are queued", || client.stats().waiting == 50).await;
    for task in &waiting {
        task.abort();
    }
    for task in waiting {
        assert!(task.await.unwrap_err().is_cancelled());
    }
    assert_eq!(
        client.stats().waiting,
        0,
        "every cancelled waiter left the queue"
    );
    assert_eq!(holder.await.unwrap(), "slow");
    assert_quiescent(&client).await;
    let stats = client.stats();
    assert_eq!(stats.cancelled, 50, "{stats:#?}");
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(server.accepted(), 1, "the one connection survived it all");

    // Dropped while the first connect is in flight: a fresh client, many
    // requests, all dropped at once.
    let fresh = Client::<R>::new();
    let sends: Vec<_> = (0..20)
        .map(|_| spawn_get(&fresh, server.url("/")))
        .collect();
    for task in &sends {
        task.abort();
    }
    for task in sends {
        let _ = task.await;
    }
    assert_quiescent(&fresh).await;
    assert_eq!(get_text(&fresh, server.url("/")).await, "hello");
    assert_quiescent(&fresh).await;
}

async fn shutdown_waits_for_responses_in_progress<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    // An idle connection and a busy one.
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    let busy = get(&client, server.url("/bytes/3000000")).await.unwrap();
    let idle = get_text(&client, server.url("/"));
    assert_eq!(idle.await, "hello");
    assert_eq!(client.stats().open, 2);

    let shutdown = {
        let client = client.clone();
        spawn::<R, _>(async move { client.shutdown().await })
    };
    // The idle connection closes at once; the busy one stays for its response.
    support::wait_until("the idle connection closes", || {
        server.open_connections() == 1
    })
    .await;
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the busy connection"
    );

    // New requests are refused while shutting down.
    let error = get(&client, server.url("/"))
        .await
        .expect_err("shutting down");
    assert_eq!(error.kind(), ErrorKind::ShutDown, "{error:#}");

    // The response in progress completes.
    let body = busy
        .into_body()
        .bytes()
        .await
        .expect("the response finishes");
    assert!(body[..] == content(3_000_000)[..]);
    within(Duration::from_secs(2), "shutdown", shutdown)
        .await
        .unwrap();
    assert_eq!(client.stats().open, 0);
    support::wait_until("the server sees every connection closed", || {
        server.open_connections() == 0
    })
    .await;

    let error = get(&client, server.url("/")).await.expect_err("shut down");
    assert_eq!(error.kind(), ErrorKind::ShutDown, "{error:#}");
    assert!(format!("{error}").contains("shut down"), "{error}");
}

async fn shutdown_of_an_idle_client_is_immediate<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    for _ in 0..3 {
        assert_eq!(get_text(&client, server.url("/")).await, "hello");
    }
    within(Duration::from_secs(2), "shutdown", client.shutdown()).await;
    assert_eq!(client.stats().open, 0);
    let error = get(&client, server.url("/")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ShutDown);
    // Twice is fine.
    within(
        Duration::from_secs(2),
        "a second shutdown",
        client.shutdown(),
    )
    .await;
}

async fn shutdown_refuses_waiting_requests<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::builder()
        .max_connections_per_key(1)
        .build()
        .unwrap();
    let holder = get(&client, server.url("/bytes/2000000")).await.unwrap();
    let waiter = spawn_get(&client, server.url("/"));
    support::wait_until("the second request waits", || client.stats().waiting == 1).await;
    client.shutdown_now();
    let error = within(Duration::from_secs(2), "the waiter's answer", waiter)
        .await
        .unwrap()
        .expect_err("refused by the shutdown");
    assert_eq!(error.kind(), ErrorKind::ShutDown, "{error:#}");
    // The holder can still read what it holds (or fails cleanly); either way
    // the connection is gone afterwards.
    let _ = holder.into_body().bytes().await;
    support::wait_until("everything is closed", || {
        let stats = client.stats();
        stats.open == 0 && is_quiescent(&stats)
    })
    .await;
}

async fn dropping_the_last_client_closes_its_connections<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    let other = client.clone();
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    assert_eq!(get_text(&other, server.url("/")).await, "hello");
    drop(client);
    // A clone keeps the pool alive.
    assert_eq!(get_text(&other, server.url("/")).await, "hello");
    assert_eq!(server.open_connections(), 1);
    drop(other);
    support::wait_until("the server sees the connection closed", || {
        server.open_connections() == 0
    })
    .await;
}

support::conformance!(
    cancelled_requests_and_dropped_bodies_leak_nothing,
    cancelled_http2_streams_leak_nothing,
    cancelled_while_queued_and_while_connecting,
    shutdown_waits_for_responses_in_progress,
    shutdown_of_an_idle_client_is_immediate,
    shutdown_refuses_waiting_requests,
    dropping_the_last_client_closes_its_connections,
);
