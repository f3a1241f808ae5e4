//! The queue: durable enqueue with group commit, recovery, scheduling and state changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mailroom_smtp_proto::{EnhancedCode, ForwardPath};

use crate::crc::Crc32c;
use crate::envelope::{Diagnostic, Envelope, RcptStatus};
use crate::error::QueueError;
use crate::fs::Fs;
use crate::id::{IdGenerator, QueueId};
use crate::record::{self, BodyRef, Record};
use crate::schedule::{Backoff, Clock, SystemClock, mix};

/// Chooses the destination (`transport:nexthop`) of a recipient, for per-destination
/// concurrency; the default is `smtp:` and the domain, lower-cased.
pub type Router = Arc<dyn Fn(&ForwardPath) -> String + Send + Sync>;

/// Where log lines go (recovery findings, quarantines); the default writes to standard error.
pub type Logger = Arc<dyn Fn(&str) + Send + Sync>;

/// How the queue behaves; [`Config::default`] has Postfix's defaults.
#[derive(Clone)]
pub struct Config {
    /// Content up to this size is kept inside the message record and shares the group's fsync;
    /// larger content is streamed to its own file (bounded memory) with its own fsync.
    pub inline_limit: usize,
    /// A segment file is closed and a new one started once it is this large.
    pub segment_size: u64,
    /// `qmgr_message_active_limit` (20000): at most this many messages are being delivered at
    /// once; when the window is full, enqueuers wait up to `in_flow_delay` (back-pressure).
    pub active_limit: usize,
    /// `in_flow_delay` (1 s): how long an enqueuer waits for room in a full active window
    /// before it goes ahead anyway (Postfix's flow control never refuses mail).
    pub in_flow_delay: Duration,
    /// `initial_destination_concurrency` (5): parallel deliveries to a destination at first.
    pub initial_destination_concurrency: usize,
    /// `default_destination_concurrency_limit` (20): the most parallel deliveries to one
    /// destination; each success raises a destination's window by one up to this limit, each
    /// all-deferred attempt lowers it by one (never below one).
    pub destination_concurrency_limit: usize,
    /// Retry timing.
    pub backoff: Backoff,
    /// `delay_warning_time` (Postfix's default 0h: off): when a deferred message has waited
    /// this long, the sender gets one delay DSN (`Action: delayed`) for the deferred recipients
    /// whose NOTIFY allows it.
    pub delay_warning_time: Option<Duration>,
    /// `myhostname`: the Reporting-MTA of bounces.
    pub myhostname: String,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// The destination of a recipient.
    pub router: Router,
    /// Where log lines go.
    pub logger: Logger,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            inline_limit: 256 << 10,
            segment_size: 64 << 20,
            active_limit: 20_000,
            in_flow_delay: Duration::from_secs(1),
            initial_destination_concurrency: 5,
            destination_concurrency_limit: 20,
            backoff: Backoff::default(),
            delay_warning_time: None,
            myhostname: "localhost".into(),
            clock: Arc::new(SystemClock),
            router: Arc::new(default_route),
            logger: Arc::new(|line: &str| eprintln!("mailroom-queue: {line}")),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("inline_limit", &self.inline_limit)
            .field("segment_size", &self.segment_size)
            .field("active_limit", &self.active_limit)
            .field("in_flow_delay", &self.in_flow_delay)
            .field(
                "initial_destination_concurrency",
                &self.initial_destination_concurrency,
            )
            .field(
                "destination_concurrency_limit",
                &self.destination_concurrency_limit,
            )
            .field("backoff", &self.backoff)
            .field("delay_warning_time", &self.delay_warning_time)
            .field("myhostname", &self.myhostname)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// The default [`Router`]: `smtp:` and the recipient's domain in lower case (`local:` for
/// the bare `<Postmaster>`).
pub fn default_route(path: &ForwardPath) -> String {
    match path.mailbox() {
        Some(m) => format!("smtp:{}", m.host().to_string().to_ascii_lowercase()),
        None => "local:".into(),
    }
}

/// The state of a queued message, with Postfix's queue names.
///
/// Postfix's fifth queue, corrupt, holds what recovery could not read: those are files, not
/// messages, listed by [`Queue::corrupt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueState {
    /// Accepted and not tried yet.
    Incoming,
    /// Being delivered (leased).
    Active,
    /// Tried and deferred; waiting for its next attempt.
    Deferred,
    /// Set aside by the administrator; not delivered until released.
    Hold,
}

impl fmt::Display for QueueState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueState::Incoming => "incoming",
            QueueState::Active => "active",
            QueueState::Deferred => "deferred",
            QueueState::Hold => "hold",
        })
    }
}

/// The result of delivering to one recipient, handed to [`Queue::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered: never tried again.
    Delivered,
    /// Failed temporarily: tried again after the back-off.
    Deferred(Diagnostic),
    /// Failed permanently: reported to the sender in a bounce.
    Bounced(Diagnostic),
}

/// A message taken for delivery to one destination; hand it back with [`Queue::complete`].
#[derive(Debug)]
pub struct Lease {
    id: QueueId,
    token: u64,
    destination: String,
    recipients: Vec<usize>,
    envelope: Envelope,
}

impl Lease {
    /// The message.
    pub fn id(&self) -> QueueId {
        self.id
    }

    /// The destination (`transport:nexthop`) of the recipients leased.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The indexes (into the envelope's recipients) to deliver to now.
    pub fn recipients(&self) -> &[usize] {
        &self.recipients
    }

    /// The envelope as it was when taken.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }
}

/// One line of [`Queue::list`]: what `postqueue -p` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The message.
    pub id: QueueId,
    /// Its state.
    pub state: QueueState,
    /// The envelope, recipients with their status and reasons.
    pub envelope: Envelope,
}

/// What recovery found when the queue was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Messages loaded.
    pub messages: usize,
    /// Messages that were being delivered or deferred and are retried (all loaded messages
    /// that are not held and not done).
    pub retried: usize,
    /// Incomplete writes removed (torn tails, orphaned content files, temporary files).
    pub removed_incomplete: Vec<String>,
    /// Damaged entries moved to `corrupt/`, each with the reason.
    pub quarantined: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyLoc {
    Inline { seg: u64, offset: u64 },
    External { crc: u32 },
}

