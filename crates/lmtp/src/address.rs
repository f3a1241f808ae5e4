//! Where an LMTP server listens: a TCP address or a Unix socket, written as Postfix writes
//! LMTP next hops (`inet:host:port`, `unix:/path`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// An LMTP endpoint.
///
/// ```
/// use mailroom_lmtp::Address;
///
/// let tcp: Address = "inet:127.0.0.1:24".parse().unwrap();
/// assert_eq!(tcp, Address::Tcp("127.0.0.1:24".into()));
/// let unix: Address = "unix:/run/dovecot/lmtp".parse().unwrap();
/// assert_eq!(unix.to_string(), "unix:/run/dovecot/lmtp");
/// // Without a prefix: a path if it starts with '/', else host:port.
/// assert_eq!("/tmp/s".parse::<Address>().unwrap(), Address::Unix("/tmp/s".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// `host:port` (a name or an address; `[::1]:24` for IPv6).
    Tcp(String),
    /// The path of a Unix stream socket.
    Unix(PathBuf),
}

/// An endpoint that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Empty, or nothing after the `inet:` / `unix:` prefix.
    #[error("empty lmtp address")]
    Empty,
    /// A TCP address without `:port`.
    #[error("lmtp address {0:?} has no port (expected host:port)")]
    NoPort(String),
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (unix, rest) = if let Some(rest) = s.strip_prefix("unix:") {
            (true, rest)
        } else if let Some(rest) = s.strip_prefix("inet:") {
            (false, rest)
        } else {
            (s.starts_with('/'), s)
        };
        if rest.is_empty() {
            return Err(AddressError::Empty);
        }
        if unix {
            return Ok(Address::Unix(PathBuf::from(rest)));
        }
        match rest.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Address::Tcp(rest.to_owned()))
            }
            _ => Err(AddressError::NoPort(rest.to_owned())),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "inet:{a}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let table: [(&str, Result<Address, AddressError>); 7] = [
            ("inet:localhost:24", Ok(Address::Tcp("localhost:24".into()))),
            ("127.0.0.1:2424", Ok(Address::Tcp("127.0.0.1:2424".into()))),
            ("[::1]:24", Ok(Address::Tcp("[::1]:24".into()))),
            (
                "unix:private/dovecot-lmtp",
                Ok(Address::Unix("private/dovecot-lmtp".into())),
            ),
            (
                "inet:localhost",
                Err(AddressError::NoPort("localhost".into())),
            ),
            ("inet:", Err(AddressError::Empty)),
            ("host:99999", Err(AddressError::NoPort("host:99999".into()))),
        ];
        for (input, expected) in table {
            let got = input.parse::<Address>();
            assert_eq!(got, expected, "{input}");
            if let Ok(a) = got {
                assert_eq!(a.to_string().parse::<Address>(), Ok(a.clone()));
            }
        }
    }
}
