//! The client side of AUTH PLAIN (RFC 4616) and LOGIN: building the responses.

use crate::codec::base64::encode as base64;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_response_rfc4616() {
        // RFC 4616 §4: "\0tim\0tanstaaftanstaaf".
        let c = Credentials::new("tim", "tanstaaftanstaaf");
        assert_eq!(plain_response(&c).expose(), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
        assert_eq!(login_response("tim").expose(), "dGlt");
    }
}
