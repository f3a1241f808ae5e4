//! A Maildir: open or create, deliver, scan, read, flag, expunge, clean `tmp/`.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{DeliverError, OpenError, ReadError};
use crate::fs::{Fs, RealFs};
use crate::name::{self, Flags, MAX_NAME_LEN, MessageKey};

/// Size of the buffer a delivery streams the message through: memory use per delivery is
/// bounded by this, whatever the message size.
pub(crate) const COPY_BUFFER: usize = 64 * 1024;

/// How many fresh names a delivery tries when `O_EXCL` finds the name taken.
const NAME_ATTEMPTS: usize = 8;

/// A file in `tmp/` older than this is a leftover of an interrupted delivery.
///
/// The specification asks readers to delete files in `tmp/` not accessed for 36 hours (a
/// delivery that long is dead). We go by the modification time: access times are unreliable under `relatime`
/// and `noatime`, and a delivery in progress keeps modifying its file.
pub const TMP_MAX_AGE: Duration = Duration::from_secs(36 * 60 * 60);

/// Which of the two message directories a message is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subdir {
    /// `new/`: delivered, not yet seen by a mail reader.
    New,
    /// `cur/`: seen by a mail reader, with the `:2,` info carrying its flags.
    Cur,
}

impl Subdir {
    /// The directory name, `new` or `cur`.
    pub fn as_str(self) -> &'static str {
        match self {
            Subdir::New => "new",
            Subdir::Cur => "cur",
        }
    }
}

/// A message found by [`Maildir::scan`] or [`Maildir::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    key: MessageKey,
    subdir: Subdir,
    file_name: String,
    flags: Flags,
    other_info: String,
    info_v2: bool,
}

impl Message {
    fn from_name(subdir: Subdir, file_name: String) -> Result<Self, &'static str> {
        let parsed = name::parse_name(&file_name)?;
        Ok(Self::from_parsed(subdir, file_name, parsed))
    }

    fn from_parsed(subdir: Subdir, file_name: String, parsed: name::ParsedName) -> Self {
        Self {
            key: parsed.key,
            subdir,
            file_name,
            flags: parsed.flags,
            other_info: parsed.other,
            info_v2: parsed.info_v2,
        }
    }

    /// The message's unique key (its file name without the `:2,` info).
    pub fn key(&self) -> &MessageKey {
        &self.key
    }

    /// Where the message is.
    pub fn subdir(&self) -> Subdir {
        self.subdir
    }

    /// The file name in its directory.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The flags of its `:2,` info (none for a message in `new/`, or with no or another info).
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// The size from the `,S=` field of its name, without reading the file.
    pub fn size(&self) -> Option<u64> {
        self.key.size()
    }
}

/// What [`Maildir::scan`] passed over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file's path.
    pub path: PathBuf,
    /// Why it is not listed as a message.
    pub reason: &'static str,
}

/// The messages in `new/` and `cur/`, and the names that are not messages.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// The messages, `new/` first, each directory in the order the file system listed it.
    pub messages: Vec<Message>,
    /// Entries that are not valid message names (invalid UTF-8, over-long, a colon with an
    /// empty key, control characters). Names starting with `.` are ignored silently, as the
    /// specification asks of readers.
    pub skipped: Vec<Skipped>,
}

/// A message delivered by [`Maildir::deliver`]: written, fsynced, renamed into `new/`, and
/// `new/` fsynced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The message's key (its name in `new/`).
    pub key: MessageKey,
    /// Its path in `new/`.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// A message written to `tmp/` but not yet published.
pub(crate) struct Staged<File> {
    pub(crate) file: File,
    pub(crate) tmp_path: PathBuf,
    pub(crate) tmp_name: String,
    pub(crate) size: u64,
}

