//! BDAT reader: random chunk sizes and bytes in random chunkings.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailroom_smtp_proto::fuzzing::bdat(data);
});
