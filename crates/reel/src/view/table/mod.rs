//! Sorted tables: immutable files of `key → value` byte strings in key order, the on-disk
//! form of view state. A view's checkpoint names the tables that hold its state as of
//! its `applied_to`; a read looks a key up in them without loading them: only the block
//! index is read at open, and a lookup reads a slot of the key hash index and the entry
//! it points at.
//!
//! ```text
//! header  (32): magic "REELTBL\0" (8) | format u32 (2) | blocks u32 | entries u64
//!               | reserved u32 | crc u32 (CRC32C of bytes 0..28)
//! blocks      : per entry: key length u32 | value length u32 | key | value;
//!               then each entry's offset in the block u32; then entries u32
//!               | crc u32 (CRC32C of the block's bytes before it)
//! index       : per block (20 bytes): offset u64 | length u32 | first key's position
//!               in the key area u32 | first key length u32; then the key area (the
//!               blocks' first keys back to back); then crc u32 (CRC32C of the index
//!               bytes before it)
//! key hash    : pages of 4 KiB, each 511 slots u64 | crc u32 (CRC32C of the
//!               slots) | 0 u32 (see the `hash` module)
//! footer  (48): index offset u64 | index length u64 | key hash offset u64 | key
//!               hash length u64 | entries u64 | magic "RTBF" (4)
//!               | crc u32 (CRC32C of bytes 0..44)
//! ```
//!
//! Format 1 (a Bloom filter where the key hash is, lookups by binary search) is refused:
//! tables are a cache of the log, and a view whose checkpoint cannot be loaded is rebuilt.
//!
//! Keys are strictly increasing (bytewise) across the whole table. A table is written to
//! a new file, synced, and only then named by a checkpoint, so a table a checkpoint names
//! is whole; damage found later is reported as corruption, never returned as data.

mod cursor;
mod hash;
mod writer;

pub use cursor::TableCursor;
pub use hash::KeyHash;
use hash::prefetch;
pub use writer::TableWriter;

use crate::error::Result;
use reel_log::storage::{FileMap, OpenMode, Storage, StorageFile};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const MAGIC: &[u8; 8] = b"REELTBL\0";
const FOOTER_MAGIC: &[u8; 4] = b"RTBF";
const FORMAT: u32 = 3;
/// The oldest format read: 2 differs only in how a key hash picks its slot and tag.
const OLDEST_FORMAT: u32 = 2;
const HEADER_LEN: u64 = 32;
const FOOTER_LEN: u64 = 48;
/// Target size of a block. A lookup touches one block (its checksum is verified once per
/// process, which reads the whole block): small blocks keep a reader's memory small.
const BLOCK_TARGET: usize = 4096;
/// The largest index read at open (a longer one is damage, not an allocation).
const MAX_INDEX_LEN: u64 = 1 << 30;

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> crate::Error {
    reel_log::Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
    .into()
}

