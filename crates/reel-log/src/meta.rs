//! `reel.meta`: the log's identity and configuration, replaced atomically as a whole.
//!
//! ```text
//! offset size field
//!      0    8 magic            "REELMETA"
//!      8    4 version          format version (1)
//!     12    1 when_full        0 = drop-oldest, 1 = reject, 2 = compact
//!     13    1 kind             what the store holds: 0 = untyped (created before kinds),
//!                              1 = spool, 2 = kv, 3 = lists; fixed at creation
//!     14    1 kv_path_syntax   kv stores: 0 = legacy dotted text, 1 = DistKV text;
//!                              0 for every other kind
//!     15    1 reserved         0
//!     16    8 capacity         bytes of segments the log may hold
//!     24    8 segment_size     target size of new segments in bytes
//!     32    8 max_record_size  largest key + value in bytes
//!     40   16 log_id           random identity, kept by copies, used by tee and replication
//!     56    8 created          microseconds since the Unix epoch
//!     64    8 tombstone_horizon largest seq of a tombstone compaction dropped (0: none);
//!                              derived state older than it must be rebuilt
//!     72   20 reserved         0
//!     92    4 crc              CRC32C of bytes 0..92
//! ```
//! Updates write `reel.meta.tmp`, sync it, rename it over `reel.meta` and sync the
//! directory, so a crash leaves either the old or the new file.
//!
//! The kind is the one thing the engine knows about what the records mean: which
//! retention is safe for them. A kv store must compact (dropping whole segments would
//! drop live values), a lists store must never compact (keeping only the latest record
//! per key destroys a list). [`Meta::write`] refuses a kind with a policy that would
//! silently destroy its data, and [`Log::compact`] refuses a lists store. This module
//! also holds [`Log::adopt_kind`], the one change of kind there is: a store created
//! before kinds taking the kind it is used as.

use crate::error::{Error, IoContext, Result};
use crate::log::{LOCK_FILE, LockGuard, Log};
use crate::segment::FORMAT_VERSION;
use crate::storage::{OpenMode, Storage};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Name of the metadata file inside a log directory.
pub const META_FILE: &str = "reel.meta";
const META_LEN: usize = 96;
const MAGIC: &[u8; 8] = b"REELMETA";

/// What an append does when the log is at capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum WhenFull {
    /// Delete the oldest segment; readers that fall behind lose records (counted).
    #[default]
    DropOldest,
    /// Refuse the append while some reader still needs the oldest segment.
    Reject,
    /// Keep the latest record per key, dropping superseded ones (kv logs).
    Compact,
}

impl WhenFull {
    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WhenFull::DropOldest => "drop-oldest",
            WhenFull::Reject => "reject",
            WhenFull::Compact => "compact",
        }
    }

    fn code(self) -> u8 {
        match self {
            WhenFull::DropOldest => 0,
            WhenFull::Reject => 1,
            WhenFull::Compact => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => WhenFull::DropOldest,
            1 => WhenFull::Reject,
            2 => WhenFull::Compact,
            _ => return None,
        })
    }
}

impl std::fmt::Display for WhenFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WhenFull {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "drop-oldest" => Ok(WhenFull::DropOldest),
            "reject" => Ok(WhenFull::Reject),
            "compact" => Ok(WhenFull::Compact),
            other => Err(Error::InvalidArgument(format!(
                "unknown when-full policy `{other}` (expected drop-oldest, reject or compact)"
            ))),
        }
    }
}

/// What a store holds, fixed when it is created (`reel.meta` bytes 13 and 14).
///
/// Every kind is a log and can be read as one; the kind decides which writes and which
/// retention are safe. The engine enforces only the retention part (see the module
/// documentation); the `reel` crate refuses operations of another kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum StoreKind {
    /// Created before stores had kinds (or directly through the engine): anything goes,
    /// as before. The first writable open as a kv store or as lists records that kind
    /// if the store's contents and policy allow it ([`Log::adopt_kind`]).
    #[default]
    Untyped,
    /// A spool of records appended and read as they are; any when-full policy.
    Spool,
    /// A kv store: records are writes and tombstones of paths, always `compact`.
    Kv(KvPathSyntax),
    /// Keyed lists: records are list items; never `compact`.
    Lists,
}

