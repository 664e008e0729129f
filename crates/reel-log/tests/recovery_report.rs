//! What recovery repairs, and what its report says about it (FORMAT.md §10): a torn tail
//! is cut, damage with valid records after it is kept, a dead writer's unpublished frames
//! and segments are removed, a tail whose header never reached the disk is removed (or
//! rewritten when it is the only segment), any other damaged tail header fails the open,
//! compacted tails keep their gaps, and the rebuilt index has an entry every 4 KiB.
//!
//! Every test asserts the whole `RecoveryReport` (cut, removed segments, rebuilt index
//! entries, damage), then that the log goes on: the right next seq, the records readable,
//! `verify` clean, `used_bytes` equal to the segment files' sizes.
mod common;
use common::*;
use reel_log::frame::{self, Seal};
use reel_log::index::{self, IndexEntry};
use reel_log::segment;
use reel_log::storage::sim::SimStorage;
use reel_log::storage::{OpenMode, Storage};
use reel_log::{Config, CutTail, Entry, Error, Log, LogOptions, RecoveryReport, TailDamage};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Records of 200 value bytes make 228-byte frames.
const LEN: usize = 200;
const FRAME: u64 = 28 + LEN as u64;

/// A 1 MiB log whose 512 KiB segments keep every record of these tests in the tail.
fn big_tail_config() -> Config {
    let mut cfg = small_config();
    cfg.capacity = 1 << 20;
    cfg.segment_size = 512 << 10;
    cfg
}

/// `n` records of `LEN` bytes in the tail, synced (so a power cut keeps them all);
/// returns the tail's path.
fn synced_tail(sim: &SimStorage, n: u64) -> PathBuf {
    let log = open_sim(sim, big_tail_config());
    append_n(&log, n, LEN);
    log.sync().unwrap();
    log.segments().unwrap().last().unwrap().path.clone()
}

/// Offset of the frame of `seq` in a tail of `LEN`-byte records starting at seq 0.
fn frame_at(seq: u64) -> u64 {
    32 + FRAME * seq
}

/// Offsets where the writer (and recovery) put index entries for `n` consecutive frames
/// of `FRAME` bytes: the first frame, then the first frame at least 4096 bytes after the
/// previous entry.
fn expected_index_offsets(n: u64) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for seq in 0..n {
        let at = frame_at(seq);
        if out
            .last()
            .is_none_or(|&last| at >= last + index::INDEX_INTERVAL)
        {
            out.push(at);
        }
    }
    out
}

fn file_bytes(storage: &SimStorage, path: &Path) -> Vec<u8> {
    let f = storage.open(path, OpenMode::Read).unwrap();
    let mut buf = vec![0u8; f.len().unwrap() as usize];
    f.read_exact_at(&mut buf, 0).unwrap();
    buf
}

fn index_of(storage: &SimStorage, seg: &Path, first: u64) -> Vec<IndexEntry> {
    let p = seg.with_extension("idx");
    let f = storage.open(&p, OpenMode::Read).unwrap();
    index::load(&*f, first, &p).unwrap()
}

fn record(seq: u64, len: usize) -> Vec<u8> {
    let v = value_for(seq, len);
    let mut out = Vec::new();
    frame::encode_record(
        &mut out,
        seq,
        1,
        &Entry {
            value: &v,
            ..Default::default()
        },
    );
    out
}

fn seal(next_seq: u64, records: u64) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_seal(
        &mut out,
        &Seal {
            next_seq,
            ts_max: 1,
            records,
        },
    );
    out
}

/// Everything a healthy recovered log must satisfy: `next` is its next seq, records
/// `from..next` read back as appended, `verify` is clean, the head counts the segment
/// files' bytes, and an append continues at `next`.
fn assert_goes_on(log: &Log, from: u64, next: u64, context: &str) {
    assert_eq!(log.next_seq(), next, "{context}: next seq");
    let all = read_all_or_fail(log, from, context);
    assert_eq!(
        all.iter().map(|r| r.0).collect::<Vec<_>>(),
        (from..next).collect::<Vec<_>>(),
        "{context}: seqs"
    );
    for (seq, v) in &all {
        assert_eq!(v, &value_for(*seq, v.len()), "{context}: value of {seq}");
    }
    let sizes: u64 = log.segments().unwrap().iter().map(|s| s.bytes).sum();
    assert_eq!(log.used_bytes(), sizes, "{context}: used bytes");
    let v = log.verify().unwrap();
    assert!(v.is_ok(), "{context}: {v:?}");
    assert_eq!(append_n(log, 1, 10), next..next + 1, "{context}: append");
    assert!(
        log.verify().unwrap().is_ok(),
        "{context}: verify after append"
    );
}

// ---------------------------------------------------------------- torn tails

#[test]
fn a_torn_append_under_a_trusted_head_is_cut_at_the_published_end() {
    let sim = SimStorage::new();
    let tail = synced_tail(&sim, 50);
    let end = sim.file_len(&tail).unwrap();
    assert_eq!(end, frame_at(50));
    // A writer died after writing the first 100 bytes of its next frame.
    sim.corrupt(&tail, end, &record(50, LEN)[..100]).unwrap();

    let log = open_sim(&sim, big_tail_config());
    assert_eq!(
        log.recovery_report(),
        None,
        "a trusted head needs no recovery"
    );
    // The first append checks the tail from its last index entry and cuts the torn frame.
    assert_eq!(append_n(&log, 1, LEN), 50..51);
    let report = log.recovery_report().expect("the cut is reported");
    let reason = format!("file ends inside a frame (100 of {FRAME} bytes present)");
    assert_eq!(
        report,
        RecoveryReport {
            cut: Some(CutTail {
                path: tail.clone(),
                offset: end,
                bytes: 100,
                reason: reason.clone(),
            }),
            removed_segments: vec![],
            rebuilt_index_entries: 0,
            damage: vec![],
        }
    );
    assert!(!report.is_clean());
    assert_eq!(
        report.describe(),
        vec![format!(
            "recovery cut 100 unacknowledged or torn bytes from {} at offset {end} ({reason})",
            tail.display()
        )]
    );
    // The new record went where the torn one was.
    assert_eq!(sim.file_len(&tail), Some(frame_at(51)));
    assert_goes_on(&log, 0, 51, "after the cut");
}

