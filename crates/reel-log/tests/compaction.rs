//! The compact policy: latest record per key kept, crash-safe rewrites, tombstones.
mod common;
use common::*;
use reel_log::frame::TOMBSTONE;
use reel_log::storage::sim::SimStorage;
use reel_log::{Config, Entry, Error, LogOptions, WhenFull};
use std::collections::BTreeMap;
use std::sync::Arc;
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
    let mut out = BTreeMap::new();
    let mut r = log.reader(0);
    loop {
        let b = r.read_batch(1000).unwrap();
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

#[test]
fn a_power_cut_at_any_point_of_a_compaction_loses_no_live_value() {
    let build = |sim: &SimStorage| {
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
        log.sync().unwrap();
        log
    };
    let probe = SimStorage::new();
    let log = build(&probe);
    let expect = latest(&log);
    let before = probe.sync_count();
    log.compact(Duration::from_secs(3600)).unwrap();
    let syncs = probe.sync_count() - before;
    assert!(syncs >= 4, "{syncs} syncs");
    for k in 1..=syncs {
        let sim = SimStorage::new();
        let log = build(&sim);
        sim.capture_at_sync(k, k);
        log.compact(Duration::from_secs(3600)).unwrap();
        let image = sim.captured().unwrap();
        let log = LogOptions::new()
            .storage(Arc::new(image))
            .open(DIR)
            .unwrap();
        let got = latest(&log);
        assert_eq!(got.len(), expect.len(), "sync point {k}");
        for (key, (_, v)) in &expect {
            assert_eq!(&got[key].1, v, "sync point {k}: key {key}");
        }
        let v = log.verify().unwrap();
        assert!(v.is_ok(), "sync point {k}: {v:?}");
    }
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

/// The ordering invariants of compaction (compaction/mod.rs): the tombstone horizon is
/// durable before the first rename, and groups are swapped in oldest first, so at no
/// crash point can a deleted key come back, and a dropped tombstone is always covered by
/// the horizon.
#[test]
fn a_power_cut_while_compaction_drops_tombstones_never_resurrects_a_deleted_key() {
    let build = |sim: &SimStorage| {
        // Roomy enough that no background compaction starts on its own.
        let log = open_sim(
            sim,
            Config {
                capacity: 4 << 20,
                ..cfg()
            },
        );
        for i in 0..600u64 {
            put(&log, &format!("k{}", i % 40), &value_for(i, 250));
        }
        let mut deleted = Vec::new();
        for i in 0..20 {
            let seq = log
                .append(&[Entry {
                    key: Some(&format!("k{i}")),
                    encoding: TOMBSTONE,
                    ..Default::default()
                }])
                .unwrap()
                .start;
            deleted.push((format!("k{i}"), seq));
        }
        for i in 0..100u64 {
            put(&log, "filler", &value_for(i, 250));
        }
        log.sync().unwrap();
        (log, deleted)
    };
    let probe = SimStorage::new();
    let (log, deleted) = build(&probe);
    let expect = latest(&log);
    let before = probe.sync_count();
    let r = log.compact(Duration::ZERO).unwrap();
    assert!(r.dropped >= 20, "{r:?}");
    let syncs = probe.sync_count() - before;
    for k in 1..=syncs {
        for seed in 0..4 {
            let sim = SimStorage::new();
            let (log, _) = build(&sim);
            sim.capture_at_sync(k, k * 31 + seed);
            log.compact(Duration::ZERO).unwrap();
            let image = sim.captured().unwrap();
            let log = LogOptions::new()
                .storage(Arc::new(image))
                .open(DIR)
                .unwrap();
            assert_eq!(latest(&log), expect, "sync point {k} seed {seed}");
            let present: Vec<u64> = {
                let mut r = log.reader(0);
                let mut seqs = Vec::new();
                loop {
                    let b = r.read_batch(1000).unwrap();
                    if b.is_empty() {
                        break seqs;
                    }
                    seqs.extend(b.iter().map(|r| r.seq));
                }
            };
            for (key, seq) in &deleted {
                if !present.contains(seq) {
                    assert!(
                        log.tombstone_horizon().unwrap() >= *seq,
                        "sync point {k} seed {seed}: tombstone of {key} (seq {seq}) gone, horizon {}",
                        log.tombstone_horizon().unwrap()
                    );
                }
            }
            assert!(log.verify().unwrap().is_ok(), "sync point {k}");
        }
    }
}