#[derive(Debug)]
struct Entry {
    env: Envelope,
    hold: bool,
    body: BodyLoc,
    /// The segment holding the message record, which must stay while the message lives.
    seg: u64,
    lease: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct DestState {
    active: usize,
    window: usize,
}

#[derive(Debug, Default)]
struct Index {
    msgs: HashMap<QueueId, Entry>,
    ready: BTreeSet<(u64, QueueId)>,
    leased: usize,
    next_token: u64,
    dests: HashMap<String, DestState>,
    seg_live: BTreeMap<u64, usize>,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Index {
    fn state_of(e: &Entry) -> QueueState {
        if e.lease.is_some() {
            QueueState::Active
        } else if e.hold {
            QueueState::Hold
        } else if e.env.attempts > 0 {
            QueueState::Deferred
        } else {
            QueueState::Incoming
        }
    }

    fn unready(&mut self, id: QueueId) {
        if let Some(e) = self.msgs.get(&id) {
            self.ready.remove(&(ms(e.env.next_attempt), id));
        }
    }

    fn make_ready(&mut self, id: QueueId) {
        if let Some(e) = self.msgs.get(&id)
            && e.lease.is_none()
            && !e.hold
            && !e.env.is_done()
        {
            self.ready.insert((ms(e.env.next_attempt), id));
        }
    }

    /// Adds a message; `count` says whether to count it live in its segment (the group
    /// commit's leader already did for new messages, before anyone could see the segment).
    fn insert(&mut self, id: QueueId, e: Entry, count: bool) {
        if count {
            *self.seg_live.entry(e.seg).or_default() += 1;
        }
        if let Some(old) = self.msgs.insert(id, e) {
            self.ready.remove(&(ms(old.env.next_attempt), id));
            if let Some(n) = self.seg_live.get_mut(&old.seg) {
                *n = n.saturating_sub(1);
            }
        }
        self.make_ready(id);
    }

    fn remove(&mut self, id: QueueId) -> Option<Entry> {
        self.unready(id);
        let e = self.msgs.remove(&id)?;
        if let Some(n) = self.seg_live.get_mut(&e.seg) {
            *n = n.saturating_sub(1);
        }
        if e.lease.is_some() {
            self.leased = self.leased.saturating_sub(1);
        }
        Some(e)
    }
}

/// What a record submitted to the log does, for the group's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A new message: counted live in its segment once the group is durable.
    Message,
    /// A change already applied to memory.
    Update,
}

/// The outcome of one group of records, shared by everyone whose record is in it.
#[derive(Debug, Default)]
struct Slot {
    result: OnceLock<Result<(u64, u64), String>>,
}

struct Log<F: Fs> {
    pending: Vec<u8>,
    pending_updates: bool,
    pending_messages: usize,
    slot: Arc<Slot>,
    writing: bool,
    file: Option<F::File>,
    seg: u64,
    seg_len: u64,
    next_seg: u64,
    poisoned: Option<String>,
}

struct Inner<F: Fs> {
    fs: F,
    seg_dir: PathBuf,
    body_dir: PathBuf,
    corrupt_dir: PathBuf,
    config: Config,
    ids: IdGenerator,
    log: Mutex<Log<F>>,
    log_cv: Condvar,
    index: Mutex<Index>,
    room_cv: Condvar,
    gc: Mutex<()>,
    recovery: Recovery,
    /// The exclusive lock on `QUEUE/lock`, held while the queue is open.
    _lock: Box<dyn std::any::Any + Send + Sync>,
}

/// A durable mail queue in a directory.
///
/// Cloning gives another handle to the same queue; every method takes `&self` and may be called
/// from many threads at once. Concurrent enqueues and state changes share their fsyncs (group
/// commit): see `FORMAT.md` for the design.
///
/// # Examples
///
/// ```
/// use mailroom_queue::{Envelope, Outcome, Queue, sim::SimFs};
/// use mailroom_smtp_proto::{ForwardPath, ReversePath};
///
/// let queue = Queue::open(SimFs::new(), "/q", Default::default())?;
/// let env = Envelope::new(
///     ReversePath::Mailbox("alice@example.org".parse()?),
///     vec![ForwardPath::Mailbox("bob@example.net".parse()?)],
/// );
/// let id = queue.enqueue(env, &b"Subject: hi\r\n\r\nhello\r\n"[..])?;
/// let lease = queue.take().expect("a ready message");
/// assert_eq!(lease.id(), id);
/// let results: Vec<_> = lease.recipients().iter().map(|&i| (i, Outcome::Delivered)).collect();
/// queue.complete(lease, &results)?;
/// assert!(queue.list().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<F: Fs = crate::fs::RealFs> {
    inner: Arc<Inner<F>>,
}

impl<F: Fs> Clone for Queue<F> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<F: Fs> fmt::Debug for Queue<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("segments", &self.inner.seg_dir)
            .finish_non_exhaustive()
    }
}

/// Segments holding at most this many live messages are compacted by copying them forward.
const COPY_FORWARD_LIMIT: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn seg_name(seq: u64) -> String {
    format!("{seq:016X}.log")
}

fn parse_seg_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".log")?;
    if hex.len() != 16
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The content of a queued message, read from the store.
///
/// Reads exactly the message's size; content kept in its own file is checked against its
/// CRC-32C at the end, and a mismatch is an [`io::ErrorKind::InvalidData`] error.
pub struct BodyReader<R> {
    inner: io::Take<R>,
    check: Option<(Crc32c, u32)>,
}

impl<R> fmt::Debug for BodyReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyReader")
            .field("remaining", &self.inner.limit())
            .finish_non_exhaustive()
    }
}

impl<R: Read> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let expected = self.inner.limit();
        let n = self.inner.read(buf)?;
        if n == 0 && expected > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "message content is shorter than its recorded size",
            ));
        }
        if let Some((crc, want)) = &mut self.check {
            crc.update(&buf[..n]);
            if self.inner.limit() == 0 && n > 0 && crc.finish() != *want {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "message content does not match its checksum",
                ));
            }
        }
        Ok(n)
    }
}

