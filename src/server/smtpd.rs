//! The SMTP roles (Postfix's smtpd): policy at MAIL and RCPT, AUTH against the passwd-file,
//! then cleanup and a durable enqueue before `250 2.0.0 Ok: queued as ID`.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use mailroom_queue::Envelope;
use mailroom_rewrite::canonical::{cleanup_recipient, rewrite_sender};
use mailroom_rewrite::cleanup::{MessageInfo, cleanup_message};
use mailroom_rewrite::resolve::{AddressClass, check_recipient, classify};
use mailroom_smtp_proto::server::{Credentials, ServerConfig};
use mailroom_smtp_proto::tokio::{Context, Handler, Server};
use mailroom_smtp_proto::types::param::{MailParams, RcptParams};
use mailroom_smtp_proto::{ForwardPath, Reply, ReplyCode, ReversePath};

use super::Shared;

/// Which listener a session came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The port-25 role: mail for our domains from anyone, relay for `mynetworks`.
    Smtp,
    /// Submission (port 587): STARTTLS, then AUTH is required for any mail.
    Submission,
    /// Submission over implicit TLS (port 465).
    Submissions,
}

/// Per-connection state.
#[derive(Default)]
pub struct Session {
    content: Vec<u8>,
    too_big: bool,
    auth_failures: u32,
}

/// The handler of one role.
pub struct Smtpd {
    shared: Arc<Shared>,
    role: Role,
}

fn reply(code: ReplyCode, text: &str) -> Reply {
    Reply::new(code, text)
}

