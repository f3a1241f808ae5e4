//! A private Dovecot instance for tests: its own `dovecot.conf`, base and state directories,
//! log and users under a temporary directory, listening (when asked) on 127.0.0.1 on free
//! ports; `/etc/dovecot` is never read or changed.
//!
//! ```no_run
//! # fn main() {
//! use mailroom_testkit::dovecot::Dovecot;
//! let Some(dovecot) = Dovecot::builder()
//!     .user("alice", "secret")
//!     .with_imap()
//!     .with_lmtp()
//!     .start()
//! else {
//!     return; // Dovecot is not installed: skipped (a failure on CI)
//! };
//! dovecot.doveadm_ok(&["save", "-u", "alice", "-m", "INBOX"], Some(b"Subject: hi\r\n\r\nhi\r\n"));
//! let out = dovecot.doveadm_ok(&["fetch", "-u", "alice", "uid flags", "mailbox", "INBOX", "all"], None);
//! assert!(out.contains("uid: 1"));
//! let imap = dovecot.imap_addr().unwrap(); // 127.0.0.1:PORT, LOGIN alice secret
//! let lmtp = dovecot.lmtp_addr().unwrap(); // RCPT TO:<alice>
//! # let _ = (imap, lmtp);
//! # }
//! ```
//!
//! What it takes to run one (measured on Debian 12, Dovecot 2.3.19):
//!
//! - The daemon must run even for `doveadm` commands: `doveadm -u USER` looks the user up
//!   through the auth service's `auth-userdb` socket in `base_dir`. [`DovecotBuilder::start`]
//!   always starts it (`dovecot -c CONF`, ~0.2 s); the IMAP and LMTP listeners are opened only
//!   when asked for ([`DovecotBuilder::with_imap`], [`DovecotBuilder::with_lmtp`]), every other
//!   `inet_listener` gets port 0 (disabled).
//! - Settings: `instance_name`, `base_dir`, `state_dir`, `log_path`, `listen = 127.0.0.1`,
//!   `ssl = no`, `disable_plaintext_auth = no`, `first_valid_uid = 1`, passdb and userdb
//!   `passwd-file` (`user:{PLAIN}pass:UID:GID::HOME::`).
//! - Mail is accessed as the users' UID, never root (a passwd-file UID 0 is "invalid"). Tests
//!   run as root use UID/GID 65534 (`nobody`): files a test writes itself into a user's mail
//!   directory must be handed over with [`Dovecot::chown_to_mail_user`] before Dovecot reads
//!   them. Not as root, the current UID is used and nothing needs handing over.
//! - LMTP takes bare user names (`RCPT TO:<alice>`; `auth_username_format = %Ln` for
//!   `protocol lmtp`), IMAP `LOGIN alice secret` (plain-text auth is allowed without TLS).
//!   `crates/maildir/tests/interop.rs` exercises both listeners.
//! - Dovecot keeps indexes beside the Maildir: remove messages with `doveadm expunge`, not by
//!   deleting files, or its index goes stale (`doveadm force-resync` repairs it).
//! - The daemon keeps the stdout and stderr it inherited: they go to a file here, so a test
//!   that captures output does not hang.
//! - Stopped with `doveadm -c CONF stop` on drop; if it is still running after 5 s, its master
//!   process (PID in `base_dir/master.pid`) is killed.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Builds a private Dovecot; see the module documentation.
#[derive(Debug, Clone)]
pub struct DovecotBuilder {
    users: Vec<(String, String)>,
    mail_location: String,
    imap: bool,
    lmtp: bool,
    settings: Vec<String>,
}

/// A running private Dovecot, stopped when dropped.
#[derive(Debug)]
pub struct Dovecot {
    dir: tempfile::TempDir,
    conf: PathBuf,
    doveadm: PathBuf,
    uid: u32,
    gid: u32,
    imap_port: Option<u16>,
    lmtp_port: Option<u16>,
}

