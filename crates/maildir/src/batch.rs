//! Batch delivery: many messages, or one message to many Maildirs, with the fsyncs grouped.
//!
//! Every message of a batch gets the same promise as [`Maildir::deliver`]: when its result is
//! `Ok`, its file's data was made durable, it was renamed into `new/`, and `new/` fsynced. What
//! is shared is the waiting: the data of all files is flushed together ([`Fs::sync_batch`]:
//! one `syncfs(2)` per ext4 file system on [`crate::RealFs`]), then the files are renamed,
//! then each distinct `new/` directory is fsynced once for all the messages renamed into it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use crate::error::DeliverError;
use crate::fs::Fs;
use crate::maildir::{COPY_BUFFER, Delivered, Maildir, Staged, Subdir, stream_into};

/// A staged delivery waiting for the group fsync: its index in the results, its Maildir.
type Pending<'m, F> = (usize, &'m Maildir<F>, Staged<<F as Fs>::File>);

struct Item<'m, F: Fs> {
    maildir: &'m Maildir<F>,
    state: ItemState<F::File>,
}

enum ItemState<File> {
    Staged(Staged<File>),
    Failed(DeliverError),
}

/// A group of deliveries committed together: many messages, or one message to many Maildirs,
/// with the fsyncs grouped.
///
/// Every message of a batch gets the same promise as [`Maildir::deliver`]: when its result is
/// `Ok`, its file's data was made durable, it was renamed into `new/`, and `new/` fsynced. What
/// is shared is the waiting: the data of all files is flushed together by [`Fs::sync_batch`],
/// then the files are renamed, then each distinct `new/` is fsynced once for all the messages
/// renamed into it. A failure hits only the messages it concerns: an over-quota recipient, a
/// failed flush (on [`crate::RealFs`], a failed `syncfs` fails every message on that file
/// system, a failed fsync only its file), or the messages of one `new/` whose fsync failed.
///
/// On [`crate::RealFs`], the flush of two or more files on one ext4 file system is a
/// `syncfs(2)`, which also writes back other programs' dirty data on that file system: see
/// [`crate::RealFs`] for the trade-off and where it falls back to one fsync per file.
///
/// Add messages with [`Batch::add`] (one message, one Maildir) or [`Batch::add_to_many`] (one
/// message copied to several Maildirs while it is read once), then [`Batch::commit`]. Each
/// message is written to `tmp/` as it is added, so a batch holds one open file per message:
/// keep batches to tens or hundreds of messages. Dropping a batch without committing it removes
/// its temporary files; nothing was delivered.
///
/// All Maildirs of one batch must be on the same file system value (`F`): the fsyncs are issued
/// through the first one's.
pub struct Batch<'m, F: Fs> {
    items: Vec<Item<'m, F>>,
    buf: Vec<u8>,
}