/// How a kv store writes paths as record keys (`reel.meta` byte 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum KvPathSyntax {
    /// The dotted text of stores created before the syntax was recorded.
    #[default]
    Legacy,
    /// DistKV's path text.
    DistKv,
}

impl StoreKind {
    /// What a person calls it: "spool", "kv store", "lists store", "untyped store".
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Untyped => "untyped store",
            StoreKind::Spool => "spool",
            StoreKind::Kv(_) => "kv store",
            StoreKind::Lists => "lists store",
        }
    }

    /// The CLI spelling (`reel init --kind`): "untyped", "spool", "kv", "lists".
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Untyped => "untyped",
            StoreKind::Spool => "spool",
            StoreKind::Kv(_) => "kv",
            StoreKind::Lists => "lists",
        }
    }

    /// True when both are the same kind, whatever a kv store's path syntax.
    pub fn is_same_kind(self, other: StoreKind) -> bool {
        std::mem::discriminant(&self) == std::mem::discriminant(&other)
    }

    /// Refuses a when-full policy that would silently destroy this kind's data.
    pub fn check_policy(self, when_full: WhenFull) -> Result<()> {
        match (self, when_full) {
            (StoreKind::Kv(_), WhenFull::DropOldest | WhenFull::Reject) => {
                Err(Error::InvalidArgument(format!(
                    "a kv store always uses the compact when-full policy, not {when_full}: \
                     dropping or refusing by segment would lose values that reads still return"
                )))
            }
            (StoreKind::Lists, WhenFull::Compact) => Err(Error::InvalidArgument(
                "a lists store cannot use the compact when-full policy: compaction keeps \
                 only the latest record of each key and would destroy the items of every \
                 list; use drop-oldest (the oldest items expire) or reject (appends fail \
                 when full)"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// Refuses compaction of a lists store in `dir`.
    pub fn check_compaction(self, dir: &Path) -> Result<()> {
        if self == StoreKind::Lists {
            return Err(Error::InvalidArgument(format!(
                "{} is a lists store: compaction keeps only the latest record of each key \
                 and would destroy the items of every list; a lists store is bounded by its \
                 capacity and when-full policy instead (drop-oldest or reject)",
                dir.display()
            )));
        }
        Ok(())
    }

    fn codes(self) -> (u8, u8) {
        match self {
            StoreKind::Untyped => (0, 0),
            StoreKind::Spool => (1, 0),
            StoreKind::Kv(KvPathSyntax::Legacy) => (2, 0),
            StoreKind::Kv(KvPathSyntax::DistKv) => (2, 1),
            StoreKind::Lists => (3, 0),
        }
    }

    fn from_codes(kind: u8, syntax: u8) -> std::result::Result<Self, String> {
        let kind = match kind {
            0 => StoreKind::Untyped,
            1 => StoreKind::Spool,
            2 => match syntax {
                0 => return Ok(StoreKind::Kv(KvPathSyntax::Legacy)),
                1 => return Ok(StoreKind::Kv(KvPathSyntax::DistKv)),
                n => return Err(format!("unknown kv path syntax {n} (byte 14)")),
            },
            3 => StoreKind::Lists,
            n => return Err(format!("unknown store kind {n} (byte 13)")),
        };
        if syntax != 0 {
            return Err(format!(
                "kv path syntax {syntax} (byte 14) set on a {}",
                kind.name()
            ));
        }
        Ok(kind)
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Default capacity: 1 GiB.
pub const DEFAULT_CAPACITY: u64 = 1 << 30;
/// Default maximum record size: 16 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: u64 = 16 << 20;
/// Smallest capacity accepted.
pub const MIN_CAPACITY: u64 = 64 << 10;
/// The largest maximum record size a store takes (a frame's length is 32 bits).
pub const MAX_RECORD_SIZE_LIMIT: u64 = u32::MAX as u64 / 2;
const MIN_SEGMENT: u64 = 16 << 10;
const MAX_SEGMENT: u64 = 1 << 30;

/// A log's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Bytes of segments the log may hold.
    pub capacity: u64,
    /// The when-full policy.
    pub when_full: WhenFull,
    /// Target size of new segments (about a tenth of the capacity, like kvspool's
    /// attrition unit).
    pub segment_size: u64,
    /// Largest key + value in bytes.
    pub max_record_size: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config::with_capacity(DEFAULT_CAPACITY, WhenFull::DropOldest)
    }
}

impl Config {
    /// A configuration for `capacity` bytes, deriving the segment size.
    pub fn with_capacity(capacity: u64, when_full: WhenFull) -> Self {
        Config {
            capacity,
            when_full,
            segment_size: default_segment_size(capacity),
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
        }
    }

    /// Checks the values are usable.
    pub fn validate(&self) -> Result<()> {
        if self.capacity < MIN_CAPACITY {
            return Err(Error::InvalidArgument(format!(
                "capacity {} is below the minimum of {MIN_CAPACITY} bytes",
                self.capacity
            )));
        }
        if self.segment_size < MIN_SEGMENT || self.segment_size > self.capacity {
            return Err(Error::InvalidArgument(format!(
                "segment size {} must be between {MIN_SEGMENT} bytes and the capacity",
                self.segment_size
            )));
        }
        if self.max_record_size == 0 || self.max_record_size > MAX_RECORD_SIZE_LIMIT {
            return Err(Error::InvalidArgument(format!(
                "maximum record size {} must be between 1 byte and 2 GiB",
                self.max_record_size
            )));
        }
        Ok(())
    }
}

/// About a tenth of the capacity, within sane bounds.
pub fn default_segment_size(capacity: u64) -> u64 {
    (capacity / 10)
        .clamp(MIN_SEGMENT, MAX_SEGMENT)
        .min(capacity)
}

/// The decoded metadata file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Configuration.
    pub config: Config,
    /// Random identity of the log.
    pub log_id: u128,
    /// Creation time, microseconds since the Unix epoch.
    pub created: i64,
    /// Largest seq of a tombstone that compaction dropped: derived state that applied
    /// records only up to it may hold a value whose deletion it can no longer see.
    pub tombstone_horizon: u64,
    /// What the store holds.
    pub kind: StoreKind,
}

impl Meta {
    fn encode(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12] = self.config.when_full.code();
        (b[13], b[14]) = self.kind.codes();
        b[16..24].copy_from_slice(&self.config.capacity.to_le_bytes());
        b[24..32].copy_from_slice(&self.config.segment_size.to_le_bytes());
        b[32..40].copy_from_slice(&self.config.max_record_size.to_le_bytes());
        b[40..56].copy_from_slice(&self.log_id.to_le_bytes());
        b[56..64].copy_from_slice(&self.created.to_le_bytes());
        b[64..72].copy_from_slice(&self.tombstone_horizon.to_le_bytes());
        let crc = crc32c::crc32c(&b[..92]);
        b[92..96].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes the metadata file's bytes; `path` names the file in errors.
    pub fn decode(b: &[u8], path: &Path) -> Result<Meta> {
        let corrupt = |reason: &str| Error::corrupt(path, 0, reason);
        if b.len() != META_LEN || &b[0..8] != MAGIC {
            return Err(corrupt("not a reel metadata file"));
        }
        let crc = u32::from_le_bytes(b[92..96].try_into().unwrap_or_default());
        if crc != crc32c::crc32c(&b[..92]) {
            return Err(corrupt("metadata checksum mismatch"));
        }
        let version = u32::from_le_bytes(b[8..12].try_into().unwrap_or_default());
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.into(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let when_full =
            WhenFull::from_code(b[12]).ok_or_else(|| corrupt("unknown when-full policy"))?;
        let kind = StoreKind::from_codes(b[13], b[14]).map_err(|why| corrupt(&why))?;
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
        Ok(Meta {
            config: Config {
                when_full,
                capacity: u64_at(16),
                segment_size: u64_at(24),
                max_record_size: u64_at(32),
            },
            log_id: u128::from_le_bytes(b[40..56].try_into().unwrap_or_default()),
            created: i64::from_le_bytes(b[56..64].try_into().unwrap_or_default()),
            tombstone_horizon: u64::from_le_bytes(b[64..72].try_into().unwrap_or_default()),
            kind,
        })
    }

    /// Path of the metadata file of the log in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(META_FILE)
    }

    /// Reads the metadata of the log in `dir`.
    pub fn read(storage: &dyn Storage, dir: &Path) -> Result<Meta> {
        let path = Self::path(dir);
        let file = match storage.open(&path, OpenMode::Read) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotALog { path: dir.into() });
            }
            Err(e) => return Err(Error::io("open", path, e)),
        };
        let mut b = vec![0u8; META_LEN + 1];
        let n = file.read_full_at(&mut b, 0).ctx("read", &path)?;
        b.truncate(n);
        if n < 8 || &b[0..8] != MAGIC {
            return Err(Error::NotALog { path: dir.into() });
        }
        Meta::decode(&b, &path)
    }

    /// Atomically writes the metadata of the log in `dir`. Refuses a kind with a
    /// when-full policy that would destroy its data ([`StoreKind::check_policy`]).
    pub fn write(&self, storage: &dyn Storage, dir: &Path) -> Result<()> {
        self.kind.check_policy(self.config.when_full)?;
        let path = Self::path(dir);
        let tmp = dir.join("reel.meta.tmp");
        let f = storage
            .open(&tmp, OpenMode::CreateTruncate)
            .ctx("create", &tmp)?;
        f.write_all_at(&self.encode(), 0).ctx("write", &tmp)?;
        f.sync_data().ctx("sync", &tmp)?;
        storage.rename(&tmp, &path).ctx("rename", &path)?;
        storage.sync_dir(dir).ctx("sync", dir)?;
        Ok(())
    }
}

