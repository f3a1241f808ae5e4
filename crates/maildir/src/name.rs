//! Unique names, message keys, the `:2,` info and its flags.
//!
//! From the Maildir specification (<https://cr.yp.to/proto/maildir.html>):
//!
//! > A unique name can be anything that doesn't contain a colon (or slash) and doesn't start
//! > with a dot.
//!
//! > Modern delivery identifiers are created by concatenating enough of the following strings
//! > to guarantee uniqueness: [...] Rn, where n is (in hexadecimal) the output of the operating
//! > system's unix_cryptorandomnumber() system call, or an equivalent source such as
//! > /dev/urandom. [...] Mn, where n is (in decimal) the microsecond counter from the same
//! > gettimeofday() used for the left part of the unique name. Pn, where n is (in decimal) the
//! > process ID. Qn, where n is (in decimal) the number of deliveries made by this process.
//!
//! > On the right is the result of gethostname(). (To deal with invalid host names, replace /
//! > with \057 and : with \072.)
//!
//! > When you move a file from new to cur, you have to change its name from uniq to uniq:info.
//!
//! > Info starting with "2,": Each character after the comma is an independent flag. [...]
//! > Flags must be stored in ASCII order: e.g., "2,FRS".

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest file name accepted from a directory listing (the usual `NAME_MAX`).
pub const MAX_NAME_LEN: usize = 255;

/// The unique part of a message's file name: everything before the `:` of the info.
///
/// It is what identifies a message across flag changes and the move from `new/` to `cur/`, and
/// what `dovecot-uidlist` records. A key is never empty, never starts with `.`, holds no `/`,
/// `:`, NUL or other control character, is valid UTF-8 and at most [`MAX_NAME_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageKey(String);

impl MessageKey {
    /// Checks `key` and wraps it.
    ///
    /// # Errors
    ///
    /// Returns why the key cannot be a Maildir unique name.
    pub fn new(key: impl Into<String>) -> Result<Self, &'static str> {
        let key = key.into();
        check_key(&key)?;
        Ok(Self(key))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The message size in bytes from the `,S=<size>` field, if the name carries one.
    ///
    /// Dovecot writes `S=` (and `W=`, the size with CRLF line ends) as comma-separated fields
    /// after the unique name; we read them without opening the file.
    pub fn size(&self) -> Option<u64> {
        self.field('S')
    }

    /// The virtual size (`,W=<size>`: the size with CRLF line endings), if present.
    pub fn virtual_size(&self) -> Option<u64> {
        self.field('W')
    }

    fn field(&self, letter: char) -> Option<u64> {
        self.0.split(',').skip(1).find_map(|f| {
            let rest = f.strip_prefix(letter)?.strip_prefix('=')?;
            if rest.is_empty() || rest.len() > 20 || !rest.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            rest.parse().ok()
        })
    }
}

impl fmt::Display for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for MessageKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("empty");
    }
    if key.len() > MAX_NAME_LEN {
        return Err("longer than 255 bytes");
    }
    if key.starts_with('.') {
        return Err("starts with a dot");
    }
    if key.contains(['/', ':']) {
        return Err("contains `/` or `:`");
    }
    if key.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    Ok(())
}

/// A set of Maildir flags: the six system flags and the 26 keyword letters `a`-`z`.
///
/// The letters are the ones of the `2,` info: `D` draft, `F` flagged, `P` passed (forwarded),
/// `R` replied, `S` seen, `T` trashed; `a`-`z` are keywords whose names Dovecot keeps in
/// `dovecot-keywords` (see [`crate::Keywords`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u32);

impl Flags {
    /// `D`: the message is a draft (IMAP `\Draft`).
    pub const DRAFT: Flags = Flags(1 << 0);
    /// `F`: flagged for urgent or special attention (IMAP `\Flagged`).
    pub const FLAGGED: Flags = Flags(1 << 1);
    /// `P`: passed, resent or forwarded.
    pub const PASSED: Flags = Flags(1 << 2);
    /// `R`: replied to (IMAP `\Answered`).
    pub const REPLIED: Flags = Flags(1 << 3);
    /// `S`: seen (IMAP `\Seen`).
    pub const SEEN: Flags = Flags(1 << 4);
    /// `T`: trashed, marked for deletion (IMAP `\Deleted`).
    pub const TRASHED: Flags = Flags(1 << 5);

