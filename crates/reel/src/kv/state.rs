//! The kv view: the latest value and revision of every path, applied from the log.

use crate::error::{Error, Result};
use crate::kv::path::PathSyntax;
use crate::value::{Encoding, TAG_TOMBSTONE};
use crate::view::View;
use reel_log::RecordRef;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

/// Name of the kv view (`views/kv/`).
pub const KV_VIEW: &str = "kv";
const KV_VERSION: u32 = 1;

/// The stored state of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// The value's encoding.
    pub encoding: Encoding,
    /// The value bytes.
    pub bytes: Vec<u8>,
    /// Revision: the seq of the write.
    pub rev: u64,
    /// Time of the write (µs since the epoch).
    pub ts: i64,
}

impl KvEntry {
    /// The value.
    pub fn value(&self) -> crate::Value {
        crate::Value::from_parts(self.encoding, self.bytes.clone())
    }

    /// The value as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        crate::json_of(self.encoding, &self.bytes)
    }
}

/// Latest entry per record key (a path's canonical text in the store's syntax): a hash
/// map for point lookups and an ordered set of the same (shared) keys for subtree
/// queries. A path's descendants are found by key prefix
/// ([`PathSyntax::descendant_prefixes`]): in either syntax an escaped dot or colon never
/// looks like a separator.
#[derive(Debug, Default)]
pub struct KvState {
    entries: HashMap<Arc<str>, KvEntry>,
    order: BTreeSet<Arc<str>>,
    /// The text syntax of the keys (decides what "below a path" means for them).
    syntax: PathSyntax,
    /// Entries with a revision below this were forgotten (their records are gone).
    forgotten_below: u64,
}

impl KvState {
    /// Applies a set or a deletion of `key` at `rev`.
    pub(crate) fn apply_parts(&mut self, key: &str, tag: u8, value: &[u8], rev: u64, ts: i64) {
        if tag == TAG_TOMBSTONE {
            if let Some((k, _)) = self.entries.remove_entry(key) {
                self.order.remove(&k);
            }
            return;
        }
        let encoding = match Encoding::from_tag(tag) {
            Ok(e @ (Encoding::MsgPack | Encoding::Bytes)) => e,
            _ => return,
        };
        match self.entries.get_mut(key) {
            Some(e) => {
                e.encoding = encoding;
                e.bytes.clear();
                e.bytes.extend_from_slice(value);
                e.rev = rev;
                e.ts = ts;
            }
            None => {
                let k: Arc<str> = Arc::from(key);
                self.order.insert(k.clone());
                self.entries.insert(
                    k,
                    KvEntry {
                        encoding,
                        bytes: value.to_vec(),
                        rev,
                        ts,
                    },
                );
            }
        }
    }

    /// Forgets every entry whose record is below `oldest_seq`: retention dropped it, so
    /// its value must not outlive it. A full pass, run only when `oldest_seq` moved.
    pub fn forget_below(&mut self, oldest_seq: u64) {
        if oldest_seq <= self.forgotten_below {
            return;
        }
        self.forgotten_below = oldest_seq;
        let before = self.entries.len();
        self.entries.retain(|_, e| e.rev >= oldest_seq);
        if self.entries.len() != before {
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
    }

    /// Number of live paths.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no path holds a value.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry at a canonical path.
    pub fn get(&self, key: &str) -> Option<&KvEntry> {
        self.entries.get(key)
    }

    /// An empty state whose keys are in `syntax`.
    pub fn with_syntax(syntax: PathSyntax) -> KvState {
        KvState {
            syntax,
            ..Default::default()
        }
    }

    /// Entries at and below a canonical path (`":"`: everything): the path's own entry
    /// first, then its descendants in key order within each prefix of
    /// [`PathSyntax::descendant_prefixes`].
    pub fn subtree<'a>(
        &'a self,
        key: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a KvEntry)> + 'a {
        let own_entry = (key != ":")
            .then(|| self.entries.get_key_value(key))
            .flatten()
            .map(|(k, e)| (&**k, e));
        let below = self
            .syntax
            .descendant_prefixes(key)
            .into_iter()
            .flat_map(move |(prefix, rest_ok)| {
                self.order
                    .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                    .take_while(|k| k.starts_with(prefix.as_str()))
                    .filter(|k| rest_ok(&k[prefix.len()..]))
                    .collect::<Vec<_>>()
            })
            .filter_map(|k| self.entries.get_key_value(&**k).map(|(k, e)| (&**k, e)));
        own_entry.into_iter().chain(below)
    }
}

impl View for KvState {
    fn name(&self) -> &str {
        KV_VIEW
    }

    fn version(&self) -> u32 {
        KV_VERSION
    }

    fn apply(&mut self, r: &RecordRef<'_>) -> Result<()> {
        if let Some(key) = r.key {
            self.apply_parts(key, r.encoding, r.value, r.seq, r.ts);
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.forgotten_below = 0;
    }

    /// `count u64`, then per entry: key length u32, key, rev u64, ts i64, tag u8,
    /// value length u32, value.
    fn save(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(8 + self.entries.len() * 64);
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for (k, e) in self
            .order
            .iter()
            .filter_map(|k| self.entries.get_key_value(k))
        {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&e.rev.to_le_bytes());
            out.extend_from_slice(&e.ts.to_le_bytes());
            out.push(e.encoding.tag());
            out.extend_from_slice(&(e.bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&e.bytes);
        }
        Ok(out)
    }

    fn load(&mut self, b: &[u8]) -> Result<()> {
        let bad = || Error::Decode("kv checkpoint is malformed".into());
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = b.get(at..at + n).ok_or_else(bad)?;
            at += n;
            Ok(s)
        };
        let count = u64::from_le_bytes(take(8)?.try_into().map_err(|_| bad())?);
        // Checkpoints list keys in order: the ordered set is built in bulk from them.
        let mut keys: Vec<Arc<str>> = Vec::with_capacity(count.min(1 << 24) as usize);
        let mut entries = HashMap::with_capacity(count.min(1 << 24) as usize);
        for _ in 0..count {
            let klen = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
            let key: Arc<str> = Arc::from(std::str::from_utf8(take(klen)?).map_err(|_| bad())?);
            let rev = u64::from_le_bytes(take(8)?.try_into().map_err(|_| bad())?);
            let ts = i64::from_le_bytes(take(8)?.try_into().map_err(|_| bad())?);
            let encoding = Encoding::from_tag(take(1)?[0])?;
            let vlen = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
            let bytes = take(vlen)?.to_vec();
            keys.push(key.clone());
            entries.insert(
                key,
                KvEntry {
                    encoding,
                    bytes,
                    rev,
                    ts,
                },
            );
        }
        self.order = keys.into_iter().collect();
        self.entries = entries;
        self.forgotten_below = 0;
        Ok(())
    }
}
