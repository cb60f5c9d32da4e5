//! The closed-loop load run for in-process contenders.
//!
//! `concurrency` tasks on one thread (the contender's runtime: a current-thread
//! tokio runtime, or smol's executors on one thread) each loop `GET url`
//! and read the whole body, back to back, for a warm-up and then a measured
//! window. Within the window the run counts completed requests, records each
//! one's latency (from just before `send` to the last body byte) in an HDR
//! histogram, and takes the process's CPU time (user + system, all threads) at
//! both ends; CPU per request is that difference over the requests completed.
//! Connections opened are read from nginx's accepted count over the whole run,
//! warm-up included, with a fresh client per run: a pool that keeps its
//! connections opens exactly `concurrency`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use muxpool_testkit::nginx::Nginx;

use crate::contender::Contender;
use crate::report::Row;
use crate::sys::{cpu_time, ServerClock, Who};

/// What one load run does.
pub struct Params<'a> {
    /// The server; its accepted count gives the connections opened.
    pub nginx: &'a Nginx,
    /// The URL every request gets.
    pub url: String,
    /// The body every response must carry.
    pub expected_body: &'a [u8],
    /// Tasks looping requests at once.
    pub concurrency: usize,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// A finished run: its table row, or why it failed.
pub type Outcome = Result<Row, String>;

/// Where the run is; tasks read it after each request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measure,
    Done,
}

/// What the tasks share.
struct Shared<C> {
    client: C,
    phase: Cell<Phase>,
    /// Requests completed within the window.
    requests: Cell<u64>,
    /// Failed requests and wrong responses, throughout.
    errors: Cell<u64>,
    first_error: RefCell<Option<String>>,
    /// Latencies in nanoseconds of the requests completed within the window.
    latency: RefCell<Histogram<u64>>,
    expected_body: Vec<u8>,
}

impl<C> Shared<C> {
    fn error(&self, message: String) {
        self.errors.set(self.errors.get() + 1);
        self.first_error.borrow_mut().get_or_insert(message);
    }
}

/// Runs contender `C` as `params` says.
pub fn run<C: Contender>(params: &Params) -> Outcome {
    let accepted_before = params
        .nginx
        .accepted_connections()
        .map_err(|e| e.to_string())?;
    let row = C::block_on(drive::<C>(params))??;
    let accepted_after = params
        .nginx
        .accepted_connections()
        .map_err(|e| e.to_string())?;
    Ok(Row {
        conns_opened: Some(accepted_after - accepted_before),
        ..row
    })
}

async fn drive<C: Contender>(params: &Params<'_>) -> Outcome {
    let shared = Rc::new(Shared {
        client: C::new(&params.url),
        phase: Cell::new(Phase::Warmup),
        requests: Cell::new(0),
        errors: Cell::new(0),
        first_error: RefCell::new(None),
        // 1 ns to 60 s at 3 significant digits.
        latency: RefCell::new(
            Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?,
        ),
        expected_body: params.expected_body.to_vec(),
    });
    let tasks: Vec<_> = (0..params.concurrency)
        .map(|_| C::spawn_local(worker(Rc::clone(&shared))))
        .collect();

    C::sleep(params.warmup).await;
    let server = ServerClock::start(params.nginx.worker_pids());
    let cpu_start = cpu_time(Who::SelfProcess);
    let start = Instant::now();
    shared.phase.set(Phase::Measure);
    C::sleep(params.duration).await;
    shared.phase.set(Phase::Done);
    let elapsed = start.elapsed();
    let cpu = cpu_time(Who::SelfProcess) - cpu_start;
    let server_busy = server.busy();

    for task in tasks {
        if let Err(e) = task.await {
            shared.error(format!("task failed: {e}"));
        }
    }
    let requests = shared.requests.get();
    if requests == 0 {
        return Err(format!(
            "no request completed; first error: {:?}",
            shared.first_error.borrow()
        ));
    }
    let first_error = shared.first_error.borrow().clone();
    let latency = shared.latency.borrow();
    let row = Row {
        errors: shared.errors.get(),
        first_error,
        server_busy,
        ..Row::measured(
            C::NAME,
            params.concurrency,
            requests,
            elapsed,
            cpu,
            &latency,
        )
    };
    Ok(row)
}

/// One task: requests back to back until the run is done.
async fn worker<C: Contender>(shared: Rc<Shared<C>>) {
    while shared.phase.get() != Phase::Done {
        let start = Instant::now();
        // Pinned where it is made: the runner adds no moves of a client's
        // future to what the client itself costs.
        let result = match std::pin::pin!(shared.client.send()).await {
            Ok(response) => C::body(response).await,
            Err(e) => Err(e),
        };
        let elapsed = start.elapsed();
        match result {
            Ok(body) if body == shared.expected_body => {
                if shared.phase.get() == Phase::Measure {
                    shared.requests.set(shared.requests.get() + 1);
                    let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
                    shared.latency.borrow_mut().saturating_record(nanos.max(1));
                }
            }
            Ok(body) => shared.error(format!("unexpected body {body:?}")),
            Err(e) => {
                shared.error(e.to_string());
                // Do not spin on a dead server.
                C::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
