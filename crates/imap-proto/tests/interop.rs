//! Real traffic.
//!
//! - Dovecot: a private Dovecot (testkit) on loopback with a passwd-file user and an INBOX
//!   seeded with varied MIME messages; a scripted session runs through our client-side codec
//!   (commands encoded by us, synchronising literals sent after Dovecot's `+`). Every response
//!   Dovecot sends must decode, and re-encode to exactly the bytes Dovecot sent (our types keep
//!   the form of each string, so this holds for every response, not only the single-form ones).
//! - Python's imaplib: its commands, captured on the wire while it talks to our sans-IO session
//!   over loopback, must all parse on the server side (no BAD), and parse again offline.

// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailroom_imap_proto::codec::Encode;
use mailroom_imap_proto::framing::{FramingLimits, split_at_sync_literals};
use mailroom_imap_proto::session::{Answer, Event, ServerConfig, ServerSession};
use mailroom_imap_proto::types::*;
use mailroom_imap_proto::{Decoded, decode_command, decode_response};
use mailroom_testkit::dovecot::Dovecot;

const MESSAGES: &[&str] = &[
    // Plain text, folded headers, several recipients, a group.
    "From: Alice Example <alice@example.org>\r\nTo: Bob <bob@example.net>, carol@example.net\r\nCc: Friends: dave@example.com, \"Eve \\\"E\\\" Doe\" <eve@example.com>;\r\nSubject: Lunch\r\n on Friday\r\nDate: Mon, 1 Jul 2024 12:00:00 +0200\r\nMessage-ID: <1@example.org>\r\n\r\nShall we meet at noon?\r\n",
    // multipart/alternative with an encoded-word subject and quoted-printable HTML.
    "From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.de>\r\nTo: alice@example.org\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\u{fc}\u{df}e\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Gr=C3=BC=C3=9Fe</p>\r\n--alt--\r\n",
    // multipart/mixed with a base64 attachment, disposition, language and location.
    "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\nContent-Type: text/plain\r\nContent-Language: en, de\r\n\r\nSee attached.\r\n--mix\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Location: http://example.net/r.pdf\r\nContent-ID: <pdf@example.net>\r\nContent-Description: the report\r\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\r\nJVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==\r\n--mix--\r\n",
    // A forwarded message (message/rfc822) inside multipart/mixed.
    "From: carol@example.net\r\nTo: alice@example.org\r\nSubject: Fwd: Lunch\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"fw\"\r\n\r\n--fw\r\nContent-Type: text/plain\r\n\r\nFYI\r\n--fw\r\nContent-Type: message/rfc822\r\n\r\nFrom: Alice Example <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: Lunch\r\nDate: Mon, 1 Jul 2024 12:00:00 +0200\r\n\r\nShall we meet at noon?\r\n--fw--\r\n",
    // No Date, no Subject, a literal-worthy subject with quotes and a backslash elsewhere.
    "From: \"Quote \\\"Me\\\"\" <q@example.org>\r\nTo: undisclosed-recipients:;\r\nX-Note: back\\slash\r\n\r\nbody with a line that is long enough to be folded by nobody at all really\r\n",
];

struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    limits: FramingLimits,
    responses: usize,
    mismatches: Vec<String>,
    next_tag: u32,
}

