//! Lookup tables compiled into memory from Postfix's text formats.
//!
//! | Postfix type | here | format |
//! |---|---|---|
//! | `texthash:`, `hash:`, `btree:`, `lmdb:` (built by `postmap` from the same file) | [`Table::Hash`] | `key value`, [`source`] |
//! | `hash:` built by `postalias` | [`Table::Alias`] | aliases(5), [`alias`] |
//! | `regexp:` | [`Table::Regexp`] | regexp(5), [`regexp`] |
//! | `static:value` | [`Table::Static`] | every key answers `value` |
//!
//! Tables are read once and compiled into memory ([`Table::load`]); a [`ReloadingTable`] reloads
//! its file when it changes and swaps the new table in atomically, so a lookup sees the old
//! table or the new one, never half of each. A [`Maps`] is a search list
//! (`virtual_alias_maps = hash:/a, regexp:/b`): the first table with an answer wins.

pub mod alias;
pub mod regexp;
pub mod source;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

pub use alias::AliasTable;
pub use regexp::RegexpTable;
pub use source::HashTable;

use crate::error::TableError;

/// The largest table file [`Table::load`] reads (256 MiB).
pub const MAX_TABLE_FILE: u64 = 256 << 20;

/// The format of a table file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// The source format (`key value`), Postfix's `texthash:`/`hash:` built by `postmap`.
    Hash,
    /// aliases(5), Postfix's `hash:` built by `postalias`.
    Alias,
    /// regexp(5).
    Regexp,
    /// The Unix password file (`unix:passwd.byname`): `name:...` lines, looked up by name.
    Passwd,
}

/// One lookup table.
#[derive(Debug, Clone)]
pub enum Table {
    /// `key value` pairs.
    Hash(HashTable),
    /// aliases(5).
    Alias(AliasTable),
    /// regexp(5) rules.
    Regexp(RegexpTable),
    /// Every key answers this value (`static:value`).
    Static(String),
}

impl Table {
    /// Parses `text` as a table of `kind`; `path` is only used in messages.
    ///
    /// # Errors
    ///
    /// [`TableError::Syntax`] naming the file and line of the first bad line.
    pub fn parse(kind: TableKind, path: &Path, text: &str) -> Result<Self, TableError> {
        Ok(match kind {
            TableKind::Hash => Table::Hash(HashTable::parse(path, text)?),
            TableKind::Alias => Table::Alias(AliasTable::parse(path, text)?),
            TableKind::Regexp => Table::Regexp(RegexpTable::parse(path, text)?),
            TableKind::Passwd => Table::Hash(HashTable::from_pairs(
                text.lines().filter_map(|l| l.split_once(':')),
            )),
        })
    }

    /// Reads and compiles the table file `path`.
    ///
    /// # Errors
    ///
    /// [`TableError::Io`] when the file cannot be read, [`TableError::TooLarge`] above
    /// [`MAX_TABLE_FILE`], [`TableError::Syntax`] for a bad line (file and line named; text that
    /// is not UTF-8 is reported on its line).
    pub fn load(kind: TableKind, path: &Path) -> Result<Self, TableError> {
        let text = read_text(path)?;
        Self::parse(kind, path, &text)
    }

    /// Opens a table named as in main.cf: `type:name`, where type is `texthash`, `hash`,
    /// `btree`, `lmdb`, `cdb`, `dbm` (the source file `name` is compiled into memory, no `.db`
    /// needed), `regexp`, or `static`. `aliases` says whether `hash:` names an aliases(5)
    /// file (as in `alias_maps`).
    ///
    /// # Errors
    ///
    /// [`TableError::Syntax`] (line 0) for an unknown type, or the errors of [`Table::load`].
    pub fn open(spec: &str, aliases: bool) -> Result<Self, TableError> {
        let (kind, name) = parse_spec(spec, aliases)?;
        match kind {
            None => Ok(Table::Static(name.to_string())),
            Some(TableKind::Passwd) => Self::load(TableKind::Passwd, Path::new("/etc/passwd")),
            Some(kind) => Self::load(kind, Path::new(name)),
        }
    }

    /// Looks `key` up. Hash and alias tables ignore case; regexp tables follow their flags.
    pub fn get(&self, key: &str) -> Option<Cow<'_, str>> {
        match self {
            Table::Hash(t) => t.get(key).map(Cow::Borrowed),
            Table::Alias(t) => t.get(key).map(Cow::Borrowed),
            Table::Regexp(t) => t.get(key),
            Table::Static(v) => Some(Cow::Borrowed(v)),
        }
    }

    /// Whether the table answers partial keys (`user@domain` without extension, `user`,
    /// `@domain`). Like Postfix, pattern tables see only the full address, so a regexp cannot
    /// match a partial key by accident.
    pub fn is_fixed(&self) -> bool {
        !matches!(self, Table::Regexp(_))
    }
}

