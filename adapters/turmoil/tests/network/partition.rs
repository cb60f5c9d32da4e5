//! A fault shows up, and goes: while the network to a server is cut, requests
//! to it fail with a connect or timeout error within the client's timeouts; once
//! it is repaired, the same requests succeed.

use std::time::Duration;

use crate::support::{self, client_builder, exchange, get, server_host, url, Certs, Proto, CLIENT};
use muxpool_turmoil::ErrorKind;

fn cut_then_heal(proto: Proto, hold: bool) {
    let certs = Certs::new(&["server.sim"]);
    let mut sim = support::sim(5, Duration::from_millis(5));
    server_host(&mut sim, "server.sim", proto, &certs);
    let builder = client_builder(5, &certs);
    sim.client(CLIENT, async move {
        let client = builder.build().expect("a client");
        let target = url("server.sim", "/bytes/1000");
        assert_eq!(
            support::outcome(exchange(&client, get(&target)).await),
            "ok 200 1000"
        );
        // Longer than the connect timeout (1 s) and the request timeout (2 s).
        if hold {
            turmoil::hold(CLIENT, "server.sim");
        } else {
            turmoil::partition(CLIENT, "server.sim");
        }
        for _ in 0..3 {
            let started = tokio::time::Instant::now();
            let error = exchange(&client, get(&target))
                .await
                .expect_err("the server is cut off");
            assert!(
                matches!(error.kind(), ErrorKind::Timeout | ErrorKind::Connect),
                "{:?}: {error:#}",
                error.kind()
            );
            assert!(
                started.elapsed() <= Duration::from_secs(3),
                "ended within the client's timeouts, after {:?}",
                started.elapsed()
            );
        }
        if hold {
            turmoil::release(CLIENT, "server.sim");
        } else {
            turmoil::repair(CLIENT, "server.sim");
        }
        // Long enough for the broken connections to be noticed and closed.
        tokio::time::sleep(Duration::from_secs(3)).await;
        for _ in 0..3 {
            assert_eq!(
                support::outcome(exchange(&client, get(&target)).await),
                "ok 200 1000"
            );
        }
        support::assert_quiescent(&client.stats());
        Ok(())
    });
    sim.run().expect("the simulation ends cleanly");
}

#[test]
fn partition_from_an_http1_server_fails_requests_until_repaired() {
    cut_then_heal(Proto::H1, false);
}

#[test]
fn partition_from_an_http2_server_fails_requests_until_repaired() {
    cut_then_heal(Proto::H2, false);
}

#[test]
fn held_messages_to_an_http1_server_time_requests_out_until_released() {
    cut_then_heal(Proto::H1, true);
}

#[test]
fn held_messages_to_an_http2_server_time_requests_out_until_released() {
    cut_then_heal(Proto::H2, true);
}
