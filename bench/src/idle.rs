//! Heap bytes an idle pooled connection costs each in-process contender.
//!
//! With the counting allocator on ([`crate::alloc`]), on a fresh current-thread
//! runtime:
//!
//! 1. Create the clients (one, or 2N with [`Params::client_per_connection`])
//!    and let the runtime settle; take the baseline of live heap bytes.
//! 2. Round one: start N requests at once and hold every response head until
//!    all N have arrived (a barrier), so no request can reuse another's
//!    connection; then read and drop the bodies. Let the connections go back to
//!    the pool (a short sleep on the runtime). Live bytes over the baseline,
//!    divided by the connections nginx accepted, is **bytes/idle conn**: it
//!    includes whatever the client allocates once, on its first connection.
//! 3. Round two: the same with 2N requests, which reuse the N idle connections
//!    and open N more. The growth over round one, divided by the connections
//!    accepted in round two, is **marginal bytes/conn**: one more idle
//!    connection, without the one-time allocations.
//!
//! Over HTTP/2 a client multiplexes concurrent requests to one origin on one
//! connection and keeps one at rest (hyper-util and reqwest open one per
//! request on a cold pool, then keep one), so N requests to one client do not
//! leave N idle connections. There, request i of a round goes to client i of
//! 2N: each client opens and keeps one connection, the clients of round one
//! reuse theirs in round two, and what each client costs before its first
//! request is in the baseline.
//!
//! nginx's accepted count confirms the connections were opened, and its
//! `Waiting` count that they sit idle.

use std::rc::Rc;
use std::time::Duration;

use muxpool_testkit::nginx::Nginx;
use tokio::sync::Barrier;

use crate::alloc::live_bytes;
use crate::contender::{timeout, Contender};
use crate::report::IdleRow;

/// What one idle-memory measurement does.
pub struct Params<'a> {
    /// The server.
    pub nginx: &'a Nginx,
    /// The URL every request gets.
    pub url: String,
    /// N: connections opened by round one, and again by round two.
    pub connections: usize,
    /// One client per connection (2N clients, request i of a round to client
    /// i), for HTTP/2; otherwise one client takes every request.
    pub client_per_connection: bool,
}

/// A finished measurement: its table row, or why it failed.
pub type Outcome = Result<IdleRow, String>;

/// How long connections get to return to the pool after a round.
const SETTLE: Duration = Duration::from_millis(300);

/// How long a round may take before the measurement gives up.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// Measures contender `C` as `params` says.
pub fn run<C: Contender>(params: &Params) -> Outcome {
    C::block_on(measure::<C>(params))?
}

async fn measure<C: Contender>(params: &Params<'_>) -> Outcome {
    let n = params.connections;
    let count = if params.client_per_connection {
        2 * n
    } else {
        1
    };
    let clients: Vec<Rc<C>> = (0..count).map(|_| Rc::new(C::new(&params.url))).collect();
    C::sleep(SETTLE).await;
    let baseline = live_bytes();
    let accepted0 = accepted(params.nginx)?;

    round(&clients, n).await?;
    C::sleep(SETTLE).await;
    let after_one = live_bytes();
    let accepted1 = accepted(params.nginx)?;
    let server_idle = params.nginx.status().map_err(|e| e.to_string())?.waiting;

    round(&clients, 2 * n).await?;
    C::sleep(SETTLE).await;
    let after_two = live_bytes();
    let accepted2 = accepted(params.nginx)?;

    let opened_one = accepted1 - accepted0;
    let opened_two = accepted2 - accepted1;
    if opened_one == 0 {
        return Err("round one opened no connection".to_string());
    }
    if opened_one != n as u64 || opened_two != n as u64 {
        eprintln!(
            "warning: {}: rounds opened {opened_one} and {opened_two} connections, \
             not {n} each",
            C::NAME
        );
    }
    drop(clients);
    Ok(IdleRow {
        contender: C::NAME.to_string(),
        target: n,
        connections: opened_one,
        server_idle,
        bytes_per_conn: (after_one - baseline) as f64 / opened_one as f64,
        // NaN (shown as "-") when round two multiplexed its requests onto the
        // idle connections and opened none.
        marginal_bytes_per_conn: (after_two - after_one) as f64 / opened_two as f64,
    })
}

fn accepted(nginx: &Nginx) -> Result<u64, String> {
    nginx.accepted_connections().map_err(|e| e.to_string())
}

/// `k` requests at once, request i to client `i % clients.len()`, each holding
/// its response head until all `k` have one, then reading its body.
async fn round<C: Contender>(clients: &[Rc<C>], k: usize) -> Result<(), String> {
    let barrier = Rc::new(Barrier::new(k));
    let tasks: Vec<_> = (0..k)
        .map(|i| {
            let client = Rc::clone(&clients[i % clients.len()]);
            let barrier = Rc::clone(&barrier);
            C::spawn_local(async move {
                let response = client.send().await;
                barrier.wait().await;
                match response {
                    Ok(response) => C::body(response).await.map(drop),
                    Err(e) => Err(e),
                }
                .map_err(|e| e.to_string())
            })
        })
        .collect();
    let all = async {
        for task in tasks {
            task.await??;
        }
        Ok::<(), String>(())
    };
    timeout::<C, _>(ROUND_TIMEOUT, all)
        .await
        .ok_or_else(|| format!("a round of {k} requests did not finish in {ROUND_TIMEOUT:?}"))?
}