impl Dovecot {
    /// A builder with no user, `mail_location = maildir:~/Maildir`, and no listener.
    pub fn builder() -> DovecotBuilder {
        DovecotBuilder {
            users: Vec::new(),
            mail_location: "maildir:~/Maildir".to_owned(),
            imap: false,
            lmtp: false,
            settings: Vec::new(),
        }
    }
}

fn current_ids() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file we just created is our effective UID and GID (no libc needed).
    let probe = tempfile::NamedTempFile::new().expect("create a probe file");
    let meta = probe.as_file().metadata().expect("stat the probe file");
    (meta.uid(), meta.gid())
}

impl DovecotBuilder {
    /// Adds a user with a plain-text password; its home is `DIR/home/NAME`.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Sets `mail_location` (default `maildir:~/Maildir`; `~` is the user's home).
    pub fn mail_location(mut self, location: &str) -> Self {
        self.mail_location = location.to_owned();
        self
    }

    /// Opens an IMAP listener on 127.0.0.1 on a free port (see [`Dovecot::imap_addr`]).
    pub fn with_imap(mut self) -> Self {
        self.imap = true;
        self
    }

    /// Opens an LMTP listener on 127.0.0.1 on a free port (see [`Dovecot::lmtp_addr`]).
    pub fn with_lmtp(mut self) -> Self {
        self.lmtp = true;
        self
    }

    /// Appends a raw line (or block) to `dovecot.conf`, for example `mail_debug = yes` or
    /// `protocol lmtp {\n  mail_plugins = quota\n}`. `{dir}` is replaced by the instance
    /// directory.
    pub fn setting(mut self, line: &str) -> Self {
        self.settings.push(line.to_owned());
        self
    }

    /// Writes the configuration and starts the daemon; `None` (after printing why) when
    /// Dovecot is not installed.
    ///
    /// # Panics
    ///
    /// When Dovecot is missing and peers are required, or it fails to start (the message holds
    /// its log).
    pub fn start(self) -> Option<Dovecot> {
        let programs = crate::peers(&["dovecot", "doveadm"])?;
        let (dovecot, doveadm) = (programs[0].clone(), programs[1].clone());
        let dir = tempfile::Builder::new()
            .prefix("mailroom-dovecot-")
            .tempdir()
            .expect("create the instance directory");
        let root = dir.path().to_path_buf();
        let (mut uid, mut gid) = current_ids();
        if uid == 0 {
            (uid, gid) = (65534, 65534);
        }
        set_mode(&root, 0o755);
        for sub in ["base", "state", "home"] {
            std::fs::create_dir(root.join(sub)).expect("create an instance subdirectory");
        }
        let mut passwd = String::new();
        for (name, password) in &self.users {
            let home = root.join("home").join(name);
            std::fs::create_dir(&home).expect("create a home directory");
            chown_tree(&home, uid, gid);
            writeln!(
                passwd,
                "{name}:{{PLAIN}}{password}:{uid}:{gid}::{}::",
                home.display()
            )
            .expect("format passwd");
        }
        std::fs::write(root.join("passwd"), passwd).expect("write the passwd file");

        let imap_port = self.imap.then(crate::free_port);
        let lmtp_port = self.lmtp.then(crate::free_port);
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "mailroom".to_owned());
        let mut conf = format!(
            "instance_name = {name}\n\
             base_dir = {r}/base\n\
             state_dir = {r}/state\n\
             log_path = {r}/dovecot.log\n\
             info_log_path = {r}/dovecot.log\n\
             listen = 127.0.0.1\n\
             ssl = no\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             first_valid_uid = 1\n\
             mail_location = {loc}\n\
             protocols = imap lmtp\n\
             passdb {{\n  driver = passwd-file\n  args = {r}/passwd\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = {r}/passwd\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service pop3-login {{\n  inet_listener pop3 {{\n    port = 0\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
             service submission-login {{\n  inet_listener submission {{\n    port = 0\n  }}\n}}\n",
            r = root.display(),
            loc = self.mail_location,
            imap = imap_port.unwrap_or(0),
        );
        match lmtp_port {
            Some(port) => writeln!(
                conf,
                "service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n}}"
            ),
            None => writeln!(conf, "service lmtp {{\n}}"),
        }
        .expect("format dovecot.conf");
        // LMTP recipients are bare user names in the passwd file.
        conf.push_str("protocol lmtp {\n  auth_username_format = %Ln\n}\n");
        for s in &self.settings {
            conf.push_str(&s.replace("{dir}", &root.display().to_string()));
            conf.push('\n');
        }
        let conf_path = root.join("dovecot.conf");
        std::fs::write(&conf_path, conf).expect("write dovecot.conf");