/// A Maildir on a file system `F` (by default the real one).
///
/// The value holds only the path and settings: any number of processes and `Maildir` values may
/// use the same directory at once, as the Maildir protocol intends.
#[derive(Debug, Clone)]
pub struct Maildir<F: Fs = RealFs> {
    pub(crate) fs: F,
    pub(crate) path: PathBuf,
    /// The top of the Maildir++ tree (where `maildirsize` lives): `path` itself, or the
    /// Maildir a folder was opened from.
    pub(crate) root: PathBuf,
    pub(crate) max_message_size: Option<u64>,
    pub(crate) quota: bool,
    pub(crate) folder_encoding: crate::folder::NameEncoding,
}

impl Maildir<RealFs> {
    /// Opens the existing Maildir at `path`.
    ///
    /// # Errors
    ///
    /// [`OpenError::Missing`] when `path` or one of `tmp/`, `new/`, `cur/` is missing.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, OpenError> {
        Self::open_with(RealFs, path)
    }

    /// Opens the Maildir at `path`, creating it and its `tmp/`, `new/`, `cur/` as needed.
    ///
    /// # Errors
    ///
    /// When a directory cannot be created or flushed.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, OpenError> {
        Self::create_with(RealFs, path)
    }
}

impl<F: Fs> Maildir<F> {
    /// Opens the existing Maildir at `path` on the file system `fs`.
    ///
    /// # Errors
    ///
    /// [`OpenError::Missing`] when `path` or one of `tmp/`, `new/`, `cur/` is missing,
    /// [`OpenError::NotADirectory`] when one is not a directory.
    pub fn open_with(fs: F, path: impl Into<PathBuf>) -> Result<Self, OpenError> {
        let path = path.into();
        for dir in [
            path.clone(),
            path.join("tmp"),
            path.join("new"),
            path.join("cur"),
        ] {
            match fs.metadata(&dir) {
                Ok(m) if m.is_dir => {}
                Ok(_) => return Err(OpenError::NotADirectory { path: dir }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(OpenError::Missing { path: dir });
                }
                Err(source) => return Err(OpenError::Stat { path: dir, source }),
            }
        }
        Ok(Self::unchecked(fs, path))
    }

    /// Opens the Maildir at `path` on `fs`, creating what is missing; each directory created is
    /// made durable (its parent fsynced) before this returns.
    ///
    /// # Errors
    ///
    /// When a directory cannot be created or flushed.
    pub fn create_with(fs: F, path: impl Into<PathBuf>) -> Result<Self, OpenError> {
        let path = path.into();
        let mut created_root = false;
        match fs.create_dir(&path) {
            Ok(()) => created_root = true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match fs.metadata(&path) {
                Ok(m) if m.is_dir => {}
                Ok(_) => return Err(OpenError::NotADirectory { path }),
                Err(source) => return Err(OpenError::Stat { path, source }),
            },
            Err(source) => return Err(OpenError::CreateDir { path, source }),
        }
        if created_root {
            let parent = parent_dir(&path);
            fs.sync_dir(&parent).map_err(|source| OpenError::SyncDir {
                path: parent,
                source,
            })?;
        }
        let mut created_sub = false;
        for sub in ["tmp", "new", "cur"] {
            let dir = path.join(sub);
            match fs.create_dir(&dir) {
                Ok(()) => created_sub = true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match fs.metadata(&dir) {
                    Ok(m) if m.is_dir => {}
                    Ok(_) => return Err(OpenError::NotADirectory { path: dir }),
                    Err(source) => return Err(OpenError::Stat { path: dir, source }),
                },
                Err(source) => return Err(OpenError::CreateDir { path: dir, source }),
            }
        }
        if created_sub {
            fs.sync_dir(&path).map_err(|source| OpenError::SyncDir {
                path: path.clone(),
                source,
            })?;
        }
        Ok(Self::unchecked(fs, path))
    }

    pub(crate) fn unchecked(fs: F, path: PathBuf) -> Self {
        Self {
            fs,
            root: path.clone(),
            path,
            max_message_size: None,
            quota: false,
            folder_encoding: crate::folder::NameEncoding::default(),
        }
    }

    /// The Maildir's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file system it works on.
    pub fn fs(&self) -> &F {
        &self.fs
    }