impl Log {
    /// What the store holds (re-read when another process changed `reel.meta`).
    pub fn kind(&self) -> StoreKind {
        self.meta().kind
    }

    /// Records `kind` in an untyped store, under the writer lock. `check` gets the
    /// metadata as it is on disk at that moment (no append can run until it returns, so
    /// it may inspect the records) and returns the when-full policy the kind needs
    /// (`None` keeps the current one) or refuses. A store that already has a kind is
    /// left alone and `check` is not called. Returns the store's kind afterwards: the
    /// caller compares it with the one it asked for.
    pub fn adopt_kind<E: From<Error>>(
        &self,
        kind: StoreKind,
        check: impl FnOnce(&Meta) -> std::result::Result<Option<WhenFull>, E>,
    ) -> std::result::Result<StoreKind, E> {
        self.check_writable()?;
        if kind == StoreKind::Untyped {
            return Err(Error::InvalidArgument("a store cannot be made untyped".into()).into());
        }
        let _ws = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _g = LockGuard::acquire(&*self.inner.lock, &self.inner.dir.join(LOCK_FILE))?;
        let mut meta = Meta::read(&*self.inner.storage, &self.inner.dir)?;
        if meta.kind != StoreKind::Untyped {
            return Ok(meta.kind);
        }
        let before = meta.config.when_full;
        if let Some(policy) = check(&meta)? {
            meta.config.when_full = policy;
        }
        meta.kind = kind;
        // Ordering: reel.meta is replaced first, then config_gen tells the other
        // handles to re-read it; a crash in between leaves the new file, which every
        // later open reads.
        meta.write(&*self.inner.storage, &self.inner.dir)?;
        self.inner
            .head
            .words()
            .config_gen
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        tracing::info!(
            dir = %self.inner.dir.display(),
            kind = kind.as_str(),
            when_full = meta.config.when_full.as_str(),
            was = before.as_str(),
            "a store created before kinds is now a {}",
            kind.name()
        );
        Ok(kind)
    }
}

#[cfg(test)]
mod tests;
