//! Reading a table in key order without an allocation per entry: what a merge of tables
//! into a new one reads, and what [`super::TableIter`] (owned copies) is built on. The
//! one parser of a block's entry sequence.

use super::{Table, corrupt, u32_at};
use crate::error::Result;
use std::sync::Arc;

/// A position in a table's entries, in key order; see [`Table::cursor`].
#[derive(Debug)]
pub struct TableCursor {
    table: Arc<Table>,
    next_block: usize,
    /// The current block's entries (copied: a merge reads each block once).
    block: Vec<u8>,
    /// Entries of the current block not yet reached.
    left: u32,
    /// Where the next entry starts in `block`.
    at: usize,
    /// The current entry's key and value, as ranges of `block`.
    key: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
    done: bool,
}

impl Table {
    /// A cursor before the first entry: [`TableCursor::advance`] moves to it.
    pub fn cursor(self: &Arc<Self>) -> TableCursor {
        self.cursor_at(0)
    }

    /// A cursor before the first entry of block `block`.
    pub(super) fn cursor_at(self: &Arc<Self>, block: usize) -> TableCursor {
        TableCursor {
            table: self.clone(),
            next_block: block,
            block: Vec::with_capacity(super::BLOCK_TARGET * 2),
            left: 0,
            at: 0,
            key: 0..0,
            value: 0..0,
            done: false,
        }
    }
}

impl TableCursor {
    /// Moves to the next entry; false at the end of the table. Every block is checked
    /// as a lookup checks it; damage is an error, never an entry.
    pub fn advance(&mut self) -> Result<bool> {
        while self.left == 0 {
            if self.at != self.block.len() {
                return Err(self.damaged("table block has bytes after its entries"));
            }
            if self.done || self.next_block >= self.table.blocks {
                self.done = true;
                return Ok(false);
            }
            let block = self.table.read_block(self.next_block)?;
            self.block.clear();
            self.block
                .extend_from_slice(&block.bytes[..block.entries_len]);
            self.left = block.count;
            self.at = 0;
            self.next_block += 1;
        }
        let at = self.at;
        let parsed = (|| {
            let klen = u32_at(&self.block, at)? as usize;
            let vlen = u32_at(&self.block, at + 4)? as usize;
            let key = at + 8..(at + 8).checked_add(klen)?;
            let value = key.end..key.end.checked_add(vlen)?;
            (value.end <= self.block.len()).then_some((key, value))
        })();
        let Some((key, value)) = parsed else {
            self.done = true;
            self.left = 0;
            self.at = self.block.len();
            return Err(self.damaged("table block entry is malformed"));
        };
        self.at = value.end;
        self.key = key;
        self.value = value;
        self.left -= 1;
        Ok(true)
    }

    /// The current entry's key (after an `advance` that returned true).
    pub fn key(&self) -> &[u8] {
        &self.block[self.key.clone()]
    }

    /// The current entry's value.
    pub fn value(&self) -> &[u8] {
        &self.block[self.value.clone()]
    }

    fn damaged(&self, reason: &str) -> crate::Error {
        let block = self.next_block.saturating_sub(1);
        let offset = self
            .table
            .block_loc(block)
            .map(|r| r.offset)
            .unwrap_or_default();
        corrupt(&self.table.path, offset, reason)
    }
}
