//! Decoding (server side) and encoding (client side) of commands (RFC 5321 §4.1.1).
//!
//! Verbs and the `FROM:` / `TO:` keywords are case-insensitive (§2.4). The decoder takes one
//! line without its CRLF; framing is [`crate::codec::line::next_line`].

use crate::codec::param::{
    encode_mail_parameters, encode_rcpt_parameters, mail_parameters, rcpt_parameters,
    trim_trailing_spaces,
};
use crate::codec::{address, base64};
use crate::error::{AddressError, DecodeError};
use crate::types::address::{ForwardPath, Host, Mailbox, ReversePath};
use crate::types::command::{Command, Mechanism};
use crate::types::limits::Limits;
use crate::types::secret::Secret;

fn syntax(verb: &'static str, expected: &'static str) -> DecodeError {
    DecodeError::Syntax { verb, expected }
}

/// Checks the path limits of RFC 5321 §4.5.3.1 on a decoded mailbox.
fn check_mailbox(m: &Mailbox, path_len: usize, limits: &Limits) -> Result<(), AddressError> {
    if path_len > limits.path {
        return Err(AddressError::TooLong {
            what: "path",
            limit: limits.path,
        });
    }
    if m.local_part().encoded_len() > limits.local_part {
        return Err(AddressError::TooLong {
            what: "local-part",
            limit: limits.local_part,
        });
    }
    if let Host::Domain(d) = m.host()
        && d.as_str().len() > limits.domain
    {
        return Err(AddressError::TooLong {
            what: "domain",
            limit: limits.domain,
        });
    }
    Ok(())
}

/// The text argument of NOOP, HELP, VRFY and EXPN: `String = Atom / Quoted-string`, accepted
/// here as any printable text (the application interprets it), never a control character.
fn text_argument(arg: &[u8], verb: &'static str) -> Result<String, DecodeError> {
    match std::str::from_utf8(arg) {
        Ok(s) if !s.chars().any(char::is_control) => Ok(s.to_owned()),
        _ => Err(syntax(verb, "printable text")),
    }
}

