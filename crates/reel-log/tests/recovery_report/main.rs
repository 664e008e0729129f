//! What recovery repairs, and what its report says about it (FORMAT.md §10): a torn tail
//! is cut, damage with valid records after it is kept, a dead writer's unpublished frames
//! and segments are removed, a tail whose header never reached the disk is removed (or
//! rewritten when it is the only segment), any other damaged tail header fails the open,
//! compacted tails keep their gaps, and the rebuilt index has an entry every 4 KiB.
//!
//! Every test asserts the whole `RecoveryReport` (cut, removed segments, rebuilt index
//! entries, damage), then that the log goes on: the right next seq, the records readable,
//! `verify` clean, `used_bytes` equal to the segment files' sizes.
#[path = "../common.rs"]
mod common;
use common::*;
use reel_log::frame::{self, Seal};
use reel_log::index::{self, IndexEntry};
use reel_log::segment;
use reel_log::storage::sim::SimStorage;
use reel_log::storage::{OpenMode, Storage};
use reel_log::{Config, CutTail, Entry, Error, Log, LogOptions, RecoveryReport, TailDamage};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod damage;
mod dead_writers;
mod index_entries;
mod tail_headers;
mod torn_or_damaged;
mod torn_tails;

/// Records of 200 value bytes make 228-byte frames.
const LEN: usize = 200;
const FRAME: u64 = 28 + LEN as u64;

/// A 1 MiB log whose 512 KiB segments keep every record of these tests in the tail.
fn big_tail_config() -> Config {
    let mut cfg = small_config();
    cfg.capacity = 1 << 20;
    cfg.segment_size = 512 << 10;
    cfg
}

/// `n` records of `LEN` bytes in the tail, synced (so a power cut keeps them all);
/// returns the tail's path.
fn synced_tail(sim: &SimStorage, n: u64) -> PathBuf {
    let log = open_sim(sim, big_tail_config());
    append_n(&log, n, LEN);
    log.sync().unwrap();
    log.segments().unwrap().last().unwrap().path.clone()
}

/// Offset of the frame of `seq` in a tail of `LEN`-byte records starting at seq 0.
fn frame_at(seq: u64) -> u64 {
    32 + FRAME * seq
}

/// Offsets where the writer (and recovery) put index entries for `n` consecutive frames
/// of `FRAME` bytes: the first frame, then the first frame at least 4096 bytes after the
/// previous entry.
fn expected_index_offsets(n: u64) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for seq in 0..n {
        let at = frame_at(seq);
        if out
            .last()
            .is_none_or(|&last| at >= last + index::INDEX_INTERVAL)
        {
            out.push(at);
        }
    }
    out
}

fn file_bytes(storage: &SimStorage, path: &Path) -> Vec<u8> {
    let f = storage.open(path, OpenMode::Read).unwrap();
    let mut buf = vec![0u8; f.len().unwrap() as usize];
    f.read_exact_at(&mut buf, 0).unwrap();
    buf
}

fn index_of(storage: &SimStorage, seg: &Path, first: u64) -> Vec<IndexEntry> {
    let p = seg.with_extension("idx");
    let f = storage.open(&p, OpenMode::Read).unwrap();
    index::load(&*f, first, &p).unwrap()
}

fn record(seq: u64, len: usize) -> Vec<u8> {
    let v = value_for(seq, len);
    let mut out = Vec::new();
    frame::encode_record(
        &mut out,
        seq,
        1,
        &Entry {
            value: &v,
            ..Default::default()
        },
    );
    out
}

fn seal(next_seq: u64, records: u64) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_seal(
        &mut out,
        &Seal {
            next_seq,
            ts_max: 1,
            records,
            gap: false,
        },
    );
    out
}

/// Everything a healthy recovered log must satisfy: `next` is its next seq, records
/// `from..next` read back as appended, `verify` is clean, the head counts the segment
/// files' bytes, and an append continues at `next`.
fn assert_goes_on(log: &Log, from: u64, next: u64, context: &str) {
    assert_eq!(log.next_seq(), next, "{context}: next seq");
    let all = read_all_or_fail(log, from, context);
    assert_eq!(
        all.iter().map(|r| r.0).collect::<Vec<_>>(),
        (from..next).collect::<Vec<_>>(),
        "{context}: seqs"
    );
    for (seq, v) in &all {
        assert_eq!(v, &value_for(*seq, v.len()), "{context}: value of {seq}");
    }
    let sizes: u64 = log.segments().unwrap().iter().map(|s| s.bytes).sum();
    assert_eq!(log.used_bytes(), sizes, "{context}: used bytes");
    let v = log.verify().unwrap();
    assert!(v.is_ok(), "{context}: {v:?}");
    assert_eq!(append_n(log, 1, 10), next..next + 1, "{context}: append");
    assert!(
        log.verify().unwrap().is_ok(),
        "{context}: verify after append"
    );
}

/// A log of two segments (16 KiB each), the tail holding records `tail_first..next`.
fn two_segments(sim: &SimStorage) -> (Log, u64, u64) {
    let log = open_sim(sim, small_config());
    append_n(&log, 100, LEN);
    log.sync().unwrap();
    let segs = log.segments().unwrap();
    assert_eq!(segs.len(), 2, "{segs:?}");
    (log, segs[1].first_seq, 100)
}
