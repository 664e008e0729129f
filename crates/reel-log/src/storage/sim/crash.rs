//! The images a crash leaves behind: after a power cut, the durable state plus a seeded
//! choice of the unsynced pages and directory journal prefixes; after a process crash,
//! the page cache and the shared memory as they were.

use super::{Inode, PendingOp, SECTOR, SimState, SimStorage, write_into};
use crate::storage::HeapRegion;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

impl SimState {
    pub(super) fn power_loss_image(&self, seed: u64) -> SimStorage {
        let mut rng = Rng::new(seed);
        // Directory entries: durable ones plus a prefix of each directory's journal.
        let mut names = self.durable_names.clone();
        for journal in self.journals.values() {
            let keep = rng.below(journal.len() as u64 + 1) as usize;
            for op in &journal[..keep] {
                op.apply(&mut names);
            }
        }
        // File data: durable bytes plus some of the unsynced writes, in order.
        let live: BTreeSet<u64> = names.values().copied().collect();
        let mut inodes = HashMap::new();
        for ino in live {
            let Some(old) = self.inodes.get(&ino) else {
                continue;
            };
            let data = if old.pending.is_empty() {
                old.durable.clone()
            } else {
                persist_pages(old, &mut rng)
            };
            inodes.insert(
                ino,
                Inode {
                    durable: data.clone(),
                    data,
                    pending: Vec::new(),
                },
            );
        }
        SimStorage::from_state(SimState {
            inodes,
            durable_names: names.clone(),
            names,
            dirs: self.dirs.clone(),
            boot: self.boot + 1,
            next_ino: self.next_ino,
            ..Default::default()
        })
    }

    pub(super) fn process_crash_image(&self) -> SimStorage {
        let regions = self
            .regions
            .iter()
            .map(|(p, r)| {
                let words = r
                    .words
                    .iter()
                    .map(|w| AtomicU64::new(w.load(Ordering::SeqCst)))
                    .collect();
                (p.clone(), Arc::new(HeapRegion { words }))
            })
            .collect();
        SimStorage::from_state(SimState {
            inodes: self.inodes.clone(),
            names: self.names.clone(),
            durable_names: self.durable_names.clone(),
            journals: self.journals.clone(),
            dirs: self.dirs.clone(),
            regions,
            boot: self.boot,
            next_ino: self.next_ino,
            ..Default::default()
        })
    }
}

/// Bytes of a page, the unit the page cache writes back.
const PAGE: usize = 4096;

/// What reaches the disk of a file's unsynced changes. The page cache writes back whole
/// pages, each with the content it had at some moment: so for every page dirtied since
/// the last `sync_data`, the image holds the page as it was before the first of those
/// writes (not written back), or after one of them, possibly torn after a prefix of its
/// 512-byte sectors. The file's length is its durable length or the length after one of
/// the changes (size updates are metadata, committed independently of the data); bytes
/// past the durable length that no written-back page covers read as zeros.
fn persist_pages(inode: &Inode, rng: &mut Rng) -> Vec<u8> {
    let mut cur = inode.durable.clone();
    let mut lens = vec![cur.len()];
    // Page index -> its content after each write that touched it, in order.
    let mut versions: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
    for op in &inode.pending {
        match op {
            PendingOp::SetLen(len) => cur.resize(*len as usize, 0),
            PendingOp::Write { offset, bytes } => {
                write_into(&mut cur, *offset, bytes);
                if !bytes.is_empty() {
                    let first = *offset as usize / PAGE;
                    let last = (*offset as usize + bytes.len() - 1) / PAGE;
                    for page in first..=last {
                        let start = page * PAGE;
                        let end = (start + PAGE).min(cur.len());
                        versions
                            .entry(page)
                            .or_default()
                            .push(cur[start..end].to_vec());
                    }
                }
            }
        }
        lens.push(cur.len());
    }
    let len = lens[rng.below(lens.len() as u64) as usize];
    let mut out = inode.durable.clone();
    out.resize(len, 0);
    for (page, contents) in versions {
        let pick = rng.below(contents.len() as u64 + 1) as usize;
        let Some(content) = pick.checked_sub(1).map(|i| &contents[i]) else {
            continue;
        };
        let start = page * PAGE;
        let sectors = if rng.below(3) == 0 {
            rng.below((PAGE as u64) / SECTOR) as usize
        } else {
            PAGE / SECTOR as usize
        };
        let upto = (sectors * SECTOR as usize).min(content.len());
        let end = (start + upto).min(len);
        if start < end {
            out[start..end].copy_from_slice(&content[..end - start]);
        }
    }
    out
}

/// xorshift64* seeded through splitmix64: deterministic choices for reproducible images.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }
}
