//! A blocked reader is woken by an append promptly, not by its polling fallback.
mod common;
use common::*;
use reel_log::{Config, Entry};
use std::time::{Duration, Instant};

#[test]
fn waiting_reader_wakes_well_before_the_polling_fallback() {
    let (_tmp, log) = tmp_log(Config::default());
    let mut worst = Duration::ZERO;
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
        worst = worst.max(woke.saturating_duration_since(sent));
    }
    // The fallback poll is 50 ms; a futex wake-up takes microseconds. Allow scheduler noise.
    assert!(worst < Duration::from_millis(25), "worst wake-up {worst:?}");
}
