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
        acks.push((sim.sync_count(), r.end));
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

#[test]
fn recovered_tail_keeps_everything_a_process_crash_left_in_the_page_cache() {
    let sim = SimStorage::new();
    let acks = workload(&sim, Durability::None);
    // A process crash keeps the page cache: reopening with the same storage must keep all.
    let n = check_image(&sim, acks.last().unwrap().1, "process crash");
    assert_eq!(n, acks.last().unwrap().1);
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
    append_n(&log, 10, 100);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let image = sim.power_loss(1);
        let l = LogOptions::new()
            .storage(Arc::new(image))
            .open(DIR)
            .unwrap();
        if l.next_seq() == 10 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "batch flusher never synced"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
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
