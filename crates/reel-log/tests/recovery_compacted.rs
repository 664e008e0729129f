//! Recovery of a tail that compaction rewrote (FORMAT.md §2.3, §10, §12): a segment
//! flagged `FLAG_COMPACTED` may have gaps in its seqs, so recovery accepts any increasing
//! seq in it (except at an index entry, which must name exactly the frame it points at),
//! rebuilds its index every 4 KiB over the kept frames, and never reports the gaps as
//! damage. A compacted segment becomes the tail when the tail after it never reached the
//! disk: recovery removes that tail and cuts the compacted segment's seal.
mod common;
use common::*;
use reel_log::frame::{self, Frame};
use reel_log::index::{self, IndexEntry};
use reel_log::segment::{self, FLAG_COMPACTED};
use reel_log::storage::sim::SimStorage;
use reel_log::storage::{OpenMode, Storage};
use reel_log::{Config, CutTail, Entry, Log, RecoveryReport, WhenFull};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

fn cfg() -> Config {
    Config {
        capacity: 1 << 20,
        when_full: WhenFull::Compact,
        segment_size: 16 << 10,
        max_record_size: 4096,
    }
}

fn put(log: &Log, key: &str, v: &[u8]) -> u64 {
    log.append(&[Entry {
        key: Some(key),
        value: v,
        encoding: 1,
        ..Default::default()
    }])
    .unwrap()
    .start
}

fn file_bytes(storage: &SimStorage, path: &Path) -> Vec<u8> {
    let f = storage.open(path, OpenMode::Read).unwrap();
    let mut buf = vec![0u8; f.len().unwrap() as usize];
    f.read_exact_at(&mut buf, 0).unwrap();
    buf
}

/// (offset, seq) of every record frame of a segment file, and the offset of its seal.
fn frames_of(bytes: &[u8]) -> (Vec<(u64, u64)>, Option<u64>) {
    let mut at = 32usize;
    let mut out = Vec::new();
    while at < bytes.len() {
        match frame::decode(&bytes[at..], 1 << 20).unwrap() {
            (Frame::Record(r), len) => {
                out.push((at as u64, r.seq));
                at += len;
            }
            (Frame::Seal(_), _) => return (out, Some(at as u64)),
        }
    }
    (out, None)
}

/// A synced compact log whose segments compaction rewrote, with gaps in their seqs:
/// 120 keys written once, then 10 keys overwritten many times. Returns the log and the
/// latest (seq, value) of every key.
fn compacted_log(sim: &SimStorage) -> (Log, BTreeMap<String, (u64, Vec<u8>)>) {
    let log = open_sim(sim, cfg());
    let mut latest = BTreeMap::new();
    let mut write = |key: String, i: u64| {
        let v = value_for(i, 180);
        let seq = put(&log, &key, &v);
        latest.insert(key, (seq, v));
    };
    for i in 0..120u64 {
        write(format!("once{i}"), i);
        write(format!("hot{}", i % 10), 1000 + i);
    }
    for i in 0..60u64 {
        write(format!("hot{}", i % 10), 2000 + i);
    }
    log.sync().unwrap();
    let r = log.compact(Duration::from_secs(3600)).unwrap();
    assert!(r.dropped > 100 && r.rewritten >= 3, "{r:?}");
    (log, latest)
}

