//! Interop with real programs (acceptance 4): Python's `mailbox.Maildir` reads every message
//! and flag we write and we read what it writes; Dovecot (a private instance, `doveadm`) lists
//! the messages, UIDs, flags and keywords we wrote, and we see what Dovecot saves and flags,
//! with the UIDs it assigned.

// Integration test: failures should stop the test with their message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use mailroom_maildir::{Flags, Maildir, Subdir};
use mailroom_testkit::dovecot::Dovecot;

fn msg(subject: &str) -> Vec<u8> {
    format!("From: a@example.test\nSubject: {subject}\n\nbody of {subject}\n").into_bytes()
}

fn python(script: &str, arg: &Path) -> String {
    let py = mailroom_testkit::peer("python3").expect("python3");
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(arg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const PY_LIST: &str = r#"
import mailbox, sys
mb = mailbox.Maildir(sys.argv[1], factory=None, create=False)
for key in sorted(mb.keys()):
    m = mb[key]
    print("\t".join([key, m.get_subdir(), m.get_flags(), str(len(m.as_bytes())), m["Subject"]]))
"#;

const PY_ADD: &str = r#"
import mailbox, sys
mb = mailbox.Maildir(sys.argv[1], factory=None, create=False)
m = mailbox.MaildirMessage(b"From: p@example.test\nSubject: from python new\n\nhello\n")
print(mb.add(m))
m = mailbox.MaildirMessage(b"From: p@example.test\nSubject: from python seen\n\nhello\n")
m.set_subdir("cur")
m.set_flags("FSa")
print(mb.add(m))
"#;

#[test]
fn python_mailbox_reads_ours_and_we_read_its() {
    if mailroom_testkit::peer("python3").is_none() {
        return;
    }
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("Maildir");
    let md = Maildir::create(&path).unwrap();
    let a = md.deliver(&msg("plain")[..]).unwrap();
    let b = md.deliver(&msg("seen and flagged")[..]).unwrap();
    let c = md.deliver(&msg("replied with keyword")[..]).unwrap();
    let find = |k: &str| md.find(k).unwrap().unwrap();
    md.add_flags(&find(b.key.as_str()), Flags::SEEN | Flags::FLAGGED)
        .unwrap();
    md.add_flags(
        &find(c.key.as_str()),
        Flags::REPLIED | Flags::keyword(1).unwrap(),
    )
    .unwrap();

    let listed = python(PY_LIST, &path);
    let rows: BTreeMap<&str, Vec<&str>> = listed
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0], f[1..].to_vec())
        })
        .collect();
    assert_eq!(rows.len(), 3, "{listed}");
    let size = |s: &str| msg(s).len().to_string();
    assert_eq!(rows[a.key.as_str()], ["new", "", &size("plain"), "plain"]);
    assert_eq!(
        rows[b.key.as_str()],
        ["cur", "FS", &size("seen and flagged"), "seen and flagged"]
    );
    assert_eq!(
        rows[c.key.as_str()],
        [
            "cur",
            "Rb",
            &size("replied with keyword"),
            "replied with keyword"
        ]
    );

    let added = python(PY_ADD, &path);
    let keys: Vec<&str> = added.lines().collect();
    assert_eq!(keys.len(), 2);
    let new = md.find(keys[0]).unwrap().expect("python's new message");
    assert_eq!(new.subdir(), Subdir::New);
    assert_eq!(new.flags(), Flags::empty());
    let seen = md.find(keys[1]).unwrap().expect("python's seen message");
    assert_eq!(seen.subdir(), Subdir::Cur);
    assert_eq!(
        seen.flags(),
        Flags::FLAGGED | Flags::SEEN | Flags::keyword(0).unwrap()
    );
    let mut text = String::new();
    md.open_message(&seen)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("Subject: from python seen"));
    assert_eq!(md.size(&seen).unwrap(), text.len() as u64);
    assert_eq!(md.scan().unwrap().messages.len(), 5);
}

/// One message as `doveadm fetch 'uid flags hdr.subject'` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fetched {
    uid: u32,
    flags: Vec<String>,
    subject: String,
}

