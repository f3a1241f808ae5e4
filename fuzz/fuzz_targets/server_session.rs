//! SMTP server session: arbitrary client bytes in arbitrary chunkings, an application that
//! accepts everything; never a panic, and the same replies whatever the chunking.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailroom_smtp_proto::fuzzing::server_session(data);
});
