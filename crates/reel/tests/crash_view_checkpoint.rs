//! Power cuts between every two file-system operations of a workload that appends and
//! checkpoints a view.
//!
//! Ordering invariant of a checkpoint (FORMAT.md §15): the whole checkpoint is written
//! to `checkpoint.tmp.<pid>` and synced *before* it is renamed over `checkpoint`, and the
//! directory is synced before `checkpoint()` returns. So the file named `checkpoint` is
//! always a complete one, either the previous or the new, and its state is exactly the
//! view applied to every record below its `applied_to` (its "since"), all of which were
//! durable before it was written.
//!
//! Checked at every crash point, for a few seeds each: the checkpoint on disk is absent
//! only if none was completed, never damaged, and is the last completed one or the one
//! being written; its state equals the view applied to the recovered log below its
//! `applied_to`; and the view opened on the recovered store and caught up equals the view
//! applied to the whole recovered log.
use reel::view::{Checkpoint, View, ViewHandle};
use reel::{Durability, RecordRef, Spool};
use reel_log::storage::Storage;
use reel_log::storage::sim::SimStorage;
use serde_json::json;
use std::sync::Arc;

const DIR: &str = "/store";
const NAME: &str = "digest";

/// How many records were applied and a hash of their seqs and values, in order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Digest {
    count: u64,
    hash: u64,
}

impl Digest {
    fn add(&mut self, seq: u64, value: &[u8]) {
        self.count += 1;
        for b in seq.to_le_bytes().iter().chain(value) {
            self.hash = (self.hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn of(records: &[(u64, Vec<u8>)]) -> Digest {
        let mut d = Digest::default();
        for (seq, v) in records {
            d.add(*seq, v);
        }
        d
    }
}

impl View for Digest {
    fn name(&self) -> &str {
        NAME
    }
    fn version(&self) -> u32 {
        1
    }
    fn apply(&mut self, r: &RecordRef<'_>) -> reel::Result<()> {
        self.add(r.seq, r.value);
        Ok(())
    }
    fn reset(&mut self) {
        *self = Digest::default();
    }
    fn save(&self) -> reel::Result<Vec<u8>> {
        Ok([self.count.to_le_bytes(), self.hash.to_le_bytes()].concat())
    }
    fn load(&mut self, b: &[u8]) -> reel::Result<()> {
        let bad = || reel::Error::Decode("bad digest".into());
        self.count = u64::from_le_bytes(b.get(..8).ok_or_else(bad)?.try_into().unwrap());
        self.hash = u64::from_le_bytes(b.get(8..16).ok_or_else(bad)?.try_into().unwrap());
        Ok(())
    }
}

/// A checkpoint the workload completed: operations done when it returned, its since.
struct Done {
    ops: u64,
    applied_to: u64,
}

/// Creates a store, then appends (durability `always`) and checkpoints six times.
fn workload(sim: &SimStorage) -> Vec<Done> {
    let spool = Spool::builder(DIR)
        .storage(Arc::new(sim.clone()))
        .capacity(1 << 20)
        .durability(Durability::Always)
        .open()
        .unwrap();
    let view = ViewHandle::open(&spool, Digest::default()).unwrap();
    let mut done = Vec::new();
    for round in 0..6u64 {
        for n in 0..=round % 3 {
            spool.append(json!({ "round": round, "n": n })).unwrap();
        }
        if round % 2 == 0 {
            // Caught up by a read; otherwise the checkpoint catches up itself.
            view.read(|_| ()).unwrap();
        }
        view.checkpoint().unwrap();
        done.push(Done {
            ops: sim.op_count(),
            applied_to: view.applied_to(),
        });
    }
    done
}

fn records(spool: &Spool) -> Vec<(u64, Vec<u8>)> {
    spool
        .iter(..)
        .map(|r| {
            let r = r.unwrap();
            (r.seq, r.value.as_bytes().to_vec())
        })
        .collect()
}

#[test]
fn a_view_checkpoint_is_consistent_with_its_since_after_a_power_cut_between_any_two_operations() {
    let probe = SimStorage::new();
    let all = workload(&probe);
    let total = probe.op_count();
    let sinces: Vec<u64> = all.iter().map(|d| d.applied_to).collect();
    assert!(sinces.windows(2).all(|w| w[0] < w[1]), "{sinces:?}");
    let mut restored = 0;
    for k in 1..=total {
        for seed in [k, k * 7919 + 3, k * 104_729 + 11] {
            let sim = SimStorage::new();
            sim.capture_at_op(k, seed);
            workload(&sim);
            let image = sim.captured().unwrap();
            let context = format!("crash before {} seed {seed}", sim.captured_op().unwrap());
            let completed = all.iter().filter(|d| d.ops < k).count();
            let spool = match Spool::builder(DIR)
                .storage(Arc::new(image.clone()))
                .create(false)
                .open()
            {
                Ok(s) => s,
                Err(reel::Error::Log(reel_log::Error::NotALog { .. })) if completed == 0 => {
                    continue;
                }
                Err(e) => panic!("{context}: reopen: {e}"),
            };
            let log = records(&spool);
            let path = reel::view::checkpoint::checkpoint_path(spool.dir(), NAME);
            let cp = Checkpoint::read(&image, spool.dir(), NAME).unwrap();
            match &cp {
                None => {
                    assert!(!image.exists(&path), "{context}: a damaged checkpoint");
                    assert_eq!(completed, 0, "{context}: a completed checkpoint is gone");
                }
                Some(cp) => {
                    // The last completed one, or the one in flight.
                    let allowed =
                        &sinces[completed.saturating_sub(1)..(completed + 1).min(sinces.len())];
                    assert!(
                        allowed.contains(&cp.applied_to),
                        "{context}: checkpoint since {} is neither of {allowed:?}",
                        cp.applied_to
                    );
                    let mut state = Digest::default();
                    state.load(&cp.state).unwrap();
                    let below: Vec<_> = log
                        .iter()
                        .filter(|(s, _)| *s < cp.applied_to)
                        .cloned()
                        .collect();
                    assert_eq!(
                        state,
                        Digest::of(&below),
                        "{context}: checkpoint state is not the view of the records below {}",
                        cp.applied_to
                    );
                    restored += 1;
                }
            }
            let view = ViewHandle::open(&spool, Digest::default()).unwrap();
            assert_eq!(
                view.read(|d| *d).unwrap(),
                Digest::of(&log),
                "{context}: the view caught up from its checkpoint"
            );
        }
    }
    assert!(
        restored > 0,
        "some crash points left a checkpoint to restore"
    );
}
