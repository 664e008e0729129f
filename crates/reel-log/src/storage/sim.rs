//! An in-memory [`Storage`] that models what a real disk keeps after a power cut.
//!
//! Every file has its current bytes (what running processes see, i.e. the page cache)
//! and its durable bytes (what `sync_data` has flushed). Every directory entry is
//! current or durable (after `sync_dir`). [`SimStorage::power_loss`] builds the disk as
//! a rebooted machine would find it: durable state plus a random subset of the pages
//! dirtied by unsynced writes (whole 4 KiB pages, as the page cache writes them back),
//! each possibly torn at a 512-byte sector boundary. Faults (full disk, failing fsync) can be injected, and
//! [`SimStorage::capture_at_sync`] snapshots the power-loss image at the n-th sync call,
//! so a test can cut the power at every sync point of a workload.

use super::{FileLock, HeapRegion, OpenMode, SharedRegion, Storage, StorageFile};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Simulated disk shared by every handle cloned from it (like processes on one machine).
#[derive(Debug, Clone)]
pub struct SimStorage {
    state: Arc<Mutex<SimState>>,
}

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Writes and truncations since the last sync, in order.
    pending: Vec<PendingOp>,
}

#[derive(Debug, Clone)]
enum PendingOp {
    Write {
        offset: u64,
        bytes: Vec<u8>,
    },
    /// A length change: the length after a power cut is the durable or the current one.
    SetLen,
}

#[derive(Debug, Default)]
struct SimState {
    inodes: HashMap<u64, Inode>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: Vec<PathBuf>,
    regions: HashMap<PathBuf, Arc<HeapRegion>>,
    locks: HashMap<PathBuf, Arc<SimLockState>>,
    boot: u64,
    next_ino: u64,
    /// Writes left before every write fails with `StorageFull` (None: never).
    space_writes_left: Option<u64>,
    /// When set, `sync_data` fails with EIO.
    fail_sync: bool,
    /// Counts every `sync_data` and `sync_dir` call.
    syncs: u64,
    capture: Option<Capture>,
    /// Total bytes returned by `read_at`, for tests that bound the work of an operation.
    bytes_read: u64,
}

#[derive(Debug)]
struct Capture {
    at_sync: u64,
    seed: u64,
    image: Option<SimStorage>,
}

impl Default for SimStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl SimStorage {
    /// An empty disk.
    pub fn new() -> Self {
        let state = SimState {
            boot: 1,
            next_ino: 1,
            ..Default::default()
        };
        SimStorage {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn st(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The disk as found after a power cut now: durable state plus, chosen by `seed`,
    /// some of the unsynced writes (each applied fully, torn, or not at all) and some
    /// of the unsynced directory changes. Shared memory and locks are gone; the boot
    /// identifier changes.
    pub fn power_loss(&self, seed: u64) -> SimStorage {
        self.st().power_loss_image(seed)
    }

    /// Makes every later write fail with "no space left on device" after `writes` more
    /// successful writes; `None` removes the limit.
    pub fn set_space_limit(&self, writes: Option<u64>) {
        self.st().space_writes_left = writes;
    }

    /// Makes every later `sync_data` fail (true) or succeed (false).
    pub fn set_fail_sync(&self, fail: bool) {
        self.st().fail_sync = fail;
    }

    /// Number of sync calls (`sync_data` and `sync_dir`) so far.
    pub fn sync_count(&self) -> u64 {
        self.st().syncs
    }

    /// Arranges for [`captured`](Self::captured) to hold the power-loss image taken just
    /// before the `n`-th sync call from now (counting from 1) takes effect.
    pub fn capture_at_sync(&self, n: u64, seed: u64) {
        let mut st = self.st();
        let at_sync = st.syncs + n;
        st.capture = Some(Capture {
            at_sync,
            seed,
            image: None,
        });
    }

    /// The image taken by [`capture_at_sync`](Self::capture_at_sync), once reached.
    pub fn captured(&self) -> Option<SimStorage> {
        self.st().capture.as_mut().and_then(|c| c.image.take())
    }

    /// Total bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.st().bytes_read
    }

    /// Overwrites bytes of a file in both its current and durable state (media damage).
    pub fn corrupt(&self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut st = self.st();
        let ino = *st.names.get(path).ok_or_else(|| not_found(path))?;
        let inode = st.inodes.get_mut(&ino).ok_or_else(|| not_found(path))?;
        for data in [&mut inode.data, &mut inode.durable] {
            write_into(data, offset, bytes);
        }
        Ok(())
    }

    /// Paths of all files, sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        self.st().names.keys().cloned().collect()
    }

    /// Current length of a file.
    pub fn file_len(&self, path: &Path) -> Option<u64> {
        let st = self.st();
        st.names
            .get(path)
            .and_then(|i| st.inodes.get(i))
            .map(|i| i.data.len() as u64)
    }
}

impl SimState {
    fn note_sync(&mut self) {
        self.syncs += 1;
        let syncs = self.syncs;
        let take = matches!(&self.capture, Some(c) if c.at_sync == syncs && c.image.is_none());
        if take {
            let seed = self.capture.as_ref().map_or(0, |c| c.seed);
            let image = self.power_loss_image(seed);
            if let Some(c) = self.capture.as_mut() {
                c.image = Some(image);
            }
        }
    }

