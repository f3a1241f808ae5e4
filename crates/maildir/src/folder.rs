//! Maildir++ folders: `.Sent`, `.Archive.2025`, with names in modified UTF-7.
//!
//! Maildir++ (Courier, adopted by Dovecot's default `maildir:` layout) keeps each folder as a
//! Maildir named `.` followed by the folder name, directly inside the top Maildir (the INBOX),
//! with `.` as the hierarchy separator: the folder `Archive/2025` is `.Archive.2025/`. Dovecot
//! writes non-ASCII names in IMAP's modified UTF-7 (RFC 3501 section 5.1.3) unless
//! `mailbox_list_utf8 = yes`:
//!
//! > In modified UTF-7, printable US-ASCII characters, except for "&", represent themselves
//! > [...] "&" is used to shift to modified BASE64 and "-" to shift back to US-ASCII. [...]
//! > The character "&" (0x26) is represented by the two-octet sequence "&-". [...] modified
//! > BASE64, with a further modification from [UTF-7] that "," is used instead of "/".
//!
//! Folder names are given here in UTF-8 with `.` between the levels (`Archive.2025`).

use std::io;
use std::path::PathBuf;

use crate::error::{FolderError, OpenError, ReadError};
use crate::fs::Fs;
use crate::maildir::{Maildir, Skipped};

/// Most levels in a folder name (`a.b.c` has 3).
pub const MAX_FOLDER_DEPTH: usize = 16;

/// Most bytes in a folder's directory name (`.` plus the encoded name): the usual `NAME_MAX`.
pub const MAX_FOLDER_DIR_LEN: usize = 255;

/// How folder names are written as directory names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NameEncoding {
    /// Modified UTF-7, Dovecot's default.
    #[default]
    ModifiedUtf7,
    /// Plain UTF-8 (Dovecot's `mailbox_list_utf8 = yes`).
    Utf8,
}

/// A checked folder name: UTF-8, levels separated by `.`.
///
/// Refused: an empty name or level (so `..`, a leading or trailing `.`), `/`, control characters,
/// a leading `~`, a level named `tmp`, `new` or `cur` (any case), more than
/// [`MAX_FOLDER_DEPTH`] levels. The encoded length is checked when the folder is used.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FolderName(String);

