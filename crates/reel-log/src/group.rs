//! Write combining: appends that arrive while another thread of this process is writing
//! queue up, and one thread (the leader) writes the whole group under a single lock
//! acquisition with a single `pwrite`, then hands leadership to the oldest waiter.
//!
//! A leader writes at most a few groups before passing leadership to the oldest waiter, so
//! no thread serves others forever; a lone thread pays two uncontended mutex operations
//! for the queue and nothing else.
//! Followers hand their records over already encoded (with a placeholder seq the leader
//! patches), because the leader cannot borrow a follower's data across threads.

use crate::error::{Error, Result};
use crate::frame::{self, Entry};
use crate::sync::SyncedFile;
use crate::writer::Extent;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Groups a leader writes before handing leadership on.
const MAX_ROUNDS: usize = 8;
/// Times a queued append yields the CPU, polling for its outcome, before it sleeps.
const SPIN_YIELDS: usize = 16;

/// What an append got: its seqs, and the file and offset a sync must cover.
pub(crate) type Appended = (Range<u64>, Arc<SyncedFile>, u64);

/// Appends waiting for a leader.
#[derive(Debug, Default)]
pub(crate) struct AppendQueue {
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    leader: bool,
    waiting: Vec<Arc<Request>>,
}

/// A follower's append, encoded.
#[derive(Debug)]
pub(crate) struct Request {
    /// Frames with seq 0 and final timestamps; the leader patches seq and checksum.
    pub(crate) frames: Vec<u8>,
    /// What the leader checks against the config.
    pub(crate) extent: Extent,
    slot: Mutex<SlotState>,
    ready: Condvar,
    /// Set once `slot` is no longer pending, so that a waiter can poll before sleeping.
    settled: AtomicBool,
}

#[derive(Debug)]
struct SlotState {
    slot: Slot,
    /// The follower waits on `ready`: only then is a wake-up (a futex syscall) needed.
    sleeping: bool,
}

#[derive(Debug)]
enum Slot {
    Pending,
    Done(Result<Appended>),
    Lead,
}

impl Request {
    fn new(entries: &[Entry<'_>], extent: Extent, now: i64) -> Request {
        let mut frames = Vec::with_capacity(extent.total as usize);
        for e in entries {
            frame::encode_record(&mut frames, 0, e.ts.unwrap_or(now), e);
        }
        Request {
            frames,
            extent,
            slot: Mutex::new(SlotState {
                slot: Slot::Pending,
                sleeping: false,
            }),
            ready: Condvar::new(),
            settled: AtomicBool::new(false),
        }
    }

    /// Delivers the outcome to the waiting follower.
    pub(crate) fn finish(&self, outcome: Result<Appended>) {
        self.settle(Slot::Done(outcome));
    }

    fn promote(&self) {
        self.settle(Slot::Lead);
    }

    fn settle(&self, to: Slot) {
        let mut state = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        state.slot = to;
        self.settled.store(true, Ordering::Release);
        if state.sleeping {
            self.ready.notify_one();
        }
    }

    /// Waits until the request is settled and takes the outcome.
    fn wait(&self) -> Slot {
        let mut state = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match std::mem::replace(&mut state.slot, Slot::Pending) {
                Slot::Pending => {
                    state.sleeping = true;
                    state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
                    state.sleeping = false;
                }
                settled => return settled,
            }
        }
    }

    fn take(&self) -> Slot {
        let mut state = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut state.slot, Slot::Pending)
    }
}

