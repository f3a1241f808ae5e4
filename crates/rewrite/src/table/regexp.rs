//! regexp(5) tables: `/pattern/flags result`, `!/pattern/ result`, `/p1/!/p2/ result`,
//! `if /pattern/` ... `endif`, `$1` .. `$9` (and `${n}`, `$$`) in the result.
//!
//! Postfix compiles the patterns with POSIX `regcomp` (extended syntax, case-insensitive by
//! default); this module translates them to the `regex` crate. The differences, documented:
//!
//! - **Matching semantics.** POSIX is leftmost-longest, `regex` is leftmost-first. Whether a
//!   key matches is the same; what a group captures can differ when an alternation has a
//!   shorter alternative first (`(a|ab)`): write the longer alternative first.
//! - **Escapes.** `\w \W \s \S \b \B \< \>` mean what glibc gives them; an escaped punctuation
//!   character is that character. Any other escaped letter or digit (`\d`, `\1`, `\n`) is an
//!   error at load time: glibc reads `\d` as `d` and back-references have no equivalent.
//! - **Bracket expressions** follow POSIX: a backslash inside `[...]` is literal, `]` first is
//!   literal, `[:alpha:]` classes work; `[.x.]` and `[=x=]` are refused at load time.
//! - **Flags.** `i` toggles case-insensitivity (on by default), `m` toggles multi-line mode
//!   (`REG_NEWLINE`: `.` stops at newlines, `^`/`$` match at them); without it `.` matches a
//!   newline, as in POSIX. `x` (basic regular expressions) is refused at load time.
//! - Characters are Unicode scalar values, not bytes.
//!
//! Unlike Postfix, which warns and skips a bad rule, every bad rule (bad pattern, unknown flag,
//! `$n` beyond the groups, `$n` in a negative rule, unbalanced `if`/`endif`) is an error naming
//! the file and line.

use std::borrow::Cow;
use std::path::Path;

use regex::Regex;

use super::source::for_each_logical_line;
use crate::error::TableError;

/// Largest compiled program accepted for one pattern: bounds memory for hostile tables.
const SIZE_LIMIT: usize = 1 << 22;

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Group(usize),
}

#[derive(Debug, Clone)]
enum Rule {
    Match {
        re: Regex,
        matches: bool,
        second: Option<(Regex, bool)>,
        result: Vec<Part>,
    },
    If {
        re: Regex,
        matches: bool,
        /// Index of the rule after the matching `endif`.
        skip_to: usize,
    },
    EndIf,
}

/// A regexp(5) table compiled into memory.
#[derive(Debug, Clone)]
pub struct RegexpTable {
    rules: Vec<Rule>,
}

/// Translates a POSIX extended regular expression to `regex` syntax.
pub(crate) fn translate_ere(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 8);
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err("trailing backslash".into());
                };
                if matches!(n, 'w' | 'W' | 's' | 'S' | 'b' | 'B' | '<' | '>') {
                    out.push('\\');
                    out.push(n);
                } else if n.is_ascii_alphanumeric() {
                    return Err(format!("unsupported escape \\{n}"));
                } else if n.is_ascii() {
                    out.push('\\');
                    out.push(n);
                } else {
                    out.push(n);
                }
                i += 2;
            }
            '[' => {
                i += 1;
                out.push('[');
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
                let mut closed = false;
                while i < chars.len() {
                    let b = chars[i];
                    match b {
                        ']' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        '[' if matches!(chars.get(i + 1), Some(':')) => {
                            let rest: String = chars[i..].iter().collect();
                            let Some(end) = rest.find(":]") else {
                                return Err("unterminated character class".into());
                            };
                            out.push_str(&rest[..end + 2]);
                            i += rest[..end + 2].chars().count();
                        }
                        '[' if matches!(chars.get(i + 1), Some('.' | '=')) => {
                            return Err(
                                "collating elements and equivalence classes are not supported"
                                    .into(),
                            );
                        }
                        '\\' | '[' | '&' | '~' | '^' => {
                            out.push('\\');
                            out.push(b);
                            i += 1;
                        }
                        '-' if matches!(chars.get(i + 1), Some('-')) || out.ends_with('-') => {
                            out.push_str("\\-");
                            i += 1;
                        }
                        _ => {
                            out.push(b);
                            i += 1;
                        }
                    }
                }
                if !closed {
                    return Err("brackets ([ ]) not balanced".into());
                }
                out.push(']');
            }
            '{' => {
                if chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                    out.push('{');
                } else {
                    out.push_str("\\{");
                }
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

