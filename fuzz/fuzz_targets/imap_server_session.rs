//! IMAP server session: random input in random chunks, every event answered; all output must decode.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailroom_imap_proto::fuzzing::server_session(data);
});
