//! Look keys up in a Postfix table file, like `postmap -q` (and `postalias -q` with `-a`).
//!
//! ```text
//! cargo run --example postmap -- -q KEY texthash:/etc/postfix/virtual
//! cargo run --example postmap -- -q user@example.com regexp:/etc/postfix/virtual.regexp
//! cargo run --example postmap -- -a -q postmaster /etc/aliases
//! printf 'a\nb\n' | cargo run --example postmap -- -q - hash:/etc/postfix/transport
//! ```
//!
//! The table is compiled into memory from its source file (no `.db` needed: `hash:`, `btree:`,
//! `lmdb:` name the source). A found key prints its value (`key<TAB>value` with `-q -`) and
//! exits 0; a missing key exits 1, as postmap does; a bad table prints its file and line and
//! exits 2.

use std::io::BufRead;
use std::process::ExitCode;

use mailroom::rewrite::table::Table;

fn usage() -> ExitCode {
    eprintln!(
        "usage: postmap [-a] -q KEY|- [type:]FILE   (type: texthash, hash, regexp; -a: aliases(5))"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut aliases = false;
    let mut key = None;
    let mut spec = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-a" => aliases = true,
            "-q" => key = it.next().cloned(),
            other if spec.is_none() && !other.starts_with('-') => spec = Some(other.to_string()),
            _ => return usage(),
        }
    }
    let (Some(key), Some(spec)) = (key, spec) else {
        return usage();
    };
    let spec = if spec.contains(':') {
        spec
    } else if aliases {
        format!("hash:{spec}")
    } else {
        format!("texthash:{spec}")
    };
    let table = match Table::open(&spec, aliases) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("postmap: fatal: {e}");
            return ExitCode::from(2);
        }
    };
    if key == "-" {
        let mut found = false;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Some(v) = table.get(&line) {
                println!("{line}{}\t{v}", if aliases { ":" } else { "" });
                found = true;
            }
        }
        return if found {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    match table.get(&key) {
        Some(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        None => ExitCode::from(1),
    }
}
