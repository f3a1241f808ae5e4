//! IMAP response parser: decode, re-encode, decode again to the same response.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailroom_imap_proto::fuzzing::response_parser(data);
});
