//! `Log::append_frames` (replication) and the follower marker.
mod common;
use common::*;
use reel_log::storage::sim::SimStorage;
use reel_log::{Durability, Error, LogOptions};
use std::sync::Arc;

/// The frames of `log` from `from`, as stored.
fn frames(log: &reel_log::Log, from: u64) -> Vec<u8> {
    let mut r = log.reader(from);
    let mut out = Vec::new();
    loop {
        let b = r.read_batch(100).unwrap();
        if b.is_empty() {
            return out;
        }
        b.for_each_frame(|_, f| out.extend_from_slice(f));
    }
}

#[test]
fn copied_frames_read_back_identical_and_must_continue_the_log() {
    let src_sim = SimStorage::new();
    let src = open_sim(&src_sim, small_config());
    append_n(&src, 30, 300);
    let all = frames(&src, 0);
    let dst_sim = SimStorage::new();
    let dst = open_sim(&dst_sim, small_config());
    // Not starting at the next seq: refused.
    let later = frames(&src, 5);
    assert!(matches!(
        dst.append_frames(&later, Durability::None),
        Err(Error::NotNext {
            expected: 0,
            got: 5
        })
    ));
    // A flipped byte: refused, nothing stored.
    let mut bad = all.clone();
    bad[40] ^= 1;
    assert!(dst.append_frames(&bad, Durability::None).is_err());
    assert_eq!(dst.next_seq(), 0);
    // In two batches (rolling segments on the way): the same bytes come back.
    let cut = all.len() / 2;
    let cut = {
        let mut at = 0;
        while at < cut {
            at += reel_log::frame::peek_len(&all[at..]).unwrap();
        }
        at
    };
    dst.append_frames(&all[..cut], Durability::Always).unwrap();
    dst.append_frames(&all[cut..], Durability::Always).unwrap();
    assert_eq!(dst.next_seq(), 30);
    assert_eq!(frames(&dst, 0), all);
    assert_eq!(read_all(&dst, 0), read_all(&src, 0));
    assert!(dst.verify().unwrap().is_ok());
}

#[test]
fn a_follower_refuses_appends_except_through_its_replica_handle() {
    let sim = SimStorage::new();
    let log = open_sim(&sim, small_config());
    drop(log);
    reel_log::follow::write_source(&sim, std::path::Path::new(DIR), "http://src:7370/ev").unwrap();
    let plain = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .open(DIR)
        .unwrap();
    assert_eq!(plain.follows(), Some("http://src:7370/ev"));
    let e = plain
        .append(&[reel_log::Entry {
            value: b"x",
            ..Default::default()
        }])
        .unwrap_err();
    assert!(
        e.to_string().contains("follower of http://src:7370/ev"),
        "{e}"
    );
    let replica = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .replica(true)
        .open(DIR)
        .unwrap();
    assert_eq!(replica.follows(), None);
    replica
        .append(&[reel_log::Entry {
            value: b"x",
            ..Default::default()
        }])
        .unwrap();
    // A damaged marker still refuses (source unknown), and promotion lifts it.
    let path = std::path::Path::new(DIR).join(reel_log::follow::FOLLOW_FILE);
    {
        use reel_log::storage::{OpenMode, Storage};
        let f = sim.open(&path, OpenMode::CreateTruncate).unwrap();
        f.write_all_at(b"reel-follow 1\nsource zzz\ncrc32c 00000000\n", 0)
            .unwrap();
    }
    let damaged = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .open(DIR)
        .unwrap();
    assert_eq!(damaged.follows(), Some("?"));
    reel_log::follow::remove(&sim, std::path::Path::new(DIR)).unwrap();
    let promoted = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .open(DIR)
        .unwrap();
    assert_eq!(promoted.follows(), None);
}

