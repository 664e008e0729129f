//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use reel_log::storage::sim::SimStorage;
use reel_log::{Config, Entry, Log, LogOptions, WhenFull};
use std::sync::Arc;

pub const DIR: &str = "/spool";

/// A small log on simulated storage: 64 KiB capacity, 16 KiB segments.
pub fn small_config() -> Config {
    Config {
        capacity: 64 << 10,
        when_full: WhenFull::DropOldest,
        segment_size: 16 << 10,
        max_record_size: 8 << 10,
    }
}

pub fn open_sim(sim: &SimStorage, config: Config) -> Log {
    LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .create(config)
        .open(DIR)
        .expect("open sim log")
}

pub fn value_for(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

pub fn append_n(log: &Log, n: u64, len: usize) -> std::ops::Range<u64> {
    let start = log.next_seq();
    let vals: Vec<Vec<u8>> = (start..start + n).map(|s| value_for(s, len)).collect();
    let entries: Vec<Entry<'_>> = vals
        .iter()
        .map(|v| Entry {
            value: v,
            ..Default::default()
        })
        .collect();
    log.append(&entries).expect("append")
}

/// Reads every committed record from `from`, returning (seq, value) pairs.
pub fn read_all(log: &Log, from: u64) -> Vec<(u64, Vec<u8>)> {
    let mut r = log.reader(from);
    let mut out = Vec::new();
    loop {
        let b = r.read_batch(1000).expect("read");
        if b.is_empty() {
            return out;
        }
        for rec in b.iter() {
            out.push((rec.seq, rec.value.to_vec()));
        }
    }
}

pub fn tmp_log(config: Config) -> (tempfile::TempDir, Log) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = Log::create(tmp.path(), config).expect("create");
    (tmp, log)
}

/// Power-loss seeds tried at crash point `k` of an exhaustive crash test.
pub fn seeds_for(k: u64) -> [u64; 3] {
    [
        k,
        k.wrapping_mul(7919) + 3,
        k.wrapping_mul(104_729) ^ 0x5eed,
    ]
}

/// Opens the log an image holds (running recovery), without creating one.
pub fn reopen(image: &SimStorage) -> reel_log::Result<Log> {
    LogOptions::new().storage(Arc::new(image.clone())).open(DIR)
}

/// Like [`read_all`], but names `context` when a read fails.
pub fn read_all_or_fail(log: &Log, from: u64, context: &str) -> Vec<(u64, Vec<u8>)> {
    let mut r = log.reader(from);
    let mut out = Vec::new();
    loop {
        let b = r
            .read_batch(1000)
            .unwrap_or_else(|e| panic!("{context}: read failed: {e}"));
        if b.is_empty() {
            return out;
        }
        for rec in b.iter() {
            out.push((rec.seq, rec.value.to_vec()));
        }
    }
}
