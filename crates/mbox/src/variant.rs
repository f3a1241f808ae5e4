//! The four mbox variants and their From_ quoting.
//!
//! RFC 4155, Appendix A, on escaping:
//!
//! > Many implementations are also known to escape message body lines that begin with the
//! > character sequence of "From ", so as to prevent user-defined body data from being
//! > misinterpreted as a message separator. In practice, this is usually done by prepending a
//! > greater-than character (0x3E) to the beginning of the line.
//!
//! The variants differ in exactly that, and in whether a `Content-Length` header delimits the
//! body (names and definitions from Jonathan de Boyne Pollard's "The mbox family of mailbox
//! file formats", which mutt, Dovecot and qmail's documentation follow):
//!
//! | variant | writing | reading | `Content-Length` |
//! |---|---|---|---|
//! | mboxo | a line matching `^From ` gets a `>` prepended | `^>From ` loses one `>` | no |
//! | mboxrd | a line matching `^>*From ` gets a `>` prepended | `^>+From ` loses one `>` | no |
//! | mboxcl | as mboxo | as mboxo | yes, counts the body as stored |
//! | mboxcl2 | nothing is quoted | nothing is unquoted | yes, counts the body |
//!
//! mboxo is not reversible: a body line `>From ` is written unchanged and read back as
//! `From `. mboxrd is: every line that could be mistaken for a quoted one is quoted once more,
//! so reading removes exactly what writing added. That is why mboxrd is the default for writing.
//!
//! Quoting is applied to every line of the message, header lines included: a header line can
//! never legitimately begin with `From ` (a field name is followed by a colon), and quoting it
//! keeps a hostile message from smuggling a separator in through its header. That holds for
//! mboxcl2 too, whose `Content-Length` covers only the body: its header lines get mboxo
//! quoting (see [`crate::write_message`]).

/// An mbox variant: how From_ lines inside messages are quoted and how a message ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Variant {
    /// The original format: `From ` lines are quoted, `>From ` lines are not (not reversible).
    Mboxo,
    /// Rahul Dhesi's reversible quoting: `>*From ` lines get one more `>`. The default.
    #[default]
    Mboxrd,
    /// mboxo quoting plus a `Content-Length` header giving the stored body's length.
    Mboxcl,
    /// No quoting at all; the `Content-Length` header alone delimits the body.
    Mboxcl2,
}

impl Variant {
    /// Every variant, for tests and option parsers.
    pub const ALL: [Variant; 4] = [
        Variant::Mboxo,
        Variant::Mboxrd,
        Variant::Mboxcl,
        Variant::Mboxcl2,
    ];

    /// The variant's usual name (`mboxrd`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Variant::Mboxo => "mboxo",
            Variant::Mboxrd => "mboxrd",
            Variant::Mboxcl => "mboxcl",
            Variant::Mboxcl2 => "mboxcl2",
        }
    }

    /// Whether a `Content-Length` header delimits the body.
    pub fn uses_content_length(self) -> bool {
        matches!(self, Variant::Mboxcl | Variant::Mboxcl2)
    }

    /// Whether lines are quoted at all.
    pub fn quotes(self) -> bool {
        self != Variant::Mboxcl2
    }

    /// Whether a line that starts with `gt` greater-than signs followed by `From ` is quoted on
    /// writing (`gt` is the count before quoting).
    fn quote_on_write(self, gt: u64) -> bool {
        match self {
            Variant::Mboxrd => true,
            Variant::Mboxo | Variant::Mboxcl => gt == 0,
            Variant::Mboxcl2 => false,
        }
    }

    /// Whether a stored line that starts with `gt` greater-than signs followed by `From ` loses
    /// one of them on reading.
    fn unquote_on_read(self, gt: u64) -> bool {
        match self {
            Variant::Mboxrd => gt >= 1,
            Variant::Mboxo | Variant::Mboxcl => gt == 1,
            Variant::Mboxcl2 => false,
        }
    }

    /// Quotes a whole message (every line) for this variant. The bounded-memory streaming form
    /// is [`Quoter`].
    ///
    /// # Examples
    ///
    /// ```
    /// use mailroom_mbox::Variant;
    /// assert_eq!(Variant::Mboxrd.quote(b"From a\n>From b\n"), b">From a\n>>From b\n");
    /// assert_eq!(Variant::Mboxo.quote(b"From a\n>From b\n"), b">From a\n>From b\n");
    /// ```
    pub fn quote(self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() + 16);
        let mut q = Quoter::new(self, Direction::Quote);
        q.feed(text, &mut out);
        q.finish(&mut out);
        out
    }

    /// Removes this variant's quoting from a whole message (every line).
    ///
    /// # Examples
    ///
    /// ```
    /// use mailroom_mbox::Variant;
    /// assert_eq!(Variant::Mboxrd.unquote(b">From a\n>>From b\n"), b"From a\n>From b\n");
    /// ```
    pub fn unquote(self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        let mut q = Quoter::new(self, Direction::Unquote);
        q.feed(text, &mut out);
        q.finish(&mut out);
        out
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Variant {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s))
            .ok_or(UnknownVariant)
    }
}

