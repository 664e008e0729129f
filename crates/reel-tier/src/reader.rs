//! The reader side: a local follower store (the cache) kept equal to what object storage
//! holds, so that every local read command works on it.
//!
//! Objects are fetched a few at a time ahead of the one being appended (prefetch), each
//! checked against the manifest's CRC-32C, and their frames appended as stored (every
//! frame's own checksum verified, seqs kept) by the engine's replication append.

use crate::manifest::Manifest;
use crate::object::Tier;
use crate::{Error, Result};
use reel_log::{Durability, Log, LogOptions};
use std::path::Path;

/// Objects fetched ahead of the one being appended.
const PREFETCH: usize = 4;

/// Brings the follower store in `cache` (created if missing, with the store's kind and
/// configuration) up to what the manifest names; returns the cache's next seq.
pub fn sync_cache(tier: &Tier, cache: &Path) -> Result<u64> {
    let mut attempts = 0;
    loop {
        let v = tier.require_manifest()?;
        let log = open_cache(tier, &v.manifest, cache)?;
        match copy_into(tier, &v.manifest, &log, Durability::None) {
            // Merged away after the manifest was read: a newer manifest names its merge.
            Err(Error::Gone { .. }) if attempts < 5 => attempts += 1,
            other => {
                other?;
                log.sync()?;
                return Ok(log.next_seq());
            }
        }
    }
}

/// Opens (creating if needed) the follower store in `cache` for the store at `tier`.
fn open_cache(tier: &Tier, m: &Manifest, cache: &Path) -> Result<Log> {
    let origin = tier.url().to_string();
    let storage = reel_log::storage::DiskStorage;
    if !cache.join(reel_log::META_FILE).is_file() {
        std::fs::create_dir_all(cache).map_err(|e| Error::Local {
            path: cache.to_path_buf(),
            why: format!("cannot create the cache directory: {e}"),
        })?;
        let log = LogOptions::new()
            .create(m.store_config()?)
            .kind(m.store_kind()?)
            .log_id(m.store_log_id()?)
            .replica(true)
            .open(cache)?;
        reel_log::follow::write_source(&storage, cache, &origin).map_err(|e| Error::Local {
            path: cache.to_path_buf(),
            why: format!("cannot mark the cache a follower: {e}"),
        })?;
        return Ok(log);
    }
    match reel_log::follow::read_source(&storage, cache) {
        Ok(Some(s)) if s == origin => {}
        Ok(other) => {
            return Err(Error::Local {
                path: cache.to_path_buf(),
                why: format!(
                    "is not a cache of {origin} (it {}); use another --cache directory",
                    other.map_or("is a store of its own".to_string(), |o| format!(
                        "follows {o}"
                    ))
                ),
            });
        }
        Err(e) => {
            return Err(Error::Local {
                path: cache.to_path_buf(),
                why: format!("cannot read its follower marker: {e}"),
            });
        }
    }
    let log = LogOptions::new().replica(true).open(cache)?;
    let store_id = m.store_log_id()?;
    if log.log_id() != store_id {
        // A cache of an earlier store at the same URL (deleted and created again): its
        // records are not this store's, and continuing it would splice the two. It is
        // our own copy (its marker names this URL): start it again.
        tracing::info!(cache = %cache.display(), "the cache holds another store that was at {origin}: copying the store again");
        drop(log);
        std::fs::remove_dir_all(cache).map_err(|e| Error::Local {
            path: cache.to_path_buf(),
            why: format!("cannot clear the cache of the earlier store: {e}"),
        })?;
        return open_cache(tier, m, cache);
    }
    Ok(log)
}

/// Appends to `log` the records of `m`'s objects from `log`'s next seq on.
pub(crate) fn copy_into(
    tier: &Tier,
    m: &Manifest,
    log: &Log,
    durability: Durability,
) -> Result<()> {
    let start = log.next_seq();
    if start > m.next_seq {
        return Err(Error::Gap(format!(
            "{} holds records up to seq {} but {} ends before seq {}: the local copy is ahead of object storage (another history); use a new directory",
            log.dir().display(),
            start - 1,
            tier.url(),
            m.next_seq
        )));
    }
    let wanted: Vec<_> = m
        .objects
        .iter()
        .filter(|o| o.next > start)
        .cloned()
        .collect();
    if let Some(o) = wanted.first()
        && o.first > start
    {
        // Object retention dropped them before this copy got them: the copy continues
        // after them, and its log records the gap (as `reel replicate --skip-gap` does).
        tracing::warn!(
            "{} no longer holds seqs {start} to {} (object retention); {} continues after them",
            tier.url(),
            o.first - 1,
            log.dir().display()
        );
        log.skip_to(o.first)?;
    }
    // Fetch in windows of PREFETCH objects on scoped threads, append in order.
    for window in wanted.chunks(PREFETCH) {
        let fetched: Vec<Result<Vec<u8>>> = std::thread::scope(|s| {
            let hs: Vec<_> = window
                .iter()
                .map(|o| s.spawn(move || tier.get_object(&o.name)))
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Gap("a download thread panicked".into())))
                })
                .collect()
        });
        for (o, bytes) in window.iter().zip(fetched) {
            let bytes = bytes?;
            let crc = crc32c::crc32c(&bytes);
            if bytes.len() as u64 != o.bytes || crc != o.crc32c {
                return Err(Error::Corrupt {
                    url: tier.url().to_string(),
                    what: o.name.clone(),
                    why: format!(
                        "{} bytes with CRC-32C {crc:08x}, the manifest says {} bytes with {:08x}",
                        bytes.len(),
                        o.bytes,
                        o.crc32c
                    ),
                });
            }
            let from = skip_to(&bytes, log.next_seq(), log)?;
            append_in_batches(log, &bytes[from..], durability)?;
        }
    }
    Ok(())
}

/// Appends whole `frames` in batches that fit `log`: an object holds up to 64 MiB of
/// records, more than a small store's capacity, and a batch larger than the capacity
/// is refused (every read and takeover of such a store failed).
fn append_in_batches(log: &Log, frames: &[u8], durability: Durability) -> Result<()> {
    let limit = (log.config().capacity / 4).max(1) as usize;
    for batch in reel_log::frame::batches(frames, limit) {
        log.append_frames(batch, durability)?;
    }
    Ok(())
}

/// The byte offset of the first frame in `frames` whose seq is at least `seq`.
fn skip_to(frames: &[u8], seq: u64, log: &Log) -> Result<usize> {
    let max = log.config().max_record_size as usize + 1024;
    let mut at = 0;
    while at < frames.len() {
        let (f, len) = reel_log::frame::decode(&frames[at..], max)
            .map_err(|e| Error::Gap(format!("undecodable frame at byte {at}: {e:?}")))?;
        if let reel_log::frame::Frame::Record(r) = f
            && r.seq >= seq
        {
            return Ok(at);
        }
        at += len;
    }
    Ok(at)
}
