//! mbox store (work in progress).

pub mod error;
pub mod flags;
pub mod from_line;
pub mod headers;
pub mod index;
mod io_at;
pub mod lock;
pub mod mailbox;
pub mod reader;
pub mod variant;
pub mod writer;

pub use error::Error;
pub use flags::Flags;
pub use from_line::{AsctimeDate, FromLine, FromLineError, Sender};
pub use headers::{Field, Headers};
pub use index::{Index, IndexEntry};
pub use lock::{LockMethod, LockOptions, MailboxLock};
pub use mailbox::{Action, Appended, Mbox, Rewritten};
pub use reader::{Entry, Message, MessageInfo, ReadError, ReadLimits, Reader};
pub use variant::{Direction, Quoter, Variant};
pub use writer::{SPOOFABLE_HEADERS, WriteError, WriteOptions, write_message};