impl Command {
    /// Decodes one command line, `line` without its CRLF.
    ///
    /// `utf8` says whether the server offers SMTPUTF8 (RFC 6531): without it, non-ASCII
    /// addresses are refused; with it, `MAIL` needs the `SMTPUTF8` parameter for a non-ASCII
    /// reverse-path (§3.4), and whether a RCPT may hold one depends on the transaction, which
    /// the session checks.
    ///
    /// # Errors
    ///
    /// [`DecodeError`], which knows the reply to send.
    pub fn decode(line: &[u8], limits: &Limits, utf8: bool) -> Result<Command, DecodeError> {
        let verb_len = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let (verb, args) = line.split_at(verb_len);
        let is = |name: &str| verb.eq_ignore_ascii_case(name.as_bytes());
        let is_mail_or_rcpt = is("MAIL") || is("RCPT");
        // §4.5.3.1.4; MAIL and RCPT may use the parameter allowance.
        if !is_mail_or_rcpt && line.len() + 2 > limits.command_line {
            return Err(DecodeError::LineTooLong {
                limit: limits.command_line,
            });
        }
        if line.len() + 2 > limits.max_command_line() {
            return Err(DecodeError::LineTooLong {
                limit: limits.max_command_line(),
            });
        }
        // The argument after the single SP, with trailing spaces tolerated.
        let arg = trim_trailing_spaces(args.strip_prefix(b" ").unwrap_or(args));
        let no_arg = |verb: &'static str, cmd: Command| {
            if arg.is_empty() {
                Ok(cmd)
            } else {
                Err(syntax(verb, "no argument"))
            }
        };
        if is("EHLO") || is("HELO") || is("LHLO") {
            let name = if is("EHLO") {
                "EHLO"
            } else if is("HELO") {
                "HELO"
            } else {
                "LHLO"
            };
            let host = match address::host(arg, utf8) {
                Ok((host, [])) => host,
                _ => return Err(syntax(name, "domain or address literal")),
            };
            return Ok(match name {
                "EHLO" => Command::Ehlo(host),
                "HELO" => Command::Helo(host),
                _ => Command::Lhlo(host),
            });
        }
        if is("MAIL") {
            return decode_mail(args, limits, utf8);
        }
        if is("RCPT") {
            return decode_rcpt(args, limits, utf8);
        }
        if is("DATA") {
            return no_arg("DATA", Command::Data);
        }
        if is("RSET") {
            return no_arg("RSET", Command::Rset);
        }
        if is("QUIT") {
            return no_arg("QUIT", Command::Quit);
        }
        if is("STARTTLS") {
            return no_arg("STARTTLS", Command::StartTls);
        }
        if is("NOOP") {
            let text = (!arg.is_empty())
                .then(|| text_argument(arg, "NOOP"))
                .transpose()?;
            return Ok(Command::Noop(text));
        }
        if is("HELP") {
            let text = (!arg.is_empty())
                .then(|| text_argument(arg, "HELP"))
                .transpose()?;
            return Ok(Command::Help(text));
        }
        if is("VRFY") || is("EXPN") {
            let name = if is("VRFY") { "VRFY" } else { "EXPN" };
            if arg.is_empty() {
                return Err(syntax(name, "an address or name"));
            }
            let text = text_argument(arg, name)?;
            return Ok(if name == "VRFY" {
                Command::Vrfy(text)
            } else {
                Command::Expn(text)
            });
        }
        if is("BDAT") {
            return decode_bdat(arg);
        }
        if is("AUTH") {
            return decode_auth(arg);
        }
        Err(DecodeError::UnknownCommand)
    }

    /// Encodes the command, CRLF included, appending to `out`.
    ///
    /// The encoding of every command this type can hold decodes back to the same command.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut s = String::new();
        match self {
            Command::Helo(h) => s = format!("HELO {h}"),
            Command::Ehlo(h) => s = format!("EHLO {h}"),
            Command::Lhlo(h) => s = format!("LHLO {h}"),
            Command::Mail { from, params } => {
                s = format!("MAIL FROM:{from}");
                encode_mail_parameters(params, &mut s);
            }
            Command::Rcpt { to, params } => {
                s = format!("RCPT TO:{to}");
                encode_rcpt_parameters(params, &mut s);
            }
            Command::Data => s.push_str("DATA"),
            Command::Bdat { size, last } => {
                s = format!("BDAT {size}{}", if *last { " LAST" } else { "" });
            }
            Command::Rset => s.push_str("RSET"),
            Command::Noop(None) => s.push_str("NOOP"),
            Command::Noop(Some(t)) => s = format!("NOOP {t}"),
            Command::Quit => s.push_str("QUIT"),
            Command::Vrfy(t) => s = format!("VRFY {t}"),
            Command::Expn(t) => s = format!("EXPN {t}"),
            Command::Help(None) => s.push_str("HELP"),
            Command::Help(Some(t)) => s = format!("HELP {t}"),
            Command::StartTls => s.push_str("STARTTLS"),
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                s = format!("AUTH {mechanism}");
                match initial_response.as_ref().map(Secret::expose) {
                    Some(r) if r.is_empty() => s.push_str(" ="),
                    Some(r) => {
                        s.push(' ');
                        s.push_str(r);
                    }
                    None => {}
                }
            }
        }
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// The encoded command, CRLF included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Strips `keyword` (case-insensitive, like `" FROM:"`), then the one space some clients send
/// after the colon (RFC 5321 has none; Postfix and most servers accept it).
fn strip_keyword<'a>(args: &'a [u8], keyword: &[u8]) -> Option<&'a [u8]> {
    if args.len() < keyword.len() || !args[..keyword.len()].eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = &args[keyword.len()..];
    Some(rest.strip_prefix(b" ").unwrap_or(rest))
}

/// `mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF`
fn decode_mail(args: &[u8], limits: &Limits, utf8: bool) -> Result<Command, DecodeError> {
    let Some(input) = strip_keyword(args, b" FROM:") else {
        return Err(syntax("MAIL", "FROM:<address>"));
    };
    let address_error = |source| DecodeError::Address {
        sender: true,
        source,
    };
    let (from, rest) = address::reverse_path(input, utf8).map_err(address_error)?;
    if let ReversePath::Mailbox(m) = &from {
        check_mailbox(m, input.len() - rest.len(), limits).map_err(address_error)?;
    }
    let params = mail_parameters(rest)?;
    // RFC 6531 §3.4: a non-ASCII reverse-path needs the SMTPUTF8 parameter.
    if !from.is_ascii() && !params.smtputf8 {
        return Err(address_error(AddressError::NonAscii {
            what: "reverse-path",
        }));
    }
    Ok(Command::Mail { from, params })
}

