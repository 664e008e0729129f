//! The writer side: claiming a store (a new epoch in the manifest), uploading what the
//! local log holds beyond the manifest, and noticing when another writer took over.
//!
//! One upload is one group commit: every record appended since the last upload goes
//! into one object (split at [`MAX_OBJECT`]), then one conditional manifest put makes
//! them part of the store. A record is in object storage exactly when a manifest names
//! an object holding it; nothing is acknowledged as `object`-durable before that.

use crate::local::TierConfig;
use crate::manifest::{Manifest, ObjectRef, WriterInfo};
use crate::object::{Put, Tier, Versioned};
use crate::{Error, Result, TierUrl};
use reel_log::{Durability, Log};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Largest data object an upload writes; more makes several.
pub const MAX_OBJECT: usize = 64 << 20;

/// When to merge small objects (klstore's compaction thresholds, by count and bytes): a
/// run of at least this many consecutive objects, each smaller than [`SMALL_OBJECT`],
/// is merged into objects of up to [`MAX_OBJECT`].
pub const MERGE_MIN_OBJECTS: usize = 16;
/// An object below this size is small.
pub const SMALL_OBJECT: u64 = 8 << 20;
/// An unnamed object of the current epoch is an orphan only after this long: until
/// then it may be a merge or an upload in flight in another process of the directory.
pub const ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// What object storage keeps of a store (`--object-retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// At most this many bytes of objects (the newest object is always kept).
    Bytes(u64),
    /// Objects written within this long.
    Age(std::time::Duration),
}

impl Retention {
    /// `100g`, `512m`, `1.5t` (sizes, powers of 1024) or `30d`, `12h` (ages).
    pub fn parse(text: &str) -> Result<Retention> {
        let bad = || {
            Error::Gap(format!(
                "invalid object retention `{text}`: a size (e.g. 100g) or an age in days or hours (e.g. 30d, 12h)"
            ))
        };
        let t = text.trim().to_ascii_lowercase();
        let (num, unit) = t.split_at(
            t.find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(t.len()),
        );
        let n: f64 = num.parse().map_err(|_| bad())?;
        if !(n.is_finite() && n > 0.0) {
            return Err(bad());
        }
        let bytes = |shift: u32| Ok(Retention::Bytes((n * (1u64 << shift) as f64) as u64));
        match unit.trim_end_matches("ib").trim_end_matches('b') {
            "" => bytes(0),
            "k" => bytes(10),
            "m" => bytes(20),
            "g" => bytes(30),
            "t" => bytes(40),
            "d" => Ok(Retention::Age(std::time::Duration::from_secs_f64(
                n * 86_400.0,
            ))),
            "h" => Ok(Retention::Age(std::time::Duration::from_secs_f64(
                n * 3_600.0,
            ))),
            _ => Err(bad()),
        }
    }
}

/// What one merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Merged {
    /// Objects replaced.
    pub replaced: usize,
    /// Objects written.
    pub written: usize,
}

/// A tiered store's writer: a local store directory with `reel.tier`.
#[derive(Debug)]
pub struct TierWriter {
    tier: Tier,
    config: TierConfig,
    dir: PathBuf,
}

/// What one upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Seqs uploaded (empty when there was nothing new).
    pub seqs: Range<u64>,
    /// Objects written.
    pub objects: usize,
    /// Bytes written.
    pub bytes: u64,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown host".into())
}

/// The name of the object holding seqs `first..next` written in `epoch`. Within one
/// epoch (one directory's log) the frames of a seq range are always the same bytes, so
/// a name fixes the contents: a retried upload, an upload that a killed one began, or a
/// merge of the same range write the same object.
pub fn object_name(first: u64, next: u64, epoch: u64) -> String {
    format!("data/{first:020}-e{epoch}-n{next}.frames")
}

