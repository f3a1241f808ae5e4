//! Stable IMAP UIDs in Dovecot's `dovecot-uidlist`, keyword names in `dovecot-keywords`.
//!
//! From Dovecot's documentation of its Maildir extensions
//! (<https://doc.dovecot.org/2.3/admin_manual/mailbox_formats/maildir/>):
//!
//! > Dovecot uses the `dovecot-uidlist` file to keep UID <-> filename mapping. [...] The file
//! > begins with a header: `3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1`.
//! > 3 is the file format version number used by Dovecot v1.1+; 1275660208 is the IMAP
//! > UIDVALIDITY; 25022 is the UID that will be given to the next added message;
//! > 3085f01b7f11094c501100008c4a11c1 is the 128 bit mailbox global UID in hex. There may be
//! > other fields, and the order of these fields isn't important.
//!
//! The rest, summarised from the same page and checked against Dovecot 2.3 (see
//! `tests/interop.rs`):
//!
//! - Each following line is a UID, optional extension fields (`G<guid>`, `W<vsize>`, ...), and
//!   `:` followed by the file name; names are matched by their part before the `:2,` info.
//! - Dovecot writes `N` lazily: a line's UID may be at or above the header's `N`.
//! - The file is locked by creating `dovecot-uidlist.lock`; the new contents are written into
//!   the lock file, which is then renamed over `dovecot-uidlist`.
//! - Keywords are stored in file names as the letters `a`-`z`; `dovecot-keywords` names them,
//!   one `<index> <name>` line each, index 0 being `a`.
//!
//! We take the same lock, write the same way (into the lock file, fsync, rename over, fsync the
//! directory), keep the extension fields and header fields we do not use, and compare file
//! names by their key (the part before `:`), as Dovecot does.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::UidListError;
use crate::fs::Fs;
use crate::maildir::Maildir;
use crate::name::Flags;

/// The UID list file name.
pub const UIDLIST_FILE: &str = "dovecot-uidlist";
/// The keywords file name.
pub const KEYWORDS_FILE: &str = "dovecot-keywords";

/// A lock older than this is taken to be left by a dead process and removed (Dovecot's
/// `dovecot-uidlist.lock` stale timeout is 2 minutes).
pub const LOCK_STALE_AFTER: Duration = Duration::from_secs(120);
/// How long to wait for another process's lock before giving up.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The largest `dovecot-uidlist` read (a million messages at ~100 bytes a line).
const UIDLIST_LIMIT: u64 = 128 << 20;
/// The longest line of `dovecot-uidlist` accepted.
const MAX_LINE: usize = 8192;

/// One message in the UID list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidEntry {
    /// The message's IMAP UID.
    pub uid: u32,
    /// The message's key (file name without the `:2,` info).
    pub key: String,
    /// Extension fields as Dovecot wrote them (`G<guid>`, `W<vsize>`, ...), kept verbatim.
    pub extensions: Vec<String>,
}

/// The contents of `dovecot-uidlist`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidList {
    /// IMAP UIDVALIDITY (`V`).
    pub uid_validity: u32,
    /// The next UID to give (`N`).
    pub next_uid: u32,
    /// The mailbox GUID (`G`), 32 hex digits.
    pub guid: Option<String>,
    other_header: Vec<String>,
    entries: Vec<UidEntry>,
    /// Key to position in `entries`, for [`UidList::uid_of`] in constant time.
    by_key: HashMap<String, usize>,
}