#[test]
fn a_torn_tail_after_a_power_cut_is_cut_and_its_index_rebuilt_every_4_kib() {
    let sim = SimStorage::new();
    let n = 50;
    let tail = synced_tail(&sim, n);
    let end = sim.file_len(&tail).unwrap();
    sim.corrupt(&tail, end, &record(n, LEN)[..60]).unwrap();
    let writers_index = file_bytes(&sim, &tail.with_extension("idx"));

    let image = sim.power_loss(7);
    let log = reopen(&image).unwrap();
    let report = log.recovery_report().expect("recovery ran at open");
    let offsets = expected_index_offsets(n);
    assert_eq!(offsets.len(), 3, "entries at {offsets:?}");
    assert_eq!(
        report,
        RecoveryReport {
            cut: Some(CutTail {
                path: tail.clone(),
                offset: end,
                bytes: 60,
                reason: format!("file ends inside a frame (60 of {FRAME} bytes present)"),
            }),
            removed_segments: vec![],
            // A power cut distrusts the index: it is rebuilt from the whole tail.
            rebuilt_index_entries: offsets.len() as u64,
            damage: vec![],
        }
    );
    // The rebuilt index is the one the writer wrote, byte for byte.
    assert_eq!(
        file_bytes(&image, &tail.with_extension("idx")),
        writers_index
    );
    let entries = index_of(&image, &tail, 0);
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.seq, e.offset))
            .collect::<Vec<_>>(),
        offsets
            .iter()
            .map(|&o| ((o - 32) / FRAME, o))
            .collect::<Vec<_>>()
    );
    assert_goes_on(&log, 0, n, "after a power cut");
}

#[test]
fn a_read_only_open_reports_the_repair_without_making_it() {
    let sim = SimStorage::new();
    let tail = synced_tail(&sim, 20);
    let end = sim.file_len(&tail).unwrap();
    sim.corrupt(&tail, end, &record(20, LEN)[..100]).unwrap();
    let image = sim.power_loss(3);
    let idx_before = file_bytes(&image, &tail.with_extension("idx"));

    let ro = LogOptions::new()
        .storage(Arc::new(image.clone()))
        .read_only(true)
        .open(DIR)
        .unwrap();
    let report = ro.recovery_report().expect("analysis of an untrusted head");
    assert_eq!(
        report.cut.as_ref().map(|c| (c.offset, c.bytes)),
        Some((end, 100))
    );
    assert_eq!(
        report.rebuilt_index_entries,
        expected_index_offsets(20).len() as u64
    );
    assert_eq!(ro.next_seq(), 20);
    assert_eq!(read_all(&ro, 0).len(), 20);
    // Nothing on disk changed.
    assert_eq!(image.file_len(&tail), Some(end + 100));
    assert_eq!(file_bytes(&image, &tail.with_extension("idx")), idx_before);
}

// ---------------------------------------------------------------- damage

#[test]
fn a_flipped_byte_after_a_power_cut_is_reported_as_damage_with_where_and_what() {
    let sim = SimStorage::new();
    let n = 50;
    let tail = synced_tail(&sim, n);
    // Inside the value of record 20: its checksum fails, record 21 follows intact.
    sim.corrupt(&tail, frame_at(20) + 100, &[0x5a]).unwrap();
    let log = reopen(&sim.power_loss(1)).unwrap();
    let report = log.recovery_report().unwrap();
    let damage = TailDamage {
        path: tail.clone(),
        offset: frame_at(20),
        bytes: FRAME,
        reason: report.damage[0].reason.clone(),
        first_seq: 20,
        resume_seq: 21,
    };
    assert!(
        report.damage[0].reason.contains("checksum mismatch"),
        "{report:?}"
    );
    // Index entries: the three every 4 KiB plus one at the record after the damage,
    // so that a reader sent to the resume seq does not have to scan through it.
    assert_eq!(
        report,
        RecoveryReport {
            cut: None,
            removed_segments: vec![],
            rebuilt_index_entries: 4,
            damage: vec![damage],
        }
    );
    let seqs: Vec<u64> = index_of_log(&log, &tail).iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![0, 18, 21, 39]);
    assert_eq!(
        report.describe(),
        vec![format!(
            "damaged bytes in {} at offset {} ({}): records from seq 20 to 20 cannot be read; \
             the {FRAME} bytes and every record after them were kept, not cut \
             (`reel verify` lists the damage, `reel rewind --to-seq 21` skips it)",
            tail.display(),
            frame_at(20),
            report.damage[0].reason
        )]
    );
    assert!(!report.is_clean());
    assert_eq!(log.next_seq(), n, "nothing after the damage is lost");
    // A reader sent past the damage reads on without an error.
    assert_eq!(
        read_all_or_fail(&log, 21, "from the resume seq").len() as u64,
        n - 21
    );
    let v = log.verify().unwrap();
    assert_eq!(
        v.damage.iter().map(|d| d.offset).collect::<Vec<_>>(),
        vec![frame_at(20)]
    );
}

/// The tail's index entries as recovery left them, read through the log's own storage.
fn index_of_log(log: &Log, tail: &Path) -> Vec<IndexEntry> {
    let p = tail.with_extension("idx");
    let f = log.storage().open(&p, OpenMode::Read).unwrap();
    index::load(&*f, 0, &p).unwrap()
}

