//! The testkit's self-tests, one binary: the test certificates, the hostile
//! servers, the in-process hyper server and the nginx harness, each checked
//! from a plain client (raw TCP, rustls, hyper's), so that the client suites
//! can rely on them.
//!
//! The nginx tests return early with a message when nginx is not installed,
//! unless `MUXPOOL_REQUIRE_NGINX` is set.

mod support;

mod certs;
mod hostile;
mod hyper_server;
mod nginx;
