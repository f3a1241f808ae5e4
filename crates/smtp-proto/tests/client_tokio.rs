//! The tokio `Client` over real sockets: against this crate's tokio `Server` (plain, STARTTLS
//! with AUTH, pipelined messages on one connection, BDAT, a large streamed body) and against
//! scripted raw servers (STARTTLS response injection, a silent server, a 421).

// Tests may unwrap: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use common::server::{config, start};
use common::tls::self_signed;
use mailroom_smtp_proto::client::{
    ClientConfig, ClientError, Credentials, Envelope, Stage, Status, TlsPolicy,
};
use mailroom_smtp_proto::tokio::{Client, ClientOptions, ConnectionError};
use mailroom_smtp_proto::{ForwardPath, Host, Mailbox, ReversePath};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpListener;

fn client_config() -> ClientConfig {
    ClientConfig::new("client.example".parse::<Host>().unwrap())
}

fn envelope(from: &str, to: &[&str]) -> Envelope {
    let from: Mailbox = from.parse().unwrap();
    Envelope::new(
        ReversePath::from(from),
        to.iter()
            .map(|t| ForwardPath::from(t.parse::<Mailbox>().unwrap())),
    )
}

async fn connect(addr: SocketAddr, options: ClientOptions) -> Client {
    tokio::time::timeout(Duration::from_secs(20), Client::connect(addr, options))
        .await
        .expect("connect within 20 s")
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_session_with_three_recipients_and_two_messages() {
    let server = start(config(), None).await;
    // A connection the caller made itself (as a relay trying MX hosts in turn would).
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut client = Client::start(tcp, ClientOptions::new(client_config()))
        .await
        .unwrap();
    assert!(client.extensions().pipelining);
    assert!(!client.is_tls());
    assert_eq!(client.greeting().unwrap().code().get(), 220);
    let result = client
        .send_bytes(
            envelope(
                "a@example.com",
                &["b@example.org", "unknown@example.org", "d@example.org"],
            ),
            b"Subject: one\r\n\r\n.dot line\r\nbody\r\n",
        )
        .await
        .unwrap();
    let statuses: Vec<_> = result
        .recipients
        .iter()
        .map(|r| (r.status(), r.stage))
        .collect();
    assert_eq!(
        statuses,
        [
            (Status::Accepted, Stage::Data),
            (Status::Permanent, Stage::Rcpt),
            (Status::Accepted, Stage::Data)
        ]
    );
    let second = client
        .send_bytes(envelope("a@example.com", &["e@example.org"]), b"two\n")
        .await
        .unwrap();
    assert!(second.all_accepted());
    assert_eq!(client.quit().await.unwrap().unwrap().code().get(), 221);

    let messages = server.handler.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0].recipients,
        ["<b@example.org>", "<d@example.org>"]
    );
    assert_eq!(
        messages[0].content,
        b"Subject: one\r\n\r\n.dot line\r\nbody\r\n"
    );
    assert_eq!(messages[1].content, b"two\r\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_then_auth_plain_then_bdat() {
    let tls = self_signed();
    let mut server_config = config();
    server_config.starttls = true;
    let server = start(server_config, Some(tls.server)).await;
    for (user, password, chunking) in [("alice", "secret", false), ("alice", "secret", true)] {
        let mut cfg = client_config();
        cfg.tls = TlsPolicy::Required;
        cfg.credentials = Some(Credentials::new(user, password));
        cfg.prefer_chunking = chunking;
        let options = ClientOptions::new(cfg).with_tls(
            tls.client.clone(),
            ServerName::try_from("localhost").unwrap(),
        );
        let mut client = connect(server.addr, options).await;
        assert!(client.is_tls());
        assert!(client.session().is_authenticated());
        let result = client
            .send_bytes(
                envelope("alice@example.com", &["b@example.org"]),
                b"secret text\r\n",
            )
            .await
            .unwrap();
        assert!(result.all_accepted(), "{result:?}");
        client.quit().await.unwrap();
    }
    let messages = server.handler.messages();
    assert_eq!(messages.len(), 2);
    assert!(
        messages
            .iter()
            .all(|m| m.tls && m.user.as_deref() == Some("alice"))
    );
    assert!(messages.iter().all(|m| m.content == b"secret text\r\n"));

    // Wrong password: the session error comes back.
    let mut cfg = client_config();
    cfg.tls = TlsPolicy::Required;
    cfg.credentials = Some(Credentials::new("alice", "wrong"));
    let options = ClientOptions::new(cfg).with_tls(
        tls.client.clone(),
        ServerName::try_from("localhost").unwrap(),
    );
    let err = Client::connect(server.addr, options).await.unwrap_err();
    assert!(
        matches!(err, ConnectionError::Session(ClientError::AuthFailed(_))),
        "{err}"
    );
    server.stop().await;
}

/// A body reader that produces `len` octets of text lines without holding them.
struct Lines {
    left: usize,
    line: u64,
}

