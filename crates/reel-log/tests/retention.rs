//! When-full policies: drop-oldest keeps disk bounded, reject keeps unread records.
mod common;
use common::*;
use reel_log::storage::sim::SimStorage;
use reel_log::{Entry, Error, RetentionGuard, WhenFull};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[test]
fn drop_oldest_bounds_disk_and_drops_oldest_first() {
    let sim = SimStorage::new();
    let cfg = small_config();
    let log = open_sim(&sim, cfg);
    for _ in 0..400 {
        append_n(&log, 3, 200);
        let on_disk: u64 = log.segments().unwrap().iter().map(|s| s.bytes).sum();
        assert!(
            on_disk <= cfg.capacity + cfg.segment_size,
            "{on_disk} bytes on disk"
        );
        assert_eq!(on_disk, log.used_bytes());
    }
    let oldest = log.oldest_seq();
    assert!(oldest > 0);
    let mut r = log.reader(0);
    let b = r.read_batch(10).unwrap();
    assert_eq!(b.lost(), Some(0..oldest));
    assert_eq!(
        b.iter().next().unwrap().seq,
        oldest,
        "continues at the oldest retained record"
    );
    let all = read_all(&log, oldest);
    assert_eq!(
        all.last().unwrap().0,
        1199,
        "newest records are never dropped"
    );
}

#[derive(Debug)]
struct Floor(AtomicU64);
impl RetentionGuard for Floor {
    fn protected_from(&self) -> reel_log::Result<Option<u64>> {
        Ok(Some(self.0.load(Ordering::SeqCst)))
    }
}

#[test]
fn reject_refuses_when_full_and_resumes_when_readers_advance() {
    let sim = SimStorage::new();
    let mut cfg = small_config();
    cfg.when_full = WhenFull::Reject;
    let log = open_sim(&sim, cfg);
    let floor = Arc::new(Floor(AtomicU64::new(0)));
    log.set_retention_guard(floor.clone());
    let mut n = 0;
    let err = loop {
        let v = value_for(n, 300);
        match log.append(&[Entry {
            value: &v,
            ..Default::default()
        }]) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::Full { .. }), "{err}");
    assert!(err.to_string().contains("reject"));
    assert_eq!(log.oldest_seq(), 0, "nothing unread was dropped");
    assert_eq!(read_all(&log, 0).len() as u64, n);
    // The reader consumes half: appends work again, and only consumed records go.
    floor.0.store(n / 2, Ordering::SeqCst);
    append_n(&log, 5, 300);
    assert!(log.oldest_seq() > 0 && log.oldest_seq() <= n / 2);
}

#[test]
fn reject_without_readers_never_drops() {
    let sim = SimStorage::new();
    let mut cfg = small_config();
    cfg.when_full = WhenFull::Reject;
    let log = open_sim(&sim, cfg);
    let v = vec![1u8; 500];
    while log
        .append(&[Entry {
            value: &v,
            ..Default::default()
        }])
        .is_ok()
    {}
    assert_eq!(log.oldest_seq(), 0);
}

#[test]
fn shrinking_a_drop_oldest_log_drops_oldest_records_to_fit() {
    let sim = SimStorage::new();
    let log = open_sim(
        &sim,
        reel_log::Config::with_capacity(1 << 20, WhenFull::DropOldest),
    );
    for _ in 0..50 {
        append_n(&log, 20, 900);
    }
    let before = log.used_bytes();
    log.reconfigure(256 << 10, WhenFull::DropOldest).unwrap();
    assert!(
        log.used_bytes() <= (256 << 10) + log.config().segment_size.max(100 << 10),
        "{} of {before}",
        log.used_bytes()
    );
    assert!(log.oldest_seq() > 0);
    assert_eq!(log.config().capacity, 256 << 10);
    // Growing and switching policy keeps data.
    let next = log.next_seq();
    log.reconfigure(2 << 20, WhenFull::Reject).unwrap();
    assert_eq!(log.next_seq(), next);
    assert_eq!(log.config().when_full, WhenFull::Reject);
}

#[test]
fn grouped_appends_from_many_threads_each_get_their_own_outcome_when_full() {
    let sim = SimStorage::new();
    let mut cfg = small_config();
    cfg.when_full = WhenFull::Reject;
    let log = open_sim(&sim, cfg);
    let ok_count = std::sync::atomic::AtomicU64::new(0);
    let full_count = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..8u8 {
            let (log, ok_count, full_count) = (&log, &ok_count, &full_count);
            s.spawn(move || {
                for i in 0..200u32 {
                    let v = [t; 100];
                    let _ = i;
                    match log.append(&[Entry {
                        value: &v,
                        ..Default::default()
                    }]) {
                        Ok(r) => {
                            assert_eq!(r.end - r.start, 1);
                            ok_count.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(Error::Full { .. }) => {
                            full_count.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
            });
        }
    });
    let stored = read_all(&log, 0);
    assert_eq!(
        stored.len() as u64,
        ok_count.load(Ordering::SeqCst),
        "every acknowledged append stored, nothing else"
    );
    assert!(full_count.load(Ordering::SeqCst) > 0, "the spool filled up");
    assert!(stored.iter().enumerate().all(|(i, (s, _))| *s == i as u64));
    assert!(log.verify().unwrap().is_ok());
}
