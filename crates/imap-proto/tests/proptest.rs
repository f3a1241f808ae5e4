//! Property tests: every command and response type round-trips through its encoder and parser;
//! random bytes never panic the decoders, the framer or the session; a valid stream split at any
//! byte gives the same result.

// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;
use std::time::Instant;

use mailroom_imap_proto::codec::Encode;
use mailroom_imap_proto::framing::{CommandFramer, FrameEvent, FramingLimits};
use mailroom_imap_proto::session::{Answer, Event, ServerConfig, ServerSession};
use mailroom_imap_proto::types::*;
use mailroom_imap_proto::{Decoded, decode_command, decode_response};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

// ---- lexical ---------------------------------------------------------------------------------

fn atom_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9$!#&'+,\\-./:;<=>?@^_`|~}]{1,12}"
}
fn atom() -> impl Strategy<Value = Atom> {
    atom_text().prop_map(|s| Atom::new(s).unwrap())
}
fn tag() -> impl Strategy<Value = Tag> {
    "[A-Za-z0-9.\\-_]{1,8}".prop_map(|s| Tag::new(s).unwrap())
}
fn text() -> impl Strategy<Value = String> {
    // TEXT-CHARs, some UTF-8; never starting with '[' (that would read as a response code).
    "([A-Za-z0-9 .,;:!?()<>\"\\\\/*%{}=+-]|é|日){0,20}"
        // Never starting with '[' (a response code) nor ending with '}' (a literal announcement).
        .prop_filter("no leading [", |s: &String| {
            !s.starts_with('[') && !s.ends_with('}')
        })
}
fn quoted() -> impl Strategy<Value = Quoted> {
    "([A-Za-z0-9 .,;:!?()<>\"\\\\/*%{}\\[\\]=+-]|é|日){0,16}".prop_map(|s| Quoted::new(s).unwrap())
}
fn literal() -> impl Strategy<Value = Literal> {
    (
        vec(1u8..=255, 0..40),
        prop_oneof![Just(LiteralMode::Sync), Just(LiteralMode::NonSync)],
    )
        .prop_map(|(d, m)| Literal::new(d, m).unwrap())
}
fn istring() -> impl Strategy<Value = IString> {
    prop_oneof![
        3 => quoted().prop_map(IString::Quoted),
        1 => literal().prop_map(IString::Literal),
    ]
}
fn nstring() -> impl Strategy<Value = NString> {
    option::of(istring())
}
fn astring() -> impl Strategy<Value = AString> {
    prop_oneof![
        "[A-Za-z0-9$!#&'+,\\-./:;<=>?@^_`|~}\\]]{1,12}"
            .prop_filter("not NIL-like", |s: &String| !s.eq_ignore_ascii_case("NIL"))
            .prop_map(|s| AString::Atom(AtomExt::new(s).unwrap())),
        istring().prop_map(AString::String),
    ]
}
fn mailbox() -> impl Strategy<Value = Mailbox> {
    astring().prop_map(Mailbox::new)
}
fn nz() -> impl Strategy<Value = u32> {
    1u32..=u32::MAX
}
fn num64() -> impl Strategy<Value = u64> {
    0u64..=(i64::MAX as u64)
}
fn seq_number() -> impl Strategy<Value = SeqNumber> {
    prop_oneof![
        4 => nz().prop_map(|n| SeqNumber::Value(NonZeroU32::new(n).unwrap())),
        1 => Just(SeqNumber::Largest),
    ]
}
fn sequence_set() -> impl Strategy<Value = SequenceSet> {
    prop_oneof![
        10 => vec(
            prop_oneof![
                seq_number().prop_map(Sequence::Single),
                (seq_number(), seq_number()).prop_map(|(a, b)| Sequence::Range(a, b)),
            ],
            1..4
        )
        .prop_map(|v| SequenceSet::new(v).unwrap()),
        1 => Just(SequenceSet::saved()),
    ]
}
fn flag() -> impl Strategy<Value = Flag> {
    prop_oneof![
        Just(Flag::Answered),
        Just(Flag::Flagged),
        Just(Flag::Deleted),
        Just(Flag::Seen),
        Just(Flag::Draft),
        atom_text().prop_map(|s| Flag::Keyword(Atom::new(s).unwrap())),
        atom_text().prop_map(|s| Flag::system(Atom::new(format!("X{s}")).unwrap())),
    ]
}
fn date() -> impl Strategy<Value = Date> {
    (1000u16..=9999, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| Date::new(y, m, d).unwrap())
}
fn date_time() -> impl Strategy<Value = DateTime> {
    (date(), 0u8..24, 0u8..60, 0u8..61, -5999i16..=5999)
        .prop_map(|(d, h, m, s, z)| DateTime::new(d, h, m, s, z).unwrap())
}

