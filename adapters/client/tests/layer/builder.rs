//! What the builder promises about the pool's configuration.

use std::time::Duration;

use muxpool_client::{
    Backoff, Circuit, ClientBuilder, ErrorKind, HealthCheck, PoolConfig, RetryBudget, Saturation,
    DEFAULT_HEALTH_CHECK_INTERVAL, DEFAULT_HEALTH_CHECK_TIMEOUT,
};
use muxpool_testkit::scripted::ScriptedNet;

fn builder() -> ClientBuilder<ScriptedNet> {
    ClientBuilder::with_runtime(ScriptedNet::new(Default::default()))
}

/// Clients draw their own seeds, with or without a whole pool configuration,
/// so that a fleet does not expire its connections in step.
#[test]
fn each_client_draws_its_own_seed() {
    let default_seed = PoolConfig::default().seed;
    let seeds: Vec<u64> = (0..4)
        .map(|n| {
            let b = if n % 2 == 0 {
                builder()
            } else {
                builder().pool(PoolConfig::default())
            };
            b.build().expect("a client").pool_config().seed
        })
        .collect();
    for (i, seed) in seeds.iter().enumerate() {
        assert_ne!(*seed, default_seed);
        assert!(!seeds[..i].contains(seed), "{seeds:?}");
    }
}

#[test]
fn a_seed_set_is_kept() {
    let client = builder().seed(7).build().expect("a client");
    assert_eq!(client.pool_config().seed, 7);
    let mut config = PoolConfig::default();
    config.seed = 8;
    let client = builder().pool(config).build().expect("a client");
    assert_eq!(client.pool_config().seed, 8);
}

/// Settings made by name are laid over the whole configuration, before or
/// after it is given.
#[test]
fn named_settings_win_in_any_order() {
    let mut config = PoolConfig::default();
    config.max_connections = 50;
    config.max_connections_per_key = 9;
    for client in [
        builder().max_connections_per_key(4).pool(config.clone()),
        builder().pool(config.clone()).max_connections_per_key(4),
    ] {
        let client = client.build().expect("a client");
        let got = client.pool_config();
        assert_eq!(got.max_connections, 50, "from the whole configuration");
        assert_eq!(got.max_connections_per_key, 4, "by name");
    }
}

/// Every pool setting the builder names reaches the pool.
#[test]
fn every_named_setting_reaches_the_pool() {
    let ms = Duration::from_millis;
    let client = builder()
        .seed(11)
        .max_connections_per_key(3)
        .max_connections(30)
        .max_connecting_per_key(2)
        .max_waiting_per_key(7)
        .connect_timeout(ms(1_500))
        .idle_timeout(Some(ms(2_500)))
        .max_lifetime(Some(ms(90_000)))
        .lifetime_jitter(ms(3_000))
        .max_requests_per_connection(Some(40))
        .max_streams_per_connection(12)
        .saturation(Saturation::Queue)
        .min_idle_per_key(1)
        .backoff(Backoff::new(ms(20), ms(800)))
        .circuit(Circuit::new(Some(4), ms(700)).failing_for(ms(1_200)))
        .health_check(HealthCheck::new(Some(ms(5_000)), ms(600)))
        .forget_origin_after(ms(60_000))
        .retry_budget(RetryBudget::new(5, 2, ms(20_000)))
        .build()
        .expect("a client");
    let mut expected = PoolConfig::default();
    expected.seed = 11;
    expected.max_connections_per_key = 3;
    expected.max_connections = 30;
    expected.max_connecting_per_key = 2;
    expected.max_waiters_per_key = 7;
    expected.connect_timeout = ms(1_500);
    expected.idle_timeout = Some(ms(2_500));
    expected.max_lifetime = Some(ms(90_000));
    expected.lifetime_jitter = ms(3_000);
    expected.max_requests_per_connection = Some(40);
    expected.max_streams_per_connection = 12;
    expected.saturation = Saturation::Queue;
    expected.min_idle_per_key = 1;
    expected.backoff = Backoff::new(ms(20), ms(800));
    expected.circuit = Circuit::new(Some(4), ms(700)).failing_for(ms(1_200));
    expected.health_check = HealthCheck::new(Some(ms(5_000)), ms(600));
    expected.forget_key_after = ms(60_000);
    expected.retry_budget = RetryBudget::new(5, 2, ms(20_000));
    assert_eq!(*client.pool_config(), expected);
}

/// A lifetime set by name keeps the default jitter under it; one shorter
/// than the jitter set by name is refused, as the core refuses it.
#[test]
fn a_short_lifetime_keeps_the_jitter_under_it() {
    let lifetime = Duration::from_secs(10);
    let client = builder()
        .max_lifetime(Some(lifetime))
        .build()
        .expect("a client");
    assert_eq!(client.pool_config().lifetime_jitter, lifetime / 2);
    let error = builder()
        .max_lifetime(Some(lifetime))
        .lifetime_jitter(lifetime)
        .build()
        .expect_err("a jitter as long as the lifetime");
    assert_eq!(error.kind(), ErrorKind::Config);
}

/// Idle HTTP/2 and WebSocket connections are pinged by default; a whole
/// configuration given with `.pool` replaces that default with its own.
#[test]
fn health_checks_are_on_by_default() {
    let client = builder().build().expect("a client");
    let check = client.pool_config().health_check;
    assert_eq!(check.interval, Some(DEFAULT_HEALTH_CHECK_INTERVAL));
    assert_eq!(check.timeout, DEFAULT_HEALTH_CHECK_TIMEOUT);
    let client = builder()
        .pool(PoolConfig::default())
        .build()
        .expect("a client");
    assert_eq!(client.pool_config().health_check.interval, None);
}
