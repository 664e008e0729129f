//! Object storage from the command line (the `reel-tier` crate does the work):
//! - read commands given `s3://BUCKET/PREFIX` in place of DIR run on a local follower
//!   copy (the cache: `--cache DIR`, else a temporary directory removed at exit), which
//!   a background thread keeps polling the manifest for while the command runs, so live
//!   commands (`read`, `kv watch`) follow new uploads;
//! - named readers of `reel read s3://...` keep their positions in object storage
//!   (`readers/NAME.json`), so a reader on another machine continues where it stopped,
//!   and lock the name with a lease there (`readers/NAME.lease/`);
//! - write commands on a tiered DIR check first that this directory is still the
//!   store's writer (fenced otherwise) and upload what they appended before they exit.

use crate::cli::Command;
use crate::error::{CliError, CliResult};
use crate::output::note;
use crate::units::plural_phrase;
use reel_tier::reader::sync_cache;
use reel_tier::writer::TierWriter;
use reel_tier::{Tier, TierUrl};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod lease;
pub use lease::check_reader_lease;
use lease::{LEASE_TTL, acquire, holds_lease, release, renew};

/// How often a running command polls the manifest for new objects.
pub const POLL: Duration = Duration::from_millis(500);

impl From<reel_tier::Error> for CliError {
    fn from(e: reel_tier::Error) -> CliError {
        CliError::Input(e.to_string())
    }
}

/// A local copy of a store in object storage, for one command.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    stop: Arc<AtomicBool>,
    poller: Option<std::thread::JoinHandle<()>>,
    /// A reader whose position the poller keeps in object storage: (URL, name).
    tracked: Arc<Mutex<Option<(String, String)>>>,
}

impl Cache {
    /// The cache directory (a follower store).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps reader `name`'s position in object storage while the command runs (every
    /// poll), so that an interrupted `reel read` loses at most one poll's progress there.
    pub fn track_reader(&self, url: &str, name: &str) {
        *self.tracked.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((url.to_string(), name.to_string()));
    }
}

impl Cache {
    /// Stops following the store (the copy stays until dropped).
    pub fn stop_polling(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.poller.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.stop_polling();
    }
}

/// Syncs a cache of the store at `url` into `cache` (a temporary directory when
/// `None`), and keeps it polling in the background until dropped.
pub fn open_cache(url: &str, cache: Option<&Path>) -> CliResult<Cache> {
    let url: TierUrl = url.parse()?;
    let tier = Tier::connect(&url)?;
    let (dir, temp) = match cache {
        Some(d) => (d.to_path_buf(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("reel-cache-")
                .tempdir()
                .map_err(CliError::Output)?;
            (t.path().join("store"), Some(t))
        }
    };
    sync_cache(&tier, &dir)?;
    let stop = Arc::new(AtomicBool::new(false));
    let tracked: Arc<Mutex<Option<(String, String)>>> = Default::default();
    let poller = {
        let (stop, dir, tracked) = (stop.clone(), dir.clone(), tracked.clone());
        std::thread::spawn(move || {
            let mut saved = None;
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(POLL);
                if stop.load(Ordering::Acquire) {
                    break;
                }
                // The lease first: a slow copy must not make it lapse.
                let reader = tracked.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if reader.is_some() {
                    renew(&tier);
                }
                if let Err(e) = sync_cache(&tier, &dir) {
                    note(format_args!("reel: following {url}: {e}"));
                }
                if let Some((_, name)) = reader
                    && holds_lease()
                    && let Ok(Some(pos)) = committed_position(&dir, &name)
                    && saved != Some(pos)
                    && tier
                        .put_small(&position_object(&name), Position::encode(pos))
                        .is_ok()
                {
                    saved = Some(pos);
                }
            }
        })
    };
    Ok(Cache {
        dir,
        _temp: temp,
        stop,
        poller: Some(poller),
        tracked,
    })
}

/// If `cmd` names a store in object storage, points it at a cache of it (returned, to
/// keep alive while the command runs). Write commands given a URL are refused: a tiered
/// store is written through its writer directory.
pub fn redirect(cmd: &mut Command, cache: Option<&Path>) -> CliResult<Option<(Cache, String)>> {
    use crate::cli::{KvCommand, ListCommand, ViewCommand};
    let dir: &mut PathBuf = match cmd {
        Command::Read(a) => &mut a.dir,
        Command::Status(a) => &mut a.dir,
        Command::Verify(a) => &mut a.dir,
        Command::Stream(a) => &mut a.dir,
        Command::Kv(
            KvCommand::Get { dir, .. } | KvCommand::Keys { dir, .. } | KvCommand::Watch { dir, .. },
        ) => dir,
        Command::List(
            ListCommand::Read { dir, .. }
            | ListCommand::Info { dir, .. }
            | ListCommand::Keys { dir, .. },
        ) => dir,
        Command::View(ViewCommand::List { dir, .. }) => dir,
        other => {
            if let Some(url) = writes_to_url(other) {
                return Err(CliError::Input(format!(
                    "{url} is read here through a local copy; write to the store in its writer directory (the DIR of `reel init --object-store {url} DIR`)"
                )));
            }
            return Ok(None);
        }
    };
    let Some(text) = dir
        .to_str()
        .filter(|t| TierUrl::is_url(t))
        .map(str::to_string)
    else {
        return Ok(None);
    };
    let c = open_cache(&text, cache)?;
    *dir = c.dir().to_path_buf();
    Ok(Some((c, text)))
}