#[test]
fn two_damaged_records_and_a_torn_end_are_two_damages_and_a_cut() {
    let sim = SimStorage::new();
    let n = 30;
    let tail = synced_tail(&sim, n);
    let end = sim.file_len(&tail).unwrap();
    sim.corrupt(&tail, frame_at(5) + 50, &[0xee]).unwrap();
    sim.corrupt(&tail, frame_at(12) + 9, &[0x77]).unwrap();
    sim.corrupt(&tail, end, &record(n, LEN)[..40]).unwrap();
    let log = reopen(&sim.power_loss(2)).unwrap();
    let report = log.recovery_report().unwrap();
    assert_eq!(
        report
            .damage
            .iter()
            .map(|d| (d.offset, d.bytes, d.first_seq, d.resume_seq))
            .collect::<Vec<_>>(),
        vec![(frame_at(5), FRAME, 5, 6), (frame_at(12), FRAME, 12, 13)],
        "{report:?}"
    );
    assert_eq!(
        report.cut.as_ref().map(|c| (c.offset, c.bytes)),
        Some((end, 40))
    );
    assert_eq!(report.describe().len(), 3);
    assert_eq!(log.next_seq(), n);
}

#[test]
fn damage_in_the_last_published_record_is_kept_up_to_the_published_end() {
    let sim = SimStorage::new();
    let n = 30;
    let tail = synced_tail(&sim, n);
    let end = sim.file_len(&tail).unwrap();
    // The last published record is damaged: no valid frame follows it, but a trusted
    // head says it was complete when published, so it is damage, not a torn write.
    sim.corrupt(&tail, frame_at(n - 1) + 30, &[0x01, 0x02])
        .unwrap();
    let log = open_sim(&sim, big_tail_config());
    assert_eq!(append_n(&log, 1, LEN), n..n + 1);
    let report = log.recovery_report().unwrap();
    assert_eq!(report.cut, None, "{report:?}");
    assert_eq!(
        report
            .damage
            .iter()
            .map(|d| (d.offset, d.bytes, d.first_seq, d.resume_seq))
            .collect::<Vec<_>>(),
        vec![(frame_at(n - 1), end - frame_at(n - 1), n - 1, n)],
    );
    assert_eq!(sim.file_len(&tail), Some(end + FRAME));
    assert_eq!(log.next_seq(), n + 1);
    let r = read_all_or_fail(&log, n, "from the resume seq");
    assert_eq!(r.len(), 1);
}

#[test]
fn damage_in_the_last_published_record_never_resumes_at_an_unpublished_frame() {
    let sim = SimStorage::new();
    let n = 30;
    let tail = synced_tail(&sim, n);
    let end = sim.file_len(&tail).unwrap();
    // After the published end: 50 bytes of a dead writer's torn frame, then a valid
    // frame with a later seq that was never published either.
    let mut extra = vec![0xabu8; 50];
    extra.extend(record(n + 1, LEN));
    sim.corrupt(&tail, end, &extra).unwrap();
    sim.corrupt(&tail, frame_at(n - 1) + 30, &[0x01]).unwrap();
    let log = open_sim(&sim, big_tail_config());
    assert_eq!(append_n(&log, 1, LEN), n..n + 1, "no seq skipped");
    let report = log.recovery_report().unwrap();
    assert_eq!(
        report
            .damage
            .iter()
            .map(|d| (d.offset, d.bytes, d.first_seq, d.resume_seq))
            .collect::<Vec<_>>(),
        vec![(frame_at(n - 1), FRAME, n - 1, n)],
        "{report:?}"
    );
    let cut = report.cut.expect("unpublished bytes cut");
    assert_eq!((cut.offset, cut.bytes), (end, extra.len() as u64));
}

#[test]
fn damage_under_a_trusted_head_followed_by_unpublished_frames_stops_at_the_published_end() {
    let sim = SimStorage::new();
    let n = 30;
    let tail = synced_tail(&sim, n);
    let end = sim.file_len(&tail).unwrap();
    // A dead writer's valid but unpublished frames after the published end.
    let mut extra = record(n, LEN);
    extra.extend(record(n + 1, LEN));
    sim.corrupt(&tail, end, &extra).unwrap();
    sim.corrupt(&tail, frame_at(n - 2) + 30, &[0x01]).unwrap();
    let log = open_sim(&sim, big_tail_config());
    assert_eq!(append_n(&log, 1, LEN), n..n + 1, "no phantom records");
    let report = log.recovery_report().unwrap();
    assert_eq!(
        report
            .damage
            .iter()
            .map(|d| (d.offset, d.bytes, d.first_seq, d.resume_seq))
            .collect::<Vec<_>>(),
        vec![(frame_at(n - 2), FRAME, n - 2, n - 1)],
        "{report:?}"
    );
    let cut = report.cut.expect("unpublished frames cut");
    assert_eq!((cut.offset, cut.bytes), (end, 2 * FRAME));
    assert_eq!(
        cut.reason, "written by a writer that died before publishing",
        "{cut:?}"
    );
}

// ---------------------------------------------------------------- dead writers

