//! Postfix's source format for lookup tables (the text behind `postmap`, documented in
//! postmap(1), virtual(5), canonical(5), transport(5), relocated(5) and access(5)), and the
//! logical-line reader every text format here shares.
//!
//! Rules (Postfix's `readlline(3)`):
//!
//! - empty lines and whitespace-only lines are ignored, and so are lines whose first
//!   non-whitespace character is `#` (a `#` anywhere else is ordinary text);
//! - a logical line starts with non-whitespace text; a line that starts with whitespace
//!   continues the logical line before it (comment lines in between are skipped), and is
//!   appended with its leading whitespace;
//! - a continuation line with nothing before it is an error here (Postfix warns and skips it).
//!
//! Differences from Postfix, on purpose: a trailing CR is removed from each line (files edited
//! on Windows), any other control character except TAB is an error, and text that is not UTF-8
//! is an error: a table result must never carry CR, LF or NUL into an address or a header.

use std::collections::HashMap;
use std::path::Path;

use crate::error::TableError;

/// The longest logical line accepted, in bytes. Postfix has no limit; a megabyte is far more
/// than any real entry and keeps a hostile file from growing one line without bound.
pub const MAX_LOGICAL_LINE: usize = 1 << 20;

/// Calls `f(first_line_number, text)` for every logical line of `text`.
pub(crate) fn for_each_logical_line(
    path: &Path,
    text: &str,
    mut f: impl FnMut(usize, &str) -> Result<(), TableError>,
) -> Result<(), TableError> {
    let mut buf = String::new();
    let mut start = 0usize;
    for (index, raw) in text.split('\n').enumerate() {
        let lineno = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(c) = line.chars().find(|&c| c.is_control() && c != '\t') {
            return Err(TableError::syntax(
                path,
                lineno,
                format!("control character U+{:04X} in line", c as u32),
            ));
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.len() != line.len() {
            if buf.is_empty() {
                return Err(TableError::syntax(
                    path,
                    lineno,
                    "continuation line (starting with whitespace) without a line before it",
                ));
            }
            if buf.len() + line.len() > MAX_LOGICAL_LINE {
                return Err(TableError::syntax(
                    path,
                    start,
                    format!("logical line longer than {MAX_LOGICAL_LINE} bytes"),
                ));
            }
            buf.push_str(line);
            continue;
        }
        if !buf.is_empty() {
            f(start, &buf)?;
            buf.clear();
        }
        if line.len() > MAX_LOGICAL_LINE {
            return Err(TableError::syntax(
                path,
                lineno,
                format!("logical line longer than {MAX_LOGICAL_LINE} bytes"),
            ));
        }
        buf.push_str(line);
        start = lineno;
    }
    if !buf.is_empty() {
        f(start, &buf)?;
    }
    Ok(())
}

/// Folds a key as Postfix does for its indexed tables (`DICT_FLAG_FOLD_FIX`): lowercase.
pub(crate) fn fold(key: &str) -> std::borrow::Cow<'_, str> {
    if !key.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
        std::borrow::Cow::Borrowed(key)
    } else if key.is_ascii() {
        std::borrow::Cow::Owned(key.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Owned(key.to_lowercase())
    }
}

/// A table in the source format (`key whitespace value`), compiled into memory, as Postfix's
/// `texthash:` or a `hash:` table built by `postmap` from the same file.
///
/// Keys are folded to lowercase when loaded and when looked up, as Postfix does for these
/// tables. A key listed twice keeps its first value, as with Postfix (which warns); the
/// duplicates are listed by [`HashTable::warnings`].
#[derive(Debug, Clone, Default)]
pub struct HashTable {
    entries: HashMap<Box<str>, Box<str>>,
    warnings: Vec<String>,
}

impl HashTable {
    /// Parses `text` (the contents of `path`, which is only used in messages).
    ///
    /// # Errors
    ///
    /// [`TableError::Syntax`] naming the file and line of the first malformed line: a line with
    /// a key but no value, a continuation line at the top, a control character.
    pub fn parse(path: &Path, text: &str) -> Result<Self, TableError> {
        let mut table = HashTable {
            entries: HashMap::with_capacity(text.len() / 32),
            warnings: Vec::new(),
        };
        for_each_logical_line(path, text, |line, logical| {
            let logical = logical.trim_end();
            let split = logical
                .find(|c: char| c.is_whitespace())
                .unwrap_or(logical.len());
            let (key, value) = (&logical[..split], logical[split..].trim());
            if key.is_empty() || value.is_empty() {
                return Err(TableError::syntax(
                    path,
                    line,
                    format!("expected format: key whitespace value, got {logical:?}"),
                ));
            }
            if key.ends_with(':') {
                table.warnings.push(format!(
                    "{}, line {line}: record is in \"key: value\" format; is this an alias file?",
                    path.display()
                ));
            }
            let key = fold(key);
            if table.entries.contains_key(key.as_ref()) {
                table.warnings.push(format!(
                    "{}, line {line}: duplicate entry: \"{key}\" (the first one is used)",
                    path.display()
                ));
            } else {
                table.entries.insert(key.into(), value.into());
            }
            Ok(())
        })?;
        Ok(table)
    }

    /// Looks `key` up, without regard to case.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(fold(key).as_ref()).map(|v| &**v)
    }

    /// How many entries the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The warnings of the load (duplicate keys, `key:` records), each naming file and line.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Builds a table from pairs (keys are folded), for tests and embedding.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut table = HashTable::default();
        for (k, v) in pairs {
            table
                .entries
                .entry(fold(k).into())
                .or_insert_with(|| v.into());
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HashTable, TableError> {
        HashTable::parse(Path::new("t"), text)
    }

    #[test]
    fn continuation_comments_and_case() {
        let t = parse("# c\nKey  value one\n# inside\n  two\n\n  \nother\tv # not a comment\n")
            .unwrap();
        assert_eq!(t.get("key"), Some("value one  two"));
        assert_eq!(t.get("KEY"), Some("value one  two"));
        assert_eq!(t.get("other"), Some("v # not a comment"));
        assert_eq!(t.get("missing"), None);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("a b\nnovalue\n").unwrap_err().to_string();
        assert!(e.starts_with("t, line 2: expected format"), "{e}");
        let e = parse("\n  leading\n").unwrap_err().to_string();
        assert!(e.starts_with("t, line 2: continuation"), "{e}");
        let e = parse("a b\u{0}c\n").unwrap_err().to_string();
        assert!(e.contains("line 1: control character"), "{e}");
    }

    #[test]
    fn first_duplicate_wins_with_a_warning() {
        let t = parse("a 1\nA 2\n").unwrap();
        assert_eq!(t.get("a"), Some("1"));
        assert_eq!(t.warnings().len(), 1);
    }

    #[test]
    fn crlf_files() {
        let t = parse("a b\r\nc d\r\n").unwrap();
        assert_eq!(t.get("a"), Some("b"));
        assert_eq!(t.get("c"), Some("d"));
    }
}
