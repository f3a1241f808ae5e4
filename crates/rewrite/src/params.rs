//! The main.cf parameters that rewriting and resolution read, with Postfix's names and
//! defaults (Postfix 3.7, `compatibility_level` 2 or later), and a reader for main.cf text.

use std::collections::HashMap;
use std::path::Path;

use crate::error::TableError;
use crate::table::{Maps, Table};

/// A list of domains as in `mydestination` or `relay_domains`: names, `.parent` entries and
/// tables (`hash:/etc/postfix/domains`, looked up by domain name).
#[derive(Debug, Clone, Default)]
pub struct DomainList {
    names: Vec<String>,
    maps: Maps,
    /// Whether `example.com` also matches `sub.example.com` (Postfix's
    /// `parent_domain_matches_subdomains`, which by default holds `relay_domains` but not
    /// `mydestination` or the virtual domain lists).
    pub parent_matches_subdomains: bool,
}

impl DomainList {
    /// Parses a main.cf value (already `$`-expanded): names and `type:table` entries, separated
    /// by commas or whitespace.
    ///
    /// # Errors
    ///
    /// A table that cannot be opened.
    pub fn parse(value: &str, parent_matches_subdomains: bool) -> Result<Self, TableError> {
        let mut list = DomainList {
            parent_matches_subdomains,
            ..Default::default()
        };
        for item in split_list(value) {
            if item.contains(':') && !item.starts_with('[') {
                list.maps.push(Table::open(item, false)?);
            } else {
                list.names.push(item.to_ascii_lowercase());
            }
        }
        Ok(list)
    }

    /// A list of plain names.
    pub fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        DomainList {
            names: names.into_iter().map(str::to_ascii_lowercase).collect(),
            ..Default::default()
        }
    }

    /// Adds the keys of a table as domains (as `virtual_alias_domains = $virtual_alias_maps`).
    pub fn push_maps(&mut self, maps: &Maps) {
        for t in maps.tables() {
            self.maps.push(std::sync::Arc::clone(t));
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.maps.is_empty()
    }

    /// Whether `domain` is in the list (without regard to case).
    pub fn matches(&self, domain: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        let lowered;
        let domain = if domain.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = domain.to_ascii_lowercase();
            lowered.as_str()
        } else {
            domain
        };
        let domain = domain.trim_end_matches('.');
        let mut candidate = domain;
        let mut first = true;
        loop {
            for name in &self.names {
                if let Some(parent) = name.strip_prefix('.') {
                    if !first && candidate == parent {
                        return true;
                    }
                } else if name == candidate && (first || self.parent_matches_subdomains) {
                    return true;
                }
            }
            if self.maps.find(candidate, true).is_some()
                && (first || self.parent_matches_subdomains)
            {
                return true;
            }
            if !first
                && !self.maps.is_empty()
                && self.maps.find(&format!(".{candidate}"), true).is_some()
            {
                return true;
            }
            match candidate.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => candidate = parent,
                _ => return false,
            }
            first = false;
        }
    }
}