#[test]
fn a_skipped_gap_reads_as_a_jump_verifies_clean_and_survives_reopening() {
    let src_sim = SimStorage::new();
    let src = open_sim(&src_sim, small_config());
    append_n(&src, 60, 300);
    let dst_sim = SimStorage::new();
    let dst = open_sim(&dst_sim, small_config());
    // An empty log starting at seq 7 (`--from-seq 7`), then a gap 20..45 mid-way.
    assert_eq!(dst.skip_to(7).unwrap(), 0..7);
    assert_eq!((dst.oldest_seq(), dst.next_seq()), (7, 7));
    assert_eq!(
        dst.segments().unwrap().len(),
        1,
        "the empty first segment went"
    );
    let upto = |from: u64, to: u64| -> Vec<u8> {
        let all = frames(&src, from);
        let mut at = 0;
        for _ in from..to {
            at += reel_log::frame::peek_len(&all[at..]).unwrap();
        }
        all[..at].to_vec()
    };
    dst.append_frames(&upto(7, 20), Durability::None).unwrap();
    assert!(matches!(
        dst.skip_to(19),
        Err(Error::InvalidArgument(m)) if m.contains("holds seqs up to 19")
    ));
    assert_eq!(dst.skip_to(20).unwrap(), 20..20);
    assert_eq!(dst.skip_to(45).unwrap(), 20..45);
    // Durable once it returns: a power cut keeps the gap and what came before it.
    for seed in 0..4 {
        let cut = reopen(&dst_sim.power_loss(seed)).unwrap();
        assert_eq!(cut.next_seq(), 45, "seed {seed}");
        assert_eq!(read_all(&cut, 0).len(), 13, "seed {seed}");
    }
    // After the gap the frames must continue at its end.
    assert!(matches!(
        dst.append_frames(&upto(20, 25), Durability::None),
        Err(Error::NotNext {
            expected: 45,
            got: 20
        })
    ));
    dst.append_frames(&frames(&src, 45), Durability::None)
        .unwrap();
    let want: Vec<_> = read_all(&src, 0)
        .into_iter()
        .filter(|(s, _)| (7..20).contains(s) || *s >= 45)
        .collect();
    assert_eq!(read_all(&dst, 0), want);
    assert!(dst.verify().unwrap().is_ok(), "{:?}", dst.verify().unwrap());
    assert!(dst.read_record(30, |r| r.seq).unwrap().is_none());
    assert_eq!(dst.read_record(45, |r| r.seq).unwrap(), Some(45));
    // A process crash: everything stays as it was.
    let image = dst_sim.process_crash();
    drop(dst);
    let again = reopen(&image).unwrap();
    assert_eq!(again.next_seq(), 60);
    assert_eq!(read_all(&again, 0), want);
    assert!(again.verify().unwrap().is_ok());
    // A store of its own (not a replica handle of a follower) also may skip only when
    // it may append at all: a read-only handle may not.
    let ro = LogOptions::new()
        .read_only(true)
        .storage(Arc::new(image))
        .open(std::path::Path::new(DIR));
    assert!(ro.unwrap().skip_to(100).is_err());
}

/// A replica that copies `upto` records of `src` (from `from`), then skips to `gap_to`.
fn copy_then_skip(sim: &SimStorage, src: &reel_log::Log, from: u64, upto: u64, gap_to: u64) {
    let dst = open_sim(sim, small_config());
    if from > 0 {
        dst.skip_to(from).unwrap();
    }
    let all = frames(src, from);
    let mut at = 0;
    for _ in from..upto {
        at += reel_log::frame::peek_len(&all[at..]).unwrap();
    }
    dst.append_frames(&all[..at], Durability::None).unwrap();
    let _ = dst.skip_to(gap_to);
}

/// A crash (kill -9 or power cut) at any operation of a skip leaves the log either
/// before the gap or after it, verifying clean, the records before it intact, and
/// appending frames from wherever it ended up works.
#[test]
fn a_crash_at_any_point_of_a_skip_leaves_the_log_before_or_after_the_gap() {
    let src_sim = SimStorage::new();
    let src = open_sim(&src_sim, small_config());
    append_n(&src, 60, 300);
    // Both shapes: a gap after records, and an empty log starting late (`--from-seq`).
    for (from, upto, gap_to) in [(0, 20, 45), (0, 0, 30)] {
        let probe = SimStorage::new();
        copy_then_skip(&probe, &src, from, upto, 0);
        let before = probe.op_count();
        let probe = SimStorage::new();
        copy_then_skip(&probe, &src, from, upto, gap_to);
        let total = probe.op_count();
        assert!(total > before + 3, "the skip does some work");
        for k in before + 1..=total {
            for power in [false, true] {
                let sim = SimStorage::new();
                if power {
                    sim.capture_at_op(k, k);
                } else {
                    sim.capture_process_crash_at_op(k);
                }
                copy_then_skip(&sim, &src, from, upto, gap_to);
                let image = sim.captured().expect("crash point reached");
                let ctx = format!(
                    "{} before {} (gap {upto}..{gap_to})",
                    if power { "power cut" } else { "kill" },
                    sim.captured_op().unwrap()
                );
                let log = reopen(&image).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
                let next = log.next_seq();
                let report = log.verify().unwrap();
                assert!(report.is_ok(), "{ctx}: {report:?}");
                let kept = read_all(&log, 0);
                // Records before the gap were written without a sync: a power cut may
                // take them, never anything else.
                let want: Vec<_> = read_all(&src, 0).into_iter().take(upto as usize).collect();
                assert!(want.starts_with(&kept), "{ctx}: {kept:?}");
                assert!(
                    next == gap_to || next == kept.len() as u64,
                    "{ctx}: next {next}"
                );
                if next == gap_to {
                    assert_eq!(
                        kept.len() as u64,
                        upto,
                        "{ctx}: records before the gap lost"
                    );
                }
                // Copying continues from wherever it ended up.
                let log = LogOptions::new()
                    .storage(Arc::new(image))
                    .open(std::path::Path::new(DIR))
                    .unwrap();
                log.append_frames(&frames(&src, next), Durability::None)
                    .unwrap_or_else(|e| panic!("{ctx}: append after: {e}"));
                assert_eq!(log.next_seq(), 60, "{ctx}");
                assert!(log.verify().unwrap().is_ok(), "{ctx}");
            }
        }
    }
}
