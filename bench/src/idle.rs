//! Heap bytes an idle pooled connection costs each in-process contender.
//!
//! With the counting allocator on ([`crate::alloc`]), on a fresh current-thread
//! runtime:
//!
//! 1. Create the client and let the runtime settle; take the baseline of live
//!    heap bytes.
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
//! nginx's accepted count confirms the connections were opened, and its
//! `Waiting` count that they sit idle.

use std::rc::Rc;
use std::time::Duration;

use muxpool_testkit::nginx::Nginx;
use tokio::sync::Barrier;

use crate::alloc::live_bytes;
use crate::contender::{run_local, Contender};
use crate::report::IdleRow;

/// What one idle-memory measurement does.
pub struct Params<'a> {
    /// The server.
    pub nginx: &'a Nginx,
    /// The URL every request gets.
    pub url: String,
    /// N: connections opened by round one, and again by round two.
    pub connections: usize,
}

/// A finished measurement: its table row, or why it failed.
pub type Outcome = Result<IdleRow, String>;

/// How long connections get to return to the pool after a round.
const SETTLE: Duration = Duration::from_millis(300);

/// How long a round may take before the measurement gives up.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// Measures contender `C` as `params` says.
pub fn run<C: Contender>(params: &Params) -> Outcome {
    run_local(measure::<C>(params))?
}

async fn measure<C: Contender>(params: &Params<'_>) -> Outcome {
    let n = params.connections;
    let client = Rc::new(C::new(&params.url));
    tokio::time::sleep(SETTLE).await;
    let baseline = live_bytes();
    let accepted0 = accepted(params.nginx)?;

    round(&client, n).await?;
    tokio::time::sleep(SETTLE).await;
    let after_one = live_bytes();
    let accepted1 = accepted(params.nginx)?;
    let server_idle = params.nginx.status().map_err(|e| e.to_string())?.waiting;

    round(&client, 2 * n).await?;
    tokio::time::sleep(SETTLE).await;
    let after_two = live_bytes();
    let accepted2 = accepted(params.nginx)?;

    let opened_one = accepted1 - accepted0;
    let opened_two = accepted2 - accepted1;
    if opened_one == 0 || opened_two == 0 {
        return Err(format!(
            "no connection opened (round one {opened_one}, round two {opened_two})"
        ));
    }
    if opened_one != n as u64 || opened_two != n as u64 {
        eprintln!(
            "warning: {}: rounds opened {opened_one} and {opened_two} connections, \
             not {n} each",
            C::NAME
        );
    }
    drop(client);
    Ok(IdleRow {
        contender: C::NAME.to_string(),
        target: n,
        connections: opened_one,
        server_idle,
        bytes_per_conn: (after_one - baseline) as f64 / opened_one as f64,
        marginal_bytes_per_conn: (after_two - after_one) as f64 / opened_two as f64,
    })
}

fn accepted(nginx: &Nginx) -> Result<u64, String> {
    nginx.accepted_connections().map_err(|e| e.to_string())
}

/// `k` requests at once, each holding its response head until all `k` have
/// one, then reading its body.
async fn round<C: Contender>(client: &Rc<C>, k: usize) -> Result<(), String> {
    let barrier = Rc::new(Barrier::new(k));
    let tasks: Vec<_> = (0..k)
        .map(|_| {
            let client = Rc::clone(client);
            let barrier = Rc::clone(&barrier);
            tokio::task::spawn_local(async move {
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
            task.await.map_err(|e| e.to_string())??;
        }
        Ok::<(), String>(())
    };
    tokio::time::timeout(ROUND_TIMEOUT, all)
        .await
        .map_err(|_| format!("a round of {k} requests did not finish in {ROUND_TIMEOUT:?}"))?
}
