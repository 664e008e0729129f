//! The lists view: per key, its items' offsets, seqs, positions, times and nonces, so
//! that seeking by offset, time or nonce is a binary search.

use crate::error::Result;
use crate::value::TAG_LIST_ITEM;
use crate::view::View;
use reel_log::{FramePos, RecordRef};
use std::collections::HashMap;

/// Name of the lists view (`views/lists/`).
pub const LISTS_VIEW: &str = "lists";
const VERSION: u32 = 1;

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

/// One key's list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyList {
    /// Retained items, by offset.
    pub items: Vec<ItemMeta>,
    /// Offset the next append gets.
    pub next_offset: u64,
    /// Largest nonce accepted for the key (kept even when its item is dropped).
    pub last_nonce: Option<u128>,
}

impl KeyList {
    /// Drops items whose records retention deleted.
    pub fn prune(&mut self, oldest_seq: u64) {
        let n = self.items.partition_point(|i| i.seq < oldest_seq);
        if n > 0 {
            self.items.drain(..n);
        }
    }

    /// Index of the first item with offset at least `offset`.
    pub fn by_offset(&self, offset: u64) -> usize {
        self.items.partition_point(|i| i.offset < offset)
    }

    /// Index of the first item with a timestamp at least `ts`.
    pub fn by_time(&self, ts: i64) -> usize {
        self.items.partition_point(|i| i.ts_max < ts)
    }

    /// Index of the first item with a nonce at least `nonce` (nonces only grow).
    pub fn by_nonce(&self, nonce: u128) -> usize {
        self.items
            .partition_point(|i| i.nonce_max.is_none_or(|n| n < nonce))
    }
}

/// Every key's list.
#[derive(Debug, Default)]
pub struct ListIndex {
    pub(crate) keys: HashMap<String, KeyList>,
}

impl ListIndex {
    /// A key's list.
    pub fn get(&self, key: &str) -> Option<&KeyList> {
        self.keys.get(key)
    }

    fn add(
        &mut self,
        key: &str,
        offset: u64,
        seq: u64,
        pos: FramePos,
        ts: i64,
        nonce: Option<u128>,
    ) {
        let list = match self.keys.get_mut(key) {
            Some(l) => l,
            None => self.keys.entry(key.to_string()).or_default(),
        };
        if offset < list.next_offset && !list.items.is_empty() {
            return; // not possible for records written by ListStore; ignore rather than misindex
        }
        let ts_max = list.items.last().map_or(ts, |l| l.ts_max.max(ts));
        let nonce_max = list.items.last().and_then(|l| l.nonce_max).max(nonce);
        list.items.push(ItemMeta {
            offset,
            seq,
            pos,
            ts,
            ts_max,
            nonce,
            nonce_max,
        });
        list.next_offset = offset + 1;
        if nonce.is_some() {
            list.last_nonce = list.last_nonce.max(nonce);
        }
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
        self.add(key, offset, r.seq, pos, r.ts, r.nonce);
        Ok(())
    }

    fn reset(&mut self) {
        self.keys.clear();
    }

    /// Per key: key length u32, key, next_offset u64, last_nonce flag u8 + u128, item
    /// count u64, then per item offset, seq, segment, file offset (u64 each), ts i64,
    /// nonce flag u8 + u128.
    fn save(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.keys.len() as u64).to_le_bytes());
        let opt = |out: &mut Vec<u8>, n: Option<u128>| {
            out.push(u8::from(n.is_some()));
            out.extend_from_slice(&n.unwrap_or(0).to_le_bytes());
        };
        for (k, l) in &self.keys {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&l.next_offset.to_le_bytes());
            opt(&mut out, l.last_nonce);
            out.extend_from_slice(&(l.items.len() as u64).to_le_bytes());
            for i in &l.items {
                for v in [i.offset, i.seq, i.pos.segment, i.pos.offset] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(&i.ts.to_le_bytes());
                opt(&mut out, i.nonce);
            }
        }
        Ok(out)
    }

    fn load(&mut self, b: &[u8]) -> Result<()> {
        let bad = || crate::Error::Decode("lists checkpoint is malformed".into());
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = b.get(at..at + n).ok_or_else(bad)?;
            at += n;
            Ok(s)
        };
        fn u64_of(s: &[u8]) -> u64 {
            u64::from_le_bytes(s.try_into().unwrap_or_default())
        }
        let mut keys = HashMap::new();
        for _ in 0..u64_of(take(8)?) {
            let klen = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
            let key = std::str::from_utf8(take(klen)?)
                .map_err(|_| bad())?
                .to_string();
            let next_offset = u64_of(take(8)?);
            let flag = take(1)?[0];
            let n = u128::from_le_bytes(take(16)?.try_into().map_err(|_| bad())?);
            let last_nonce = (flag == 1).then_some(n);
            let count = u64_of(take(8)?);
            let mut items: Vec<ItemMeta> = Vec::with_capacity(count.min(1 << 20) as usize);
            for _ in 0..count {
                let (offset, seq, segment, foff) = (
                    u64_of(take(8)?),
                    u64_of(take(8)?),
                    u64_of(take(8)?),
                    u64_of(take(8)?),
                );
                let ts = u64_of(take(8)?) as i64;
                let flag = take(1)?[0];
                let n = u128::from_le_bytes(take(16)?.try_into().map_err(|_| bad())?);
                let ts_max = items.last().map_or(ts, |l| l.ts_max.max(ts));
                let nonce = (flag == 1).then_some(n);
                let nonce_max = items.last().and_then(|l| l.nonce_max).max(nonce);
                items.push(ItemMeta {
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
                });
            }
            keys.insert(
                key,
                KeyList {
                    items,
                    next_offset,
                    last_nonce,
                },
            );
        }
        self.keys = keys;
        Ok(())
    }
}
