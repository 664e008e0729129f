//! `reel.meta`: the log's identity and configuration, replaced atomically as a whole.
//!
//! ```text
//! offset size field
//!      0    8 magic            "REELMETA"
//!      8    4 version          format version (1)
//!     12    1 when_full        0 = drop-oldest, 1 = reject, 2 = compact
//!     13    3 reserved         0
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

use crate::error::{Error, IoContext, Result};
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

/// Default capacity: 1 GiB.
pub const DEFAULT_CAPACITY: u64 = 1 << 30;
/// Default maximum record size: 16 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: u64 = 16 << 20;
/// Smallest capacity accepted.
pub const MIN_CAPACITY: u64 = 64 << 10;
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
        if self.max_record_size == 0 || self.max_record_size > u32::MAX as u64 / 2 {
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
}

impl Meta {
    fn encode(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12] = self.config.when_full.code();
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

    /// Atomically writes the metadata of the log in `dir`.
    pub fn write(&self, storage: &dyn Storage, dir: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_detects_damage() {
        let m = Meta {
            config: Config::with_capacity(1 << 20, WhenFull::Reject),
            log_id: 0xfeed,
            created: 12,
            tombstone_horizon: 3,
        };
        let mut b = m.encode();
        assert_eq!(Meta::decode(&b, Path::new("m")).unwrap(), m);
        b[20] ^= 1;
        assert!(Meta::decode(&b, Path::new("m")).unwrap_err().is_corrupt());
    }

    #[test]
    fn segment_size_is_a_tenth_within_bounds() {
        assert_eq!(default_segment_size(1 << 30), (1 << 30) / 10);
        assert_eq!(default_segment_size(MIN_CAPACITY), MIN_SEGMENT);
    }
}
