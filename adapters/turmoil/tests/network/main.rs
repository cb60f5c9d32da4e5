//! The client on turmoil's simulated network, one binary: servers reached over
//! TLS, name resolution, partitions, server restarts over many seeds, the
//! many-seed soak under faults, and the determinism of a seed's run, with the
//! hosts, client and checks they share in `support`.

mod support;

mod determinism;
mod partition;
mod resolve;
mod restart;
mod servers;
mod soak;