#[test]
fn a_compacted_segment_left_as_the_tail_keeps_its_gaps_and_loses_only_its_seal() {
    let sim = SimStorage::new();
    let (log, _) = compacted_log(&sim);
    let segs = log.segments().unwrap();
    drop(log);
    let (last_sealed, tail) = (&segs[segs.len() - 2], &segs[segs.len() - 1]);
    let bytes = file_bytes(&sim, &last_sealed.path);
    let h = segment::decode_header(&bytes, &last_sealed.path).unwrap();
    assert_eq!(
        h.flags, FLAG_COMPACTED,
        "the segment before the tail is compacted"
    );
    let (frames, seal_at) = frames_of(&bytes);
    let seal_at = seal_at.unwrap();
    let gaps = frames.windows(2).filter(|w| w[1].1 != w[0].1 + 1).count();
    assert!(gaps > 5, "gaps in the compacted segment: {frames:?}");
    let compaction_index = file_bytes(&sim, &last_sealed.path.with_extension("idx"));

    // The tail's header never reached the disk: all zeros.
    sim.corrupt(&tail.path, 0, &vec![0u8; tail.bytes as usize])
        .unwrap();
    let image = sim.power_loss(3);
    let log = reopen(&image).unwrap();
    let report = log.recovery_report().unwrap();
    // Index entries over the kept frames, every 4 KiB, as compaction wrote them.
    let mut entries: Vec<u64> = Vec::new();
    for &(at, _) in &frames {
        if entries
            .last()
            .is_none_or(|&l| at >= l + index::INDEX_INTERVAL)
        {
            entries.push(at);
        }
    }
    assert_eq!(
        report,
        RecoveryReport {
            cut: Some(CutTail {
                path: last_sealed.path.clone(),
                offset: seal_at,
                bytes: frame::SEAL_LEN as u64,
                reason: "seal of a segment whose successor was never created".into(),
                whole_frame: false,
            }),
            removed_segments: vec![tail.path.clone()],
            rebuilt_index_entries: entries.len() as u64,
            damage: vec![],
        }
    );
    assert_eq!(
        file_bytes(&image, &last_sealed.path.with_extension("idx")),
        compaction_index,
        "the rebuilt index is the one compaction wrote"
    );
    let last = frames.last().unwrap().1;
    assert_eq!(log.next_seq(), last + 1);
    assert_eq!(log.used_bytes(), image_used(&log));
    assert!(log.verify().unwrap().is_ok());

    // Appends continue in the compacted tail; a second writer's check of that tail, from
    // its last index entry under a trusted head, finds nothing to repair.
    let seq = put(&log, "after", b"v");
    assert_eq!(seq, last + 1);
    drop(log);
    let log = reopen(&image).unwrap();
    assert_eq!(log.recovery_report(), None);
    assert_eq!(put(&log, "after2", b"v"), last + 2);
    assert_eq!(
        log.recovery_report(),
        None,
        "nothing repaired: {:?}",
        log.recovery_report()
    );
    assert!(log.verify().unwrap().is_ok());
}

fn image_used(log: &Log) -> u64 {
    log.segments().unwrap().iter().map(|s| s.bytes).sum()
}

#[test]
fn a_compacted_tail_checked_from_an_index_entry_accepts_gaps_and_cuts_a_torn_frame() {
    let sim = SimStorage::new();
    let (log, _) = compacted_log(&sim);
    let segs = log.segments().unwrap();
    drop(log);
    let (last_sealed, tail) = (&segs[segs.len() - 2], &segs[segs.len() - 1]);
    sim.corrupt(&tail.path, 0, &vec![0u8; tail.bytes as usize])
        .unwrap();
    let image = sim.power_loss(9);
    let log = reopen(&image).unwrap();
    let next = log.next_seq();
    drop(log);
    let (frames, _) = frames_of(&file_bytes(&image, &last_sealed.path));
    let entries = {
        let p = last_sealed.path.with_extension("idx");
        let f = image.open(&p, OpenMode::Read).unwrap();
        index::load(&*f, last_sealed.first_seq, &p).unwrap()
    };
    assert!(entries.len() >= 2, "{entries:?}");
    let last_entry = *entries.last().unwrap();
    // Frames after the last entry have gaps in their seqs.
    let after: Vec<u64> = frames
        .iter()
        .filter(|f| f.0 >= last_entry.offset)
        .map(|f| f.1)
        .collect();
    assert!(
        after.windows(2).any(|w| w[1] != w[0] + 1),
        "gaps after the last index entry: {after:?}"
    );
    // A writer died after writing the first bytes of a frame.
    let end = image.file_len(&last_sealed.path).unwrap();
    let mut torn = Vec::new();
    frame::encode_record(
        &mut torn,
        next,
        1,
        &Entry {
            value: &[3; 100],
            ..Default::default()
        },
    );
    image.corrupt(&last_sealed.path, end, &torn[..50]).unwrap();
    let log = reopen(&image).unwrap();
    assert_eq!(log.recovery_report(), None, "a trusted head");
    assert_eq!(put(&log, "k", b"v"), next);
    let report = log.recovery_report().unwrap();
    assert_eq!(
        report,
        RecoveryReport {
            cut: Some(CutTail {
                path: last_sealed.path.clone(),
                offset: end,
                bytes: 50,
                reason: "file ends inside a frame (50 of 128 bytes present)".into(),
                whole_frame: false,
            }),
            removed_segments: vec![],
            rebuilt_index_entries: 0,
            damage: vec![],
        }
    );
    assert!(log.verify().unwrap().is_ok());
}

