//! Power cuts between every two file-system operations of a named reader committing its
//! position.
//!
//! Ordering invariant of a commit (FORMAT.md §6, §11): generation g is written with one
//! 64-byte `pwrite` into slot g mod 2 (inside one sector, so it is never torn), leaving
//! the other slot with generation g-1; a durable commit then `fdatasync`s the file before
//! returning. The valid slot with the highest generation wins, so after a crash the
//! position is the one being committed or the one before it; without durable commits it
//! is some position the reader committed, never one it did not reach.
//!
//! Checked at every crash point, for a few seeds each: the reader reopened on the
//! recovered spool is at the old or the new position (durable commits) or at a position
//! it committed (plain commits), and delivers the record at that position next.
use reel::{Durability, Spool};
use reel_log::storage::Storage;
use reel_log::storage::sim::SimStorage;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

const DIR: &str = "/store";

fn spool_on(sim: &SimStorage) -> Spool {
    Spool::builder(DIR)
        .storage(Arc::new(sim.clone()))
        .capacity(1 << 20)
        .durability(Durability::Always)
        .open()
        .unwrap()
}

/// A spool of 40 records and a reader "r" that committed after the first record.
fn spool_with_a_reader(
    sim: &SimStorage,
    durable: bool,
    sync_readers_dir: bool,
) -> (Spool, reel::Reader) {
    let spool = spool_on(sim);
    for i in 0..40 {
        spool.append(json!(i)).unwrap();
    }
    let mut r = spool.reader("r").unwrap();
    r.set_durable_commits(durable);
    r.next().unwrap().unwrap();
    r.commit().unwrap();
    if sync_readers_dir {
        // Reader::open makes a new cursor durable, name included; syncing `readers/` once
        // more here keeps the loop about the commit itself.
        sim.sync_dir(&reel::cursor::readers_dir(Path::new(DIR)))
            .unwrap();
    }
    (spool, r)
}

/// Reads three records and commits, ten times; returns the position after each commit
/// and the operations done when it returned.
fn commits(sim: &SimStorage, r: &mut reel::Reader) -> Vec<(u64, u64)> {
    (0..10)
        .map(|_| {
            r.next_batch(3, None).unwrap();
            r.commit().unwrap();
            (sim.op_count(), r.position())
        })
        .collect()
}

/// Cuts the power before every operation of `commits` and checks the reopened reader's
/// position: one of `allowed(positions committed so far, position being committed)`.
fn power_cut_everywhere(durable: bool, sync_readers_dir: bool, include_setup: bool) {
    let probe = SimStorage::new();
    let (_spool, mut r) = spool_with_a_reader(&probe, durable, sync_readers_dir);
    let setup_ops = probe.op_count();
    let start = if include_setup { 0 } else { setup_ops };
    let first = r.position();
    let done = commits(&probe, &mut r);
    let ops = probe.op_count() - start;
    drop(r);
    for k in 1..=ops {
        for seed in [k, k * 7919 + 3, k * 104_729 + 11] {
            let sim = SimStorage::new();
            if include_setup {
                sim.capture_at_op(k, seed);
            }
            let (spool, mut r) = spool_with_a_reader(&sim, durable, sync_readers_dir);
            if !include_setup {
                sim.capture_at_op(k, seed);
            }
            commits(&sim, &mut r);
            std::mem::forget(r); // a dead process commits nothing on the way out
            drop(spool);
            let image = sim.captured().unwrap();
            let context = format!("crash before {} seed {seed}", sim.captured_op().unwrap());
            let crash_at = start + k;
            // Positions committed before the crash (a reader that never committed starts
            // at the oldest record, 0), and the one being committed.
            let mut committed = vec![0];
            if crash_at > setup_ops {
                committed.push(first);
            }
            committed.extend(done.iter().filter(|(o, _)| *o < crash_at).map(|(_, p)| *p));
            let in_flight = if crash_at <= setup_ops {
                Some(first)
            } else {
                done.iter().find(|(o, _)| *o >= crash_at).map(|(_, p)| *p)
            };
            let spool = match Spool::builder(DIR)
                .storage(Arc::new(image))
                .create(false)
                .open()
            {
                Ok(s) => s,
                Err(reel::Error::Log(reel_log::Error::NotALog { .. })) => {
                    assert!(include_setup, "{context}: the log vanished");
                    continue;
                }
                Err(e) => panic!("{context}: reopen: {e}"),
            };
            let mut r = spool.reader("r").unwrap();
            let at = r.position();
            let last = *committed.last().unwrap();
            let ok = if durable {
                at == last || Some(at) == in_flight
            } else {
                committed.contains(&at) || Some(at) == in_flight
            };
            assert!(
                ok,
                "{context}: reader at {at}; committed {committed:?}, committing {in_flight:?}"
            );
            let next = r.next().unwrap().map(|rec| rec.seq);
            let expect = (at < spool.next_seq()).then_some(at);
            assert_eq!(next, expect, "{context}: the next record delivered");
        }
    }
}

#[test]
fn a_durable_commit_leaves_the_old_or_the_new_position_after_a_power_cut_between_any_two_operations()
 {
    power_cut_everywhere(true, true, false);
}

#[test]
fn a_plain_commit_leaves_a_committed_position_after_a_power_cut_between_any_two_operations() {
    power_cut_everywhere(false, true, false);
}

#[test]
fn a_durable_commit_of_a_new_reader_survives_a_power_cut_between_any_two_operations() {
    power_cut_everywhere(true, false, true);
}
