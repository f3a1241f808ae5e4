//! Resolution, as Postfix's trivial-rewrite: which address class a recipient's domain is in,
//! and so which transport and next hop deliver it; `transport_maps`, `relayhost`, relocated
//! users; and the valid-recipient check that smtpd makes per class, with Postfix's replies.
//!
//! | class | domain in | transport | next hop |
//! |---|---|---|---|
//! | local | `mydestination`, `inet_interfaces`, `proxy_interfaces` | `local_transport` (`local:$myhostname`) | from the transport, else `$myhostname` |
//! | virtual alias | `virtual_alias_domains` | `error` | `5.1.1 User unknown in virtual alias table` |
//! | virtual mailbox | `virtual_mailbox_domains` | `virtual_transport` (`virtual`) | from the transport, else the domain |
//! | relay | `relay_domains` | `relay_transport` (`relay`) | from the transport, else `relayhost`, else the domain |
//! | default | anything else | `default_transport` (`smtp`) | from the transport, else `relayhost`, else the domain |
//!
//! Then `transport_maps` (not for the virtual alias class) is searched for the recipient
//! (`user+ext@domain`, `user@domain`), the domain, each parent as `.parent`, and `*`; an
//! answer `transport:nexthop` replaces the transport and resets the next hop to the domain
//! unless it names one; `:nexthop` keeps the transport. Last, a `relocated_maps` entry turns
//! the result into `error` with `5.1.6 User has moved to ...`.

use mailroom_smtp_proto::{Mailbox, Reply, ReplyCode};

use crate::address::{internal_form, split_domain, strip_extension};
use crate::lookup;
use crate::params::Params;
use crate::table::Maps;

/// The address class of a recipient's domain (trivial-rewrite's `RESOLVE_CLASS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// The domain is one of this host's (`mydestination`).
    Local,
    /// A virtual alias domain: every address must be in `virtual_alias_maps`.
    VirtualAlias,
    /// A virtual mailbox domain (`virtual_mailbox_domains`).
    VirtualMailbox,
    /// A domain this host relays for (`relay_domains`).
    Relay,
    /// Any other domain.
    Default,
}

impl AddressClass {
    fn table_name(self) -> &'static str {
        match self {
            AddressClass::Local => "local recipient table",
            AddressClass::VirtualAlias => "virtual alias table",
            AddressClass::VirtualMailbox => "virtual mailbox table",
            AddressClass::Relay => "relay recipient table",
            AddressClass::Default => "recipient table",
        }
    }
}

/// What resolution decided for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The address class of the recipient's domain.
    pub class: AddressClass,
    /// The transport (a master.cf service name: `local`, `smtp`, `relay`, `virtual`, `error`,
    /// `lmtp`, ...).
    pub transport: String,
    /// The next hop: a domain, `[host]`, `[host]:port`, `host:port`, `inet:...`, or for the
    /// `error` transport the text of the error.
    pub nexthop: String,
    /// The recipient, unchanged (trivial-rewrite does not rewrite in resolve).
    pub recipient: Mailbox,
    /// Whether a `relocated_maps` entry applied.
    pub relocated: bool,
}

/// A next hop split into host and port, and whether MX records are to be looked up
/// (`[host]` and `[host]:port` mean no MX lookup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// The host or domain, without brackets.
    pub host: String,
    /// The port or service after the host, if any.
    pub port: Option<String>,
    /// Whether the SMTP client looks up MX records for `host` (false for `[host]`).
    pub mx_lookup: bool,
}

impl NextHop {
    /// Parses `example.com`, `example.com:2525`, `[mx.example.com]`, `[mx.example.com]:2525`,
    /// `[192.0.2.1]`, `[IPv6:2001:db8::1]:25`; a leading `inet:` is ignored.
    pub fn parse(nexthop: &str) -> NextHop {
        let s = nexthop.strip_prefix("inet:").unwrap_or(nexthop);
        if let Some(rest) = s.strip_prefix('[')
            && let Some(close) = rest.find(']')
        {
            let host = &rest[..close];
            let host = host.strip_prefix("IPv6:").unwrap_or(host);
            let port = rest[close + 1..].strip_prefix(':').map(str::to_string);
            return NextHop {
                host: host.to_string(),
                port,
                mx_lookup: false,
            };
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => NextHop {
                host: host.to_string(),
                port: Some(port.to_string()),
                mx_lookup: true,
            },
            _ => NextHop {
                host: s.to_string(),
                port: None,
                mx_lookup: true,
            },
        }
    }
}

