//! Damaged bytes are reported with file and offset, never returned as data, and can be
//! skipped.
mod common;
use common::*;
use reel_log::storage::sim::SimStorage;
use reel_log::{Error, LogOptions};
use std::sync::Arc;

#[test]
fn a_damaged_byte_in_a_sealed_segment_is_reported_and_skippable() {
    let sim = SimStorage::new();
    let mut cfg = small_config();
    cfg.capacity = 1 << 20;
    let log = open_sim(&sim, cfg);
    append_n(&log, 300, 200);
    let segs = log.segments().unwrap();
    assert!(segs.len() >= 3);
    let victim = &segs[1];
    let offset = 32 + 230 * 10 + 50; // inside the value of the 11th record
    sim.corrupt(&victim.path, offset, &[0xff, 0x00, 0xee])
        .unwrap();

    let report = log.verify().unwrap();
    assert_eq!(report.damage.len(), 1, "{report:?}");
    let d = &report.damage[0];
    assert_eq!(d.path, victim.path);
    assert!(d.offset <= offset && d.offset + 300 > offset);
    let resume = d.resume_seq.unwrap();
    assert_eq!(resume, victim.first_seq + 11);

    let mut r = log.reader(0);
    let mut got = Vec::new();
    let err = loop {
        match r.read_batch(7) {
            Ok(b) if b.is_empty() => panic!("reader passed the damage silently"),
            Ok(b) => got.extend(b.iter().map(|x| x.seq)),
            Err(e) => break e,
        }
    };
    match &err {
        Error::Corrupt {
            path, offset: at, ..
        } => {
            assert_eq!(path, &victim.path);
            assert_eq!(*at, d.offset);
        }
        other => panic!("expected corruption, got {other}"),
    }
    assert_eq!(got.last().copied(), Some(victim.first_seq + 9));
    // Reading again stops at the same place: damage is never handed out.
    assert!(r.read_batch(7).is_err());
    let skipped = r.skip_damage().unwrap();
    assert_eq!(skipped, victim.first_seq + 10..resume);
    let rest: Vec<u64> = std::iter::from_fn(|| {
        let b = r.read_batch(1000).unwrap();
        (!b.is_empty()).then(|| b.iter().map(|x| x.seq).collect::<Vec<_>>())
    })
    .flatten()
    .collect();
    assert_eq!(rest.first(), Some(&resume));
    assert_eq!(rest.last(), Some(&299));

    // Seeking straight past the damage works too (what `reel rewind --to-seq` does).
    let after = read_all(&log, resume);
    assert_eq!(after.first().map(|x| x.0), Some(resume));
    // Seeking onto the damaged record stops in front of it.
    let mut r = log.reader(victim.first_seq + 10);
    assert!(r.read_batch(10).is_err());
}

#[test]
fn a_damaged_tail_is_cut_on_recovery_and_reported() {
    let sim = SimStorage::new();
    let log = open_sim(&sim, small_config());
    append_n(&log, 20, 100);
    let tail = log.segments().unwrap().last().unwrap().clone();
    drop(log);
    // A torn write leaves half a frame after the last record.
    let len = sim.file_len(&tail.path).unwrap();
    sim.corrupt(&tail.path, len, &[9, 0, 0, 0, 200, 0, 0, 0, 1])
        .unwrap();
    // The next writer verifies the tail before appending, cuts the torn bytes, says so.
    let log = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .open(DIR)
        .unwrap();
    assert_eq!(append_n(&log, 1, 100), 20..21);
    let cut = log
        .recovery_report()
        .unwrap()
        .cut
        .expect("tail cut reported");
    assert_eq!((cut.offset, cut.bytes), (len, 9));
    assert_eq!(read_all(&log, 0).len(), 21);
    assert!(log.verify().unwrap().is_ok());
}

#[test]
fn frames_a_dead_writer_never_published_do_not_come_back_even_past_an_index_entry() {
    use reel_log::storage::{OpenMode, Storage};
    let sim = SimStorage::new();
    let log = open_sim(&sim, small_config());
    append_n(&log, 10, 100);
    let tail = log.segments().unwrap().last().unwrap().clone();
    drop(log);
    // A writer wrote 20 more frames (over 4 KiB, with an index entry) and died before
    // publishing them: append valid frames and an index entry behind the head's back.
    let seg = sim.open(&tail.path, OpenMode::ReadWrite).unwrap();
    let mut at = seg.len().unwrap();
    let mut frames = Vec::new();
    let mut idx_entry = Vec::new();
    for s in 10..30u64 {
        if s == 20 {
            reel_log::index::encode_entry(
                &mut idx_entry,
                &reel_log::index::IndexEntry {
                    seq: s,
                    offset: at + frames.len() as u64,
                    ts_max_before: 0,
                },
            );
        }
        let v = value_for(s, 300);
        reel_log::frame::encode_record(
            &mut frames,
            s,
            1,
            &reel_log::Entry {
                value: &v,
                ..Default::default()
            },
        );
    }
    seg.write_all_at(&frames, at).unwrap();
    at += frames.len() as u64;
    let idx_path = tail.path.with_extension("idx");
    let idx = sim.open(&idx_path, OpenMode::ReadWrite).unwrap();
    let idx_len = idx.len().unwrap();
    idx.write_all_at(&idx_entry, idx_len).unwrap();
    let log = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .open(DIR)
        .unwrap();
    assert_eq!(
        append_n(&log, 1, 100),
        10..11,
        "the unpublished frames are not resurrected"
    );
    let all = read_all(&log, 0);
    assert_eq!(all.len(), 11);
    assert_eq!(all[10].1, value_for(10, 100));
    assert!(log.verify().unwrap().is_ok());
    let _ = at;
}

