//! Decoding and encoding the ESMTP parameters of MAIL and RCPT:
//! `Mail-parameters = esmtp-param *(SP esmtp-param)`,
//! `esmtp-param = esmtp-keyword ["=" esmtp-value]` (RFC 5321 §4.1.2).

use std::fmt::Write as _;

use crate::error::DecodeError;
use crate::types::param::{
    AuthParam, Body, DeliverBy, DeliverByMode, Hold, Keyword, MailParams, Notify, Orcpt, Param,
    RcptParams, Ret, Value, XText,
};

fn bad(keyword: &str, expected: &'static str) -> DecodeError {
    DecodeError::Parameter {
        keyword: keyword.to_owned(),
        expected,
    }
}

/// Splits `[SP esmtp-param *(SP esmtp-param)]` into keyword and value. Trailing spaces are
/// tolerated (some clients send them); two spaces between parameters are not.
fn split_params(rest: &[u8]) -> Result<Vec<(Keyword, Option<&str>)>, DecodeError> {
    let rest = trim_trailing_spaces(rest);
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = rest.strip_prefix(b" ") else {
        return Err(bad("parameter", "a space before each parameter"));
    };
    let text = std::str::from_utf8(rest).map_err(|_| bad("parameter", "UTF-8 text"))?;
    text.split(' ')
        .map(|param| {
            let (key, value) = match param.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (param, None),
            };
            let keyword = Keyword::new(key).map_err(|_| bad("parameter", "esmtp-keyword"))?;
            if let Some(v) = value {
                Value::new(v).map_err(|_| bad(keyword.as_str(), "esmtp-value"))?;
            }
            Ok((keyword, value))
        })
        .collect()
}

pub(crate) fn trim_trailing_spaces(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &s[..end]
}

fn set_once<T>(slot: &mut Option<T>, value: T, keyword: &Keyword) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateParameter {
            keyword: keyword.as_str().to_owned(),
        });
    }
    *slot = Some(value);
    Ok(())
}

fn flag_once(slot: &mut bool, value: Option<&str>, keyword: &Keyword) -> Result<(), DecodeError> {
    if value.is_some() {
        return Err(bad(keyword.as_str(), "no value"));
    }
    if *slot {
        return Err(DecodeError::DuplicateParameter {
            keyword: keyword.as_str().to_owned(),
        });
    }
    *slot = true;
    Ok(())
}

