//! The lists view: per key, its items' offsets, seqs, positions, times and nonces, so
//! that seeking by offset, time or nonce is a binary search.
//!
//! The state as of the last checkpoint lives in the view's tables
//! ([`crate::view::tables`]), per key:
//! - chunk rows `key 0x00 'c' <chunk number u64 big-endian>` of [`CHUNK`] items (the
//!   last chunk may hold fewer);
//! - summary page rows `key 0x00 's' <page number u64 big-endian>`, each the summaries
//!   (item count and last item) of [`PAGE_CHUNKS`] full chunks;
//! - a header row `key 0x00 'h'`: next offset, last nonce, retention's start, the last
//!   item of each summary page and the summaries of the chunks after the pages.
//!
//! A checkpoint rewrites a changed list's header and last chunk, so both stay small
//! however long the list grows. A process loads a key's header when it first touches
//! the key, and a page or chunk when a search or read lands in it; items applied since
//! the checkpoint are kept in memory (`tail`). Keys cannot contain NUL, so rows sort by
//! key, then by kind and number.

mod codec;
mod list;

pub use list::{ItemMeta, KeyList, ListView};

use crate::error::{Error, Result};
use crate::value::TAG_LIST_ITEM;
use crate::view::tables::{Row, TableSet};
use crate::view::{View, ViewFiles};
use codec::{
    ITEM_LEN, chunk_key, decode_header, encode_header, encode_item, encode_page, header_key,
    item_at, page_key,
};
use list::ChunkSummary;
use reel_log::{FramePos, RecordRef};
use std::collections::{BTreeSet, HashMap};

/// Name of the lists view (`views/lists/`).
pub const LISTS_VIEW: &str = "lists";
/// 3: chunk summaries in summary pages (version 2 kept every summary in the header,
/// which grew with the list; version 1 was one in-memory snapshot).
const VERSION: u32 = 3;
/// Items per chunk row.
pub const CHUNK: usize = 256;
/// Chunk summaries per summary page row (16,384 items).
const PAGE_CHUNKS: usize = 64;
/// Items or changed keys since the last checkpoint after which a read writes one.
const FLUSH_ITEMS: u64 = 16_384;
const FLUSH_KEYS: usize = 4096;

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
            // A header row is exactly `key 0x00 'h'`; a chunk or page row can end in the
            // same two bytes (chunk 104 is `... 'c' 0 0 0 0 0 0 0 'h'`), so the row key
            // is cut at its first NUL, which only the separator can be.
            if v.is_some()
                && let Some(nul) = k.iter().position(|&b| b == 0)
                && &k[nul..] == b"\0h"
            {
                keys.insert(String::from_utf8_lossy(&k[..nul]).into_owned());
            }
        }
        Ok(keys.into_iter().collect())
    }

    /// The rows that bring the tables up to date with `key`'s list (in key order), and
    /// the list's summaries and dropped chunks once they are written.
    fn rows_of(&self, key: &str, rows: &mut Vec<Row>) -> Result<Option<Written>> {
        let Some(list) = self.keys.get(key) else {
            return Ok(None);
        };
        // Full chunks every item of which retention dropped: delete their rows, and the
        // summary pages all of whose chunks are dropped. A partial last chunk is never
        // dropped here: new items are appended to it (and its row rewritten below), so
        // deleting it too would write its row twice and lose it for the next checkpoint.
        let full = list.chunk_count()
            - u64::from(
                list.inline
                    .last()
                    .is_some_and(|c| (c.count as usize) < CHUNK),
            );
        let dead = (list.start / CHUNK as u64).min(full);
        for c in list.dropped_chunks..dead {
            rows.push((chunk_key(key, c), None));
        }
        let mut pages = list.pages.clone();
        let mut inline = list.inline.clone();
        let mut page_rows = std::collections::BTreeMap::new();
        if !list.tail.is_empty() {
            // The last chunk, if not full, is rewritten with the new items after it: its
            // encoded items are copied as they are (checked against its summary).
            let mut encoded = Vec::new();
            if let Some(last) = inline.last()
                && (last.count as usize) < CHUNK
            {
                let view = ListView {
                    key,
                    list,
                    tables: &self.tables,
                };
                view.with_chunk(list.chunk_count() - 1, |raw| {
                    encoded.reserve(raw.len() + list.tail.len() * ITEM_LEN);
                    encoded.extend_from_slice(raw);
                    Some(())
                })?;
                inline.pop();
            }
            for i in &list.tail {
                encode_item(&mut encoded, i);
            }
            for piece in encoded.chunks(CHUNK * ITEM_LEN) {
                let c = (pages.len() * PAGE_CHUNKS + inline.len()) as u64;
                let count = piece.len() / ITEM_LEN;
                let last = item_at(piece, count - 1).ok_or_else(|| {
                    Error::Decode(format!(
                        "list {key:?}: an item of its last chunk is malformed"
                    ))
                })?;
                rows.push((chunk_key(key, c), Some(piece.to_vec())));
                inline.push(ChunkSummary {
                    count: count as u32,
                    last,
                });
                // A page's worth of full chunks moves out of the header.
                if inline.len() == PAGE_CHUNKS && count == CHUNK {
                    page_rows.insert(pages.len() as u64, Some(encode_page(&inline)));
                    pages.push(last);
                    inline.clear();
                }
            }
        }
        let dropped = list.dropped_chunks.max(dead);
        for p in list.dropped_chunks / PAGE_CHUNKS as u64..dropped / PAGE_CHUNKS as u64 {
            page_rows.insert(p, None);
        }
        let header = KeyList {
            next_offset: list.next_offset,
            last_nonce: list.last_nonce,
            start: list.start,
            dropped_chunks: dropped,
            pages,
            inline,
            ..Default::default()
        };
        // Row keys of a list sort chunks ('c'), then the header ('h'), then pages ('s').
        rows.push((header_key(key), Some(encode_header(&header))));
        rows.extend(page_rows.into_iter().map(|(p, v)| (page_key(key, p), v)));
        Ok(Some(Written {
            pages: header.pages,
            inline: header.inline,
            dropped,
        }))
    }
}

