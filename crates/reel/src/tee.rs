//! Tee: copies every record of a source spool into destination spools, continuing as
//! records arrive, with no duplicate and no gap across restarts and crashes.
//!
//! The source is read through a named reader (so status shows the tee's progress and the
//! `reject` policy protects what it has not copied). Each destination holds a marker,
//! `tee/<source log id>-<reader>.pos`, saying which source seq comes next and where in
//! the destination the last copied batch ended. A batch is appended first and the marker
//! written after; if a crash falls in between, the restart finds the batch (or the prefix
//! of it that survived) in the destination by comparing records and moves the marker past
//! it instead of copying it again. Records keep their timestamp, key, nonce and value;
//! they get new seqs in each destination.

use crate::cursor::Reader;
use crate::cursor::slots::{PositionFile, SlotKind, SlotValue};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::spool::Spool;
use reel_log::{Entry, RecordRef};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How far back a restart looks in a destination for a batch it may have copied.
const RECOVERY_SCAN_LIMIT: u64 = 1_000_000;

/// A running tee.
#[derive(Debug)]
pub struct Tee {
    reader: Reader,
    targets: Vec<Target>,
    batch: usize,
}

#[derive(Debug)]
struct Target {
    spool: Spool,
    marker: PositionFile,
    src_next: u64,
    dst_next: u64,
}

fn same(a: &RecordRef<'_>, b: &RecordRef<'_>) -> bool {
    a.ts == b.ts
        && a.key == b.key
        && a.nonce == b.nonce
        && a.encoding == b.encoding
        && a.value == b.value
}

impl Tee {
    /// Prepares a tee from `src` (read as reader `reader_name`) into `dsts`, repairing
    /// the state a crashed earlier run left.
    pub fn new(src: &Spool, reader_name: &str, dsts: &[Spool]) -> Result<Tee> {
        // Checked before anything is written anywhere.
        for (i, dst) in dsts.iter().enumerate() {
            if dst.log().log_id() == src.log().log_id() {
                return Err(Error::InvalidArgument(format!(
                    "{} is the source spool itself",
                    dst.dir().display()
                )));
            }
            // The same spool twice would receive every record twice.
            if let Some(first) = dsts
                .iter()
                .take(i)
                .find(|d| d.log().log_id() == dst.log().log_id())
            {
                return Err(Error::InvalidArgument(format!(
                    "{} is given twice as a destination (also as {})",
                    dst.dir().display(),
                    first.dir().display()
                )));
            }
            // A kv or lists store takes no raw records: refused here, not after the
            // records were copied into the destinations before it.
            dst.check_raw_append()?;
            dst.log().check_appendable()?;
        }
        let reader = src.reader(reader_name)?;
        let src_id = format!("{:032x}-{reader_name}", src.log().log_id());
        let mut targets = Vec::new();
        for dst in dsts {
            let storage = dst.log().storage().clone();
            let dir = dst.dir().join("tee");
            storage
                .create_dir_all(&dir)
                .map_err(|e| reel_log::Error::io("create directory", &dir, e))?;
            let path = dir.join(format!("{src_id}.pos"));
            let (mut marker, value) =
                PositionFile::open(&*storage, &path, SlotKind::TeeMarker, true)?;
            let (mut src_next, mut dst_next) = match value {
                Some(v) => (v.a, v.b),
                None => (reader.position(), dst.next_seq()),
            };
            if dst.next_seq() > dst_next {
                (src_next, dst_next) = find_copied(src, src_next, dst, dst_next)?;
            }
            marker.write(
                SlotValue {
                    a: src_next,
                    b: dst_next,
                    updated: reel_log::now_micros(),
                },
                false,
            )?;
            targets.push(Target {
                spool: dst.clone(),
                marker,
                src_next,
                dst_next,
            });
        }
        Ok(Tee {
            reader,
            targets,
            batch: 4096,
        })
    }

