//! The smtp agent's name service: MX lookup in preference order (RFC 5321 §5.1), null MX
//! (RFC 7505), the implicit MX, and the failure classes a delivery needs (bounce or defer).
//!
//! The resolver is a trait so that tests need no network: [`Hickory`] asks the system's
//! name servers (`/etc/resolv.conf`) through hickory-resolver, [`StaticResolver`] answers
//! from a map.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::pin::Pin;

/// Why a lookup gave no records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// NXDOMAIN: the name does not exist (a permanent failure).
    #[error("host or domain name not found")]
    NotFound,
    /// The name exists but has no records of the asked type.
    #[error("no records of that type")]
    NoRecords,
    /// SERVFAIL, a timeout, no reachable name server: try again later.
    #[error("name service error: {0}")]
    Temporary(String),
}

/// A boxed future of a lookup.
pub type Lookup<'a, T> = Pin<Box<dyn Future<Output = Result<T, DnsError>> + Send + 'a>>;

/// The lookups the smtp agent needs.
pub trait Resolve: Send + Sync {
    /// The MX records of `domain`: `(preference, exchange)`, the exchange without its
    /// trailing dot (`""` for the root, i.e. a null MX).
    fn mx<'a>(&'a self, domain: &'a str) -> Lookup<'a, Vec<(u16, String)>>;
    /// The A and AAAA records of `host`.
    fn addresses<'a>(&'a self, host: &'a str) -> Lookup<'a, Vec<IpAddr>>;
}

/// hickory-resolver with the system's configuration.
pub struct Hickory(hickory_resolver::TokioResolver);

impl Hickory {
    /// A resolver from `/etc/resolv.conf`.
    ///
    /// # Errors
    ///
    /// The system configuration cannot be read.
    pub fn from_system() -> Result<Hickory, String> {
        hickory_resolver::TokioResolver::builder_tokio()
            .and_then(|b| b.build())
            .map(Hickory)
            .map_err(|e| format!("cannot set up the DNS resolver: {e}"))
    }
}

fn classify(e: &hickory_resolver::net::NetError) -> DnsError {
    if e.is_nx_domain() {
        DnsError::NotFound
    } else if e.is_no_records_found() {
        DnsError::NoRecords
    } else {
        DnsError::Temporary(e.to_string())
    }
}

/// A fully qualified form of `name` (a trailing dot: no search list, RFC 5321 §5.1 names
/// are absolute).
fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

impl Resolve for Hickory {
    fn mx<'a>(&'a self, domain: &'a str) -> Lookup<'a, Vec<(u16, String)>> {
        Box::pin(async move {
            use hickory_resolver::proto::rr::RData;
            let lookup = self
                .0
                .mx_lookup(absolute(domain))
                .await
                .map_err(|e| classify(&e))?;
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => {
                        let name = mx.exchange.to_ascii();
                        Some((mx.preference, name.trim_end_matches('.').to_string()))
                    }
                    _ => None,
                })
                .collect())
        })
    }

    fn addresses<'a>(&'a self, host: &'a str) -> Lookup<'a, Vec<IpAddr>> {
        Box::pin(async move {
            let lookup = self
                .0
                .lookup_ip(absolute(host))
                .await
                .map_err(|e| classify(&e))?;
            Ok(lookup.iter().collect())
        })
    }
}

/// Answers from maps, for tests and for a server without DNS: a name missing from both maps
/// is NXDOMAIN; [`StaticResolver::fail`] makes a name's lookups fail temporarily.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    /// MX records by domain (lower case).
    pub mx: HashMap<String, Vec<(u16, String)>>,
    /// Address records by host (lower case).
    pub addresses: HashMap<String, Vec<IpAddr>>,
    /// Names whose lookups fail as a SERVFAIL would.
    pub servfail: Vec<String>,
}

impl StaticResolver {
    /// Adds an MX record.
    pub fn with_mx(mut self, domain: &str, preference: u16, exchange: &str) -> Self {
        self.mx
            .entry(domain.to_ascii_lowercase())
            .or_default()
            .push((preference, exchange.trim_end_matches('.').to_string()));
        self
    }

