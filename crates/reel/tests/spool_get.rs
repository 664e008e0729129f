//! `Spool::get`: point lookups by seq across segments, after retention, while the log
//! grows, and how long one costs next to reading the same record with a fresh iterator.
use reel::{Spool, Value, WhenFull};
use serde_json::json;
use std::time::Instant;

fn n_of(r: &reel::Record) -> u64 {
    r.value.to_json().unwrap()["n"].as_u64().unwrap()
}

/// A value whose size varies with `n`, so index entries fall at irregular seqs.
fn value(n: u64) -> Value {
    Value::json(&json!({ "n": n, "pad": "x".repeat((n % 300) as usize) }))
}

/// Small pseudo-random sequence (xorshift) so that the lookups jump around.
fn seqs(count: usize, below: u64) -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % below
        })
        .collect()
}

#[test]
fn get_finds_every_record_across_segments_and_nothing_past_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Spool::builder(tmp.path().join("s"))
        .capacity(64 << 20)
        .segment_size(64 << 10)
        .when_full(WhenFull::Reject)
        .open()
        .unwrap();
    let total = 20_000u64;
    for chunk in (0..total).collect::<Vec<_>>().chunks(500) {
        let recs: Vec<reel::NewRecord> = chunk.iter().map(|&n| value(n).into()).collect();
        s.append_batch(&recs).unwrap();
    }
    assert!(
        s.log().segments().unwrap().len() > 10,
        "the test needs many segments"
    );
    for seq in 0..total {
        let r = s
            .get(seq)
            .unwrap()
            .unwrap_or_else(|| panic!("seq {seq} missing"));
        assert_eq!((r.seq, n_of(&r)), (seq, seq));
    }
    // The same answers again, in an order that jumps between segments.
    for seq in seqs(5_000, total) {
        let r = s.get(seq).unwrap().unwrap();
        assert_eq!((r.seq, n_of(&r)), (seq, seq));
        let direct = s.iter(seq..=seq).next().unwrap().unwrap();
        assert_eq!(r, direct);
    }
    assert!(s.get(total).unwrap().is_none());
    assert!(s.get(u64::MAX).unwrap().is_none());
}

#[test]
fn get_sees_records_appended_after_earlier_gets_including_new_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Spool::builder(tmp.path().join("s"))
        .capacity(64 << 20)
        .segment_size(128 << 10)
        .when_full(WhenFull::Reject)
        .open()
        .unwrap();
    // Alternate appends and gets of the newest record, so every lookup lands in the tail
    // segment just after it grew (or rolled over to a new one).
    let other = s.clone();
    for n in 0..6_000u64 {
        let seq = s.append(value(n)).unwrap();
        assert_eq!(n_of(&other.get(seq).unwrap().unwrap()), n);
        assert!(other.get(seq + 1).unwrap().is_none());
        if n % 97 == 0 {
            assert_eq!(n_of(&other.get(n / 2).unwrap().unwrap()), n / 2);
        }
    }
    assert!(s.log().segments().unwrap().len() > 5);
    // A second handle on the same directory (another process, as far as caches go).
    let fresh = Spool::open(tmp.path().join("s")).unwrap();
    for seq in seqs(2_000, 6_000) {
        assert_eq!(n_of(&fresh.get(seq).unwrap().unwrap()), seq);
    }
}

#[test]
fn get_of_a_record_dropped_by_retention_is_none_and_later_ones_still_found() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Spool::builder(tmp.path().join("s"))
        .capacity(1 << 20)
        .when_full(WhenFull::DropOldest)
        .open()
        .unwrap();
    // Look records up while retention deletes segments under the cached layout.
    let mut last = 0;
    for n in 0..30_000u64 {
        last = s.append(value(n)).unwrap();
        if n % 1000 == 999 {
            let r = s.get(last - 500).unwrap().unwrap();
            assert_eq!(n_of(&r), last - 500);
        }
    }
    let oldest = s.oldest_seq();
    assert!(oldest > 0, "retention should have dropped records");
    assert!(s.get(0).unwrap().is_none());
    assert!(s.get(oldest - 1).unwrap().is_none());
    assert_eq!(n_of(&s.get(oldest).unwrap().unwrap()), oldest);
    assert_eq!(n_of(&s.get(last).unwrap().unwrap()), last);
}

/// Cost of one lookup, next to the old way (a reader built for each lookup). Run with
/// `cargo test --release -p reel --test spool_get -- --ignored --nocapture`.
#[test]
#[ignore]
fn get_timing() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Spool::builder(tmp.path().join("s"))
        .capacity(1 << 30)
        .when_full(WhenFull::Reject)
        .open()
        .unwrap();
    let total = 200_000u64;
    for chunk in (0..total).collect::<Vec<_>>().chunks(1000) {
        let recs: Vec<reel::NewRecord> = chunk
            .iter()
            .map(|&n| Value::json(&json!({ "n": n, "pad": "x".repeat(60) })).into())
            .collect();
        s.append_batch(&recs).unwrap();
    }
    let lookups = seqs(10_000, total);
    let t = Instant::now();
    for &seq in &lookups {
        assert_eq!(s.iter(seq..=seq).next().unwrap().unwrap().seq, seq);
    }
    let old = t.elapsed();
    let t = Instant::now();
    for &seq in &lookups {
        assert_eq!(s.get(seq).unwrap().unwrap().seq, seq);
    }
    let new = t.elapsed();
    println!(
        "10k random lookups in {total} records (~100 B): fresh iterator {:?} ({:.1} us each), get {:?} ({:.1} us each)",
        old,
        old.as_secs_f64() * 100.0,
        new,
        new.as_secs_f64() * 100.0
    );
}
