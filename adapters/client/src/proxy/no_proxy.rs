//! The origins a proxy is not used for: a `NO_PROXY` list.
//!
//! Its syntax is the one curl and reqwest read, the one people write in
//! their environment: comma-separated entries, each a name that matches
//! itself and every name under it, an IP address, or a CIDR range, with an
//! optional port. Entries are matched against the host as the request's URI
//! writes it; a name is never resolved to see whether its address is in a
//! range, which would cost a lookup per request and answer differently from
//! one moment to the next.

use std::net::IpAddr;

/// Origins that do not go through a proxy, read from a `NO_PROXY`-style
/// list.
///
/// Entries are separated by commas (spaces around them are ignored) and
/// compared without regard to case:
///
/// - `*` alone: every origin;
/// - a name, `example.com`, `.example.com` or `*.example.com`: that name and
///   every name that ends with `.example.com`;
/// - an IP address, `127.0.0.1` or `::1` (or `[::1]`): a host written as
///   that address;
/// - a CIDR range, `10.0.0.0/8` or `fd00::/8`: a host written as an address
///   in it;
/// - any of those but a range, then `:port` (`example.com:8080`,
///   `[::1]:8443`): only that port.
///
/// Names are not resolved: `localhost` does not match `127.0.0.1`, nor
/// `10.0.0.0/8` a name whose address is in it. Entries that are none of the
/// above are ignored.
///
/// ```
/// use muxpool_client::NoProxy;
///
/// let rules = NoProxy::parse("localhost, .internal.example, 10.0.0.0/8, api.example:8443");
/// assert!(rules.matches("db.internal.example", 443));
/// assert!(rules.matches("internal.example", 80));
/// assert!(rules.matches("10.1.2.3", 80));
/// assert!(rules.matches("api.example", 8443));
/// assert!(!rules.matches("api.example", 443));
/// assert!(!rules.matches("example.com", 443));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    /// `*`: every origin.
    all: bool,
    rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    /// A lowercase name without leading or trailing dots: itself and the
    /// names under it.
    Name { name: Box<str>, port: Option<u16> },
    /// An address.
    Ip { ip: IpAddr, port: Option<u16> },
    /// A range of addresses: the network and its prefix length.
    Net { net: IpAddr, prefix: u8 },
}

impl NoProxy {
    /// The rules of a comma-separated list (see [`NoProxy`]); entries that
    /// are not understood are skipped.
    pub fn parse(list: &str) -> NoProxy {
        let mut out = NoProxy::default();
        for entry in list.split(',') {
            let entry = entry.trim();
            if entry == "*" {
                out.all = true;
            } else if let Some(rule) = Rule::parse(entry) {
                out.rules.push(rule);
            }
        }
        out
    }

    /// Whether an origin at `host` (a name, or an IP address with or without
    /// brackets) and `port` is exempt from the proxy.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        if self.rules.is_empty() {
            return false;
        }
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip: Option<IpAddr> = host.parse().ok();
        let name = host.trim_end_matches('.');
        self.rules.iter().any(|rule| match (rule, ip) {
            (Rule::Ip { ip: rule, port: p }, Some(ip)) => {
                *rule == ip && p.is_none_or(|p| p == port)
            }
            (Rule::Net { net, prefix }, Some(ip)) => in_net(ip, *net, *prefix),
            (
                Rule::Name {
                    name: rule,
                    port: p,
                },
                None,
            ) => p.is_none_or(|p| p == port) && is_within(name, rule),
            _ => false,
        })
    }

    /// Whether the list has no entry that matches anything.
    pub fn is_empty(&self) -> bool {
        !self.all && self.rules.is_empty()
    }
}

