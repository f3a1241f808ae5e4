//! The user database: a passwd-file in Dovecot's format.
//!
//! One user per line: `user@domain:{SCHEME}hash:uid:gid:gecos:home:shell:extra`, with empty
//! fields allowed after the password; `#` starts a comment line. Schemes: `{PLAIN}`,
//! `{SHA512-CRYPT}` (`$6$...`, crypt(3)) and `{ARGON2ID}` (`$argon2id$...`, PHC string), as
//! `doveadm pw -s` writes them.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// One user of the passwd-file.
#[derive(Debug, Clone)]
pub struct User {
    /// The login name as written (`user@domain` or `user`).
    pub name: String,
    /// `{SCHEME}hash`.
    password: String,
    /// The home directory (may be empty).
    pub home: PathBuf,
}

/// The users of a passwd-file.
#[derive(Debug, Clone, Default)]
pub struct Passwd {
    users: HashMap<String, User>,
}

/// A malformed passwd-file line, or an unreadable file.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The password schemes understood.
const SCHEMES: [&str; 3] = ["PLAIN", "SHA512-CRYPT", "ARGON2ID"];

impl Passwd {
    /// Parses passwd-file text.
    ///
    /// # Errors
    ///
    /// [`PasswdError::Syntax`] naming the line.
    pub fn parse(path: &Path, text: &str) -> Result<Passwd, PasswdError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let err = |message: &str| PasswdError::Syntax {
                path: path.to_path_buf(),
                line: i + 1,
                message: message.to_string(),
            };
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split(':').collect();
            let name = fields.first().copied().unwrap_or("");
            if name.is_empty() {
                return Err(err("empty user name"));
            }
            let password = fields.get(1).copied().unwrap_or("");
            let scheme = password
                .strip_prefix('{')
                .and_then(|p| p.split_once('}'))
                .map(|(s, _)| s.to_ascii_uppercase());
            match scheme {
                Some(s) if SCHEMES.contains(&s.as_str()) => {}
                Some(s) => return Err(err(&format!("unknown password scheme {{{s}}}"))),
                None => return Err(err("password without {SCHEME} prefix")),
            }
            let home = PathBuf::from(fields.get(5).copied().unwrap_or(""));
            users.insert(
                name.to_ascii_lowercase(),
                User {
                    name: name.to_string(),
                    password: password.to_string(),
                    home,
                },
            );
        }
        Ok(Passwd { users })
    }

    /// Reads the file (at most 16 MiB).
    ///
    /// # Errors
    ///
    /// As [`Passwd::parse`], or the read error.
    pub fn load(path: &Path) -> Result<Passwd, PasswdError> {
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(16 << 20).read_to_string(&mut text))
            .map_err(|source| PasswdError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Passwd::parse(path, &text)
    }

    /// The user logging in as `login` (case-insensitive).
    pub fn get(&self, login: &str) -> Option<&User> {
        self.users.get(&login.to_ascii_lowercase())
    }

    /// The user whose mail goes to `local_part@domain`: the entry `local_part@domain`, else a
    /// bare `local_part`.
    pub fn mailbox_user(&self, local_part: &str, domain: &str) -> Option<&User> {
        self.get(&format!("{local_part}@{domain}"))
            .or_else(|| self.get(local_part))
    }

    /// The user receiving mail for `local_part@domain` as local(8) and Dovecot's LMTP find it:
    /// [`Passwd::mailbox_user`], then, when `delimiter` is set and the local part holds it,
    /// the same for the part before it (`user+ext` delivers to `user`).
    pub fn recipient_user(&self, local_part: &str, domain: &str, delimiter: &str) -> Option<&User> {
        self.mailbox_user(local_part, domain).or_else(|| {
            (!delimiter.is_empty())
                .then(|| local_part.split_once(delimiter))
                .flatten()
                .and_then(|(base, _)| self.mailbox_user(base, domain))
        })
    }

    /// The local parts of all users (for `local_recipient_maps`).
    pub fn local_parts(&self) -> impl Iterator<Item = &str> {
        self.users
            .keys()
            .map(|k| k.split_once('@').map_or(k.as_str(), |(l, _)| l))
    }

    /// Checks `password` for `login`. Unknown users and wrong passwords are both `false`.
    ///
    /// An unknown user costs an argon2 verification too (against a hash made once, of no
    /// password anyone knows), so the time of the answer does not tell which users exist.
    pub fn verify(&self, login: &str, password: &str) -> bool {
        match self.get(login) {
            Some(u) => verify_scheme(&u.password, password),
            None => {
                static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
                let dummy = DUMMY.get_or_init(|| {
                    random_password()
                        .ok()
                        .and_then(|p| hash_argon2id(&p).ok())
                        .unwrap_or_default()
                });
                let _ = verify_scheme(dummy, password);
                false
            }
        }
    }
}

