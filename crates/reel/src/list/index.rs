//! The lists view: per key, its items' offsets, seqs, positions, times and nonces, so
//! that seeking by offset, time or nonce is a binary search.
//!
//! The state as of the last checkpoint lives in the view's tables
//! ([`crate::view::tables`]): per key a header row `key 0x00 'h'` (next offset, last
//! nonce, retention's start, and a summary of each chunk: its item count and last item)
//! and chunk rows `key 0x00 'c' <chunk number u64 big-endian>` of up to [`CHUNK`] items.
//! A process loads a key's header when it first touches the key, and a chunk when a
//! search or page lands in it; items applied since the checkpoint are kept in memory
//! (`tail`). Keys cannot contain NUL, so rows sort by key and then by chunk.

use crate::error::{Error, Result};
use crate::value::TAG_LIST_ITEM;
use crate::view::tables::{Row, TableSet};
use crate::view::{View, ViewFiles};
use reel_log::{FramePos, RecordRef};
use std::collections::{BTreeSet, HashMap};

/// Name of the lists view (`views/lists/`).
pub const LISTS_VIEW: &str = "lists";
/// 2: the state is kept in tables (version 1 was one in-memory snapshot).
const VERSION: u32 = 2;
/// Items per chunk row.
pub const CHUNK: usize = 256;
/// Items or changed keys since the last checkpoint after which a read writes one.
const FLUSH_ITEMS: u64 = 16_384;
const FLUSH_KEYS: usize = 4096;

/// One list item as indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemMeta {
    /// Offset within its list.
    pub offset: u64,
    /// Seq of its record.
    pub seq: u64,
    /// Where the record is stored.
    pub pos: FramePos,
    /// Its timestamp.
    pub ts: i64,
    /// Largest timestamp of this and every earlier item (monotonic: binary searchable).
    pub ts_max: i64,
    /// Its nonce.
    pub nonce: Option<u128>,
    /// Largest nonce of this and every earlier item (monotonic: binary searchable).
    pub nonce_max: Option<u128>,
}

#[derive(Debug, Clone, Copy)]
struct ChunkSummary {
    count: u32,
    last: ItemMeta,
}

/// One key's list as this process knows it: its chunks in the tables (summarized) and
/// the items applied since the last checkpoint. Items are numbered from the first ever
/// indexed (chunk `c` holds numbers `c * CHUNK ..`); retention moves `start` forward.
#[derive(Debug, Default)]
pub struct KeyList {
    /// Offset the next append gets.
    pub next_offset: u64,
    /// Largest nonce accepted for the key (kept even when its item is dropped).
    pub last_nonce: Option<u128>,
    /// Number of the first item retention kept.
    start: u64,
    /// Leading chunks whose rows were deleted (every item in them was dropped).
    dropped_chunks: u64,
    chunks: Vec<ChunkSummary>,
    tail: Vec<ItemMeta>,
    /// Retention was applied up to this oldest seq (in this process).
    pruned_below: u64,
}

impl KeyList {
    fn chunked(&self) -> u64 {
        match self.chunks.last() {
            Some(c) => (self.chunks.len() as u64 - 1) * CHUNK as u64 + c.count as u64,
            None => 0,
        }
    }

    fn total(&self) -> u64 {
        self.chunked() + self.tail.len() as u64
    }

    fn last(&self) -> Option<ItemMeta> {
        self.tail
            .last()
            .copied()
            .or_else(|| self.chunks.last().map(|c| c.last))
    }

    fn add(&mut self, offset: u64, seq: u64, pos: FramePos, ts: i64, nonce: Option<u128>) {
        let last = self.last();
        if offset < self.next_offset && last.is_some() {
            return; // not possible for records written by ListStore; ignore rather than misindex
        }
        let ts_max = last.map_or(ts, |l| l.ts_max.max(ts));
        let nonce_max = last.and_then(|l| l.nonce_max).max(nonce);
        self.tail.push(ItemMeta {
            offset,
            seq,
            pos,
            ts,
            ts_max,
            nonce,
            nonce_max,
        });
        self.next_offset = offset + 1;
        if nonce.is_some() {
            self.last_nonce = self.last_nonce.max(nonce);
        }
    }
}

/// A key's list, ready to search and read (see [`ListIndex::list`]): positions count
/// the retained items from 0.
#[derive(Debug)]
pub struct ListView<'a> {
    key: &'a str,
    list: &'a KeyList,
    tables: &'a TableSet,
}

