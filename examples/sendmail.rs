//! A sendmail-compatible command for the reference server: reads a message on standard input
//! and drops it into the server's `maildrop/` directory, where the server picks it up (at once
//! if it runs, else at its next start).
//!
//! ```text
//! sendmail [-t] [-i] [-oi] [-f sender] [-F "Full Name"] [-C config.toml] [recipient ...]
//! ```
//!
//! - `-t`: recipients are also read from the `To:`, `Cc:` and `Bcc:` header fields; `Bcc:` is
//!   removed from the message.
//! - `-i` / `-oi`: a line with a single `.` does not end the message (without it, it does, as
//!   sendmail's default).
//! - `-f sender`: the envelope sender (default `$LOGNAME@myhostname`).
//! - `-F name`: the full name for the `From:` field added when the message has none.
//! - `-C file`: the server's configuration file (for its data directory and host name);
//!   `MAILROOM_DATA` and `MAILROOM_HOSTNAME` override as for the server.
//!
//! Exit status: 0 when the message is on disk, sysexits otherwise (64 usage, 65 data, 73 cannot
//! create, 78 configuration).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use mailroom::server::{Config, pickup};

struct Options {
    read_headers: bool,
    dot_ends: bool,
    sender: Option<String>,
    full_name: Option<String>,
    config: Option<PathBuf>,
    recipients: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        read_headers: false,
        dot_ends: true,
        sender: None,
        full_name: None,
        config: None,
        recipients: Vec::new(),
    };
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let mut value = |flag: &str| -> Result<String, String> {
            if a.len() > 2 {
                Ok(a[2..].to_string())
            } else {
                i += 1;
                args.get(i).cloned().ok_or(format!("{flag} needs a value"))
            }
        };
        match a.as_str() {
            "-t" => o.read_headers = true,
            "-i" | "-oi" => o.dot_ends = false,
            "--" => {
                o.recipients.extend(args[i + 1..].iter().cloned());
                break;
            }
            s if s.starts_with("-f") || s.starts_with("-r") => o.sender = Some(value("-f")?),
            s if s.starts_with("-F") => o.full_name = Some(value("-F")?),
            s if s.starts_with("-C") => o.config = Some(value("-C")?.into()),
            // Accepted and ignored, as Postfix's sendmail does: -o options, -B, -N, -v.
            s if s.starts_with("-o") || s.starts_with("-B") || s.starts_with("-N") => {}
            "-v" => {}
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            r => o.recipients.push(r.to_string()),
        }
        i += 1;
    }
    Ok(o)
}

/// The header of `message` as (name, unfolded value) pairs, and where the body starts.
fn header_fields(message: &[u8]) -> (Vec<(String, String)>, usize) {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        let end = message[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |e| pos + e + 1);
        let line = String::from_utf8_lossy(&message[pos..end]);
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return (fields, end);
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        } else {
            // Not a header line: the body starts here (RFC 5322 needs the empty line; be lenient).
            return (fields, pos);
        }
        pos = end;
    }
    (fields, pos)
}

/// The addresses of an address-list field: `<x@y>` where given, else the bare words with `@`.
fn addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        if let (Some(a), Some(b)) = (part.find('<'), part.rfind('>'))
            && a < b
        {
            out.push(part[a + 1..b].to_string());
        } else if let Some(w) = part.split_whitespace().find(|w| w.contains('@')) {
            out.push(w.trim_matches(['(', ')', '"']).to_string());
        }
    }
    out
}

/// Normalises line ends to CRLF, ends at a lone `.` when asked, removes `Bcc:` with `-t`, and
/// adds `From:` with the full name when there is none.
fn prepare(input: &[u8], o: &Options, sender: &str) -> (Vec<u8>, Vec<String>) {
    let mut lines: Vec<&[u8]> = Vec::new();
    for line in input.split_inclusive(|&b| b == b'\n') {
        let bare = line
            .strip_suffix(b"\n")
            .map_or(line, |l| l.strip_suffix(b"\r").unwrap_or(l));
        if o.dot_ends && bare == b"." {
            break;
        }
        lines.push(bare);
    }
    let mut crlf = Vec::with_capacity(input.len() + lines.len());
    for l in &lines {
        crlf.extend_from_slice(l);
        crlf.extend_from_slice(b"\r\n");
    }
    let (fields, body_at) = header_fields(&crlf);
    let mut recipients = o.recipients.clone();
    if o.read_headers {
        for (name, value) in &fields {
            if ["to", "cc", "bcc"].contains(&name.to_ascii_lowercase().as_str()) {
                recipients.extend(addresses(value));
            }
        }
    }
    let mut out = Vec::with_capacity(crlf.len() + 100);
    if !fields.iter().any(|(n, _)| n.eq_ignore_ascii_case("from")) {
        match &o.full_name {
            Some(name) => out.extend_from_slice(
                format!("From: \"{}\" <{sender}>\r\n", name.replace(['"', '\\'], "")).as_bytes(),
            ),
            None => out.extend_from_slice(format!("From: <{sender}>\r\n").as_bytes()),
        }
    }
    // Copy the header without Bcc: (with -t), then the body.
    let header = &crlf[..body_at];
    let mut skipping = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        let continuation = line.starts_with(b" ") || line.starts_with(b"\t");
        if !continuation {
            skipping = o.read_headers && line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&crlf[body_at..]);
    recipients.dedup();
    (out, recipients)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sendmail: {e}");
            return ExitCode::from(64);
        }
    };
    let mut config = match &o.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sendmail: {e}");
                return ExitCode::from(78);
            }
        },
        None => Config::default_config(),
    };
    if let Ok(v) = std::env::var("MAILROOM_DATA") {
        config.data_directory = v.into();
    }
    if let Ok(v) = std::env::var("MAILROOM_HOSTNAME") {
        config.myhostname = v;
    }
    let sender = o.sender.clone().unwrap_or_else(|| {
        let user = std::env::var("LOGNAME")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "root".into());
        format!("{user}@{}", config.myhostname)
    });
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin()
        .take(config.message_size_limit + 1)
        .read_to_end(&mut input)
    {
        eprintln!("sendmail: cannot read the message: {e}");
        return ExitCode::from(65);
    }
    if input.len() as u64 > config.message_size_limit {
        eprintln!("sendmail: message larger than message_size_limit");
        return ExitCode::from(65);
    }
    let (message, recipients) = prepare(&input, &o, &sender);
    // A bare name is a local user (sendmail appends $myorigin).
    let recipients: Vec<String> = recipients
        .into_iter()
        .map(|r| {
            if r.contains('@') {
                r
            } else {
                format!("{r}@{}", config.myhostname)
            }
        })
        .collect();
    if recipients.is_empty() {
        eprintln!("sendmail: no recipients");
        return ExitCode::from(64);
    }
    for r in &recipients {
        if r.parse::<mailroom::smtp::Mailbox>().is_err() {
            eprintln!("sendmail: bad recipient address {r:?}");
            return ExitCode::from(65);
        }
    }
    match pickup::write(&config.data_directory, &sender, &recipients, &message) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "sendmail: cannot write into {}/maildrop: {e}",
                config.data_directory.display()
            );
            ExitCode::from(73)
        }
    }
}
