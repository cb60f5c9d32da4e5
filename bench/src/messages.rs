//! The `messages` mode: request/response over one muxpool
//! [`Connection`](muxpool::MessageChannel), over one pooled
//! WebSocket and over HTTP/2 streams (a `POST` per message).
//!
//! The servers are in process (the testkit's tungstenite server answering each
//! `req {id} {body}` with `res {id} {body}` at once, and its hyper h2c server's
//! `/echo`), on the testkit's background runtime; the client runs alone on a
//! current-thread tokio runtime on this thread, pinned to the client CPU, so
//! the client's CPU per message is this thread's CPU time (`RUSAGE_THREAD`)
//! over the messages answered: the servers' threads are not counted.
//! `concurrency` tasks each loop one request at a time, with ids of their own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use muxpool::{ChannelOptions, Codec};
use muxpool::{Client, Message};
use muxpool_testkit::hyper_server::{HyperServer, Options as HttpOptions, Protocol};
use muxpool_testkit::ws_server::{Behavior, Options, WsServer};

use crate::report::Row;
use crate::sys::{cpu_time, Who};

/// The id of `req {id} ...` and `res {id} ...`.
struct Words;

impl Codec for Words {
    type Id = u64;

    fn id(&self, message: &Message) -> Option<u64> {
        let mut words = message.as_text()?.split(' ');
        match words.next()? {
            "req" | "res" => words.next()?.parse().ok(),
            _ => None,
        }
    }
}

/// The two transports measured.
#[derive(Clone, Copy)]
enum Transport {
    WebSocket,
    Http2,
}

/// Runs both transports at each concurrency; returns the table's rows.
pub fn run(concurrency: &[usize], warmup: Duration, duration: Duration) -> Vec<Row> {
    if let Err(e) = crate::sys::pin_to_cpu(crate::sys::CLIENT_CPU) {
        eprintln!("warning: not pinned to CPU {}: {e}", crate::sys::CLIENT_CPU);
    }
    let ws = WsServer::start(Options {
        behavior: Behavior::Rpc(1),
        ..Options::default()
    });
    let h2 = HyperServer::start(HttpOptions {
        protocol: Protocol::Http2,
        ..HttpOptions::default()
    });
    let mut rows = Vec::new();
    for &n in concurrency {
        for (name, transport) in [
            ("websocket", Transport::WebSocket),
            ("h2-streams", Transport::Http2),
        ] {
            eprintln!("{name} at concurrency {n}...");
            let before = match transport {
                Transport::WebSocket => ws.accepted(),
                Transport::Http2 => h2.accepted(),
            };
            let row = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| {
                    rt.block_on(measure(name, transport, &ws, &h2, n, warmup, duration))
                });
            let after = match transport {
                Transport::WebSocket => ws.accepted(),
                Transport::Http2 => h2.accepted(),
            };
            match row {
                Ok(row) => rows.push(Row {
                    conns_opened: Some((after - before) as u64),
                    ..row
                }),
                Err(e) => eprintln!("error: {name}: {e}"),
            }
        }
    }
    rows
}

async fn measure(
    name: &str,
    transport: Transport,
    ws: &WsServer,
    h2: &HyperServer,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Row, String> {
    let client = Client::builder()
        .http2_prior_knowledge(true)
        .build()
        .map_err(|e| e.to_string())?;
    let options = ChannelOptions::default().max_in_flight(concurrency);
    let conn = match transport {
        Transport::WebSocket => {
            let request = http::Request::get(ws.url("/rpc"))
                .body(())
                .map_err(|e| e.to_string())?;
            client
                .messages_over_websocket(request, Words, options)
                .await
                .map_err(|e| format!("{e:#}"))?
        }
        Transport::Http2 => {
            let url = h2.url("/echo").parse().map_err(|e| format!("{e}"))?;
            client.messages_over_http(url, Words, options)
        }
    };
    let conn = Arc::new(conn);
    let measuring = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?,
    ));
    let tasks: Vec<_> = (0..concurrency as u64)
        .map(|task| {
            let (conn, measuring, done) = (Arc::clone(&conn), measuring.clone(), done.clone());
            let (answered, errors, latency) = (answered.clone(), errors.clone(), latency.clone());
            tokio::spawn(async move {
                let mut mine =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
                let mut seq = 0u64;
                while !done.load(Ordering::Relaxed) {
                    seq += 1;
                    let id = task << 40 | seq;
                    let start = Instant::now();
                    match conn.request(format!("req {id} payload")).await {
                        Ok(answer) if Words.id(&answer) == Some(id) => {
                            if measuring.load(Ordering::Relaxed) {
                                answered.fetch_add(1, Ordering::Relaxed);
                                let nanos = start.elapsed().as_nanos() as u64;
                                mine.saturating_record(nanos.max(1));
                            }
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                let _ = latency.lock().map(|mut l| l.add(&mine));
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    let cpu_start = cpu_time(Who::Thread);
    let start = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let cpu = cpu_time(Who::Thread) - cpu_start;
    done.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let requests = answered.load(Ordering::Relaxed);
    if requests == 0 {
        return Err("no message was answered".into());
    }
    let latency = latency.lock().map_err(|_| "a task panicked")?;
    Ok(Row {
        errors: errors.load(Ordering::Relaxed),
        ..Row::measured(name, concurrency, requests, elapsed, cpu, &latency)
    })
}