fn io(op: &'static str, path: &Path, e: std::io::Error) -> crate::Error {
    reel_log::Error::io(op, path, e).into()
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Keys from `.0` (inclusive) to `.1` (exclusive; `None`: to the end).
pub type KeyRange = (Vec<u8>, Option<Vec<u8>>);

/// Bytes per index entry.
const INDEX_ENTRY: usize = 20;

/// Where a block is (an index entry).
#[derive(Debug, Clone, Copy)]
struct BlockRef {
    offset: u64,
    len: u32,
}

/// An open table. Opening reads only header, footer and block index; lookups read the key
/// hash index and blocks in place (through a read-only mapping where the storage has
/// one, so a lookup makes no system call) and check each page's and block's checksum
/// (and the block's index entry) the first time this process reads it.
#[derive(Debug)]
pub struct Table {
    file: Arc<dyn StorageFile>,
    map: Option<FileMap>,
    /// The index (entries and key area, without its crc) when there is no mapping.
    index_copy: Vec<u8>,
    index_offset: u64,
    index_len: usize,
    /// Where the key hash index starts, and its slots.
    hash_offset: u64,
    hash_slots: u64,
    /// One bit per block: its checksum and index entry held when this process first
    /// read it.
    verified: Box<[AtomicU64]>,
    /// One bit per key hash page: its checksum held when this process first read it.
    hash_verified: Box<[AtomicU64]>,
    path: PathBuf,
    entries: u64,
    blocks: usize,
    /// 2 or 3: how a key hash picks its slot and tag (see the `hash` module).
    format: u32,
}

impl Table {
    /// Opens a table; a damaged header, footer or index is an error.
    pub fn open(storage: &dyn Storage, path: &Path) -> Result<Table> {
        let file = storage
            .open(path, OpenMode::Read)
            .map_err(|e| io("open", path, e))?;
        let len = file.len().map_err(|e| io("read", path, e))?;
        if len < HEADER_LEN + FOOTER_LEN {
            return Err(corrupt(
                path,
                0,
                "table is shorter than its header and footer",
            ));
        }
        let mut h = [0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut h, 0)
            .map_err(|e| io("read", path, e))?;
        if &h[0..8] != MAGIC {
            return Err(corrupt(path, 0, "not a reel table (bad magic)"));
        }
        if u32_at(&h, 28) != Some(crc32c::crc32c(&h[..28])) {
            return Err(corrupt(path, 0, "table header checksum does not match"));
        }
        let format = u32_at(&h, 8).unwrap_or(0);
        if !(OLDEST_FORMAT..=FORMAT).contains(&format) {
            return Err(corrupt(
                path,
                8,
                format!(
                    "table format {format} is not supported (this build reads {OLDEST_FORMAT} to {FORMAT})"
                ),
            ));
        }
        let blocks = u32_at(&h, 12).unwrap_or(0) as usize;
        let entries = u64_at(&h, 16).unwrap_or(0);
        let mut f = [0u8; FOOTER_LEN as usize];
        let footer_at = len - FOOTER_LEN;
        file.read_exact_at(&mut f, footer_at)
            .map_err(|e| io("read", path, e))?;
        if &f[40..44] != FOOTER_MAGIC || u32_at(&f, 44) != Some(crc32c::crc32c(&f[..44])) {
            return Err(corrupt(path, footer_at, "table footer is damaged"));
        }
        let index_offset = u64_at(&f, 0).unwrap_or(0);
        let index_len = u64_at(&f, 8).unwrap_or(0);
        let hash_offset = u64_at(&f, 16).unwrap_or(0);
        let hash_len = u64_at(&f, 24).unwrap_or(0);
        let page = hash::PAGE as u64;
        if u64_at(&f, 32) != Some(entries)
            || !(4..=MAX_INDEX_LEN).contains(&index_len)
            || index_offset < HEADER_LEN
            || index_offset.checked_add(index_len) != Some(hash_offset)
            || hash_offset.checked_add(hash_len) != Some(footer_at)
            || hash_len != hash::pages_for(entries) * page
            || (blocks as u64) * INDEX_ENTRY as u64 > index_len - 4
            || (blocks == 0) != (entries == 0)
        {
            return Err(corrupt(
                path,
                footer_at,
                "table footer does not fit the file",
            ));
        }
        let map = storage
            .map_immutable(path)
            .map_err(|e| io("map", path, e))?
            .filter(|m| m.len() as u64 == len);
        // The block index is checked whole at open (it is small: 20 bytes and a key per
        // 4 KiB block); the key hash index a page at a time, when first read.
        let mut index_copy = Vec::new();
        let index: &[u8] = match &map {
            Some(m) => &m[index_offset as usize..hash_offset as usize],
            None => {
                index_copy = vec![0u8; index_len as usize];
                file.read_exact_at(&mut index_copy, index_offset)
                    .map_err(|e| io("read", path, e))?;
                &index_copy
            }
        };
        let (body, crc) = index.split_at(index.len() - 4);
        if crc32c::crc32c(body).to_le_bytes() != crc {
            return Err(corrupt(
                path,
                index_offset,
                "table index checksum does not match",
            ));
        }
        let bitmap = |n: u64| -> Box<[AtomicU64]> {
            (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect()
        };
        let hash_pages = hash_len / page;
        Ok(Table {
            file,
            map,
            index_copy,
            index_offset,
            index_len: index_len as usize - 4,
            hash_offset,
            hash_slots: hash_pages * hash::SLOTS_PER_PAGE as u64,
            verified: bitmap(blocks as u64),
            hash_verified: bitmap(hash_pages),
            path: path.to_path_buf(),
            entries,
            blocks,
            format,
        })
    }

    fn index(&self) -> &[u8] {
        match &self.map {
            Some(m) => &m[self.index_offset as usize..self.index_offset as usize + self.index_len],
            None => &self.index_copy[..self.index_len],
        }
    }

    /// Page `p` of the key hash index, checked the first time this process reads it.
    fn hash_page(&self, p: usize) -> Result<Cow<'_, [u8]>> {
        let at = self.hash_offset + (p * hash::PAGE) as u64;
        let bytes: Cow<'_, [u8]> = match &self.map {
            Some(m) => Cow::Borrowed(&m[at as usize..at as usize + hash::PAGE]),
            None => {
                let mut buf = vec![0u8; hash::PAGE];
                self.file
                    .read_exact_at(&mut buf, at)
                    .map_err(|e| io("read", &self.path, e))?;
                Cow::Owned(buf)
            }
        };
        let (word, bit) = (&self.hash_verified[p / 64], 1u64 << (p % 64));
        if word.load(Ordering::Relaxed) & bit == 0 || self.map.is_none() {
            let n = hash::SLOT_BYTES;
            if u32_at(&bytes, n) != Some(crc32c::crc32c(&bytes[..n]))
                || u32_at(&bytes, n + 4) != Some(0)
            {
                return Err(corrupt(
                    &self.path,
                    at,
                    "table key hash page checksum does not match (the table is a cache: `reel view rebuild` rewrites it)",
                ));
            }
            word.fetch_or(bit, Ordering::Relaxed);
        }
        Ok(bytes)
    }

    /// Checks every page of the key hash index (what `verify` reads besides the rows).
    pub fn verify_key_hash(&self) -> Result<()> {
        (0..hash::pages_for(self.entries) as usize).try_for_each(|p| self.hash_page(p).map(drop))
    }

    fn index_damaged(&self, b: usize) -> crate::Error {
        corrupt(
            &self.path,
            self.index_offset + (b * INDEX_ENTRY) as u64,
            format!("table index entry {b} is damaged"),
        )
    }

    /// Where block `b` is (its index entry without the first key).
    fn block_loc(&self, b: usize) -> Result<BlockRef> {
        let index = self.index();
        let at = b * INDEX_ENTRY;
        match (u64_at(index, at), u32_at(index, at + 8)) {
            (Some(offset), Some(len)) => Ok(BlockRef { offset, len }),
            _ => Err(self.index_damaged(b)),
        }
    }

    /// Index entry `b`: where its block is and its first key.
    fn block_ref(&self, b: usize) -> Result<(BlockRef, &[u8])> {
        let index = self.index();
        let at = b * INDEX_ENTRY;
        let keys = self.blocks * INDEX_ENTRY;
        let (Some(offset), Some(len), Some(key_at), Some(key_len)) = (
            u64_at(index, at),
            u32_at(index, at + 8),
            u32_at(index, at + 12),
            u32_at(index, at + 16),
        ) else {
            return Err(self.index_damaged(b));
        };
        let start = keys + key_at as usize;
        let key = index
            .get(start..start + key_len as usize)
            .ok_or_else(|| self.index_damaged(b))?;
        Ok((BlockRef { offset, len }, key))
    }

    /// Entries in the table.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The block that holds `key` if any block does.
    fn block_for(&self, key: &[u8]) -> Result<Option<usize>> {
        let (mut lo, mut hi) = (0usize, self.blocks);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.block_ref(mid)?.1 <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo.checked_sub(1))
    }

    /// Reads and checks block `b`.
    fn read_block(&self, b: usize) -> Result<Block<'_>> {
        self.read_block_for(b, true)
    }

    /// Reads block `b`, checking it the first time. `whole`: the entry count is read
    /// (for iteration); a lookup of a checked block skips that read, and its `entry_at`
    /// is bounded by the block's bytes instead of its entries'.
    fn read_block_for(&self, b: usize, whole: bool) -> Result<Block<'_>> {
        let r = self.block_loc(b)?;
        let end = r.offset.checked_add(r.len as u64);
        let within =
            r.offset >= HEADER_LEN && r.len >= 8 && end.is_some_and(|e| e <= self.index_offset);
        if !within {
            return Err(self.index_damaged(b));
        }
        let bytes: Cow<'_, [u8]> = match &self.map {
            Some(m) => Cow::Borrowed(&m[r.offset as usize..r.offset as usize + r.len as usize]),
            None => {
                let mut buf = vec![0u8; r.len as usize];
                self.file
                    .read_exact_at(&mut buf, r.offset)
                    .map_err(|e| io("read", &self.path, e))?;
                Cow::Owned(buf)
            }
        };
        let n = bytes.len();
        let (word, bit) = (&self.verified[b / 64], 1u64 << (b % 64));
        let checked = word.load(Ordering::Relaxed) & bit != 0 && self.map.is_some();
        if checked && !whole {
            return Ok(Block {
                bytes,
                entries_len: n - 8,
                count: 0,
            });
        }
        let count = u32_at(&bytes, n - 8).unwrap_or(0);
        let Some(entries_len) = (n - 8).checked_sub(count as usize * 4) else {
            return Err(corrupt(
                &self.path,
                r.offset,
                "table block counts more entries than it holds",
            ));
        };
        let block = Block {
            bytes,
            entries_len,
            count,
        };
        if !checked {
            if u32_at(&block.bytes, n - 4) != Some(crc32c::crc32c(&block.bytes[..n - 4])) {
                return Err(corrupt(
                    &self.path,
                    r.offset,
                    "table block checksum does not match (the table is a cache: `reel view rebuild` rewrites it)",
                ));
            }
            // The index entry must describe this very block: blocks tile the file in
            // order, and the entry's key is the block's first.
            let follows = if b == 0 {
                r.offset == HEADER_LEN
            } else {
                let (prev, _) = self.block_ref(b - 1)?;
                prev.offset + prev.len as u64 == r.offset
            };
            let last_ends = b + 1 != self.blocks || end == Some(self.index_offset);
            let (_, first_key) = self.block_ref(b)?;
            if !follows
                || !last_ends
                || count == 0
                || block.entry(0).map(|e| e.0) != Some(first_key)
            {
                return Err(self.index_damaged(b));
            }
            word.fetch_or(bit, Ordering::Relaxed);
        }
        Ok(block)
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(key, <[u8]>::to_vec)
    }

    /// Calls `f` on the value stored under `key` where it lies (in the mapping, when
    /// there is one): no copy of the value.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        self.get_hashed(key, KeyHash::of(key), f)
    }

    /// Asks the CPU to start loading the key hash slot where a lookup of `hash` begins,
    /// so that a lookup over several tables waits for their slots together rather than
    /// one after another (each is a cache and TLB miss in a large table).
    pub fn prefetch(&self, hash: KeyHash) {
        if let Some(m) = &self.map {
            let i = hash::home(hash.in_format(self.format).0, self.hash_slots);
            let page = i / hash::SLOTS_PER_PAGE as u64;
            let at =
                self.hash_offset + page * hash::PAGE as u64 + (i % hash::SLOTS_PER_PAGE as u64) * 8;
            if let Some(b) = m.get(at as usize) {
                prefetch(b);
            }
        }
    }

    /// [`Table::get_with`] with the key's hash computed once for every table probed.
    pub fn get_hashed<R>(
        &self,
        key: &[u8],
        hash: KeyHash,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>> {
        let (h, tag) = hash.in_format(self.format);
        let slots = self.hash_slots;
        let mut i = hash::home(h, slots);
        let mut page: Option<(u64, Cow<'_, [u8]>)> = None;
        // The index is at most 3/4 full: an empty slot ends every probe sequence.
        for _ in 0..slots {
            let p = i / hash::SLOTS_PER_PAGE as u64;
            if page.as_ref().is_none_or(|(at, _)| *at != p) {
                page = Some((p, self.hash_page(p as usize)?));
            }
            let bytes = &page.as_ref().map(|(_, b)| b).expect("page just read")[..];
            let at = (i % hash::SLOTS_PER_PAGE as u64) as usize * 8;
            let slot = u64_at(bytes, at).unwrap_or(0);
            if slot == 0 {
                return Ok(None);
            }
            if hash::tag_of(slot) == tag {
                let (b, position) = hash::location(slot);
                let damaged = || {
                    corrupt(
                        &self.path,
                        self.hash_offset + i * 8,
                        "table key hash slot points outside the table",
                    )
                };
                if b >= self.blocks {
                    return Err(damaged());
                }
                let block = self.read_block_for(b, false)?;
                match block.entry_at(position) {
                    Some((k, v)) if k == key => return Ok(Some(f(v))),
                    Some(_) => {}
                    None => return Err(damaged()),
                }
            }
            i += 1;
            if i == slots {
                i = 0;
            }
        }
        Ok(None)
    }

    /// Calls `f` on every entry of every block whose checksum holds, skipping damaged
    /// blocks (a salvage, for a rebuild that must keep what it can); returns the key
    /// ranges of the blocks skipped (`[first, next block's first)`, `None`: no end),
    /// which a newer table's damaged block shadows in older tables.
    pub fn salvage(&self, mut f: impl FnMut(&[u8], &[u8])) -> Vec<KeyRange> {
        let mut skipped = Vec::new();
        let first_key = |b: usize| self.block_ref(b).ok().map(|(_, k)| k.to_vec());
        for b in 0..self.blocks {
            match self.read_block_for(b, true) {
                Ok(block) => {
                    for i in 0..block.count {
                        if let Some((k, v)) = block.entry(i) {
                            f(k, v);
                        }
                    }
                }
                Err(_) => {
                    // Without the block's first key, everything up to the next is lost.
                    let start = if b == 0 {
                        Some(Vec::new())
                    } else {
                        first_key(b)
                    };
                    let end = if b + 1 < self.blocks {
                        first_key(b + 1)
                    } else {
                        None
                    };
                    skipped.push((start.unwrap_or_default(), end));
                }
            }
        }
        skipped
    }

    /// Entries with keys at or after `from`, in key order.
    pub fn iter_from(self: &Arc<Self>, from: &[u8]) -> TableIter {
        let (block, error) = match self.block_for(from) {
            Ok(b) => (b.unwrap_or(0), None),
            Err(e) => (0, Some(e)),
        };
        TableIter {
            cursor: self.cursor_at(block),
            error,
            from: Some(from.to_vec()),
            failed: false,
        }
    }
}

struct Block<'a> {
    /// Entries, then their offsets, count and crc.
    bytes: Cow<'a, [u8]>,
    /// Bytes of the entries.
    entries_len: usize,
    count: u32,
}

