//! A whole log directory with damaged files: build a small log on the simulated disk,
//! damage its segment and index files as the input says, reopen it, read everything,
//! seek, verify, append again and read again.
//!
//! Nothing may panic, and every record a reader returns must be one that was appended
//! with that seq, unless its frame was forged by the input: bytes the fuzzer wrote that
//! happen to carry a valid checksum (libFuzzer can learn a CRC from the comparison that
//! rejects it) are indistinguishable from data, so such a record is accepted only when
//! its frame overlaps a range the input overwrote.
//!
//! Input layout (missing bytes read as zero):
//! ```text
//! 0      flags: 1 power-loss image (recovery runs) instead of a second process opening
//!               the same disk, 2 sync before the power loss, 4 append after reopening,
//!               8 damage any file (reel.meta too), not only segments and indexes
//! 1      records to append (mod 121)
//! 2      value length base (x 3 bytes)
//! 3      batch size - 1 (mod 16)
//! 4      seed of values, keys, nonces, encodings and of the power-loss image
//! 5..7   seq a second reader starts at
//! 7..9   timestamp to seek to (in steps of a record)
//! then up to 8 operations, each: kind, file, offset (2 bytes), length, bytes
//!        kind % 4: 0 overwrite with the bytes, 1 xor one byte, 2 truncate, 3 remove
//! ```
#![no_main]

use libfuzzer_sys::fuzz_target;
use reel_log::storage::sim::SimStorage;
use reel_log::storage::{OpenMode, Storage};
use reel_log::{Config, Entry, Log, LogOptions, RecordRef, WhenFull, frame};
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DIR: &str = "/spool";
const TS0: i64 = 1_700_000_000_000_000;
const TS_STEP: i64 = 1000;

const POWER_LOSS: u8 = 1;
const SYNC: u8 = 2;
const APPEND_AGAIN: u8 = 4;
const ANY_FILE: u8 = 8;

/// Bounds a read loop: each step returns records or moves past damage, so a reader
/// that needs more steps than this is stuck.
const MAX_STEPS: usize = 100_000;

fuzz_target!(|data: &[u8]| {
    run(&mut Input(data));
});

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A record as appended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    ts: i64,
    key: Option<String>,
    nonce: Option<u128>,
    encoding: u8,
    value: Vec<u8>,
}

impl Owned {
    fn entry(&self) -> Entry<'_> {
        Entry {
            ts: Some(self.ts),
            key: self.key.as_deref(),
            nonce: self.nonce,
            encoding: self.encoding,
            value: &self.value,
        }
    }

    fn matches(&self, r: &RecordRef<'_>) -> bool {
        self.ts == r.ts
            && self.key.as_deref() == r.key
            && self.nonce == r.nonce
            && self.encoding == r.encoding
            && self.value == r.value
    }
}

fn make_record(i: u64, seed: u8, len_base: u8) -> Owned {
    let len = usize::from(len_base) * 3 + (i as usize * 37) % 64;
    let mix = i.wrapping_mul(0x9e37_79b9).wrapping_add(u64::from(seed));
    Owned {
        ts: TS0 + i as i64 * TS_STEP,
        key: (mix % 3 == 0).then(|| format!("key-{}", mix % 7)),
        nonce: (mix % 5 == 0).then(|| u128::from(mix) << 40 | u128::from(i)),
        encoding: (mix % 16) as u8,
        value: (0..len)
            .map(|j| (mix as usize).wrapping_mul(31).wrapping_add(j * 7) as u8)
            .collect(),
    }
}

/// Everything appended, by seq: a seq can be given twice when recovery cut records
/// and a later writer reused their seqs.
#[derive(Default)]
struct Appended {
    by_seq: HashMap<u64, Vec<Owned>>,
    count: u64,
}

