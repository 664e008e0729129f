//! The file-system calls on the simulated disk: [`Storage`] and [`StorageFile`], each
//! call that can change the disk counted as one operation of the model.

use super::lock::SimLock;
use super::{DirOp, Inode, PendingOp, SimState, SimStorage, apply_pending, not_found, write_into};
use crate::storage::{FileLock, HeapRegion, OpenMode, SharedRegion, Storage, StorageFile};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl Storage for SimStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        let missing: Vec<PathBuf> = path
            .ancestors()
            .filter(|a| !st.dirs.iter().any(|d| d == a))
            .map(Path::to_path_buf)
            .collect();
        if !missing.is_empty() {
            st.begin_op(false, || format!("mkdir {}", path.display()));
            st.dirs.extend(missing);
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
                st.begin_op(false, || format!("truncate {} on open", path.display()));
                let inode = st.inodes.entry(ino).or_default();
                inode.data.clear();
                inode.pending.push(PendingOp::SetLen(0));
                ino
            }
            (Some(ino), _) => ino,
            (None, OpenMode::Read | OpenMode::ReadWrite) => return Err(not_found(path)),
            (None, _) => {
                st.begin_op(false, || format!("create {}", path.display()));
                let ino = st.next_ino;
                st.next_ino += 1;
                st.inodes.insert(ino, Inode::default());
                st.names.insert(path.to_path_buf(), ino);
                st.journal(
                    path,
                    DirOp::Create {
                        path: path.to_path_buf(),
                        ino,
                    },
                );
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
        st.begin_op(false, || {
            format!("rename {} -> {}", from.display(), to.display())
        });
        let ino = st.names.remove(from).ok_or_else(|| not_found(from))?;
        st.names.insert(to.to_path_buf(), ino);
        st.journal(
            to,
            DirOp::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                ino,
            },
        );
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        st.begin_op(false, || format!("unlink {}", path.display()));
        st.names.remove(path).ok_or_else(|| not_found(path))?;
        st.journal(
            path,
            DirOp::Unlink {
                path: path.to_path_buf(),
            },
        );
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        st.begin_op(true, || format!("sync_dir {}", path.display()));
        let st = &mut *st;
        if let Some(journal) = st.journals.remove(path) {
            for op in &journal {
                op.apply(&mut st.durable_names);
            }
        }
        self.shared.synced.notify_all();
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
        Ok(Box::new(SimLock::new(state)))
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

    fn inode<'a>(&self, st: &'a mut SimState) -> io::Result<&'a mut Inode> {
        st.inodes
            .get_mut(&self.ino)
            .ok_or_else(|| not_found(&self.path))
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
        self.with_inode(|st, _| {
            st.begin_op(false, || {
                format!(
                    "write {} bytes at {} to {}",
                    buf.len(),
                    offset,
                    self.path.display()
                )
            });
            if let Some(left) = st.space_writes_left.as_mut() {
                if *left == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::StorageFull,
                        "no space left on device",
                    ));
                }
                *left -= 1;
            }
            let inode = self.inode(st)?;
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
        self.with_inode(|st, _| {
            st.begin_op(false, || {
                format!("set_len {} of {}", len, self.path.display())
            });
            let inode = self.inode(st)?;
            inode.data.resize(len as usize, 0);
            inode.pending.push(PendingOp::SetLen(len));
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with_inode(|st, _| {
            st.begin_op(true, || format!("sync_data {}", self.path.display()));
            if st.fail_sync {
                return Err(io::Error::other("simulated fsync failure (EIO)"));
            }
            let inode = self.inode(st)?;
            let pending = std::mem::take(&mut inode.pending);
            apply_pending(&mut inode.durable, &pending);
            debug_assert_eq!(inode.durable, inode.data);
            self.storage.shared.synced.notify_all();
            Ok(())
        })
    }
}
