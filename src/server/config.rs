//! The server's configuration: one TOML file whose keys are Postfix main.cf names where the
//! concept exists, with Postfix's defaults unless said otherwise.
//!
//! With no file at all the server runs on [`DEFAULT_CONFIG`]: loopback only, unprivileged
//! ports, data under `./mailroom-data`, domain `localhost`. Every key and its default is listed
//! (with a comment) in that text, which `check` and the README point to.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The embedded default configuration: what the server runs with when no file is given. Every
/// key the server knows is here with its default value and what it means.
pub const DEFAULT_CONFIG: &str = r#"# mailroom server configuration (TOML). Keys are Postfix main.cf names.
# Relative paths are relative to data_directory.

# Where the queue, the user database, the TLS key and the mailboxes live.
data_directory = "./mailroom-data"

# This host's name (EHLO, Received:, bounces) and its domain.
myhostname = "localhost"
# Postfix derives mydomain from myhostname; "" means that.
mydomain = ""
# The domain appended to bare names (Postfix: $myhostname).
myorigin = ""
# The domains delivered by the local transport ($myhostname and $mydomain are expanded).
mydestination = ["$myhostname", "localhost"]
# Clients in these networks may relay (CIDR; Postfix's mynetworks_style=host on loopback).
mynetworks = ["127.0.0.0/8", "::1/128"]
# Other domains this host relays to (Postfix relay_domains; empty by default).
relay_domains = []
# Send all non-local mail through this host: "[host]:port" (no MX lookup) or "host[:port]"
# (its MX records, then its address records).
relayhost = ""
# Lookup tables as Postfix names them: "hash:/path" (source file, no postmap needed),
# "regexp:/path", "inline:{ k = v }"; several tables are tried in order.
transport_maps = []
virtual_alias_maps = []
canonical_maps = []
relocated_maps = []
# aliases(5) file(s) for the local transport (created empty under the data directory).
alias_maps = ["hash:aliases"]
# Virtual mailbox domains: mail for them goes to Maildirs under virtual_mailbox_base, at the
# path virtual_mailbox_maps gives for the address (a trailing "/" means Maildir).
virtual_mailbox_domains = []
virtual_mailbox_maps = []
virtual_mailbox_base = "vmail"
# Local delivery: "Maildir/" (trailing "/": Maildir) or "mbox" (an mbox file), relative to the
# user's home from the passwd-file.
home_mailbox = "Maildir/"
# user+ext@domain delivers to user (Postfix's default is empty; "+" is the common choice).
recipient_delimiter = "+"

# The user database, in Dovecot's passwd-file format:
#   user@domain:{SCHEME}hash:uid:gid::home
# with {PLAIN}, {SHA512-CRYPT} or {ARGON2ID}. Created at first start with one demo user.
passwd_file = "passwd"
# The demo user created with the passwd-file ("" creates none).
demo_user = "demo"

# Listeners: "" turns one off; port 0 picks a free port.
# The port-25 role: mail from anywhere for our domains, relay for mynetworks.
smtpd_listen = "127.0.0.1:2525"
# The submission role (port 587): STARTTLS, then AUTH is required.
submission_listen = "127.0.0.1:2587"
# Submission over implicit TLS (port 465).
submissions_listen = "127.0.0.1:2465"
# Mailbox access (the roles of Dovecot's imap and lmtp) over the users' Maildirs, for the
# users of the passwd-file; home_mailbox must then name a Maildir ("Maildir/").
# IMAP with STARTTLS (the port-143 role).
imap_listen = "127.0.0.1:2143"
# IMAP over implicit TLS (the port-993 role).
imaps_listen = "127.0.0.1:2993"
# Dovecot's disable_plaintext_auth: no LOGIN or AUTHENTICATE PLAIN before STARTTLS.
disable_plaintext_auth = true
# Dovecot's auth_failure_delay (seconds): a failed IMAP login is answered after this many
# seconds times the number of failures so far on the connection.
auth_failure_delay = 2
# Failed IMAP logins allowed per connection: the one that reaches the limit is answered NO,
# then BYE, and the connection closed (as smtpd_auth_failure_limit for SMTP AUTH).
imap_auth_failure_limit = 3
# LMTP delivery into the users' Maildirs: "host:port", or "unix:/path" for a Unix socket.
# A recipient is a passwd-file user (user+ext@domain is user@domain); one reply per recipient
# after the data, Maildir++ quota (maildirsize) enforced. Postfix hands mail to it with
# virtual_transport = lmtp:inet:127.0.0.1:2424, and so can our own lmtp transport.
lmtp_listen = "127.0.0.1:2424"
# TLS certificate and key (PEM). Empty: a self-signed pair generated at first start and kept
# in the data directory (tls-cert.pem, tls-key.pem).
smtpd_tls_cert_file = ""
smtpd_tls_key_file = ""