// ---- commands --------------------------------------------------------------------------------

fn search_key() -> impl Strategy<Value = SearchKey> {
    use SearchKey as K;
    let leaf = prop_oneof![
        Just(K::All),
        Just(K::Answered),
        Just(K::Deleted),
        Just(K::Draft),
        Just(K::Flagged),
        Just(K::New),
        Just(K::Old),
        Just(K::Recent),
        Just(K::Seen),
        Just(K::Unanswered),
        Just(K::Undeleted),
        Just(K::Undraft),
        Just(K::Unflagged),
        Just(K::Unseen),
        astring().prop_map(K::Bcc),
        astring().prop_map(K::Body),
        astring().prop_map(K::Cc),
        astring().prop_map(K::From),
        astring().prop_map(K::Subject),
        astring().prop_map(K::Text),
        astring().prop_map(K::To),
        date().prop_map(K::Before),
        date().prop_map(K::On),
        date().prop_map(K::Since),
        date().prop_map(K::SentBefore),
        date().prop_map(K::SentOn),
        date().prop_map(K::SentSince),
        num64().prop_map(K::Larger),
        num64().prop_map(K::Smaller),
        atom().prop_map(K::Keyword),
        atom().prop_map(K::Unkeyword),
        (astring(), astring()).prop_map(|(a, b)| K::Header(a, b)),
        sequence_set().prop_map(K::Uid),
        sequence_set().prop_map(K::SequenceSet),
    ];
    leaf.prop_recursive(4, 16, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|k| K::Not(Box::new(k))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| K::Or(Box::new(a), Box::new(b))),
            vec(inner, 1..4).prop_map(K::And),
        ]
    })
}

fn part() -> impl Strategy<Value = Vec<u32>> {
    vec(nz(), 0..4)
}
fn section() -> impl Strategy<Value = Section> {
    (part(), 0u8..6, vec(astring(), 1..3)).prop_map(|(part, t, fields)| {
        let text = match t {
            0 => None,
            1 => Some(SectionText::Header),
            2 => Some(SectionText::Text),
            3 => Some(SectionText::HeaderFields(fields)),
            4 => Some(SectionText::HeaderFieldsNot(fields)),
            _ if part.is_empty() => None,
            _ => Some(SectionText::Mime),
        };
        Section { part, text }
    })
}
fn partial() -> impl Strategy<Value = Option<(u32, u32)>> {
    option::of((any::<u32>(), nz()))
}
fn fetch_attribute() -> impl Strategy<Value = FetchAttribute> {
    use FetchAttribute as F;
    prop_oneof![
        Just(F::Envelope),
        Just(F::Flags),
        Just(F::InternalDate),
        Just(F::Rfc822Size),
        Just(F::Rfc822),
        Just(F::Rfc822Header),
        Just(F::Rfc822Text),
        Just(F::Body),
        Just(F::BodyStructure),
        Just(F::Uid),
        Just(F::ModSeq),
        (any::<bool>(), section(), partial()).prop_map(|(peek, section, partial)| {
            F::BodySection {
                peek,
                section,
                partial,
            }
        }),
        (any::<bool>(), part(), partial()).prop_map(|(peek, part, partial)| F::Binary {
            peek,
            part,
            partial
        }),
        part().prop_map(F::BinarySize),
    ]
}
fn status_attribute() -> impl Strategy<Value = StatusAttribute> {
    proptest::sample::select(StatusAttribute::ALL.to_vec())
}
fn list_mailbox() -> impl Strategy<Value = ListMailbox> {
    prop_oneof![
        "[A-Za-z0-9%*\\]/.]{1,10}".prop_map(|s| ListMailbox::Token(ListToken::new(s).unwrap())),
        istring().prop_map(ListMailbox::String),
    ]
}
fn id_params() -> impl Strategy<Value = Option<Vec<(IString, NString)>>> {
    option::of(vec((istring(), nstring()), 0..3))
}

