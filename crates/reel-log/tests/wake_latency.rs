//! A blocked reader is woken by an append promptly, not by its polling fallback.
mod common;
use common::*;
use reel_log::{Config, Entry, HEAD_FILE};
use std::path::Path;
use std::time::{Duration, Instant};

/// Readers asleep on the log's `publish` word: the `waiters` word of `reel.head`
/// (FORMAT.md §5: u32 at byte 20, native-endian).
fn waiters(dir: &Path) -> u32 {
    let head = std::fs::read(dir.join(HEAD_FILE)).unwrap();
    u32::from_ne_bytes(head[20..24].try_into().unwrap())
}

#[test]
fn waiting_reader_wakes_well_before_the_polling_fallback() {
    let (tmp, log) = tmp_log(Config::default());
    let mut latencies = Vec::new();
    for i in 0..20u64 {
        let l2 = log.clone();
        let waiter = std::thread::spawn(move || {
            assert!(l2.wait_for(i, Some(Instant::now() + Duration::from_secs(5))));
            Instant::now()
        });
        // Append only once the waiter is registered (about to sleep or asleep), so the
        // append has to wake it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while waiters(tmp.path()) == 0 {
            assert!(Instant::now() < deadline, "the waiter never went to sleep");
            std::thread::yield_now();
        }
        let sent = Instant::now();
        log.append(&[Entry {
            value: b"x",
            ..Default::default()
        }])
        .unwrap();
        let woke = waiter.join().unwrap();
        latencies.push(woke.saturating_duration_since(sent));
    }
    // Without a working wake-up the waiter would only notice at its 50 ms polling
    // fallback. A futex wake-up takes microseconds: even on a loaded machine most
    // wake-ups are far below that, so the median tells the two apart without depending
    // on the worst case.
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    assert!(
        median < Duration::from_millis(20),
        "median wake-up {median:?}: {latencies:?}"
    );
}
