//! IMAP literal framing: split points and literal decisions from the input; framing must not depend on the split.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailroom_imap_proto::fuzzing::framing(data);
});
