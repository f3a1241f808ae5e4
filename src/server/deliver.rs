//! The queue manager and the delivery agents (Postfix's qmgr, local, virtual, lmtp, smtp).
//!
//! The manager [`Queue::take`](mailroom_queue::Queue::take)s leases (a message and its
//! recipients for one `transport:nexthop`), runs the transport's agent, and hands one outcome
//! per recipient back with `complete`: delivered, deferred (retried with back-off) or bounced
//! (a DSN goes to the sender through the queue). Each result is logged in Postfix's shape:
//! `ID: to=<rcpt>, relay=..., delay=..., status=sent (...)`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mailroom_maildir::Maildir;
use mailroom_queue::{Diagnostic, Lease, Outcome};
use mailroom_rewrite::expand::{Delivery, FsIncludes, dot_forward, local_alias};
use mailroom_rewrite::resolve::{NextHop, resolve};
use mailroom_rewrite::{ForwardPath, Mailbox, Params, ReversePath};
use mailroom_smtp_proto::client::{ClientConfig, Envelope as ClientEnvelope, TlsPolicy};
use mailroom_smtp_proto::tokio::{Client, ClientOptions};
use mailroom_smtp_proto::{EnhancedCode, Host, Reply};
use tokio::sync::{Semaphore, watch};

use super::Shared;
use super::dns::{self, RouteError};
use super::imap::Hub;
use super::smtpd::reverse_text;

/// The queue's router: `transport:nexthop` of a recipient, from trivial-rewrite's resolution.
pub fn route(params: &Params, path: &ForwardPath) -> String {
    match path.mailbox() {
        Some(m) => {
            let r = resolve(params, m.clone());
            format!("{}:{}", r.transport, r.nexthop)
        }
        None => format!("local:{}", params.myhostname),
    }
}

/// `4.0.0`, checked when compiling.
const TEMP_FAILURE: EnhancedCode = match EnhancedCode::new(4, 0, 0) {
    Some(c) => c,
    None => panic!("4.0.0 is an enhanced status code"),
};

fn code(class: u8, subject: u16, detail: u16) -> EnhancedCode {
    EnhancedCode::new(class, subject, detail).unwrap_or(TEMP_FAILURE)
}

fn defer(status: (u8, u16, u16), text: &str) -> Outcome {
    Outcome::Deferred(Diagnostic::new(code(4, status.1, status.2), text))
}

fn bounce(status: (u8, u16, u16), text: &str) -> Outcome {
    Outcome::Bounced(Diagnostic::new(code(5, status.1, status.2), text))
}

fn from_reply(reply: &Reply) -> Outcome {
    let d = Diagnostic::from_reply(reply);
    if reply.code().is_positive() {
        Outcome::Delivered
    } else if reply.code().is_transient() {
        Outcome::Deferred(d)
    } else {
        Outcome::Bounced(d)
    }
}

/// Runs deliveries until `stop` turns true, then waits (up to 30 s) for those in flight.
pub async fn queue_manager(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(shared.config.default_process_limit.max(1)));
    let mut running = tokio::task::JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let mut took = false;
        while let Ok(permit) = Arc::clone(&permits).try_acquire_owned() {
            let Some(lease) = shared.queue.take() else {
                break;
            };
            took = true;
            let shared = Arc::clone(&shared);
            running.spawn(async move {
                deliver(&shared, lease).await;
                drop(permit);
                // A slot is free and a destination window may have opened.
                shared.wake.notify_one();
            });
        }
        while running.try_join_next().is_some() {}
        if took {
            continue;
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => {}
        }
    }
    let drained = async { while running.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(30), drained)
        .await
        .is_err()
    {
        tracing::warn!("deliveries still running at shutdown are retried at the next start");
        running.shutdown().await;
    }
}

