//! Positional reads and writes on a locked file.
//!
//! The locked mailbox is read and written through `pread`/`pwrite` on the one descriptor that
//! holds the lock: no second descriptor is opened (closing it would drop the fcntl lock) and
//! no shared file offset is relied on.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

/// Reads `len` bytes of `file` from `offset`.
#[derive(Debug)]
pub(crate) struct ReadAt<'f> {
    file: &'f File,
    offset: u64,
    remaining: u64,
}

impl<'f> ReadAt<'f> {
    pub(crate) fn new(file: &'f File, offset: u64, len: u64) -> Self {
        Self {
            file,
            offset,
            remaining: len,
        }
    }
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        self.offset += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Writes to `file` from `offset` on.
#[derive(Debug)]
pub(crate) struct WriteAt<'f> {
    file: &'f File,
    offset: u64,
}

impl<'f> WriteAt<'f> {
    pub(crate) fn new(file: &'f File, offset: u64) -> Self {
        Self { file, offset }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }
}

impl Write for WriteAt<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