struct Pattern<'a> {
    text: &'a str,
    matches: bool,
    icase: bool,
    newline: bool,
}

/// Reads `[!...]` `<delim>pattern<delim>flags` at the start of `s`; returns it and the rest.
fn get_pattern(s: &str) -> Result<(Pattern<'_>, &str), String> {
    let mut matches = true;
    let mut s = s;
    while let Some(r) = s.strip_prefix('!') {
        matches = !matches;
        s = r;
    }
    s = s.trim_start();
    let mut it = s.char_indices();
    let Some((_, delim)) = it.next() else {
        return Err("no regexp".into());
    };
    let start = delim.len_utf8();
    let mut end = None;
    let mut escaped = false;
    for (pos, c) in it {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == delim {
            end = Some(pos);
            break;
        }
    }
    let Some(end) = end else {
        return Err(format!("no closing regexp delimiter \"{delim}\""));
    };
    let text = &s[start..end];
    let mut rest = &s[end + delim.len_utf8()..];
    let (mut icase, mut newline) = (true, false);
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() || c == '!' {
            break;
        }
        match c {
            'i' => icase = !icase,
            'm' => newline = !newline,
            'x' => return Err("basic regular expressions (flag \"x\") are not supported".into()),
            other => return Err(format!("unknown regexp option \"{other}\"")),
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok((
        Pattern {
            text,
            matches,
            icase,
            newline,
        },
        rest,
    ))
}

fn compile(p: &Pattern<'_>) -> Result<Regex, String> {
    let body = translate_ere(p.text)?;
    let flags = match (p.icase, p.newline) {
        (true, false) => "(?is)",
        (true, true) => "(?im)",
        (false, false) => "(?s)",
        (false, true) => "(?m)",
    };
    regex::RegexBuilder::new(&format!("{flags}(?:{body})"))
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| {
            format!(
                "bad regexp /{}/: {}",
                p.text,
                e.to_string().replace('\n', " ")
            )
        })
}

/// Parses a result with `$n`, `${n}`, `$(n)` and `$$`.
fn parse_result(s: &str) -> Result<(Vec<Part>, usize), String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut max = 0;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '$' {
            lit.push(c);
            continue;
        }
        let name: String = match it.peek() {
            Some('$') => {
                it.next();
                lit.push('$');
                continue;
            }
            Some(&open @ ('{' | '(')) => {
                it.next();
                let close = if open == '{' { '}' } else { ')' };
                let mut n = String::new();
                loop {
                    match it.next() {
                        Some(c) if c == close => break,
                        Some(c) => n.push(c),
                        None => return Err(format!("missing '{close}' in replacement text")),
                    }
                }
                n
            }
            _ => {
                let mut n = String::new();
                while let Some(&d) = it.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' {
                        n.push(d);
                        it.next();
                    } else {
                        break;
                    }
                }
                n
            }
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("non-numeric replacement index \"{name}\""));
        }
        let n: usize = name
            .parse()
            .map_err(|_| format!("out-of-range replacement index \"{name}\""))?;
        if n < 1 {
            return Err(format!("out-of-range replacement index \"{name}\""));
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(std::mem::take(&mut lit)));
        }
        parts.push(Part::Group(n));
        max = max.max(n);
    }
    if !lit.is_empty() {
        parts.push(Part::Literal(lit));
    }
    Ok((parts, max))
}

