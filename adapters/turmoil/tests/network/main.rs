//! The client on turmoil's simulated network, one binary: servers reached over
//! TLS, name resolution, partitions, the many-seed soak under faults, and the
//! determinism of a seed's run, with the hosts, client and checks they share in
//! `support`.

mod support;

mod determinism;
mod partition;
mod resolve;
mod servers;
mod soak;
