//! An offset index of an mbox, for random access and rewrites.

use std::fs::File;
use std::io::Read;

use crate::flags::Flags;
use crate::from_line::FromLine;
use crate::io_at::ReadAt;
use crate::reader::{Message, ReadError, ReadLimits, Reader};
use crate::variant::Variant;

/// Where one message lies in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Byte offset of the From_ line.
    pub offset: u64,
    /// Line number of the From_ line (1-based).
    pub line: u64,
    /// The From_ line.
    pub from_line: FromLine,
    /// Byte offset of the header section.
    pub headers_offset: u64,
    /// Length of the header section (without the blank line that ends it).
    pub headers_len: u64,
    /// Byte offset of the body.
    pub body_offset: u64,
    /// End of the message (exclusive), before the blank separator line.
    pub end: u64,
    /// The flags in its `Status` and `X-Status` fields.
    pub flags: Flags,
}

/// The messages of an mbox, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    variant: Variant,
    entries: Vec<IndexEntry>,
    limits: ReadLimits,
}

impl Index {
    /// Indexes the whole input, strictly: any [`ReadError`] (junk where a From_ line should be,
    /// a header section over the limit, a cut) fails the index, so that a rewrite built on it
    /// never drops bytes it did not understand.
    ///
    /// # Errors
    ///
    /// The first [`ReadError`].
    pub fn build<R: Read>(mut reader: Reader<R>) -> Result<Self, ReadError> {
        let variant = reader.variant();
        let mut entries = Vec::new();
        while let Some(entry) = reader.next_entry()? {
            let info = entry.info().clone();
            let end = entry.skip_body()?;
            entries.push(IndexEntry {
                offset: info.offset,
                line: info.line,
                flags: Flags::from_headers(&info.headers),
                headers_len: info.headers.as_bytes().len() as u64,
                from_line: info.from_line,
                headers_offset: info.headers_offset,
                body_offset: info.body_offset,
                end,
            });
        }
        Ok(Self {
            variant,
            entries,
            limits: ReadLimits::default(),
        })
    }

    /// The entries in file order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// The number of messages.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no messages.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The variant the file was read as.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Reads message `i` from `file` (the file this index was built from), body up to
    /// `max_body` bytes, with positional reads (the file offset is not used or moved).
    ///
    /// # Errors
    ///
    /// [`ReadError`]; an `i` out of range is [`ReadError::Io`] of kind `NotFound`.
    pub fn read_message(
        &self,
        file: &File,
        i: usize,
        max_body: usize,
    ) -> Result<Message, ReadError> {
        let entry = self.entries.get(i).ok_or_else(|| ReadError::Io {
            offset: 0,
            line: 0,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no message {i} (the index has {})", self.entries.len()),
            ),
        })?;
        let region = ReadAt::new(file, entry.offset, entry.end - entry.offset);
        let mut reader = Reader::starting_at(region, self.variant, self.limits, entry.offset)
            .with_first_line(entry.line);
        reader.next_message(max_body)?.ok_or(ReadError::Truncated {
            offset: entry.offset,
            line: entry.line,
            message_offset: entry.offset,
        })
    }
}
