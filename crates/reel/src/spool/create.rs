//! Creating a store: never in a directory holding files that are not reel's, and never
//! leaving half a store behind. A creation that fails removes what it created (only the
//! names that were not there before, and only while no `reel.meta` exists, so a store
//! that exists is never touched) and says truthfully what, if anything, is left.

use crate::error::{Error, Result};
use reel_log::storage::Storage;
use reel_log::{LOCK_FILE, META_FILE};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

/// Every name reel itself puts in a store's directory; anything else is foreign.
pub const OWN_NAMES: &[&str] = &[
    "reel.meta",
    "reel.meta.tmp",
    "reel.lock",
    "reel.compact.lock",
    "reel.head",
    "segments",
    "readers",
    "tee",
    "views",
];

/// A creation in progress: what the directory held before it, to undo it on failure.
#[derive(Debug)]
pub(crate) struct Attempt<'a> {
    storage: &'a dyn Storage,
    dir: PathBuf,
    /// The directory and those of its parents that did not exist, innermost first.
    missing_dirs: Vec<PathBuf>,
    /// Paths in the directory and in its `segments/` before the attempt.
    before: BTreeSet<PathBuf>,
    /// Directories can be removed (the real disk; the storage seam has no way to).
    disk: bool,
}

impl<'a> Attempt<'a> {
    /// Checks that a store may be created in `dir` (missing, empty, or holding only
    /// reel's own names, as a creation that crashed leaves them) and notes what is there.
    pub(crate) fn start(storage: &'a dyn Storage, dir: &Path, disk: bool) -> Result<Self> {
        let missing_dirs: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && !storage.exists(a))
            .map(Path::to_path_buf)
            .collect();
        let mut before = BTreeSet::new();
        if missing_dirs.is_empty() {
            let mut names = list(storage, dir)?;
            names.sort();
            if let Some(foreign) = names
                .iter()
                .find(|n| !OWN_NAMES.iter().any(|own| **n == dir.join(own)))
            {
                return Err(Error::ForeignFiles {
                    dir: dir.to_path_buf(),
                    file: foreign
                        .file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                });
            }
            let segments = dir.join("segments");
            if storage.exists(&segments) {
                // A creation that crashed leaves at most an empty first segment; records
                // mean a store whose reel.meta was lost, which a new one would take over
                // with new settings (another kind, another capacity) and a new identity.
                for seg in reel_log::segment::list_segments(storage, dir)? {
                    let path = reel_log::segment::segment_path(dir, seg);
                    let len = storage
                        .open(&path, reel_log::storage::OpenMode::Read)
                        .and_then(|f| f.len())
                        .map_err(|e| reel_log::Error::io("read", &path, e))?;
                    if len > reel_log::segment::SEGMENT_HEADER_LEN {
                        return Err(Error::InvalidArgument(format!(
                            "{} holds records ({}) but no reel.meta: it is a store whose \
                             metadata was lost or damaged, not a new one; restore reel.meta \
                             from a copy, or move the directory away to start a new store",
                            dir.display(),
                            path.display()
                        )));
                    }
                }
                before.extend(list(storage, &segments)?);
            }
            before.extend(names);
        }
        Ok(Attempt {
            storage,
            dir: dir.to_path_buf(),
            missing_dirs,
            before,
            disk,
        })
    }

    /// Undoes the failed attempt as far as it safely can and returns the error to report.
    pub(crate) fn failed(self, error: Error) -> Error {
        let storage = self.storage;
        let dir = &self.dir;
        let mut store_written = false;
        if storage.exists(dir) {
            // Ordering: take the writer lock first, so that no other creation is half way
            // (creation holds it until `reel.meta` is written), then look for
            // `reel.meta`: if it exists, a store exists (perhaps another process's) and
            // nothing is removed. Otherwise remove the files, then `segments/`, then
            // unlock and remove the lock file last: what a creator finds at any point is
            // a leftover of reel's own names, which it completes. (One that locked the
            // file just before its removal holds a lock nobody else can see; that only
            // matters to a third creator racing both, on a disk that just failed.)
            let lock_path = dir.join(LOCK_FILE);
            let lock = storage.lock_file(&lock_path).ok();
            let locked = lock.as_ref().is_some_and(|l| l.lock().is_ok());
            store_written = storage.exists(&dir.join(META_FILE));
            if locked && !store_written {
                self.remove_created();
            }
            if let Some(l) = lock {
                let _ = l.unlock();
            }
            if !store_written && !self.before.contains(&lock_path) {
                let _ = storage.remove_file(&lock_path);
            }
        }
        if !store_written && self.disk {
            for d in &self.missing_dirs {
                let _ = std::fs::remove_dir(d);
            }
        }
        Error::CreateFailed {
            dir: dir.clone(),
            cause: describe(&error),
            source: Box::new(error),
            left: self.created(),
            store_written,
        }
    }

    /// Removes the files (and, on disk, the `segments/` directory) the attempt created,
    /// except the lock file, which the caller removes after unlocking it.
    fn remove_created(&self) {
        let storage = self.storage;
        let segments = self.dir.join("segments");
        for p in list(storage, &segments).unwrap_or_default() {
            if !self.before.contains(&p) {
                let _ = storage.remove_file(&p);
            }
        }
        for p in list(storage, &self.dir).unwrap_or_default() {
            if self.before.contains(&p) || p == self.dir.join(LOCK_FILE) {
                continue;
            }
            if p == segments {
                if self.disk {
                    let _ = std::fs::remove_dir(&p);
                }
            } else {
                let _ = storage.remove_file(&p);
            }
        }
    }

    /// What the attempt created that still exists, sorted.
    fn created(&self) -> Vec<PathBuf> {
        let storage = self.storage;
        let mut out: BTreeSet<PathBuf> = BTreeSet::new();
        for d in [self.dir.join("segments"), self.dir.clone()] {
            out.extend(
                list(storage, &d)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|p| !self.before.contains(p)),
            );
        }
        out.extend(
            self.missing_dirs
                .iter()
                .filter(|d| storage.exists(d))
                .cloned(),
        );
        out.into_iter().collect()
    }
}

/// Full paths of the entries of `dir`; none when it does not exist.
fn list(storage: &dyn Storage, dir: &Path) -> Result<Vec<PathBuf>> {
    match storage.list_dir(dir) {
        Ok(names) => Ok(names.into_iter().map(|n| dir.join(n)).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(reel_log::Error::io("list", dir, e).into()),
    }
}

/// The cause of a failed creation in words true of a store that does not exist: the
/// engine's disk-full message speaks of an append and an intact spool.
fn describe(error: &Error) -> String {
    match error.as_log() {
        Some(reel_log::Error::DiskFull { path }) => {
            format!("disk full while writing {}", path.display())
        }
        _ => error.to_string(),
    }
}
