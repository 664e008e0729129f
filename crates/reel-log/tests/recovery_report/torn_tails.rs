//! Torn tails: cut at the published end, index rebuilt, reported.

use super::*;

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
                whole_frame: false,
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
                whole_frame: false,
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
