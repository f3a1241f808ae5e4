//! The records of the queue's log: framing with checksums, and the envelope's encoding.
//!
//! The layout is documented in `FORMAT.md`; the constants here are the ones it names. Every
//! decoder is bounded by the record's length, so a damaged or hostile file can only produce an
//! error, never a panic or an allocation larger than the record.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mailroom_smtp_proto::{
    EnhancedCode, ForwardPath, Mailbox, Notify, Orcpt, Ret, ReversePath, XText,
};

use crate::crc::crc32c;
use crate::envelope::{Diagnostic, Envelope, RcptStatus, Recipient};
use crate::id::QueueId;

/// The first 8 bytes of a segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"MRQSEG\r\n";
/// The format version written after the magic; a reader refuses any other.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Segment header: magic, version, previous segment's number and final length, CRC-32C of the
/// 28 bytes before it.
pub(crate) const SEGMENT_HEADER_LEN: usize = 32;
/// The first 8 bytes of an external body file.
pub(crate) const BODY_MAGIC: [u8; 8] = *b"MRQBODY\n";
/// Body file header: magic, version, CRC-32C of the 12 bytes before it.
pub(crate) const BODY_HEADER_LEN: usize = 16;
/// The first 4 bytes of every record (`MRQR`).
pub(crate) const RECORD_MAGIC: [u8; 4] = *b"MRQR";
/// Record header: magic, kind, 3 reserved zero bytes, payload length, header CRC-32C.
pub(crate) const RECORD_HEADER_LEN: usize = 16;
/// The CRC-32C of the payload after it.
pub(crate) const RECORD_TRAILER_LEN: usize = 4;
/// The largest payload a reader accepts: a bigger length is damage, not a record.
pub(crate) const MAX_PAYLOAD: u32 = 8 << 20;
/// The most recipients one queued message may have (Postfix's `smtpd_recipient_limit`).
pub const MAX_RECIPIENTS: usize = 1000;

const KIND_MESSAGE: u8 = 1;
const KIND_UPDATE: u8 = 2;
const KIND_REMOVE: u8 = 3;

/// The segment file header; `prev_seq` and `prev_len` name the segment written before this one
/// and its final length, so recovery notices when that one was cut short.
pub(crate) fn segment_header(prev_seq: u64, prev_len: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&prev_seq.to_le_bytes());
    h[20..28].copy_from_slice(&prev_len.to_le_bytes());
    let crc = crc32c(&h[..28]);
    h[28..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment header; returns the previous segment's number and length.
pub(crate) fn check_segment_header(h: &[u8]) -> Result<(u64, u64), String> {
    if h.len() < 12 || h[..8] != SEGMENT_MAGIC {
        return Err("bad magic: not a mailroom queue segment".into());
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this build reads {FORMAT_VERSION}"
        ));
    }
    if h.len() < SEGMENT_HEADER_LEN {
        return Err(format!(
            "header is {} bytes, expected {SEGMENT_HEADER_LEN}",
            h.len()
        ));
    }
    if crc32c(&h[..28]).to_le_bytes() != h[28..32] {
        return Err("header checksum mismatch".into());
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&h[12..20]);
    let prev_seq = u64::from_le_bytes(a);
    a.copy_from_slice(&h[20..28]);
    Ok((prev_seq, u64::from_le_bytes(a)))
}

/// The external body file header.
pub(crate) fn body_header() -> [u8; BODY_HEADER_LEN] {
    file_header(BODY_MAGIC)
}

fn file_header(magic: [u8; 8]) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(&magic);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32c(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment or body file header, naming what is wrong.
pub(crate) fn check_file_header(h: &[u8], magic: [u8; 8]) -> Result<(), String> {
    if h.len() < 16 {
        return Err(format!("header is {} bytes, expected 16", h.len()));
    }
    if h[..8] != magic {
        return Err("bad magic: not a mailroom queue file".into());
    }
    if crc32c(&h[..12]).to_le_bytes() != h[12..16] {
        return Err("header checksum mismatch".into());
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this build reads {FORMAT_VERSION}"
        ));
    }
    Ok(())
}

