//! A table's key hash index: where each key's entry is, found with one or two reads.
//!
//! Open addressing with linear probing over slots of 8 bytes, at most 3/4 full, in pages
//! of 4 KiB (511 slots, then CRC32C of them and 4 zero bytes) so that a lookup checks only
//! the pages it reads, the first time this process reads them: opening a 10M-key table
//! reads none of its index. A slot is 0 when empty, else
//! `tag (20 bits) | block (32 bits) | entry position in the block (12 bits)`: blocks are
//! cut once they reach 4 KiB, so every entry starts within the first 4 KiB of its block.
//! A slot whose tag matches is confirmed by comparing the key stored in the entry, so a
//! tag collision costs a read, never a wrong answer.
//!
//! Key hashes: `h1 = CRC32C(key)` and `h2 = CRC32C-append(0x5bd1e995, key)`.
//! - Format 3: `m = mix64(h1 << 32 | h2)` (the splitmix64 finalizer); the home slot is
//!   `(m >> 32) × slots >> 32` and the tag `(m & 0xfffff) | 1` (never 0).
//! - Format 2 (still read): the home slot is `h1 × slots >> 32`, the tag `(h2 >> 12) | 1`.
//!   A CRC is linear over GF(2): keys that differ in a few characters (`user.u9990000`
//!   to `user.u9999999`) have CRCs in a small affine subspace, whose top bits cluster,
//!   and a table of such keys had probe sequences of 20-40 slots for absent keys (8.5
//!   expected at a load of 3/4). The mix is not linear and removes that structure.

use crate::error::Result;

/// Bytes per page.
pub(super) const PAGE: usize = 4096;
/// Slots per page.
pub(super) const SLOTS_PER_PAGE: usize = 511;
/// Bytes of a page's slots (its checksum follows).
pub(super) const SLOT_BYTES: usize = SLOTS_PER_PAGE * 8;
/// Entry positions in a block fit in 12 bits.
pub(super) const MAX_POSITION: usize = 1 << 12;

/// The splitmix64 finalizer: every input bit affects every output bit, non-linearly.
fn mix64(x: u64) -> u64 {
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The home slot of a key whose home hash is `h`, among `slots`.
pub(super) fn home(h: u32, slots: u64) -> u64 {
    (u64::from(h) * slots) >> 32
}

/// The tag a slot holds.
pub(super) fn tag_of(slot: u64) -> u64 {
    slot >> 44
}

/// The block and the entry position a slot points at.
pub(super) fn location(slot: u64) -> (usize, u32) {
    (((slot >> 12) & 0xffff_ffff) as usize, (slot & 0xfff) as u32)
}

/// Pages for a table of `entries` entries (load factor at most 3/4, at least one page).
pub(super) fn pages_for(entries: u64) -> u64 {
    (entries.saturating_mul(4) / 3 + 1).div_ceil(SLOTS_PER_PAGE as u64)
}

/// Collects the entries' slots while a table is written, then lays out the pages.
#[derive(Debug)]
pub(super) struct HashBuilder {
    /// Per entry: its home hash and its slot value.
    items: Vec<(u32, u64)>,
    /// The table format whose hashing this follows.
    pub(super) format: u32,
}

impl HashBuilder {
    pub(super) fn with_capacity(n: usize) -> HashBuilder {
        HashBuilder {
            items: Vec::with_capacity(n),
            format: super::FORMAT,
        }
    }

    /// Records that `key`'s entry starts at `position` in block `block`.
    pub(super) fn add(&mut self, key: &[u8], block: u32, position: usize) -> Result<()> {
        if position >= MAX_POSITION {
            // The writer cuts blocks at 4 KiB: an entry starting later is a bug there.
            return Err(crate::Error::InvalidArgument(format!(
                "table entry at position {position} of its block (must be below {MAX_POSITION})"
            )));
        }
        let (h, tag) = KeyHash::of(key).in_format(self.format);
        self.items
            .push((h, tag << 44 | u64::from(block) << 12 | position as u64));
        Ok(())
    }

    /// The index section: every page, with its checksum.
    pub(super) fn finish(self) -> Vec<u8> {
        let pages = pages_for(self.items.len() as u64) as usize;
        let n = (pages * SLOTS_PER_PAGE) as u64;
        let mut slots = vec![0u64; n as usize];
        // Keys arrive in key order, so their home slots are scattered over the array: a
        // large table takes a cache miss per key. Loading the slot of a key a few places
        // ahead lets those misses overlap.
        const AHEAD: usize = 16;
        for (at, &(h1, value)) in self.items.iter().enumerate() {
            if let Some(&(ahead, _)) = self.items.get(at + AHEAD) {
                prefetch(&slots[home(ahead, n) as usize]);
            }
            let mut i = home(h1, n) as usize;
            while slots[i] != 0 {
                i += 1;
                if i == slots.len() {
                    i = 0;
                }
            }
            slots[i] = value;
        }
        let mut out = Vec::with_capacity(pages * PAGE);
        for page in slots.chunks(SLOTS_PER_PAGE) {
            let start = out.len();
            for s in page {
                out.extend_from_slice(&s.to_le_bytes());
            }
            let crc = crc32c::crc32c(&out[start..]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&[0u8; 4]);
        }
        out
    }
}

/// A key's hashes in the key hash index (see the `hash` module), computed once for
/// every table a lookup probes, whatever their formats.
#[derive(Debug, Clone, Copy)]
pub struct KeyHash {
    h1: u32,
    h2: u32,
    mixed: u64,
}

impl KeyHash {
    /// The hashes of `key`.
    pub fn of(key: &[u8]) -> KeyHash {
        let h1 = crc32c::crc32c(key);
        let h2 = crc32c::crc32c_append(0x5bd1_e995, key);
        KeyHash {
            h1,
            h2,
            mixed: mix64(u64::from(h1) << 32 | u64::from(h2)),
        }
    }

    /// The home hash (see [`home`]) and the tag in a table of `format`.
    #[inline]
    pub(super) fn in_format(self, format: u32) -> (u32, u64) {
        if format == 2 {
            (self.h1, u64::from((self.h2 >> 12) | 1))
        } else {
            ((self.mixed >> 32) as u32, (self.mixed & 0xf_ffff) | 1)
        }
    }
}

/// A hint to the CPU to load the cache line holding `value`.
#[inline]
pub(super) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it does not access memory architecturally and cannot
    // fault, and `value` is a valid reference anyway. Measured: random kv gets at 10M
    // keys over 7 tables (`examples/kv_fill --get-only`), and laying out a table's key
    // hash index (`examples/kv_fill --fill-only`).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            std::ptr::from_ref(value).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
