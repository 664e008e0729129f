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
    let mut cfg = small_config();
    cfg.capacity = 1 << 20;
    let log = open_sim(&sim, cfg);
    append_n(&log, 200, 300);
    let segs = log.segments().unwrap();
    assert!(segs.len() >= 3);
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
