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