/// Delivers one lease with its transport's agent and records the outcomes.
async fn deliver(shared: &Arc<Shared>, lease: Lease) {
    let id = lease.id();
    let dest = lease.destination().to_string();
    let (transport, nexthop) = dest.split_once(':').unwrap_or((dest.as_str(), ""));
    let env = lease.envelope().clone();
    let rcpts: Vec<(usize, ForwardPath)> = lease
        .recipients()
        .iter()
        .filter_map(|&i| env.recipients.get(i).map(|r| (i, r.path.clone())))
        .collect();
    let (relay, results): (String, Vec<Outcome>) = match transport {
        "local" | "virtual" => {
            let shared2 = Arc::clone(shared);
            let agent = transport.to_string();
            let paths: Vec<ForwardPath> = rcpts.iter().map(|(_, p)| p.clone()).collect();
            let sender = env.reverse_path.clone();
            let r = tokio::task::spawn_blocking(move || {
                deliver_mailboxes(&shared2, &agent, id, &sender, &paths)
            })
            .await;
            let outcomes =
                r.unwrap_or_else(|_| vec![defer((4, 3, 0), "delivery agent crashed"); rcpts.len()]);
            (transport.to_string(), outcomes)
        }
        "lmtp" => deliver_lmtp(shared, id, nexthop, &env.reverse_path, &rcpts).await,
        "smtp" | "relay" => deliver_smtp(shared, id, nexthop, &env.reverse_path, &rcpts).await,
        name if shared.config.pipe_transports.contains_key(name) => {
            let shared2 = Arc::clone(shared);
            let name = name.to_string();
            let hop = nexthop.to_string();
            let paths: Vec<ForwardPath> = rcpts.iter().map(|(_, p)| p.clone()).collect();
            let sender = env.reverse_path.clone();
            let r = tokio::task::spawn_blocking(move || {
                deliver_pipe(&shared2, &name, &hop, id, &sender, &paths)
            })
            .await;
            let outcomes =
                r.unwrap_or_else(|_| vec![defer((4, 3, 0), "delivery agent crashed"); rcpts.len()]);
            (transport.to_string(), outcomes)
        }
        "error" => ("none".into(), vec![bounce((5, 0, 0), nexthop); rcpts.len()]),
        "discard" => ("none".into(), vec![Outcome::Delivered; rcpts.len()]),
        other => (
            "none".into(),
            vec![defer((4, 3, 5), &format!("mail transport unavailable: {other}")); rcpts.len()],
        ),
    };
    let delay = SystemTime::now()
        .duration_since(env.arrival)
        .unwrap_or_default()
        .as_secs_f64();
    let pairs: Vec<(usize, Outcome)> = rcpts.iter().map(|(i, _)| *i).zip(results).collect();
    for ((_, path), (_, outcome)) in rcpts.iter().zip(&pairs) {
        let (status, why) = match outcome {
            Outcome::Delivered => ("sent", "delivered".to_string()),
            Outcome::Deferred(d) => ("deferred", format!("{} {}", d.status(), d.text())),
            Outcome::Bounced(d) => ("bounced", format!("{} {}", d.status(), d.text())),
        };
        tracing::info!(
            "{id}: to=<{}>, relay={relay}, delay={delay:.2}, status={status} ({why})",
            path.mailbox().map_or_else(String::new, ToString::to_string)
        );
    }
    let shared2 = Arc::clone(shared);
    let done = tokio::task::spawn_blocking(move || shared2.queue.complete(lease, &pairs)).await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("{id}: cannot record the delivery results: {e}"),
        Err(_) => tracing::error!("{id}: cannot record the delivery results"),
    }
}

/// Reads the message content (bounded by `message_size_limit` plus room for our headers).
fn read_body(shared: &Shared, id: mailroom_queue::QueueId) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let limit = shared.config.message_size_limit + (1 << 20);
    shared
        .queue
        .open_body(id)
        .map_err(|e| e.to_string())?
        .take(limit)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    Ok(body)
}

