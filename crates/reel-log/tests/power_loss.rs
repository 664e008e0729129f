//! Simulated power cuts at every sync point of a workload: recovery must never return a
//! corrupt record or a gap, and with durability `always` every acknowledged append
//! survives.
mod common;
use common::*;
use reel_log::storage::sim::SimStorage;
use reel_log::{Config, Durability, Entry, LogOptions, WhenFull};
use std::sync::Arc;

fn config() -> Config {
    Config {
        capacity: 1 << 20,
        when_full: WhenFull::Reject,
        segment_size: 16 << 10,
        max_record_size: 8 << 10,
    }
}

/// Runs a deterministic workload; returns, per completed append, the sync count when it
/// returned and the seq end it acknowledged.
fn workload(sim: &SimStorage, durability: Durability) -> Vec<(u64, u64)> {
    workload_ops(sim, durability)
        .into_iter()
        .map(|(syncs, _, end)| (syncs, end))
        .collect()
}

/// Like [`workload`], with the operation count too: (syncs, ops, end) per append.
fn workload_ops(sim: &SimStorage, durability: Durability) -> Vec<(u64, u64, u64)> {
    let log = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .create(config())
        .durability(durability)
        .open(DIR)
        .unwrap();
    let mut acks = Vec::new();
    for round in 0..60u64 {
        let n = 1 + round % 5;
        let len = 50 + (round as usize * 97) % 900;
        let start = log.next_seq();
        let vals: Vec<Vec<u8>> = (start..start + n).map(|s| value_for(s, len)).collect();
        let entries: Vec<Entry<'_>> = vals
            .iter()
            .map(|v| Entry {
                value: v,
                ..Default::default()
            })
            .collect();
        let r = log.append(&entries).unwrap();
        acks.push((sim.sync_count(), sim.op_count(), r.end));
    }
    acks
}

fn check_image(image: &SimStorage, must_have: u64, context: &str) -> u64 {
    let log = LogOptions::new().storage(Arc::new(image.clone())).open(DIR);
    let log = match log {
        Ok(l) => l,
        // The crash came before the log's metadata was ever made durable: nothing was acknowledged.
        Err(reel_log::Error::NotALog { .. }) if must_have == 0 => return 0,
        Err(e) => panic!("{context}: reopen failed: {e}"),
    };
    let all = read_all(&log, 0);
    for (i, (seq, v)) in all.iter().enumerate() {
        assert_eq!(*seq, i as u64, "{context}: gap before seq {seq}");
        let expected = value_for(*seq, v.len());
        assert_eq!(v, &expected, "{context}: corrupt record {seq}");
    }
    let n = all.len() as u64;
    assert!(
        n >= must_have,
        "{context}: lost acknowledged records: have {n}, acknowledged {must_have}"
    );
    assert_eq!(log.next_seq(), n, "{context}");
    // The recovered log accepts appends and reads them back.
    append_n(&log, 3, 10);
    assert_eq!(read_all(&log, 0).len() as u64, n + 3, "{context}");
    assert!(
        log.verify().unwrap().is_ok(),
        "{context}: verify after recovery"
    );
    n
}

#[test]
fn always_durability_survives_a_power_cut_at_every_sync_point() {
    let probe = SimStorage::new();
    workload(&probe, Durability::Always);
    let total = probe.sync_count();
    assert!(total > 60, "workload should sync often, got {total}");
    for k in 1..=total {
        for seed in [k, k * 7919 + 3] {
            let sim = SimStorage::new();
            sim.capture_at_sync(k, seed);
            let acks = workload(&sim, Durability::Always);
            let image = sim.captured().expect("capture point reached");
            let must_have = acks
                .iter()
                .filter(|(syncs, _)| *syncs < k)
                .map(|(_, end)| *end)
                .max()
                .unwrap_or(0);
            check_image(&image, must_have, &format!("sync point {k} seed {seed}"));
        }
    }
}

