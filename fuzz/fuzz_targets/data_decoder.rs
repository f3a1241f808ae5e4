//! DATA decoder and encoder: random bytes in random chunkings, checked against a reference.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailroom_smtp_proto::fuzzing::data_decoder(data);
});