impl UidList {
    /// A fresh list: UIDVALIDITY from the clock, next UID 1, a random mailbox GUID.
    pub fn new(now: SystemTime) -> Self {
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let r = crate::name::unique_name(now);
        // 128 bits from the unique-name generator's random part and the clock.
        let mut h: u128 = u128::from(secs);
        for b in r.bytes() {
            h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B) ^ u128::from(b);
        }
        Self {
            uid_validity: u32::try_from(secs).unwrap_or(u32::MAX).max(1),
            next_uid: 1,
            guid: Some(format!("{h:032x}")),
            other_header: Vec::new(),
            entries: Vec::new(),
            by_key: HashMap::new(),
        }
    }

    /// The entries, by ascending UID.
    pub fn entries(&self) -> &[UidEntry] {
        &self.entries
    }

    /// The UID of the message with key `key`.
    pub fn uid_of(&self, key: &str) -> Option<u32> {
        self.by_key
            .get(key)
            .and_then(|&i| self.entries.get(i))
            .map(|e| e.uid)
    }

    /// The key of the message with UID `uid`.
    pub fn key_of(&self, uid: u32) -> Option<&str> {
        self.entries
            .binary_search_by_key(&uid, |e| e.uid)
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|e| e.key.as_str())
    }

    /// Parses a `dovecot-uidlist` (version 3, or Courier's version 1).
    ///
    /// # Errors
    ///
    /// [`UidListError::Parse`] with the line number.
    pub fn parse(text: &[u8], path: &Path) -> Result<Self, UidListError> {
        let perr = |line: usize, reason: String| UidListError::Parse {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let text = std::str::from_utf8(text).map_err(|e| {
            let line = text[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            perr(line, "not valid UTF-8".into())
        })?;
        let mut lines = text.lines().enumerate();
        let (_, header) = lines.next().ok_or_else(|| perr(1, "empty file".into()))?;
        if header.len() > MAX_LINE {
            return Err(perr(1, "header line too long".into()));
        }
        let mut fields = header.split(' ').filter(|f| !f.is_empty());
        let version = fields.next().unwrap_or("");
        let mut list = UidList {
            uid_validity: 0,
            next_uid: 1,
            guid: None,
            other_header: Vec::new(),
            entries: Vec::new(),
            by_key: HashMap::new(),
        };
        let num = |s: &str, what: &str, line: usize| -> Result<u32, UidListError> {
            s.parse::<u32>()
                .map_err(|_| perr(line, format!("{what} {s:?} is not a 32-bit number")))
        };
        let v3 = match version {
            "3" => {
                for f in fields {
                    // A field starting with a multi-byte character is nobody's: kept as is.
                    let (k, v) = f.split_at_checked(1).unwrap_or(("", f));
                    match k {
                        "V" => list.uid_validity = num(v, "UIDVALIDITY", 1)?,
                        "N" => list.next_uid = num(v, "next UID", 1)?,
                        "G" => list.guid = Some(v.to_owned()),
                        _ => list.other_header.push(f.to_owned()),
                    }
                }
                true
            }
            "1" => {
                list.uid_validity = num(fields.next().unwrap_or(""), "UIDVALIDITY", 1)?;
                list.next_uid = num(fields.next().unwrap_or(""), "next UID", 1)?;
                false
            }
            other => return Err(perr(1, format!("unsupported version {other:?}"))),
        };
        if list.uid_validity == 0 {
            return Err(perr(1, "no UIDVALIDITY".into()));
        }
        let mut last = 0u32;
        for (i, line) in lines {
            let n = i + 1;
            if line.is_empty() {
                continue;
            }
            if line.len() > MAX_LINE {
                return Err(perr(n, "line too long".into()));
            }
            let (uid, rest) = line
                .split_once(' ')
                .ok_or_else(|| perr(n, "expected `<uid> ... :<filename>`".into()))?;
            let uid = num(uid, "UID", n)?;
            let (extensions, file) = if v3 {
                let colon = rest
                    .find(" :")
                    .map(|p| p + 1)
                    .or_else(|| rest.starts_with(':').then_some(0))
                    .ok_or_else(|| perr(n, "no `:` before the file name".into()))?;
                let ext: Vec<String> = rest[..colon]
                    .split(' ')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect();
                (ext, &rest[colon + 1..])
            } else {
                (Vec::new(), rest)
            };
            let key = file.split(':').next().unwrap_or("");
            if key.is_empty() {
                return Err(perr(n, "empty file name".into()));
            }
            if uid == 0 || uid <= last {
                return Err(perr(
                    n,
                    format!("UID {uid} is not above the previous UID {last}"),
                ));
            }
            last = uid;
            list.entries.push(UidEntry {
                uid,
                key: key.to_owned(),
                extensions,
            });
        }
        if last >= list.next_uid {
            list.next_uid = last.saturating_add(1);
        }
        list.reindex();
        Ok(list)
    }

    fn reindex(&mut self) {
        self.by_key = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.key.clone(), i))
            .collect();
    }

    /// The file's text (version 3).
    pub fn to_text(&self) -> String {
        let mut out = format!("3 V{} N{}", self.uid_validity, self.next_uid);
        if let Some(g) = &self.guid {
            out.push_str(" G");
            out.push_str(g);
        }
        for f in &self.other_header {
            out.push(' ');
            out.push_str(f);
        }
        out.push('\n');
        for e in &self.entries {
            out.push_str(&e.uid.to_string());
            for x in &e.extensions {
                out.push(' ');
                out.push_str(x);
            }
            out.push_str(" :");
            out.push_str(&e.key);
            out.push('\n');
        }
        out
    }
}

