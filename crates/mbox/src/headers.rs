//! A message's header section as stored, with field lookup.

use std::fmt;

/// The header section of a message, raw bytes as stored (every line with its line end, the
/// blank line that ends the section excluded).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Headers(Vec<u8>);

/// One header field: its name and raw value (folding kept, leading white space and the final
/// line end removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field name, as written.
    pub name: &'a [u8],
    /// The value after the colon, continuation lines included.
    pub value: &'a [u8],
    /// The whole field: name, colon, value and every line end.
    pub raw: &'a [u8],
}

impl Headers {
    /// Wraps a header section (no validation: any bytes are a header section to look into).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The raw bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The fields in order. A line that is neither a field (`name:`) nor a continuation (starts
    /// with a space or tab) is its own field with an empty name, so nothing is skipped.
    pub fn fields(&self) -> Fields<'_> {
        Fields { rest: &self.0 }
    }

    /// The value of the first field named `name` (compared case-insensitively, RFC 5322
    /// section 1.2.2), trimmed of surrounding white space.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields()
            .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| f.value.trim_ascii())
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Headers({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// Iterator over [`Headers::fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        // RFC 5322 section 2.2.3: a field is unfolded by removing each CRLF that is
        // immediately followed by WSP, so the field ends at a line end not followed by WSP.
        let mut end = 0;
        loop {
            match memchr::memchr(b'\n', &self.rest[end..]) {
                Some(i) => {
                    end += i + 1;
                    if !matches!(self.rest.get(end), Some(b' ' | b'\t')) {
                        break;
                    }
                }
                None => {
                    end = self.rest.len();
                    break;
                }
            }
        }
        let raw = &self.rest[..end];
        self.rest = &self.rest[end..];
        let line_end =
            raw.len() - usize::from(raw.ends_with(b"\n")) - usize::from(raw.ends_with(b"\r\n"));
        let body = &raw[..line_end];
        let (name, value) = match memchr::memchr(b':', body) {
            Some(colon) if is_field_name(body[..colon].trim_ascii_end()) => {
                (body[..colon].trim_ascii_end(), &body[colon + 1..])
            }
            _ => (&body[..0], body),
        };
        Some(Field {
            name,
            value: value.trim_ascii_start(),
            raw,
        })
    }
}

/// RFC 5322 section 3.6.8: `field-name = 1*ftext`, `ftext = %d33-57 / %d59-126`.
pub(crate) fn is_field_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b) && b != b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_folding() {
        let h = Headers::new(
            b"Subject: hi\n there\nStatus: RO\r\nX-Odd : v\nnot a field\nTo: a@b".to_vec(),
        );
        let fields: Vec<_> = h.fields().map(|f| (f.name, f.value)).collect();
        assert_eq!(
            fields,
            vec![
                (&b"Subject"[..], &b"hi\n there"[..]),
                (b"Status", b"RO"),
                (b"X-Odd", b"v"),
                (b"", b"not a field"),
                (b"To", b"a@b"),
            ]
        );
        assert_eq!(h.get("status"), Some(&b"RO"[..]));
        assert_eq!(h.get("x-odd"), Some(&b"v"[..]));
        assert_eq!(h.get("missing"), None);
        let total: usize = h.fields().map(|f| f.raw.len()).sum();
        assert_eq!(total, h.as_bytes().len());
    }
}