fn parse_spec(spec: &str, aliases: bool) -> Result<(Option<TableKind>, &str), TableError> {
    // proxymap(8) only changes who opens the table, not what it answers.
    let spec = spec.strip_prefix("proxy:").unwrap_or(spec);
    let Some((kind, name)) = spec.split_once(':') else {
        return Err(TableError::syntax(
            Path::new(spec),
            0,
            "expected type:name (texthash:, hash:, regexp:, static:)",
        ));
    };
    let kind = match kind {
        "texthash" => Some(TableKind::Hash),
        "hash" | "btree" | "lmdb" | "cdb" | "dbm" => Some(if aliases {
            TableKind::Alias
        } else {
            TableKind::Hash
        }),
        "regexp" => Some(TableKind::Regexp),
        "unix" if name == "passwd.byname" => Some(TableKind::Passwd),
        "static" => None,
        other => {
            return Err(TableError::syntax(
                Path::new(spec),
                0,
                format!("unsupported table type \"{other}\""),
            ));
        }
    };
    Ok((kind, name))
}

fn read_text(path: &Path) -> Result<String, TableError> {
    use std::io::Read;
    let io = |source| TableError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_TABLE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_TABLE_FILE {
        return Err(TableError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_TABLE_FILE,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + memchr::memchr_iter(b'\n', good).count();
        TableError::syntax(path, line, "text is not UTF-8")
    })
}

/// A search list of tables, as a main.cf parameter names them (`hash:/a, regexp:/b`): the
/// first table with an answer wins.
#[derive(Debug, Clone, Default)]
pub struct Maps {
    tables: Vec<Arc<Table>>,
}

impl Maps {
    /// A list with no table (the parameter left empty): nothing is found.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens every table of a main.cf value (`hash:/a, regexp:/b`, separated by commas or
    /// whitespace).
    ///
    /// # Errors
    ///
    /// The first table that fails to open, with its file and line.
    pub fn open(value: &str, aliases: bool) -> Result<Self, TableError> {
        let mut maps = Maps::new();
        for spec in value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            maps.push(Table::open(spec, aliases)?);
        }
        Ok(maps)
    }

    /// Appends a table to the search list.
    pub fn push(&mut self, table: impl Into<Arc<Table>>) {
        self.tables.push(table.into());
    }

    /// Appends a table, builder style.
    pub fn with(mut self, table: impl Into<Arc<Table>>) -> Self {
        self.push(table);
        self
    }

    /// Whether the list holds no table.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The tables, in search order.
    pub fn tables(&self) -> &[Arc<Table>] {
        &self.tables
    }

    /// Looks up `key` in each table in turn; `partial` keys are only asked of tables that
    /// answer partial keys ([`Table::is_fixed`]).
    pub fn find(&self, key: &str, partial: bool) -> Option<Cow<'_, str>> {
        self.tables
            .iter()
            .filter(|t| !partial || t.is_fixed())
            .find_map(|t| t.get(key))
    }

    /// The items of alias `name` from the first alias table that has it.
    pub fn alias_items(&self, name: &str) -> Option<&[Box<str>]> {
        self.tables.iter().find_map(|t| match &**t {
            Table::Alias(a) => a.items(name),
            _ => None,
        })
    }
}

impl From<Table> for Maps {
    fn from(t: Table) -> Self {
        Maps::new().with(t)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn stamp(path: &Path) -> Result<Stamp, TableError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|source| TableError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        ino: meta.ino(),
    })
}

/// A table file that is reloaded when it changes, and swapped in atomically.
///
/// Readers take a [`snapshot`](Self::snapshot) (an `Arc`), so a lookup in progress keeps the
/// table it started with. [`reload_if_changed`](Self::reload_if_changed) compares the file's
/// modification time, size and inode; when they changed it compiles the file again and, only if
/// that succeeds, replaces the table. A broken edit leaves the last good table in service and
/// returns the error (file and line).
#[derive(Debug)]
pub struct ReloadingTable {
    kind: TableKind,
    path: PathBuf,
    current: RwLock<Arc<Table>>,
    stamp: Mutex<Stamp>,
}

