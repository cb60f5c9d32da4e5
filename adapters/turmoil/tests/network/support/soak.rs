//! The soak: one seed expands into server hosts, a workload of concurrent
//! requests from several tasks through one client, and a schedule of faults;
//! the run returns its trace so that tests can check it and compare runs.
//!
//! Time is the simulation's. The fault phase injects message latency and
//! jitter, partitions and repairs, held and released messages, and crashed or
//! bounced servers (their connections reset); then every fault is healed, the
//! client is given time to notice (its timeouts and health checks), and the
//! healed phase sends requests that must all succeed.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use muxpool_testkit::rng::Rng;
use muxpool_turmoil::Stats;

use super::{client_builder, exchange, get, server_host, url, Certs, Proto, CLIENT};

/// The fault phase ends by then, and every fault is healed then.
const FAULTS_END: Duration = Duration::from_secs(8);
/// From the heal to the healed phase: longer than any client timeout, so every
/// request the faults broke has ended and every broken connection is gone.
const SETTLE: Duration = Duration::from_secs(6);
/// A request still unanswered after this long hangs: the client's timeouts
/// (acquire 3 s, head 2 s, 1 s between body chunks) end every request sooner.
const HANG: Duration = Duration::from_secs(20);

/// What the seed decided, and what happened.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    /// One line per request, in the order the requests ended:
    /// `{ms} t{task}#{n} {phase} {url} -> {outcome}`.
    pub requests: Vec<Request>,
    /// One line per fault, as applied: `{ms} {fault}`.
    pub faults: Vec<String>,
    /// The client's statistics once every task has finished.
    pub stats: Stats,
    /// The most connections open at once, sampled every millisecond.
    pub max_open: u32,
    /// The configured limit on connections over all origins.
    pub max_connections: u32,
}

/// One request of the workload and how it ended.
#[derive(Debug, Clone)]
pub struct Request {
    pub ended_ms: u128,
    pub task: u64,
    pub n: u64,
    pub healed: bool,
    pub url: String,
    /// `ok <status> <length>`, an error kind, or `hang`.
    pub outcome: String,
    /// The body length a success must have.
    pub expected_len: usize,
}

impl Report {
    /// Everything deterministic about the run, one line each.
    pub fn trace(&self) -> Vec<String> {
        let mut trace: Vec<String> = self.faults.clone();
        trace.extend(self.requests.iter().map(|r| {
            let phase = if r.healed { "healed" } else { "faults" };
            format!(
                "{} t{}#{} {phase} {} -> {}",
                r.ended_ms, r.task, r.n, r.url, r.outcome
            )
        }));
        trace.push(format!("{:?}", self.stats));
        trace.push(format!("max open {}", self.max_open));
        trace
    }
}

#[derive(Debug, Clone)]
enum Fault {
    Latency(Duration),
    Partition(usize),
    Repair(usize),
    Hold(usize),
    Release(usize),
    Crash(usize),
    Bounce(usize),
    HealAll,
}

