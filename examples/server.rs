//! The mailroom server: `cargo run --release --example server`.
//!
//! ```text
//! server [--config FILE]                 run (no file: the embedded default configuration)
//! server [--config FILE] check           validate the configuration, tables and passwd-file
//! server [--config FILE] lookup TABLE KEY   query a lookup table (`hash:/etc/aliases`, ...)
//! server print-default-config            the embedded default, every key documented
//! server [--config FILE] queue list|show ID|hold ID|release ID|delete ID|flush
//!                                        postqueue/postsuper on the queue, while the server
//!                                        is stopped (the queue is locked by a running server)
//! ```
//!
//! With no configuration it listens on loopback only (SMTP 2525, submission 2587 with STARTTLS,
//! submissions 2465 with implicit TLS, IMAP 2143 with STARTTLS, IMAPS 2993, LMTP 2424), keeps
//! its data under `./mailroom-data`, serves the domain `localhost`, and creates a demo user
//! whose password it prints once. The banner says how to send a first message, where it lands
//! and how to read it over IMAP.
//!
//! Environment overrides (for tests and quick trials): `MAILROOM_DATA` (data_directory),
//! `MAILROOM_HOSTNAME` (myhostname), `MAILROOM_SMTP_LISTEN` (smtpd_listen),
//! `MAILROOM_SUBMISSION_LISTEN`, `MAILROOM_SUBMISSIONS_LISTEN`, `MAILROOM_IMAP_LISTEN`,
//! `MAILROOM_IMAPS_LISTEN`, `MAILROOM_LMTP_LISTEN`, `MAILROOM_RELAYHOST` (an empty value
//! turns a listener off).
//! SIGTERM or Ctrl-C stops it gracefully.

use std::path::PathBuf;
use std::process::ExitCode;

use mailroom::server::{self, Config, DEFAULT_CONFIG};

fn load(config_path: Option<&PathBuf>) -> Result<Config, String> {
    let mut config = match config_path {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::default_config(),
    };
    let env = |name: &str| std::env::var(name).ok();
    if let Some(v) = env("MAILROOM_DATA") {
        config.data_directory = v.into();
    }
    if let Some(v) = env("MAILROOM_HOSTNAME") {
        config.myhostname = v;
    }
    if let Some(v) = env("MAILROOM_SMTP_LISTEN") {
        config.smtpd_listen = v;
    }
    if let Some(v) = env("MAILROOM_SUBMISSION_LISTEN") {
        config.submission_listen = v;
    }
    if let Some(v) = env("MAILROOM_SUBMISSIONS_LISTEN") {
        config.submissions_listen = v;
    }
    if let Some(v) = env("MAILROOM_IMAP_LISTEN") {
        config.imap_listen = v;
    }
    if let Some(v) = env("MAILROOM_IMAPS_LISTEN") {
        config.imaps_listen = v;
    }
    if let Some(v) = env("MAILROOM_LMTP_LISTEN") {
        config.lmtp_listen = v;
    }
    if let Some(v) = env("MAILROOM_RELAYHOST") {
        config.relayhost = v;
    }
    Ok(config)
}

fn check(config: Config) -> Result<(), String> {
    let passwd_path = config.data_path(&config.passwd_file);
    let passwd = if passwd_path.exists() {
        server::Passwd::load(&passwd_path).map_err(|e| e.to_string())?
    } else {
        server::Passwd::default()
    };
    server::build_params(&config, &passwd).map_err(|e| e.to_string())?;
    Ok(())
}

fn lookup(config: &Config, table: &str, key: &str) -> Result<Option<String>, String> {
    let spec = if table.contains(':') {
        table.to_string()
    } else {
        format!("hash:{table}")
    };
    let aliases = config.alias_maps.iter().any(|a| a == &spec) || spec.ends_with("aliases");
    let spec = match spec.split_once(':') {
        Some((kind, path)) if !path.starts_with('/') && kind != "inline" => {
            format!("{kind}:{}", config.data_directory.join(path).display())
        }
        _ => spec,
    };
    let t = mailroom::rewrite::Table::open(&spec, aliases).map_err(|e| e.to_string())?;
    Ok(t.get(key).map(|v| v.into_owned()))
}