    /// Copies one batch; with `wait`, waits that long for records when caught up.
    /// Returns how many source records were read.
    pub fn step(&mut self, wait: Option<Duration>, stop: &AtomicBool) -> Result<usize> {
        let start = self
            .targets
            .iter()
            .map(|t| t.src_next)
            .min()
            .unwrap_or(self.reader.position());
        if self.reader.position() != start {
            self.reader.seek(start);
        }
        let batch = self.reader.next_batch(self.batch, wait)?;
        if batch.is_empty() {
            return Ok(0);
        }
        for t in &mut self.targets {
            let todo: Vec<&Record> = batch.iter().filter(|r| r.seq >= t.src_next).collect();
            let Some(last) = todo.last() else { continue };
            let entries: Vec<Entry<'_>> = todo
                .iter()
                .map(|r| Entry {
                    ts: Some(r.ts),
                    key: r.key.as_deref(),
                    nonce: r.nonce,
                    encoding: r.value.encoding().tag(),
                    value: r.value.as_bytes(),
                })
                .collect();
            let range = loop {
                match t.spool.append_entries(&entries) {
                    Ok(r) => break r,
                    // A destination with the reject policy is full until its readers advance.
                    Err(Error::Log(reel_log::Error::Full { .. }))
                        if wait.is_some() && !stop.load(Ordering::Relaxed) =>
                    {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => return Err(e),
                }
            };
            t.src_next = last.seq + 1;
            t.dst_next = range.end;
            t.marker.write(
                SlotValue {
                    a: t.src_next,
                    b: t.dst_next,
                    updated: reel_log::now_micros(),
                },
                false,
            )?;
        }
        self.reader.commit()?;
        Ok(batch.len())
    }

    /// Copies until caught up (without `follow`) or until `stop` is set.
    pub fn run(&mut self, follow: bool, stop: &AtomicBool) -> Result<u64> {
        let mut total = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let wait = follow.then_some(Duration::from_millis(200));
            let n = self.step(wait, stop)?;
            total += n as u64;
            if n == 0 && !follow {
                break;
            }
        }
        Ok(total)
    }

    /// Records the source reader lost to retention before the tee copied them.
    pub fn lost(&self) -> u64 {
        self.reader.lost()
    }
}

/// After a crash between appending a batch and writing the marker: finds the copied
/// records in `dst` after `dst_next` and returns the corrected (source, destination)
/// positions.
fn find_copied(src: &Spool, src_next: u64, dst: &Spool, dst_next: u64) -> Result<(u64, u64)> {
    let Some(first) = src.get(src_next)? else {
        return Ok((src_next, dst.next_seq()));
    };
    let first_ref = first.as_ref();
    let end = dst.next_seq().min(dst_next + RECOVERY_SCAN_LIMIT);
    let mut start = None;
    for r in dst.iter(dst_next..end) {
        let r = r?;
        if same(&r.as_ref(), &first_ref) {
            start = Some(r.seq);
            break;
        }
    }
    let Some(d) = start else {
        return Ok((src_next, dst_next));
    };
    let (mut src_pos, mut dst_pos) = (src_next, d);
    let mut src_iter = src.iter(src_next..);
    for r in dst.iter(d..) {
        let r = r?;
        match src_iter.next().transpose()? {
            Some(s) if same(&r.as_ref(), &s.as_ref()) => {
                (src_pos, dst_pos) = (s.seq + 1, r.seq + 1)
            }
            _ => break,
        }
    }
    Ok((src_pos, dst_pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_given_twice_or_the_source_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let src = Spool::create(tmp.path().join("src")).unwrap();
        let dst = Spool::create(tmp.path().join("dst")).unwrap();
        let again = Spool::open(tmp.path().join("dst")).unwrap();
        let err = Tee::new(&src, "tee", &[dst.clone(), again]).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        let err = Tee::new(&src, "tee", &[dst, src.clone()]).unwrap_err();
        assert!(err.to_string().contains("source spool itself"), "{err}");
    }
}
