//! What the client traces: a span per request shaped as OpenTelemetry's HTTP
//! client span, a span per connection, and events for the pool's decisions,
//! each checked field by field through a subscriber that records them for
//! one test (`support::capture`).

use std::time::Duration;

use crate::support::capture::Capture;
use crate::support::raw_h2::{ok, RawH2};
use crate::support::{
    self, client_trusting, closed_port, get, get_text, get_within, request, wait_until, Adapter,
};
use http::Method;
use muxpool::client::Client;
use muxpool::Body;
use muxpool_testkit::certs::Ca;
use muxpool_testkit::h2_frames::{answer_for, Event, FrameServer, NO_ERROR};
use muxpool_testkit::hyper_server::{HyperServer, Options};
use tracing::Level;

/// Two GETs, one after the other, on one HTTP/1.1 connection: the first
/// opens it and waits for it, the second reuses it.
async fn a_request_has_its_span<R: Adapter>() {
    let (capture, _guard) = Capture::start();
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    for _ in 0..2 {
        let response = get(&client, server.url("/")).await.expect("answered");
        response.into_body().bytes().await.expect("the body");
    }
    let spans = capture.spans_named("GET");
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let port = server.port().to_string();
    for span in &spans {
        assert_eq!(span.get("otel.kind"), Some("client"));
        assert_eq!(span.get("http.request.method"), Some("GET"));
        assert_eq!(span.get("url.scheme"), Some("http"));
        assert_eq!(span.get("server.address"), Some("127.0.0.1"));
        assert_eq!(span.get("server.port"), Some(port.as_str()));
        assert_eq!(span.get("network.protocol.version"), Some("1.1"));
        assert_eq!(span.get("http.response.status_code"), Some("200"));
        assert_eq!(span.get("error.type"), None, "{span:#?}");
        assert_eq!(span.get("http.request.resend_count"), None);
        assert!(span.get("muxpool.wait.duration").is_some(), "{span:#?}");
    }
    assert_eq!(spans[0].get("muxpool.connection.reused"), Some("false"));
    assert_eq!(spans[0].get("muxpool.connection.waited"), Some("true"));
    assert_eq!(spans[1].get("muxpool.connection.reused"), Some("true"));
    assert_eq!(spans[1].get("muxpool.connection.waited"), Some("false"));
    let conn = spans[0].get("muxpool.connection.id");
    assert!(conn.is_some_and(|c| c.starts_with("conn#")), "{conn:?}");
    assert_eq!(spans[1].get("muxpool.connection.id"), conn);

    let connections = capture.spans_named("connection");
    assert_eq!(connections.len(), 1, "{connections:#?}");
    let connection = &connections[0];
    assert_eq!(connection.get("muxpool.connection.id"), conn);
    assert_eq!(connection.get("server.port"), Some(port.as_str()));
    assert_eq!(connection.get("network.peer.address"), Some("127.0.0.1"));
    assert_eq!(connection.get("network.protocol.name"), Some("http"));
    assert_eq!(connection.get("network.protocol.version"), Some("1.1"));
    let opened = capture.events_saying("pool opens a connection");
    assert_eq!(opened.len(), 1);
    let (event, parent) = &opened[0];
    assert_eq!(event.level, Level::DEBUG);
    assert_eq!(event.get("muxpool.connection.id"), conn);
    assert_eq!(
        parent.as_ref().map(|s| s.name),
        Some("GET"),
        "the first request's"
    );
    let (_, ready_in) = &capture.events_saying("connection ready")[0];
    assert_eq!(ready_in.as_ref().map(|s| s.name), Some("connection"));
    // Nothing above DEBUG for requests that went well.
    let loud: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|e| e.level < Level::DEBUG)
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
}