/// Checks `password` against a `{SCHEME}hash` string.
pub fn verify_scheme(stored: &str, password: &str) -> bool {
    let Some((scheme, hash)) = stored.strip_prefix('{').and_then(|p| p.split_once('}')) else {
        return false;
    };
    match scheme.to_ascii_uppercase().as_str() {
        "PLAIN" => constant_time_eq(hash.as_bytes(), password.as_bytes()),
        "SHA512-CRYPT" => sha_crypt::ShaCrypt::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok(),
        "ARGON2ID" => argon2::password_hash::phc::PasswordHash::new(hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        }),
        _ => false,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hashes `password` as `{ARGON2ID}$argon2id$...` (what the demo user gets).
///
/// # Errors
///
/// When no random salt could be had.
pub fn hash_argon2id(password: &str) -> Result<String, String> {
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| format!("{{ARGON2ID}}{h}"))
        .map_err(|e| format!("argon2: {e}"))
}

/// Hashes `password` as `{SHA512-CRYPT}$6$...`.
///
/// # Errors
///
/// When no random salt could be had.
pub fn hash_sha512_crypt(password: &str) -> Result<String, String> {
    sha_crypt::ShaCrypt::default()
        .hash_password(password.as_bytes())
        .map(|h| format!("{{SHA512-CRYPT}}{}", h.as_str()))
        .map_err(|e| format!("sha512-crypt: {e}"))
}

/// A random password of 16 characters from an unambiguous alphabet, read from
/// `/dev/urandom`.
///
/// # Errors
///
/// When `/dev/urandom` cannot be read.
pub fn random_password() -> std::io::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert!(verify_scheme("{PLAIN}secret", "secret"));
        assert!(!verify_scheme("{PLAIN}secret", "Secret"));
        let h = hash_sha512_crypt("pw").unwrap();
        assert!(h.starts_with("{SHA512-CRYPT}$6$"), "{h}");
        assert!(verify_scheme(&h, "pw") && !verify_scheme(&h, "px"));
        let h = hash_argon2id("pw").unwrap();
        assert!(h.starts_with("{ARGON2ID}$argon2id$"), "{h}");
        assert!(verify_scheme(&h, "pw") && !verify_scheme(&h, "px"));
        // Written by `doveadm pw -s SHA512-CRYPT -p test` and `doveadm pw -s ARGON2ID -p test`.
        let dove = "{SHA512-CRYPT}$6$IF4Pe0O9HteSXboq$qW6Aw/3owQ.xMdey0e6sVtQqZCN5jW3dIorQ0ankSWN8FdKxUevkPriqPTDsze6plCtweohe8edNvKAZMj9pq.";
        assert!(verify_scheme(dove, "test") && !verify_scheme(dove, "tess"));
        let dove = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$FDqzQLxgUpcj0fZL7QvDiw$wb8x2R7pAjK76Vpm5zy1kz4/ho5lYYZhQJG42uqCCd0";
        assert!(verify_scheme(dove, "test") && !verify_scheme(dove, "tess"));
        assert!(!verify_scheme("{MD5}x", "x"));
    }

    #[test]
    fn recipient_user_strips_the_extension() {
        let p = Passwd::parse(
            Path::new("passwd"),
            "alice@example.test:{PLAIN}x::::/h/alice::\nbob:{PLAIN}x::::/h/bob::\n",
        )
        .unwrap();
        let name =
            |l: &str, d: &str, delim: &str| p.recipient_user(l, d, delim).map(|u| u.name.clone());
        assert_eq!(
            name("alice", "example.test", "+").as_deref(),
            Some("alice@example.test")
        );
        assert_eq!(
            name("alice+lists", "example.test", "+").as_deref(),
            Some("alice@example.test")
        );
        assert_eq!(name("alice+lists", "example.test", ""), None);
        assert_eq!(
            name("alice", "other.test", "+"),
            None,
            "the domain is part of the login"
        );
        assert_eq!(name("bob+x", "any.test", "+").as_deref(), Some("bob"));
        assert_eq!(name("carol", "example.test", "+"), None);
    }

    #[test]
    fn parse_lines() {
        let p = Passwd::parse(
            Path::new("passwd"),
            "# users\ndemo@localhost:{PLAIN}pw:1000:1000::/home/demo\nbob:{plain}x::::/h/bob::\n",
        )
        .unwrap();
        assert!(p.verify("DEMO@localhost", "pw"));
        assert!(!p.verify("demo@localhost", "x"));
        assert!(p.verify("bob", "x"));
        // Unknown users are refused (after the same kind of work as a known one).
        assert!(!p.verify("nobody@localhost", "pw"));
        assert!(!p.verify("nobody@localhost", ""));
        assert_eq!(
            p.mailbox_user("demo", "localhost").unwrap().home,
            Path::new("/home/demo")
        );
        assert_eq!(p.mailbox_user("bob", "any").unwrap().name, "bob");
        let e = Passwd::parse(Path::new("passwd"), "ok:{PLAIN}x\nbad:{MD9}y\n").unwrap_err();
        assert_eq!(e.to_string(), "passwd:2: unknown password scheme {MD9}");
        let e = Passwd::parse(Path::new("passwd"), "nopass:x\n").unwrap_err();
        assert!(e.to_string().starts_with("passwd:1:"));
    }
}
