//! An application that embeds an SMTP listener: every message received on 127.0.0.1:2525 is
//! printed with its envelope and size. Run `cargo run --example embed_smtp`, then
//! `swaks --server 127.0.0.1:2525 --to you@example.org`. It stores nothing: a real handler
//! writes the message durably before `data_end` returns its queue id.

use bytes::Bytes;
use mailroom::smtp::Reply;
use mailroom::smtp::server::ServerConfig;
use mailroom::smtp::tokio::{Context, Handler, Server};

struct Printer;

impl Handler for Printer {
    type State = ();

    async fn data_chunk(&self, _ctx: &mut Context<()>, _chunk: Bytes) {}

    async fn data_end(&self, ctx: &mut Context<()>, size: u64) -> Result<String, Reply> {
        let to: Vec<String> = ctx.recipients.iter().map(ToString::to_string).collect();
        let from: String = ctx.from.iter().map(ToString::to_string).collect();
        println!("{} {from} -> {} ({size} octets)", ctx.peer, to.join(", "));
        Ok(format!("{size}"))
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:2525").await?;
    println!("listening on 127.0.0.1:2525; Ctrl-C stops");
    let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or_default() };
    Server::new(ServerConfig::new("localhost"), Printer)
        .serve_with_shutdown(listener, ctrl_c)
        .await
}
