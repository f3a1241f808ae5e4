//! Virtual alias expansion (cleanup's `virtual_alias_maps`) and local alias expansion
//! (local(8)'s `alias_maps`).
//!
//! Virtual aliases follow Postfix's `cleanup_map1n`: each address is looked up again and again
//! until no table answers, its first result replacing it and the others appended to the list;
//! an address that expands into itself is expanded only once; the list may not grow beyond
//! `virtual_alias_expansion_limit` and one address may not be rewritten more than
//! `virtual_alias_recursion_limit` times (a loop `a -> b -> a` hits that limit, and is reported
//! as a loop with its chain). Duplicates are removed from the result, as cleanup does.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use mailroom_smtp_proto::Mailbox;

use crate::address::{canonicalize, internal_form, split_domain, split_extension};
use crate::error::ExpandError;
use crate::lookup;
use crate::params::Params;

/// Expands `recipient` through `virtual_alias_maps`: the final recipients, duplicates removed,
/// in order; the recipient itself when no table answers.
///
/// # Errors
///
/// [`ExpandError::Loop`] or [`ExpandError::RecursionLimit`] when one address is rewritten more
/// than `virtual_alias_recursion_limit` times, [`ExpandError::ExpansionLimit`] when the list
/// grows beyond `virtual_alias_expansion_limit`, [`ExpandError::BadResult`] for a table
/// answer that is not an address. Postfix defers the message in these cases ("unreasonable
/// virtual_alias_maps map nesting/expansion size ... message not accepted").
pub fn virtual_alias(params: &Params, recipient: &Mailbox) -> Result<Vec<Mailbox>, ExpandError> {
    let start = internal_form(recipient);
    let (addresses, parsed) = expand_virtual(params, &start)?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(addresses.len());
    for a in addresses {
        if seen.contains(&a) {
            continue;
        }
        let mailbox = if a == start {
            // Not rewritten: keep the parsed mailbox rather than re-reading its internal form.
            recipient.clone()
        } else if let Some(m) = parsed.get(&a) {
            m.clone()
        } else {
            canonicalize(&a, params).map_err(|_| ExpandError::BadResult {
                address: start.clone(),
                value: a.clone(),
            })?
        };
        seen.insert(a);
        out.push(mailbox);
    }
    Ok(out)
}

/// [`virtual_alias`] on internal-form strings, without removing duplicates.
pub fn virtual_alias_internal(params: &Params, address: &str) -> Result<Vec<String>, ExpandError> {
    expand_virtual(params, address).map(|(list, _)| list)
}

/// The expansion, and the table results already parsed as mailboxes.
type Expansion = (Vec<String>, std::collections::HashMap<String, Mailbox>);

fn expand_virtual(params: &Params, address: &str) -> Result<Expansion, ExpandError> {
    let maps = &params.virtual_alias_maps;
    let mut parsed = std::collections::HashMap::new();
    let mut argv = vec![address.to_string()];
    let mut been_here: HashSet<String> = HashSet::new();
    let mut arg = 0;
    while arg < argv.len() {
        if argv.len() > params.virtual_alias_expansion_limit {
            return Err(ExpandError::ExpansionLimit {
                address: address.to_string(),
                limit: params.virtual_alias_expansion_limit,
            });
        }
        let mut chain: Vec<String> = Vec::new();
        let mut count = 0;
        loop {
            if !been_here.is_empty() && been_here.contains(&argv[arg].to_lowercase()) {
                break;
            }
            if count >= params.virtual_alias_recursion_limit {
                return Err(loop_error(
                    address,
                    chain,
                    params.virtual_alias_recursion_limit,
                ));
            }
            let current = argv[arg].clone();
            let Some(result) =
                lookup::map_mailboxes(maps, params, &current, params.propagate_virtual)
            else {
                break;
            };
            let results = result?;
            for (i, (r, mailbox)) in results.into_iter().enumerate() {
                parsed.insert(r.clone(), mailbox);
                if r.eq_ignore_ascii_case(&current) {
                    been_here.insert(current.to_lowercase());
                }
                if i == 0 {
                    argv[arg] = r;
                } else {
                    argv.push(r);
                }
            }
            chain.push(current);
            count += 1;
        }
        arg += 1;
    }
    Ok((argv, parsed))
}

