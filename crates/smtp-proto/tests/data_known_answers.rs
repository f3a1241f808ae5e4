//! Known answers for the DATA decoder and encoder and the BDAT reader, the SMTP smuggling
//! variants, and bounded memory on large streams.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use mailroom_smtp_proto::bdat::{BdatConfig, BdatError, BdatEvent, BdatReader, ChunkEnd};
use mailroom_smtp_proto::data::{
    BareNewline, DataConfig, DataDecoder, DataEncoder, DataEvent, DataOutcome, DataRejection,
};

/// Decodes `input` in one buffer: (content, outcome, bytes left for the command parser).
fn decode(input: &[u8], config: DataConfig) -> (Vec<u8>, Option<DataOutcome>, Vec<u8>) {
    let mut buf = BytesMut::from(input);
    let mut decoder = DataDecoder::new(config);
    let mut content = Vec::new();
    while let Some(event) = decoder.decode_buf(&mut buf) {
        match event {
            DataEvent::Content(piece) => content.extend_from_slice(&piece),
            DataEvent::End(outcome) => return (content, Some(outcome), buf.to_vec()),
        }
    }
    (content, None, buf.to_vec())
}

fn accept_bare() -> DataConfig {
    DataConfig {
        bare_newline: BareNewline::Accept,
        ..DataConfig::default()
    }
}

const ACCEPTED: fn(u64) -> Option<DataOutcome> = |size| Some(DataOutcome::Accepted { size });

