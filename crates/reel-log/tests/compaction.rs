//! The compact policy: latest record per key kept, crash-safe rewrites, tombstones.
mod common;
use common::*;
use reel_log::frame::TOMBSTONE;
use reel_log::storage::sim::SimStorage;
use reel_log::{Config, Entry, Error, WhenFull};
use std::collections::BTreeMap;
use std::time::Duration;

fn cfg() -> Config {
    Config {
        capacity: 256 << 10,
        when_full: WhenFull::Compact,
        segment_size: 16 << 10,
        max_record_size: 4096,
    }
}

/// Latest (seq, value) per key, as the log says after reading it all.
fn latest(log: &reel_log::Log) -> BTreeMap<String, (u64, Vec<u8>)> {
    latest_or_fail(log, "read")
}

/// Like [`latest`], naming `context` when a read fails.
fn latest_or_fail(log: &reel_log::Log, context: &str) -> BTreeMap<String, (u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut r = log.reader(0);
    loop {
        let b = r
            .read_batch(1000)
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        if b.is_empty() {
            return out;
        }
        for rec in b.iter() {
            let k = rec.key.unwrap().to_string();
            if rec.encoding == TOMBSTONE {
                out.remove(&k);
            } else {
                out.insert(k, (rec.seq, rec.value.to_vec()));
            }
        }
    }
}

fn put(log: &reel_log::Log, key: &str, v: &[u8]) -> u64 {
    log.append(&[Entry {
        key: Some(key),
        value: v,
        encoding: 1,
        ..Default::default()
    }])
    .unwrap()
    .start
}

#[test]
fn overwriting_a_few_keys_forever_never_fills_a_compacted_log() {
    let sim = SimStorage::new();
    let log = open_sim(&sim, cfg());
    let mut model = BTreeMap::new();
    for i in 0..20_000u64 {
        let k = format!("key{}", i % 50);
        let v = value_for(i, 200);
        let seq = put(&log, &k, &v);
        model.insert(k, (seq, v));
        let on_disk: u64 = log.segments().unwrap().iter().map(|s| s.bytes).sum();
        assert!(
            on_disk <= cfg().capacity + cfg().segment_size,
            "{on_disk} bytes at write {i}"
        );
    }
    assert_eq!(latest(&log), model, "every key's latest value survives");
    assert!(log.verify().unwrap().is_ok());
    // Reading everything sees increasing seqs with gaps, never a lost range.
    let mut r = log.reader(0);
    let b = r.read_batch(10).unwrap();
    assert_eq!(b.lost(), None);
}

#[test]
fn live_data_above_capacity_is_refused_not_dropped() {
    let sim = SimStorage::new();
    let log = open_sim(&sim, cfg());
    let mut stored = 0u64;
    let err = loop {
        let v = value_for(stored, 1000);
        match log.append(&[Entry {
            key: Some(&format!("k{stored}")),
            value: &v,
            encoding: 1,
            ..Default::default()
        }]) {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::Full { .. }), "{err}");
    assert!(err.to_string().contains("compact"), "{err}");
    assert_eq!(
        latest(&log).len() as u64,
        stored,
        "no live value was dropped"
    );
}

#[test]
fn tombstones_go_after_the_grace_period_and_take_their_key_with_them() {
    let sim = SimStorage::new();
    let log = open_sim(&sim, cfg());
    for i in 0..300u64 {
        put(&log, &format!("k{}", i % 30), &value_for(i, 300));
    }
    for i in 0..10 {
        log.append(&[Entry {
            key: Some(&format!("k{i}")),
            encoding: TOMBSTONE,
            ..Default::default()
        }])
        .unwrap();
    }
    // Roll the tombstones into a sealed segment so compaction can see them go.
    for i in 0..100u64 {
        put(&log, "filler", &value_for(i, 300));
    }
    let before = latest(&log);
    let r = log.compact(Duration::from_secs(3600)).unwrap();
    assert!(r.dropped > 0 && r.bytes_after < r.bytes_before, "{r:?}");
    assert_eq!(latest(&log), before);
    let r = log.compact(Duration::ZERO).unwrap();
    assert!(r.dropped >= 10, "expired tombstones dropped: {r:?}");
    assert_eq!(latest(&log), before);
    assert!(log.verify().unwrap().is_ok());
}

// Ordering invariant of compaction (FORMAT.md §12): a rewritten segment is complete and
// synced before it is renamed over the original; segments are rewritten oldest first, so a
// record is dropped only while a later record of its key is still in the log, in the same
// rewrite or in a later segment; and when a rewrite drops a tombstone, the tombstone
// horizon in `reel.meta` must be durable before that rename, because once the tombstone
// is gone only the horizon tells state derived before it that a deletion happened.

/// A log of overwritten values and deletions, synced, whose tombstones are all in sealed
/// segments; returns it with the latest value of every live key and the seq of every
/// deleted key's tombstone.
fn log_with_deletions(
    sim: &SimStorage,
) -> (
    reel_log::Log,
    BTreeMap<String, Vec<u8>>,
    BTreeMap<String, u64>,
) {
    let log = open_sim(
        sim,
        Config {
            when_full: WhenFull::Reject,
            ..cfg()
        },
    );
    for i in 0..600u64 {
        put(&log, &format!("k{}", i % 40), &value_for(i, 250));
    }
    let mut deleted = BTreeMap::new();
    for i in (0..40).step_by(4) {
        let key = format!("k{i}");
        let seq = log
            .append(&[Entry {
                key: Some(&key),
                encoding: TOMBSTONE,
                ..Default::default()
            }])
            .unwrap()
            .start;
        deleted.insert(key, seq);
    }
    // Roll the tombstones into a sealed segment so that compaction can drop them.
    for i in 0..80u64 {
        put(&log, &format!("filler{}", i % 3), &value_for(i, 250));
    }
    log.sync().unwrap();
    let live = latest(&log).into_iter().map(|(k, (_, v))| (k, v)).collect();
    (log, live, deleted)
}