fn fetch(dovecot: &Dovecot) -> Vec<Fetched> {
    let out = dovecot.doveadm_ok(
        &[
            "fetch",
            "-u",
            "alice",
            "uid flags hdr.subject",
            "mailbox",
            "INBOX",
            "all",
        ],
        None,
    );
    let mut list: Vec<Fetched> = Vec::new();
    for line in out.lines() {
        let line = line.trim_start_matches('\u{c}');
        if let Some(uid) = line.strip_prefix("uid: ") {
            list.push(Fetched {
                uid: uid.trim().parse().unwrap(),
                flags: Vec::new(),
                subject: String::new(),
            });
        } else if let Some(flags) = line.strip_prefix("flags:") {
            let mut f: Vec<String> = flags
                .split_whitespace()
                .filter(|f| *f != "\\Recent")
                .map(str::to_owned)
                .collect();
            f.sort();
            list.last_mut().unwrap().flags = f;
        } else if let Some(s) = line.strip_prefix("hdr.subject: ") {
            list.last_mut().unwrap().subject = s.to_owned();
        }
    }
    list
}

/// What we see: per UID, the flags (as IMAP names) and the subject.
fn ours(md: &Maildir) -> Vec<Fetched> {
    let uids = md.read_uidlist().unwrap().expect("a uidlist");
    let keywords = md.read_keywords().unwrap();
    let scan = md.scan().unwrap();
    let mut list = Vec::new();
    for m in &scan.messages {
        let uid = uids
            .uid_of(m.key().as_str())
            .expect("every message has a UID");
        let mut flags: Vec<String> = Vec::new();
        for (flag, name) in [
            (Flags::SEEN, "\\Seen"),
            (Flags::FLAGGED, "\\Flagged"),
            (Flags::REPLIED, "\\Answered"),
            (Flags::TRASHED, "\\Deleted"),
            (Flags::DRAFT, "\\Draft"),
        ] {
            if m.flags().contains(flag) {
                flags.push(name.to_owned());
            }
        }
        flags.extend(keywords.names_in(m.flags()).iter().map(|s| (*s).to_owned()));
        flags.sort();
        let mut text = String::new();
        md.open_message(m)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("")
            .to_owned();
        list.push(Fetched {
            uid,
            flags,
            subject,
        });
    }
    list.sort_by_key(|f| f.uid);
    list
}

#[test]
fn dovecot_sees_our_uids_flags_keywords_and_we_see_its() {
    let Some(dovecot) = Dovecot::builder().user("alice", "secret").start() else {
        return;
    };
    let path = dovecot.home("alice").join("Maildir");
    let md = Maildir::create(&path).unwrap();
    let subjects = ["first", "second", "third"];
    let delivered: Vec<_> = subjects
        .iter()
        .map(|s| md.deliver(&msg(s)[..]).unwrap())
        .collect();
    let junk = md.keyword_flag("Junk").unwrap();
    let fwd = md.keyword_flag("$Forwarded").unwrap();
    let find = |i: usize| md.find(delivered[i].key.as_str()).unwrap().unwrap();
    md.add_flags(&find(0), Flags::SEEN).unwrap();
    md.add_flags(&find(1), Flags::FLAGGED | junk).unwrap();
    md.add_flags(&find(2), Flags::REPLIED | fwd | junk).unwrap();
    let uids = md.sync_uids().unwrap();
    dovecot.chown_to_mail_user(dovecot.home("alice").as_path());

    let expected = ours(&md);
    assert_eq!(
        expected.iter().map(|f| f.uid).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let seen_by_dovecot = fetch(&dovecot);
    assert_eq!(
        seen_by_dovecot, expected,
        "dovecot's view differs from ours"
    );
    assert_eq!(
        seen_by_dovecot[2].flags,
        ["$Forwarded", "Junk", "\\Answered"]
    );

    // Dovecot saves and flags; we see its messages with the UIDs it assigned.
    dovecot.doveadm_ok(
        &["save", "-u", "alice", "-m", "INBOX"],
        Some(&msg("saved by dovecot")),
    );
    dovecot.doveadm_ok(
        &["save", "-u", "alice", "-m", "INBOX"],
        Some(&msg("flagged by dovecot")),
    );
    dovecot.doveadm_ok(
        &[
            "flags",
            "add",
            "-u",
            "alice",
            "\\Seen \\Draft NewKeyword",
            "mailbox",
            "INBOX",
            "uid",
            "5",
        ],
        None,
    );
    dovecot.doveadm_ok(
        &[
            "flags", "remove", "-u", "alice", "Junk", "mailbox", "INBOX", "uid", "2",
        ],
        None,
    );
    let theirs = fetch(&dovecot);
    assert_eq!(theirs.len(), 5);
    assert_eq!(theirs[3].subject, "saved by dovecot");
    assert_eq!(theirs[3].uid, 4);
    assert_eq!(theirs[4].flags, ["NewKeyword", "\\Draft", "\\Seen"]);
    assert_eq!(ours(&md), theirs, "our view differs from dovecot's");
    let list = md.read_uidlist().unwrap().unwrap();
    assert_eq!(list.uid_validity, uids.uid_validity);

    // A message we deliver now gets the next UID, and Dovecot agrees.
    let late = md.deliver(&msg("late")[..]).unwrap();
    let list = md.sync_uids().unwrap();
    assert_eq!(list.uid_of(late.key.as_str()), Some(6));
    dovecot.chown_to_mail_user(dovecot.home("alice").as_path());
    let theirs = fetch(&dovecot);
    assert_eq!(theirs.last().unwrap().uid, 6);
    assert_eq!(theirs.last().unwrap().subject, "late");
    assert_eq!(ours(&md), theirs);
}

#[test]
fn dovecot_lists_our_folders() {
    let Some(dovecot) = Dovecot::builder().user("bob", "secret").start() else {
        return;
    };
    let path = dovecot.home("bob").join("Maildir");
    let md = Maildir::create(&path).unwrap();
    md.create_folder("Sent").unwrap();
    md.create_folder("Archive.2025").unwrap();
    md.create_folder("Entwürfe").unwrap();
    md.folder("Sent")
        .unwrap()
        .deliver(&msg("sent one")[..])
        .unwrap();
    dovecot.chown_to_mail_user(dovecot.home("bob").as_path());
    let out = dovecot.doveadm_ok(&["mailbox", "list", "-u", "bob"], None);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["Archive", "Archive.2025", "Entwürfe", "INBOX", "Sent"]
    );
    let out = dovecot.doveadm_ok(
        &[
            "fetch",
            "-u",
            "bob",
            "hdr.subject",
            "mailbox",
            "Sent",
            "all",
        ],
        None,
    );
    assert!(out.contains("sent one"), "{out}");

    // A folder Dovecot creates is one we list.
    dovecot.doveadm_ok(&["mailbox", "create", "-u", "bob", "Übersicht.Q1"], None);
    let listed: Vec<String> = md
        .list_folders()
        .unwrap()
        .folders
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(listed.contains(&"Übersicht.Q1".to_owned()), "{listed:?}");
}

