//! Postfix-compatible lookup tables, address rewriting and resolution (trivial-rewrite and
//! cleanup), as a library.
//!
//! An administrator who knows Postfix's main.cf, aliases(5), virtual(5), canonical(5),
//! transport(5) and relocated(5) finds the same formats, names, defaults and behaviour here:
//!
//! - [`table`]: lookup tables compiled into memory from Postfix's text formats (source format,
//!   aliases(5), regexp(5)), reloaded atomically when their file changes;
//! - [`lookup`]: Postfix's lookup order for addresses (`user+ext@domain`, `user@domain`,
//!   `user+ext`, `user`, `@domain`) and the propagation of unmatched extensions;
//! - [`address`] and [`canonical`]: canonical form, `canonical_maps`, `masquerade_domains`;
//! - [`expand`]: virtual alias expansion and local alias expansion, with Postfix's limits;
//! - [`resolve`]: the address classes, transport and next hop, as trivial-rewrite;
//! - [`cleanup`]: the header fixes of Postfix's cleanup, as a streaming pass;
//! - [`params`]: the main.cf parameters, with their names and defaults.
//!
//! What it does not do: no DNS (a next hop is a name, MX lookups are the SMTP client's job),
//! no sockets, no delivery; files are only read to load tables and `:include:` lists. Nothing
//! is ever passed to a shell: a `|command` alias is returned as data for the delivery agent.
//!
//! ## Example
//!
//! ```
//! use std::path::Path;
//! use mailroom_rewrite::{params::Params, resolve::resolve, table::{Maps, Table, TableKind}};
//!
//! let mut params = Params::new("mail.example.com");
//! params.transport_maps = Maps::from(Table::parse(
//!     TableKind::Hash,
//!     Path::new("transport"),
//!     "example.org  smtp:[mx.example.org]:2525\n",
//! )?);
//! let r = resolve(&params, "joe@example.org".parse()?);
//! assert_eq!((r.transport.as_str(), r.nexthop.as_str()), ("smtp", "[mx.example.org]:2525"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Where it differs from Postfix, on purpose or not yet
//!
//! - A malformed table line is an error naming the file and line (Postfix warns and skips it);
//!   a table file must be UTF-8 and hold no control character but TAB (a trailing CR is
//!   removed). Duplicate keys keep the first value, as Postfix does, and are listed as warnings.
//! - regexp(5) patterns are POSIX extended regular expressions run by the `regex` crate; the
//!   differences (leftmost-first groups, escapes, refused `x` flag) are listed in
//!   [`table::regexp`].
//! - Canonical form handles source routes, `user%domain` without `@`, bare names
//!   (`append_at_myorigin`), trailing dots and lowercases the domain; it does not do UUCP bang
//!   paths (`swap_bangpath`), `append_dot_mydomain`, or the percent hack on local domains at
//!   resolve time.
//! - cleanup rewrites the envelope (canonical maps, masquerading, virtual aliases) and fixes
//!   headers, but does not rewrite addresses inside headers (`canonical_classes`,
//!   `masquerade_classes` header classes) or add `To: undisclosed-recipients:;`.
//! - Local alias expansion returns `|command` and `/file` deliveries as data; it never runs
//!   anything. An alias that names itself delivers to the mailbox of that name.
//! - `hash:`, `btree:`, `lmdb:` tables are compiled from their source file (the one `postmap`
//!   reads), not read from the `.db` file; `proxy:` is ignored; `unix:passwd.byname` reads
//!   `/etc/passwd`. Other table types (`ldap:`, `mysql:`, `pcre:`, ...) are refused.
//!
//! ## Tests against Postfix
//!
//! `tests/postmap_diff.rs` asks `postmap -q` and `postalias -q` the same keys of the same files
//! (source format, regexp, aliases); `tests/postfix_routing.rs` starts a private Postfix whose
//! transports are `discard(8)` services and compares, for over a hundred recipients, the final
//! recipients, transports and next hops it logs with [`canonical::cleanup_recipient`] plus
//! [`resolve::resolve`]; it also compares local(8)'s expansion of the classic aliases file and
//! smtpd's RCPT replies with [`resolve::check_recipient`].
//!
//! ## Features
//!
//! None: the crate has no optional parts.

pub mod address;
pub mod canonical;
pub mod cleanup;
pub mod error;
pub mod expand;
pub mod lookup;
pub mod params;
pub mod resolve;
pub mod table;

pub use error::{CleanupError, ExpandError, TableError};
/// The envelope types of mailroom-smtp-proto that this crate's API takes and returns.
pub use mailroom_smtp_proto::{Domain, ForwardPath, Host, LocalPart, Mailbox, ReversePath};
pub use params::Params;
pub use table::{Maps, ReloadingTable, Table, TableKind};
