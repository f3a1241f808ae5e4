//! The data of SMTP: addresses, parameters, commands, replies, extensions and limits.
//! Validated on construction; their codecs are in [`crate::codec`].

pub mod address;
pub mod command;
pub mod extension;
pub mod limits;
pub mod param;
pub mod reply;
pub mod secret;
