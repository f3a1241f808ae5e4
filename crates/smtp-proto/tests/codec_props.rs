//! Property tests of the command and reply codecs: every value round-trips through its
//! encoding, random bytes never panic, and a reply split at any byte decodes the same.

// Tests unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use mailroom_smtp_proto::*;
use proptest::prelude::*;

fn domain() -> impl Strategy<Value = Domain> {
    prop::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..4)
        .prop_map(|labels| Domain::new(labels.join(".")).unwrap())
}

fn utf8_domain() -> impl Strategy<Value = Domain> {
    prop_oneof![
        domain(),
        "[a-zé]{1,5}\\.[a-zü]{1,5}".prop_map(|s| Domain::new(s).unwrap()),
    ]
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        domain().prop_map(Host::Domain),
        any::<[u8; 4]>().prop_map(|o| Host::Literal(AddressLiteral::Ipv4(Ipv4Addr::from(o)))),
        any::<[u16; 8]>().prop_map(|s| Host::Literal(AddressLiteral::Ipv6(Ipv6Addr::from(s)))),
        ("[a-z][a-z0-9]{0,5}", "[!-Z^-~]{1,10}").prop_filter_map("not IPv6", |(t, c)| {
            GeneralLiteral::new(t, c)
                .ok()
                .map(|g| Host::Literal(AddressLiteral::General(g)))
        }),
    ]
}

fn local_part() -> impl Strategy<Value = LocalPart> {
    prop_oneof![
        // Dot-strings.
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,8}(\\.[a-zA-Z0-9_-]{1,8}){0,2}",
        // Anything printable, sent quoted.
        "[ -~]{0,20}",
    ]
    .prop_map(|s| LocalPart::new(s).unwrap())
}

fn mailbox() -> impl Strategy<Value = Mailbox> {
    (local_part(), host()).prop_map(|(l, h)| Mailbox::new(l, h))
}

fn utf8_mailbox() -> impl Strategy<Value = Mailbox> {
    ("[a-zø用户]{1,6}", utf8_domain())
        .prop_map(|(l, d)| Mailbox::new(LocalPart::new(l).unwrap(), d))
}

fn xtext(max: usize) -> impl Strategy<Value = XText> {
    prop::collection::vec(any::<u8>(), 1..max).prop_map(|b| XText::encode(&b).unwrap())
}

fn other_params() -> impl Strategy<Value = Vec<Param>> {
    prop::collection::vec(
        ("X-[A-Z0-9]{1,8}", prop::option::of("[!-<>-~]{1,10}")),
        0..3,
    )
    .prop_map(|ps| {
        let mut seen = std::collections::HashSet::new();
        ps.into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .map(|(k, v)| Param {
                keyword: Keyword::new(&k).unwrap(),
                value: v.map(|v| Value::new(&v).unwrap()),
            })
            .collect()
    })
}

fn mail_params() -> impl Strategy<Value = MailParams> {
    (
        (
            prop::option::of(any::<u64>()),
            prop::option::of(prop_oneof![
                Just(Body::SevenBit),
                Just(Body::EightBitMime),
                Just(Body::BinaryMime)
            ]),
            any::<bool>(),
            prop::option::of(prop_oneof![Just(Ret::Full), Just(Ret::Hdrs)]),
            prop::option::of(
                xtext(30).prop_filter("ENVID at most 100", |x| x.as_str().len() <= 100),
            ),
            prop::option::of(prop_oneof![
                Just(AuthParam::Unknown),
                xtext(40).prop_map(AuthParam::Identity)
            ]),
        ),
        (
            any::<bool>(),
            prop::option::of(-9i8..=9),
            prop::option::of(prop_oneof![
                (0u32..999_999_999).prop_map(Hold::For),
                Just(Hold::Until("2026-11-21T10:00:00Z".to_owned())),
            ]),
            prop::option::of(
                (-999_999_999i32..999_999_999, any::<bool>(), any::<bool>()).prop_map(
                    |(seconds, r, trace)| DeliverBy {
                        seconds,
                        mode: if r {
                            DeliverByMode::Return
                        } else {
                            DeliverByMode::Notify
                        },
                        trace,
                    },
                ),
            ),
            other_params(),
        ),
    )
        .prop_map(
            |(
                (size, body, smtputf8, ret, envid, auth),
                (requiretls, mt_priority, hold, by, other),
            )| {
                MailParams {
                    size,
                    body,
                    smtputf8,
                    ret,
                    envid,
                    auth,
                    requiretls,
                    mt_priority,
                    hold,
                    by,
                    other,
                }
            },
        )
}

fn rcpt_params() -> impl Strategy<Value = RcptParams> {
    (
        prop::option::of((any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(success, failure, delay)| Notify {
                success,
                failure,
                delay,
            },
        )),
        prop::option::of(
            (prop_oneof![Just("rfc822"), Just("utf-8")], xtext(40))
                .prop_map(|(t, x)| Orcpt::new(t, x).unwrap()),
        ),
        other_params(),
    )
        .prop_map(|(notify, orcpt, other)| RcptParams {
            notify,
            orcpt,
            other,
        })
}

