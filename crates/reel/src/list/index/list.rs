//! One key's list: what a process keeps of it ([`KeyList`]) and the searches over it
//! ([`ListView`]), which read chunk rows and summary pages from the tables as needed.

use super::codec::{ITEM_LEN, SUMMARY_LEN, chunk_key, item_at, page_key, summary_at};
use super::{CHUNK, PAGE_CHUNKS};
use crate::error::{Error, Result};
use crate::view::tables::TableSet;
use reel_log::FramePos;

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

/// A chunk row's item count and last item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChunkSummary {
    pub(super) count: u32,
    pub(super) last: ItemMeta,
}

/// One key's list as this process knows it: its chunks in the tables (summarized) and
/// the items applied since the last checkpoint. Items are numbered from the first ever
/// indexed; every chunk but the last is full, so chunk `c` holds numbers `c * CHUNK ..`.
/// The summaries of the first chunks, [`PAGE_CHUNKS`] at a time, are in summary page
/// rows (only each page's last item is kept here); the rest are inline. Retention moves
/// `start` forward.
#[derive(Debug, Default)]
pub struct KeyList {
    /// Offset the next append gets.
    pub next_offset: u64,
    /// Largest nonce accepted for the key (kept even when its item is dropped).
    pub last_nonce: Option<u128>,
    /// Number of the first item retention kept.
    pub(super) start: u64,
    /// Leading chunks whose rows were deleted (every item in them was dropped).
    pub(super) dropped_chunks: u64,
    /// The last item of each full summary page.
    pub(super) pages: Vec<ItemMeta>,
    /// Summaries of the chunks after the pages (fewer than a page's worth, but for a
    /// moment while a checkpoint builds rows).
    pub(super) inline: Vec<ChunkSummary>,
    pub(super) tail: Vec<ItemMeta>,
    /// Retention was applied up to this oldest seq (in this process).
    pub(super) pruned_below: u64,
}

impl KeyList {
    /// Chunks in the tables.
    pub(super) fn chunk_count(&self) -> u64 {
        self.first_inline() + self.inline.len() as u64
    }

    /// Number of the first inline chunk.
    fn first_inline(&self) -> u64 {
        self.pages.len() as u64 * PAGE_CHUNKS as u64
    }

    pub(super) fn chunked(&self) -> u64 {
        match self.inline.last() {
            Some(c) => (self.chunk_count() - 1) * CHUNK as u64 + c.count as u64,
            None => self.first_inline() * CHUNK as u64,
        }
    }

    pub(super) fn total(&self) -> u64 {
        self.chunked() + self.tail.len() as u64
    }

    fn last(&self) -> Option<ItemMeta> {
        self.tail
            .last()
            .copied()
            .or_else(|| self.inline.last().map(|c| c.last))
            .or_else(|| self.pages.last().copied())
    }

    pub(super) fn add(
        &mut self,
        offset: u64,
        seq: u64,
        pos: FramePos,
        ts: i64,
        nonce: Option<u128>,
    ) {
        let last = self.last();
        if last.is_some_and(|l| offset <= l.offset) {
            return; // not possible for records written by ListStore; ignore rather than misindex
        }
        // A rebuild starts a list at the next offset and nonce it had (see
        // `ListIndex::reset_for_rebuild`), ahead of the items it applies again.
        let (next_offset, last_nonce) = (self.next_offset, self.last_nonce);
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
        self.next_offset = next_offset.max(offset + 1);
        self.last_nonce = last_nonce.max(nonce);
    }
}

