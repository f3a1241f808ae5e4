//! A private Postfix instance for tests: its own configuration, queue and log under a temporary
//! directory, listening on 127.0.0.1 on a free port; `/etc/postfix` is read (for `master.cf`)
//! but never changed.
//!
//! ```no_run
//! # fn main() {
//! use mailroom_testkit::postfix::Postfix;
//! let Some(postfix) = Postfix::builder()
//!     .main_cf("mydestination", "localhost")
//!     .main_cf("alias_maps", "texthash:{conf}/aliases")
//!     .table("aliases", "box {dir}/box/mbox\n")
//!     .start()
//! else {
//!     return; // Postfix is not installed: skipped (a failure on CI)
//! };
//! postfix.send("a@example.org", &["box@localhost"], b"Subject: hi\r\n\r\nhello\r\n").unwrap();
//! postfix.wait_for_empty_queue(std::time::Duration::from_secs(20));
//! # }
//! ```
//!
//! What it takes to run one (measured on Debian 12, Postfix 3.7):
//!
//! - root: `postfix start` refuses otherwise. [`PostfixBuilder::start`] skips (or fails when
//!   peers are required) when not root.
//! - `master.cf` copied from `/etc/postfix/master.cf` with every chroot column set to `n` and
//!   the `smtp inet` service replaced by `127.0.0.1:PORT inet n - n - - smtpd`.
//! - `main.cf` with `queue_directory`, `data_directory`, `maillog_file` under the instance
//!   directory, `maillog_file_prefixes` naming that directory (without it Postfix refuses a log
//!   file outside `/var`), `inet_interfaces = 127.0.0.1`, `inet_protocols = ipv4`,
//!   `smtp_dns_support_level = disabled`, `smtpd_peername_lookup = no`, and its mtime set ten
//!   seconds into the past (start takes ~0.6 s instead of ~2.6 s).
//! - `data_directory` owned by the `postfix` user (`master` creates its lock file there).
//! - The instance directory mode 0755, so that delivery agents running as `nobody` (local(8)
//!   delivering to a file named in an alias runs as `default_privs`) can reach below it.
//! - `texthash:` tables use the `postmap` form `key value` (not the `key: value` of
//!   aliases(5)), and need no build step.
//!
//! Values given to [`PostfixBuilder::main_cf`] and [`PostfixBuilder::table`] may contain
//! `{dir}` (the instance directory) and `{conf}` (its configuration directory) and `{port}`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Builds a private Postfix; see the module documentation.
#[derive(Debug, Clone)]
pub struct PostfixBuilder {
    main_cf: BTreeMap<String, String>,
    tables: Vec<(String, String)>,
    master_cf: Vec<String>,
}

/// A running private Postfix, stopped (`postfix -c DIR/conf stop`) when dropped.
#[derive(Debug)]
pub struct Postfix {
    dir: tempfile::TempDir,
    port: u16,
    postfix: PathBuf,
    running: bool,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

impl Postfix {
    /// A builder with the settings every private instance needs.
    pub fn builder() -> PostfixBuilder {
        let mut main_cf = BTreeMap::new();
        for (k, v) in [
            ("compatibility_level", "3.6"),
            ("queue_directory", "{dir}/queue"),
            ("data_directory", "{dir}/data"),
            ("maillog_file", "{dir}/postfix.log"),
            ("maillog_file_prefixes", "{dir}"),
            ("inet_interfaces", "127.0.0.1"),
            ("inet_protocols", "ipv4"),
            ("smtp_dns_support_level", "disabled"),
            ("smtpd_peername_lookup", "no"),
            ("myhostname", "localhost"),
            ("mydomain", "localdomain"),
            ("mydestination", ""),
            ("mynetworks", "127.0.0.0/8"),
            ("alias_maps", ""),
            ("alias_database", ""),
            ("biff", "no"),
            ("smtpd_banner", "$myhostname ESMTP"),
        ] {
            main_cf.insert(k.to_string(), v.to_string());
        }
        PostfixBuilder {
            main_cf,
            tables: Vec::new(),
            master_cf: Vec::new(),
        }
    }

