//! Hints that let lookups overlap their cache misses. A lookup in a large table waits on
//! three dependent reads (the key hash slot, the block's index entry, the entry); a
//! batch of lookups asks the CPU to load each of them for keys further ahead, so that
//! the lookup proper finds them cached. Hints read mapped bytes without checking them:
//! a wrong hint costs a wasted load, never a wrong answer (the lookup checks everything).

use super::hash::{self, prefetch};
use super::{INDEX_ENTRY, KeyHash, Table, u32_at, u64_at};

/// How far a lookup has been prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The key's home slot.
    Slot,
    /// The index entry of the block that the first slot with the key's tag names.
    Index,
    /// The entry itself.
    Entry,
}

/// Slots a hint looks at past the home slot: a probe sequence is short at a load factor
/// of at most 3/4, and a hint that gives up only costs the lookup a miss.
const PROBE_LIMIT: u64 = 8;

impl Table {
    /// Asks the CPU to start loading the key hash slot where a lookup of `hash` begins,
    /// so that a lookup over several tables waits for their slots together rather than
    /// one after another (each is a cache and TLB miss in a large table).
    pub fn prefetch(&self, hash: KeyHash) {
        self.prefetch_stage(hash, Stage::Slot);
    }

    /// Asks the CPU to start loading what a lookup of `hash` reads at `stage`; the
    /// earlier stages' loads should be done (or this one waits for them).
    pub fn prefetch_stage(&self, hash: KeyHash, stage: Stage) {
        let Some(m) = &self.map else { return };
        let slot_at = |i: u64| {
            let page = i / hash::SLOTS_PER_PAGE as u64;
            (self.hash_offset + page * hash::PAGE as u64 + (i % hash::SLOTS_PER_PAGE as u64) * 8)
                as usize
        };
        let home = hash::home(hash.h1, self.hash_slots);
        if stage == Stage::Slot {
            if let Some(b) = m.get(slot_at(home)) {
                prefetch(b);
            }
            return;
        }
        let mut i = home;
        for _ in 0..PROBE_LIMIT.min(self.hash_slots) {
            let slot = u64_at(m, slot_at(i)).unwrap_or(0);
            if slot == 0 {
                return;
            }
            if hash::tag_of(slot) == hash.tag {
                let (b, position) = hash::location(slot);
                if b >= self.blocks {
                    return;
                }
                let index_at = self.index_offset as usize + b * INDEX_ENTRY;
                match stage {
                    Stage::Index => {
                        if let Some(e) = m.get(index_at) {
                            prefetch(e);
                        }
                    }
                    _ => {
                        let (Some(offset), Some(_)) =
                            (u64_at(m, index_at), u32_at(m, index_at + 8))
                        else {
                            return;
                        };
                        let at = offset as usize + position as usize;
                        // An entry's two lengths and a short key straddle a line
                        // boundary often enough to load the next line too.
                        for line in [at, at + 64] {
                            if let Some(e) = m.get(line) {
                                prefetch(e);
                            }
                        }
                    }
                }
                return;
            }
            i += 1;
            if i == self.hash_slots {
                i = 0;
            }
        }
    }

    /// TEMP: probes and lines of a lookup
    pub fn probe_stats(&self, hash: KeyHash) -> (u64, u64, bool) {
        let Some(m) = &self.map else { return (0, 0, false) };
        let slot_at = |i: u64| {
            let page = i / hash::SLOTS_PER_PAGE as u64;
            (self.hash_offset + page * hash::PAGE as u64 + (i % hash::SLOTS_PER_PAGE as u64) * 8)
                as usize
        };
        let mut i = hash::home(hash.h1, self.hash_slots);
        let (mut probes, mut lines, mut last_line) = (0, 0, usize::MAX);
        loop {
            probes += 1;
            let at = slot_at(i);
            if at / 64 != last_line { lines += 1; last_line = at / 64; }
            let slot = u64_at(m, at).unwrap_or(0);
            if slot == 0 { return (probes, lines, false); }
            if hash::tag_of(slot) == hash.tag { return (probes, lines, true); }
            i += 1;
            if i == self.hash_slots { i = 0; }
        }
    }

    /// TEMP: raw lookup
    pub fn raw_probe(&self, hash: KeyHash) -> u64 {
        let Some(m) = &self.map else { return 0 };
        let slot_at = |i: u64| {
            let page = i / hash::SLOTS_PER_PAGE as u64;
            (self.hash_offset + page * hash::PAGE as u64 + (i % hash::SLOTS_PER_PAGE as u64) * 8)
                as usize
        };
        let mut i = hash::home(hash.h1, self.hash_slots);
        for _ in 0..64 {
            let slot = u64_at(m, slot_at(i)).unwrap_or(0);
            if slot == 0 { return 0; }
            if hash::tag_of(slot) == hash.tag {
                let (b, position) = hash::location(slot);
                let index_at = self.index_offset as usize + b * INDEX_ENTRY;
                let offset = u64_at(m, index_at).unwrap_or(0);
                return u64::from(u32_at(m, offset as usize + position as usize).unwrap_or(0)) | (1 << 40);
            }
            i += 1;
            if i == self.hash_slots { i = 0; }
        }
        0
    }
}
