//! Durability `object` for a long-running writer: appenders wait until a manifest names
//! an object holding their record, and one background thread uploads everything
//! appended since its last upload every interval (WarpStream's batching: one object and
//! one manifest update per interval, however many appends wait on it).

use crate::writer::TierWriter;
use crate::{Error, Result};
use reel_log::Log;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    /// Every seq below this is in object storage.
    durable_next: u64,
    /// Set when uploads can no longer succeed (fenced): every waiter fails with it.
    fatal: Option<String>,
    /// The last transient failure, reported to waiters that time out.
    last_error: Option<String>,
    stop: bool,
}

/// The background uploader of a tiered store's writer.
#[derive(Debug)]
pub struct Committer {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    /// Starts uploading `log` through `writer` every `interval`.
    pub fn start(writer: TierWriter, log: Log, interval: Duration) -> Result<Committer> {
        let durable_next = writer.check()?.manifest.next_seq;
        let shared = Arc::new((
            Mutex::new(State {
                durable_next,
                ..Default::default()
            }),
            Condvar::new(),
        ));
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("reel-object-commit".into())
            .spawn(move || run(writer, log, interval, &s))
            .map_err(|e| Error::Gap(format!("cannot start the uploader thread: {e}")))?;
        Ok(Committer {
            shared,
            thread: Some(thread),
        })
    }

    /// Blocks until the record at `seq` is in object storage, or `timeout` passes (then
    /// an error saying why, if an upload failed).
    pub fn wait_durable(&self, seq: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(f) = &st.fatal {
                return Err(Error::Gap(f.clone()));
            }
            if st.durable_next > seq {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Gap(format!(
                    "seq {seq} is not in object storage after {timeout:?}{}",
                    st.last_error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )));
            }
            st = cv
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Every seq below this is in object storage.
    pub fn durable_next(&self) -> u64 {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .durable_next
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(writer: TierWriter, log: Log, interval: Duration, shared: &(Mutex<State>, Condvar)) {
    let (lock, cv) = shared;
    // Ticks on a fixed schedule: an upload's own time does not stretch the interval.
    let mut tick = Instant::now();
    loop {
        tick += interval;
        {
            let st = lock.lock().unwrap_or_else(|p| p.into_inner());
            let wait = tick.saturating_duration_since(Instant::now());
            let (st, _) = cv
                .wait_timeout_while(st, wait, |s| !s.stop)
                .unwrap_or_else(|p| p.into_inner());
            if st.stop {
                return;
            }
        }
        // More than an interval behind (a slow upload): the schedule restarts from now
        // rather than uploading back to back to catch up.
        let now = Instant::now();
        if tick + interval < now {
            tick = now;
        }
        if log.next_seq() <= lock.lock().unwrap_or_else(|p| p.into_inner()).durable_next {
            continue;
        }
        let result = writer.upload(&log);
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(up) => {
                st.durable_next = st.durable_next.max(up.seqs.end);
                st.last_error = None;
            }
            Err(e @ Error::Fenced { .. }) | Err(e @ Error::Gap(_)) => {
                st.fatal = Some(e.to_string());
            }
            Err(e) => st.last_error = Some(e.to_string()),
        }
        drop(st);
        cv.notify_all();
    }
}