impl RegexpTable {
    /// Parses and compiles `text` (the contents of `path`, used in messages only).
    ///
    /// # Errors
    ///
    /// [`TableError::Syntax`] naming the file and line of the first bad rule.
    pub fn parse(path: &Path, text: &str) -> Result<Self, TableError> {
        let mut rules = Vec::new();
        let mut open_ifs: Vec<(usize, usize)> = Vec::new();
        let mut last_line = 0;
        for_each_logical_line(path, text, |line, logical| {
            last_line = line;
            let err = |m: String| TableError::syntax(path, line, m);
            let p = logical.trim_end();
            let first = p.chars().next().unwrap_or(' ');
            if !first.is_ascii_alphanumeric() {
                let (first_pat, rest) = get_pattern(p).map_err(err)?;
                let (second, rest) = if rest.starts_with('!') {
                    let (pat, rest) = get_pattern(rest).map_err(err)?;
                    (Some(pat), rest)
                } else {
                    (None, rest)
                };
                let (result, max) = parse_result(rest.trim_start()).map_err(err)?;
                if max > 0 && !first_pat.matches {
                    return Err(err(
                        "$number found in negative match replacement text".into()
                    ));
                }
                let re = compile(&first_pat).map_err(err)?;
                if max > re.captures_len() - 1 {
                    return Err(err(format!("out of range replacement index \"{max}\"")));
                }
                let second = match second {
                    Some(pat) => Some((compile(&pat).map_err(err)?, pat.matches)),
                    None => None,
                };
                rules.push(Rule::Match {
                    re,
                    matches: first_pat.matches,
                    second,
                    result,
                });
            } else if p.get(..2).is_some_and(|w| w.eq_ignore_ascii_case("if"))
                && !p[2..].starts_with(|c: char| c.is_ascii_alphanumeric())
            {
                let (pat, rest) = get_pattern(p[2..].trim_start()).map_err(err)?;
                if !rest.trim().is_empty() {
                    return Err(err(format!(
                        "extra text after IF statement: {:?}",
                        rest.trim()
                    )));
                }
                let re = compile(&pat).map_err(err)?;
                open_ifs.push((rules.len(), line));
                rules.push(Rule::If {
                    re,
                    matches: pat.matches,
                    skip_to: 0,
                });
            } else if p.get(..5).is_some_and(|w| w.eq_ignore_ascii_case("endif"))
                && !p[5..].starts_with(|c: char| c.is_ascii_alphanumeric())
            {
                if !p[5..].trim().is_empty() {
                    return Err(err("extra text after ENDIF".into()));
                }
                let Some((at, _)) = open_ifs.pop() else {
                    return Err(err("ENDIF without matching IF".into()));
                };
                rules.push(Rule::EndIf);
                let end = rules.len();
                if let Some(Rule::If { skip_to, .. }) = rules.get_mut(at) {
                    *skip_to = end;
                }
            } else {
                return Err(err(format!("unrecognized request {:?}", truncate(p))));
            }
            Ok(())
        })?;
        if let Some((_, line)) = open_ifs.pop() {
            return Err(TableError::syntax(path, line, "IF without matching ENDIF"));
        }
        Ok(RegexpTable { rules })
    }

