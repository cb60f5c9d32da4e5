//! What the public types promise to the compiler: a `Client` can be shared by
//! every task of a process, its futures can be spawned on a multi-threaded
//! runtime, and a response body can travel between tasks and threads, on every
//! runtime.

use crate::support::{self, spawn, Adapter};
use muxpool::client::{Client, ClientBuilder};
use muxpool::{Body, Error};

fn shared<T: Send + Sync + Clone + 'static>(_: &T) {}
fn sendable<T: Send>(_: &T) {}
fn body_like<T: http_body::Body + Send + Sync + Unpin + 'static>(_: &T) {}

async fn clients_futures_and_bodies_cross_threads<R: Adapter>() {
    let client = Client::<R>::new();
    shared(&client);
    let request = http::Request::get("http://127.0.0.1:1/")
        .body(Body::empty())
        .expect("a valid request");
    let send = client.send(request);
    sendable(&send);
    drop(send);
    body_like(&Body::from("bytes"));
    sendable(&client.shutdown());
    let builder: ClientBuilder<R> = Client::<R>::builder();
    sendable(&builder);
    fn error<E: std::error::Error + Send + Sync + Clone + 'static>() {}
    error::<Error>();
}

async fn a_request_can_be_spawned<R: Adapter>() {
    // A request future spawned on the runtime's executor; it fails (nothing
    // listens on port 1), which is beside the point.
    let client = Client::<R>::new();
    let task = spawn::<R, _>({
        let client = client.clone();
        async move {
            let request = http::Request::get("http://127.0.0.1:1/")
                .body(Body::empty())
                .expect("a valid request");
            client.send(request).await.map(|_| ())
        }
    });
    assert!(task.await.expect("the task ran").is_err());
}

support::conformance!(
    clients_futures_and_bodies_cross_threads,
    a_request_can_be_spawned,
);