impl Rule {
    fn parse(entry: &str) -> Option<Rule> {
        if entry.is_empty() {
            return None;
        }
        if let Some((net, prefix)) = entry.split_once('/') {
            let net: IpAddr = unbracket(net).parse().ok()?;
            let prefix: u8 = prefix.parse().ok()?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            return (prefix <= max).then_some(Rule::Net { net, prefix });
        }
        if let Ok(ip) = unbracket(entry).parse::<IpAddr>() {
            return Some(Rule::Ip { ip, port: None });
        }
        // `host:port` or `[v6]:port`.
        let (host, port) = match entry.rsplit_once(':') {
            Some((host, port)) => (host, Some(port.parse::<u16>().ok()?)),
            None => (entry, None),
        };
        if let Ok(ip) = unbracket(host).parse::<IpAddr>() {
            return Some(Rule::Ip { ip, port });
        }
        let name = host.strip_prefix("*.").unwrap_or(host);
        let name = name.trim_start_matches('.').trim_end_matches('.');
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        valid.then(|| Rule::Name {
            name: name.to_ascii_lowercase().into(),
            port,
        })
    }
}

fn unbracket(text: &str) -> &str {
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text)
}

/// Whether `host` is `name` or a name under it, without regard to case.
fn is_within(host: &str, name: &str) -> bool {
    if host.len() == name.len() {
        return host.eq_ignore_ascii_case(name);
    }
    host.len() > name.len()
        && host.as_bytes()[host.len() - name.len() - 1] == b'.'
        && host[host.len() - name.len()..].eq_ignore_ascii_case(name)
}

/// Whether `ip` is in the network `net`/`prefix` (of the same family).
fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::NoProxy;

    #[test]
    fn names_match_themselves_and_what_is_under_them() {
        for list in [
            "example.com",
            ".example.com",
            "*.example.com",
            "EXAMPLE.com.",
        ] {
            let rules = NoProxy::parse(list);
            for host in [
                "example.com",
                "a.example.com",
                "a.b.Example.COM",
                "example.com.",
            ] {
                assert!(rules.matches(host, 443), "{list} matches {host}");
            }
            for host in ["notexample.com", "example.com.evil", "com", "example.co"] {
                assert!(!rules.matches(host, 443), "{list} does not match {host}");
            }
        }
    }

    #[test]
    fn a_star_matches_everything_and_an_empty_list_nothing() {
        assert!(NoProxy::parse("*").matches("anything", 1));
        assert!(NoProxy::parse("a.example, *").matches("::1", 1));
        for list in ["", " , ,", "bad entry", "10.0.0.0/33", "a.example:port"] {
            let rules = NoProxy::parse(list);
            assert!(rules.is_empty(), "{list:?}");
            assert!(!rules.matches("a.example", 80), "{list:?}");
        }
    }

    #[test]
    fn addresses_and_ranges_match_literal_hosts() {
        let rules = NoProxy::parse("127.0.0.1, ::1, 10.0.0.0/8, fd00::/8, 192.168.1.7/32");
        for host in [
            "127.0.0.1",
            "::1",
            "[::1]",
            "10.200.3.4",
            "fd12::5",
            "192.168.1.7",
        ] {
            assert!(rules.matches(host, 80), "{host}");
        }
        for host in [
            "127.0.0.2",
            "::2",
            "11.0.0.1",
            "fe80::1",
            "192.168.1.8",
            "localhost",
        ] {
            assert!(!rules.matches(host, 80), "{host}");
        }
        // A name is not resolved.
        assert!(!NoProxy::parse("127.0.0.0/8").matches("localhost", 80));
        // Zero-length prefixes match the whole family.
        assert!(NoProxy::parse("0.0.0.0/0").matches("8.8.8.8", 53));
        assert!(!NoProxy::parse("0.0.0.0/0").matches("::1", 53));
    }

    #[test]
    fn ports_narrow_an_entry() {
        let rules = NoProxy::parse("api.example:8443, 127.0.0.1:8080, [::1]:9000");
        assert!(rules.matches("api.example", 8443));
        assert!(rules.matches("v2.api.example", 8443));
        assert!(!rules.matches("api.example", 443));
        assert!(rules.matches("127.0.0.1", 8080));
        assert!(!rules.matches("127.0.0.1", 80));
        assert!(rules.matches("::1", 9000));
        assert!(!rules.matches("::1", 9001));
    }
}