impl Resolved {
    /// The next hop split into host, port and whether MX records are looked up.
    pub fn next_hop(&self) -> NextHop {
        NextHop::parse(&self.nexthop)
    }
}

fn split_transport(spec: &str) -> (&str, &str) {
    spec.split_once(':').unwrap_or((spec, ""))
}

/// The class of `domain`.
pub fn classify(params: &Params, domain: &str) -> AddressClass {
    if params.is_local_domain(domain) {
        AddressClass::Local
    } else if params.virtual_alias_domains.matches(domain) {
        AddressClass::VirtualAlias
    } else if params.virtual_mailbox_domains.matches(domain) {
        AddressClass::VirtualMailbox
    } else if params.relay_domains.matches(domain) {
        AddressClass::Relay
    } else {
        AddressClass::Default
    }
}

/// Resolves a recipient (in canonical form: see [`crate::canonical`]) to its class, transport
/// and next hop.
pub fn resolve(params: &Params, recipient: Mailbox) -> Resolved {
    let address = internal_form(&recipient);
    let domain = match recipient.host() {
        mailroom_smtp_proto::Host::Domain(d)
            if !d.as_str().bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            d.as_str().to_string()
        }
        host => host.to_string().to_lowercase(),
    };
    let class = classify(params, &domain);
    let (mut transport, mut nexthop) = match class {
        AddressClass::Local => {
            let (t, hop) = split_transport(&params.local_transport);
            let hop = if hop.is_empty() {
                params.myhostname.as_str()
            } else {
                hop
            };
            (t.to_string(), hop.to_string())
        }
        AddressClass::VirtualAlias => (
            "error".to_string(),
            if params.show_user_unknown_table_name {
                "5.1.1 User unknown in virtual alias table".to_string()
            } else {
                "5.1.1 User unknown".to_string()
            },
        ),
        AddressClass::VirtualMailbox => {
            let (t, hop) = split_transport(&params.virtual_transport);
            let hop = if hop.is_empty() { domain.as_str() } else { hop };
            (t.to_string(), hop.to_string())
        }
        AddressClass::Relay | AddressClass::Default => {
            let spec = if class == AddressClass::Relay {
                &params.relay_transport
            } else {
                &params.default_transport
            };
            let (t, hop) = split_transport(spec);
            let hop = if !hop.is_empty() {
                hop
            } else if !params.relayhost.is_empty() {
                params.relayhost.as_str()
            } else {
                domain.as_str()
            };
            (t.to_string(), hop.to_string())
        }
    };
    if class != AddressClass::VirtualAlias
        && let Some(entry) = transport_lookup(params, &params.transport_maps, &address, &domain)
    {
        let (t, hop) = split_transport(&entry);
        if t.is_empty() {
            if !hop.is_empty() {
                nexthop = hop.to_string();
            }
        } else {
            transport = t.to_string();
            nexthop = if !hop.is_empty() {
                hop.to_string()
            } else if t == "error" || t == "retry" {
                "Address is undeliverable".to_string()
            } else {
                domain.clone()
            };
        }
    }
    let mut relocated = false;
    if !params.relocated_maps.is_empty()
        && let Some(found) = lookup::find(&params.relocated_maps, params, &address)
    {
        transport = "error".to_string();
        nexthop = format!("5.1.6 User has moved to {}", found.value);
        relocated = true;
    }
    Resolved {
        class,
        transport,
        nexthop,
        recipient,
        relocated,
    }
}

/// transport(5)'s search: the address, the address without extension, the domain, each
/// parent as `.parent`, `*`.
fn transport_lookup(params: &Params, maps: &Maps, address: &str, domain: &str) -> Option<String> {
    if maps.is_empty() {
        return None;
    }
    if let Some(v) = maps.find(address, false) {
        return Some(v.into_owned());
    }
    if let Some((bare, _)) = strip_extension(address, params)
        && let Some(v) = maps.find(&bare, true)
    {
        return Some(v.into_owned());
    }
    if let Some(v) = maps.find(domain, true) {
        return Some(v.into_owned());
    }
    let mut parent = domain;
    while let Some((_, rest)) = parent.split_once('.') {
        if rest.is_empty() {
            break;
        }
        if let Some(v) = maps.find(&format!(".{rest}"), true) {
            return Some(v.into_owned());
        }
        parent = rest;
    }
    maps.find("*", true).map(|v| v.into_owned())
}