    fn power_loss_image(&self, seed: u64) -> SimStorage {
        let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
        // Unsynced directory changes survive all together or not at all, per directory,
        // as with a journaling file system committing metadata in order.
        let mut names = BTreeMap::new();
        for dir in &self.dirs {
            let keep_current = rng.below(2) == 0;
            let source = if keep_current {
                &self.names
            } else {
                &self.durable_names
            };
            for (p, &ino) in source {
                if p.parent() == Some(dir.as_path()) {
                    names.insert(p.clone(), ino);
                }
            }
        }
        let mut inodes = HashMap::new();
        for &ino in names.values() {
            let Some(old) = self.inodes.get(&ino) else {
                continue;
            };
            let data = if old.pending.is_empty() {
                old.durable.clone()
            } else {
                persist_pages(old, &mut rng)
            };
            inodes.insert(
                ino,
                Inode {
                    durable: data.clone(),
                    data,
                    pending: Vec::new(),
                },
            );
        }
        let state = SimState {
            inodes,
            durable_names: names.clone(),
            names,
            dirs: self.dirs.clone(),
            boot: self.boot + 1,
            next_ino: self.next_ino,
            ..Default::default()
        };
        SimStorage {
            state: Arc::new(Mutex::new(state)),
        }
    }
}

/// The page cache writes back whole pages, so what reaches the disk of unsynced writes is
/// decided per dirty 4 KiB page (file-offset aligned): written with its current content,
/// not written, or torn after a prefix of its 512-byte sectors. The file's length is the
/// durable one or the current one; bytes past the durable length that no written page
/// covers read as zeros.
fn persist_pages(inode: &Inode, rng: &mut Rng) -> Vec<u8> {
    const PAGE: usize = 4096;
    const SECTOR: usize = 512;
    let len = if rng.below(2) == 0 {
        inode.durable.len()
    } else {
        inode.data.len()
    };
    let mut out = inode.durable.clone();
    out.resize(len, 0);
    let mut dirty = std::collections::BTreeSet::new();
    for op in &inode.pending {
        if let PendingOp::Write { offset, bytes } = op
            && !bytes.is_empty()
        {
            let first = *offset as usize / PAGE;
            let last = (*offset as usize + bytes.len() - 1) / PAGE;
            dirty.extend(first..=last);
        }
    }
    for page in dirty {
        let start = page * PAGE;
        let end = (start + PAGE).min(len).min(inode.data.len());
        if start >= end {
            continue;
        }
        let upto = match rng.below(3) {
            0 => start,
            1 => end,
            _ => (start + rng.below((PAGE / SECTOR) as u64 + 1) as usize * SECTOR).min(end),
        };
        out[start..upto].copy_from_slice(&inode.data[start..upto]);
    }
    out
}

fn write_into(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let end = offset as usize + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset as usize..end].copy_from_slice(bytes);
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

/// xorshift64*: deterministic choices for reproducible crash images.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        for anc in path.ancestors() {
            if !st.dirs.iter().any(|d| d == anc) {
                st.dirs.push(anc.to_path_buf());
            }
        }
        Ok(())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let mut st = self.st();
        let parent = path.parent().unwrap_or(Path::new(""));
        if !st.dirs.iter().any(|d| d == parent) {
            return Err(not_found(parent));
        }
        let existing = st.names.get(path).copied();
        let ino = match (existing, mode) {
            (Some(ino), OpenMode::CreateTruncate) => {
                let inode = st.inodes.entry(ino).or_default();
                inode.data.clear();
                inode.pending.push(PendingOp::SetLen);
                ino
            }
            (Some(ino), _) => ino,
            (None, OpenMode::Read | OpenMode::ReadWrite) => return Err(not_found(path)),
            (None, _) => {
                let ino = st.next_ino;
                st.next_ino += 1;
                st.inodes.insert(ino, Inode::default());
                st.names.insert(path.to_path_buf(), ino);
                ino
            }
        };
        Ok(Arc::new(SimFile {
            storage: self.clone(),
            ino,
            path: path.to_path_buf(),
        }))
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let st = self.st();
        if !st.dirs.iter().any(|d| d == path) {
            return Err(not_found(path));
        }
        let files = st.names.keys().filter(|p| p.parent() == Some(path));
        let dirs = st.dirs.iter().filter(|p| p.parent() == Some(path));
        Ok(files
            .chain(dirs)
            .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
            .collect())
    }

    fn exists(&self, path: &Path) -> bool {
        let st = self.st();
        st.names.contains_key(path) || st.dirs.iter().any(|d| d == path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.st();
        let ino = st.names.remove(from).ok_or_else(|| not_found(from))?;
        st.names.insert(to.to_path_buf(), ino);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        st.names.remove(path).ok_or_else(|| not_found(path))?;
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        st.note_sync();
        let st = &mut *st;
        st.durable_names.retain(|p, _| p.parent() != Some(path));
        for (p, &ino) in &st.names {
            if p.parent() == Some(path) {
                st.durable_names.insert(p.clone(), ino);
            }
        }
        Ok(())
    }

    fn map_shared(&self, path: &Path, len: usize, _writable: bool) -> io::Result<SharedRegion> {
        let mut st = self.st();
        let region = st
            .regions
            .entry(path.to_path_buf())
            .or_insert_with(|| Arc::new(HeapRegion::new(len)));
        Ok(SharedRegion::Heap(region.clone()))
    }

    fn lock_file(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let mut st = self.st();
        let state = st.locks.entry(path.to_path_buf()).or_default().clone();
        Ok(Box::new(SimLock {
            state,
            held: Mutex::new(false),
        }))
    }

    fn boot_id(&self) -> u64 {
        self.st().boot
    }

    fn file_id(&self, path: &Path) -> io::Result<u64> {
        self.st()
            .names
            .get(path)
            .copied()
            .ok_or_else(|| not_found(path))
    }
}