#[test]
fn a_dead_writers_unpublished_frames_and_index_entry_are_cut_and_reported() {
    let sim = SimStorage::new();
    let n = 10;
    let tail = synced_tail(&sim, n);
    let end = sim.file_len(&tail).unwrap();
    // 20 more frames (over 4 KiB, so with an index entry) that were never published.
    let mut frames = Vec::new();
    let mut entry = Vec::new();
    for s in n..n + 20 {
        if s == n + 18 {
            index::encode_entry(
                &mut entry,
                &IndexEntry {
                    seq: s,
                    offset: end + frames.len() as u64,
                    ts_max_before: 1,
                },
            );
        }
        frames.extend(record(s, LEN));
    }
    sim.corrupt(&tail, end, &frames).unwrap();
    let idx = tail.with_extension("idx");
    sim.corrupt(&idx, sim.file_len(&idx).unwrap(), &entry)
        .unwrap();

    let log = open_sim(&sim, big_tail_config());
    assert_eq!(append_n(&log, 1, LEN), n..n + 1);
    assert_eq!(
        log.recovery_report().unwrap(),
        RecoveryReport {
            cut: Some(CutTail {
                path: tail.clone(),
                offset: end,
                bytes: frames.len() as u64,
                reason: "written by a writer that died before publishing".into(),
            }),
            removed_segments: vec![],
            rebuilt_index_entries: 0,
            damage: vec![],
        }
    );
    // Only the published record's entry is left (the new record is within 4 KiB of it).
    assert_eq!(
        index_of(&sim, &tail, 0)
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![0]
    );
    assert_goes_on(&log, 0, n + 1, "after the cut");
}

/// A log of two segments (16 KiB each), the tail holding records `tail_first..next`.
fn two_segments(sim: &SimStorage) -> (Log, u64, u64) {
    let log = open_sim(sim, small_config());
    append_n(&log, 100, LEN);
    log.sync().unwrap();
    let segs = log.segments().unwrap();
    assert_eq!(segs.len(), 2, "{segs:?}");
    (log, segs[1].first_seq, 100)
}

#[test]
fn segments_a_dead_writer_created_past_the_published_tail_are_removed_and_reported() {
    let sim = SimStorage::new();
    let (log, tail_first, next) = two_segments(&sim);
    drop(log);
    let tail = segment::segment_path(Path::new(DIR), tail_first);
    let end = sim.file_len(&tail).unwrap();
    // The writer sealed the tail, created the next segment and wrote records to it, then
    // rolled once more inside the same batch, and died before publishing any of it.
    sim.corrupt(&tail, end, &seal(next, next - tail_first))
        .unwrap();
    let orphans = [next, next + 3];
    for (i, &first) in orphans.iter().enumerate() {
        let (seg, _) = segment::create(&sim, Path::new(DIR), first, false).unwrap();
        if i == 0 {
            let mut frames = Vec::new();
            for s in first..first + 3 {
                frames.extend(record(s, LEN));
            }
            frames.extend(seal(first + 3, 3));
            seg.write_all_at(&frames, 32).unwrap();
        }
    }
    let log = open_sim(&sim, small_config());
    assert_eq!(append_n(&log, 1, LEN), next..next + 1, "no phantom records");
    let report = log.recovery_report().unwrap();
    let orphan_paths: Vec<PathBuf> = orphans
        .iter()
        .rev()
        .map(|&s| segment::segment_path(Path::new(DIR), s))
        .collect();
    assert_eq!(
        report,
        RecoveryReport {
            cut: Some(CutTail {
                path: tail.clone(),
                offset: end,
                bytes: frame::SEAL_LEN as u64,
                reason: "seal of a segment whose successor was never created".into(),
            }),
            removed_segments: orphan_paths.clone(),
            rebuilt_index_entries: 0,
            damage: vec![],
        }
    );
    assert_eq!(
        report.describe()[1..],
        orphan_paths
            .iter()
            .map(|p| format!(
                "recovery removed incompletely created segment {}",
                p.display()
            ))
            .collect::<Vec<_>>()
    );
    for &s in &orphans {
        assert_eq!(
            sim.file_len(&segment::index_path(Path::new(DIR), s)),
            None,
            "index of {s} removed"
        );
    }
    assert_eq!(log.oldest_seq(), 0);
    assert_goes_on(&log, 0, next + 1, "after removing orphans");
}

#[test]
fn a_dead_writers_only_segment_past_the_published_tail_is_not_resurrected() {
    // A write group whose first batch rolled from X to Y and whose second batch made room
    // by dropping X (the oldest), then the process died before publishing: the head
    // (trusted, same boot) still names X as the tail; only Y is on disk, holding records
    // that were never published nor acknowledged. FORMAT.md §10 step 1: "delete every
    // segment newer than the published tail", then "if there is none, create one named
    // after next_seq". Recovery keeps Y instead (it never removes the last segment) and
    // publishes Y's records: a phantom append.
    let sim = SimStorage::new();
    let (log, tail_first, next) = two_segments(&sim);
    drop(log);
    let dir = Path::new(DIR);
    for first in [0, tail_first] {
        sim.remove_file(&segment::segment_path(dir, first)).unwrap();
        sim.remove_file(&segment::index_path(dir, first)).unwrap();
    }
    let (seg, _) = segment::create(&sim, dir, next + 5, false).unwrap();
    seg.write_all_at(&record(next + 5, LEN), 32).unwrap();
    let log = open_sim(&sim, small_config());
    assert_eq!(
        append_n(&log, 1, LEN),
        next..next + 1,
        "the unpublished record came back"
    );
}

// ---------------------------------------------------------------- tail headers

/// Makes the tail look as if its header never reached the disk: all zeros (and
/// durable, so every power-loss image has it).
fn zero_file(sim: &SimStorage, path: &Path) {
    let len = sim.file_len(path).unwrap();
    sim.corrupt(path, 0, &vec![0u8; len as usize]).unwrap();
}

