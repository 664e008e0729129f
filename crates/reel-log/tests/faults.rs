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
    // model[seq] = the value stored at seq.
    let mut model: Vec<Vec<u8>> = (0..20).map(|s| value_for(s, 100)).collect();
    append_n(&log, 20, 100);
    let mut failures = 0;
    // Fail at every depth of the append path (frame writes, index writes, the seal and
    // the new segment's headers of each roll inside the batch).
    for budget in 0..24 {
        sim.set_space_limit(Some(budget));
        let vals: Vec<Vec<u8>> = (0..50)
            .map(|s| value_for(1000 * (budget + 1) + s, 900))
            .collect();
        let entries: Vec<Entry<'_>> = vals
            .iter()
            .map(|v| Entry {
                value: v,
                ..Default::default()
            })
            .collect();
        let before = log.next_seq();
        let outcome = log.append(&entries);
        sim.set_space_limit(None);
        let stored = (log.next_seq() - before) as usize;
        match outcome {
            Ok(r) => assert_eq!((r.start, stored), (before, 50)),
            Err(Error::DiskFull { path }) => {
                failures += 1;
                assert!(
                    path.to_string_lossy().contains("segments"),
                    "{}",
                    path.display()
                );
                // A batch is all or nothing, even when it rolled segments first.
                assert_eq!(stored, 0, "budget {budget}: a failed batch left a prefix");
            }
            Err(e) => panic!("unexpected error {e}"),
        }
        model.extend(vals[..stored].iter().cloned());
        // Nothing stored before is lost or changed; nothing half-written is visible.
        let oldest = log.oldest_seq();
        let all = read_all(&log, oldest);
        assert_eq!(all.len(), model.len() - oldest as usize, "budget {budget}");
        for (seq, v) in &all {
            assert_eq!(v, &model[*seq as usize], "budget {budget}: seq {seq}");
        }
        let r = append_n(&log, 2, 100);
        assert_eq!(r.end - r.start, 2, "still appends after a full disk");
        let n = model.len() as u64;
        model.extend((n..n + 2).map(|s| value_for(s, 100)));
        assert!(log.verify().unwrap().is_ok());
    }
    assert!(
        failures >= 12,
        "the injected faults were hit ({failures} failures)"
    );
}

#[test]
fn a_full_disk_under_concurrent_appends_fails_whole_groups_and_loses_nothing_acknowledged() {
    // Appends from several threads are written as groups with one write; when that write
    // hits a full disk, every append of the group fails and none of it stays.
    let sim = SimStorage::new();
    let config = reel_log::Config {
        capacity: 8 << 20,
        ..small_config()
    };
    let log = open_sim(&sim, config);
    let outcomes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..6u64 {
            let (log, outcomes) = (&log, &outcomes);
            s.spawn(move || {
                for i in 0..300u64 {
                    // Unique per append, so that where it went can be told.
                    let mut v = format!("thread {t} append {i} ").into_bytes();
                    v.resize(200, b'.');
                    let r = log.append(&[Entry {
                        value: &v,
                        ..Default::default()
                    }]);
                    outcomes.lock().unwrap().push((v, r));
                }
            });
        }
        // Let the threads get going, then fill the disk for a while.
        while log.next_seq() < 200 {
            std::thread::yield_now();
        }
        sim.set_space_limit(Some(0));
        while outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, r)| r.is_err())
            .count()
            < 50
        {
            std::thread::yield_now();
        }
        sim.set_space_limit(None);
    });
    let outcomes = outcomes.into_inner().unwrap();
    let stored: std::collections::HashMap<u64, Vec<u8>> = read_all(&log, 0).into_iter().collect();
    let mut acknowledged = 0;
    for (v, r) in &outcomes {
        match r {
            Ok(seqs) => {
                acknowledged += 1;
                assert_eq!(stored.get(&seqs.start), Some(v), "seq {}", seqs.start);
            }
            Err(Error::DiskFull { .. }) => {
                assert!(
                    !stored.values().any(|s| s == v),
                    "a failed append is stored"
                );
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(
        stored.len(),
        acknowledged,
        "only acknowledged appends are stored"
    );
    assert_eq!(log.next_seq(), acknowledged as u64, "seqs stay dense");
    assert!(log.verify().unwrap().is_ok());
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
