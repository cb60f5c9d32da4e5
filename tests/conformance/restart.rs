//! Riding through a restart of the real nginx: a steady load of GETs (20 a
//! second, each on its own task, with the client's default 30 s timeout)
//! while nginx is stopped gracefully (SIGQUIT), fast (SIGTERM) or killed
//! (SIGKILL), stays down for 0.5 s (and 2 s once, over HTTP/1.1), and comes
//! back on the same ports.
//!
//! A request issued while nginx was up, or while it was down, succeeds: those
//! issued while it was down wait through the refused connects (the core keeps
//! them while their deadline outlasts the backoff) and are served once it is
//! back. The only failures allowed are requests cut in flight by the stop, at
//! most [`Expect::max_cut`] (none is expected most of the time):
//!
//! - a fast or killed stop closes connections with requests on them: over
//!   HTTP/2 a GET cut so is sent once more, on a new connection, so none may
//!   fail; over HTTP/1.1 a request on a new connection, or already retried
//!   once, is not sent again;
//! - even a graceful stop can cut a request that reaches nginx a moment too
//!   late, on an idle keep-alive connection nginx is closing: it is retried
//!   once, on a new connection, and that one can still be reset if the kernel
//!   queued it on a listener that goes away with the exiting master (seen
//!   rarely over HTTP/1.1, as "connection reset by peer" on a request issued
//!   as the stop began).
//!
//! Over plain HTTP/1.1 and over TLS with HTTP/2.
//! Skipped (with a message) on a machine without nginx, unless
//! `MUXPOOL_REQUIRE_NGINX` is set.

use std::time::{Duration, Instant};

use crate::support::{self, assert_quiescent, get, sleep, spawn, within, Adapter};
use http::Version;
use muxpool::client::Client;
use muxpool::tls::Alpn;
use muxpool_testkit::certs::Ca;
use muxpool_testkit::nginx::{self, Nginx, NginxOptions, Stop, HELLO};
use tokio::sync::oneshot::error::TryRecvError;

/// Requests are issued this often: 20 a second.
const PERIOD: Duration = Duration::from_millis(50);

/// How long the load runs before the stop: a whole number of periods, so the
/// stop falls on a request's issue, the worst moment for that request.
const BEFORE: Duration = Duration::from_millis(300);

/// How long the load keeps running once nginx answers again.
const AFTER: Duration = Duration::from_millis(300);

/// What the responses over one protocol show: their version, and how many
/// requests one stop may cut in flight.
#[derive(Clone, Copy)]
struct Expect {
    version: Version,
    max_cut: usize,
}

/// Over HTTP/1.1: a request cut on a new connection, or already retried
/// once, fails.
const HTTP1: Expect = Expect {
    version: Version::HTTP_11,
    max_cut: 3,
};

/// Over HTTP/2: a GET cut on its connection is sent again on a new one.
const HTTP2: Expect = Expect {
    version: Version::HTTP_2,
    max_cut: 0,
};

/// One request of the load.
struct Outcome {
    issued: Instant,
    finished: Instant,
    /// The HTTP version of the response, or why the request failed.
    result: Result<Version, String>,
}

/// When nginx went down and came back, as seen by the thread restarting it.
struct Restart {
    /// `stop_with` was called: requests in flight from here on may be cut.
    stopping: Instant,
    /// `stop_with` returned: nothing listens.
    gone: Instant,
    /// `start_again` returned: nginx answers.
    back: Instant,
}

/// `GET url` read whole, expecting 200 and [`HELLO`].
async fn hello<R: Adapter>(client: &Client<R>, url: &str) -> Result<Version, String> {
    let response = get(client, url).await.map_err(|e| format!("{e:#}"))?;
    let version = response.version();
    let status = response.status();
    let body = response
        .into_body()
        .bytes()
        .await
        .map_err(|e| format!("reading the body: {e:#}"))?;
    if status != 200 || body != HELLO.as_bytes() {
        return Err(format!("{status} {body:?}"));
    }
    Ok(version)
}