/// `rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
/// [SP Rcpt-parameters] CRLF`
fn decode_rcpt(args: &[u8], limits: &Limits, utf8: bool) -> Result<Command, DecodeError> {
    let Some(input) = strip_keyword(args, b" TO:") else {
        return Err(syntax("RCPT", "TO:<address>"));
    };
    let address_error = |source| DecodeError::Address {
        sender: false,
        source,
    };
    let (to, rest) = address::forward_path(input, utf8).map_err(address_error)?;
    if let ForwardPath::Mailbox(m) = &to {
        check_mailbox(m, input.len() - rest.len(), limits).map_err(address_error)?;
    }
    let params = rcpt_parameters(rest)?;
    Ok(Command::Rcpt { to, params })
}

/// `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF`, `chunk-size = 1*DIGIT`,
/// `end-marker = "LAST"` (RFC 3030 §2).
fn decode_bdat(arg: &[u8]) -> Result<Command, DecodeError> {
    let expected = "chunk-size [\"LAST\"]";
    let (size, marker) = match arg.iter().position(|&b| b == b' ') {
        Some(i) => (&arg[..i], Some(&arg[i + 1..])),
        None => (arg, None),
    };
    let last = match marker {
        None => false,
        Some(m) if m.eq_ignore_ascii_case(b"LAST") => true,
        Some(_) => return Err(syntax("BDAT", expected)),
    };
    if size.is_empty() || size.len() > 20 || !size.iter().all(u8::is_ascii_digit) {
        return Err(syntax("BDAT", expected));
    }
    let size = std::str::from_utf8(size)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| syntax("BDAT", expected))?;
    Ok(Command::Bdat { size, last })
}