/// The URL a write command was given, if it is one of object storage.
fn writes_to_url(cmd: &Command) -> Option<String> {
    use crate::cli::{KvCommand, ListCommand};
    let dir = match cmd {
        Command::Write(a) => &a.dir,
        Command::Rewind(a) => &a.dir,
        Command::Kv(KvCommand::Set { dir, .. } | KvCommand::Del { dir, .. }) => dir,
        Command::List(ListCommand::Append { dir, .. }) => dir,
        _ => return None,
    };
    dir.to_str()
        .filter(|t| TierUrl::is_url(t))
        .map(str::to_string)
}

/// A reader's position kept in object storage.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Position {
    format: u32,
    position: u64,
    crc32c: u32,
}

impl Position {
    fn encode(position: u64) -> Vec<u8> {
        let crc = crc32c::crc32c(&position.to_le_bytes());
        serde_json::to_vec(&Position {
            format: 1,
            position,
            crc32c: crc,
        })
        .unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Option<u64> {
        let p: Position = serde_json::from_slice(bytes).ok()?;
        (p.format == 1 && crc32c::crc32c(&p.position.to_le_bytes()) == p.crc32c)
            .then_some(p.position)
    }
}

fn position_object(reader: &str) -> String {
    format!("readers/{reader}.json")
}

/// Before `reel read s3://...`: takes the reader's lease, then moves the cache's reader
/// to the position object storage keeps for it (a new reader starts at the oldest record).
pub fn restore_reader(url: &str, cache: &Path, reader: &str) -> CliResult {
    let tier = Tier::connect(&url.parse()?)?;
    acquire(&tier, url, reader)?;
    let restored = restore(&tier, url, cache, reader);
    if restored.is_err() {
        release(&tier);
    }
    restored
}

fn restore(tier: &Tier, url: &str, cache: &Path, reader: &str) -> CliResult {
    let spool = crate::commands::open_spool(cache, reel::Durability::None)?;
    let mut r = spool.reader(reader)?;
    match tier.get_small(&position_object(reader))? {
        Some(bytes) => {
            let pos = Position::decode(&bytes).ok_or_else(|| {
                CliError::Input(format!(
                    "{url}: the position of reader `{reader}` ({}) is damaged; reset it with `reel rewind` on the writer's directory or delete the object",
                    position_object(reader)
                ))
            })?;
            r.move_to(reel::MoveTo::Seq(pos.min(spool.next_seq())))?;
        }
        None => r.move_to(reel::MoveTo::Oldest)?,
    }
    Ok(())
}

/// What the cache's cursor file of `reader` holds (readable while the reader is open).
fn committed_position(cache: &Path, reader: &str) -> CliResult<Option<u64>> {
    let cursors = reel::cursor::list_cursors(&reel_log::storage::DiskStorage, cache)?;
    Ok(cursors
        .into_iter()
        .find(|c| c.name == reader)
        .map(|c| c.position))
}

/// After `reel read s3://...`: keeps the cache's reader position in object storage and
/// releases the reader's lease. A reader whose lease lapsed and was taken saves nothing:
/// its position would move the new holder's back (or past what it delivered).
pub fn save_reader(url: &str, cache: &Path, reader: &str) -> CliResult {
    let tier = Tier::connect(&url.parse()?)?;
    let held = lease::held(&tier)?;
    let saved = if held {
        match committed_position(cache, reader)? {
            Some(position) => tier
                .put_small(&position_object(reader), Position::encode(position))
                .map_err(CliError::from),
            None => Ok(()),
        }
    } else {
        Err(CliError::Input(format!(
            "reader `{reader}` of {url} was taken by another reader while this one ran (it could not renew its lease for {} s): its position is not saved, and what it read since its last save may be read again",
            LEASE_TTL.as_secs()
        )))
    };
    release(&tier);
    saved
}

/// Uploads a tiered store's new records every interval on a thread of its own (with a
/// client of its own), until dropped; failures are reported and retried next time, except
/// a fence: no later upload from this directory can succeed, so the thread stops and the
/// command must stop appending ([`Periodic::check`]).
#[derive(Debug)]
pub struct Periodic {
    stop: Arc<AtomicBool>,
    fenced: Arc<Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Periodic {
    /// Starts uploading `dir` every `every_ms` milliseconds. On a fence, `on_fence` (if
    /// any) is set, for commands that loop inside the library until a flag stops them.
    pub fn start(dir: &Path, every_ms: u64, on_fence: Option<Arc<AtomicBool>>) -> Periodic {
        let stop = Arc::new(AtomicBool::new(false));
        let fenced: Arc<Mutex<Option<String>>> = Default::default();
        let (flag, dir, fence) = (stop.clone(), dir.to_path_buf(), fenced.clone());
        let thread = std::thread::spawn(move || {
            let every = Duration::from_millis(every_ms.max(50));
            let opened = TierWriter::open(&dir).and_then(|w| {
                let log = reel_log::Log::open(&dir)?;
                Ok(w.map(|w| (w, log)))
            });
            let (w, log) = match opened {
                Ok(Some(opened)) => opened,
                // Not tiered (any more): nothing to upload.
                Ok(None) => return,
                Err(e) => {
                    // Without this thread nothing is uploaded until the command ends,
                    // and a takeover goes unnoticed: say so, and stop the command.
                    *fence.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(format!("cannot start uploading {}: {e}", dir.display()));
                    if let Some(f) = &on_fence {
                        f.store(true, Ordering::Release);
                    }
                    return;
                }
            };
            let mut last = std::time::Instant::now();
            while !flag.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(50));
                if last.elapsed() < every {
                    continue;
                }
                last = std::time::Instant::now();
                let done = w.upload(&log).and_then(|u| {
                    saw_uploaded(&dir, u.seqs.end);
                    w.maintain()
                });
                match done {
                    Err(e @ reel_tier::Error::Fenced { .. }) => {
                        *fence.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                        if let Some(f) = &on_fence {
                            f.store(true, Ordering::Release);
                        }
                        return;
                    }
                    Err(e) => note(format_args!(
                        "reel: upload to {} failed (retried): {e}",
                        w.url()
                    )),
                    Ok(()) => {}
                }
            }
        });
        Periodic {
            stop,
            fenced,
            thread: Some(thread),
        }
    }

