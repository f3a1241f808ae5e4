//! The errors of the crate, by concern: loading a table, expanding an address, cleaning a
//! message's headers.

use std::path::PathBuf;

/// A lookup table that cannot be loaded. Each variant names the file (and the line, for a
/// syntax error): a bad line is reported, never silently dropped as Postfix does with a warning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// The file could not be opened or read.
    #[error("read {path}: {source}", path = path.display())]
    Io {
        /// The table file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A line breaks the table's format.
    #[error("{path}, line {line}: {message}", path = path.display())]
    Syntax {
        /// The table file.
        path: PathBuf,
        /// The first physical line (1-based) of the logical line that is wrong.
        line: usize,
        /// What is wrong, and what was expected.
        message: String,
    },
    /// The file is larger than the limit given to the loader.
    #[error("{path}: larger than {limit} bytes", path = path.display())]
    TooLarge {
        /// The table file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
}

impl TableError {
    /// Builds a syntax error.
    pub(crate) fn syntax(path: &std::path::Path, line: usize, message: impl Into<String>) -> Self {
        TableError::Syntax {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// Address expansion (virtual aliases, local aliases) that cannot finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpandError {
    /// Expansion went deeper than the recursion limit (`virtual_alias_recursion_limit`, or the
    /// local alias nesting limit): usually an alias loop.
    #[error("recursion limit {limit} exceeded while expanding <{address}>: alias loop?")]
    RecursionLimit {
        /// The address whose expansion was being computed.
        address: String,
        /// The limit that was hit.
        limit: usize,
    },
    /// Expansion produced more addresses than the limit (`virtual_alias_expansion_limit`).
    #[error("expansion of <{address}> produced more than {limit} addresses")]
    ExpansionLimit {
        /// The address whose expansion was being computed.
        address: String,
        /// The limit that was hit.
        limit: usize,
    },
    /// An address loops back to itself through the table (`a -> b -> a`) and nothing else
    /// is delivered.
    #[error("alias loop: {}", chain.join(" -> "))]
    Loop {
        /// The addresses of the loop, the first repeated at the end.
        chain: Vec<String>,
    },
    /// A table result is not an address (it holds a control character, or cannot be parsed).
    #[error("table result {value:?} for <{address}> is not a valid address")]
    BadResult {
        /// The address that was looked up.
        address: String,
        /// The offending result.
        value: String,
    },
    /// An `:include:` file could not be read or parsed.
    #[error("include file for <{address}>: {message}")]
    Include {
        /// The alias whose expansion named the file.
        address: String,
        /// What went wrong (the I/O or syntax error, with file and line).
        message: String,
    },
}

/// A message whose header section cleanup refuses, with the reply the sender gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CleanupError {
    /// More `Received:` headers than `hopcount_limit`: a mail loop.
    #[error("554 5.4.0 too many hops")]
    TooManyHops {
        /// How many `Received:` headers were counted when the limit was hit.
        count: usize,
    },
    /// A `header_checks` rule answered REJECT.
    #[error("{code} {enhanced} {text}")]
    Rejected {
        /// The reply code (550 unless the rule's text starts with another 4xx/5xx code).
        code: u16,
        /// The enhanced status code.
        enhanced: String,
        /// The text.
        text: String,
    },
}

impl CleanupError {
    /// The SMTP reply line (without CRLF) that answers the message.
    pub fn reply_line(&self) -> String {
        self.to_string()
    }
}