    /// Looks `key` up: the result of the first rule that matches, `$n` substituted.
    pub fn get<'a>(&'a self, key: &str) -> Option<Cow<'a, str>> {
        let mut i = 0;
        while let Some(rule) = self.rules.get(i) {
            match rule {
                Rule::If {
                    re,
                    matches,
                    skip_to,
                } => {
                    if re.is_match(key) != *matches {
                        i = *skip_to;
                        continue;
                    }
                }
                Rule::EndIf => {}
                Rule::Match {
                    re,
                    matches,
                    second,
                    result,
                } => {
                    let second_ok =
                        |k: &str| second.as_ref().is_none_or(|(r, m)| r.is_match(k) == *m);
                    let has_groups = result.iter().any(|p| matches!(p, Part::Group(_)));
                    if !has_groups {
                        if re.is_match(key) == *matches && second_ok(key) {
                            return Some(match result.as_slice() {
                                [] => Cow::Borrowed(""),
                                [Part::Literal(s)] => Cow::Borrowed(s.as_str()),
                                _ => Cow::Owned(render(result, None)),
                            });
                        }
                    } else if let Some(caps) = re.captures(key)
                        && second_ok(key)
                    {
                        return Some(Cow::Owned(render(result, Some(&caps))));
                    }
                }
            }
            i += 1;
        }
        None
    }

    /// How many rules (match, `if` and `endif`) the table holds.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the table holds no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn render(parts: &[Part], caps: Option<&regex::Captures<'_>>) -> String {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Literal(s) => out.push_str(s),
            Part::Group(n) => {
                if let Some(m) = caps.and_then(|c| c.get(*n)) {
                    out.push_str(m.as_str());
                }
            }
        }
    }
    out
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(30) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> RegexpTable {
        RegexpTable::parse(Path::new("re"), text).unwrap()
    }

    #[test]
    fn rules_flags_if_and_substitution() {
        let t = table(
            "/^(.*)@example\\.com$/ $1@other.test\n/^Big/i case-sens\nif /^a/\n/b$/ a-and-b\nendif\n/x\\/y/ slash\n/^(a)(b)?c/ g1=$1,g2=$2,dollar=$$,brace=${1}x\n#/^zz/ comment\n /cont/ after\n/^q/ multi\n line value\n!/@/ nodomain\n",
        );
        let q = |k: &str| t.get(k).map(|c| c.into_owned());
        assert_eq!(q("foo@example.com").as_deref(), Some("foo@other.test"));
        assert_eq!(q("FOO@EXAMPLE.COM").as_deref(), Some("FOO@other.test"));
        assert_eq!(q("Big").as_deref(), Some("case-sens"));
        assert_eq!(q("big").as_deref(), Some("nodomain"));
        assert_eq!(q("axb").as_deref(), Some("a-and-b"));
        assert_eq!(q("x/y").as_deref(), Some("slash"));
        assert_eq!(
            q("ac").as_deref(),
            Some("g1=a,g2=,dollar=$,brace=ax /cont/ after")
        );
        assert_eq!(q("q").as_deref(), Some("multi line value"));
        assert_eq!(q("zzz@a"), None);
    }

    #[test]
    fn posix_brackets() {
        let t = table("/^[\\.]$/ dot-or-backslash\n/^[]x]$/ bracket\n/^[[:digit:]]+$/ digits\n");
        assert_eq!(t.get("\\").as_deref(), Some("dot-or-backslash"));
        assert_eq!(t.get(".").as_deref(), Some("dot-or-backslash"));
        assert_eq!(t.get("]").as_deref(), Some("bracket"));
        assert_eq!(t.get("123").as_deref(), Some("digits"));
    }

    #[test]
    fn bad_rules_are_load_errors() {
        for (text, want) in [
            ("/(/ x\n", "re, line 1: bad regexp"),
            ("/a/ x\n/a/q x\n", "re, line 2: unknown regexp option \"q\""),
            (
                "/a/ $1\n",
                "re, line 1: out of range replacement index \"1\"",
            ),
            (
                "/(a)/ $0\n",
                "re, line 1: out-of-range replacement index \"0\"",
            ),
            ("!/(a)/ $1\n", "re, line 1: $number found in negative"),
            ("if /a/\n/b/ c\n", "re, line 1: IF without matching ENDIF"),
            ("endif\n", "re, line 1: ENDIF without matching IF"),
            ("/a b\n", "re, line 1: no closing regexp delimiter"),
            ("/\\d/ x\n", "re, line 1: unsupported escape \\d"),
            ("/a/x x\n", "re, line 1: basic regular expressions"),
            ("junk here\n", "re, line 1: unrecognized request"),
        ] {
            let e = RegexpTable::parse(Path::new("re"), text)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;

    #[test]
    fn huge_patterns_are_refused_at_load_time() {
        let e = RegexpTable::parse(Path::new("re"), "/(((a{100}){100}){100})/ x\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("re, line 1: bad regexp"), "{e}");
    }

    #[test]
    fn matching_is_linear_on_hostile_keys() {
        // A pattern that makes backtracking engines take exponential time.
        let t = RegexpTable::parse(Path::new("re"), "/^(a+)+$/ x\n").unwrap();
        let key = "a".repeat(5000) + "!";
        assert_eq!(t.get(&key), None);
    }
}