/// The harness's IMAP and LMTP listeners answer (for the helpers that build on them), and a
/// message Dovecot's LMTP delivers is one we read.
#[test]
fn dovecot_lmtp_delivers_and_we_read_it() {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;
    let Some(dovecot) = Dovecot::builder()
        .user("carol", "secret")
        .with_imap()
        .with_lmtp()
        .start()
    else {
        return;
    };
    let mut imap = BufReader::new(TcpStream::connect(dovecot.imap_addr().unwrap()).unwrap());
    let mut line = String::new();
    imap.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "{line}");
    imap.get_mut()
        .write_all(b"a1 LOGIN carol secret\r\na2 LOGOUT\r\n")
        .unwrap();
    let mut transcript = String::new();
    while !transcript.contains("a2 OK") {
        line.clear();
        if imap.read_line(&mut line).unwrap() == 0 {
            break;
        }
        transcript.push_str(&line);
    }
    assert!(transcript.contains("a1 OK"), "{transcript}");

    let stream = TcpStream::connect(dovecot.lmtp_addr().unwrap()).unwrap();
    let mut lmtp = BufReader::new(stream);
    let expect = |lmtp: &mut BufReader<TcpStream>, send: &[u8], code: &str| {
        if !send.is_empty() {
            lmtp.get_mut().write_all(send).unwrap();
        }
        loop {
            let mut l = String::new();
            lmtp.read_line(&mut l).unwrap();
            assert!(
                l.starts_with(code),
                "sent {:?}, got {l:?}",
                String::from_utf8_lossy(send)
            );
            if l.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    };
    expect(&mut lmtp, b"", "220");
    expect(&mut lmtp, b"LHLO test\r\n", "250");
    expect(&mut lmtp, b"MAIL FROM:<a@example.test>\r\n", "250");
    expect(&mut lmtp, b"RCPT TO:<carol>\r\n", "250");
    expect(&mut lmtp, b"DATA\r\n", "354");
    expect(&mut lmtp, b"Subject: via lmtp\r\n\r\nhello\r\n.\r\n", "250");
    expect(&mut lmtp, b"QUIT\r\n", "221");

    let md = Maildir::open(dovecot.home("carol").join("Maildir")).unwrap();
    let scan = md.scan().unwrap();
    assert_eq!(scan.messages.len(), 1);
    let mut text = String::new();
    md.open_message(&scan.messages[0])
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("Subject: via lmtp"), "{text}");
    let uids = md
        .read_uidlist()
        .unwrap()
        .expect("dovecot wrote its uidlist");
    assert_eq!(uids.uid_of(scan.messages[0].key().as_str()), Some(1));
}