#[test]
fn a_tail_whose_header_never_reached_the_disk_is_removed_and_the_seal_before_it_cut() {
    for empty in [false, true] {
        let sim = SimStorage::new();
        let (log, tail_first, next) = two_segments(&sim);
        let sealed_seg = log.segments().unwrap()[0].clone();
        drop(log);
        let tail = segment::segment_path(Path::new(DIR), tail_first);
        if empty {
            let f = sim.open(&tail, OpenMode::ReadWrite).unwrap();
            f.set_len(0).unwrap();
            f.sync_data().unwrap();
        } else {
            zero_file(&sim, &tail);
        }
        let image = sim.power_loss(11);
        // A read-only open cannot repair this, and must not change anything.
        let ro = LogOptions::new()
            .storage(Arc::new(image.clone()))
            .read_only(true)
            .open(DIR);
        match ro {
            Err(Error::Corrupt {
                path, offset: 0, ..
            }) => assert_eq!(path, tail),
            other => panic!("read-only open of a zeroed tail header: {other:?}"),
        }
        assert!(image.file_len(&tail).is_some(), "read-only removed nothing");

        let log = reopen(&image).unwrap();
        let report = log.recovery_report().unwrap();
        let context = format!("empty {empty}");
        assert_eq!(report.removed_segments, vec![tail.clone()], "{context}");
        assert_eq!(
            report.cut,
            Some(CutTail {
                path: sealed_seg.path.clone(),
                offset: sealed_seg.bytes - frame::SEAL_LEN as u64,
                bytes: frame::SEAL_LEN as u64,
                reason: "seal of a segment whose successor was never created".into(),
            }),
            "{context}"
        );
        assert!(report.damage.is_empty(), "{context}");
        assert_eq!(image.file_len(&tail), None, "{context}");
        assert_eq!(
            image.file_len(&tail.with_extension("idx")),
            None,
            "{context}"
        );
        // The records of the removed tail were never synced: the log ends at its first.
        assert_eq!(tail_first, log.next_seq(), "{context}");
        assert_goes_on(&log, 0, tail_first, &context);
        let _ = next;
    }
}

#[test]
fn a_lone_tail_whose_header_never_reached_the_disk_is_rewritten_for_its_first_seq() {
    let sim = SimStorage::new();
    let (log, tail_first, _) = two_segments(&sim);
    drop(log);
    let dir = Path::new(DIR);
    // Retention dropped the older segment (synced), the tail's header never made it.
    sim.remove_file(&segment::segment_path(dir, 0)).unwrap();
    sim.remove_file(&segment::index_path(dir, 0)).unwrap();
    let tail = segment::segment_path(dir, tail_first);
    zero_file(&sim, &tail);
    let image = sim.power_loss(5);
    let log = reopen(&image).unwrap();
    assert_eq!(
        log.recovery_report(),
        Some(RecoveryReport::default()),
        "nothing that was ever synced was lost"
    );
    assert_eq!(
        file_bytes(&image, &tail),
        segment::encode_header(tail_first, 0).to_vec()
    );
    assert_eq!(
        file_bytes(&image, &tail.with_extension("idx")),
        index::encode_header(tail_first).to_vec()
    );
    assert_eq!(log.oldest_seq(), tail_first);
    assert_goes_on(&log, tail_first, tail_first, "rewritten header");
}

#[test]
fn a_damaged_tail_header_fails_the_open_and_nothing_is_cut_or_removed() {
    // (byte to change, value) in the tail's header: magic, version+crc mismatch, first
    // seq, crc, reserved+crc mismatch.
    for (at, value) in [(0u64, b'X'), (9, 7), (17, 1), (29, 0x55), (24, 1)] {
        for single in [false, true] {
            let sim = SimStorage::new();
            let (log, tail_first, _) = two_segments(&sim);
            drop(log);
            let dir = Path::new(DIR);
            if single {
                sim.remove_file(&segment::segment_path(dir, 0)).unwrap();
            }
            let tail = segment::segment_path(dir, tail_first);
            let len = sim.file_len(&tail).unwrap();
            sim.corrupt(&tail, at, &[value]).unwrap();
            let context = format!("byte {at} = {value}, single segment {single}");
            let image = sim.power_loss(at);
            match reopen(&image) {
                Err(Error::Corrupt {
                    path,
                    offset,
                    reason,
                }) => {
                    assert_eq!((path, offset), (tail.clone(), 0), "{context}");
                    assert_eq!(reason, "segment header is damaged", "{context}");
                }
                other => panic!("{context}: {other:?}"),
            }
            assert_eq!(image.file_len(&tail), Some(len), "{context}: nothing cut");
            // Under a trusted head (same boot), the first append refuses the same way.
            let log = open_sim(&sim, small_config());
            let e = log
                .append(&[Entry {
                    value: b"x",
                    ..Default::default()
                }])
                .unwrap_err();
            assert!(e.is_corrupt(), "{context}: {e}");
            assert_eq!(sim.file_len(&tail), Some(len), "{context}: nothing cut");
        }
    }
}