/// Where a mailbox path points: a Maildir (trailing `/`) or an mbox file.
fn store(
    hub: &Hub,
    path: PathBuf,
    maildir: bool,
    prefix: &[u8],
    body: &[u8],
    sender: &ReversePath,
) -> Outcome {
    if maildir {
        // As local(8) makes a missing Maildir, we make the home it lives in too.
        if let Some(parent) = path.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            return defer(
                (4, 2, 0),
                &format!("cannot create {}: {e}", parent.display()),
            );
        }
        let md = match Maildir::create(&path) {
            Ok(md) => md,
            Err(e) => return defer((4, 2, 0), &format!("cannot create maildir: {e}")),
        };
        match md.deliver(prefix.chain(body)) {
            Ok(_) => {
                // Wakes the IMAP sessions idling on this Maildir.
                hub.changed(&path);
                Outcome::Delivered
            }
            Err(mailroom_maildir::DeliverError::OverQuota { .. }) => {
                bounce((5, 2, 2), "mailbox full")
            }
            Err(e) => defer((4, 2, 0), &format!("maildir delivery failed: {e}")),
        }
    } else {
        let from = match mailroom_mbox::FromLine::now(reverse_text(sender).as_bytes()) {
            Ok(f) => f,
            Err(e) => return bounce((5, 1, 7), &format!("sender unusable in mbox: {e}")),
        };
        if let Some(dir) = path.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            return defer((4, 2, 0), &format!("cannot create {}: {e}", dir.display()));
        }
        match mailroom_mbox::Mbox::new(&path).append(&from, prefix.chain(body)) {
            Ok(_) => Outcome::Delivered,
            Err(e) => defer((4, 2, 0), &format!("mbox delivery failed: {e}")),
        }
    }
}

/// The `local` and `virtual` agents: alias expansion, then Maildir or mbox.
fn deliver_mailboxes(
    shared: &Shared,
    transport: &str,
    id: mailroom_queue::QueueId,
    sender: &ReversePath,
    rcpts: &[ForwardPath],
) -> Vec<Outcome> {
    let body = match read_body(shared, id) {
        Ok(b) => b,
        Err(e) => {
            return vec![defer((4, 3, 0), &format!("cannot read queue file: {e}")); rcpts.len()];
        }
    };
    rcpts
        .iter()
        .map(|rcpt| {
            let Some(mailbox) = rcpt.mailbox().cloned().or_else(|| {
                format!("postmaster@{}", shared.params.myhostname)
                    .parse()
                    .ok()
            }) else {
                return bounce((5, 1, 1), "bad recipient");
            };
            let prefix = format!(
                "Return-Path: <{}>\r\nDelivered-To: {}\r\n",
                reverse_text(sender),
                mailbox
            );
            if transport == "virtual" {
                deliver_virtual(shared, &mailbox, prefix.as_bytes(), &body, sender)
            } else {
                deliver_local(shared, id, &mailbox, prefix.as_bytes(), &body, sender)
            }
        })
        .collect()
}

fn deliver_virtual(
    shared: &Shared,
    mailbox: &Mailbox,
    prefix: &[u8],
    body: &[u8],
    sender: &ReversePath,
) -> Outcome {
    let params = &shared.params;
    let address = mailbox.to_string();
    let Some(found) =
        mailroom_rewrite::lookup::find(&params.virtual_mailbox_maps, params, &address)
    else {
        return bounce((5, 1, 1), "unknown user in virtual mailbox table");
    };
    let rel = found.value.trim().to_string();
    if rel.contains("..") || rel.starts_with('/') {
        return bounce((5, 3, 5), "bad virtual mailbox path");
    }
    let base = shared.config.data_path(&shared.config.virtual_mailbox_base);
    let maildir = rel.ends_with('/');
    store(&shared.hub, base.join(rel), maildir, prefix, body, sender)
}