/// The epoch and first seq in an object name, if it is one.
fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_prefix("data/")?.strip_suffix(".frames")?;
    let (first, rest) = stem.split_once("-e")?;
    let (epoch, next) = rest.split_once("-n")?;
    next.parse::<u64>().ok()?;
    Some((epoch.parse().ok()?, first.parse().ok()?))
}

impl TierWriter {
    /// The writer of the tiered store in `dir`, or `None` when `dir` is not tiered.
    pub fn open(dir: &Path) -> Result<Option<TierWriter>> {
        let Some(config) = TierConfig::read(dir)? else {
            return Ok(None);
        };
        let tier = Tier::connect(&config.tier_url()?)?;
        Ok(Some(TierWriter {
            tier,
            config,
            dir: dir.to_path_buf(),
        }))
    }

    /// A writer over an already connected tier (tests).
    pub fn with_tier(tier: Tier, config: TierConfig, dir: &Path) -> TierWriter {
        TierWriter {
            tier,
            config,
            dir: dir.to_path_buf(),
        }
    }

    /// The tier.
    pub fn tier(&self) -> &Tier {
        &self.tier
    }

    /// The local settings.
    pub fn config(&self) -> &TierConfig {
        &self.config
    }

    fn me(&self) -> WriterInfo {
        WriterInfo {
            id: self.config.writer_id.clone(),
            host: host_name(),
            dir: std::fs::canonicalize(&self.dir)
                .unwrap_or_else(|_| self.dir.clone())
                .display()
                .to_string(),
            since: reel_log::now_micros(),
        }
    }

    /// Makes `log` (a local store in `dir`) the writer of a new store at the tier's URL:
    /// creates the manifest with a create-only put, so that of several directories
    /// racing to create it exactly one succeeds (the others get an error saying to
    /// continue the store instead). Writes `reel.tier` last.
    pub fn create(
        tier: Tier,
        dir: &Path,
        log: &Log,
        seal_after_ms: u64,
        object_retention: Option<String>,
    ) -> Result<TierWriter> {
        let w = TierWriter::new(tier, dir, seal_after_ms, object_retention);
        let m = Manifest::new(log.log_id(), log.kind(), log.config(), w.me());
        if let Put::Conflict = w.tier.put_manifest(&m, None)? {
            return Err(Error::Store {
                url: w.tier.url().to_string(),
                op: "create manifest.json".into(),
                message: "another directory created the store at the same moment; continue it in a new directory instead (reel init --object-store URL NEWDIR)".into(),
            });
        }
        w.config.write(dir)?;
        Ok(w)
    }

    /// Makes `log` (a new, empty local store in `dir`, of the kind and configuration of
    /// `existing`) the writer of the store at the tier's URL: copies every record object
    /// storage holds into it, then claims a new epoch, fencing the previous writer.
    /// Writes `reel.tier` last. Returns the writer and the manifest as claimed.
    pub fn continue_store(
        tier: Tier,
        dir: &Path,
        log: &Log,
        existing: &Manifest,
        seal_after_ms: u64,
        object_retention: Option<String>,
    ) -> Result<(TierWriter, Manifest)> {
        let w = TierWriter::new(tier, dir, seal_after_ms, object_retention);
        if log.next_seq() != 0 {
            return Err(Error::Gap(format!(
                "{} already holds records; a store that exists at {} is continued only in a new, empty directory",
                dir.display(),
                w.tier.url()
            )));
        }
        // Until the copy is whole and the directory names itself the writer, it is marked
        // a follower of the store: a takeover killed half-way leaves a directory that
        // refuses writes (they would take seqs the store already has, and never reach
        // object storage) rather than a store of its own. `log` was opened before the
        // mark, so it still appends the copy.
        let storage = reel_log::storage::DiskStorage;
        let unfinished = format!(
            "{} (a takeover that did not finish: remove this directory and run `reel init \
             --object-store` again)",
            w.tier.url()
        );
        reel_log::follow::write_source(&storage, dir, &unfinished).map_err(|e| Error::Local {
            path: dir.to_path_buf(),
            why: format!("cannot mark the copy unfinished: {e}"),
        })?;
        crate::reader::copy_into(&w.tier, existing, log, Durability::Always)?;
        let claimed = w.claim()?;
        // Records uploaded between the copy and the claim: copy those too.
        crate::reader::copy_into(&w.tier, &claimed.manifest, log, Durability::Always)?;
        w.config.write(dir)?;
        reel_log::follow::remove(&storage, dir).map_err(|e| Error::Local {
            path: dir.to_path_buf(),
            why: format!("cannot mark the copy finished: {e}"),
        })?;
        let _ = w.clean_orphans();
        Ok((w, claimed.manifest))
    }

