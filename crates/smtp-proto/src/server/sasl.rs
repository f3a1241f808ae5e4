//! The server side of SASL PLAIN (RFC 4616) and LOGIN, with the base64 of RFC 4648 §4 that
//! AUTH exchanges use (RFC 4954 §4).

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
    use crate::codec::base64::decode as base64_decode;

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