/// The clearest error for a chain that hit the recursion limit: the loop in it, if any.
fn loop_error(address: &str, chain: Vec<String>, limit: usize) -> ExpandError {
    let mut first_seen = std::collections::HashMap::new();
    for (i, a) in chain.iter().enumerate() {
        if let Some(&start) = first_seen.get(&a.to_lowercase()) {
            let mut cycle: Vec<String> = chain[start..i].to_vec();
            cycle.push(a.clone());
            return ExpandError::Loop { chain: cycle };
        }
        first_seen.insert(a.to_lowercase(), i);
    }
    ExpandError::RecursionLimit {
        address: address.to_string(),
        limit,
    }
}

/// The nesting limit of local alias expansion (aliases within aliases and `:include:` files).
pub const LOCAL_ALIAS_NESTING_LIMIT: usize = 100;

/// One thing a local alias expands to, for the local delivery agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Deliver to this local user's mailbox (the local part, no alias left to expand).
    Mailbox(String),
    /// Forward to this address (a non-local domain, or a local address given with a domain
    /// that is not local).
    Forward(Mailbox),
    /// `|command`: to be run by the delivery agent with the message on stdin. Returned as
    /// data only; this crate never runs it and never hands it to a shell.
    Command(String),
    /// `/file/name`: to be appended to by the delivery agent.
    File(PathBuf),
}

/// One delivery with the envelope sender Postfix would use for it: `owner-<alias>` when that
/// alias exists (errors go to the list owner), otherwise the original sender (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasDelivery {
    /// What to deliver to.
    pub delivery: Delivery,
    /// `owner-NAME@$myorigin` when the alias `owner-NAME` of the nearest enclosing alias exists.
    pub owner: Option<String>,
    /// The chain of aliases that led here, outermost first.
    pub via: Vec<String>,
}

/// Reads `:include:` files; a trait so tests and sandboxes can supply the files.
pub trait IncludeReader {
    /// The contents of `path`.
    ///
    /// # Errors
    ///
    /// The I/O error, as text.
    fn read(&self, path: &Path) -> Result<String, String>;
}

/// Reads `:include:` files from the filesystem (at most 1 MiB each).
#[derive(Debug, Clone, Copy, Default)]
pub struct FsIncludes;

impl IncludeReader for FsIncludes {
    fn read(&self, path: &Path) -> Result<String, String> {
        use std::io::Read;
        let mut s = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(1 << 20).read_to_string(&mut s))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(s)
    }
}

/// Expands a local recipient through `alias_maps` as local(8) does: aliases within aliases,
/// `:include:` files, `|command` and `/file` items, `owner-` aliases; each final delivery once.
///
/// `local_part` is the recipient's local part (the domain is local). An alias that names
/// itself (`root: root, backup`) delivers to the mailbox instead of expanding again. With
/// `recipient_delimiter`, `user+ext` is looked up first, then `user`.
///
/// # Errors
///
/// [`ExpandError::RecursionLimit`] beyond [`LOCAL_ALIAS_NESTING_LIMIT`] levels,
/// [`ExpandError::Include`] for an unreadable or malformed `:include:` file,
/// [`ExpandError::BadResult`] for an item that is not an address.
pub fn local_alias(
    params: &Params,
    local_part: &str,
    includes: &dyn IncludeReader,
) -> Result<Vec<AliasDelivery>, ExpandError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut path = Vec::new();
    expand_local(
        params, local_part, includes, &mut path, None, &mut seen, &mut out,
    )?;
    Ok(out)
}