/// A dotlock held on `<file>.lock`; removed on drop unless consumed by a replace.
struct DotLock<'a, F: Fs> {
    fs: &'a F,
    path: PathBuf,
    file: Option<F::File>,
}

impl<'a, F: Fs> DotLock<'a, F> {
    fn acquire(fs: &'a F, target: &Path) -> Result<Self, UidListError> {
        let mut name = target.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match fs.create_new(&path) {
                Ok(file) => {
                    return Ok(Self {
                        fs,
                        path,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let stale = fs.metadata(&path).is_ok_and(|m| {
                        SystemTime::now()
                            .duration_since(m.modified)
                            .is_ok_and(|age| age > LOCK_STALE_AFTER)
                    });
                    if stale {
                        let _ = fs.remove_file(&path);
                        continue;
                    }
                    if start.elapsed() > LOCK_WAIT {
                        return Err(UidListError::Locked { path });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(source) => {
                    return Err(UidListError::Io {
                        action: "create",
                        path,
                        source,
                    });
                }
            }
        }
    }

    /// Writes `text` as the new contents of `target` through the lock file (Dovecot's
    /// `file_dotlock_replace`): write, fsync, rename over `target`, fsync the directory.
    fn replace(mut self, target: &Path, text: &str) -> Result<(), UidListError> {
        let io_err = |action, path: &Path, source| UidListError::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        // The lock file was created empty; the new contents go into it, so the lock is held
        // until the rename replaces the target.
        let Some(mut file) = self.file.take() else {
            return Err(io_err(
                "write",
                &self.path,
                io::Error::other("lock file already consumed"),
            ));
        };
        file.write_all(text.as_bytes())
            .map_err(|e| io_err("write", &self.path, e))?;
        self.fs
            .sync_file(&mut file)
            .map_err(|e| io_err("fsync", &self.path, e))?;
        drop(file);
        self.fs
            .rename(&self.path, target)
            .map_err(|e| io_err("rename", target, e))?;
        let dir = crate::maildir::parent_dir(target);
        self.fs
            .sync_dir(&dir)
            .map_err(|e| io_err("fsync directory", &dir, e))?;
        self.path = PathBuf::new();
        Ok(())
    }
}

impl<F: Fs> Drop for DotLock<'_, F> {
    fn drop(&mut self) {
        self.file = None;
        if !self.path.as_os_str().is_empty() {
            let _ = self.fs.remove_file(&self.path);
        }
    }
}

/// The names of the keywords `a`-`z` of one Maildir (`dovecot-keywords`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    names: Vec<Option<String>>,
}

impl Keywords {
    /// The letter index (0 for `a`) of keyword `name`, compared case-insensitively as IMAP does.
    pub fn index_of(&self, name: &str) -> Option<u8> {
        self.names
            .iter()
            .position(|n| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|i| u8::try_from(i).ok())
    }

    /// The name of the keyword with letter index `index`.
    pub fn name(&self, index: u8) -> Option<&str> {
        self.names
            .get(usize::from(index))
            .and_then(|n| n.as_deref())
    }

    /// The keyword names set in `flags`, in letter order (letters without a name are left out).
    pub fn names_in(&self, flags: Flags) -> Vec<&str> {
        flags
            .keyword_indexes()
            .filter_map(|i| self.name(i))
            .collect()
    }

    /// The flags for keyword names (unknown names are left out).
    pub fn flags_of<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Flags {
        names
            .into_iter()
            .filter_map(|n| self.index_of(n))
            .filter_map(Flags::keyword)
            .fold(Flags::empty(), Flags::union)
    }

