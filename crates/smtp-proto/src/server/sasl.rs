//! The server side of SASL PLAIN (RFC 4616) and LOGIN, with the base64 of RFC 4648 §4 that
//! AUTH exchanges use (RFC 4954 §4).

/// Decodes strict base64 (`=` padding required, no whitespace). `None` when malformed.
pub(crate) fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    if !input.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let groups = input.len() / 4;
    for (i, group) in input.chunks_exact(4).enumerate() {
        let pad = group.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != groups) {
            return None;
        }
        let mut n = 0u32;
        for &c in &group[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

/// `message = [authzid] UTF8NUL authcid UTF8NUL passwd` (RFC 4616 §2): the authorization
/// identity (if any), the user name and the password.
pub(crate) fn plain_message(message: &[u8]) -> Option<(Option<String>, String, String)> {
    let mut parts = message.split(|&b| b == 0);
    let (authzid, authcid, passwd) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || passwd.is_empty() {
        return None;
    }
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
    let authzid = if authzid.is_empty() {
        None
    } else {
        Some(text(authzid)?)
    };
    Some((authzid, text(authcid)?, text(passwd)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_answers() {
        assert_eq!(base64_decode(b"").unwrap(), b"");
        assert_eq!(base64_decode(b"Zg==").unwrap(), b"f");
        assert_eq!(base64_decode(b"Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode(b"Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode(b"Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode(b"VXNlcm5hbWU6").unwrap(), b"Username:");
        assert!(base64_decode(b"Zm9").is_none());
        assert!(base64_decode(b"Zg==Zg==").is_none());
        assert!(base64_decode(b"Z===").is_none());
        assert!(base64_decode(b"Zm9*").is_none());
    }

    #[test]
    fn plain_rfc4954_example() {
        // RFC 4954 §4: "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=" is "test\0test\01234".
        let msg = base64_decode(b"dGVzdAB0ZXN0ADEyMzQ=").unwrap();
        assert_eq!(
            plain_message(&msg),
            Some((Some("test".into()), "test".into(), "1234".into()))
        );
        assert_eq!(
            plain_message(b"\0tim\0tanstaaftanstaaf"),
            Some((None, "tim".into(), "tanstaaftanstaaf".into()))
        );
        assert_eq!(plain_message(b"\0\0pw"), None);
        assert_eq!(plain_message(b"a\0b"), None);
        assert_eq!(plain_message(b"a\0b\0c\0d"), None);
    }
}