/// Expands a user's `.forward` file as local(8) does after alias expansion: `text` is the
/// file's content (read by the caller, who knows where it is and whether to trust it), in the
/// syntax of an `:include:` file (items separated by commas or newlines, `#` comments,
/// `|command`, `/file`, `:include:`). A local address is expanded through `alias_maps`; the
/// user itself (`user` or `\user`) means its own mailbox, not the `.forward` again.
///
/// # Errors
///
/// [`ExpandError::Include`] for a malformed file (its name and line given), and as
/// [`local_alias`].
pub fn dot_forward(
    params: &Params,
    user: &str,
    file: &Path,
    text: &str,
    includes: &dyn IncludeReader,
) -> Result<Vec<AliasDelivery>, ExpandError> {
    let items =
        crate::table::alias::parse_include(file, text).map_err(|e| ExpandError::Include {
            address: user.to_string(),
            message: e.to_string(),
        })?;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    // The user is on the path, so naming it delivers to its mailbox (as an alias that names
    // itself does).
    let mut path = vec![user.to_lowercase()];
    expand_items(
        params, user, &items, includes, &mut path, None, &mut seen, &mut out, 0,
    )?;
    Ok(out)
}

fn alias_items<'p>(params: &'p Params, name: &str) -> Option<(String, &'p [Box<str>])> {
    if let Some(items) = params.alias_maps.alias_items(name) {
        return Some((name.to_lowercase(), items));
    }
    let (base, _) = split_extension(
        name,
        &params.recipient_delimiter,
        params.owner_request_special,
    )?;
    params
        .alias_maps
        .alias_items(base)
        .map(|items| (base.to_lowercase(), items))
}

#[allow(clippy::too_many_arguments)]
fn expand_local(
    params: &Params,
    name: &str,
    includes: &dyn IncludeReader,
    path: &mut Vec<String>,
    owner: Option<String>,
    seen: &mut HashSet<Delivery>,
    out: &mut Vec<AliasDelivery>,
) -> Result<(), ExpandError> {
    let lower = name.to_lowercase();
    let found = if path.contains(&lower) {
        None
    } else {
        alias_items(params, name)
    };
    let Some((alias, items)) = found else {
        let d = Delivery::Mailbox(name.to_string());
        if seen.insert(d.clone()) {
            out.push(AliasDelivery {
                delivery: d,
                owner,
                via: path.clone(),
            });
        }
        return Ok(());
    };
    if path.len() >= LOCAL_ALIAS_NESTING_LIMIT {
        return Err(ExpandError::RecursionLimit {
            address: name.to_string(),
            limit: LOCAL_ALIAS_NESTING_LIMIT,
        });
    }
    let owner_name = format!("owner-{alias}");
    let owner = if params.alias_maps.alias_items(&owner_name).is_some() {
        Some(format!("{owner_name}@{}", params.myorigin))
    } else {
        owner
    };
    path.push(alias.clone());
    let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    let r = expand_items(params, &alias, &items, includes, path, owner, seen, out, 0);
    path.pop();
    r
}

