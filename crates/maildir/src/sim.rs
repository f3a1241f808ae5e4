//! A simulated file system that keeps written and durable state apart.
//!
//! [`SimFs`] implements [`Fs`] in memory. Every file and directory has two states: what was
//! written (what a running process sees) and what is durable (what survives a power cut). A file's
//! data becomes durable on [`Fs::sync_file`], and every file's on [`Fs::sync_batch`] (one
//! operation standing for `syncfs(2)`); a directory's entries (creations, renames, removals)
//! become durable on [`Fs::sync_dir`] of that directory, as POSIX promises and no more.
//!
//! Each change to directory entries (create, unlink, mkdir, rmdir, rename) is one atomic
//! metadata operation: after a crash a rename has happened in both directories or in neither,
//! as journaling file systems (ext4, XFS, btrfs) guarantee and as the Maildir protocol assumes.
//! An operation is durable once any directory it touched was fsynced after it.
//!
//! A test can make operation number N fail with an error ([`SimFs::fail_after`]) or crash the
//! machine at operation N ([`SimFs::crash_after`]): that operation and every later one fail
//! until [`SimFs::recover`] throws away what was not durable, by one of the [`CrashMode`]s.
//! Running a delivery once to count its operations, then crashing at each of them in turn,
//! checks every intermediate state (the method of redb's crash-consistency test).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io::{self, Cursor, Write};
use std::path::{Component, Path};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::fs::{Fs, Metadata};

/// How [`SimFs::recover`] decides what survived a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Everything not made durable is lost.
    LoseUnsynced,
    /// Everything written before the crash survived (a crash of the process, not the machine).
    KeepAll,
    /// A random prefix of the metadata operations survived (besides the ones made durable),
    /// and each file independently kept its written or its durable data, chosen by a generator
    /// seeded with this value: the partial states a real disk may show.
    Mixed(u64),
}

#[derive(Debug, Clone, Copy)]
enum FaultKind {
    Error,
    Crash,
}

#[derive(Debug, Clone)]
enum Node {
    File {
        data: Vec<u8>,
        durable: Vec<u8>,
        mtime: SystemTime,
    },
    Dir {
        entries: BTreeMap<OsString, u64>,
        durable: BTreeMap<OsString, u64>,
        /// The journal length when `durable` was taken.
        synced_at: usize,
        mtime: SystemTime,
    },
}

/// One atomic metadata operation: entry changes `(directory, name, new target or removal)`.
type JournalOp = Vec<(u64, OsString, Option<u64>)>;

#[derive(Debug)]
struct State {
    ops: u64,
    fault: Option<(u64, FaultKind)>,
    crashed: bool,
    nodes: HashMap<u64, Node>,
    next_node: u64,
    now: SystemTime,
    /// Metadata operations since the last recovery, in order.
    journal: Vec<JournalOp>,
}

const ROOT: u64 = 0;

/// An in-memory file system with separate written and durable state, and fault injection.
///
/// Cloning gives another handle to the same file system.
#[derive(Debug, Clone)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl Default for SimFs {
    fn default() -> Self {
        Self::new()
    }
}

fn err(kind: io::ErrorKind, msg: impl Into<String>) -> io::Error {
    io::Error::new(kind, msg.into())
}