/// Printable text with no leading or trailing space (the decoder trims trailing spaces).
fn text() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,20}[!-~])?"
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        host().prop_map(Command::Helo),
        host().prop_map(Command::Ehlo),
        host().prop_map(Command::Lhlo),
        (
            prop_oneof![
                Just(ReversePath::Null),
                mailbox().prop_map(ReversePath::Mailbox)
            ],
            mail_params()
        )
            .prop_map(|(from, params)| Command::Mail { from, params }),
        (utf8_mailbox(), mail_params()).prop_map(|(m, mut params)| {
            params.smtputf8 = true;
            Command::Mail {
                from: ReversePath::Mailbox(m),
                params,
            }
        }),
        (
            prop_oneof![
                Just(ForwardPath::Postmaster),
                mailbox().prop_map(ForwardPath::Mailbox),
                utf8_mailbox().prop_map(ForwardPath::Mailbox)
            ],
            rcpt_params()
        )
            .prop_map(|(to, params)| Command::Rcpt { to, params }),
        Just(Command::Data),
        (any::<u64>(), any::<bool>()).prop_map(|(size, last)| Command::Bdat { size, last }),
        Just(Command::Rset),
        prop::option::of(text()).prop_map(Command::Noop),
        Just(Command::Quit),
        text().prop_map(Command::Vrfy),
        text().prop_map(Command::Expn),
        prop::option::of(text()).prop_map(Command::Help),
        Just(Command::StartTls),
        (
            "[A-Z0-9_-]{1,20}",
            prop::option::of(prop::collection::vec(any::<u8>(), 0..60))
        )
            .prop_map(|(m, r)| Command::Auth {
                mechanism: Mechanism::new(&m).unwrap(),
                initial_response: r.map(|bytes| Secret::new(base64(&bytes))),
            }),
    ]
}

/// Standard base64 with padding (RFC 4648 §4), enough for test data.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn reply() -> impl Strategy<Value = Reply> {
    (
        (2u16..=5, 0u16..=5, 0u16..=9),
        prop::option::of((0u16..=999, 0u16..=999)),
        prop::collection::vec("[ -~\t]{0,40}", 1..6),
    )
        .prop_map(|((a, b, c), enhanced, lines)| {
            let code = ReplyCode::new(a * 100 + b * 10 + c).unwrap();
            let mut text = lines.join("\n");
            if let Some((s, d)) = enhanced {
                text = format!("{a}.{s}.{d} {text}");
            }
            Reply::new(code, &text)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_command_round_trips(cmd in command()) {
        let bytes = cmd.to_bytes();
        prop_assert!(bytes.ends_with(b"\r\n"));
        let line = &bytes[..bytes.len() - 2];
        prop_assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
        let decoded = Command::decode(line, &Limits { command_line: 4096, ..Limits::default() }, true);
        prop_assert_eq!(decoded, Ok(cmd), "{:?}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn every_reply_round_trips(r in reply()) {
        let bytes = r.to_bytes();
        let limits = Limits { reply_line: 4096, ..Limits::default() };
        let (decoded, used) = Reply::decode(&bytes, &limits).unwrap().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(decoded, r);
    }

    #[test]
    fn a_reply_split_anywhere_needs_more_input_until_complete(r in reply(), extra in "[ -~]{0,10}") {
        let bytes = r.to_bytes();
        let limits = Limits { reply_line: 4096, ..Limits::default() };
        for cut in 0..bytes.len() {
            prop_assert_eq!(Reply::decode(&bytes[..cut], &limits), Ok(None));
        }
        // Bytes after the reply are left for the next one.
        let mut more = bytes.clone();
        more.extend_from_slice(extra.as_bytes());
        let (decoded, used) = Reply::decode(&more, &limits).unwrap().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(decoded, r);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), utf8 in any::<bool>()) {
        let limits = Limits::default();
        let _ = Command::decode(&bytes, &limits, utf8);
        let _ = Reply::decode(&bytes, &limits);
        let text = String::from_utf8_lossy(&bytes);
        let _ = text.parse::<Mailbox>();
        let _ = text.parse::<Host>();
        let _ = Extensions::from_lines(&text.split('\n').collect::<Vec<_>>());
    }

    #[test]
    fn command_like_bytes_never_panic(
        verb in prop_oneof![Just("MAIL FROM:"), Just("RCPT TO:"), Just("EHLO "), Just("BDAT "), Just("AUTH ")],
        rest in prop::collection::vec(prop_oneof![any::<u8>(), Just(b'<'), Just(b'>'), Just(b'@'), Just(b'"'), Just(b'\\'), Just(b'['), Just(b' '), Just(b'=')], 0..80),
    ) {
        let mut line = verb.as_bytes().to_vec();
        line.extend_from_slice(&rest);
        if let Ok(cmd) = Command::decode(&line, &Limits::default(), true) {
            // Whatever decodes encodes to a line that decodes the same.
            let bytes = cmd.to_bytes();
            prop_assert_eq!(Command::decode(&bytes[..bytes.len() - 2], &Limits { command_line: 4096, ..Limits::default() }, true), Ok(cmd));
        }
    }

    #[test]
    fn extensions_round_trip(
        flags in prop::collection::vec(any::<bool>(), 11),
        size in prop::option::of(any::<u64>()),
        auth in prop::collection::vec(prop_oneof![Just("PLAIN"), Just("LOGIN"), Just("XOAUTH2")], 0..3),
    ) {
        let mut mechs: Vec<Mechanism> = Vec::new();
        for m in auth {
            let m = Mechanism::new(m).unwrap();
            if !mechs.contains(&m) { mechs.push(m); }
        }
        let ext = Extensions {
            pipelining: flags[0], size, eight_bit_mime: flags[1], binary_mime: flags[2],
            chunking: flags[3], smtputf8: flags[4], starttls: flags[5],
            enhanced_status_codes: flags[6], dsn: flags[7], auth: mechs,
            requiretls: flags[8], mt_priority: flags[9],
            future_release: flags[10].then(|| (604_800, "2026-12-01T00:00:00Z".to_owned())),
            deliver_by: None, other: vec![],
        };
        prop_assert_eq!(Extensions::from_lines(&ext.to_lines()), ext);
    }
}

#[test]
fn base64_helper_matches_rfc4648_vectors() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}