/// A variant name that is none of mboxo, mboxrd, mboxcl, mboxcl2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mbox variant (expected mboxo, mboxrd, mboxcl or mboxcl2)")]
pub struct UnknownVariant;

/// Whether a [`Quoter`] adds quoting (writing) or removes it (reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Writing: add a `>` where the variant says so.
    Quote,
    /// Reading: remove a `>` where the variant says so.
    Unquote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line, having seen `gt` greater-than signs (not yet written out) and
    /// then `matched` bytes of "From ".
    Start { gt: u64, matched: usize },
    /// Inside a line: copy up to and including the next `\n`.
    Middle,
}

/// Streaming From_ quoting in constant memory: feed any split of the input, get the same
/// output.
///
/// A run of `>` at a line start is counted, not buffered, so a line of ten million `>` costs
/// nothing but time.
#[derive(Debug, Clone)]
pub struct Quoter {
    variant: Variant,
    direction: Direction,
    state: State,
}

const FROM: &[u8; 5] = b"From ";

impl Quoter {
    /// A quoter at the start of a line.
    pub fn new(variant: Variant, direction: Direction) -> Self {
        Self {
            variant,
            direction,
            state: State::Start { gt: 0, matched: 0 },
        }
    }

    /// Whether the quoter stands at the start of a line with nothing held back.
    pub fn at_line_start(&self) -> bool {
        self.state == State::Start { gt: 0, matched: 0 }
    }

    fn emit_prefix(&self, gt: u64, matched: usize, from_follows: bool, out: &mut Vec<u8>) {
        let gt = match (from_follows, self.direction) {
            (true, Direction::Quote) if self.variant.quote_on_write(gt) => gt + 1,
            (true, Direction::Unquote) if self.variant.unquote_on_read(gt) => gt - 1,
            _ => gt,
        };
        push_gt(out, gt);
        out.extend_from_slice(&FROM[..matched]);
    }

    /// Feeds `input`, appending the output to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if !self.variant.quotes() {
            out.extend_from_slice(input);
            return;
        }
        while !input.is_empty() {
            match self.state {
                State::Middle => match memchr::memchr(b'\n', input) {
                    Some(i) => {
                        out.extend_from_slice(&input[..=i]);
                        input = &input[i + 1..];
                        self.state = State::Start { gt: 0, matched: 0 };
                    }
                    None => {
                        out.extend_from_slice(input);
                        return;
                    }
                },
                State::Start { gt, matched } => {
                    let b = input[0];
                    if matched == 0 && b == b'>' {
                        let run = input.iter().take_while(|&&c| c == b'>').count();
                        self.state = State::Start {
                            gt: gt + run as u64,
                            matched: 0,
                        };
                        input = &input[run..];
                    } else if b == FROM[matched] {
                        input = &input[1..];
                        if matched + 1 == FROM.len() {
                            self.emit_prefix(gt, FROM.len(), true, out);
                            self.state = State::Middle;
                        } else {
                            self.state = State::Start {
                                gt,
                                matched: matched + 1,
                            };
                        }
                    } else {
                        // Not a quotable line: release what was held, then copy the line.
                        self.emit_prefix(gt, matched, false, out);
                        self.state = State::Middle;
                    }
                }
            }
        }
    }

    /// Ends the input (the last line may lack its `\n`), releasing what was held back.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let State::Start { gt, matched } = self.state {
            self.emit_prefix(gt, matched, false, out);
        }
        self.state = State::Start { gt: 0, matched: 0 };
    }
}

