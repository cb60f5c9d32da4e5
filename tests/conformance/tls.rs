//! TLS: https to a server whose certificate a test CA issued, connection reuse
//! over TLS, every certificate the client must refuse (wrong host, expired,
//! untrusted CA) refused with `ErrorKind::Tls`, client certificates, and pool
//! keys that keep plain and TLS connections, and different TLS settings, apart.

use crate::support::{self, spawn, Adapter};

use std::time::Duration;

use crate::support::{
    assert_origin, assert_quiescent, client_trusting, get, get_text, tls_trusting,
};
use muxpool::client::Client;
use muxpool::tls::{Alpn, CaCertificates, ClientAuth, Roots, TlsConfig};
use muxpool::{ErrorKind, PoolKey};
use muxpool_testkit::certs::{self, Ca};
use muxpool_testkit::hostile::{Behavior, Hostile};
use muxpool_testkit::hyper_server::{content, HyperServer, Options, Protocol};

const HTTP11: &[&[u8]] = &[b"http/1.1"];

fn tls_server(leaf: &certs::Leaf) -> HyperServer {
    HyperServer::start(Options {
        tls: Some(certs::server_config(leaf, HTTP11)),
        protocol: Protocol::Http1,
        ..Options::default()
    })
}

async fn https_with_a_trusted_test_ca<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let server = tls_server(&ca.leaf(&["localhost", "127.0.0.1"]));
    let client = client_trusting::<R>(&ca);
    let url = server.url("/");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    for _ in 0..5 {
        assert_eq!(get_text(&client, &url).await, "hello");
    }
    let (_, body) = support::get_bytes(&client, server.url("/bytes/2000000")).await;
    assert!(body[..] == content(2_000_000)[..]);
    let response = client
        .send(support::request(
            http::Method::POST,
            server.url("/echo"),
            "over tls",
        ))
        .await
        .unwrap();
    assert_eq!(response.into_body().text().await.unwrap(), "over tls");
    assert_eq!(server.accepted(), 1, "TLS connections are reused");
    assert_eq!(client.stats().reused_grants, 6);
    assert_quiescent(&client).await;
}

async fn new_connections_resume_the_tls_session<R: Adapter>() {
    // The server closes each connection after its response, so every request
    // opens a new one: the first does a full handshake, the others resume the
    // session its ticket started (one session cache for all connections).
    let ca = Ca::new("muxpool test CA");
    let server = HyperServer::start(Options {
        tls: Some(certs::server_config(&ca.leaf(&["127.0.0.1"]), HTTP11)),
        protocol: Protocol::Http1,
        keep_alive: false,
        ..Options::default()
    });
    let client = client_trusting::<R>(&ca);
    for _ in 0..3 {
        assert_eq!(get_text(&client, server.url("/")).await, "hello");
    }
    assert_eq!(server.accepted(), 3, "one connection per request");
    assert_eq!(server.resumed_handshakes(), 2, "all but the first resumed");
}

async fn https_by_dns_name<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let server = tls_server(&ca.leaf(&["localhost"]));
    let client = client_trusting::<R>(&ca);
    let url = format!("https://localhost:{}/", server.port());
    // `localhost` may resolve to ::1 first, where nothing listens; Happy
    // Eyeballs falls back to 127.0.0.1.
    assert_eq!(get_text(&client, &url).await, "hello");
    assert_eq!(get_text(&client, &url).await, "hello");
    assert_eq!(server.accepted(), 1);
}

async fn https_with_an_intermediate_ca<R: Adapter>() {
    let root = Ca::new("muxpool test root");
    let intermediate = root.intermediate("muxpool test intermediate");
    let leaf = intermediate
        .leaf(&["127.0.0.1"])
        .with_intermediate(&intermediate);
    let server = tls_server(&leaf);
    let client = client_trusting::<R>(&root);
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
}

/// `GET url`, expecting a TLS error: its text with all its causes, in lower
/// case.
async fn tls_error<R: Adapter>(client: &Client<R>, url: String) -> String {
    let error = get(client, &url)
        .await
        .expect_err("the handshake must fail");
    assert_eq!(error.kind(), ErrorKind::Tls, "{url}: {error:#}");
    format!("{error:#}").to_ascii_lowercase()
}

async fn certificate_for_another_host_is_refused<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let server = tls_server(&ca.leaf(&["example.com", "10.0.0.1"]));
    let client = client_trusting::<R>(&ca);
    let text = tls_error::<R>(&client, server.url("/")).await;
    assert!(
        text.contains("not valid for name") || text.contains("name"),
        "the cause names the mismatch: {text}"
    );
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
}

async fn expired_certificate_is_refused<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let server = tls_server(&ca.expired_leaf(&["127.0.0.1"]));
    let client = client_trusting::<R>(&ca);
    let text = tls_error::<R>(&client, server.url("/")).await;
    assert!(text.contains("expired"), "{text}");
}

