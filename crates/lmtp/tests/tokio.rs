//! The tokio server and client together, over TCP and a Unix socket: per-recipient outcomes,
//! several messages on one connection, timeouts.

// Integration tests: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mailroom_lmtp::{
    Address, Answer, Client, ClientError, ClientOptions, Context, Delivery, Handler, Listener,
    Outcome, Server, server_config,
};
use mailroom_smtp_proto::client::Stage;
use mailroom_smtp_proto::{ForwardPath, Mailbox, RcptParams, Reply, ReplyCode, ReversePath};

/// Refuses `nobody@` at RCPT, fails `full@` after the data, stores the rest in memory.
#[derive(Default)]
struct Mda {
    stored: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Handler for Mda {
    type State = Vec<u8>;

    async fn rcpt(
        &self,
        _: &mut Context<Vec<u8>>,
        to: &ForwardPath,
        _: &RcptParams,
    ) -> Result<(), Reply> {
        if to.to_string().starts_with("<nobody@") {
            return Err(Reply::new(
                ReplyCode::MAILBOX_UNAVAILABLE,
                "5.1.1 User unknown",
            ));
        }
        Ok(())
    }

    async fn data_chunk(&self, ctx: &mut Context<Vec<u8>>, chunk: Bytes) {
        ctx.state.extend_from_slice(&chunk);
    }

    async fn deliver(&self, ctx: &mut Context<Vec<u8>>, delivery: Delivery) -> Answer {
        let content = std::mem::take(&mut ctx.state);
        let mut stored = self.stored.lock().unwrap();
        delivery.answer(|_, rcpt| {
            if rcpt.to_string().starts_with("<full@") {
                return Err(Reply::new(
                    ReplyCode::EXCEEDED_STORAGE,
                    "5.2.2 Mailbox full",
                ));
            }
            stored.push((rcpt.to_string(), content.clone()));
            Ok(format!("{}", stored.len()))
        })
    }

    async fn reset(&self, ctx: &mut Context<Vec<u8>>) {
        ctx.state.clear();
    }
}

fn path(s: &str) -> ForwardPath {
    ForwardPath::from(s.parse::<Mailbox>().unwrap())
}

fn from() -> ReversePath {
    ReversePath::from("sender@example.org".parse::<Mailbox>().unwrap())
}

async fn exchange(address: Address, mda: Arc<Mda>) {
    let mut client = Client::connect(&address, ClientOptions::default())
        .await
        .unwrap();
    assert!(client.greeting().unwrap().text().contains("LMTP"));
    for round in 0..3 {
        let content = format!("Subject: round {round}\r\n\r\n.leading dot\r\nbody\r\n");
        let results = client
            .deliver(
                from(),
                [
                    path("a@example.com"),
                    path("nobody@example.com"),
                    path("full@example.com"),
                    path("b@example.com"),
                ],
                content.as_bytes(),
            )
            .await
            .unwrap();
        let outcomes: Vec<(Outcome, u16, Stage)> = results
            .iter()
            .map(|r| (r.outcome, r.reply.code().get(), r.stage))
            .collect();
        assert_eq!(
            outcomes,
            [
                (Outcome::Delivered, 250, Stage::Data),
                (Outcome::PermanentFailure, 550, Stage::Rcpt),
                (Outcome::PermanentFailure, 552, Stage::Data),
                (Outcome::Delivered, 250, Stage::Data),
            ]
        );
        assert!(
            client.is_ready(),
            "the connection is reused for the next message"
        );
    }
    client.rset().await.unwrap();
    client.quit().await.unwrap();
    let stored = mda.stored.lock().unwrap();
    assert_eq!(stored.len(), 6);
    assert!(
        stored
            .iter()
            .all(|(_, c)| c.ends_with(b"\r\n.leading dot\r\nbody\r\n"))
    );
}

#[tokio::test]
async fn tcp_per_recipient_outcomes_and_reuse() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = Address::Tcp(listener.local_addr().unwrap().to_string());
    let mda = Arc::new(Mda::default());
    let server = Server::with_shared_handler(server_config("mda.test"), Arc::clone(&mda));
    let task = tokio::spawn(server.serve(listener));
    exchange(address, mda).await;
    task.abort();
}

