//! Postfix's lookup order for address tables (virtual(5), canonical(5), relocated(5),
//! `mail_addr_find` and `mail_addr_map`).
//!
//! For `user+ext@domain` the keys are tried in this order, the first answer winning:
//!
//! 1. `user+ext@domain` (the full address; the only key a regexp table sees),
//! 2. `user@domain` (only with `recipient_delimiter` set),
//! 3. `user+ext`, then `user` — only when `domain` is `$myorigin` or a local domain
//!    (`mydestination`, `inet_interfaces`, `proxy_interfaces`),
//! 4. `@domain`.
//!
//! When the answer came from a key without the extension, the extension is "unmatched" and,
//! with `propagate_unmatched_extensions`, is added to every result address. A result of the
//! form `@otherdomain` means the same user in the other domain.

use std::borrow::Cow;

use mailroom_smtp_proto::{LocalPart, Mailbox};

use crate::address::{MAX_ADDRESS_LEN, canonicalize, internal_form, split_domain, strip_extension};
use crate::error::ExpandError;
use crate::params::Params;
use crate::table::Maps;
use crate::table::alias::{internalize, split_items, tokenize};

/// What [`find`] found: the table's answer and the unmatched extension, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    /// The table's answer.
    pub value: Cow<'a, str>,
    /// The extension (with its delimiter) that was removed to find the answer.
    pub extension: Option<String>,
}

/// Looks an internal-form address up in Postfix's order (see the module documentation).
pub fn find<'m>(maps: &'m Maps, params: &Params, address: &str) -> Option<Found<'m>> {
    if let Some(value) = maps.find(address, false) {
        return Some(Found {
            value,
            extension: None,
        });
    }
    let stripped = strip_extension(address, params);
    if let Some((bare, ext)) = &stripped
        && let Some(value) = maps.find(bare, true)
    {
        return Some(Found {
            value,
            extension: Some(ext.clone()),
        });
    }
    let (local, domain) = split_domain(address);
    let domain = domain?;
    if domain.eq_ignore_ascii_case(&params.myorigin) || params.is_local_domain(domain) {
        if let Some(value) = maps.find(local, true) {
            return Some(Found {
                value,
                extension: None,
            });
        }
        if let Some((bare, ext)) = &stripped {
            let (bare_local, _) = split_domain(bare);
            if let Some(value) = maps.find(bare_local, true) {
                return Some(Found {
                    value,
                    extension: Some(ext.clone()),
                });
            }
        }
    }
    maps.find(&address[address.len() - domain.len() - 1..], true)
        .map(|value| Found {
            value,
            extension: None,
        })
}

/// Maps an internal-form address through `maps` (Postfix's `mail_addr_map`): the result list
/// in canonical internal form, the unmatched extension propagated when `propagate` is set, or
/// `None` when no table answers.
///
/// # Errors
///
/// [`ExpandError::BadResult`] when the answer holds no address, or an address that cannot be
/// put in canonical form (control characters, bad domain, too long).
pub fn map(
    maps: &Maps,
    params: &Params,
    address: &str,
    propagate: bool,
) -> Option<Result<Vec<String>, ExpandError>> {
    map_mailboxes(maps, params, address, propagate)
        .map(|r| r.map(|v| v.into_iter().map(|(s, _)| s).collect()))
}

/// [`map`], each result also as a [`Mailbox`] (so callers need not parse it again).
pub(crate) fn map_mailboxes(
    maps: &Maps,
    params: &Params,
    address: &str,
    propagate: bool,
) -> Option<Result<Vec<(String, Mailbox)>, ExpandError>> {
    let found = find(maps, params, address)?;
    let bad = |value: &str| ExpandError::BadResult {
        address: address.to_string(),
        value: value.to_string(),
    };
    let value: Cow<'_, str> = if found.value.starts_with('@') {
        // "@otherdomain": the original user (without the unmatched extension) in that domain.
        let (local, _) = split_domain(address);
        let local = match &found.extension {
            Some(ext) => &local[..local.len().saturating_sub(ext.len())],
            None => local,
        };
        Cow::Owned(crate::table::alias::quote_local(local) + &found.value)
    } else {
        found.value
    };
    // Most answers are plain `a@b, c@d`: split them without the RFC 822 tokenizer.
    let plain = !value.bytes().any(|b| {
        matches!(
            b,
            b'"' | b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'\\' | b';' | b':'
        )
    });
    let plain = plain
        && value
            .split(',')
            .all(|s| !s.trim().contains(char::is_whitespace));
    let items: Vec<String> = if plain {
        value
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        match tokenize(&value) {
            Ok(t) => split_items(t).iter().map(|i| internalize(i)).collect(),
            Err(_) => return Some(Err(bad(&value))),
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for internal in items {
        let Ok(mut mailbox) = canonicalize(&internal, params) else {
            return Some(Err(bad(&value)));
        };
        if propagate && let Some(ext) = &found.extension {
            let local = format!("{}{ext}", mailbox.local_part().as_str());
            let Ok(local) = LocalPart::new(local) else {
                return Some(Err(bad(&value)));
            };
            mailbox = Mailbox::new(local, mailbox.host().clone());
        }
        let canon = internal_form(&mailbox);
        if canon.len() > MAX_ADDRESS_LEN || canon.chars().any(char::is_control) {
            return Some(Err(bad(&value)));
        }
        out.push((canon, mailbox));
    }
    if out.is_empty() {
        return Some(Err(bad(&value)));
    }
    Some(Ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{HashTable, Table};

    fn params() -> Params {
        let mut p = Params::new("mail.example.com");
        p.recipient_delimiter = "+".into();
        p
    }

    fn maps(pairs: &[(&str, &str)]) -> Maps {
        Maps::from(Table::Hash(HashTable::from_pairs(pairs.iter().copied())))
    }

    #[test]
    fn lookup_order() {
        let p = params();
        let m = maps(&[
            ("full+ext@example.org", "1"),
            ("full@example.org", "2"),
            ("local+ext", "3"),
            ("local", "4"),
            ("@example.org", "5"),
        ]);
        let f = |a: &str| find(&m, &p, a).map(|f| (f.value.into_owned(), f.extension));
        assert_eq!(f("full+ext@example.org"), Some(("1".into(), None)));
        assert_eq!(
            f("full+other@example.org"),
            Some(("2".into(), Some("+other".into())))
        );
        assert_eq!(f("FULL@Example.ORG"), Some(("2".into(), None)));
        // user and user+ext only for local domains and $myorigin.
        assert_eq!(f("local+ext@mail.example.com"), Some(("3".into(), None)));
        assert_eq!(
            f("local+x@localhost"),
            Some(("4".into(), Some("+x".into())))
        );
        assert_eq!(f("local@example.net"), None);
        assert_eq!(f("anyone@example.org"), Some(("5".into(), None)));
    }

    #[test]
    fn map_propagates_and_rewrites_domain_results() {
        let p = params();
        let m = maps(&[
            ("a@example.org", "b@example.net, c"),
            ("@old.test", "@new.test"),
        ]);
        assert_eq!(
            map(&m, &p, "a+x@example.org", true).unwrap().unwrap(),
            ["b+x@example.net", "c+x@mail.example.com"]
        );
        assert_eq!(
            map(&m, &p, "a+x@example.org", false).unwrap().unwrap(),
            ["b@example.net", "c@mail.example.com"]
        );
        assert_eq!(
            map(&m, &p, "joe@old.test", true).unwrap().unwrap(),
            ["joe@new.test"]
        );
        assert!(map(&m, &p, "joe@else.test", true).is_none());
    }
}
