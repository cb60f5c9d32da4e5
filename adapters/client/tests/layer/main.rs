//! The client layer's own tests, one binary: the HTTP/1.1 codec (`h1`, with the
//! `unstable` feature) and the TLS configuration (`tls`), each area a module
//! with the helpers it shares in its `support`.

// The HTTP/1.1 codec is unstable interface, behind the `unstable` feature: its
// tests are built with it, as `cargo test --all-features` (or `--features
// unstable`) does.
#[cfg(feature = "unstable")]
mod h1 {
    mod support;

    mod body_framing;
    mod chunked;
    mod fuzz_corpus;
    mod hostile;
    mod keep_alive;
    mod prop_no_panic;
    mod prop_splits;
    mod request_encoding;
    mod response_head;
}

mod builder;

mod scripted {
    mod fuzz_corpus;
}

mod tls {
    mod support;

    mod alpn;
    mod client_auth;
    mod errors;
    mod identity;
    mod native_roots;
    mod resumption;
    mod server_name;
    mod verification;
}
