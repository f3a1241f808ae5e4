//! Fuzz target bodies for the command and reply codecs (re-exported by [`crate::fuzzing`]).

use crate::codec::line::{Line, next_line};
use crate::types::command::Command;
use crate::types::limits::Limits;
use crate::types::reply::Reply;

/// The command decoder: every line of `data` (split as the server frames lines) is decoded
/// with and without SMTPUTF8. A command that decodes must encode to one line that decodes to
/// the same command; an error must answer with a 5xx reply that is a single valid line.
pub fn command(data: &[u8]) {
    let limits = Limits::default();
    // Loose limits for the re-decode: encoding may quote a local-part the client sent bare.
    let loose = Limits {
        command_line: 8192,
        parameter_allowance: 8192,
        local_part: 1024,
        path: 2048,
        ..Limits::default()
    };
    let mut rest = data;
    while !rest.is_empty() {
        let (line, consumed) = match next_line(rest, limits.max_command_line()) {
            Line::Complete { len, consumed } | Line::BareLf { len, consumed } => {
                (&rest[..len], consumed)
            }
            Line::Incomplete | Line::TooLong => (rest, rest.len()),
        };
        assert!(consumed > 0 && consumed <= rest.len());
        rest = &rest[consumed..];
        for utf8 in [false, true] {
            match Command::decode(line, &limits, utf8) {
                Ok(cmd) => {
                    let bytes = cmd.to_bytes();
                    let body = &bytes[..bytes.len() - 2];
                    assert!(bytes.ends_with(b"\r\n"));
                    assert!(!body.contains(&b'\r') && !body.contains(&b'\n') && !body.contains(&0));
                    let again = Command::decode(body, &loose, true);
                    assert_eq!(
                        again.as_ref(),
                        Ok(&cmd),
                        "{:?}",
                        String::from_utf8_lossy(body)
                    );
                }
                Err(e) => {
                    let reply = e.reply();
                    assert!(reply.code().is_permanent(), "{reply}");
                    let wire = reply.to_bytes();
                    assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 1);
                }
            }
        }
    }
}

/// The reply decoder: decodes the replies in `data` one after another, checks that a prefix
/// of a reply only ever needs more input, and that each decoded reply re-encodes to
/// bytes that decode to the same reply.
pub fn reply(data: &[u8]) {
    let limits = Limits::default();
    let loose = Limits {
        reply_line: 4096,
        ..Limits::default()
    };
    let mut rest = data;
    // A cut point derived from the input, to check incremental decoding.
    let cut = data.first().map_or(0, |&b| usize::from(b));
    while let Ok(Some((reply, used))) = Reply::decode(rest, &limits) {
        assert!(used > 0 && used <= rest.len());
        if cut < used {
            // A strict prefix of a whole reply needs more input: never a reply, never an error.
            assert_eq!(Reply::decode(&rest[..cut], &limits), Ok(None));
        }
        let wire = reply.to_bytes();
        let (again, again_used) = Reply::decode(&wire, &loose)
            .expect("a re-encoded reply decodes")
            .expect("a re-encoded reply is whole");
        assert_eq!(again_used, wire.len());
        assert_eq!(again, reply);
        rest = &rest[used..];
    }
}
