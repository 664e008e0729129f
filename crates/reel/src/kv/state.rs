//! The kv view: the latest value and revision of every path, applied from the log.

use crate::error::{Error, Result};
use crate::kv::path::PathSyntax;
use crate::value::{Encoding, TAG_TOMBSTONE};
use crate::view::View;
use crate::view::ViewFiles;
use crate::view::table::{Table, TableWriter};
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
/// A new table absorbs the next older one when it is at least 1/MERGE_RATIO of its size.
const MERGE_RATIO: u64 = 4;
/// Tables beyond which a checkpoint merges the newest ones regardless of size.
const MAX_TABLES: usize = 12;

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
    tables: Vec<(String, Arc<Table>)>,
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
        for (_, t) in &self.tables {
            if let Some(v) = t.get(key.as_bytes())? {
                return decode_entry(&v, t.path());
            }
        }
        Ok(None)
    }

    /// Number of live paths: a scan of the whole state (the tables do not keep a count,
    /// which would cost a lookup per changed key at every checkpoint).
    pub fn len(&self) -> Result<usize> {
        if self.tables.is_empty() && self.forgotten_below == 0 {
            return Ok(self.overlay.len());
        }
        let mut n = 0;
        for item in self.merged("", self.tables.len())? {
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
            for item in self.merged(&prefix, self.tables.len())? {
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

    /// The overlay and the newest `tables` tables merged, from `from` on, in key order;
    /// the newest source of a key decides (`None`: deleted).
    fn merged(&self, from: &str, tables: usize) -> Result<Merge<'_>> {
        let overlay: Box<dyn Iterator<Item = Result<(String, Option<KvEntry>)>> + '_> = Box::new(
            self.order
                .range::<str, _>((Bound::Included(from), Bound::Unbounded))
                .map(|k| Ok((k.to_string(), self.overlay.get(k).cloned().flatten()))),
        );
        let mut sources = vec![overlay];
        for (_, t) in &self.tables[..tables] {
            let path = t.path().to_path_buf();
            sources.push(Box::new(t.iter_from(from.as_bytes()).map(move |e| {
                let (k, v) = e?;
                let k = String::from_utf8(k).map_err(|_| {
                    Error::Decode(format!("key in table {} is not UTF-8", path.display()))
                })?;
                Ok((k, decode_entry(&v, &path)?))
            })));
        }
        Merge::new(sources)
    }

    /// Writes the overlay as a new table in `files` (merging tables when there are too
    /// many), and returns the manifest naming the tables now holding the state.
    fn flush(&mut self, files: &ViewFiles) -> Result<Vec<u8>> {
        if !self.overlay.is_empty() {
            // How many tables (newest first) the new one replaces: tables are kept in
            // sizes growing by at least MERGE_RATIO from newest to oldest, so there are
            // O(log n) of them and each entry is rewritten O(log n) times. Merging into
            // the oldest table drops deletions (nothing older can hold their keys).
            let mut size = self.overlay.len() as u64;
            let mut replace = 0;
            while let Some((_, t)) = self.tables.get(replace)
                && (size * MERGE_RATIO >= t.entries()
                    || self.tables.len() - replace + 1 > MAX_TABLES)
            {
                size += t.entries();
                replace += 1;
            }
            let is_base = replace == self.tables.len();
            let name = format!("{:016x}.tbl", crate::view::unique_id());
            let path = files.dir.join(&name);
            files
                .storage
                .create_dir_all(&files.dir)
                .map_err(|e| reel_log::Error::io("create directory", &files.dir, e))?;
            let mut w = TableWriter::create(&*files.storage, &path)?;
            let mut value = Vec::new();
            for item in self.merged("", replace)? {
                let (k, e) = item?;
                let e = self.live(e);
                if e.is_none() && is_base {
                    continue;
                }
                encode_entry(&mut value, e.as_ref());
                w.add(k.as_bytes(), &value)?;
            }
            w.finish()?;
            let table = Arc::new(Table::open(&*files.storage, &path)?);
            self.tables.drain(..replace);
            self.tables.insert(0, (name, table));
            self.overlay.clear();
            self.order.clear();
        }
        let mut m = Vec::new();
        m.extend_from_slice(&(self.tables.len() as u32).to_le_bytes());
        for (name, t) in &self.tables {
            m.extend_from_slice(&(name.len() as u32).to_le_bytes());
            m.extend_from_slice(name.as_bytes());
            m.extend_from_slice(&t.entries().to_le_bytes());
        }
        Ok(m)
    }
}

