//! The proxies the environment names, read as curl and reqwest read them.
//!
//! A pure function of a variable getter, so every rule is tested without
//! touching the process's environment (which tests running in parallel
//! share):
//!
//! - `https` and `wss` origins: `https_proxy`, else `HTTPS_PROXY`;
//! - `http` and `ws` origins: `http_proxy`, else `HTTP_PROXY`, except when
//!   `REQUEST_METHOD` is set: a CGI program is given the request's `Proxy:`
//!   header as `HTTP_PROXY`, so there it names whatever a client asked for
//!   ("httpoxy") and is ignored;
//! - either, when its own variable is not set: `all_proxy`, else
//!   `ALL_PROXY`;
//! - the exceptions of both: `no_proxy`, else `NO_PROXY` (see
//!   [`NoProxy`]).
//!
//! The lowercase name is read first, as curl does; an empty value counts as
//! not set. Loopback origins (`localhost` and the names under it,
//! `127.0.0.0/8`, `::1`) never go through the environment's proxies, as Go's
//! and .NET's clients have it: a proxy elsewhere cannot reach this host's
//! loopback, and a variable set for the machine's outbound traffic must not
//! send a local daemon's requests away. A proxy given to the builder is
//! used as it says. A value without a scheme is an `http://` URL. One that names no
//! `http://` proxy (another scheme, or not a URL) is skipped and reported.

use super::{NoProxy, Proxies, Proxy, Scope};

/// The origins the environment's proxies never serve, as a `NO_PROXY` list.
const LOOPBACK: &str = "localhost, 127.0.0.0/8, ::1";

/// What the environment says.
#[derive(Debug)]
pub(crate) struct FromEnv {
    pub(crate) proxies: Proxies,
    /// Variables that were set but name no usable proxy.
    pub(crate) skipped: Vec<&'static str>,
}