fn command_body() -> impl Strategy<Value = CommandBody> {
    use CommandBody as C;
    let simple = prop_oneof![
        Just(C::Capability),
        Just(C::Noop),
        Just(C::Logout),
        Just(C::StartTls),
        Just(C::Namespace),
        Just(C::Idle),
        Just(C::Check),
        Just(C::Close),
        Just(C::Unselect),
        Just(C::Expunge),
    ];
    let mailboxes = prop_oneof![
        mailbox().prop_map(C::Select),
        mailbox().prop_map(C::Examine),
        mailbox().prop_map(C::Create),
        mailbox().prop_map(C::Delete),
        mailbox().prop_map(C::Subscribe),
        mailbox().prop_map(C::Unsubscribe),
        (mailbox(), mailbox()).prop_map(|(from, to)| C::Rename { from, to }),
        (mailbox(), list_mailbox()).prop_map(|(reference, pattern)| C::Lsub { reference, pattern }),
        (mailbox(), vec(status_attribute(), 1..4))
            .prop_map(|(mailbox, items)| C::Status { mailbox, items }),
    ];
    let auth = prop_oneof![
        (atom(), option::of(vec(any::<u8>(), 0..20))).prop_map(|(mechanism, ir)| {
            C::Authenticate {
                mechanism,
                initial_response: ir.map(Secret::new),
            }
        }),
        (astring(), astring()).prop_map(|(username, p)| C::Login {
            username,
            password: Secret::new(p)
        }),
        vec(atom(), 1..3).prop_map(C::Enable),
        id_params().prop_map(C::Id),
    ];
    let list = (
        vec(
            prop_oneof![
                Just(ListSelectOption::Subscribed),
                Just(ListSelectOption::Remote),
                Just(ListSelectOption::RecursiveMatch),
                Just(ListSelectOption::SpecialUse),
                "X[A-Z]{1,5}".prop_map(|s| ListSelectOption::Other(Atom::new(s).unwrap())),
            ],
            0..3,
        ),
        mailbox(),
        vec(list_mailbox(), 1..3),
        any::<bool>(),
        option::of(vec(
            prop_oneof![
                Just(ListReturnOption::Subscribed),
                Just(ListReturnOption::Children),
                Just(ListReturnOption::SpecialUse),
                vec(status_attribute(), 1..3).prop_map(ListReturnOption::Status),
                "X[A-Z]{1,5}".prop_map(|s| ListReturnOption::Other(Atom::new(s).unwrap())),
            ],
            0..3,
        )),
    )
        .prop_map(|(selection, reference, patterns, paren, returns)| C::List {
            selection,
            reference,
            patterns_parenthesized: paren || patterns.len() != 1,
            patterns,
            returns,
        });
    let append = (
        mailbox(),
        option::of(vec(flag(), 0..3)),
        option::of(date_time()),
        prop_oneof![
            literal(),
            vec(any::<u8>(), 0..20).prop_map(|d| Literal::binary(d, LiteralMode::Sync))
        ],
    )
        .prop_map(|(mailbox, flags, date, message)| C::Append {
            mailbox,
            flags,
            date,
            message,
        });
    let select = prop_oneof![
        sequence_set().prop_map(C::UidExpunge),
        (
            any::<bool>(),
            option::of(vec(
                proptest::sample::select(vec![
                    SearchReturnOption::Min,
                    SearchReturnOption::Max,
                    SearchReturnOption::All,
                    SearchReturnOption::Count,
                    SearchReturnOption::Save,
                ]),
                0..3
            )),
            option::of(astring()),
            vec(search_key(), 1..3)
        )
            .prop_map(|(uid, returns, charset, criteria)| C::Search {
                uid,
                returns,
                charset,
                criteria
            }),
        (
            any::<bool>(),
            sequence_set(),
            prop_oneof![
                Just(FetchItems::All),
                Just(FetchItems::Fast),
                Just(FetchItems::Full),
                fetch_attribute().prop_map(FetchItems::Single),
                vec(fetch_attribute(), 1..4).prop_map(FetchItems::List),
            ]
        )
            .prop_map(|(uid, set, items)| C::Fetch { uid, set, items }),
        (
            any::<bool>(),
            sequence_set(),
            proptest::sample::select(vec![StoreKind::Add, StoreKind::Remove, StoreKind::Replace]),
            any::<bool>(),
            vec(flag(), 0..3),
            any::<bool>()
        )
            .prop_map(|(uid, set, kind, silent, flags, paren)| C::Store {
                uid,
                set,
                kind,
                silent,
                parenthesized: paren || flags.is_empty(),
                flags,
            }),
        (any::<bool>(), sequence_set(), mailbox()).prop_map(|(uid, set, mailbox)| C::Copy {
            uid,
            set,
            mailbox
        }),
        (any::<bool>(), sequence_set(), mailbox()).prop_map(|(uid, set, mailbox)| C::Move {
            uid,
            set,
            mailbox
        }),
    ];
    prop_oneof![simple, mailboxes, auth, list, append, select]
}