/// A stream refused unprocessed (REFUSED_STREAM) goes again: its span counts
/// one resend, and an event says why.
async fn a_retry_is_an_event<R: Adapter>() {
    let (capture, _guard) = Capture::start();
    let server = RawH2::start(|seen, _request, mut respond| {
        if seen % 2 == 1 {
            respond.send_reset(h2::Reason::REFUSED_STREAM);
        } else {
            ok(&mut respond, b"ok");
        }
    });
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration");
    let response = client
        .send(request(Method::POST, &server.url, "payload"))
        .await
        .expect("the retry is answered");
    assert_eq!(response.into_body().text().await.expect("text"), "ok");
    let spans = capture.spans_named("POST");
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span.get("http.request.resend_count"), Some("1"));
    assert_eq!(span.get("network.protocol.version"), Some("2"));
    assert_eq!(span.get("http.response.status_code"), Some("200"));
    // Its second stream went to the same connection, which served one before.
    assert_eq!(span.get("muxpool.connection.reused"), Some("true"));
    let retries = capture.events_saying("request sent again");
    assert_eq!(retries.len(), 1, "{retries:#?}");
    let (event, parent) = &retries[0];
    assert_eq!(event.level, Level::DEBUG);
    assert_eq!(event.get("muxpool.retry.reason"), Some("refused_stream"));
    assert_eq!(event.get("http.request.resend_count"), Some("1"));
    assert_eq!(parent.as_ref().map(|s| s.name), Some("POST"));
    let connection = &capture.spans_named("connection")[0];
    assert_eq!(connection.get("network.protocol.version"), Some("2"));
}

/// A resend the retry budget refuses is not one: a request refused every
/// time, with room for 3 retries, counts 3 resends, and the budget's
/// refusal is an event.
async fn a_resend_the_budget_refuses_is_not_counted<R: Adapter>() {
    let (capture, _guard) = Capture::start();
    let (server, client) = support::refusing_peer_and_budgeted_client::<R>();
    client
        .send(request(Method::GET, &server.url, Body::empty()))
        .await
        .expect_err("refused every time");
    let span = &capture.spans_named("GET")[0];
    assert_eq!(
        span.get("http.request.resend_count"),
        Some("3"),
        "{span:#?}"
    );
    assert!(span.get("error.type").is_some(), "{span:#?}");
    assert_eq!(capture.events_saying("request sent again").len(), 3);
    let rejected = capture.events_saying("pool rejects a request");
    assert_eq!(rejected.len(), 1, "{rejected:#?}");
    assert_eq!(
        rejected[0].0.get("muxpool.reject_reason"),
        Some("retry_budget")
    );
}

/// A connect refused: the connection's span says so, the request's span
/// names the error, and the pool's rejection is an event of the request.
async fn a_refused_connect_is_traced<R: Adapter>() {
    let (capture, _guard) = Capture::start();
    let port = closed_port();
    let client = Client::<R>::new();
    let req = get_within(
        format!("http://127.0.0.1:{port}/"),
        Duration::from_millis(1500),
    );
    let error = client.send(req).await.expect_err("nothing listens");
    assert_eq!(error.kind(), muxpool::ErrorKind::Connect, "{error:#}");
    let span = &capture.spans_named("GET")[0];
    assert_eq!(span.get("error.type"), Some("connect"));
    assert_eq!(span.get("http.response.status_code"), None);
    let connections = capture.spans_named("connection");
    assert!(connections.len() >= 2, "connected again: {connections:#?}");
    for connection in &connections {
        assert_eq!(
            connection.get("error.type"),
            Some("connect"),
            "{connection:#?}"
        );
        assert_eq!(connection.get("network.protocol.version"), None);
    }
    let failed = capture.events_saying("connect failed");
    assert_eq!(failed.len(), connections.len());
    for (event, parent) in &failed {
        assert!(
            event.get("error").is_some_and(|e| e.contains("refused")),
            "{event:#?}"
        );
        assert_eq!(parent.as_ref().map(|s| s.name), Some("connection"));
    }
    let rejected = capture.events_saying("pool rejects a request");
    assert_eq!(rejected.len(), 1, "{rejected:#?}");
    let (event, parent) = &rejected[0];
    assert_eq!(event.get("muxpool.reject_reason"), Some("connect_failed"));
    assert_eq!(event.get("server.port"), Some(port.to_string().as_str()));
    assert_eq!(parent.as_ref().map(|s| s.name), Some("GET"));
}

