//! Canonical rewriting as Postfix's cleanup does it to the envelope: canonical form,
//! `sender_canonical_maps`/`recipient_canonical_maps` then `canonical_maps` (canonical(5)),
//! `masquerade_domains`, and for recipients the virtual alias expansion that follows.

use mailroom_smtp_proto::{ForwardPath, Mailbox, ReversePath};

use crate::address::{canonical_mailbox, canonicalize, internal_form, split_domain};
use crate::error::ExpandError;
use crate::expand;
use crate::lookup;
use crate::params::Params;
use crate::table::Maps;

/// How many times a 1:1 map (canonical) is applied to its own result, as Postfix's
/// `cleanup_map11` (which then warns "unreasonable map nesting" and keeps the last value).
pub const CANONICAL_RECURSION_LIMIT: usize = 10;

/// Applies a canonical(5) table to an internal-form address, again to its result until it no
/// longer changes (at most [`CANONICAL_RECURSION_LIMIT`] times). A multi-valued answer uses the
/// first address, as Postfix does (with a warning).
///
/// # Errors
///
/// [`ExpandError::BadResult`] when the table answers something that is not an address.
pub fn map11(maps: &Maps, params: &Params, address: &str) -> Result<String, ExpandError> {
    let mut addr = address.to_string();
    for _ in 0..CANONICAL_RECURSION_LIMIT {
        let Some(result) = lookup::map(maps, params, &addr, params.propagate_canonical) else {
            return Ok(addr);
        };
        let first = result?.into_iter().next().unwrap_or_default();
        let same = first.eq_ignore_ascii_case(&addr);
        addr = first;
        if same {
            return Ok(addr);
        }
    }
    Ok(addr)
}

/// Strips subdomains per `masquerade_domains` (`foo.example.com` with `example.com` listed
/// becomes `example.com`; a `!sub.example.com` entry before it keeps that subdomain), unless
/// the local part is in `masquerade_exceptions`.
pub fn masquerade(params: &Params, address: &str) -> String {
    let (local, Some(domain)) = split_domain(address) else {
        return address.to_string();
    };
    if params.masquerade_domains.is_empty()
        || params
            .masquerade_exceptions
            .iter()
            .any(|e| e.eq_ignore_ascii_case(local))
    {
        return address.to_string();
    }
    for entry in &params.masquerade_domains {
        let (truncate, name) = match entry.strip_prefix('!') {
            Some(n) => (false, n),
            None => (true, entry.as_str()),
        };
        if name.is_empty() {
            continue;
        }
        if name.len() == domain.len() {
            if name.eq_ignore_ascii_case(domain) {
                break;
            }
        } else if name.len() < domain.len() {
            let cut = domain.len() - name.len();
            if domain.as_bytes()[cut - 1] == b'.' && domain[cut..].eq_ignore_ascii_case(name) {
                if truncate {
                    return format!("{local}@{name}");
                }
                break;
            }
        }
    }
    address.to_string()
}

/// Rewrites an envelope sender as cleanup does: canonical form, `sender_canonical_maps`,
/// `canonical_maps`, then masquerading (when `masquerade_classes` holds `envelope_sender`).
/// The null sender stays null.
///
/// # Errors
///
/// [`ExpandError::BadResult`] when a table answers something that is not an address.
pub fn rewrite_sender(params: &Params, sender: &ReversePath) -> Result<ReversePath, ExpandError> {
    let Some(mailbox) = sender.mailbox() else {
        return Ok(ReversePath::Null);
    };
    let canon = canonical_mailbox(mailbox);
    let mut addr = internal_form(&canon);
    if !params.sender_canonical_maps.is_empty() {
        addr = map11(&params.sender_canonical_maps, params, &addr)?;
    }
    if !params.canonical_maps.is_empty() {
        addr = map11(&params.canonical_maps, params, &addr)?;
    }
    if params.masquerade_envelope_sender {
        addr = masquerade(params, &addr);
    }
    if addr == internal_form(&canon) {
        // Unchanged: keep the parsed mailbox (its local part is not re-interpreted).
        return Ok(ReversePath::Mailbox(canon));
    }
    to_mailbox(&addr, params).map(ReversePath::Mailbox)
}

