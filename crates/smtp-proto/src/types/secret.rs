//! A wrapper for credentials whose `Debug` never shows them.

use std::fmt;

/// A credential (an AUTH initial response, a password, a SASL exchange line).
///
/// `Debug` prints `Secret(<redacted>)`, so logging a command or an event never leaks the value.
/// [`Secret::expose`] is the one way to read it, easy to find in a review.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a credential.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Reads the credential.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the credential.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("AHVzZXIAcGFzcw==".to_string());
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "AHVzZXIAcGFzcw==");
    }
}