    /// Parses `dovecot-keywords`.
    ///
    /// # Errors
    ///
    /// [`UidListError::Parse`] with the line number.
    pub fn parse(text: &[u8], path: &Path) -> Result<Self, UidListError> {
        let perr = |line: usize, reason: String| UidListError::Parse {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let text = std::str::from_utf8(text).map_err(|_| perr(1, "not valid UTF-8".into()))?;
        let mut kw = Keywords::default();
        for (i, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let (idx, name) = line
                .split_once(' ')
                .ok_or_else(|| perr(i + 1, "expected `<index> <name>`".into()))?;
            let idx: usize = idx
                .parse()
                .ok()
                .filter(|&n| n < 26)
                .ok_or_else(|| perr(i + 1, format!("keyword index {idx:?} is not 0-25")))?;
            check_keyword(name).map_err(|r| perr(i + 1, r.into()))?;
            if kw.names.len() <= idx {
                kw.names.resize(idx + 1, None);
            }
            kw.names[idx] = Some(name.to_owned());
        }
        Ok(kw)
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.names.iter().enumerate() {
            if let Some(n) = n {
                out.push_str(&format!("{i} {n}\n"));
            }
        }
        out
    }
}

/// An IMAP keyword: an atom (RFC 9051: no space, control, `(){%*"\]`), not a `\` system flag.
fn check_keyword(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 250 {
        return Err("keyword name empty or longer than 250 bytes");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == ' ' || "(){%*\"\\]".contains(c) || !c.is_ascii())
    {
        return Err("keyword name is not an IMAP atom");
    }
    Ok(())
}

impl<F: Fs> Maildir<F> {
    /// Path of this Maildir's `dovecot-uidlist`.
    pub fn uidlist_path(&self) -> PathBuf {
        self.path.join(UIDLIST_FILE)
    }

