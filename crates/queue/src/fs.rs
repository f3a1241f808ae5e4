//! The file operations the queue needs, behind a small trait.
//!
//! Every change the queue makes to the disk goes through [`Fs`], one method per system call that
//! matters for durability (create, append, fsync a file, rename, remove, fsync a directory). The
//! real implementation, [`RealFs`], calls the operating system; [`crate::sim::SimFs`] keeps the
//! written state apart from the durable state and can fail or crash at any operation, which is how
//! the crash-consistency tests check every step of an enqueue and of each state change. Another
//! storage backend plugs in here.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::Path;

/// The file operations the queue performs.
///
/// Each method is one step that can fail on its own, so an implementation can inject a failure or
/// a crash at exactly that step.
pub trait Fs: Clone + Send + Sync + 'static {
    /// A file open for appending, from [`Fs::create_new`].
    type File: Write + Send;
    /// A file open for reading, from [`Fs::open`].
    type Reader: Read + Seek + Send;

    /// Creates `path` for writing, failing with [`io::ErrorKind::AlreadyExists`] when it exists
    /// (`O_CREAT | O_EXCL`, mode 0600).
    fn create_new(&self, path: &Path) -> io::Result<Self::File>;

    /// Flushes `file`'s data (and the metadata needed to read it back, such as its size) to
    /// stable storage (`fdatasync`).
    fn sync_file(&self, file: &mut Self::File) -> io::Result<()>;

    /// Renames `from` to `to`, replacing `to` if it exists (`rename(2)`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Creates the directory `path` (mode 0700), failing with [`io::ErrorKind::AlreadyExists`]
    /// when it exists.
    fn create_dir(&self, path: &Path) -> io::Result<()>;

    /// Flushes the directory `path` (its entries: creations, renames, removals) to stable storage.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Lists the names in directory `path`, without `.` and `..`, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;

    /// Opens the file `path` for reading.
    fn open(&self, path: &Path) -> io::Result<Self::Reader>;

    /// The size of the file `path` in bytes.
    fn len(&self, path: &Path) -> io::Result<u64>;

    /// Cuts the file `path` to `len` bytes and flushes it (`ftruncate` then `fsync`): how recovery
    /// removes the torn tail of an interrupted append.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;

    /// Takes an exclusive lock on `path` (created if missing), held until the returned guard
    /// is dropped, failing with [`io::ErrorKind::WouldBlock`] when another holder has it: one
    /// process owns a queue at a time.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn std::any::Any + Send + Sync>>;
}

/// The operating system's file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl Fs for RealFs {
    type File = File;
    type Reader = File;

    fn create_new(&self, path: &Path) -> io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    }

    fn sync_file(&self, file: &mut File) -> io::Result<()> {
        // fdatasync: an append changes the size, which fdatasync flushes too; the timestamps it
        // skips are not needed to read the data back.
        file.sync_data()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        rustix::fs::fsync(File::open(path)?).map_err(io::Error::from)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(path)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect()
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        File::open(path)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn std::any::Any + Send + Sync>> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |e| {
                if e == rustix::io::Errno::WOULDBLOCK {
                    io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "the queue is in use by another process",
                    )
                } else {
                    e.into()
                }
            },
        )?;
        // The lock lives as long as the open file.
        Ok(Box::new(f))
    }
}
