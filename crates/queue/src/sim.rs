//! A simulated file system that keeps written and durable state apart.
//!
//! [`SimFs`] implements [`Fs`] in memory, in the shape of the Maildir crate's simulator. Every
//! file and directory has two states: what was written (what a running process sees) and what is
//! durable (what survives a power cut). A file's data becomes durable on [`Fs::sync_file`]; a
//! directory's entries (creations, renames, removals) become durable on [`Fs::sync_dir`] of that
//! directory, as POSIX promises and no more.
//!
//! A test can make operation number N fail with an error ([`SimFs::fail_after`], reported as
//! "no space left on device") or crash the machine at operation N ([`SimFs::crash_after`]): that
//! operation and every later one fail until [`SimFs::recover`] throws away what was not durable,
//! by one of the [`CrashMode`]s. Counting the operations of an enqueue once, then crashing at each
//! of them in turn, checks every intermediate state (the method of redb's crash-consistency test).
//! Only operations that change something or flush count; reads fail after a crash but do not
//! count.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io::{self, Cursor, Write};
use std::path::{Component, Path};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::fs::Fs;

/// How [`SimFs::recover`] decides what survived a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Everything not made durable is lost: the worst case POSIX allows.
    LoseUnsynced,
    /// Everything written before the crash survived (a crash of the process, not the machine).
    KeepAll,
    /// Each file keeps its durable state plus a random part of what was appended since, and each
    /// directory keeps either its written or its durable entries, chosen by a generator seeded
    /// with this value: the reorderings a real disk may show.
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
    },
    Dir {
        entries: BTreeMap<OsString, u64>,
        durable: BTreeMap<OsString, u64>,
    },
}