/// A GOAWAY naming a stream below one in flight: the event names the
/// connection that went away, and the request goes again for it.
async fn a_goaway_is_an_event<R: Adapter>() {
    let (capture, _guard) = Capture::start();
    let server = FrameServer::start(|mut conn| async move {
        conn.handshake(&[]).await?;
        if conn.index() > 0 {
            return conn.answer_all().await;
        }
        conn.hold(1).await?;
        conn.answer(1).await?;
        conn.hold(1).await?;
        conn.go_away(1, NO_ERROR).await?;
        while conn.next().await? != Event::Closed {}
        Ok(())
    });
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration");
    for answer in [answer_for(0, 1), answer_for(1, 1)] {
        let response = get(&client, server.url("/")).await.expect("answered");
        assert_eq!(response.into_body().text().await.expect("text"), answer);
    }
    let goaways = capture.events_saying("goaway received");
    assert!(!goaways.is_empty(), "{:#?}", capture.events());
    let first = capture.spans_named("connection")[0].clone();
    for (event, parent) in &goaways {
        assert_eq!(
            event.get("muxpool.connection.id"),
            first.get("muxpool.connection.id")
        );
        // The connection's event, or, when its driver saw it end first, the
        // request's that learned it.
        let parent = parent.as_ref().map(|s| s.name);
        assert!(matches!(parent, Some("connection" | "GET")), "{parent:?}");
    }
    let retries = capture.events_saying("request sent again");
    assert_eq!(retries.len(), 1, "{retries:#?}");
    assert_eq!(retries[0].0.get("muxpool.retry.reason"), Some("goaway"));
    let second = &capture.spans_named("GET")[1];
    assert_eq!(second.get("http.request.resend_count"), Some("1"));
}

/// A TLS connection's span says what its handshake agreed on.
async fn a_tls_connection_has_its_handshake<R: Adapter>() {
    let (capture, _guard) = Capture::start();
    let ca = Ca::new("muxpool test CA");
    let server = support::tls_http1_server(&ca);
    let client = client_trusting::<R>(&ca);
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
    let connection = &capture.spans_named("connection")[0];
    assert_eq!(connection.get("url.scheme"), Some("https"));
    assert_eq!(connection.get("tls.protocol.version"), Some("1.3"));
    assert_eq!(connection.get("tls.next_protocol"), Some("http/1.1"));
    assert_eq!(connection.get("tls.resumed"), Some("false"));
    assert_eq!(connection.get("network.protocol.version"), Some("1.1"));
    let done = capture.events_saying("tls handshake done");
    assert_eq!(done.len(), 1, "{done:#?}");
    assert!(done[0].0.get("tls.handshake.duration").is_some());
    assert_eq!(done[0].1.as_ref().map(|s| s.name), Some("connection"));
}

/// A health check left unanswered closes its connection behind its users'
/// backs: a warning, in the connection's span, whose close reason it is.
async fn a_failed_health_check_is_a_warning<R: Adapter>() {
    let (capture, _guard) = Capture::start();
    let (server, client) = support::hanging_peer_and_checking_client::<R>();
    assert_eq!(get_text(&client, &server.url).await, "ok");
    wait_until("the hung connection is closed", || client.stats().open == 0).await;
    let warnings: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|e| e.level == Level::WARN)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let failed = capture.events_saying("health check failed");
    assert_eq!(failed.len(), 1);
    let (event, parent) = &failed[0];
    assert_eq!(event.level, Level::WARN);
    let parent = parent.as_ref().expect("the connection's span");
    assert_eq!(parent.name, "connection");
    assert_eq!(
        parent.get("muxpool.close_reason"),
        Some("health_check_failed")
    );
    let closes = capture.events_saying("pool closes a connection");
    assert_eq!(closes.len(), 1, "{closes:#?}");
    assert_eq!(closes[0].0.level, Level::DEBUG);
    assert_eq!(
        closes[0].0.get("muxpool.close_reason"),
        Some("health_check_failed")
    );
}

