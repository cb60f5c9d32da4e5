//! Roots::Native: the platform store, steered here through `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` (which rustls-native-certs honours on every platform) so the
//! test controls what "the platform" trusts.

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::support::{connect, Ca, Trusted};
use muxpool_client::tls::{Roots, TlsConfig, TlsError};
use muxpool_testkit::certs::server_config;

/// The environment is process-wide: one test at a time touches it. The other
/// tests of this binary never read these variables: only `Roots::Native` does.
static ENV: Mutex<()> = Mutex::new(());

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn file(name: &str, contents: &str) -> TempFile {
    let path = std::env::temp_dir().join(format!("muxpool-tls-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    TempFile(path)
}

fn native(cert_file: &Path, cert_dir: Option<&str>) -> Result<TlsConfig, TlsError> {
    std::env::set_var("SSL_CERT_FILE", cert_file);
    match cert_dir {
        Some(dir) => std::env::set_var("SSL_CERT_DIR", dir),
        None => std::env::remove_var("SSL_CERT_DIR"),
    }
    let result = TlsConfig::builder().roots(Roots::Native).build();
    std::env::remove_var("SSL_CERT_FILE");
    std::env::remove_var("SSL_CERT_DIR");
    result
}

#[test]
fn the_platform_store_is_trusted() {
    let _env = ENV.lock().unwrap();
    let ca = Ca::new("platform root");
    let other = Ca::new("other root");
    let store = file("store.pem", &ca.pem());
    let tls = native(&store.0, None).unwrap();
    assert!(tls.native_root_errors().is_empty());

    connect(
        &tls,
        "localhost",
        &server_config(&ca.leaf(&["localhost"]), &[]),
    )
    .unwrap();
    assert!(
        connect(
            &tls,
            "localhost",
            &server_config(&other.leaf(&["localhost"]), &[])
        )
        .is_err(),
        "only the platform's roots are trusted"
    );

    assert_eq!(native(&store.0, None).unwrap().identity(), tls.identity());
    let other_store = file("other.pem", &other.pem());
    assert_ne!(
        native(&other_store.0, None).unwrap().identity(),
        tls.identity(),
        "the identity follows the store's content"
    );
    assert_ne!(
        TlsConfig::builder()
            .roots(Roots::CustomOnly)
            .add_ca(ca.trusted())
            .build()
            .unwrap()
            .identity(),
        tls.identity()
    );
}

#[test]
fn an_empty_store_is_an_error() {
    let _env = ENV.lock().unwrap();
    let empty = file("empty.pem", "");
    match native(&empty.0, None) {
        Err(TlsError::NativeRoots { errors }) => assert!(errors.is_empty()),
        other => panic!("expected NativeRoots, got {other:?}"),
    }
}

#[test]
fn a_store_that_cannot_be_read_is_an_error_with_its_cause() {
    let _env = ENV.lock().unwrap();
    let missing = std::env::temp_dir().join("muxpool-tls-no-such-file.pem");
    match native(&missing, None) {
        Err(error @ TlsError::NativeRoots { .. }) => {
            let TlsError::NativeRoots { errors } = &error else {
                unreachable!()
            };
            assert_eq!(errors.len(), 1);
            assert!(error.to_string().contains("(1 error)"), "{error}");
            assert!(error.source().is_some());
        }
        other => panic!("expected NativeRoots, got {other:?}"),
    }
}

#[test]
fn partial_failures_are_kept_for_the_caller() {
    let _env = ENV.lock().unwrap();
    let ca = Ca::new("platform root");
    let store = file("partial.pem", &ca.pem());
    let tls = native(&store.0, Some("/nonexistent/muxpool-tls-dir")).unwrap();
    assert_eq!(tls.native_root_errors().len(), 1);
    connect(
        &tls,
        "localhost",
        &server_config(&ca.leaf(&["localhost"]), &[]),
    )
    .unwrap();
}
