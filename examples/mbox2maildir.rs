//! Converts between mbox and Maildir, flags included.
//!
//! ```text
//! cargo run --example mbox2maildir -- [--variant mboxrd] MBOX MAILDIR      # mbox -> Maildir
//! cargo run --example mbox2maildir -- --reverse [--variant mboxrd] MAILDIR MBOX
//! ```
//!
//! mbox -> Maildir: each message (header section, blank line, body with the mbox quoting
//! removed) is delivered durably into the Maildir (created if missing); `Status`/`X-Status`
//! flags become Maildir flags (R -> S, A -> R, F -> F, T -> D, D -> T) and such messages go to
//! `cur/`. The mbox is only read, under its lock.
//!
//! Maildir -> mbox: each message is appended with locking and fsync; the From_ line carries the
//! `Return-Path` address (or `MAILER-DAEMON`) and the current time; Maildir flags are then
//! written as `Status`/`X-Status` in one crash-safe rewrite.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use mailroom::maildir::{self, Maildir};
use mailroom::mbox::{self, Action, FromLine, Mbox, Reader, Variant};

fn to_maildir_flags(f: mbox::Flags) -> maildir::Flags {
    let mut out = maildir::Flags::empty();
    for (on, flag) in [
        (f.seen, maildir::Flags::SEEN),
        (f.answered, maildir::Flags::REPLIED),
        (f.flagged, maildir::Flags::FLAGGED),
        (f.draft, maildir::Flags::DRAFT),
        (f.deleted, maildir::Flags::TRASHED),
    ] {
        if on {
            out = out | flag;
        }
    }
    out
}

fn to_mbox_flags(f: maildir::Flags, in_cur: bool) -> mbox::Flags {
    mbox::Flags {
        seen: f.contains(maildir::Flags::SEEN),
        old: in_cur,
        answered: f.contains(maildir::Flags::REPLIED),
        flagged: f.contains(maildir::Flags::FLAGGED),
        draft: f.contains(maildir::Flags::DRAFT),
        deleted: f.contains(maildir::Flags::TRASHED),
    }
}

fn mbox_to_maildir(
    mbox_path: PathBuf,
    maildir_path: PathBuf,
    variant: Variant,
) -> Result<usize, String> {
    let mbox = Mbox::new(&mbox_path).with_variant(variant);
    let maildir = Maildir::create(&maildir_path).map_err(|e| e.to_string())?;
    // Hold the mailbox lock while reading, so no delivery lands half-written in our view.
    let lock = mbox.lock().map_err(|e| e.to_string())?;
    let file = lock.file();
    let mut reader = Reader::new(file, variant);
    let mut count = 0;
    while let Some(mut entry) = reader
        .next_entry()
        .map_err(|e| format!("{}: {e}", mbox_path.display()))?
    {
        let flags = mbox::Flags::from_headers(&entry.info().headers);
        // The flags move into the Maildir name; drop their header fields.
        let mut head = mbox::Flags::default()
            .apply(&entry.info().headers)
            .into_bytes();
        head.push(b'\n');
        let delivered = maildir
            .deliver(Cursor::new(head).chain(&mut entry))
            .map_err(|e| e.to_string())?;
        let flags = to_maildir_flags(flags);
        if !flags.is_empty() {
            let message = maildir
                .find(delivered.key.as_str())
                .map_err(|e| e.to_string())?
                .ok_or("delivered message not found")?;
            maildir
                .set_flags(&message, flags)
                .map_err(|e| e.to_string())?;
        }
        count += 1;
    }
    Ok(count)
}

fn maildir_to_mbox(
    maildir_path: PathBuf,
    mbox_path: PathBuf,
    variant: Variant,
) -> Result<usize, String> {
    let maildir = Maildir::open(&maildir_path).map_err(|e| e.to_string())?;
    let mbox = Mbox::new(&mbox_path).with_variant(variant);
    let scan = maildir.scan().map_err(|e| e.to_string())?;
    let mut flags_at = HashMap::new();
    for message in &scan.messages {
        let mut content = Vec::new();
        maildir
            .open_message(message)
            .map_err(|e| e.to_string())?
            .read_to_end(&mut content)
            .map_err(|e| e.to_string())?;
        let headers_end = content
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap_or(content.len());
        let headers = mbox::Headers::new(content[..headers_end].to_vec());
        let sender = headers
            .get("return-path")
            .map(|v| v.trim_ascii_start().strip_prefix(b"<").unwrap_or(v))
            .map(|v| v.strip_suffix(b">").unwrap_or(v).to_vec())
            .unwrap_or_default();
        let from_line = FromLine::now(&sender).map_err(|e| e.to_string())?;
        let appended = mbox
            .append(&from_line, &content[..])
            .map_err(|e| e.to_string())?;
        let in_cur = message.subdir() == maildir::Subdir::Cur;
        let flags = to_mbox_flags(message.flags(), in_cur);
        if flags != mbox::Flags::default() {
            flags_at.insert(appended.offset, flags);
        }
    }
    if !flags_at.is_empty() {
        mbox.rewrite(|entry| match flags_at.get(&entry.offset) {
            Some(flags) => Action::SetFlags(*flags),
            None => Action::Keep,
        })
        .map_err(|e| e.to_string())?;
    }
    Ok(scan.messages.len())
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let reverse = if let Some(i) = args.iter().position(|a| a == "--reverse") {
        args.remove(i);
        true
    } else {
        false
    };
    let mut variant = Variant::Mboxrd;
    if let Some(i) = args.iter().position(|a| a == "--variant") {
        args.remove(i);
        if i >= args.len() {
            eprintln!("--variant needs a value (mboxo, mboxrd, mboxcl, mboxcl2)");
            return ExitCode::from(2);
        }
        match args.remove(i).parse() {
            Ok(v) => variant = v,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    }
    let [from, to] = <[String; 2]>::try_from(args).unwrap_or_else(|_| {
        eprintln!("usage: mbox2maildir [--reverse] [--variant V] FROM TO");
        std::process::exit(2)
    });
    let result = if reverse {
        maildir_to_mbox(from.into(), to.into(), variant)
    } else {
        mbox_to_maildir(from.into(), to.into(), variant)
    };
    match result {
        Ok(n) => {
            eprintln!("{n} messages converted");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mbox2maildir: {e}");
            ExitCode::FAILURE
        }
    }
}
