//! What the builder promises about the pool's configuration.

use muxpool_client::{ClientBuilder, PoolConfig};
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
