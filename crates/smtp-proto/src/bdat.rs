//! BDAT chunks (RFC 3030 CHUNKING): the server's streaming reader.
//!
//! RFC 3030 §2: "The BDAT verb takes two arguments. The first argument indicates the length,
//! in octets, of the binary data chunk. The second optional argument indicates that the data
//! chunk is the last." and "The message data is sent immediately after the trailing `<CR>
//! <LF>` of the BDAT command line. Once the receiver-SMTP receives the specified number of
//! octets, it will return a 250 reply code."
//!
//! A chunk is exactly its announced octets, whatever they are: `\r\n.\r\n`, `MAIL FROM:` or a
//! bare LF inside a chunk are content, never an end and never a command. There is no
//! dot-stuffing and no bare-newline check.
//!
//! # Rules the session applies around this reader
//!
//! - "A 250 response MUST be sent to each successful BDAT data block within a mail
//!   transaction." The application answers the `LAST` chunk (as it answers the end of DATA).
//! - "If a failure occurs after a BDAT command is received, the receiver-SMTP MUST accept and
//!   discard the associated message data before sending the appropriate 5XX or 4XX code."
//!   The reader always reads the whole chunk; a chunk that takes the message past the size
//!   limit, and every later chunk of that message, ends with
//!   [`DataOutcome::Rejected`] ([`DataRejection::TooLarge`], `552 5.3.4`). With PIPELINING
//!   the client may already have sent more chunks: they are read and discarded the same way.
//! - "Any BDAT command sent after the BDAT LAST is illegal and MUST be replied to with a 503
//!   "Bad sequence of commands" reply code." ([`BdatError::AfterLast`]).
//! - "The DATA and BDAT commands cannot be used in the same transaction. If a DATA statement
//!   is issued after a BDAT for the current transaction, a 503 "Bad sequence of commands"
//!   MUST be issued."
//! - BINARYMIME (RFC 3030 §3) is offered only together with CHUNKING: a message declared
//!   `MAIL FROM:<...> BODY=BINARYMIME` may hold any octets (NUL, bare CR and LF, lines of any
//!   length) and must be sent with BDAT; the session answers a DATA command in such a
//!   transaction with `503 5.5.1`, because DATA cannot carry binary content. This reader does
//!   not look inside chunks, so it is the same for 7BIT, 8BITMIME and BINARYMIME bodies.
//! - SIZE (RFC 1870) counts the chunk octets of the whole message, across chunks.

use bytes::{Buf, Bytes, BytesMut};

use crate::data::{DataOutcome, DataRejection};

/// Settings of one [`BdatReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BdatConfig {
    /// The largest message accepted, in octets summed over its chunks. `None` is no limit.
    pub max_size: Option<u64>,
}

/// A BDAT command that cannot start a chunk now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BdatError {
    /// A BDAT after the `BDAT ... LAST` of this message. RFC 3030 §2: it "MUST be replied to
    /// with a 503 "Bad sequence of commands" reply code"; its octets must still be skipped.
    #[error("bdat after the last chunk of the message")]
    AfterLast,
    /// A chunk began while the previous one was still being read: a bug in the caller, which
    /// must read a chunk to its [`BdatEvent::ChunkEnd`] before parsing the next command.
    #[error("bdat chunk started while another chunk is being read")]
    ChunkInProgress,
}

impl BdatError {
    /// The reply line for the client, without CRLF (`None` for a caller bug).
    #[must_use]
    pub fn reply_line(&self) -> Option<&'static str> {
        match self {
            Self::AfterLast => Some("503 5.5.1 Error: BDAT after BDAT LAST"),
            Self::ChunkInProgress => None,
        }
    }
}

/// The end of one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEnd {
    /// Whether this was the `LAST` chunk: the message is complete.
    pub last: bool,
    /// The octets of this chunk.
    pub chunk_size: u64,
    /// The message so far: `Accepted` with the octets received over all its chunks, or
    /// `Rejected` (reply `552 5.3.4` to this chunk; the transaction has failed).
    pub outcome: DataOutcome,
}