impl Client {
    fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
            limits: FramingLimits::default(),
            responses: 0,
            mismatches: Vec::new(),
            next_tag: 0,
        }
    }

    fn read_response(&mut self) -> Response {
        loop {
            match decode_response(&self.buf, &self.limits) {
                Ok(Decoded::Done { value, consumed }) => {
                    let raw: Vec<u8> = self.buf.drain(..consumed).collect();
                    self.responses += 1;
                    let again = value.to_bytes();
                    if again != raw {
                        self.mismatches.push(format!(
                            "sent:      {:?}\nre-encoded: {:?}",
                            String::from_utf8_lossy(&raw),
                            String::from_utf8_lossy(&again)
                        ));
                    }
                    return value;
                }
                Ok(Decoded::Incomplete) => {
                    let mut chunk = [0u8; 16384];
                    let n = self.stream.read(&mut chunk).expect("read from Dovecot");
                    assert!(n > 0, "Dovecot closed the connection");
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) => panic!(
                    "Dovecot sent something we cannot decode: {e}\n{:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Sends a command (synchronising literals after each `+`) and returns the responses up to
    /// and including the tagged one.
    fn run(&mut self, body: CommandBody) -> Vec<Response> {
        self.next_tag += 1;
        let tag = Tag::new(format!("m{}", self.next_tag)).unwrap();
        let bytes = Command {
            tag: tag.clone(),
            body,
        }
        .to_bytes();
        let mut out = Vec::new();
        for (n, piece) in split_at_sync_literals(&bytes).into_iter().enumerate() {
            if n > 0 {
                loop {
                    match self.read_response() {
                        Response::Continue(_) => break,
                        Response::Status(s) if s.tag.as_ref() == Some(&tag) => {
                            panic!("{tag} refused before its literal: {s:?}")
                        }
                        other => out.push(other),
                    }
                }
            }
            self.stream.write_all(piece).unwrap();
        }
        loop {
            let r = self.read_response();
            let done = matches!(&r, Response::Status(s) if s.tag.as_ref() == Some(&tag));
            out.push(r);
            if done {
                return out;
            }
        }
    }

    fn ok(&mut self, body: CommandBody) -> Vec<Response> {
        let name = body.name();
        let out = self.run(body);
        match out.last() {
            Some(Response::Status(s)) if s.kind == StatusKind::Ok => out,
            other => panic!("{name} failed: {other:?}"),
        }
    }
}

fn mailbox(name: &str) -> Mailbox {
    Mailbox::from_unicode(name, false).unwrap()
}

fn tagged_code(out: &[Response]) -> Option<Code> {
    match out.last() {
        Some(Response::Status(s)) => s.code.clone(),
        _ => None,
    }
}

fn fetches(out: &[Response]) -> Vec<(u32, Vec<FetchValue>)> {
    out.iter()
        .filter_map(|r| match r {
            Response::Data(Data::Fetch { seq, items }) => Some((*seq, items.clone())),
            _ => None,
        })
        .collect()
}

fn set(s: &str) -> SequenceSet {
    let wire = format!("a FETCH {s} FLAGS\r\n");
    let Ok(Decoded::Done {
        value: Command {
            body: CommandBody::Fetch { set, .. },
            ..
        },
        ..
    }) = decode_command(wire.as_bytes(), &FramingLimits::default())
    else {
        panic!("bad set {s}")
    };
    set
}

fn items(wire: &str) -> FetchItems {
    let wire = format!("a FETCH 1 {wire}\r\n");
    let Ok(Decoded::Done {
        value:
            Command {
                body: CommandBody::Fetch { items, .. },
                ..
            },
        ..
    }) = decode_command(wire.as_bytes(), &FramingLimits::default())
    else {
        panic!("bad items {wire}")
    };
    items
}

fn search(wire: &str) -> CommandBody {
    let wire = format!("a {wire}\r\n");
    match decode_command(wire.as_bytes(), &FramingLimits::default()) {
        Ok(Decoded::Done { value, .. }) => value.body,
        other => panic!("bad search {wire}: {other:?}"),
    }
}

#[test]
fn dovecot_session_decodes_and_re_encodes_exactly() {
    let Some(dovecot) = Dovecot::builder()
        .user("alice", "s3cret pass")
        .with_imap()
        // IDLE learns of new mail by inotify; the polling fallback must not make the test wait.
        .setting("mailbox_idle_check_interval = 1 secs")
        .start()
    else {
        return;
    };
    for m in MESSAGES {
        dovecot.doveadm_ok(&["save", "-u", "alice", "-m", "INBOX"], Some(m.as_bytes()));
    }
    let mut c = Client::connect(dovecot.imap_addr().unwrap());
    assert!(matches!(
        c.read_response(),
        Response::Status(StatusResponse {
            kind: StatusKind::Ok,
            ..
        })
    ));
    c.ok(CommandBody::Capability);
    // A password with a space travels as a quoted string.
    c.ok(CommandBody::Login {
        username: AString::try_from("alice").unwrap(),
        password: Secret::new(AString::try_from("s3cret pass").unwrap()),
    });
    c.ok(CommandBody::Id(Some(vec![(
        IString::try_from("name").unwrap(),
        Some(IString::try_from("mailroom").unwrap()),
    )])));
    c.ok(CommandBody::Namespace);
    c.ok(CommandBody::Enable(vec![Atom::new("CONDSTORE").unwrap()]));
    for name in ["Archive", "Trash", "Entwürfe", "Sent Items"] {
        c.ok(CommandBody::Create(mailbox(name)));
    }
    // The name goes as a synchronising literal: we wait for Dovecot's `+`.
    c.ok(CommandBody::Subscribe(Mailbox::new(AString::String(
        IString::Literal(Literal::new(b"Archive".to_vec(), LiteralMode::Sync).unwrap()),
    ))));
    let list = c.ok(CommandBody::List {
        selection: vec![],
        reference: Mailbox::new(AString::try_from("").unwrap()),
        patterns: vec![ListMailbox::String(IString::try_from("*").unwrap())],
        patterns_parenthesized: false,
        returns: None,
    });
    let names: Vec<String> = list
        .iter()
        .filter_map(|r| match r {
            Response::Data(Data::List(l)) => Some(l.mailbox.to_unicode(false).unwrap()),
            _ => None,
        })
        .collect();
    assert!(names.contains(&"Entwürfe".to_string()), "{names:?}");
    c.ok(search(
        "LIST (SUBSCRIBED) \"\" \"*\" RETURN (CHILDREN STATUS (MESSAGES UIDNEXT))",
    ));
    c.ok(CommandBody::Lsub {
        reference: Mailbox::new(AString::try_from("").unwrap()),
        pattern: ListMailbox::Token(ListToken::new("*").unwrap()),
    });
    c.ok(search(
        "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT)",
    ));

    let sel = c.ok(CommandBody::Select(Mailbox::inbox()));
    assert!(sel.contains(&Response::Data(Data::Exists(MESSAGES.len() as u32))));
    let out = c.ok(CommandBody::Fetch {
        uid: false,
        set: set("1:*"),
        items: items("(FLAGS UID RFC822.SIZE ENVELOPE BODYSTRUCTURE)"),
    });
    let f = fetches(&out);
    assert_eq!(f.len(), MESSAGES.len());
    let structure = |n: usize| {
        f[n].1
            .iter()
            .find_map(|v| match v {
                FetchValue::BodyStructure(b) => Some(b.as_ref().clone()),
                _ => None,
            })
            .unwrap()
    };
    assert!(matches!(structure(0), Body::Single(_)));
    assert!(matches!(structure(2), Body::Multi { ref parts, .. } if parts.len() == 2));
    let Body::Multi { parts, .. } = structure(3) else {
        panic!()
    };
    assert!(matches!(
        &parts[1],
        Body::Single(SinglePart {
            specific: PartSpecific::Message { .. },
            ..
        })
    ));
    let subject = f[0]
        .1
        .iter()
        .find_map(|v| match v {
            FetchValue::Envelope(e) => e.subject.clone(),
            _ => None,
        })
        .unwrap();
    assert_eq!(subject.as_bytes(), b"Lunch on Friday");

    // Partial BODY[] fetches, sections, BINARY.
    let out = c.ok(CommandBody::Fetch {
        uid: false,
        set: set("1:*"),
        items: items("(BODY.PEEK[]<0.100>)"),
    });
    for (_, v) in fetches(&out) {
        let FetchValue::BodySection { origin, data, .. } = &v[0] else {
            panic!("{v:?}")
        };
        assert_eq!(*origin, Some(0));
        assert!(data.as_ref().unwrap().as_bytes().len() <= 100);
    }
    c.ok(CommandBody::Fetch {
        uid: false,
        set: set("3"),
        items: items(
            "(BODY.PEEK[1.MIME] BODY.PEEK[2]<10.20> BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[TEXT])",
        ),
    });
    c.ok(CommandBody::Fetch {
        uid: true,
        set: set("1:*"),
        items: items("(INTERNALDATE RFC822.HEADER MODSEQ)"),
    });
    c.ok(CommandBody::Fetch {
        uid: false,
        set: set("4"),
        items: items("BODY[2.TEXT]"),
    });

    // SEARCH, ESEARCH.
    let out = c.ok(search("SEARCH FROM alice"));
    assert!(
        out.iter()
            .any(|r| matches!(r, Response::Data(Data::Search(v)) if !v.is_empty()))
    );
    c.ok(search(
        "UID SEARCH RETURN (MIN MAX COUNT ALL) OR SEEN NOT SUBJECT \"Lunch\"",
    ));
    c.ok(search(
        "SEARCH CHARSET UTF-8 SINCE 1-Jan-2000 LARGER 10 (UNDELETED UNDRAFT)",
    ));

    // STORE, COPY (COPYUID), MOVE, APPEND (APPENDUID).
    c.ok(search("STORE 1:2 +FLAGS (\\Flagged $Work)"));
    c.ok(search("UID STORE 1 -FLAGS.SILENT (\\Flagged)"));
    let out = c.ok(CommandBody::Copy {
        uid: false,
        set: set("1:2"),
        mailbox: mailbox("Archive"),
    });
    assert!(
        matches!(tagged_code(&out), Some(Code::CopyUid { .. })),
        "{out:?}"
    );
    c.ok(CommandBody::Move {
        uid: true,
        set: set("5"),
        mailbox: mailbox("Trash"),
    });
    let out = c.ok(CommandBody::Append {
        mailbox: mailbox("Sent Items"),
        flags: Some(vec![Flag::Seen]),
        date: None,
        message: Literal::new(MESSAGES[0].as_bytes().to_vec(), LiteralMode::Sync).unwrap(),
    });
    assert!(
        matches!(tagged_code(&out), Some(Code::AppendUid { .. })),
        "{out:?}"
    );

    // IDLE: Dovecot says `+ idling`; a delivery shows up as EXISTS; DONE ends it.
    c.next_tag += 1;
    let tag = Tag::new(format!("m{}", c.next_tag)).unwrap();
    c.stream
        .write_all(
            &Command {
                tag: tag.clone(),
                body: CommandBody::Idle,
            }
            .to_bytes(),
        )
        .unwrap();
    assert!(matches!(c.read_response(), Response::Continue(_)));
    dovecot.doveadm_ok(
        &["save", "-u", "alice", "-m", "INBOX"],
        Some(MESSAGES[1].as_bytes()),
    );
    loop {
        match c.read_response() {
            Response::Data(Data::Exists(_)) => break,
            Response::Data(_) | Response::Status(StatusResponse { tag: None, .. }) => {}
            other => panic!("while idling: {other:?}"),
        }
    }
    c.stream.write_all(b"DONE\r\n").unwrap();
    loop {
        if let Response::Status(s) = c.read_response()
            && s.tag.as_ref() == Some(&tag)
        {
            assert_eq!(s.kind, StatusKind::Ok);
            break;
        }
    }

    c.ok(search("STORE 1 +FLAGS.SILENT (\\Deleted)"));
    c.ok(CommandBody::Expunge);
    c.ok(search("UID EXPUNGE 1:2"));
    c.ok(CommandBody::Noop);
    c.ok(CommandBody::Examine(mailbox("Archive")));
    c.ok(CommandBody::Unselect);
    c.ok(CommandBody::Select(mailbox("Trash")));
    c.ok(CommandBody::Close);
    c.ok(CommandBody::Rename {
        from: mailbox("Entwürfe"),
        to: mailbox("Drafts"),
    });
    c.ok(CommandBody::Delete(mailbox("Drafts")));
    // A refusal decodes too.
    let out = c.run(CommandBody::Select(mailbox("Nope")));
    assert!(matches!(out.last(), Some(Response::Status(s)) if s.kind == StatusKind::No));
    let out = c.run(CommandBody::Logout);
    assert!(out.iter().any(|r| matches!(
        r,
        Response::Status(StatusResponse {
            kind: StatusKind::Bye,
            ..
        })
    )));
    assert!(c.responses > 60, "only {} responses", c.responses);
    eprintln!(
        "dovecot: {} responses decoded, {} re-encoded differently",
        c.responses,
        c.mismatches.len()
    );
    assert!(
        c.mismatches.is_empty(),
        "{} of {} responses did not re-encode to Dovecot's bytes:\n{}",
        c.mismatches.len(),
        c.responses,
        c.mismatches.join("\n")
    );
}

/// Serves one connection with our session and a backend that says OK to everything (with an
/// EXISTS for SELECT and a FETCH for FETCH, which imaplib expects), recording the client's bytes.
fn serve(listener: &TcpListener, received: &Arc<Mutex<Vec<u8>>>, sent: &Arc<Mutex<Vec<u8>>>) {
    let (mut stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let start = Instant::now();
    let mut s = ServerSession::new(ServerConfig::default(), start);
    let mut buf = [0u8; 8192];
    loop {
        if let Some(out) = s.poll_transmit() {
            sent.lock().unwrap().extend_from_slice(&out);
            stream.write_all(&out).unwrap();
        }
        match s.poll_event() {
            Some(Event::Login { token, .. }) => s.respond(token, Answer::ok("Logged in")).unwrap(),
            Some(Event::Command { token, command }) => {
                let answer = match command.body {
                    CommandBody::Select(_) | CommandBody::Examine(_) => Answer::ok("selected")
                        .with_data([Data::Exists(1), Data::Flags(vec![Flag::Seen])])
                        .with_code(Code::ReadWrite),
                    CommandBody::Fetch { .. } => {
                        Answer::ok("FETCH completed").with_data([Data::Fetch {
                            seq: 1,
                            items: vec![FetchValue::Uid(1), FetchValue::Flags(vec![])],
                        }])
                    }
                    CommandBody::Search { .. } => {
                        Answer::ok("SEARCH completed").with_data([Data::Search(vec![1])])
                    }
                    _ => Answer::ok("done"),
                };
                s.respond(token, answer).unwrap();
            }
            Some(Event::Logout) => {
                if let Some(out) = s.poll_transmit() {
                    stream.write_all(&out).unwrap();
                }
                return;
            }
            Some(_) => {}
            None => {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    return;
                }
                received.lock().unwrap().extend_from_slice(&buf[..n]);
                s.handle_input(Instant::now(), &buf[..n]);
            }
        }
    }
}

const IMAPLIB_SCRIPT: &str = r#"
import imaplib, sys, time
port = int(sys.argv[1])
m = imaplib.IMAP4("127.0.0.1", port)
m.login("alice", "pass word")
m.capability()
m.noop()
m.list()
m.list('""', '"%"')
m.lsub()
m.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)")
m.create("Archive")
m.rename("Archive", "Old")
m.subscribe("Old")
m.unsubscribe("Old")
m.delete("Old")
m.append("INBOX", r"(\Seen)", imaplib.Time2Internaldate(time.time()), b"Subject: hi\r\n\r\nhello\r\n")
m.select("INBOX")
m.search(None, "ALL")
m.search("UTF-8", "SUBJECT", "hi")
m.uid("SEARCH", "UNSEEN")
m.fetch("1:*", "(FLAGS UID RFC822.SIZE)")
m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
m.uid("FETCH", "1", "(BODY.PEEK[]<0.512>)")
m.store("1", "+FLAGS", r"(\Deleted)")
m.uid("STORE", "1", "-FLAGS.SILENT", r"(\Seen)")
m.copy("1", "Archive")
m.uid("COPY", "1:*", "Archive")
m.expunge()
m.check()
m.close()
m.examine("INBOX") if hasattr(m, "examine") else m.select("INBOX", readonly=True)
m.unselect() if hasattr(m, "unselect") else None
m.logout()

m = imaplib.IMAP4("127.0.0.1", port)
m.authenticate("PLAIN", lambda challenge: b"\0alice\0pass word")
m.select("INBOX", readonly=True)
m.logout()
"#;

#[test]
fn python_imaplib_commands_parse_on_the_server_side() {
    let Some(python) = mailroom_testkit::peer("python3") else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let (r2, s2) = (received.clone(), sent.clone());
    let server = std::thread::spawn(move || {
        serve(&listener, &r2, &s2);
        serve(&listener, &r2, &s2);
    });
    let out = Process::new(python)
        .arg("-c")
        .arg(IMAPLIB_SCRIPT)
        .arg(port.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "imaplib failed:\n{}\nserver sent:\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&sent.lock().unwrap())
    );
    server.join().unwrap();
    let sent = String::from_utf8(sent.lock().unwrap().clone()).unwrap();
    assert!(
        !sent.contains(" BAD "),
        "the session refused something:\n{sent}"
    );
    // Offline: every captured command (the SASL response line aside) parses.
    let captured = received.lock().unwrap().clone();
    let mut rest = &captured[..];
    let mut names = Vec::new();
    while !rest.is_empty() {
        if rest.starts_with(b"AGFsaWNl") {
            let end = rest.iter().position(|&b| b == b'\n').unwrap() + 1;
            rest = &rest[end..];
            continue;
        }
        match decode_command(rest, &FramingLimits::default()) {
            Ok(Decoded::Done { value, consumed }) => {
                names.push(value.body.name());
                rest = &rest[consumed..];
            }
            other => panic!(
                "captured imaplib command does not parse: {other:?}\n{:?}",
                String::from_utf8_lossy(rest)
            ),
        }
    }
    eprintln!("imaplib: {} commands captured and parsed", names.len());
    for expected in [
        "LOGIN",
        "APPEND",
        "UID FETCH",
        "UID STORE",
        "AUTHENTICATE",
        "LOGOUT",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
}