fn push_gt(out: &mut Vec<u8>, n: u64) {
    const GTS: [u8; 64] = [b'>'; 64];
    let mut n = n;
    while n > 0 {
        let k = n.min(64) as usize;
        out.extend_from_slice(&GTS[..k]);
        n -= k as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_answers() {
        // (variant, stored text, original text); None when the variant cannot round-trip.
        let rd = Variant::Mboxrd;
        let o = Variant::Mboxo;
        let table: &[(Variant, &[u8], &[u8])] = &[
            (rd, b"From x\n", b">From x\n"),
            (rd, b">From x\n", b">>From x\n"),
            (rd, b">>From x\n", b">>>From x\n"),
            (rd, b"From\n", b"From\n"),
            (rd, b"Fro", b"Fro"),
            (rd, b">>>", b">>>"),
            (rd, b"a From x\n", b"a From x\n"),
            (rd, b">From", b">From"),
            (rd, b"From x", b">From x"),
            (rd, b"x\nFrom y\n\nFrom z", b"x\n>From y\n\n>From z"),
            (o, b"From x\n", b">From x\n"),
            (o, b">From x\n", b">From x\n"),
            (o, b">>From x\n", b">>From x\n"),
            (Variant::Mboxcl2, b"From x\n", b"From x\n"),
        ];
        for &(variant, original, quoted) in table {
            assert_eq!(
                variant.quote(original),
                quoted,
                "{variant} {:?}",
                String::from_utf8_lossy(original)
            );
        }
        // Reading mboxo is lossy: the stored ">From x" becomes "From x" whatever it was.
        assert_eq!(o.unquote(b">From x\n>>From y\n"), b"From x\n>>From y\n");
        assert_eq!(
            rd.unquote(b">From x\n>>From y\nFrom z"),
            b"From x\n>From y\nFrom z"
        );
    }

    fn lines() -> impl Strategy<Value = Vec<u8>> {
        // Text rich in the interesting prefixes.
        prop::collection::vec(
            prop_oneof![
                Just(b"From ".to_vec()),
                Just(b">".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"Fr".to_vec()),
                Just(b"om ".to_vec()),
                Just(b"\r\n".to_vec()),
                prop::collection::vec(any::<u8>(), 0..8),
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn mboxrd_is_reversible(text in lines()) {
            let quoted = Variant::Mboxrd.quote(&text);
            prop_assert_eq!(Variant::Mboxrd.unquote(&quoted), text);
        }

        #[test]
        fn quoted_text_has_no_from_line(text in lines()) {
            for variant in [Variant::Mboxrd, Variant::Mboxo, Variant::Mboxcl] {
                let quoted = variant.quote(&text);
                for line in quoted.split(|&b| b == b'\n') {
                    prop_assert!(!line.starts_with(b"From "));
                }
            }
        }

        #[test]
        fn any_split_gives_the_same_output(text in lines(), cut in any::<prop::sample::Index>()) {
            for direction in [Direction::Quote, Direction::Unquote] {
                for variant in Variant::ALL {
                    let whole = match direction {
                        Direction::Quote => variant.quote(&text),
                        Direction::Unquote => variant.unquote(&text),
                    };
                    let at = cut.index(text.len() + 1);
                    let mut q = Quoter::new(variant, direction);
                    let mut out = Vec::new();
                    q.feed(&text[..at], &mut out);
                    q.feed(&text[at..], &mut out);
                    q.finish(&mut out);
                    prop_assert_eq!(out, whole);
                }
            }
        }
    }

    #[test]
    fn long_runs_cost_no_memory_beyond_output() {
        let mut text = vec![b'>'; 3_000_000];
        text.extend_from_slice(b"From x\n");
        let quoted = Variant::Mboxrd.quote(&text);
        assert_eq!(quoted.len(), text.len() + 1);
        assert_eq!(Variant::Mboxrd.unquote(&quoted), text);
    }
}