/// `auth-command = "AUTH" SP sasl-mech [SP initial-response]` (RFC 4954 §4).
fn decode_auth(arg: &[u8]) -> Result<Command, DecodeError> {
    let expected = "mechanism [initial-response]";
    let (mech, response) = match arg.iter().position(|&b| b == b' ') {
        Some(i) => (&arg[..i], Some(&arg[i + 1..])),
        None => (arg, None),
    };
    let mechanism = std::str::from_utf8(mech)
        .ok()
        .and_then(|m| Mechanism::new(m).ok())
        .ok_or_else(|| syntax("AUTH", expected))?;
    let initial_response = match response {
        None => None,
        Some(b"=") => Some(Secret::new(String::new())),
        Some(r) if base64::is_valid(r) => {
            Some(Secret::new(String::from_utf8_lossy(r).into_owned()))
        }
        Some(_) => return Err(syntax("AUTH", "a base64 initial response")),
    };
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::param::*;

    fn decode(line: &str) -> Result<Command, DecodeError> {
        Command::decode(line.as_bytes(), &Limits::default(), true)
    }

    fn mb(s: &str) -> Mailbox {
        s.parse().unwrap()
    }

    /// Known answers, taken from the examples of RFC 5321 Appendix D, RFC 1870 §4,
    /// RFC 3030 §4, RFC 3461 §9 and RFC 4954 §4.
    #[test]
    fn known_commands() {
        let table: Vec<(&str, Command)> = vec![
            // RFC 5321 D.1
            (
                "EHLO bar.com",
                Command::Ehlo(Host::Domain("bar.com".parse().unwrap())),
            ),
            (
                "MAIL FROM:<Smith@bar.com>",
                Command::Mail {
                    from: ReversePath::Mailbox(mb("Smith@bar.com")),
                    params: MailParams::default(),
                },
            ),
            (
                "RCPT TO:<Jones@foo.com>",
                Command::Rcpt {
                    to: ForwardPath::Mailbox(mb("Jones@foo.com")),
                    params: RcptParams::default(),
                },
            ),
            ("DATA", Command::Data),
            ("QUIT", Command::Quit),
            // RFC 5321 D.4 (source routes are accepted and ignored)
            (
                "MAIL FROM:<@foo.com:JQP@bar.com>",
                Command::Mail {
                    from: ReversePath::Mailbox(mb("JQP@bar.com")),
                    params: MailParams::default(),
                },
            ),
            ("VRFY Crispin", Command::Vrfy("Crispin".into())),
            (
                "EXPN Example-People",
                Command::Expn("Example-People".into()),
            ),
            ("RSET", Command::Rset),
            ("NOOP", Command::Noop(None)),
            ("HELP", Command::Help(None)),
            ("HELP MAIL", Command::Help(Some("MAIL".into()))),
            (
                "RCPT TO:<Postmaster>",
                Command::Rcpt {
                    to: ForwardPath::Postmaster,
                    params: RcptParams::default(),
                },
            ),
            (
                "MAIL FROM:<>",
                Command::Mail {
                    from: ReversePath::Null,
                    params: MailParams::default(),
                },
            ),
            // RFC 1870 §4
            (
                "MAIL FROM:<ned@thor.innosoft.com> SIZE=500000",
                Command::Mail {
                    from: ReversePath::Mailbox(mb("ned@thor.innosoft.com")),
                    params: MailParams {
                        size: Some(500_000),
                        ..MailParams::default()
                    },
                },
            ),
            // RFC 3030 §4.2
            (
                "MAIL FROM:<Sam@Random.com> BODY=BINARYMIME",
                Command::Mail {
                    from: ReversePath::Mailbox(mb("Sam@Random.com")),
                    params: MailParams {
                        body: Some(Body::BinaryMime),
                        ..MailParams::default()
                    },
                },
            ),
            (
                "BDAT 100000",
                Command::Bdat {
                    size: 100_000,
                    last: false,
                },
            ),
            (
                "BDAT 0 LAST",
                Command::Bdat {
                    size: 0,
                    last: true,
                },
            ),
            // RFC 3461 §9 (the DSN example)
            (
                "MAIL FROM:<Alice@Pure-Heart.ORG> RET=HDRS ENVID=QQ314159",
                Command::Mail {
                    from: ReversePath::Mailbox(mb("Alice@Pure-Heart.ORG")),
                    params: MailParams {
                        ret: Some(Ret::Hdrs),
                        envid: Some(XText::new("QQ314159").unwrap()),
                        ..MailParams::default()
                    },
                },
            ),
            (
                "RCPT TO:<Bob@Big-Bucks.COM> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Big-Bucks.COM",
                Command::Rcpt {
                    to: ForwardPath::Mailbox(mb("Bob@Big-Bucks.COM")),
                    params: RcptParams {
                        notify: Some(Notify {
                            success: true,
                            failure: true,
                            delay: false,
                        }),
                        orcpt: Some(
                            Orcpt::new("rfc822", XText::new("Bob@Big-Bucks.COM").unwrap()).unwrap(),
                        ),
                        other: vec![],
                    },
                },
            ),
            (
                "RCPT TO:<Carol@Ivory.EDU> NOTIFY=NEVER",
                Command::Rcpt {
                    to: ForwardPath::Mailbox(mb("Carol@Ivory.EDU")),
                    params: RcptParams {
                        notify: Some(Notify::NEVER),
                        ..RcptParams::default()
                    },
                },
            ),
            // RFC 4954 §4 and §5
            (
                "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=",
                Command::Auth {
                    mechanism: Mechanism::plain(),
                    initial_response: Some(Secret::new("dGVzdAB0ZXN0ADEyMzQ=".into())),
                },
            ),
            (
                "AUTH PLAIN =",
                Command::Auth {
                    mechanism: Mechanism::plain(),
                    initial_response: Some(Secret::new(String::new())),
                },
            ),
            (
                "AUTH LOGIN",
                Command::Auth {
                    mechanism: Mechanism::login(),
                    initial_response: None,
                },
            ),
            (
                "MAIL FROM:<e=mc2@example.com> AUTH=e+3Dmc2@example.com",
                Command::Mail {
                    from: ReversePath::Mailbox(mb("e=mc2@example.com")),
                    params: MailParams {
                        auth: Some(AuthParam::Identity(
                            XText::new("e+3Dmc2@example.com").unwrap(),
                        )),
                        ..MailParams::default()
                    },
                },
            ),
            ("STARTTLS", Command::StartTls),
            // Case-insensitive verbs (Python's smtplib sends "mail FROM:").
            (
                "mail FROM:<a@b.example>",
                Command::Mail {
                    from: ReversePath::Mailbox(mb("a@b.example")),
                    params: MailParams::default(),
                },
            ),
            (
                "ehlo [127.0.0.1]",
                Command::Ehlo("[127.0.0.1]".parse().unwrap()),
            ),
            // RFC 6531: a UTF-8 reverse-path with SMTPUTF8.
            (
                "MAIL FROM:<用户@例子.广告> SMTPUTF8",
                Command::Mail {
                    from: ReversePath::Mailbox(mb("用户@例子.广告")),
                    params: MailParams {
                        smtputf8: true,
                        ..MailParams::default()
                    },
                },
            ),
        ];
        for (line, expected) in table {
            let decoded = decode(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(decoded, expected, "{line}");
            // encode -> decode gives the same value.
            let encoded = decoded.to_bytes();
            let again =
                Command::decode(&encoded[..encoded.len() - 2], &Limits::default(), true).unwrap();
            assert_eq!(
                again,
                expected,
                "{line} re-encoded as {:?}",
                String::from_utf8_lossy(&encoded)
            );
        }
    }

    #[test]
    fn known_errors_and_their_replies() {
        let table: &[(&str, &str)] = &[
            ("FOO bar", "500 5.5.2 Error: command not recognized"),
            ("MAIL TO:<a@b>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            (
                "MAIL FROM:a@b.example",
                "501 5.1.7 Bad sender address syntax: invalid path: expected \"<\"",
            ),
            (
                "RCPT TO:<a@@b>",
                "501 5.1.3 Bad recipient address syntax: invalid domain: expected a letter or digit at the start of each label",
            ),
            (
                "MAIL FROM:<a@b.example> SIZE=x",
                "501 5.5.4 Bad SIZE parameter: expected a number",
            ),
            (
                "MAIL FROM:<a@b.example> SIZE=1 SIZE=2",
                "501 5.5.4 Duplicate SIZE parameter",
            ),
            (
                "MAIL FROM:<a@b.example>  SIZE=1",
                "501 5.5.4 Bad parameter parameter: expected esmtp-keyword",
            ),
            (
                "RCPT TO:<a@b.example> NOTIFY=NEVER,SUCCESS",
                "501 5.5.4 Bad NOTIFY parameter: expected NEVER or a list of SUCCESS, FAILURE, DELAY",
            ),
            (
                "MAIL FROM:<用户@例子.广告>",
                "553 5.6.7 Non-ASCII address requires SMTPUTF8",
            ),
            ("DATA now", "501 5.5.4 Syntax: DATA no argument"),
            ("BDAT x", "501 5.5.4 Syntax: BDAT chunk-size [\"LAST\"]"),
            (
                "AUTH PLAIN not*base64",
                "501 5.5.4 Syntax: AUTH a base64 initial response",
            ),
            ("VRFY", "501 5.5.4 Syntax: VRFY an address or name"),
            ("NOOP \u{1}", "501 5.5.4 Syntax: NOOP printable text"),
            (
                "MAIL FROM:<>>>>",
                "501 5.5.4 Bad parameter parameter: expected a space before each parameter",
            ),
        ];
        for (line, reply) in table {
            let err = decode(line).expect_err(line);
            assert_eq!(err.reply().to_string(), *reply, "{line}");
        }
    }

    #[test]
    fn limits_of_rfc5321_4_5_3_1() {
        let local = "a".repeat(65);
        let err = decode(&format!("RCPT TO:<{local}@example.com>")).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Address {
                source: AddressError::TooLong {
                    what: "local-part",
                    ..
                },
                ..
            }
        ));
        let long_domain = vec!["a".repeat(60); 5].join(".");
        let err = decode(&format!("RCPT TO:<a@{long_domain}>")).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Address {
                    source: AddressError::TooLong { .. },
                    ..
                }
            ),
            "{err}"
        );
        let err = decode(&format!("NOOP {}", "x".repeat(600))).unwrap_err();
        assert_eq!(err, DecodeError::LineTooLong { limit: 512 });
        // MAIL may use the parameter allowance.
        let envid = "x".repeat(100);
        assert!(
            decode(&format!(
                "MAIL FROM:<{}@example.com> ENVID={envid} AUTH=<> SIZE=1 BODY=8BITMIME RET=FULL",
                "a".repeat(64)
            ))
            .is_ok()
        );
    }

    #[test]
    fn bdat_size_overflow_is_a_syntax_error() {
        assert!(decode("BDAT 99999999999999999999").is_err());
        assert!(decode("BDAT 18446744073709551615 LAST").is_ok());
    }
}
