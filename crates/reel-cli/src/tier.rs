//! Object storage from the command line (the `reel-tier` crate does the work):
//! - read commands given `s3://BUCKET/PREFIX` in place of DIR run on a local follower
//!   copy (the cache: `--cache DIR`, else a temporary directory removed at exit), which
//!   a background thread keeps polling the manifest for while the command runs, so live
//!   commands (`read`, `kv watch`) follow new uploads;
//! - named readers of `reel read s3://...` keep their positions in object storage
//!   (`readers/NAME.json`), so a reader on another machine continues where it stopped;
//! - write commands on a tiered DIR check first that this directory is still the
//!   store's writer (fenced otherwise) and upload what they appended before they exit.

use crate::cli::Command;
use crate::error::{CliError, CliResult};
use crate::output::note;
use reel_tier::reader::sync_cache;
use reel_tier::writer::TierWriter;
use reel_tier::{Tier, TierUrl};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

impl Drop for Cache {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.poller.take() {
            let _ = h.join();
        }
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
                if let Err(e) = sync_cache(&tier, &dir) {
                    note(format_args!("reel: following {url}: {e}"));
                }
                let reader = tracked.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some((_, name)) = reader
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

/// Before `reel read s3://...`: moves the cache's reader to the position object storage
/// keeps for it (a new reader starts at the oldest record).
pub fn restore_reader(url: &str, cache: &Path, reader: &str) -> CliResult {
    let tier = Tier::connect(&url.parse()?)?;
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

/// After `reel read s3://...`: keeps the cache's reader position in object storage.
pub fn save_reader(url: &str, cache: &Path, reader: &str) -> CliResult {
    let tier = Tier::connect(&url.parse()?)?;
    if let Some(position) = committed_position(cache, reader)? {
        tier.put_small(&position_object(reader), Position::encode(position))?;
    }
    Ok(())
}

/// Uploads a tiered store's new records every interval on a thread of its own (with a
/// client of its own), until dropped; failures are reported and retried next time.
#[derive(Debug)]
pub struct Periodic {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Periodic {
    /// Starts uploading `dir` every `every_ms` milliseconds.
    pub fn start(dir: &Path, every_ms: u64) -> Periodic {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, dir) = (stop.clone(), dir.to_path_buf());
        let thread = std::thread::spawn(move || {
            let every = Duration::from_millis(every_ms.max(50));
            let opened = TierWriter::open(&dir).and_then(|w| {
                let log = reel_log::Log::open(&dir)?;
                Ok(w.map(|w| (w, log)))
            });
            let Ok(Some((w, log))) = opened else { return };
            let mut last = std::time::Instant::now();
            while !flag.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(50));
                if last.elapsed() < every {
                    continue;
                }
                last = std::time::Instant::now();
                if let Err(e) = w.upload(&log).and_then(|_| w.maintain()) {
                    note(format_args!(
                        "reel: upload to {} failed (retried): {e}",
                        w.url()
                    ));
                }
            }
        });
        Periodic {
            stop,
            thread: Some(thread),
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

/// For `reel status` on a tiered writer directory: where its objects are and how far
/// uploads got (`None` when `dir` is not tiered). Object storage unreachable is shown,
/// not an error: the local store's status still stands.
pub fn status(dir: &Path, local_next: u64) -> CliResult<Option<serde_json::Value>> {
    let Some(config) = reel_tier::TierConfig::read(dir)? else {
        return Ok(None);
    };
    let manifest = config
        .tier_url()
        .and_then(|u| Tier::connect(&u))
        .and_then(|t| t.require_manifest());
    Ok(Some(match manifest {
        Ok(v) => {
            let m = v.manifest;
            serde_json::json!({
                "url": config.url,
                "uploaded_next_seq": m.next_seq,
                "pending_records": local_next.saturating_sub(m.next_seq),
                "objects": m.objects.len(),
                "bytes": m.objects.iter().map(|o| o.bytes).sum::<u64>(),
                "epoch": m.epoch,
                "writer": m.writer.describe(),
                "fenced": m.writer.id != config.writer_id,
            })
        }
        Err(e) => serde_json::json!({"url": config.url, "error": e.to_string()}),
    }))
}

/// The writer of the tiered store in `dir`, checked not to be fenced; `None` when `dir`
/// is not tiered.
pub fn writer(dir: &Path) -> CliResult<Option<TierWriter>> {
    let Some(w) = TierWriter::open(dir)? else {
        return Ok(None);
    };
    w.check()?;
    Ok(Some(w))
}

/// After a write command on a tiered store: uploads what was appended. With `required`
/// (durability `object`) a failure is the command's error; otherwise the records are
/// stored locally and the failure is reported, for the next writer to upload.
pub fn upload(w: &TierWriter, log: &reel_log::Log, required: bool) -> CliResult {
    match w.upload(log) {
        Ok(_) => {
            // Keeps object storage from filling with one small object per command.
            if let Err(e) = w.maintain() {
                note(format_args!(
                    "reel: merging small objects in {} failed (retried later): {e}",
                    w.url()
                ));
            }
            Ok(())
        }
        Err(e) if required => Err(e.into()),
        Err(e) => {
            note(format_args!(
                "reel: the records are stored in {} but not yet in {}: {e}",
                log.dir().display(),
                w.url()
            ));
            Ok(())
        }
    }
}
