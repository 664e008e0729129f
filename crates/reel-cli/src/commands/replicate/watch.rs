//! The replicator's look at its source, about once a second, for `reel status`: the
//! source's next seq and the age of the oldest record the follower lacks, kept in
//! `reel.follow.state` with the gaps the follower skipped.
//!
//! It runs on its own thread with its own connection, so that a follower busy copying
//! (or blocked on a stalled stream) still reports how far behind it is.

use super::source::Source;
use crate::error::CliResult;
use crate::output::note;
use reel::Log;
use reel_log::follow::FollowState;
use reel_log::storage::DiskStorage;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How often the source is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// A follower whose oldest missing record is older than this says so on stderr...
const BEHIND_AFTER: f64 = 1.0;
/// ...at most this often while it stays behind.
const SAY_EVERY: Duration = Duration::from_secs(30);

/// The follower's state file, shared by the copying loop (gaps) and the watcher.
#[derive(Clone)]
pub(super) struct StateFile {
    dir: PathBuf,
    state: Arc<Mutex<FollowState>>,
}

impl StateFile {
    pub fn load(dir: PathBuf) -> StateFile {
        let state = FollowState::read(&DiskStorage, &dir).unwrap_or_default();
        StateFile {
            dir,
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Records durably that the follower will never have `gap`.
    pub fn add_gap(&self, gap: std::ops::Range<u64>) -> CliResult {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.add_gap(gap);
        // Written under the lock: the watcher and the copier share the `.tmp` file.
        st.write(&DiskStorage, &self.dir, true)?;
        Ok(())
    }

    /// Looks at the source once and records what it saw; returns how many records the
    /// follower lacks and how old (seconds) the oldest of them is.
    pub fn look(&self, source: &Source, dst: &Log) -> CliResult<(u64, f64)> {
        let info = source.info()?;
        let mine = dst.next_seq();
        let oldest_missing_ts = if mine < info.next {
            source.ts_at(mine.max(info.oldest))?
        } else {
            None
        };
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.source_next = info.next;
        st.follower_next = mine;
        st.oldest_missing_ts = oldest_missing_ts;
        st.observed_at = reel_log::now_micros();
        st.write(&DiskStorage, &self.dir, false)?;
        let age = oldest_missing_ts.map_or(0.0, |ts| (st.observed_at - ts).max(0) as f64 / 1e6);
        Ok((info.next.saturating_sub(mine), age))
    }
}

/// The watcher thread; [`Watcher::finish`] stops it. It also says on stderr when the
/// follower falls behind, and when it has caught up again.
pub(super) struct Watcher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    pub fn spawn(src: PathBuf, dst: Log, file: StateFile) -> Watcher {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("reel-replicate-watch".into())
            .spawn(move || {
                // Its own source handle: the copier's may be inside a long read.
                let Ok(source) = Source::open(&src) else {
                    return;
                };
                let (lock, cv) = &*flag;
                let mut said_behind: Option<std::time::Instant> = None;
                // Said only when two looks in a row find it behind: a follower that
                // starts on a backlog and copies it within a second says nothing.
                let mut was_behind = false;
                let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                while !*stopped {
                    drop(stopped);
                    // A failed look (the source away) leaves the last one in place: its
                    // time says how old it is, and the copier reports the outage.
                    let look = file.look(&source, &dst);
                    let behind = matches!(look, Ok((lag, age)) if lag > 0 && age >= BEHIND_AFTER);
                    let again = std::mem::replace(&mut was_behind, behind);
                    match look {
                        Ok((lag, age))
                            if behind
                                && again
                                && said_behind.is_none_or(|t| t.elapsed() >= SAY_EVERY) =>
                        {
                            note(format_args!(
                                "reel: behind {} by {lag} records (the oldest not copied yet is {age:.1} s old)",
                                src.display()
                            ));
                            said_behind = Some(std::time::Instant::now());
                        }
                        Ok((0, _)) if said_behind.is_some() => {
                            note(format_args!("reel: caught up with {}", src.display()));
                            said_behind = None;
                        }
                        _ => {}
                    }
                    stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                    if !*stopped {
                        stopped = cv
                            .wait_timeout(stopped, LOOK_EVERY)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
            })
            .ok();
        Watcher { stop, thread }
    }

    /// Stops the thread and waits for it.
    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop_thread();
    }
}
