//! Power cuts between every two file-system operations of a compaction of a kv store
//! that drops expired tombstones (zero grace).
//!
//! Ordering invariant (FORMAT.md §12, §15): a rewritten segment is complete and synced
//! before it is renamed over the original, and segments are rewritten oldest first, so
//! a record is dropped only while a later record of its key is still in the log. When a
//! rewrite drops a tombstone, the raised `tombstone_horizon` must be durable in
//! `reel.meta` *before* that rename: once the tombstone is gone, a view checkpointed
//! before it can learn of the deletion only by seeing its checkpoint at or below the
//! horizon and rebuilding.
//!
//! Checked at every crash point, for a few seeds each: every live value survives, and no
//! deleted key comes back, neither in a kv view rebuilt from the log nor in one restored
//! from the checkpoint written before the deletions and caught up.
use reel::Durability;
use reel::kv::{KvStore, Path};
use reel_log::storage::sim::SimStorage;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const DIR: &str = "/store";

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

/// Every entry of the store as path text -> JSON value.
fn contents(kv: &KvStore) -> BTreeMap<String, Value> {
    kv.entries(&Path::root())
        .unwrap()
        .into_iter()
        .map(|(path, e)| (path.to_string(), e.json().unwrap()))
        .collect()
}

/// A store whose kv view checkpointed 30 keys, then lost 10 of them to deletions whose
/// tombstones now lie in sealed segments; everything synced. Returns the store, what it
/// holds, and the deleted keys.
fn store_with_deletions(sim: &SimStorage) -> (KvStore, BTreeMap<String, Value>, Vec<String>) {
    let kv = KvStore::builder(DIR)
        .storage(Arc::new(sim.clone()))
        .capacity(160 << 10)
        .durability(Durability::None)
        .open()
        .unwrap();
    let pad = "x".repeat(200);
    for i in 0..300u64 {
        kv.set(&p(&format!("k{}", i % 30)), json!({ "i": i, "pad": pad }))
            .unwrap();
    }
    // The checkpoint that still holds every key.
    kv.view().checkpoint().unwrap();
    let mut deleted = Vec::new();
    for i in (0..30).step_by(3) {
        let key = p(&format!("k{i}"));
        kv.delete(&key).unwrap();
        deleted.push(key.to_string());
    }
    kv.set(&p("k1"), json!("rewritten after the checkpoint"))
        .unwrap();
    // Roll the tombstones into sealed segments so that compaction can drop them.
    for i in 0..100u64 {
        kv.set(
            &p(&format!("filler{}", i % 3)),
            json!({ "i": i, "pad": pad }),
        )
        .unwrap();
    }
    kv.spool().sync().unwrap();
    let expect = contents(&kv);
    (kv, expect, deleted)
}

/// Cuts the power before every operation of the compaction (three seeds each) and hands
/// each recovered store, opened from its checkpoint, to `check`.
fn power_cut_everywhere(check: impl Fn(&KvStore, &BTreeMap<String, Value>, &[String], &str)) {
    let probe = SimStorage::new();
    let (kv, expect, deleted) = store_with_deletions(&probe);
    assert!(deleted.iter().all(|k| !expect.contains_key(k)));
    let before = probe.op_count();
    let report = kv.spool().log().compact(Duration::ZERO).unwrap();
    let ops = probe.op_count() - before;
    assert!(
        report.rewritten >= 4 && kv.spool().log().tombstone_horizon().unwrap() > 0,
        "the compaction rewrites segments and drops tombstones: {report:?}"
    );
    drop(kv);
    for k in 1..=ops {
        for seed in [k, k * 7919 + 3, k * 104_729 + 11] {
            let sim = SimStorage::new();
            let (kv, _, _) = store_with_deletions(&sim);
            sim.capture_at_op(k, seed);
            kv.spool().log().compact(Duration::ZERO).unwrap();
            let image = sim.captured().unwrap();
            let context = format!("crash before {} seed {seed}", sim.captured_op().unwrap());
            let kv = KvStore::builder(DIR)
                .storage(Arc::new(image))
                .create(false)
                .open()
                .unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
            check(&kv, &expect, &deleted, &context);
        }
    }
}

fn assert_holds(
    got: &BTreeMap<String, Value>,
    expect: &BTreeMap<String, Value>,
    deleted: &[String],
    context: &str,
) {
    for key in deleted {
        assert!(
            !got.contains_key(key),
            "{context}: deleted key {key} came back (its write i = {})",
            got[key]["i"]
        );
    }
    assert_eq!(got, expect, "{context}");
}

#[test]
fn a_power_cut_anywhere_in_a_compaction_keeps_live_values_and_a_rebuilt_view_revives_no_deleted_key()
 {
    power_cut_everywhere(|kv, expect, deleted, context| {
        kv.view().rebuild(|_, _| {}).unwrap();
        assert_holds(&contents(kv), expect, deleted, context);
        let v = kv.spool().verify().unwrap();
        assert!(v.is_ok(), "{context}: verify: {:?}", v.damage);
    });
}

#[test]
fn a_power_cut_anywhere_in_a_compaction_revives_no_deleted_key_in_a_view_restored_from_its_checkpoint()
 {
    power_cut_everywhere(|kv, expect, deleted, context| {
        assert_holds(&contents(kv), expect, deleted, context);
    });
}