#[test]
fn decoder_known_answers() {
    // (input after "DATA\r\n" and 354, content, remainder)
    let table: &[(&[u8], &[u8], &[u8])] = &[
        // "DATA\r\n.\r\n" is an empty message: the DATA line's CRLF starts the first line.
        (b".\r\n", b"", b""),
        (b".\r\nQUIT\r\n", b"", b"QUIT\r\n"),
        (b"\r\n.\r\n", b"\r\n", b""),
        // The CRLF before the final dot belongs to the message.
        (b"a\r\n.\r\n", b"a\r\n", b""),
        // RFC 5321 §4.5.2: a leading dot is deleted, stuffed or not.
        (b"..\r\n.\r\n", b".\r\n", b""),
        (b"...\r\n.\r\n", b"..\r\n", b""),
        (b".a\r\n.\r\n", b"a\r\n", b""),
        (b"a.\r\nb..\r\n.\r\n", b"a.\r\nb..\r\n", b""),
        (b". \r\n.\r\n", b" \r\n", b""),
        (
            b"Subject: t\r\n\r\n..\r\nline\r\n.\r\nMAIL FROM:<a@b.example>\r\n",
            b"Subject: t\r\n\r\n.\r\nline\r\n",
            b"MAIL FROM:<a@b.example>\r\n",
        ),
        // Only the first end counts; a second one is the command parser's problem.
        (b"a\r\n.\r\n.\r\n", b"a\r\n", b".\r\n"),
        // Lines of any length pass through (no line limit inside DATA, as in Postfix).
        (b"\xff\x00\r\n.\r\n", b"\xff\x00\r\n", b""),
    ];
    for &(input, content, rest) in table {
        let size = content.len() as u64;
        assert_eq!(
            decode(input, DataConfig::default()),
            (content.to_vec(), ACCEPTED(size), rest.to_vec()),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        // Encoding the content gives back input up to the end (the encoder stuffs every
        // leading dot, so only inputs without an unstuffed leading dot compare equal).
        if !content.iter().any(|&b| b == b'\r' || b == b'\n') || content.ends_with(b"\r\n") {
            let wire = DataEncoder::encode_all(content);
            assert_eq!(decode(&wire, DataConfig::default()).0, content);
        }
    }
}

#[test]
fn decoder_needs_more_input() {
    for input in [
        &b""[..],
        b"a",
        b"a\r\n",
        b"a\r\n.",
        b"a\r\n.\r",
        b"a\r\n..\r\n",
    ] {
        let (_, outcome, rest) = decode(input, DataConfig::default());
        assert_eq!(outcome, None, "{input:?}");
        assert!(rest.is_empty(), "an unfinished message uses all its input");
    }
}

#[test]
fn decoder_after_end_takes_nothing() {
    let mut decoder = DataDecoder::new(DataConfig::default());
    let decoded = decoder.decode(b".\r\n.\r\n");
    assert_eq!(decoded.consumed, 3);
    assert_eq!(
        decoded.event,
        Some(DataEvent::End(DataOutcome::Accepted { size: 0 }))
    );
    let again = decoder.decode(b".\r\n");
    assert_eq!((again.consumed, again.event), (0, None));
    assert!(decoder.is_done());
    assert_eq!(decoder.outcome(), Some(DataOutcome::Accepted { size: 0 }));
}

#[test]
fn slices_borrow_from_the_input() {
    let input = b"abc\r\n..def\r\n.\r\n";
    let mut decoder = DataDecoder::new(DataConfig::default());
    let first = decoder.decode(input);
    let Some(DataEvent::Content(piece)) = first.event else {
        panic!()
    };
    assert_eq!(piece, b"abc\r\n");
    assert!(
        std::ptr::eq(piece.as_ptr(), input.as_ptr()),
        "zero-copy piece"
    );
    assert_eq!(first.consumed, 6, "the deleted dot is used");
    let second = decoder.decode(&input[6..]);
    assert_eq!(second.event, Some(DataEvent::Content(&b".def\r\n"[..])));
}

#[test]
fn held_cr_across_inputs() {
    // "\r\n.\r" at the end of one input, then not LF: the CR is content (and bare).
    let mut decoder = DataDecoder::new(accept_bare());
    let a = decoder.decode(b"x\r\n.\r");
    assert_eq!(
        (a.consumed, a.event),
        (4, Some(DataEvent::Content(&b"x\r\n"[..])))
    );
    let b = decoder.decode(b"\r");
    assert_eq!((b.consumed, b.event), (1, None));
    let c = decoder.decode(b"y\r\n.\r\n");
    assert_eq!(
        (c.consumed, c.event),
        (0, Some(DataEvent::Content(&b"\r"[..])))
    );
    let d = decoder.decode(b"y\r\n.\r\n");
    assert_eq!(
        (d.consumed, d.event),
        (4, Some(DataEvent::Content(&b"y\r\n"[..])))
    );
    let e = decoder.decode(b"\r\n");
    assert_eq!(
        (e.consumed, e.event),
        (2, Some(DataEvent::End(DataOutcome::Accepted { size: 7 })))
    );
}

/// The end-of-data look-alikes of SMTP smuggling, each between "a" and "MAIL FROM...".
const SMUGGLING: &[(&[u8], &[u8], DataRejection)] = &[
    // (look-alike, what it becomes in the content, reason under the default policy)
    (b"\n.\n", b"\n.\n", DataRejection::BareLf),
    (b"\n.\r\n", b"\n.\r\n", DataRejection::BareLf),
    (b"\r.\r\n", b"\r.\r\n", DataRejection::BareCr),
    (b"\r\n.\r", b"\r\n\r", DataRejection::BareCr),
    (b"\r\n.\r\r\n", b"\r\n\r\r\n", DataRejection::BareCr),
];

#[test]
fn smuggling_variants_never_end_the_message() {
    for &(fake, in_content, reason) in SMUGGLING {
        let smuggled = b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n";
        let input = [b"a", fake, smuggled, b"x\r\n.\r\nQUIT\r\n"].concat();
        let expected = [b"a", in_content, smuggled, b"x\r\n"].concat();

        // Default: read to the real end, then refuse with Postfix's reply.
        let (content, outcome, rest) = decode(&input, DataConfig::default());
        let size = expected.len() as u64;
        assert_eq!(
            outcome,
            Some(DataOutcome::Rejected { reason, size }),
            "{fake:?}"
        );
        assert_eq!(
            rest, b"QUIT\r\n",
            "{fake:?}: one message, then the next command"
        );
        assert!(expected.starts_with(&content));
        assert!(reason.reply_line().starts_with("550 5.5.2 Error: bare <"));

        // With the option: it is content.
        let (content, outcome, rest) = decode(&input, accept_bare());
        assert_eq!(outcome, ACCEPTED(size), "{fake:?}");
        assert_eq!(content, expected, "{fake:?}");
        assert_eq!(rest, b"QUIT\r\n");

        // Split anywhere, the decoder agrees.
        for split in 0..=input.len() {
            let (_, outcome, rest) = decode_split(&input, split, DataConfig::default());
            assert_eq!(outcome, Some(DataOutcome::Rejected { reason, size }));
            assert_eq!(rest, b"QUIT\r\n");
            let (content, outcome, rest) = decode_split(&input, split, accept_bare());
            assert_eq!((content, outcome), (expected.clone(), ACCEPTED(size)));
            assert_eq!(rest, b"QUIT\r\n");
        }
    }
}

/// Decodes `input` given in two reads, split at `split`.
fn decode_split(
    input: &[u8],
    split: usize,
    config: DataConfig,
) -> (Vec<u8>, Option<DataOutcome>, Vec<u8>) {
    let mut decoder = DataDecoder::new(config);
    let mut content = Vec::new();
    let mut buf = BytesMut::from(&input[..split]);
    for next in [&input[split..], &b""[..]] {
        while let Some(event) = decoder.decode_buf(&mut buf) {
            match event {
                DataEvent::Content(piece) => content.extend_from_slice(&piece),
                DataEvent::End(outcome) => {
                    buf.extend_from_slice(next);
                    return (content, Some(outcome), buf.to_vec());
                }
            }
        }
        buf.extend_from_slice(next);
    }
    (content, None, buf.to_vec())
}

#[test]
fn bare_newline_replies_follow_postfix() {
    assert_eq!(
        DataRejection::BareLf.reply_line(),
        "550 5.5.2 Error: bare <LF> received"
    );
    assert_eq!(DataRejection::BareLf.code(), 550);
    assert_eq!(DataRejection::BareLf.enhanced_code(), (5, 5, 2));
    assert_eq!(
        DataRejection::BareCr.reply_text(),
        "Error: bare <CR> received"
    );
    let large = DataRejection::TooLarge { limit: 10 };
    assert_eq!(large.reply_line(), "552 5.3.4 Error: message file too big");
    assert_eq!((large.code(), large.enhanced_code()), (552, (5, 3, 4)));
    assert_eq!(
        large.to_string(),
        "message larger than the limit of 10 octets"
    );
    assert_eq!(DataRejection::BareLf.to_string(), "bare <LF> received");
}

#[test]
fn size_limit_counts_unstuffed_content() {
    // RFC 1870: CRLFs count, the doubled dots and the final dot do not.
    let input = b"..ab\r\n.\r\n"; // content ".ab\r\n": 5 octets
    assert_eq!(decode(input, DataConfig::with_max_size(5)).1, ACCEPTED(5));
    let (content, outcome, _) = decode(input, DataConfig::with_max_size(4));
    assert_eq!(
        outcome,
        Some(DataOutcome::Rejected {
            reason: DataRejection::TooLarge { limit: 4 },
            size: 5
        })
    );
    assert!(content.len() <= 4);
}

#[test]
fn over_size_message_is_streamed_to_its_end_in_bounded_memory() {
    // 32 MiB of content against a 1 MiB limit, fed 64 KiB at a time through a buffer that
    // never grows: the decoder keeps nothing, hands out at most the limit.
    const LIMIT: u64 = 1 << 20;
    let line = b"0123456789012345678901234567890123456789012345678901234567890123456789012\r\n";
    let block: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(873 * line.len())
        .collect();
    let blocks = 32 * 16; // 32 MiB
    let mut decoder = DataDecoder::new(DataConfig::with_max_size(LIMIT));
    let mut buf = BytesMut::with_capacity(128 * 1024);
    let capacity = buf.capacity();
    let mut handed_out = 0u64;
    let mut outcome = None;
    for index in 0..=blocks {
        if index == blocks {
            buf.extend_from_slice(b".\r\nQUIT\r\n");
        } else {
            buf.extend_from_slice(&block);
        }
        while let Some(event) = decoder.decode_buf(&mut buf) {
            match event {
                DataEvent::Content(piece) => handed_out += piece.len() as u64,
                DataEvent::End(end) => {
                    outcome = Some(end);
                    break;
                }
            }
        }
        assert!(buf.capacity() <= capacity, "the input buffer grew");
    }
    let size = (blocks * block.len()) as u64;
    assert_eq!(
        outcome,
        Some(DataOutcome::Rejected {
            reason: DataRejection::TooLarge { limit: LIMIT },
            size
        })
    );
    assert!(handed_out <= LIMIT);
    assert_eq!(&buf[..], b"QUIT\r\n");
    // The whole state is a handful of words, whatever the message size.
    assert!(std::mem::size_of::<DataDecoder>() <= 64);
    assert!(std::mem::size_of::<BdatReader>() <= 96);
    assert!(std::mem::size_of::<DataEncoder>() <= 8);
}

#[test]
fn encoder_known_answers() {
    let table: &[(&[u8], &[u8])] = &[
        (b"", b".\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"a\r\n.b\r\n..\r\n", b"a\r\n..b\r\n...\r\n.\r\n"),
        (b"a.b\r\n", b"a.b\r\n.\r\n"),
        // Bare LF and bare CR become CRLF (so they get dot-stuffed as line starts).
        (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r.\r\n", b"a\r\n..\r\n.\r\n"),
        (b"a\r", b"a\r\n.\r\n"),
        (b"a\rb", b"a\r\nb\r\n.\r\n"),
        (b"\r\r\n", b"\r\n\r\n.\r\n"),
        (b"\n", b"\r\n.\r\n"),
        (b"\r\n.\r\r\n", b"\r\n..\r\n\r\n.\r\n"),
    ];
    for &(content, wire) in table {
        assert_eq!(
            DataEncoder::encode_all(content),
            wire,
            "content {:?}",
            String::from_utf8_lossy(content)
        );
        // Byte by byte gives the same.
        let mut out = BytesMut::new();
        let mut encoder = DataEncoder::new();
        for byte in content {
            encoder.encode(std::slice::from_ref(byte), &mut out);
        }
        encoder.finish(&mut out);
        assert_eq!(&out[..], wire);
        // The server gets one message, with no bare newline.
        let (_, outcome, rest) = decode(wire, DataConfig::default());
        assert!(outcome.unwrap().is_accepted());
        assert!(rest.is_empty());
    }
}

#[test]
fn encoder_joins_cr_and_lf_across_chunks() {
    let mut out = Vec::new();
    let mut encoder = DataEncoder::new();
    encoder.encode(b"a\r", &mut out);
    encoder.encode(b"", &mut out);
    encoder.encode(b"\n.b\r", &mut out);
    encoder.encode(b"c", &mut out);
    encoder.finish(&mut out);
    assert_eq!(out, b"a\r\n..b\r\nc\r\n.\r\n");
}

#[test]
fn encoder_smuggling_variants_stay_inside_the_message() {
    for &(fake, _, _) in SMUGGLING {
        let content = [b"a", fake, b"MAIL FROM:<evil@example.net>\r\n"].concat();
        let wire = DataEncoder::encode_all(&content);
        assert!(!wire.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
        assert_eq!(wire.windows(5).filter(|w| w == b"\r\n.\r\n").count(), 1);
        assert!(wire.ends_with(b"\r\n.\r\n"));
        let (_, outcome, rest) = decode(&wire, DataConfig::default());
        assert!(outcome.unwrap().is_accepted(), "{fake:?}");
        assert!(rest.is_empty());
    }
}

/// Reads one BDAT chunk from `buf`: (content, end).
fn read_chunk(reader: &mut BdatReader, buf: &mut BytesMut) -> (Vec<u8>, Option<ChunkEnd>) {
    let mut content = Vec::new();
    while let Some(event) = reader.decode_buf(buf) {
        match event {
            BdatEvent::Content(piece) => content.extend_from_slice(&piece),
            BdatEvent::ChunkEnd(end) => return (content, Some(end)),
        }
    }
    (content, None)
}

#[test]
fn bdat_chunk_is_exactly_its_octets() {
    // RFC 3030 §4.2's example, in short: BDAT 86 / BDAT 44 LAST with a message split across.
    for &(fake, _, _) in SMUGGLING {
        let chunk = [b"a", fake, b"MAIL FROM:<evil@example.net>\r\n.\r\n"].concat();
        let mut buf = BytesMut::from(&[&chunk[..], b"QUIT\r\n"].concat()[..]);
        let mut reader = BdatReader::new(BdatConfig::default());
        reader.begin_chunk(chunk.len() as u64, true).unwrap();
        let (content, end) = read_chunk(&mut reader, &mut buf);
        assert_eq!(content, chunk, "{fake:?} is plain content in a chunk");
        let size = chunk.len() as u64;
        assert_eq!(
            end,
            Some(ChunkEnd {
                last: true,
                chunk_size: size,
                outcome: DataOutcome::Accepted { size }
            })
        );
        assert_eq!(&buf[..], b"QUIT\r\n");
        assert!(reader.is_finished());
    }
}

#[test]
fn bdat_streams_and_sums_chunks() {
    let mut reader = BdatReader::new(BdatConfig::default());
    let mut buf = BytesMut::new();
    reader.begin_chunk(10, false).unwrap();
    buf.extend_from_slice(b"0123");
    assert_eq!(read_chunk(&mut reader, &mut buf), (b"0123".to_vec(), None));
    assert_eq!(reader.remaining(), 6);
    buf.extend_from_slice(b"456789BDAT 0 LAST\r\n");
    let (content, end) = read_chunk(&mut reader, &mut buf);
    assert_eq!(content, b"456789");
    assert_eq!(end.unwrap().outcome, DataOutcome::Accepted { size: 10 });
    assert_eq!(&buf[..], b"BDAT 0 LAST\r\n");
    buf.clear();
    // BDAT 0 LAST: an empty last chunk ends the message at once.
    reader.begin_chunk(0, true).unwrap();
    let (content, end) = read_chunk(&mut reader, &mut buf);
    assert!(content.is_empty());
    assert_eq!(
        end,
        Some(ChunkEnd {
            last: true,
            chunk_size: 0,
            outcome: DataOutcome::Accepted { size: 10 }
        })
    );
    // RFC 3030: a BDAT after LAST gets 503.
    let error = reader.begin_chunk(5, false).unwrap_err();
    assert_eq!(error, BdatError::AfterLast);
    assert_eq!(
        error.reply_line(),
        Some("503 5.5.1 Error: BDAT after BDAT LAST")
    );
}

#[test]
fn bdat_over_size_reads_every_chunk_then_552() {
    let mut reader = BdatReader::new(BdatConfig { max_size: Some(10) });
    let mut buf = BytesMut::from(&b"aaaaaabbbbbbccNOOP\r\n"[..]);
    reader.begin_chunk(6, false).unwrap();
    let (content, end) = read_chunk(&mut reader, &mut buf);
    assert_eq!(content, b"aaaaaa");
    assert!(end.unwrap().outcome.is_accepted());
    // The second chunk crosses the limit: read in full, none of it handed out.
    reader.begin_chunk(6, false).unwrap();
    let (content, end) = read_chunk(&mut reader, &mut buf);
    assert!(content.is_empty());
    let rejected = DataOutcome::Rejected {
        reason: DataRejection::TooLarge { limit: 10 },
        size: 12,
    };
    assert_eq!(end.unwrap().outcome, rejected);
    assert_eq!(rejected.rejection().unwrap().code(), 552);
    // A chunk already in the pipeline is read and dropped too.
    reader.begin_chunk(2, true).unwrap();
    let (content, end) = read_chunk(&mut reader, &mut buf);
    assert!(content.is_empty());
    let end = end.unwrap();
    assert!(end.last);
    assert_eq!(
        end.outcome.rejection(),
        Some(DataRejection::TooLarge { limit: 10 })
    );
    assert_eq!(&buf[..], b"NOOP\r\n");
}

#[test]
fn bdat_discarding_skips_a_refused_chunk() {
    let mut reader = BdatReader::discarding(5);
    let mut buf = BytesMut::from(&b"MAIL QUIT\r\n"[..]);
    let (content, end) = read_chunk(&mut reader, &mut buf);
    assert!(content.is_empty());
    assert!(end.is_some());
    assert_eq!(&buf[..], b"QUIT\r\n");
    // Misuse is an error, not a panic.
    let mut reader = BdatReader::new(BdatConfig::default());
    assert_eq!(reader.decode(b"abc").consumed, 0);
    reader.begin_chunk(3, false).unwrap();
    assert_eq!(
        reader.begin_chunk(3, false),
        Err(BdatError::ChunkInProgress)
    );
    assert_eq!(BdatError::ChunkInProgress.reply_line(), None);
}
