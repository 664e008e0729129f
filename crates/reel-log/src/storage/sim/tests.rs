//! Tests of the parent module.

use super::*;
use crate::storage::{OpenMode, SharedRegion, Storage, StorageFile};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

fn file(sim: &SimStorage, path: &str) -> Arc<dyn StorageFile> {
    sim.open(Path::new(path), OpenMode::CreateOrOpen).unwrap()
}

fn read(sim: &SimStorage, path: &str) -> Option<Vec<u8>> {
    let f = sim.open(Path::new(path), OpenMode::Read).ok()?;
    let mut b = vec![0u8; f.len().unwrap() as usize];
    f.read_exact_at(&mut b, 0).unwrap();
    Some(b)
}

fn disk() -> SimStorage {
    let sim = SimStorage::new();
    sim.create_dir_all(Path::new("/d")).unwrap();
    sim
}

#[test]
fn torn_writes_end_on_sector_boundaries_of_the_file() {
    let sim = disk();
    let f = file(&sim, "/d/f");
    sim.sync_dir(Path::new("/d")).unwrap();
    // A write from 100 to 1700 crosses the boundaries 512, 1024 and 1536.
    f.write_all_at(&[7u8; 1600], 100).unwrap();
    let mut seen = BTreeSet::new();
    for seed in 0..400 {
        let b = read(&sim.power_loss(seed), "/d/f").unwrap();
        // Where the kept part of the write ends (100: nothing of it was kept).
        let written_to = 100
            + b.get(100..)
                .map_or(0, |t| t.iter().take_while(|&&x| x == 7).count());
        assert!(
            [100, 512, 1024, 1536, 1700].contains(&written_to),
            "seed {seed}: write kept up to {written_to}"
        );
        assert!(
            b.iter()
                .enumerate()
                .all(|(i, &x)| x == 0 || (100..written_to).contains(&i))
        );
        assert!(b.is_empty() || b.len() >= written_to);
        seen.insert(written_to);
    }
    assert_eq!(
        seen.len(),
        5,
        "every tear point and both extremes: {seen:?}"
    );
}

#[test]
fn a_write_inside_one_sector_never_tears() {
    let sim = disk();
    let f = file(&sim, "/d/f");
    f.write_all_at(&[1u8; 512], 0).unwrap();
    f.sync_data().unwrap();
    sim.sync_dir(Path::new("/d")).unwrap();
    f.write_all_at(&[2u8; 64], 64).unwrap();
    for seed in 0..100 {
        let b = read(&sim.power_loss(seed), "/d/f").unwrap();
        assert!(b[64..128].iter().all(|&x| x == 1) || b[64..128].iter().all(|&x| x == 2));
    }
}

#[test]
fn directory_changes_survive_as_a_prefix_in_order() {
    let sim = disk();
    let d = Path::new("/d");
    for name in ["a", "b"] {
        let f = file(&sim, &format!("/d/{name}"));
        f.write_all_at(name.as_bytes(), 0).unwrap();
        f.sync_data().unwrap();
    }
    sim.rename(Path::new("/d/a"), Path::new("/d/c")).unwrap();
    sim.remove_file(Path::new("/d/b")).unwrap();
    // Journal: create a, create b, rename a -> c, unlink b.
    let states = [vec![], vec!["a"], vec!["a", "b"], vec!["b", "c"], vec!["c"]];
    let mut seen = BTreeSet::new();
    for seed in 0..200 {
        let image = sim.power_loss(seed);
        let mut names: Vec<String> = image
            .list_dir(d)
            .unwrap()
            .into_iter()
            .map(|n| n.into_string().unwrap())
            .collect();
        names.sort();
        let at = states
            .iter()
            .position(|s| *s == names)
            .unwrap_or_else(|| panic!("seed {seed}: {names:?} is not a prefix"));
        seen.insert(at);
        if names.contains(&"c".to_string()) {
            assert_eq!(read(&image, "/d/c").unwrap(), b"a");
        }
    }
    assert_eq!(seen.len(), states.len());
    sim.sync_dir(d).unwrap();
    let image = sim.power_loss(1);
    assert_eq!(image.files(), vec![PathBuf::from("/d/c")]);
}

#[test]
fn capture_at_op_takes_the_image_before_the_op() {
    let sim = disk();
    let f = file(&sim, "/d/f");
    f.write_all_at(b"x", 0).unwrap();
    f.sync_data().unwrap();
    let before = sim.op_count();
    sim.capture_at_op(2, 0);
    sim.sync_dir(Path::new("/d")).unwrap(); // op 1
    sim.remove_file(Path::new("/d/f")).unwrap(); // op 2: captured before it
    sim.sync_dir(Path::new("/d")).unwrap();
    assert_eq!(sim.op_count() - before, 3);
    assert_eq!(
        sim.captured_op().unwrap(),
        format!("op {} (unlink /d/f)", before + 2)
    );
    let image = sim.captured().unwrap();
    assert_eq!(read(&image, "/d/f").unwrap(), b"x");
    assert!(sim.power_loss(0).files().is_empty());
}

#[test]
fn a_process_crash_keeps_the_page_cache_and_the_shared_memory() {
    let sim = disk();
    let f = file(&sim, "/d/f");
    f.write_all_at(b"unsynced", 0).unwrap();
    let SharedRegion::Heap(h) = sim.map_shared(Path::new("/d/h"), 64, true).unwrap() else {
        unreachable!()
    };
    h.words[1].store(42, Ordering::SeqCst);
    let image = sim.process_crash();
    h.words[1].store(43, Ordering::SeqCst);
    assert_eq!(read(&image, "/d/f").unwrap(), b"unsynced");
    assert_eq!(image.boot_id(), sim.boot_id());
    let SharedRegion::Heap(h2) = image.map_shared(Path::new("/d/h"), 64, true).unwrap() else {
        unreachable!()
    };
    assert_eq!(h2.words[1].load(Ordering::SeqCst), 42);
    // Its unsynced state is still unsynced: a later power cut can lose it.
    assert!((0..50).any(|s| image.power_loss(s).files().is_empty()));
}
