//! The bytes of the lists view's rows: row keys, items, chunk summaries, summary pages
//! and list headers (the layout is in `docs/FORMAT.md` §15).

use super::{CHUNK, ChunkSummary, ItemMeta, KeyList, PAGE_CHUNKS};
use reel_log::FramePos;

pub(super) fn header_key(key: &str) -> Vec<u8> {
    row_key(key, b'h', None)
}

pub(super) fn chunk_key(key: &str, c: u64) -> Vec<u8> {
    row_key(key, b'c', Some(c))
}

pub(super) fn page_key(key: &str, p: u64) -> Vec<u8> {
    row_key(key, b's', Some(p))
}

/// `key 0x00 kind [number u64 big-endian]`: keys cannot contain NUL, so a list's rows
/// sort together, each kind by number.
fn row_key(key: &str, kind: u8, n: Option<u64>) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 10);
    k.extend_from_slice(key.as_bytes());
    k.push(0);
    k.push(kind);
    if let Some(n) = n {
        k.extend_from_slice(&n.to_be_bytes());
    }
    k
}

fn put_opt(out: &mut Vec<u8>, n: Option<u128>) {
    out.push(u8::from(n.is_some()));
    out.extend_from_slice(&n.unwrap_or(0).to_le_bytes());
}

/// An item as stored in chunk rows and chunk summaries: offset, seq, segment, file
/// offset (u64 each), ts i64, nonce (flag u8, u128), ts_max i64, nonce_max (flag u8,
/// u128): every item decodes on its own.
pub(super) fn encode_item(out: &mut Vec<u8>, i: &ItemMeta) {
    for v in [i.offset, i.seq, i.pos.segment, i.pos.offset] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&i.ts.to_le_bytes());
    put_opt(out, i.nonce);
    out.extend_from_slice(&i.ts_max.to_le_bytes());
    put_opt(out, i.nonce_max);
}

/// Bytes per encoded item.
pub(super) const ITEM_LEN: usize = 8 * 6 + 17 * 2;

/// Bytes per encoded chunk summary (item count u64, last item).
pub(super) const SUMMARY_LEN: usize = 8 + ITEM_LEN;

/// Item `j` of an encoded chunk.
pub(super) fn item_at(raw: &[u8], j: usize) -> Option<ItemMeta> {
    let at = j.checked_mul(ITEM_LEN)?;
    Fields {
        b: raw.get(at..at + ITEM_LEN)?,
        at: 0,
    }
    .item()
}

fn encode_summary(out: &mut Vec<u8>, s: &ChunkSummary) {
    out.extend_from_slice(&(s.count as u64).to_le_bytes());
    encode_item(out, &s.last);
}

/// Summary `j` of a summary page (or of any run of encoded summaries).
pub(super) fn summary_at(raw: &[u8], j: usize) -> Option<ChunkSummary> {
    let at = j.checked_mul(SUMMARY_LEN)?;
    let mut f = Fields {
        b: raw.get(at..at + SUMMARY_LEN)?,
        at: 0,
    };
    let count = f.u64()?;
    let last = f.item()?;
    (1..=CHUNK as u64).contains(&count).then_some(ChunkSummary {
        count: count as u32,
        last,
    })
}

/// A summary page: the summaries of [`PAGE_CHUNKS`] full chunks, back to back.
pub(super) fn encode_page(chunks: &[ChunkSummary]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunks.len() * SUMMARY_LEN);
    for s in chunks {
        encode_summary(&mut out, s);
    }
    out
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
/// chunks u64 | full summary pages u64 | per page: its last item | chunks after the
/// pages u64 | per such chunk: item count u64, last item. Its size grows by one item per
/// [`PAGE_CHUNKS`] chunks, not per chunk: a long list's header stays small.
pub(super) fn encode_header(l: &KeyList) -> Vec<u8> {
    let mut out = Vec::with_capacity(57 + l.pages.len() * ITEM_LEN + l.inline.len() * SUMMARY_LEN);
    out.extend_from_slice(&l.next_offset.to_le_bytes());
    put_opt(&mut out, l.last_nonce);
    out.extend_from_slice(&l.start.to_le_bytes());
    out.extend_from_slice(&l.dropped_chunks.to_le_bytes());
    out.extend_from_slice(&(l.pages.len() as u64).to_le_bytes());
    for p in &l.pages {
        encode_item(&mut out, p);
    }
    out.extend_from_slice(&(l.inline.len() as u64).to_le_bytes());
    for c in &l.inline {
        encode_summary(&mut out, c);
    }
    out
}

pub(super) fn decode_header(v: &[u8]) -> Option<KeyList> {
    let mut f = Fields { b: v, at: 0 };
    let next_offset = f.u64()?;
    let last_nonce = f.opt()?;
    let start = f.u64()?;
    let dropped_chunks = f.u64()?;
    let pages = f.u64()?;
    if pages > (v.len() / ITEM_LEN) as u64 {
        return None;
    }
    let pages = (0..pages).map(|_| f.item()).collect::<Option<Vec<_>>>()?;
    let n = f.u64()?;
    if n > PAGE_CHUNKS as u64 {
        return None;
    }
    let mut inline = Vec::with_capacity(n as usize);
    for i in 0..n {
        let count = f.u64()?;
        let last = f.item()?;
        // Every chunk but the list's last is full.
        if count == 0 || count > CHUNK as u64 || (i + 1 < n && count != CHUNK as u64) {
            return None;
        }
        inline.push(ChunkSummary {
            count: count as u32,
            last,
        });
    }
    let l = KeyList {
        next_offset,
        last_nonce,
        start,
        dropped_chunks,
        pages,
        inline,
        ..Default::default()
    };
    (f.at == v.len()
        && start <= l.total()
        && dropped_chunks <= l.chunk_count()
        && dropped_chunks * CHUNK as u64 <= start)
        .then_some(l)
}