impl State {
    /// Counts one operation and applies an injected fault.
    fn op(&mut self, what: &str) -> io::Result<()> {
        if self.crashed {
            return Err(io::Error::other(format!(
                "simulated crash: {what} after the machine went down"
            )));
        }
        self.ops += 1;
        match self.fault {
            Some((at, kind)) if at == self.ops => match kind {
                FaultKind::Error => {
                    self.fault = None;
                    Err(io::Error::other(format!(
                        "injected failure of {what} (operation {at})"
                    )))
                }
                FaultKind::Crash => {
                    self.crashed = true;
                    Err(io::Error::other(format!(
                        "simulated crash during {what} (operation {at})"
                    )))
                }
            },
            _ => Ok(()),
        }
    }

    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let mut node = ROOT;
        for c in path.components() {
            match c {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    return Err(err(io::ErrorKind::InvalidInput, "`..` in a simulated path"));
                }
                Component::Normal(name) => match self.nodes.get(&node) {
                    Some(Node::Dir { entries, .. }) => {
                        node = *entries.get(name).ok_or_else(|| {
                            err(io::ErrorKind::NotFound, "no such file or directory")
                        })?;
                    }
                    _ => return Err(err(io::ErrorKind::NotADirectory, "not a directory")),
                },
            }
        }
        Ok(node)
    }

    /// The parent directory's node and the last component of `path`.
    fn parent<'p>(&self, path: &'p Path) -> io::Result<(u64, &'p OsStr)> {
        let name = path
            .file_name()
            .ok_or_else(|| err(io::ErrorKind::InvalidInput, "path has no file name"))?;
        let parent = path.parent().unwrap_or(Path::new("/"));
        let node = self.lookup(parent)?;
        match self.nodes.get(&node) {
            Some(Node::Dir { .. }) => Ok((node, name)),
            _ => Err(err(io::ErrorKind::NotADirectory, "not a directory")),
        }
    }

    /// Applies one atomic metadata operation and records it in the journal.
    fn change(&mut self, op: JournalOp) -> io::Result<()> {
        let now = self.now;
        for (dir, _, _) in &op {
            if !matches!(self.nodes.get(dir), Some(Node::Dir { .. })) {
                return Err(err(io::ErrorKind::NotADirectory, "not a directory"));
            }
        }
        for (dir, name, target) in &op {
            if let Some(Node::Dir { entries, mtime, .. }) = self.nodes.get_mut(dir) {
                *mtime = now;
                match target {
                    Some(node) => entries.insert(name.clone(), *node),
                    None => entries.remove(name),
                };
            }
        }
        self.journal.push(op);
        Ok(())
    }

    fn contains(&self, dir: u64, name: &OsStr) -> bool {
        matches!(self.nodes.get(&dir), Some(Node::Dir { entries, .. }) if entries.contains_key(name))
    }

    fn insert_new(&mut self, path: &Path, node: Node) -> io::Result<u64> {
        let (dir, name) = self.parent(path)?;
        if self.contains(dir, name) {
            return Err(err(io::ErrorKind::AlreadyExists, "file exists"));
        }
        let id = self.next_node;
        self.next_node += 1;
        self.nodes.insert(id, node);
        self.change(vec![(dir, name.to_os_string(), Some(id))])?;
        Ok(id)
    }
}

