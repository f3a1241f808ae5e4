//! Finding one CRLF-terminated line in a buffer, bounded.

/// What [`next_line`] found at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// A line ending in CRLF: `len` octets of text, then the CRLF; `consumed = len + 2`.
    Complete {
        /// The length of the text, without the line end.
        len: usize,
        /// The octets to drop from the buffer, line end included.
        consumed: usize,
    },
    /// A line ending in a LF that no CR precedes. RFC 5321 §2.3.8: "lines consist of zero or
    /// more data characters terminated by the sequence ASCII character "CR" (hex value 0D)
    /// followed immediately by ASCII character "LF" (hex value 0A)." A server refuses it
    /// (Postfix's `smtpd_forbid_bare_newline`); a client reading replies may accept it.
    BareLf {
        /// The length of the text, without the LF.
        len: usize,
        /// The octets to drop from the buffer, LF included.
        consumed: usize,
    },
    /// No line end yet, and fewer than `max` octets: read more.
    Incomplete,
    /// `max` octets or more without a line end: the line is too long. The caller discards
    /// input up to the next LF before reading another line.
    TooLong,
}

/// Looks for the first line in `buf`; `max` bounds the line's length, line end included.
pub fn next_line(buf: &[u8], max: usize) -> Line {
    let window = &buf[..buf.len().min(max)];
    match memchr::memchr(b'\n', window) {
        Some(lf) if lf > 0 && window[lf - 1] == b'\r' => Line::Complete {
            len: lf - 1,
            consumed: lf + 1,
        },
        Some(lf) => Line::BareLf {
            len: lf,
            consumed: lf + 1,
        },
        None if buf.len() >= max => Line::TooLong,
        None => Line::Incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_lines() {
        assert_eq!(
            next_line(b"NOOP\r\nQUIT\r\n", 512),
            Line::Complete {
                len: 4,
                consumed: 6
            }
        );
        assert_eq!(
            next_line(b"NOOP\nQUIT", 512),
            Line::BareLf {
                len: 4,
                consumed: 5
            }
        );
        assert_eq!(next_line(b"NOOP\r", 512), Line::Incomplete);
        assert_eq!(next_line(b"NOOP", 4), Line::TooLong);
        // The CRLF counts towards the limit.
        assert_eq!(next_line(b"NOOP\r\n", 5), Line::TooLong);
        assert_eq!(
            next_line(b"NOOP\r\n", 6),
            Line::Complete {
                len: 4,
                consumed: 6
            }
        );
    }
}
