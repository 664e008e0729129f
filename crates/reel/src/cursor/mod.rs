//! Named readers: a persisted position per name, owned by one reader at a time.
//!
//! A reader's position is the seq of the next record it will deliver. It is persisted by
//! [`Reader::commit`] (and on drop), never before the records were handed out, so a crash
//! re-delivers at most what was handed out since the last commit (at-least-once), and a
//! clean stop loses and repeats nothing. Positions live in `readers/<name>.cursor`
//! (see [`slots`]); each is locked while a [`Reader`] holds it.

pub mod slots;

use crate::error::{Error, Result};
use crate::record::Record;
use crate::spool::Spool;
use reel_log::storage::{FileLock, Storage};
use reel_log::{LogReader, RecordRef, RetentionGuard};
use slots::{PositionFile, SlotKind, SlotValue};
use std::collections::VecDeque;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Directory of cursor files inside a spool.
pub fn readers_dir(spool_dir: &Path) -> PathBuf {
    spool_dir.join("readers")
}

/// Path of a reader's cursor file.
pub fn cursor_path(spool_dir: &Path, name: &str) -> PathBuf {
    readers_dir(spool_dir).join(format!("{name}.cursor"))
}

/// Checks a reader name: 1 to 128 characters of `A-Z a-z 0-9 . _ -`, not starting with `.`.
pub fn validate_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("empty")
    } else if name.len() > 128 {
        Some("longer than 128 characters")
    } else if name.starts_with('.') {
        Some("starts with a dot")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        Some("only letters, digits, '.', '_' and '-' are allowed")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::InvalidName {
            name: name.into(),
            why,
        }),
        None => Ok(()),
    }
}

/// A reader's persisted state, as listed by [`Spool::status`](crate::Spool::status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorState {
    /// Reader name.
    pub name: String,
    /// Seq of the next record it will read.
    pub position: u64,
    /// Records it lost to retention so far.
    pub lost: u64,
    /// When the position was last committed (µs since the epoch).
    pub updated: i64,
}