/// `1*max DIGIT` as a number.
fn digits(s: &str, max: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn xtext(value: Option<&str>, keyword: &Keyword, max: usize) -> Result<XText, DecodeError> {
    let v = value.ok_or_else(|| bad(keyword.as_str(), "a value"))?;
    if v.len() > max {
        return Err(bad(keyword.as_str(), "a shorter value"));
    }
    XText::new(v).map_err(|_| bad(keyword.as_str(), "xtext"))
}

fn other(keyword: Keyword, value: Option<&str>) -> Param {
    Param {
        keyword,
        // Validated by split_params.
        value: value.and_then(|v| Value::new(v).ok()),
    }
}

/// Decodes the parameters after `MAIL FROM:<path>`.
pub(crate) fn mail_parameters(rest: &[u8]) -> Result<MailParams, DecodeError> {
    let mut p = MailParams::default();
    for (keyword, value) in split_params(rest)? {
        let k = &keyword;
        let need = |expected| value.ok_or_else(|| bad(k.as_str(), expected));
        match k.as_str() {
            // RFC 1870 §6: size-param ::= [1*20DIGIT]
            "SIZE" => {
                let n = digits(need("a number")?, 20).ok_or_else(|| bad(k.as_str(), "a number"))?;
                set_once(&mut p.size, n, k)?;
            }
            // RFC 6152 §3, RFC 3030 §3: "7BIT" / "8BITMIME" / "BINARYMIME"
            "BODY" => {
                let v = need("7BIT, 8BITMIME or BINARYMIME")?;
                let body = match v.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    "BINARYMIME" => Body::BinaryMime,
                    _ => return Err(bad("BODY", "7BIT, 8BITMIME or BINARYMIME")),
                };
                set_once(&mut p.body, body, k)?;
            }
            "SMTPUTF8" => flag_once(&mut p.smtputf8, value, k)?,
            // RFC 3461 §4.3: ret-value = "FULL" / "HDRS"
            "RET" => {
                let ret = match need("FULL or HDRS")?.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Hdrs,
                    _ => return Err(bad("RET", "FULL or HDRS")),
                };
                set_once(&mut p.ret, ret, k)?;
            }
            // RFC 3461 §4.4: envid-value = xtext, at most 100 characters.
            "ENVID" => {
                let v = xtext(value, k, 100)?;
                set_once(&mut p.envid, v, k)?;
            }
            // RFC 4954 §5: auth-param = "AUTH=" ( mailbox / "<>" ), the mailbox in xtext.
            "AUTH" => {
                let v = need("<> or xtext")?;
                let auth = if v == "<>" {
                    AuthParam::Unknown
                } else {
                    AuthParam::Identity(xtext(value, k, 500)?)
                };
                set_once(&mut p.auth, auth, k)?;
            }
            "REQUIRETLS" => flag_once(&mut p.requiretls, value, k)?,
            // RFC 6710 §3: priority-value = ["-" / "+"] DIGIT, -9 to 9.
            "MT-PRIORITY" => {
                let v = need("a priority from -9 to 9")?;
                let n = v
                    .strip_prefix('+')
                    .unwrap_or(v)
                    .parse::<i8>()
                    .ok()
                    .filter(|n| (-9..=9).contains(n) && v.len() <= 2)
                    .ok_or_else(|| bad("MT-PRIORITY", "a priority from -9 to 9"))?;
                set_once(&mut p.mt_priority, n, k)?;
            }
            // RFC 4865 §3: HOLDFOR=1*9DIGIT, HOLDUNTIL=date-time; only one of them.
            "HOLDFOR" => {
                let n = digits(need("seconds")?, 9).ok_or_else(|| bad("HOLDFOR", "seconds"))?;
                let n = u32::try_from(n).map_err(|_| bad("HOLDFOR", "seconds"))?;
                set_once(&mut p.hold, Hold::For(n), k)?;
            }
            "HOLDUNTIL" => {
                let v = need("an RFC 3339 date-time")?;
                let ok = v.len() <= 40
                    && v.bytes()
                        .all(|b| b.is_ascii_digit() || b"-:.TZtz+".contains(&b));
                if !ok {
                    return Err(bad("HOLDUNTIL", "an RFC 3339 date-time"));
                }
                set_once(&mut p.hold, Hold::Until(v.to_owned()), k)?;
            }
            // RFC 2852 §4: by-value = by-time ";" by-mode [ by-trace ]
            "BY" => {
                let by = deliver_by(need("by-time;by-mode")?)
                    .ok_or_else(|| bad("BY", "by-time \";\" (\"N\" / \"R\") [\"T\"]"))?;
                set_once(&mut p.by, by, k)?;
            }
            _ => p.other.push(other(keyword, value)),
        }
    }
    Ok(p)
}

fn deliver_by(v: &str) -> Option<DeliverBy> {
    let (time, mode) = v.split_once(';')?;
    let unsigned = time.strip_prefix(['-', '+']).unwrap_or(time);
    let magnitude = i32::try_from(digits(unsigned, 9)?).ok()?;
    let seconds = if time.starts_with('-') {
        -magnitude
    } else {
        magnitude
    };
    let mode_upper = mode.to_ascii_uppercase();
    let (mode, trace) = match mode_upper.as_str() {
        "N" => (DeliverByMode::Notify, false),
        "R" => (DeliverByMode::Return, false),
        "NT" => (DeliverByMode::Notify, true),
        "RT" => (DeliverByMode::Return, true),
        _ => return None,
    };
    Some(DeliverBy {
        seconds,
        mode,
        trace,
    })
}

