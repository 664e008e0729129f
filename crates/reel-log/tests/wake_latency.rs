//! A blocked reader is woken by an append promptly, not by its polling fallback.
mod common;
use common::*;
use reel_log::{Config, Entry};
use std::time::{Duration, Instant};

#[test]
fn waiting_reader_wakes_well_before_the_polling_fallback() {
    let (_tmp, log) = tmp_log(Config::default());
    let mut latencies = Vec::new();
    for i in 0..20u64 {
        let l2 = log.clone();
        let waiter = std::thread::spawn(move || {
            assert!(l2.wait_for(i, Some(Instant::now() + Duration::from_secs(5))));
            Instant::now()
        });
        std::thread::sleep(Duration::from_millis(5));
        let sent = Instant::now();
        log.append(&[Entry {
            value: b"x",
            ..Default::default()
        }])
        .unwrap();
        let woke = waiter.join().unwrap();
        latencies.push(woke.saturating_duration_since(sent));
    }
    // The waiter sleeps 5 ms before the append; without a working wake-up it would only
    // notice at its 50 ms polling fallback, about 45 ms later, every time. A futex
    // wake-up takes microseconds: even on a loaded machine most wake-ups are far below
    // that, so the median tells the two apart without depending on the worst case.
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    assert!(
        median < Duration::from_millis(20),
        "median wake-up {median:?}: {latencies:?}"
    );
}
