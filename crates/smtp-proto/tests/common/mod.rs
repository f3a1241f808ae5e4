//! Shared support of the integration tests.

// Each test binary uses part of this module.
#![allow(dead_code)]

#[cfg(feature = "tokio")]
pub(crate) mod server;
pub(crate) mod tls;