impl AsyncRead for Lines {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.left > 0 && buf.remaining() > 80 {
            let text = format!("{:076}\r\n", self.line);
            let n = text.len().min(self.left);
            buf.put_slice(&text.as_bytes()[..n]);
            self.left -= n;
            self.line += 1;
        }
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_streams_from_an_async_reader() {
    let server = start(config(), None).await;
    let mut client = connect(server.addr, ClientOptions::new(client_config())).await;
    // Whole 78-octet lines (a last line without CRLF would get one).
    let len = 78 * 100_000;
    let mut env = envelope("a@example.com", &["b@example.org"]);
    env.size = Some(len as u64);
    let result = client
        .send(env, Lines { left: len, line: 0 })
        .await
        .unwrap();
    assert!(result.all_accepted(), "{result:?}");
    client.quit().await.unwrap();
    let messages = server.handler.messages();
    assert_eq!(messages[0].content.len(), len);
    assert!(messages[0].content.starts_with(b"0000000000"));
    server.stop().await;
}

/// A raw server: greeting, an EHLO reply with STARTTLS, then `220` to STARTTLS followed by an
/// injected reply in the same write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_response_injection_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut r = BufReader::new(tcp);
        r.get_mut().write_all(b"220 mx ESMTP\r\n").await.unwrap();
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        r.get_mut()
            .write_all(b"250-mx\r\n250 STARTTLS\r\n")
            .await
            .unwrap();
        line.clear();
        r.read_line(&mut line).await.unwrap();
        assert_eq!(line, "STARTTLS\r\n");
        r.get_mut()
            .write_all(b"220 2.0.0 Ready\r\n250 2.1.0 injected\r\n")
            .await
            .unwrap();
        // The client must not start a handshake: it closes instead.
        let mut rest = String::new();
        let n = r.read_line(&mut rest).await.unwrap_or(0);
        (n, rest)
    });
    let tls = self_signed();
    let mut cfg = client_config();
    cfg.tls = TlsPolicy::Required;
    let options =
        ClientOptions::new(cfg).with_tls(tls.client, ServerName::try_from("localhost").unwrap());
    let err = Client::connect(addr, options).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnectionError::Session(ClientError::StartTlsInjection { .. })
        ),
        "{err}"
    );
    let (n, rest) = server.await.unwrap();
    assert_eq!(
        (n, rest.as_str()),
        (0, ""),
        "no TLS ClientHello, no command"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(tcp);
    });
    let mut cfg = client_config();
    cfg.timeouts.greeting = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = Client::connect(addr, ClientOptions::new(cfg))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectionError::Session(ClientError::Timeout {
                waiting_for: "the greeting"
            })
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_required_without_configuration_fails_before_connecting() {
    let mut cfg = client_config();
    cfg.tls = TlsPolicy::Required;
    let err = Client::connect("127.0.0.1:9", ClientOptions::new(cfg))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectionError::TlsNotConfigured), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lmtp_reads_one_reply_per_accepted_recipient() {
    let mut server_config = config();
    server_config.lmtp = true;
    let server = start(server_config, None).await;
    let mut cfg = client_config();
    cfg.lmtp = true;
    let mut client = connect(server.addr, ClientOptions::new(cfg)).await;
    // Two messages on one connection: the replies after the first are all read.
    for _ in 0..2 {
        let result = client
            .send_bytes(
                envelope(
                    "a@example.com",
                    &["b@example.org", "unknown@example.org", "d@example.org"],
                ),
                b"Subject: lmtp\r\n\r\nhi\r\n",
            )
            .await
            .unwrap();
        let statuses: Vec<_> = result
            .recipients
            .iter()
            .map(|r| (r.status(), r.stage))
            .collect();
        assert_eq!(
            statuses,
            [
                (Status::Accepted, Stage::Data),
                (Status::Permanent, Stage::Rcpt),
                (Status::Accepted, Stage::Data)
            ]
        );
    }
    client.quit().await.unwrap();
    assert_eq!(server.handler.messages().len(), 2);
    server.stop().await;
}

/// A server that, after its 354, writes a megabyte without reading while the client writes
/// 8 MB: a client that only wrote would block with the server, both buffers full. This one
/// reads while it writes, sees replies nobody asked for, and stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_while_writing_so_a_chatty_server_cannot_deadlock_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut r = BufReader::new(tcp);
        r.get_mut().write_all(b"220 mx ESMTP\r\n").await.unwrap();
        let mut line = String::new();
        for reply in [
            &b"250-mx\r\n250 PIPELINING\r\n"[..],
            b"",
            b"",
            b"250 Ok\r\n250 Ok\r\n354 go\r\n",
        ] {
            line.clear();
            r.read_line(&mut line).await.unwrap();
            r.get_mut().write_all(reply).await.unwrap();
        }
        // Write a megabyte of replies without reading anything.
        let chatter = "250 chatter\r\n".repeat(80_000);
        let _ = r.get_mut().write_all(chatter.as_bytes()).await;
    });
    let mut client = connect(addr, ClientOptions::new(client_config())).await;
    let body = Lines {
        left: 78 * 100_000,
        line: 0,
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        client.send(envelope("a@example.com", &["b@example.org"]), body),
    )
    .await
    .expect("no deadlock");
    assert!(
        matches!(
            outcome,
            Err(ConnectionError::Session(ClientError::UnexpectedReply(_)))
        ),
        "{outcome:?}"
    );
    server.abort();
}