async fn certificate_from_an_untrusted_ca_is_refused<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let other = Ca::new("some other CA");
    let server = tls_server(&other.leaf(&["127.0.0.1"]));
    let client = client_trusting::<R>(&ca);
    let error = get(&client, server.url("/"))
        .await
        .expect_err("an untrusted certificate");
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:#}");
    // One line: where, what to do, and rustls' reason.
    assert_eq!(
        error.to_string(),
        format!(
            "TLS handshake with https://127.0.0.1:{} failed: the server's certificate is not signed by a trusted root; add its CA with TlsConfigBuilder::add_ca: invalid peer certificate: UnknownIssuer",
            server.port()
        )
    );
    assert_origin(&error, "https", server.port());
    assert_eq!(server.requests(), 0, "nothing was sent");

    // The default client (webpki roots) does not trust a test CA either.
    let text = tls_error::<R>(&Client::<R>::new(), server.url("/")).await;
    assert!(text.contains("issuer"), "{text}");
}

/// A server presenting a CA certificate as its own (what a bare `openssl req
/// -x509` makes), trusted as a CA by the client, is refused by rustls as a CA
/// used as an end entity; the error says what to do instead.
async fn a_ca_served_as_its_own_certificate_says_what_to_do<R: Adapter>() {
    let own = Ca::self_signed_server(&["127.0.0.1"]);
    let server = tls_server(&own.as_leaf());
    let client = client_trusting::<R>(&own);
    let error = get(&client, server.url("/"))
        .await
        .expect_err("a CA as the server's certificate");
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:#}");
    assert_eq!(
        error.to_string(),
        format!(
            "TLS handshake with https://127.0.0.1:{} failed: the server presents a CA certificate as its own (a bare self-signed one); trust a CA and have the server present a certificate that CA issued: invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))",
            server.port()
        )
    );
    // Done as the error says, the same server name is served.
    let ca = Ca::new("muxpool test CA");
    let server = tls_server(&ca.leaf(&["127.0.0.1"]));
    let client = client_trusting::<R>(&ca);
    assert_eq!(get_text(&client, server.url("/")).await, "hello");
}

async fn a_plain_server_on_an_https_url_is_a_tls_error<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let ca = Ca::new("muxpool test CA");
    let client = client_trusting::<R>(&ca);
    let url = format!("https://127.0.0.1:{}/", server.port());
    let error = get(&client, &url).await.expect_err("not TLS");
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:#}");
}

/// A client whose connects give up after 300 ms, and a server that accepts TCP
/// and never answers the ClientHello.
fn stalled_handshake<R: Adapter>() -> (Hostile, Client<R>, String) {
    let server = Hostile::start(Behavior::Silent);
    let ca = Ca::new("muxpool test CA");
    let client = Client::<R>::builder()
        .tls(tls_trusting(&ca))
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/", server.port());
    (server, client, url)
}

/// Each connect is cut at the connect timeout (300 ms), and, since a server
/// that stalls may be one restarting, the request waits for the next ones
/// until its own deadline (3 s) or until the next could not finish in time.
async fn a_tls_handshake_that_never_finishes_hits_the_connect_timeout<R: Adapter>() {
    let (_server, client, url) = stalled_handshake::<R>();
    let started = std::time::Instant::now();
    let error = get(&client, &url).await.expect_err("no handshake");
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:#}");
    assert!(elapsed < Duration::from_millis(3500), "{elapsed:?}");
    let stats = client.stats();
    let per_connect = elapsed.as_millis() / u128::from(stats.connect_failures.max(1));
    assert!(
        stats.connect_failures >= 3 && per_connect < 1000,
        "connects cut at the connect timeout, and tried again: {stats:#?} in {elapsed:?}"
    );
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 0);
}

async fn a_connect_timeout_is_reported_as_a_timeout<R: Adapter>() {
    // Several at once, so the race shows up on nearly every run.
    let mut attempts = Vec::new();
    for _ in 0..10 {
        attempts.push(spawn::<R, _>(async {
            let (_server, client, url) = stalled_handshake::<R>();
            get(&client, &url).await.expect_err("no handshake")
        }));
    }
    for attempt in attempts {
        let error = attempt.await.unwrap();
        assert_eq!(error.kind(), ErrorKind::Timeout, "{error:#}");
        assert!(
            format!("{error:#}").contains("timed out after 300ms"),
            "{error:#}"
        );
    }
}

