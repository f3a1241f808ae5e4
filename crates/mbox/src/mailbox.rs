//! An mbox file on disk: locked append, index, crash-safe rewrite.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::flags::Flags;
use crate::from_line::FromLine;
use crate::index::{Index, IndexEntry};
use crate::io_at::{ReadAt, WriteAt};
use crate::lock::{LockOptions, MailboxLock, lock};
use crate::reader::{ReadLimits, Reader};
use crate::variant::Variant;
use crate::writer::{WriteError, WriteOptions, write_message};

/// An mbox file: where it is and how to read, write and lock it. Creating one does no I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mbox {
    path: PathBuf,
    variant: Variant,
    lock: LockOptions,
    write: WriteOptions,
    read: ReadLimits,
}

/// Where an appended message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Byte offset of its From_ line.
    pub offset: u64,
    /// Its length in the file, from the From_ line to the end of the blank line that follows
    /// it (a separator written before it, to repair a file that lacked one, is not counted).
    pub length: u64,
}

/// What a rewrite does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep it unchanged.
    Keep,
    /// Keep it with these flags (`Status`/`X-Status` rewritten).
    SetFlags(Flags),
    /// Remove it.
    Expunge,
}

/// What a rewrite did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rewritten {
    /// Messages kept (flags changed or not).
    pub kept: usize,
    /// Messages whose flags were changed.
    pub flags_changed: usize,
    /// Messages removed.
    pub expunged: usize,
    /// Whether the file was replaced (false when every action was [`Action::Keep`]).
    pub replaced: bool,
}