#[allow(clippy::too_many_arguments)]
fn expand_items(
    params: &Params,
    alias: &str,
    items: &[String],
    includes: &dyn IncludeReader,
    path: &mut Vec<String>,
    owner: Option<String>,
    seen: &mut HashSet<Delivery>,
    out: &mut Vec<AliasDelivery>,
    include_depth: usize,
) -> Result<(), ExpandError> {
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if item.chars().any(char::is_control) {
            return Err(ExpandError::BadResult {
                address: alias.to_string(),
                value: item.to_string(),
            });
        }
        let delivery = if let Some(cmd) = item.strip_prefix('|') {
            Some(Delivery::Command(cmd.to_string()))
        } else if item.starts_with('/') {
            Some(Delivery::File(PathBuf::from(item)))
        } else if let Some(file) = item
            .get(..9)
            .filter(|p| p.eq_ignore_ascii_case(":include:"))
        {
            let file = Path::new(item[file.len()..].trim());
            if path.len() + include_depth >= LOCAL_ALIAS_NESTING_LIMIT {
                return Err(ExpandError::RecursionLimit {
                    address: alias.to_string(),
                    limit: LOCAL_ALIAS_NESTING_LIMIT,
                });
            }
            let include_err = |message: String| ExpandError::Include {
                address: alias.to_string(),
                message,
            };
            let text = includes.read(file).map_err(include_err)?;
            let listed = crate::table::alias::parse_include(file, &text)
                .map_err(|e| include_err(e.to_string()))?;
            expand_items(
                params,
                alias,
                &listed,
                includes,
                path,
                owner.clone(),
                seen,
                out,
                include_depth + 1,
            )?;
            None
        } else {
            let (local, domain) = split_domain(item);
            match domain {
                Some(d)
                    if !params.is_local_domain(d) && !d.eq_ignore_ascii_case(&params.myorigin) =>
                {
                    let mailbox =
                        canonicalize(item, params).map_err(|_| ExpandError::BadResult {
                            address: alias.to_string(),
                            value: item.to_string(),
                        })?;
                    Some(Delivery::Forward(mailbox))
                }
                _ => {
                    expand_local(params, local, includes, path, owner.clone(), seen, out)?;
                    None
                }
            }
        };
        if let Some(d) = delivery
            && seen.insert(d.clone())
        {
            out.push(AliasDelivery {
                delivery: d,
                owner: owner.clone(),
                via: path.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{AliasTable, HashTable, Maps, Table};

    fn params_with_virtual(pairs: &[(&str, &str)]) -> Params {
        let mut p = Params::new("mail.example.com");
        p.virtual_alias_maps =
            Maps::from(Table::Hash(HashTable::from_pairs(pairs.iter().copied())));
        p
    }

    fn expand(p: &Params, a: &str) -> Result<Vec<String>, ExpandError> {
        virtual_alias(p, &a.parse().unwrap()).map(|v| v.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn recursive_dedup_and_self() {
        let p = params_with_virtual(&[
            (
                "list@example.org",
                "a@example.org, b@example.org, a@example.org",
            ),
            ("a@example.org", "alice@mbox.test"),
            ("b@example.org", "b@example.org, bob@mbox.test"),
        ]);
        assert_eq!(
            expand(&p, "list@example.org").unwrap(),
            ["alice@mbox.test", "b@example.org", "bob@mbox.test"]
        );
        assert_eq!(
            expand(&p, "none@example.org").unwrap(),
            ["none@example.org"]
        );
    }

    #[test]
    fn loops_and_limits() {
        let p = params_with_virtual(&[("a@x.test", "b@x.test"), ("b@x.test", "a@x.test")]);
        let e = expand(&p, "a@x.test").unwrap_err();
        assert_eq!(
            e.to_string(),
            "alias loop: a@x.test -> b@x.test -> a@x.test"
        );
        // x -> y, x; y -> x: Postfix ends it (x expanded into itself once).
        let p =
            params_with_virtual(&[("x@x.test", "y@x.test, x@x.test"), ("y@x.test", "x@x.test")]);
        assert_eq!(expand(&p, "x@x.test").unwrap(), ["x@x.test"]);
        let mut p = params_with_virtual(&[("big@x.test", "1@y, 2@y, 3@y, 4@y")]);
        p.virtual_alias_expansion_limit = 3;
        assert!(matches!(
            expand(&p, "big@x.test"),
            Err(ExpandError::ExpansionLimit { .. })
        ));
    }

    #[test]
    fn local_aliases_classic() {
        let mut p = Params::new("mail.example.com");
        let t = AliasTable::parse(
            Path::new("aliases"),
            "postmaster: root\nroot: bob\nbob.leponge: bob\nadmins: bob, alice\nowner-admins: root\nself: self, other@remote.test\ncmd: \"|/bin/echo x\", /tmp/file\n",
        )
        .unwrap();
        p.alias_maps = Maps::from(Table::Alias(t));
        let names = |n: &str| -> Vec<String> {
            local_alias(&p, n, &FsIncludes)
                .unwrap()
                .into_iter()
                .map(|d| format!("{:?}", d.delivery))
                .collect()
        };
        assert_eq!(names("postmaster"), ["Mailbox(\"bob\")"]);
        assert_eq!(names("admins"), ["Mailbox(\"bob\")", "Mailbox(\"alice\")"]);
        assert_eq!(names("bob.leponge"), ["Mailbox(\"bob\")"]);
        assert_eq!(
            names("self"),
            ["Mailbox(\"self\")", "Forward(Mailbox(other@remote.test))"]
        );
        assert_eq!(
            names("cmd"),
            ["Command(\"/bin/echo x\")", "File(\"/tmp/file\")"]
        );
        let admins = local_alias(&p, "admins", &FsIncludes).unwrap();
        assert_eq!(
            admins[0].owner.as_deref(),
            Some("owner-admins@mail.example.com")
        );
    }
}

#[cfg(test)]
mod include_tests {
    use super::*;
    use crate::table::{AliasTable, Maps, Table};
    use std::collections::HashMap;

    struct Files(HashMap<PathBuf, String>);

    impl IncludeReader for Files {
        fn read(&self, path: &Path) -> Result<String, String> {
            self.0
                .get(path)
                .cloned()
                .ok_or_else(|| format!("{}: No such file or directory", path.display()))
        }
    }

    fn params(aliases: &str) -> Params {
        let mut p = Params::new("mail.example.com");
        p.alias_maps = Maps::from(Table::Alias(
            AliasTable::parse(Path::new("aliases"), aliases).unwrap(),
        ));
        p
    }

    #[test]
    fn dot_forward_items() {
        let p = params("team: ann, bob\n");
        let files = Files(HashMap::new());
        let forward = Path::new("/home/carol/.forward");
        let got: Vec<String> = dot_forward(
            &p,
            "carol",
            forward,
            "# forward\n\\carol, carol@remote.test\nteam, \"|/bin/cat >/dev/null\", /var/spool/carol\n",
            &files,
        )
        .unwrap()
        .into_iter()
        .map(|d| format!("{:?}", d.delivery))
        .collect();
        assert_eq!(
            got,
            [
                "Mailbox(\"carol\")",
                "Forward(Mailbox(carol@remote.test))",
                "Mailbox(\"ann\")",
                "Mailbox(\"bob\")",
                "Command(\"/bin/cat >/dev/null\")",
                "File(\"/var/spool/carol\")"
            ]
        );
        let e = dot_forward(&p, "carol", forward, "\"unterminated\n", &files).unwrap_err();
        assert!(
            e.to_string().contains("/home/carol/.forward, line 1"),
            "the file and line are named: {e}"
        );
    }

    #[test]
    fn include_files_expand_and_nest_within_the_limit() {
        let p = params("staff: :include:/lists/staff, carol\nops: ann\n");
        let files = Files(HashMap::from([
            (
                PathBuf::from("/lists/staff"),
                "# staff\nops, dave@remote.test\n  , :include:/lists/more\n".to_string(),
            ),
            (PathBuf::from("/lists/more"), "erin\n".to_string()),
        ]));
        let got: Vec<String> = local_alias(&p, "staff", &files)
            .unwrap()
            .into_iter()
            .map(|d| format!("{:?}", d.delivery))
            .collect();
        assert_eq!(
            got,
            [
                "Mailbox(\"ann\")",
                "Forward(Mailbox(dave@remote.test))",
                "Mailbox(\"erin\")",
                "Mailbox(\"carol\")"
            ]
        );
        let e = local_alias(&params("x: :include:/missing\n"), "x", &files).unwrap_err();
        assert_eq!(
            e.to_string(),
            "include file for <x>: /missing: No such file or directory"
        );
        // A file that includes itself ends at the nesting limit with a clear error.
        let files = Files(HashMap::from([(
            PathBuf::from("/loop"),
            ":include:/loop\n".to_string(),
        )]));
        let e = local_alias(&params("x: :include:/loop\n"), "x", &files).unwrap_err();
        assert!(
            matches!(e, ExpandError::RecursionLimit { limit: 100, .. }),
            "{e}"
        );
    }

    #[test]
    fn deep_alias_chains_stop_at_100() {
        let text: String = (0..150).map(|i| format!("a{i}: a{}\n", i + 1)).collect();
        let e = local_alias(&params(&text), "a0", &FsIncludes).unwrap_err();
        assert!(
            matches!(e, ExpandError::RecursionLimit { limit: 100, .. }),
            "{e}"
        );
        let text: String = (0..50).map(|i| format!("b{i}: b{}\n", i + 1)).collect();
        let got = local_alias(&params(&text), "b0", &FsIncludes).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].via.len(), 50);
    }
}