#[tokio::test]
async fn unix_socket_per_recipient_outcomes_and_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let address = Address::Unix(dir.path().join("lmtp.sock"));
    let listener = Listener::bind(&address).await.unwrap();
    let mda = Arc::new(Mda::default());
    let server = Server::with_shared_handler(server_config("mda.test"), Arc::clone(&mda));
    let task = tokio::spawn(server.serve(listener));
    exchange(address, mda).await;
    task.abort();
}

#[tokio::test]
async fn graceful_shutdown_says_421() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = Address::Tcp(listener.local_addr().unwrap().to_string());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = Server::new(server_config("mda.test"), Mda::default());
    let task = tokio::spawn(server.serve_with_shutdown(listener, async {
        let _ = stopped.await;
    }));
    let mut client = Client::connect(&address, ClientOptions::default())
        .await
        .unwrap();
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    // The idle session was told 421 at once: the recipient is deferred, not lost.
    let results = client
        .deliver(from(), [path("a@example.com")], b"x\r\n")
        .await
        .unwrap();
    assert_eq!(results[0].outcome, Outcome::TemporaryFailure);
    assert_eq!(results[0].reply.code(), ReplyCode::SERVICE_NOT_AVAILABLE);
    assert!(!client.is_ready());
}

#[tokio::test]
async fn greeting_timeout() {
    // A server that accepts and never speaks: the client gives up after its greeting timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = Address::Tcp(listener.local_addr().unwrap().to_string());
    let hold = tokio::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(conn);
    });
    let mut options = ClientOptions::default();
    options.session.timeouts.greeting = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let err = Client::connect(&address, options).await.unwrap_err();
    assert!(matches!(err, ClientError::Session(_)), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    hold.abort();
}

#[tokio::test]
async fn connect_error_names_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let address = Address::Unix(dir.path().join("missing.sock"));
    let err = Client::connect(&address, ClientOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing.sock"), "{err}");
}

/// Counts connections: the first MAIL of each connection increments it.
#[derive(Default)]
struct Counting {
    connections: std::sync::atomic::AtomicUsize,
}

impl Handler for Counting {
    type State = bool;

    async fn mail(
        &self,
        ctx: &mut Context<bool>,
        _: &ReversePath,
        _: &mailroom_smtp_proto::MailParams,
    ) -> Result<(), Reply> {
        if !ctx.state {
            ctx.state = true;
            self.connections
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }

    async fn data_chunk(&self, _: &mut Context<bool>, _: Bytes) {}

    async fn deliver(&self, _: &mut Context<bool>, delivery: Delivery) -> Answer {
        delivery.answer_all(Ok("ok".into()))
    }
}

#[tokio::test]
async fn pool_reuses_one_connection_and_drops_stale_ones() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = Address::Tcp(listener.local_addr().unwrap().to_string());
    let counting = Arc::new(Counting::default());
    let server = Server::with_shared_handler(server_config("mda.test"), Arc::clone(&counting));
    let task = tokio::spawn(server.serve(listener));
    let pool = mailroom_lmtp::Pool::new(address, ClientOptions::default())
        .idle_time_limit(Duration::from_millis(300));
    for _ in 0..5 {
        let r = pool
            .deliver(from(), [path("a@example.com")], b"x\r\n")
            .await
            .unwrap();
        assert_eq!(r[0].outcome, Outcome::Delivered);
    }
    assert_eq!(pool.idle(), 1);
    assert_eq!(
        counting
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // Past the idle time limit the connection is not reused.
    tokio::time::sleep(Duration::from_millis(400)).await;
    pool.deliver(from(), [path("a@example.com")], b"x\r\n")
        .await
        .unwrap();
    assert_eq!(
        counting
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    task.abort();
}
