//! Names resolve through the simulation's DNS; a name no host has is a connect
//! error (never a panic, never an address made up for it), and the network is
//! refused outside a simulation.

use std::io;
use std::time::Duration;

use crate::support::{self, client_builder, get, server_host, url, Certs, Proto, CLIENT};
use muxpool_turmoil::runtime::Runtime;
use muxpool_turmoil::{ErrorKind, Turmoil};

#[test]
fn a_name_no_host_has_is_a_connect_error() {
    let certs = Certs::new(&["h1.sim"]);
    let mut sim = support::sim(1, Duration::from_millis(5));
    server_host(&mut sim, "h1.sim", Proto::H1, &certs);
    let builder = client_builder(1, &certs);
    sim.client(CLIENT, async move {
        let client = builder.build().expect("a client");
        let error = client
            .send(get(&url("nowhere.sim", "/")))
            .await
            .expect_err("no host is called nowhere.sim");
        assert_eq!(error.kind(), ErrorKind::Connect, "{error:#}");
        assert!(
            format!("{error:#}").contains("nowhere.sim"),
            "the error names the host: {error:#}"
        );
        // The lookup invented nothing: the name is still unknown.
        assert_eq!(
            Turmoil
                .resolve("nowhere.sim", 443)
                .await
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        // A known name, in any case, resolves to its host's address.
        let addrs = Turmoil.resolve("H1.Sim", 443).await?;
        assert_eq!(addrs, vec![(turmoil::lookup("h1.sim"), 443).into()]);
        // And the client reaches it.
        let response = client.send(get(&url("h1.sim", "/"))).await?;
        assert_eq!(response.status(), 200);
        Ok(())
    });
    sim.run().expect("the simulation ends cleanly");
}

#[test]
fn outside_a_simulation_the_network_is_an_error() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let resolved = Turmoil.resolve("h1.sim", 443).await;
        assert_eq!(resolved.unwrap_err().kind(), io::ErrorKind::Other);
        let connected = Turmoil.connect(([192, 168, 0, 1], 443).into()).await;
        assert_eq!(connected.unwrap_err().kind(), io::ErrorKind::Other);
    });
}
