//! Addresses in Postfix's internal form (`local@domain`, the local part unquoted) and the
//! canonical form that trivial-rewrite gives them.
//!
//! The envelope types are mailroom-smtp-proto's ([`Mailbox`], [`LocalPart`], [`Host`]); this
//! module converts between them and the internal-form strings that tables are keyed by.

use mailroom_smtp_proto::{AddressError, Host, LocalPart, Mailbox};

use crate::params::Params;

/// The longest address a rewrite may produce, in octets (Postfix's
/// `virtual_alias_address_length_limit`); longer table results are refused.
pub const MAX_ADDRESS_LEN: usize = 1000;

/// The internal form of a mailbox: the local part unquoted, `@`, the host.
pub fn internal_form(mailbox: &Mailbox) -> String {
    format!("{}@{}", mailbox.local_part().as_str(), mailbox.host())
}

/// Splits an internal-form address at its last `@` (a quoted local part may hold `@`).
pub fn split_domain(address: &str) -> (&str, Option<&str>) {
    match address.rfind('@') {
        Some(at) => (&address[..at], Some(&address[at + 1..])),
        None => (address, None),
    }
}

/// Splits a local part into its base and its extension, the extension starting with the
/// delimiter that was found, as Postfix's `split_addr` does: `user+foo` gives `("user",
/// "+foo")` when `+` is in `delimiters`.
///
/// Not split, as in Postfix: `postmaster`, `MAILER-DAEMON`, `double-bounce`; with `-` among the
/// delimiters, `owner-*` and `*-request` (when `owner_request_special`); a local part that
/// starts with a delimiter or has none.
pub fn split_extension<'a>(
    local: &'a str,
    delimiters: &str,
    owner_request_special: bool,
) -> Option<(&'a str, &'a str)> {
    if delimiters.is_empty() {
        return None;
    }
    for special in ["postmaster", "mailer-daemon", "double-bounce"] {
        if local.eq_ignore_ascii_case(special) {
            return None;
        }
    }
    if owner_request_special && delimiters.contains('-') {
        let lower = local.to_ascii_lowercase();
        if lower.starts_with("owner-") || (lower.len() > 8 && lower.ends_with("-request")) {
            return None;
        }
    }
    let at = local.find(|c| delimiters.contains(c))?;
    if at == 0 {
        return None;
    }
    Some((&local[..at], &local[at..]))
}

/// Removes the extension from an internal-form address: `user+foo@domain` gives
/// `(user@domain, +foo)`.
pub fn strip_extension(address: &str, params: &Params) -> Option<(String, String)> {
    let (local, domain) = split_domain(address);
    let (base, ext) = split_extension(
        local,
        &params.recipient_delimiter,
        params.owner_request_special,
    )?;
    let bare = match domain {
        Some(d) => format!("{base}@{d}"),
        None => base.to_string(),
    };
    Some((bare, ext.to_string()))
}

/// Rewrites an internal-form address to canonical form, as trivial-rewrite does in the "local"
/// context, and returns it as a [`Mailbox`]:
///
/// - a source route is removed (`@a,@b:user@domain` gives `user@domain`, RFC 5321 §C);
/// - `user%domain` without `@` becomes `user@domain` (Postfix's `allow_percent_hack`);
/// - a bare name gets `@$myorigin` (`append_at_myorigin`);
/// - trailing dots are removed from the domain and the domain is lowercased;
/// - the local part is kept as is; it is quoted when written only where RFC 5321 requires
///   (`LocalPart`'s `Display`).
///
/// # Errors
///
/// [`AddressError`] when the result is not a mailbox (an empty local part is kept as `""`, but
/// a control character in it, a bad domain, or a result longer than [`MAX_ADDRESS_LEN`] is
/// refused): no rewrite produces an address holding CR, LF or NUL.
pub fn canonicalize(address: &str, params: &Params) -> Result<Mailbox, AddressError> {
    let mut addr = address.trim();
    if addr.len() > MAX_ADDRESS_LEN {
        return Err(AddressError::TooLong {
            what: "address",
            limit: MAX_ADDRESS_LEN,
        });
    }
    // Source route: "@a,@b:user@domain".
    while addr.starts_with('@') {
        match addr.find(':') {
            Some(colon) => addr = &addr[colon + 1..],
            None => break,
        }
    }
    let owned;
    let (local, domain) = match split_domain(addr) {
        (local, Some(domain)) => (local, domain.to_string()),
        (local, None) => match local.rfind('%') {
            Some(pct) if pct > 0 => (&local[..pct], local[pct + 1..].to_string()),
            _ => {
                if !params.append_at_myorigin {
                    return Err(AddressError::Syntax {
                        what: "mailbox",
                        expected: "local-part \"@\" domain (append_at_myorigin = no)",
                    });
                }
                owned = params.myorigin.clone();
                (local, owned)
            }
        },
    };
    let domain = domain.trim_end_matches('.').to_lowercase();
    let local = LocalPart::new(local)?;
    let host: Host = domain.parse()?;
    Ok(Mailbox::new(local, host))
}

/// Canonical form of a mailbox that is already parsed: the domain lowercased and its trailing
/// dots removed; the local part kept exactly (no source route or `%` to interpret, since the
/// parts are known). Idempotent.
pub fn canonical_mailbox(mailbox: &Mailbox) -> Mailbox {
    match mailbox.host() {
        Host::Domain(d) => {
            let lower = d.as_str().trim_end_matches('.').to_lowercase();
            match lower.parse::<Host>() {
                Ok(host) => Mailbox::new(mailbox.local_part().clone(), host),
                Err(_) => mailbox.clone(),
            }
        }
        Host::Literal(_) => mailbox.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_postfix() {
        assert_eq!(
            split_extension("user+foo", "+", true),
            Some(("user", "+foo"))
        );
        assert_eq!(
            split_extension("user-foo+bar", "+-", true),
            Some(("user", "-foo+bar"))
        );
        assert_eq!(split_extension("+foo", "+", true), None);
        assert_eq!(split_extension("user", "+", true), None);
        assert_eq!(split_extension("owner-list", "-", true), None);
        assert_eq!(split_extension("list-request", "-", true), None);
        assert_eq!(
            split_extension("list-request", "-", false),
            Some(("list", "-request"))
        );
        assert_eq!(split_extension("Postmaster", "+", true), None);
        assert_eq!(split_extension("user+foo", "", true), None);
    }

    #[test]
    fn canonical_form() {
        let p = Params::new("mail.example.com");
        let c = |a: &str| canonicalize(a, &p).map(|m| m.to_string());
        assert_eq!(c("bob").unwrap(), "bob@mail.example.com");
        assert_eq!(c("Bob@EXAMPLE.Org.").unwrap(), "Bob@example.org");
        assert_eq!(c("@relay.test,@b.test:joe@x.test").unwrap(), "joe@x.test");
        assert_eq!(c("joe%x.test").unwrap(), "joe@x.test");
        assert_eq!(c("john doe@x.test").unwrap(), "\"john doe\"@x.test");
        assert_eq!(c("a@[127.0.0.1]").unwrap(), "a@[127.0.0.1]");
        assert!(c("a\r\nb@x.test").is_err());
        assert!(c("a@x\0.test").is_err());
        assert!(c("a@bad domain").is_err());
    }
}