impl Appended {
    fn append(&mut self, log: &Log, records: &[Owned]) -> reel_log::Result<Range<u64>> {
        let entries: Vec<Entry<'_>> = records.iter().map(Owned::entry).collect();
        let seqs = log.append(&entries)?;
        assert_eq!(seqs.end - seqs.start, records.len() as u64, "{seqs:?}");
        for (seq, r) in seqs.clone().zip(records) {
            self.by_seq.entry(seq).or_default().push(r.clone());
        }
        self.count += records.len() as u64;
        Ok(seqs)
    }
}

/// Byte ranges the input overwrote, per file.
#[derive(Default)]
struct Damaged(Vec<(PathBuf, Range<u64>)>);

fn small_config() -> Config {
    Config {
        capacity: 64 << 10,
        when_full: WhenFull::DropOldest,
        segment_size: 16 << 10,
        max_record_size: 8 << 10,
    }
}

fn run(input: &mut Input<'_>) {
    let flags = input.byte();
    let n = u64::from(input.byte()) % 121;
    let len_base = input.byte();
    let batch = usize::from(input.byte() % 16) + 1;
    let seed = input.byte();
    let second_from = input.u16();
    let seek_ts = TS0 + i64::from(input.u16()) * TS_STEP / 4;

    // A healthy log.
    let sim = SimStorage::new();
    let log = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .create(small_config())
        .open(DIR)
        .expect("create a log on an empty simulated disk");
    let mut appended = Appended::default();
    let records: Vec<Owned> = (0..n).map(|i| make_record(i, seed, len_base)).collect();
    for chunk in records.chunks(batch) {
        appended
            .append(&log, chunk)
            .expect("append to a healthy log");
    }
    if flags & SYNC != 0 {
        log.sync().expect("sync a healthy log");
    }
    drop(log);

    let disk = if flags & POWER_LOSS != 0 {
        sim.power_loss(u64::from(seed))
    } else {
        sim
    };

    // The damage.
    let mut damaged = Damaged::default();
    for _ in 0..8 {
        if input.is_empty() {
            break;
        }
        let kind = input.byte();
        let pick = input.byte();
        let offset = u64::from(input.u16());
        let len = usize::from(input.byte());
        let segments = Path::new(DIR).join("segments");
        let files: Vec<PathBuf> = disk
            .files()
            .into_iter()
            .filter(|p| flags & ANY_FILE != 0 || p.starts_with(&segments))
            .collect();
        if files.is_empty() {
            break;
        }
        let path = &files[usize::from(pick) % files.len()];
        let file_len = disk.file_len(path).unwrap_or(0);
        match kind % 4 {
            0 => {
                let at = offset % (file_len + 64);
                let bytes = input.bytes(len);
                disk.corrupt(path, at, bytes)
                    .expect("corrupt an existing file");
                damaged.0.push((path.clone(), at..at + bytes.len() as u64));
            }
            1 => {
                let at = offset % file_len.max(1);
                let f = disk.open(path, OpenMode::Read).expect("open");
                let mut b = [0u8];
                let _ = f.read_at(&mut b, at);
                let mask = if len == 0 { 0x80 } else { len as u8 };
                disk.corrupt(path, at, &[b[0] ^ mask]).expect("corrupt");
                damaged.0.push((path.clone(), at..at + 1));
            }
            2 => {
                let f = disk.open(path, OpenMode::ReadWrite).expect("open");
                f.set_len(offset % (file_len + 1)).expect("truncate");
            }
            _ => disk.remove_file(path).expect("remove"),
        }
    }

    // Reopen: as a second process on the same disk, or after the power cut (recovery).
    let Ok(log) = LogOptions::new().storage(Arc::new(disk.clone())).open(DIR) else {
        return;
    };
    if let Some(report) = log.recovery_report() {
        let _ = report.describe();
    }
    let ctx = Check {
        disk: &disk,
        damaged: &damaged,
    };
    ctx.read_all(&log, 0, &appended);
    ctx.read_all(
        &log,
        u64::from(second_from) % (log.next_seq() + 2),
        &appended,
    );
    if let Ok(seq) = log.seek_time(seek_ts) {
        assert!(seq <= log.next_seq(), "seek_time gave {seq} past the end");
        ctx.read_all(&log, seq, &appended);
    }
    let _ = log.floor_seq(u64::from(second_from));
    let _ = log.verify();
    let _ = log.segments();

    if flags & APPEND_AGAIN != 0 {
        let more: Vec<Owned> = (0..u64::from(seed % 8) + 1)
            .map(|i| make_record(1000 + appended.count + i, seed, len_base))
            .collect();
        if let Ok(seqs) = appended.append(&log, &more) {
            // The records just appended read back intact.
            let mut r = log.reader(seqs.start);
            if let Ok(b) = r.read_batch(more.len()) {
                for rec in b.iter() {
                    assert!(seqs.contains(&rec.seq), "{seqs:?} read back as {rec:?}");
                    let want = &more[(rec.seq - seqs.start) as usize];
                    assert!(want.matches(&rec), "{want:?} read back as {rec:?}");
                }
            }
        }
        ctx.read_all(&log, 0, &appended);
        let _ = log.verify();
    }
}

