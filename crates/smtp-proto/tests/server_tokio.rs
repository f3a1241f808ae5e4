//! The tokio `Server` adapter with a Rust client: STARTTLS injection over a real socket, the
//! connection limit, graceful shutdown, and a client that pipelines a lot without reading.

// Tests may unwrap: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::server::{config, start, start_with};
use common::tls::self_signed;
use mailroom_smtp_proto::tokio::Server;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Reads one whole reply (all its lines) and returns it.
async fn reply<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut line))
            .await
            .expect("a reply within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed; got so far: {all:?}");
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

async fn send<S: AsyncWrite + Unpin>(w: &mut S, bytes: &[u8]) {
    w.write_all(bytes).await.unwrap();
    w.flush().await.unwrap();
}

/// `STARTTLS\r\nMAIL FROM:<x>\r\n` in one write: after the handshake the MAIL was never
/// executed (the handler saw no MAIL) and the session is back before EHLO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_injection_is_dropped() {
    let tls = self_signed();
    let server = start(config(), Some(tls.server)).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut r = BufReader::new(tcp);
    assert!(reply(&mut r).await.starts_with("220 "));
    send(r.get_mut(), b"EHLO c.example\r\n").await;
    assert!(reply(&mut r).await.contains("250-STARTTLS"));
    send(r.get_mut(), b"STARTTLS\r\nMAIL FROM:<x@example.com>\r\n").await;
    assert_eq!(reply(&mut r).await, "220 2.0.0 Ready to start TLS\r\n");
    let connector = tokio_rustls::TlsConnector::from(tls.client);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, r.into_inner()).await.unwrap();
    let mut r = BufReader::new(stream);
    send(r.get_mut(), b"MAIL FROM:<y@example.com>\r\n").await;
    assert_eq!(
        reply(&mut r).await,
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
    send(r.get_mut(), b"EHLO c.example\r\n").await;
    let ehlo = reply(&mut r).await;
    assert!(
        !ehlo.contains("STARTTLS") && ehlo.contains("AUTH PLAIN LOGIN"),
        "{ehlo}"
    );
    send(r.get_mut(), b"QUIT\r\n").await;
    assert_eq!(reply(&mut r).await, "221 2.0.0 Bye\r\n");
    assert!(
        server.handler.mails.lock().unwrap().is_empty(),
        "the injected MAIL ran"
    );
    server.stop().await;
}

/// Over the connection limit: `421 4.7.0 ... Too many connections` and close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit() {
    let server = start_with(|h| Server::with_shared_handler(config(), h).max_connections(2)).await;
    let mut first = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
    let mut second = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
    assert!(reply(&mut first).await.starts_with("220 "));
    assert!(reply(&mut second).await.starts_with("220 "));
    let mut third = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
    assert_eq!(
        reply(&mut third).await,
        "421 4.7.0 mx.example.org Error: too many connections\r\n"
    );
    send(first.get_mut(), b"QUIT\r\n").await;
    assert_eq!(reply(&mut first).await, "221 2.0.0 Bye\r\n");
    // The freed slot serves a new client.
    let mut fourth = None;
    for _ in 0..50 {
        let mut c = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
        if reply(&mut c).await.starts_with("220 ") {
            fourth = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fourth.is_some(), "the slot was never freed");
    server.stop().await;
}

/// Shutdown: an idle session gets `421 4.3.2` at once; a session in a transaction finishes
/// it, then gets 421 at its next command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_the_transaction_finish() {
    let server = start(config(), None).await;
    let mut idle = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
    let mut busy = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
    assert!(reply(&mut idle).await.starts_with("220 "));
    assert!(reply(&mut busy).await.starts_with("220 "));
    send(
        busy.get_mut(),
        b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n",
    )
    .await;
    reply(&mut busy).await;
    assert_eq!(reply(&mut busy).await, "250 2.1.0 Ok\r\n");
    let handler = std::sync::Arc::clone(&server.handler);
    let stopping = tokio::spawn(server.stop());
    assert_eq!(
        reply(&mut idle).await,
        "421 4.3.2 mx.example.org Service shutting down\r\n"
    );
    send(busy.get_mut(), b"RCPT TO:<b@example.org>\r\nDATA\r\n").await;
    assert_eq!(reply(&mut busy).await, "250 2.1.5 Ok\r\n");
    assert!(reply(&mut busy).await.starts_with("354 "));
    send(busy.get_mut(), b"Subject: last\r\n\r\nbye\r\n.\r\nNOOP\r\n").await;
    assert_eq!(reply(&mut busy).await, "250 2.0.0 Ok: queued as Q1\r\n");
    assert_eq!(
        reply(&mut busy).await,
        "421 4.3.2 mx.example.org Service shutting down\r\n"
    );
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(handler.messages().len(), 1);
}

