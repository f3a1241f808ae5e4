//! The client side of AUTH PLAIN (RFC 4616) and LOGIN: building the responses.

use crate::types::secret::Secret;

use super::config::Credentials;

/// RFC 4616 §2: `message = [authzid] UTF8NUL authcid UTF8NUL passwd`, base64-encoded as the
/// AUTH initial response (RFC 4954 §4). No authzid: act as the authenticated user.
pub(super) fn plain_response(credentials: &Credentials) -> Secret<String> {
    let mut message = Vec::with_capacity(2 + credentials.username.len() + 64);
    message.push(0);
    message.extend_from_slice(credentials.username.as_bytes());
    message.push(0);
    message.extend_from_slice(credentials.password.expose().as_bytes());
    Secret::new(base64(&message))
}

/// LOGIN answers the server's `334 VXNlcm5hbWU6` ("Username:") with the base64 user name,
/// then `334 UGFzc3dvcmQ6` ("Password:") with the base64 password.
pub(super) fn login_response(value: &str) -> Secret<String> {
    Secret::new(base64(value.as_bytes()))
}

/// Base64 (RFC 4648 §4) with padding, as RFC 4954 requires.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for group in input.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_answers() {
        // RFC 4648 §10.
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    #[test]
    fn plain_response_rfc4616() {
        // RFC 4616 §4: "\0tim\0tanstaaftanstaaf".
        let c = Credentials::new("tim", "tanstaaftanstaaf");
        assert_eq!(plain_response(&c).expose(), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
        assert_eq!(login_response("tim").expose(), "dGlt");
    }
}
