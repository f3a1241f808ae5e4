//! End-to-end tests of the reference server (`examples/server.rs`) with real peers on
//! loopback: Postfix's `smtp-sink` as the next hop, Python's smtplib as the client.
//!
//! - acceptance 5: open-relay probes from a client outside `mynetworks` are refused; after
//!   STARTTLS and AUTH on submission the same mail is relayed;
//! - acceptance 3: relay through `relayhost` and through a `transport_maps` entry; a 4xx next
//!   hop defers and the message is retried; a 5xx next hop bounces with a DSN into the local
//!   sender's Maildir.

// Test code: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, example_binary, start_server};

/// The server started with `config` (TOML), its banner read.
struct Server {
    _child: Running,
    smtp: String,
    submission: String,
    submissions: String,
    password: String,
    log: PathBuf,
    data: PathBuf,
}

impl Server {
    fn start(dir: &Path, config: &str) -> Server {
        let data = dir.join("data");
        let conf = dir.join("mailroom.toml");
        let text = format!(
            "data_directory = {:?}\nsmtpd_listen = \"127.0.0.1:0\"\nsubmission_listen = \"127.0.0.1:0\"\nsubmissions_listen = \"127.0.0.1:0\"\n\
             imap_listen = \"\"\nimaps_listen = \"\"\nlmtp_listen = \"\"\n{config}",
            data.display().to_string()
        );
        std::fs::write(&conf, text).unwrap();
        let log = dir.join("server.log");
        let mut command = Command::new(example_binary());
        command
            .arg("--config")
            .arg(&conf)
            .stderr(std::fs::File::create(&log).unwrap());
        let (child, banner) = start_server(command);
        let find = |prefix: &str| {
            banner
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .map(|rest| rest.split_whitespace().next().unwrap().to_string())
                .unwrap_or_else(|| panic!("{prefix} in {banner:?}"))
        };
        Server {
            smtp: find("mailroom: SMTP on "),
            submission: find("mailroom: submission on "),
            submissions: find("mailroom: submissions on "),
            password: banner
                .iter()
                .find_map(|l| l.split_once(" with password ").map(|(_, p)| p.to_string()))
                .unwrap_or_default(),
            _child: child,
            log,
            data,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `pred` holds for the log.
    fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let log = self.log();
            if pred(&log) {
                return log;
            }
            assert!(Instant::now() < deadline, "{what}; log:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Postfix's smtp-sink on a free port, dumping each message into `dir`; `extra` adds options
/// (`-r rcpt` for 4xx, `-f rcpt` for 5xx).
fn smtp_sink(program: &Path, dir: &Path, extra: &[&str]) -> (Running, u16) {
    std::fs::create_dir_all(dir).unwrap();
    let port = mailroom_testkit::free_port();
    let mut cmd = Command::new(program);
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if uid.trim_ascii() == b"0" {
        cmd.args(["-u", "root"]);
    }
    let child = cmd
        .args(extra)
        .arg("-d")
        .arg(format!("{}/%H%M%S.", dir.display()))
        .arg(format!("127.0.0.1:{port}"))
        .arg("10")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    mailroom_testkit::wait_for_port(
        format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(10),
    );
    (Running(child), port)
}

/// Runs a Python smtplib session: `steps` is Python code using `s` (an `smtplib.SMTP`);
/// prints what the code prints.
fn python(program: &Path, addr: &str, steps: &str) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = format!(
        "import smtplib, ssl\ns = smtplib.SMTP({host:?}, {port})\ns.ehlo('client.example')\n\
         ctx = ssl.create_default_context()\nctx.check_hostname = False\nctx.verify_mode = ssl.CERT_NONE\n\
         def rcpt(a):\n    s.rset(); s.mail('probe@client.example')\n    print(s.rcpt(a)[0])\n\
         {steps}\ns.quit()\n"
    );
    let out = Command::new(program)
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

fn wait_files(dir: &Path, n: usize, secs: u64) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let f = files_in(dir);
        if f.len() >= n || Instant::now() > deadline {
            return f;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn open_relay_probes_refused_and_submission_relays() {
    let Some(peers) = mailroom_testkit::peers(&["smtp-sink", "python3"]) else {
        return;
    };
    let (sink_prog, py) = (&peers[0], &peers[1]);
    let dir = mailroom_testkit::temp_dir();
    let (_sink, sink_port) = smtp_sink(sink_prog, &dir.path().join("sink"), &[]);
    let (_sink2, sink2_port) = smtp_sink(sink_prog, &dir.path().join("sink2"), &[]);
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data").join("transport"),
        format!("other.example smtp:[127.0.0.1]:{sink2_port}\n"),
    )
    .unwrap();
    // Loopback is outside mynetworks here: the client is "remote".
    let server = Server::start(
        dir.path(),
        &format!(
            "mynetworks = []\nrelayhost = \"[127.0.0.1]:{sink_port}\"\ntransport_maps = [\"hash:transport\"]\n"
        ),
    );

    // Probes on the port-25 role, unauthenticated: every one refused with 5xx.
    let probes = [
        "user@remote.example",
        "user%remote.example@localhost",
        "user!remote.example@localhost",
        "@localhost:user@remote.example",
        "\"user@remote.example\"@localhost",
        "user@other.example",
    ];
    let steps: String = probes
        .iter()
        .map(|p| format!("rcpt('<{}>')\n", p.replace('\'', "\\'")))
        .collect();
    let codes = python(py, &server.smtp, &steps);
    let codes: Vec<&str> = codes.lines().collect();
    assert_eq!(codes.len(), probes.len(), "{codes:?}");
    for (probe, code) in probes.iter().zip(&codes) {
        assert!(code.starts_with('5'), "{probe} answered {code}");
    }
    // The relay refusal says so in Postfix's words.
    let out = Command::new(py)
        .arg("-c")
        .arg(format!(
            "import smtplib\ns = smtplib.SMTP('127.0.0.1', {})\ns.ehlo('c')\ns.mail('a@b.example')\nprint(s.rcpt('<user@remote.example>'))",
            server.smtp.rsplit_once(':').unwrap().1
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("554") && text.contains("5.7.1 <user@remote.example>: Relay access denied"),
        "{text}"
    );

    // Submission: MAIL before AUTH is refused; AUTH before STARTTLS is not offered.
    let steps = format!(
        "print(s.has_extn('auth'))\ns.starttls(context=ctx)\ns.ehlo('client.example')\nprint(s.has_extn('auth'))\n\
         s.login('demo@localhost', {:?})\n\
         s.sendmail('demo@localhost', ['user@remote.example'], 'Subject: relayed\\r\\n\\r\\nvia relayhost\\r\\n')\n\
         s.sendmail('demo@localhost', ['x@other.example'], 'Subject: mapped\\r\\n\\r\\nvia transport map\\r\\n')\n",
        server.password
    );
    let out = python(py, &server.submission, &steps);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["False", "True"], "{out}");
    let out = python(
        py,
        &server.submission,
        "print(s.docmd('MAIL FROM:<demo@localhost>')[0])\n",
    );
    assert_eq!(out.trim(), "530");

    // Submissions: implicit TLS from the first octet (Python's SMTP_SSL), then AUTH and relay.
    let (host, port) = server.submissions.rsplit_once(':').unwrap();
    let script = format!(
        "import smtplib, ssl\nctx = ssl.create_default_context()\nctx.check_hostname = False\nctx.verify_mode = ssl.CERT_NONE\n\
         s = smtplib.SMTP_SSL({host:?}, {port}, context=ctx)\ns.ehlo('client.example')\nprint(s.has_extn('starttls'))\n\
         s.login('demo@localhost', {:?})\n\
         s.sendmail('demo@localhost', ['user@remote.example'], 'Subject: relayed\\r\\n\\r\\nvia submissions\\r\\n')\ns.quit()\n",
        server.password
    );
    let out = Command::new(py).arg("-c").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "submissions: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "False");

    let relayed = wait_files(&dir.path().join("sink"), 2, 20);
    assert_eq!(relayed.len(), 2, "{}", server.log());
    let texts: String = relayed
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(texts.contains("via relayhost"), "{texts}");
    assert!(texts.contains("via submissions"), "{texts}");
    let mapped = wait_files(&dir.path().join("sink2"), 1, 20);
    assert_eq!(mapped.len(), 1, "{}", server.log());
    assert!(
        std::fs::read_to_string(&mapped[0])
            .unwrap()
            .contains("via transport map")
    );
    let log = server.wait_log(
        "both relayed",
        |l| l.matches("status=sent").count() >= 3,
        10,
    );
    assert!(
        log.contains(&format!("relay=127.0.0.1[127.0.0.1]:{sink_port}")),
        "{log}"
    );
    assert!(log.contains("sasl_username=demo@localhost"), "{log}");
}

#[test]
fn deferred_mail_is_retried_and_bounces_reach_the_local_sender() {
    let Some(peers) = mailroom_testkit::peers(&["smtp-sink", "python3"]) else {
        return;
    };
    let (sink_prog, py) = (&peers[0], &peers[1]);
    let dir = mailroom_testkit::temp_dir();
    let (_soft, soft_port) = smtp_sink(sink_prog, &dir.path().join("soft"), &["-r", "rcpt"]);
    let (_hard, hard_port) = smtp_sink(sink_prog, &dir.path().join("hard"), &["-f", "rcpt"]);
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data").join("transport"),
        format!(
            "soft.example smtp:[127.0.0.1]:{soft_port}\nhard.example smtp:[127.0.0.1]:{hard_port}\n"
        ),
    )
    .unwrap();
    // Loopback is in the default mynetworks: the client may relay without AUTH.
    let server = Server::start(
        dir.path(),
        "transport_maps = [\"hash:transport\"]\nminimal_backoff_time = 1\nmaximal_backoff_time = 2\n",
    );
    python(
        py,
        &server.smtp,
        "s.sendmail('demo@localhost', ['a@soft.example'], 'Subject: soft\\r\\n\\r\\nx\\r\\n')\n\
         s.sendmail('demo@localhost', ['b@hard.example'], 'Subject: hard\\r\\n\\r\\ny\\r\\n')\n",
    );
    // 4xx: deferred, then tried again after the back-off.
    let log = server.wait_log(
        "the soft-failing message deferred twice",
        |l| {
            l.lines()
                .filter(|x| x.contains("to=<a@soft.example>") && x.contains("status=deferred"))
                .count()
                >= 2
        },
        30,
    );
    assert!(
        !log.lines()
            .any(|x| x.contains("to=<a@soft.example>") && x.contains("status=sent")),
        "{log}"
    );
    // 5xx: bounced, and the DSN is delivered into the sender's Maildir.
    server.wait_log(
        "the hard-failing message bounced",
        |l| l.contains("to=<b@hard.example>") && l.contains("status=bounced"),
        20,
    );
    let new = server.data.join("home/demo/Maildir/new");
    let deadline = Instant::now() + Duration::from_secs(20);
    let dsn = loop {
        let found = files_in(&new)
            .into_iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .find(|t| t.contains("b@hard.example") && t.contains("Return-Path: <>"));
        if let Some(t) = found {
            break t;
        }
        assert!(Instant::now() < deadline, "no DSN; log:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(dsn.contains("multipart/report"), "{dsn}");
    assert!(dsn.contains("Action: failed"), "{dsn}");
}

#[test]
fn lmtp_transport_delivers_to_dovecot() {
    use mailroom_testkit::dovecot::Dovecot;
    let Some(py) = mailroom_testkit::peer("python3") else {
        return;
    };
    let Some(dovecot) = Dovecot::builder()
        .user("alice", "secret")
        .with_lmtp()
        .start()
    else {
        return;
    };
    let lmtp = dovecot.lmtp_addr().unwrap();
    let dir = mailroom_testkit::temp_dir();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data").join("transport"),
        format!("dove.example lmtp:inet:{lmtp}\n"),
    )
    .unwrap();
    let server = Server::start(dir.path(), "transport_maps = [\"hash:transport\"]\n");
    python(
        &py,
        &server.smtp,
        "s.sendmail('demo@localhost', ['alice@dove.example', 'nobody@dove.example'], 'Subject: over lmtp\\r\\n\\r\\nhello dovecot\\r\\n')\n",
    );
    let log = server.wait_log(
        "both recipients done",
        |l| l.contains("to=<alice@dove.example>") && l.contains("to=<nobody@dove.example>"),
        20,
    );
    assert!(
        log.lines().any(|l| l.contains("to=<alice@dove.example>")
            && l.contains(&format!("relay=inet:{lmtp}"))
            && l.contains("status=sent")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("to=<nobody@dove.example>") && l.contains("status=bounced")),
        "{log}"
    );
    let out = dovecot.doveadm_ok(
        &[
            "fetch", "-u", "alice", "hdr body", "mailbox", "INBOX", "all",
        ],
        None,
    );
    assert!(
        out.contains("Subject: over lmtp") && out.contains("hello dovecot"),
        "{out}"
    );
}

/// The smtp agent uses STARTTLS when the next hop offers it (opportunistic, Postfix's `may`):
/// one server relays through another (whose port-25 role offers STARTTLS with its
/// self-signed certificate); the receiving side's trace header says ESMTPS.
#[test]
fn smtp_agent_uses_starttls_when_offered() {
    let Some(py) = mailroom_testkit::peer("python3") else {
        return;
    };
    let far_dir = mailroom_testkit::temp_dir();
    let far = Server::start(far_dir.path(), "myhostname = \"b.example\"\n");
    let near_dir = mailroom_testkit::temp_dir();
    let near = Server::start(
        near_dir.path(),
        &format!(
            "relayhost = \"[{}]:{}\"\n",
            "127.0.0.1",
            far.smtp.rsplit_once(':').unwrap().1
        ),
    );
    python(
        &py,
        &near.smtp,
        "s.sendmail('demo@localhost', ['demo@b.example'], 'Subject: tls hop\\r\\n\\r\\nover starttls\\r\\n')\n",
    );
    near.wait_log(
        "relayed",
        |l| l.contains("to=<demo@b.example>") && l.contains("status=sent"),
        20,
    );
    let new = far.data.join("home/demo/Maildir/new");
    let files = wait_files(&new, 1, 20);
    assert_eq!(files.len(), 1, "{}", far.log());
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        text.contains("by b.example (mailroom) with ESMTPS"),
        "{text}"
    );
    assert!(text.contains("over starttls"), "{text}");
}

/// pipe(8) transports: the command gets the message on stdin with its arguments expanded; exit
/// 0 delivers, 75 (EX_TEMPFAIL) defers, another status bounces.
#[test]
fn pipe_transport_maps_sysexits() {
    let Some(py) = mailroom_testkit::peer("python3") else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let out_dir = dir.path().join("piped");
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(
        dir.path().join("data").join("transport"),
        "pipe.example save:\nbusy.example busy:\nfail.example fail:\n",
    )
    .unwrap();
    let server = Server::start(
        dir.path(),
        &format!(
            "transport_maps = [\"hash:transport\"]\npipe_transports = {{ save = [\"/bin/sh\", \"-c\", \"cat > {}/$0-$1.out\", \"${{user}}\", \"${{sender}}\"], busy = [\"/bin/sh\", \"-c\", \"cat >/dev/null; exit 75\"], fail = [\"/bin/sh\", \"-c\", \"cat >/dev/null; exit 67\"] }}\n",
            out_dir.display()
        ),
    );
    python(
        &py,
        &server.smtp,
        "for r in ['a@pipe.example', 'b@busy.example', 'c@fail.example']:\n    s.sendmail('demo@localhost', [r], 'Subject: piped\\r\\n\\r\\nthrough a pipe\\r\\n')\n",
    );
    let log = server.wait_log(
        "three pipe results",
        |l| {
            l.contains("to=<a@pipe.example>")
                && l.contains("to=<b@busy.example>")
                && l.contains("to=<c@fail.example>")
        },
        20,
    );
    let line = |who: &str| {
        log.lines()
            .find(|l| l.contains(&format!("to=<{who}>")))
            .unwrap()
            .to_string()
    };
    assert!(line("a@pipe.example").contains("status=sent"), "{log}");
    assert!(line("b@busy.example").contains("status=deferred"), "{log}");
    assert!(line("c@fail.example").contains("status=bounced"), "{log}");
    let piped = std::fs::read_to_string(out_dir.join("a-demo@localhost.out")).unwrap();
    assert!(
        piped.starts_with("Delivered-To: a@pipe.example\r\n"),
        "{piped}"
    );
    assert!(piped.ends_with("through a pipe\r\n"), "{piped}");
}

/// The AUTH failure limit (`smtpd_auth_failure_limit = 3`): two wrong passwords get `535`,
/// the third gets `421 4.7.0 <hostname> Error: too many AUTH failures` and the server closes
/// the connection; a new connection may log in.
#[test]
fn third_auth_failure_gets_421_and_the_connection_closes() {
    let Some(py) = mailroom_testkit::peer("python3") else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let server = Server::start(dir.path(), "");
    let (host, port) = server.submission.rsplit_once(':').unwrap();
    let steps = format!(
        "import base64\ns.starttls(context=ctx)\ns.ehlo('client.example')\n\
         bad = base64.b64encode(b'\\0demo@localhost\\0wrong').decode()\n\
         for i in range(3):\n    c, m = s.docmd('AUTH', 'PLAIN ' + bad)\n    print(c, m.decode())\n\
         try:\n    s.docmd('NOOP')\n    print('still open')\nexcept smtplib.SMTPServerDisconnected:\n    print('closed')\n\
         s = smtplib.SMTP({host:?}, {port})\ns.starttls(context=ctx)\ns.login('demo@localhost', {:?})\nprint('login ok')\n",
        server.password
    );
    let out = python(&py, &server.submission, &steps);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[0].starts_with("535 5.7.8"), "{out}");
    assert!(lines[1].starts_with("535 5.7.8"), "{out}");
    assert_eq!(
        lines[2], "421 4.7.0 localhost Error: too many AUTH failures",
        "{out}"
    );
    assert_eq!(lines[3], "closed", "{out}");
    assert_eq!(lines[4], "login ok", "{out}");
}

/// `smtpd_client_connection_count_limit`: a client outside `mynetworks` with the limit (2)
/// open gets `421 4.7.0 localhost Error: too many connections from 127.0.0.1` and is closed;
/// when one closes, the client is served again.
#[test]
fn connection_count_limit_per_client() {
    use std::io::{Read, Write};
    let dir = mailroom_testkit::temp_dir();
    let server = Server::start(
        dir.path(),
        "mynetworks = []\nsmtpd_client_connection_count_limit = 2\n",
    );
    let connect = || {
        let s = std::net::TcpStream::connect(&server.smtp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        (r, line)
    };
    let (mut first, greeting) = connect();
    assert!(greeting.starts_with("220 "), "{greeting}");
    let (_second, greeting) = connect();
    assert!(greeting.starts_with("220 "), "{greeting}");
    let (mut third, refused) = connect();
    assert_eq!(
        refused,
        "421 4.7.0 localhost Error: too many connections from 127.0.0.1\r\n"
    );
    let mut rest = Vec::new();
    assert_eq!(third.read_to_end(&mut rest).unwrap(), 0, "closed after 421");
    first.get_mut().write_all(b"QUIT\r\n").unwrap();
    let mut bye = String::new();
    first.read_line(&mut bye).unwrap();
    assert!(bye.starts_with("221 "), "{bye}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_c, line) = connect();
        if line.starts_with("220 ") {
            break;
        }
        assert!(Instant::now() < deadline, "slot not freed: {line}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP relay on a free loopback port to `target` that counts the connections it accepted.
fn counting_proxy(target: u16) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&count);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let Ok(upstream) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let (mut c, mut u) = (client, upstream);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut u2);
                let _ = u2.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u, &mut c);
                let _ = c.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, count)
}

/// Connection reuse (Postfix's connection cache): a second message to the same next hop
/// within `smtp_connection_cache_time_limit` (2 s) goes over the first one's connection; one
/// sent after the limit makes a new connection.
#[test]
fn smtp_agent_reuses_its_connection() {
    let Some(peers) = mailroom_testkit::peers(&["smtp-sink", "python3"]) else {
        return;
    };
    let (sink_prog, py) = (&peers[0], &peers[1]);
    let dir = mailroom_testkit::temp_dir();
    let (_sink, sink_port) = smtp_sink(sink_prog, &dir.path().join("sink"), &[]);
    let (proxy_port, connections) = counting_proxy(sink_port);
    let server = Server::start(
        dir.path(),
        &format!("relayhost = \"[127.0.0.1]:{proxy_port}\"\n"),
    );
    let send = |n: usize| {
        python(
            py,
            &server.smtp,
            &format!(
                "s.sendmail('demo@localhost', ['user@remote.example'], 'Subject: {n}\\r\\n\\r\\nmessage {n}\\r\\n')\n"
            ),
        );
    };
    send(1);
    server.wait_log(
        "first relayed",
        |l| l.matches("status=sent").count() >= 1,
        20,
    );
    send(2);
    server.wait_log(
        "second relayed",
        |l| l.matches("status=sent").count() >= 2,
        20,
    );
    assert_eq!(wait_files(&dir.path().join("sink"), 2, 10).len(), 2);
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "{}",
        server.log()
    );
    // Past the 2 s time limit the idle connection is gone: the next message connects anew.
    std::thread::sleep(Duration::from_millis(2500));
    send(3);
    server.wait_log(
        "third relayed",
        |l| l.matches("status=sent").count() >= 3,
        20,
    );
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "{}",
        server.log()
    );
}