impl ReloadingTable {
    /// Loads `path` as a table of `kind`.
    ///
    /// # Errors
    ///
    /// The errors of [`Table::load`].
    pub fn open(kind: TableKind, path: impl Into<PathBuf>) -> Result<Self, TableError> {
        let path = path.into();
        let before = stamp(&path)?;
        let table = Table::load(kind, &path)?;
        Ok(ReloadingTable {
            kind,
            path,
            current: RwLock::new(Arc::new(table)),
            stamp: Mutex::new(before),
        })
    }

    /// The table in service now.
    pub fn snapshot(&self) -> Arc<Table> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reloads the file if it changed since the last load; returns whether a new table is in
    /// service.
    ///
    /// # Errors
    ///
    /// The errors of [`Table::load`]; the previous table stays in service.
    pub fn reload_if_changed(&self) -> Result<bool, TableError> {
        let mut guard = match self.stamp.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = stamp(&self.path)?;
        if now == *guard {
            return Ok(false);
        }
        let table = Arc::new(Table::load(self.kind, &self.path)?);
        // A file rewritten while we read it has a new stamp: keep the old one so the next call
        // reads it again (Postfix re-reads a "hot" file too).
        let after = stamp(&self.path)?;
        match self.current.write() {
            Ok(mut g) => *g = table,
            Err(p) => *p.into_inner() = table,
        }
        if after == now {
            *guard = now;
        }
        Ok(true)
    }

    /// The file this table is loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_swaps_only_good_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("virtual");
        std::fs::write(&path, "a@x b@y\n").unwrap();
        let t = ReloadingTable::open(TableKind::Hash, &path).unwrap();
        assert_eq!(t.snapshot().get("a@x").as_deref(), Some("b@y"));
        assert!(!t.reload_if_changed().unwrap());
        let old = t.snapshot();
        std::fs::write(&path, "a@x c@y\nmore entries\n").unwrap();
        assert!(t.reload_if_changed().unwrap());
        assert_eq!(t.snapshot().get("a@x").as_deref(), Some("c@y"));
        assert_eq!(
            old.get("a@x").as_deref(),
            Some("b@y"),
            "old snapshot unchanged"
        );
        std::fs::write(&path, "a@x d@y\nbroken\n").unwrap();
        let e = t.reload_if_changed().unwrap_err().to_string();
        assert!(
            e.ends_with("virtual, line 2: expected format: key whitespace value, got \"broken\""),
            "{e}"
        );
        assert_eq!(
            t.snapshot().get("a@x").as_deref(),
            Some("c@y"),
            "last good table kept"
        );
    }

    #[test]
    fn readers_see_the_old_or_the_new_table_never_a_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let version = |v: usize| -> String { (0..200).map(|k| format!("k{k} v{v}\n")).collect() };
        std::fs::write(&path, version(0)).unwrap();
        let t = std::sync::Arc::new(ReloadingTable::open(TableKind::Hash, &path).unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (t, stop) = (std::sync::Arc::clone(&t), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut checks = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let snap = t.snapshot();
                    let first = snap.get("k0").unwrap().into_owned();
                    for k in 1..200 {
                        assert_eq!(snap.get(&format!("k{k}")).unwrap(), first.as_str());
                    }
                    checks += 1;
                }
                checks
            })
        };
        for v in 1..20 {
            std::fs::write(&path, version(v)).unwrap();
            // Same size and maybe the same mtime second: force a new stamp through the inode.
            let tmp = dir.path().join("t.new");
            std::fs::write(&tmp, version(v)).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
            assert!(t.reload_if_changed().unwrap());
            assert_eq!(
                t.snapshot().get("k7").as_deref(),
                Some(format!("v{v}").as_str())
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    }

    #[test]
    fn non_utf8_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, b"a b\nc \xff\n").unwrap();
        let e = Table::load(TableKind::Hash, &path).unwrap_err().to_string();
        assert!(e.ends_with("t, line 2: text is not UTF-8"), "{e}");
    }

    #[test]
    fn maps_search_order_and_partial_keys() {
        let re =
            Table::Regexp(RegexpTable::parse(Path::new("r"), "/^user$/ from-regexp\n").unwrap());
        let hash = Table::Hash(HashTable::from_pairs([("user", "from-hash")]));
        let maps = Maps::new().with(re).with(hash);
        assert_eq!(maps.find("user", false).as_deref(), Some("from-regexp"));
        assert_eq!(maps.find("user", true).as_deref(), Some("from-hash"));
    }
}