#[derive(Debug)]
struct SimFile {
    storage: SimStorage,
    ino: u64,
    path: PathBuf,
}

impl SimFile {
    fn with_inode<T>(&self, f: impl FnOnce(&mut SimState, u64) -> io::Result<T>) -> io::Result<T> {
        let mut st = self.storage.st();
        if !st.inodes.contains_key(&self.ino) {
            return Err(not_found(&self.path));
        }
        f(&mut st, self.ino)
    }
}

impl StorageFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.with_inode(|st, ino| {
            let data = &st.inodes[&ino].data;
            let start = (offset as usize).min(data.len());
            let n = buf.len().min(data.len() - start);
            buf[..n].copy_from_slice(&data[start..start + n]);
            st.bytes_read += n as u64;
            Ok(n)
        })
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.with_inode(|st, ino| {
            if let Some(left) = st.space_writes_left.as_mut() {
                if *left == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::StorageFull,
                        "no space left on device",
                    ));
                }
                *left -= 1;
            }
            let inode = st
                .inodes
                .get_mut(&ino)
                .ok_or_else(|| not_found(&self.path))?;
            write_into(&mut inode.data, offset, buf);
            inode.pending.push(PendingOp::Write {
                offset,
                bytes: buf.to_vec(),
            });
            Ok(())
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with_inode(|st, ino| Ok(st.inodes[&ino].data.len() as u64))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with_inode(|st, ino| {
            let inode = st
                .inodes
                .get_mut(&ino)
                .ok_or_else(|| not_found(&self.path))?;
            inode.data.resize(len as usize, 0);
            inode.pending.push(PendingOp::SetLen);
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with_inode(|st, ino| {
            st.note_sync();
            if st.fail_sync {
                return Err(io::Error::other("simulated fsync failure (EIO)"));
            }
            let inode = st
                .inodes
                .get_mut(&ino)
                .ok_or_else(|| not_found(&self.path))?;
            inode.durable = inode.data.clone();
            inode.pending.clear();
            Ok(())
        })
    }
}

#[derive(Debug, Default)]
struct SimLockState {
    held: Mutex<bool>,
    freed: Condvar,
}

#[derive(Debug)]
struct SimLock {
    state: Arc<SimLockState>,
    /// Whether this handle holds the lock (so that drop releases it, like close()).
    held: Mutex<bool>,
}

impl FileLock for SimLock {
    fn lock(&self) -> io::Result<()> {
        let mut mine = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if *mine {
            return Ok(());
        }
        let mut held = self.state.held.lock().unwrap_or_else(|e| e.into_inner());
        while *held {
            held = self
                .state
                .freed
                .wait(held)
                .unwrap_or_else(|e| e.into_inner());
        }
        *held = true;
        *mine = true;
        Ok(())
    }

    fn try_lock(&self) -> io::Result<bool> {
        let mut mine = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if *mine {
            return Ok(true);
        }
        let mut held = self.state.held.lock().unwrap_or_else(|e| e.into_inner());
        if *held {
            return Ok(false);
        }
        *held = true;
        *mine = true;
        Ok(true)
    }

    fn unlock(&self) -> io::Result<()> {
        let mut mine = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if *mine {
            *mine = false;
            *self.state.held.lock().unwrap_or_else(|e| e.into_inner()) = false;
            self.state.freed.notify_one();
        }
        Ok(())
    }
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}
