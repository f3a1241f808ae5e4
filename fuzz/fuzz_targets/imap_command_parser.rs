//! IMAP command parser: decode, re-encode, decode again to the same command.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailroom_imap_proto::fuzzing::command_parser(data);
});