    /// Adds an address record.
    pub fn with_address(mut self, host: &str, ip: IpAddr) -> Self {
        self.addresses
            .entry(host.to_ascii_lowercase())
            .or_default()
            .push(ip);
        self
    }

    /// Makes lookups of `name` fail temporarily.
    pub fn fail(mut self, name: &str) -> Self {
        self.servfail.push(name.to_ascii_lowercase());
        self
    }

    fn exists(&self, name: &str) -> bool {
        self.mx.contains_key(name) || self.addresses.contains_key(name)
    }
}

impl Resolve for StaticResolver {
    fn mx<'a>(&'a self, domain: &'a str) -> Lookup<'a, Vec<(u16, String)>> {
        let key = domain.trim_end_matches('.').to_ascii_lowercase();
        let result = if self.servfail.contains(&key) {
            Err(DnsError::Temporary("SERVFAIL".into()))
        } else if let Some(list) = self.mx.get(&key) {
            Ok(list.clone())
        } else if self.exists(&key) {
            Err(DnsError::NoRecords)
        } else {
            Err(DnsError::NotFound)
        };
        Box::pin(std::future::ready(result))
    }

    fn addresses<'a>(&'a self, host: &'a str) -> Lookup<'a, Vec<IpAddr>> {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        let result = if self.servfail.contains(&key) {
            Err(DnsError::Temporary("SERVFAIL".into()))
        } else if let Some(list) = self.addresses.get(&key) {
            Ok(list.clone())
        } else if self.exists(&key) {
            Err(DnsError::NoRecords)
        } else {
            Err(DnsError::NotFound)
        };
        Box::pin(std::future::ready(result))
    }
}

/// Why a domain has no usable mail exchanger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// A null MX (RFC 7505): the domain accepts no mail; bounce `556 5.1.10`.
    NullMx,
    /// NXDOMAIN, or no MX and no address: bounce `5.1.2`.
    NotFound,
    /// A temporary name service failure: defer `4.4.3`.
    Temporary(String),
}

/// A small random number from the standard library's per-process random hash keys (no
/// dependency needed for shuffling a handful of MX hosts).
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// The mail exchangers of `domain` in the order to try them.
///
/// RFC 5321 §5.1: "the MX records [...] sorted by preference, lowest first"; "if there are
/// multiple destinations with the same preference and there is no clear reason to favor one
/// [...], the SMTP client SHOULD randomize them to spread the load". "If an empty list of MXs
/// is returned, the address is treated as if it was associated with an implicit MX RR, with a
/// preference of 0, pointing to that host." RFC 7505 §3: a domain whose single MX has "a
/// RDATA consisting of a zero-length label" advertises that it accepts no mail.
///
/// # Errors
///
/// [`RouteError`] as classified above.
pub async fn exchangers(resolver: &dyn Resolve, domain: &str) -> Result<Vec<String>, RouteError> {
    match resolver.mx(domain).await {
        Ok(mut list) if !list.is_empty() => {
            // RFC 7505 §4.3: a null MX among others is a misconfiguration; the sender treats
            // the domain as one that accepts no mail all the same.
            if list.iter().any(|(_, host)| host.is_empty()) {
                return Err(RouteError::NullMx);
            }
            let mut keyed: Vec<(u16, u64, String)> =
                list.drain(..).map(|(p, h)| (p, random(), h)).collect();
            keyed.sort();
            let mut hosts: Vec<String> = Vec::with_capacity(keyed.len());
            for (_, _, h) in keyed {
                if !hosts.contains(&h) {
                    hosts.push(h);
                }
            }
            Ok(hosts)
        }
        Ok(_) | Err(DnsError::NoRecords) => Ok(vec![domain.to_string()]),
        Err(DnsError::NotFound) => Err(RouteError::NotFound),
        Err(DnsError::Temporary(e)) => Err(RouteError::Temporary(e)),
    }
}

