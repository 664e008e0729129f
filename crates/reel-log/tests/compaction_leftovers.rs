//! Segments an interrupted compaction had already merged into an earlier one ("covered":
//! an earlier segment's seal names a later seq than their first) are not part of the log
//! (FORMAT.md §12, `layout.rs`): readers position themselves only in live segments,
//! `verify` ignores them, and the next writable open removes them. Covered segments are
//! looked for only while `reel.compact.lock` says a compaction was running.
mod common;
use common::*;
use reel_log::storage::sim::SimStorage;
use reel_log::storage::{OpenMode, Storage};
use reel_log::{COMPACT_LOCK_FILE, Config, Entry, Log, LogOptions, WhenFull};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn cfg() -> Config {
    Config {
        capacity: 1 << 20,
        when_full: WhenFull::Compact,
        segment_size: 16 << 10,
        max_record_size: 4096,
    }
}

fn read_file(sim: &SimStorage, p: &Path) -> Vec<u8> {
    let f = sim.open(p, OpenMode::Read).unwrap();
    let mut b = vec![0u8; f.len().unwrap() as usize];
    f.read_exact_at(&mut b, 0).unwrap();
    b
}

fn write_file(sim: &SimStorage, p: &Path, bytes: &[u8]) {
    let f = sim.open(p, OpenMode::CreateTruncate).unwrap();
    f.write_all_at(bytes, 0).unwrap();
    f.sync_data().unwrap();
}

/// (seq, key, value) of every record from `from`.
fn records(log: &Log, from: u64) -> Vec<(u64, String, Vec<u8>)> {
    let mut r = log.reader(from);
    let mut out = Vec::new();
    loop {
        let b = r.read_batch(1000).unwrap();
        if b.is_empty() {
            return out;
        }
        for rec in b.iter() {
            out.push((rec.seq, rec.key.unwrap().to_string(), rec.value.to_vec()));
        }
    }
}

/// A compacted log whose merge leftovers are back on disk, as if the compaction died
/// after renaming a merged segment and before removing the segments it replaced.
/// Returns the handle opened before the compaction, the leftovers' first seqs, and
/// what every reader must see from each leftover's first seq on.
#[allow(clippy::type_complexity)]
fn with_leftovers(sim: &SimStorage) -> (Log, Vec<u64>, BTreeMap<u64, Vec<(u64, String, Vec<u8>)>>) {
    let early = open_sim(sim, cfg());
    for i in 0..1500u64 {
        let key = format!("k{}", i % 30);
        let v = value_for(i, 150);
        early
            .append(&[Entry {
                key: Some(&key),
                value: &v,
                ..Default::default()
            }])
            .unwrap();
    }
    early.sync().unwrap();
    // The early handle has read everything (its layout cache is filled).
    assert_eq!(records(&early, 0).len(), 1500);
    let dir = Path::new(DIR);
    let before_segs: Vec<u64> = early
        .segments()
        .unwrap()
        .iter()
        .map(|s| s.first_seq)
        .collect();
    let before: BTreeMap<PathBuf, Vec<u8>> = early
        .segments()
        .unwrap()
        .iter()
        .flat_map(|s| [s.path.clone(), s.path.with_extension("idx")])
        .map(|p| {
            let b = read_file(sim, &p);
            (p, b)
        })
        .collect();
    // Another handle (another process) compacts.
    let compactor = reopen(sim).unwrap();
    let r = compactor.compact(Duration::from_secs(3600)).unwrap();
    assert!(r.merged >= 3, "{r:?}");
    let after: Vec<u64> = compactor
        .segments()
        .unwrap()
        .iter()
        .map(|s| s.first_seq)
        .collect();
    drop(compactor);
    let leftovers: Vec<u64> = before_segs
        .iter()
        .copied()
        .filter(|s| !after.contains(s))
        .collect();
    assert!(leftovers.len() >= 3, "{leftovers:?}");
    // What the compacted log holds from each leftover's first seq on.
    let fresh = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .read_only(true)
        .open(DIR)
        .unwrap();
    let expect = leftovers.iter().map(|&s| (s, records(&fresh, s))).collect();
    drop(fresh);
    for &s in &leftovers {
        let seg = reel_log::segment::segment_path(dir, s);
        write_file(sim, &seg, &before[&seg]);
        let idx = seg.with_extension("idx");
        write_file(sim, &idx, &before[&idx]);
    }
    sim.sync_dir(&reel_log::segment::segments_dir(dir)).unwrap();
    write_file(sim, &dir.join(COMPACT_LOCK_FILE), &[1]);
    (early, leftovers, expect)
}

