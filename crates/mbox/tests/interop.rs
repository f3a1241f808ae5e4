//! Interop with the real programs (acceptance 1): Python's `mailbox.mbox` reads what we write
//! and we read what it writes; we read what Postfix's local(8) delivers to an mbox file.

// Integration test: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mailroom_mbox::{AsctimeDate, Flags, FromLine, Mbox, Reader, Sender, Variant};
use mailroom_testkit::postfix::Postfix;

fn python(script: &str, args: &[&Path]) -> Option<String> {
    let python = mailroom_testkit::peer("python3")?;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The bodies used both ways: none has a line starting `From ` or `>From ` except where noted,
/// so that "identical" is well defined for every variant.
fn bodies() -> Vec<Vec<u8>> {
    let long_line = "z".repeat(200_000);
    vec![
        b"plain body\n".to_vec(),
        b"".to_vec(),
        b"no final newline".to_vec(),
        b"blank lines\n\n\nin the middle and at the end\n\n".to_vec(),
        b"> quoted reply\n>> deeper\nsays From here, not at the start\n".to_vec(),
        format!("{long_line}\nshort\n").into_bytes(),
        b"bytes \x00 nul and \xff high\n".to_vec(),
        b"From the start of a line\n".to_vec(),
        b"From a@b Sat Jan  3 01:05:34 1996\nlooks like a separator\n".to_vec(),
        b"Fro\nFrom\nFrom \n".to_vec(),
    ]
}

fn with_final_newline(mut body: Vec<u8>) -> Vec<u8> {
    if !body.is_empty() && !body.ends_with(b"\n") {
        body.push(b'\n');
    }
    body
}

const PY_READ: &str = r#"
import mailbox, sys
mb = mailbox.mbox(sys.argv[1], create=False)
for key in mb.iterkeys():
    raw = mb.get_bytes(key)
    frm = mb.get_message(key).get_from()
    print(frm.encode('utf-8', 'surrogateescape').hex(), raw.hex())
"#;

#[test]
fn python_reads_what_we_write() {
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("mbox");
    let mbox = Mbox::new(&path);
    let date = AsctimeDate::from_unix(1_700_000_000).unwrap();
    let bodies = bodies();
    for (i, body) in bodies.iter().enumerate() {
        let mut message =
            format!("Subject: message {i}\r\nStatus: RO\r\nX-UID: 9\r\n\r\n").into_bytes();
        message.extend_from_slice(body);
        let sender = Sender::from_reverse_path(format!("s{i}@example.org").as_bytes()).unwrap();
        mbox.append(&FromLine::new(sender, date), &message[..])
            .unwrap();
    }
    let Some(out) = python(PY_READ, &[&path]) else {
        return;
    };
    let seen: Vec<(String, Vec<u8>)> = out
        .lines()
        .map(|l| {
            let (f, r) = l.split_once(' ').unwrap();
            (String::from_utf8(unhex(f)).unwrap(), unhex(r))
        })
        .collect();
    assert_eq!(seen.len(), bodies.len(), "python sees every message");
    for (i, ((from, raw), body)) in seen.iter().zip(&bodies).enumerate() {
        assert_eq!(from, &format!("s{i}@example.org Tue Nov 14 22:13:20 2023"));
        let split = raw.windows(2).position(|w| w == b"\n\n").unwrap();
        let headers = &raw[..split + 1];
        let python_body = &raw[split + 2..];
        // Spoofable metadata is gone; CRLF became LF.
        assert_eq!(headers, format!("Subject: message {i}\n").as_bytes());
        // Python does not unquote: a line we stored as ">From " is what it returns (its own
        // writer quotes the same way, mboxo), every other body is identical.
        let expected = with_final_newline(Variant::Mboxrd.quote(body));
        assert_eq!(
            String::from_utf8_lossy(python_body),
            String::from_utf8_lossy(&expected),
            "message {i}"
        );
        if Variant::Mboxrd.quote(body) == *body {
            assert_eq!(python_body, with_final_newline(body.clone()).as_slice());
        }
    }
}

const PY_WRITE: &str = r#"
import mailbox, sys, time
bodies = [bytes.fromhex(h[1:]) for h in sys.stdin.read().split()]
mb = mailbox.mbox(sys.argv[1])
mb.lock()
for i, body in enumerate(bodies):
    msg = mailbox.mboxMessage(b"Subject: python %d\n\n" % i + body)
    msg.set_from("py%d@example.org" % i, time.gmtime(1700000000 + i))
    if i == 0:
        msg.set_flags("RF")
    if i == 1:
        msg.set_flags("ROAD")
    mb.add(msg)
mb.flush()
mb.unlock()
"#;

#[test]
fn we_read_what_python_writes() {
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("mbox");
    let bodies = bodies();
    let hex: Vec<String> = bodies
        .iter()
        .map(|b| {
            format!(
                "x{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            )
        })
        .collect();
    let python3 = match mailroom_testkit::peer("python3") {
        Some(p) => p,
        None => return,
    };
    let mut child = Command::new(python3)
        .arg("-c")
        .arg(PY_WRITE)
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), hex.join("\n").as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    // Python quotes mboxo-style (a "From " line gets a ">"), so read it as mboxo.
    let mut reader = Reader::new(std::fs::File::open(&path).unwrap(), Variant::Mboxo);
    for (i, body) in bodies.iter().enumerate() {
        let m = reader
            .next_message(1 << 20)
            .unwrap()
            .unwrap_or_else(|| panic!("message {i} missing"));
        assert_eq!(
            m.info.from_line.sender().as_bytes(),
            format!("py{i}@example.org").as_bytes()
        );
        assert_eq!(
            m.info.from_line.date().unix_seconds(),
            1_700_000_000 + i as i64
        );
        assert_eq!(
            m.info.headers.get("subject"),
            Some(format!("python {i}").as_bytes())
        );
        assert_eq!(
            String::from_utf8_lossy(&m.body),
            String::from_utf8_lossy(&with_final_newline(body.clone())),
            "message {i}"
        );
        let flags = Flags::from_headers(&m.info.headers);
        match i {
            0 => assert_eq!(
                flags,
                Flags {
                    seen: true,
                    flagged: true,
                    ..Flags::default()
                }
            ),
            1 => assert_eq!(
                flags,
                Flags {
                    seen: true,
                    old: true,
                    answered: true,
                    deleted: true,
                    ..Flags::default()
                }
            ),
            _ => assert_eq!(flags, Flags::default()),
        }
    }
    assert!(reader.next_message(10).unwrap().is_none());

    // Our expunge and flag rewrite on Python's file, then Python reads the result.
    let mbox = Mbox::new(&path).with_variant(Variant::Mboxo);
    let done = mbox.expunge().unwrap();
    assert_eq!(done.expunged, 1);
    assert!(done.replaced);
    let Some(out) = python(PY_READ, &[&path]) else {
        return;
    };
    assert_eq!(out.lines().count(), bodies.len() - 1);
}

#[test]
fn we_read_what_postfix_local_delivers() {
    // local(8) delivers to a file named in an alias as `default_privs` (nobody): the mailbox
    // directory must be writable for it. texthash tables take postmap's "key value" form.
    let Some(postfix) = Postfix::builder()
        .main_cf("mydestination", "localhost")
        .main_cf("alias_maps", "texthash:{conf}/aliases")
        .main_cf("local_recipient_maps", "$alias_maps")
        .table("aliases", "box {dir}/box/mbox\n")
        .start()
    else {
        return;
    };
    let boxdir = postfix.dir().join("box");
    std::fs::create_dir(&boxdir).unwrap();
    std::fs::set_permissions(
        &boxdir,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let bodies: Vec<&[u8]> = vec![
        b"hello\r\nFrom the body\r\n\r\nlast line\r\n",
        b"second\r\n.leading dot\r\n",
        b"no final newline",
    ];
    for (i, body) in bodies.iter().enumerate() {
        let mut message = format!("Subject: postfix {i}\r\nStatus: RO\r\n\r\n").into_bytes();
        message.extend_from_slice(body);
        let from = if i == 1 { "" } else { "sender@example.org" };
        postfix.send(from, &["box@localhost"], &message).unwrap();
    }
    postfix.wait_for_empty_queue(Duration::from_secs(30));
    let path = boxdir.join("mbox");
    // Postfix writes mboxo (only "From " lines are quoted) with two spaces after the sender.
    let mut reader = Reader::new(std::fs::File::open(&path).unwrap(), Variant::Mboxo);
    let mut got = Vec::new();
    while let Some(m) = reader.next_message(1 << 20).unwrap() {
        got.push(m);
    }
    assert_eq!(got.len(), bodies.len(), "log:\n{}", postfix.log());
    // Delivery order is not guaranteed: match by subject.
    for (i, body) in bodies.iter().enumerate() {
        let m = got
            .iter()
            .find(|m| m.info.headers.get("subject") == Some(format!("postfix {i}").as_bytes()))
            .unwrap();
        let expected = with_final_newline(
            String::from_utf8_lossy(body)
                .replace("\r\n", "\n")
                .into_bytes(),
        );
        assert_eq!(
            String::from_utf8_lossy(&m.body),
            String::from_utf8_lossy(&expected)
        );
        let sender = if i == 1 {
            "MAILER-DAEMON"
        } else {
            "sender@example.org"
        };
        assert_eq!(m.info.from_line.sender().as_bytes(), sender.as_bytes());
        assert_eq!(
            m.info.headers.get("delivered-to"),
            Some(&b"box@localhost"[..])
        );
    }
    // And our locked append goes into the same file beside Postfix's messages.
    let mbox = Mbox::new(&path).with_variant(Variant::Mboxo);
    mbox.append(
        &FromLine::now(b"ours@example.org").unwrap(),
        &b"Subject: ours\n\nFrom us\n"[..],
    )
    .unwrap();
    let index = mbox.index().unwrap();
    assert_eq!(index.len(), bodies.len() + 1);
}