/// What [`BdatReader`] hands out.
///
/// `T` is `&[u8]` for [`BdatReader::decode`] and [`Bytes`] for [`BdatReader::decode_buf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BdatEvent<T> {
    /// The next piece of the chunk's octets, never empty.
    Content(T),
    /// All the octets of the chunk have been read; reply to the BDAT command now.
    ChunkEnd(ChunkEnd),
}

/// The result of one [`BdatReader::decode`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BdatDecoded<'a> {
    /// How many input bytes were used.
    pub consumed: usize,
    /// `None` when more input is needed (then all of it was used), or when no chunk is being
    /// read.
    pub event: Option<BdatEvent<&'a [u8]>>,
}

/// The streaming, sans-IO reader of a message's BDAT chunks (server side), one per message.
///
/// # Call order
///
/// ```text
///   new(config) ─> begin_chunk(size, last) ─> decode / decode_buf ─┬─> Content(piece) ─┐
///                        ^                            ^            │                   │
///                        │                            └────────────┴─<─ None: read more┘
///                        └── reply to the chunk <── ChunkEnd { last: false, outcome }
///                                                   ChunkEnd { last: true }: message done
/// ```
///
/// 1. Create one reader per mail transaction, at its first BDAT.
/// 2. For each parsed `BDAT <size> [LAST]` command, call [`begin_chunk`](Self::begin_chunk).
/// 3. Call [`decode_buf`](Self::decode_buf) (or [`decode`](Self::decode)) until it returns
///    [`BdatEvent::ChunkEnd`], reading more input whenever it returns `None`. A
///    [`BdatEvent::Content`] piece is the next part of the message.
/// 4. At `ChunkEnd`, reply: `250` (for example `250 2.0.0 Ok: 4096 octets received`) for an
///    accepted non-last chunk, the outcome's reply for a rejected one, the application's
///    decision for an accepted `LAST` chunk. The bytes left in the buffer are the next
///    command.
///
/// Memory is constant: the reader holds a few counters and hands out slices of the input.
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use mailroom_smtp_proto::bdat::{BdatConfig, BdatEvent, BdatReader};
///
/// // After "BDAT 9 LAST\r\n": nine octets, then the next command.
/// let mut input = BytesMut::from(&b"a\r\n.\r\nMAIQUIT\r\n"[..]);
/// let mut reader = BdatReader::new(BdatConfig::default());
/// reader.begin_chunk(9, true).unwrap();
/// let mut message = Vec::new();
/// while let Some(event) = reader.decode_buf(&mut input) {
///     match event {
///         BdatEvent::Content(piece) => message.extend_from_slice(&piece),
///         BdatEvent::ChunkEnd(end) => {
///             assert!(end.last && end.outcome.is_accepted());
///             break;
///         }
///     }
/// }
/// assert_eq!(message, b"a\r\n.\r\nMAI");
/// assert_eq!(&input[..], b"QUIT\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct BdatReader {
    config: BdatConfig,
    /// Octets announced so far over the message's chunks.
    size: u64,
    /// Octets of the current chunk still to read.
    remaining: u64,
    /// Octets of the current chunk.
    chunk_size: u64,
    in_chunk: bool,
    last: bool,
    too_large: bool,
    /// Read and drop everything (see [`BdatReader::discarding`]).
    discard: bool,
}

impl BdatReader {
    /// A reader for a new message.
    #[must_use]
    pub fn new(config: BdatConfig) -> Self {
        Self {
            config,
            size: 0,
            remaining: 0,
            chunk_size: 0,
            in_chunk: false,
            last: false,
            too_large: false,
            discard: false,
        }
    }

    /// A reader that reads one chunk of `size` octets and hands out none of them.
    ///
    /// For a BDAT command refused before its data (no transaction, `503` after `LAST`, a
    /// BDAT in a DATA transaction): RFC 3030 §2 still has the server "accept and discard the
    /// associated message data", or its octets would be read as commands. Call
    /// [`decode_buf`](Self::decode_buf) until [`BdatEvent::ChunkEnd`], whose outcome means
    /// nothing here; then send the reply already decided.
    #[must_use]
    pub fn discarding(size: u64) -> Self {
        let mut reader = Self::new(BdatConfig::default());
        reader.discard = true;
        reader.in_chunk = true;
        reader.last = true;
        reader.remaining = size;
        reader.chunk_size = size;
        reader.size = size;
        reader
    }