/// Where a message's content is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyRef {
    /// In the message record itself, `len` bytes at the end of the payload.
    Inline,
    /// In `body/<ID>`, after the file header, with this CRC-32C.
    External {
        /// CRC-32C of the content.
        crc: u32,
    },
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// A message was accepted (or copied forward by compaction): its whole state.
    Message {
        id: QueueId,
        env: Envelope,
        hold: bool,
        body: BodyRef,
        /// For an inline body: where it starts within the payload.
        body_offset: usize,
    },
    /// A message's state changed: its whole new state, so replay is idempotent.
    Update {
        id: QueueId,
        attempts: u32,
        next_attempt: SystemTime,
        hold: bool,
        /// A delay warning was sent.
        delay_warned: bool,
        statuses: Vec<RcptStatus>,
    },
    /// The message is gone (all recipients done, or deleted).
    Remove { id: QueueId, deleted: bool },
}

/// Frames `payload` as a record of `kind` (header, payload, trailer) onto `out`.
fn frame(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[..4].copy_from_slice(&RECORD_MAGIC);
    h[4] = kind;
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    h[8..12].copy_from_slice(&len.to_le_bytes());
    let hcrc = crc32c(&h[..12]);
    h[12..].copy_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32c(payload).to_le_bytes());
}

/// A parsed record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) kind: u8,
    pub(crate) len: u32,
}

impl RecordHeader {
    /// Bytes of the whole record (header, payload, trailer).
    pub(crate) fn total_len(self) -> u64 {
        (RECORD_HEADER_LEN + RECORD_TRAILER_LEN) as u64 + u64::from(self.len)
    }
}

/// Parses a record header; `None` when it is not one (bad magic, checksum, kind or length).
pub(crate) fn parse_header(h: &[u8]) -> Option<RecordHeader> {
    if h.len() < RECORD_HEADER_LEN || h[..4] != RECORD_MAGIC || h[5..8] != [0, 0, 0] {
        return None;
    }
    if crc32c(&h[..12]).to_le_bytes() != h[12..16] {
        return None;
    }
    let kind = h[4];
    let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if !(KIND_MESSAGE..=KIND_REMOVE).contains(&kind) || len > MAX_PAYLOAD {
        return None;
    }
    Some(RecordHeader { kind, len })
}

/// Whether `trailer` holds the CRC-32C of `payload`.
pub(crate) fn check_payload(payload: &[u8], trailer: &[u8]) -> bool {
    trailer.len() == RECORD_TRAILER_LEN && crc32c(payload).to_le_bytes() == trailer
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(s.as_bytes());
    }
    fn status(&mut self, s: &RcptStatus) {
        let (tag, d) = match s {
            RcptStatus::Pending => (0, None),
            RcptStatus::Delivered => (1, None),
            RcptStatus::Deferred(d) => (2, Some(d)),
            RcptStatus::Bounced(d) => (3, Some(d)),
        };
        self.u8(tag);
        if let Some(d) = d {
            let c = d.status();
            self.u8(c.class());
            self.u16(c.subject());
            self.u16(c.detail());
            self.str(d.text());
        }
    }
}

/// The bounded decoder of a payload: every read checks the remaining length.
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

type DecResult<T> = Result<T, String>;

impl<'a> Dec<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    fn take(&mut self, n: usize, what: &str) -> DecResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("record ends inside {what} at byte {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> DecResult<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> DecResult<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> DecResult<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> DecResult<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn str(&mut self, what: &str) -> DecResult<&'a str> {
        let len = self.u32(what)? as usize;
        let b = self.take(len, what)?;
        std::str::from_utf8(b).map_err(|_| format!("{what} is not UTF-8"))
    }
    fn status(&mut self) -> DecResult<RcptStatus> {
        let tag = self.u8("recipient status")?;
        let diag = |d: &mut Self| -> DecResult<Diagnostic> {
            let class = d.u8("status class")?;
            let subject = d.u16("status subject")?;
            let detail = d.u16("status detail")?;
            let code = EnhancedCode::new(class, subject, detail)
                .ok_or_else(|| format!("bad status code {class}.{subject}.{detail}"))?;
            Ok(Diagnostic::new(code, d.str("diagnostic text")?))
        };
        match tag {
            0 => Ok(RcptStatus::Pending),
            1 => Ok(RcptStatus::Delivered),
            2 => Ok(RcptStatus::Deferred(diag(self)?)),
            3 => Ok(RcptStatus::Bounced(diag(self)?)),
            t => Err(format!("unknown recipient status {t}")),
        }
    }
}

fn encode_forward_path(p: &ForwardPath) -> String {
    match p {
        ForwardPath::Postmaster => String::new(),
        ForwardPath::Mailbox(m) => m.to_string(),
    }
}