#[test]
fn a_tail_header_naming_another_seq_or_version_fails_the_open() {
    let dir = Path::new(DIR);
    // A valid header that names another first seq than the file: damage.
    let sim = SimStorage::new();
    let (log, tail_first, _) = two_segments(&sim);
    drop(log);
    let tail = segment::segment_path(dir, tail_first);
    sim.corrupt(&tail, 0, &segment::encode_header(tail_first + 1, 0))
        .unwrap();
    match reopen(&sim.power_loss(1)) {
        Err(Error::Corrupt {
            path, offset: 0, ..
        }) => assert_eq!(path, tail),
        other => panic!("{other:?}"),
    }
    // A valid header of another format version: not this build's to repair.
    let sim = SimStorage::new();
    let (log, tail_first, _) = two_segments(&sim);
    drop(log);
    let tail = segment::segment_path(dir, tail_first);
    let mut h = segment::encode_header(tail_first, 0);
    h[8] = 2;
    let crc = crc32c::crc32c(&h[..28]);
    h[28..].copy_from_slice(&crc.to_le_bytes());
    sim.corrupt(&tail, 0, &h).unwrap();
    match reopen(&sim.power_loss(1)) {
        Err(Error::UnsupportedVersion {
            path,
            found: 2,
            supported: 1,
        }) => assert_eq!(path, tail),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- index entries

#[test]
fn the_check_of_a_trusted_tail_starts_at_its_last_index_entry_even_one_ending_the_file() {
    // Empty records are 28-byte frames, the shortest there are. With 295 of them the
    // last index entry names the last frame, which ends exactly at the end of the file.
    // That entry must be verified and used: the first append's check then reads one
    // frame, not the whole index interval before it.
    let sim = SimStorage::new();
    let log = open_sim(&sim, big_tail_config());
    let empties: Vec<Entry<'_>> = (0..295).map(|_| Entry::default()).collect();
    log.append(&empties).unwrap();
    log.sync().unwrap();
    let tail = log.segments().unwrap().last().unwrap().path.clone();
    let entries = index_of(&sim, &tail, 0);
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.seq, e.offset))
            .collect::<Vec<_>>(),
        vec![(0, 32), (147, 32 + 28 * 147), (294, 32 + 28 * 294)],
        "the writer's entries"
    );
    assert_eq!(sim.file_len(&tail), Some(32 + 28 * 295));
    drop(log);
    let log = open_sim(&sim, big_tail_config());
    let before = sim.bytes_read();
    log.append(&[Entry::default()]).unwrap();
    let read = sim.bytes_read() - before;
    assert!(read < 1024, "the first append read {read} bytes");
    assert_eq!(log.recovery_report(), None, "nothing to repair");
    assert_eq!(index_of(&sim, &tail, 0), entries);
    assert_goes_on(&log, 0, 296, "after the check");
}

#[test]
fn index_entries_past_the_last_good_one_are_dropped_and_rebuilt() {
    let sim = SimStorage::new();
    let n = 60;
    let tail = synced_tail(&sim, n);
    let idx = tail.with_extension("idx");
    let good = index_of(&sim, &tail, 0);
    assert_eq!(good.len(), 4);
    let cases: Vec<(&str, IndexEntry)> = vec![
        // Points at the right seq but the wrong byte (inside a frame).
        (
            "wrong offset",
            IndexEntry {
                offset: good[3].offset + 4,
                ..good[3]
            },
        ),
        // Points at a frame with another seq.
        (
            "wrong seq",
            IndexEntry {
                seq: good[3].seq + 1,
                ..good[3]
            },
        ),
        // Points past the end of the file.
        (
            "past the end",
            IndexEntry {
                offset: frame_at(n) + 8,
                seq: good[3].seq,
                ..good[3]
            },
        ),
        // Points into the segment header.
        (
            "into the header",
            IndexEntry {
                offset: 4,
                seq: good[3].seq,
                ..good[3]
            },
        ),
    ];
    for (what, bad) in cases {
        let sim2 = sim.process_crash();
        let mut b = Vec::new();
        index::encode_entry(&mut b, &bad);
        sim2.corrupt(&idx, index::entry_pos(3), &b).unwrap();
        let log = open_sim(&sim2, big_tail_config());
        assert_eq!(append_n(&log, 1, LEN), n..n + 1, "{what}");
        // The entry was replaced by a rebuilt one; nothing else needed repair.
        assert_eq!(log.recovery_report(), None, "{what}");
        assert_eq!(index_of(&sim2, &tail, 0), good, "{what}: index rebuilt");
        assert!(log.verify().unwrap().is_ok(), "{what}");
    }
}

#[test]
fn an_index_entry_claiming_a_huge_frame_is_dropped_without_reading_it() {
    // A damaged entry whose checksum still matches (rewritten by hand) points at bytes
    // whose length field claims a frame far larger than the file and than any record.
    let sim = SimStorage::new();
    let n = 40;
    let tail = synced_tail(&sim, n);
    let idx = tail.with_extension("idx");
    let good = index_of(&sim, &tail, 0);
    let at = frame_at(n - 1);
    // Overwrite record n-1's length field: it now claims 2 GiB.
    sim.corrupt(&tail, at + 4, &(2u32 << 30).to_le_bytes())
        .unwrap();
    let mut b = Vec::new();
    index::encode_entry(
        &mut b,
        &IndexEntry {
            seq: n - 1,
            offset: at,
            ts_max_before: good.last().unwrap().ts_max_before,
        },
    );
    sim.corrupt(&idx, index::entry_pos(good.len() as u64), &b)
        .unwrap();
    let read_before = sim.bytes_read();
    let log = open_sim(&sim, big_tail_config());
    assert_eq!(append_n(&log, 1, LEN), n..n + 1);
    let report = log.recovery_report().unwrap();
    // The damaged last record is kept and reported: it lies below the published end.
    assert_eq!(
        report
            .damage
            .iter()
            .map(|d| (d.offset, d.first_seq, d.resume_seq))
            .collect::<Vec<_>>(),
        vec![(at, n - 1, n)]
    );
    assert_eq!(report.cut, None);
    assert!(
        sim.bytes_read() - read_before < 1 << 20,
        "recovery read {} bytes",
        sim.bytes_read() - read_before
    );
}

#[test]
fn a_frame_out_of_sequence_in_the_tail_is_damage_up_to_the_next_one_in_sequence() {
    // Record 24's frame was replaced by a valid frame of seq 25 (a misdirected write):
    // the tail reads 23, 25, 25, 26. The first 25 is out of sequence, the second resumes.
    let n = 30;
    for trusted in [false, true] {
        let sim = SimStorage::new();
        let tail = synced_tail(&sim, n);
        sim.corrupt(&tail, frame_at(24), &record(25, LEN)).unwrap();
        let log = if trusted {
            let log = open_sim(&sim, big_tail_config());
            assert_eq!(append_n(&log, 1, LEN), n..n + 1);
            log
        } else {
            reopen(&sim.power_loss(6)).unwrap()
        };
        let report = log.recovery_report().unwrap();
        assert_eq!(
            report.damage,
            vec![TailDamage {
                path: tail.clone(),
                offset: frame_at(24),
                bytes: FRAME,
                reason: "frame out of sequence (expected seq 24)".into(),
                first_seq: 24,
                resume_seq: 25,
            }],
            "trusted head {trusted}"
        );
        assert_eq!(report.cut, None, "trusted head {trusted}");
        assert_eq!(log.next_seq(), n + u64::from(trusted));
    }
}

