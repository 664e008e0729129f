//! `reel replicate SRC DST` and `reel promote DST`: a follower copies the source's frames
//! as stored (`Log::append_frames`: checksums verified, seqs kept), from its own next seq,
//! so that a restart, a kill -9 or a cut connection resumes with no gap and no double.

mod group;
mod source;
mod watch;

use crate::cli::{PromoteArgs, ReplicateArgs};
use crate::error::{CliError, CliResult};
use crate::output::{Output, note};
use reel::{Durability, Log};
use reel_log::LogOptions;
use source::{Source, SourceInfo, frame_at};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Frames appended per batch at most.
const BATCH_BYTES: usize = 1 << 20;

/// How long `--no-wait` keeps trying to reach its source (a live follower never stops).
const RETRY_FOR: Duration = Duration::from_secs(30);

pub fn run(a: ReplicateArgs) -> CliResult {
    if let Some(g) = &a.group {
        return group::run(&a, g);
    }
    let started = std::time::Instant::now();
    loop {
        match run_once(&a) {
            // The source away or a connection cut before the copy loop took over (which
            // resumes on its own): start over, checks included, from the follower's end.
            Err(e) if e.is_connection() && (!a.no_wait || started.elapsed() < RETRY_FOR) => {
                note(format_args!("reel: {e}; trying again"));
                std::thread::sleep(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

fn run_once(a: &ReplicateArgs) -> CliResult {
    let src_name = a.src.display().to_string();
    let source = Source::open(&a.src)?;
    let info = source.info()?;
    // A new follower refused for its --from-seq is not created at all.
    if let Some(n) = a.from_seq
        && !a.dst.join(reel::META_FILE).is_file()
    {
        check_from_seq(n, &info, &src_name, a.skip_gap)?;
    }
    let dst = open_follower(&a.dst, &src_name, &info)?;
    let Some(_replicating) = replicating(&a.dst)? else {
        return Err(CliError::Input(format!(
            "another `reel replicate` is copying into {}: one replicator per follower",
            a.dst.display()
        )));
    };
    let state = watch::StateFile::load(a.dst.clone());
    let copier = Copier {
        dst: &dst,
        src: &src_name,
        source: &source,
        skip_gap: a.skip_gap,
        state: &state,
        lists: std::cell::RefCell::new(None),
    };
    if let Some(n) = a.from_seq {
        copier.start_at(n, &info)?;
    }
    let mut start = dst.next_seq();
    if start < info.oldest {
        copier.skip(start..info.oldest)?;
        start = info.oldest;
    }
    if start > info.next {
        return Err(CliError::Input(format!(
            "{} holds records up to seq {} that {src_name} does not have (it ends before seq {}): diverged, refusing to go on",
            a.dst.display(),
            start - 1,
            info.next
        )));
    }
    if let Some(last) = start.checked_sub(1).filter(|&l| l >= info.oldest)
        && let Err(seq) = same_history(&dst, &source, last, &info)?
    {
        return Err(CliError::Input(format!(
            "{} and {src_name} differ at seq {seq}: diverged, refusing to go on",
            a.dst.display()
        )));
    }
    let stop_at = a.no_wait.then_some(info.next);
    let watcher = watch::Watcher::spawn(a.src.clone(), dst.clone(), state.clone());
    let result = match &source {
        Source::Local(log) => follow_local(log, &copier, stop_at),
        Source::Remote(r) => follow_remote(r, &copier, stop_at),
    };
    watcher.finish();
    dst.sync().map_err(reel::Error::from)?;
    result?;
    // Stopped caught up (`--no-wait`): say so now rather than a second ago.
    state.look(&source, &dst)?;
    Ok(())
}

/// Records of the follower a check looks back over for one a compacting source still
/// holds.
const COMPARE_BACK: u32 = 64;

/// The last record both have must be the same frame, byte for byte: otherwise the
/// follower holds a history the source does not, and appending would splice two
/// (`Err(seq)`: they differ there). A follower whose last seq fell in a gap it skipped
/// has nothing to compare. A compacting source may no longer hold the follower's last
/// records (superseded since): the newest of the follower's last [`COMPARE_BACK`] that
/// it still holds is compared; when it holds none of them, nothing can be.
fn same_history(
    dst: &Log,
    source: &Source,
    last: u64,
    info: &SourceInfo,
) -> CliResult<Result<(), u64>> {
    let compacting = info.config.when_full == reel::WhenFull::Compact;
    let mut seq = last;
    for _ in 0..if compacting { COMPARE_BACK } else { 1 } {
        let mine = frame_at(dst, seq)?;
        if !mine.is_empty() {
            match source.frame_at(seq)? {
                Some(theirs) if theirs == mine => return Ok(Ok(())),
                None if compacting => {}
                _ => return Ok(Err(seq)),
            }
        } else if !compacting {
            return Ok(Ok(()));
        }
        if seq <= info.oldest {
            break;
        }
        seq -= 1;
    }
    Ok(Ok(()))
}

/// Opens DST as the replica of `src`, creating it (same kind and configuration) when it
/// does not exist; refuses a store of its own or a follower of another source.
fn open_follower(dir: &Path, src: &str, info: &SourceInfo) -> CliResult<Log> {
    let storage = reel_log::storage::DiskStorage;
    let exists = dir.join(reel::META_FILE).is_file();
    if !exists {
        std::fs::create_dir_all(dir).map_err(CliError::Output)?;
        let mut opts = LogOptions::new();
        if let Some(id) = info.log_id {
            // The same log to its users: list continuation tokens work on both.
            opts = opts.log_id(id);
        }
        let log = opts
            .create(info.config)
            .kind(info.kind)
            .replica(true)
            .durability(Durability::Batch)
            .open(dir)
            .map_err(reel::Error::from)?;
        reel_log::follow::write_source(&storage, dir, src).map_err(|e| {
            CliError::Input(format!("cannot mark {} a follower: {e}", dir.display()))
        })?;
        return Ok(log);
    }
    match reel_log::follow::read_source(&storage, dir).map_err(CliError::Output)? {
        Some(s) if s == src => {}
        Some(other) => {
            return Err(CliError::Input(format!(
                "{} follows {other}, not {src}",
                dir.display()
            )));
        }
        None => {
            let log = Log::open(dir).map_err(reel::Error::from)?;
            if log.next_seq() > 0 {
                return Err(CliError::Input(format!(
                    "{} is a store of its own (not a follower of {src}); replicate into a new directory",
                    dir.display()
                )));
            }
            drop(log);
            reel_log::follow::write_source(&storage, dir, src).map_err(CliError::Output)?;
        }
    }
    Ok(LogOptions::new()
        .replica(true)
        .durability(Durability::Batch)
        .open(dir)
        .map_err(reel::Error::from)?)
}

fn follow_local(src: &Log, copier: &Copier<'_>, stop_at: Option<u64>) -> CliResult {
    let dst = copier.dst;
    let mut reader = src.reader(dst.next_seq());
    loop {
        let next = dst.next_seq();
        if stop_at.is_some_and(|end| next >= end) {
            return Ok(());
        }
        let mut buf = Vec::new();
        let batch = reader.read_batch(4096).map_err(reel::Error::from)?;
        if let Some(lost) = batch.lost() {
            copier.skip(lost)?;
        }
        batch.for_each_frame(|_, bytes| buf.extend_from_slice(bytes));
        if buf.is_empty() {
            src.wait_for(
                next,
                Some(std::time::Instant::now() + Duration::from_secs(1)),
            );
            continue;
        }
        copier.append(&buf)?;
    }
}

fn follow_remote(
    r: &crate::remote::Remote,
    copier: &Copier<'_>,
    stop_at: Option<u64>,
) -> CliResult {
    let dst = copier.dst;
    let max_frame = (dst.config().max_record_size as usize).saturating_add(1 << 10);
    loop {
        let next = dst.next_seq();
        if stop_at.is_some_and(|end| next >= end) {
            return Ok(());
        }
        let mut query = vec![("from_seq", next.to_string())];
        match stop_at {
            Some(end) => query.push(("limit", (end - next).to_string())),
            None => query.push(("follow", "true".to_string())),
        }
        let mut body = r.lines("/frames", query)?;
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 256 << 10];
        let cut = loop {
            let n = match body.read(&mut chunk) {
                Ok(0) => break false,
                Ok(n) => n,
                Err(_) => break true,
            };
            pending.extend_from_slice(&chunk[..n]);
            // Whole frames go in; a frame cut at the end of a read waits for the rest.
            let mut whole = 0;
            while let Some(len) = reel_log::frame::peek_len(&pending[whole..]) {
                if len > max_frame || len < 8 {
                    return Err(CliError::Input(format!(
                        "the source sent a frame of {len} bytes: not a reel frame"
                    )));
                }
                if whole + len > pending.len() {
                    break;
                }
                whole += len;
                if whole >= BATCH_BYTES {
                    break;
                }
            }
            if whole > 0 {
                copier.append(&pending[..whole])?;
                pending.drain(..whole);
            }
        };
        // An answer that ends (rather than breaks) before `--no-wait`'s end may still be a
        // connection cut at a chunk boundary: the loop asks again from where it got to,
        // unless the source sent nothing at all.
        if let Some(end) = stop_at
            && !cut
            && dst.next_seq() == next
        {
            return Err(CliError::Input(format!(
                "{} sent no records from seq {next} though it held records up to seq {}",
                r.url(),
                end - 1
            )));
        }
        if stop_at.is_some_and(|end| dst.next_seq() >= end) {
            return Ok(());
        }
        note(format_args!(
            "reel: connection to {} {}; resuming from seq {}",
            r.url(),
            if cut { "lost" } else { "ended" },
            dst.next_seq()
        ));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether a new follower may start at seq `n` of the source.
fn check_from_seq(n: u64, info: &SourceInfo, src: &str, skip_gap: bool) -> CliResult {
    if n > info.next {
        return Err(CliError::Input(format!(
            "--from-seq {n}: {src} ends before it (its next seq is {})",
            info.next
        )));
    }
    if n < info.oldest && !skip_gap {
        return Err(CliError::Input(format!(
            "{src} no longer holds seqs {n} to {}: the follower stops rather than skip them (--skip-gap continues from seq {})",
            info.oldest - 1,
            info.oldest
        )));
    }
    Ok(())
}

/// Appends what the source sends into the follower, and decides what happens when the
/// source no longer has records the follower needs.
struct Copier<'a> {
    dst: &'a Log,
    src: &'a str,
    source: &'a Source,
    skip_gap: bool,
    state: &'a watch::StateFile,
    /// A lists follower's lists view, kept up to date by the replicator: its retention
    /// then checkpoints the view before it drops records (as a lists store's writer
    /// does), so that once promoted it still knows every list's next offset and last
    /// nonce. Opened at the first append, after any gap at the start was skipped: a
    /// follower that never held the source's first records has no such state, and
    /// its view says so (appends refused once promoted, until `view rebuild --force`).
    lists: std::cell::RefCell<Option<reel::list::ListStore>>,
}

impl Copier<'_> {
    /// Appends whole frames, in batches that fit the follower (a batch larger than its
    /// capacity would be refused, and a small store's source sends more at once).
    fn append(&self, frames: &[u8]) -> CliResult {
        let limit = (self.dst.config().capacity / 4).clamp(1, BATCH_BYTES as u64) as usize;
        for batch in reel_log::frame::batches(frames, limit) {
            self.append_batch(batch)?;
        }
        Ok(())
    }

    /// Appends one batch; frames that start past the follower's next seq mean the source
    /// dropped the seqs in between (it sends from its oldest record).
    fn append_batch(&self, frames: &[u8]) -> CliResult {
        self.keep_lists_view()?;
        match self.dst.append_frames(frames, Durability::Batch) {
            Err(reel_log::Error::NotNext { expected, got }) if got > expected => {
                self.skip(expected..got)?;
                self.dst
                    .append_frames(frames, Durability::Batch)
                    .map_err(reel::Error::from)?;
            }
            Err(e) => return Err(reel::Error::from(e).into()),
            Ok(_) => {}
        }
        if let Some(lists) = &*self.lists.borrow() {
            // Applies what was just copied (and checkpoints when due), so that the
            // checkpoint retention asks for is a short step.
            lists.view().read(|_| ())?;
        }
        Ok(())
    }

    /// Opens a lists follower's lists view (once), which registers it with the
    /// follower's retention.
    fn keep_lists_view(&self) -> CliResult {
        if self.lists.borrow().is_some() || self.dst.kind() != reel::StoreKind::Lists {
            return Ok(());
        }
        let spool = reel::Spool::from_log(self.dst.clone());
        *self.lists.borrow_mut() = Some(reel::list::ListStore::on_spool(&spool)?);
        Ok(())
    }

    /// The follower needs `missing`, which the source no longer has: stop, naming the
    /// seqs (and, for a compacting source, whether skipping them would lose anything),
    /// or with `--skip-gap` record them and continue after them.
    fn skip(&self, missing: std::ops::Range<u64>) -> CliResult {
        let (first, last) = (missing.start, missing.end - 1);
        if !self.skip_gap {
            let why = match self.compacted_away(&missing)? {
                Some(true) => {
                    " (its compaction removed superseded values there: --skip-gap loses \
                     nothing, but each gap starts a new segment in the follower)"
                }
                Some(false) => {
                    " (its compaction dropped a deletion among them, which could leave a \
                     deleted value in the follower: start a new follower)"
                }
                None => "",
            };
            return Err(CliError::Input(format!(
                "{} no longer holds seqs {first} to {last}{why}: the follower stops rather than skip them (--skip-gap continues from seq {})",
                self.src, missing.end
            )));
        }
        // Recorded (durably) before the skip: a skip is never left unrecorded.
        self.state.add_gap(missing.clone())?;
        self.dst.skip_to(missing.end).map_err(reel::Error::from)?;
        let lists = if self.dst.kind() == reel::StoreKind::Lists && missing.start > 0 {
            " (a list all of whose items were there is unknown to this follower: once \
             promoted, appending to it starts again at offset 0 and takes its old nonces)"
        } else {
            ""
        };
        note(format_args!(
            "reel: {} no longer holds seqs {first} to {last}: skipped them (--skip-gap), continuing from seq {}{lists}",
            self.src, missing.end
        ));
        Ok(())
    }

    /// For a compacting source: true when its compaction cannot have removed, from
    /// `missing`, a deletion of a value the follower holds: every other record missing
    /// there was superseded by a later record of its key, which the follower still gets
    /// (compaction keeps each key's latest), so the follower ends with the same state.
    /// That holds when no deletion at or after `missing.start` was dropped (the source's
    /// horizon is below it; asked after the gap was seen, and the horizon only grows),
    /// or when the follower holds nothing before `missing` (a deletion could only remove
    /// a value it never had).
    /// `None` when the source does not compact (or cannot say how far it dropped
    /// deletions).
    fn compacted_away(&self, missing: &std::ops::Range<u64>) -> CliResult<Option<bool>> {
        let info = self.source.info()?;
        if info.config.when_full != reel::WhenFull::Compact {
            return Ok(None);
        }
        Ok(info
            .tombstone_horizon
            .map(|h| missing.start == 0 || missing.start > h))
    }

    /// `--from-seq N`: a new follower starts at `n`; one that already started goes on
    /// from where it is, and one past `n` cannot go back.
    fn start_at(&self, n: u64, info: &SourceInfo) -> CliResult {
        let next = self.dst.next_seq();
        if next > 0 {
            if next < n {
                return Err(CliError::Input(format!(
                    "--from-seq {n} starts a new follower; {} already continues from seq {next}",
                    self.dst.dir().display()
                )));
            }
            return Ok(());
        }
        check_from_seq(n, info, self.src, self.skip_gap)?;
        if n > 0 {
            self.state.add_gap(0..n)?;
            self.dst.skip_to(n).map_err(reel::Error::from)?;
        }
        Ok(())
    }
}

/// Held by a replicator while it appends into a follower, so that `promote` cannot make
/// the follower writable under it (it would go on appending the source's records into a
/// store that now takes writes of its own).
const REPLICATING_LOCK: &str = "reel.replicate.lock";

/// Takes the follower's replicator lock; `None` when a replicator holds it.
fn replicating(dst: &Path) -> CliResult<Option<Box<dyn reel_log::storage::FileLock>>> {
    use reel_log::storage::Storage;
    let path = dst.join(REPLICATING_LOCK);
    let lock = reel_log::storage::DiskStorage
        .lock_file(&path)
        .map_err(CliError::Output)?;
    Ok(lock.try_lock().map_err(CliError::Output)?.then_some(lock))
}

pub fn promote(a: PromoteArgs, out: &mut Output) -> CliResult {
    let storage = reel_log::storage::DiskStorage;
    let Some(source) = reel_log::follow::read_source(&storage, &a.dir).map_err(CliError::Output)?
    else {
        return Err(CliError::Input(format!(
            "{} is not a follower",
            a.dir.display()
        )));
    };
    // Held until the follower is promoted: a replicator starting meanwhile finds a store
    // of its own and refuses it.
    let Some(_no_replicator) = replicating(&a.dir)? else {
        return Err(CliError::Input(format!(
            "a `reel replicate` is copying into {} from {source}: stop it first, then promote",
            a.dir.display()
        )));
    };
    reel_log::follow::remove(&storage, &a.dir).map_err(CliError::Output)?;
    out.line(format_args!(
        "{} is now a store of its own (it followed {source}); stop `reel replicate` into it",
        a.dir.display()
    ))?;
    Ok(())
}

/// How often `serve --follow` looks for new stores on its source.
const LIST_EVERY: Duration = Duration::from_secs(10);

/// `reel serve --follow URL`: a follower of each store of the server at `url` (or of
/// `only`), under `root`, for as long as the process runs; one thread per store, each
/// retrying after an error (a restart of the source, a network cut) and saying why.
pub fn follow_server(url: &str, root: &Path, only: &[String]) {
    let mut followed = std::collections::HashSet::new();
    loop {
        match list_stores(url) {
            Ok(names) => {
                for name in names {
                    if (!only.is_empty() && !only.contains(&name)) || !followed.insert(name.clone())
                    {
                        continue;
                    }
                    let (src, dst) = (format!("{url}/{name}"), root.join(&name));
                    let spawned = std::thread::Builder::new()
                        .name(format!("reel-follow-{name}"))
                        .spawn(move || follow_store(&src, &dst));
                    if let Err(e) = spawned {
                        note(format_args!("reel: cannot follow {url}/{name}: {e}"));
                    }
                }
            }
            Err(e) => note(format_args!("reel: cannot list the stores of {url}: {e}")),
        }
        std::thread::sleep(LIST_EVERY);
    }
}

fn list_stores(url: &str) -> CliResult<Vec<String>> {
    let probe = crate::remote::target(Path::new(&format!("{url}/_")))?
        .ok_or_else(|| CliError::Input(format!("--follow {url}: not an http(s) URL")))?;
    let list = probe.root_json("/v1/stores")?;
    Ok(list["stores"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Follows one store for ever: an error (the source away, a gap, divergence) is
/// reported and retried after a pause; nothing in the follower is ever overwritten.
fn follow_store(src: &str, dst: &Path) {
    loop {
        let args = ReplicateArgs {
            no_wait: false,
            skip_gap: false,
            from_seq: None,
            group: None,
            lease: 30.0,
            src: src.into(),
            dst: dst.to_path_buf(),
        };
        if let Err(e) = run(args) {
            note(format_args!("reel: following {src}: {e}; retrying in 5 s"));
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}