fn decode_forward_path(s: &str) -> DecResult<ForwardPath> {
    if s.is_empty() {
        return Ok(ForwardPath::Postmaster);
    }
    s.parse::<Mailbox>()
        .map(ForwardPath::Mailbox)
        .map_err(|e| format!("bad forward-path {s:?}: {e}"))
}

fn decode_reverse_path(s: &str) -> DecResult<ReversePath> {
    if s.is_empty() {
        return Ok(ReversePath::Null);
    }
    s.parse::<Mailbox>()
        .map(ReversePath::Mailbox)
        .map_err(|e| format!("bad reverse-path {s:?}: {e}"))
}

fn encode_notify(n: Option<Notify>) -> u8 {
    match n {
        None => 0,
        Some(n) => 0x80 | u8::from(n.success) | u8::from(n.failure) << 1 | u8::from(n.delay) << 2,
    }
}

fn decode_notify(b: u8) -> DecResult<Option<Notify>> {
    match b {
        0 => Ok(None),
        b if b & 0x78 == 0 && b & 0x80 != 0 => Ok(Some(Notify {
            success: b & 1 != 0,
            failure: b & 2 != 0,
            delay: b & 4 != 0,
        })),
        b => Err(format!("bad NOTIFY bits {b:#x}")),
    }
}

/// Encodes a message record with an inline body onto `out`.
pub(crate) fn encode_message(
    id: QueueId,
    env: &Envelope,
    hold: bool,
    body: BodyRef,
    inline: &[u8],
    out: &mut Vec<u8>,
) {
    let mut e = Enc(Vec::with_capacity(
        128 + inline.len() + 64 * env.recipients.len(),
    ));
    e.u64(id.as_u64());
    e.u64(millis(env.arrival));
    e.u32(env.attempts);
    e.u64(millis(env.next_attempt));
    e.u8(u8::from(hold) | u8::from(env.smtputf8) << 1 | u8::from(env.delay_warned) << 2);
    e.u8(match env.ret {
        None => 0,
        Some(Ret::Full) => 1,
        Some(Ret::Hdrs) => 2,
    });
    match &env.envid {
        None => e.u8(0),
        Some(x) => {
            e.u8(1);
            e.str(x.as_str());
        }
    }
    e.str(
        &env.reverse_path
            .mailbox()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    );
    e.u32(u32::try_from(env.recipients.len()).unwrap_or(u32::MAX));
    for r in &env.recipients {
        e.str(&encode_forward_path(&r.path));
        e.u8(encode_notify(r.notify));
        match &r.orcpt {
            None => e.u8(0),
            Some(o) => {
                e.u8(1);
                e.str(o.addr_type());
                e.str(o.address().as_str());
            }
        }
        e.status(&r.status);
    }
    e.u64(env.size);
    match body {
        BodyRef::Inline => {
            e.u8(0);
            e.0.extend_from_slice(inline);
        }
        BodyRef::External { crc } => {
            e.u8(1);
            e.u32(crc);
        }
    }
    frame(KIND_MESSAGE, &e.0, out);
}

/// Encodes an update record onto `out`.
pub(crate) fn encode_update(id: QueueId, env: &Envelope, hold: bool, out: &mut Vec<u8>) {
    let mut e = Enc(Vec::with_capacity(32 + 16 * env.recipients.len()));
    e.u64(id.as_u64());
    e.u32(env.attempts);
    e.u64(millis(env.next_attempt));
    e.u8(u8::from(hold) | u8::from(env.delay_warned) << 1);
    e.u32(u32::try_from(env.recipients.len()).unwrap_or(u32::MAX));
    for r in &env.recipients {
        e.status(&r.status);
    }
    frame(KIND_UPDATE, &e.0, out);
}

/// Encodes a remove record onto `out`.
pub(crate) fn encode_remove(id: QueueId, deleted: bool, out: &mut Vec<u8>) {
    let mut e = Enc(Vec::with_capacity(9));
    e.u64(id.as_u64());
    e.u8(u8::from(deleted));
    frame(KIND_REMOVE, &e.0, out);
}

/// The queue ID at the start of a payload, when there is one (to name a damaged record).
pub(crate) fn peek_id(payload: &[u8]) -> Option<QueueId> {
    let b: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    Some(QueueId::from_u64(u64::from_le_bytes(b)))
}

