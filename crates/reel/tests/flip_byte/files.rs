//! The store's files on the real disk: snapshots restored in place (same inodes: a warm
//! head stays trusted) and the flip itself.

use super::*;

/// Every file of a store, by path relative to the store directory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub(crate) files: BTreeMap<PathBuf, Vec<u8>>,
    dirs: BTreeSet<PathBuf>,
}

fn walk(root: &Path, rel: &Path, snap: &mut Snapshot) {
    for e in std::fs::read_dir(root.join(rel)).unwrap() {
        let e = e.unwrap();
        let r = rel.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            snap.dirs.insert(r.clone());
            walk(root, &r, snap);
        } else {
            snap.files
                .insert(r.clone(), std::fs::read(root.join(&r)).unwrap());
        }
    }
}

pub(crate) fn snapshot(dir: &Path) -> Snapshot {
    let mut s = Snapshot::default();
    walk(dir, Path::new(""), &mut s);
    s
}

/// Makes `dir` hold exactly `snap`, writing into existing files (their inodes stay).
pub(crate) fn restore(dir: &Path, snap: &Snapshot) {
    let now = snapshot(dir);
    for f in now.files.keys() {
        if !snap.files.contains_key(f) {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
    }
    for d in now.dirs.iter().rev() {
        if !snap.dirs.contains(d) {
            let _ = std::fs::remove_dir_all(dir.join(d));
        }
    }
    for d in &snap.dirs {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for (f, bytes) in &snap.files {
        let p = dir.join(f);
        if now.files.get(f) == Some(bytes) {
            continue;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
            .unwrap();
        file.set_len(bytes.len() as u64).unwrap();
        file.write_all_at(bytes, 0).unwrap();
    }
}

pub(crate) fn flip(path: &Path, at: u64, mask: u8) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ mask], at).unwrap();
}