/// What a list holds in the tables once a checkpoint's rows are written.
struct Written {
    pages: Vec<ItemMeta>,
    inline: Vec<ChunkSummary>,
    dropped: u64,
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

    /// Keeps every list's next offset and last nonce: retention may have dropped the
    /// items that set them, and without them a rebuilt view would give offsets again
    /// and accept used nonces again (breaking exactly-once appends). A list all of whose
    /// items were dropped stays, empty.
    fn reset_for_rebuild(&mut self, records_dropped: bool, force: bool) -> Result<()> {
        // A rebuild is also the remedy for damaged tables. Lists with items still in the
        // log get their offsets and nonces back from them; a list all of whose items
        // retention dropped is known only to the tables, so losing it would hand out its
        // offsets again and accept its used nonces again: only when asked to.
        let refuse = |what: String, e: &Error| {
            Error::RebuildLoses(format!(
                "{what} cannot be read ({e}), and retention has dropped records from the log: \
                 a list all of whose items were dropped would lose its next offset and last \
                 nonce (offsets given again, a retried nonce stored again). Restore \
                 views/lists from a copy of the store, or rebuild anyway with \
                 `reel view rebuild --force DIR lists`"
            ))
        };
        let mut kept: Vec<(String, u64, Option<u128>)> = Vec::new();
        let keys = match self.keys() {
            Ok(keys) => keys,
            Err(e) if records_dropped && !force => {
                return Err(refuse("the lists view's list of lists".into(), &e));
            }
            Err(e) => {
                // Forced (or nothing was dropped): keep what the readable blocks hold.
                let mut salvaged = Vec::new();
                let skipped = self.tables.salvage_rows(|k, v| {
                    if let (Some(nul), Some(v)) = (k.iter().position(|&b| b == 0), v)
                        && &k[nul..] == b"\0h"
                        && let Some(l) = decode_header(v)
                    {
                        salvaged.push((
                            String::from_utf8_lossy(&k[..nul]).into_owned(),
                            l.next_offset,
                            l.last_nonce,
                        ));
                    }
                });
                if records_dropped {
                    tracing::warn!(
                        "rebuilding the lists view without the next offsets and nonces of lists whose items were all dropped, if their headers were in the {skipped} damaged table blocks ({} lists kept): {e}",
                        salvaged.len()
                    );
                }
                kept = salvaged;
                Vec::new()
            }
        };
        for key in keys {
            match self.load(&key) {
                Ok(true) => {
                    let l = &self.keys[&key];
                    kept.push((key, l.next_offset, l.last_nonce));
                }
                Ok(false) => {}
                Err(e) if records_dropped && !force => {
                    return Err(refuse(format!("list {key:?}"), &e));
                }
                Err(e) => tracing::warn!("rebuilding list {key:?} from the log alone: {e}"),
            }
        }
        self.reset();
        for (key, next_offset, last_nonce) in kept {
            self.keys.insert(
                key.clone(),
                KeyList {
                    next_offset,
                    last_nonce,
                    ..Default::default()
                },
            );
            self.dirty.insert(key);
        }
        Ok(())
    }

    fn outlives_log(&self) -> bool {
        true
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
        for (key, w) in updates {
            if let Some(list) = self.keys.get_mut(&key) {
                list.pages = w.pages;
                list.inline = w.inline;
                list.dropped_chunks = w.dropped;
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

    fn compact_at_next_save(&mut self) {
        self.tables.merge_all_next();
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