# Limits, with Postfix's defaults.
message_size_limit = 10240000
smtpd_recipient_limit = 1000
smtpd_hard_error_limit = 20
smtpd_timeout = 300
# Connections one client address may have open at once on each listener (0: no limit); one
# more gets "421 4.7.0 ... too many connections from <ip>". Clients in mynetworks are not
# counted (Postfix's smtpd_client_event_limit_exceptions default).
smtpd_client_connection_count_limit = 50
# AUTH failures allowed per connection; each failure waits one second more than the last,
# and the one that reaches the limit is answered "421 4.7.0" and the connection closed.
smtpd_auth_failure_limit = 3
# pipe(8) transports: a name used in transport_maps ("example.org  filter:") and the command
# with its arguments (no shell); ${sender}, ${recipient}, ${user}, ${domain}, ${nexthop} are
# expanded in each argument. The message is on standard input, once per recipient; exit 0
# delivers, 75 (EX_TEMPFAIL) defers, any other status bounces.
# Example: pipe_transports = { filter = ["/usr/bin/filter", "-f", "${sender}", "${recipient}"] }
pipe_transports = {}
# Delivery: at most this many deliveries run at once.
default_process_limit = 100
# Retry timing of deferred mail (seconds).
minimal_backoff_time = 300
maximal_backoff_time = 4000
maximal_queue_lifetime = 432000
bounce_queue_lifetime = 432000
"#;

/// The configuration, as read from TOML (names as main.cf's).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Each field is documented in DEFAULT_CONFIG beside its default.
pub struct Config {
    pub data_directory: PathBuf,
    pub myhostname: String,
    pub mydomain: String,
    pub myorigin: String,
    pub mydestination: Vec<String>,
    pub mynetworks: Vec<String>,
    pub relay_domains: Vec<String>,
    pub relayhost: String,
    pub transport_maps: Vec<String>,
    pub virtual_alias_maps: Vec<String>,
    pub canonical_maps: Vec<String>,
    pub relocated_maps: Vec<String>,
    pub alias_maps: Vec<String>,
    pub virtual_mailbox_domains: Vec<String>,
    pub virtual_mailbox_maps: Vec<String>,
    pub virtual_mailbox_base: PathBuf,
    pub home_mailbox: String,
    pub recipient_delimiter: String,
    pub passwd_file: PathBuf,
    pub demo_user: String,
    pub smtpd_listen: String,
    pub submission_listen: String,
    pub submissions_listen: String,
    pub imap_listen: String,
    pub imaps_listen: String,
    pub disable_plaintext_auth: bool,
    pub auth_failure_delay: u64,
    pub imap_auth_failure_limit: u32,
    pub lmtp_listen: String,
    pub smtpd_tls_cert_file: String,
    pub smtpd_tls_key_file: String,
    pub message_size_limit: u64,
    pub smtpd_recipient_limit: usize,
    pub smtpd_hard_error_limit: u32,
    pub smtpd_timeout: u64,
    pub smtpd_client_connection_count_limit: usize,
    pub smtpd_auth_failure_limit: u32,
    pub pipe_transports: std::collections::BTreeMap<String, Vec<String>>,
    pub default_process_limit: usize,
    pub minimal_backoff_time: u64,
    pub maximal_backoff_time: u64,
    pub maximal_queue_lifetime: u64,
    pub bounce_queue_lifetime: u64,
}

/// A configuration error, naming the file and line where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The TOML is malformed or a key is unknown or has the wrong type.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The file (`<default>` for the embedded default).
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value is well-formed TOML but not a valid setting.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The setting.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// A network of `mynetworks`: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `a.b.c.d/n`, `[::1]/128`, `::1/128` or a bare address.
    pub fn parse(s: &str) -> Option<Network> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let a = a.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() { max } else { p.parse().ok()? };
        (prefix <= max).then_some(Network { addr, prefix })
    }

    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

