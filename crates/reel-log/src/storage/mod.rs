//! The I/O seam: every byte the engine reads or writes goes through [`Storage`].
//!
//! Production uses [`DiskStorage`] (plain files, `pread`/`pwrite`, `fdatasync`, `flock`,
//! a shared memory map for the head). Tests plug in [`SimStorage`](sim::SimStorage), an
//! in-memory file system that can drop or tear unsynced writes (simulated power loss)
//! and inject errors such as a full disk. The seam is a trait object: one virtual call
//! per system call, which is nothing next to the system call itself.

mod disk;
#[cfg(any(test, feature = "sim"))]
pub mod sim;

pub use disk::DiskStorage;

use std::ffi::OsString;
use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Existing file, read only.
    Read,
    /// Existing file, read and write.
    ReadWrite,
    /// Create the file (truncating any existing one), read and write.
    CreateTruncate,
    /// Open read-write, creating an empty file if missing.
    CreateOrOpen,
}

/// A file system as the engine sees it.
pub trait Storage: Send + Sync + Debug + 'static {
    /// Creates a directory and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Opens a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>>;
    /// Names of the entries of a directory (files only matter to the engine).
    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;
    /// True when the path exists.
    fn exists(&self, path: &Path) -> bool;
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Maps `len` bytes of a file as memory shared by every process that maps it.
    fn map_shared(&self, path: &Path, len: usize, writable: bool) -> io::Result<SharedRegion>;
    /// Maps an immutable file read-only, for reads without a system call per access;
    /// `None` where the storage cannot (simulation): the caller reads with `read_at`.
    /// The file must never be truncated or rewritten while mapped (it may be unlinked).
    fn map_immutable(&self, path: &Path) -> io::Result<Option<FileMap>> {
        let _ = path;
        Ok(None)
    }
    /// The path a store is kept under: absolute on disk, so that a process that changes
    /// its working directory goes on using the store it opened (a relative path would
    /// follow it into another directory, and roll segments there). An empty path is an
    /// error.
    fn absolute(&self, path: &Path) -> io::Result<std::path::PathBuf> {
        Ok(path.to_path_buf())
    }
    /// Opens an advisory whole-file lock on `path` (creating the file when missing).
    fn lock_file(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;
    /// Identifies the current boot of the machine: memory shared through
    /// [`map_shared`](Storage::map_shared) is only trusted within one boot.
    fn boot_id(&self) -> u64;
    /// Identifies a file (device and inode), so that a copied file is told from its original.
    fn file_id(&self, path: &Path) -> io::Result<u64>;
}

/// An open file.
#[allow(clippy::len_without_is_empty)] // a file length, not a collection
pub trait StorageFile: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes written data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;

    /// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads as many bytes as are available at `offset`, up to `buf.len()`.
    fn read_full_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// An exclusive advisory lock, held until [`unlock`](FileLock::unlock) or drop.
///
/// Like `flock`, the lock belongs to the handle: two handles in one process exclude
/// each other, one handle shared by threads does not, so callers add their own mutex.
pub trait FileLock: Send + Sync + Debug {
    /// Blocks until the lock is held.
    fn lock(&self) -> io::Result<()>;
    /// Takes the lock if free; returns false when another holder has it.
    fn try_lock(&self) -> io::Result<bool>;
    /// Releases the lock.
    fn unlock(&self) -> io::Result<()>;
}

/// A read-only mapping of an immutable file (see [`Storage::map_immutable`]).
#[derive(Debug)]
pub struct FileMap(pub(crate) memmap2::Mmap);

impl std::ops::Deref for FileMap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Memory shared between processes (a file mapping) or, in simulation, between handles.
#[derive(Debug)]
pub enum SharedRegion {
    /// A writable `MAP_SHARED` file mapping.
    Mapped(memmap2::MmapMut),
    /// A read-only `MAP_SHARED` file mapping.
    MappedReadOnly(memmap2::Mmap),
    /// Heap memory shared by handles of one process.
    Heap(Arc<HeapRegion>),
}

/// Word-aligned heap memory standing in for a shared mapping.
#[derive(Debug)]
pub struct HeapRegion {
    words: Box<[AtomicU64]>,
}

impl HeapRegion {
    /// Zeroed region of at least `len` bytes.
    pub fn new(len: usize) -> Self {
        let words = (0..len.div_ceil(8)).map(|_| AtomicU64::new(0)).collect();
        HeapRegion { words }
    }
}

impl SharedRegion {
    /// Start of the region. Page-aligned for mappings, 8-byte aligned for heap regions.
    pub fn as_ptr(&self) -> *const u8 {
        match self {
            SharedRegion::Mapped(m) => m.as_ptr(),
            SharedRegion::MappedReadOnly(m) => m.as_ptr(),
            SharedRegion::Heap(h) => h.words.as_ptr().cast(),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        match self {
            SharedRegion::Mapped(m) => m.len(),
            SharedRegion::MappedReadOnly(m) => m.len(),
            SharedRegion::Heap(h) => h.words.len() * 8,
        }
    }

    /// True for a zero-length region.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// False for read-only mappings.
    pub fn is_writable(&self) -> bool {
        !matches!(self, SharedRegion::MappedReadOnly(_))
    }
}