// ---------------------------------------------------------------- torn or damaged?

/// After a power cut, bad bytes followed by valid frames are torn (cut) when they look
/// unwritten: their first 8 bytes are zeros, or a whole 512-byte sector aligned on file
/// offsets among them is zeros; otherwise they are damage (kept). Records of 1200 bytes
/// (1228-byte frames) so that a bad frame spans several sectors.
fn torn_or_damaged(zeros_at: u64, zeros: usize) -> (RecoveryReport, u64) {
    const BIG: usize = 1200;
    let sim = SimStorage::new();
    let log = open_sim(&sim, big_tail_config());
    append_n(&log, 20, BIG);
    log.sync().unwrap();
    let tail = log.segments().unwrap().last().unwrap().path.clone();
    drop(log);
    sim.corrupt(&tail, zeros_at, &vec![0u8; zeros]).unwrap();
    let log = reopen(&sim.power_loss(8)).unwrap();
    (log.recovery_report().unwrap(), log.next_seq())
}

const BIG_FRAME: u64 = 1228;

fn big_frame_at(seq: u64) -> u64 {
    32 + BIG_FRAME * seq
}

#[test]
fn a_frame_whose_first_8_bytes_are_zeros_is_torn() {
    let (report, next) = torn_or_damaged(big_frame_at(3), 8);
    assert!(report.damage.is_empty(), "{report:?}");
    let cut = report.cut.unwrap();
    assert_eq!(cut.offset, big_frame_at(3));
    assert_eq!(next, 3);
    // A zeroed checksum alone leaves the length (cc 04 00 00) in the first 8 bytes: not
    // unwritten, so damage.
    let (report, next) = torn_or_damaged(big_frame_at(3), 4);
    assert_eq!(report.cut, None, "{report:?}");
    assert_eq!(
        report
            .damage
            .iter()
            .map(|d| (d.offset, d.bytes, d.first_seq, d.resume_seq))
            .collect::<Vec<_>>(),
        vec![(big_frame_at(3), BIG_FRAME, 3, 4)]
    );
    assert_eq!(next, 20);
}

#[test]
fn a_zeroed_sector_anywhere_in_the_bad_bytes_makes_them_torn() {
    // Frame 3 spans 3716..4944: its first aligned sector (4096..4608) holds data, the
    // second (4608..5120, reaching into frame 4) is zeros. Frame 5 is the next valid one.
    assert_eq!((big_frame_at(3), big_frame_at(4)), (3716, 4944));
    let (report, next) = torn_or_damaged(4608, 512);
    assert!(report.damage.is_empty(), "{report:?}");
    assert_eq!(
        report.cut.as_ref().map(|c| c.offset),
        Some(big_frame_at(3)),
        "{report:?}"
    );
    assert_eq!(next, 3);
    // The last aligned sector before the next valid frame counts too: frame 4 spans
    // 4944..6172, sectors 5120..5632 (data) and 5632..6144 (zeros).
    let (report, next) = torn_or_damaged(5632, 512);
    assert!(report.damage.is_empty(), "{report:?}");
    assert_eq!(report.cut.as_ref().map(|c| c.offset), Some(big_frame_at(4)));
    assert_eq!(next, 4);
}

#[test]
fn zeros_that_fill_no_aligned_sector_are_damage() {
    // 512 zero bytes straddling two sectors (4708..5220) inside frames 3 and 4, and 511
    // zeros inside one sector: no aligned sector is all zeros, so this is damage, kept.
    for (at, len) in [(4708u64, 512usize), (4609, 511)] {
        let (report, next) = torn_or_damaged(at, len);
        assert_eq!(report.cut, None, "{at}+{len}: {report:?}");
        assert_eq!(report.damage.len(), 1, "{at}+{len}: {report:?}");
        assert_eq!(report.damage[0].offset, big_frame_at(3), "{at}+{len}");
        assert_eq!(next, 20, "{at}+{len}");
    }
}

#[test]
fn a_torn_record_whose_value_holds_a_frame_is_cut_not_resynced_into() {
    // The value of record n is itself a valid frame with a later seq (a log of frames).
    // Torn after that inner frame: the outer frame is incomplete, so the tail ends there;
    // the inner frame must never become a record.
    let sim = SimStorage::new();
    let n = 10;
    let tail = synced_tail(&sim, n);
    let end = sim.file_len(&tail).unwrap();
    let inner = record(n + 5, 50);
    let mut outer = Vec::new();
    frame::encode_record(
        &mut outer,
        n,
        1,
        &Entry {
            value: &[&inner[..], &[7u8; 100][..]].concat(),
            ..Default::default()
        },
    );
    let torn = &outer[..28 + inner.len() + 10];
    for trusted in [false, true] {
        let sim = sim.process_crash();
        sim.corrupt(&tail, end, torn).unwrap();
        let log = if trusted {
            let log = open_sim(&sim, big_tail_config());
            assert_eq!(append_n(&log, 1, LEN), n..n + 1);
            log
        } else {
            reopen(&sim.power_loss(1)).unwrap()
        };
        let report = log.recovery_report().unwrap();
        assert!(report.damage.is_empty(), "trusted {trusted}: {report:?}");
        assert_eq!(
            report.cut.map(|c| (c.offset, c.bytes)),
            Some((end, torn.len() as u64)),
            "trusted {trusted}"
        );
        assert_eq!(log.next_seq(), n + u64::from(trusted), "trusted {trusted}");
    }
}