/// local(8)'s loop check: whether the message's header already says it was delivered to
/// `address` (a `Delivered-To:` line this agent added before forwarding it).
fn delivered_to(body: &[u8], address: &str) -> bool {
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.split_at(l.iter().position(|&b| b == b':')?);
            name.eq_ignore_ascii_case(b"Delivered-To")
                .then(|| &value[1..])
        })
        .any(|value| {
            String::from_utf8_lossy(value)
                .trim()
                .eq_ignore_ascii_case(address)
        })
}

/// The largest `.forward` file read.
const FORWARD_LIMIT: u64 = 1 << 20;

/// The user's `$HOME/.forward`, when there is one.
fn read_forward(home: &Path) -> Result<Option<(PathBuf, String)>, String> {
    let path = home.join(".forward");
    let mut text = String::new();
    match std::fs::File::open(&path) {
        Ok(f) => f
            .take(FORWARD_LIMIT)
            .read_to_string(&mut text)
            .map(|_| Some((path.clone(), text)))
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The `local` agent for one recipient: aliases, then each user's `.forward`, then the
/// mailbox (Maildir or mbox), files, commands, and forwarding through the queue.
///
/// As local(8): a message whose header already has `Delivered-To: <recipient>` is a
/// forwarding loop and bounces (5.4.6); a forwarded copy gets that header. A user's
/// `.forward` is expanded once per delivery: the user named in its own `.forward` (or named
/// again by another user's, closing a cycle) gets the message in its mailbox.
fn deliver_local(
    shared: &Shared,
    id: mailroom_queue::QueueId,
    mailbox: &Mailbox,
    prefix: &[u8],
    body: &[u8],
    sender: &ReversePath,
) -> Outcome {
    let params = &shared.params;
    let domain = mailbox.host().to_string().to_ascii_lowercase();
    let local = mailbox.local_part().to_string();
    let address = mailbox.to_string();
    // RFC 3463: X.4.6 "Routing loop detected".
    if delivered_to(body, &address) {
        return bounce((5, 4, 6), &format!("mail forwarding loop for {address}"));
    }
    let deliveries = match local_alias(params, &local, &FsIncludes) {
        Ok(d) => d,
        Err(e) => return defer((4, 3, 0), &format!("alias expansion failed: {e}")),
    };
    let mut todo: std::collections::VecDeque<Delivery> =
        deliveries.into_iter().map(|d| d.delivery).collect();
    // Users whose .forward was expanded in this delivery (passwd names, lowercase).
    let mut forwarded = std::collections::HashSet::new();
    let mut worst = Outcome::Delivered;
    while let Some(delivery) = todo.pop_front() {
        let outcome = match delivery {
            Delivery::Mailbox(name) => {
                let user =
                    shared
                        .passwd
                        .recipient_user(&name, &domain, &params.recipient_delimiter);
                match user {
                    None => bounce((5, 1, 1), &format!("unknown user: \"{name}\"")),
                    Some(u) if u.home.as_os_str().is_empty() => {
                        defer((4, 3, 0), &format!("user {} has no home directory", u.name))
                    }
                    Some(u) => {
                        let forward = if forwarded.insert(u.name.to_ascii_lowercase()) {
                            read_forward(&u.home)
                        } else {
                            Ok(None)
                        };
                        match forward {
                            Ok(Some((path, text))) => {
                                match dot_forward(params, &name, &path, &text, &FsIncludes) {
                                    Ok(items) => {
                                        todo.extend(items.into_iter().map(|d| d.delivery));
                                        continue;
                                    }
                                    // The user can mend the file; the mail waits (Postfix
                                    // defers on a .forward it cannot use).
                                    Err(e) => defer((4, 3, 0), &format!(".forward: {e}")),
                                }
                            }
                            Err(e) => defer((4, 3, 0), &format!("cannot read .forward: {e}")),
                            Ok(None) => {
                                let hm = &shared.config.home_mailbox;
                                store(
                                    &shared.hub,
                                    u.home.join(hm),
                                    hm.ends_with('/'),
                                    prefix,
                                    body,
                                    sender,
                                )
                            }
                        }
                    }
                }
            }
            Delivery::File(path) => store(&shared.hub, path, false, prefix, body, sender),
            Delivery::Forward(to) => {
                let env =
                    mailroom_queue::Envelope::new(sender.clone(), vec![ForwardPath::from(to)]);
                let header = format!("Delivered-To: {address}\r\n");
                match shared.queue.enqueue(env, header.as_bytes().chain(body)) {
                    Ok(new) => {
                        tracing::info!("{id}: forwarded as {new}");
                        shared.wake.notify_one();
                        Outcome::Delivered
                    }
                    Err(e) => defer((4, 3, 0), &format!("cannot forward: {e}")),
                }
            }
            Delivery::Command(cmd) => run_command(&cmd, prefix, body),
        };
        worst = match (&worst, outcome) {
            (Outcome::Bounced(_), _) => worst,
            (_, o @ Outcome::Bounced(_)) => o,
            (Outcome::Deferred(_), _) => worst,
            (_, o) => o,
        };
    }
    worst
}

/// A pipe(8) transport: the configured command, arguments expanded, once per recipient.
fn deliver_pipe(
    shared: &Shared,
    name: &str,
    nexthop: &str,
    id: mailroom_queue::QueueId,
    sender: &ReversePath,
    rcpts: &[ForwardPath],
) -> Vec<Outcome> {
    let Some(argv) = shared.config.pipe_transports.get(name) else {
        return vec![defer((4, 3, 5), "pipe transport not configured"); rcpts.len()];
    };
    let body = match read_body(shared, id) {
        Ok(b) => b,
        Err(e) => {
            return vec![defer((4, 3, 0), &format!("cannot read queue file: {e}")); rcpts.len()];
        }
    };
    let sender = reverse_text(sender);
    rcpts
        .iter()
        .map(|rcpt| {
            let recipient = rcpt.mailbox().map_or_else(String::new, ToString::to_string);
            let (user, domain) = recipient.rsplit_once('@').unwrap_or((&recipient, ""));
            let args: Vec<String> = argv
                .iter()
                .map(|a| {
                    a.replace("${sender}", &sender)
                        .replace("${recipient}", &recipient)
                        .replace("${user}", user)
                        .replace("${domain}", domain)
                        .replace("${nexthop}", nexthop)
                })
                .collect();
            let prefix = format!("Delivered-To: {recipient}\r\n");
            let mut cmd = std::process::Command::new(&args[0]);
            cmd.args(&args[1..]);
            run_child(cmd, prefix.as_bytes(), &body)
        })
        .collect()
}

/// An alias `|command`: run by `/bin/sh -c` as local(8) does, the message on stdin; exit codes
/// are sysexits (75 `EX_TEMPFAIL` defers, other failures bounce).
fn run_command(cmd: &str, prefix: &[u8], body: &[u8]) -> Outcome {
    let mut command = std::process::Command::new("/bin/sh");
    command.arg("-c").arg(cmd);
    run_child(command, prefix, body)
}

/// Runs a delivery command with the message on stdin; sysexits: 75 defers, others bounce.
fn run_child(mut command: std::process::Command, prefix: &[u8], body: &[u8]) -> Outcome {
    let child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return defer((4, 3, 0), &format!("cannot run command: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(prefix).and_then(|()| stdin.write_all(body));
    }
    match child.wait() {
        Ok(s) if s.success() => Outcome::Delivered,
        Ok(s) if s.code() == Some(75) => defer((4, 3, 0), "command deferred (EX_TEMPFAIL)"),
        Ok(s) => bounce((5, 3, 0), &format!("command failed: {s}")),
        Err(e) => defer((4, 3, 0), &format!("command failed: {e}")),
    }
}

fn my_host(shared: &Shared) -> Host {
    shared
        .config
        .myhostname
        .parse()
        .unwrap_or_else(|_| ClientConfig::default().hostname)
}

async fn deliver_lmtp(
    shared: &Arc<Shared>,
    id: mailroom_queue::QueueId,
    nexthop: &str,
    sender: &ReversePath,
    rcpts: &[(usize, ForwardPath)],
) -> (String, Vec<Outcome>) {
    let all = |o: Outcome| vec![o; rcpts.len()];
    let address: mailroom_lmtp::Address = match nexthop.parse() {
        Ok(a) => a,
        Err(e) => {
            return (
                nexthop.into(),
                all(defer((4, 3, 5), &format!("bad lmtp next hop: {e}"))),
            );
        }
    };
    let body = match blocking_body(shared, id).await {
        Ok(b) => b,
        Err(o) => return (nexthop.into(), all(o)),
    };
    let options = mailroom_lmtp::ClientOptions::new(my_host(shared));
    let mut client = match mailroom_lmtp::Client::connect(&address, options).await {
        Ok(c) => c,
        Err(e) => {
            return (
                nexthop.into(),
                all(defer((4, 4, 1), &format!("connect to {address}: {e}"))),
            );
        }
    };
    let paths: Vec<ForwardPath> = rcpts.iter().map(|(_, p)| p.clone()).collect();
    let results = client.deliver(sender.clone(), paths, &body).await;
    let outcomes = match results {
        Ok(r) if r.len() == rcpts.len() => r.iter().map(|o| from_reply(&o.reply)).collect(),
        Ok(_) => all(defer((4, 3, 0), "lmtp: wrong number of replies")),
        Err(e) => all(defer((4, 4, 2), &format!("lmtp: {e}"))),
    };
    let _ = client.quit().await;
    (address.to_string(), outcomes)
}

async fn blocking_body(
    shared: &Arc<Shared>,
    id: mailroom_queue::QueueId,
) -> Result<Vec<u8>, Outcome> {
    let s = Arc::clone(shared);
    match tokio::task::spawn_blocking(move || read_body(&s, id)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => Err(defer((4, 3, 0), &format!("cannot read queue file: {e}"))),
        Err(_) => Err(defer((4, 3, 0), "cannot read queue file")),
    }
}

/// The hosts and addresses to try for a next hop, in order, or the outcome for every
/// recipient when there are none: `[host]` and `[host]:port` by the host's address records
/// (no MX lookup), a bare domain by its MX records (RFC 5321 §5.1, see [`dns::destinations`]).
async fn smtp_targets(
    shared: &Shared,
    hop: &NextHop,
    port: u16,
) -> Result<Vec<(String, std::net::SocketAddr)>, Outcome> {
    let with_port = |list: Vec<(String, std::net::IpAddr)>| {
        list.into_iter()
            .map(|(h, ip)| (h, std::net::SocketAddr::new(ip, port)))
            .collect()
    };
    if let Ok(ip) = hop.host.parse::<std::net::IpAddr>() {
        return Ok(vec![(
            hop.host.clone(),
            std::net::SocketAddr::new(ip, port),
        )]);
    }
    let resolver = &*shared.resolver;
    let found = if hop.mx_lookup {
        dns::destinations(resolver, &hop.host).await
    } else {
        match resolver.addresses(&hop.host).await {
            Ok(ips) if !ips.is_empty() => {
                Ok(ips.into_iter().map(|ip| (hop.host.clone(), ip)).collect())
            }
            Ok(_) | Err(dns::DnsError::NotFound | dns::DnsError::NoRecords) => {
                Err(RouteError::NotFound)
            }
            Err(dns::DnsError::Temporary(e)) => Err(RouteError::Temporary(e)),
        }
    };
    found.map(with_port).map_err(|e| match e {
        // RFC 7505 §4.1: "556 5.1.10 Recipient address has null MX".
        RouteError::NullMx => bounce(
            (5, 1, 10),
            &format!(
                "556 5.1.10 Domain {} does not accept mail (null MX)",
                hop.host
            ),
        ),
        RouteError::NotFound => bounce(
            (5, 1, 2),
            &format!("Host or domain name not found: {}", hop.host),
        ),
        RouteError::Temporary(e) => defer(
            (4, 4, 3),
            &format!("Host or domain name lookup failed: {}: {e}", hop.host),
        ),
    })
}

/// How long an idle smtp connection is kept for the next message to its next hop (Postfix's
/// `smtp_connection_cache_time_limit`, 2 s).
const CACHE_TIME_LIMIT: Duration = Duration::from_secs(2);

/// The smtp agent's idle connections by next hop, each with the relay it goes to and when it
/// became idle: the next message for that next hop reuses one (after an `RSET` shows it is
/// alive) instead of connecting again; a connection idle for 2 s (`CACHE_TIME_LIMIT`) is closed.
#[derive(Default)]
pub struct ConnectionCache {
    idle: std::sync::Mutex<IdleMap>,
}

/// Idle connections by next hop: relay name, client, idle since.
type IdleMap = std::collections::HashMap<String, Vec<(String, Client, Instant)>>;

impl ConnectionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, IdleMap> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An idle connection to `nexthop` that still answers, with its relay name.
    async fn take(&self, nexthop: &str) -> Option<(String, Client)> {
        loop {
            let entry = {
                let mut idle = self.lock();
                let list = idle.get_mut(nexthop)?;
                let e = list.pop();
                if list.is_empty() {
                    idle.remove(nexthop);
                }
                e
            };
            let (relay, mut client, since) = entry?;
            if since.elapsed() < CACHE_TIME_LIMIT
                && matches!(client.rset().await, Ok(r) if r.code().is_positive())
            {
                return Some((relay, client));
            }
            let _ = client.quit().await;
        }
    }

    /// Keeps `client` for the next message to `nexthop`; closes it (and any other connection
    /// idle too long) once the time limit has passed.
    fn put(shared: &Arc<Shared>, nexthop: &str, relay: String, client: Client) {
        shared
            .smtp_cache
            .lock()
            .entry(nexthop.to_string())
            .or_default()
            .push((relay, client, Instant::now()));
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            tokio::time::sleep(CACHE_TIME_LIMIT).await;
            let expired: Vec<Client> = {
                let mut idle = shared.smtp_cache.lock();
                let mut out = Vec::new();
                for list in idle.values_mut() {
                    let (old, keep): (Vec<_>, Vec<_>) = list
                        .drain(..)
                        .partition(|(_, _, since)| since.elapsed() >= CACHE_TIME_LIMIT);
                    *list = keep;
                    out.extend(old.into_iter().map(|(_, c, _)| c));
                }
                idle.retain(|_, list| !list.is_empty());
                out
            };
            for client in expired {
                let _ = client.quit().await;
            }
        });
    }
}

