//! What readers may see: only records that were committed when their bytes were read,
//! and a batch only as a whole.
mod common;
use common::*;
use reel_log::frame::{self, Entry};
use std::os::unix::fs::FileExt;

/// Writes a frame past the committed end of the tail, as a writer that died mid-append
/// leaves it, and marks the shared head as "writing" (FORMAT.md §5, byte 12).
fn leave_dead_writers_frame(dir: &std::path::Path, seq: u64, value: &[u8]) {
    let segs = dir.join("segments");
    let mut names: Vec<_> = std::fs::read_dir(&segs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    names.sort();
    let tail = std::fs::OpenOptions::new()
        .write(true)
        .open(names.last().unwrap())
        .unwrap();
    let end = tail.metadata().unwrap().len();
    let mut buf = Vec::new();
    let entry = Entry {
        value,
        ..Default::default()
    };
    frame::encode_record(&mut buf, seq, 1, &entry);
    tail.write_all_at(&buf, end).unwrap();
    let head = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(reel_log::HEAD_FILE))
        .unwrap();
    head.write_all_at(&1u32.to_ne_bytes(), 12).unwrap();
}

#[test]
fn a_reader_never_returns_a_frame_that_was_uncommitted_when_it_was_read() {
    let (tmp, log) = tmp_log(small_config());
    append_n(&log, 3, 20);
    // Seq 3 is written by a writer that then dies: never published, never acknowledged.
    leave_dead_writers_frame(tmp.path(), 3, b"phantom");
    let mut reader = log.reader(0);
    // This read fills the reader's buffer with seqs 0..3 and the phantom 3.
    let first: Vec<u64> = reader
        .read_batch(2)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(first, [0, 1]);
    // The next writer repairs the tail and stores the real seq 3.
    let writer = reel_log::Log::open(tmp.path()).unwrap();
    writer
        .append(&[Entry {
            value: b"real",
            ..Default::default()
        }])
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let b = reader.read_batch(10).unwrap();
        if b.is_empty() {
            break;
        }
        seen.extend(b.iter().map(|r| (r.seq, r.value.to_vec())));
    }
    assert_eq!(seen, [(2, value_for(2, 20)), (3, b"real".to_vec())]);
}

#[test]
fn a_batch_that_rolls_segments_is_invisible_until_it_is_complete() {
    use reel_log::storage::sim::SimStorage;
    let sim = SimStorage::new();
    let log = open_sim(&sim, small_config());
    append_n(&log, 5, 100);
    let mut reader = log.reader(0);
    assert_eq!(reader.read_batch(100).unwrap().len(), 5);
    // 40 KiB in one batch rolls two 16 KiB segments; the disk fills up at the end.
    for budget in 0..16 {
        sim.set_space_limit(Some(budget));
        let vals: Vec<Vec<u8>> = (0..40).map(|i| value_for(100 + i, 1000)).collect();
        let entries: Vec<Entry<'_>> = vals
            .iter()
            .map(|v| Entry {
                value: v,
                ..Default::default()
            })
            .collect();
        let before = log.next_seq();
        let res = log.append(&entries);
        sim.set_space_limit(None);
        match res {
            Ok(r) => {
                assert_eq!(r, before..before + 40);
                break;
            }
            Err(e) => {
                assert!(matches!(e, reel_log::Error::DiskFull { .. }), "{e}");
                assert_eq!(log.next_seq(), before, "budget {budget}");
                assert!(reader.read_batch(100).unwrap().is_empty());
            }
        }
    }
    // The reader that followed the failures sees the successful batch exactly once.
    let mut n = 0;
    loop {
        let b = reader.read_batch(100).unwrap();
        if b.is_empty() {
            break;
        }
        n += b.len();
    }
    assert_eq!(n, 40);
    assert_eq!(read_all(&log, 0).len(), 45);
    assert!(log.verify().unwrap().is_ok());
}

#[test]
fn a_batch_larger_than_the_capacity_is_refused_whole() {
    let (_tmp, log) = tmp_log(small_config());
    append_n(&log, 3, 100);
    let big = vec![7u8; 4000];
    let entries: Vec<Entry<'_>> = (0..20)
        .map(|_| Entry {
            value: &big,
            ..Default::default()
        })
        .collect();
    let err = log.append(&entries).unwrap_err();
    assert!(
        matches!(err, reel_log::Error::BatchTooLarge { records: 20, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("smaller batches"), "{err}");
    assert_eq!(read_all(&log, 0).len(), 3, "nothing dropped to make room");
}
