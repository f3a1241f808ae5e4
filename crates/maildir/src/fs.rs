//! The file operations the store needs, behind a small trait.
//!
//! Every change the store makes to the disk goes through [`Fs`], one method per system call
//! that matters for durability (create, write, fsync a file, rename, fsync a directory). The
//! real implementation, [`RealFs`], calls the operating system; [`crate::sim::SimFs`] keeps the
//! written state apart from the durable state and can fail or crash at any operation, which is
//! how the crash-consistency tests check every step of a delivery.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
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

    /// Makes the written data of every file in `files` durable, possibly by flushing the whole
    /// file system at once; returns one result per file in the same order. This is the flush
    /// of a [`crate::Batch`].
    ///
    /// An `Ok` for a file promises what [`Fs::sync_file`] promises: its data (and the metadata
    /// needed to read it back) survives a crash. Its directory entry is not covered: the caller
    /// still fsyncs the directories it renames the files into.
    ///
    /// `files` must be in the order they were created (as [`crate::Batch`] passes them): an
    /// implementation may rely on the first file of each file system having been opened before
    /// any of the others was written, to see every write-back error since.
    ///
    /// The default calls [`Fs::sync_files`]. [`RealFs`] flushes each ext4 file system holding
    /// two or more of the files with `syncfs(2)` (see [`RealFs`] for when and what it costs)
    /// and falls back to [`Fs::sync_files`] elsewhere.
    fn sync_batch(&self, files: &mut [&mut Self::File]) -> Vec<io::Result<()>> {
        self.sync_files(files)
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
///
/// # How a batch is flushed
///
/// [`Fs::sync_batch`] flushes the files of a batch that sit on one ext4 file system with
/// `syncfs(2)` on the first of them: one pass that writes back every dirty file and issues
/// one cache flush, instead of one fsync (and one flush) per file. An `fdatasync(2)` of that
/// first file follows, for its cache flush: `sync_filesystem()` (fs/sync.c) asks ext4 for its
/// flush before it writes the block device's buffers, so on ext4 without a journal the inode
/// and bitmap blocks written last may still be in the disk's volatile cache when `syncfs`
/// returns; ext4's fsync of a file always ends with a flush, which covers them (on a
/// journaled ext4 it is one flush more than needed).
///
/// Errors: since Linux 5.8, `syncfs` reports every write-back error on the file system since
/// the descriptor it is called on was opened (the superblock's error sequence), so calling it
/// on the batch's first file sees the errors of all files written after it. Any error fails
/// every file of that file system in the batch, even those whose data may have reached the
/// disk: a delivery reported failed is safe, one reported done must be durable.
///
/// The trade-off: `syncfs` also writes back other programs' dirty data on the same file
/// system, so a batch on a file system shared with a heavy writer (a build, a database load)
/// waits for that too. The promise is unchanged; only the latency suffers. Keep mail on its
/// own file system where that matters.
///
/// Elsewhere the files are fsynced one by one, concurrently ([`Fs::sync_files`]): a single
/// file, a kernel older than 5.8 (where `syncfs` does not report write-back errors), a file
/// system not mounted as ext4 (whose `syncfs` semantics this crate has not checked), and a
/// kernel or sandbox refusing `syncfs` (`ENOSYS`, `EPERM`: nothing was flushed, so the
/// fsyncs are a first attempt, not a retry).
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

/// At most this many threads flush files at once in [`RealFs::sync_files`]: enough for the
/// journal to gather a batch's fsyncs into one commit, few enough not to thrash.
const SYNC_THREADS: usize = 16;

/// Set once `syncfs(2)` was refused (`ENOSYS`, `EPERM`), so later batches do not ask again.
static SYNCFS_REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether the running kernel's `syncfs(2)` reports write-back errors (Linux 5.8 and later).
fn syncfs_reports_errors() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| {
        let uname = rustix::system::uname();
        kernel_at_least(uname.release().to_bytes(), (5, 8))
    })
}

/// Whether a kernel release string (`6.18.44-fc-v669`) is at least `major.minor`.
fn kernel_at_least(release: &[u8], want: (u32, u32)) -> bool {
    let text = String::from_utf8_lossy(release);
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(major), Some(minor)) => (major, minor) >= want,
        _ => false,
    }
}

/// Whether the file system with device number `dev` is mounted as ext4 (or as ext3, which the
/// ext4 driver serves), from `/proc/self/mountinfo`; cached per device.
fn is_ext4(dev: u64) -> bool {
    static KNOWN: OnceLock<Mutex<HashMap<u64, bool>>> = OnceLock::new();
    let known = KNOWN.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(&answer) = known.lock().ok().as_ref().and_then(|k| k.get(&dev)) {
        return answer;
    }
    let answer = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| mountinfo_is_ext4(&text, dev))
        .unwrap_or(false);
    if let Ok(mut k) = known.lock() {
        k.insert(dev, answer);
    }
    answer
}

