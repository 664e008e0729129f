//! Writing a table (the format is in the parent module's documentation).

use super::hash::HashBuilder;
use super::{BLOCK_TARGET, FOOTER_LEN, FOOTER_MAGIC, HEADER_LEN, MAGIC, io};
use crate::error::Result;
use reel_log::storage::{OpenMode, Storage, StorageFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Writes a table: entries in strictly increasing key order, then [`TableWriter::finish`].
#[derive(Debug)]
pub struct TableWriter {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    block: Vec<u8>,
    block_entries: u32,
    /// Where each entry of the block starts, for binary search inside the block.
    entry_offsets: Vec<u32>,
    block_first_key: Vec<u8>,
    last_key: Option<Vec<u8>>,
    /// Fixed-size index entries, one per block.
    index: Vec<u8>,
    /// The blocks' first keys, back to back.
    index_keys: Vec<u8>,
    /// Where each entry is, by key hash.
    hash: HashBuilder,
    blocks: u32,
    offset: u64,
    entries: u64,
    /// Finished blocks not written yet (written a MiB at a time: a system call per
    /// 4 KiB block cost a third of a checkpoint), and where they go.
    unwritten: Vec<u8>,
    unwritten_at: u64,
}

/// Bytes of finished blocks gathered before one write.
const WRITE_BUFFER: usize = 1 << 20;

impl TableWriter {
    /// Creates (or truncates) the file at `path`, for about `expected_keys` entries (a
    /// capacity hint, nothing more).
    pub fn create(storage: &dyn Storage, path: &Path, expected_keys: u64) -> Result<TableWriter> {
        let file = storage
            .open(path, OpenMode::CreateTruncate)
            .map_err(|e| io("create", path, e))?;
        Ok(TableWriter {
            file,
            path: path.to_path_buf(),
            block: Vec::with_capacity(BLOCK_TARGET * 2),
            block_entries: 0,
            entry_offsets: Vec::new(),
            block_first_key: Vec::new(),
            last_key: None,
            index: Vec::new(),
            index_keys: Vec::new(),
            hash: HashBuilder::with_capacity(expected_keys.min(1 << 24) as usize),
            blocks: 0,
            offset: HEADER_LEN,
            entries: 0,
            unwritten: Vec::new(),
            unwritten_at: HEADER_LEN,
        })
    }

    /// Writes the table in an older `format` (for tests that older tables are read).
    #[cfg(test)]
    pub(super) fn in_format(mut self, format: u32) -> TableWriter {
        self.hash.format = format;
        self
    }

    /// Adds an entry; its key must sort after the previous one.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.last_key.as_deref().is_some_and(|last| last >= key) {
            return Err(crate::Error::InvalidArgument(format!(
                "table {}: keys must be added in increasing order",
                self.path.display()
            )));
        }
        if key.len() > u32::MAX as usize || value.len() > u32::MAX as usize {
            return Err(crate::Error::InvalidArgument(
                "table entry larger than 4 GiB".into(),
            ));
        }
        if self.block.len() + 16 + key.len() + value.len() > u32::MAX as usize {
            self.flush_block()?;
        }
        if self.block_entries == 0 {
            self.block_first_key.clear();
            self.block_first_key.extend_from_slice(key);
        }
        self.hash.add(key, self.blocks, self.block.len())?;
        self.entry_offsets.push(self.block.len() as u32);
        self.block
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.block
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.block.extend_from_slice(key);
        self.block.extend_from_slice(value);
        self.block_entries += 1;
        self.entries += 1;
        match &mut self.last_key {
            Some(k) => {
                k.clear();
                k.extend_from_slice(key);
            }
            None => self.last_key = Some(key.to_vec()),
        }
        if self.block.len() >= BLOCK_TARGET {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        if self.block_entries == 0 {
            return Ok(());
        }
        for o in self.entry_offsets.drain(..) {
            self.block.extend_from_slice(&o.to_le_bytes());
        }
        self.block
            .extend_from_slice(&self.block_entries.to_le_bytes());
        let crc = crc32c::crc32c(&self.block);
        self.block.extend_from_slice(&crc.to_le_bytes());
        self.unwritten.extend_from_slice(&self.block);
        if self.unwritten.len() >= WRITE_BUFFER {
            self.write_unwritten()?;
        }
        self.index.extend_from_slice(&self.offset.to_le_bytes());
        self.index
            .extend_from_slice(&(self.block.len() as u32).to_le_bytes());
        let key_at = u32::try_from(self.index_keys.len())
            .map_err(|_| crate::Error::InvalidArgument("table index larger than 4 GiB".into()))?;
        self.index.extend_from_slice(&key_at.to_le_bytes());
        self.index
            .extend_from_slice(&(self.block_first_key.len() as u32).to_le_bytes());
        self.index_keys.extend_from_slice(&self.block_first_key);
        self.blocks = self.blocks.checked_add(1).ok_or_else(|| {
            crate::Error::InvalidArgument("table of more than 2^32 blocks".into())
        })?;
        self.offset += self.block.len() as u64;
        self.block.clear();
        self.block_entries = 0;
        Ok(())
    }

    fn write_unwritten(&mut self) -> Result<()> {
        self.file
            .write_all_at(&self.unwritten, self.unwritten_at)
            .map_err(|e| io("write to", &self.path, e))?;
        self.unwritten_at += self.unwritten.len() as u64;
        self.unwritten.clear();
        Ok(())
    }

    /// Writes the last block, the index, footer and header, and syncs the file.
    /// Returns the number of entries.
    pub fn finish(mut self) -> Result<u64> {
        self.flush_block()?;
        self.write_unwritten()?;
        let keys = std::mem::take(&mut self.index_keys);
        self.index.extend_from_slice(&keys);
        let crc = crc32c::crc32c(&self.index);
        self.index.extend_from_slice(&crc.to_le_bytes());
        let index_offset = self.offset;
        let mut tail = std::mem::take(&mut self.index);
        let index_len = tail.len() as u64;
        let format = self.hash.format;
        let hash = std::mem::replace(&mut self.hash, HashBuilder::with_capacity(0)).finish();
        let hash_len = hash.len() as u64;
        tail.extend_from_slice(&hash);
        let mut footer = [0u8; FOOTER_LEN as usize];
        footer[0..8].copy_from_slice(&index_offset.to_le_bytes());
        footer[8..16].copy_from_slice(&index_len.to_le_bytes());
        footer[16..24].copy_from_slice(&(index_offset + index_len).to_le_bytes());
        footer[24..32].copy_from_slice(&hash_len.to_le_bytes());
        footer[32..40].copy_from_slice(&self.entries.to_le_bytes());
        footer[40..44].copy_from_slice(FOOTER_MAGIC);
        let crc = crc32c::crc32c(&footer[..44]);
        footer[44..48].copy_from_slice(&crc.to_le_bytes());
        tail.extend_from_slice(&footer);
        self.file
            .write_all_at(&tail, index_offset)
            .map_err(|e| io("write to", &self.path, e))?;
        self.file
            .write_all_at(&encode_header(self.entries, self.blocks, format), 0)
            .map_err(|e| io("write to", &self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| io("sync", &self.path, e))?;
        Ok(self.entries)
    }
}

fn encode_header(entries: u64, blocks: u32, format: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&format.to_le_bytes());
    h[12..16].copy_from_slice(&blocks.to_le_bytes());
    h[16..24].copy_from_slice(&entries.to_le_bytes());
    let crc = crc32c::crc32c(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}
