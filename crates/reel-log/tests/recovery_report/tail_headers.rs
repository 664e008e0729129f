//! Tail segment headers that never reached the disk, are damaged or name another seq.

use super::*;

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
                whole_frame: false,
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