/// The `smtp` agent: to the next hop's mail exchangers in order (the first that accepts a
/// connection), one transaction for the lease's recipients; the connection is then kept in
/// the [`ConnectionCache`] for the next message to the same next hop.
async fn deliver_smtp(
    shared: &Arc<Shared>,
    id: mailroom_queue::QueueId,
    nexthop: &str,
    sender: &ReversePath,
    rcpts: &[(usize, ForwardPath)],
) -> (String, Vec<Outcome>) {
    let all = |o: Outcome| vec![o; rcpts.len()];
    let hop = NextHop::parse(nexthop);
    let port: u16 = match hop.port.as_deref().map(str::parse).unwrap_or(Ok(25)) {
        Ok(p) => p,
        Err(_) => return (nexthop.into(), all(bounce((5, 4, 4), "bad next hop port"))),
    };
    let body = match blocking_body(shared, id).await {
        Ok(b) => b,
        Err(o) => return (format!("{}:{port}", hop.host), all(o)),
    };
    let cached = shared.smtp_cache.take(nexthop).await;
    let targets = if cached.is_some() {
        Vec::new()
    } else {
        match smtp_targets(shared, &hop, port).await {
            Ok(t) => t,
            Err(o) => return (format!("{}:{port}", hop.host), all(o)),
        }
    };
    let options = |host: &str| {
        let mut session = ClientConfig::new(my_host(shared));
        // Postfix's smtp_tls_security_level = may: STARTTLS when offered, certificate not
        // checked (RFC 7435 opportunistic security), plain text when not offered.
        session.tls = TlsPolicy::Opportunistic;
        let mut options = ClientOptions::new(session);
        if let (Ok(name), Some(tls)) = (
            rustls::pki_types::ServerName::try_from(host.to_string()),
            opportunistic_tls(),
        ) {
            options = options.with_tls(tls, name);
        }
        options
    };
    let mut connected = cached;
    let mut failures = Vec::new();
    for (host, addr) in &targets {
        match Client::connect(*addr, options(host)).await {
            Ok(c) => {
                connected = Some((format!("{host}[{}]:{}", addr.ip(), addr.port()), c));
                break;
            }
            Err(e) => failures.push(format!(
                "connect to {host}[{}]:{}: {e}",
                addr.ip(),
                addr.port()
            )),
        }
    }
    let Some((relay, mut client)) = connected else {
        return (
            format!("{}:{port}", hop.host),
            all(defer((4, 4, 1), &failures.join("; "))),
        );
    };
    let mut envelope = ClientEnvelope::new(sender.clone(), rcpts.iter().map(|(_, p)| p.clone()));
    envelope.size = Some(body.len() as u64);
    envelope.body = mailroom_smtp_proto::client::body_of(&body);
    let outcomes = match client.send_bytes(envelope, &body).await {
        Ok(result) if result.recipients.len() == rcpts.len() => result
            .recipients
            .iter()
            .map(|r| from_reply(&r.reply))
            .collect(),
        // Not reused: the session is in an unknown state, or unusable.
        Ok(_) => {
            return (
                relay,
                all(defer((4, 3, 0), "smtp: wrong number of results")),
            );
        }
        Err(e) => return (relay, all(defer((4, 4, 2), &format!("smtp: {e}")))),
    };
    ConnectionCache::put(shared, nexthop, relay.clone(), client);
    (relay, outcomes)
}

