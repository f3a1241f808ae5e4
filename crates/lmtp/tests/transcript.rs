//! RFC 2033's example session (§4.2), replayed against the sans-IO session: the same replies
//! in the same order, one per accepted recipient after the data.

// Integration tests: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[test]
fn rfc2033_section_4_2() {
    let script = include_str!("transcripts/rfc2033_4_2.txt");
    let mut session = common::session();
    let mut expected = Vec::new();
    let mut input = Vec::new();
    for line in script.lines().filter(|l| !l.starts_with('#')) {
        if let Some(c) = line.strip_prefix("C: ") {
            input.extend_from_slice(c.as_bytes());
            input.extend_from_slice(b"\r\n");
        } else if let Some(s) = line.strip_prefix("S: ") {
            expected.push(s.to_owned());
        }
    }
    // Fed one command at a time, then all at once (pipelined): the same replies.
    for pipelined in [false, true] {
        let mut session_out = Vec::new();
        let mut s = common::session();
        if pipelined {
            s.handle_input(&input);
            session_out.extend(common::drive(&mut s, &["jones"], &["green"]));
        } else {
            session_out.extend(common::drive(&mut s, &[], &[]));
            for line in input.split_inclusive(|&b| b == b'\n') {
                s.handle_input(line);
                session_out.extend(common::drive(&mut s, &["jones"], &["green"]));
            }
        }
        let got = common::replies(&session_out);
        let expected_replies = common::replies(expected.join("\r\n").as_bytes());
        assert_eq!(got.len(), expected_replies.len(), "{got:#?}");
        for (g, e) in got.iter().zip(&expected_replies) {
            assert_eq!(g[0][..3], e[0][..3], "reply code: got {g:?}, RFC has {e:?}");
        }
        // The application's own replies come out verbatim.
        let flat: Vec<&str> = got.iter().map(|r| r[0].as_str()).collect();
        assert!(flat.contains(&"550 No such user here"), "{flat:?}");
        assert_eq!(
            flat[flat.len() - 3..flat.len() - 1],
            [
                "250 2.0.0 Ok: queued as x",
                "452 <green@foo.edu> is temporarily over quota"
            ]
        );
        // The LHLO reply lists the extensions the issue names.
        let lhlo = got[1].join("\n");
        for ext in [
            "PIPELINING",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "SIZE",
            "SMTPUTF8",
            "CHUNKING",
        ] {
            assert!(lhlo.contains(ext), "{ext} missing from {lhlo}");
        }
        assert!(s.is_closed());
    }
    let _ = &mut session;
}

#[test]
fn helo_and_ehlo_are_refused() {
    // RFC 2033 §4.1: "The LHLO command ... HELO and EHLO ... are not" used; the server answers
    // 500 to them.
    let mut s = common::session();
    s.handle_input(b"HELO foo.edu\r\nEHLO foo.edu\r\nMAIL FROM:<a@b.example>\r\nLHLO foo.edu\r\n");
    let got = common::replies(&common::drive(&mut s, &[], &[]));
    let codes: Vec<&str> = got.iter().map(|r| &r[0][..3]).collect();
    assert_eq!(codes, ["220", "500", "500", "503", "250"]);
}

#[test]
fn bdat_gets_one_reply_per_recipient() {
    let mut s = common::session();
    s.handle_input(
        b"LHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<p@foo.edu>\r\nRCPT TO:<q@foo.edu>\r\n\
          RCPT TO:<r@foo.edu>\r\nBDAT 5\r\nhelloBDAT 8 LAST\r\n world\r\n",
    );
    let got = common::replies(&common::drive(&mut s, &["q"], &["r"]));
    let codes: Vec<&str> = got.iter().map(|r| &r[0][..3]).collect();
    // greeting, LHLO, MAIL, 3 RCPT, first chunk, then one reply per accepted recipient (p, r).
    assert_eq!(
        codes,
        [
            "220", "250", "250", "250", "550", "250", "250", "250", "452"
        ]
    );
}
