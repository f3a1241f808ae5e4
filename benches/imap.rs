//! IMAP codec benches: parsing a realistic command mix (server side) and encoding FETCH responses
//! (server side), each beside imap-codec doing the same work on the same bytes in the same run,
//! plus parsing those FETCH responses (client side).
//!
//! Names: `imap/parse_commands/{mailroom,imap-codec}`, `imap/encode_fetch/{...}`,
//! `imap/parse_fetch/{...}`; throughput in bytes of wire data.

// Bench set-up: a fixture that fails to build should stop the bench with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::{CommandCodec, ResponseCodec};
use mailroom::imap::codec::Encode;
use mailroom::imap::framing::FramingLimits;
use mailroom::imap::types::Response;
use mailroom::imap::{Decoded, decode_command, decode_response};

/// What a mail client sends in a typical session (Thunderbird/mutt-like), literals included.
fn command_mix() -> Vec<u8> {
    let message = "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: lunch\r\n\r\nShall we meet at noon?\r\n".repeat(10);
    let lines = [
        "a1 CAPABILITY".to_string(),
        "a2 LOGIN \"alice@example.org\" \"correct horse battery\"".to_string(),
        "a3 LIST \"\" \"*\"".to_string(),
        "a4 STATUS \"Sent Items\" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)".to_string(),
        "a5 SELECT INBOX".to_string(),
        "a6 UID FETCH 1:* (FLAGS)".to_string(),
        "a7 UID FETCH 4001:4100 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO CC BCC SUBJECT DATE MESSAGE-ID PRIORITY X-PRIORITY REFERENCES NEWSGROUPS IN-REPLY-TO CONTENT-TYPE REPLY-TO)])".to_string(),
        "a8 UID FETCH 4096 (UID RFC822.SIZE BODY.PEEK[])".to_string(),
        "a9 UID FETCH 4096 (BODYSTRUCTURE ENVELOPE INTERNALDATE)".to_string(),
        "b1 UID STORE 4096 +FLAGS.SILENT (\\Seen)".to_string(),
        "b2 UID SEARCH UNDELETED SINCE 1-Feb-2024 OR FROM \"alice\" SUBJECT \"lunch\"".to_string(),
        "b3 NOOP".to_string(),
        "b4 UID COPY 4090:4096 \"Archive/2024\"".to_string(),
        "b5 UID STORE 4090:4096 +FLAGS.SILENT (\\Deleted)".to_string(),
        "b6 UID EXPUNGE 4090:4096".to_string(),
        format!("b7 APPEND \"Sent Items\" (\\Seen) {{{}+}}\r\n{message}", message.len()),
        "b8 FETCH 1:20 (FLAGS UID)".to_string(),
        "b9 EXAMINE Drafts".to_string(),
        "c1 LOGOUT".to_string(),
    ];
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// FETCH responses as a server sends them while a client syncs a mailbox: headers, structure,
/// flags, and a 4 KiB message body as a literal.
fn fetch_responses() -> Vec<u8> {
    let body = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. \r\n".repeat(70);
    let mut out = Vec::new();
    for n in 1..=20u32 {
        out.extend_from_slice(format!(
            "* {n} FETCH (UID {uid} FLAGS (\\Seen $Forwarded) RFC822.SIZE 4286 INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\") BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23 NIL NIL NIL NIL)(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"cc.diff\") \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 NIL (\"ATTACHMENT\" (\"FILENAME\" \"cc.diff\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"b1\") NIL NIL NIL))\r\n",
            uid = 4000 + n
        ).as_bytes());
        out.extend_from_slice(
            format!(
                "* {n} FETCH (UID {} BODY[] {{{}}}\r\n{body})\r\n",
                4000 + n,
                body.len()
            )
            .as_bytes(),
        );
    }
    out
}

fn ours_parse_all_commands(mut input: &[u8], limits: &FramingLimits) -> usize {
    let mut n = 0;
    while !input.is_empty() {
        match decode_command(input, limits).unwrap() {
            Decoded::Done { value, consumed } => {
                black_box(value);
                input = &input[consumed..];
                n += 1;
            }
            Decoded::Incomplete => panic!("incomplete fixture"),
        }
    }
    n
}

fn theirs_parse_all_commands(mut input: &[u8]) -> usize {
    let codec = CommandCodec::default();
    let mut n = 0;
    while !input.is_empty() {
        let (rest, cmd) = codec.decode(input).unwrap();
        black_box(cmd);
        input = rest;
        n += 1;
    }
    n
}

fn ours_parse_all_responses(mut input: &[u8], limits: &FramingLimits) -> Vec<Response> {
    let mut out = Vec::new();
    while !input.is_empty() {
        match decode_response(input, limits).unwrap() {
            Decoded::Done { value, consumed } => {
                out.push(value);
                input = &input[consumed..];
            }
            Decoded::Incomplete => panic!("incomplete fixture"),
        }
    }
    out
}

fn theirs_parse_all_responses(
    mut input: &[u8],
) -> Vec<imap_codec::imap_types::response::Response<'_>> {
    let codec = ResponseCodec::default();
    let mut out = Vec::new();
    while !input.is_empty() {
        let (rest, r) = codec.decode(input).unwrap();
        out.push(r);
        input = rest;
    }
    out
}

fn bench(c: &mut Criterion) {
    let limits = FramingLimits {
        max_nonsync_literal: None,
        ..FramingLimits::default()
    };

    let commands = command_mix();
    // Both sides must accept the whole mix, or the comparison would be unfair.
    let count = ours_parse_all_commands(&commands, &limits);
    assert_eq!(count, theirs_parse_all_commands(&commands));
    let mut g = c.benchmark_group("imap/parse_commands");
    g.throughput(Throughput::Bytes(commands.len() as u64));
    g.bench_function("mailroom", |b| {
        b.iter(|| ours_parse_all_commands(black_box(&commands), &limits))
    });
    g.bench_function("imap-codec", |b| {
        b.iter(|| theirs_parse_all_commands(black_box(&commands)))
    });
    g.finish();

    let wire = fetch_responses();
    let ours = ours_parse_all_responses(&wire, &limits);
    let theirs = theirs_parse_all_responses(&wire);
    assert_eq!(ours.len(), theirs.len());
    let mut encoded = Vec::new();
    for r in &ours {
        r.encode(&mut encoded);
    }
    // Our encoder reproduces the wire bytes exactly; imap-codec's output is the same size.
    assert_eq!(encoded, wire);
    let codec = ResponseCodec::default();
    let theirs_len: usize = theirs.iter().map(|r| codec.encode(r).dump().len()).sum();
    assert_eq!(theirs_len, wire.len());

    let mut g = c.benchmark_group("imap/encode_fetch");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("mailroom", |b| {
        let mut out = Vec::with_capacity(wire.len());
        b.iter(|| {
            out.clear();
            for r in &ours {
                r.encode(&mut out);
            }
            black_box(out.len())
        })
    });
    g.bench_function("imap-codec", |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &theirs {
                n += black_box(codec.encode(r).dump()).len();
            }
            n
        })
    });
    g.finish();

    let mut g = c.benchmark_group("imap/parse_fetch");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("mailroom", |b| {
        b.iter(|| ours_parse_all_responses(black_box(&wire), &limits).len())
    });
    g.bench_function("imap-codec", |b| {
        b.iter(|| theirs_parse_all_responses(black_box(&wire)).len())
    });
    g.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
