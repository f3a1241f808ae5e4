//! The reply decoder: decode, re-encode, decode again.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailroom_smtp_proto::fuzzing::reply(data);
});