    /// Fails once an upload found another writer: appending on would store records
    /// locally that can never reach object storage.
    pub fn check(&self) -> CliResult {
        match &*self.fenced.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(msg) => Err(CliError::Input(format!("{msg}; stopped appending"))),
            None => Ok(()),
        }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Per writer directory, the manifest's end (`next_seq`) as this process last saw it. A
/// failed upload counts what it left out from here: asking object storage again may fail
/// the same way.
static UPLOADED: Mutex<BTreeMap<PathBuf, u64>> = Mutex::new(BTreeMap::new());

fn saw_uploaded(dir: &Path, next: u64) {
    let mut m = UPLOADED.lock().unwrap_or_else(|p| p.into_inner());
    let e = m.entry(dir.to_path_buf()).or_default();
    *e = (*e).max(next);
}

fn uploaded(dir: &Path) -> u64 {
    let m = UPLOADED.lock().unwrap_or_else(|p| p.into_inner());
    m.get(dir).copied().unwrap_or(0)
}

/// The writer of the tiered store in `dir`, checked not to be fenced; `None` when `dir`
/// is not tiered.
pub fn writer(dir: &Path) -> CliResult<Option<TierWriter>> {
    let Some(w) = TierWriter::open(dir)? else {
        return Ok(None);
    };
    let v = w.check()?;
    saw_uploaded(dir, v.manifest.next_seq);
    Ok(Some(w))
}

/// After a write command on a tiered store: uploads what was appended. A failure is the
/// command's error (README: what a write command appends is uploaded before it exits),
/// saying how many records object storage lacks and whether a later command can upload
/// them (not after a fence).
pub fn upload(w: &TierWriter, log: &reel_log::Log) -> CliResult {
    match w.upload(log) {
        Ok(u) => {
            saw_uploaded(log.dir(), u.seqs.end);
            // Keeps object storage from filling with one small object per command.
            if let Err(e) = w.maintain() {
                note(format_args!(
                    "reel: merging small objects in {} failed (retried later): {e}",
                    w.url()
                ));
            }
            Ok(())
        }
        Err(e) => {
            let pending = log.next_seq().saturating_sub(uploaded(log.dir()));
            let records = plural_phrase(pending, "record is", "records are");
            let dir = log.dir().display();
            Err(CliError::Input(match e {
                reel_tier::Error::Fenced { .. } => format!(
                    "{e}; {records} stored only in {dir}, and no command there can upload them"
                ),
                _ => format!(
                    "{e}; {records} stored in {dir} but not in {}: the next write command on {dir} uploads them",
                    w.url()
                ),
            }))
        }
    }
}
