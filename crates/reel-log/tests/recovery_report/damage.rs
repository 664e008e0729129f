//! Damaged records: kept and reported with where and what, never cut.

use super::*;

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
