//! A client outlives the runtime it was first used on: its background tasks (the
//! pool's timer task, connect tasks) died with that runtime, and the next input
//! on another runtime starts them again there. Connections made on the dead
//! runtime are seen to be unusable and replaced.

use std::time::Duration;

use crate::support::{get_text, wait_until};
use muxpool::Client;
use muxpool_testkit::hyper_server::{HyperServer, Options};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn a_client_outlives_its_first_runtime() {
    // The server runs on its own runtime, which lives through the test.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let server = HyperServer::start_on(server_runtime.handle(), Options::default());
    let url = server.url("/");
    let client = Client::builder()
        .idle_timeout(Some(Duration::from_millis(200)))
        .build()
        .expect("a valid configuration");

    let first = runtime();
    first.block_on(async { assert_eq!(get_text(&client, &url).await, "hello") });
    drop(first);

    runtime().block_on(async {
        // The idle connection belongs to the dead runtime's reactor: it is
        // closed, not used, and the request goes out on a new one.
        assert_eq!(get_text(&client, &url).await, "hello");
        assert_eq!(server.accepted(), 2);
        // The idle timeout still fires: a timer task runs on this runtime.
        wait_until("the idle connection is closed", || client.stats().open == 0).await;
        assert_eq!(get_text(&client, &url).await, "hello");
        assert_eq!(server.accepted(), 3);
    });
}

/// A tokio client used where no tokio runtime is (here, a future polled by
/// hand on a plain thread) refuses a request at once, on its first poll,
/// instead of waiting forever for tasks that were never spawned.
#[test]
fn outside_any_runtime_a_request_fails_at_once() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    let client = Client::new();
    let request = http::Request::get("http://127.0.0.1:9/")
        .body(muxpool::Body::empty())
        .expect("a request");
    let mut send = std::pin::pin!(client.send(request));
    match send.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Err(e)) => {
            assert_eq!(e.kind(), muxpool::ErrorKind::Runtime);
            assert!(e.to_string().contains("tokio runtime"), "{e}");
        }
        Poll::Ready(Ok(_)) => panic!("a request without a runtime succeeded"),
        Poll::Pending => panic!("a request without a runtime waits"),
    }
    let ws = http::Request::get("ws://127.0.0.1:9/")
        .body(())
        .expect("a request");
    let mut open = std::pin::pin!(client.websocket(ws));
    assert!(matches!(
        open.as_mut().poll(&mut Context::from_waker(Waker::noop())),
        Poll::Ready(Err(e)) if e.kind() == muxpool::ErrorKind::Runtime
    ));
}