/// Splits a main.cf list value on commas and whitespace.
pub(crate) fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// The parameters, named as in main.cf. Build with [`Params::new`] (defaults for a host name)
/// or [`Params::from_main_cf`].
#[derive(Debug, Clone)]
pub struct Params {
    /// `myhostname`: this host's fully qualified name.
    pub myhostname: String,
    /// `mydomain`: default `$myhostname` minus its first label (`localdomain` when it has one).
    pub mydomain: String,
    /// `myorigin` (default `$myhostname`): appended to bare names.
    pub myorigin: String,
    /// `mydestination` (default `$myhostname, localhost.$mydomain, localhost`): local domains.
    pub mydestination: DomainList,
    /// `inet_interfaces` and `proxy_interfaces`: `[address]` literals that are local.
    pub interfaces: Vec<String>,
    /// `relay_domains` (default empty).
    pub relay_domains: DomainList,
    /// `virtual_alias_domains` (default `$virtual_alias_maps`).
    pub virtual_alias_domains: DomainList,
    /// `virtual_mailbox_domains` (default `$virtual_mailbox_maps`).
    pub virtual_mailbox_domains: DomainList,
    /// `recipient_delimiter` (default empty: no extensions); every character is a delimiter.
    pub recipient_delimiter: String,
    /// `propagate_unmatched_extensions` holds `canonical`.
    pub propagate_canonical: bool,
    /// `propagate_unmatched_extensions` holds `virtual`.
    pub propagate_virtual: bool,
    /// `propagate_unmatched_extensions` holds `alias`.
    pub propagate_alias: bool,
    /// `masquerade_domains` (default empty); a `!domain` entry stops masquerading.
    pub masquerade_domains: Vec<String>,
    /// `masquerade_exceptions` (default empty): local parts never masqueraded.
    pub masquerade_exceptions: Vec<String>,
    /// `masquerade_classes` holds `envelope_sender`.
    pub masquerade_envelope_sender: bool,
    /// `masquerade_classes` holds `envelope_recipient`.
    pub masquerade_envelope_recipient: bool,
    /// `relayhost` (default empty): next hop for non-local mail, `[host]:port` meaning no MX.
    pub relayhost: String,
    /// `default_transport` (default `smtp`).
    pub default_transport: String,
    /// `local_transport` (default `local:$myhostname`).
    pub local_transport: String,
    /// `virtual_transport` (default `virtual`).
    pub virtual_transport: String,
    /// `relay_transport` (default `relay`).
    pub relay_transport: String,
    /// `append_at_myorigin` (default yes).
    pub append_at_myorigin: bool,
    /// `virtual_alias_recursion_limit` (default 1000).
    pub virtual_alias_recursion_limit: usize,
    /// `virtual_alias_expansion_limit` (default 1000).
    pub virtual_alias_expansion_limit: usize,
    /// `hopcount_limit` (default 50).
    pub hopcount_limit: usize,
    /// `header_size_limit` (default 102400): longer headers are truncated.
    pub header_size_limit: usize,
    /// `owner_request_special` (default yes): `owner-x` and `x-request` are not split at `-`.
    pub owner_request_special: bool,
    /// `show_user_unknown_table_name` (default yes).
    pub show_user_unknown_table_name: bool,
    /// `canonical_maps`.
    pub canonical_maps: Maps,
    /// `sender_canonical_maps`.
    pub sender_canonical_maps: Maps,
    /// `recipient_canonical_maps`.
    pub recipient_canonical_maps: Maps,
    /// `virtual_alias_maps`.
    pub virtual_alias_maps: Maps,
    /// `virtual_mailbox_maps`.
    pub virtual_mailbox_maps: Maps,
    /// `transport_maps`.
    pub transport_maps: Maps,
    /// `relocated_maps`.
    pub relocated_maps: Maps,
    /// `alias_maps` (aliases(5) tables).
    pub alias_maps: Maps,
    /// `local_recipient_maps`: `None` when empty, which turns the local recipient check off.
    pub local_recipient_maps: Option<Maps>,
    /// `relay_recipient_maps`: `None` when empty (every relay recipient is accepted).
    pub relay_recipient_maps: Option<Maps>,
    /// `header_checks`.
    pub header_checks: Maps,
}

/// `mydomain` as Postfix derives it from `myhostname`.
pub fn mydomain_of(myhostname: &str) -> String {
    match myhostname.split_once('.') {
        Some((_, rest)) if rest.contains('.') || !rest.is_empty() => rest.to_string(),
        _ => "localdomain".to_string(),
    }
}