/// Why a recipient is refused at RCPT time, with Postfix's reply text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not in the recipient table of its class.
    UserUnknown {
        /// The class whose table was checked.
        class: AddressClass,
    },
    /// Listed in `relocated_maps`.
    Relocated {
        /// The new contact information from the table.
        moved_to: String,
    },
}

impl Rejection {
    /// The reply, as Postfix's smtpd sends it for `recipient` (the address as the client gave
    /// it): `550 5.1.1 <x>: Recipient address rejected: User unknown in local recipient table`.
    pub fn reply(&self, params: &Params, recipient: &str) -> Reply {
        let text = match self {
            Rejection::UserUnknown { class } => {
                if params.show_user_unknown_table_name {
                    format!(
                        "5.1.1 <{recipient}>: Recipient address rejected: User unknown in {}",
                        class.table_name()
                    )
                } else {
                    format!("5.1.1 <{recipient}>: Recipient address rejected: User unknown")
                }
            }
            Rejection::Relocated { moved_to } => format!(
                "5.1.6 <{recipient}>: Recipient address rejected: User has moved to {moved_to}"
            ),
        };
        Reply::new(ReplyCode::MAILBOX_UNAVAILABLE, &sanitize(&text))
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The valid-recipient check smtpd makes (`smtpd_reject_unlisted_recipient`): a recipient in
/// `virtual_alias_maps` is valid whatever its class; otherwise a local recipient must be in
/// `local_recipient_maps` (when set), a virtual alias domain recipient in
/// `virtual_alias_maps`, a virtual mailbox recipient in `virtual_mailbox_maps`, a relay
/// recipient in `relay_recipient_maps` (when set). `relocated_maps` is checked first.
///
/// # Errors
///
/// The [`Rejection`], whose [`Rejection::reply`] is Postfix's reply.
pub fn check_recipient(params: &Params, recipient: &Mailbox) -> Result<(), Rejection> {
    let address = internal_form(recipient);
    if let Some(found) = lookup::find(&params.relocated_maps, params, &address) {
        return Err(Rejection::Relocated {
            moved_to: found.value.into_owned(),
        });
    }
    if lookup::find(&params.virtual_alias_maps, params, &address).is_some() {
        return Ok(());
    }
    let (_, domain) = split_domain(&address);
    let class = classify(params, domain.unwrap_or(""));
    let known = |maps: &Maps| lookup::find(maps, params, &address).is_some();
    let ok = match class {
        AddressClass::Local => params.local_recipient_maps.as_ref().is_none_or(known),
        AddressClass::VirtualAlias => false,
        AddressClass::VirtualMailbox => known(&params.virtual_mailbox_maps),
        AddressClass::Relay => params.relay_recipient_maps.as_ref().is_none_or(known),
        AddressClass::Default => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Rejection::UserUnknown { class })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::DomainList;
    use crate::table::{HashTable, Table};

    fn maps(pairs: &[(&str, &str)]) -> Maps {
        Maps::from(Table::Hash(HashTable::from_pairs(pairs.iter().copied())))
    }

    fn r(p: &Params, a: &str) -> (AddressClass, String, String) {
        let x = resolve(p, a.parse().unwrap());
        (x.class, x.transport, x.nexthop)
    }

    #[test]
    fn classes_and_defaults() {
        let mut p = Params::new("mail.example.com");
        p.virtual_alias_domains = DomainList::of(["alias.test"]);
        p.virtual_mailbox_domains = DomainList::of(["vmail.test"]);
        p.relay_domains = DomainList::parse("relay.test", true).unwrap();
        use AddressClass::*;
        assert_eq!(
            r(&p, "joe@mail.example.com"),
            (Local, "local".into(), "mail.example.com".into())
        );
        assert_eq!(
            r(&p, "joe@localhost"),
            (Local, "local".into(), "mail.example.com".into())
        );
        assert_eq!(
            r(&p, "joe@alias.test"),
            (
                VirtualAlias,
                "error".into(),
                "5.1.1 User unknown in virtual alias table".into()
            )
        );
        assert_eq!(
            r(&p, "joe@vmail.test"),
            (VirtualMailbox, "virtual".into(), "vmail.test".into())
        );
        assert_eq!(
            r(&p, "joe@sub.relay.test"),
            (Relay, "relay".into(), "sub.relay.test".into())
        );
        assert_eq!(
            r(&p, "joe@else.test"),
            (Default, "smtp".into(), "else.test".into())
        );
        p.relayhost = "[gw.example.com]:2525".into();
        assert_eq!(
            r(&p, "joe@else.test"),
            (Default, "smtp".into(), "[gw.example.com]:2525".into())
        );
        assert_eq!(
            r(&p, "joe@relay.test"),
            (Relay, "relay".into(), "[gw.example.com]:2525".into())
        );
        let hop = resolve(&p, "joe@else.test".parse().unwrap()).next_hop();
        assert_eq!(
            (hop.host.as_str(), hop.port.as_deref(), hop.mx_lookup),
            ("gw.example.com", Some("2525"), false)
        );
    }

    #[test]
    fn transport_maps_precedence() {
        let mut p = Params::new("mail.example.com");
        p.recipient_delimiter = "+".into();
        p.relayhost = "[gw.example.com]".into();
        p.transport_maps = maps(&[
            ("vip@example.org", "smtp:[vip-mx.example.org]"),
            ("example.org", "lmtp:inet:[127.0.0.1]:24"),
            (".example.org", "smtp:[sub-mx.example.org]"),
            ("plain.test", "smtp:"),
            ("hop.test", ":[hop.example]"),
            ("*", "slow:"),
        ]);
        assert_eq!(r(&p, "vip+x@example.org").2, "[vip-mx.example.org]");
        assert_eq!(r(&p, "joe@example.org").1, "lmtp");
        assert_eq!(r(&p, "joe@example.org").2, "inet:[127.0.0.1]:24");
        assert_eq!(r(&p, "joe@a.b.example.org").2, "[sub-mx.example.org]");
        assert_eq!(r(&p, "joe@plain.test").2, "plain.test");
        assert_eq!(r(&p, "joe@hop.test").1, "smtp");
        assert_eq!(r(&p, "joe@hop.test").2, "[hop.example]");
        assert_eq!(r(&p, "joe@other.test").1, "slow");
        assert_eq!(r(&p, "joe@other.test").2, "other.test");
    }

    #[test]
    fn relocated_and_recipient_checks() {
        let mut p = Params::new("mail.example.com");
        p.relocated_maps = maps(&[("old@mail.example.com", "new@elsewhere.test")]);
        p.local_recipient_maps = Some(maps(&[("bob", "x")]));
        p.virtual_mailbox_domains = DomainList::of(["vmail.test"]);
        p.virtual_mailbox_maps = maps(&[("ann@vmail.test", "vmail.test/ann/")]);
        let x = resolve(&p, "old@mail.example.com".parse().unwrap());
        assert_eq!(
            (x.transport.as_str(), x.nexthop.as_str()),
            ("error", "5.1.6 User has moved to new@elsewhere.test")
        );
        let reply = |a: &str| {
            check_recipient(&p, &a.parse().unwrap()).map_err(|e| e.reply(&p, a).to_string())
        };
        assert_eq!(reply("bob@mail.example.com"), Ok(()));
        assert_eq!(
            reply("nobody@mail.example.com").unwrap_err().trim_end(),
            "550 5.1.1 <nobody@mail.example.com>: Recipient address rejected: User unknown in local recipient table"
        );
        assert_eq!(reply("ann@vmail.test"), Ok(()));
        assert_eq!(
            reply("zed@vmail.test").unwrap_err().trim_end(),
            "550 5.1.1 <zed@vmail.test>: Recipient address rejected: User unknown in virtual mailbox table"
        );
        assert_eq!(
            reply("old@mail.example.com").unwrap_err().trim_end(),
            "550 5.1.6 <old@mail.example.com>: Recipient address rejected: User has moved to new@elsewhere.test"
        );
    }
}