/// One unit of a group: the leader's own entries or a follower's encoded frames.
pub(crate) enum Unit<'a> {
    Entries(&'a [Entry<'a>], Extent),
    Encoded(&'a Request),
    /// Frames copied from another log (replication), seqs and checksums as stored.
    Raw(&'a [u8]),
}

impl AppendQueue {
    /// Runs `write_group` for `entries` either as leader or by queueing behind the
    /// current leader; returns this append's outcome.
    pub(crate) fn append(
        &self,
        entries: &[Entry<'_>],
        extent: Extent,
        now: i64,
        write_group: impl Fn(&[Unit<'_>]) -> Vec<Result<Appended>>,
    ) -> Result<Appended> {
        let mut q = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !q.leader {
            q.leader = true;
            let waiting = std::mem::take(&mut q.waiting);
            drop(q);
            let mut guard = LeaderGuard::new(self, &waiting);
            let mut units = Vec::with_capacity(waiting.len() + 1);
            units.push(Unit::Entries(entries, extent));
            units.extend(waiting.iter().map(|r| Unit::Encoded(r)));
            let mut outcomes = write_group(&units).into_iter();
            let mine = outcomes.next().unwrap_or_else(|| Err(group_lost()));
            for r in &waiting {
                r.finish(outcomes.next().unwrap_or_else(|| Err(group_lost())));
            }
            guard.disarm();
            self.serve(&write_group);
            return mine;
        }
        let req = Arc::new(Request::new(entries, extent, now));
        q.waiting.push(req.clone());
        drop(q);
        // A group is written in microseconds: yielding the CPU a few times (to the
        // leader, on a machine with fewer cores than writers) usually sees it done
        // without the futex sleep and wake-up a condvar wait costs.
        for _ in 0..SPIN_YIELDS {
            if req.settled.load(Ordering::Acquire) {
                break;
            }
            std::thread::yield_now();
        }
        match req.wait() {
            Slot::Done(outcome) => return outcome,
            Slot::Lead => {}
            Slot::Pending => return Err(group_lost()),
        }
        // Promoted: serve the queue, this request included (it is still queued).
        self.serve(&write_group);
        match req.take() {
            Slot::Done(outcome) => outcome,
            _ => Err(group_lost()),
        }
    }

    /// As leader: writes what is queued, group after group, for a bounded number of
    /// rounds (so that the leader's own caller is not held up for ever), then hands
    /// leadership to the oldest waiter or gives it up. Serving several rounds without a
    /// handoff keeps the writer busy while the served threads are being woken.
    fn serve(&self, write_group: &impl Fn(&[Unit<'_>]) -> Vec<Result<Appended>>) {
        for _ in 0..MAX_ROUNDS {
            let waiting = {
                let mut q = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if q.waiting.is_empty() {
                    q.leader = false;
                    return;
                }
                std::mem::take(&mut q.waiting)
            };
            let mut guard = LeaderGuard::new(self, &waiting);
            let units: Vec<Unit<'_>> = waiting.iter().map(|r| Unit::Encoded(r)).collect();
            let mut outcomes = write_group(&units).into_iter();
            for r in &waiting {
                r.finish(outcomes.next().unwrap_or_else(|| Err(group_lost())));
            }
            guard.disarm();
        }
        self.hand_off();
    }

    /// Passes leadership to the oldest waiting append, or gives it up.
    fn hand_off(&self) {
        let mut q = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match q.waiting.first() {
            Some(next) => next.promote(),
            None => q.leader = false,
        }
    }
}

/// Keeps a panicking leader from stranding the process's appends: if the group being
/// written unwinds, every request of that group gets an error and leadership passes to
/// the oldest waiting append (or is given up), so later appends proceed. The tail itself
/// is safe: the head still says `writing`, so the next append repairs it first.
struct LeaderGuard<'a> {
    queue: &'a AppendQueue,
    in_flight: &'a [Arc<Request>],
    armed: bool,
}

impl<'a> LeaderGuard<'a> {
    fn new(queue: &'a AppendQueue, in_flight: &'a [Arc<Request>]) -> Self {
        LeaderGuard {
            queue,
            in_flight,
            armed: true,
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for r in self.in_flight {
            r.finish(Err(Error::Poisoned {
                cause: "the thread writing this append's group panicked".into(),
            }));
        }
        self.queue.hand_off();
    }
}

fn group_lost() -> Error {
    Error::Poisoned {
        cause: "a group append lost track of a request (bug)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ok_outcomes(units: &[Unit<'_>]) -> Vec<Result<Appended>> {
        let file = SyncedFile::new(Arc::new(NullFile), std::path::PathBuf::from("null"), 0);
        units.iter().map(|_| Ok((0..1, file.clone(), 0))).collect()
    }

    #[derive(Debug)]
    struct NullFile;
    impl crate::storage::StorageFile for NullFile {
        fn read_at(&self, _: &mut [u8], _: u64) -> std::io::Result<usize> {
            Ok(0)
        }
        fn write_all_at(&self, _: &[u8], _: u64) -> std::io::Result<()> {
            Ok(())
        }
        fn len(&self) -> std::io::Result<u64> {
            Ok(0)
        }
        fn set_len(&self, _: u64) -> std::io::Result<()> {
            Ok(())
        }
        fn sync_data(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_panicking_leader_fails_its_group_and_hands_over() {
        let queue = Arc::new(AppendQueue::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let entered = Arc::new(std::sync::Barrier::new(2));
        let leader = {
            let (queue, calls, entered) = (queue.clone(), calls.clone(), entered.clone());
            std::thread::spawn(move || {
                let e = [Entry::default()];
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    queue.append(&e, Extent::default(), 0, |units| {
                        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                            entered.wait();
                            // Let the follower queue up behind this group.
                            while queue.state.lock().unwrap().waiting.is_empty() {
                                std::thread::yield_now();
                            }
                            panic!("injected leader panic");
                        }
                        ok_outcomes(units)
                    })
                }));
            })
        };
        entered.wait();
        let e = [Entry::default()];
        // Queued behind the panicking leader: it is served (by a promoted leader) or
        // failed, never left waiting.
        let follower = queue.append(&e, Extent::default(), 0, ok_outcomes);
        leader.join().unwrap();
        assert!(follower.is_ok() || matches!(follower, Err(Error::Poisoned { .. })));
        assert!(
            queue.append(&e, Extent::default(), 0, ok_outcomes).is_ok(),
            "later appends proceed"
        );
        assert!(!queue.state.lock().unwrap().leader);
    }
}
