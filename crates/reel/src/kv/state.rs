//! The kv view: the latest value and revision of every path, applied from the log.

use crate::error::{Error, Result};
use crate::kv::path::PathSyntax;
use crate::value::{Encoding, TAG_TOMBSTONE};
use crate::view::View;
use crate::view::ViewFiles;
use crate::view::tables::{Row, TableSet};
use reel_log::RecordRef;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

/// Name of the kv view (`views/kv/`).
pub const KV_VIEW: &str = "kv";
/// 2: the state is kept in tables (version 1 was one in-memory snapshot).
const KV_VERSION: u32 = 2;

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

/// Distinct keys changed since the last checkpoint after which the next read writes one
/// (a table of them), and records after which it does even if few keys changed: a new
/// process replays at most about this many records on open.
const FLUSH_KEYS: usize = 4096;
const FLUSH_RECORDS: u64 = 16_384;

/// Latest entry per record key (a path's canonical text in the store's syntax).
///
/// The state as of the last checkpoint lives in sorted tables on disk
/// ([`crate::view::table`], newest first), read a block at a time and shared through the
/// page cache; what was applied since lives in memory (`overlay`, with `None` for a
/// deletion that shadows the tables). A checkpoint writes the overlay as a new table, or
/// merges every table and the overlay into one when there are too many, so memory and
/// open time do not grow with the store.
///
/// A path's descendants are found by key prefix ([`PathSyntax::descendant_prefixes`]): in
/// either syntax an escaped dot or colon never looks like a separator.
#[derive(Debug, Default)]
pub struct KvState {
    overlay: HashMap<Arc<str>, Option<KvEntry>>,
    order: BTreeSet<Arc<str>>,
    /// Tables as of the last checkpoint, newest first, with their file names.
    tables: TableSet,
    /// The text syntax of the keys (decides what "below a path" means for them).
    syntax: PathSyntax,
    /// Entries with a revision below this were forgotten (their records are gone).
    forgotten_below: u64,
}

impl KvState {
    /// Applies a set or a deletion of `key` at `rev`.
    pub(crate) fn apply_parts(&mut self, key: &str, tag: u8, value: &[u8], rev: u64, ts: i64) {
        if tag == TAG_TOMBSTONE {
            if self.tables.is_empty() {
                if let Some((k, _)) = self.overlay.remove_entry(key) {
                    self.order.remove(&k);
                }
            } else {
                self.put(key, None);
            }
            return;
        }
        let encoding = match Encoding::from_tag(tag) {
            Ok(e @ (Encoding::MsgPack | Encoding::Bytes)) => e,
            _ => return,
        };
        match self.overlay.get_mut(key) {
            Some(Some(e)) => {
                e.encoding = encoding;
                e.bytes.clear();
                e.bytes.extend_from_slice(value);
                e.rev = rev;
                e.ts = ts;
            }
            _ => self.put(
                key,
                Some(KvEntry {
                    encoding,
                    bytes: value.to_vec(),
                    rev,
                    ts,
                }),
            ),
        }
    }

    fn put(&mut self, key: &str, entry: Option<KvEntry>) {
        match self.overlay.get_mut(key) {
            Some(slot) => *slot = entry,
            None => {
                let k: Arc<str> = Arc::from(key);
                self.order.insert(k.clone());
                self.overlay.insert(k, entry);
            }
        }
    }

    /// Forgets every entry whose record is below `oldest_seq`: retention dropped it, so
    /// its value must not outlive it. Entries in tables are filtered when read.
    pub fn forget_below(&mut self, oldest_seq: u64) {
        if oldest_seq <= self.forgotten_below {
            return;
        }
        self.forgotten_below = oldest_seq;
        let before = self.overlay.len();
        self.overlay
            .retain(|_, e| e.as_ref().is_none_or(|e| e.rev >= oldest_seq));
        if self.overlay.len() != before {
            let overlay = &self.overlay;
            self.order.retain(|k| overlay.contains_key(k));
        }
    }

    fn live(&self, e: Option<KvEntry>) -> Option<KvEntry> {
        e.filter(|e| e.rev >= self.forgotten_below)
    }

    /// The entry the tables hold for `key` (the newest table that names it decides).
    fn table_get(&self, key: &str) -> Result<Option<KvEntry>> {
        self.tables
            .get_with(key.as_bytes(), decode_entry)?
            .transpose()
    }