    /// Refuses deliveries larger than `limit` bytes with [`DeliverError::TooLarge`]
    /// (checked while streaming, so an over-long message is never read whole).
    pub fn set_max_message_size(&mut self, limit: Option<u64>) {
        self.max_message_size = limit;
    }

    /// Keeps the Maildir++ quota file `maildirsize` up to date on delivery and expunge, and
    /// refuses deliveries over its limit with [`DeliverError::OverQuota`]. Off by default; has
    /// no effect while the Maildir has no `maildirsize` (see [`crate::Quota`]).
    pub fn set_quota_enforced(&mut self, on: bool) {
        self.quota = on;
    }

    pub(crate) fn dir(&self, subdir: Subdir) -> PathBuf {
        self.path.join(subdir.as_str())
    }

    /// Delivers one message read from `body`, by the Maildir protocol.
    ///
    /// The steps: create `tmp/<unique>` with `O_EXCL`; stream `body` into it through a 64 KiB
    /// buffer; fsync the file; rename it to `new/<unique>,S=<size>` (never replacing an existing
    /// file); fsync `new/`. When this returns `Ok`, the message survives a crash. qmail's
    /// maildir(5) says of the link into `new/`: "At that instant the message has been
    /// successfully delivered"; the fsyncs make that instant hold across a power cut.
    ///
    /// # Errors
    ///
    /// A [`DeliverError`] naming the failed step and its path. On any error nothing is left in
    /// `new/`: the temporary file is removed (or, if even that fails, left in `tmp/` for
    /// [`Maildir::clean_tmp`]), and after a failed fsync of `new/` the renamed file is removed
    /// again. A failed fsync is a failed delivery: it is never retried into a success.
    pub fn deliver<R: Read>(&self, body: R) -> Result<Delivered, DeliverError> {
        let mut staged = self.stage(body, &mut vec![0; COPY_BUFFER])?;
        if let Err(source) = self.fs.sync_file(&mut staged.file) {
            let _ = self.fs.remove_file(&staged.tmp_path);
            return Err(DeliverError::SyncFile {
                path: staged.tmp_path,
                source,
            });
        }
        let delivered = self.publish(staged)?;
        let new_dir = self.dir(Subdir::New);
        if let Err(source) = self.fs.sync_dir(&new_dir) {
            self.unpublish(&delivered);
            return Err(DeliverError::SyncDir {
                path: new_dir,
                source,
            });
        }
        self.quota_after_delivery(&[&delivered]);
        Ok(delivered)
    }

    /// Creates a fresh file in `tmp/` and streams `body` into it (no fsync yet).
    pub(crate) fn stage<R: Read>(
        &self,
        body: R,
        buf: &mut [u8],
    ) -> Result<Staged<F::File>, DeliverError> {
        let (file, tmp_path, tmp_name) = self.create_tmp()?;
        let mut staged = Staged {
            file,
            tmp_path,
            tmp_name,
            size: 0,
        };
        let mut writers = [&mut staged];
        match stream_into(self, &mut writers, body, buf) {
            Ok(()) => Ok(staged),
            Err(e) => {
                let _ = self.fs.remove_file(&staged.tmp_path);
                Err(e)
            }
        }
    }

    /// Creates `tmp/<unique>` with `O_EXCL`, retrying with a fresh name if it exists.
    pub(crate) fn create_tmp(&self) -> Result<(F::File, PathBuf, String), DeliverError> {
        let tmp = self.path.join("tmp");
        let mut attempt = 0;
        loop {
            let name = name::unique_name(SystemTime::now());
            let path = tmp.join(&name);
            match self.fs.create_new(&path) {
                Ok(file) => return Ok((file, path, name)),
                Err(e)
                    if e.kind() == io::ErrorKind::AlreadyExists && attempt + 1 < NAME_ATTEMPTS =>
                {
                    attempt += 1;
                }
                Err(source) => return Err(DeliverError::Create { path, source }),
            }
        }
    }