/// An origin whose connects fail opens its circuit: a request refused for it
/// is an event saying so, and when the origin is back on the same port the
/// connect that finds it is an event saying the circuit closed.
async fn the_circuit_opening_and_closing_are_events<R: Adapter>() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let (capture, _guard) = Capture::start();
    let port = closed_port();
    let client = Client::<R>::builder()
        .circuit(
            muxpool::Circuit::new(Some(1), Duration::from_millis(200)).failing_for(Duration::ZERO),
        )
        .timeout(Duration::from_secs(2))
        .build()
        .expect("a client");
    let url = format!("http://127.0.0.1:{port}/");
    let _ = get(&client, &url).await.expect_err("nothing listens");
    let error = get(&client, &url).await.expect_err("the circuit is open");
    assert_eq!(error.kind(), muxpool::ErrorKind::CircuitOpen, "{error:#}");
    let open = capture.events_saying("circuit open, request rejected");
    assert!(!open.is_empty(), "{:#?}", capture.events());
    assert_eq!(open[0].0.get("muxpool.reject_reason"), Some("circuit_open"));
    assert_eq!(
        open[0].0.get("server.port"),
        Some(port.to_string().as_str())
    );

    // The origin comes back on its port: a server that answers `ok` and
    // closes, until the test is done.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the same port");
    listener.set_nonblocking(true).expect("non-blocking");
    let done = Arc::new(AtomicBool::new(false));
    let serving = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).expect("blocking");
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n")
                            && stream.read(&mut byte).unwrap_or(0) == 1
                        {
                            head.push(byte[0]);
                        }
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    };
    let mut answered = false;
    for _ in 0..100 {
        if let Ok(response) = get(&client, &url).await {
            assert_eq!(response.into_body().text().await.expect("text"), "ok");
            answered = true;
            break;
        }
        support::sleep(Duration::from_millis(50)).await;
    }
    done.store(true, Ordering::Relaxed);
    serving.join().expect("the server thread");
    assert!(answered, "the origin was found again");
    let closed = capture.events_saying("connects succeed again, circuit closed");
    assert_eq!(closed.len(), 1, "{:#?}", capture.events());
    let (event, parent) = &closed[0];
    assert_eq!(event.get("server.port"), Some(port.to_string().as_str()));
    assert_eq!(parent.as_ref().map(|s| s.name), Some("connection"));
}

/// Two WebSockets opened one after the other to one URL: the handshake is a
/// GET span answered 101, the first opens the connection and the second
/// reuses it; both waits are recorded in the metrics.
async fn a_websocket_open_has_its_span<R: Adapter>() {
    use muxpool::Message;
    use muxpool_testkit::ws_server::{Behavior, Options as WsOptions, WsServer};
    let (capture, _guard) = Capture::start();
    let server = WsServer::start(WsOptions {
        behavior: Behavior::Echo,
        ..WsOptions::default()
    });
    let client = Client::<R>::new();
    for i in 0..2 {
        let request = http::Request::get(server.url("/chat")).body(()).unwrap();
        let mut ws = client.websocket(request).await.expect("opened");
        ws.send(Message::Text(format!("{i}"))).await.unwrap();
        ws.recv().await.unwrap();
    }
    assert_eq!(server.accepted(), 1);
    let spans = capture.spans_named("GET");
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let port = server.port().to_string();
    for span in &spans {
        assert_eq!(span.get("url.scheme"), Some("ws"));
        assert_eq!(span.get("server.port"), Some(port.as_str()));
        assert_eq!(span.get("http.response.status_code"), Some("101"));
        assert_eq!(span.get("network.protocol.version"), Some("1.1"));
        assert!(span.get("muxpool.wait.duration").is_some(), "{span:#?}");
    }
    assert_eq!(spans[0].get("muxpool.connection.reused"), Some("false"));
    assert_eq!(spans[0].get("muxpool.connection.waited"), Some("true"));
    assert_eq!(spans[1].get("muxpool.connection.reused"), Some("true"));
    let conn = spans[0].get("muxpool.connection.id");
    assert!(conn.is_some_and(|c| c.starts_with("conn#")), "{conn:?}");
    assert_eq!(spans[1].get("muxpool.connection.id"), conn);
    let opened = capture.events_saying("pool opens a connection");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].1.as_ref().map(|s| s.name), Some("GET"));
    assert_eq!(client.metrics().latencies.wait.count(), 2);
}

support::conformance!(
    a_websocket_open_has_its_span,
    the_circuit_opening_and_closing_are_events,
    a_request_has_its_span,
    a_retry_is_an_event,
    a_resend_the_budget_refuses_is_not_counted,
    a_refused_connect_is_traced,
    a_goaway_is_an_event,
    a_tls_connection_has_its_handshake,
    a_failed_health_check_is_a_warning,
);
