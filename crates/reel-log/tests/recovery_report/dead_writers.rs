//! A dead writer's unpublished frames and segments: cut or removed, reported.

use super::*;

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
                whole_frame: false,
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
                whole_frame: false,
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
