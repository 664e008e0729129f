//! Power cuts between every two file-system operations of appends that roll segments.
//!
//! Ordering invariant of a roll (FORMAT.md §9.3): the seal and every frame of the old
//! segment are written, then the old segment and its index are synced, and only then is
//! the next segment created and its name made durable (`fsync segments/`). So a later
//! segment never exists on disk without every earlier one being complete and synced,
//! and recovery only ever repairs the tail. With durability `always`, an append returns
//! only after an `fdatasync` covering its frames; with `none`, the frames of a sealed
//! segment are durable from the roll on.
//!
//! Checked at every crash point, for a few seeds each: the log reopens; its records are
//! dense from seq 0 and each is byte for byte a record that was appended at that seq
//! (nothing corrupt, nothing invented); every record an `always` append acknowledged
//! (or, with `none`, every record sealed by a completed roll) is there; the recovered
//! log verifies and accepts appends.
mod common;
use common::*;
use reel_log::storage::sim::SimStorage;
use reel_log::{Config, Durability, Entry, Error, LogOptions, RecoveryReport, WhenFull};
use std::sync::Arc;

fn config() -> Config {
    Config {
        capacity: 1 << 20,
        when_full: WhenFull::DropOldest,
        segment_size: 16 << 10,
        max_record_size: 8 << 10,
    }
}

/// Length of the record at `seq` in the workload.
fn len_of(seq: u64) -> usize {
    700 + (seq as usize * 389) % 2100
}

/// What the workload knew when one append returned.
struct Ack {
    /// Operations performed so far (the append's last one included).
    ops: u64,
    /// End of the acknowledged seqs.
    end: u64,
    /// First seq of the tail segment: every record below it is in a sealed segment.
    sealed_below: u64,
}

/// Creates the log and appends batches that cross about six segment boundaries.
fn workload(sim: &SimStorage, durability: Durability) -> Vec<Ack> {
    let log = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .create(config())
        .durability(durability)
        .open(DIR)
        .unwrap();
    let mut acks = Vec::new();
    for round in 0..20u64 {
        let n = 1 + round % 5;
        let start = log.next_seq();
        let vals: Vec<Vec<u8>> = (start..start + n)
            .map(|s| value_for(s, len_of(s)))
            .collect();
        let entries: Vec<Entry<'_>> = vals
            .iter()
            .map(|v| Entry {
                value: v,
                ..Default::default()
            })
            .collect();
        let r = log.append(&entries).unwrap();
        let sealed_below = log.segments().unwrap().last().unwrap().first_seq;
        acks.push(Ack {
            ops: sim.op_count(),
            end: r.end,
            sealed_below,
        });
    }
    acks
}

/// Checks the recovered image; returns what recovery repaired.
fn check_image(image: &SimStorage, must_have: u64, context: &str) -> RecoveryReport {
    let log = match reopen(image) {
        Ok(l) => l,
        // The crash came before the log's metadata was durable: nothing was acknowledged.
        Err(Error::NotALog { .. }) if must_have == 0 => return RecoveryReport::default(),
        Err(e) => panic!("{context}: reopen failed: {e}"),
    };
    let all = read_all_or_fail(&log, 0, context);
    for (i, (seq, v)) in all.iter().enumerate() {
        assert_eq!(*seq, i as u64, "{context}: gap before seq {seq}");
        assert!(
            *v == value_for(*seq, len_of(*seq)),
            "{context}: record {seq} is not what was appended"
        );
    }
    let n = all.len() as u64;
    assert!(
        n >= must_have,
        "{context}: lost records: have {n}, must have {must_have}"
    );
    assert_eq!(log.next_seq(), n, "{context}");
    let report = log.verify().unwrap();
    assert!(report.is_ok(), "{context}: verify: {:?}", report.damage);
    let repaired = log.recovery_report().unwrap_or_default();
    append_n(&log, 3, 10);
    assert_eq!(
        read_all_or_fail(&log, 0, context).len() as u64,
        n + 3,
        "{context}"
    );
    repaired
}

fn crash_everywhere(durability: Durability) {
    let probe = SimStorage::new();
    let acks = workload(&probe, durability);
    let total = probe.op_count();
    let rolls = acks.last().unwrap().sealed_below;
    assert!(
        rolls > 0
            && probe
                .files()
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "seg"))
                .count()
                >= 6,
        "the workload rolls several segments: {:?}",
        probe.files()
    );
    // Crash points whose recovery cut a torn tail, and removed a half-created segment.
    let (mut cuts, mut removals) = (0, 0);
    for k in 1..=total {
        for seed in seeds_for(k) {
            let sim = SimStorage::new();
            sim.capture_at_op(k, seed);
            let acks = workload(&sim, durability);
            let image = sim.captured().expect("crash point reached");
            let done = acks.iter().filter(|a| a.ops < k);
            let must_have = match durability {
                Durability::Always => done.map(|a| a.end).max(),
                _ => done.map(|a| a.sealed_below).max(),
            }
            .unwrap_or(0);
            let context = format!(
                "{durability:?}: crash before {} seed {seed}",
                sim.captured_op().unwrap()
            );
            let repaired = check_image(&image, must_have, &context);
            cuts += u32::from(repaired.cut.is_some());
            removals += u32::from(!repaired.removed_segments.is_empty());
        }
    }
    eprintln!(
        "{durability:?}: {total} crash points, {cuts} torn tails cut, {removals} half-created segments removed"
    );
    assert!(
        cuts > 0 && removals > 0,
        "the crashes landed inside appends and rolls"
    );
}

#[test]
fn always_appends_survive_a_power_cut_between_any_two_operations_of_a_roll() {
    crash_everywhere(Durability::Always);
}

#[test]
fn sealed_segments_survive_a_power_cut_between_any_two_operations_without_durability() {
    crash_everywhere(Durability::None);
}