    fn new(
        tier: Tier,
        dir: &Path,
        seal_after_ms: u64,
        object_retention: Option<String>,
    ) -> TierWriter {
        let config = TierConfig::new(tier.url(), seal_after_ms, object_retention);
        TierWriter {
            tier,
            config,
            dir: dir.to_path_buf(),
        }
    }

    /// Claims a new epoch for this directory (fencing whoever wrote before).
    fn claim(&self) -> Result<Versioned> {
        for _ in 0..5 {
            let v = self.tier.require_manifest()?;
            let mut m = v.manifest.clone();
            m.epoch += 1;
            m.writer = self.me();
            if let Put::Stored(version) = self.tier.put_manifest(&m, Some(&v.version))? {
                return Ok(Versioned {
                    manifest: m,
                    version,
                });
            }
        }
        Err(Error::Store {
            url: self.tier.url().to_string(),
            op: "claim the store".into(),
            message: "the manifest kept changing under five attempts".into(),
        })
    }

    /// The manifest, if this directory is still its writer; [`Error::Fenced`] if not.
    pub fn check(&self) -> Result<Versioned> {
        let v = self.tier.require_manifest()?;
        if v.manifest.writer.id != self.config.writer_id {
            return Err(Error::Fenced {
                url: self.tier.url().to_string(),
                newer: v.manifest.writer.describe(),
                epoch: v.manifest.epoch,
            });
        }
        Ok(v)
    }

    /// Uploads what `log` holds beyond the manifest: one object (more past
    /// [`MAX_OBJECT`]) and one manifest update. Concurrent uploads from processes of the
    /// same directory converge (same object names, same bytes); an upload that finds
    /// another writer in the manifest fails with [`Error::Fenced`].
    pub fn upload(&self, log: &Log) -> Result<Uploaded> {
        loop {
            let v = self.check()?;
            let from = v.manifest.next_seq;
            let to = log.next_seq();
            if to < from {
                return Err(Error::Gap(format!(
                    "{} ends before seq {to} but {} holds records up to seq {}: this directory lost records it had uploaded; continue the store in a new directory with `reel init --object-store {}`",
                    self.dir.display(),
                    self.tier.url(),
                    from - 1,
                    self.tier.url()
                )));
            }
            if to == from {
                return Ok(Uploaded {
                    seqs: from..from,
                    objects: 0,
                    bytes: 0,
                });
            }
            let epoch = v.manifest.epoch;
            let mut refs = Vec::new();
            let mut bytes_total = 0u64;
            let mut reader = log.reader(from);
            let mut buf: Vec<u8> = Vec::new();
            let mut first = from;
            let mut next = from;
            while next < to {
                let batch = reader.read_batch(4096)?;
                if let Some(lost) = batch.lost() {
                    return Err(Error::Gap(format!(
                        "seqs {} to {} were dropped from {} (its capacity) before they were uploaded: object storage cannot have them; raise the capacity or upload more often",
                        lost.start,
                        lost.end - 1,
                        self.dir.display()
                    )));
                }
                if batch.is_empty() {
                    break;
                }
                batch.for_each_frame(|seq, frame| {
                    if seq < to {
                        buf.extend_from_slice(frame);
                        next = seq + 1;
                    }
                });
                if buf.len() >= MAX_OBJECT || next >= to {
                    let r = self.put_data(first, next, epoch, std::mem::take(&mut buf))?;
                    bytes_total += r.bytes;
                    refs.push(r);
                    first = next;
                }
            }
            if next < to {
                return Err(Error::Gap(format!(
                    "the local log of {} ended at seq {next} while uploading up to {to}",
                    self.dir.display()
                )));
            }
            let mut m = v.manifest.clone();
            m.objects.extend(refs.iter().cloned());
            m.next_seq = to;
            match self.tier.put_manifest(&m, Some(&v.version))? {
                Put::Stored(_) => {
                    return Ok(Uploaded {
                        seqs: from..to,
                        objects: refs.len(),
                        bytes: bytes_total,
                    });
                }
                // Another process of this directory, or a new writer: look again.
                Put::Conflict => continue,
            }
        }
    }