/// Tiny deterministic generator for [`CrashMode::Mixed`] (splitmix64).
fn splitmix(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SimFs {
    /// An empty file system holding only the root directory `/`, which is durable.
    pub fn new() -> Self {
        let mut nodes = HashMap::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        nodes.insert(
            ROOT,
            Node::Dir {
                entries: BTreeMap::new(),
                durable: BTreeMap::new(),
                synced_at: 0,
                mtime: now,
            },
        );
        Self {
            state: Arc::new(Mutex::new(State {
                ops: 0,
                fault: None,
                crashed: false,
                nodes,
                next_node: 1,
                now,
                journal: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread poisons the lock; the state itself stays consistent because
        // every operation checks before it changes anything.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many operations were attempted so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Makes the operation `n` operations from now fail with an error (`n = 0`: the next one);
    /// later operations succeed again.
    pub fn fail_after(&self, n: u64) {
        let mut s = self.lock();
        let at = s.ops + n + 1;
        s.fault = Some((at, FaultKind::Error));
    }

    /// Crashes the machine at the operation `n` operations from now (`n = 0`: the next one):
    /// it and every later operation fail until [`SimFs::recover`].
    pub fn crash_after(&self, n: u64) {
        let mut s = self.lock();
        let at = s.ops + n + 1;
        s.fault = Some((at, FaultKind::Crash));
    }

    /// Whether a crash happened and [`SimFs::recover`] was not called yet.
    pub fn is_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Restarts after a crash (or simulates one now): throws away what was not durable
    /// according to `mode`, clears any pending fault, and makes the surviving state durable.
    pub fn recover(&self, mode: CrashMode) {
        let mut s = self.lock();
        let mut seed = match mode {
            CrashMode::Mixed(seed) => seed,
            _ => 0,
        };
        let cut = match mode {
            CrashMode::LoseUnsynced => 0,
            CrashMode::KeepAll => s.journal.len(),
            CrashMode::Mixed(_) => {
                usize::try_from(splitmix(&mut seed) % (s.journal.len() as u64 + 1)).unwrap_or(0)
            }
        };
        let synced_at = |s: &State, dir: u64| match s.nodes.get(&dir) {
            Some(Node::Dir { synced_at, .. }) => *synced_at,
            _ => 0,
        };
        // An operation survived if it is before the cut, or if a directory it touched was
        // fsynced after it (then it is durable, in every directory it touched: it is atomic).
        let applied: Vec<bool> = s
            .journal
            .iter()
            .enumerate()
            .map(|(j, op)| j < cut || op.iter().any(|(d, _, _)| synced_at(&s, *d) > j))
            .collect();
        let journal = std::mem::take(&mut s.journal);
        let mut ids: Vec<u64> = s.nodes.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let keep_data = match mode {
                CrashMode::LoseUnsynced => false,
                CrashMode::KeepAll => true,
                CrashMode::Mixed(_) => splitmix(&mut seed) & 1 == 1,
            };
            if let Some(node) = s.nodes.get_mut(&id) {
                match node {
                    Node::File { data, durable, .. } => {
                        if keep_data {
                            *durable = data.clone();
                        } else {
                            *data = durable.clone();
                        }
                    }
                    Node::Dir {
                        entries,
                        durable,
                        synced_at,
                        ..
                    } => {
                        let mut state = durable.clone();
                        for (j, op) in journal.iter().enumerate().skip(*synced_at) {
                            if !applied[j] {
                                continue;
                            }
                            for (d, name, target) in op {
                                if *d == id {
                                    match target {
                                        Some(n) => state.insert(name.clone(), *n),
                                        None => state.remove(name),
                                    };
                                }
                            }
                        }
                        *entries = state.clone();
                        *durable = state;
                        *synced_at = 0;
                    }
                }
            }
        }
        s.crashed = false;
        s.fault = None;
    }

    /// Moves the simulated clock forward (it starts at 2023-11-14); new and changed files take
    /// the clock's time as their modification time.
    pub fn advance(&self, by: Duration) {
        let mut s = self.lock();
        s.now += by;
    }

    /// The file's durable contents, or `None` when no durable directory chain leads to it.
    pub fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        let mut node = ROOT;
        for c in path.components() {
            if let Component::Normal(name) = c {
                match s.nodes.get(&node)? {
                    Node::Dir { durable, .. } => node = *durable.get(name)?,
                    Node::File { .. } => return None,
                }
            }
        }
        match s.nodes.get(&node)? {
            Node::File { durable, .. } => Some(durable.clone()),
            Node::Dir { .. } => None,
        }
    }
}

/// A file open for writing on a [`SimFs`]; each `write` call is one operation.
#[derive(Debug)]
pub struct SimFile {
    state: Arc<Mutex<State>>,
    node: u64,
}

impl Write for SimFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = s.now;
        let result = s.op("write");
        if let Err(e) = result {
            if s.crashed {
                // A crash in the middle of a write leaves part of it written (a torn write).
                if let Some(Node::File { data, .. }) = s.nodes.get_mut(&self.node) {
                    data.extend_from_slice(&buf[..buf.len() / 2]);
                }
            }
            return Err(e);
        }
        match s.nodes.get_mut(&self.node) {
            Some(Node::File { data, mtime, .. }) => {
                data.extend_from_slice(buf);
                *mtime = now;
                Ok(buf.len())
            }
            _ => Err(err(io::ErrorKind::NotFound, "file vanished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Fs for SimFs {
    type File = SimFile;
    type Reader = Cursor<Vec<u8>>;

    fn create_new(&self, path: &Path) -> io::Result<SimFile> {
        let mut s = self.lock();
        s.op("create")?;
        let now = s.now;
        let node = s.insert_new(
            path,
            Node::File {
                data: Vec::new(),
                durable: Vec::new(),
                mtime: now,
            },
        )?;
        Ok(SimFile {
            state: Arc::clone(&self.state),
            node,
        })
    }

    fn open_append(&self, path: &Path) -> io::Result<SimFile> {
        let mut s = self.lock();
        s.op("open for append")?;
        let node = s.lookup(path)?;
        match s.nodes.get(&node) {
            Some(Node::File { .. }) => Ok(SimFile {
                state: Arc::clone(&self.state),
                node,
            }),
            _ => Err(err(io::ErrorKind::IsADirectory, "is a directory")),
        }
    }

    fn sync_file(&self, file: &mut SimFile) -> io::Result<()> {
        // The file's own state, so a batch may sync through any handle of the same file system.
        let mut s = file.state.lock().unwrap_or_else(|p| p.into_inner());
        s.op("fsync")?;
        match s.nodes.get_mut(&file.node) {
            Some(Node::File { data, durable, .. }) => {
                *durable = data.clone();
                Ok(())
            }
            _ => Err(err(io::ErrorKind::NotFound, "file vanished")),
        }
    }

    /// One operation (`syncfs`) that makes the written data of every file on the simulated
    /// file system durable, as `syncfs(2)` does on [`crate::RealFs`]; directory entries are not
    /// made durable (be conservative: the caller must still fsync the directories). Failed or
    /// crashed, it fails every file and makes nothing durable.
    fn sync_batch(&self, files: &mut [&mut SimFile]) -> Vec<io::Result<()>> {
        let Some(first) = files.first() else {
            return Vec::new();
        };
        // The files' own state, so a batch may sync through any handle of the same file system.
        let mut s = first.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = s.op("syncfs") {
            return files
                .iter()
                .map(|_| Err(io::Error::new(e.kind(), e.to_string())))
                .collect();
        }
        for node in s.nodes.values_mut() {
            if let Node::File { data, durable, .. } = node {
                durable.clone_from(data);
            }
        }
        files
            .iter()
            .map(|f| match s.nodes.get(&f.node) {
                Some(Node::File { .. }) => Ok(()),
                _ => Err(err(io::ErrorKind::NotFound, "file vanished")),
            })
            .collect()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.rename_inner(from, to, true)
    }

    fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.rename_inner(from, to, false)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.op("unlink")?;
        let node = s.lookup(path)?;
        if let Some(Node::Dir { .. }) = s.nodes.get(&node) {
            return Err(err(io::ErrorKind::IsADirectory, "is a directory"));
        }
        let (dir, name) = s.parent(path)?;
        let name = name.to_os_string();
        s.change(vec![(dir, name, None)])
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.op("mkdir")?;
        let now = s.now;
        s.insert_new(
            path,
            Node::Dir {
                entries: BTreeMap::new(),
                durable: BTreeMap::new(),
                synced_at: 0,
                mtime: now,
            },
        )
        .map(|_| ())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.op("rmdir")?;
        let node = s.lookup(path)?;
        match s.nodes.get(&node) {
            Some(Node::Dir { entries, .. }) if entries.is_empty() => {}
            Some(Node::Dir { .. }) => {
                return Err(err(io::ErrorKind::DirectoryNotEmpty, "directory not empty"));
            }
            _ => return Err(err(io::ErrorKind::NotADirectory, "not a directory")),
        }
        let (dir, name) = s.parent(path)?;
        let name = name.to_os_string();
        s.change(vec![(dir, name, None)])
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.op("fsync directory")?;
        let node = s.lookup(path)?;
        let journal_len = s.journal.len();
        match s.nodes.get_mut(&node) {
            Some(Node::Dir {
                entries,
                durable,
                synced_at,
                ..
            }) => {
                *durable = entries.clone();
                *synced_at = journal_len;
                Ok(())
            }
            _ => Err(err(io::ErrorKind::NotADirectory, "not a directory")),
        }
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let mut s = self.lock();
        s.op("readdir")?;
        let node = s.lookup(path)?;
        match s.nodes.get(&node) {
            Some(Node::Dir { entries, .. }) => Ok(entries.keys().cloned().collect()),
            _ => Err(err(io::ErrorKind::NotADirectory, "not a directory")),
        }
    }

    fn open(&self, path: &Path) -> io::Result<Cursor<Vec<u8>>> {
        let mut s = self.lock();
        s.op("open")?;
        let node = s.lookup(path)?;
        match s.nodes.get(&node) {
            Some(Node::File { data, .. }) => Ok(Cursor::new(data.clone())),
            _ => Err(err(io::ErrorKind::IsADirectory, "is a directory")),
        }
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        let mut s = self.lock();
        s.op("stat")?;
        let node = s.lookup(path)?;
        Ok(match s.nodes.get(&node) {
            Some(Node::File { data, mtime, .. }) => Metadata {
                len: data.len() as u64,
                modified: *mtime,
                is_dir: false,
            },
            Some(Node::Dir { mtime, .. }) => Metadata {
                len: 0,
                modified: *mtime,
                is_dir: true,
            },
            None => return Err(err(io::ErrorKind::NotFound, "no such file or directory")),
        })
    }
}

impl SimFs {
    fn rename_inner(&self, from: &Path, to: &Path, replace: bool) -> io::Result<()> {
        let mut s = self.lock();
        s.op("rename")?;
        let node = s.lookup(from)?;
        let (from_dir, from_name) = s.parent(from)?;
        let (to_dir, to_name) = s.parent(to)?;
        let (from_name, to_name) = (from_name.to_os_string(), to_name.to_os_string());
        let target = s.nodes.get(&to_dir).and_then(|n| match n {
            Node::Dir { entries, .. } => entries.get(&to_name).copied(),
            Node::File { .. } => None,
        });
        if let Some(existing) = target {
            if existing == node {
                return Ok(());
            }
            if !replace {
                return Err(err(io::ErrorKind::AlreadyExists, "file exists"));
            }
            if let Some(Node::Dir { .. }) = s.nodes.get(&existing) {
                return Err(err(io::ErrorKind::IsADirectory, "target is a directory"));
            }
        }
        s.change(vec![
            (from_dir, from_name, None),
            (to_dir, to_name, Some(node)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn unsynced_file_is_lost_synced_one_survives() {
        let fs = SimFs::new();
        fs.create_dir(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let mut a = fs.create_new(Path::new("/d/a")).unwrap();
        a.write_all(b"hello").unwrap();
        fs.sync_file(&mut a).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        let mut b = fs.create_new(Path::new("/d/b")).unwrap();
        b.write_all(b"lost").unwrap();
        fs.recover(CrashMode::LoseUnsynced);
        let mut names = fs.read_dir(Path::new("/d")).unwrap();
        names.sort();
        assert_eq!(names, vec![OsString::from("a")]);
        let mut text = String::new();
        fs.open(Path::new("/d/a"))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello");
    }

    #[test]
    fn crash_stops_every_later_operation() {
        let fs = SimFs::new();
        fs.crash_after(1);
        fs.create_dir(Path::new("/a")).unwrap();
        assert!(fs.create_dir(Path::new("/b")).is_err());
        assert!(fs.read_dir(Path::new("/")).is_err());
        assert!(fs.is_crashed());
        fs.recover(CrashMode::LoseUnsynced);
        assert!(fs.read_dir(Path::new("/")).unwrap().is_empty());
    }

    #[test]
    fn injected_error_hits_one_operation() {
        let fs = SimFs::new();
        fs.fail_after(0);
        assert!(fs.create_dir(Path::new("/a")).is_err());
        fs.create_dir(Path::new("/a")).unwrap();
    }

    #[test]
    fn sync_batch_makes_all_data_durable_but_no_entry() {
        let fs = SimFs::new();
        fs.create_dir(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        let mut a = fs.create_new(Path::new("/d/a")).unwrap();
        a.write_all(b"in the batch").unwrap();
        let mut b = fs.create_new(Path::new("/d/b")).unwrap();
        b.write_all(b"outside it").unwrap();
        let before = fs.ops();
        let results = fs.sync_batch(&mut [&mut a]);
        assert_eq!(fs.ops(), before + 1, "one operation");
        assert!(results[0].is_ok());
        // Data durable (file system wide), entries not: nothing survives without a sync_dir.
        assert_eq!(fs.durable_contents(Path::new("/d/a")), None);
        fs.sync_dir(Path::new("/d")).unwrap();
        assert_eq!(
            fs.durable_contents(Path::new("/d/a")).unwrap(),
            b"in the batch"
        );
        assert_eq!(
            fs.durable_contents(Path::new("/d/b")).unwrap(),
            b"outside it"
        );
        assert!(fs.sync_batch(&mut []).is_empty());
    }

    #[test]
    fn sync_batch_failure_fails_every_file_and_syncs_nothing() {
        for crash in [false, true] {
            let fs = SimFs::new();
            fs.create_dir(Path::new("/d")).unwrap();
            let mut a = fs.create_new(Path::new("/d/a")).unwrap();
            a.write_all(b"a").unwrap();
            let mut b = fs.create_new(Path::new("/d/b")).unwrap();
            b.write_all(b"b").unwrap();
            fs.sync_dir(Path::new("/")).unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
            if crash {
                fs.crash_after(0);
            } else {
                fs.fail_after(0);
            }
            let results = fs.sync_batch(&mut [&mut a, &mut b]);
            assert!(results.iter().all(Result::is_err), "{results:?}");
            assert_eq!(fs.durable_contents(Path::new("/d/a")).unwrap(), b"");
            assert_eq!(fs.durable_contents(Path::new("/d/b")).unwrap(), b"");
            assert_eq!(fs.is_crashed(), crash);
        }
    }

    #[test]
    fn rename_noreplace_refuses_existing_target() {
        let fs = SimFs::new();
        fs.create_new(Path::new("/a")).unwrap();
        fs.create_new(Path::new("/b")).unwrap();
        let e = fs
            .rename_noreplace(Path::new("/a"), Path::new("/b"))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        fs.rename(Path::new("/a"), Path::new("/b")).unwrap();
        assert_eq!(
            fs.read_dir(Path::new("/")).unwrap(),
            vec![OsString::from("b")]
        );
    }
}