    /// The instance directory (configuration in `conf/`, queue in `queue/`, log in
    /// `postfix.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration directory (`-c` argument).
    pub fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    /// The SMTP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The SMTP address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The log so far (`maillog_file`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    /// Rewrites a table (same substitutions as [`PostfixBuilder::table`]); texthash tables are
    /// read when a process starts, so follow with [`Postfix::reload`].
    pub fn write_table(&self, name: &str, content: &str) {
        let content = substitute(content, self.dir.path(), self.port);
        std::fs::write(self.conf_dir().join(name), content).expect("write a Postfix table");
    }

    /// `postfix -c DIR/conf reload`.
    pub fn reload(&self) {
        let status = self
            .command(&["reload"])
            .status()
            .expect("run postfix reload");
        assert!(status.success(), "postfix reload failed:\n{}", self.log());
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.postfix);
        c.arg("-c")
            .arg(self.conf_dir())
            .args(args)
            .stdin(Stdio::null())
            // The daemon inherits these: never let it hold a test's pipes open.
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// Messages still in the queue directories where mail waits for delivery: `(incoming +
    /// active + maildrop, deferred + hold)`.
    pub fn queue_counts(&self) -> (usize, usize) {
        let count = |names: &[&str]| {
            names
                .iter()
                .map(|n| count_files(&self.dir.path().join("queue").join(n)))
                .sum()
        };
        (
            count(&["incoming", "active", "maildrop"]),
            count(&["deferred", "hold"]),
        )
    }