/// Decodes the payload of a record whose header said `kind`.
pub(crate) fn decode(kind: u8, payload: &[u8]) -> Result<Record, String> {
    let mut d = Dec::new(payload);
    let id = QueueId::from_u64(d.u64("queue id")?);
    let rec = match kind {
        KIND_MESSAGE => {
            let arrival = from_millis(d.u64("arrival")?);
            let attempts = d.u32("attempts")?;
            let next_attempt = from_millis(d.u64("next attempt")?);
            let flags = d.u8("flags")?;
            if flags & !7 != 0 {
                return Err(format!("unknown flags {flags:#x}"));
            }
            let ret = match d.u8("RET")? {
                0 => None,
                1 => Some(Ret::Full),
                2 => Some(Ret::Hdrs),
                r => return Err(format!("bad RET {r}")),
            };
            let envid = match d.u8("ENVID presence")? {
                0 => None,
                _ => Some(XText::new(d.str("ENVID")?).map_err(|e| format!("bad ENVID: {e}"))?),
            };
            let reverse_path = decode_reverse_path(d.str("reverse-path")?)?;
            let n = d.u32("recipient count")? as usize;
            if n > MAX_RECIPIENTS {
                return Err(format!("{n} recipients, at most {MAX_RECIPIENTS}"));
            }
            let mut recipients = Vec::with_capacity(n);
            for _ in 0..n {
                let path = decode_forward_path(d.str("forward-path")?)?;
                let notify = decode_notify(d.u8("NOTIFY")?)?;
                let orcpt = match d.u8("ORCPT presence")? {
                    0 => None,
                    _ => {
                        let t = d.str("ORCPT type")?;
                        let x =
                            XText::new(d.str("ORCPT")?).map_err(|e| format!("bad ORCPT: {e}"))?;
                        Some(Orcpt::new(t, x).map_err(|e| format!("bad ORCPT: {e}"))?)
                    }
                };
                let status = d.status()?;
                recipients.push(Recipient {
                    path,
                    orcpt,
                    notify,
                    status,
                });
            }
            let size = d.u64("size")?;
            let body = match d.u8("body kind")? {
                0 => {
                    let rest = payload.len() - d.pos;
                    if rest as u64 != size {
                        return Err(format!("inline body is {rest} bytes, size says {size}"));
                    }
                    BodyRef::Inline
                }
                1 => BodyRef::External {
                    crc: d.u32("body checksum")?,
                },
                k => return Err(format!("unknown body kind {k}")),
            };
            let body_offset = d.pos;
            Record::Message {
                id,
                env: Envelope {
                    reverse_path,
                    recipients,
                    envid,
                    ret,
                    smtputf8: flags & 2 != 0,
                    delay_warned: flags & 4 != 0,
                    arrival,
                    attempts,
                    next_attempt,
                    size,
                },
                hold: flags & 1 != 0,
                body,
                body_offset,
            }
        }
        KIND_UPDATE => {
            let attempts = d.u32("attempts")?;
            let next_attempt = from_millis(d.u64("next attempt")?);
            let flags = d.u8("flags")?;
            if flags & !3 != 0 {
                return Err(format!("unknown flags {flags:#x}"));
            }
            let hold = flags & 1 != 0;
            let delay_warned = flags & 2 != 0;
            let n = d.u32("recipient count")? as usize;
            if n > MAX_RECIPIENTS {
                return Err(format!("{n} recipients, at most {MAX_RECIPIENTS}"));
            }
            let mut statuses = Vec::with_capacity(n);
            for _ in 0..n {
                statuses.push(d.status()?);
            }
            Record::Update {
                id,
                attempts,
                next_attempt,
                hold,
                delay_warned,
                statuses,
            }
        }
        KIND_REMOVE => Record::Remove {
            id,
            deleted: d.u8("reason")? != 0,
        },
        k => return Err(format!("unknown record kind {k}")),
    };
    if !matches!(rec, Record::Message { .. }) && d.pos != payload.len() {
        return Err(format!(
            "{} bytes after the record's fields",
            payload.len() - d.pos
        ));
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::DEFAULT_TEMPORARY;

    fn sample() -> Envelope {
        let mut env = Envelope::new(
            ReversePath::Mailbox("alice@example.org".parse().unwrap()),
            vec![
                ForwardPath::Mailbox("bob@example.net".parse().unwrap()),
                ForwardPath::Postmaster,
                ForwardPath::Mailbox("\"odd user\"@[192.0.2.1]".parse().unwrap()),
            ],
        );
        env.recipients[0].notify = Some(Notify {
            success: true,
            failure: true,
            delay: false,
        });
        env.recipients[0].orcpt =
            Some(Orcpt::new("rfc822", XText::new("Bob+2B1@example.net").unwrap()).unwrap());
        env.recipients[1].status = RcptStatus::Delivered;
        env.recipients[2].status = RcptStatus::Deferred(Diagnostic::new(DEFAULT_TEMPORARY, "busy"));
        env.envid = XText::encode(b"QQ314159");
        env.ret = Some(Ret::Hdrs);
        env.arrival = from_millis(1_700_000_000_123);
        env.next_attempt = from_millis(1_700_000_300_000);
        env.attempts = 2;
        env.size = 5;
        env.delay_warned = true;
        env
    }

    fn split(rec: &[u8]) -> (RecordHeader, &[u8]) {
        let h = parse_header(rec).unwrap();
        let payload = &rec[RECORD_HEADER_LEN..RECORD_HEADER_LEN + h.len as usize];
        assert!(check_payload(
            payload,
            &rec[RECORD_HEADER_LEN + h.len as usize..]
        ));
        assert_eq!(h.total_len(), rec.len() as u64);
        (h, payload)
    }

    #[test]
    fn message_round_trip() {
        let env = sample();
        let id = QueueId::from_u64(42);
        let mut out = Vec::new();
        encode_message(id, &env, true, BodyRef::Inline, b"hello", &mut out);
        let (h, payload) = split(&out);
        let Record::Message {
            id: got,
            env: e2,
            hold,
            body,
            body_offset,
        } = decode(h.kind, payload).unwrap()
        else {
            panic!("not a message")
        };
        assert_eq!((got, hold, body), (id, true, BodyRef::Inline));
        assert_eq!(e2, env);
        assert_eq!(&payload[body_offset..], b"hello");
    }

    #[test]
    fn update_and_remove_round_trip() {
        let env = sample();
        let id = QueueId::from_u64(7);
        let mut out = Vec::new();
        encode_update(id, &env, false, &mut out);
        let (h, payload) = split(&out);
        assert_eq!(
            decode(h.kind, payload).unwrap(),
            Record::Update {
                id,
                attempts: 2,
                next_attempt: env.next_attempt,
                hold: false,
                delay_warned: true,
                statuses: env.recipients.iter().map(|r| r.status.clone()).collect(),
            }
        );
        let mut out = Vec::new();
        encode_remove(id, true, &mut out);
        let (h, payload) = split(&out);
        assert_eq!(
            decode(h.kind, payload).unwrap(),
            Record::Remove { id, deleted: true }
        );
    }

    #[test]
    fn every_truncation_and_bit_flip_is_caught() {
        let mut out = Vec::new();
        encode_message(
            QueueId::from_u64(1),
            &sample(),
            false,
            BodyRef::Inline,
            b"hello",
            &mut out,
        );
        for bit in 0..out.len() * 8 {
            let mut bad = out.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let ok = parse_header(&bad).is_some_and(|h| {
                let end = RECORD_HEADER_LEN + h.len as usize;
                end + 4 <= bad.len()
                    && check_payload(&bad[RECORD_HEADER_LEN..end], &bad[end..end + 4])
            });
            assert!(!ok, "flip of bit {bit} went unnoticed");
        }
        let (h, payload) = split(&out);
        for cut in 0..payload.len() {
            // A payload cut short never decodes as a valid record (nor panics).
            let _ = decode(h.kind, &payload[..cut]);
        }
    }

    #[test]
    fn garbage_payloads_never_panic() {
        let mut seed = 1u64;
        for _ in 0..2000 {
            let len = (crate::sim_rand(&mut seed) % 200) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| crate::sim_rand(&mut seed) as u8).collect();
            for kind in 0..5 {
                let _ = decode(kind, &bytes);
            }
        }
    }

    #[test]
    fn file_headers() {
        assert_eq!(check_segment_header(&segment_header(3, 99)), Ok((3, 99)));
        assert!(check_file_header(&body_header(), BODY_MAGIC).is_ok());
        assert!(check_file_header(&body_header(), SEGMENT_MAGIC).is_err());
        let mut h = segment_header(3, 99);
        h[14] ^= 1;
        assert!(check_segment_header(&h).unwrap_err().contains("checksum"));
        h[8] = 2;
        assert!(check_segment_header(&h).unwrap_err().contains("version 2"));
        assert!(check_segment_header(&h[..5]).is_err());
        assert!(check_segment_header(&segment_header(1, 2)[..20]).is_err());
    }
}
