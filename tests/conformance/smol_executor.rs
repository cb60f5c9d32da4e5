//! On smol, the client's tasks (the pool's timer, connects, HTTP/2 drivers) can
//! run on an executor the application runs itself instead of smol's global
//! one; they end when the client is shut down and dropped.

use std::sync::Arc;

use crate::support::{get_text, wait_until};
use muxpool_smol::{ClientBuilder, Executor, Smol};
use muxpool_testkit::hyper_server::{HyperServer, Options, Protocol};

#[test]
fn the_clients_tasks_run_on_the_applications_executor() {
    let executor = Arc::new(Executor::new());
    let (stop, stopped) = stop_signal();
    let runner = {
        let executor = Arc::clone(&executor);
        std::thread::spawn(move || smol::block_on(executor.run(stopped)))
    };
    let server = HyperServer::start(Options {
        protocol: Protocol::Http2,
        ..Options::default()
    });
    let client = ClientBuilder::with_runtime(Smol::on(Arc::clone(&executor)))
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration");
    assert!(executor.is_empty(), "nothing runs before the first request");

    smol::block_on(async {
        assert_eq!(get_text(&client, server.url("/")).await, "hello");
        // The connection's driver and the pool's timer run on our executor.
        assert!(!executor.is_empty());
        client.shutdown().await;
        drop(client);
        wait_until("the client's tasks end", || executor.is_empty()).await;
    });
    stop();
    runner.join().expect("the executor's thread");
}

/// A future that ends when the returned function is called.
fn stop_signal() -> (impl FnOnce(), impl std::future::Future<Output = ()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    (
        move || {
            let _ = tx.send(());
        },
        async move {
            let _ = rx.await;
        },
    )
}
