//! LMTP (RFC 2033): the server an MDA runs and the client an MTA delivers with, on top of
//! `mailroom-smtp-proto`.
//!
//! LMTP is SMTP without the queue: the client says `LHLO`, and after the end of the data the
//! server answers once per accepted recipient, so a full mailbox fails that recipient alone.
//! This crate holds:
//!
//! - [`Session`]: the sans-IO server session (smtp-proto's `ServerSession` in LMTP mode). The
//!   end of a message comes as a [`Delivery`] listing the accepted recipients, and the only
//!   way to answer it is an [`Answer`] built from it with one reply per recipient: "one reply
//!   per accepted recipient" is a fact of the types ([`Delivery::answer`]). LHLO (HELO and
//!   EHLO get `500`, RFC 2033 §4.1), MAIL, RCPT, DATA and BDAT; PIPELINING,
//!   ENHANCEDSTATUSCODES, 8BITMIME, SIZE, SMTPUTF8, CHUNKING.
//! - [`Server`] and [`Handler`]: the tokio adapter, over TCP and Unix sockets ([`Listener`])
//!   or any stream.
//! - [`Client`]: delivers one message to many recipients in one transaction and returns each
//!   recipient's [`Outcome`] with the server's reply; many messages per connection; connect
//!   and reply timeouts; TCP and Unix sockets ([`Address`]). [`Pool`] keeps idle connections
//!   for the next message (connection reuse).
//!
//! What it does not do: no storage (an MDA stores the message: see `src/server/lmtpd.rs` in
//! the `mailroom` package, run alone by `examples/lmtp_maildir.rs`, for one delivering into
//! Maildir), no TLS or AUTH (LMTP runs
//! between trusted hosts or over a Unix socket), no queue or retries (the client reports, the
//! caller retries).
//!
//! ## Standards
//!
//! RFC 2033 (LMTP), and through smtp-proto RFC 5321, 2920 (PIPELINING), 2034 and 3463
//! (enhanced status codes), 6152 (8BITMIME), 1870 (SIZE), 6531 (SMTPUTF8), 3030 (CHUNKING).
//!
//! ## Example
//!
//! A server that refuses one recipient after the data and accepts the other, and a client
//! that sees each outcome:
//!
//! ```
//! use bytes::Bytes;
//! use mailroom_lmtp::{Answer, Client, ClientOptions, Context, Delivery, Handler, Outcome, Peer, Server, server_config};
//! use mailroom_smtp_proto::{ForwardPath, Mailbox, Reply, ReplyCode, ReversePath};
//!
//! struct Mda;
//! impl Handler for Mda {
//!     type State = ();
//!     async fn data_chunk(&self, _: &mut Context<()>, _: Bytes) {}
//!     async fn deliver(&self, _: &mut Context<()>, delivery: Delivery) -> Answer {
//!         delivery.answer(|_, rcpt| match rcpt.mailbox() {
//!             Some(m) if m.local_part().as_str() == "full" => {
//!                 Err(Reply::new(ReplyCode::EXCEEDED_STORAGE, "5.2.2 Mailbox full"))
//!             }
//!             _ => Ok("saved".into()),
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (client_end, server_end) = tokio::io::duplex(64 * 1024);
//! let server = Server::new(server_config("mda.example"), Mda);
//! tokio::spawn(async move { server.serve_connection(server_end, Peer::Other).await });
//!
//! let mut client = Client::start(client_end, ClientOptions::default()).await?;
//! let from = ReversePath::from("a@example.org".parse::<Mailbox>()?);
//! let to = ["b@example.com", "full@example.com"].map(|m| ForwardPath::from(m.parse::<Mailbox>().unwrap()));
//! let results = client.deliver(from, to, b"Subject: hi\r\n\r\nhello\r\n").await?;
//! assert_eq!(results[0].outcome, Outcome::Delivered);
//! assert_eq!(results[1].outcome, Outcome::PermanentFailure);
//! assert_eq!(results[1].reply.code(), ReplyCode::EXCEEDED_STORAGE);
//! client.quit().await?;
//! # Ok(()) }
//! ```
//!
//! ## Benchmark
//!
//! `cargo bench --bench lmtp` (in the `mailroom` package, `benches/lmtp.rs`) is a load
//! program: 4 KiB messages, 1 and 10 recipients, 16 reused connections, through the Maildir MDA
//! (`src/server/lmtpd.rs`, as `examples/lmtp_maildir.rs` runs it) beside Dovecot's LMTP into Maildir in the same run, in
//! alternating rounds (`LMTP_BENCH_ROUNDS`, `LMTP_BENCH_MESSAGES`). It prints messages per
//! second and the median ratio; the goal is at least 1.5 times Dovecot's rate.
//!
//! ## Features
//!
//! None: the crate has one configuration, with tokio (TCP and Unix sockets).

mod address;
mod client;
mod delivery;
mod server;
mod session;

pub use address::{Address, AddressError};
pub use client::{Client, ClientError, ClientOptions, Outcome, Pool, RecipientOutcome};
pub use delivery::{Answer, Delivery, RecipientAnswer};
pub use server::{Context, Handler, Listener, Peer, Server};
pub use session::{Event, Session, server_config};
