//! Property tests (acceptance 3 and 5): canonicalisation is idempotent; expansion over random
//! alias graphs with cycles ends within the limits with a clear error; hostile input never
//! panics and never puts CR, LF or NUL into an address or a generated header.

// Test code: unwrap on set-up is the clearest failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use mailroom_rewrite::address::{canonical_mailbox, canonicalize, internal_form};
use mailroom_rewrite::cleanup::{MessageInfo, cleanup_message};
use mailroom_rewrite::error::ExpandError;
use mailroom_rewrite::expand::{FsIncludes, local_alias, virtual_alias};
use mailroom_rewrite::params::Params;
use mailroom_rewrite::table::{AliasTable, HashTable, Maps, RegexpTable, Table, TableKind};
use mailroom_smtp_proto::{Mailbox, ReversePath};
use proptest::prelude::*;

fn params() -> Params {
    let mut p = Params::new("Mail.Example.COM");
    p.recipient_delimiter = "+-".into();
    p
}

fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?"
}

fn domain() -> impl Strategy<Value = String> {
    (proptest::collection::vec(label(), 1..4), any::<bool>()).prop_map(|(labels, dot)| {
        let mut d = labels.join(".");
        if dot {
            d.push('.');
        }
        d
    })
}

fn local() -> impl Strategy<Value = String> {
    // Printable ASCII without a leading '@' (the internal form cannot tell a local part that
    // starts with '@' from a source route, in Postfix either).
    "[!-?A-~][ -~]{0,20}".prop_map(|s| s.trim().to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn canonicalisation_is_idempotent(local in local(), domain in proptest::option::of(domain()), route in proptest::option::of(domain())) {
        let p = params();
        let mut s = match &domain {
            Some(d) => format!("{local}@{d}"),
            None => local.clone(),
        };
        if let Some(r) = route {
            s = format!("@{r}:{s}");
        }
        if let Ok(once) = canonicalize(&s, &p) {
            let again = canonicalize(&internal_form(&once), &p).unwrap();
            prop_assert_eq!(&again, &once);
            prop_assert_eq!(canonical_mailbox(&once), once.clone());
            let text = once.to_string();
            prop_assert!(!text.contains(['\r', '\n', '\0']));
            // The domain is lowercase and has no trailing dot.
            let host = once.host().to_string();
            prop_assert_eq!(host.to_lowercase(), host.clone());
            prop_assert!(!host.ends_with('.'));
        }
    }

    #[test]
    fn canonical_mailbox_is_idempotent(local in "[ -~]{1,20}", domain in domain()) {
        let m: Mailbox = Mailbox::new(
            mailroom_smtp_proto::LocalPart::new(local).unwrap(),
            domain.trim_end_matches('.').parse::<mailroom_smtp_proto::Domain>().unwrap(),
        );
        let once = canonical_mailbox(&m);
        prop_assert_eq!(canonical_mailbox(&once), once.clone());
        prop_assert_eq!(once.local_part(), m.local_part());
    }

    #[test]
    fn hostile_strings_never_make_bad_addresses(s in "\\PC{0,40}|[\\x00-\\x7f]{0,40}") {
        let p = params();
        if let Ok(m) = canonicalize(&s, &p) {
            prop_assert!(!m.to_string().contains(['\r', '\n', '\0']));
        }
    }

    #[test]
    fn random_alias_graphs_end_within_limits(
        edges in proptest::collection::vec(proptest::collection::vec(0usize..12, 0..4), 12),
        start in 0usize..12,
        leaves in proptest::collection::vec(any::<bool>(), 12),
    ) {
        // Node i is n{i}@x.test; its targets are other nodes, and a leaf outside when asked.
        let mut text = String::new();
        for (i, targets) in edges.iter().enumerate() {
            let mut rhs: Vec<String> = targets.iter().map(|t| format!("n{t}@x.test")).collect();
            if leaves[i] {
                rhs.push(format!("leaf{i}@y.test"));
            }
            if !rhs.is_empty() {
                text.push_str(&format!("n{i}@x.test {}\n", rhs.join(", ")));
            }
        }
        let mut p = params();
        p.virtual_alias_maps = Maps::from(Table::parse(TableKind::Hash, Path::new("virtual"), &text).unwrap_or(Table::Hash(HashTable::default())));
        p.virtual_alias_recursion_limit = 50;
        p.virtual_alias_expansion_limit = 60;
        let rcpt: Mailbox = format!("n{start}@x.test").parse().unwrap();
        match virtual_alias(&p, &rcpt) {
            Ok(list) => {
                prop_assert!(!list.is_empty());
                prop_assert!(list.len() <= 61);
                let mut seen = std::collections::HashSet::new();
                for m in &list {
                    prop_assert!(seen.insert(m.to_string()), "duplicate {}", m);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                match &e {
                    ExpandError::Loop { chain } => {
                        prop_assert!(chain.len() >= 2);
                        prop_assert!(chain.first().unwrap().eq_ignore_ascii_case(chain.last().unwrap()));
                        prop_assert!(msg.starts_with("alias loop: "));
                    }
                    ExpandError::RecursionLimit { limit, .. } => prop_assert_eq!(*limit, 50),
                    ExpandError::ExpansionLimit { limit, .. } => prop_assert_eq!(*limit, 60),
                    other => prop_assert!(false, "unexpected error {other}"),
                }
            }
        }

        // The same graph as local aliases: ends, each delivery once, or the nesting limit.
        let mut alias_text = String::new();
        for (i, targets) in edges.iter().enumerate() {
            let mut rhs: Vec<String> = targets.iter().map(|t| format!("n{t}")).collect();
            if leaves[i] {
                rhs.push(format!("leaf{i}@y.test"));
            }
            if !rhs.is_empty() {
                alias_text.push_str(&format!("n{i}: {}\n", rhs.join(", ")));
            }
        }
        let mut p = params();
        p.alias_maps = Maps::from(Table::Alias(AliasTable::parse(Path::new("aliases"), &alias_text).unwrap()));
        match local_alias(&p, &format!("n{start}"), &FsIncludes) {
            Ok(list) => {
                let mut seen = std::collections::HashSet::new();
                for d in &list {
                    let key = format!("{:?}", d.delivery);
                    prop_assert!(seen.insert(key));
                }
            }
            Err(e) => prop_assert!(matches!(e, ExpandError::RecursionLimit { limit: 100, .. }), "{}", e),
        }
    }

    #[test]
    fn hostile_tables_are_errors_with_a_line_never_panics(text in "(\\PC|[\\x00-\\x1f]|[ #/!$()\\[\\]\\\\:,\"]){0,200}") {
        for kind in [TableKind::Hash, TableKind::Alias, TableKind::Regexp] {
            match Table::parse(kind, Path::new("t"), &text) {
                Ok(t) => {
                    let _ = t.get("key");
                }
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(msg.starts_with("t, line "), "{}", msg);
                }
            }
        }
    }

    #[test]
    fn cleanup_never_panics_and_generates_clean_headers(
        headers in proptest::collection::vec("[ -~\\t\\r\\x00]{0,30}", 0..8),
        body in "[ -~\\r\\n]{0,40}",
    ) {
        let mut p = params();
        p.header_checks = Maps::from(Table::Regexp(RegexpTable::parse(Path::new("hc"), "/^X-A: (.*)/ REPLACE X-B: $1\n/^X-P: (.*)/ PREPEND X-Q: $1\n").unwrap()));
        let mut msg = Vec::new();
        for h in &headers {
            msg.extend_from_slice(h.as_bytes());
            msg.extend_from_slice(b"\r\n");
        }
        msg.extend_from_slice(b"\r\n");
        msg.extend_from_slice(body.as_bytes());
        let info = MessageInfo {
            sender: ReversePath::Null,
            arrival: std::time::UNIX_EPOCH,
            queue_id: "Q".into(),
        };
        if let Ok((out, _)) = cleanup_message(&p, info, &msg) {
            let text = String::from_utf8_lossy(&out).into_owned();
            for line in text.split("\r\n") {
                if line.starts_with("X-B:") || line.starts_with("X-Q:") || line.starts_with("Message-Id:") || line.starts_with("From: <") {
                    prop_assert!(!line.contains(['\r', '\n', '\0']), "{:?}", line);
                }
            }
        }
    }
}

#[test]
fn folded_header_substitution_is_unfolded() {
    let mut p = params();
    p.header_checks = Maps::from(Table::Regexp(
        RegexpTable::parse(Path::new("hc"), "/^X-A: (.*)/ REPLACE X-B: $1\n").unwrap(),
    ));
    let info = MessageInfo {
        sender: ReversePath::Null,
        arrival: std::time::UNIX_EPOCH,
        queue_id: "Q".into(),
    };
    let (out, _) = cleanup_message(
        &p,
        info,
        b"From: a@b\r\nDate: d\r\nMessage-Id: <i@x>\r\nX-A: one\r\n two\r\n\r\nbody\r\n",
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "From: a@b\r\nDate: d\r\nMessage-Id: <i@x>\r\nX-B: one  two\r\n\r\nbody\r\n"
    );
}

#[test]
fn default_limits_end_a_long_loop_clearly() {
    let mut p = params();
    let text: String = (0..1500)
        .map(|i| format!("a{i}@x.test a{}@x.test\n", (i + 1) % 1500))
        .collect();
    p.virtual_alias_maps =
        Maps::from(Table::parse(TableKind::Hash, Path::new("v"), &text).unwrap());
    let e = virtual_alias(&p, &"a0@x.test".parse().unwrap()).unwrap_err();
    assert_eq!(
        e,
        ExpandError::RecursionLimit {
            address: "a0@x.test".into(),
            limit: 1000
        }
    );
    let text: String = (0..10)
        .map(|i| format!("b{i}@x.test b{}@x.test\n", (i + 1) % 10))
        .collect();
    p.virtual_alias_maps =
        Maps::from(Table::parse(TableKind::Hash, Path::new("v"), &text).unwrap());
    let e = virtual_alias(&p, &"b0@x.test".parse().unwrap()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("alias loop: b0@x.test -> b1@x.test"),
        "{e}"
    );
    // Fan-out beyond virtual_alias_expansion_limit.
    let wide: Vec<String> = (0..1001).map(|i| format!("w{i}@y.test")).collect();
    p.virtual_alias_maps = Maps::from(Table::Hash(HashTable::from_pairs([(
        "big@x.test",
        wide.join(",").as_str(),
    )])));
    let e = virtual_alias(&p, &"big@x.test".parse().unwrap()).unwrap_err();
    assert!(
        matches!(e, ExpandError::ExpansionLimit { limit: 1000, .. }),
        "{e}"
    );
}

#[test]
fn pipe_and_file_results_are_never_commands_in_virtual_expansion() {
    // A virtual alias answer "|cmd" is an address like any other (local part "|cmd"), never a
    // command: only local aliases name commands, and they are returned as data.
    let mut p = params();
    p.virtual_alias_maps = Maps::from(Table::Hash(HashTable::from_pairs([(
        "x@x.test",
        "\"|rm -rf /\"",
    )])));
    let out = virtual_alias(&p, &"x@x.test".parse().unwrap()).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].local_part().as_str(), "|rm -rf /");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any address string against any table answer: no panic, and every result is a clean,
    /// bounded address.
    #[test]
    fn address_maps_never_panic_and_never_make_bad_addresses(
        address in "[ -~]{0,30}",
        value in "(\\PC|[ \"(),<>@:;\\[\\]\\\\%!+]){1,40}",
        propagate in any::<bool>(),
    ) {
        let p = params();
        let key = address.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Ok(());
        }
        let text = format!("{key} {value}\n@x.test {value}\n");
        let Ok(table) = Table::parse(TableKind::Hash, Path::new("t"), &text) else {
            return Ok(());
        };
        let maps = Maps::from(table);
        for a in [address.as_str(), "someone@x.test", "someone+ext@x.test"] {
            if let Some(Ok(list)) = mailroom_rewrite::lookup::map(&maps, &p, a, propagate) {
                for r in list {
                    prop_assert!(!r.contains(['\r', '\n', '\0']), "{:?}", r);
                    prop_assert!(r.len() <= mailroom_rewrite::address::MAX_ADDRESS_LEN);
                    prop_assert!(canonicalize(&r, &p).is_ok(), "{:?}", r);
                }
            }
        }
    }
}
