//! The service extensions a server announces in its EHLO reply (RFC 5321 §4.1.1.1), typed.

use crate::types::command::Mechanism;
use crate::types::param::Keyword;

/// The EHLO keywords of one server, as a typed set. Encode with [`Extensions::to_lines`]
/// (server side); decode with [`Extensions::from_lines`] (client side).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// `PIPELINING` (RFC 2920).
    pub pipelining: bool,
    /// `SIZE [n]` (RFC 1870): `Some(0)` when the server announces SIZE without a fixed limit.
    pub size: Option<u64>,
    /// `8BITMIME` (RFC 6152).
    pub eight_bit_mime: bool,
    /// `BINARYMIME` (RFC 3030).
    pub binary_mime: bool,
    /// `CHUNKING` (RFC 3030): BDAT.
    pub chunking: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `STARTTLS` (RFC 3207).
    pub starttls: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub enhanced_status_codes: bool,
    /// `DSN` (RFC 3461).
    pub dsn: bool,
    /// `AUTH mech...` (RFC 4954); empty when AUTH is not offered.
    pub auth: Vec<Mechanism>,
    /// `REQUIRETLS` (RFC 8689).
    pub requiretls: bool,
    /// `MT-PRIORITY [profile]` (RFC 6710).
    pub mt_priority: bool,
    /// `FUTURERELEASE max-interval max-date-time` (RFC 4865).
    pub future_release: Option<(u32, String)>,
    /// `DELIVERBY [min-by-time]` (RFC 2852): `Some(0)` without a minimum.
    pub deliver_by: Option<u32>,
    /// Other keywords, with their parameters, in the order announced.
    pub other: Vec<(Keyword, Vec<String>)>,
}

impl Extensions {
    /// The EHLO lines after the first (the greeting), one keyword with its parameters each.
    pub fn to_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut flag = |on: bool, name: &str| {
            if on {
                lines.push(name.to_owned());
            }
        };
        flag(self.pipelining, "PIPELINING");
        match self.size {
            Some(0) => lines.push("SIZE".into()),
            Some(n) => lines.push(format!("SIZE {n}")),
            None => {}
        }
        if let Some(n) = self.deliver_by {
            lines.push(if n == 0 {
                "DELIVERBY".into()
            } else {
                format!("DELIVERBY {n}")
            });
        }
        let mut flag = |on: bool, name: &str| {
            if on {
                lines.push(name.to_owned());
            }
        };
        flag(self.eight_bit_mime, "8BITMIME");
        flag(self.binary_mime, "BINARYMIME");
        flag(self.chunking, "CHUNKING");
        flag(self.smtputf8, "SMTPUTF8");
        flag(self.starttls, "STARTTLS");
        flag(self.enhanced_status_codes, "ENHANCEDSTATUSCODES");
        flag(self.dsn, "DSN");
        flag(self.requiretls, "REQUIRETLS");
        flag(self.mt_priority, "MT-PRIORITY");
        if !self.auth.is_empty() {
            let mechs: Vec<&str> = self.auth.iter().map(Mechanism::as_str).collect();
            lines.push(format!("AUTH {}", mechs.join(" ")));
        }
        if let Some((interval, date)) = &self.future_release {
            lines.push(format!("FUTURERELEASE {interval} {date}"));
        }
        for (keyword, params) in &self.other {
            let mut line = keyword.as_str().to_owned();
            for p in params {
                line.push(' ');
                line.push_str(p);
            }
            lines.push(line);
        }
        lines
    }

    /// Reads the keyword lines of an EHLO reply (the lines after the greeting):
    /// `ehlo-line = ehlo-keyword *( SP ehlo-param )`. Lines that are not keywords are skipped:
    /// a client should use what it understands and ignore the rest. The old `AUTH=mech` form
    /// some servers still send is read as AUTH.
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Self {
        let mut ext = Extensions::default();
        for line in lines {
            let mut words = line.as_ref().split([' ', '=']).filter(|w| !w.is_empty());
            let Some(Ok(keyword)) = words.next().map(Keyword::new) else {
                continue;
            };
            let params: Vec<&str> = words.collect();
            let number = |i: usize| params.get(i).and_then(|p| p.parse::<u64>().ok());
            match keyword.as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = Some(number(0).unwrap_or(0)),
                "8BITMIME" => ext.eight_bit_mime = true,
                "BINARYMIME" => ext.binary_mime = true,
                "CHUNKING" => ext.chunking = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "STARTTLS" => ext.starttls = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                "DSN" => ext.dsn = true,
                "REQUIRETLS" => ext.requiretls = true,
                "MT-PRIORITY" => ext.mt_priority = true,
                "DELIVERBY" => {
                    ext.deliver_by =
                        Some(number(0).and_then(|n| u32::try_from(n).ok()).unwrap_or(0));
                }
                "FUTURERELEASE" => {
                    if let (Some(n), Some(date)) = (number(0), params.get(1)) {
                        ext.future_release = u32::try_from(n).ok().map(|n| (n, (*date).to_owned()));
                    }
                }
                "AUTH" => {
                    for m in params.iter().filter_map(|p| Mechanism::new(p).ok()) {
                        if !ext.auth.contains(&m) {
                            ext.auth.push(m);
                        }
                    }
                }
                _ => ext
                    .other
                    .push((keyword, params.iter().map(|p| (*p).to_owned()).collect())),
            }
        }
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_ehlo_reply() {
        // The keyword lines of a default Postfix 3.7 EHLO reply.
        let lines = [
            "PIPELINING",
            "SIZE 10240000",
            "VRFY",
            "ETRN",
            "STARTTLS",
            "AUTH PLAIN LOGIN",
            "AUTH=PLAIN LOGIN",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
        ];
        let ext = Extensions::from_lines(&lines);
        assert!(ext.pipelining && ext.starttls && ext.dsn && ext.smtputf8 && ext.chunking);
        assert_eq!(ext.size, Some(10_240_000));
        assert_eq!(ext.auth, [Mechanism::plain(), Mechanism::login()]);
        assert_eq!(ext.other.len(), 2);
        // Encode, then decode: the same set.
        assert_eq!(Extensions::from_lines(&ext.to_lines()), ext);
    }
}