/// Whether `mountinfo` (proc(5): `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext4 /dev/vda
/// rw`) mounts device `dev` as ext4 or ext3.
fn mountinfo_is_ext4(mountinfo: &str, dev: u64) -> bool {
    let want = format!("{}:{}", rustix::fs::major(dev), rustix::fs::minor(dev));
    mountinfo.lines().any(|line| {
        let mut fields = line.split(' ');
        if fields.nth(2) != Some(want.as_str()) {
            return false;
        }
        let mut after = line.split(" - ").nth(1).unwrap_or_default().split(' ');
        matches!(after.next(), Some("ext4" | "ext3"))
    })
}

/// One flush of the whole file system holding `file`, made durable (see [`RealFs`]).
fn syncfs_and_flush(file: &File) -> rustix::io::Result<()> {
    rustix::fs::syncfs(file)?;
    rustix::fs::fdatasync(file)
}

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

    fn sync_batch(&self, files: &mut [&mut File]) -> Vec<io::Result<()>> {
        if files.len() < 2 || !syncfs_reports_errors() || SYNCFS_REFUSED.load(Ordering::Relaxed) {
            return self.sync_files(files);
        }
        let mut results: Vec<Option<io::Result<()>>> = (0..files.len()).map(|_| None).collect();
        // The files of each file system, in the caller's order (creation order).
        let mut groups: Vec<(u64, Vec<usize>)> = Vec::new();
        for (i, file) in files.iter().enumerate() {
            match rustix::fs::fstat(&**file) {
                Ok(stat) => match groups.iter_mut().find(|(dev, _)| *dev == stat.st_dev) {
                    Some((_, members)) => members.push(i),
                    None => groups.push((stat.st_dev, vec![i])),
                },
                Err(e) => results[i] = Some(Err(e.into())),
            }
        }
        let mut fsync_each = vec![false; files.len()];
        for (dev, members) in groups {
            let first = match members.first() {
                Some(&first) if members.len() >= 2 && is_ext4(dev) => first,
                _ => {
                    members.iter().for_each(|&i| fsync_each[i] = true);
                    continue;
                }
            };
            match syncfs_and_flush(&*files[first]) {
                Ok(()) => members.iter().for_each(|&i| results[i] = Some(Ok(()))),
                Err(e) if e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::PERM => {
                    SYNCFS_REFUSED.store(true, Ordering::Relaxed);
                    members.iter().for_each(|&i| fsync_each[i] = true);
                }
                Err(e) => {
                    let kind = io::Error::from(e).kind();
                    for &i in &members {
                        let text = format!("flush of the file system (syncfs, fdatasync): {e}");
                        results[i] = Some(Err(io::Error::new(kind, text)));
                    }
                }
            }
        }
        if fsync_each.contains(&true) {
            let (indexes, mut rest): (Vec<usize>, Vec<&mut File>) = files
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| fsync_each[*i])
                .map(|(i, f)| (i, &mut **f))
                .unzip();
            for (i, result) in indexes.into_iter().zip(self.sync_files(&mut rest)) {
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(io::Error::other("file left out of the flush"))))
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_release_comparison() {
        assert!(kernel_at_least(b"6.18.44-fc-v669", (5, 8)));
        assert!(kernel_at_least(b"5.8.0", (5, 8)));
        assert!(kernel_at_least(b"5.10", (5, 8)));
        assert!(!kernel_at_least(b"5.7.19-generic", (5, 8)));
        assert!(!kernel_at_least(b"4.19.0", (5, 8)));
        assert!(!kernel_at_least(b"", (5, 8)));
        assert!(!kernel_at_least(b"linux", (5, 8)));
    }

    #[test]
    fn mountinfo_lines() {
        let text = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n\
                    23 22 0:21 / /proc rw shared:2 - proc proc rw\n\
                    24 22 8:1 / /mnt rw shared:3 - xfs /dev/sda1 rw\n\
                    25 22 8:2 / /old rw - ext3 /dev/sda2 rw\n\
                    26 22 8:3 / /e2 rw - ext2 /dev/sda3 rw\n";
        let dev = |major, minor| rustix::fs::makedev(major, minor);
        assert!(mountinfo_is_ext4(text, dev(254, 0)));
        assert!(mountinfo_is_ext4(text, dev(8, 2)));
        assert!(!mountinfo_is_ext4(text, dev(8, 1)));
        assert!(!mountinfo_is_ext4(text, dev(8, 3)));
        assert!(!mountinfo_is_ext4(text, dev(0, 21)));
        assert!(!mountinfo_is_ext4(text, dev(9, 9)));
        assert!(!mountinfo_is_ext4("garbage\n - \n", dev(9, 9)));
    }

    #[test]
    fn batch_on_the_real_disk_is_durable_and_reports_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs;
        let mut files: Vec<File> = (0..5)
            .map(|i| {
                let mut f = fs.create_new(&dir.path().join(i.to_string())).unwrap();
                f.write_all(b"data").unwrap();
                f
            })
            .collect();
        let mut refs: Vec<&mut File> = files.iter_mut().collect();
        let results = fs.sync_batch(&mut refs);
        assert_eq!(results.len(), 5);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert!(fs.sync_batch(&mut []).is_empty());
        let mut one = [&mut files[0]];
        assert!(fs.sync_batch(&mut one)[0].is_ok());
    }
}
