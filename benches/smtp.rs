//! SMTP benches.
//!
//! - `smtp/data/decode_10mib`: the DATA decoder over a realistic 10 MiB message (text lines of
//!   about 76 characters, some starting with a stuffed "."), through `decode` on a slice;
//!   `decode_buf_10mib` the same through `decode_buf` on a `BytesMut`, as the server session
//!   calls it; `encode_10mib` the client-side encoder over the same content.
//! - `smtp/data/memchr_scan_10mib`: a plain `memchr` scan over the same buffer that visits
//!   every '\n', in the same run: the decoder's figure is read as a ratio to it (goal: at
//!   least 0.5x). `memchr_count_10mib` only counts the '\n' (memchr's counting fast path,
//!   which never stops at a match): shown for reference, it is not a scan a decoder can match.
//!
//! - `smtp/command/parse_mix`: decoding a realistic mix of command lines (the commands of a
//!   day of submission and relay traffic: EHLO, MAIL with parameters, several RCPTs, DATA,
//!   RSET, NOOP, QUIT, AUTH), reported per command; `encode_mix` the client-side encoding of
//!   the same commands; `memchr_lines_mix` finds the line ends of the same bytes, the framing
//!   a session does before it decodes.
//!
//! Run with `cargo bench --bench smtp`.

// Benches unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput};
use mailroom::smtp::data::{DataConfig, DataDecoder, DataEncoder, DataEvent};
use mailroom::smtp::{Command, Limits};

const TEN_MIB: usize = 10 * 1024 * 1024;

/// A message of about `size` octets of content: headers, then text lines of 60 to 76
/// characters; one line in 40 starts with "." (stuffed on the wire).
fn message_content(size: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "message",
        "queue",
        "delivery",
        "of",
        "mail",
        "server",
        "and",
        "a",
        "to",
        "recipient",
        "transport",
        "relay",
        "domain",
        "status",
        "lookup",
        "with",
        "is",
        "for",
        "envelope",
        "header",
        "body",
        "line",
        "text",
        "MIME",
        "boundary",
        "charset",
        "SMTP",
    ];
    let mut out = Vec::with_capacity(size + 100);
    out.extend_from_slice(
        b"Received: from client.example.org (client.example.org [192.0.2.1])\r\n\
          \tby mx.example.net (mailroom) with ESMTPS id 4XyZ; Sat, 21 Nov 2026 02:00:00 +0000\r\n\
          From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n\
          Subject: quarterly report\r\nMessage-ID: <report.1@example.org>\r\n\
          MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
    );
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut line_no = 0u64;
    while out.len() < size {
        let target = 60 + (line_no % 17) as usize;
        let mut line = Vec::with_capacity(80);
        if line_no % 40 == 7 {
            line.extend_from_slice(b"...continued from the previous page");
        }
        while line.len() < target {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if !line.is_empty() {
                line.push(b' ');
            }
            line.extend_from_slice(WORDS[(state % WORDS.len() as u64) as usize].as_bytes());
        }
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
        line_no += 1;
    }
    out
}

