//! A tokio `Server` on 127.0.0.1 with a handler that records every message, for the
//! adapter and interop tests.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mailroom_smtp_proto::server::{Credentials, ServerConfig};
use mailroom_smtp_proto::tokio::{Context, Handler, Server};
use mailroom_smtp_proto::{ForwardPath, MailParams, Reply, ReplyCode, ReversePath};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One message as the handler received it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) from: String,
    pub(crate) recipients: Vec<String>,
    pub(crate) content: Vec<u8>,
    pub(crate) size: u64,
    pub(crate) tls: bool,
    pub(crate) user: Option<String>,
}

/// Accepts everything but the recipient `unknown@...`; the user `alice` with the password
/// `secret`; records messages.
#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) messages: Mutex<Vec<Received>>,
    pub(crate) mails: Mutex<Vec<String>>,
    /// A delay before answering each MAIL (to hold a transaction open).
    pub(crate) mail_delay: Mutex<Option<Duration>>,
}

impl Recorder {
    pub(crate) fn messages(&self) -> Vec<Received> {
        self.messages.lock().unwrap().clone()
    }
}

impl Handler for Recorder {
    type State = Vec<u8>;

    async fn mail(
        &self,
        _ctx: &mut Context<Vec<u8>>,
        from: &ReversePath,
        _params: &MailParams,
    ) -> Result<(), Reply> {
        self.mails.lock().unwrap().push(from.to_string());
        let delay = *self.mail_delay.lock().unwrap();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    async fn rcpt(
        &self,
        _ctx: &mut Context<Vec<u8>>,
        to: &ForwardPath,
        _params: &mailroom_smtp_proto::RcptParams,
    ) -> Result<(), Reply> {
        if to.to_string().starts_with("<unknown@") {
            return Err(Reply::new(
                ReplyCode::MAILBOX_UNAVAILABLE,
                "5.1.1 Recipient address rejected: User unknown",
            ));
        }
        Ok(())
    }

    async fn data_chunk(&self, ctx: &mut Context<Vec<u8>>, chunk: Bytes) {
        ctx.state.extend_from_slice(&chunk);
    }

    async fn data_end(&self, ctx: &mut Context<Vec<u8>>, size: u64) -> Result<String, Reply> {
        let received = Received {
            from: ctx
                .from
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            recipients: ctx.recipients.iter().map(ToString::to_string).collect(),
            content: std::mem::take(&mut ctx.state),
            size,
            tls: ctx.tls,
            user: ctx.authenticated.clone(),
        };
        let mut messages = self.messages.lock().unwrap();
        messages.push(received);
        Ok(format!("Q{}", messages.len()))
    }

    async fn reset(&self, ctx: &mut Context<Vec<u8>>) {
        ctx.state.clear();
    }

    async fn auth(
        &self,
        _ctx: &mut Context<Vec<u8>>,
        credentials: &Credentials,
    ) -> Result<(), Reply> {
        if credentials.username == "alice" && credentials.password.expose() == "secret" {
            Ok(())
        } else {
            Err(Reply::new(
                ReplyCode::AUTH_FAILED,
                "5.7.8 Error: authentication failed",
            ))
        }
    }
}

/// A server running in the background.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) handler: Arc<Recorder>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl Running {
    /// Signals shutdown and waits for the server to return.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("the server stops within its grace period")
            .expect("server task")
            .expect("serve");
    }
}

/// The configuration the tests start from.
pub(crate) fn config() -> ServerConfig {
    ServerConfig::new("mx.example.org")
}

/// Starts `server` on 127.0.0.1 with a free port.
pub(crate) async fn start_with(build: impl FnOnce(Arc<Recorder>) -> Server<Recorder>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(Recorder::default());
    let server = build(Arc::clone(&handler));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_with_shutdown(listener, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        handler,
        stop: Some(stop),
        task,
    }
}

/// Starts a server with `config` (and STARTTLS when `tls` is given).
pub(crate) async fn start(config: ServerConfig, tls: Option<Arc<rustls::ServerConfig>>) -> Running {
    start_with(move |handler| {
        let server = Server::with_shared_handler(config, handler);
        match tls {
            Some(tls) => server.with_tls(tls),
            None => server,
        }
    })
    .await
}