/// A client that pipelines megabytes of commands before reading any reply does not
/// deadlock the server: the replies all arrive once it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_pipelining_without_reading_does_not_deadlock() {
    let server = start(config(), None).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (read, mut write) = tcp.into_split();
    let n = 300_000;
    let writer = tokio::spawn(async move {
        let batch = b"NOOP\r\n".repeat(1000);
        for _ in 0..n / 1000 {
            write.write_all(&batch).await.unwrap();
        }
        write.write_all(b"QUIT\r\n").await.unwrap();
        write
    });
    // Read only after a while: both sides' buffers fill up meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut r = BufReader::new(read);
    assert!(reply(&mut r).await.starts_with("220 "));
    for _ in 0..n {
        assert_eq!(reply(&mut r).await, "250 2.0.0 Ok\r\n");
    }
    assert_eq!(reply(&mut r).await, "221 2.0.0 Bye\r\n");
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .unwrap()
        .unwrap();
    server.stop().await;
}

/// The session's timer runs through the adapter: a silent client gets `421 4.4.2` and the
/// connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_times_out() {
    let mut config = config();
    config.command_timeout = Duration::from_millis(300);
    let server = start(config, None).await;
    let mut c = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
    assert!(reply(&mut c).await.starts_with("220 "));
    send(c.get_mut(), b"EHLO c.example\r\n").await;
    reply(&mut c).await;
    let started = std::time::Instant::now();
    assert_eq!(
        reply(&mut c).await,
        "421 4.4.2 mx.example.org Error: timeout exceeded\r\n"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    let mut rest = String::new();
    let n = c.read_line(&mut rest).await.unwrap();
    assert_eq!(n, 0, "the connection stays open: {rest:?}");
    server.stop().await;
}

/// Implicit TLS (RFC 8314, the submissions port): the handshake comes first, the greeting is
/// read under TLS, STARTTLS is not offered and AUTH (which requires TLS) is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_greets_after_the_handshake() {
    let tls = self_signed();
    let server_tls = tls.server.clone();
    let server =
        start_with(move |h| Server::with_shared_handler(config(), h).with_implicit_tls(server_tls))
            .await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls.client);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    let mut r = BufReader::new(stream);
    assert!(reply(&mut r).await.starts_with("220 "));
    send(r.get_mut(), b"EHLO c.example\r\n").await;
    let ehlo = reply(&mut r).await;
    assert!(
        !ehlo.contains("STARTTLS") && ehlo.contains("AUTH PLAIN LOGIN"),
        "{ehlo}"
    );
    send(r.get_mut(), b"QUIT\r\n").await;
    assert_eq!(reply(&mut r).await, "221 2.0.0 Bye\r\n");
    server.stop().await;

    // A plain-text client gets no greeting: the server waits for a TLS ClientHello.
    let tls = self_signed();
    let server_tls = tls.server.clone();
    let server =
        start_with(move |h| Server::with_shared_handler(config(), h).with_implicit_tls(server_tls))
            .await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut r = BufReader::new(tcp);
    let greeting = tokio::time::timeout(Duration::from_millis(300), reply(&mut r)).await;
    assert!(greeting.is_err(), "greeted in plain text: {greeting:?}");
    server.stop().await;
}

/// Over the per-client limit (Postfix's `smtpd_client_connection_count_limit`): `421 4.7.0 ...
/// too many connections from <ip>` and close; an exempt client is not counted, and a closed
/// connection frees its client's slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_per_client() {
    let server = start_with(|h| {
        Server::with_shared_handler(config(), h)
            .max_connections_per_client(2, |ip| ip == std::net::Ipv4Addr::new(127, 0, 0, 2))
    })
    .await;
    let mut first = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
    let mut second = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
    assert!(reply(&mut first).await.starts_with("220 "));
    assert!(reply(&mut second).await.starts_with("220 "));
    let mut third = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
    assert_eq!(
        reply(&mut third).await,
        "421 4.7.0 mx.example.org Error: too many connections from 127.0.0.1\r\n"
    );
    let mut rest = String::new();
    let n = tokio::time::timeout(Duration::from_secs(10), third.read_line(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "closed after the 421");
    // Another (exempt) client address is served: the limit is per client.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = BufReader::new(sock.connect(server.addr).await.unwrap());
    assert!(reply(&mut other).await.starts_with("220 "));
    send(first.get_mut(), b"QUIT\r\n").await;
    assert_eq!(reply(&mut first).await, "221 2.0.0 Bye\r\n");
    // The freed slot serves this client again.
    let mut again = None;
    for _ in 0..50 {
        let mut c = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
        if reply(&mut c).await.starts_with("220 ") {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "the slot was not freed");
    drop((second, other, again));
    server.stop().await;
}