/// Runs the soak for `seed`.
pub fn run(seed: u64) -> Report {
    let mut rng = Rng::new(seed);
    let mut servers = vec![("h1.sim", Proto::H1), ("h2.sim", Proto::H2)];
    if rng.below(2) == 0 {
        let proto = if rng.below(2) == 0 {
            Proto::H1
        } else {
            Proto::H2
        };
        servers.push(("h3.sim", proto));
    }
    let names: Vec<&'static str> = servers.iter().map(|(name, _)| *name).collect();
    let certs = Certs::new(&names);

    let base_latency = Duration::from_millis(1 + rng.below(5));
    let mut sim = super::sim(seed, base_latency);
    for (name, proto) in &servers {
        server_host(&mut sim, name, *proto, &certs);
    }

    // The schedule of faults, in virtual time.
    let mut schedule: Vec<(Duration, Fault)> = vec![(
        Duration::from_millis(100),
        Fault::Latency(Duration::from_millis(10 + rng.below(150))),
    )];
    let mut at = Duration::from_millis(200);
    loop {
        at += Duration::from_millis(200 + rng.below(1200));
        if at >= FAULTS_END {
            break;
        }
        let server = rng.below(servers.len() as u64) as usize;
        let lasting = Duration::from_millis(200 + rng.below(2500));
        let end = (at + lasting).min(FAULTS_END);
        match rng.below(5) {
            0 => {
                schedule.push((at, Fault::Partition(server)));
                schedule.push((end, Fault::Repair(server)));
            }
            1 => {
                schedule.push((at, Fault::Hold(server)));
                schedule.push((end, Fault::Release(server)));
            }
            2 => schedule.push((at, Fault::Bounce(server))),
            3 => {
                schedule.push((at, Fault::Crash(server)));
                schedule.push((end, Fault::Bounce(server)));
            }
            _ => schedule.push((
                at,
                Fault::Latency(Duration::from_millis(1 + rng.below(300))),
            )),
        }
    }
    schedule.push((FAULTS_END, Fault::HealAll));
    // Stable: faults at the same instant keep the order they were drawn in.
    schedule.sort_by_key(|(at, _)| *at);

    // The workload.
    let tasks = 4 + rng.below(5);
    let per_origin = 2 + rng.below(3) as u32;
    let max_connections = per_origin * servers.len() as u32 - 1;
    let plans: Vec<(u64, u64, u64)> = (0..tasks)
        .map(|_| (rng.next_u64(), 8 + rng.below(10), 4 + rng.below(6)))
        .collect();
    // Built inside the client's host, so its clock starts on the host's virtual
    // clock: built out here, its origin would be read off the real clock, and a
    // run would move by the real time between this line and the host's start.
    let builder = client_builder(seed, &certs)
        .max_connections_per_key(per_origin)
        .max_connections(max_connections);

    let requests = Rc::new(RefCell::new(Vec::new()));
    let final_stats = Rc::new(RefCell::new(None));
    let max_open = Rc::new(RefCell::new(0));
    {
        let requests = Rc::clone(&requests);
        let final_stats = Rc::clone(&final_stats);
        let max_open = Rc::clone(&max_open);
        let names = names.clone();
        sim.client(CLIENT, async move {
            let client = builder.build().expect("a client");
            let start = tokio::time::Instant::now();
            let healed_at = start + FAULTS_END + SETTLE;
            let mut handles = Vec::new();
            for (task, (task_seed, faulty, healed)) in plans.into_iter().enumerate() {
                let client = client.clone();
                let names = names.clone();
                let requests = Rc::clone(&requests);
                handles.push(tokio::task::spawn_local(async move {
                    let mut rng = Rng::new(task_seed);
                    for n in 0..faulty + healed {
                        let is_healed = n >= faulty;
                        if n == faulty {
                            tokio::time::sleep_until(healed_at).await;
                        }
                        tokio::time::sleep(Duration::from_millis(rng.below(400))).await;
                        let host = names[rng.below(names.len() as u64) as usize];
                        let (path, expected_len) = match rng.below(4) {
                            0 => ("/".to_owned(), 5),
                            1 => {
                                let n = 1 + rng.below(40_000) as usize;
                                (format!("/bytes/{n}"), n)
                            }
                            2 => {
                                let n = 1 + rng.below(5_000) as usize;
                                (format!("/chunked/{n}"), n)
                            }
                            _ => (format!("/slow/{}", rng.below(300)), 4),
                        };
                        let url = url(host, &path);
                        let outcome =
                            match tokio::time::timeout(HANG, exchange(&client, get(&url))).await {
                                Ok(result) => super::outcome(result),
                                Err(_) => "hang".to_owned(),
                            };
                        requests.borrow_mut().push(Request {
                            ended_ms: start.elapsed().as_millis(),
                            task: task as u64,
                            n,
                            healed: is_healed,
                            url,
                            outcome,
                            expected_len,
                        });
                    }
                }));
            }
            let watch = async {
                loop {
                    let open = client.stats().open;
                    max_open.replace_with(|max| (*max).max(open));
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            };
            let all = async {
                for handle in handles {
                    handle.await.expect("a workload task");
                }
            };
            tokio::select! {
                biased;
                () = all => {}
                () = watch => {}
            }
            *final_stats.borrow_mut() = Some(client.stats());
            Ok(())
        });
    }

    let mut faults = Vec::new();
    let mut next = 0;
    loop {
        let finished = sim.step().expect("the simulation runs");
        let now = sim.elapsed();
        while next < schedule.len() && schedule[next].0 <= now {
            let fault = schedule[next].1.clone();
            faults.push(format!("{} {fault:?}", now.as_millis()));
            apply(&mut sim, &names, fault);
            next += 1;
        }
        if finished {
            break;
        }
    }

    let stats = final_stats
        .borrow_mut()
        .take()
        .expect("the client host finished");
    let requests = requests.borrow().clone();
    let max_open = *max_open.borrow();
    Report {
        seed,
        requests,
        faults,
        stats,
        max_open,
        max_connections,
    }
}

fn apply(sim: &mut turmoil::Sim<'_>, names: &[&str], fault: Fault) {
    match fault {
        Fault::Latency(max) => sim.set_max_message_latency(max),
        Fault::Partition(server) => sim.partition(CLIENT, names[server]),
        Fault::Repair(server) => sim.repair(CLIENT, names[server]),
        Fault::Hold(server) => sim.hold(CLIENT, names[server]),
        Fault::Release(server) => sim.release(CLIENT, names[server]),
        Fault::Crash(server) => sim.crash(names[server]),
        Fault::Bounce(server) => sim.bounce(names[server]),
        Fault::HealAll => {
            sim.set_max_message_latency(Duration::from_millis(2));
            for name in names {
                sim.release(CLIENT, *name);
                sim.repair(CLIENT, *name);
                if !sim.is_host_running(*name) {
                    sim.bounce(*name);
                }
            }
        }
    }
}
