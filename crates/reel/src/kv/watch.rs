//! Watching a subtree: an optional snapshot, a `synced` marker, then every change as it
//! is committed, read from the log itself (so a slow watcher never loses an event; one
//! that falls behind compaction gets [`Error::WatchBehind`]).

use super::{KvStore, Path, PathSyntax};
use crate::error::{Error, Result};
use crate::value::{Encoding, TAG_TOMBSTONE, Value};
use reel_log::LogReader;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Options of [`KvStore::watch`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchOptions {
    /// First deliver the current state of the subtree, then [`WatchEvent::Synced`].
    pub fetch: bool,
    /// Deliver the changes after this revision (ignored with `fetch`).
    pub from_rev: Option<u64>,
}

/// One event of a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A value was stored (or is part of the snapshot).
    Put {
        /// Path in text form.
        path: String,
        /// The value.
        value: Value,
        /// Its revision.
        rev: u64,
    },
    /// A value was deleted.
    Deleted {
        /// Path in text form.
        path: String,
        /// Revision of the deletion.
        rev: u64,
    },
    /// The snapshot is complete; live changes follow.
    Synced,
}

impl WatchEvent {
    /// `{"path":..,"value":..,"rev":..}`, `{"path":..,"deleted":true,"rev":..}` or
    /// `{"synced":true}`.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        Ok(match self {
            WatchEvent::Put { path, value, rev } => {
                serde_json::json!({"path": path, "value": value.to_json()?, "rev": rev})
            }
            WatchEvent::Deleted { path, rev } => {
                serde_json::json!({"path": path, "deleted": true, "rev": rev})
            }
            WatchEvent::Synced => serde_json::json!({"synced": true}),
        })
    }
}

/// A running watch.
#[derive(Debug)]
pub struct Watch {
    reader: LogReader,
    key: String,
    syntax: PathSyntax,
    queue: VecDeque<WatchEvent>,
    /// With `fetch`: the snapshot holds every record below this seq.
    snapshot_end: Option<u64>,
}

impl Watch {
    pub(crate) fn start(kv: &KvStore, path: &Path, opts: WatchOptions) -> Result<Watch> {
        let key = kv.key(path)?;
        let syntax: PathSyntax = kv.path_syntax().into();
        let mut queue = VecDeque::new();
        let start = if opts.fetch {
            // The snapshot reflects exactly the records below `end`; the live part starts
            // at `end`: nothing is lost or doubled at the seam.
            let end = kv.spool().next_seq();
            let mut st = kv.view().lock_at(end)?;
            st.view_mut().forget_below(kv.spool().oldest_seq());
            for (k, e) in st.view().subtree(&key)? {
                queue.push_back(WatchEvent::Put {
                    path: shown(&k, syntax),
                    value: e.value(),
                    rev: e.rev,
                });
            }
            queue.push_back(WatchEvent::Synced);
            end
        } else {
            match opts.from_rev {
                Some(r) => r.saturating_add(1),
                None => kv.spool().next_seq(),
            }
        };
        Ok(Watch {
            reader: kv.spool().log().reader(start),
            key,
            syntax,
            queue,
            snapshot_end: opts.fetch.then_some(start),
        })
    }

    /// With `fetch`: the revision the snapshot is as of (every change up to it is in it;
    /// the live events are the changes after it), so that a watch resumed with
    /// `from_rev` set to it misses and repeats nothing; `None` without `fetch` or when
    /// the store held no record.
    pub fn snapshot_rev(&self) -> Option<u64> {
        self.snapshot_end.and_then(|end| end.checked_sub(1))
    }

    fn matches(&self, k: &str) -> bool {
        self.syntax.is_within(k, &self.key)
    }

    /// The next event, waiting up to `timeout` (forever with `None`); `None` on timeout.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Option<WatchEvent>> {
        Ok(if self.ready(timeout)? {
            self.queue.pop_front()
        } else {
            None
        })
    }

    /// The seq of the next record this watch reads: a caller may wait for the log to
    /// reach it ([`crate::Spool::wait_for`]) without holding the watch.
    pub fn position(&self) -> u64 {
        self.reader.position()
    }

    /// Waits up to `timeout` (forever with `None`) until an event is ready, taking none:
    /// true when the next [`Watch::next`] returns one without waiting. For a caller
    /// that may give up while waiting (an asyncio task cancelled) and must not lose the
    /// event its wait would have taken.
    pub fn ready(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if !self.queue.is_empty() {
                return Ok(true);
            }
            if !self.read_more()? && !self.reader.wait(deadline) {
                return Ok(false);
            }
        }
    }

    /// Reads the changes already in the log without waiting, so that a watch resumed
    /// from a revision compaction removed fails now ([`Error::WatchBehind`]), before a
    /// server has answered that the watch started.
    pub fn check_start(&mut self) -> Result<()> {
        if self.queue.is_empty() {
            self.read_more()?;
        }
        Ok(())
    }

    /// Queues the events of the next records the log holds; false when it held none.
    fn read_more(&mut self) -> Result<bool> {
        let expected = self.reader.position();
        let batch = self.reader.read_batch(1024)?;
        if let Some(l) = batch.lost() {
            return Err(Error::WatchBehind {
                from: l.start,
                to: l.end - 1,
            });
        }
        if batch.is_empty() {
            return Ok(false);
        }
        let mut next = expected;
        let mut gap = None;
        let mut events = Vec::new();
        batch.for_each(|r| {
            if r.seq > next && gap.is_none() {
                gap = Some((next, r.seq - 1));
            }
            next = r.seq + 1;
            let Some(k) = r.key else { return };
            if !self.syntax.is_within(k, &self.key) {
                return;
            }
            let syntax = self.syntax;
            if r.encoding == TAG_TOMBSTONE {
                events.push(WatchEvent::Deleted {
                    path: shown(k, syntax),
                    rev: r.seq,
                });
            } else if let Ok(enc) = Encoding::from_tag(r.encoding) {
                events.push(WatchEvent::Put {
                    path: shown(k, syntax),
                    value: Value::from_parts(enc, r.value.to_vec()),
                    rev: r.seq,
                });
            }
        });
        if let Some((from, to)) = gap {
            return Err(Error::WatchBehind { from, to });
        }
        debug_assert!(events.iter().all(|e| match e {
            WatchEvent::Put { path, .. } | WatchEvent::Deleted { path, .. } => self.matches(path),
            WatchEvent::Synced => true,
        }));
        self.queue.extend(events);
        Ok(true)
    }
}

/// A record key as users write paths (DistKV's text), whatever syntax the store records
/// keys in; a key that does not parse is shown as stored.
fn shown(key: &str, syntax: PathSyntax) -> String {
    match syntax {
        PathSyntax::DistKv => key.to_string(),
        PathSyntax::Legacy => {
            Path::from_key(key, syntax).map_or_else(|_| key.to_string(), |p| p.to_string())
        }
    }
}