struct Check<'a> {
    disk: &'a SimStorage,
    damaged: &'a Damaged,
}

impl Check<'_> {
    /// Reads from `from` to the end, stepping over damage; checks every record.
    fn read_all(&self, log: &Log, from: u64, appended: &Appended) {
        let mut r = log.reader(from);
        let mut last: Option<u64> = None;
        for _ in 0..MAX_STEPS {
            let batch = match r.read_batch(64) {
                Ok(b) => b,
                Err(_) => match r.skip_damage() {
                    Ok(_) => continue,
                    Err(_) => return,
                },
            };
            if batch.is_empty() {
                return;
            }
            let committed = log.next_seq();
            for rec in batch.iter() {
                assert!(
                    rec.seq >= from,
                    "reader from {from} returned seq {}",
                    rec.seq
                );
                assert!(
                    last.is_none_or(|l| rec.seq > l),
                    "seq {} after seq {last:?}",
                    rec.seq
                );
                assert!(
                    rec.seq < committed,
                    "seq {} past the end {committed}",
                    rec.seq
                );
                last = Some(rec.seq);
                self.check_record(&rec, appended);
            }
        }
        panic!("reader from {from} still reading after {MAX_STEPS} steps (at {last:?})");
    }

    fn check_record(&self, rec: &RecordRef<'_>, appended: &Appended) {
        let known = appended
            .by_seq
            .get(&rec.seq)
            .is_some_and(|v| v.iter().any(|o| o.matches(rec)));
        if known || self.forged(rec) {
            return;
        }
        panic!(
            "returned a record that was never appended: {rec:?}; appended at that seq: {:?}",
            appended.by_seq.get(&rec.seq)
        );
    }

    /// True when the record's frame lies in a file where it overlaps bytes the input wrote.
    fn forged(&self, rec: &RecordRef<'_>) -> bool {
        let mut frame_bytes = Vec::new();
        frame::encode_record(&mut frame_bytes, rec.seq, rec.ts, &rec.as_entry());
        for (path, range) in &self.damaged.0 {
            let Ok(f) = self.disk.open(path, OpenMode::Read) else {
                continue;
            };
            let len = f.len().unwrap_or(0) as usize;
            let mut content = vec![0u8; len];
            let Ok(n) = f.read_full_at(&mut content, 0) else {
                continue;
            };
            content.truncate(n);
            let hit = content
                .windows(frame_bytes.len())
                .enumerate()
                .filter(|(_, w)| *w == frame_bytes.as_slice())
                .any(|(at, _)| {
                    let at = at as u64;
                    at < range.end && range.start < at + frame_bytes.len() as u64
                });
            if hit {
                return true;
            }
        }
        false
    }
}