/// Reads from `r` until `buf` is full or the end; returns how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<F: Fs> Queue<F> {
    /// Opens (creating if needed) the queue in directory `root` on `fs`, and recovers.
    ///
    /// Recovery replays the segment files in order: torn tails of interrupted writes and
    /// orphaned temporary files are removed; damaged records, files with unknown names and
    /// content files that fail their checks are moved to `corrupt/` with a log line. One bad
    /// entry never stops the start. Messages that were being delivered are retried.
    ///
    /// # Errors
    ///
    /// When the queue directories cannot be created or listed.
    pub fn open(fs: F, root: impl AsRef<Path>, config: Config) -> Result<Self, QueueError> {
        let root = root.as_ref().to_path_buf();
        let seg_dir = root.join("seg");
        let body_dir = root.join("body");
        let corrupt_dir = root.join("corrupt");
        let mut created = false;
        for dir in [&root, &seg_dir, &body_dir, &corrupt_dir] {
            match fs.create_dir(dir) {
                Ok(()) => created = true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(QueueError::io("create directory", dir, e)),
            }
        }
        if created {
            for dir in [&root, root.parent().unwrap_or(Path::new("/"))] {
                fs.sync_dir(dir)
                    .map_err(|e| QueueError::io("fsync directory", dir, e))?;
            }
        }
        let lock_path = root.join("lock");
        let owner = fs
            .lock(&lock_path)
            .map_err(|e| QueueError::io("lock", &lock_path, e))?;
        let mut rec = Recovery::default();
        let mut index = Index::default();
        let ids = IdGenerator::default();
        let log_line = |line: String| (config.logger)(&line);
        let (next_seg, (last_seg, last_len)) = recover(
            &fs,
            &seg_dir,
            &body_dir,
            &corrupt_dir,
            &mut index,
            &ids,
            &mut rec,
            &log_line,
        )?;
        rec.messages = index.msgs.len();
        rec.retried = index.ready.len();
        let queue = Queue {
            inner: Arc::new(Inner {
                fs,
                seg_dir,
                body_dir,
                corrupt_dir,
                config,
                ids,
                log: Mutex::new(Log {
                    pending: Vec::new(),
                    pending_updates: false,
                    pending_messages: 0,
                    slot: Arc::new(Slot::default()),
                    writing: false,
                    file: None,
                    seg: last_seg,
                    seg_len: last_len,
                    next_seg,
                    poisoned: None,
                }),
                log_cv: Condvar::new(),
                index: Mutex::new(index),
                room_cv: Condvar::new(),
                gc: Mutex::new(()),
                recovery: rec,
                _lock: owner,
            }),
        };
        // Messages whose recipients were all done when the process stopped: finish them now
        // (bounce, then remove). A failure leaves them for the next start.
        let done: Vec<QueueId> = {
            let idx = lock(&queue.inner.index);
            idx.msgs
                .iter()
                .filter(|(_, e)| e.env.is_done())
                .map(|(id, _)| *id)
                .collect()
        };
        for id in done {
            if let Err(e) = queue.finish(id) {
                (queue.inner.config.logger)(&format!("cannot finish message {id} on start: {e}"));
            }
        }
        Ok(queue)
    }

    /// What recovery found when the queue was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.inner.recovery
    }

    fn now(&self) -> SystemTime {
        self.inner.config.clock.now()
    }

    /// Queues a message: `body` is the content (header and body, CRLF line ends), read to its
    /// end. Returns its ID only once the envelope and content are on stable storage.
    ///
    /// Content up to [`Config::inline_limit`] is held in memory and written with other
    /// enqueues in one group (one fsync for all); larger content is streamed in 64 KiB pieces to
    /// its own file, so a message of any size needs bounded memory. The queue sets the
    /// envelope's arrival time, attempts and size, and every recipient's status to pending.
    ///
    /// # Errors
    ///
    /// Reading `body` failed, a write or fsync failed (ENOSPC included), or the envelope has no
    /// or too many recipients. On error nothing was queued: nothing of the message is
    /// delivered, now or after a restart.
    pub fn enqueue(&self, mut env: Envelope, mut body: impl Read) -> Result<QueueId, QueueError> {
        if env.recipients.is_empty() {
            return Err(QueueError::NoRecipients);
        }
        if env.recipients.len() > record::MAX_RECIPIENTS {
            return Err(QueueError::TooManyRecipients(env.recipients.len()));
        }
        self.wait_for_room();
        let now = self.now();
        let id = self.inner.ids.next(now);
        env.arrival = now;
        env.attempts = 0;
        env.next_attempt = now;
        for r in &mut env.recipients {
            r.status = RcptStatus::Pending;
        }
        let limit = self.inner.config.inline_limit;
        let mut buf = vec![0u8; limit.saturating_add(1).clamp(1, 1 << 20)];
        let mut first = read_full(&mut body, &mut buf).map_err(QueueError::Content)?;
        let mut inline = Vec::new();
        let body_ref = if first <= limit && first < buf.len() {
            buf.truncate(first);
            inline = buf;
            env.size = first as u64;
            BodyRef::Inline
        } else {
            if first <= limit {
                // The probe buffer is capped at 1 MiB; read on until the limit is passed.
                let mut more = vec![0u8; 64 << 10];
                while first <= limit {
                    let n = read_full(&mut body, &mut more).map_err(QueueError::Content)?;
                    if n == 0 {
                        break;
                    }
                    buf.truncate(first);
                    buf.extend_from_slice(&more[..n]);
                    first += n;
                }
            }
            if first <= limit {
                buf.truncate(first);
                inline = buf;
                env.size = first as u64;
                BodyRef::Inline
            } else {
                buf.truncate(first);
                let (size, crc) = self.write_external(id, &buf, &mut body)?;
                env.size = size;
                BodyRef::External { crc }
            }
        };
        let mut rec = Vec::with_capacity(inline.len() + 256);
        record::encode_message(id, &env, false, body_ref, &inline, &mut rec);
        let body_in_record = rec.len() - record::RECORD_TRAILER_LEN - inline.len();
        drop(inline);
        let (seg, off) = match self.submit(&rec, Kind::Message, None) {
            Ok(loc) => loc,
            Err(e) => {
                if let BodyRef::External { .. } = body_ref {
                    let _ = self.inner.fs.remove_file(&self.body_path(id));
                }
                return Err(e);
            }
        };
        let body = match body_ref {
            BodyRef::Inline => BodyLoc::Inline {
                seg,
                offset: off + body_in_record as u64,
            },
            BodyRef::External { crc } => BodyLoc::External { crc },
        };
        let mut idx = lock(&self.inner.index);
        idx.insert(
            id,
            Entry {
                env,
                hold: false,
                body,
                seg,
                lease: None,
            },
            false,
        );
        Ok(id)
    }

    /// Back-pressure: while the active window is full, wait up to `in_flow_delay`.
    fn wait_for_room(&self) {
        let cfg = &self.inner.config;
        let idx = lock(&self.inner.index);
        if idx.leased < cfg.active_limit {
            return;
        }
        let _ = self
            .inner
            .room_cv
            .wait_timeout_while(idx, cfg.in_flow_delay, |i| i.leased >= cfg.active_limit);
    }

    fn body_path(&self, id: QueueId) -> PathBuf {
        self.inner.body_dir.join(id.to_string())
    }

    /// Streams large content to `body/<ID>`: temporary name, fsync, rename, fsync directory.
    fn write_external(
        &self,
        id: QueueId,
        first: &[u8],
        rest: &mut impl Read,
    ) -> Result<(u64, u32), QueueError> {
        let fs = &self.inner.fs;
        let tmp = self.inner.body_dir.join(format!("{id}.tmp"));
        let path = self.body_path(id);
        let mut file = fs
            .create_new(&tmp)
            .map_err(|e| QueueError::io("create", &tmp, e))?;
        let result = (|| {
            let mut crc = Crc32c::new();
            let mut size = first.len() as u64;
            file.write_all(&record::body_header())
                .map_err(|e| QueueError::io("write", &tmp, e))?;
            crc.update(first);
            file.write_all(first)
                .map_err(|e| QueueError::io("write", &tmp, e))?;
            let mut chunk = vec![0u8; 64 << 10];
            loop {
                let n = match rest.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(QueueError::Content(e)),
                };
                crc.update(&chunk[..n]);
                size += n as u64;
                file.write_all(&chunk[..n])
                    .map_err(|e| QueueError::io("write", &tmp, e))?;
            }
            fs.sync_file(&mut file)
                .map_err(|e| QueueError::io("fsync", &tmp, e))?;
            fs.rename(&tmp, &path)
                .map_err(|e| QueueError::io("rename", &tmp, e))?;
            fs.sync_dir(&self.inner.body_dir)
                .map_err(|e| QueueError::io("fsync directory", &self.inner.body_dir, e))?;
            Ok((size, crc.finish()))
        })();
        if result.is_err() {
            let _ = fs.remove_file(&tmp);
            let _ = fs.remove_file(&path);
        }
        result
    }

    /// Adds `rec` to the next group and waits until the group is durable (group commit).
    ///
    /// The first caller to find no group being written becomes the leader: it takes every
    /// record added so far, writes them with one `write`, flushes them with one `fdatasync`, and
    /// wakes the others. Records added meanwhile form the next group. `Kind::Update` marks records
    /// already applied to memory: if their group fails, memory and disk differ and the queue
    /// stops (poisoned) until reopened. `idx` (held by the caller for an update) is released
    /// once the record is in the group, so the log order matches the order of memory changes.
    fn submit(
        &self,
        rec: &[u8],
        kind: Kind,
        idx: Option<MutexGuard<'_, Index>>,
    ) -> Result<(u64, u64), QueueError> {
        let inner = &*self.inner;
        let mut log = lock(&inner.log);
        drop(idx);
        if let Some(why) = &log.poisoned {
            return Err(QueueError::Poisoned(why.clone()));
        }
        let pos = log.pending.len() as u64;
        log.pending.extend_from_slice(rec);
        log.pending_updates |= kind == Kind::Update;
        log.pending_messages += usize::from(kind == Kind::Message);
        let slot = Arc::clone(&log.slot);
        loop {
            if let Some(result) = slot.result.get() {
                return match result {
                    Ok((seg, off)) => Ok((*seg, off + pos)),
                    Err(e) => Err(QueueError::Commit(e.clone())),
                };
            }
            if !log.writing {
                self.lead(log);
                log = lock(&inner.log);
                continue;
            }
            log = inner.log_cv.wait(log).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Writes and flushes the pending group, as its leader.
    fn lead(&self, mut log: MutexGuard<'_, Log<F>>) {
        let inner = &*self.inner;
        log.writing = true;
        let batch = std::mem::take(&mut log.pending);
        let had_updates = std::mem::replace(&mut log.pending_updates, false);
        let messages = std::mem::replace(&mut log.pending_messages, 0);
        let slot = std::mem::replace(&mut log.slot, Arc::new(Slot::default()));
        let rotate = log.file.is_none() || log.seg_len >= inner.config.segment_size;
        let mut file = if rotate { None } else { log.file.take() };
        let (mut seg, start) = (log.seg, log.seg_len);
        let prev = (log.seg, log.seg_len);
        let new_seg = if rotate {
            let s = log.next_seg;
            log.next_seg += 1;
            Some(s)
        } else {
            None
        };
        drop(log);

        let fs = &inner.fs;
        let mut result: Result<(u64, u64), String> = (|| {
            let mut offset = start;
            if let Some(s) = new_seg {
                seg = s;
                let path = inner.seg_dir.join(seg_name(s));
                let mut f = fs
                    .create_new(&path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                let mut head = Vec::with_capacity(record::SEGMENT_HEADER_LEN + batch.len());
                head.extend_from_slice(&record::segment_header(prev.0, prev.1));
                offset = record::SEGMENT_HEADER_LEN as u64;
                head.extend_from_slice(&batch);
                file = Some(f_write(fs, &mut f, &head, &path).map(|()| f)?);
                fs.sync_dir(&inner.seg_dir).map_err(|e| {
                    format!("cannot fsync directory {}: {e}", inner.seg_dir.display())
                })?;
            } else if let Some(f) = file.as_mut() {
                let path = inner.seg_dir.join(seg_name(seg));
                f_write(fs, f, &batch, &path)?;
            }
            Ok((seg, offset))
        })();

        if let Ok((seg, _)) = &result {
            // Count the group's messages live before anyone learns the segment holds them,
            // so that garbage collection never removes a segment a message is about to use.
            *lock(&inner.index).seg_live.entry(*seg).or_default() += messages;
        }
        let mut log = lock(&inner.log);
        match &result {
            Ok((_, offset)) => {
                log.seg = seg;
                log.seg_len = offset + batch.len() as u64;
                log.file = file;
            }
            Err(e) => {
                // Take the group's bytes back off the disk, so that nothing of it can be found
                // after a restart; when even that fails, or memory already showed the group's
                // state changes, stop until reopened.
                let path = inner.seg_dir.join(seg_name(seg));
                let undone = match new_seg {
                    Some(_) => match fs.remove_file(&path) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                        r => r.and_then(|()| fs.sync_dir(&inner.seg_dir)),
                    },
                    None => fs.truncate(&path, start),
                };
                // The next group starts a new segment; `seg` and `seg_len` still describe the
                // last good one (cut back to `start`), for the new segment's header.
                log.file = None;
                if undone.is_err() || had_updates {
                    let why = match undone {
                        Err(u) => format!("{e}; then cannot undo it: {u}"),
                        Ok(()) => e.clone(),
                    };
                    (inner.config.logger)(&format!("queue stopped: {why}"));
                    log.poisoned = Some(why);
                }
                result = Err(e.clone());
            }
        }
        log.writing = false;
        let _ = slot.result.set(result);
        drop(log);
        inner.log_cv.notify_all();
    }

    fn current_seg(&self) -> u64 {
        let log = lock(&self.inner.log);
        // While a group is written its leader holds the file (taken out of `log.file`): the
        // segment being appended to is still `log.seg`, and must not look collectable.
        if log.file.is_some() || log.writing {
            log.seg
        } else {
            log.next_seg
        }
    }

    /// Takes the next ready message for delivery, if the active window has room: its
    /// recipients for the first destination with room in its concurrency window.
    ///
    /// Messages are taken in order of their next attempt time, then arrival. A message is
    /// leased to one caller at a time; hand it back with [`Queue::complete`].
    pub fn take(&self) -> Option<Lease> {
        let now = ms(self.now());
        let cfg = &self.inner.config;
        let mut guard = lock(&self.inner.index);
        let idx = &mut *guard;
        if idx.leased >= cfg.active_limit {
            return None;
        }
        let mut chosen = None;
        for &(at, id) in idx.ready.iter().take(10_000) {
            if at > now {
                break;
            }
            let Some(e) = idx.msgs.get(&id) else { continue };
            let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
            for (i, r) in e.env.recipients.iter().enumerate() {
                if r.status.is_final() {
                    continue;
                }
                let dest = (cfg.router)(&r.path);
                match groups.iter_mut().find(|(d, _)| *d == dest) {
                    Some((_, v)) => v.push(i),
                    None => groups.push((dest, vec![i])),
                }
            }
            let free = groups
                .into_iter()
                .find(|(d, _)| idx.dests.get(d).is_none_or(|s| s.active < s.window));
            if let Some((dest, rcpts)) = free {
                chosen = Some((at, id, dest, rcpts));
                break;
            }
        }
        let (at, id, dest, rcpts) = chosen?;
        idx.ready.remove(&(at, id));
        idx.leased += 1;
        idx.next_token += 1;
        let token = idx.next_token;
        let initial = cfg.initial_destination_concurrency.max(1);
        idx.dests
            .entry(dest.clone())
            .or_insert(DestState {
                active: 0,
                window: initial,
            })
            .active += 1;
        let e = idx.msgs.get_mut(&id)?;
        e.lease = Some(token);
        Some(Lease {
            id,
            token,
            destination: dest,
            recipients: rcpts,
            envelope: e.env.clone(),
        })
    }

    /// Opens the content of message `id` for reading (for delivery or export).
    ///
    /// # Errors
    ///
    /// [`QueueError::NotFound`], or when the file cannot be opened.
    pub fn open_body(&self, id: QueueId) -> Result<BodyReader<F::Reader>, QueueError> {
        let (body, size) = {
            let idx = lock(&self.inner.index);
            let e = idx.msgs.get(&id).ok_or(QueueError::NotFound(id))?;
            (e.body, e.env.size)
        };
        let fs = &self.inner.fs;
        match body {
            BodyLoc::Inline { seg, offset } => {
                let path = self.inner.seg_dir.join(seg_name(seg));
                let mut r = fs
                    .open(&path)
                    .map_err(|e| QueueError::io("open", &path, e))?;
                r.seek(SeekFrom::Start(offset))
                    .map_err(|e| QueueError::io("seek", &path, e))?;
                Ok(BodyReader {
                    inner: r.take(size),
                    check: None,
                })
            }
            BodyLoc::External { crc } => {
                let path = self.body_path(id);
                let mut r = fs
                    .open(&path)
                    .map_err(|e| QueueError::io("open", &path, e))?;
                let mut h = [0u8; record::BODY_HEADER_LEN];
                r.read_exact(&mut h)
                    .map_err(|e| QueueError::io("read", &path, e))?;
                record::check_file_header(&h, record::BODY_MAGIC)
                    .map_err(|detail| QueueError::Damaged { id, detail })?;
                Ok(BodyReader {
                    inner: r.take(size),
                    check: Some((Crc32c::new(), crc)),
                })
            }
        }
    }

    /// Records the results of a delivery attempt, durably, and hands the message back.
    ///
    /// `results` gives an [`Outcome`] per recipient index of the lease; a leased recipient
    /// without a result counts as deferred. A deferral schedules the next attempt with
    /// Postfix's back-off; past `maximal_queue_lifetime` (`bounce_queue_lifetime` for a bounce)
    /// the deferred recipients bounce as expired (`4.4.7`). Once every recipient is delivered or
    /// bounced, a DSN goes to the sender for the bounced ones that asked for it (never when the
    /// reverse-path is null), and the message is removed.
    ///
    /// # Errors
    ///
    /// [`QueueError::StaleLease`] when the message was deleted or the lease already completed;
    /// a commit error when the change could not be made durable (the queue then stops).
    pub fn complete(&self, lease: Lease, results: &[(usize, Outcome)]) -> Result<(), QueueError> {
        let now = self.now();
        let cfg = &self.inner.config;
        let mut idx = lock(&self.inner.index);
        let Some(e) = idx
            .msgs
            .get_mut(&lease.id)
            .filter(|e| e.lease == Some(lease.token))
        else {
            return Err(QueueError::StaleLease(lease.id));
        };
        e.lease = None;
        let mut delivered = false;
        let mut deferred = false;
        let mut warn = None;
        for &i in &lease.recipients {
            let Some(r) = e.env.recipients.get_mut(i) else {
                continue;
            };
            let outcome = results.iter().find(|(j, _)| *j == i).map(|(_, o)| o);
            r.status = match outcome {
                Some(Outcome::Delivered) => {
                    delivered = true;
                    RcptStatus::Delivered
                }
                Some(Outcome::Bounced(d)) => RcptStatus::Bounced(d.clone()),
                Some(Outcome::Deferred(d)) => {
                    deferred = true;
                    RcptStatus::Deferred(d.clone())
                }
                None => {
                    deferred = true;
                    RcptStatus::Deferred(Diagnostic::new(
                        crate::envelope::DEFAULT_TEMPORARY,
                        "delivery agent gave no result",
                    ))
                }
            };
        }
        if deferred {
            e.env.attempts += 1;
            let age = now.duration_since(e.env.arrival).unwrap_or_default();
            let lifetime = if e.env.reverse_path.is_null() {
                cfg.backoff.bounce_queue_lifetime
            } else {
                cfg.backoff.maximal_queue_lifetime
            };
            if age >= lifetime {
                expire(&mut e.env, age);
            } else {
                let seed = lease.id.as_u64() ^ u64::from(e.env.attempts).rotate_left(32);
                e.env.next_attempt = now + cfg.backoff.delay(age, mix(seed));
                if cfg.delay_warning_time.is_some_and(|t| age >= t) && !e.env.delay_warned {
                    // Recorded with this update; the warning itself is queued once the update
                    // is durable. A crash between the two loses the warning rather than
                    // sending it twice.
                    e.env.delay_warned = true;
                    warn = crate::dsn::delay_report(cfg, lease.id, &e.env);
                }
            }
        } else {
            e.env.next_attempt = now;
        }
        let done = e.env.is_done();
        let mut rec = Vec::with_capacity(64);
        record::encode_update(lease.id, &e.env, e.hold, &mut rec);
        idx.leased = idx.leased.saturating_sub(1);
        let limit = cfg.destination_concurrency_limit.max(1);
        if let Some(d) = idx.dests.get_mut(&lease.destination) {
            d.active = d.active.saturating_sub(1);
            if delivered {
                d.window = (d.window + 1).min(limit);
            } else if deferred {
                d.window = d.window.saturating_sub(1).max(1);
            }
        }
        idx.make_ready(lease.id);
        self.inner.room_cv.notify_all();
        self.submit(&rec, Kind::Update, Some(idx))?;
        if let Some((env, prefix, suffix, _)) = warn {
            let body = self.open_body(lease.id)?;
            let reader = io::Cursor::new(prefix)
                .chain(crate::dsn::HeaderOnly::new(body))
                .chain(io::Cursor::new(suffix));
            let warning = self.enqueue(env, reader)?;
            (cfg.logger)(&format!(
                "{}: sender delay notification: {warning}",
                lease.id
            ));
        }
        if done {
            self.finish(lease.id)?;
        }
        Ok(())
    }

    /// A message whose recipients are all done: bounce what needs bouncing, then remove it.
    fn finish(&self, id: QueueId) -> Result<(), QueueError> {
        let env = {
            let idx = lock(&self.inner.index);
            match idx.msgs.get(&id) {
                Some(e) => e.env.clone(),
                None => return Ok(()),
            }
        };
        if let Some((dsn_env, prefix, suffix, headers_only)) =
            crate::dsn::failure_report(&self.inner.config, id, &env)
        {
            let body = self.open_body(id)?;
            let content: Box<dyn Read + Send> = if headers_only {
                Box::new(crate::dsn::HeaderOnly::new(body))
            } else {
                Box::new(body)
            };
            let reader = io::Cursor::new(prefix)
                .chain(content)
                .chain(io::Cursor::new(suffix));
            let bounce = self.enqueue(dsn_env, reader)?;
            (self.inner.config.logger)(&format!(
                "{id}: sender non-delivery notification: {bounce}"
            ));
        }
        self.remove(id, false)
    }

    /// Writes a remove record and forgets the message.
    fn remove(&self, id: QueueId, deleted: bool) -> Result<(), QueueError> {
        let mut idx = lock(&self.inner.index);
        let Some(e) = idx.remove(id) else {
            return Err(QueueError::NotFound(id));
        };
        self.inner.room_cv.notify_all();
        let freed = idx.seg_live.get(&e.seg) == Some(&0);
        let mut rec = Vec::with_capacity(32);
        record::encode_remove(id, deleted, &mut rec);
        self.submit(&rec, Kind::Update, Some(idx))?;
        if let BodyLoc::External { .. } = e.body {
            // Not flushed: if the removal is lost, recovery finds an orphan and removes it.
            let _ = self.inner.fs.remove_file(&self.body_path(id));
        }
        if freed {
            self.collect_garbage();
        }
        Ok(())
    }

    /// Removes the oldest segments that hold no live message, oldest first, flushing the
    /// directory after each: a later segment's remove records must never vanish while an
    /// earlier segment with the messages they removed survives.
    fn collect_garbage(&self) {
        let _gc = lock(&self.inner.gc);
        let current = self.current_seg();
        loop {
            let (oldest, live, segments) = {
                let idx = lock(&self.inner.index);
                match idx.seg_live.iter().next() {
                    Some((&seg, &live)) if seg < current => (seg, live, idx.seg_live.len()),
                    _ => return,
                }
            };
            if live > 0 {
                // A few long-lived (deferred, held) messages would keep this segment and every
                // later one on disk for days: copy them forward, then the segment can go. Only
                // when two newer segments exist, so a quiet queue does not copy the same
                // messages over and over.
                if live <= COPY_FORWARD_LIMIT && segments >= 3 && self.copy_forward(oldest) {
                    continue;
                }
                return;
            }
            let path = self.inner.seg_dir.join(seg_name(oldest));
            let fs = &self.inner.fs;
            let gone = match fs.remove_file(&path) {
                Ok(()) => fs.sync_dir(&self.inner.seg_dir),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            };
            if gone.is_err() {
                return;
            }
            lock(&self.inner.index).seg_live.remove(&oldest);
        }
    }

    /// Writes a new message record (current state, content inline or the same external file)
    /// for each live message whose record is in segment `seg`; on replay the newer record
    /// replaces the older. Returns whether every copy was made durable.
    fn copy_forward(&self, seg: u64) -> bool {
        let ids: Vec<QueueId> = {
            let idx = lock(&self.inner.index);
            idx.msgs
                .iter()
                .filter(|(_, e)| e.seg == seg)
                .map(|(id, _)| *id)
                .collect()
        };
        for id in ids {
            let inline_len = {
                let idx = lock(&self.inner.index);
                match idx.msgs.get(&id) {
                    Some(e) if matches!(e.body, BodyLoc::Inline { .. }) => Some(e.env.size),
                    Some(_) => None,
                    None => continue,
                }
            };
            let mut inline = Vec::new();
            if let Some(len) = inline_len {
                if len > u64::from(record::MAX_PAYLOAD) / 2 {
                    return false;
                }
                let read = self
                    .open_body(id)
                    .ok()
                    .and_then(|mut r| r.read_to_end(&mut inline).ok());
                if read.is_none() {
                    return false;
                }
            }
            // Encode and queue the copy under the index lock, so that it sits in the log after
            // every change memory already shows and before any later one.
            let idx = lock(&self.inner.index);
            let Some(e) = idx.msgs.get(&id).filter(|e| e.seg == seg) else {
                continue;
            };
            let body_ref = match e.body {
                BodyLoc::Inline { .. } => BodyRef::Inline,
                BodyLoc::External { crc } => BodyRef::External { crc },
            };
            let mut rec = Vec::with_capacity(inline.len() + 256);
            record::encode_message(id, &e.env, e.hold, body_ref, &inline, &mut rec);
            let body_in_record = (rec.len() - record::RECORD_TRAILER_LEN - inline.len()) as u64;
            let Ok((new_seg, off)) = self.submit(&rec, Kind::Message, Some(idx)) else {
                return false;
            };
            let mut idx = lock(&self.inner.index);
            let moved = match idx.msgs.get_mut(&id) {
                Some(e) if e.seg == seg => {
                    e.seg = new_seg;
                    if let BodyLoc::Inline { .. } = e.body {
                        e.body = BodyLoc::Inline {
                            seg: new_seg,
                            offset: off + body_in_record,
                        };
                    }
                    true
                }
                _ => false,
            };
            // The leader counted the copy live in `new_seg`; either the original or the copy
            // is now dead.
            let dead = if moved { seg } else { new_seg };
            if let Some(n) = idx.seg_live.get_mut(&dead) {
                *n = n.saturating_sub(1);
            }
        }
        true
    }

    fn change(
        &self,
        id: QueueId,
        f: impl FnOnce(&mut Entry, SystemTime),
    ) -> Result<(), QueueError> {
        let now = self.now();
        let mut idx = lock(&self.inner.index);
        idx.unready(id);
        let e = idx.msgs.get_mut(&id).ok_or(QueueError::NotFound(id))?;
        f(e, now);
        let mut rec = Vec::with_capacity(64);
        record::encode_update(id, &e.env, e.hold, &mut rec);
        idx.make_ready(id);
        self.submit(&rec, Kind::Update, Some(idx)).map(|_| ())
    }

    /// Puts message `id` on hold (`postsuper -h`): it is not delivered until released. A
    /// delivery in progress finishes.
    ///
    /// # Errors
    ///
    /// [`QueueError::NotFound`], or a commit error.
    pub fn hold(&self, id: QueueId) -> Result<(), QueueError> {
        self.change(id, |e, _| e.hold = true)
    }

    /// Releases message `id` from hold (`postsuper -H`).
    ///
    /// # Errors
    ///
    /// [`QueueError::NotFound`], or a commit error.
    pub fn release(&self, id: QueueId) -> Result<(), QueueError> {
        self.change(id, |e, _| e.hold = false)
    }

    /// Makes message `id` ready now (`postsuper -r`, `postqueue -i`), releasing it from hold.
    ///
    /// # Errors
    ///
    /// [`QueueError::NotFound`], or a commit error.
    pub fn requeue(&self, id: QueueId) -> Result<(), QueueError> {
        self.change(id, |e, now| {
            e.hold = false;
            e.env.next_attempt = now;
        })
    }

    /// Deletes message `id` (`postsuper -d`) without a bounce.
    ///
    /// # Errors
    ///
    /// [`QueueError::NotFound`], or a commit error.
    pub fn delete(&self, id: QueueId) -> Result<(), QueueError> {
        self.remove(id, true)
    }

    /// Makes every deferred message ready now (`postqueue -f`). Only memory changes: after a
    /// restart the messages keep their recorded retry times.
    pub fn flush(&self) -> usize {
        let now = self.now();
        let mut idx = lock(&self.inner.index);
        let due: Vec<(u64, QueueId)> = idx
            .ready
            .iter()
            .filter(|(at, _)| *at > ms(now))
            .copied()
            .collect();
        for (at, id) in &due {
            idx.ready.remove(&(*at, *id));
            if let Some(e) = idx.msgs.get_mut(id) {
                e.env.next_attempt = now;
            }
            idx.make_ready(*id);
        }
        due.len()
    }

    /// Every queued message, in arrival order (`postqueue -p`).
    pub fn list(&self) -> Vec<Summary> {
        let idx = lock(&self.inner.index);
        let mut out: Vec<Summary> = idx
            .msgs
            .iter()
            .map(|(id, e)| Summary {
                id: *id,
                state: Index::state_of(e),
                envelope: e.env.clone(),
            })
            .collect();
        out.sort_by_key(|s| s.id);
        out
    }

    /// Message `id`'s envelope and state.
    pub fn show(&self, id: QueueId) -> Option<Summary> {
        let idx = lock(&self.inner.index);
        idx.msgs.get(&id).map(|e| Summary {
            id,
            state: Index::state_of(e),
            envelope: e.env.clone(),
        })
    }

    /// Writes message `id`'s content to `out` (`postcat -b -h`).
    ///
    /// # Errors
    ///
    /// [`QueueError::NotFound`], a read error, or a damaged content file.
    pub fn export(&self, id: QueueId, out: &mut impl Write) -> Result<u64, QueueError> {
        let mut body = self.open_body(id)?;
        io::copy(&mut body, out).map_err(|e| QueueError::Damaged {
            id,
            detail: e.to_string(),
        })
    }

    /// The names of the files in `corrupt/` (quarantined by recovery).
    ///
    /// # Errors
    ///
    /// When the directory cannot be listed.
    pub fn corrupt(&self) -> Result<Vec<String>, QueueError> {
        let mut names: Vec<String> = self
            .inner
            .fs
            .read_dir(&self.inner.corrupt_dir)
            .map_err(|e| QueueError::io("list", &self.inner.corrupt_dir, e))?
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Approximate bytes of memory the index holds per message and in total (for the
    /// memory benchmark): the entries' fixed size plus their strings and vectors.
    pub fn index_memory(&self) -> usize {
        let idx = lock(&self.inner.index);
        let per_entry = std::mem::size_of::<(QueueId, Entry)>() + 8;
        let mut total = idx.msgs.capacity() * per_entry;
        total += idx.ready.len() * (std::mem::size_of::<(u64, QueueId)>() + 8);
        for e in idx.msgs.values() {
            total += e.env.recipients.capacity() * std::mem::size_of::<crate::Recipient>();
            if let Some(m) = e.env.reverse_path.mailbox() {
                total += m.local_part().as_str().len() + m.host().to_string().len();
            }
            for r in &e.env.recipients {
                if let Some(m) = r.path.mailbox() {
                    total += m.local_part().as_str().len() + m.host().to_string().len();
                }
            }
        }
        total
    }
}

/// Bounces every recipient not yet done, as expired (RFC 3463 `4.4.7`, reported with the
/// last reason).
fn expire(env: &mut Envelope, age: Duration) {
    let code = EnhancedCode::new(4, 4, 7).unwrap_or(crate::envelope::DEFAULT_TEMPORARY);
    for r in &mut env.recipients {
        let last = match &r.status {
            RcptStatus::Deferred(d) => format!(": {}", d.text()),
            RcptStatus::Pending => String::new(),
            _ => continue,
        };
        r.status = RcptStatus::Bounced(Diagnostic::new(
            code,
            &format!(
                "message expired after {} days in the queue{last}",
                age.as_secs() / 86400
            ),
        ));
    }
}

fn f_write<F: Fs>(fs: &F, f: &mut F::File, bytes: &[u8], path: &Path) -> Result<(), String> {
    f.write_all(bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    fs.sync_file(f)
        .map_err(|e| format!("cannot fsync {}: {e}", path.display()))
}

/// Moves `name` from `dir` into `corrupt/` (under a fresh name if taken), for recovery.
fn quarantine_file<F: Fs>(fs: &F, dir: &Path, name: &str, corrupt: &Path) -> io::Result<String> {
    let existing: Vec<String> = fs
        .read_dir(corrupt)?
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let mut target = name.to_owned();
    let mut n = 1;
    while existing.contains(&target) {
        target = format!("{name}.{n}");
        n += 1;
    }
    fs.rename(&dir.join(name), &corrupt.join(&target))?;
    fs.sync_dir(corrupt)?;
    fs.sync_dir(dir)?;
    Ok(target)
}

/// Copies a damaged region of a segment into `corrupt/<SEGMENT>-<OFFSET>.bad` (once).
fn quarantine_region<F: Fs>(
    fs: &F,
    corrupt: &Path,
    seg: u64,
    offset: u64,
    bytes: &[u8],
) -> io::Result<bool> {
    let name = format!("{seg:016X}-{offset:016X}.bad");
    let path = corrupt.join(&name);
    let mut f = match fs.create_new(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e),
    };
    f.write_all(bytes)?;
    fs.sync_file(&mut f)?;
    fs.sync_dir(corrupt)?;
    Ok(true)
}

/// Replays the segments into `index`; returns the next segment number.
#[allow(clippy::too_many_arguments)]
fn recover<F: Fs>(
    fs: &F,
    seg_dir: &Path,
    body_dir: &Path,
    corrupt: &Path,
    index: &mut Index,
    ids: &IdGenerator,
    rec: &mut Recovery,
    log: &dyn Fn(String),
) -> Result<(u64, (u64, u64)), QueueError> {
    let quarantine = |dir: &Path, name: &str, why: String, rec: &mut Recovery| {
        let line = match quarantine_file(fs, dir, name, corrupt) {
            Ok(to) => format!("{}: {why}; moved to corrupt/{to}", dir.join(name).display()),
            Err(e) => format!(
                "{}: {why}; cannot move it to corrupt/: {e}",
                dir.join(name).display()
            ),
        };
        log(line.clone());
        rec.quarantined.push(line);
    };
    let mut segs = Vec::new();
    for name in fs
        .read_dir(seg_dir)
        .map_err(|e| QueueError::io("list", seg_dir, e))?
    {
        let name = name.to_string_lossy().into_owned();
        match parse_seg_name(&name) {
            Some(n) => segs.push((n, name)),
            None => quarantine(seg_dir, &name, "not a segment file name".into(), rec),
        }
    }
    segs.sort();
    let next_seg = segs.last().map_or(1, |(n, _)| n + 1);
    let last_seg = segs.last().map(|(n, _)| *n);
    // (segment, length as found, (previous segment, its length when this one began)).
    let mut chain: Vec<(u64, u64, (u64, u64))> = Vec::new();
    let mut last = (0u64, 0u64);
    for (seq, name) in segs {
        let path = seg_dir.join(&name);
        let is_last = Some(seq) == last_seg;
        let data = match fs.open(&path).and_then(|mut r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map(|_| v)
        }) {
            Ok(d) => d,
            Err(e) => {
                quarantine(seg_dir, &name, format!("cannot read: {e}"), rec);
                continue;
            }
        };
        let prev = match record::check_segment_header(&data) {
            Ok(prev) => prev,
            Err(why) => {
                let magic = &record::SEGMENT_MAGIC;
                let partial = data.len() < record::SEGMENT_HEADER_LEN
                    && (magic.starts_with(&data) || data.starts_with(magic));
                if is_last && partial {
                    let line = format!("{}: removed an incomplete new segment", path.display());
                    match fs.remove_file(&path).and_then(|()| fs.sync_dir(seg_dir)) {
                        Ok(()) => rec.removed_incomplete.push(line.clone()),
                        Err(e) => rec.removed_incomplete.push(format!("{line} (failed: {e})")),
                    }
                    log(line);
                } else {
                    quarantine(seg_dir, &name, why, rec);
                }
                continue;
            }
        };
        chain.push((seq, data.len() as u64, prev));
        index.seg_live.entry(seq).or_default();
        let mut pos = record::SEGMENT_HEADER_LEN;
        let mut bad_from: Option<usize> = None;
        while pos < data.len() {
            let header = record::parse_header(&data[pos..]);
            let whole = header.and_then(|h| {
                let end = pos.checked_add(usize::try_from(h.total_len()).ok()?)?;
                let pend = pos + record::RECORD_HEADER_LEN + h.len as usize;
                (end <= data.len()
                    && record::check_payload(
                        &data[pos + record::RECORD_HEADER_LEN..pend],
                        &data[pend..end],
                    ))
                .then_some((h, end))
            });
            let Some((h, end)) = whole else {
                // Not a valid record here: search for the next one (a damaged region), byte
                // by byte; the header checksum makes a false match unlikely, and the payload
                // checksum must still hold.
                bad_from.get_or_insert(pos);
                pos += 1;
                continue;
            };
            let payload = &data
                [pos + record::RECORD_HEADER_LEN..pos + record::RECORD_HEADER_LEN + h.len as usize];
            if let Some(from) = bad_from.take() {
                report_region(fs, corrupt, seq, &path, from, &data[from..pos], rec, log);
            }
            match record::decode(h.kind, payload) {
                Ok(Record::Message {
                    id,
                    env,
                    hold,
                    body,
                    body_offset,
                }) => {
                    ids.observe(id);
                    let loc = match body {
                        BodyRef::Inline => BodyLoc::Inline {
                            seg: seq,
                            offset: (pos + record::RECORD_HEADER_LEN + body_offset) as u64,
                        },
                        BodyRef::External { crc } => BodyLoc::External { crc },
                    };
                    index.insert(
                        id,
                        Entry {
                            env,
                            hold,
                            body: loc,
                            seg: seq,
                            lease: None,
                        },
                        true,
                    );
                }
                Ok(Record::Update {
                    id,
                    attempts,
                    next_attempt,
                    hold,
                    delay_warned,
                    statuses,
                }) => {
                    index.unready(id);
                    if let Some(e) = index.msgs.get_mut(&id) {
                        if statuses.len() == e.env.recipients.len() {
                            e.env.attempts = attempts;
                            e.env.next_attempt = next_attempt;
                            e.hold = hold;
                            e.env.delay_warned = delay_warned;
                            for (r, s) in e.env.recipients.iter_mut().zip(statuses) {
                                // A delivered recipient stays delivered, whatever follows.
                                if r.status != RcptStatus::Delivered {
                                    r.status = s;
                                }
                            }
                        } else {
                            let line = format!(
                                "{}: update of message {id} at offset {pos} has {} recipients, the message {}; ignored",
                                path.display(),
                                statuses.len(),
                                e.env.recipients.len()
                            );
                            log(line.clone());
                            rec.quarantined.push(line);
                        }
                    }
                    index.make_ready(id);
                }
                Ok(Record::Remove { id, .. }) => {
                    index.remove(id);
                }
                Err(why) => {
                    let who = record::peek_id(payload)
                        .map_or_else(String::new, |id| format!(" (message {id}?)"));
                    let line = format!("{}: record at offset {pos}{who}: {why}", path.display());
                    let _ = quarantine_region(fs, corrupt, seq, pos as u64, &data[pos..end]);
                    log(format!("{line}; copied to corrupt/"));
                    rec.quarantined.push(line);
                }
            }
            pos = end;
        }
        if let Some(from) = bad_from {
            // A complete record that fails its checksum is damage even at the end; a cut-off
            // record or bytes that are no record at all are an interrupted write.
            // What a torn append leaves: less than a header, a good header whose record runs
            // past the end, or zeros (blocks allocated but never written).
            let tail = &data[from..];
            let torn = tail.len() < record::RECORD_HEADER_LEN
                || tail.iter().all(|&b| b == 0)
                || record::parse_header(tail).is_some_and(|h| h.total_len() > tail.len() as u64);
            if is_last && torn {
                let line = format!(
                    "{}: removed {} bytes of an incomplete write at offset {from}",
                    path.display(),
                    data.len() - from
                );
                match fs.truncate(&path, from as u64) {
                    Ok(()) => {
                        rec.removed_incomplete.push(line.clone());
                        if let Some(c) = chain.last_mut() {
                            c.1 = from as u64;
                        }
                    }
                    Err(e) => rec.removed_incomplete.push(format!("{line} (failed: {e})")),
                }
                log(line);
            } else {
                report_region(fs, corrupt, seq, &path, from, &data[from..], rec, log);
                if is_last {
                    // Cut it off so appends after this start never sit behind damage.
                    let _ = fs.truncate(&path, from as u64);
                }
            }
        }
    }
    // Each segment names its predecessor and that one's final length: a shorter predecessor
    // was cut (damage at a record boundary, which no checksum can see), a missing one between
    // two present ones was lost.
    for w in chain.windows(2) {
        let (p_seq, p_len, _) = w[0];
        let (seq, _, (want_seq, want_len)) = w[1];
        let line = if want_seq == p_seq && p_len < want_len {
            format!(
                "{}: cut short: {} bytes missing at the end (the next segment recorded {want_len})",
                seg_dir.join(seg_name(p_seq)).display(),
                want_len - p_len
            )
        } else if want_seq > p_seq {
            format!(
                "{}: segment {want_seq:016X} before it is missing",
                seg_dir.join(seg_name(seq)).display()
            )
        } else {
            continue;
        };
        log(line.clone());
        rec.quarantined.push(line);
    }
    if let Some(&(seq, len, _)) = chain.last() {
        last = (seq, len);
    }
    // Content files: keep those a live message needs and that pass their checks.
    let mut names: Vec<String> = fs
        .read_dir(body_dir)
        .map_err(|e| QueueError::io("list", body_dir, e))?
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut found: BTreeSet<QueueId> = BTreeSet::new();
    for name in names {
        let path = body_dir.join(&name);
        let id = match name.parse::<QueueId>() {
            Ok(id) => id,
            Err(_) if name.ends_with(".tmp") && name.len() == 20 => {
                let line = format!("{}: removed an incomplete content file", path.display());
                let _ = fs.remove_file(&path);
                log(line.clone());
                rec.removed_incomplete.push(line);
                continue;
            }
            Err(_) => {
                quarantine(body_dir, &name, "not a content file name".into(), rec);
                continue;
            }
        };
        let live = index.msgs.get(&id).map(|e| (e.env.size, e.body));
        match live {
            Some((size, BodyLoc::External { crc })) => match check_body(fs, &path, size, crc) {
                Ok(()) => {
                    found.insert(id);
                }
                Err(why) => {
                    index.remove(id);
                    quarantine(
                        body_dir,
                        &name,
                        format!("content of message {id}: {why}"),
                        rec,
                    );
                }
            },
            _ => {
                let line = format!("{}: removed content no message refers to", path.display());
                let _ = fs.remove_file(&path);
                log(line.clone());
                rec.removed_incomplete.push(line);
            }
        }
    }
    let missing: Vec<QueueId> = index
        .msgs
        .iter()
        .filter(|(id, e)| matches!(e.body, BodyLoc::External { .. }) && !found.contains(id))
        .map(|(id, _)| *id)
        .collect();
    for id in missing {
        index.remove(id);
        let line = format!(
            "{}: content of message {id} is missing; message dropped",
            body_dir.join(id.to_string()).display()
        );
        log(line.clone());
        rec.quarantined.push(line);
    }
    Ok((next_seg, last))
}

#[allow(clippy::too_many_arguments)]
fn report_region<F: Fs>(
    fs: &F,
    corrupt: &Path,
    seq: u64,
    path: &Path,
    from: usize,
    bytes: &[u8],
    rec: &mut Recovery,
    log: &dyn Fn(String),
) {
    let line = format!(
        "{}: {} damaged bytes at offset {from} skipped",
        path.display(),
        bytes.len()
    );
    match quarantine_region(fs, corrupt, seq, from as u64, bytes) {
        Ok(true) => log(format!(
            "{line}; copied to corrupt/{seq:016X}-{from:016X}.bad"
        )),
        Ok(false) => log(format!("{line} (already in corrupt/)")),
        Err(e) => log(format!("{line}; cannot copy them to corrupt/: {e}")),
    }
    rec.quarantined.push(line);
}

fn check_body<F: Fs>(fs: &F, path: &Path, size: u64, crc: u32) -> Result<(), String> {
    let mut r = fs.open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut h = [0u8; record::BODY_HEADER_LEN];
    r.read_exact(&mut h)
        .map_err(|e| format!("cannot read the header: {e}"))?;
    record::check_file_header(&h, record::BODY_MAGIC)?;
    let len = fs.len(path).map_err(|e| format!("cannot stat: {e}"))?;
    if len != size + record::BODY_HEADER_LEN as u64 {
        return Err(format!(
            "{} bytes of content, expected {size}",
            len.saturating_sub(16)
        ));
    }
    let mut c = Crc32c::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = r.read(&mut buf).map_err(|e| format!("cannot read: {e}"))?;
        if n == 0 {
            break;
        }
        c.update(&buf[..n]);
    }
    if c.finish() != crc {
        return Err("checksum mismatch".into());
    }
    Ok(())
}