type Source<'a> = Box<dyn Iterator<Item = Result<(String, Option<KvEntry>)>> + 'a>;

/// K-way merge of sorted sources, newest first: yields each key once, from the newest
/// source holding it.
struct Merge<'a> {
    sources: Vec<Source<'a>>,
    heads: Vec<Option<(String, Option<KvEntry>)>>,
}

impl<'a> Merge<'a> {
    fn new(mut sources: Vec<Source<'a>>) -> Result<Merge<'a>> {
        let heads = sources
            .iter_mut()
            .map(|s| s.next().transpose())
            .collect::<Result<Vec<_>>>()?;
        Ok(Merge { sources, heads })
    }
}

impl Iterator for Merge<'_> {
    type Item = Result<(String, Option<KvEntry>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<usize> = None;
        for (i, h) in self.heads.iter().enumerate() {
            if let Some((k, _)) = h
                && best.is_none_or(|b| k < &self.heads[b].as_ref().expect("head").0)
            {
                best = Some(i);
            }
        }
        let best = best?;
        let out = self.heads[best].take().expect("head");
        for i in 0..self.heads.len() {
            let same = i == best || self.heads[i].as_ref().is_some_and(|(k, _)| *k == out.0);
            if same {
                match self.sources[i].next().transpose() {
                    Ok(h) => self.heads[i] = h,
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        Some(Ok(out))
    }
}

/// Encodes a table value: rev u64 | ts i64 | tag u8 | value bytes (tag
/// [`TAG_TOMBSTONE`] and no bytes for a deletion).
fn encode_entry(out: &mut Vec<u8>, e: Option<&KvEntry>) {
    out.clear();
    match e {
        Some(e) => {
            out.extend_from_slice(&e.rev.to_le_bytes());
            out.extend_from_slice(&e.ts.to_le_bytes());
            out.push(e.encoding.tag());
            out.extend_from_slice(&e.bytes);
        }
        None => {
            out.extend_from_slice(&[0; 16]);
            out.push(TAG_TOMBSTONE);
        }
    }
}

fn decode_entry(v: &[u8], path: &std::path::Path) -> Result<Option<KvEntry>> {
    let bad = || Error::Decode(format!("malformed kv entry in table {}", path.display()));
    if v.len() < 17 {
        return Err(bad());
    }
    let tag = v[16];
    if tag == TAG_TOMBSTONE {
        return Ok(None);
    }
    Ok(Some(KvEntry {
        rev: u64::from_le_bytes(v[0..8].try_into().map_err(|_| bad())?),
        ts: i64::from_le_bytes(v[8..16].try_into().map_err(|_| bad())?),
        encoding: Encoding::from_tag(tag).map_err(|_| bad())?,
        bytes: v[17..].to_vec(),
    }))
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
        let bad = || Error::Decode("kv checkpoint manifest is malformed".into());
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = b.get(at..at + n).ok_or_else(bad)?;
            at += n;
            Ok(s)
        };
        let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?);
        let mut tables = Vec::new();
        for _ in 0..count.min(1024) {
            let n = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
            let name = std::str::from_utf8(take(n)?)
                .map_err(|_| bad())?
                .to_string();
            let entries = u64::from_le_bytes(take(8)?.try_into().map_err(|_| bad())?);
            if name.contains('/') || !name.ends_with(".tbl") {
                return Err(bad());
            }
            let table = Table::open(&*files.storage, &files.dir.join(&name))?;
            if table.entries() != entries {
                return Err(bad());
            }
            tables.push((name, Arc::new(table)));
        }
        if at != b.len() {
            return Err(bad());
        }
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
        self.tables.iter().map(|(n, _)| n.clone()).collect()
    }

    fn checkpoint_due(&self, records_since: u64, _since: std::time::Duration) -> bool {
        self.overlay.len() >= FLUSH_KEYS || records_since >= FLUSH_RECORDS
    }
}