/// A key's list, ready to search and read (see [`super::ListIndex::list`]): positions
/// count the retained items from 0.
#[derive(Debug)]
pub struct ListView<'a> {
    pub(super) key: &'a str,
    pub(super) list: &'a KeyList,
    pub(super) tables: &'a TableSet,
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

    pub(super) fn numbered(&self, n: u64) -> Result<ItemMeta> {
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

    fn damaged(&self, what: &str, n: u64) -> Error {
        Error::Decode(format!(
            "list {:?}: {what} {n} in the lists view's tables does not match its header (rebuild the view: reel view rebuild DIR lists)",
            self.key
        ))
    }

    /// Calls `f` on summary page `p`'s row where it lies, once it is checked against the
    /// page's last item in the header.
    fn with_page<R>(&self, p: u64, f: impl FnOnce(&[u8]) -> Option<R>) -> Result<R> {
        let last = self.list.pages.get(p as usize).copied();
        self.tables
            .get_with(&page_key(self.key, p), |raw| {
                let fits = raw.len() == PAGE_CHUNKS * SUMMARY_LEN
                    && last.is_some_and(|l| {
                        summary_at(raw, PAGE_CHUNKS - 1).map(|s| s.last) == Some(l)
                    });
                if fits { f(raw) } else { None }
            })?
            .flatten()
            .ok_or_else(|| self.damaged("summary page", p))
    }

    /// Chunk `c`'s summary: inline, or read from its summary page.
    fn summary(&self, c: u64) -> Result<ChunkSummary> {
        let first_inline = self.list.first_inline();
        if c >= first_inline {
            return self
                .list
                .inline
                .get((c - first_inline) as usize)
                .copied()
                .ok_or_else(|| self.damaged("chunk", c));
        }
        let p = c / PAGE_CHUNKS as u64;
        self.with_page(p, |raw| {
            summary_at(raw, (c % PAGE_CHUNKS as u64) as usize).filter(|s| s.count as usize == CHUNK)
        })
    }

    /// Calls `f` on chunk `c`'s row where it lies in the tables, once the row is checked
    /// against the chunk's summary.
    pub(super) fn with_chunk<R>(&self, c: u64, f: impl FnOnce(&[u8]) -> Option<R>) -> Result<R> {
        let summary = self.summary(c)?;
        self.tables
            .get_with(&chunk_key(self.key, c), |raw| {
                let count = raw.len() / ITEM_LEN;
                let fits = raw.len().is_multiple_of(ITEM_LEN)
                    && summary.count as usize == count
                    && item_at(raw, count.wrapping_sub(1)) == Some(summary.last);
                if fits { f(raw) } else { None }
            })?
            .flatten()
            .ok_or_else(|| self.damaged("chunk", c))
    }

    /// The first chunk at or after `first` whose last item does not satisfy `pred`
    /// (the chunk count when every one does).
    fn chunk_partition(&self, first: u64, pred: &impl Fn(&ItemMeta) -> bool) -> Result<u64> {
        let list = self.list;
        let first_inline = list.first_inline();
        if first < first_inline {
            let p0 = (first / PAGE_CHUNKS as u64) as usize;
            let p = p0 + list.pages[p0..].partition_point(pred);
            if p < list.pages.len() {
                let base = (p * PAGE_CHUNKS) as u64;
                let from = first.saturating_sub(base) as usize;
                let at = self.with_page(p as u64, |raw| {
                    first_failing(from, PAGE_CHUNKS, |j| Some(pred(&summary_at(raw, j)?.last)))
                })?;
                return Ok(base + at as u64);
            }
        }
        let from = first.saturating_sub(first_inline) as usize;
        let inline = &list.inline[from.min(list.inline.len())..];
        Ok(first_inline + (from + inline.partition_point(|s| pred(&s.last))) as u64)
    }

    /// The first position whose item does not satisfy `pred` (which must hold for a
    /// prefix of the items and fail for the rest).
    pub fn partition_point(&self, pred: impl Fn(&ItemMeta) -> bool) -> Result<usize> {
        Ok((self.numbered_partition(self.list.start, &pred)? - self.list.start) as usize)
    }

    pub(super) fn numbered_partition(
        &self,
        from: u64,
        pred: &impl Fn(&ItemMeta) -> bool,
    ) -> Result<u64> {
        let chunked = self.list.chunked();
        if from < chunked {
            let c = self.chunk_partition(from / CHUNK as u64, pred)?;
            if c < self.list.chunk_count() {
                let base = c * CHUNK as u64;
                let at = self.with_chunk(c, |raw| {
                    let from = from.saturating_sub(base) as usize;
                    first_failing(from, raw.len() / ITEM_LEN, |j| {
                        Some(pred(&item_at(raw, j)?))
                    })
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

    /// Position of the first item with a timestamp at least `ts` (times need not grow:
    /// the first item at which the largest time so far reaches `ts`).
    pub fn by_time(&self, ts: i64) -> Result<usize> {
        self.time_partition(|max| max >= ts)
    }

    /// The first position at which the largest time of the retained items up to it
    /// satisfies `reached` (false, then true, as that maximum grows); `len()` if none.
    ///
    /// Items store the largest time since the list began (`ts_max`), counting items
    /// retention dropped since; answers must not depend on those. Where the dropped
    /// items' largest time is below the first retained item's, or does not satisfy
    /// `reached`, a binary search over `ts_max` answers the same; otherwise the items
    /// before the first one whose time exceeds it are scanned.
    pub fn time_partition(&self, reached: impl Fn(i64) -> bool) -> Result<usize> {
        if self.is_empty() {
            return Ok(0);
        }
        let first = self.item(0)?;
        let dropped_max = first.ts_max;
        if first.ts == dropped_max || !reached(dropped_max) {
            return self.partition_point(|i| !reached(i.ts_max));
        }
        let beyond = self.partition_point(|i| i.ts_max <= dropped_max)?;
        let mut max = i64::MIN;
        let mut at = 0;
        while at < beyond {
            let to = (at + 4 * CHUNK).min(beyond);
            for item in self.items(at..to)? {
                max = max.max(item.ts);
                if reached(max) {
                    return Ok(at);
                }
                at += 1;
            }
        }
        Ok(beyond)
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

/// The first index in `lo..hi` at which `holds` is false (`hi` if none), by binary
/// search (`holds` is true for a prefix); `None` if an entry cannot be decoded.
fn first_failing(
    mut lo: usize,
    mut hi: usize,
    holds: impl Fn(usize) -> Option<bool>,
) -> Option<usize> {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if holds(mid)? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}