impl FolderName {
    /// Checks `name`.
    ///
    /// # Errors
    ///
    /// [`FolderError::InvalidName`] with the reason.
    pub fn new(name: &str) -> Result<Self, FolderError> {
        let bad = |reason| FolderError::InvalidName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("empty"));
        }
        if name.starts_with('~') {
            return Err(bad("starts with `~`"));
        }
        if name.contains('/') {
            return Err(bad("contains `/`"));
        }
        if name.chars().any(char::is_control) {
            return Err(bad("contains a control character"));
        }
        let levels: Vec<&str> = name.split('.').collect();
        if levels.len() > MAX_FOLDER_DEPTH {
            return Err(bad("more than 16 levels"));
        }
        for level in &levels {
            if level.is_empty() {
                return Err(bad("empty level (`..`, or a leading or trailing `.`)"));
            }
            if ["tmp", "new", "cur"]
                .iter()
                .any(|r| level.eq_ignore_ascii_case(r))
            {
                return Err(bad("a level named tmp, new or cur"));
            }
        }
        if name.len() >= MAX_FOLDER_DIR_LEN {
            return Err(bad("longer than 254 bytes"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory name (with the leading `.`) in `encoding`.
    ///
    /// # Errors
    ///
    /// [`FolderError::InvalidName`] when the encoded name is longer than
    /// [`MAX_FOLDER_DIR_LEN`].
    pub fn dir_name(&self, encoding: NameEncoding) -> Result<String, FolderError> {
        let body = match encoding {
            NameEncoding::ModifiedUtf7 => encode_mutf7(&self.0),
            NameEncoding::Utf8 => self.0.clone(),
        };
        let dir = format!(".{body}");
        if dir.len() > MAX_FOLDER_DIR_LEN {
            return Err(FolderError::InvalidName {
                name: self.0.clone(),
                reason: "encoded name longer than 255 bytes",
            });
        }
        Ok(dir)
    }

    /// Decodes a directory name found on disk (with its leading `.`).
    ///
    /// # Errors
    ///
    /// When it is not a valid encoded folder name.
    pub fn from_dir_name(dir: &str, encoding: NameEncoding) -> Result<Self, FolderError> {
        let body = dir
            .strip_prefix('.')
            .ok_or_else(|| FolderError::InvalidName {
                name: dir.to_owned(),
                reason: "folder directory names start with `.`",
            })?;
        let name = match encoding {
            NameEncoding::ModifiedUtf7 => {
                decode_mutf7(body).map_err(|reason| FolderError::InvalidName {
                    name: dir.to_owned(),
                    reason,
                })?
            }
            NameEncoding::Utf8 => body.to_owned(),
        };
        Self::new(&name)
    }
}

impl std::fmt::Display for FolderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Encodes `s` in modified UTF-7 (RFC 3501 section 5.1.3).
pub fn encode_mutf7(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        out.push('&');
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let chars = chunk.len() + 1;
            for i in 0..chars {
                let idx = (n >> (18 - 6 * i)) & 63;
                out.push(char::from(B64[idx as usize]));
            }
        }
        out.push('-');
        pending.clear();
    };
    for c in s.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes modified UTF-7 (RFC 3501 section 5.1.3), refusing non-canonical forms.
///
/// # Errors
///
/// Returns what is malformed.
pub fn decode_mutf7(s: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'&' {
            if !(0x20..=0x7e).contains(&b) {
                return Err("byte outside printable ASCII in modified UTF-7");
            }
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let end = s[i + 1..]
            .find('-')
            .map(|e| e + i + 1)
            .ok_or("`&` without closing `-`")?;
        let run = &bytes[i + 1..end];
        i = end + 1;
        if run.is_empty() {
            out.push('&');
            continue;
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut units: Vec<u16> = Vec::new();
        let mut pair: Vec<u8> = Vec::new();
        for &c in run {
            let v = B64
                .iter()
                .position(|&x| x == c)
                .ok_or("invalid modified BASE64 character")? as u32;
            bits = (bits << 6) | v;
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                pair.push(((bits >> nbits) & 0xff) as u8);
                bits &= (1 << nbits) - 1;
                if pair.len() == 2 {
                    units.push(u16::from_be_bytes([pair[0], pair[1]]));
                    pair.clear();
                }
            }
        }
        if !pair.is_empty() || bits != 0 || nbits >= 6 {
            return Err("modified BASE64 run does not end on a character boundary");
        }
        let decoded = String::from_utf16(&units).map_err(|_| "invalid UTF-16 in modified UTF-7")?;
        if decoded.chars().any(|c| (' '..='~').contains(&c)) {
            return Err("printable ASCII encoded in BASE64 (not canonical)");
        }
        out.push_str(&decoded);
    }
    Ok(out)
}

/// The folders found by [`Maildir::list_folders`].
#[derive(Debug, Clone, Default)]
pub struct FolderList {
    /// The folders, sorted by name.
    pub folders: Vec<FolderName>,
    /// Directories starting with `.` that are not valid folder names.
    pub skipped: Vec<Skipped>,
}

/// The directories of every folder under `root` (entries `.X` that hold a `cur/`).
pub(crate) fn folder_dirs<F: Fs>(root: &Maildir<F>) -> Result<Vec<PathBuf>, ReadError> {
    let names = root
        .fs
        .read_dir(&root.root)
        .map_err(|source| ReadError::ReadDir {
            path: root.root.clone(),
            source,
        })?;
    let mut dirs = Vec::new();
    for name in names {
        let bytes = name.as_encoded_bytes();
        if bytes.first() != Some(&b'.') || bytes == b"." || bytes == b".." {
            continue;
        }
        let dir = root.root.join(&name);
        if root.fs.metadata(&dir.join("cur")).is_ok_and(|m| m.is_dir) {
            dirs.push(dir);
        }
    }
    dirs.sort();
    Ok(dirs)
}

impl<F: Fs> Maildir<F> {
    /// Sets how folder names are written on disk (modified UTF-7 by default).
    pub fn set_folder_encoding(&mut self, encoding: NameEncoding) {
        self.folder_encoding = encoding;
    }

    fn folder_path(&self, name: &FolderName) -> Result<PathBuf, FolderError> {
        Ok(self.root.join(name.dir_name(self.folder_encoding)?))
    }

    fn folder_maildir(&self, path: PathBuf) -> Maildir<F> {
        let mut m = Maildir::unchecked(self.fs.clone(), path);
        m.root = self.root.clone();
        m.max_message_size = self.max_message_size;
        m.quota = self.quota;
        m.folder_encoding = self.folder_encoding;
        m
    }

    /// Opens the existing folder `name` of this Maildir++ tree.
    ///
    /// # Errors
    ///
    /// [`FolderError::InvalidName`] for a refused name, [`FolderError::NotFound`] when it does
    /// not exist.
    pub fn folder(&self, name: &str) -> Result<Maildir<F>, FolderError> {
        let name = FolderName::new(name)?;
        let path = self.folder_path(&name)?;
        match Maildir::open_with(self.fs.clone(), path.clone()) {
            Ok(_) => Ok(self.folder_maildir(path)),
            Err(OpenError::Missing { path: missing }) if missing == path => {
                Err(FolderError::NotFound {
                    name: name.0.clone(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the folder `name` (its `tmp/`, `new/`, `cur/` and the Maildir++ marker file
    /// `maildirfolder`), durably.
    ///
    /// # Errors
    ///
    /// [`FolderError::Exists`] when it exists, [`FolderError::InvalidName`] for a refused name.
    pub fn create_folder(&self, name: &str) -> Result<Maildir<F>, FolderError> {
        let name = FolderName::new(name)?;
        let path = self.folder_path(&name)?;
        if self.fs.metadata(&path).is_ok() {
            return Err(FolderError::Exists { name: name.0 });
        }
        Maildir::create_with(self.fs.clone(), path.clone())?;
        let marker = path.join("maildirfolder");
        match self.fs.create_new(&marker) {
            Ok(mut f) => {
                self.fs
                    .sync_file(&mut f)
                    .map_err(|source| ReadError::SyncDir {
                        path: marker.clone(),
                        source,
                    })?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(ReadError::Open {
                    path: marker,
                    source,
                }
                .into());
            }
        }
        self.fs
            .sync_dir(&path)
            .map_err(|source| ReadError::SyncDir {
                path: path.clone(),
                source,
            })?;
        Ok(self.folder_maildir(path))
    }

    /// Lists the folders of this Maildir++ tree.
    ///
    /// # Errors
    ///
    /// When the top directory cannot be listed.
    pub fn list_folders(&self) -> Result<FolderList, FolderError> {
        let mut list = FolderList::default();
        for dir in folder_dirs(self)? {
            let Some(file_name) = dir.file_name() else {
                continue;
            };
            match file_name.to_str() {
                Some(s) => match FolderName::from_dir_name(s, self.folder_encoding) {
                    Ok(name) => list.folders.push(name),
                    Err(_) => list.skipped.push(Skipped {
                        path: dir.clone(),
                        reason: "not a valid folder name",
                    }),
                },
                None => list.skipped.push(Skipped {
                    path: dir.clone(),
                    reason: "name is not valid UTF-8",
                }),
            }
        }
        list.folders.sort();
        Ok(list)
    }

    /// Renames folder `from` to `to`, and its subfolders (`from.x` to `to.x`) with it.
    ///
    /// # Errors
    ///
    /// [`FolderError::NotFound`], [`FolderError::Exists`], [`FolderError::InvalidName`].
    pub fn rename_folder(&self, from: &str, to: &str) -> Result<(), FolderError> {
        let from = FolderName::new(from)?;
        let to = FolderName::new(to)?;
        let from_path = self.folder_path(&from)?;
        if self.fs.metadata(&from_path).is_err() {
            return Err(FolderError::NotFound { name: from.0 });
        }
        if self.fs.metadata(&self.folder_path(&to)?).is_ok() {
            return Err(FolderError::Exists { name: to.0 });
        }
        if to.0.starts_with(&format!("{}.", from.0)) {
            return Err(FolderError::InvalidName {
                name: to.0,
                reason: "cannot move a folder under itself",
            });
        }
        let mut moves = vec![(from.clone(), to.clone())];
        for name in self.list_folders()?.folders {
            if let Some(rest) = name.0.strip_prefix(&format!("{}.", from.0)) {
                moves.push((name.clone(), FolderName::new(&format!("{}.{rest}", to.0))?));
            }
        }
        for (a, b) in moves {
            let (pa, pb) = (self.folder_path(&a)?, self.folder_path(&b)?);
            self.fs
                .rename_noreplace(&pa, &pb)
                .map_err(|source| ReadError::Rename {
                    from: pa,
                    to: pb,
                    source,
                })?;
        }
        self.fs
            .sync_dir(&self.root)
            .map_err(|source| ReadError::SyncDir {
                path: self.root.clone(),
                source,
            })?;
        Ok(())
    }

    /// Deletes folder `name` with its messages and Dovecot's files in it; its subfolders stay
    /// (as IMAP DELETE does).
    ///
    /// # Errors
    ///
    /// [`FolderError::NotFound`], or the file operation that failed.
    pub fn delete_folder(&self, name: &str) -> Result<(), FolderError> {
        let name = FolderName::new(name)?;
        let path = self.folder_path(&name)?;
        if self.fs.metadata(&path).is_err() {
            return Err(FolderError::NotFound { name: name.0 });
        }
        remove_tree(&self.fs, &path, 0)?;
        self.fs
            .sync_dir(&self.root)
            .map_err(|source| ReadError::SyncDir {
                path: self.root.clone(),
                source,
            })?;
        Ok(())
    }
}

/// Removes `dir` and everything below it (a folder holds at most `tmp/new/cur` and Dovecot's
/// index directories, so the depth is bounded).
fn remove_tree<F: Fs>(fs: &F, dir: &std::path::Path, depth: usize) -> Result<(), ReadError> {
    if depth > 4 {
        return Err(ReadError::Remove {
            path: dir.to_path_buf(),
            source: io::Error::other("unexpectedly deep directory inside a folder"),
        });
    }
    let names = fs.read_dir(dir).map_err(|source| ReadError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    for name in names {
        let path = dir.join(name);
        match fs.metadata(&path) {
            Ok(m) if m.is_dir => remove_tree(fs, &path, depth + 1)?,
            Ok(_) => match fs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(ReadError::Remove { path, source }),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(ReadError::Stat { path, source }),
        }
    }
    fs.remove_dir(dir).map_err(|source| ReadError::Remove {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutf7_known_answers() {
        // RFC 3501 section 5.1.3's example, and Dovecot-style names.
        let table = [
            ("~peter/mail/日本語/台北", "~peter/mail/&ZeVnLIqe-/&U,BTFw-"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("A&B", "A&-B"),
            ("Sent", "Sent"),
            ("€", "&IKw-"),
        ];
        for (plain, encoded) in table {
            assert_eq!(encode_mutf7(plain), encoded, "{plain}");
            assert_eq!(decode_mutf7(encoded).unwrap(), plain, "{encoded}");
        }
    }

    #[test]
    fn mutf7_rejects_malformed() {
        for bad in [
            "&",
            "&Jjo",
            "&Jjo!-",
            "&AGE-",
            "\u{7f}",
            "&U,BTF2XlZyyKng-x",
        ] {
            let _ = decode_mutf7(bad);
        }
        assert!(decode_mutf7("&").is_err());
        assert!(
            decode_mutf7("&AGE-").is_err(),
            "ASCII `a` in base64 is not canonical"
        );
        assert!(decode_mutf7("&Jjo!-").is_err());
    }

    #[test]
    fn hostile_folder_names_refused() {
        let long = "x".repeat(300);
        let deep = vec!["a"; 20].join(".");
        for bad in [
            "", "..", ".a", "a.", "a..b", "a/b", "../x", "~x", "a\nb", "a\u{0}b", "tmp", "a.new",
            "CUR", &long, &deep,
        ] {
            assert!(FolderName::new(bad).is_err(), "{bad:?} accepted");
        }
        FolderName::new("Archive.2025").unwrap();
        FolderName::new("Entwürfe").unwrap();
    }
}
