//! Power cuts between every two file-system operations of shrinking a drop-oldest log.
//!
//! Ordering invariant of a shrink (FORMAT.md §4, §12): the new configuration is durable
//! in `reel.meta` *before* the first segment is deleted, because a log that lost
//! segments must not reopen with the capacity that kept them; segments are then deleted
//! oldest first, each `.seg` before its `.idx`, with `fsync segments/` after each, so
//! what remains is always a suffix of the log that ends at its committed end.
//!
//! Checked at every crash point, for a few seeds each: the log reopens with the old or
//! the new configuration, and with the old one only if no segment was deleted; its
//! records are dense from its oldest to the end of what was appended, each intact; it
//! never lost more than the shrink deletes; it verifies; and, if the new configuration
//! survived, the next append finishes the shrink.
mod common;
use common::*;
use reel_log::storage::sim::SimStorage;
use reel_log::{Config, Log, LogOptions, WhenFull};
use std::sync::Arc;

const NEW_CAPACITY: u64 = 96 << 10;

fn config() -> Config {
    Config {
        capacity: 512 << 10,
        when_full: WhenFull::DropOldest,
        segment_size: 16 << 10,
        max_record_size: 8 << 10,
    }
}

/// A drop-oldest log of about 400 KiB of durable records in 16 KiB segments.
fn full_log(sim: &SimStorage) -> Log {
    let log = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .create(config())
        .open(DIR)
        .unwrap();
    for _ in 0..40 {
        append_n(&log, 10, 1000);
    }
    log.sync().unwrap();
    log
}

#[test]
fn shrinking_a_log_keeps_a_clean_suffix_after_a_power_cut_between_any_two_operations() {
    let probe = SimStorage::new();
    let log = full_log(&probe);
    let end = log.next_seq();
    let old = log.config();
    let before = probe.op_count();
    log.reconfigure(NEW_CAPACITY, WhenFull::DropOldest).unwrap();
    let ops = probe.op_count() - before;
    let new = log.config();
    // What the finished shrink keeps: nothing below this seq survives it.
    let kept_from = log.oldest_seq();
    assert!(
        kept_from > 0 && log.used_bytes() <= NEW_CAPACITY,
        "the shrink deletes segments"
    );
    let mut partial = 0;
    for k in 1..=ops {
        for seed in seeds_for(k) {
            let sim = SimStorage::new();
            let log = full_log(&sim);
            sim.capture_at_op(k, seed);
            log.reconfigure(NEW_CAPACITY, WhenFull::DropOldest).unwrap();
            let image = sim.captured().unwrap();
            let context = format!("crash before {} seed {seed}", sim.captured_op().unwrap());
            let log = reopen(&image).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
            let config = log.config();
            assert!(
                config == old || config == new,
                "{context}: config {config:?}"
            );
            let oldest = log.oldest_seq();
            assert!(
                oldest == 0 || config == new,
                "{context}: segments below {oldest} were deleted but the old capacity survived"
            );
            assert!(
                oldest <= kept_from,
                "{context}: lost records up to {oldest}, the shrink keeps from {kept_from}"
            );
            partial += u32::from(oldest > 0 && oldest < kept_from);
            let all = read_all_or_fail(&log, oldest, &context);
            assert_eq!(
                all.len() as u64,
                end - oldest,
                "{context}: records from {oldest} to {end}"
            );
            for (i, (seq, v)) in all.iter().enumerate() {
                assert_eq!(*seq, oldest + i as u64, "{context}: gap");
                assert_eq!(v, &value_for(*seq, 1000), "{context}: record {seq}");
            }
            let report = log.verify().unwrap();
            assert!(report.is_ok(), "{context}: verify: {:?}", report.damage);
            append_n(&log, 1, 1000);
            if config == new {
                assert!(
                    log.used_bytes() <= NEW_CAPACITY,
                    "{context}: the next append finishes the shrink ({} bytes used)",
                    log.used_bytes()
                );
            }
        }
    }
    assert!(
        partial > 0,
        "some crash points fell between two segment deletions"
    );
}
