//! Index entries recovery trusts, drops or rebuilds.

use super::*;

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
