//! The manifest: what a tiered store is and which objects hold its records.
//!
//! JSON with a format name, a version and a CRC-32C of its own serialization (with the
//! `crc32c` field at 0), so a damaged or foreign manifest is refused rather than read.
//! Replaced only with a conditional put on the version read ([`crate::Tier`]).

use crate::{Error, Result};
use reel_log::{Config, KvPathSyntax, StoreKind, WhenFull};
use serde::{Deserialize, Serialize};

/// Format name in every manifest.
pub const FORMAT: &str = "reel-tier-manifest";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// One data object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Key under the prefix (`data/...`).
    pub name: String,
    /// Seq of its first record.
    pub first: u64,
    /// One past the seq of its last record.
    pub next: u64,
    /// Its size.
    pub bytes: u64,
    /// CRC-32C of its bytes.
    pub crc32c: u32,
    /// When it was written (µs since the epoch; a merge keeps its newest member's):
    /// what retention by age goes by. Records are uploaded within `--seal-after` of
    /// their append, so this is their age to within that.
    #[serde(default)]
    pub written_at: i64,
}

/// Who writes the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterInfo {
    /// Random id of the writer's local directory (its `reel.tier`).
    pub id: String,
    /// Host name, for people.
    pub host: String,
    /// The local directory, for people.
    pub dir: String,
    /// When it claimed the store (µs since the epoch).
    pub since: i64,
}

impl WriterInfo {
    /// `DIR on HOST`.
    pub fn describe(&self) -> String {
        format!("{} on {}", self.dir, self.host)
    }
}

/// The store's configuration, as `reel init` took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreConfig {
    /// Bytes of local disk.
    pub capacity: u64,
    /// `drop-oldest`, `reject` or `compact`.
    pub when_full: String,
    /// Target segment size.
    pub segment_size: u64,
    /// Largest record.
    pub max_record_size: u64,
}

/// The manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The store's identity (`reel.meta`'s log id, hex): its caches and continuations
    /// keep it, so tokens naming the log are valid on all of them.
    pub log_id: String,
    /// `spool`, `kv`, `kv-legacy`, `lists` or `untyped`.
    pub kind: String,
    /// The store's configuration.
    pub config: StoreConfig,
    /// Incremented by every writer that claims the store.
    pub epoch: u64,
    /// The current writer.
    pub writer: WriterInfo,
    /// Every seq below this is in the objects (or was dropped by retention).
    pub next_seq: u64,
    /// The data objects, in seq order, without overlaps.
    pub objects: Vec<ObjectRef>,
    /// CRC-32C of the serialization with this field at 0.
    pub crc32c: u32,
}

/// The manifest's name for a kind.
pub fn kind_name(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Untyped => "untyped",
        StoreKind::Spool => "spool",
        StoreKind::Kv(KvPathSyntax::DistKv) => "kv",
        StoreKind::Kv(KvPathSyntax::Legacy) => "kv-legacy",
        StoreKind::Lists => "lists",
    }
}

impl Manifest {
    /// A new store's manifest: no objects yet.
    pub fn new(log_id: u128, kind: StoreKind, config: Config, writer: WriterInfo) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            log_id: format!("{log_id:032x}"),
            kind: kind_name(kind).into(),
            config: StoreConfig {
                capacity: config.capacity,
                when_full: config.when_full.as_str().into(),
                segment_size: config.segment_size,
                max_record_size: config.max_record_size,
            },
            epoch: 1,
            writer,
            next_seq: 0,
            objects: Vec::new(),
            crc32c: 0,
        }
    }

    /// The store's kind.
    pub fn store_kind(&self) -> Result<StoreKind> {
        Ok(match self.kind.as_str() {
            "untyped" => StoreKind::Untyped,
            "spool" => StoreKind::Spool,
            "kv" => StoreKind::Kv(KvPathSyntax::DistKv),
            "kv-legacy" => StoreKind::Kv(KvPathSyntax::Legacy),
            "lists" => StoreKind::Lists,
            other => return Err(self.bad(format!("unknown kind `{other}`"))),
        })
    }

    /// The store's identity.
    pub fn store_log_id(&self) -> Result<u128> {
        u128::from_str_radix(&self.log_id, 16).map_err(|e| self.bad(format!("log_id: {e}")))
    }

    /// The store's configuration.
    pub fn store_config(&self) -> Result<Config> {
        let when_full: WhenFull = self
            .config
            .when_full
            .parse()
            .map_err(|e| self.bad(format!("when_full: {e}")))?;
        Ok(Config {
            capacity: self.config.capacity,
            when_full,
            segment_size: self.config.segment_size,
            max_record_size: self.config.max_record_size,
        })
    }

    fn bad(&self, why: String) -> Error {
        Error::Corrupt {
            url: String::new(),
            what: "manifest.json".into(),
            why,
        }
    }

    /// The bytes stored: JSON with the checksum filled in.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = self.clone();
        m.crc32c = 0;
        // Serializing plain data into a Vec cannot fail.
        let body = serde_json::to_vec(&m).unwrap_or_default();
        m.crc32c = crc32c::crc32c(&body);
        serde_json::to_vec_pretty(&m).unwrap_or_default()
    }

    /// Parses and checks stored bytes.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Manifest, String> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))?;
        if m.format != FORMAT {
            return Err(format!("format `{}`, not `{FORMAT}`", m.format));
        }
        if m.version != VERSION {
            return Err(format!(
                "format version {} (this build reads version {VERSION}); use a newer reel",
                m.version
            ));
        }
        let mut zero = m.clone();
        zero.crc32c = 0;
        let body = serde_json::to_vec(&zero).map_err(|e| e.to_string())?;
        let crc = crc32c::crc32c(&body);
        if crc != m.crc32c {
            return Err(format!(
                "checksum mismatch (stored {:08x}, computed {crc:08x})",
                m.crc32c
            ));
        }
        let mut at = None;
        for o in &m.objects {
            if o.next <= o.first || at.is_some_and(|a| o.first < a) {
                return Err(format!(
                    "object {} covers seqs {}..{}, out of order",
                    o.name, o.first, o.next
                ));
            }
            at = Some(o.next);
        }
        if at.is_some_and(|a| a > m.next_seq) {
            return Err("objects reach past next_seq".into());
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut m = Manifest::new(
            0xabc,
            StoreKind::Spool,
            Config::default(),
            WriterInfo {
                id: "ab".into(),
                host: "h".into(),
                dir: "/d".into(),
                since: 1,
            },
        );
        m.objects.push(ObjectRef {
            name: "data/x".into(),
            first: 0,
            next: 10,
            bytes: 100,
            crc32c: 7,
            written_at: 0,
        });
        m.next_seq = 10;
        m
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let m = sample();
        let bytes = m.encode();
        let back = Manifest::decode(&bytes).unwrap();
        assert_eq!(back.objects, m.objects);
        assert_eq!(back.store_kind().unwrap(), StoreKind::Spool);
        let text = String::from_utf8(bytes).unwrap();
        let damaged = text.replace("\"next_seq\": 10", "\"next_seq\": 11");
        assert!(
            Manifest::decode(damaged.as_bytes())
                .unwrap_err()
                .contains("checksum")
        );
        let newer = text.replace("\"version\": 1", "\"version\": 2");
        assert!(
            Manifest::decode(newer.as_bytes())
                .unwrap_err()
                .contains("version 2")
        );
    }
}
