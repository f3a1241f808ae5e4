//! The bodies of the fuzz targets in `fuzz/fuzz_targets/`, as ordinary functions.
//!
//! Each function takes arbitrary bytes, drives a decoder with them in a chunking derived from
//! the bytes, and panics when an invariant breaks. `cargo fuzz` calls them from the targets;
//! `tests/fuzz_corpus.rs` replays the committed corpus through them in a normal `cargo test`.
//! Not part of the stable API.

use bytes::BytesMut;

use crate::bdat::{BdatConfig, BdatEvent, BdatReader};
use crate::data::{
    BareNewline, DataConfig, DataDecoder, DataEncoder, DataEvent, DataOutcome, DataRejection,
};

/// The command and reply codec targets (their bodies live beside the codec).
pub use crate::codec::fuzz::{command, reply};
/// The server session target (its body lives beside the session, in `server/fuzz.rs`).
pub use crate::server::fuzz::server_session;

/// A small deterministic generator of chunk lengths, seeded from the input.
#[derive(Debug, Clone)]
pub struct Chunker(u64);

impl Chunker {
    /// A generator seeded with `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next chunk length, 1 to `max` (`max` at least 1).
    pub fn next_len(&mut self, max: usize) -> usize {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let max = max.max(1) as u64;
        // Short chunks often, to put boundaries between CR, LF and ".".
        let bound = if self.0 & 3 == 0 { max } else { max.min(4) };
        usize::try_from((self.0 >> 8) % bound).unwrap_or(0) + 1
    }
}

/// What the DATA decoder should produce for `input`, computed the slow and obvious way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceData {
    /// Input bytes up to and including the final `.\r\n`.
    pub consumed: usize,
    /// The whole unstuffed content.
    pub content: Vec<u8>,
    /// The outcome.
    pub outcome: DataOutcome,
}

/// The reference DATA decoder: `None` when `input` holds no end of data.
///
/// The end is the first `\r\n.\r\n` in `"\r\n" + input` (the DATA command's CRLF starts the
/// first line); every line of the content that starts with "." loses that dot.
#[must_use]
pub fn reference_data(input: &[u8], config: &DataConfig) -> Option<ReferenceData> {
    let mut framed = Vec::with_capacity(input.len() + 2);
    framed.extend_from_slice(b"\r\n");
    framed.extend_from_slice(input);
    let at = framed.windows(5).position(|w| w == b"\r\n.\r\n")?;
    // Content region in `input`: up to and including the CRLF before the dot.
    let raw = input.get(..at)?;
    let mut content = Vec::with_capacity(raw.len());
    let mut line_start = true;
    let mut previous = 0u8;
    for &byte in raw {
        if line_start && byte == b'.' {
            line_start = false;
            continue;
        }
        // Only a CRLF starts a line.
        line_start = previous == b'\r' && byte == b'\n';
        content.push(byte);
        previous = byte;
    }
    let bare_lf = content
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || content.get(i - 1) != Some(&b'\r')));
    let bare_cr = content
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\r' && content.get(i + 1) != Some(&b'\n'));
    let size = content.len() as u64;
    let reject_bare = config.bare_newline == BareNewline::Reject;
    let reason = if reject_bare && bare_lf {
        Some(DataRejection::BareLf)
    } else if reject_bare && bare_cr {
        Some(DataRejection::BareCr)
    } else {
        match config.max_size {
            Some(limit) if size > limit => Some(DataRejection::TooLarge { limit }),
            _ => None,
        }
    };
    let outcome = match reason {
        Some(reason) => DataOutcome::Rejected { reason, size },
        None => DataOutcome::Accepted { size },
    };
    Some(ReferenceData {
        consumed: at + 3,
        content,
        outcome,
    })
}

