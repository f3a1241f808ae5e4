//! The tokio adapter (feature `tokio`): drives the sans-IO sessions over TCP, with STARTTLS
//! through tokio-rustls (ring provider). It makes no protocol decision of its own: every
//! reply comes from the session or from the application's handler.

mod server;

pub use server::{Context, Handler, Server};