    /// Renames a written and fsynced file into `new/` under its final name (`,S=` added).
    /// Checks the quota first. Does not fsync `new/`.
    pub(crate) fn publish(&self, staged: Staged<F::File>) -> Result<Delivered, DeliverError> {
        let Staged {
            file,
            tmp_path,
            tmp_name,
            size,
        } = staged;
        drop(file);
        if let Err(e) = self.quota_check(size) {
            let _ = self.fs.remove_file(&tmp_path);
            return Err(e);
        }
        let final_name = format!("{tmp_name},S={size}");
        let key = match MessageKey::new(final_name.clone()) {
            Ok(key) => key,
            Err(reason) => {
                let _ = self.fs.remove_file(&tmp_path);
                return Err(DeliverError::Rename {
                    from: tmp_path,
                    to: self.dir(Subdir::New).join(&final_name),
                    source: io::Error::new(io::ErrorKind::InvalidInput, reason),
                });
            }
        };
        let new_path = self.dir(Subdir::New).join(&final_name);
        if let Err(source) = self.fs.rename_noreplace(&tmp_path, &new_path) {
            let _ = self.fs.remove_file(&tmp_path);
            return Err(DeliverError::Rename {
                from: tmp_path,
                to: new_path,
                source,
            });
        }
        Ok(Delivered {
            key,
            path: new_path,
            size,
        })
    }

    /// Takes back a published message whose directory fsync failed.
    pub(crate) fn unpublish(&self, delivered: &Delivered) {
        let _ = self.fs.remove_file(&delivered.path);
    }

    /// Lists the messages in `new/` and `cur/`.
    ///
    /// Only directory listings are read: no file is opened or stat'ed, so a message expunged
    /// by another process between the listing and a later [`Maildir::open_message`] shows up
    /// there as [`ReadError::NotFound`], which is normal in a shared Maildir.
    ///
    /// # Errors
    ///
    /// [`ReadError::ReadDir`] when `new/` or `cur/` cannot be listed.
    pub fn scan(&self) -> Result<Scan, ReadError> {
        let mut scan = Scan::default();
        for subdir in [Subdir::New, Subdir::Cur] {
            let dir = self.dir(subdir);
            let names = self
                .fs
                .read_dir(&dir)
                .map_err(|source| ReadError::ReadDir {
                    path: dir.clone(),
                    source,
                })?;
            scan.messages.reserve(names.len());
            for raw in names {
                match classify(subdir, raw) {
                    Entry::Message(m) => scan.messages.push(m),
                    Entry::Ignored => {}
                    Entry::Skipped(raw, reason) => scan.skipped.push(Skipped {
                        path: dir.join(raw),
                        reason,
                    }),
                }
            }
        }
        Ok(scan)
    }