        let out = std::fs::File::create(root.join("daemon.out")).expect("create daemon.out");
        let status = Command::new(&dovecot)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup daemon.out"))
            .stderr(out)
            .status()
            .expect("run dovecot");
        let instance = Dovecot {
            dir,
            conf: conf_path,
            doveadm,
            uid,
            gid,
            imap_port,
            lmtp_port,
        };
        assert!(
            status.success(),
            "dovecot failed to start ({status}):\n{}\n{}",
            std::fs::read_to_string(root.join("daemon.out")).unwrap_or_default(),
            instance.log()
        );
        // Ready when the auth service's userdb socket exists (doveadm needs it) and the
        // listeners accept connections.
        let start = Instant::now();
        while !root.join("base/auth-userdb").exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "dovecot did not create its auth-userdb socket:\n{}",
                instance.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        for addr in [instance.imap_addr(), instance.lmtp_addr()]
            .into_iter()
            .flatten()
        {
            crate::wait_for_port(addr, Duration::from_secs(10));
        }
        Some(instance)
    }
}

impl Dovecot {
    /// The instance directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The path of `dovecot.conf`.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// The home directory of `user` (`DIR/home/USER`); with the default `mail_location` its
    /// Maildir is `home/USER/Maildir`.
    pub fn home(&self, user: &str) -> PathBuf {
        self.dir.path().join("home").join(user)
    }

    /// The UID and GID Dovecot accesses mail as.
    pub fn mail_ids(&self) -> (u32, u32) {
        (self.uid, self.gid)
    }

    /// Hands `path` and everything below it to the mail user, so Dovecot can read and rename
    /// files a test (running as root) wrote there. Does nothing when not running as root.
    pub fn chown_to_mail_user(&self, path: &Path) {
        chown_tree(path, self.uid, self.gid);
    }

    /// The IMAP listener, if opened.
    pub fn imap_addr(&self) -> Option<SocketAddr> {
        self.imap_port
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
    }

    /// The LMTP listener, if opened.
    pub fn lmtp_addr(&self) -> Option<SocketAddr> {
        self.lmtp_port
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Runs `doveadm -c CONF ARGS...` with `stdin` as its input.
    pub fn doveadm(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        use std::io::Write;
        let mut child = Command::new(&self.doveadm)
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run doveadm");
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input).expect("write to doveadm");
        }
        child.wait_with_output().expect("wait for doveadm")
    }

    /// Like [`Dovecot::doveadm`], returning its standard output.
    ///
    /// # Panics
    ///
    /// When doveadm fails; the message holds its arguments, output and the log.
    pub fn doveadm_ok(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let out = self.doveadm(args, stdin);
        assert!(
            out.status.success(),
            "doveadm {args:?} failed ({}):\n{}{}\nlog:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn master_pid(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("base/master.pid"))
            .ok()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let pid = self.master_pid();
        let _ = self.doveadm(&["stop"], None);
        let Some(pid) = pid else { return };
        let start = Instant::now();
        while Path::new("/proc").join(&pid).exists() {
            if start.elapsed() > Duration::from_secs(5) {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .expect("chmod the instance directory");
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    if current_ids().0 == 0 {
        chown_below(path, uid, gid);
    }
}

fn chown_below(path: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
    if path.is_dir()
        && !path.is_symlink()
        && let Ok(entries) = std::fs::read_dir(path)
    {
        for e in entries.flatten() {
            chown_below(&e.path(), uid, gid);
        }
    }
}