/// The addresses to connect to for `domain`, in order: every exchanger's addresses, then the
/// next exchanger's. A name that has no address is skipped (Postfix logs and goes on); when
/// none has any, the failure is temporary if any lookup failed temporarily, else permanent.
///
/// # Errors
///
/// As [`exchangers`], and when no exchanger has an address.
pub async fn destinations(
    resolver: &dyn Resolve,
    domain: &str,
) -> Result<Vec<(String, IpAddr)>, RouteError> {
    let hosts = exchangers(resolver, domain).await?;
    let mut out = Vec::new();
    let mut temporary = None;
    for host in hosts {
        match host.parse::<IpAddr>() {
            Ok(ip) => out.push((host, ip)),
            Err(_) => match resolver.addresses(&host).await {
                Ok(ips) => out.extend(ips.into_iter().map(|ip| (host.clone(), ip))),
                Err(DnsError::Temporary(e)) => temporary = Some(format!("{host}: {e}")),
                Err(DnsError::NotFound | DnsError::NoRecords) => {}
            },
        }
    }
    if out.is_empty() {
        return Err(match temporary {
            Some(e) => RouteError::Temporary(e),
            None => RouteError::NotFound,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn exchangers_in_preference_order_equal_ones_shuffled() {
        let r = StaticResolver::default()
            .with_mx("example.com", 20, "c.example.com")
            .with_mx("example.com", 10, "a.example.com")
            .with_mx("example.com", 10, "b.example.com")
            .with_mx("example.com", 30, "d.example.com.");
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..200 {
            let hosts = run(exchangers(&r, "example.com")).unwrap();
            assert_eq!(hosts.len(), 4);
            let mut top = hosts[..2].to_vec();
            top.sort();
            assert_eq!(top, ["a.example.com", "b.example.com"]);
            assert_eq!(hosts[2], "c.example.com");
            assert_eq!(hosts[3], "d.example.com");
            firsts.insert(hosts[0].clone());
        }
        // Both equal-preference hosts come first at some point (2^-199 odds of a false failure).
        assert_eq!(firsts.len(), 2);
    }

    #[test]
    fn null_mx_is_permanent() {
        let r = StaticResolver::default().with_mx("nomail.example", 0, ".");
        assert_eq!(
            run(exchangers(&r, "nomail.example")),
            Err(RouteError::NullMx)
        );
        assert_eq!(
            run(destinations(&r, "nomail.example")),
            Err(RouteError::NullMx)
        );
    }

    #[test]
    fn no_mx_falls_back_to_the_address_records() {
        let r = StaticResolver::default()
            .with_address("plain.example", ip("192.0.2.7"))
            .with_address("plain.example", ip("2001:db8::7"));
        assert_eq!(
            run(destinations(&r, "plain.example")).unwrap(),
            [
                ("plain.example".to_string(), ip("192.0.2.7")),
                ("plain.example".to_string(), ip("2001:db8::7"))
            ]
        );
    }

    #[test]
    fn destinations_follow_the_exchangers_and_skip_hosts_without_address() {
        let r = StaticResolver::default()
            .with_mx("example.com", 10, "mx1.example.com")
            .with_mx("example.com", 20, "gone.example.com")
            .with_mx("example.com", 30, "mx3.example.com")
            .with_address("mx1.example.com", ip("192.0.2.1"))
            .with_address("mx3.example.com", ip("192.0.2.3"));
        let d = run(destinations(&r, "example.com")).unwrap();
        let ips: Vec<IpAddr> = d.iter().map(|(_, ip)| *ip).collect();
        assert_eq!(ips, [ip("192.0.2.1"), ip("192.0.2.3")]);
    }

    #[test]
    fn failure_classes() {
        let r = StaticResolver::default()
            .fail("broken.example")
            .with_mx("lame.example", 10, "nowhere.example")
            .with_mx("flaky.example", 10, "broken.example");
        assert_eq!(
            run(destinations(&r, "nxdomain.example")),
            Err(RouteError::NotFound)
        );
        assert!(matches!(
            run(destinations(&r, "broken.example")),
            Err(RouteError::Temporary(_))
        ));
        assert_eq!(
            run(destinations(&r, "lame.example")),
            Err(RouteError::NotFound)
        );
        assert!(matches!(
            run(destinations(&r, "flaky.example")),
            Err(RouteError::Temporary(_))
        ));
    }
}