impl Mbox {
    /// The mbox at `path`, mboxrd, default locking, limits and options.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            variant: Variant::default(),
            lock: LockOptions::default(),
            write: WriteOptions::default(),
            read: ReadLimits::default(),
        }
    }

    /// Uses `variant` for reading and writing.
    #[must_use]
    pub fn with_variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }

    /// Uses these locking options.
    #[must_use]
    pub fn with_lock_options(mut self, options: LockOptions) -> Self {
        self.lock = options;
        self
    }

    /// Uses these write options (message size limit).
    #[must_use]
    pub fn with_write_options(mut self, options: WriteOptions) -> Self {
        self.write = options;
        self
    }

    /// Uses these read limits.
    #[must_use]
    pub fn with_read_limits(mut self, limits: ReadLimits) -> Self {
        self.read = limits;
        self
    }

    /// The mailbox path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Locks the mailbox (it must exist). Hold the lock across several operations with the
    /// `*_locked` methods.
    ///
    /// # Errors
    ///
    /// [`Error::LockTimeout`], [`Error::Io`].
    pub fn lock(&self) -> Result<MailboxLock, Error> {
        lock(&self.path, false, &self.lock)
    }

    /// Appends one message (see [`write_message`] for what is written), creating the mailbox
    /// (mode 0600) if needed.
    ///
    /// When this returns `Ok` the message is on stable storage: written, `fdatasync`ed, and, if
    /// the file was created, its directory fsynced, all before the locks were released. On any
    /// error the file is truncated back to its previous length while still locked; if even
    /// that fails the error is [`Error::RollbackFailed`].
    ///
    /// # Errors
    ///
    /// [`Error`].
    pub fn append(&self, from_line: &FromLine, message: impl Read) -> Result<Appended, Error> {
        let lock = lock(&self.path, true, &self.lock)?;
        self.append_locked(&lock, from_line, message)
    }

    /// [`Mbox::append`] under a lock the caller holds.
    ///
    /// # Errors
    ///
    /// [`Error`].
    pub fn append_locked(
        &self,
        lock: &MailboxLock,
        from_line: &FromLine,
        message: impl Read,
    ) -> Result<Appended, Error> {
        let path = lock.path();
        let file = lock.file();
        let length = file
            .metadata()
            .map_err(|e| Error::io(path, "fstat", e))?
            .len();
        lock.note_append(length)
            .map_err(|e| Error::io(crate::lock::dotlock_path(path), "write the dotlock", e))?;
        match self.write_at_end(lock, length, from_line, message) {
            Ok(appended) => {
                // Best effort: the message is durable, and an error here must not make the
                // caller deliver it twice. The record goes with the lock file anyway.
                let _ = lock.clear_append_record();
                Ok(appended)
            }
            Err(first) => {
                // Roll back while still locked, and make the rollback durable too.
                match file.set_len(length).and_then(|()| file.sync_data()) {
                    Ok(()) => {
                        let _ = lock.clear_append_record();
                        Err(first)
                    }
                    Err(source) => Err(Error::RollbackFailed {
                        path: path.to_owned(),
                        length,
                        first: Box::new(first),
                        source,
                    }),
                }
            }
        }
    }

    fn write_at_end(
        &self,
        lock: &MailboxLock,
        length: u64,
        from_line: &FromLine,
        message: impl Read,
    ) -> Result<Appended, Error> {
        let path = lock.path();
        let file = lock.file();
        // The previous message must end with a line end and a blank line; repair a file that
        // does not (a writer that omitted the separator, or a cut).
        let mut tail = [0u8; 2];
        let have = length.min(2) as usize;
        file.read_exact_at(&mut tail[..have], length - have as u64)
            .map_err(|e| Error::io(path, "read the end of the mailbox", e))?;
        let separator: &[u8] = match &tail[..have] {
            [] | [b'\n', b'\n'] => b"",
            [b'\n'] | [_, b'\n'] => b"\n",
            _ => b"\n\n",
        };
        let offset = length + separator.len() as u64;
        let mut out = BufWriter::with_capacity(64 * 1024, WriteAt::new(file, length));
        out.write_all(separator)
            .map_err(|e| Error::io(path, "write", e))?;
        write_message(from_line, message, self.variant, self.write, &mut out).map_err(
            |e| match e {
                WriteError::Io(e) => Error::io(path, "write the message", e),
                WriteError::TooLarge(n) => Error::Message {
                    path: path.to_owned(),
                    reason: format!("larger than {n} bytes"),
                },
            },
        )?;
        let end = out
            .into_inner()
            .map_err(|e| Error::io(path, "write", e.into_error()))?
            .offset();
        // The promise: the bytes and the new length are on disk before we say so. fdatasync
        // covers the size change (it is metadata needed to read the data back).
        file.sync_data()
            .map_err(|e| Error::io(path, "fdatasync", e))?;
        if lock.created() {
            sync_parent(path)?;
        }
        Ok(Appended {
            offset,
            length: end - offset,
        })
    }

    /// A reader over the whole file, without locking (what mail readers do; a message being
    /// appended at that moment may show up cut, as [`crate::ReadError::Truncated`] at the end).
    ///
    /// Do not call this in a process that holds this mailbox's lock in another thread: closing
    /// the reader's descriptor would drop that thread's fcntl lock (POSIX semantics); read
    /// through [`Mbox::index_locked`] and [`Index::read_message`] instead.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be opened.
    pub fn reader(&self) -> Result<Reader<File>, Error> {
        let file = File::open(&self.path).map_err(|e| Error::io(&self.path, "open", e))?;
        Ok(Reader::with_limits(file, self.variant, self.read))
    }

    /// Locks the mailbox and indexes it.
    ///
    /// # Errors
    ///
    /// [`Error`]; see [`Index::build`] for why indexing is strict.
    pub fn index(&self) -> Result<Index, Error> {
        let lock = self.lock()?;
        self.index_locked(&lock)
    }

    /// Indexes the mailbox under a lock the caller holds.
    ///
    /// # Errors
    ///
    /// [`Error`].
    pub fn index_locked(&self, lock: &MailboxLock) -> Result<Index, Error> {
        let file = lock.file();
        let size = file
            .metadata()
            .map_err(|e| Error::io(lock.path(), "fstat", e))?
            .len();
        let reader = Reader::with_limits(ReadAt::new(file, 0, size), self.variant, self.read);
        Index::build(reader).map_err(|source| Error::Read {
            path: lock.path().to_owned(),
            source,
        })
    }

    /// Rewrites the mailbox: `decide` says for each message whether to keep it, change its
    /// flags or expunge it.
    ///
    /// Crash-safe: under the lock, the new content is written to a temporary file in the same
    /// directory (same mode and owner as the mailbox), fsynced, renamed over the mailbox, and
    /// the directory fsynced. A crash at any point leaves either the old file or the new one,
    /// whole. The file is read strictly first: a mailbox with unreadable parts is not rewritten
    /// ([`Index::build`]).
    ///
    /// Other programs that opened the old file and wait on its fcntl lock must check, once they
    /// get it, that the path still names their file (this crate's locking does; so do Dovecot
    /// and mutt, which otherwise rewrite in place); a program that does not would append to
    /// the replaced file.
    ///
    /// # Errors
    ///
    /// [`Error`]; on error the mailbox is unchanged and the temporary file removed.
    pub fn rewrite(&self, decide: impl FnMut(&IndexEntry) -> Action) -> Result<Rewritten, Error> {
        let lock = self.lock()?;
        self.rewrite_locked(&lock, decide)
    }

    /// Removes the messages flagged deleted (`X-Status: D`).
    ///
    /// # Errors
    ///
    /// See [`Mbox::rewrite`].
    pub fn expunge(&self) -> Result<Rewritten, Error> {
        self.rewrite(|e| {
            if e.flags.deleted {
                Action::Expunge
            } else {
                Action::Keep
            }
        })
    }

    /// [`Mbox::rewrite`] under a lock the caller holds (the lock stays valid afterwards only in
    /// the sense that the caller still excludes others; its file is the replaced one, so
    /// re-lock before further operations).
    ///
    /// # Errors
    ///
    /// [`Error`].
    pub fn rewrite_locked(
        &self,
        lock: &MailboxLock,
        mut decide: impl FnMut(&IndexEntry) -> Action,
    ) -> Result<Rewritten, Error> {
        let index = self.index_locked(lock)?;
        let actions: Vec<Action> = index.entries().iter().map(&mut decide).collect();
        let mut summary = Rewritten::default();
        for (entry, action) in index.entries().iter().zip(&actions) {
            match action {
                Action::Keep => summary.kept += 1,
                Action::SetFlags(f) if *f == entry.flags => summary.kept += 1,
                Action::SetFlags(_) => {
                    summary.kept += 1;
                    summary.flags_changed += 1;
                }
                Action::Expunge => summary.expunged += 1,
            }
        }
        if summary.flags_changed == 0 && summary.expunged == 0 {
            return Ok(summary);
        }
        let path = lock.path();
        let dir = path.parent().unwrap_or(Path::new("/"));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp_path = dir.join(format!(".{name}.mailroom-rewrite.{}", std::process::id()));
        let old = lock.file();
        let meta = old.metadata().map_err(|e| Error::io(path, "fstat", e))?;
        let result = (|| -> Result<(), Error> {
            let _ = std::fs::remove_file(&tmp_path);
            let tmp = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp_path)
                .map_err(|e| Error::io(&tmp_path, "create", e))?;
            let tmp_meta = tmp
                .metadata()
                .map_err(|e| Error::io(&tmp_path, "fstat", e))?;
            if tmp_meta.uid() != meta.uid() || tmp_meta.gid() != meta.gid() {
                std::os::unix::fs::fchown(&tmp, Some(meta.uid()), Some(meta.gid()))
                    .map_err(|e| Error::io(&tmp_path, "keep the mailbox's owner", e))?;
            }
            tmp.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(|e| Error::io(&tmp_path, "keep the mailbox's mode", e))?;
            let mut out = BufWriter::with_capacity(256 * 1024, &tmp);
            let w = |e| Error::io(&tmp_path, "write", e);
            let mut first = true;
            for (entry, action) in index.entries().iter().zip(&actions) {
                if *action == Action::Expunge {
                    continue;
                }
                if !first {
                    out.write_all(b"\n").map_err(w)?;
                }
                first = false;
                match action {
                    Action::SetFlags(flags) if *flags != entry.flags => {
                        copy(
                            old,
                            entry.offset,
                            entry.headers_offset,
                            &mut out,
                            path,
                            &tmp_path,
                        )?;
                        let mut raw = vec![0u8; entry.headers_len as usize];
                        old.read_exact_at(&mut raw, entry.headers_offset)
                            .map_err(|e| Error::io(path, "read", e))?;
                        let headers = flags.apply(&crate::headers::Headers::new(raw));
                        out.write_all(headers.as_bytes()).map_err(w)?;
                        let blank_at = entry.headers_offset + entry.headers_len;
                        if entry.body_offset > blank_at {
                            copy(old, blank_at, entry.body_offset, &mut out, path, &tmp_path)?;
                        } else {
                            out.write_all(b"\n").map_err(w)?;
                        }
                        copy(old, entry.body_offset, entry.end, &mut out, path, &tmp_path)?;
                    }
                    _ => copy(old, entry.offset, entry.end, &mut out, path, &tmp_path)?,
                }
            }
            if !first {
                out.write_all(b"\n").map_err(w)?;
            }
            out.flush().map_err(w)?;
            drop(out);
            tmp.sync_all()
                .map_err(|e| Error::io(&tmp_path, "fsync", e))?;
            std::fs::rename(&tmp_path, path)
                .map_err(|e| Error::io(path, "rename the rewritten file over", e))?;
            sync_parent(path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp_path);
        }
        result.map(|()| Rewritten {
            replaced: true,
            ..summary
        })
    }
}

fn copy(
    from: &File,
    start: u64,
    end: u64,
    out: &mut impl Write,
    path: &Path,
    tmp_path: &Path,
) -> Result<(), Error> {
    let mut reader = ReadAt::new(from, start, end - start);
    let copied = std::io::copy(&mut reader, out).map_err(|e| Error::io(tmp_path, "copy", e))?;
    if copied != end - start {
        return Err(Error::io(
            path,
            "read",
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the mailbox shrank"),
        ));
    }
    Ok(())
}

/// fsync the directory holding `path`, so a created or renamed entry survives a crash.
fn sync_parent(path: &Path) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, "fsync the directory", e))
}
