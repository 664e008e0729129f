//! [`Storage`] on the real file system.

use super::{FileLock, FileMap, OpenMode, SharedRegion, Storage, StorageFile};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The real file system: `pread`/`pwrite`, `fdatasync`, `flock` and `mmap`.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiskStorage;

impl Storage for DiskStorage {
    fn absolute(&self, path: &Path) -> io::Result<std::path::PathBuf> {
        std::path::absolute(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let mut o = OpenOptions::new();
        match mode {
            OpenMode::Read => o.read(true),
            OpenMode::ReadWrite => o.read(true).write(true),
            OpenMode::CreateTruncate => o.read(true).write(true).create(true).truncate(true),
            OpenMode::CreateOrOpen => o.read(true).write(true).create(true).truncate(false),
        };
        Ok(Arc::new(DiskFile(o.open(path)?)))
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn map_immutable(&self, path: &Path) -> io::Result<Option<FileMap>> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(None);
        }
        // SAFETY: callers map only files that are written once, synced and never modified
        // or truncated afterwards (view tables); unlinking keeps the mapped inode alive.
        // A file truncated behind reel's back would raise SIGBUS, as with any mapping.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        // Lookups touch scattered pages: without this the kernel maps 64 KiB around each
        // fault, and a process that did 10,000 lookups in a large table counts hundreds
        // of MB of (shared, clean) page cache as its own memory.
        map.advise(memmap2::Advice::Random)?;
        Ok(Some(FileMap(map)))
    }

    fn map_shared(&self, path: &Path, len: usize, writable: bool) -> io::Result<SharedRegion> {
        if writable {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            if file.metadata()?.len() < len as u64 {
                file.set_len(len as u64)?;
            }
            // A page of the mapping that has no block yet gets one at the first store
            // through it; on a full disk that is SIGBUS, not an error. So every block is
            // allocated here, where a full disk is an error that can be reported.
            reserve_blocks(&file, len as u64)?;
            // SAFETY: the head file is only ever accessed through atomics (see head.rs), so
            // concurrent modification by other processes is not a data race; its length is
            // never reduced by reel, and the mapping keeps its own reference to the inode.
            let map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(&file)? };
            Ok(SharedRegion::Mapped(map))
        } else {
            let file = File::open(path)?;
            if file.metadata()?.len() < len as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "head file too short",
                ));
            }
            // SAFETY: as above; a read-only mapping is only loaded from.
            let map = unsafe { memmap2::MmapOptions::new().len(len).map(&file)? };
            Ok(SharedRegion::MappedReadOnly(map))
        }
    }

    fn lock_file(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
        {
            Ok(f) => f,
            // A read-only spool can still be locked through a read-only descriptor.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => File::open(path)?,
            Err(e) => return Err(e),
        };
        Ok(Box::new(DiskLock {
            file,
            checked_at: AtomicU64::new(0),
        }))
    }

    fn boot_id(&self) -> u64 {
        static BOOT: OnceLock<u64> = OnceLock::new();
        *BOOT.get_or_init(|| {
            // Changes at every boot: memory-mapped state from an earlier boot is stale.
            let text = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
            fnv1a(text.trim().as_bytes()) | 1
        })
    }

    fn file_id(&self, path: &Path) -> io::Result<u64> {
        let m = fs::metadata(path)?;
        Ok(m.dev().rotate_left(32) ^ m.ino())
    }
}

/// 64-bit FNV-1a: a tiny stable hash for identifiers (not for integrity).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[derive(Debug)]
struct DiskFile(File);

impl StorageFile for DiskFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// How often a lock taken again checks that its file is still linked.
const RELINK_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Debug)]
struct DiskLock {
    file: File,
    /// When the file was last found linked (nanoseconds since [`process_start`]; 0:
    /// never checked).
    checked_at: AtomicU64,
}

/// A fixed instant early in the process, for cheap elapsed times.
fn process_start() -> std::time::Instant {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    *START.get_or_init(std::time::Instant::now)
}

impl DiskLock {
    /// Fails once the lock file was unlinked: the store's directory was deleted or
    /// replaced while this handle had it open, and whatever it wrote would go to files
    /// nobody can open again (acknowledged, then lost). Checked at most every
    /// [`RELINK_CHECK`] (one `fstat`), so at most that long of writes goes astray.
    fn check_linked(&self) -> io::Result<()> {
        let now = (process_start().elapsed().as_nanos() as u64).max(1);
        let last = self.checked_at.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < RELINK_CHECK.as_nanos() as u64 {
            return Ok(());
        }
        if self.file.metadata()?.nlink() == 0 {
            let _ = self.file.unlock();
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the store's directory was deleted or replaced while this process had it \
                 open (its lock file is gone); nothing more is written: open the store again",
            ));
        }
        self.checked_at.store(now, Ordering::Relaxed);
        Ok(())
    }
}

impl FileLock for DiskLock {
    fn lock(&self) -> io::Result<()> {
        // A signal delivered to a process that handles it (Python installs handlers)
        // interrupts the wait: that is not a failure of the write waiting for the lock.
        loop {
            match self.file.lock() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(()) => return self.check_linked(),
            }
        }
    }

    fn try_lock(&self) -> io::Result<bool> {
        match self.file.try_lock() {
            Ok(()) => self.check_linked().map(|()| true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn unlock(&self) -> io::Result<()> {
        self.file.unlock()
    }
}

/// Allocates disk blocks for the first `len` bytes of `file`, its content unchanged.
/// Where the file system cannot (`fallocate` unsupported, or not Linux) the file stays
/// as it is: writing zeros instead could wipe a head another process just wrote.
fn reserve_blocks(file: &File, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {}
        Err(e) => return Err(e.into()),
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, len);
    Ok(())
}
