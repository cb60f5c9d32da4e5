//! Proxies that fail, on every runtime: one that is down, and hostile ones
//! written in-process (garbage for an answer to `CONNECT`, a head that never
//! ends, no answer at all). Each fails the request with a typed error that
//! names the proxy, within the request's deadline, and leaves the pool
//! clean: no lease, no connect, no connection left.

use std::time::Duration;

use crate::support::{
    self, assert_quiescent, causes, closed_port, get_within, has_io_cause, refused, within, Adapter,
};
use muxpool::client::Client;
use muxpool::{Error, ErrorKind, Proxy};
use muxpool_testkit::hostile::{Behavior, Hostile};

/// `GET https://127.0.0.1:{origin_port}/` through the proxy at
/// `proxy_port`, which must fail within `limit`; the error.
async fn failing_through<R: Adapter>(
    client: &Client<R>,
    origin_port: u16,
    limit: Duration,
) -> Error {
    let request = get_within(format!("https://127.0.0.1:{origin_port}/"), limit);
    within(
        limit + Duration::from_secs(2),
        "a failing proxy",
        client.send(request),
    )
    .await
    .expect_err("the proxy fails")
}

fn client_through<R: Adapter>(proxy_port: u16) -> Client<R> {
    Client::<R>::builder()
        .proxy(Proxy::all(&format!("http://127.0.0.1:{proxy_port}")).unwrap())
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap()
}

/// The error names the origin and the proxy.
fn assert_names_the_proxy(error: &Error, origin_port: u16, proxy_port: u16) {
    let origin = error.origin().expect("it names the origin");
    assert_eq!((origin.host(), origin.port()), ("127.0.0.1", origin_port));
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    assert_eq!(origin.proxy(), Some(proxy.as_str()), "{error:#}");
    assert!(error.to_string().contains(&proxy), "{error}");
}

async fn a_proxy_that_is_down_is_a_connect_error_naming_it<R: Adapter>() {
    let proxy_port = closed_port();
    let client = client_through::<R>(proxy_port);
    let error = failing_through(&client, 443, Duration::from_millis(1500)).await;
    assert_eq!(error.kind(), ErrorKind::Connect, "{error:#}");
    assert!(
        has_io_cause(&error, std::io::ErrorKind::ConnectionRefused),
        "{:?}",
        causes(&error)
    );
    assert_eq!(
        error.to_string(),
        format!(
            "connecting to https://127.0.0.1:443 through the proxy http://127.0.0.1:{proxy_port} \
             failed: {}",
            refused(proxy_port)
        )
    );
    assert_names_the_proxy(&error, 443, proxy_port);
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
}

async fn garbage_for_an_answer_is_a_protocol_error<R: Adapter>() {
    let proxy = Hostile::start(Behavior::Garbage);
    let client = client_through::<R>(proxy.port());
    let error = failing_through(&client, 443, Duration::from_secs(3)).await;
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error:#}");
    assert!(
        error
            .to_string()
            .contains("the proxy's answer to CONNECT is not valid"),
        "{error}"
    );
    assert_names_the_proxy(&error, 443, proxy.port());
    assert_eq!(proxy.accepted(), 1, "not retried: it would answer the same");
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
}

async fn an_endless_head_is_refused_at_the_limit<R: Adapter>() {
    let proxy = Hostile::start(Behavior::HugeHeaders { bytes: 1024 * 1024 });
    let client = client_through::<R>(proxy.port());
    let error = failing_through(&client, 443, Duration::from_secs(3)).await;
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error:#}");
    assert!(format!("{error:#}").contains("too large"), "{error:#}");
    assert_names_the_proxy(&error, 443, proxy.port());
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
}

async fn a_silent_proxy_times_out<R: Adapter>() {
    let proxy = Hostile::start(Behavior::Silent);
    let client = client_through::<R>(proxy.port());
    let error = failing_through(&client, 443, Duration::from_secs(1)).await;
    assert!(error.is_timeout(), "{error:#}");
    assert_names_the_proxy(&error, 443, proxy.port());
    assert!(proxy.accepted() >= 1);
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
}

support::conformance!(
    a_proxy_that_is_down_is_a_connect_error_naming_it,
    garbage_for_an_answer_is_a_protocol_error,
    an_endless_head_is_refused_at_the_limit,
    a_silent_proxy_times_out,
);