#[test]
fn when_every_segment_is_gone_a_writer_starts_over_at_the_published_end() {
    let sim = SimStorage::new();
    let (log, tail_first, next) = two_segments(&sim);
    drop(log);
    let dir = Path::new(DIR);
    for first in [0, tail_first] {
        sim.remove_file(&segment::segment_path(dir, first)).unwrap();
        sim.remove_file(&segment::index_path(dir, first)).unwrap();
    }
    // A read-only handle after a power cut has nothing to rebuild from: an error, and
    // nothing created.
    let image = sim.power_loss(1);
    match LogOptions::new()
        .storage(Arc::new(image.clone()))
        .read_only(true)
        .open(DIR)
    {
        Err(Error::Corrupt { reason, .. }) => assert_eq!(reason, "the log has no segments"),
        other => panic!("{other:?}"),
    }
    assert!(segment::list_segments(&image, dir).unwrap().is_empty());
    // A writer under the trusted head (same boot) creates the segment named after the
    // last seq anyone was told of, and goes on from there.
    let log = open_sim(&sim, small_config());
    assert_eq!(append_n(&log, 1, LEN), next..next + 1);
    assert_eq!(segment::list_segments(&sim, dir).unwrap(), vec![next]);
    assert_eq!(log.oldest_seq(), next);
    assert_goes_on(&log, next, next + 1, "started over");
}

#[test]
fn a_recovered_tail_keeps_counting_records_and_index_entries_for_the_next_roll() {
    // Recovery from the tail's last good index entry publishes the tail's record count
    // and index entry count; the writer builds on both: the seal's record count at the
    // next roll, and where the next index entries go.
    let sim = SimStorage::new();
    let (log, tail_first, next) = two_segments(&sim);
    drop(log);
    let tail = segment::segment_path(Path::new(DIR), tail_first);
    let idx = tail.with_extension("idx");
    let entries = index_of(&sim, &tail, tail_first);
    assert_eq!(entries.len(), 2);
    // A torn frame at the end and a damaged last index entry: recovery keeps entry 0,
    // rebuilds entry 1, cuts the torn frame.
    let end = sim.file_len(&tail).unwrap();
    sim.corrupt(&tail, end, &record(next, LEN)[..20]).unwrap();
    sim.corrupt(&idx, index::entry_pos(1) + 3, &[0xff]).unwrap();
    let log = open_sim(&sim, small_config());
    // Enough records to add index entries to the tail, then roll it.
    append_n(&log, 60, LEN);
    let report = log.recovery_report().unwrap();
    assert_eq!(report.rebuilt_index_entries, 1, "{report:?}");
    assert_eq!(report.cut.map(|c| c.offset), Some(end));
    let segs = log.segments().unwrap();
    assert_eq!(segs.len(), 3, "{segs:?}");
    // The sealed tail verifies: its seal counts every record, its index every 4 KiB.
    let v = log.verify().unwrap();
    assert!(v.is_ok(), "{v:?}");
    let sealed = index_of(&sim, &tail, tail_first);
    let offsets: Vec<u64> = sealed.iter().map(|e| e.offset).collect();
    let mut want = vec![32u64];
    let records = segs[2].first_seq - tail_first;
    for k in 1..records {
        let at = 32 + FRAME * k;
        if at >= want.last().unwrap() + index::INDEX_INTERVAL {
            want.push(at);
        }
    }
    assert_eq!(offsets, want);
    assert_goes_on(&log, 0, next + 60, "after the roll");
}

/// Collects the messages of `tracing` warnings emitted on this thread.
#[derive(Default)]
struct Warnings(std::sync::Mutex<Vec<String>>);

impl tracing::Subscriber for Warnings {
    fn register_callsite(&self, _: &tracing::Metadata<'_>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::always()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message<'a>(&'a mut String);
        impl tracing::field::Visit for Message<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    *self.0 = format!("{value:?}");
                }
            }
        }
        if *event.metadata().level() == tracing::Level::WARN {
            let mut m = String::new();
            event.record(&mut Message(&mut m));
            self.0.lock().unwrap().push(m);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn every_repair_is_logged_as_a_warning() {
    let sim = SimStorage::new();
    let tail = synced_tail(&sim, 30);
    let end = sim.file_len(&tail).unwrap();
    sim.corrupt(&tail, frame_at(7) + 50, &[0x42]).unwrap();
    sim.corrupt(&tail, end, &record(30, LEN)[..70]).unwrap();
    let image = sim.power_loss(1);
    let warnings = Arc::new(Warnings::default());
    let log = tracing::subscriber::with_default(warnings.clone(), || {
        // Another test thread may have cached "no subscriber wants this event" for the
        // warning's callsite (tracing caches interest globally): ask again.
        tracing::callsite::rebuild_interest_cache();
        reopen(&image).unwrap()
    });
    let report = log.recovery_report().unwrap();
    assert_eq!(report.describe().len(), 2, "{report:?}");
    assert_eq!(*warnings.0.lock().unwrap(), report.describe());
    // Under a trusted head, the first append's repair is logged too.
    let sim = sim.process_crash();
    let log = open_sim(&sim, big_tail_config());
    let warnings = Arc::new(Warnings::default());
    tracing::subscriber::with_default(warnings.clone(), || {
        tracing::callsite::rebuild_interest_cache();
        append_n(&log, 1, LEN)
    });
    let report = log.recovery_report().unwrap();
    assert_eq!(*warnings.0.lock().unwrap(), report.describe());
}
