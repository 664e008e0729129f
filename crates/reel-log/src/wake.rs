//! Waiting for the log to grow, across processes.
//!
//! On Linux a reader sleeps on the head's `publish` word with `FUTEX_WAIT` (shared, not
//! private: the word lives in a file mapping, so the kernel keys it by inode and offset
//! and a writer in any process wakes it). Elsewhere, and as a safety net against any
//! missed wake-up, sleeps are bounded and re-check the committed position.

use crate::head::Head;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// Longest single sleep: bounds the delay if a wake-up is ever missed (for example when
/// a read-only reader cannot register itself as a waiter).
const MAX_SLEEP: Duration = Duration::from_millis(50);

/// Wakes every process sleeping on `word`.
pub fn wake_all(word: &AtomicU32) {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::thread::futex::wake(
            word,
            rustix::thread::futex::Flags::empty(),
            i32::MAX as u32,
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = word;
}

fn sleep_on(word: &AtomicU32, expected: u32, timeout: Duration) {
    #[cfg(target_os = "linux")]
    {
        let ts = rustix::thread::futex::Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        let _ = rustix::thread::futex::wait(
            word,
            rustix::thread::futex::Flags::empty(),
            expected,
            Some(&ts),
        );
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (word, expected);
        std::thread::sleep(timeout.min(Duration::from_millis(1)));
    }
}

/// Blocks until a record with seq `>= seq` is committed (`head.next_seq() > seq`), or
/// until `deadline`. Returns true when the record is there.
pub fn wait_for(head: &Head, seq: u64, deadline: Option<Instant>) -> bool {
    let w = head.words();
    let register = head.is_writable();
    loop {
        if head.next_seq() > seq {
            return true;
        }
        let now = Instant::now();
        let budget = match deadline {
            Some(d) if d <= now => return false,
            Some(d) => (d - now).min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        let seen = w.publish.load(SeqCst);
        if register {
            w.waiters.fetch_add(1, SeqCst);
        }
        if w.next_seq.load(SeqCst) <= seq {
            sleep_on(&w.publish, seen, budget);
        }
        if register {
            w.waiters.fetch_sub(1, SeqCst);
        }
    }
}