    /// Finds the message with key `key` in `new/` or `cur/`.
    ///
    /// Looks for `new/<key>` and `cur/<key>:2,` with no flags first, then lists `cur/`.
    ///
    /// # Errors
    ///
    /// When `cur/` cannot be listed or the key is invalid.
    pub fn find(&self, key: &str) -> Result<Option<Message>, ReadError> {
        let key = MessageKey::new(key).map_err(|reason| ReadError::InvalidKey {
            key: key.to_owned(),
            reason,
        })?;
        let new_path = self.dir(Subdir::New).join(key.as_str());
        if self.fs.metadata(&new_path).is_ok()
            && let Ok(m) = Message::from_name(Subdir::New, key.as_str().to_owned())
        {
            return Ok(Some(m));
        }
        let cur = self.dir(Subdir::Cur);
        let names = self
            .fs
            .read_dir(&cur)
            .map_err(|source| ReadError::ReadDir {
                path: cur.clone(),
                source,
            })?;
        for raw in names {
            if let Entry::Message(m) = classify(Subdir::Cur, raw)
                && m.key == key
            {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// The path of `message`'s file as last seen.
    pub fn message_path(&self, message: &Message) -> PathBuf {
        self.dir(message.subdir).join(&message.file_name)
    }

    /// Opens `message` for reading. If another process renamed it (a flag change) since it was
    /// listed, looks it up again by key.
    ///
    /// # Errors
    ///
    /// [`ReadError::NotFound`] when the message was expunged, [`ReadError::Open`] otherwise.
    pub fn open_message(&self, message: &Message) -> Result<F::Reader, ReadError> {
        let path = self.message_path(message);
        match self.fs.open(&path) {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match self.find(message.key.as_str())? {
                    Some(now) => {
                        let path = self.message_path(&now);
                        self.fs
                            .open(&path)
                            .map_err(|source| open_error(self, &now, path, source))
                    }
                    None => Err(self.not_found(&message.key)),
                }
            }
            Err(source) => Err(ReadError::Open { path, source }),
        }
    }

    /// Opens the message with key `key` for reading.
    ///
    /// # Errors
    ///
    /// [`ReadError::NotFound`] when there is no such message.
    pub fn open_key(&self, key: &str) -> Result<F::Reader, ReadError> {
        match self.find(key)? {
            Some(m) => self.open_message(&m),
            None => Err(ReadError::NotFound {
                key: key.to_owned(),
                maildir: self.path.clone(),
            }),
        }
    }

    /// The message's size: from the `,S=` field of its name when present, otherwise from the
    /// file system.
    ///
    /// # Errors
    ///
    /// When the name has no size and the file cannot be stat'ed.
    pub fn size(&self, message: &Message) -> Result<u64, ReadError> {
        if let Some(size) = message.size() {
            return Ok(size);
        }
        let path = self.message_path(message);
        self.fs
            .metadata(&path)
            .map(|m| m.len)
            .map_err(|source| match source.kind() {
                io::ErrorKind::NotFound => self.not_found(&message.key),
                _ => ReadError::Stat { path, source },
            })
    }

    fn not_found(&self, key: &MessageKey) -> ReadError {
        ReadError::NotFound {
            key: key.as_str().to_owned(),
            maildir: self.path.clone(),
        }
    }

    /// Gives `message` exactly the flags `flags`, moving it to `cur/` if it is in `new/`, and
    /// returns it under its new name. The affected directories are fsynced before this returns.
    ///
    /// Info letters this crate does not interpret are kept. A message whose info is not `2,`
    /// (the experimental `1,`) gets a `2,` info.
    ///
    /// # Errors
    ///
    /// [`ReadError::NotFound`] when the message is gone, [`ReadError::Rename`] or
    /// [`ReadError::SyncDir`] otherwise.
    pub fn set_flags(&self, message: &Message, flags: Flags) -> Result<Message, ReadError> {
        match self.rename_flags(message, flags, true)? {
            Some(m) => Ok(m),
            None => Err(self.not_found(&message.key)),
        }
    }

    /// Like [`Maildir::set_flags`], but only if the message is still under the name it was
    /// listed with: `Ok(None)` when another process renamed (or removed) it meanwhile. The
    /// rename is then a compare-and-swap: a caller that computed `flags` from the listed ones
    /// (add `\Seen` to them, say) reads the message again and retries, so a concurrent
    /// change is never overwritten, which `set_flags` (following the message to its new
    /// name with the flags computed before) cannot promise.
    ///
    /// # Errors
    ///
    /// [`ReadError::Rename`] or [`ReadError::SyncDir`].
    pub fn set_flags_if_unchanged(
        &self,
        message: &Message,
        flags: Flags,
    ) -> Result<Option<Message>, ReadError> {
        self.rename_flags(message, flags, false)
    }

    fn rename_flags(
        &self,
        message: &Message,
        flags: Flags,
        follow: bool,
    ) -> Result<Option<Message>, ReadError> {
        let other = if message.info_v2 {
            message.other_info.as_str()
        } else {
            ""
        };
        let new_name = name::cur_name(&message.key, flags, other);
        if message.subdir == Subdir::Cur && new_name == message.file_name {
            return Ok(Some(message.clone()));
        }
        if new_name.len() > MAX_NAME_LEN {
            return Err(ReadError::InvalidKey {
                key: message.key.as_str().to_owned(),
                reason: "the name with its info would be longer than 255 bytes",
            });
        }
        let from = self.message_path(message);
        let cur = self.dir(Subdir::Cur);
        let to = cur.join(&new_name);
        if let Err(source) = self.fs.rename(&from, &to) {
            if source.kind() == io::ErrorKind::NotFound {
                if !follow {
                    return Ok(None);
                }
                // Renamed by another process since it was listed: retry on its current name.
                if let Some(now) = self.find(message.key.as_str())?
                    && (now.file_name != message.file_name || now.subdir != message.subdir)
                {
                    return self.rename_flags(&now, flags, true);
                }
                return Ok(None);
            }
            return Err(ReadError::Rename { from, to, source });
        }
        self.fs
            .sync_dir(&cur)
            .map_err(|source| ReadError::SyncDir { path: cur, source })?;
        if message.subdir == Subdir::New {
            let new = self.dir(Subdir::New);
            self.fs
                .sync_dir(&new)
                .map_err(|source| ReadError::SyncDir { path: new, source })?;
        }
        Message::from_name(Subdir::Cur, new_name)
            .map(Some)
            .map_err(|reason| ReadError::InvalidKey {
                key: message.key.as_str().to_owned(),
                reason,
            })
    }

    /// Adds `flags` to the message's flags (see [`Maildir::set_flags`]).
    ///
    /// # Errors
    ///
    /// As [`Maildir::set_flags`].
    pub fn add_flags(&self, message: &Message, flags: Flags) -> Result<Message, ReadError> {
        self.set_flags(message, message.flags.union(flags))
    }

    /// Removes `flags` from the message's flags (see [`Maildir::set_flags`]).
    ///
    /// # Errors
    ///
    /// As [`Maildir::set_flags`].
    pub fn remove_flags(&self, message: &Message, flags: Flags) -> Result<Message, ReadError> {
        self.set_flags(message, message.flags.difference(flags))
    }

    /// Moves a message from `new/` to `cur/` with an empty `:2,` info (what a mail reader does
    /// when it first sees it). A message already in `cur/` is returned unchanged.
    ///
    /// # Errors
    ///
    /// As [`Maildir::set_flags`].
    pub fn move_to_cur(&self, message: &Message) -> Result<Message, ReadError> {
        if message.subdir == Subdir::Cur {
            return Ok(message.clone());
        }
        self.set_flags(message, message.flags)
    }

    /// Removes the message and fsyncs its directory. Updates `maildirsize` when quota is
    /// enforced.
    ///
    /// # Errors
    ///
    /// [`ReadError::NotFound`] when the message is already gone.
    pub fn expunge(&self, message: &Message) -> Result<(), ReadError> {
        let mut path = self.message_path(message);
        let mut subdir = message.subdir;
        if let Err(source) = self.fs.remove_file(&path) {
            if source.kind() != io::ErrorKind::NotFound {
                return Err(ReadError::Remove { path, source });
            }
            match self.find(message.key.as_str())? {
                Some(now) => {
                    path = self.message_path(&now);
                    subdir = now.subdir;
                    self.fs
                        .remove_file(&path)
                        .map_err(|source| ReadError::Remove {
                            path: path.clone(),
                            source,
                        })?;
                }
                None => return Err(self.not_found(&message.key)),
            }
        }
        let dir = self.dir(subdir);
        self.fs
            .sync_dir(&dir)
            .map_err(|source| ReadError::SyncDir { path: dir, source })?;
        // Without S= the size is unknown once the file is gone; a recalculation fixes the total.
        let size = message.size().unwrap_or_default();
        self.quota_after_expunge(size)
            .map_err(|e| ReadError::Quota(Box::new(e)))
    }

    /// Removes files in `tmp/` last modified more than [`TMP_MAX_AGE`] (36 hours) before `now`;
    /// returns how many were removed. A file vanishing meanwhile is not an error.
    ///
    /// # Errors
    ///
    /// When `tmp/` cannot be listed or a file cannot be removed.
    pub fn clean_tmp(&self, now: SystemTime) -> Result<usize, ReadError> {
        let tmp = self.path.join("tmp");
        let names = self
            .fs
            .read_dir(&tmp)
            .map_err(|source| ReadError::ReadDir {
                path: tmp.clone(),
                source,
            })?;
        let mut removed = 0;
        for name in names {
            let path = tmp.join(&name);
            let meta = match self.fs.metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(ReadError::Stat { path, source }),
            };
            if meta.is_dir {
                continue;
            }
            let old = now
                .duration_since(meta.modified)
                .is_ok_and(|age| age > TMP_MAX_AGE);
            if old {
                match self.fs.remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => return Err(ReadError::Remove { path, source }),
                }
            }
        }
        Ok(removed)
    }
}