impl ListView<'_> {
    /// Offset the next append gets.
    pub fn next_offset(&self) -> u64 {
        self.list.next_offset
    }

    /// Largest nonce accepted.
    pub fn last_nonce(&self) -> Option<u128> {
        self.list.last_nonce
    }

    /// Items retained.
    pub fn len(&self) -> usize {
        (self.list.total() - self.list.start) as usize
    }

    /// True when no item is retained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item at position `i` (`i < len()`).
    pub fn item(&self, i: usize) -> Result<ItemMeta> {
        self.numbered(self.list.start + i as u64)
    }

    fn numbered(&self, n: u64) -> Result<ItemMeta> {
        let chunked = self.list.chunked();
        if n >= chunked {
            return self
                .list
                .tail
                .get((n - chunked) as usize)
                .copied()
                .ok_or_else(|| Error::InvalidArgument(format!("no list item number {n}")));
        }
        let c = n / CHUNK as u64;
        self.with_chunk(c, |raw| item_at(raw, (n % CHUNK as u64) as usize))
    }

    fn damaged(&self, c: u64) -> Error {
        Error::Decode(format!(
            "list {:?}: chunk {c} in the lists view's tables does not match its header (rebuild the view: reel view rebuild DIR lists)",
            self.key
        ))
    }

    /// Calls `f` on chunk `c`'s row where it lies in the tables, once the row is checked
    /// against the chunk's summary in the header.
    fn with_chunk<R>(&self, c: u64, f: impl FnOnce(&[u8]) -> Option<R>) -> Result<R> {
        let summary = self.list.chunks.get(c as usize).copied();
        self.tables
            .get_with(&chunk_key(self.key, c), |raw| {
                let count = raw.len() / ITEM_LEN;
                let fits = raw.len().is_multiple_of(ITEM_LEN)
                    && summary.is_some_and(|s| {
                        s.count as usize == count
                            && item_at(raw, count.wrapping_sub(1)) == Some(s.last)
                    });
                if fits { f(raw) } else { None }
            })?
            .flatten()
            .ok_or_else(|| self.damaged(c))
    }

    /// The first position whose item does not satisfy `pred` (which must hold for a
    /// prefix of the items and fail for the rest).
    pub fn partition_point(&self, pred: impl Fn(&ItemMeta) -> bool) -> Result<usize> {
        Ok((self.numbered_partition(self.list.start, &pred)? - self.list.start) as usize)
    }

    fn numbered_partition(&self, from: u64, pred: &impl Fn(&ItemMeta) -> bool) -> Result<u64> {
        let chunked = self.list.chunked();
        if from < chunked {
            let first_chunk = (from / CHUNK as u64) as usize;
            let chunks = &self.list.chunks[first_chunk..];
            let c = first_chunk + chunks.partition_point(|s| pred(&s.last));
            if c < self.list.chunks.len() {
                let base = c as u64 * CHUNK as u64;
                let at = self.with_chunk(c as u64, |raw| {
                    let (mut lo, mut hi) =
                        (from.saturating_sub(base) as usize, raw.len() / ITEM_LEN);
                    while lo < hi {
                        let mid = lo + (hi - lo) / 2;
                        if pred(&item_at(raw, mid)?) {
                            lo = mid + 1;
                        } else {
                            hi = mid;
                        }
                    }
                    Some(lo)
                })?;
                return Ok(base + at as u64);
            }
        }
        let skip = from.saturating_sub(chunked) as usize;
        let tail = &self.list.tail[skip.min(self.list.tail.len())..];
        Ok(chunked + (skip + tail.partition_point(pred)) as u64)
    }

    /// Position of the first item with offset at least `offset`.
    pub fn by_offset(&self, offset: u64) -> Result<usize> {
        self.partition_point(|i| i.offset < offset)
    }

    /// Position of the first item with a timestamp at least `ts`.
    pub fn by_time(&self, ts: i64) -> Result<usize> {
        self.partition_point(|i| i.ts_max < ts)
    }

    /// Position of the first item with a nonce at least `nonce` (nonces only grow).
    pub fn by_nonce(&self, nonce: u128) -> Result<usize> {
        self.partition_point(|i| i.nonce_max.is_none_or(|n| n < nonce))
    }

    /// Items at positions `range` (one table lookup per chunk they span).
    pub fn items(&self, range: std::ops::Range<usize>) -> Result<Vec<ItemMeta>> {
        let start = self.list.start;
        let (from, to) = (start + range.start as u64, start + range.end as u64);
        let chunked = self.list.chunked();
        let mut out = Vec::with_capacity(range.len());
        let mut n = from;
        while n < to.min(chunked) {
            let c = n / CHUNK as u64;
            let end = to.min((c + 1) * CHUNK as u64).min(chunked);
            let base = c * CHUNK as u64;
            self.with_chunk(c, |raw| {
                for j in n..end {
                    out.push(item_at(raw, (j - base) as usize)?);
                }
                Some(())
            })?;
            n = end;
        }
        while n < to {
            out.push(self.numbered(n)?);
            n += 1;
        }
        Ok(out)
    }
}