/// A rustls client configuration for opportunistic STARTTLS: encryption against passive
/// eavesdropping, no authentication of the server (RFC 7435 §1.2; Postfix's `may` level), so
/// any certificate is accepted while the handshake signatures are still checked.
fn opportunistic_tls() -> Option<Arc<rustls::ClientConfig>> {
    static CONFIG: std::sync::OnceLock<Option<Arc<rustls::ClientConfig>>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AnyCertificate(Arc::clone(&provider)));
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .ok()
                .map(|b| {
                    Arc::new(
                        b.dangerous()
                            .with_custom_certificate_verifier(verifier)
                            .with_no_client_auth(),
                    )
                })
        })
        .clone()
}

/// Accepts any server certificate, checks the handshake signatures (opportunistic TLS).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_to_reads_only_the_header() {
        let m = b"Received: x\r\nDelivered-To:  Demo@Localhost \r\nSubject: s\r\n\r\nbody\r\n";
        assert!(delivered_to(m, "demo@localhost"));
        assert!(!delivered_to(m, "other@localhost"));
        // In the body it does not count; neither does another header naming the address.
        let m = b"Subject: Delivered-To: demo@localhost\r\n\r\nDelivered-To: demo@localhost\r\n";
        assert!(!delivered_to(m, "demo@localhost"));
        // Bare LF lines, and no header at all.
        assert!(delivered_to(
            b"delivered-to: demo@localhost\n\nx",
            "demo@localhost"
        ));
        assert!(!delivered_to(b"", "demo@localhost"));
        assert!(!delivered_to(b"no colon line\r\n", "demo@localhost"));
    }
}
