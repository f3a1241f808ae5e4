//! The file operations the store needs, behind a small trait.
//!
//! Every change the store makes to the disk goes through [`Fs`], one method per system call
//! that matters for durability (create, write, fsync a file, rename, fsync a directory). The
//! real implementation, [`RealFs`], calls the operating system; [`crate::sim::SimFs`] keeps the
//! written state apart from the durable state and can fail or crash at any operation, which is
//! how the crash-consistency tests check every step of a delivery.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::SystemTime;

/// What [`Fs::metadata`] reports about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// The size in bytes (for a file).
    pub len: u64,
    /// The last modification time.
    pub modified: SystemTime,
    /// Whether the path is a directory.
    pub is_dir: bool,
}

/// The file operations a Maildir store performs.
///
/// Each method is one step that can fail on its own, so an implementation can inject a failure
/// or a crash at exactly that step. Paths are absolute or relative to the process's working
/// directory, as the store was opened.
pub trait Fs: Clone + Send + Sync {
    /// A file open for writing, created by [`Fs::create_new`].
    type File: Write + Send;
    /// A file open for reading, from [`Fs::open`].
    type Reader: Read + Send;

    /// Creates `path` for writing, failing with [`io::ErrorKind::AlreadyExists`] when it exists
    /// (`O_CREAT | O_EXCL`, mode 0600).
    fn create_new(&self, path: &Path) -> io::Result<Self::File>;

    /// Opens the existing file `path` for appending (`O_APPEND`): each write lands at the end,
    /// even with other processes appending at the same time.
    fn open_append(&self, path: &Path) -> io::Result<Self::File>;

    /// Flushes `file`'s data and metadata to stable storage (`fsync`).
    fn sync_file(&self, file: &mut Self::File) -> io::Result<()>;

    /// Flushes several files, returning one result per file in the same order.
    ///
    /// The default calls [`Fs::sync_file`] on each in turn; [`RealFs`] issues them concurrently
    /// so the file system can commit them in one journal transaction (group commit).
    fn sync_files(&self, files: &mut [&mut Self::File]) -> Vec<io::Result<()>> {
        files.iter_mut().map(|f| self.sync_file(f)).collect()
    }

    /// Renames `from` to `to`, replacing `to` if it exists (`rename(2)`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Renames `from` to `to`, failing with [`io::ErrorKind::AlreadyExists`] when `to` exists.
    fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Creates the directory `path` (mode 0700), failing with
    /// [`io::ErrorKind::AlreadyExists`] when it exists.
    fn create_dir(&self, path: &Path) -> io::Result<()>;

    /// Removes the empty directory `path`.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;

    /// Flushes the directory `path` (its entries: creations, renames, removals) to stable storage.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Lists the names in directory `path`, without `.` and `..`, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;

    /// Opens the file `path` for reading.
    fn open(&self, path: &Path) -> io::Result<Self::Reader>;

    /// Reports the size, modification time and type of `path` (following symbolic links).
    fn metadata(&self, path: &Path) -> io::Result<Metadata>;

    /// Reads the whole file `path`, refusing files larger than `limit` bytes with
    /// [`io::ErrorKind::InvalidData`] (for the small control files: uidlist, keywords, quota).
    fn read_small(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let mut reader = self.open(path)?.take(limit.saturating_add(1));
        let mut out = Vec::new();
        reader.read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file is larger than {limit} bytes"),
            ));
        }
        Ok(out)
    }
}

/// The operating system's file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

/// At most this many threads flush files at once in [`RealFs::sync_files`]: enough for the
/// journal to gather a batch's fsyncs into one commit, few enough not to thrash.
const SYNC_THREADS: usize = 16;

impl Fs for RealFs {
    type File = File;
    type Reader = File;

    fn create_new(&self, path: &Path) -> io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    }

    fn open_append(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().append(true).open(path)
    }

    fn sync_file(&self, file: &mut File) -> io::Result<()> {
        file.sync_all()
    }

    fn sync_files(&self, files: &mut [&mut File]) -> Vec<io::Result<()>> {
        if files.len() <= 1 {
            return files.iter_mut().map(|f| f.sync_all()).collect();
        }
        // Concurrent fsyncs on one file system are committed together by the journal (ext4's
        // jbd2, XFS's log): one flush for the whole group instead of one per file. Each file
        // still gets its own fsync, so each result is that file's own.
        let per_thread = files.len().div_ceil(SYNC_THREADS);
        let mut results: Vec<io::Result<()>> = Vec::with_capacity(files.len());
        std::thread::scope(|scope| {
            let handles: Vec<_> = files
                .chunks_mut(per_thread)
                .map(|chunk| {
                    let len = chunk.len();
                    let handle = scope
                        .spawn(move || chunk.iter_mut().map(|f| f.sync_all()).collect::<Vec<_>>());
                    (handle, len)
                })
                .collect();
            for (handle, len) in handles {
                match handle.join() {
                    Ok(chunk) => results.extend(chunk),
                    Err(_) => results
                        .extend((0..len).map(|_| Err(io::Error::other("fsync thread panicked")))),
                }
            }
        });
        results
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            // A file system without RENAME_NOREPLACE: link(2) then unlink(2) gives the same
            // "fail if the target exists" promise, as qmail's link-based delivery did.
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
                std::fs::hard_link(from, to)?;
                std::fs::remove_file(from)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(path)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect()
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        File::open(path)
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        let m = std::fs::metadata(path)?;
        Ok(Metadata {
            len: m.len(),
            modified: m.modified()?,
            is_dir: m.is_dir(),
        })
    }
}