fn header_key(key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 2);
    k.extend_from_slice(key.as_bytes());
    k.extend_from_slice(b"\0h");
    k
}

fn chunk_key(key: &str, c: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 10);
    k.extend_from_slice(key.as_bytes());
    k.extend_from_slice(b"\0c");
    k.extend_from_slice(&c.to_be_bytes());
    k
}

fn put_opt(out: &mut Vec<u8>, n: Option<u128>) {
    out.push(u8::from(n.is_some()));
    out.extend_from_slice(&n.unwrap_or(0).to_le_bytes());
}

/// An item as stored in chunk rows and chunk summaries: offset, seq, segment, file
/// offset (u64 each), ts i64, nonce (flag u8, u128), ts_max i64, nonce_max (flag u8,
/// u128): every item decodes on its own.
fn encode_item(out: &mut Vec<u8>, i: &ItemMeta) {
    for v in [i.offset, i.seq, i.pos.segment, i.pos.offset] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&i.ts.to_le_bytes());
    put_opt(out, i.nonce);
    out.extend_from_slice(&i.ts_max.to_le_bytes());
    put_opt(out, i.nonce_max);
}

/// Bytes per encoded item.
const ITEM_LEN: usize = 8 * 6 + 17 * 2;

/// Item `j` of an encoded chunk.
fn item_at(raw: &[u8], j: usize) -> Option<ItemMeta> {
    let at = j.checked_mul(ITEM_LEN)?;
    Fields {
        b: raw.get(at..at + ITEM_LEN)?,
        at: 0,
    }
    .item()
}

/// Reads fixed-size little-endian fields in order.
struct Fields<'a> {
    b: &'a [u8],
    at: usize,
}

impl Fields<'_> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let s = self.b.get(self.at..self.at + N)?;
        self.at += N;
        s.try_into().ok()
    }
    fn u64(&mut self) -> Option<u64> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }
    fn opt(&mut self) -> Option<Option<u128>> {
        let [flag] = self.bytes::<1>()?;
        let n = u128::from_le_bytes(self.bytes::<16>()?);
        match flag {
            0 => Some(None),
            1 => Some(Some(n)),
            _ => None,
        }
    }
    fn item(&mut self) -> Option<ItemMeta> {
        let (offset, seq, segment, foff) = (self.u64()?, self.u64()?, self.u64()?, self.u64()?);
        let ts = self.u64()? as i64;
        let nonce = self.opt()?;
        let ts_max = self.u64()? as i64;
        let nonce_max = self.opt()?;
        (ts_max >= ts && nonce_max >= nonce).then_some(ItemMeta {
            offset,
            seq,
            pos: FramePos {
                segment,
                offset: foff,
            },
            ts,
            ts_max,
            nonce,
            nonce_max,
        })
    }
}

/// Header row: next offset u64 | last nonce (flag u8, u128) | start u64 | dropped
/// chunks u64 | chunk count u64 | per chunk: item count u64, last item (as in a chunk).
fn encode_header(l: &KeyList) -> Vec<u8> {
    let mut out = Vec::with_capacity(49 + l.chunks.len() * (8 + ITEM_LEN));
    out.extend_from_slice(&l.next_offset.to_le_bytes());
    put_opt(&mut out, l.last_nonce);
    out.extend_from_slice(&l.start.to_le_bytes());
    out.extend_from_slice(&l.dropped_chunks.to_le_bytes());
    out.extend_from_slice(&(l.chunks.len() as u64).to_le_bytes());
    for c in &l.chunks {
        out.extend_from_slice(&(c.count as u64).to_le_bytes());
        encode_item(&mut out, &c.last);
    }
    out
}