#[test]
fn readers_and_verify_ignore_segments_a_merge_covered() {
    let sim = SimStorage::new();
    let (early, leftovers, expect) = with_leftovers(&sim);
    let ro = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .read_only(true)
        .open(DIR)
        .unwrap();
    for (&first, want) in &expect {
        // A reader sent into a merged range reads the merged file, whether its handle
        // existed before the merge (cached layout) or not.
        assert_eq!(&records(&early, first), want, "early handle, from {first}");
        assert_eq!(&records(&ro, first), want, "read-only handle, from {first}");
        assert_eq!(
            ro.floor_seq(first).unwrap(),
            early.floor_seq(first).unwrap(),
            "{first}"
        );
    }
    // A superseded record that only a leftover holds is never returned.
    let all = records(&ro, 0);
    assert!(all.len() < 1500);
    let v = ro.verify().unwrap();
    assert!(v.is_ok(), "{v:?}");
    // Ignored, not removed: a read-only handle changes nothing.
    for &s in &leftovers {
        let p = reel_log::segment::segment_path(Path::new(DIR), s);
        assert!(sim.file_len(&p).is_some(), "{s}");
    }
}

/// The machine as left by a compaction killed (kill -9) right before it removed the
/// first segment it had merged into an earlier one: the merged segment is renamed in,
/// the members it covers are still there, the head survives (same boot). Returns it with
/// every record the compacted log holds.
fn killed_after_a_merge() -> (SimStorage, Vec<(u64, String, Vec<u8>)>) {
    let build = |sim: &SimStorage| {
        let log = open_sim(sim, cfg());
        for i in 0..1500u64 {
            let key = format!("k{}", i % 30);
            let v = value_for(i, 150);
            log.append(&[Entry {
                key: Some(&key),
                value: &v,
                ..Default::default()
            }])
            .unwrap();
        }
        log.sync().unwrap();
        log
    };
    let probe = SimStorage::new();
    let log = build(&probe);
    let before = probe.op_count();
    log.compact(Duration::from_secs(3600)).unwrap();
    let ops = probe.op_count() - before;
    let expect = records(&log, 0);
    for k in 1..=ops {
        let sim = SimStorage::new();
        let log = build(&sim);
        sim.capture_process_crash_at_op(k);
        log.compact(Duration::from_secs(3600)).unwrap();
        let op = sim.captured_op().unwrap();
        if op.contains("unlink") && op.ends_with(".seg)") {
            return (sim.captured().unwrap(), expect);
        }
    }
    panic!("no unlink of a merged segment among {ops} operations");
}

#[test]
fn the_next_writable_open_removes_what_a_merge_covered() {
    let (image, expect) = killed_after_a_merge();
    let dir = Path::new(DIR);
    assert_eq!(read_file(&image, &dir.join(COMPACT_LOCK_FILE)), vec![1]);
    let listed = |s: &SimStorage| reel_log::segment::list_segments(s, dir).unwrap();
    let on_disk = listed(&image);
    // A read-only handle already reads the compacted log.
    let ro = LogOptions::new()
        .storage(Arc::new(image.clone()))
        .read_only(true)
        .open(DIR)
        .unwrap();
    assert_eq!(records(&ro, 0), expect);
    assert!(ro.verify().unwrap().is_ok());
    drop(ro);
    let log = reopen(&image).unwrap();
    let live = listed(&image);
    assert!(live.len() < on_disk.len(), "{on_disk:?} -> {live:?}");
    for s in on_disk.iter().filter(|s| !live.contains(s)) {
        let p = reel_log::segment::segment_path(dir, *s);
        assert_eq!(image.file_len(&p.with_extension("idx")), None, "{s}");
    }
    assert_eq!(read_file(&image, &dir.join(COMPACT_LOCK_FILE)), vec![0]);
    assert_eq!(records(&log, 0), expect);
    assert!(log.verify().unwrap().is_ok());
}

#[test]
fn used_bytes_are_right_after_the_leftovers_of_a_killed_compaction_are_removed() {
    // The kill came before the group's `used_bytes` update, so the head still counts the
    // old members (and the old size of the first one); removing the leftovers subtracts
    // only the covered members. The head stays trusted (same boot), so nothing
    // recomputes the sum until the next power cut: retention acts on a full log that is
    // not full.
    let (image, _) = killed_after_a_merge();
    let log = reopen(&image).unwrap();
    let sizes: u64 = log.segments().unwrap().iter().map(|s| s.bytes).sum();
    assert_eq!(
        log.used_bytes(),
        sizes,
        "used bytes after removing the leftovers"
    );
}

#[test]
fn without_a_running_compaction_no_segment_is_covered() {
    // The same files, but reel.compact.lock says no compaction ran: segments are what
    // the directory lists (the seals are not even read), and nothing is removed.
    let sim = SimStorage::new();
    let (early, leftovers, _) = with_leftovers(&sim);
    drop(early);
    let dir = Path::new(DIR);
    write_file(&sim, &dir.join(COMPACT_LOCK_FILE), &[0]);
    let log = reopen(&sim).unwrap();
    for &s in &leftovers {
        assert!(
            sim.file_len(&reel_log::segment::segment_path(dir, s))
                .is_some(),
            "{s} kept"
        );
    }
    // verify sees them as segments that do not continue the merged one.
    assert!(!log.verify().unwrap().is_ok());
}
