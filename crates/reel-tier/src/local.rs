//! `reel.tier`: the file that makes a local store directory the working directory of a
//! tiered store. JSON with a format name, a version and a CRC-32C; written once by
//! `reel init --object-store`, atomically (temporary file, rename, directory sync).

use crate::{Error, Result, TierUrl};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file name inside the store directory.
pub const TIER_FILE: &str = "reel.tier";
const FORMAT: &str = "reel-tier-local";
const VERSION: u32 = 1;

/// A tiered store's local settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierConfig {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// `s3://BUCKET/PREFIX`.
    pub url: String,
    /// This directory's writer id (random), as the manifest names its writer.
    pub writer_id: String,
    /// Upload at least this often while a writer runs (milliseconds).
    pub seal_after_ms: u64,
    /// What object storage keeps: `None` everything, else e.g. `"10g"` or `"30d"`.
    pub object_retention: Option<String>,
    /// CRC-32C of the serialization with this field at 0.
    pub crc32c: u32,
}

/// The path of `dir`'s tier file.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(TIER_FILE)
}

/// A new random writer id: 128 bits from the OS's randomness (via the std hasher's
/// per-process keys and the time, mixed), as hex.
pub fn new_writer_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_i64(reel_log::now_micros());
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

impl TierConfig {
    /// Settings for a new tiered store at `url`.
    pub fn new(url: &TierUrl, seal_after_ms: u64, object_retention: Option<String>) -> TierConfig {
        TierConfig {
            format: FORMAT.into(),
            version: VERSION,
            url: url.to_string(),
            writer_id: new_writer_id(),
            seal_after_ms,
            object_retention,
            crc32c: 0,
        }
    }

    /// The store URL.
    pub fn tier_url(&self) -> Result<TierUrl> {
        self.url.parse()
    }

    fn checksum(&self) -> u32 {
        let mut c = self.clone();
        c.crc32c = 0;
        crc32c::crc32c(&serde_json::to_vec(&c).unwrap_or_default())
    }

    /// `dir`'s settings, or `None` when the store is not tiered.
    pub fn read(dir: &Path) -> Result<Option<TierConfig>> {
        let p = path(dir);
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Local {
                    path: p,
                    why: format!("cannot read: {e}"),
                });
            }
        };
        let bad = |why: String| Error::Local {
            path: p.clone(),
            why,
        };
        let c: TierConfig =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("damaged: {e}")))?;
        if c.format != FORMAT || c.version != VERSION {
            return Err(bad(format!(
                "format {} version {}, not {FORMAT} version {VERSION}",
                c.format, c.version
            )));
        }
        if c.checksum() != c.crc32c {
            return Err(bad("damaged: checksum mismatch".into()));
        }
        Ok(Some(c))
    }

    /// Writes `dir`'s settings atomically and durably.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let mut c = self.clone();
        c.crc32c = c.checksum();
        let p = path(dir);
        let tmp = dir.join(format!("{TIER_FILE}.tmp"));
        let fail = |e: std::io::Error| Error::Local {
            path: p.clone(),
            why: format!("cannot write: {e}"),
        };
        let mut f = std::fs::File::create(&tmp).map_err(fail)?;
        f.write_all(&serde_json::to_vec_pretty(&c).unwrap_or_default())
            .map_err(fail)?;
        f.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, &p).map_err(fail)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(TierConfig::read(tmp.path()).unwrap().is_none());
        let c = TierConfig::new(&"s3://b/p".parse().unwrap(), 2000, None);
        c.write(tmp.path()).unwrap();
        let back = TierConfig::read(tmp.path()).unwrap().unwrap();
        assert_eq!((back.url.as_str(), back.writer_id.len()), ("s3://b/p", 32));
        let text = std::fs::read_to_string(path(tmp.path())).unwrap();
        std::fs::write(path(tmp.path()), text.replace("2000", "2001")).unwrap();
        assert!(
            TierConfig::read(tmp.path())
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
        assert_ne!(new_writer_id(), new_writer_id());
    }
}
