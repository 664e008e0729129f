//! An in-memory [`Storage`] that models what a real disk keeps after a power cut, at the
//! granularity of single file-system operations.
//!
//! # The model
//!
//! Every file (inode) has its *current* bytes (what running processes read: the page
//! cache) and its *durable* bytes (what `sync_data` flushed), plus the list of writes
//! and `set_len`s made since its last `sync_data`, in order. Every directory has its
//! *durable* entries and a *journal*: the entry changes (create, rename, unlink) made
//! since its last `sync_dir`, in order.
//!
//! Every call that can change the disk is one numbered *operation*: `write_all_at`,
//! `set_len`, `sync_data`, `rename`, `remove_file`, `sync_dir`, an `open` that creates a
//! file (a create) or truncates one (a `set_len(0)`), and a `create_dir_all` that creates
//! a directory. [`SimStorage::op_count`] says how many ran so far, and
//! [`SimStorage::capture_at_op`] takes the power-loss image just before the n-th
//! operation from now takes effect, so a test can cut the power between every two
//! operations of a workload (and [`SimStorage::capture_at_sync`] before the n-th sync).
//!
//! A power-loss image ([`SimStorage::power_loss`]) is the durable state plus, chosen by
//! the seed, "any subset of the unsynced changes, in a legal order":
//!
//! * **File data.** The page cache writes back whole 4 KiB pages (file-offset aligned),
//!   each with the content it had at some moment: every page dirtied since the file's
//!   last `sync_data` is, independently, not written back, or written back as it was
//!   after one of the writes that touched it, possibly torn after a prefix of its
//!   512-byte sectors. So a write may survive while an earlier one to another page does
//!   not, but a sector never mixes a later write with the absence of an earlier one
//!   (the page holds both). The length is the durable one or the one after any of the
//!   unsynced changes (size is metadata): past the durable length, what no written-back
//!   page covers reads as zeros.
//! * **Directory entries.** For each directory, a *prefix* of its journal, in the
//!   original order (a journaling file system commits metadata in order). Directories
//!   are independent of each other and of file data: a file's bytes may be durable while
//!   its name is not, and the other way round.
//! * `sync_data` makes the file's current bytes durable (not its name: that takes a
//!   `sync_dir` of its directory); `sync_dir` makes the directory's journal durable.
//!
//! A process-crash image ([`SimStorage::process_crash`],
//! [`SimStorage::capture_process_crash_at_op`]) keeps everything the page cache holds and
//! the shared memory of the head as it was at that instant, in the same boot; only the
//! locks of the dead process are released.
//!
//! Faults: a full disk after a number of writes ([`SimStorage::set_space_limit`]),
//! failing `sync_data` ([`SimStorage::set_fail_sync`]), media damage
//! ([`SimStorage::corrupt`]).
//!
//! # Not modeled
//!
//! * Directories themselves are durable as soon as they are created (only entries of
//!   files are journaled), and they are never removed.
//! * A rename between two directories is journaled in the destination directory only
//!   (both of its entry changes become durable together). The engine renames only
//!   within one directory.
//! * Directory journals are independent: an image may keep a later change of directory
//!   A without an earlier change of directory B, which a file system with one global
//!   journal would not do (so the model is, if anything, harsher).
//! * The head (`map_shared`) is process memory: it never reaches the disk, so it is
//!   lost at a power cut (a real kernel may write the mapped file back; the engine never
//!   trusts it after a reboot either way). A process crash between two stores to the
//!   head words is not modeled: captures happen only at storage operations.
//! * A failed `sync_data` leaves the writes pending (Linux may instead drop the dirty
//!   pages and report them clean); `sync_dir` never fails; metadata operations never
//!   run out of space; no bit rot or misdirected writes except through `corrupt`.

mod crash;
mod fs;
mod lock;
#[cfg(test)]
mod tests;

use super::HeapRegion;
use lock::SimLockState;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The unit a disk writes atomically; torn writes end on a multiple of it (file offset).
pub const SECTOR: u64 = 512;

/// Simulated disk shared by every handle cloned from it (like processes on one machine).
#[derive(Debug, Clone)]
pub struct SimStorage {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<SimState>,
    /// Notified after every sync, for tests that wait for a background flusher.
    synced: Condvar,
}

#[derive(Debug, Default, Clone)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Writes and truncations since the last sync, in order.
    pending: Vec<PendingOp>,
}

#[derive(Debug, Clone)]
enum PendingOp {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

/// A change of a directory entry, journaled until its directory is synced.
#[derive(Debug, Clone)]
enum DirOp {
    Create {
        path: PathBuf,
        ino: u64,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
        ino: u64,
    },
    Unlink {
        path: PathBuf,
    },
}

impl DirOp {
    fn apply(&self, names: &mut BTreeMap<PathBuf, u64>) {
        match self {
            DirOp::Create { path, ino } => {
                names.insert(path.clone(), *ino);
            }
            DirOp::Rename { from, to, ino } => {
                names.remove(from);
                names.insert(to.clone(), *ino);
            }
            DirOp::Unlink { path } => {
                names.remove(path);
            }
        }
    }
}

#[derive(Debug, Default)]
struct SimState {
    inodes: HashMap<u64, Inode>,
    /// The current directory entries (what running processes see).
    names: BTreeMap<PathBuf, u64>,
    /// The entries as of each directory's last sync.
    durable_names: BTreeMap<PathBuf, u64>,
    /// Per directory, the entry changes since its last sync, in order.
    journals: BTreeMap<PathBuf, Vec<DirOp>>,
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
    /// Counts every operation that can change the disk (see the module documentation).
    ops: u64,
    capture: Option<Capture>,
    /// Total bytes returned by `read_at`, for tests that bound the work of an operation.
    bytes_read: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// Before the n-th sync call (absolute count).
    Sync(u64),
    /// Before the n-th operation (absolute count).
    Op(u64),
}

#[derive(Debug, Clone, Copy)]
enum Crash {
    PowerLoss { seed: u64 },
    Process,
}

#[derive(Debug)]
struct Capture {
    trigger: Trigger,
    crash: Crash,
    image: Option<SimStorage>,
    /// The operation the image was taken in front of.
    op: Option<String>,
}

impl Default for SimStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl SimStorage {
    /// An empty disk.
    pub fn new() -> Self {
        Self::from_state(SimState {
            boot: 1,
            next_ino: 1,
            ..Default::default()
        })
    }