/// Lists all readers' persisted cursors.
pub fn list_cursors(storage: &dyn Storage, spool_dir: &Path) -> Result<Vec<CursorState>> {
    let dir = readers_dir(spool_dir);
    let names = match storage.list_dir(&dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(reel_log::Error::io("list", dir, e).into()),
    };
    let mut out = Vec::new();
    for n in names {
        let Some(name) = n.to_str().and_then(|n| n.strip_suffix(".cursor")) else {
            continue;
        };
        if validate_name(name).is_err() {
            continue;
        }
        if let Some(v) =
            PositionFile::read(storage, &cursor_path(spool_dir, name), SlotKind::Cursor)?
        {
            out.push(CursorState {
                name: name.to_string(),
                position: v.a,
                lost: v.b,
                updated: v.updated,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The `reject` policy's view of the readers: the lowest position among them.
#[derive(Debug)]
pub(crate) struct CursorFloor {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) dir: PathBuf,
}

impl RetentionGuard for CursorFloor {
    fn protected_from(&self) -> reel_log::Result<Option<u64>> {
        let cursors = list_cursors(&*self.storage, &self.dir).map_err(|e| match e {
            Error::Log(l) => l,
            other => reel_log::Error::InvalidArgument(other.to_string()),
        })?;
        Ok(cursors.iter().map(|c| c.position).min())
    }
}

/// A named, persisted reader.
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// use reel::Spool;
/// let spool = Spool::create(tmp.path())?;
/// spool.append(serde_json::json!({"n": 1}))?;
/// let mut reader = spool.reader("worker")?;
/// let rec = reader.next()?.expect("one record");
/// assert_eq!(rec.value.to_json()?["n"], 1);
/// reader.commit()?; // the next `spool.reader("worker")` continues after it
/// # Ok::<(), reel::Error>(())
/// ```
#[derive(Debug)]
pub struct Reader {
    spool: Spool,
    name: String,
    file: PositionFile,
    _lock: Box<dyn FileLock>,
    log: LogReader,
    /// Next seq to deliver.
    position: u64,
    /// What the cursor file holds.
    committed: SlotValue,
    lost: u64,
    pending: VecDeque<Record>,
    durable_commits: bool,
}

impl Reader {
    pub(crate) fn open(spool: &Spool, name: &str) -> Result<Reader> {
        validate_name(name)?;
        spool.log().check_writable()?;
        let storage = spool.log().storage().clone();
        let dir = readers_dir(spool.dir());
        if !storage.exists(&dir) {
            storage
                .create_dir_all(&dir)
                .map_err(|e| reel_log::Error::io("create directory", &dir, e))?;
            // The new directory's name must survive a power cut with the cursors in it.
            storage
                .sync_dir(spool.dir())
                .map_err(|e| reel_log::Error::io("sync", spool.dir(), e))?;
        }
        let path = cursor_path(spool.dir(), name);
        let lock = storage
            .lock_file(&path)
            .map_err(|e| reel_log::Error::io("open", &path, e))?;
        if !lock
            .try_lock()
            .map_err(|e| reel_log::Error::io("lock", &path, e))?
        {
            return Err(Error::ReaderBusy { name: name.into() });
        }
        let (mut file, value) = PositionFile::open(&*storage, &path, SlotKind::Cursor, true)?;
        let next = spool.log().next_seq();
        let committed = match value {
            Some(mut v) => {
                // A power cut can leave a cursor ahead of the data it pointed into.
                if v.a > next {
                    v.a = next;
                }
                v
            }
            None => {
                // A new reader starts at the oldest retained record, and is registered at
                // once so the `reject` policy protects what it has not read.
                let v = SlotValue {
                    a: spool.log().oldest_seq(),
                    b: 0,
                    updated: reel_log::now_micros(),
                };
                // Durable at once, name included: a durable commit later is only one
                // `fdatasync` of this file, which does not make a new name durable.
                file.write(v, true)?;
                storage
                    .sync_dir(&dir)
                    .map_err(|e| reel_log::Error::io("sync", &dir, e))?;
                v
            }
        };
        Ok(Reader {
            log: spool.log().reader(committed.a),
            spool: spool.clone(),
            name: name.into(),
            file,
            _lock: lock,
            position: committed.a,
            committed,
            lost: committed.b,
            pending: VecDeque::new(),
            durable_commits: false,
        })
    }

    /// The reader's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Seq of the next record this reader will deliver.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Records this reader lost to retention so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Makes every commit also `fdatasync` the cursor (survives power loss, costs a sync).
    pub fn set_durable_commits(&mut self, durable: bool) {
        self.durable_commits = durable;
    }

    /// The next record, without waiting. `None` when caught up.
    // Not an Iterator: a reader is never exhausted (more records may come) and fails.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Record>> {
        if self.pending.is_empty() {
            self.fill(256)?;
        }
        Ok(self.deliver())
    }

    /// The next record, waiting up to `timeout` for one to be appended (by any process).
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Record>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.next()? {
                return Ok(Some(r));
            }
            if !self.log.wait(Some(deadline)) {
                return self.next();
            }
        }
    }

    /// Up to `max` records; when caught up, waits up to `wait` for the first one.
    pub fn next_batch(&mut self, max: usize, wait: Option<Duration>) -> Result<Vec<Record>> {
        let deadline = wait.map(|w| Instant::now() + w);
        loop {
            if self.pending.len() < max {
                self.fill(max - self.pending.len())?;
            }
            if !self.pending.is_empty() || deadline.is_none() {
                break;
            }
            if !self.log.wait(deadline) {
                self.fill(max)?;
                break;
            }
        }
        let n = self.pending.len().min(max);
        let out: Vec<Record> = self.pending.drain(..n).collect();
        if let Some(last) = out.last() {
            self.position = last.seq + 1;
        }
        Ok(out)
    }

    /// Visits up to `max` records in place, without copying them; the position advances
    /// past every record visited. Fastest way to consume a spool.
    pub fn read_with(&mut self, max: usize, mut f: impl FnMut(&RecordRef<'_>)) -> Result<usize> {
        let mut done = 0;
        while done < max {
            let Some(r) = self.pending.pop_front() else {
                break;
            };
            f(&r.as_ref());
            self.position = r.seq + 1;
            done += 1;
        }
        if done == max {
            return Ok(done);
        }
        let batch = self.log.read_batch(max - done)?;
        if let Some(l) = batch.lost() {
            self.lost += l.end - l.start;
        }
        for r in batch.iter() {
            f(&r);
            self.position = r.seq + 1;
            done += 1;
        }
        Ok(done)
    }

    /// Blocks until a record is available or `deadline` passes; true when one is.
    pub fn wait(&mut self, deadline: Option<Instant>) -> bool {
        !self.pending.is_empty() || self.log.wait(deadline)
    }

    /// Reads ahead until `max` records are pending or the reader is caught up.
    fn fill(&mut self, max: usize) -> Result<()> {
        let target = self.pending.len() + max.max(1);
        while self.pending.len() < target {
            let before = self.pending.len();
            if let Err(e) = self.fill_once(target - before) {
                // Records read before the damage are handed out first; the engine
                // reader stays in front of the damage and reports it again after them.
                if before > 0 {
                    break;
                }
                return Err(e);
            }
            if self.pending.len() == before {
                break;
            }
        }
        Ok(())
    }

    fn fill_once(&mut self, max: usize) -> Result<()> {
        let batch = self.log.read_batch(max.max(1))?;
        if let Some(l) = batch.lost() {
            self.lost += l.end - l.start;
            if self.pending.is_empty() {
                self.position = self.position.max(l.end);
            }
        }
        for r in batch.iter() {
            self.pending.push_back(Record::from_ref(&r)?);
        }
        Ok(())
    }

    fn deliver(&mut self) -> Option<Record> {
        let r = self.pending.pop_front()?;
        self.position = r.seq + 1;
        Some(r)
    }

    /// Persists the position: the next reader of this name starts after the last record
    /// delivered.
    pub fn commit(&mut self) -> Result<()> {
        let v = SlotValue {
            a: self.position,
            b: self.lost,
            updated: reel_log::now_micros(),
        };
        if v.a == self.committed.a && v.b == self.committed.b && !self.durable_commits {
            return Ok(());
        }
        self.file.write(v, self.durable_commits)?;
        self.committed = v;
        Ok(())
    }

    /// Moves to `seq` (the oldest retained record if older). Persisted by the next commit.
    pub fn seek(&mut self, seq: u64) {
        let seq = seq.max(self.spool.log().oldest_seq());
        self.pending.clear();
        self.position = seq;
        self.log.seek(seq);
    }

    /// [`Reader::seek`], refusing a seq past the end of the spool (the records appended
    /// up to it would be skipped unseen).
    pub fn seek_within(&mut self, seq: u64) -> Result<()> {
        let next = self.spool.next_seq();
        if seq > next {
            return Err(Error::InvalidArgument(format!(
                "seq {seq} is past the end of the spool (next seq is {next})"
            )));
        }
        self.seek(seq);
        Ok(())
    }

    /// Moves to the oldest retained record (replay from the start).
    pub fn rewind(&mut self) {
        self.seek(0);
    }

    /// Moves to the first record at or after `ts` (µs since the epoch).
    pub fn seek_time(&mut self, ts: i64) -> Result<()> {
        let seq = self.spool.log().seek_time(ts)?;
        self.seek(seq);
        Ok(())
    }

    /// Moves where `to` says and commits (what `reel rewind` does); a seq past the end of
    /// the spool is refused.
    pub fn move_to(&mut self, to: MoveTo) -> Result<()> {
        match to {
            MoveTo::Oldest => self.rewind(),
            MoveTo::Seq(seq) => self.seek_within(seq)?,
            MoveTo::Time(ts) => self.seek_time(ts)?,
        }
        self.commit()
    }

    /// Steps over damaged records this reader stopped at; returns the skipped seqs.
    pub fn skip_damage(&mut self) -> Result<Range<u64>> {
        self.pending.clear();
        self.log.seek(self.position);
        let skipped = self.log.skip_damage()?;
        self.position = self.log.position();
        Ok(skipped)
    }
}

/// Where [`Reader::move_to`] moves a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveTo {
    /// The oldest retained record (replay everything).
    Oldest,
    /// This seq (the oldest retained one if older).
    Seq(u64),
    /// The first record at or after this time (µs since the epoch).
    Time(i64),
}

impl MoveTo {
    /// From `reel rewind`'s options: a seq, else a time, else the oldest record.
    pub fn from_options(seq: Option<u64>, time: Option<i64>) -> MoveTo {
        match (seq, time) {
            (Some(s), _) => MoveTo::Seq(s),
            (None, Some(t)) => MoveTo::Time(t),
            (None, None) => MoveTo::Oldest,
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // A panic mid-processing must not mark unprocessed records as consumed.
        if !std::thread::panicking() {
            let _ = self.commit();
        }
    }
}