impl Config {
    /// Parses configuration text; keys missing from `text` take their value from
    /// [`DEFAULT_CONFIG`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::Syntax`] with the line and column, or [`ConfigError::Invalid`].
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let syntax = |text: &str, e: toml::de::Error, path: &Path| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        };
        let mut base: toml::Table = toml::from_str(DEFAULT_CONFIG)
            .map_err(|e| syntax(DEFAULT_CONFIG, e, Path::new("<default>")))?;
        let given: toml::Table = toml::from_str(text).map_err(|e| syntax(text, e, path))?;
        for (k, v) in given {
            if !base.contains_key(&k) {
                // Find the key's line for the message.
                let offset = text.find(&k).unwrap_or(0);
                let (line, column) = line_col(text, offset);
                return Err(ConfigError::Syntax {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message: format!("unknown setting `{k}`"),
                });
            }
            base.insert(k, v);
        }
        let merged = toml::to_string(&base).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: "*",
            message: e.to_string(),
        })?;
        let config: Config = toml::from_str(&merged).map_err(|e| {
            // A type error: point at the key in the user's text when it is there.
            let key = e
                .span()
                .and_then(|s| merged.get(..s.start))
                .and_then(|b| b.lines().last())
                .and_then(|l| l.split('=').next())
                .map(|k| k.trim().to_string())
                .unwrap_or_default();
            let offset = if key.is_empty() {
                0
            } else {
                text.find(&key).unwrap_or(0)
            };
            let (line, column) = line_col(text, offset);
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: format!("{key}: {}", e.message()),
            }
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    ///
    /// As [`Config::parse`], or the read error.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// The embedded default.
    pub fn default_config() -> Config {
        // The embedded text is tested (`default_parses`); a failure here is a build defect.
        Config::parse(Path::new("<default>"), "").unwrap_or_else(|e| panic!("{e}"))
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        for n in &self.mynetworks {
            if Network::parse(n).is_none() {
                return Err(invalid("mynetworks", format!("{n:?} is not a network")));
            }
        }
        if self.myhostname.is_empty() {
            return Err(invalid("myhostname", "must not be empty".into()));
        }
        for (key, value) in [
            ("smtpd_listen", &self.smtpd_listen),
            ("submission_listen", &self.submission_listen),
            ("submissions_listen", &self.submissions_listen),
            ("imap_listen", &self.imap_listen),
            ("imaps_listen", &self.imaps_listen),
        ] {
            if !value.is_empty() && value.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(key, format!("{value:?} is not address:port")));
            }
        }
        if let Err(e) = self.lmtp_address() {
            return Err(invalid("lmtp_listen", e));
        }
        let serves_mailboxes = [&self.imap_listen, &self.imaps_listen, &self.lmtp_listen]
            .iter()
            .any(|l| !l.is_empty());
        if serves_mailboxes && !self.home_mailbox.ends_with('/') {
            return Err(invalid(
                "home_mailbox",
                format!(
                    "{:?} is an mbox, but the IMAP and LMTP listeners serve Maildirs only: use a \
                     Maildir (\"Maildir/\") or turn them off (imap_listen = imaps_listen = \
                     lmtp_listen = \"\")",
                    self.home_mailbox
                ),
            ));
        }
        for (name, argv) in &self.pipe_transports {
            if argv.is_empty() || !argv[0].starts_with('/') {
                return Err(invalid(
                    "pipe_transports",
                    format!("{name}: the command must start with an absolute program path"),
                ));
            }
        }
        if self.smtpd_tls_cert_file.is_empty() != self.smtpd_tls_key_file.is_empty() {
            return Err(invalid(
                "smtpd_tls_cert_file",
                "set both smtpd_tls_cert_file and smtpd_tls_key_file, or neither".into(),
            ));
        }
        Ok(())
    }

    /// The LMTP listener's address (`None`: off): `host:port`, `inet:host:port` or
    /// `unix:/path`.
    ///
    /// # Errors
    ///
    /// The value is none of these.
    pub fn lmtp_address(&self) -> Result<Option<mailroom_lmtp::Address>, String> {
        let value = self.lmtp_listen.as_str();
        if value.is_empty() {
            return Ok(None);
        }
        if value.starts_with("unix:") || value.starts_with('/') {
            return value
                .parse()
                .map(Some)
                .map_err(|e| format!("{value:?}: {e}"));
        }
        let addr = value.strip_prefix("inet:").unwrap_or(value);
        addr.parse::<std::net::SocketAddr>()
            .map(|a| Some(mailroom_lmtp::Address::Tcp(a.to_string())))
            .map_err(|_| format!("{value:?} is not address:port or unix:/path"))
    }

    /// The parsed `mynetworks`.
    pub fn networks(&self) -> Vec<Network> {
        self.mynetworks
            .iter()
            .filter_map(|n| Network::parse(n))
            .collect()
    }

    /// `path` made absolute against the data directory.
    pub fn data_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.data_directory.join(path)
        }
    }

    /// `mydomain`, derived from `myhostname` when empty.
    pub fn mydomain(&self) -> String {
        if self.mydomain.is_empty() {
            mailroom_rewrite::params::mydomain_of(&self.myhostname)
        } else {
            self.mydomain.clone()
        }
    }

    /// Expands `$myhostname`, `$mydomain` and `$data_directory` in a value.
    pub fn expand(&self, value: &str) -> String {
        value
            .replace("$myhostname", &self.myhostname)
            .replace("$mydomain", &self.mydomain())
            .replace("$data_directory", &self.data_directory.to_string_lossy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parses() {
        let c = Config::default_config();
        assert_eq!(c.smtpd_listen, "127.0.0.1:2525");
        assert_eq!(c.message_size_limit, 10_240_000);
        assert_eq!(c.mydomain(), "localdomain");
    }

    #[test]
    fn errors_name_the_line() {
        let e = Config::parse(Path::new("m.toml"), "myhostname = \"a\"\nbogus = 1\n").unwrap_err();
        assert_eq!(e.to_string(), "m.toml:2:1: unknown setting `bogus`");
        let e = Config::parse(Path::new("m.toml"), "\n\nmyhostname = 3\n").unwrap_err();
        assert!(e.to_string().starts_with("m.toml:3:1: myhostname"), "{e}");
        let e = Config::parse(Path::new("m.toml"), "x = [\n").unwrap_err();
        assert!(e.to_string().starts_with("m.toml:"), "{e}");
        let e = Config::parse(Path::new("m.toml"), "mynetworks = [\"nope\"]\n").unwrap_err();
        assert!(e.to_string().contains("mynetworks"), "{e}");
    }

    #[test]
    fn mailbox_listeners() {
        let c = Config::default_config();
        assert_eq!(c.imap_listen, "127.0.0.1:2143");
        assert_eq!(c.imaps_listen, "127.0.0.1:2993");
        assert_eq!(
            c.lmtp_address().unwrap(),
            Some(mailroom_lmtp::Address::Tcp("127.0.0.1:2424".into()))
        );
        let parse = |text: &str| Config::parse(Path::new("m.toml"), text);
        let c = parse("lmtp_listen = \"unix:/run/mailroom/lmtp\"\n").unwrap();
        assert_eq!(
            c.lmtp_address().unwrap(),
            Some(mailroom_lmtp::Address::Unix("/run/mailroom/lmtp".into()))
        );
        let c = parse("lmtp_listen = \"inet:[::1]:24\"\n").unwrap();
        assert_eq!(
            c.lmtp_address().unwrap(),
            Some(mailroom_lmtp::Address::Tcp("[::1]:24".into()))
        );
        assert_eq!(
            parse("lmtp_listen = \"\"\n")
                .unwrap()
                .lmtp_address()
                .unwrap(),
            None
        );
        let e = parse("lmtp_listen = \"localhost\"\n").unwrap_err();
        assert!(e.to_string().contains("lmtp_listen"), "{e}");
        let e = parse("imap_listen = \"143\"\n").unwrap_err();
        assert!(e.to_string().contains("imap_listen"), "{e}");
        // The mailbox roles serve Maildirs only.
        let e = parse("home_mailbox = \"mbox\"\n").unwrap_err();
        assert!(e.to_string().contains("home_mailbox"), "{e}");
        parse("home_mailbox = \"mbox\"\nimap_listen = \"\"\nimaps_listen = \"\"\nlmtp_listen = \"\"\n")
            .unwrap();
    }

    #[test]
    fn networks() {
        let n = Network::parse("127.0.0.0/8").unwrap();
        assert!(n.contains("127.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!n.contains("10.0.0.1".parse().unwrap()));
        let n = Network::parse("[::1]/128").unwrap();
        assert!(n.contains("::1".parse().unwrap()));
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Network::parse("1.2.3.4/33").is_none());
    }
}