    /// Number of live paths: a scan of the whole state (the tables do not keep a count,
    /// which would cost a lookup per changed key at every checkpoint).
    pub fn len(&self) -> Result<usize> {
        if self.tables.is_empty() && self.forgotten_below == 0 {
            return Ok(self.overlay.len());
        }
        let mut n = 0;
        for item in self.merged("")? {
            if self.live(item?.1).is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// True when no path holds a value.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The entry at a canonical path.
    pub fn get(&self, key: &str) -> Result<Option<KvEntry>> {
        let e = match self.overlay.get(key) {
            Some(e) => e.clone(),
            None => self.table_get(key)?,
        };
        Ok(self.live(e))
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
    pub fn subtree(&self, key: &str) -> Result<Vec<(String, KvEntry)>> {
        let mut out = Vec::new();
        if key != ":"
            && let Some(e) = self.get(key)?
        {
            out.push((key.to_string(), e));
        }
        for (prefix, rest_ok) in self.syntax.descendant_prefixes(key) {
            for item in self.merged(&prefix)? {
                let (k, e) = item?;
                if !k.starts_with(&prefix) {
                    break;
                }
                if let Some(e) = self.live(e)
                    && rest_ok(&k[prefix.len()..])
                {
                    out.push((k, e));
                }
            }
        }
        Ok(out)
    }

    /// The overlay and the tables merged, from `from` on, in key order; the newest
    /// source of a key decides (`None`: deleted).
    fn merged(
        &self,
        from: &str,
    ) -> Result<impl Iterator<Item = Result<(String, Option<KvEntry>)>> + '_> {
        let overlay = self
            .order
            .range::<str, _>((Bound::Included(from), Bound::Unbounded))
            .map(|k| Ok(self.row(k)));
        let merge = self.tables.merged(from.as_bytes(), Box::new(overlay))?;
        Ok(merge.map(|row| {
            let (k, v) = row?;
            let k = String::from_utf8(k)
                .map_err(|_| Error::Decode("a kv table holds a key that is not UTF-8".into()))?;
            Ok((k, v.as_deref().map(decode_entry).transpose()?))
        }))
    }

    /// The overlay's entry for `k` as a table row.
    fn row(&self, k: &str) -> Row {
        let v = self.overlay.get(k).and_then(|e| e.as_ref()).map(|e| {
            let mut v = Vec::with_capacity(17 + e.bytes.len());
            encode_entry(&mut v, e);
            v
        });
        (k.as_bytes().to_vec(), v)
    }

    /// Writes the overlay as a new table in `files` and returns the manifest naming the
    /// tables now holding the state.
    fn flush(&mut self, files: &ViewFiles) -> Result<Vec<u8>> {
        let rows: Vec<Row> = self.order.iter().map(|k| self.row(k)).collect();
        self.tables.write(files, rows)?;
        self.overlay.clear();
        self.order.clear();
        Ok(self.tables.manifest())
    }
}

/// Encodes a kv row's value: rev u64 | ts i64 | value tag u8 | value bytes.
fn encode_entry(out: &mut Vec<u8>, e: &KvEntry) {
    out.clear();
    out.extend_from_slice(&e.rev.to_le_bytes());
    out.extend_from_slice(&e.ts.to_le_bytes());
    out.push(e.encoding.tag());
    out.extend_from_slice(&e.bytes);
}

fn decode_entry(v: &[u8]) -> Result<KvEntry> {
    let bad = || Error::Decode("malformed kv entry in a view table".into());
    if v.len() < 17 {
        return Err(bad());
    }
    Ok(KvEntry {
        rev: u64::from_le_bytes(v[0..8].try_into().map_err(|_| bad())?),
        ts: i64::from_le_bytes(v[8..16].try_into().map_err(|_| bad())?),
        encoding: Encoding::from_tag(v[16]).map_err(|_| bad())?,
        bytes: v[17..].to_vec(),
    })
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
        self.overlay.clear();
        self.order.clear();
        self.tables.clear();
        self.forgotten_below = 0;
    }

    fn save(&self) -> Result<Vec<u8>> {
        Err(Error::InvalidArgument(
            "the kv view is saved as tables (save_files)".into(),
        ))
    }

    fn load(&mut self, _bytes: &[u8]) -> Result<()> {
        Err(Error::InvalidArgument(
            "the kv view is loaded from tables (load_files)".into(),
        ))
    }

    /// The manifest: `tables u32`, then per table (newest first) name length u32, name,
    /// entries u64.
    fn save_files(&mut self, files: &ViewFiles) -> Result<Vec<u8>> {
        self.flush(files)
    }

    fn load_files(&mut self, files: &ViewFiles, b: &[u8]) -> Result<()> {
        let tables = TableSet::load(files, b)?;
        self.reset();
        self.tables = tables;
        Ok(())
    }

    fn uses_files(&self) -> bool {
        true
    }

    /// A handle closing after few records leaves them to the next opener's replay
    /// rather than adding a small table per process.
    fn checkpoint_on_close(&self, records_since: u64) -> bool {
        records_since >= 1024
    }

    fn files_in_use(&self) -> Vec<String> {
        self.tables.names()
    }

    fn compact_at_next_save(&mut self) {
        self.tables.merge_all_next();
    }

    fn checkpoint_due(&self, records_since: u64, _since: std::time::Duration) -> bool {
        self.overlay.len() >= FLUSH_KEYS || records_since >= FLUSH_RECORDS
    }
}