/// Rewrites one envelope recipient as cleanup does: canonical form,
/// `recipient_canonical_maps`, `canonical_maps`, masquerading (when `masquerade_classes`
/// holds `envelope_recipient`). `<Postmaster>` becomes `postmaster@$myorigin`.
///
/// # Errors
///
/// [`ExpandError::BadResult`] when a table answers something that is not an address.
pub fn rewrite_recipient(params: &Params, recipient: &ForwardPath) -> Result<Mailbox, ExpandError> {
    let canon = match recipient.mailbox() {
        Some(m) => canonical_mailbox(m),
        None => canonicalize("postmaster", params).map_err(|e| ExpandError::BadResult {
            address: "postmaster".into(),
            value: e.to_string(),
        })?,
    };
    let mut addr = internal_form(&canon);
    if !params.recipient_canonical_maps.is_empty() {
        addr = map11(&params.recipient_canonical_maps, params, &addr)?;
    }
    if !params.canonical_maps.is_empty() {
        addr = map11(&params.canonical_maps, params, &addr)?;
    }
    if params.masquerade_envelope_recipient {
        addr = masquerade(params, &addr);
    }
    if addr == internal_form(&canon) {
        return Ok(canon);
    }
    to_mailbox(&addr, params)
}

/// Everything cleanup does to one envelope recipient: [`rewrite_recipient`], then virtual alias
/// expansion ([`expand::virtual_alias`]). The final recipients, duplicates removed.
///
/// # Errors
///
/// The errors of [`rewrite_recipient`] and [`expand::virtual_alias`].
pub fn cleanup_recipient(
    params: &Params,
    recipient: &ForwardPath,
) -> Result<Vec<Mailbox>, ExpandError> {
    let rewritten = rewrite_recipient(params, recipient)?;
    expand::virtual_alias(params, &rewritten)
}

fn to_mailbox(addr: &str, params: &Params) -> Result<Mailbox, ExpandError> {
    canonicalize(addr, params).map_err(|_| ExpandError::BadResult {
        address: addr.to_string(),
        value: addr.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{HashTable, Table};

    #[test]
    fn masquerading_like_postfix() {
        let mut p = Params::new("mail.example.com");
        p.masquerade_domains = vec!["!keep.example.com".into(), "example.com".into()];
        p.masquerade_exceptions = vec!["root".into()];
        assert_eq!(masquerade(&p, "joe@host.example.com"), "joe@example.com");
        assert_eq!(masquerade(&p, "joe@a.b.example.com"), "joe@example.com");
        assert_eq!(masquerade(&p, "joe@example.com"), "joe@example.com");
        assert_eq!(
            masquerade(&p, "joe@keep.example.com"),
            "joe@keep.example.com"
        );
        assert_eq!(
            masquerade(&p, "root@host.example.com"),
            "root@host.example.com"
        );
        assert_eq!(masquerade(&p, "joe@notexample.com"), "joe@notexample.com");
    }

    #[test]
    fn sender_and_recipient_canonical() {
        let mut p = Params::new("mail.example.com");
        p.recipient_delimiter = "+".into();
        p.sender_canonical_maps = Maps::from(Table::Hash(HashTable::from_pairs([(
            "joe@mail.example.com",
            "Joe.Smith@example.com",
        )])));
        p.canonical_maps = Maps::from(Table::Hash(HashTable::from_pairs([(
            "@old.test",
            "@new.test",
        )])));
        let s = rewrite_sender(
            &p,
            &ReversePath::Mailbox("joe+x@mail.example.com".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(s.to_string(), "<Joe.Smith+x@example.com>");
        let r =
            rewrite_recipient(&p, &ForwardPath::Mailbox("ann@OLD.test".parse().unwrap())).unwrap();
        assert_eq!(r.to_string(), "ann@new.test");
        let r = rewrite_recipient(&p, &ForwardPath::Postmaster).unwrap();
        assert_eq!(r.to_string(), "postmaster@mail.example.com");
        assert_eq!(
            rewrite_sender(&p, &ReversePath::Null).unwrap(),
            ReversePath::Null
        );
    }
}