/// A token unique in this process for `Message-Id` (the queue ID is known only after the
/// enqueue).
fn message_token() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let micros = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!(
        "{micros:X}.{:X}.{:X}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Smtpd {
    fn in_mynetworks(&self, ip: IpAddr) -> bool {
        self.shared.networks.iter().any(|n| n.contains(ip))
    }

    fn may_relay<S>(&self, ctx: &Context<S>) -> bool {
        ctx.authenticated.is_some() || self.in_mynetworks(ctx.peer.ip())
    }

    /// The trace header (RFC 5321 §4.4), with RFC 3848's protocol names.
    fn received(&self, ctx: &Context<Session>) -> String {
        let helo = ctx
            .helo
            .as_ref()
            .map_or_else(|| "unknown".to_string(), ToString::to_string);
        let with = match (ctx.tls, ctx.authenticated.is_some()) {
            (false, false) => "ESMTP",
            (true, false) => "ESMTPS",
            (false, true) => "ESMTPA",
            (true, true) => "ESMTPSA",
        };
        let rcpt = match ctx.recipients.as_slice() {
            [one] => format!("\r\n\tfor {one}"),
            _ => String::new(),
        };
        format!(
            "Received: from {} ([{}])\r\n\tby {} (mailroom) with {with}{rcpt};\r\n\t{}\r\n",
            sanitize(&helo),
            ctx.peer.ip(),
            self.shared.config.myhostname,
            mailroom_smtp_proto::date::rfc5322_date(SystemTime::now()),
        )
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Handler for Smtpd {
    type State = Session;

    async fn mail(
        &self,
        ctx: &mut Context<Session>,
        _from: &ReversePath,
        _params: &MailParams,
    ) -> Result<(), Reply> {
        if self.role != Role::Smtp && ctx.authenticated.is_none() {
            return Err(reply(
                ReplyCode::AUTH_REQUIRED,
                "5.7.0 Authentication required",
            ));
        }
        Ok(())
    }

    async fn rcpt(
        &self,
        ctx: &mut Context<Session>,
        to: &ForwardPath,
        _params: &RcptParams,
    ) -> Result<(), Reply> {
        let c = &self.shared.config;
        if ctx.recipients.len() >= c.smtpd_recipient_limit {
            return Err(reply(
                ReplyCode::INSUFFICIENT_STORAGE,
                "4.5.3 Error: too many recipients",
            ));
        }
        let params = &self.shared.params;
        // <Postmaster> (no domain) is always ours.
        let Some(mailbox) = to.mailbox() else {
            return Ok(());
        };
        let shown = sanitize(&mailbox.to_string());
        // reject_unauth_destination: a client that may not relay only reaches our domains.
        let domain = mailbox.host().to_string().to_ascii_lowercase();
        let class = classify(params, &domain);
        if class == AddressClass::Default && !self.may_relay(ctx) {
            return Err(reply(
                ReplyCode::TRANSACTION_FAILED,
                &format!("5.7.1 <{shown}>: Relay access denied"),
            ));
        }
        // smtpd_reject_unlisted_recipient.
        check_recipient(params, mailbox).map_err(|r| r.reply(params, &shown))?;
        Ok(())
    }

    async fn data_chunk(&self, ctx: &mut Context<Session>, chunk: Bytes) {
        let limit = self.shared.config.message_size_limit;
        let s = &mut ctx.state;
        if s.too_big || (s.content.len() + chunk.len()) as u64 > limit {
            s.too_big = true;
            s.content = Vec::new();
            return;
        }
        s.content.extend_from_slice(&chunk);
    }

    async fn data_end(&self, ctx: &mut Context<Session>, size: u64) -> Result<String, Reply> {
        let content = std::mem::take(&mut ctx.state.content);
        if std::mem::take(&mut ctx.state.too_big) {
            return Err(reply(
                ReplyCode::EXCEEDED_STORAGE,
                "5.3.4 Error: message file too big",
            ));
        }
        let from = ctx.from.clone().unwrap_or(ReversePath::Null);
        let recipients = ctx.recipients.clone();
        let received = self.received(ctx);
        let shared = Arc::clone(&self.shared);
        let client = ctx.peer;
        let sasl = ctx.authenticated.clone();
        let queued = tokio::task::spawn_blocking(move || {
            enqueue(&shared, from, &recipients, received, &content)
                .map(|(id, env)| (id, env, shared))
        })
        .await
        .map_err(|_| {
            reply(
                ReplyCode::LOCAL_ERROR,
                "4.3.0 Error: internal error while queueing",
            )
        })?;
        let (id, env, shared) = queued?;
        shared.wake.notify_one();
        let sasl = sasl.map_or_else(String::new, |u| format!(", sasl_username={u}"));
        tracing::info!("{id}: client=[{}]{sasl}", client.ip());
        tracing::info!(
            "{id}: from=<{}>, size={size}, nrcpt={} (queue active)",
            reverse_text(&env.reverse_path),
            env.recipients.len()
        );
        Ok(id.to_string())
    }

    async fn reset(&self, ctx: &mut Context<Session>) {
        ctx.state.content = Vec::new();
        ctx.state.too_big = false;
    }

    async fn auth(
        &self,
        ctx: &mut Context<Session>,
        credentials: &Credentials,
    ) -> Result<(), Reply> {
        let limit = self.shared.config.smtpd_auth_failure_limit;
        let too_many = || {
            let text = format!(
                "4.7.0 {} Error: too many AUTH failures",
                self.shared.config.myhostname
            );
            // A 421 refusal ends the session once sent (RFC 5321 §3.8; smtp-proto closes).
            reply(ReplyCode::SERVICE_NOT_AVAILABLE, &text)
        };
        if ctx.state.auth_failures >= limit {
            return Err(too_many());
        }
        let password = credentials.password.expose().to_string();
        let username = credentials.username.clone();
        let shared = Arc::clone(&self.shared);
        // A password hash (argon2, SHA512-CRYPT) takes milliseconds of CPU: not on a worker
        // thread that serves other sessions.
        let verified =
            tokio::task::spawn_blocking(move || shared.passwd.verify(&username, &password)).await;
        if verified.unwrap_or(false) {
            return Ok(());
        }
        ctx.state.auth_failures += 1;
        // A growing delay per failure slows password guessing.
        tokio::time::sleep(Duration::from_secs(u64::from(ctx.state.auth_failures))).await;
        tracing::warn!(
            "[{}]: SASL authentication failed for {:?}",
            ctx.peer.ip(),
            sanitize(&credentials.username)
        );
        // The failure that reaches smtpd_auth_failure_limit is answered with 421 and the
        // connection is closed, so no further guess is read on it.
        if ctx.state.auth_failures >= limit {
            tracing::warn!("[{}]: too many AUTH failures", ctx.peer.ip());
            return Err(too_many());
        }
        Err(reply(
            ReplyCode::AUTH_FAILED,
            "5.7.8 Error: authentication failed",
        ))
    }
}

/// The text of a reverse-path without its angle brackets.
pub fn reverse_text(path: &ReversePath) -> String {
    match path {
        ReversePath::Null => String::new(),
        ReversePath::Mailbox(m) => m.to_string(),
    }
}

/// cleanup and enqueue: header fixes, trace header, canonical rewriting and virtual alias
/// expansion of the envelope, then the durable enqueue.
pub(crate) fn enqueue(
    shared: &Shared,
    from: ReversePath,
    recipients: &[ForwardPath],
    received: String,
    content: &[u8],
) -> Result<(mailroom_queue::QueueId, Envelope), Reply> {
    let params = &shared.params;
    let temp = |text: &str| reply(ReplyCode::LOCAL_ERROR, text);
    let from = rewrite_sender(params, &from).map_err(|e| {
        tracing::warn!("sender rewrite failed: {e}");
        temp("4.3.0 Error: sender rewriting failed")
    })?;
    let mut final_rcpts: Vec<ForwardPath> = Vec::new();
    for r in recipients {
        let expanded = cleanup_recipient(params, r).map_err(|e| {
            tracing::warn!("recipient {r}: {e}");
            temp("4.3.0 Error: recipient rewriting failed")
        })?;
        for m in expanded {
            let f = ForwardPath::from(m);
            if !final_rcpts.contains(&f) {
                final_rcpts.push(f);
            }
        }
    }
    let info = MessageInfo {
        sender: from.clone(),
        arrival: SystemTime::now(),
        queue_id: message_token(),
    };
    let (cleaned, verdict) = cleanup_message(params, info, content).map_err(|e| {
        reply(
            ReplyCode::TRANSACTION_FAILED,
            &format!("5.6.0 Error: {}", sanitize(&e.to_string())),
        )
    })?;
    if let Some(why) = verdict.discard {
        tracing::info!("discarded by header_checks: {why}");
    }
    let env = Envelope::new(from, final_rcpts);
    let body = std::io::Read::chain(received.as_bytes(), &cleaned[..]);
    let id = shared.queue.enqueue(env.clone(), body).map_err(|e| {
        tracing::error!("queue file write error: {e}");
        temp("4.3.0 Error: queue file write error")
    })?;
    Ok((id, env))
}

/// Serves one role on `listener` until `shutdown`.
///
/// # Errors
///
/// As the smtp-proto server's.
pub async fn serve(
    shared: Arc<Shared>,
    role: Role,
    tls: Arc<rustls::ServerConfig>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let c = &shared.config;
    let mut config = ServerConfig::new(c.myhostname.clone());
    config.max_message_size = Some(c.message_size_limit);
    config.max_errors = c.smtpd_hard_error_limit;
    config.command_timeout = Duration::from_secs(c.smtpd_timeout);
    config.data_timeout = Duration::from_secs(c.smtpd_timeout);
    config.limits.recipients = c.smtpd_recipient_limit;
    if role == Role::Smtp {
        // AUTH is for submission (Postfix's master.cf `-o smtpd_sasl_auth_enable=yes`).
        config.auth_mechanisms.clear();
    } else {
        config.auth_requires_tls = true;
    }
    let per_client = c.smtpd_client_connection_count_limit;
    let total = c.default_process_limit.max(1);
    // Postfix's smtpd_client_event_limit_exceptions defaults to $mynetworks: those clients
    // are not counted.
    let networks = shared.networks.clone();
    let exempt = move |ip: IpAddr| networks.iter().any(|n| n.contains(ip));
    let server = Server::new(config, Smtpd { shared, role })
        .max_connections(total)
        .max_connections_per_client(per_client, exempt);
    let server = if role == Role::Submissions {
        server.with_implicit_tls(tls)
    } else {
        server.with_tls(tls)
    };
    server.serve_with_shutdown(listener, shutdown).await
}
