//! Message flags as mbox stores them: the `Status` and `X-Status` header fields.
//!
//! The convention of mutt, Pine, UW-IMAP and Dovecot: `Status: R` for read (IMAP `\Seen`) and
//! `O` for old (not `\Recent`); `X-Status: A` answered, `F` flagged, `T` draft, `D` deleted.
//! Dovecot writes the letters in the order `RO` and `ADFT`, and so do we. Letters we do not
//! know are ignored on reading and dropped on writing.

use crate::headers::Headers;

/// The flags of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags {
    /// `R`: read (`\Seen`).
    pub seen: bool,
    /// `O`: seen by a mail reader before (not `\Recent`).
    pub old: bool,
    /// `A`: answered.
    pub answered: bool,
    /// `F`: flagged.
    pub flagged: bool,
    /// `T`: draft.
    pub draft: bool,
    /// `D`: deleted (removed by an expunge).
    pub deleted: bool,
}

impl Flags {
    /// The flags a header section carries (none when it has no `Status`/`X-Status`).
    pub fn from_headers(headers: &Headers) -> Self {
        let mut flags = Flags::default();
        if let Some(status) = headers.get("status") {
            flags.seen = status.contains(&b'R');
            flags.old = status.contains(&b'O');
        }
        if let Some(x) = headers.get("x-status") {
            flags.answered = x.contains(&b'A');
            flags.flagged = x.contains(&b'F');
            flags.draft = x.contains(&b'T');
            flags.deleted = x.contains(&b'D');
        }
        flags
    }

    /// The `Status` value (`RO`, `R`, `O`), or `None` when neither is set.
    pub fn status(&self) -> Option<String> {
        let mut s = String::new();
        if self.seen {
            s.push('R');
        }
        if self.old {
            s.push('O');
        }
        (!s.is_empty()).then_some(s)
    }

    /// The `X-Status` value (letters of `ADFT`), or `None` when none is set.
    pub fn x_status(&self) -> Option<String> {
        let mut s = String::new();
        for (on, c) in [
            (self.answered, 'A'),
            (self.deleted, 'D'),
            (self.flagged, 'F'),
            (self.draft, 'T'),
        ] {
            if on {
                s.push(c);
            }
        }
        (!s.is_empty()).then_some(s)
    }

    /// `headers` with every `Status` and `X-Status` field replaced by these flags' fields,
    /// placed at the end of the section.
    pub fn apply(&self, headers: &Headers) -> Headers {
        let mut out = Vec::with_capacity(headers.as_bytes().len() + 32);
        let mut crlf = false;
        for field in headers.fields() {
            crlf |= field.raw.ends_with(b"\r\n");
            if field.name.eq_ignore_ascii_case(b"status")
                || field.name.eq_ignore_ascii_case(b"x-status")
            {
                continue;
            }
            out.extend_from_slice(field.raw);
            if !field.raw.ends_with(b"\n") {
                out.push(b'\n');
            }
        }
        let eol = if crlf { "\r\n" } else { "\n" };
        if let Some(s) = self.status() {
            out.extend_from_slice(format!("Status: {s}{eol}").as_bytes());
        }
        if let Some(s) = self.x_status() {
            out.extend_from_slice(format!("X-Status: {s}{eol}").as_bytes());
        }
        Headers::new(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_write() {
        let h = Headers::new(b"Subject: a\nStatus: RO\nX-Status: FDx\nTo: b\n".to_vec());
        let f = Flags::from_headers(&h);
        assert_eq!(
            f,
            Flags {
                seen: true,
                old: true,
                flagged: true,
                deleted: true,
                ..Flags::default()
            }
        );
        let g = Flags {
            answered: true,
            ..f
        };
        let h2 = g.apply(&h);
        assert_eq!(
            h2.as_bytes(),
            b"Subject: a\nTo: b\nStatus: RO\nX-Status: ADF\n"
        );
        assert_eq!(Flags::from_headers(&h2), g);
        let none = Flags::default().apply(&h);
        assert_eq!(none.as_bytes(), b"Subject: a\nTo: b\n");
        assert_eq!(Flags::from_headers(&none), Flags::default());
    }
}