#[test]
fn no_durability_still_recovers_a_clean_prefix_after_power_cuts() {
    for seed in 0..200u64 {
        let sim = SimStorage::new();
        workload(&sim, Durability::None);
        let image = sim.power_loss(seed);
        check_image(&image, 0, &format!("seed {seed}"));
    }
}

/// A process killed (kill -9) between any two operations of an append keeps the page
/// cache and the shared head: the reopened log holds exactly what was published when it
/// died, which includes every append that returned, and never a record written but not
/// yet published (a trusted head's recovery cuts it rather than let it reappear).
#[test]
fn a_process_crash_between_any_two_operations_keeps_exactly_what_was_published() {
    let probe = SimStorage::new();
    let all = workload_ops(&probe, Durability::None);
    let total = probe.op_count();
    let mut cuts = 0;
    for k in 1..=total {
        let sim = SimStorage::new();
        sim.capture_process_crash_at_op(k);
        let acks = workload_ops(&sim, Durability::None);
        let image = sim.captured().expect("crash point reached");
        let context = format!("process crash before {}", sim.captured_op().unwrap());
        let acked = acks
            .iter()
            .filter(|a| a.1 < k)
            .map(|a| a.2)
            .max()
            .unwrap_or(0);
        let in_flight_end = all.iter().find(|a| a.1 >= k).map_or(acked, |a| a.2);
        // A read-only open trusts the surviving head and repairs nothing: it shows what
        // was published at the crash.
        let published = match LogOptions::new()
            .storage(Arc::new(image.clone()))
            .read_only(true)
            .open(DIR)
        {
            Ok(l) => l.next_seq(),
            Err(reel_log::Error::NotALog { .. }) if acked == 0 => continue,
            Err(e) => panic!("{context}: read-only open: {e}"),
        };
        assert!(
            acked <= published && published <= in_flight_end,
            "{context}: published {published}, acknowledged {acked}, in flight up to {in_flight_end}"
        );
        let log = reopen(&image).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
        // The first append runs the writer's recovery of the dead writer's tail.
        let r = append_n(&log, 1, 10);
        assert_eq!(
            r.start, published,
            "{context}: seq of the first append after the crash"
        );
        cuts += u32::from(log.recovery_report().is_some_and(|r| r.cut.is_some()));
        let got = read_all_or_fail(&log, 0, &context);
        assert_eq!(got.len() as u64, published + 1, "{context}");
        for (i, (seq, v)) in got.iter().enumerate() {
            assert_eq!(*seq, i as u64, "{context}: gap before seq {seq}");
            assert_eq!(
                v,
                &value_for(*seq, v.len()),
                "{context}: corrupt record {seq}"
            );
        }
        assert!(log.verify().unwrap().is_ok(), "{context}: verify");
    }
    eprintln!("{total} process crash points, {cuts} with unpublished bytes cut");
    assert!(
        cuts > 0,
        "some crashes landed between a write and its publish"
    );
}

#[test]
fn batch_durability_syncs_in_the_background() {
    let sim = SimStorage::new();
    let log = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .create(config())
        .durability(Durability::Batch)
        .open(DIR)
        .unwrap();
    let syncs = sim.sync_count();
    append_n(&log, 10, 100);
    // Each sync of the flusher is an event; the one that started after the append
    // returned covers it.
    let mut waited_for = syncs + 1;
    loop {
        assert!(
            sim.wait_for_syncs(waited_for, std::time::Duration::from_secs(5)),
            "batch flusher never synced"
        );
        let l = LogOptions::new()
            .storage(Arc::new(sim.power_loss(1)))
            .open(DIR)
            .unwrap();
        if l.next_seq() == 10 {
            break;
        }
        assert!(
            waited_for < syncs + 10,
            "ten syncs and the batch is still not durable"
        );
        waited_for += 1;
    }
    append_n(&log, 5, 100);
    log.sync().unwrap();
    let l = LogOptions::new()
        .storage(Arc::new(sim.power_loss(2)))
        .open(DIR)
        .unwrap();
    assert_eq!(
        l.next_seq(),
        15,
        "explicit sync makes batch appends durable"
    );
}
