//! aliases(5): `name: value, value, ...`, as read by Postfix's `postalias(1)` and `local(8)`.
//!
//! A value is a list of RFC 822 addresses separated by commas, or `"|command"`, `/file/name`,
//! `:include:/file/name`. Names may be quoted (`"Jane Doe": jane`); they must be local (no `@`
//! or `%`). Continuation lines and comments follow the same rules as the source format
//! ([`super::source`]). The name is folded to lowercase; the value is kept in Postfix's
//! external form (re-quoted, items joined by `", "`), which is what `postalias -q` prints.

use std::collections::HashMap;
use std::path::Path;

use super::source::{fold, for_each_logical_line};
use crate::error::TableError;

/// One RFC 822 token, as Postfix's `tok822_scan` sees it (simplified: no nested groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// An atom, backslash escapes resolved.
    Atom(String),
    /// The content of a quoted string, escapes resolved.
    Quoted(String),
    /// The content of a comment, kept only for the external form.
    Comment(String),
    /// A domain literal `[...]`, brackets included.
    Literal(String),
    /// One of `<>@,;:.`
    Special(char),
}

/// Splits `text` into tokens.
///
/// # Errors
///
/// A message when a quoted string, comment or domain literal is not closed.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated quoted string".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => s.push(e),
                            None => return Err("unterminated quoted string".into()),
                        },
                        Some(o) => s.push(o),
                    }
                }
                tokens.push(Token::Quoted(s));
            }
            '(' => {
                let (mut depth, mut s) = (1usize, String::new());
                loop {
                    match chars.next() {
                        None => return Err("unterminated comment".into()),
                        Some('\\') => {
                            if let Some(e) = chars.next() {
                                s.push(e);
                            }
                        }
                        Some('(') => {
                            depth += 1;
                            s.push('(');
                        }
                        Some(')') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            s.push(')');
                        }
                        Some(o) => s.push(o),
                    }
                }
                tokens.push(Token::Comment(s));
            }
            '[' => {
                let mut s = String::from("[");
                loop {
                    match chars.next() {
                        None => return Err("unterminated domain literal".into()),
                        Some(']') => break,
                        Some(o) => s.push(o),
                    }
                }
                s.push(']');
                tokens.push(Token::Literal(s));
            }
            '<' | '>' | '@' | ',' | ';' | ':' | '.' => tokens.push(Token::Special(c)),
            _ => {
                let mut s = String::new();
                let mut c = c;
                loop {
                    if c == '\\' {
                        if let Some(e) = chars.next() {
                            s.push(e);
                        }
                    } else {
                        s.push(c);
                    }
                    match chars.peek() {
                        Some(&n)
                            if !n.is_whitespace()
                                && !matches!(
                                    n,
                                    '"' | '('
                                        | ')'
                                        | '['
                                        | ']'
                                        | '<'
                                        | '>'
                                        | '@'
                                        | ','
                                        | ';'
                                        | ':'
                                        | '.'
                                ) =>
                        {
                            c = n;
                            chars.next();
                        }
                        _ => break,
                    }
                }
                tokens.push(Token::Atom(s));
            }
        }
    }
    Ok(tokens)
}

fn is_word(t: &Token) -> bool {
    matches!(
        t,
        Token::Atom(_) | Token::Quoted(_) | Token::Comment(_) | Token::Literal(_)
    )
}

/// Whether a local-part text must be quoted in the external form.
fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '"' | '(' | ')' | '[' | ']' | '<' | '>' | '@' | ',' | ';' | ':' | '\\' | '.'
                )
        })
}

