//! One client reaches an HTTP/1.1 host and an HTTP/2 host of the simulation over
//! TLS, ALPN choosing the protocol, and reuses its connections.

use std::time::Duration;

use crate::support::{self, client_builder, exchange, get, server_host, url, Certs, Proto, CLIENT};

#[test]
fn http1_and_http2_hosts_through_one_client() {
    let certs = Certs::new(&["h1.sim", "h2.sim"]);
    let mut sim = support::sim(1, Duration::from_millis(10));
    server_host(&mut sim, "h1.sim", Proto::H1, &certs);
    server_host(&mut sim, "h2.sim", Proto::H2, &certs);
    let builder = client_builder(1, &certs);
    sim.client(CLIENT, async move {
        let client = builder.build().expect("a client");
        for _ in 0..3 {
            for host in ["h1.sim", "h2.sim"] {
                let response = client.send(get(&url(host, "/"))).await?;
                let version = response.version();
                assert_eq!(response.status(), 200);
                assert_eq!(response.into_body().text().await?, "hello");
                let expected = if host == "h1.sim" {
                    http::Version::HTTP_11
                } else {
                    http::Version::HTTP_2
                };
                assert_eq!(version, expected, "{host}");
            }
        }
        let (status, len) = exchange(&client, get(&url("h2.sim", "/bytes/100000"))).await?;
        assert_eq!((status.as_u16(), len), (200, 100_000));
        let stats = client.stats();
        assert_eq!(stats.connects, 2, "one connection per host: {stats:?}");
        assert_eq!(stats.reused_grants, stats.grants - 2, "{stats:?}");
        support::assert_quiescent(&stats);
        Ok(())
    });
    sim.run().expect("the simulation ends cleanly");
}