fn command() -> impl Strategy<Value = Command> {
    (tag(), command_body()).prop_map(|(tag, body)| Command { tag, body })
}

// ---- responses -------------------------------------------------------------------------------

fn code() -> impl Strategy<Value = Code> {
    prop_oneof![
        Just(Code::Alert),
        Just(Code::Parse),
        Just(Code::ReadOnly),
        Just(Code::ReadWrite),
        Just(Code::TryCreate),
        vec(astring(), 0..3).prop_map(Code::BadCharset),
        vec(atom(), 0..3).prop_map(Code::Capability),
        vec(
            prop_oneof![flag().prop_map(FlagPerm::Flag), Just(FlagPerm::Any)],
            0..3
        )
        .prop_map(Code::PermanentFlags),
        nz().prop_map(Code::UidNext),
        nz().prop_map(Code::UidValidity),
        nz().prop_map(Code::Unseen),
        (nz(), sequence_set())
            .prop_map(|(uid_validity, uids)| Code::AppendUid { uid_validity, uids }),
        (nz(), sequence_set(), sequence_set()).prop_map(|(uid_validity, source, destination)| {
            Code::CopyUid {
                uid_validity,
                source,
                destination,
            }
        }),
        ("X-[A-Z]{1,8}", option::of("[a-z0-9][a-z0-9 ]{0,10}"))
            .prop_map(|(a, t)| Code::Other(Atom::new(a).unwrap(), t)),
    ]
}