impl Block<'_> {
    /// Entry `i` (key, value), found through the block's offset array.
    fn entry(&self, i: u32) -> Option<(&[u8], &[u8])> {
        self.entry_at(u32_at(&self.bytes, self.entries_len + i as usize * 4)?)
    }

    /// The entry (key, value) that starts at `at`.
    fn entry_at(&self, at: u32) -> Option<(&[u8], &[u8])> {
        let at = at as usize;
        let klen = u32_at(&self.bytes, at)? as usize;
        let vlen = u32_at(&self.bytes, at + 4)? as usize;
        let end = (at + 8 + klen).checked_add(vlen)?;
        if end > self.entries_len {
            return None;
        }
        Some((
            &self.bytes[at + 8..at + 8 + klen],
            &self.bytes[at + 8 + klen..end],
        ))
    }
}

/// Iterator over a table's entries in key order, as owned copies (see
/// [`Table::iter_from`]); a [`TableCursor`] underneath.
#[derive(Debug)]
pub struct TableIter {
    cursor: TableCursor,
    /// A failure of the initial search, reported by the first `next`.
    error: Option<crate::Error>,
    /// Entries before this key (in the first block read) are skipped.
    from: Option<Vec<u8>>,
    failed: bool,
}

impl Iterator for TableIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if let Some(e) = self.error.take() {
            self.failed = true;
            return Some(Err(e));
        }
        loop {
            match self.cursor.advance() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
            let key = self.cursor.key();
            if self.from.as_deref().is_some_and(|f| key < f) {
                continue;
            }
            self.from = None;
            return Some(Ok((key.to_vec(), self.cursor.value().to_vec())));
        }
    }
}

#[cfg(test)]
mod tests;