#[test]
fn a_missing_middle_segment_is_an_error_not_a_hang() {
    use reel_log::storage::Storage;
    let sim = SimStorage::new();
    let (log, segs) = segmented_log(&sim);
    sim.remove_file(&segs[1].path).unwrap();
    let mut r = log.reader(0);
    let err = loop {
        match r.read_batch(1000) {
            Ok(b) if b.is_empty() => panic!("reader passed a missing segment silently"),
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(err.to_string().contains("missing"), "{err}");
    assert!(!log.verify().unwrap().is_ok());
}

/// A lost first segment (its file deleted) left a log that `verify` called healthy
/// while it claimed to hold the lost seqs.
#[test]
fn a_missing_first_segment_is_reported() {
    use reel_log::storage::Storage;
    let sim = SimStorage::new();
    let (log, segs) = segmented_log(&sim);
    sim.remove_file(&segs[0].path).unwrap();
    let report = log.verify().unwrap();
    let missing = report
        .damage
        .iter()
        .find(|d| d.what.contains("missing"))
        .expect("the lost first segment is reported");
    assert_eq!(missing.resume_seq, Some(segs[1].first_seq));
}

/// A log whose segment files were all deleted used to start over, empty, at its old
/// next seq when opened for writing: it read as healthy and empty.
#[test]
fn a_log_whose_segments_are_all_gone_is_an_error_not_an_empty_log() {
    use reel_log::storage::Storage;
    let sim = SimStorage::new();
    let (log, segs) = segmented_log(&sim);
    drop(log);
    for s in &segs {
        sim.remove_file(&s.path).unwrap();
    }
    let log = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .open(DIR)
        .unwrap();
    let err = log
        .append(&[reel_log::Entry {
            value: b"x",
            ..Default::default()
        }])
        .unwrap_err();
    assert!(err.to_string().contains("no segment files"), "{err}");
    assert!(
        sim.files()
            .iter()
            .all(|f| !f.to_string_lossy().ends_with(".seg"))
    );
}

/// A 1 MiB log of 200 records over three segments or more, and its segments.
fn segmented_log(sim: &SimStorage) -> (reel_log::Log, Vec<reel_log::SegmentInfo>) {
    let mut cfg = small_config();
    cfg.capacity = 1 << 20;
    let log = open_sim(sim, cfg);
    append_n(&log, 200, 300);
    let segs = log.segments().unwrap();
    assert!(segs.len() >= 3);
    (log, segs)
}

/// A 1 MiB log whose records all sit in the tail, synced; returns the tail's path.
fn tail_log(sim: &SimStorage) -> (reel_log::Log, std::path::PathBuf) {
    let mut cfg = small_config();
    cfg.capacity = 1 << 20;
    cfg.segment_size = 512 << 10;
    let log = open_sim(sim, cfg);
    append_n(&log, 50, 200);
    log.sync().unwrap();
    let tail = log.segments().unwrap().last().unwrap().path.clone();
    (log, tail)
}

/// Offset of the value of record `seq` in a tail of 200-byte records (228-byte frames).
fn inside_record(seq: u64) -> u64 {
    32 + 228 * seq + 100
}

fn reopen(image: SimStorage) -> reel_log::Log {
    LogOptions::new()
        .storage(Arc::new(image))
        .open(DIR)
        .unwrap()
}

#[test]
fn a_flipped_byte_in_the_tail_after_a_reboot_is_damage_not_a_torn_tail() {
    let sim = SimStorage::new();
    let (log, tail) = tail_log(&sim);
    drop(log);
    sim.corrupt(&tail, inside_record(10), &[0x5a]).unwrap();
    // A reboot (or a copy of the directory): the head is not trusted, the tail is scanned.
    let log = reopen(sim.power_loss(1));
    let report = log.recovery_report().unwrap();
    assert!(report.cut.is_none(), "nothing cut: {report:?}");
    assert_eq!(report.damage.len(), 1, "{report:?}");
    assert_eq!(
        (report.damage[0].first_seq, report.damage[0].resume_seq),
        (10, 11)
    );
    assert!(report.describe()[0].contains("kept, not cut"), "{report:?}");
    assert_eq!(
        log.next_seq(),
        50,
        "every record after the damage is still there"
    );
    let v = log.verify().unwrap();
    assert_eq!(v.damage.len(), 1, "{v:?}");
    assert_eq!(v.damage[0].resume_seq, Some(11));
    // Readers stop in front of the damage and can skip it.
    let mut r = log.reader(0);
    let mut seen = Vec::new();
    let err = loop {
        match r.read_batch(100) {
            Ok(b) if b.is_empty() => panic!("the damage was passed silently"),
            Ok(b) => seen.extend(b.iter().map(|x| x.seq)),
            Err(e) => break e,
        }
    };
    assert!(err.is_corrupt(), "{err}");
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert_eq!(r.skip_damage().unwrap(), 10..11);
    assert_eq!(r.read_batch(100).unwrap().len(), 39);
    // Appends go on after the last record, with the next seq.
    assert_eq!(append_n(&log, 1, 10), 50..51);
}

#[test]
fn a_flipped_byte_in_the_tail_under_a_trusted_head_is_damage_not_a_cut() {
    let sim = SimStorage::new();
    let (log, tail) = tail_log(&sim);
    drop(log);
    // After the tail's last index entry, where the first append's check starts.
    sim.corrupt(&tail, inside_record(45), &[0x00, 0x01])
        .unwrap();
    // Same boot, same head: the first append verifies the tail from its index.
    let log = open_sim(&sim, small_config());
    assert_eq!(append_n(&log, 1, 10), 50..51);
    let report = log.recovery_report().unwrap();
    assert!(report.cut.is_none(), "{report:?}");
    assert_eq!(report.damage.len(), 1, "{report:?}");
    assert_eq!(
        (report.damage[0].first_seq, report.damage[0].resume_seq),
        (45, 46)
    );
    assert_eq!(
        read_all_skipping(&log).len(),
        50,
        "only the damaged record is unreadable"
    );
}

#[test]
fn zeros_where_a_write_never_landed_are_a_torn_tail_after_a_reboot() {
    let sim = SimStorage::new();
    let (log, tail) = tail_log(&sim);
    drop(log);
    // A whole sector that never reached the disk, inside records 10-13.
    let hole = (inside_record(10) / 512 + 1) * 512;
    sim.corrupt(&tail, hole, &[0u8; 512]).unwrap();
    let log = reopen(sim.power_loss(2));
    let report = log.recovery_report().unwrap();
    let cut = report.cut.clone().expect("torn tail cut");
    assert!(report.damage.is_empty(), "{report:?}");
    assert!(cut.offset <= hole, "{cut:?}");
    assert!(log.next_seq() < 50 && log.next_seq() >= 10);
    assert!(log.verify().unwrap().is_ok());
}

fn read_all_skipping(log: &reel_log::Log) -> Vec<u64> {
    let mut r = log.reader(0);
    let mut seqs = Vec::new();
    loop {
        match r.read_batch(1000) {
            Ok(b) if b.is_empty() => return seqs,
            Ok(b) => seqs.extend(b.iter().map(|x| x.seq)),
            Err(_) => {
                r.skip_damage().unwrap();
            }
        }
    }
}

#[test]
fn a_point_lookup_of_a_damaged_record_is_an_error_and_its_neighbours_still_read() {
    let sim = SimStorage::new();
    let mut cfg = small_config();
    cfg.capacity = 1 << 20;
    let log = open_sim(&sim, cfg);
    append_n(&log, 300, 200);
    let segs = log.segments().unwrap();
    let victim = &segs[1];
    // Warm the lookup caches first, so that the damage is met through them.
    for seq in 0..300 {
        let v = log.read_record(seq, |r| r.value.to_vec()).unwrap();
        assert_eq!(v.unwrap(), value_for(seq, 200));
    }
    let offset = 32 + 230 * 10 + 50; // inside the value of the 11th record
    sim.corrupt(&victim.path, offset, &[0xff, 0x00, 0xee])
        .unwrap();
    let damaged = victim.first_seq + 10;
    match log.read_record(damaged, |r| r.seq) {
        Err(Error::Corrupt { path, .. }) => assert_eq!(path, victim.path),
        other => panic!("expected corruption, got {other:?}"),
    }
    let before = log.read_record(damaged - 1, |r| r.value.to_vec()).unwrap();
    assert_eq!(before.unwrap(), value_for(damaged - 1, 200));
    assert!(log.read_record(300, |r| r.seq).unwrap().is_none());
}