#[test]
fn an_index_entry_naming_another_seq_in_a_compacted_tail_is_not_trusted() {
    // In a compacted tail any increasing seq may follow, but the frame an index entry
    // points at must carry exactly the entry's seq.
    let sim = SimStorage::new();
    let (log, _) = compacted_log(&sim);
    let segs = log.segments().unwrap();
    drop(log);
    let (last_sealed, tail) = (&segs[segs.len() - 2], &segs[segs.len() - 1]);
    sim.corrupt(&tail.path, 0, &vec![0u8; tail.bytes as usize])
        .unwrap();
    let image = sim.power_loss(4);
    let log = reopen(&image).unwrap();
    let next = log.next_seq();
    drop(log);
    let idx = last_sealed.path.with_extension("idx");
    let entries = {
        let f = image.open(&idx, OpenMode::Read).unwrap();
        index::load(&*f, last_sealed.first_seq, &idx).unwrap()
    };
    let i = entries.len() - 1;
    let mut b = Vec::new();
    index::encode_entry(
        &mut b,
        &IndexEntry {
            seq: entries[i].seq - 1,
            ..entries[i]
        },
    );
    image.corrupt(&idx, index::entry_pos(i as u64), &b).unwrap();
    let log = reopen(&image).unwrap();
    assert_eq!(put(&log, "k", b"v"), next, "no seq invented or lost");
    assert_eq!(
        log.recovery_report(),
        None,
        "nothing but the index repaired"
    );
    let f = image.open(&idx, OpenMode::Read).unwrap();
    assert_eq!(
        index::load(&*f, last_sealed.first_seq, &idx).unwrap(),
        entries,
        "the entry was rebuilt"
    );
}

#[test]
fn a_power_cut_after_compaction_never_loses_a_synced_value() {
    // k is written and synced (its segment is sealed), then overwritten in the tail with
    // durability `none`; compaction drops the synced value because a later record of its
    // key exists below the committed end. A power cut loses the unsynced overwrite: the
    // key must still have a value, the old one (any prefix of the history is fine, a hole
    // in it is not).
    let sim = SimStorage::new();
    let log = open_sim(&sim, cfg());
    put(&log, "k", b"synced");
    for i in 0..200u64 {
        put(&log, &format!("filler{i}"), &value_for(i, 180));
    }
    log.sync().unwrap();
    assert!(log.segments().unwrap().len() >= 3);
    put(&log, "k", b"never synced");
    log.compact(Duration::from_secs(3600)).unwrap();
    let log = reopen(&sim.power_loss(1)).unwrap();
    let mut r = log.reader(0);
    let mut k = None;
    loop {
        let b = r.read_batch(1000).unwrap();
        if b.is_empty() {
            break;
        }
        for rec in b.iter().filter(|r| r.key == Some("k")) {
            k = Some(rec.value.to_vec());
        }
    }
    assert!(k.is_some(), "the key lost every value it ever had");
}