    fn put_data(&self, first: u64, next: u64, epoch: u64, bytes: Vec<u8>) -> Result<ObjectRef> {
        let name = object_name(first, next, epoch);
        let r = ObjectRef {
            name: name.clone(),
            first,
            next,
            bytes: bytes.len() as u64,
            crc32c: crc32c::crc32c(&bytes),
            written_at: reel_log::now_micros(),
        };
        self.tier.put_object(&name, bytes)?;
        Ok(r)
    }

    /// Deletes data objects no manifest names: those of older epochs (fenced writers'
    /// late uploads), and those of this epoch below the manifest's end that are older
    /// than [`ORPHAN_AGE`] (an interrupted upload or merge); returns how many.
    pub fn clean_orphans(&self) -> Result<usize> {
        let v = self.check()?;
        let named: std::collections::HashSet<&str> =
            v.manifest.objects.iter().map(|o| o.name.as_str()).collect();
        let mut n = 0;
        for (name, age) in self.tier.list_aged("data")? {
            let Some((epoch, first)) = parse_name(&name) else {
                continue;
            };
            if named.contains(name.as_str()) {
                continue;
            }
            let orphan = epoch < v.manifest.epoch
                || (epoch == v.manifest.epoch && first < v.manifest.next_seq && age > ORPHAN_AGE);
            if orphan {
                self.tier.delete(&name)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Merges runs of small objects ([`MERGE_MIN_OBJECTS`] or more consecutive objects
    /// under [`SMALL_OBJECT`]) into bigger ones: the merged objects are written first,
    /// then one conditional manifest put replaces the run, then the replaced objects are
    /// deleted. A crash leaves either the old manifest (the new objects are orphans) or
    /// the new one (the old objects are orphans): a reader never sees a gap or a
    /// duplicate, and one that fetches a replaced object reads the manifest again.
    pub fn merge_small(&self) -> Result<Merged> {
        let v = self.check()?;
        let objs = &v.manifest.objects;
        // The longest run of small objects.
        let mut start = None;
        let mut run = 0..0;
        for (i, o) in objs.iter().enumerate() {
            if o.bytes < SMALL_OBJECT {
                let s = *start.get_or_insert(i);
                if i + 1 - s > run.len() {
                    run = s..i + 1;
                }
            } else {
                start = None;
            }
        }
        if run.len() < MERGE_MIN_OBJECTS {
            return Ok(Merged::default());
        }
        let epoch = v.manifest.epoch;
        let mut merged: Vec<ObjectRef> = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut first = objs[run.start].first;
        let mut written_at = 0;
        for (k, o) in objs[run.clone()].iter().enumerate() {
            written_at = written_at.max(o.written_at);
            let bytes = self.tier.get_object(&o.name)?;
            if bytes.len() as u64 != o.bytes || crc32c::crc32c(&bytes) != o.crc32c {
                return Err(Error::Corrupt {
                    url: self.tier.url().to_string(),
                    what: o.name.clone(),
                    why: "does not match the manifest's size and CRC-32C".into(),
                });
            }
            buf.extend_from_slice(&bytes);
            if buf.len() >= MAX_OBJECT || k + 1 == run.len() {
                let name = object_name(first, o.next, epoch);
                let r = ObjectRef {
                    name: name.clone(),
                    first,
                    next: o.next,
                    bytes: buf.len() as u64,
                    crc32c: crc32c::crc32c(&buf),
                    written_at,
                };
                self.tier.put_object(&name, std::mem::take(&mut buf))?;
                merged.push(r);
                first = o.next;
            }
        }
        let mut m = v.manifest.clone();
        let replaced: Vec<ObjectRef> = m.objects.splice(run, merged.iter().cloned()).collect();
        match self.tier.put_manifest(&m, Some(&v.version))? {
            Put::Stored(_) => {
                for o in &replaced {
                    self.tier.delete(&o.name)?;
                }
                Ok(Merged {
                    replaced: replaced.len(),
                    written: merged.len(),
                })
            }
            // Someone changed the manifest meanwhile; the next merge tries again. The
            // merged objects are not deleted here: another process of this directory
            // may have made the same merge (same names) and stored its manifest; the
            // orphan rule deletes them later if nothing names them.
            Put::Conflict => Ok(Merged::default()),
        }
    }

    /// After an upload: merges small objects and applies retention (what a writer runs
    /// after each upload; both are idempotent and safe to repeat after a crash).
    pub fn maintain(&self) -> Result<()> {
        self.merge_small()?;
        self.apply_retention()?;
        Ok(())
    }

    /// Drops the oldest objects beyond the store's `--object-retention` (a total size,
    /// or an age): one conditional manifest put that no longer names them, then their
    /// deletion. The newest object is always kept. Readers whose copies still need the
    /// dropped records continue after them, recording the gap. Returns how many objects
    /// were dropped.
    pub fn apply_retention(&self) -> Result<usize> {
        let Some(text) = self.config.object_retention.as_deref() else {
            return Ok(0);
        };
        let retention = Retention::parse(text)?;
        let v = self.check()?;
        if matches!(v.manifest.store_kind()?, reel_log::StoreKind::Kv(_)) {
            // A kv store's records are its live values, however old (its log compacts,
            // never drops): dropping objects would lose values (`reel init` refuses the
            // option for kv; a store configured before that keeps everything).
            return Ok(0);
        }
        let objs = &v.manifest.objects;
        let mut drop_n = 0;
        match retention {
            Retention::Bytes(limit) => {
                let mut total: u64 = objs.iter().map(|o| o.bytes).sum();
                while drop_n + 1 < objs.len() && total > limit {
                    total -= objs[drop_n].bytes;
                    drop_n += 1;
                }
            }
            Retention::Age(age) => {
                let horizon = reel_log::now_micros() - age.as_micros() as i64;
                while drop_n + 1 < objs.len() && objs[drop_n].written_at < horizon {
                    drop_n += 1;
                }
            }
        }
        if drop_n == 0 {
            return Ok(0);
        }
        let mut m = v.manifest.clone();
        let dropped: Vec<ObjectRef> = m.objects.drain(..drop_n).collect();
        match self.tier.put_manifest(&m, Some(&v.version))? {
            Put::Stored(_) => {
                for o in &dropped {
                    self.tier.delete(&o.name)?;
                }
                Ok(dropped.len())
            }
            Put::Conflict => Ok(0),
        }
    }

    /// The URL.
    pub fn url(&self) -> &TierUrl {
        self.tier.url()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn object_names_sort_by_seq_and_carry_the_epoch() {
        let a = super::object_name(9, 10, 3);
        let b = super::object_name(10, 11, 1);
        assert!(a < b);
        assert_eq!(super::parse_name(&a), Some((3, 9)));
        assert_eq!(super::parse_name("data/x.frames"), None);
    }
}