/// `~/.forward` as local(8) reads it: the user's own mailbox (`\demo`), an mbox file and a
/// remote address (relayed to smtp-sink, with `Delivered-To:` added); a message that already
/// went through the user (its `Delivered-To:` names it) bounces as a forwarding loop.
#[test]
fn dot_forward_keeps_a_copy_appends_forwards_and_stops_loops() {
    let Some(peers) = mailroom_testkit::peers(&["smtp-sink", "python3"]) else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let sink_dir = dir.path().join("sink");
    let (_sink, sink_port) = smtp_sink(&peers[0], &sink_dir, &[]);
    let server = Server::start(
        dir.path(),
        &format!("relayhost = \"[127.0.0.1]:{sink_port}\"\n"),
    );
    let home = server.data.join("home/demo");
    let mbox = dir.path().join("copy.mbox");
    std::fs::write(
        home.join(".forward"),
        format!(
            "# demo's .forward\n\\demo, {}\nfriend@remote.example\n",
            mbox.display()
        ),
    )
    .unwrap();
    python(
        &peers[1],
        &server.smtp,
        "s.sendmail('alice@client.example', ['demo@localhost'], 'Subject: forwarded\\r\\n\\r\\nkeep a copy\\r\\n')\n",
    );
    server.wait_log(
        "the forwarded copy is relayed",
        |l| l.contains("to=<friend@remote.example>") && l.contains("status=sent"),
        30,
    );
    let maildir = files_in(&home.join("Maildir/new"));
    assert_eq!(maildir.len(), 1, "{}", server.log());
    let stored = std::fs::read_to_string(&maildir[0]).unwrap();
    assert!(stored.contains("Subject: forwarded"), "{stored}");
    let copy = std::fs::read_to_string(&mbox).unwrap();
    assert!(
        copy.starts_with("From alice@client.example ") && copy.contains("keep a copy"),
        "{copy}"
    );
    let relayed: Vec<String> = files_in(&sink_dir)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(relayed.len(), 1, "{relayed:?}");
    assert!(
        relayed[0]
            .lines()
            .any(|l| l.trim_end() == "Delivered-To: demo@localhost")
            && relayed[0].contains("keep a copy"),
        "{}",
        relayed[0]
    );

    // The relayed copy coming back (its Delivered-To names demo) is a loop: bounced, not
    // stored again.
    python(
        &peers[1],
        &server.smtp,
        "s.sendmail('alice@client.example', ['demo@localhost'], 'Delivered-To: demo@localhost\\r\\nSubject: again\\r\\n\\r\\nloop\\r\\n')\n",
    );
    let log = server.wait_log(
        "the loop bounces",
        |l| l.contains("mail forwarding loop for demo@localhost"),
        30,
    );
    assert!(log.contains("status=bounced (5.4.6"), "{log}");
    assert_eq!(files_in(&home.join("Maildir/new")).len(), 1);
}