    /// Reads `dovecot-uidlist` without locking; `None` when there is none yet.
    ///
    /// # Errors
    ///
    /// When it cannot be read or is malformed.
    pub fn read_uidlist(&self) -> Result<Option<UidList>, UidListError> {
        let path = self.uidlist_path();
        match self.fs.read_small(&path, UIDLIST_LIMIT) {
            Ok(text) => UidList::parse(&text, &path).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(UidListError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Gives every message a UID: under `dovecot-uidlist.lock`, reads the list, drops messages
    /// that are gone, gives new messages the next UIDs (in key order, which is delivery-time
    /// order for names made by the Maildir protocol), and writes the list back if it changed.
    ///
    /// # Errors
    ///
    /// [`UidListError::Locked`] when another process holds the lock for [`LOCK_WAIT`], or the
    /// step that failed.
    pub fn sync_uids(&self) -> Result<UidList, UidListError> {
        let path = self.uidlist_path();
        let lock = DotLock::acquire(&self.fs, &path)?;
        let existing = self.read_uidlist()?;
        let mut changed = existing.is_none();
        let mut list = existing.unwrap_or_else(|| UidList::new(SystemTime::now()));
        let scan = self.scan()?;
        let mut keys: Vec<&str> = scan.messages.iter().map(|m| m.key().as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let before = list.entries.len();
        // Keep entries whose file is still there, each key once (the lowest UID wins).
        let mut seen = std::collections::HashSet::new();
        list.entries
            .retain(|e| keys.binary_search(&e.key.as_str()).is_ok() && seen.insert(e.key.clone()));
        changed |= list.entries.len() != before;
        let mut known: Vec<&str> = list.entries.iter().map(|e| e.key.as_str()).collect();
        known.sort_unstable();
        let fresh: Vec<String> = keys
            .iter()
            .filter(|k| known.binary_search(k).is_err())
            .map(|k| (*k).to_owned())
            .collect();
        for key in fresh {
            let uid = list.next_uid;
            list.next_uid = list
                .next_uid
                .checked_add(1)
                .ok_or_else(|| UidListError::Parse {
                    path: path.clone(),
                    line: 1,
                    reason: "UID space exhausted".into(),
                })?;
            list.entries.push(UidEntry {
                uid,
                key,
                extensions: Vec::new(),
            });
            changed = true;
        }
        list.reindex();
        if changed {
            lock.replace(&path, &list.to_text())?;
        }
        Ok(list)
    }

    /// Path of this Maildir's `dovecot-keywords`.
    pub fn keywords_path(&self) -> PathBuf {
        self.path.join(KEYWORDS_FILE)
    }

    /// Reads `dovecot-keywords` (empty when there is none).
    ///
    /// # Errors
    ///
    /// When it cannot be read or is malformed.
    pub fn read_keywords(&self) -> Result<Keywords, UidListError> {
        let path = self.keywords_path();
        match self.fs.read_small(&path, 64 * 1024) {
            Ok(text) => Keywords::parse(&text, &path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Keywords::default()),
            Err(source) => Err(UidListError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// The letter flag for keyword `name`, adding it to `dovecot-keywords` (under
    /// `dovecot-keywords.lock`) if it is new.
    ///
    /// # Errors
    ///
    /// [`UidListError::TooManyKeywords`] when all 26 letters are taken, [`UidListError::Parse`]
    /// for a name that is not an IMAP atom, or the file step that failed.
    pub fn keyword_flag(&self, name: &str) -> Result<Flags, UidListError> {
        let path = self.keywords_path();
        check_keyword(name).map_err(|reason| UidListError::Parse {
            path: path.clone(),
            line: 0,
            reason: format!("{reason}: {name:?}"),
        })?;
        if let Some(i) = self.read_keywords()?.index_of(name) {
            return Ok(Flags::keyword(i).unwrap_or_default());
        }
        let lock = DotLock::acquire(&self.fs, &path)?;
        let mut kw = self.read_keywords()?;
        if let Some(i) = kw.index_of(name) {
            return Ok(Flags::keyword(i).unwrap_or_default());
        }
        let slot = match kw.names.iter().position(Option::is_none) {
            Some(i) => i,
            None if kw.names.len() < 26 => {
                kw.names.push(None);
                kw.names.len() - 1
            }
            None => {
                return Err(UidListError::TooManyKeywords {
                    name: name.to_owned(),
                });
            }
        };
        kw.names[slot] = Some(name.to_owned());
        lock.replace(&path, &kw.to_text())?;
        let index = u8::try_from(slot).unwrap_or(25);
        Ok(Flags::keyword(index).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_header_and_lines() {
        let text = b"3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1\n\
            25020 :1035478339.27041_118.foo.org\n\
            25021 G3085f01b W2048 :1035478340.M1P2.host,S=2000:2,S\n";
        let list = UidList::parse(text, Path::new("u")).unwrap();
        assert_eq!(list.uid_validity, 1_275_660_208);
        assert_eq!(list.next_uid, 25022);
        assert_eq!(list.uid_of("1035478340.M1P2.host,S=2000"), Some(25021));
        assert_eq!(list.key_of(25020), Some("1035478339.27041_118.foo.org"));
        assert_eq!(list.entries()[1].extensions, vec!["G3085f01b", "W2048"]);
        let again = UidList::parse(list.to_text().as_bytes(), Path::new("u")).unwrap();
        assert_eq!(again.entries(), list.entries());
    }

    #[test]
    fn malformed_uidlists_name_the_line() {
        for (text, line) in [
            (&b""[..], 1),
            (b"7 V1 N1\n", 1),
            (b"3 N1\n", 1),
            (b"3 V1 N5\n2 :a\n1 :b\n", 3),
            (b"3 V1 N5\nx :a\n", 2),
            (b"3 V1 N5\n1 a\n", 2),
            (b"3 V1 N5\n1 :\n", 2),
            (b"3 V1 N5\n\xff\n", 2),
        ] {
            match UidList::parse(text, Path::new("u")) {
                Err(UidListError::Parse { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn multibyte_header_field_is_kept_not_split() {
        let list = UidList::parse("3 V1 N2 é€\n1 :a\n".as_bytes(), Path::new("u")).unwrap();
        assert!(list.to_text().starts_with("3 V1 N2 é€\n"));
    }

    #[test]
    fn keywords_file() {
        let kw = Keywords::parse(b"0 $Forwarded\n2 Junk\n", Path::new("k")).unwrap();
        assert_eq!(kw.index_of("junk"), Some(2));
        assert_eq!(kw.name(0), Some("$Forwarded"));
        assert_eq!(kw.to_text(), "0 $Forwarded\n2 Junk\n");
        assert!(Keywords::parse(b"26 x\n", Path::new("k")).is_err());
        assert!(Keywords::parse(b"0 a b\n", Path::new("k")).is_err());
    }
}