fn data(c: &mut Criterion) {
    let content = message_content(TEN_MIB);
    let wire = DataEncoder::encode_all(&content);
    // Sanity: the wire form decodes back to the content in one message.
    {
        let mut decoder = DataDecoder::new(DataConfig::default());
        let mut input = &wire[..];
        let mut decoded = Vec::with_capacity(content.len());
        loop {
            let step = decoder.decode(input);
            input = &input[step.consumed..];
            match step.event {
                Some(DataEvent::Content(piece)) => decoded.extend_from_slice(piece),
                Some(DataEvent::End(outcome)) => {
                    assert!(outcome.is_accepted());
                    break;
                }
                None => panic!("no end of data"),
            }
        }
        assert_eq!(decoded, content);
    }

    let mut group = c.benchmark_group("smtp/data");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.sample_size(30);

    // The baseline: find every '\n' and look at its position, the least a line-oriented
    // decoder must do.
    group.bench_function("memchr_scan_10mib", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for at in memchr::memchr_iter(b'\n', black_box(&wire)) {
                sum = sum.wrapping_add(at);
            }
            sum
        });
    });

    // For reference: `count()` on the iterator takes memchr's counting fast path, which
    // never stops at a match (several times faster than visiting each one).
    group.bench_function("memchr_count_10mib", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(&wire)).count());
    });

    group.bench_function("decode_10mib", |b| {
        b.iter(|| {
            let mut decoder = DataDecoder::new(DataConfig::default());
            let mut input = black_box(&wire[..]);
            let mut octets = 0usize;
            loop {
                let step = decoder.decode(input);
                input = &input[step.consumed..];
                match step.event {
                    Some(DataEvent::Content(piece)) => octets += black_box(piece).len(),
                    Some(DataEvent::End(_)) | None => break,
                }
            }
            octets
        });
    });

    group.bench_function("decode_buf_10mib", |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            |mut buf| {
                let mut decoder = DataDecoder::new(DataConfig::default());
                let mut octets = 0usize;
                while let Some(event) = decoder.decode_buf(&mut buf) {
                    match event {
                        DataEvent::Content(piece) => octets += black_box(piece).len(),
                        DataEvent::End(_) => break,
                    }
                }
                octets
            },
            criterion::BatchSize::LargeInput,
        );
    });

    group.bench_function("encode_10mib", |b| {
        let mut out = Vec::with_capacity(wire.len() + 64);
        b.iter(|| {
            out.clear();
            let mut encoder = DataEncoder::new();
            encoder.encode(black_box(&content), &mut out);
            encoder.finish(&mut out);
            out.len()
        });
    });

    group.finish();
}

/// Command lines as clients send them: one relay transaction to three recipients, one
/// submission with AUTH and DSN parameters, and the odd RSET, NOOP and VRFY.
const COMMAND_MIX: &[&str] = &[
    "EHLO mail-relay.example.org",
    "MAIL FROM:<newsletter-bounces+bob=example.net@lists.example.org> SIZE=48213 BODY=8BITMIME",
    "RCPT TO:<bob@example.net>",
    "RCPT TO:<carol.smith@example.net>",
    "RCPT TO:<dave@sub.example.net>",
    "DATA",
    "RSET",
    "EHLO [192.0.2.17]",
    "AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldCBwYXNzd29yZA==",
    "MAIL FROM:<alice@example.org> SIZE=1024 RET=HDRS ENVID=QQ314159 AUTH=alice@example.org",
    "RCPT TO:<Bob@Big-Bucks.COM> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Big-Bucks.COM",
    "RCPT TO:<\"john doe\"@example.com> NOTIFY=NEVER",
    "BDAT 4096 LAST",
    "NOOP",
    "VRFY postmaster",
    "QUIT",
];

fn command(c: &mut Criterion) {
    let limits = Limits::default();
    let commands: Vec<Command> = COMMAND_MIX
        .iter()
        .map(|line| Command::decode(line.as_bytes(), &limits, false).unwrap())
        .collect();
    let mut wire = Vec::new();
    for line in COMMAND_MIX {
        wire.extend_from_slice(line.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }

    let mut group = c.benchmark_group("smtp/command");
    group.throughput(Throughput::Elements(COMMAND_MIX.len() as u64));
    group.bench_function("parse_mix", |b| {
        b.iter(|| {
            for line in COMMAND_MIX {
                black_box(Command::decode(black_box(line.as_bytes()), &limits, false).unwrap());
            }
        });
    });
    group.bench_function("encode_mix", |b| {
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            out.clear();
            for cmd in &commands {
                black_box(cmd).encode(&mut out);
            }
            out.len()
        });
    });
    group.bench_function("memchr_lines_mix", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(&wire)).fold(0usize, |a, at| a ^ at));
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    data(&mut criterion);
    command(&mut criterion);
    criterion.final_summary();
}
