//! Which rustls crypto provider a configuration uses.
//!
//! rustls leaves the choice of cryptography to the application: a process
//! installs one default provider (`CryptoProvider::install_default`), or each
//! configuration names its own. A library that enables a provider feature of
//! rustls on its own changes what every other crate's
//! `rustls::ClientConfig::builder()` does in the same binary: with two
//! providers compiled in, that call can no longer tell which to use and
//! panics. So this module decides in the order the rustls ecosystem does, and
//! never installs a process default itself:
//!
//! 1. a provider passed in ([`TlsConfigBuilder::crypto_provider`](super::TlsConfigBuilder::crypto_provider));
//! 2. the process default, when the application installed one;
//! 3. aws-lc-rs, rustls's own default, when muxpool's `aws-lc-rs` feature
//!    (on by default) compiled it in;
//! 4. otherwise [`TlsError::NoCryptoProvider`], which says what to do.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

use super::error::TlsError;

/// The provider a configuration is built with; see the module docs for the
/// order.
pub(super) fn choose(
    explicit: Option<&Arc<CryptoProvider>>,
) -> Result<Arc<CryptoProvider>, TlsError> {
    first_of(
        explicit.cloned(),
        CryptoProvider::get_default().cloned(),
        compiled,
    )
}

/// The rule on its own: the first provider present, the compiled-in one
/// made only when needed.
fn first_of(
    explicit: Option<Arc<CryptoProvider>>,
    process_default: Option<Arc<CryptoProvider>>,
    compiled: fn() -> Option<Arc<CryptoProvider>>,
) -> Result<Arc<CryptoProvider>, TlsError> {
    explicit
        .or(process_default)
        .or_else(compiled)
        .ok_or(TlsError::NoCryptoProvider)
}

/// The provider muxpool's own features compiled in, if any.
fn compiled() -> Option<Arc<CryptoProvider>> {
    #[cfg(feature = "aws-lc-rs")]
    return Some(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    #[cfg(not(feature = "aws-lc-rs"))]
    return None;
}

#[cfg(all(test, feature = "aws-lc-rs"))]
mod tests {
    use super::*;

    fn named(suites: usize) -> Arc<CryptoProvider> {
        let mut provider = compiled().expect("the tests build with aws-lc-rs");
        Arc::make_mut(&mut provider).cipher_suites.truncate(suites);
        provider
    }

    fn suites(provider: &CryptoProvider) -> usize {
        provider.cipher_suites.len()
    }

    #[test]
    fn an_explicit_provider_wins_over_the_process_default() {
        let chosen = first_of(Some(named(1)), Some(named(2)), compiled).unwrap();
        assert_eq!(suites(&chosen), 1);
    }

    #[test]
    fn the_process_default_wins_over_the_compiled_provider() {
        let chosen = first_of(None, Some(named(2)), compiled).unwrap();
        assert_eq!(suites(&chosen), 2);
    }

    #[test]
    fn the_compiled_provider_is_the_last_resort() {
        let chosen = first_of(None, None, compiled).unwrap();
        assert_eq!(suites(&chosen), suites(&compiled().unwrap()));
    }

    #[test]
    fn no_provider_at_all_is_a_typed_error() {
        let error = first_of(None, None, || None).unwrap_err();
        assert!(matches!(error, TlsError::NoCryptoProvider));
        assert!(error.to_string().contains("install_default"), "{error}");
    }
}
