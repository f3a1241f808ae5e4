//! Base64 (RFC 4648 §4) as SMTP AUTH uses it (RFC 4954 §4): strict, padded, no whitespace.
//! The decoder (server side), the encoder (client side) and the syntax check of an initial
//! response, side by side.

/// Decodes strict base64 (`=` padding required, no whitespace). `None` when malformed.
pub(crate) fn decode(input: &[u8]) -> Option<Vec<u8>> {
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

/// Base64 (RFC 4648 §4) with padding, as RFC 4954 requires.
pub(crate) fn encode(input: &[u8]) -> String {
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

/// `initial-response = base64 / "="` (RFC 4954 §4), `base64 = base64-terminal /
/// ( 1*(4base64-char) [base64-terminal] )`.
pub(crate) fn is_valid(s: &[u8]) -> bool {
    let body = s.iter().position(|&b| b == b'=').map_or(s, |i| &s[..i]);
    let padding = s.len() - body.len();
    !s.is_empty()
        && s.len().is_multiple_of(4)
        && padding <= 2
        && s[body.len()..].iter().all(|&b| b == b'=')
        && body
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §10.
    const VECTORS: [(&str, &str); 7] = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn known_answers_both_ways() {
        for (plain, encoded) in VECTORS {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded.as_bytes()).unwrap(), plain.as_bytes());
            assert_eq!(is_valid(encoded.as_bytes()), !encoded.is_empty());
        }
        assert_eq!(decode(b"VXNlcm5hbWU6").unwrap(), b"Username:");
        for bad in [&b"Zm9"[..], b"Zg==Zg==", b"Z===", b"Zm9*"] {
            assert!(decode(bad).is_none(), "{bad:?}");
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn any_bytes_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        for len in 0..bytes.len() {
            let encoded = encode(&bytes[..len]);
            assert_eq!(decode(encoded.as_bytes()).unwrap(), &bytes[..len]);
        }
    }
}