#[derive(Debug)]
struct State {
    ops: u64,
    fault: Option<(u64, FaultKind)>,
    crashed: bool,
    nodes: HashMap<u64, Node>,
    next_node: u64,
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

fn err(kind: io::ErrorKind, msg: &str) -> io::Error {
    io::Error::new(kind, msg.to_owned())
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread poisons the lock; the state stays consistent because every
    // operation checks before it changes anything.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    /// Fails after a crash (reads included), without counting.
    fn check(&self, what: &str) -> io::Result<()> {
        if self.crashed {
            return Err(io::Error::other(format!(
                "simulated crash: {what} after the machine went down"
            )));
        }
        Ok(())
    }

    /// Counts one operation and applies an injected fault.
    fn op(&mut self, what: &str) -> io::Result<()> {
        self.check(what)?;
        self.ops += 1;
        match self.fault {
            Some((at, kind)) if at == self.ops => match kind {
                FaultKind::Error => {
                    self.fault = None;
                    Err(io::Error::new(
                        io::ErrorKind::StorageFull,
                        format!("injected failure of {what} (operation {at}): no space left"),
                    ))
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

    fn entries_mut(&mut self, dir: u64) -> io::Result<&mut BTreeMap<OsString, u64>> {
        match self.nodes.get_mut(&dir) {
            Some(Node::Dir { entries, .. }) => Ok(entries),
            _ => Err(err(io::ErrorKind::NotADirectory, "not a directory")),
        }
    }

    fn insert_new(&mut self, path: &Path, node: Node) -> io::Result<u64> {
        let (dir, name) = self.parent(path)?;
        let name = name.to_os_string();
        let id = self.next_node;
        let entries = self.entries_mut(dir)?;
        if entries.contains_key(&name) {
            return Err(err(io::ErrorKind::AlreadyExists, "file exists"));
        }
        entries.insert(name, id);
        self.next_node += 1;
        self.nodes.insert(id, node);
        Ok(id)
    }

    fn file(&self, path: &Path) -> io::Result<&Vec<u8>> {
        let node = self.lookup(path)?;
        match self.nodes.get(&node) {
            Some(Node::File { data, .. }) => Ok(data),
            _ => Err(err(io::ErrorKind::IsADirectory, "is a directory")),
        }
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
        nodes.insert(
            ROOT,
            Node::Dir {
                entries: BTreeMap::new(),
                durable: BTreeMap::new(),
            },
        );
        Self {
            state: Arc::new(Mutex::new(State {
                ops: 0,
                fault: None,
                crashed: false,
                nodes,
                next_node: 1,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// How many operations were counted so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Makes the operation `n` operations from now fail with "no space left on device" (`n = 0`:
    /// the next one); later operations succeed again.
    pub fn fail_after(&self, n: u64) {
        let mut s = self.lock();
        let at = s.ops + n + 1;
        s.fault = Some((at, FaultKind::Error));
    }

    /// Crashes the machine at the operation `n` operations from now (`n = 0`: the next one): it
    /// and every later operation fail until [`SimFs::recover`].
    pub fn crash_after(&self, n: u64) {
        let mut s = self.lock();
        let at = s.ops + n + 1;
        s.fault = Some((at, FaultKind::Crash));
    }

    /// Whether a crash happened and [`SimFs::recover`] was not called yet.
    pub fn is_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Restarts after a crash (or simulates one now): throws away what was not durable according
    /// to `mode`, clears any pending fault, and makes the surviving state durable.
    pub fn recover(&self, mode: CrashMode) {
        let mut s = self.lock();
        let mut seed = match mode {
            CrashMode::Mixed(seed) => seed,
            _ => 0,
        };
        let mut ids: Vec<u64> = s.nodes.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let roll = splitmix(&mut seed);
            if let Some(node) = s.nodes.get_mut(&id) {
                match node {
                    Node::File { data, durable } => {
                        let keep: Vec<u8> = match mode {
                            CrashMode::LoseUnsynced => durable.clone(),
                            CrashMode::KeepAll => data.clone(),
                            CrashMode::Mixed(_) if data.starts_with(durable) => {
                                let extra = (data.len() - durable.len()) as u64;
                                let len = durable.len() + (roll % (extra + 1)) as usize;
                                data[..len].to_vec()
                            }
                            CrashMode::Mixed(_) if roll & 1 == 1 => data.clone(),
                            CrashMode::Mixed(_) => durable.clone(),
                        };
                        *data = keep.clone();
                        *durable = keep;
                    }
                    Node::Dir { entries, durable } => {
                        let keep_written = match mode {
                            CrashMode::LoseUnsynced => false,
                            CrashMode::KeepAll => true,
                            CrashMode::Mixed(_) => roll & 2 == 2,
                        };
                        if keep_written {
                            *durable = entries.clone();
                        } else {
                            *entries = durable.clone();
                        }
                    }
                }
            }
        }
        s.crashed = false;
        s.fault = None;
    }

    /// The file's current (written) contents, for tests that damage the queue on purpose.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        self.lock().file(path).ok().cloned()
    }

    /// Replaces the file's contents, written and durable (a test's hostile storage).
    ///
    /// # Errors
    ///
    /// When the path does not name a file.
    pub fn overwrite(&self, path: &Path, contents: Vec<u8>) -> io::Result<()> {
        let mut s = self.lock();
        let node = s.lookup(path)?;
        match s.nodes.get_mut(&node) {
            Some(Node::File { data, durable }) => {
                *data = contents.clone();
                *durable = contents;
                Ok(())
            }
            _ => Err(err(io::ErrorKind::IsADirectory, "is a directory")),
        }
    }
}

/// A file open for appending on a [`SimFs`]; each `write` call is one operation.
#[derive(Debug)]
pub struct SimFile {
    state: Arc<Mutex<State>>,
    node: u64,
}

impl Write for SimFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = lock(&self.state);
        if let Err(e) = s.op("write") {
            if s.crashed {
                // A crash in the middle of a write leaves part of it written (a torn write).
                if let Some(Node::File { data, .. }) = s.nodes.get_mut(&self.node) {
                    data.extend_from_slice(&buf[..buf.len() / 2]);
                }
            }
            return Err(e);
        }
        match s.nodes.get_mut(&self.node) {
            Some(Node::File { data, .. }) => {
                data.extend_from_slice(buf);
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
        let node = s.insert_new(
            path,
            Node::File {
                data: Vec::new(),
                durable: Vec::new(),
            },
        )?;
        Ok(SimFile {
            state: Arc::clone(&self.state),
            node,
        })
    }

    fn sync_file(&self, file: &mut SimFile) -> io::Result<()> {
        let mut s = lock(&file.state);
        s.op("fsync")?;
        match s.nodes.get_mut(&file.node) {
            Some(Node::File { data, durable }) => {
                *durable = data.clone();
                Ok(())
            }
            _ => Err(err(io::ErrorKind::NotFound, "file vanished")),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.op("rename")?;
        let node = s.lookup(from)?;
        let (from_dir, from_name) = s.parent(from)?;
        let (to_dir, to_name) = s.parent(to)?;
        let from_name = from_name.to_os_string();
        let to_name = to_name.to_os_string();
        s.entries_mut(from_dir)?.remove(&from_name);
        s.entries_mut(to_dir)?.insert(to_name, node);
        Ok(())
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
        s.entries_mut(dir)?.remove(&name);
        Ok(())
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.op("mkdir")?;
        s.insert_new(
            path,
            Node::Dir {
                entries: BTreeMap::new(),
                durable: BTreeMap::new(),
            },
        )?;
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.op("fsync directory")?;
        let node = s.lookup(path)?;
        match s.nodes.get_mut(&node) {
            Some(Node::Dir { entries, durable }) => {
                *durable = entries.clone();
                Ok(())
            }
            _ => Err(err(io::ErrorKind::NotADirectory, "not a directory")),
        }
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let s = self.lock();
        s.check("read directory")?;
        let node = s.lookup(path)?;
        match s.nodes.get(&node) {
            Some(Node::Dir { entries, .. }) => Ok(entries.keys().cloned().collect()),
            _ => Err(err(io::ErrorKind::NotADirectory, "not a directory")),
        }
    }

    fn open(&self, path: &Path) -> io::Result<Cursor<Vec<u8>>> {
        let s = self.lock();
        s.check("open")?;
        Ok(Cursor::new(s.file(path)?.clone()))
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let s = self.lock();
        s.check("stat")?;
        Ok(s.file(path)?.len() as u64)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn std::any::Any + Send + Sync>> {
        // One simulated machine, one owner: nothing to exclude; the path must be valid.
        let s = self.lock();
        s.check("lock")?;
        s.parent(path)?;
        Ok(Box::new(()))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut s = self.lock();
        s.op("truncate")?;
        let node = s.lookup(path)?;
        match s.nodes.get_mut(&node) {
            Some(Node::File { data, durable }) => {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                data.truncate(len);
                *durable = data.clone();
                Ok(())
            }
            _ => Err(err(io::ErrorKind::IsADirectory, "is a directory")),
        }
    }
}