    fn from_state(state: SimState) -> Self {
        SimStorage {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                synced: Condvar::new(),
            }),
        }
    }

    fn st(&self) -> MutexGuard<'_, SimState> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The disk as found after a power cut now: durable state plus, chosen by `seed`,
    /// some of the unsynced changes (see the module documentation). Shared memory and
    /// locks are gone; the boot identifier changes.
    pub fn power_loss(&self, seed: u64) -> SimStorage {
        self.st().power_loss_image(seed)
    }

    /// The machine as found after the process using this disk was killed now: the page
    /// cache (every write, durable or not) and the shared memory survive, in the same
    /// boot; locks are released.
    pub fn process_crash(&self) -> SimStorage {
        self.st().process_crash_image()
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

    /// Number of operations that could change the disk so far (see the module
    /// documentation): the crash points of a workload are `1..=` the difference of two
    /// readings.
    pub fn op_count(&self) -> u64 {
        self.st().ops
    }

    /// Waits until [`sync_count`](Self::sync_count) reaches `count` or `timeout` passes;
    /// true when it did.
    pub fn wait_for_syncs(&self, count: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.st();
        while st.syncs < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .shared
                .synced
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Arranges for [`captured`](Self::captured) to hold the power-loss image taken just
    /// before the `n`-th sync call from now (counting from 1) takes effect.
    pub fn capture_at_sync(&self, n: u64, seed: u64) {
        let mut st = self.st();
        let at = st.syncs + n;
        st.arm(Trigger::Sync(at), Crash::PowerLoss { seed });
    }

    /// Arranges for [`captured`](Self::captured) to hold the power-loss image taken just
    /// before the `n`-th operation from now (counting from 1) takes effect.
    pub fn capture_at_op(&self, n: u64, seed: u64) {
        let mut st = self.st();
        let at = st.ops + n;
        st.arm(Trigger::Op(at), Crash::PowerLoss { seed });
    }

    /// Like [`capture_at_op`](Self::capture_at_op), for a process crash (kill -9) instead
    /// of a power cut: see [`process_crash`](Self::process_crash).
    pub fn capture_process_crash_at_op(&self, n: u64) {
        let mut st = self.st();
        let at = st.ops + n;
        st.arm(Trigger::Op(at), Crash::Process);
    }

    /// The image taken by a `capture_*` call, once its point was reached.
    pub fn captured(&self) -> Option<SimStorage> {
        self.st().capture.as_mut().and_then(|c| c.image.take())
    }

    /// What the captured image was taken in front of (e.g. `rename A -> B`), once reached.
    pub fn captured_op(&self) -> Option<String> {
        self.st().capture.as_ref().and_then(|c| c.op.clone())
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
        // The page cache holds the damage too, after every unsynced write: replaying
        // them over the durable bytes must still give the current bytes.
        if !inode.pending.is_empty() {
            inode.pending.push(PendingOp::Write {
                offset,
                bytes: bytes.to_vec(),
            });
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
    fn arm(&mut self, trigger: Trigger, crash: Crash) {
        self.capture = Some(Capture {
            trigger,
            crash,
            image: None,
            op: None,
        });
    }

    /// Counts an operation about to take effect (a sync when `sync`), taking the armed
    /// capture's image first when this is its point.
    fn begin_op(&mut self, sync: bool, describe: impl FnOnce() -> String) {
        self.ops += 1;
        if sync {
            self.syncs += 1;
        }
        let (ops, syncs) = (self.ops, self.syncs);
        let crash = match &self.capture {
            Some(c) if c.image.is_none() => match c.trigger {
                Trigger::Op(n) if n == ops => Some(c.crash),
                Trigger::Sync(n) if sync && n == syncs => Some(c.crash),
                _ => None,
            },
            _ => None,
        };
        let Some(crash) = crash else {
            return;
        };
        let image = match crash {
            Crash::PowerLoss { seed } => self.power_loss_image(seed),
            Crash::Process => self.process_crash_image(),
        };
        if let Some(c) = self.capture.as_mut() {
            c.image = Some(image);
            c.op = Some(format!("op {ops} ({})", describe()));
        }
    }

    fn journal(&mut self, dir_of: &Path, op: DirOp) {
        let dir = dir_of.parent().unwrap_or(Path::new("")).to_path_buf();
        self.journals.entry(dir).or_default().push(op);
    }
}

fn write_into(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let end = offset as usize + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset as usize..end].copy_from_slice(bytes);
}

fn apply_pending(data: &mut Vec<u8>, pending: &[PendingOp]) {
    for op in pending {
        match op {
            PendingOp::Write { offset, bytes } => write_into(data, *offset, bytes),
            PendingOp::SetLen(len) => data.resize(*len as usize, 0),
        }
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}