    /// Waits until nothing is waiting for delivery (incoming, active and maildrop empty).
    ///
    /// # Panics
    ///
    /// When mail is still queued after `timeout`, with the log, or when mail was deferred.
    pub fn wait_for_empty_queue(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            let (waiting, deferred) = self.queue_counts();
            assert_eq!(deferred, 0, "Postfix deferred mail; log:\n{}", self.log());
            if waiting == 0 {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "Postfix queue not empty after {timeout:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends one message over SMTP (EHLO, MAIL, RCPT..., DATA with dot-stuffing, QUIT).
    /// `message` may use LF or CRLF line ends; it is sent with CRLF.
    ///
    /// # Errors
    ///
    /// The first reply that is not a success, or an I/O error, as text.
    pub fn send(&self, from: &str, to: &[&str], message: &[u8]) -> Result<(), String> {
        send_smtp(self.addr(), from, to, message)
    }

    /// Stops the instance (also done on drop) and waits for its master process to exit.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let pid = std::fs::read_to_string(self.dir.path().join("queue/pid/master.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let _ = self.command(&["stop"]).status();
        if let Some(pid) = pid {
            let start = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists()
                && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}

fn count_files(dir: &Path) -> usize {
    // Queue files live in hashed subdirectories in some queues: count regular files below.
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

fn substitute(value: &str, dir: &Path, port: u16) -> String {
    value
        .replace("{conf}", &dir.join("conf").display().to_string())
        .replace("{dir}", &dir.display().to_string())
        .replace("{port}", &port.to_string())
}

impl PostfixBuilder {
    /// Sets a `main.cf` parameter (replacing the default if any).
    pub fn main_cf(mut self, key: &str, value: &str) -> Self {
        self.main_cf.insert(key.to_string(), value.to_string());
        self
    }

    /// Writes `conf/NAME` with `content`; refer to it as `texthash:{conf}/NAME`.
    pub fn table(mut self, name: &str, content: &str) -> Self {
        self.tables.push((name.to_string(), content.to_string()));
        self
    }

    /// Adds a line to `master.cf` (for example an LMTP or a second smtpd service).
    pub fn master_cf(mut self, line: &str) -> Self {
        self.master_cf.push(line.to_string());
        self
    }

    /// Writes the configuration and starts Postfix, returning once it accepts SMTP
    /// connections.
    ///
    /// Returns `None` (after printing why) when Postfix is not installed or the test does not
    /// run as root; with `MAILROOM_REQUIRE_PEERS=1` that is a panic instead.
    ///
    /// # Panics
    ///
    /// When Postfix does not start, with its log.
    pub fn start(self) -> Option<Postfix> {
        let postfix = crate::peer("postfix")?;
        if !is_root() {
            if crate::peers_required() {
                panic!("a private Postfix needs root and MAILROOM_REQUIRE_PEERS=1");
            }
            eprintln!("skipped: a private Postfix needs root");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("mailroom-postfix-")
            .tempdir()
            .expect("create the Postfix directory");
        let root = dir.path().to_path_buf();
        set_mode(&root, 0o755);
        let conf = root.join("conf");
        for sub in ["conf", "queue", "data"] {
            std::fs::create_dir_all(root.join(sub)).expect("create a Postfix directory");
        }
        let status = Command::new("chown")
            .arg("postfix")
            .arg(root.join("data"))
            .status()
            .expect("run chown");
        assert!(
            status.success(),
            "chown postfix {}/data failed",
            root.display()
        );
        let port = crate::free_port();

        let mut master = String::new();
        let default_master =
            std::fs::read_to_string("/etc/postfix/master.cf").expect("read /etc/postfix/master.cf");
        for line in default_master.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let is_service = !line.starts_with('#')
                && !line.starts_with(char::is_whitespace)
                && fields.len() >= 8;
            if is_service && fields[0] == "smtp" && fields[1] == "inet" {
                master.push_str(&format!("127.0.0.1:{port} inet n - n - - smtpd\n"));
            } else if is_service {
                let mut f = fields.clone();
                f[4] = "n";
                master.push_str(&f.join(" "));
                master.push('\n');
            } else {
                master.push_str(line);
                master.push('\n');
            }
        }
        for line in &self.master_cf {
            master.push_str(&substitute(line, &root, port));
            master.push('\n');
        }
        std::fs::write(conf.join("master.cf"), master).expect("write master.cf");

        for (name, content) in &self.tables {
            std::fs::write(conf.join(name), substitute(content, &root, port))
                .expect("write a Postfix table");
        }
        let mut main = String::new();
        for (k, v) in &self.main_cf {
            main.push_str(&format!("{k} = {}\n", substitute(v, &root, port)));
        }
        let main_cf = conf.join("main.cf");
        std::fs::write(&main_cf, main).expect("write main.cf");
        // A main.cf younger than a second makes `postfix start` wait ~2 s more.
        let past = std::time::SystemTime::now() - Duration::from_secs(10);
        std::fs::File::options()
            .write(true)
            .open(&main_cf)
            .and_then(|f| f.set_modified(past))
            .expect("backdate main.cf");

        let mut instance = Postfix {
            dir,
            port,
            postfix,
            running: true,
        };
        let status = instance
            .command(&["start"])
            .status()
            .expect("run postfix start");
        assert!(
            status.success(),
            "postfix start failed; log:\n{}",
            instance.log()
        );
        let start = Instant::now();
        while TcpStream::connect_timeout(&instance.addr(), Duration::from_millis(200)).is_err() {
            if start.elapsed() > Duration::from_secs(15) {
                let log = instance.log();
                instance.stop();
                panic!("Postfix does not accept connections; log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Some(instance)
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Sends one message over SMTP to `addr`; see [`Postfix::send`].
///
/// # Errors
///
/// The first unexpected reply or I/O error, as text.
pub fn send_smtp(addr: SocketAddr, from: &str, to: &[&str], message: &[u8]) -> Result<(), String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    let expect = |reader: &mut BufReader<TcpStream>, code: char| -> Result<(), String> {
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).map_err(|e| e.to_string())?;
            if !line.starts_with(code) {
                return Err(format!("unexpected reply: {}", line.trim_end()));
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    };
    let send = |w: &mut TcpStream, s: &[u8]| w.write_all(s).map_err(|e| e.to_string());
    expect(&mut reader, '2')?;
    send(&mut writer, b"EHLO localhost\r\n")?;
    expect(&mut reader, '2')?;
    send(&mut writer, format!("MAIL FROM:<{from}>\r\n").as_bytes())?;
    expect(&mut reader, '2')?;
    for rcpt in to {
        send(&mut writer, format!("RCPT TO:<{rcpt}>\r\n").as_bytes())?;
        expect(&mut reader, '2')?;
    }
    send(&mut writer, b"DATA\r\n")?;
    expect(&mut reader, '3')?;
    let mut data = Vec::with_capacity(message.len() + 64);
    for line in message.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if body.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(body);
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    send(&mut writer, &data)?;
    expect(&mut reader, '2')?;
    send(&mut writer, b"QUIT\r\n")?;
    let _ = expect(&mut reader, '2');
    Ok(())
}