impl Params {
    /// The defaults for a host named `myhostname`. `local_recipient_maps` starts empty (no
    /// check) because the Unix password file is the application's business; set it.
    pub fn new(myhostname: &str) -> Self {
        let myhostname = myhostname.to_ascii_lowercase();
        let mydomain = mydomain_of(&myhostname);
        Params {
            mydestination: DomainList::of([
                myhostname.as_str(),
                &format!("localhost.{mydomain}"),
                "localhost",
            ]),
            myorigin: myhostname.clone(),
            local_transport: format!("local:{myhostname}"),
            myhostname,
            mydomain,
            interfaces: Vec::new(),
            relay_domains: DomainList {
                parent_matches_subdomains: true,
                ..Default::default()
            },
            virtual_alias_domains: DomainList::default(),
            virtual_mailbox_domains: DomainList::default(),
            recipient_delimiter: String::new(),
            propagate_canonical: true,
            propagate_virtual: true,
            propagate_alias: false,
            masquerade_domains: Vec::new(),
            masquerade_exceptions: Vec::new(),
            masquerade_envelope_sender: true,
            masquerade_envelope_recipient: false,
            relayhost: String::new(),
            default_transport: "smtp".into(),
            virtual_transport: "virtual".into(),
            relay_transport: "relay".into(),
            append_at_myorigin: true,
            virtual_alias_recursion_limit: 1000,
            virtual_alias_expansion_limit: 1000,
            hopcount_limit: 50,
            header_size_limit: 102_400,
            owner_request_special: true,
            show_user_unknown_table_name: true,
            canonical_maps: Maps::new(),
            sender_canonical_maps: Maps::new(),
            recipient_canonical_maps: Maps::new(),
            virtual_alias_maps: Maps::new(),
            virtual_mailbox_maps: Maps::new(),
            transport_maps: Maps::new(),
            relocated_maps: Maps::new(),
            alias_maps: Maps::new(),
            local_recipient_maps: None,
            relay_recipient_maps: None,
            header_checks: Maps::new(),
        }
    }