/// The external (quoted) form of a token list, as `tok822_externalize` writes it.
pub(crate) fn externalize(tokens: &[Token]) -> String {
    let mut out = String::new();
    let mut prev: Option<&Token> = None;
    for t in tokens {
        if let Some(p) = prev {
            let space = match t {
                Token::Special(',') => false,
                Token::Special('<') => is_word(p) || matches!(p, Token::Special('>')),
                _ if is_word(t) => is_word(p) || matches!(p, Token::Special(',' | '>')),
                _ => matches!(p, Token::Special(',')),
            };
            if space {
                out.push(' ');
            }
        }
        match t {
            Token::Atom(s) | Token::Literal(s) => out.push_str(s),
            Token::Quoted(s) => {
                out.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
            Token::Comment(s) => {
                out.push('(');
                out.push_str(s);
                out.push(')');
            }
            Token::Special(c) => out.push(*c),
        }
        prev = Some(t);
    }
    out
}

/// The internal (unquoted) form of one address's tokens: quotes removed, comments dropped,
/// the addr-spec inside `<...>` when there is one.
pub(crate) fn internalize(tokens: &[Token]) -> String {
    let inner: &[Token] = match (
        tokens.iter().position(|t| *t == Token::Special('<')),
        tokens.iter().rposition(|t| *t == Token::Special('>')),
    ) {
        (Some(open), Some(close)) if open < close => &tokens[open + 1..close],
        _ => tokens,
    };
    let mut out = String::new();
    let mut prev_word = false;
    for t in inner {
        match t {
            Token::Comment(_) => continue,
            Token::Atom(s) | Token::Quoted(s) | Token::Literal(s) => {
                if prev_word {
                    out.push(' ');
                }
                out.push_str(s);
                prev_word = true;
            }
            Token::Special(c) => {
                out.push(*c);
                prev_word = false;
            }
        }
    }
    out
}

/// Splits a value into its items (top-level commas), as token lists.
pub(crate) fn split_items(tokens: Vec<Token>) -> Vec<Vec<Token>> {
    let mut items = vec![Vec::new()];
    for t in tokens {
        if t == Token::Special(',') {
            items.push(Vec::new());
        } else if let Some(last) = items.last_mut() {
            last.push(t);
        }
    }
    items.retain(|i| i.iter().any(|t| !matches!(t, Token::Comment(_))));
    items
}

/// The external form of a local-part or alias name given in internal form.
pub(crate) fn quote_local(s: &str) -> String {
    if needs_quotes(s) && !s.split('.').all(|p| !p.is_empty() && !needs_quotes(p)) {
        externalize(&[Token::Quoted(s.to_string())])
    } else {
        s.to_string()
    }
}

/// One entry of an alias table: the external form of the value and its items.
#[derive(Debug, Clone)]
struct AliasEntry {
    value: Box<str>,
    items: Box<[Box<str>]>,
}

/// An aliases(5) table compiled into memory.
#[derive(Debug, Clone, Default)]
pub struct AliasTable {
    entries: HashMap<Box<str>, AliasEntry>,
    warnings: Vec<String>,
}

impl AliasTable {
    /// Parses `text` (the contents of `path`, used in messages only).
    ///
    /// # Errors
    ///
    /// [`TableError::Syntax`] naming the file and line of the first malformed entry: no
    /// `name:`, a non-local name, an empty name or value, an unterminated quoted string.
    pub fn parse(path: &Path, text: &str) -> Result<Self, TableError> {
        let mut table = AliasTable::default();
        for_each_logical_line(path, text, |line, logical| {
            let tokens = tokenize(logical).map_err(|m| TableError::syntax(path, line, m))?;
            let Some(colon) = tokens.iter().position(|t| *t == Token::Special(':')) else {
                return Err(TableError::syntax(path, line, "need name:value pair"));
            };
            if colon == 0 {
                return Err(TableError::syntax(path, line, "need name:value pair"));
            }
            let (name, value) = tokens.split_at(colon);
            if name.iter().any(|t| {
                matches!(t, Token::Special('@')) || matches!(t, Token::Atom(a) if a.contains('%'))
            }) {
                return Err(TableError::syntax(path, line, "name must be local"));
            }
            let name = internalize(name);
            let value_tokens = value[1..].to_vec();
            let external = externalize(&value_tokens);
            if name.is_empty() || external.is_empty() {
                return Err(TableError::syntax(path, line, "null key or value"));
            }
            let items: Box<[Box<str>]> = split_items(value_tokens)
                .iter()
                .map(|i| internalize(i).into_boxed_str())
                .collect();
            let key = fold(&name);
            if table.entries.contains_key(key.as_ref()) {
                table.warnings.push(format!(
                    "{}, line {line}: duplicate entry: \"{key}\" (the first one is used)",
                    path.display()
                ));
            } else {
                table.entries.insert(
                    key.into(),
                    AliasEntry {
                        value: external.into(),
                        items,
                    },
                );
            }
            Ok(())
        })?;
        Ok(table)
    }

    /// The value of alias `name` in external form, as `postalias -q` prints it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.get(fold(name).as_ref()).map(|e| &*e.value)
    }

    /// The items of alias `name` in internal form (unquoted): addresses, `|command`, `/file`,
    /// `:include:/file`.
    pub fn items(&self, name: &str) -> Option<&[Box<str>]> {
        self.entries.get(fold(name).as_ref()).map(|e| &*e.items)
    }

    /// How many aliases the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds no alias.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The warnings of the load (duplicate names), each naming file and line.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Parses the items of an `:include:` file: addresses separated by commas or newlines, with
/// the same comment and continuation rules.
pub(crate) fn parse_include(path: &Path, text: &str) -> Result<Vec<String>, TableError> {
    let mut out = Vec::new();
    for_each_logical_line(path, text, |line, logical| {
        let tokens = tokenize(logical).map_err(|m| TableError::syntax(path, line, m))?;
        out.extend(split_items(tokens).iter().map(|i| internalize(i)));
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_form_like_postalias() {
        let t = AliasTable::parse(
            Path::new("aliases"),
            "a: Bob Smith <bob@x>, (comment) carl, \"x y\"@z, d (Dee), e.f , g<h@i>, \"q\\\"t\" , \\jj\nb : c\nadmins: bob,alice ,  \"|/bin/cmd arg\", /var/file\n  , :include:/etc/x\n\"Quoted Name\": carl\n",
        )
        .unwrap();
        assert_eq!(
            t.get("a"),
            Some(
                "Bob Smith <bob@x>, (comment) carl, \"x y\"@z, d (Dee), e.f, g <h@i>, \"q\\\"t\", jj"
            )
        );
        assert_eq!(t.get("B"), Some("c"));
        assert_eq!(
            t.get("admins"),
            Some("bob, alice, \"|/bin/cmd arg\", /var/file, :include:/etc/x")
        );
        assert_eq!(t.get("quoted name"), Some("carl"));
        let items: Vec<&str> = t.items("admins").unwrap().iter().map(|s| &**s).collect();
        assert_eq!(
            items,
            [
                "bob",
                "alice",
                "|/bin/cmd arg",
                "/var/file",
                ":include:/etc/x"
            ]
        );
        let items: Vec<&str> = t.items("a").unwrap().iter().map(|s| &**s).collect();
        assert_eq!(
            items,
            ["bob@x", "carl", "x y@z", "d", "e.f", "h@i", "q\"t", "jj"]
        );
    }

    #[test]
    fn malformed_entries_name_the_line() {
        for (text, want) in [
            (
                "a: b\nnocolon value\n",
                "aliases, line 2: need name:value pair",
            ),
            ("a@b: c\n", "aliases, line 1: name must be local"),
            ("a: \"open\n", "aliases, line 1: unterminated quoted string"),
            ("a:\n", "aliases, line 1: null key or value"),
        ] {
            let e = AliasTable::parse(Path::new("aliases"), text)
                .unwrap_err()
                .to_string();
            assert_eq!(e, want);
        }
    }
}
