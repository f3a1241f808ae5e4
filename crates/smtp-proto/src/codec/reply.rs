//! Encoding (server side) and decoding (client side) of replies (RFC 5321 §4.2).
//!
//! ```text
//! Greeting   = ( "220 " (Domain / address-literal) [ SP textstring ] CRLF ) / ...
//! Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//!              Reply-code [ SP textstring ] CRLF
//! Reply-code = %x32-35 %x30-35 %x30-39
//! textstring = 1*(%d09 / %d32-126) ; HT, SP, Printable US-ASCII
//! ```
//! RFC 2034 §4: with ENHANCEDSTATUSCODES "the status code MUST be preceded by the reply
//! code and a single space" on every line of the reply.

use crate::codec::line::{Line, next_line};
use crate::error::ReplyDecodeError;
use crate::types::limits::Limits;
use crate::types::reply::{EnhancedCode, Reply, ReplyCode};

impl Reply {
    /// Encodes the reply, every line ending in CRLF, appending to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let last = self.lines().len().saturating_sub(1);
        for (i, line) in self.lines().iter().enumerate() {
            out.extend_from_slice(self.code().to_string().as_bytes());
            out.push(if i == last { b' ' } else { b'-' });
            if let Some(e) = self.enhanced() {
                out.extend_from_slice(e.to_string().as_bytes());
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The encoded reply.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes one whole reply from the start of `buf`.
    ///
    /// Returns the reply and the number of octets it used, or `Ok(None)` when `buf` does not
    /// hold the whole reply yet ("needs more input" is not an error). A LF without CR ends a line
    /// too: servers that send one are common and the client gains nothing by refusing them.
    ///
    /// # Errors
    ///
    /// [`ReplyDecodeError`] for a line that is too long or malformed, codes that differ between
    /// lines, or more lines than [`Limits::reply_lines`].
    pub fn decode(buf: &[u8], limits: &Limits) -> Result<Option<(Reply, usize)>, ReplyDecodeError> {
        let mut pos = 0;
        let mut code: Option<ReplyCode> = None;
        let mut enhanced: Option<EnhancedCode> = None;
        let mut lines = Vec::new();
        loop {
            let (len, consumed) = match next_line(&buf[pos..], limits.reply_line) {
                Line::Complete { len, consumed } | Line::BareLf { len, consumed } => {
                    (len, consumed)
                }
                Line::Incomplete => return Ok(None),
                Line::TooLong => {
                    return Err(ReplyDecodeError::LineTooLong {
                        limit: limits.reply_line,
                    });
                }
            };
            if lines.len() == limits.reply_lines {
                return Err(ReplyDecodeError::TooManyLines {
                    limit: limits.reply_lines,
                });
            }
            let line = &buf[pos..pos + len];
            pos += consumed;
            let (line_code, more, text) = reply_line(line)?;
            match code {
                None => code = Some(line_code),
                Some(first) if first != line_code => {
                    return Err(ReplyDecodeError::MixedCodes {
                        first: first.get(),
                        other: line_code.get(),
                    });
                }
                Some(_) => {}
            }
            // The enhanced code is recognised on the first line; later lines repeat it.
            let mut text = text;
            let first_word = text.split(|&b| b == b' ').next().unwrap_or_default();
            match (lines.is_empty(), EnhancedCode::parse(first_word)) {
                (true, Some(e)) if e.class() == line_code.class() => {
                    enhanced = Some(e);
                    text = text.get(first_word.len() + 1..).unwrap_or_default();
                }
                (false, Some(e)) if Some(e) == enhanced => {
                    text = text.get(first_word.len() + 1..).unwrap_or_default();
                }
                _ => {}
            }
            lines.push(
                text.iter()
                    .map(|&b| match b {
                        b'\t' | 32..=126 => char::from(b),
                        // textstring is ASCII; anything else (UTF-8 from SMTPUTF8 servers,
                        // stray control bytes) is kept readable but harmless.
                        _ => '?',
                    })
                    .collect::<String>(),
            );
            if !more {
                break;
            }
        }
        // `code` is set: the loop ran at least once.
        let code = code.ok_or(ReplyDecodeError::Syntax {
            expected: "a reply code",
        })?;
        Ok(Some((Reply::from_parts(code, enhanced, lines), pos)))
    }
}

/// `Reply-code [ ( SP / "-" ) textstring ]`: the code, whether more lines follow, the text.
fn reply_line(line: &[u8]) -> Result<(ReplyCode, bool, &[u8]), ReplyDecodeError> {
    let digits = line.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
    let code = digits
        .map(|d| d.iter().fold(0u16, |n, &c| n * 10 + u16::from(c - b'0')))
        .and_then(ReplyCode::new)
        .ok_or(ReplyDecodeError::Syntax {
            expected: "a three-digit reply code from 200 to 559",
        })?;
    match line.get(3) {
        None => Ok((code, false, &[])),
        Some(b' ') => Ok((code, false, &line[4..])),
        Some(b'-') => Ok((code, true, &line[4..])),
        Some(_) => Err(ReplyDecodeError::Syntax {
            expected: "a space or \"-\" after the reply code",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(s: &str) -> Reply {
        let (reply, used) = Reply::decode(s.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(used, s.len());
        reply
    }

    #[test]
    fn known_replies() {
        // RFC 5321 D.1 and RFC 1870 §4, RFC 4954 §4 examples.
        let r = decode_all("220 foo.com Simple Mail Transfer Service Ready\r\n");
        assert_eq!(r.code(), ReplyCode::SERVICE_READY);
        assert_eq!(r.lines(), ["foo.com Simple Mail Transfer Service Ready"]);
        let r = decode_all(
            "250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n",
        );
        assert_eq!(r.lines().len(), 5);
        assert_eq!(r.lines()[4], "HELP");
        let r = decode_all("552 Message size exceeds fixed maximium message size\r\n");
        assert!(r.code().is_permanent());
        let r = decode_all("334 \r\n");
        assert_eq!(r.lines(), [""]);
        let r = decode_all("235 2.7.0 Authentication successful\r\n");
        assert_eq!(r.enhanced(), EnhancedCode::new(2, 7, 0));
        assert_eq!(r.lines(), ["Authentication successful"]);
        let r = decode_all("250\r\n");
        assert_eq!(r.lines(), [""]);
        // RFC 2034: the code on every line.
        let r = decode_all("550-5.1.1 No such user\r\n550 5.1.1 here\r\n");
        assert_eq!(r.enhanced(), EnhancedCode::new(5, 1, 1));
        assert_eq!(r.lines(), ["No such user", "here"]);
        // A code whose class differs from the reply's is text, not an enhanced code.
        let r = decode_all("250 5.1.1 odd\r\n");
        assert_eq!(r.enhanced(), None);
    }

    #[test]
    fn encode_then_decode() {
        let r = Reply::new(ReplyCode::OK, "2.0.0 Ok: queued as 1234\nsecond line");
        let bytes = r.to_bytes();
        assert_eq!(
            bytes,
            b"250-2.0.0 Ok: queued as 1234\r\n250 2.0.0 second line\r\n"
        );
        assert_eq!(decode_all(std::str::from_utf8(&bytes).unwrap()), r);
        // Control characters never reach the wire.
        let r = Reply::new(ReplyCode::OK, "a\rb\0c");
        assert_eq!(r.to_bytes(), b"250 a?b?c\r\n");
    }

    #[test]
    fn incomplete_and_bad_replies() {
        let limits = Limits::default();
        assert_eq!(Reply::decode(b"250-a\r\n250 b", &limits), Ok(None));
        assert_eq!(Reply::decode(b"", &limits), Ok(None));
        assert!(matches!(
            Reply::decode(b"250-a\r\n251 b\r\n", &limits),
            Err(ReplyDecodeError::MixedCodes { .. })
        ));
        assert!(Reply::decode(b"999 x\r\n", &limits).is_err());
        assert!(Reply::decode(b"25 x\r\n", &limits).is_err());
        assert!(Reply::decode(b"250x\r\n", &limits).is_err());
        let long = format!("250 {}\r\n", "x".repeat(600));
        assert!(matches!(
            Reply::decode(long.as_bytes(), &limits),
            Err(ReplyDecodeError::LineTooLong { .. })
        ));
        let many = "250-x\r\n".repeat(200);
        assert!(matches!(
            Reply::decode(many.as_bytes(), &limits),
            Err(ReplyDecodeError::TooManyLines { .. })
        ));
    }
}