/// The proxies the variables `get` reads name.
pub(crate) fn from_vars(get: impl Fn(&str) -> Option<String>) -> FromEnv {
    let set = |name: &'static str| {
        get(name)
            .filter(|value| !value.trim().is_empty())
            .map(|value| (name, value))
    };
    let either = |lower, upper| set(lower).or_else(|| set(upper));
    let cgi = get("REQUEST_METHOD").is_some();
    let http = set("http_proxy").or_else(|| if cgi { None } else { set("HTTP_PROXY") });
    let https = either("https_proxy", "HTTPS_PROXY");
    let all = either("all_proxy", "ALL_PROXY");
    let exceptions = either("no_proxy", "NO_PROXY").map_or_else(String::new, |(_, list)| list);
    let no_proxy = NoProxy::parse(&format!("{LOOPBACK},{exceptions}"));
    let mut skipped = Vec::new();
    let mut list = Vec::new();
    for (scope, var) in [(Scope::Https, https), (Scope::Http, http)] {
        let Some((name, url)) = var.or_else(|| all.clone()) else {
            continue;
        };
        match Proxy::new(&url, scope) {
            Ok(proxy) => list.push(proxy.no_proxy(no_proxy.clone())),
            Err(_) if !skipped.contains(&name) => skipped.push(name),
            Err(_) => {}
        }
    }
    FromEnv {
        proxies: Proxies::new(list),
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> FromEnv {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_vars(|name| vars.get(name).cloned())
    }

    /// The proxy an origin goes through, as `http://host:port`.
    fn proxy_of(env: &FromEnv, tls: bool, host: &str, port: u16) -> Option<String> {
        env.proxies
            .serving(tls, host, port)
            .map(|endpoint| endpoint.to_string())
    }

    #[test]
    fn loopback_origins_never_go_through_the_environments_proxy() {
        for env in [
            read(&[("all_proxy", "http://p:1")]),
            read(&[("all_proxy", "http://p:1"), ("no_proxy", "other.example")]),
        ] {
            for host in [
                "localhost",
                "api.localhost",
                "127.0.0.1",
                "127.8.9.1",
                "::1",
            ] {
                assert_eq!(proxy_of(&env, false, host, 80), None, "{host}");
                assert_eq!(proxy_of(&env, true, host, 443), None, "{host}");
            }
            assert_eq!(
                proxy_of(&env, true, "localhost.example", 443).as_deref(),
                Some("http://p:1")
            );
            assert_eq!(
                proxy_of(&env, false, "128.0.0.1", 80).as_deref(),
                Some("http://p:1")
            );
        }
    }

    #[test]
    fn nothing_set_is_no_proxy() {
        let env = read(&[("PATH", "/usr/bin"), ("http_proxy", " ")]);
        assert!(env.proxies.is_empty());
        assert!(env.skipped.is_empty());
    }

    #[test]
    fn each_scheme_has_its_variable_and_lowercase_comes_first() {
        let env = read(&[
            ("http_proxy", "http://lower-http:1"),
            ("HTTP_PROXY", "http://upper-http:2"),
            ("HTTPS_PROXY", "upper-https:3"),
        ]);
        assert_eq!(
            proxy_of(&env, false, "a.example", 80).as_deref(),
            Some("http://lower-http:1")
        );
        assert_eq!(
            proxy_of(&env, true, "a.example", 443).as_deref(),
            Some("http://upper-https:3")
        );
        let env = read(&[
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:2"),
        ]);
        assert_eq!(
            proxy_of(&env, true, "a.example", 443).as_deref(),
            Some("http://lower:1")
        );
        assert_eq!(
            proxy_of(&env, false, "a.example", 80),
            None,
            "https_proxy is not for http"
        );
    }

    #[test]
    fn all_proxy_serves_what_has_no_variable_of_its_own() {
        let env = read(&[
            ("ALL_PROXY", "http://all:1"),
            ("http_proxy", "http://plain:2"),
        ]);
        assert_eq!(
            proxy_of(&env, false, "a.example", 80).as_deref(),
            Some("http://plain:2")
        );
        assert_eq!(
            proxy_of(&env, true, "a.example", 443).as_deref(),
            Some("http://all:1")
        );
        let env = read(&[
            ("all_proxy", "http://lower:1"),
            ("ALL_PROXY", "http://upper:2"),
        ]);
        assert_eq!(
            proxy_of(&env, false, "a.example", 80).as_deref(),
            Some("http://lower:1")
        );
    }

    /// httpoxy: in a CGI program `HTTP_PROXY` is the request's `Proxy:`
    /// header, chosen by whoever sent it.
    #[test]
    fn uppercase_http_proxy_is_ignored_under_cgi() {
        let env = read(&[
            ("HTTP_PROXY", "http://attacker:1"),
            ("REQUEST_METHOD", "GET"),
        ]);
        assert_eq!(proxy_of(&env, false, "a.example", 80), None);
        let env = read(&[("http_proxy", "http://mine:1"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(
            proxy_of(&env, false, "a.example", 80).as_deref(),
            Some("http://mine:1")
        );
        let env = read(&[("HTTPS_PROXY", "http://mine:1"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(
            proxy_of(&env, true, "a.example", 443).as_deref(),
            Some("http://mine:1")
        );
        let env = read(&[("HTTP_PROXY", "http://upper:1")]);
        assert_eq!(
            proxy_of(&env, false, "a.example", 80).as_deref(),
            Some("http://upper:1")
        );
    }

    #[test]
    fn no_proxy_exempts_origins_from_every_proxy() {
        let env = read(&[
            ("ALL_PROXY", "http://all:1"),
            ("NO_PROXY", "upper.example"),
            ("no_proxy", "localhost,.internal, 10.0.0.0/8"),
        ]);
        for (tls, host) in [
            (false, "localhost"),
            (true, "db.internal"),
            (true, "10.1.1.1"),
        ] {
            assert_eq!(proxy_of(&env, tls, host, 443), None, "{host}");
        }
        assert!(
            proxy_of(&env, true, "upper.example", 443).is_some(),
            "lowercase wins"
        );
        let env = read(&[("https_proxy", "http://p:1"), ("NO_PROXY", "*")]);
        assert_eq!(proxy_of(&env, true, "a.example", 443), None);
    }

    #[test]
    fn unusable_values_are_skipped_and_named() {
        let env = read(&[
            ("ALL_PROXY", "socks5://localhost:1080"),
            ("HTTPS_PROXY", "https://tls-proxy:443"),
            ("http_proxy", "http://good:1"),
        ]);
        assert_eq!(proxy_of(&env, true, "a.example", 443), None);
        assert_eq!(
            proxy_of(&env, false, "a.example", 80).as_deref(),
            Some("http://good:1")
        );
        assert_eq!(env.skipped, ["HTTPS_PROXY"]);
        let env = read(&[("all_proxy", "socks5://localhost:1080")]);
        assert!(env.proxies.is_empty());
        assert_eq!(env.skipped, ["all_proxy"]);
    }

    #[test]
    fn credentials_in_the_environment_are_used() {
        let env = read(&[("https_proxy", "http://user:pass@p:3128")]);
        let endpoint = env
            .proxies
            .serving(true, "a.example", 443)
            .expect("a proxy");
        assert_eq!(endpoint.authorization().unwrap(), "Basic dXNlcjpwYXNz");
    }
}
