//! Data: validated values of the IMAP grammar, apart from how they are parsed or encoded.

pub mod command;
pub mod core;
pub mod flag;
pub mod mailbox;
pub mod response;
pub mod sequence;

pub use self::command::*;
pub use self::core::*;
pub use self::flag::*;
pub use self::mailbox::*;
pub use self::response::*;
pub use self::sequence::*;