async fn client_certificates<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let client_ca = Ca::new("muxpool client CA");
    let leaf = ca.leaf(&["127.0.0.1"]);
    let server = HyperServer::start(Options {
        tls: Some(certs::server_config_with_client_auth(
            &leaf, &client_ca, HTTP11,
        )),
        protocol: Protocol::Http1,
        ..Options::default()
    });

    let me = client_ca.client_leaf("client.muxpool.test");
    let auth = ClientAuth::from_pem(me.cert_pem(), me.key_pem()).expect("the client leaf");
    let tls = TlsConfig::builder()
        .roots(Roots::CustomOnly)
        .add_ca(CaCertificates::from_pem(ca.pem()).unwrap())
        .client_auth(auth)
        .alpn(Alpn::Http1Only)
        .build()
        .unwrap();
    let client = Client::<R>::builder().tls(tls).build().unwrap();
    for _ in 0..3 {
        assert_eq!(get_text(&client, server.url("/")).await, "hello");
    }
    assert_eq!(server.accepted(), 1);

    // Without a client certificate the server refuses. With TLS 1.3 the
    // refusal arrives after the client's side of the handshake is done, with
    // the first read.
    let anonymous = client_trusting::<R>(&ca);
    let error = get(&anonymous, server.url("/"))
        .await
        .expect_err("the server requires a client certificate");
    let text = format!("{error:#}").to_ascii_lowercase();
    assert!(text.contains("certificate"), "{text}");
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:#}");
    assert_quiescent(&anonymous).await;
}

async fn missing_client_certificate_is_a_tls_error<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let client_ca = Ca::new("muxpool client CA");
    let server = HyperServer::start(Options {
        tls: Some(certs::server_config_with_client_auth(
            &ca.leaf(&["127.0.0.1"]),
            &client_ca,
            HTTP11,
        )),
        protocol: Protocol::Http1,
        ..Options::default()
    });
    let error = get(&client_trusting::<R>(&ca), server.url("/"))
        .await
        .expect_err("the server requires a client certificate");
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:#}");
}

async fn plain_and_tls_origins_never_share_connections<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let tls = tls_trusting(&ca);
    let plain: http::Uri = "http://127.0.0.1:8443/".parse().unwrap();
    let secure: http::Uri = "https://127.0.0.1:8443/".parse().unwrap();
    let plain = PoolKey::from_uri(&plain, tls.identity()).unwrap();
    let secure = PoolKey::from_uri(&secure, tls.identity()).unwrap();
    assert_ne!(plain, secure, "same host and port, http vs https");
    assert!(!plain.is_tls() && secure.is_tls());

    // Default ports, case, brackets.
    let a = PoolKey::from_uri(&"https://Example.COM/x".parse().unwrap(), tls.identity()).unwrap();
    let b = PoolKey::from_uri(
        &"https://example.com:443/y".parse().unwrap(),
        tls.identity(),
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.port(), 443);
    assert_eq!(a.host(), "example.com");
    let v6 = PoolKey::from_uri(&"http://[::1]:80/".parse().unwrap(), tls.identity()).unwrap();
    assert_eq!(v6.host(), "::1");
    assert_eq!(v6.to_string(), "http://[::1]:80");
}

async fn different_tls_settings_are_different_origins<R: Adapter>() {
    let ca = Ca::new("muxpool test CA");
    let other = Ca::new("another CA");
    let uri: http::Uri = "https://127.0.0.1:8443/".parse().unwrap();

    let base = tls_trusting(&ca);
    let same = tls_trusting(&ca);
    assert_eq!(
        PoolKey::from_uri(&uri, base.identity()).unwrap(),
        PoolKey::from_uri(&uri, same.identity()).unwrap(),
        "equal settings may share connections"
    );
    let variants = [
        ("other roots", tls_trusting(&other)),
        (
            "two CAs",
            TlsConfig::builder()
                .roots(Roots::CustomOnly)
                .add_ca(CaCertificates::from_pem(ca.pem()).unwrap())
                .add_ca(CaCertificates::from_pem(other.pem()).unwrap())
                .alpn(Alpn::Http1Only)
                .build()
                .unwrap(),
        ),
        (
            "other ALPN",
            TlsConfig::builder()
                .roots(Roots::CustomOnly)
                .add_ca(CaCertificates::from_pem(ca.pem()).unwrap())
                .alpn(Alpn::None)
                .build()
                .unwrap(),
        ),
        ("a client certificate", {
            let me = ca.client_leaf("client");
            TlsConfig::builder()
                .roots(Roots::CustomOnly)
                .add_ca(CaCertificates::from_pem(ca.pem()).unwrap())
                .client_auth(ClientAuth::from_pem(me.cert_pem(), me.key_pem()).unwrap())
                .alpn(Alpn::Http1Only)
                .build()
                .unwrap()
        }),
    ];
    let base_origin = PoolKey::from_uri(&uri, base.identity()).unwrap();
    for (what, config) in &variants {
        assert_ne!(
            PoolKey::from_uri(&uri, config.identity()).unwrap(),
            base_origin,
            "{what} must not share connections"
        );
    }
    // Plain origins ignore TLS settings.
    let plain: http::Uri = "http://127.0.0.1:8080/".parse().unwrap();
    assert_eq!(
        PoolKey::from_uri(&plain, base.identity()).unwrap(),
        PoolKey::from_uri(&plain, variants[0].1.identity()).unwrap()
    );
}