fn open_error<F: Fs>(
    maildir: &Maildir<F>,
    message: &Message,
    path: PathBuf,
    source: io::Error,
) -> ReadError {
    if source.kind() == io::ErrorKind::NotFound {
        maildir.not_found(&message.key)
    } else {
        ReadError::Open { path, source }
    }
}

enum Entry {
    Message(Message),
    Ignored,
    Skipped(OsString, &'static str),
}

/// Sorts one directory entry: a message, a dot-file to ignore, or a name that is not a message.
fn classify(subdir: Subdir, raw: OsString) -> Entry {
    if raw.as_encoded_bytes().first() == Some(&b'.') {
        // "It is a good idea for readers to skip all filenames in new and cur starting with a
        // dot." (the specification)
        return Entry::Ignored;
    }
    if raw.len() > MAX_NAME_LEN {
        return Entry::Skipped(raw, "name longer than 255 bytes");
    }
    let name = match raw.into_string() {
        Ok(name) => name,
        Err(raw) => return Entry::Skipped(raw, "name is not valid UTF-8"),
    };
    match name::parse_name(&name) {
        Ok(parsed) => Entry::Message(Message::from_parsed(subdir, name, parsed)),
        Err(reason) => Entry::Skipped(name.into(), reason),
    }
}

/// Streams `body` into each staged file (one message to many Maildirs writes each chunk to
/// every file), enforcing the size limit of the first Maildir.
pub(crate) fn stream_into<F: Fs, R: Read>(
    maildir: &Maildir<F>,
    targets: &mut [&mut Staged<F::File>],
    mut body: R,
    buf: &mut [u8],
) -> Result<(), DeliverError> {
    let tmp_path = |t: &[&mut Staged<F::File>]| {
        t.first()
            .map(|s| s.tmp_path.clone())
            .unwrap_or_else(|| maildir.path.join("tmp"))
    };
    loop {
        let n = match body.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(DeliverError::ReadBody {
                    path: tmp_path(targets),
                    source,
                });
            }
        };
        let chunk = buf.get(..n).unwrap_or_default();
        for staged in targets.iter_mut() {
            staged.size += n as u64;
            if let Some(limit) = maildir.max_message_size
                && staged.size > limit
            {
                return Err(DeliverError::TooLarge { limit });
            }
            staged
                .file
                .write_all(chunk)
                .map_err(|source| DeliverError::Write {
                    path: staged.tmp_path.clone(),
                    source,
                })?;
        }
    }
}

/// The directory holding `path` (`.` for a bare name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod compare_and_swap_tests {
    use super::*;

    #[test]
    fn set_flags_if_unchanged_refuses_a_stale_listing() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path().join("Maildir")).unwrap();
        md.deliver(&b"Subject: x\r\n\r\nx\r\n"[..]).unwrap();
        let listed = md.scan().unwrap().messages.remove(0);
        // Another session adds \Flagged first.
        let other = md.add_flags(&listed, Flags::FLAGGED).unwrap();
        // Ours, computed from the stale listing, must not overwrite it.
        assert!(
            md.set_flags_if_unchanged(&listed, listed.flags().union(Flags::SEEN))
                .unwrap()
                .is_none()
        );
        let now = md.find(listed.key().as_str()).unwrap().unwrap();
        assert_eq!(now.flags(), other.flags());
        let done = md
            .set_flags_if_unchanged(&now, now.flags().union(Flags::SEEN))
            .unwrap()
            .unwrap();
        assert_eq!(done.flags(), Flags::FLAGGED.union(Flags::SEEN));
    }
}
