//! Property tests for the DATA decoder and encoder and the BDAT reader: round trips, any
//! split and any chunking give the same result, random bytes never panic, and the decoder
//! agrees with a slow reference.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use mailroom_smtp_proto::data::{
    BareNewline, DataConfig, DataDecoder, DataEncoder, DataEvent, DataOutcome,
};
use mailroom_smtp_proto::fuzzing::{
    self, Chunker, DataRun, check_data_run, normalize_newlines, reference_data, run_data_buf,
    run_data_slices,
};
use proptest::prelude::*;

/// Bytes rich in what matters to DATA: CR, LF, ".", and a few letters.
fn smtp_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(b'\r'),
            3 => Just(b'\n'),
            3 => Just(b'.'),
            2 => Just(b'a'),
            1 => any::<u8>(),
        ],
        0..max,
    )
}

fn config() -> impl Strategy<Value = DataConfig> {
    (
        prop_oneof![Just(None), (0u64..64).prop_map(Some)],
        prop_oneof![Just(BareNewline::Reject), Just(BareNewline::Accept)],
    )
        .prop_map(|(max_size, bare_newline)| DataConfig {
            max_size,
            bare_newline,
        })
}

/// A DATA stream: random content lines, the end, then the next commands.
fn data_stream() -> impl Strategy<Value = Vec<u8>> {
    (smtp_bytes(120), any::<bool>(), smtp_bytes(20)).prop_map(|(body, end, after)| {
        let mut input = body;
        if end {
            input.extend_from_slice(b"\r\n.\r\n");
        }
        input.extend_from_slice(&after);
        input
    })
}

/// Decodes `input` given in two reads split at `split`.
fn decode_split(input: &[u8], split: usize, config: DataConfig) -> DataRun {
    let mut decoder = DataDecoder::new(config);
    let mut content = Vec::new();
    let mut buf = BytesMut::from(&input[..split]);
    let mut fed = split;
    loop {
        while let Some(event) = decoder.decode_buf(&mut buf) {
            match event {
                DataEvent::Content(piece) => content.extend_from_slice(&piece),
                DataEvent::End(outcome) => {
                    return DataRun {
                        content,
                        outcome: Some(outcome),
                        consumed: fed - buf.len(),
                    };
                }
            }
        }
        if fed == input.len() {
            return DataRun {
                content,
                outcome: None,
                consumed: fed,
            };
        }
        buf.extend_from_slice(&input[fed..]);
        fed = input.len();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Encoder then decoder gives back the content, after the encoder's newline
    /// normalisation, whatever the chunking on both sides.
    #[test]
    fn encode_then_decode_round_trips(content in smtp_bytes(300), seed in any::<u64>()) {
        let mut chunker = Chunker::new(seed);
        let mut wire = BytesMut::new();
        let mut encoder = DataEncoder::new();
        let mut fed = 0;
        while fed < content.len() {
            let len = chunker.next_len(content.len() - fed);
            encoder.encode(&content[fed..fed + len], &mut wire);
            fed += len;
        }
        encoder.finish(&mut wire);
        prop_assert_eq!(&wire[..], &DataEncoder::encode_all(&content)[..]);
        // Never a bare CR or LF on the wire, one end, at the end.
        for (i, &b) in wire.iter().enumerate() {
            if b == b'\n' {
                prop_assert_eq!(wire.get(i.wrapping_sub(1)), Some(&b'\r'));
            }
            if b == b'\r' {
                prop_assert_eq!(wire.get(i + 1), Some(&b'\n'));
            }
        }
        let expected = normalize_newlines(&content);
        let run = run_data_buf(&wire, DataConfig::default(), &mut Chunker::new(seed ^ 1));
        prop_assert_eq!(run.outcome, Some(DataOutcome::Accepted { size: expected.len() as u64 }));
        prop_assert_eq!(run.consumed, wire.len());
        prop_assert_eq!(run.content, expected);
    }

    /// Splitting the input at any byte gives the same content, outcome and end.
    #[test]
    fn any_split_gives_the_same_result(input in data_stream(), config in config()) {
        let whole = decode_split(&input, input.len(), config);
        check_data_run(&input, &config, &whole);
        for split in 0..=input.len() {
            let run = decode_split(&input, split, config);
            prop_assert_eq!(run.outcome, whole.outcome);
            prop_assert_eq!(run.consumed, whole.consumed);
            if whole.outcome.is_some_and(|o| o.is_accepted()) {
                prop_assert_eq!(&run.content, &whole.content);
            } else {
                // Refused or unfinished: pieces stop once a reason to refuse is seen, which
                // may be sooner or later depending on the split; both are prefixes of the
                // content.
                prop_assert!(
                    run.content.starts_with(&whole.content)
                        || whole.content.starts_with(&run.content)
                );
            }
            check_data_run(&input, &config, &run);
        }
    }

    /// Random chunkings, through both entry points, agree with the reference.
    #[test]
    fn any_chunking_agrees_with_the_reference(
        input in data_stream(),
        config in config(),
        seed in any::<u64>(),
    ) {
        let sliced = run_data_slices(&input, config, &mut Chunker::new(seed));
        check_data_run(&input, &config, &sliced);
        let buffered = run_data_buf(&input, config, &mut Chunker::new(seed.rotate_left(7)));
        check_data_run(&input, &config, &buffered);
        if let Some(reference) = reference_data(&input, &config) {
            prop_assert_eq!(sliced.outcome, Some(reference.outcome));
        }
    }

    /// Random bytes never panic, and every invariant of the fuzz targets holds.
    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        fuzzing::data_decoder(&data);
        fuzzing::bdat(&data);
    }

    /// The same with bytes shaped like DATA.
    #[test]
    fn data_shaped_bytes_keep_the_invariants(
        head in (any::<u8>(), any::<u8>()),
        input in data_stream(),
    ) {
        let mut data = vec![head.0, head.1];
        data.extend_from_slice(&input);
        fuzzing::data_decoder(&data);
    }

    /// The decoder's state does not grow with the input: a long stream, fed in pieces
    /// through a buffer that is drained after every call, never needs a larger buffer.
    #[test]
    fn memory_stays_bounded(line in smtp_bytes(90), repeat in 1usize..200, seed in any::<u64>()) {
        let mut decoder = DataDecoder::new(DataConfig {
            max_size: Some(1000),
            bare_newline: BareNewline::Accept,
        });
        let mut buf = BytesMut::with_capacity(256);
        let capacity = buf.capacity();
        let mut chunker = Chunker::new(seed);
        let stream: Vec<u8> = line.iter().copied().cycle().take(line.len() * repeat).collect();
        let mut fed = 0;
        while fed < stream.len() && !decoder.is_done() {
            let len = chunker.next_len(128.min(stream.len() - fed));
            buf.extend_from_slice(&stream[fed..fed + len]);
            fed += len;
            while let Some(event) = decoder.decode_buf(&mut buf) {
                if matches!(event, DataEvent::End(_)) {
                    break;
                }
            }
            prop_assert!(buf.capacity() <= capacity);
        }
    }
}