    const SYSTEM: [(u8, Flags); 6] = [
        (b'D', Flags::DRAFT),
        (b'F', Flags::FLAGGED),
        (b'P', Flags::PASSED),
        (b'R', Flags::REPLIED),
        (b'S', Flags::SEEN),
        (b'T', Flags::TRASHED),
    ];

    /// No flag set.
    pub const fn empty() -> Self {
        Flags(0)
    }

    /// The keyword with letter index `index` (0 for `a`, 25 for `z`).
    pub const fn keyword(index: u8) -> Option<Flags> {
        if index < 26 {
            Some(Flags(1 << (6 + index as u32)))
        } else {
            None
        }
    }

    /// The flag for info letter `letter`, if it is one of `DFPRST` or `a`-`z`.
    pub fn from_letter(letter: u8) -> Option<Flags> {
        match letter {
            b'a'..=b'z' => Flags::keyword(letter - b'a'),
            _ => Flags::SYSTEM
                .iter()
                .find(|(l, _)| *l == letter)
                .map(|(_, f)| *f),
        }
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `self` with the flags of `other` added.
    #[must_use]
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// `self` without the flags of `other`.
    #[must_use]
    pub const fn difference(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// The keyword indexes set (0 for `a`).
    pub fn keyword_indexes(self) -> impl Iterator<Item = u8> {
        (0..26u8).filter(move |i| self.0 & (1 << (6 + u32::from(*i))) != 0)
    }

    /// The info letters in ASCII order, as the specification requires (`DFPRST` then `a`-`z`).
    pub fn letters(self) -> String {
        let mut out = String::new();
        for (letter, flag) in Flags::SYSTEM {
            if self.contains(flag) {
                out.push(char::from(letter));
            }
        }
        for i in self.keyword_indexes() {
            out.push(char::from(b'a' + i));
        }
        out
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

/// A parsed file name from `new/` or `cur/`: the key, then the info if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedName {
    pub(crate) key: MessageKey,
    pub(crate) flags: Flags,
    /// Info characters we do not interpret, kept so a flag change does not drop them
    /// (letters other than `DFPRST` and `a`-`z` after `2,`), or the whole info when it is not
    /// version 2 (the experimental `1,` semantics).
    pub(crate) other: String,
    /// Whether the info is `2,` (or absent), so that flags can be rewritten.
    pub(crate) info_v2: bool,
}

/// Splits `name` into key and info. Returns the reason when `name` is not a message.
pub(crate) fn parse_name(name: &str) -> Result<ParsedName, &'static str> {
    let (key, info) = match name.split_once(':') {
        Some((k, i)) => (k, Some(i)),
        None => (name, None),
    };
    let key = MessageKey::new(key)?;
    let mut flags = Flags::empty();
    let mut other = String::new();
    let info_v2 = match info {
        None => true,
        Some(info) => match info.strip_prefix("2,") {
            Some(letters) => {
                for c in letters.chars() {
                    match u8::try_from(c).ok().and_then(Flags::from_letter) {
                        Some(f) => flags = flags.union(f),
                        None => other.push(c),
                    }
                }
                true
            }
            None => {
                other.push_str(info);
                false
            }
        },
    };
    Ok(ParsedName {
        key,
        flags,
        other,
        info_v2,
    })
}

/// The file name in `cur/` for `key` with `flags` and the uninterpreted info letters `other`.
pub(crate) fn cur_name(key: &MessageKey, flags: Flags, other: &str) -> String {
    let mut letters: Vec<char> = flags.letters().chars().chain(other.chars()).collect();
    letters.sort_unstable();
    letters.dedup();
    let mut name = String::with_capacity(key.as_str().len() + 3 + letters.len());
    name.push_str(key.as_str());
    name.push_str(":2,");
    name.extend(letters);
    name
}

/// The host name as it appears in unique names: `/` as `\057`, `:` as `\072`, and (our
/// addition, since `,` separates Dovecot's `S=` fields) `,` as `\054`; any other byte outside
/// printable ASCII is escaped the same way.
pub(crate) fn escaped_host_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        match b {
            b'/' | b':' | b',' | b'\\' | 0..=0x20 | 0x7f..=0xff => {
                out.push_str(&format!("\\{b:03o}"));
            }
            _ => out.push(char::from(b)),
        }
    }
    if out.is_empty() {
        out.push_str("localhost");
    }
    out
}

fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let uname = rustix::system::uname();
        escaped_host_name(&uname.nodename().to_string_lossy())
    })
}

/// Deliveries made by this process: the `Q` part.
static DELIVERIES: AtomicU64 = AtomicU64::new(0);

fn random_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        use std::io::Read;
        let mut bytes = [0u8; 8];
        let from_urandom = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .is_ok();
        if from_urandom {
            u64::from_le_bytes(bytes)
        } else {
            // No /dev/urandom (a chroot): std's hasher keys are random per process.
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::process::id())
        }
    })
}

/// A fresh unique name for a file in `tmp/`: `SECS.MusecPpidQnRrandom.host`.
///
/// The name in `new/` adds `,S=<size>` once the size is known, as Dovecot does.
pub(crate) fn unique_name(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let q = DELIVERIES.fetch_add(1, Ordering::Relaxed) + 1;
    // The pid is re-read each time: a forked child must not reuse its parent's names.
    let pid = std::process::id();
    let mut r = random_seed() ^ q.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(pid) << 32;
    r = (r ^ (r >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    r ^= r >> 29;
    format!(
        "{}.M{}P{}Q{}R{:016x}.{}",
        since.as_secs(),
        since.subsec_micros(),
        pid,
        q,
        r,
        host_name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differ_and_are_valid_keys() {
        let now = SystemTime::now();
        let a = unique_name(now);
        let b = unique_name(now);
        assert_ne!(a, b);
        MessageKey::new(a.clone()).unwrap();
        assert!(a.contains(&format!("P{}Q", std::process::id())));
    }

    #[test]
    fn host_escapes() {
        assert_eq!(escaped_host_name("a/b:c,d"), "a\\057b\\072c\\054d");
        assert_eq!(escaped_host_name(""), "localhost");
    }

    #[test]
    fn info_round_trip() {
        let p = parse_name("123.M1P2.host,S=42:2,FRSa").unwrap();
        assert_eq!(p.key.as_str(), "123.M1P2.host,S=42");
        assert_eq!(p.key.size(), Some(42));
        assert!(
            p.flags
                .contains(Flags::FLAGGED | Flags::REPLIED | Flags::SEEN)
        );
        assert_eq!(p.flags.keyword_indexes().collect::<Vec<_>>(), vec![0]);
        assert_eq!(
            cur_name(&p.key, p.flags, &p.other),
            "123.M1P2.host,S=42:2,FRSa"
        );
    }

    #[test]
    fn flags_in_ascii_order() {
        let f = Flags::SEEN | Flags::DRAFT | Flags::keyword(2).unwrap() | Flags::FLAGGED;
        assert_eq!(f.letters(), "DFSc");
    }

    #[test]
    fn unknown_info_is_kept() {
        let p = parse_name("k:2,SX").unwrap();
        assert_eq!(p.other, "X");
        assert_eq!(
            cur_name(&p.key, p.flags.union(Flags::FLAGGED), &p.other),
            "k:2,FSX"
        );
        let p = parse_name("k:1,xyz").unwrap();
        assert!(!p.info_v2);
    }

    #[test]
    fn hostile_keys_refused() {
        for bad in ["", ".hidden", "a/b", "a\nb", &"x".repeat(300)] {
            assert!(MessageKey::new(bad).is_err(), "{bad:?}");
        }
        assert!(parse_name(":2,S").is_err());
    }

    #[test]
    fn size_field() {
        assert_eq!(MessageKey::new("a,S=12,W=14").unwrap().size(), Some(12));
        assert_eq!(MessageKey::new("a,W=14").unwrap().virtual_size(), Some(14));
        assert_eq!(MessageKey::new("a,S=x").unwrap().size(), None);
        assert_eq!(MessageKey::new("S=5").unwrap().size(), None);
    }
}
