//! Power cuts between every two file-system operations of reconfigurations.
//!
//! Ordering invariant of a `reel.meta` update (FORMAT.md §4): the new file is written to
//! `reel.meta.tmp` and synced *before* it is renamed over `reel.meta`, and the directory
//! is synced before the update returns. So `reel.meta` is always a complete file, the
//! old one until the rename is durable and the new one from then on; a leftover `.tmp`
//! is ignored and overwritten by the next update.
//!
//! Checked at every crash point, for a few seeds each: the log opens with the old or the
//! new configuration (never "not a log", never a damaged file), keeps its identity and
//! every record, verifies, and can be reconfigured and appended to again.
mod common;
use common::*;
use reel_log::storage::sim::SimStorage;
use reel_log::{Config, Durability, Log, LogOptions, WhenFull};
use std::sync::Arc;

/// The configurations the workload moves through (capacity, policy).
const STEPS: [(u64, WhenFull); 3] = [
    (2 << 20, WhenFull::DropOldest),
    (4 << 20, WhenFull::Compact),
    (3 << 20, WhenFull::Reject),
];

/// A log with 30 durable records, configured as `Config::with_capacity(1 MiB, reject)`.
fn log_with_records(sim: &SimStorage) -> Log {
    let log = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .create(Config::with_capacity(1 << 20, WhenFull::Reject))
        .durability(Durability::Always)
        .open(DIR)
        .unwrap();
    append_n(&log, 30, 200);
    log
}

/// Reconfigures through `STEPS`; returns the operations done when each returned.
fn reconfigure_all(sim: &SimStorage, log: &Log) -> Vec<u64> {
    STEPS
        .iter()
        .map(|&(capacity, policy)| {
            log.reconfigure(capacity, policy).unwrap();
            sim.op_count()
        })
        .collect()
}

#[test]
fn a_reconfiguration_leaves_the_old_or_the_new_config_after_a_power_cut_between_any_two_operations()
{
    let probe = SimStorage::new();
    let log = log_with_records(&probe);
    let mut configs = vec![log.config()];
    let before = probe.op_count();
    for &(capacity, policy) in &STEPS {
        log.reconfigure(capacity, policy).unwrap();
        configs.push(log.config());
    }
    let ops = probe.op_count() - before;
    assert!(ops >= 15, "{ops} operations");
    let mut seen_tmp = false;
    for k in 1..=ops {
        for seed in seeds_for(k) {
            let sim = SimStorage::new();
            let log = log_with_records(&sim);
            let log_id = log.log_id();
            sim.capture_at_op(k, seed);
            let done = reconfigure_all(&sim, &log);
            let image = sim.captured().unwrap();
            let context = format!("crash before {} seed {seed}", sim.captured_op().unwrap());
            let step = done.iter().filter(|&&o| o < before + k).count();
            seen_tmp |= image.files().iter().any(|p| p.ends_with("reel.meta.tmp"));
            let log = reopen(&image).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
            let config = log.config();
            assert!(
                config == configs[step] || config == configs[step + 1],
                "{context}: config {config:?} is neither {:?} nor {:?}",
                configs[step],
                configs[step + 1]
            );
            assert_eq!(log.log_id(), log_id, "{context}: identity");
            let all = read_all_or_fail(&log, 0, &context);
            assert_eq!(all.len(), 30, "{context}: records");
            for (seq, v) in &all {
                assert_eq!(v, &value_for(*seq, 200), "{context}: record {seq}");
            }
            assert!(log.verify().unwrap().is_ok(), "{context}: verify");
            // The next update works over whatever the crash left (a stale .tmp included).
            log.reconfigure(5 << 20, WhenFull::DropOldest)
                .unwrap_or_else(|e| panic!("{context}: reconfigure after the crash: {e}"));
            append_n(&log, 1, 10);
            let again = reopen(&image.power_loss(seed)).unwrap();
            assert_eq!(
                again.config().capacity,
                5 << 20,
                "{context}: the later update is durable"
            );
        }
    }
    assert!(seen_tmp, "some crash points left reel.meta.tmp behind");
}