fn address() -> impl Strategy<Value = Address> {
    (nstring(), nstring(), nstring(), nstring()).prop_map(|(name, adl, mailbox, host)| Address {
        name,
        adl,
        mailbox,
        host,
    })
}
fn addresses() -> impl Strategy<Value = Option<Vec<Address>>> {
    option::of(vec(address(), 1..3))
}
fn envelope() -> impl Strategy<Value = Envelope> {
    (
        (nstring(), nstring(), addresses(), addresses(), addresses()),
        (addresses(), addresses(), addresses(), nstring(), nstring()),
    )
        .prop_map(
            |((date, subject, from, sender, reply_to), (to, cc, bcc, in_reply_to, message_id))| {
                Envelope {
                    date,
                    subject,
                    from,
                    sender,
                    reply_to,
                    to,
                    cc,
                    bcc,
                    in_reply_to,
                    message_id,
                }
            },
        )
}
fn body_extension() -> impl Strategy<Value = BodyExtension> {
    prop_oneof![
        nstring().prop_map(BodyExtension::NString),
        num64().prop_map(BodyExtension::Number),
    ]
    .prop_recursive(2, 6, 3, |inner| {
        vec(inner, 1..3).prop_map(BodyExtension::List)
    })
}
fn body_fields() -> impl Strategy<Value = BodyFields> {
    (
        option::of(vec((istring(), istring()), 1..3)),
        nstring(),
        nstring(),
        istring(),
        num64(),
    )
        .prop_map(|(params, id, description, encoding, octets)| BodyFields {
            params,
            id,
            description,
            encoding,
            octets,
        })
}
fn q(s: &str) -> IString {
    IString::Quoted(Quoted::new(s).unwrap())
}
fn body() -> impl Strategy<Value = Body> {
    let leaf = (
        body_fields(),
        prop_oneof![Just(0u8), Just(1u8)],
        num64(),
        vec(body_extension(), 0..4),
    )
        .prop_map(|(fields, kind, lines, extension)| {
            let (media_type, subtype, specific) = if kind == 0 {
                (q("TEXT"), q("PLAIN"), PartSpecific::Text { lines })
            } else {
                (q("IMAGE"), q("PNG"), PartSpecific::Basic)
            };
            Body::Single(SinglePart {
                media_type,
                subtype,
                fields,
                specific,
                extension,
            })
        });
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (vec(inner.clone(), 1..3), vec(body_extension(), 0..3)).prop_map(
                |(parts, extension)| Body::Multi {
                    parts,
                    subtype: q("MIXED"),
                    extension,
                }
            ),
            (
                body_fields(),
                envelope(),
                inner,
                num64(),
                vec(body_extension(), 0..2)
            )
                .prop_map(|(fields, env, b, lines, extension)| Body::Single(
                    SinglePart {
                        media_type: q("MESSAGE"),
                        subtype: q("RFC822"),
                        fields,
                        specific: PartSpecific::Message {
                            envelope: Box::new(env),
                            body: Box::new(b),
                            lines,
                        },
                        extension,
                    }
                )),
        ]
    })
}
fn fetch_value() -> impl Strategy<Value = FetchValue> {
    use FetchValue as F;
    prop_oneof![
        vec(flag(), 0..3).prop_map(F::Flags),
        nz().prop_map(F::Uid),
        num64().prop_map(F::Rfc822Size),
        date_time().prop_map(F::InternalDate),
        envelope().prop_map(|e| F::Envelope(Box::new(e))),
        body().prop_map(|b| F::BodyStructure(Box::new(b))),
        body().prop_map(|b| F::Body(Box::new(b))),
        (section(), option::of(any::<u32>()), nstring()).prop_map(|(section, origin, data)| {
            F::BodySection {
                section,
                origin,
                data,
            }
        }),
        (
            part(),
            option::of(any::<u32>()),
            prop_oneof![
                nstring(),
                vec(any::<u8>(), 0..10)
                    .prop_map(|d| Some(IString::Literal(Literal::binary(d, LiteralMode::Sync))))
            ]
        )
            .prop_map(|(part, origin, data)| F::Binary { part, origin, data }),
        (part(), num64()).prop_map(|(part, size)| F::BinarySize { part, size }),
        nstring().prop_map(F::Rfc822),
        nstring().prop_map(F::Rfc822Header),
        nstring().prop_map(F::Rfc822Text),
        num64().prop_map(F::ModSeq),
    ]
}
fn delimiter() -> impl Strategy<Value = Option<char>> {
    option::of(prop_oneof![
        Just('/'),
        Just('.'),
        Just('\\'),
        Just('"'),
        Just('日')
    ])
}
fn ext_value() -> impl Strategy<Value = ExtValue> {
    prop_oneof![
        num64().prop_map(ExtValue::Number),
        istring().prop_map(|s| ExtValue::AString(AString::String(s))),
    ]
    .prop_recursive(2, 6, 3, |inner| vec(inner, 0..3).prop_map(ExtValue::List))
}
fn list_data() -> impl Strategy<Value = ListData> {
    (
        vec(atom().prop_map(MailboxAttr), 0..3),
        delimiter(),
        mailbox(),
        vec((astring(), ext_value()), 0..2),
    )
        .prop_map(|(attributes, delimiter, mailbox, extended)| ListData {
            attributes,
            delimiter,
            mailbox,
            extended,
        })
}
fn data() -> impl Strategy<Value = Data> {
    prop_oneof![
        vec(atom(), 0..4).prop_map(Data::Capability),
        vec(atom(), 0..4).prop_map(Data::Enabled),
        list_data().prop_map(Data::List),
        list_data().prop_map(Data::Lsub),
        (mailbox(), vec((status_attribute(), num64()), 0..4))
            .prop_map(|(mailbox, items)| Data::Status { mailbox, items }),
        vec(nz(), 0..5).prop_map(Data::Search),
        (
            option::of(tag()),
            any::<bool>(),
            vec(
                prop_oneof![
                    nz().prop_map(ESearchItem::Min),
                    nz().prop_map(ESearchItem::Max),
                    any::<u32>().prop_map(ESearchItem::Count),
                    sequence_set().prop_map(ESearchItem::All),
                    num64().prop_map(ESearchItem::ModSeq),
                ],
                0..4
            )
        )
            .prop_map(|(tag, uid, items)| Data::ESearch { tag, uid, items }),
        vec(flag(), 0..5).prop_map(Data::Flags),
        any::<u32>().prop_map(Data::Exists),
        any::<u32>().prop_map(Data::Recent),
        nz().prop_map(Data::Expunge),
        (nz(), vec(fetch_value(), 1..4)).prop_map(|(seq, items)| Data::Fetch { seq, items }),
        [
            option::of(vec((istring(), delimiter()), 1..3)),
            option::of(vec((istring(), delimiter()), 1..3)),
            option::of(vec((istring(), delimiter()), 1..3)),
        ]
        .prop_map(|ns| Data::Namespace(ns.map(|n| n.map(|v| {
            v.into_iter()
                .map(|(prefix, delimiter)| NamespaceDescr { prefix, delimiter })
                .collect()
        })))),
        id_params().prop_map(Data::Id),
    ]
}
fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        1 => (option::of(code()), text()).prop_map(|(code, text)| Response::Continue(Continue {
            code,
            text
        })),
        2 => (
            option::of(tag()),
            0u8..5,
            option::of(code()),
            text()
        )
            .prop_map(|(tag, k, code, text)| {
                let kind = match (k, &tag) {
                    (0, _) => StatusKind::Ok,
                    (1, _) => StatusKind::No,
                    (2, _) => StatusKind::Bad,
                    (3, None) => StatusKind::PreAuth,
                    (_, None) => StatusKind::Bye,
                    (_, Some(_)) => StatusKind::Ok,
                };
                Response::Status(StatusResponse {
                    tag,
                    kind,
                    code,
                    text,
                })
            }),
        4 => data().prop_map(Response::Data),
    ]
}