fn decode_header(v: &[u8]) -> Option<KeyList> {
    let mut f = Fields { b: v, at: 0 };
    let next_offset = f.u64()?;
    let last_nonce = f.opt()?;
    let start = f.u64()?;
    let dropped_chunks = f.u64()?;
    let n = f.u64()?;
    if n > (v.len() / ITEM_LEN) as u64 {
        return None;
    }
    let mut chunks = Vec::with_capacity(n as usize);
    for i in 0..n {
        let count = f.u64()?;
        let last = f.item()?;
        if count == 0 || count > CHUNK as u64 || (i + 1 < n && count != CHUNK as u64) {
            return None;
        }
        chunks.push(ChunkSummary {
            count: count as u32,
            last,
        });
    }
    let l = KeyList {
        next_offset,
        last_nonce,
        start,
        dropped_chunks,
        chunks,
        ..Default::default()
    };
    (f.at == v.len() && start <= l.total() && dropped_chunks * CHUNK as u64 <= start).then_some(l)
}

/// Every key's list: the lists this process touched, over the view's tables.
#[derive(Debug, Default)]
pub struct ListIndex {
    keys: HashMap<String, KeyList>,
    tables: TableSet,
    /// Keys changed since the last checkpoint.
    dirty: BTreeSet<String>,
    /// Items applied since the last checkpoint.
    pending: u64,
}

impl ListIndex {
    /// Loads `key`'s list into memory if the tables hold it.
    fn load(&mut self, key: &str) -> Result<bool> {
        if self.keys.contains_key(key) {
            return Ok(true);
        }
        let Some(header) = self.tables.get_with(&header_key(key), decode_header)? else {
            return Ok(false);
        };
        let l = header.ok_or_else(|| {
            Error::Decode(format!(
                "list {key:?}: its header in the lists view's tables is malformed (rebuild the view: reel view rebuild DIR lists)"
            ))
        })?;
        self.keys.insert(key.to_string(), l);
        Ok(true)
    }

    /// `key`'s list with the items whose records are below `oldest_seq` (dropped by
    /// retention) left out; `None` if nothing was ever appended to it.
    pub fn list<'a>(&'a mut self, key: &'a str, oldest_seq: u64) -> Result<Option<ListView<'a>>> {
        if !self.load(key)? {
            return Ok(None);
        }
        let checked = self.keys[key].pruned_below >= oldest_seq;
        let start = if checked {
            self.keys[key].start
        } else {
            let view = ListView {
                key,
                list: &self.keys[key],
                tables: &self.tables,
            };
            view.numbered_partition(view.list.start, &|i: &ItemMeta| i.seq < oldest_seq)?
        };
        let list = self.keys.get_mut(key).expect("loaded");
        list.pruned_below = list.pruned_below.max(oldest_seq);
        if start > list.start {
            list.start = start;
            self.dirty.insert(key.to_string());
        }
        Ok(Some(ListView {
            key,
            list: &self.keys[key],
            tables: &self.tables,
        }))
    }

    /// Every retained item of `key`'s list.
    pub fn items(&mut self, key: &str, oldest_seq: u64) -> Result<Vec<ItemMeta>> {
        match self.list(key, oldest_seq)? {
            Some(l) => l.items(0..l.len()),
            None => Ok(Vec::new()),
        }
    }

    /// Every key that has a list, sorted.
    pub fn keys(&self) -> Result<Vec<String>> {
        let mut keys: BTreeSet<String> = self.keys.keys().cloned().collect();
        for row in self.tables.merged(&[], Box::new(std::iter::empty()))? {
            let (k, v) = row?;
            if v.is_some()
                && let Some(key) = k.strip_suffix(b"\0h")
            {
                keys.insert(String::from_utf8_lossy(key).into_owned());
            }
        }
        Ok(keys.into_iter().collect())
    }