/// What the encoder's newline normalisation makes of content: every bare CR or LF becomes
/// CRLF, and non-empty content ends with CRLF. Decoding the encoder's output gives this.
#[must_use]
pub fn normalize_newlines(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 2);
    let mut i = 0;
    while let Some(&byte) = content.get(i) {
        match byte {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if content.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            _ => out.push(byte),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What a decoder run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRun {
    /// The content pieces, concatenated.
    pub content: Vec<u8>,
    /// The outcome, if the end was found.
    pub outcome: Option<DataOutcome>,
    /// Input bytes used up to the end (all of them when no end was found).
    pub consumed: usize,
}

/// Runs a [`DataDecoder`] over `input` split by `chunker`, through [`DataDecoder::decode`] on
/// a growing slice as a session without `bytes` would, checking the per-call invariants.
pub fn run_data_slices(input: &[u8], config: DataConfig, chunker: &mut Chunker) -> DataRun {
    let mut decoder = DataDecoder::new(config);
    let mut pending: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut consumed = 0;
    let mut content = Vec::new();
    let mut outcome = None;
    while outcome.is_none() && fed < input.len() {
        let len = chunker.next_len(input.len() - fed);
        pending.extend_from_slice(input.get(fed..fed + len).unwrap_or_default());
        fed += len;
        loop {
            let before = decoder.size();
            let decoded = decoder.decode(&pending);
            let used = decoded.consumed;
            assert!(used <= pending.len(), "consumed more than the input");
            consumed += used;
            let more = match decoded.event {
                Some(DataEvent::Content(piece)) => {
                    assert!(!piece.is_empty(), "empty content piece");
                    assert!(decoder.size() - before >= piece.len() as u64);
                    content.extend_from_slice(piece);
                    true
                }
                Some(DataEvent::End(end)) => {
                    outcome = Some(end);
                    false
                }
                None => {
                    assert_eq!(used, pending.len(), "None left input unused");
                    false
                }
            };
            pending.drain(..used);
            if !more {
                break;
            }
        }
    }
    if outcome.is_some() {
        // The rest is the next command: the decoder must take nothing more, say nothing more.
        pending.extend_from_slice(input.get(fed..).unwrap_or_default());
        let again = decoder.decode(&pending);
        assert_eq!(again.consumed, 0, "decoder used input after the end");
        assert!(
            again.event.is_none(),
            "decoder produced an event after the end"
        );
        assert_eq!(
            &pending[..],
            input.get(consumed..).unwrap_or_default(),
            "bytes after the end were not left for the command parser"
        );
    }
    DataRun {
        content,
        outcome,
        consumed,
    }
}

/// Runs a [`DataDecoder`] over `input` split by `chunker`, through
/// [`DataDecoder::decode_buf`] on a [`BytesMut`] as the server session does.
pub fn run_data_buf(input: &[u8], config: DataConfig, chunker: &mut Chunker) -> DataRun {
    let mut decoder = DataDecoder::new(config);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut content = Vec::new();
    let mut outcome = None;
    while outcome.is_none() && fed < input.len() {
        let len = chunker.next_len(input.len() - fed);
        buf.extend_from_slice(input.get(fed..fed + len).unwrap_or_default());
        fed += len;
        while let Some(event) = decoder.decode_buf(&mut buf) {
            match event {
                DataEvent::Content(piece) => {
                    assert!(!piece.is_empty(), "empty content piece");
                    content.extend_from_slice(&piece);
                }
                DataEvent::End(end) => {
                    outcome = Some(end);
                    break;
                }
            }
        }
    }
    let consumed = fed - buf.len();
    if outcome.is_some() {
        assert!(
            decoder.decode_buf(&mut buf).is_none(),
            "event after the end"
        );
        assert_eq!(
            fed - buf.len(),
            consumed,
            "decoder used input after the end"
        );
    }
    DataRun {
        content,
        outcome,
        consumed,
    }
}

/// Checks a decoder run against [`reference_data`].
///
/// # Panics
///
/// When they differ: an accepted message must have exactly the reference content; a refused
/// one only a prefix of it (pieces stop once the decoder knows it refuses the message).
pub fn check_data_run(input: &[u8], config: &DataConfig, run: &DataRun) {
    match reference_data(input, config) {
        None => {
            assert_eq!(run.outcome, None, "end of data where there is none");
            assert_eq!(
                run.consumed,
                input.len(),
                "unfinished message left input unused"
            );
            let framed_tail = [b"\r\n", input].concat();
            assert!(
                !framed_tail.windows(5).any(|w| w == b"\r\n.\r\n"),
                "missed an end of data"
            );
        }
        Some(reference) => {
            assert_eq!(run.outcome, Some(reference.outcome), "outcome differs");
            assert_eq!(
                run.consumed, reference.consumed,
                "end found at another place"
            );
            if reference.outcome.is_accepted() {
                assert_eq!(run.content, reference.content, "content differs");
            } else {
                assert!(
                    reference.content.starts_with(&run.content),
                    "content of a refused message is not a prefix of the real content"
                );
            }
            if let Some(limit) = config.max_size {
                assert!(
                    run.content.len() as u64 <= limit,
                    "handed out past the limit"
                );
            }
        }
    }
}

/// Fuzz target `data_decoder`: random bytes as DATA input, fed in random chunkings through
/// both decoder entry points, compared with the reference; then encoder round trip.
///
/// The first byte picks the settings, the second seeds the chunking.
pub fn data_decoder(data: &[u8]) {
    let (settings, seed, input) = match data {
        [settings, seed, rest @ ..] => (*settings, *seed, rest),
        _ => return,
    };
    let config = DataConfig {
        max_size: match settings >> 1 & 7 {
            0 | 1 => None,
            2 => Some(0),
            3 => Some(1),
            4 => Some(8),
            5 => Some(64),
            6 => Some(1024),
            _ => Some(input.len() as u64 / 2),
        },
        bare_newline: if settings & 1 == 0 {
            BareNewline::Reject
        } else {
            BareNewline::Accept
        },
    };
    let whole = run_data_slices(input, config, &mut Chunker::new(u64::MAX));
    check_data_run(input, &config, &whole);
    let sliced = run_data_slices(input, config, &mut Chunker::new(u64::from(seed)));
    check_data_run(input, &config, &sliced);
    let buffered = run_data_buf(input, config, &mut Chunker::new(u64::from(seed) + 7));
    check_data_run(input, &config, &buffered);

    // The encoder: any content, in random chunks, decodes to its normalised form.
    let mut wire = Vec::new();
    let mut encoder = DataEncoder::new();
    let mut chunker = Chunker::new(u64::from(seed) ^ 0x55);
    let mut fed = 0;
    while fed < input.len() {
        let len = chunker.next_len(input.len() - fed);
        encoder.encode(input.get(fed..fed + len).unwrap_or_default(), &mut wire);
        fed += len;
    }
    encoder.finish(&mut wire);
    assert_eq!(
        wire,
        DataEncoder::encode_all(input),
        "chunked encoding differs"
    );
    let expected = normalize_newlines(input);
    let strict = DataConfig::default();
    let decoded = run_data_buf(&wire, strict, &mut Chunker::new(u64::from(seed)));
    assert_eq!(
        decoded.outcome,
        Some(DataOutcome::Accepted {
            size: expected.len() as u64
        }),
        "encoded content was not accepted whole"
    );
    assert_eq!(decoded.consumed, wire.len(), "encoded message ended early");
    assert_eq!(decoded.content, expected, "round trip changed the content");
}

/// Fuzz target `bdat`: random chunk sizes and bytes through a [`BdatReader`].
///
/// Byte 0 picks the size limit, byte 1 seeds the input chunking, byte 2 is the number of
/// chunks (1 to 8), then one byte per chunk size; the rest is the stream.
pub fn bdat(data: &[u8]) {
    let (limit, seed, count, rest) = match data {
        [limit, seed, count, rest @ ..] => (*limit, *seed, usize::from(*count % 8) + 1, rest),
        _ => return,
    };
    let Some((sizes, stream)) = rest.split_at_checked(count.min(rest.len())) else {
        return;
    };
    if sizes.is_empty() {
        return;
    }
    let sizes: Vec<u64> = sizes.iter().map(|&s| u64::from(s)).collect();
    let max_size = match limit % 4 {
        0 => None,
        1 => Some(0),
        _ => Some(u64::from(limit)),
    };
    let mut reader = BdatReader::new(BdatConfig { max_size });
    let mut chunker = Chunker::new(u64::from(seed));
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut offset = 0usize; // stream position of the chunk being read
    let mut total = 0u64;
    for (index, &size) in sizes.iter().enumerate() {
        let last = index + 1 == sizes.len();
        reader
            .begin_chunk(size, last)
            .unwrap_or_else(|e| panic!("begin_chunk: {e}"));
        assert_eq!(
            reader.begin_chunk(1, false),
            Err(crate::bdat::BdatError::ChunkInProgress)
        );
        total += size;
        let too_large = max_size.is_some_and(|m| total > m);
        let mut content = Vec::new();
        let end = loop {
            match reader.decode_buf(&mut buf) {
                Some(BdatEvent::Content(piece)) => {
                    assert!(!piece.is_empty(), "empty piece");
                    content.extend_from_slice(&piece);
                }
                Some(BdatEvent::ChunkEnd(end)) => break Some(end),
                None => {
                    assert!(buf.is_empty(), "None with input left");
                    if fed == stream.len() {
                        break None;
                    }
                    let len = chunker.next_len(stream.len() - fed);
                    buf.extend_from_slice(stream.get(fed..fed + len).unwrap_or_default());
                    fed += len;
                }
            }
        };
        let Some(end) = end else {
            // The stream ran out inside this chunk: everything given was used.
            assert_eq!(fed, stream.len());
            return;
        };
        let chunk_len = usize::try_from(size).unwrap_or(usize::MAX);
        let expected = stream.get(offset..offset + chunk_len).unwrap_or_default();
        assert_eq!(end.last, last);
        assert_eq!(end.chunk_size, size);
        assert_eq!(end.outcome.size(), total);
        if too_large {
            assert!(content.is_empty(), "content handed out past the limit");
            assert!(!end.outcome.is_accepted(), "over-size message accepted");
        } else {
            assert_eq!(content, expected, "chunk content differs from its octets");
            assert!(end.outcome.is_accepted());
        }
        offset += chunk_len;
        // The bytes after the chunk are untouched: they are the next command.
        assert_eq!(fed - buf.len(), offset, "read past the chunk");
    }
    assert!(reader.is_finished());
    assert_eq!(
        reader.begin_chunk(0, true),
        Err(crate::bdat::BdatError::AfterLast)
    );
}