/// Cuts the power before every operation of a compaction with zero tombstone grace, a
/// few seeds each, and checks the recovered log; with `check_horizon`, also that every
/// tombstone gone from the log is at or below the durable tombstone horizon.
fn power_cut_everywhere_in_a_compaction(check_horizon: bool) {
    let probe = SimStorage::new();
    let (log, live, deleted) = log_with_deletions(&probe);
    let before = probe.op_count();
    let report = log.compact(Duration::ZERO).unwrap();
    let ops = probe.op_count() - before;
    assert!(report.rewritten > 3, "{report:?}");
    assert!(
        log.tombstone_horizon().unwrap() >= *deleted.values().max().unwrap(),
        "the tombstones were dropped"
    );
    for k in 1..=ops {
        for seed in seeds_for(k) {
            let sim = SimStorage::new();
            let (log, _, _) = log_with_deletions(&sim);
            sim.capture_at_op(k, seed);
            log.compact(Duration::ZERO).unwrap();
            let image = sim.captured().unwrap();
            let context = format!("crash before {} seed {seed}", sim.captured_op().unwrap());
            let log = reopen(&image).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
            let got: BTreeMap<String, Vec<u8>> = latest_or_fail(&log, &context)
                .into_iter()
                .map(|(k, (_, v))| (k, v))
                .collect();
            for key in deleted.keys() {
                assert!(!got.contains_key(key), "{context}: deleted {key} came back");
            }
            assert_eq!(got, live, "{context}: live values");
            let v = log.verify().unwrap();
            assert!(v.is_ok(), "{context}: verify: {:?}", v.damage);
            if check_horizon {
                let mut tombstones = std::collections::BTreeSet::new();
                let mut r = log.reader(0);
                loop {
                    let b = r.read_batch(1000).unwrap();
                    if b.is_empty() {
                        break;
                    }
                    tombstones.extend(b.iter().filter(|r| r.encoding == TOMBSTONE).map(|r| r.seq));
                }
                let horizon = log.tombstone_horizon().unwrap();
                for (key, seq) in &deleted {
                    assert!(
                        tombstones.contains(seq) || horizon >= *seq,
                        "{context}: the tombstone of {key} (seq {seq}) is gone but the horizon is {horizon}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_power_cut_at_any_point_of_a_compaction_loses_no_live_value_and_revives_no_deleted_key() {
    power_cut_everywhere_in_a_compaction(false);
}

#[test]
fn a_power_cut_at_any_point_of_a_compaction_never_drops_a_tombstone_above_the_horizon() {
    power_cut_everywhere_in_a_compaction(true);
}

#[test]
fn compaction_merges_the_small_segments_it_leaves() {
    let sim = SimStorage::new();
    let log = open_sim(
        &sim,
        Config {
            capacity: 4 << 20,
            ..cfg()
        },
    );
    // 40 keys overwritten across ~60 segments: each compacted alone would stay a file.
    for i in 0..4000u64 {
        put(&log, &format!("k{}", i % 40), &value_for(i, 200));
    }
    let expect = latest(&log);
    let before = log.segments().unwrap().len();
    let r = log.compact(Duration::from_secs(3600)).unwrap();
    let after = log.segments().unwrap().len();
    assert!(
        before > 40 && after <= 3,
        "{before} -> {after} segments: {r:?}"
    );
    assert_eq!(r.merged as usize, before - after, "{r:?}");
    assert_eq!(latest(&log), expect);
    assert!(log.verify().unwrap().is_ok());
    // A reader positioned anywhere, even inside a merged range, reads the merged file.
    let seq = expect.values().map(|(s, _)| *s).min().unwrap();
    assert_eq!(
        log.reader(seq)
            .read_batch(1)
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .seq,
        seq
    );
    // Appends went on, and the merged log keeps taking them.
    put(&log, "k0", b"later");
    assert_eq!(latest(&log)["k0"].1, b"later");
}

#[test]
fn a_guarded_append_that_finds_the_log_full_compacts_and_decides_again() {
    // Filled under `reject` (no compaction behind the writer's back), then switched to
    // `compact`: the log is nearly full of superseded values, so the pressure check
    // before the decision passes and the decided record does not fit. This is what a
    // compare-and-set meets when another process filled the log after that check.
    let sim = SimStorage::new();
    let log = open_sim(
        &sim,
        Config {
            when_full: WhenFull::Reject,
            ..cfg()
        },
    );
    let value = vec![7u8; 1000];
    while log.used_bytes() + 2 * value.len() as u64 <= cfg().capacity {
        put(&log, "same", &value);
    }
    log.reconfigure(cfg().capacity, WhenFull::Compact).unwrap();
    let mut decisions = 0;
    let big = vec![9u8; 3000];
    let (range, ()) = log
        .append_guarded(reel_log::Durability::None, |_| {
            decisions += 1;
            let e = reel_log::OwnedEntry {
                key: Some("cas".into()),
                value: big.clone(),
                encoding: 1,
                ..Default::default()
            };
            Ok::<_, Error>((vec![e], ()))
        })
        .expect("a compaction frees the superseded values");
    assert_eq!(decisions, 2, "decided again after the compaction");
    let all = latest(&log);
    assert_eq!(all["cas"], (range.start, big));
    assert_eq!(all["same"].1, value);
    assert!(log.used_bytes() <= cfg().capacity);
}