/// Decodes the parameters after `RCPT TO:<path>`.
pub(crate) fn rcpt_parameters(rest: &[u8]) -> Result<RcptParams, DecodeError> {
    let mut p = RcptParams::default();
    for (keyword, value) in split_params(rest)? {
        let k = &keyword;
        match k.as_str() {
            // RFC 3461 §4.1: notify-esmtp-value = "NEVER" / 1#notify-list-element
            "NOTIFY" => {
                let expected = "NEVER or a list of SUCCESS, FAILURE, DELAY";
                let v = value.ok_or_else(|| bad("NOTIFY", expected))?;
                let mut n = Notify::default();
                let mut never = false;
                for item in v.split(',') {
                    match item.to_ascii_uppercase().as_str() {
                        "NEVER" => never = true,
                        "SUCCESS" => n.success = true,
                        "FAILURE" => n.failure = true,
                        "DELAY" => n.delay = true,
                        _ => return Err(bad("NOTIFY", expected)),
                    }
                }
                // "NEVER" must appear alone.
                if never && (v.contains(',')) {
                    return Err(bad("NOTIFY", expected));
                }
                set_once(&mut p.notify, n, k)?;
            }
            // RFC 3461 §4.2: orcpt-parameter = "ORCPT=" original-recipient-address,
            // original-recipient-address = addr-type ";" xtext; at most 500 characters.
            "ORCPT" => {
                let expected = "addr-type \";\" xtext";
                let v = value.ok_or_else(|| bad("ORCPT", expected))?;
                let (addr_type, addr) = v.split_once(';').ok_or_else(|| bad("ORCPT", expected))?;
                if v.len() > 500 {
                    return Err(bad("ORCPT", "at most 500 characters"));
                }
                let addr = XText::new(addr).map_err(|_| bad("ORCPT", expected))?;
                let orcpt = Orcpt::new(addr_type, addr).map_err(|_| bad("ORCPT", expected))?;
                set_once(&mut p.orcpt, orcpt, k)?;
            }
            _ => p.other.push(other(keyword, value)),
        }
    }
    Ok(p)
}

fn push_other(out: &mut String, other: &[Param]) {
    for param in other {
        out.push(' ');
        out.push_str(param.keyword.as_str());
        if let Some(v) = &param.value {
            out.push('=');
            out.push_str(v.as_str());
        }
    }
}

/// Encodes MAIL parameters, each preceded by a space.
pub(crate) fn encode_mail_parameters(p: &MailParams, out: &mut String) {
    if let Some(size) = p.size {
        let _ = write!(out, " SIZE={size}");
    }
    if let Some(body) = p.body {
        let _ = write!(out, " BODY={}", body.as_str());
    }
    if p.smtputf8 {
        out.push_str(" SMTPUTF8");
    }
    match p.ret {
        Some(Ret::Full) => out.push_str(" RET=FULL"),
        Some(Ret::Hdrs) => out.push_str(" RET=HDRS"),
        None => {}
    }
    if let Some(envid) = &p.envid {
        let _ = write!(out, " ENVID={}", envid.as_str());
    }
    match &p.auth {
        Some(AuthParam::Unknown) => out.push_str(" AUTH=<>"),
        Some(AuthParam::Identity(x)) => {
            let _ = write!(out, " AUTH={}", x.as_str());
        }
        None => {}
    }
    if p.requiretls {
        out.push_str(" REQUIRETLS");
    }
    if let Some(n) = p.mt_priority {
        let _ = write!(out, " MT-PRIORITY={n}");
    }
    match &p.hold {
        Some(Hold::For(n)) => {
            let _ = write!(out, " HOLDFOR={n}");
        }
        Some(Hold::Until(t)) => {
            let _ = write!(out, " HOLDUNTIL={t}");
        }
        None => {}
    }
    if let Some(by) = p.by {
        let mode = match by.mode {
            DeliverByMode::Notify => 'N',
            DeliverByMode::Return => 'R',
        };
        let trace = if by.trace { "T" } else { "" };
        let _ = write!(out, " BY={};{mode}{trace}", by.seconds);
    }
    push_other(out, &p.other);
}

/// Encodes RCPT parameters, each preceded by a space.
pub(crate) fn encode_rcpt_parameters(p: &RcptParams, out: &mut String) {
    if let Some(n) = p.notify {
        if n.is_never() {
            out.push_str(" NOTIFY=NEVER");
        } else {
            let items: Vec<&str> = [
                (n.success, "SUCCESS"),
                (n.failure, "FAILURE"),
                (n.delay, "DELAY"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| *name)
            .collect();
            let _ = write!(out, " NOTIFY={}", items.join(","));
        }
    }
    if let Some(o) = &p.orcpt {
        let _ = write!(out, " ORCPT={};{}", o.addr_type(), o.address().as_str());
    }
    push_other(out, &p.other);
}