/// `queue list|show|hold|release|delete|flush` on the queue of a stopped server.
fn queue_command(config: Config, args: &[&str]) -> ExitCode {
    use mailroom::queue::{Queue, QueueId, RealFs};
    let fail = |e: String| {
        eprintln!("mailroom: {e}");
        ExitCode::from(75)
    };
    let shared_config = match server::open_queue_config(&config) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    let dir = shared_config.0;
    let queue = match Queue::open(RealFs, &dir, shared_config.1) {
        Ok(q) => q,
        Err(e) => {
            return fail(format!(
                "cannot open the queue {} (is the server running? stop it first): {e}",
                dir.display()
            ));
        }
    };
    let id = |s: &str| {
        s.parse::<QueueId>()
            .map_err(|_| format!("bad queue id {s:?}"))
    };
    let show = |s: &mailroom::queue::Summary| {
        let e = &s.envelope;
        println!(
            "{}  {:>8} {:?}  <{}>  ({})",
            s.id,
            e.size,
            e.arrival,
            server::smtpd::reverse_text(&e.reverse_path),
            s.state
        );
        for r in &e.recipients {
            println!("    {}  {:?}", r.path, r.status);
        }
    };
    let result: Result<(), String> = match args {
        ["list"] => {
            let list = queue.list();
            for s in &list {
                show(s);
            }
            println!("-- {} messages", list.len());
            Ok(())
        }
        ["show", i] => id(i).and_then(|i| {
            let s = queue.show(i).ok_or(format!("{i}: no such message"))?;
            show(&s);
            let mut out = std::io::stdout();
            queue
                .export(i, &mut out)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }),
        ["hold", i] => id(i).and_then(|i| queue.hold(i).map_err(|e| e.to_string())),
        ["release", i] => id(i).and_then(|i| queue.release(i).map_err(|e| e.to_string())),
        ["delete", i] => id(i).and_then(|i| queue.delete(i).map_err(|e| e.to_string())),
        ["flush"] => {
            println!(
                "{} deferred messages made ready (delivered at the next start)",
                queue.flush()
            );
            Ok(())
        }
        _ => Err("usage: queue list|show ID|hold ID|release ID|delete ID|flush".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn banner(running: &server::Running, shared: &server::Shared, first: Option<&server::FirstStart>) {
    let b = &running.bound;
    let c = &shared.config;
    let show = |a: Option<std::net::SocketAddr>| a.map_or("off".to_string(), |a| a.to_string());
    println!(
        "mailroom: SMTP on {} (STARTTLS offered; mail for our domains, relay for mynetworks)",
        show(b.smtp)
    );
    println!(
        "mailroom: submission on {} (STARTTLS, then AUTH PLAIN/LOGIN)",
        show(b.submission)
    );
    println!(
        "mailroom: submissions on {} (implicit TLS, then AUTH PLAIN/LOGIN)",
        show(b.submissions)
    );
    println!(
        "mailroom: IMAP on {} (STARTTLS, then LOGIN or AUTHENTICATE PLAIN)",
        show(b.imap)
    );
    println!(
        "mailroom: IMAPS on {} (implicit TLS, then LOGIN or AUTHENTICATE PLAIN)",
        show(b.imaps)
    );
    println!(
        "mailroom: LMTP on {} (delivery to the passwd-file's users)",
        b.lmtp
            .as_ref()
            .map_or("off".to_string(), ToString::to_string)
    );
    println!("mailroom: data in {}", c.data_directory.display());
    let user = if c.demo_user.is_empty() {
        "postmaster".to_string()
    } else {
        c.demo_user.clone()
    };
    let to = format!("{user}@{}", c.myhostname);
    if let Some(f) = first {
        println!(
            "mailroom: created the demo user {} with password {}",
            f.login, f.password
        );
        println!(
            "mailroom: (kept, hashed, in {})",
            c.data_path(&c.passwd_file).display()
        );
    }
    let maildir = c
        .data_directory
        .join("home")
        .join(&user)
        .join(c.home_mailbox.trim_end_matches('/'));
    if let Some(addr) = b.smtp {
        println!("mailroom: send a first message with");
        println!(
            "    swaks --server {addr} --from alice@example.com --to {to}   # add --tls for STARTTLS"
        );
        println!(
            "    python3 -c 'import smtplib; s = smtplib.SMTP(\"{}\", {}); s.sendmail(\"alice@example.com\", [\"{to}\"], \"Subject: hi\\r\\n\\r\\nHello.\\r\\n\"); s.quit()'",
            addr.ip(),
            addr.port()
        );
        if c.home_mailbox.ends_with('/') {
            println!(
                "mailroom: it lands in the Maildir {}/new/",
                maildir.display()
            );
            if let Some(imap) = b.imaps.or(b.imap)
                && !c.demo_user.is_empty()
            {
                println!(
                    "mailroom: read it over IMAP{} at {imap} as {user}@{} (a self-signed \
                     certificate: tell the client to accept it)",
                    if b.imaps.is_some() {
                        "S"
                    } else {
                        " with STARTTLS"
                    },
                    c.myhostname
                );
            }
        } else {
            println!("mailroom: it lands in the mbox {}", maildir.display());
        }
    }
    println!("mailroom: Ctrl-C stops (open sessions and deliveries get up to 30 s to finish)");
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut config_path = None;
    if let Some(i) = args.iter().position(|a| a == "--config") {
        if i + 1 >= args.len() {
            eprintln!("mailroom: --config needs a file");
            return ExitCode::from(64);
        }
        config_path = Some(PathBuf::from(args.remove(i + 1)));
        args.remove(i);
    }
    let config = match load(config_path.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mailroom: {e}");
            return ExitCode::from(78);
        }
    };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {}
        ["check"] => {
            return match check(config) {
                Ok(()) => {
                    println!("mailroom: configuration ok");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mailroom: {e}");
                    ExitCode::from(78)
                }
            };
        }
        ["print-default-config"] => {
            print!("{DEFAULT_CONFIG}");
            return ExitCode::SUCCESS;
        }
        ["lookup", table, key] => {
            return match lookup(&config, table, key) {
                Ok(Some(v)) => {
                    println!("{v}");
                    ExitCode::SUCCESS
                }
                Ok(None) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("mailroom: {e}");
                    ExitCode::from(78)
                }
            };
        }
        ["queue", rest @ ..] => return queue_command(config, rest),
        other => {
            eprintln!("mailroom: unknown command {other:?}; see the top of examples/server.rs");
            return ExitCode::from(64);
        }
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mailroom: cannot start the runtime: {e}");
            return ExitCode::from(71);
        }
    };
    let result = runtime.block_on(async {
        let first = server::prepare_data(&config)?;
        let shared = server::open(config)?;
        let running = server::start(std::sync::Arc::clone(&shared)).await?;
        banner(&running, &shared, first.as_ref());
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
            }
        };
        running.run(shutdown).await;
        Ok::<(), server::StartError>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailroom: {e}");
            ExitCode::from(75)
        }
    }
}