    /// Reads main.cf text: `name = value` lines (with the logical-line rules of the table
    /// files), `$name` and `${name}` expanded against the other settings and the defaults, and
    /// opens the tables the settings name. Unknown names are kept for expansion and otherwise
    /// ignored, as Postfix does. Postfix's conditional forms (`${name?value}`, `${name:value}`,
    /// `${{a} == {b} ? ...}`) are not interpreted: write the value itself. `myhostname` is the
    /// value used when main.cf does not set it (Postfix asks the system).
    ///
    /// # Errors
    ///
    /// A line without `=` (file `path` and line named), a table that cannot be opened.
    pub fn from_main_cf(path: &Path, text: &str, myhostname: &str) -> Result<Self, TableError> {
        let mut raw: HashMap<String, String> = HashMap::new();
        crate::table::source::for_each_logical_line(path, text, |line, logical| {
            let Some((name, value)) = logical.split_once('=') else {
                return Err(TableError::syntax(path, line, "expected name = value"));
            };
            raw.insert(name.trim().to_string(), value.trim().to_string());
            Ok(())
        })?;
        let defaults: HashMap<&str, &str> = [
            ("myhostname", myhostname),
            ("mydomain", ""),
            ("myorigin", "$myhostname"),
            (
                "mydestination",
                "$myhostname, localhost.$mydomain, localhost",
            ),
            ("inet_interfaces", "all"),
            ("proxy_interfaces", ""),
            ("relay_domains", ""),
            ("virtual_alias_maps", ""),
            ("virtual_alias_domains", "$virtual_alias_maps"),
            ("virtual_mailbox_maps", ""),
            ("virtual_mailbox_domains", "$virtual_mailbox_maps"),
            ("recipient_delimiter", ""),
            ("propagate_unmatched_extensions", "canonical, virtual"),
            ("masquerade_domains", ""),
            ("masquerade_exceptions", ""),
            (
                "masquerade_classes",
                "envelope_sender, header_sender, header_recipient",
            ),
            ("relayhost", ""),
            ("default_transport", "smtp"),
            ("local_transport", "local:$myhostname"),
            ("virtual_transport", "virtual"),
            ("relay_transport", "relay"),
            ("append_at_myorigin", "yes"),
            ("virtual_alias_recursion_limit", "1000"),
            ("virtual_alias_expansion_limit", "1000"),
            ("hopcount_limit", "50"),
            ("header_size_limit", "102400"),
            ("owner_request_special", "yes"),
            ("show_user_unknown_table_name", "yes"),
            ("canonical_maps", ""),
            ("sender_canonical_maps", ""),
            ("recipient_canonical_maps", ""),
            ("transport_maps", ""),
            ("relocated_maps", ""),
            ("alias_maps", "hash:/etc/aliases"),
            (
                "local_recipient_maps",
                "proxy:unix:passwd.byname $alias_maps",
            ),
            ("relay_recipient_maps", ""),
            ("header_checks", ""),
        ]
        .into_iter()
        .collect();
        let get = |name: &str| -> String {
            let mut seen = Vec::new();
            expand(name, &raw, &defaults, &mut seen)
        };
        let myhostname = get("myhostname");
        let mut p = Params::new(&myhostname);
        if raw.contains_key("mydomain") {
            p.mydomain = get("mydomain");
        }
        raw.entry("mydomain".into())
            .or_insert_with(|| p.mydomain.clone());
        let get = |name: &str| -> String {
            let mut seen = Vec::new();
            expand(name, &raw, &defaults, &mut seen)
        };
        let yes = |name: &str| get(name).eq_ignore_ascii_case("yes");
        let num = |name: &str, d: usize| get(name).parse().unwrap_or(d);
        let maps = |name: &str| Maps::open(&get(name), name == "alias_maps");
        p.myorigin = get("myorigin").to_ascii_lowercase();
        p.mydestination = DomainList::parse(&get("mydestination"), false)?;
        p.interfaces = split_list(&get("inet_interfaces"))
            .chain(split_list(&get("proxy_interfaces")))
            .map(str::to_string)
            .collect();
        p.relay_domains = DomainList::parse(&get("relay_domains"), true)?;
        p.virtual_alias_maps = maps("virtual_alias_maps")?;
        p.virtual_mailbox_maps = maps("virtual_mailbox_maps")?;
        // The default `$virtual_alias_maps` names the tables just opened: share them rather
        // than compiling a second copy.
        p.virtual_alias_domains = if get("virtual_alias_domains") == get("virtual_alias_maps") {
            let mut l = DomainList::default();
            l.push_maps(&p.virtual_alias_maps);
            l
        } else {
            DomainList::parse(&get("virtual_alias_domains"), false)?
        };
        p.virtual_mailbox_domains = if get("virtual_mailbox_domains") == get("virtual_mailbox_maps")
        {
            let mut l = DomainList::default();
            l.push_maps(&p.virtual_mailbox_maps);
            l
        } else {
            DomainList::parse(&get("virtual_mailbox_domains"), false)?
        };
        p.recipient_delimiter = get("recipient_delimiter");
        let prop = get("propagate_unmatched_extensions");
        let prop: Vec<&str> = split_list(&prop).collect();
        p.propagate_canonical = prop.contains(&"canonical");
        p.propagate_virtual = prop.contains(&"virtual");
        p.propagate_alias = prop.contains(&"alias");
        p.masquerade_domains = split_list(&get("masquerade_domains"))
            .map(str::to_ascii_lowercase)
            .collect();
        p.masquerade_exceptions = split_list(&get("masquerade_exceptions"))
            .map(str::to_ascii_lowercase)
            .collect();
        let classes = get("masquerade_classes");
        p.masquerade_envelope_sender = split_list(&classes).any(|c| c == "envelope_sender");
        p.masquerade_envelope_recipient = split_list(&classes).any(|c| c == "envelope_recipient");
        p.relayhost = get("relayhost");
        p.default_transport = get("default_transport");
        p.local_transport = get("local_transport");
        p.virtual_transport = get("virtual_transport");
        p.relay_transport = get("relay_transport");
        p.append_at_myorigin = yes("append_at_myorigin");
        p.virtual_alias_recursion_limit = num("virtual_alias_recursion_limit", 1000);
        p.virtual_alias_expansion_limit = num("virtual_alias_expansion_limit", 1000);
        p.hopcount_limit = num("hopcount_limit", 50);
        p.header_size_limit = num("header_size_limit", 102_400);
        p.owner_request_special = yes("owner_request_special");
        p.show_user_unknown_table_name = yes("show_user_unknown_table_name");
        p.canonical_maps = maps("canonical_maps")?;
        p.sender_canonical_maps = maps("sender_canonical_maps")?;
        p.recipient_canonical_maps = maps("recipient_canonical_maps")?;
        p.transport_maps = maps("transport_maps")?;
        p.relocated_maps = maps("relocated_maps")?;
        p.alias_maps = maps("alias_maps")?;
        let lrm = get("local_recipient_maps");
        p.local_recipient_maps = if lrm.trim().is_empty() {
            None
        } else {
            let mut m = Maps::new();
            for spec in split_list(&lrm) {
                m.push(Table::open(spec, true)?);
            }
            Some(m)
        };
        let rrm = get("relay_recipient_maps");
        p.relay_recipient_maps = if rrm.trim().is_empty() {
            None
        } else {
            Some(Maps::open(&rrm, false)?)
        };
        p.header_checks = maps("header_checks")?;
        Ok(p)
    }