async fn one_client_keeps_http_and_https_connections_apart<R: Adapter>() {
    // The same hyper server can't serve both, so two servers; what matters is
    // that the client's stats count one connection per origin, and a request
    // to each uses its own.
    let ca = Ca::new("muxpool test CA");
    let secure = tls_server(&ca.leaf(&["127.0.0.1"]));
    let plain = HyperServer::start(Options::default());
    let client = client_trusting::<R>(&ca);
    for _ in 0..3 {
        assert_eq!(get_text(&client, secure.url("/")).await, "hello");
        assert_eq!(get_text(&client, plain.url("/")).await, "hello");
    }
    assert_eq!((secure.accepted(), plain.accepted()), (1, 1));
    assert_quiescent(&client).await;
    assert_eq!(client.stats().open, 2);
}

async fn a_rustls_config_made_elsewhere_is_used_with_muxpool_alpn<R: Adapter>() {
    // The configuration comes without ALPN; muxpool offers h2 on it, and the
    // server picks HTTP/2.
    let ca = Ca::new("muxpool test CA");
    let server = HyperServer::start(Options {
        tls: Some(certs::server_config(
            &ca.leaf(&["127.0.0.1"]),
            &[b"h2", b"http/1.1"],
        )),
        ..Options::default()
    });
    let config = rustls::ClientConfig::clone(&certs::client_config(&ca, &[]));
    let tls = TlsConfig::from_rustls(config.clone(), Alpn::Http1AndHttp2).unwrap();
    let client = Client::<R>::builder().tls(tls.clone()).build().unwrap();
    let response = get(&client, server.url("/")).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.into_body().text().await.unwrap(), "hello");
    // Two configurations made elsewhere are never taken for one.
    let again = TlsConfig::from_rustls(config, Alpn::Http1AndHttp2).unwrap();
    assert_ne!(tls.identity(), again.identity());
    assert_quiescent(&client).await;
}

async fn the_crypto_provider_given_is_the_one_that_handshakes<R: Adapter>() {
    // The server speaks only TLS 1.3 with AES-128; a client whose provider
    // has only AES-256 cannot agree with it, one with AES-128 can.
    use rustls::crypto::aws_lc_rs::{cipher_suite, default_provider};
    let only = |suite| {
        let mut provider = default_provider();
        provider.cipher_suites = vec![suite];
        std::sync::Arc::new(provider)
    };
    let ca = Ca::new("muxpool test CA");
    let leaf = ca.leaf(&["127.0.0.1"]);
    let server_config =
        rustls::ServerConfig::builder_with_provider(only(cipher_suite::TLS13_AES_128_GCM_SHA256))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(leaf.chain_der(), leaf.key_der())
            .unwrap();
    let server = HyperServer::start(Options {
        tls: Some(std::sync::Arc::new(server_config)),
        protocol: Protocol::Http1,
        ..Options::default()
    });
    let client_with = |suite| {
        let tls = TlsConfig::builder()
            .crypto_provider(only(suite))
            .roots(Roots::CustomOnly)
            .add_ca(CaCertificates::from_pem(ca.pem()).unwrap())
            .build()
            .unwrap();
        Client::<R>::builder().tls(tls).build().unwrap()
    };
    let refused = client_with(cipher_suite::TLS13_AES_256_GCM_SHA384);
    let error = get(&refused, server.url("/")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:#}");
    let agreed = client_with(cipher_suite::TLS13_AES_128_GCM_SHA256);
    assert_eq!(get_text(&agreed, server.url("/")).await, "hello");
}

support::conformance!(
    https_with_a_trusted_test_ca,
    new_connections_resume_the_tls_session,
    https_by_dns_name,
    https_with_an_intermediate_ca,
    certificate_for_another_host_is_refused,
    expired_certificate_is_refused,
    certificate_from_an_untrusted_ca_is_refused,
    a_ca_served_as_its_own_certificate_says_what_to_do,
    a_plain_server_on_an_https_url_is_a_tls_error,
    a_tls_handshake_that_never_finishes_hits_the_connect_timeout,
    a_connect_timeout_is_reported_as_a_timeout,
    client_certificates,
    missing_client_certificate_is_a_tls_error,
    plain_and_tls_origins_never_share_connections,
    different_tls_settings_are_different_origins,
    one_client_keeps_http_and_https_connections_apart,
    a_rustls_config_made_elsewhere_is_used_with_muxpool_alpn,
    the_crypto_provider_given_is_the_one_that_handshakes,
);