/// Runs the load against `url` while a thread restarts `server` (`how`, down
/// for `down`), checks every outcome, and gives the server back.
async fn ride_through<R: Adapter>(
    label: &str,
    mut server: Nginx,
    client: &Client<R>,
    url: &str,
    how: Stop,
    down: Duration,
    expect: Expect,
) -> Nginx {
    let Expect { version, max_cut } = expect;
    let (done, mut restarted) = tokio::sync::oneshot::channel();
    let controller = std::thread::spawn(move || {
        std::thread::sleep(BEFORE);
        let stopping = Instant::now();
        let stopped = server.stop_with(how);
        let gone = Instant::now();
        let started = stopped.and_then(|()| {
            std::thread::sleep(down);
            server.start_again()
        });
        let back = Instant::now();
        let _ = done.send(started.map(|()| {
            (
                server,
                Restart {
                    stopping,
                    gone,
                    back,
                },
            )
        }));
    });

    // The load: one request every PERIOD, until AFTER past the restart.
    let limit = BEFORE + down + AFTER + Duration::from_secs(15);
    let (tasks, (server, times)) = within(limit, "the load", async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        let mut restart = None;
        let mut until = None;
        for i in 0u32.. {
            if restart.is_none() {
                match restarted.try_recv() {
                    Ok(result) => {
                        let (server, times): (Nginx, Restart) =
                            result.unwrap_or_else(|e| panic!("{label}: restarting nginx: {e}"));
                        until = Some(times.back + AFTER);
                        restart = Some((server, times));
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Closed) => panic!("{label}: the restarting thread panicked"),
                }
            }
            if until.is_some_and(|until| Instant::now() >= until) {
                break;
            }
            let client = client.clone();
            let url = url.to_owned();
            let issued = Instant::now();
            tasks.push(spawn::<R, _>(async move {
                let result = hello(&client, &url).await;
                Outcome {
                    issued,
                    finished: Instant::now(),
                    result,
                }
            }));
            let next = start + PERIOD * (i + 1);
            sleep(next.saturating_duration_since(Instant::now())).await;
        }
        (tasks, restart.expect("the loop ends after the restart"))
    })
    .await;
    controller.join().expect("the restarting thread");

    let outcomes = within(Duration::from_secs(20), "the requests", async {
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("a request task"));
        }
        outcomes
    })
    .await;

    let (mut up_before, mut while_down, mut up_after, mut cut) = (0, 0, 0, 0);
    let mut waited = Duration::ZERO;
    let mut failures = Vec::new();
    for o in &outcomes {
        // Milliseconds from the stop, negative before it.
        let at = if o.issued >= times.stopping {
            (o.issued - times.stopping).as_millis() as i128
        } else {
            -((times.stopping - o.issued).as_millis() as i128)
        };
        if o.issued >= times.back {
            up_after += 1;
        } else if o.issued >= times.gone {
            while_down += 1;
            waited = waited.max(o.finished - o.issued);
        } else {
            up_before += 1;
        }
        match &o.result {
            Ok(v) => assert_eq!(*v, version, "{label}: the response's version"),
            // In flight when the stop began and issued before nothing
            // listened: cut (see the module's documentation).
            Err(_) if o.issued < times.gone && o.finished >= times.stopping => {
                cut += 1;
                eprintln!(
                    "{label}: cut in flight (issued {at} ms from the stop): {:?}",
                    o.result
                );
            }
            Err(e) => failures.push(format!("issued at {at} ms from the stop: {e}")),
        }
    }
    eprintln!(
        "{label}: {} requests: {up_before} up to the stop, {while_down} while down \
         (the longest waited {waited:?}), {up_after} after; {cut} cut in flight, {} failed; \
         stop took {:?}, down {:?}",
        outcomes.len(),
        failures.len(),
        times.gone - times.stopping,
        times.back - times.gone,
    );
    assert!(
        failures.is_empty(),
        "{label}: failed requests: {failures:#?}"
    );
    assert!(cut <= max_cut, "{label}: {cut} requests cut in flight");
    assert!(
        up_before > 0 && up_after > 0,
        "{label}: the load covers the restart"
    );
    assert!(
        while_down > 0,
        "{label}: some requests were issued while down"
    );
    assert_quiescent(client).await;
    server
}

/// The adapter's name, for the printed counts.
fn runtime<R>() -> &'static str {
    let name = std::any::type_name::<R>();
    name.rsplit("::").next().unwrap_or(name)
}

/// Each kind of stop, down for 0.5 s.
const SHORT: [(Stop, Duration); 3] = [
    (Stop::Graceful, Duration::from_millis(500)),
    (Stop::Fast, Duration::from_millis(500)),
    (Stop::Kill, Duration::from_millis(500)),
];

/// Down for 2 s: long enough for the backoff to grow past a second, so the
/// requests waiting are served by the attempt after it is back.
const LONG: (Stop, Duration) = (Stop::Kill, Duration::from_secs(2));

async fn http1_rides_through_restarts<R: Adapter>() {
    if !nginx::available_or_skip("http1_rides_through_restarts") {
        return;
    }
    let mut server =
        Nginx::start(NginxOptions::default()).unwrap_or_else(|e| panic!("starting nginx: {e}"));
    let client = Client::<R>::new();
    let url = format!("{}/", server.base_url());
    for (how, down) in SHORT.into_iter().chain([LONG]) {
        let label = format!("{} http1 {how:?} {down:?}", runtime::<R>());
        server = ride_through(&label, server, &client, &url, how, down, HTTP1).await;
    }
}

async fn https_h2_rides_through_restarts<R: Adapter>() {
    if !nginx::available_or_skip("https_h2_rides_through_restarts") {
        return;
    }
    let ca = Ca::new("muxpool nginx restart CA");
    let dir = support::cert_dir("nginx-restart");
    let (cert, key) = ca.leaf(&["127.0.0.1"]).write_pem(&dir);
    let mut server = Nginx::start(NginxOptions {
        plain: false,
        tls: Some((cert, key)),
        h2: true,
        ..NginxOptions::default()
    })
    .unwrap_or_else(|e| panic!("starting nginx: {e}"));
    let tls = support::tls_trusting_with(&ca, Alpn::Http1AndHttp2);
    let client = Client::<R>::builder().tls(tls).build().expect("a client");
    let url = format!("{}/", server.https_base_url());
    // The long downtime only over HTTP/1.1, to keep the file's time down: the
    // connects it refuses are the same.
    for (how, down) in SHORT {
        let label = format!("{} h2 {how:?} {down:?}", runtime::<R>());
        server = ride_through(&label, server, &client, &url, how, down, HTTP2).await;
    }
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

support::conformance!(
    http1_rides_through_restarts,
    https_h2_rides_through_restarts,
);
