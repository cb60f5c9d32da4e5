//! The testkit's self-tests, one binary: the test certificates, the hostile
//! servers, the in-process hyper server, the nginx harness and the tinyproxy
//! harness, each checked from a plain client (raw TCP, rustls, hyper's), so
//! that the client suites can rely on them.
//!
//! The nginx and tinyproxy tests return early with a message when their
//! server is not installed, unless `MUXPOOL_REQUIRE_NGINX` or
//! `MUXPOOL_REQUIRE_TINYPROXY` is set.

mod support;

mod certs;
mod hostile;
mod hyper_server;
mod nginx;
mod tinyproxy;