    /// The rows that bring the tables up to date with `key`'s list, and the list's
    /// chunk summaries and dropped chunks once they are written.
    fn rows_of(&self, key: &str, rows: &mut Vec<Row>) -> Result<Option<(Vec<ChunkSummary>, u64)>> {
        let Some(list) = self.keys.get(key) else {
            return Ok(None);
        };
        // Chunks every item of which retention dropped: delete their rows.
        let dead = (list.start / CHUNK as u64).min(list.chunks.len() as u64);
        for c in list.dropped_chunks..dead {
            rows.push((chunk_key(key, c), None));
        }
        let mut chunks = list.chunks.clone();
        if !list.tail.is_empty() {
            // The last chunk, if not full, is rewritten with the new items after it: its
            // encoded items are copied as they are (checked against its summary).
            let mut encoded = Vec::new();
            if let Some(last) = chunks.last()
                && (last.count as usize) < CHUNK
            {
                let c = chunks.len() as u64 - 1;
                let view = ListView {
                    key,
                    list,
                    tables: &self.tables,
                };
                view.with_chunk(c, |raw| {
                    encoded.reserve(raw.len() + list.tail.len() * ITEM_LEN);
                    encoded.extend_from_slice(raw);
                    Some(())
                })?;
                chunks.pop();
            }
            for i in &list.tail {
                encode_item(&mut encoded, i);
            }
            for piece in encoded.chunks(CHUNK * ITEM_LEN) {
                let c = chunks.len() as u64;
                let count = piece.len() / ITEM_LEN;
                let last = item_at(piece, count - 1).ok_or_else(|| {
                    Error::Decode(format!(
                        "list {key:?}: an item of its last chunk is malformed"
                    ))
                })?;
                rows.push((chunk_key(key, c), Some(piece.to_vec())));
                chunks.push(ChunkSummary {
                    count: count as u32,
                    last,
                });
            }
        }
        let dropped = list.dropped_chunks.max(dead);
        let header = KeyList {
            next_offset: list.next_offset,
            last_nonce: list.last_nonce,
            start: list.start,
            dropped_chunks: dropped,
            chunks: chunks.clone(),
            ..Default::default()
        };
        rows.push((header_key(key), Some(encode_header(&header))));
        Ok(Some((chunks, dropped)))
    }
}

/// The list offset stored in front of a list item's value.
pub fn item_offset(value: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(value.get(..8)?.try_into().ok()?))
}

impl View for ListIndex {
    fn name(&self) -> &str {
        LISTS_VIEW
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn apply(&mut self, _record: &RecordRef<'_>) -> Result<()> {
        // Positions are required: ViewHandle always calls apply_at.
        Ok(())
    }

    fn apply_at(&mut self, r: &RecordRef<'_>, pos: FramePos) -> Result<()> {
        if r.encoding != TAG_LIST_ITEM {
            return Ok(());
        }
        let (Some(key), Some(offset)) = (r.key, item_offset(r.value)) else {
            return Ok(());
        };
        if !self.load(key)? {
            self.keys.insert(key.to_string(), KeyList::default());
        }
        let list = self.keys.get_mut(key).expect("loaded");
        list.add(offset, r.seq, pos, r.ts, r.nonce);
        if !self.dirty.contains(key) {
            self.dirty.insert(key.to_string());
        }
        self.pending += 1;
        Ok(())
    }

    fn reset(&mut self) {
        self.keys.clear();
        self.tables.clear();
        self.dirty.clear();
        self.pending = 0;
    }

    fn save(&self) -> Result<Vec<u8>> {
        Err(Error::InvalidArgument(
            "the lists view is saved as tables (save_files)".into(),
        ))
    }

    fn load(&mut self, _bytes: &[u8]) -> Result<()> {
        Err(Error::InvalidArgument(
            "the lists view is loaded from tables (load_files)".into(),
        ))
    }

    fn uses_files(&self) -> bool {
        true
    }

    /// The manifest of the view's tables ([`TableSet::manifest`]).
    fn save_files(&mut self, files: &ViewFiles) -> Result<Vec<u8>> {
        let mut rows = Vec::new();
        let mut updates = Vec::new();
        for key in &self.dirty {
            if let Some(u) = self.rows_of(key, &mut rows)? {
                updates.push((key.clone(), u));
            }
        }
        // Only once the table is written does the state say its items are in it.
        self.tables.write(files, rows)?;
        for (key, (chunks, dropped)) in updates {
            if let Some(list) = self.keys.get_mut(&key) {
                list.chunks = chunks;
                list.dropped_chunks = dropped;
                list.tail.clear();
            }
        }
        self.dirty.clear();
        self.pending = 0;
        // Lists are read from the tables again when next needed: memory stays small.
        self.keys.clear();
        Ok(self.tables.manifest())
    }

    fn load_files(&mut self, files: &ViewFiles, b: &[u8]) -> Result<()> {
        let tables = TableSet::load(files, b)?;
        self.reset();
        self.tables = tables;
        Ok(())
    }

    fn files_in_use(&self) -> Vec<String> {
        self.tables.names()
    }

    fn checkpoint_due(&self, records_since: u64, _since: std::time::Duration) -> bool {
        self.pending >= FLUSH_ITEMS
            || self.dirty.len() >= FLUSH_KEYS
            || records_since >= 4 * FLUSH_ITEMS
    }

    fn checkpoint_on_close(&self, records_since: u64) -> bool {
        records_since >= 1024
    }
}
