//! Decoders and encoders for the types of [`crate::types`], side by side.
//!
//! Commands: [`Command::decode`](crate::Command::decode) / [`Command::encode`](crate::Command::encode).
//! Replies: [`Reply::decode`](crate::Reply::decode) / [`Reply::encode`](crate::Reply::encode).
//! EHLO keywords: [`Extensions::from_lines`](crate::Extensions::from_lines) /
//! [`Extensions::to_lines`](crate::Extensions::to_lines).

pub(crate) mod address;
pub(crate) mod base64;
pub mod command;
pub(crate) mod fuzz;
pub mod line;
pub(crate) mod param;
pub mod reply;