fn limits() -> FramingLimits {
    FramingLimits::default()
}

// 256 cases per property by default; a longer campaign: `PROPTEST_CASES=20000 cargo test
// --release -p mailroom-imap-proto --test proptest`.
proptest! {

    #[test]
    fn commands_round_trip(c in command()) {
        let bytes = c.to_bytes();
        let d = decode_command(&bytes, &limits());
        prop_assert_eq!(
            d,
            Ok(Decoded::Done { value: c, consumed: bytes.len() }),
            "{}", String::from_utf8_lossy(&bytes)
        );
    }

    #[test]
    fn responses_round_trip(r in response()) {
        let bytes = r.to_bytes();
        let d = decode_response(&bytes, &limits());
        prop_assert_eq!(
            d,
            Ok(Decoded::Done { value: r, consumed: bytes.len() }),
            "{}", String::from_utf8_lossy(&bytes)
        );
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        let _ = decode_command(&bytes, &limits());
        let _ = decode_response(&bytes, &limits());
        mailroom_imap_proto::fuzzing::command_parser(&bytes);
        mailroom_imap_proto::fuzzing::response_parser(&bytes);
        mailroom_imap_proto::fuzzing::framing(&bytes);
        mailroom_imap_proto::fuzzing::server_session(&bytes);
    }

    #[test]
    fn imap_looking_bytes_never_panic(
        parts in vec(prop_oneof![
            Just("a1 ".to_string()), Just("* ".to_string()), Just("(".to_string()),
            Just(")".to_string()), Just("{3}\r\n".to_string()), Just("{2+}\r\n".to_string()),
            Just("\r\n".to_string()), Just("\"".to_string()), Just(" ".to_string()),
            Just("FETCH".to_string()), Just("BODY[".to_string()), Just("NIL".to_string()),
            Just("LOGIN".to_string()), Just("SEARCH".to_string()), Just("OR".to_string()),
            "[a-z0-9:*,\\\\\\]]{1,4}",
        ], 0..40)
    ) {
        let bytes = parts.concat().into_bytes();
        let _ = decode_command(&bytes, &limits());
        let _ = decode_response(&bytes, &limits());
        mailroom_imap_proto::fuzzing::server_session(&bytes);
    }

    #[test]
    fn command_stream_split_anywhere_gives_the_same_frames(
        cs in vec(command(), 1..4), cut in any::<prop::sample::Index>()
    ) {
        let stream: Vec<u8> = cs.iter().flat_map(|c| c.to_bytes()).collect();
        let cut = cut.index(stream.len() + 1);
        let frames = |chunks: &[&[u8]]| {
            let mut f = CommandFramer::new(limits());
            let mut out = Vec::new();
            for chunk in chunks {
                f.push(chunk);
                loop {
                    match f.next_event() {
                        FrameEvent::Incomplete => break,
                        FrameEvent::Command(c) => out.push(c),
                        FrameEvent::LiteralAnnounced { .. } => f.accept_literal(),
                        FrameEvent::Rejected { error, .. } => panic!("{error}"),
                        FrameEvent::LiteralData { .. } => panic!("nothing is streamed here"),
                    }
                }
            }
            out
        };
        let whole = frames(&[&stream]);
        prop_assert_eq!(&whole, &frames(&[&stream[..cut], &stream[cut..]]));
        let parsed: Vec<Command> = whole
            .iter()
            .map(|f| mailroom_imap_proto::parse_command(f).unwrap())
            .collect();
        prop_assert_eq!(parsed, cs);
        // The stateless decoder agrees on any prefix: not enough yet, or the first command.
        match decode_command(&stream[..cut], &limits()).unwrap() {
            Decoded::Incomplete => {}
            Decoded::Done { consumed, .. } => prop_assert_eq!(consumed, whole[0].len()),
        }
    }

    #[test]
    fn response_stream_split_anywhere_decodes_the_same(
        rs in vec(response(), 1..4), cut in any::<prop::sample::Index>()
    ) {
        let stream: Vec<u8> = rs.iter().flat_map(|r| r.to_bytes()).collect();
        let cut = cut.index(stream.len() + 1);
        let first_len = rs[0].to_bytes().len();
        match decode_response(&stream[..cut], &limits()).unwrap() {
            Decoded::Incomplete => prop_assert!(cut < first_len),
            Decoded::Done { value, consumed } => {
                prop_assert_eq!(consumed, first_len);
                prop_assert_eq!(&value, &rs[0]);
            }
        }
    }

    #[test]
    fn session_output_does_not_depend_on_how_input_is_split(
        cs in vec(command(), 1..5), cut in any::<prop::sample::Index>()
    ) {
        let stream: Vec<u8> = cs.iter().flat_map(|c| c.to_bytes()).collect();
        let cut = cut.index(stream.len() + 1);
        let run = |chunks: &[&[u8]]| {
            let now = Instant::now();
            let mut s = ServerSession::new(ServerConfig::default(), now);
            let mut out = Vec::new();
            for chunk in chunks {
                s.handle_input(now, chunk);
                loop {
                    if let Some(o) = s.poll_transmit() {
                        out.extend(o);
                    }
                    match s.poll_event() {
                        Some(Event::Command { token, .. } | Event::Login { token, .. }) => {
                            s.respond(token, Answer::ok("done")).unwrap();
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
            }
            out
        };
        prop_assert_eq!(run(&[&stream]), run(&[&stream[..cut], &stream[cut..]]));
    }

    #[test]
    fn streamed_appends_do_not_depend_on_how_input_is_split(
        cs in vec(command(), 1..5), cut in any::<prop::sample::Index>()
    ) {
        let mut stream = b"a LOGIN u p\r\n".to_vec();
        stream.extend(cs.iter().flat_map(|c| c.to_bytes()));
        let cut = cut.index(stream.len() + 1);
        let run = |chunks: &[&[u8]]| {
            let now = Instant::now();
            let config = ServerConfig {
                stream_append_from: Some(4),
                ..ServerConfig::default()
            };
            let mut s = ServerSession::new(config, now);
            let (mut out, mut message, mut token) = (Vec::new(), Vec::new(), None);
            for chunk in chunks {
                s.handle_input(now, chunk);
                loop {
                    if let Some(o) = s.poll_transmit() {
                        out.extend(o);
                    }
                    match s.poll_event() {
                        Some(Event::Command { token, .. } | Event::Login { token, .. }) => {
                            s.respond(token, Answer::ok("done")).unwrap();
                        }
                        Some(Event::AppendStart { token: t, .. }) => token = Some(t),
                        Some(Event::AppendData(d)) => message.extend(d),
                        Some(Event::AppendEnd) => {
                            s.respond(token.take().unwrap(), Answer::ok("appended")).unwrap();
                        }
                        Some(Event::AppendAborted) => token = None,
                        Some(_) => {}
                        None => break,
                    }
                }
            }
            (out, message)
        };
        prop_assert_eq!(run(&[&stream]), run(&[&stream[..cut], &stream[cut..]]));
    }
}
