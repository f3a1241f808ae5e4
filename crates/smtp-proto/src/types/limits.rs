//! Size limits (RFC 5321 §4.5.3.1), made configurable.

/// The limits the codec and sessions enforce. The defaults are RFC 5321 §4.5.3.1's minimums,
/// which every implementation must accept, except `recipients`, which follows Postfix's
/// `smtpd_recipient_limit` (the RFC's 100 is a minimum, not a maximum).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// §4.5.3.1.4: "The maximum total length of a command line including the command word and
    /// the `<CRLF>` is 512 octets."
    pub command_line: usize,
    /// Extra octets allowed on MAIL and RCPT lines for their parameters. §4.5.3.1.4: "SMTP
    /// extensions may be used to increase this limit"; RFC 3461 §5 adds 100 to MAIL (ENVID) and
    /// 500 to RCPT (ORCPT), RFC 4954 §5 adds 500 to MAIL (AUTH=).
    pub parameter_allowance: usize,
    /// §4.5.3.1.1: "The maximum total length of a user name or other local-part is 64 octets."
    pub local_part: usize,
    /// §4.5.3.1.2: "The maximum total length of a domain name or number is 255 octets."
    pub domain: usize,
    /// §4.5.3.1.3: "The maximum total length of a reverse-path or forward-path is 256 octets
    /// (including the punctuation and element separators)."
    pub path: usize,
    /// §4.5.3.1.5: "The maximum total length of a reply line including the reply code and the
    /// `<CRLF>` is 512 octets."
    pub reply_line: usize,
    /// How many lines a multi-line reply may have before the client gives up on it (the RFC
    /// sets no limit; an EHLO reply has a few dozen at most).
    pub reply_lines: usize,
    /// §4.5.3.1.8: the server must accept at least 100 recipients; more get `452 4.5.3`
    /// (§4.5.3.1.10). Default 1000, as Postfix's `smtpd_recipient_limit`.
    pub recipients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            command_line: 512,
            parameter_allowance: 1000,
            local_part: 64,
            domain: 255,
            path: 256,
            reply_line: 512,
            reply_lines: 128,
            recipients: 1000,
        }
    }
}

impl Limits {
    /// The longest line a server reads before it refuses the command: MAIL and RCPT may use the
    /// parameter allowance; the decoder checks the other commands against `command_line`.
    pub fn max_command_line(&self) -> usize {
        self.command_line + self.parameter_allowance
    }
}