    /// Starts reading a chunk of `size` octets after a `BDAT <size> [LAST]` command.
    ///
    /// The size is counted against the limit at once: a chunk that takes the message past
    /// it is still read in full, but none of it is handed out.
    ///
    /// # Errors
    ///
    /// [`BdatError::AfterLast`] when the message's `LAST` chunk was already read (reply 503
    /// after skipping the chunk's octets with [`BdatReader::discarding`]);
    /// [`BdatError::ChunkInProgress`] when the previous chunk is not finished.
    pub fn begin_chunk(&mut self, size: u64, last: bool) -> Result<(), BdatError> {
        if self.in_chunk {
            return Err(BdatError::ChunkInProgress);
        }
        if self.last {
            return Err(BdatError::AfterLast);
        }
        self.in_chunk = true;
        self.last = last;
        self.remaining = size;
        self.chunk_size = size;
        self.size = self.size.saturating_add(size);
        if let Some(max) = self.config.max_size
            && self.size > max
        {
            self.too_large = true;
        }
        Ok(())
    }

    /// Whether a chunk is being read.
    #[must_use]
    pub fn is_in_chunk(&self) -> bool {
        self.in_chunk
    }

    /// Whether the `LAST` chunk has been read in full.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.last && !self.in_chunk
    }

    /// Octets of the current chunk still to read.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Octets announced so far over the message's chunks.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads from the start of `input`: the next piece of the chunk, or its end.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> BdatDecoded<'a> {
        let (consumed, raw) = self.step(input.len());
        let event = raw.map(|raw| match raw {
            Step::Content(len) => BdatEvent::Content(input.get(..len).unwrap_or(b"")),
            Step::End(end) => BdatEvent::ChunkEnd(end),
        });
        BdatDecoded { consumed, event }
    }

    /// Reads from the front of a session's input buffer, removing the bytes used. Content
    /// pieces are split off the buffer without copying.
    pub fn decode_buf(&mut self, buf: &mut BytesMut) -> Option<BdatEvent<Bytes>> {
        let (consumed, raw) = self.step(buf.len());
        match raw {
            Some(Step::Content(_)) => Some(BdatEvent::Content(buf.split_to(consumed).freeze())),
            Some(Step::End(end)) => {
                buf.advance(consumed);
                Some(BdatEvent::ChunkEnd(end))
            }
            None => {
                buf.advance(consumed);
                None
            }
        }
    }

    fn step(&mut self, available: usize) -> (usize, Option<Step>) {
        if !self.in_chunk {
            return (0, None);
        }
        if self.remaining == 0 {
            return (0, Some(Step::End(self.end_chunk())));
        }
        let take = usize::try_from(self.remaining).map_or(available, |r| r.min(available));
        if take == 0 {
            return (0, None);
        }
        self.remaining -= take as u64;
        if !self.too_large && !self.discard {
            return (take, Some(Step::Content(take)));
        }
        // Read and dropped: RFC 3030 "accept and discard the associated message data".
        if self.remaining == 0 {
            (take, Some(Step::End(self.end_chunk())))
        } else {
            (take, None)
        }
    }

    fn end_chunk(&mut self) -> ChunkEnd {
        self.in_chunk = false;
        let outcome = if self.too_large {
            DataOutcome::Rejected {
                reason: DataRejection::TooLarge {
                    limit: self.config.max_size.unwrap_or(u64::MAX),
                },
                size: self.size,
            }
        } else {
            DataOutcome::Accepted { size: self.size }
        };
        ChunkEnd {
            last: self.last,
            chunk_size: self.chunk_size,
            outcome,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Content(usize),
    End(ChunkEnd),
}
