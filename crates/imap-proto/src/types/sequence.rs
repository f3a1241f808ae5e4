//! Sequence sets (RFC 9051 section 9): `sequence-set = (seq-number / seq-range) ["," sequence-set]
//! / seq-last-command`.

use std::num::NonZeroU32;

use super::core::ValidationError;

/// `seq-number = nz-number / "*"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNumber {
    /// A message sequence number or UID.
    Value(NonZeroU32),
    /// `*`: the largest number in use.
    Largest,
}

impl SeqNumber {
    /// The number, with `*` standing for `largest`.
    pub fn resolve(self, largest: u32) -> u32 {
        match self {
            SeqNumber::Value(v) => v.get(),
            SeqNumber::Largest => largest,
        }
    }
}

/// One element of a sequence set: `seq-number / seq-range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sequence {
    /// A single number.
    Single(SeqNumber),
    /// `seq-range = seq-number ":" seq-number`; either order means the same range.
    Range(SeqNumber, SeqNumber),
}

/// A non-empty sequence set, or `$` (the result saved by SEARCH RETURN (SAVE), RFC 9051 6.4.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceSet(Repr);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repr {
    Saved,
    List(Vec<Sequence>),
}

impl SequenceSet {
    /// A set of the given elements.
    ///
    /// # Errors
    ///
    /// [`ValidationError::Empty`] when `items` is empty: the grammar needs one.
    pub fn new(items: Vec<Sequence>) -> Result<Self, ValidationError> {
        if items.is_empty() {
            return Err(ValidationError::Empty {
                what: "sequence set",
            });
        }
        Ok(Self(Repr::List(items)))
    }
    /// `$`.
    pub fn saved() -> Self {
        Self(Repr::Saved)
    }
    /// `n`.
    ///
    /// # Errors
    ///
    /// [`ValidationError`] when `n` is 0.
    pub fn single(n: u32) -> Result<Self, ValidationError> {
        NonZeroU32::new(n)
            .map(|v| Self(Repr::List(vec![Sequence::Single(SeqNumber::Value(v))])))
            .ok_or(ValidationError::Invalid {
                what: "sequence number",
                detail: "0 is not a message number",
            })
    }
    /// `a:b`.
    ///
    /// # Errors
    ///
    /// [`ValidationError`] when either bound is 0.
    pub fn range(a: u32, b: u32) -> Result<Self, ValidationError> {
        let nz = |n| {
            NonZeroU32::new(n)
                .map(SeqNumber::Value)
                .ok_or(ValidationError::Invalid {
                    what: "sequence number",
                    detail: "0 is not a message number",
                })
        };
        Ok(Self(Repr::List(vec![Sequence::Range(nz(a)?, nz(b)?)])))
    }
    /// `1:*`.
    pub fn all() -> Self {
        Self(Repr::List(vec![Sequence::Range(
            SeqNumber::Value(NonZeroU32::MIN),
            SeqNumber::Largest,
        )]))
    }
    /// Whether this is `$`.
    pub fn is_saved(&self) -> bool {
        matches!(self.0, Repr::Saved)
    }
    /// The elements (empty for `$`).
    pub fn items(&self) -> &[Sequence] {
        match &self.0 {
            Repr::Saved => &[],
            Repr::List(v) => v,
        }
    }
    /// Whether `n` is in the set when `*` stands for `largest` (false for `$`).
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.items().iter().any(|s| match *s {
            Sequence::Single(a) => a.resolve(largest) == n,
            Sequence::Range(a, b) => {
                let (a, b) = (a.resolve(largest), b.resolve(largest));
                (a.min(b)..=a.max(b)).contains(&n)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_with_star_and_reversed_ranges() {
        let s = SequenceSet::new(vec![
            Sequence::Range(
                SeqNumber::Largest,
                SeqNumber::Value(NonZeroU32::new(3).unwrap()),
            ),
            Sequence::Single(SeqNumber::Value(NonZeroU32::MIN)),
        ])
        .unwrap();
        assert!(s.contains(1, 10) && s.contains(3, 10) && s.contains(10, 10));
        assert!(!s.contains(2, 10) && !s.contains(11, 10));
        assert!(SequenceSet::new(vec![]).is_err());
        assert!(SequenceSet::single(0).is_err());
        assert!(!SequenceSet::saved().contains(1, 1));
    }
}