    /// Whether `domain` is local: it matches `mydestination`, or it is an address literal of
    /// `inet_interfaces`/`proxy_interfaces` (with `all` or `loopback-only`, loopback literals).
    pub fn is_local_domain(&self, domain: &str) -> bool {
        if let Some(ip) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            let ip = ip.strip_prefix("IPv6:").unwrap_or(ip);
            return self.interfaces.iter().any(|i| {
                i == ip
                    || ((i == "all" || i == "loopback-only")
                        && ip
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|a| a.is_loopback()))
            });
        }
        self.mydestination.matches(domain)
    }
}

fn expand(
    name: &str,
    raw: &HashMap<String, String>,
    defaults: &HashMap<&str, &str>,
    seen: &mut Vec<String>,
) -> String {
    if seen.iter().any(|s| s == name) || seen.len() > 100 {
        return String::new();
    }
    let Some(value) = raw
        .get(name)
        .map(String::as_str)
        .or_else(|| defaults.get(name).copied())
    else {
        return String::new();
    };
    seen.push(name.to_string());
    let mut out = String::new();
    let mut it = value.chars().peekable();
    while let Some(c) = it.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut var = String::new();
        match it.peek() {
            Some('$') => {
                it.next();
                out.push('$');
                continue;
            }
            Some(&open @ ('{' | '(')) => {
                it.next();
                let close = if open == '{' { '}' } else { ')' };
                for c in it.by_ref() {
                    if c == close {
                        break;
                    }
                    var.push(c);
                }
            }
            _ => {
                while let Some(&c) = it.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        var.push(c);
                        it.next();
                    } else {
                        break;
                    }
                }
            }
        }
        out.push_str(&expand(&var, raw, defaults, seen));
    }
    seen.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mydomain_from_myhostname() {
        assert_eq!(mydomain_of("mail.example.com"), "example.com");
        assert_eq!(mydomain_of("vm"), "localdomain");
        let p = Params::new("mx.example.org");
        assert!(p.is_local_domain("MX.example.org"));
        assert!(p.is_local_domain("localhost.example.org"));
        assert!(p.is_local_domain("localhost"));
        assert!(!p.is_local_domain("example.org"));
        assert_eq!(p.local_transport, "local:mx.example.org");
    }

    #[test]
    fn main_cf_expansion() {
        let p = Params::from_main_cf(
            Path::new("main.cf"),
            "myhostname = host.example.net\nmydestination = $myhostname, ${mydomain}\n  other.test\nrelayhost = [gw.example]:2525\nlocal_recipient_maps =\nalias_maps =\n",
            "ignored",
        )
        .unwrap();
        assert_eq!(p.mydomain, "example.net");
        assert!(p.is_local_domain("example.net"));
        assert!(p.is_local_domain("other.test"));
        assert!(p.is_local_domain("host.example.net"));
        assert_eq!(p.relayhost, "[gw.example]:2525");
        assert!(p.local_recipient_maps.is_none());
        assert!(!p.relay_domains.matches("x.y"));
    }

    #[test]
    fn main_cf_errors_name_file_and_line() {
        let e = Params::from_main_cf(Path::new("main.cf"), "myhostname = a.b\nbogus line\n", "x")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "main.cf, line 2: expected name = value");
        let e = Params::from_main_cf(Path::new("main.cf"), "virtual_alias_maps = ldap:/x\n", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsupported table type \"ldap\""), "{e}");
    }

    #[test]
    fn relay_domains_match_subdomains() {
        let l = DomainList::parse("example.com, .only-subs.test", true).unwrap();
        assert!(l.matches("example.com"));
        assert!(l.matches("a.b.example.com"));
        assert!(!l.matches("only-subs.test"));
        assert!(l.matches("x.only-subs.test"));
        let l = DomainList::parse("example.com", false).unwrap();
        assert!(!l.matches("a.example.com"));
    }
}
