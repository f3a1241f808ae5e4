//! The tokio adapter (feature `tokio`): drives the sans-IO sessions over TCP, with STARTTLS
//! through tokio-rustls (ring provider). It makes no protocol decision of its own: every
//! reply comes from the session or from the application's handler.

mod client;
mod server;

pub use client::{Client, ClientOptions, ClientTls, ConnectionError};
pub use server::{Context, Handler, Server};