impl<F: Fs> Default for Batch<'_, F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'m, F: Fs> Batch<'m, F> {
    /// An empty batch.
    pub fn new() -> Self {
        Self {
            items: Vec::new(),
            buf: vec![0; COPY_BUFFER],
        }
    }

    /// How many deliveries (message and Maildir pairs) the batch holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch holds no delivery.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Writes `body` to `maildir`'s `tmp/`; returns the index of its result in
    /// [`Batch::commit`]'s answer. A failure here is kept as that result.
    pub fn add<R: Read>(&mut self, maildir: &'m Maildir<F>, body: R) -> usize {
        let state = match maildir.stage(body, &mut self.buf) {
            Ok(staged) => ItemState::Staged(staged),
            Err(e) => ItemState::Failed(e),
        };
        self.items.push(Item { maildir, state });
        self.items.len() - 1
    }

    /// Writes `body`, read once, to the `tmp/` of every Maildir in `maildirs` (one message to
    /// many recipients, as LMTP does); returns the indexes of the results, in the order of
    /// `maildirs`.
    ///
    /// If reading `body` fails, every copy fails with [`DeliverError::ReadBody`].
    pub fn add_to_many<R: Read>(&mut self, maildirs: &[&'m Maildir<F>], body: R) -> Vec<usize> {
        let mut slots: Vec<Option<ItemState<F::File>>> =
            (0..maildirs.len()).map(|_| None).collect();
        let mut staged: Vec<(usize, Staged<F::File>)> = Vec::new();
        for (i, maildir) in maildirs.iter().enumerate() {
            match maildir.create_tmp() {
                Ok((file, tmp_path, tmp_name)) => staged.push((
                    i,
                    Staged {
                        file,
                        tmp_path,
                        tmp_name,
                        size: 0,
                    },
                )),
                Err(e) => slots[i] = Some(ItemState::Failed(e)),
            }
        }
        if let Some(owner) = staged.first().map(|(i, _)| maildirs[*i]) {
            let mut refs: Vec<&mut Staged<F::File>> = staged.iter_mut().map(|(_, s)| s).collect();
            if let Err(e) = stream_into(owner, &mut refs, body, &mut self.buf) {
                for (i, s) in staged.drain(..) {
                    let _ = maildirs[i].fs.remove_file(&s.tmp_path);
                    slots[i] = Some(ItemState::Failed(copy_error(&e, &s.tmp_path)));
                }
            }
        }
        for (i, s) in staged {
            slots[i] = Some(ItemState::Staged(s));
        }
        let mut indexes = Vec::with_capacity(maildirs.len());
        for (maildir, slot) in maildirs.iter().zip(slots) {
            if let Some(state) = slot {
                indexes.push(self.items.len());
                self.items.push(Item { maildir, state });
            }
        }
        indexes
    }

    /// Makes every staged message durable and visible; returns one result per delivery, in the
    /// order they were added.
    pub fn commit(mut self) -> Vec<Result<Delivered, DeliverError>> {
        let items = std::mem::take(&mut self.items);
        let Some(fs) = items.first().map(|i| &i.maildir.fs) else {
            return Vec::new();
        };
        let mut results: Vec<Option<Result<Delivered, DeliverError>>> =
            (0..items.len()).map(|_| None).collect();
        let mut staged: Vec<Pending<'m, F>> = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            match item.state {
                ItemState::Staged(s) => staged.push((i, item.maildir, s)),
                ItemState::Failed(e) => results[i] = Some(Err(e)),
            }
        }

        // 1. Make every file's data durable, together (one syncfs on RealFs). In the order
        // they were created, as `sync_batch` requires.
        let sync_results = {
            let mut files: Vec<&mut F::File> =
                staged.iter_mut().map(|(_, _, s)| &mut s.file).collect();
            fs.sync_batch(&mut files)
        };
        // 2. rename each synced file into its new/.
        let mut published: Vec<(usize, &'m Maildir<F>, Delivered)> = Vec::new();
        for ((i, maildir, s), synced) in staged.into_iter().zip(sync_results) {
            if let Err(source) = synced {
                let _ = maildir.fs.remove_file(&s.tmp_path);
                results[i] = Some(Err(DeliverError::SyncFile {
                    path: s.tmp_path,
                    source,
                }));
                continue;
            }
            match maildir.publish(s) {
                Ok(d) => published.push((i, maildir, d)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        // 3. fsync each distinct new/ once.
        let mut dirs: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
        for (n, (_, maildir, _)) in published.iter().enumerate() {
            dirs.entry(maildir.dir(Subdir::New)).or_default().push(n);
        }
        let mut dir_failed: Vec<Option<(PathBuf, std::io::Error)>> =
            (0..published.len()).map(|_| None).collect();
        for (dir, members) in &dirs {
            let Some(&first) = members.first() else {
                continue;
            };
            if let Err(source) = published[first].1.fs.sync_dir(dir) {
                for &n in members {
                    dir_failed[n] = Some((dir.clone(), copy_io(&source)));
                }
            }
        }
        let mut by_maildir: BTreeMap<PathBuf, (&'m Maildir<F>, Vec<Delivered>)> = BTreeMap::new();
        for ((i, maildir, d), failed) in published.into_iter().zip(dir_failed) {
            match failed {
                Some((path, source)) => {
                    maildir.unpublish(&d);
                    results[i] = Some(Err(DeliverError::SyncDir { path, source }));
                }
                None => {
                    by_maildir
                        .entry(maildir.path.clone())
                        .or_insert_with(|| (maildir, Vec::new()))
                        .1
                        .push(d.clone());
                    results[i] = Some(Ok(d));
                }
            }
        }
        for (maildir, delivered) in by_maildir.values() {
            let refs: Vec<&Delivered> = delivered.iter().collect();
            maildir.quota_after_delivery(&refs);
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(DeliverError::Write {
                        path: PathBuf::new(),
                        source: std::io::Error::other("delivery lost in batch bookkeeping"),
                    })
                })
            })
            .collect()
    }
}

impl<F: Fs> Drop for Batch<'_, F> {
    fn drop(&mut self) {
        for item in self.items.drain(..) {
            if let ItemState::Staged(s) = item.state {
                let _ = item.maildir.fs.remove_file(&s.tmp_path);
            }
        }
    }
}

fn copy_io(e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), e.to_string())
}

/// The same failure for another copy of a message read once.
fn copy_error(e: &DeliverError, tmp_path: &std::path::Path) -> DeliverError {
    match e {
        DeliverError::ReadBody { source, .. } => DeliverError::ReadBody {
            path: tmp_path.to_path_buf(),
            source: copy_io(source),
        },
        DeliverError::TooLarge { limit } => DeliverError::TooLarge { limit: *limit },
        DeliverError::Write { path, source } => DeliverError::Write {
            path: path.clone(),
            source: copy_io(source),
        },
        other => DeliverError::Write {
            path: tmp_path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}
