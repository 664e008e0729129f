//! Injected faults: a full disk and failing fsync.
mod common;
use common::*;
use reel_log::storage::sim::SimStorage;
use reel_log::{Durability, Entry, Error, LogOptions};
use std::sync::Arc;

#[test]
fn a_full_disk_fails_the_append_cleanly_and_the_log_stays_usable() {
    let sim = SimStorage::new();
    let log = open_sim(&sim, small_config());
    append_n(&log, 20, 100);
    // Fail at several depths of the append path (frame write, index write, roll).
    for budget in 0..4 {
        sim.set_space_limit(Some(budget));
        let vals: Vec<Vec<u8>> = (0..50).map(|s| value_for(1000 + s, 900)).collect();
        let entries: Vec<Entry<'_>> = vals
            .iter()
            .map(|v| Entry {
                value: v,
                ..Default::default()
            })
            .collect();
        match log.append(&entries) {
            Err(Error::DiskFull { path }) => assert!(path.to_string_lossy().contains("segments")),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => {}
        }
        sim.set_space_limit(None);
        let all = read_all(&log, log.oldest_seq());
        assert!(all.iter().all(|(s, v)| v.len() == 100
            || v == &value_for(1000 + (s - all[0].0) % 50, 900)
            || v.len() == 900));
        let before = log.next_seq();
        append_n(&log, 2, 100);
        assert_eq!(
            log.next_seq(),
            before + 2,
            "still appends after a full disk"
        );
        assert!(log.verify().unwrap().is_ok());
    }
}

#[test]
fn a_failed_fsync_poisons_the_writer_until_reopened() {
    let sim = SimStorage::new();
    let log = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .create(small_config())
        .durability(Durability::Always)
        .open(DIR)
        .unwrap();
    append_n(&log, 3, 10);
    sim.set_fail_sync(true);
    let err = log
        .append(&[Entry {
            value: b"x",
            ..Default::default()
        }])
        .unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    sim.set_fail_sync(false);
    let err = log
        .append(&[Entry {
            value: b"y",
            ..Default::default()
        }])
        .unwrap_err();
    assert!(
        matches!(err, Error::Poisoned { .. }),
        "stays poisoned: {err}"
    );
    drop(log);
    let log = open_sim(&sim, small_config());
    append_n(&log, 1, 10);
    assert!(read_all(&log, 0).len() >= 4);
}
