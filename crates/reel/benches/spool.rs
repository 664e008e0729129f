//! Throughput of the embedded API on ~100-byte MessagePack dictionaries, next to the raw
//! limit of the same disk.
//!
//! Run with `cargo bench -p reel --bench spool`; `-- --test` runs each benchmark once.
//!
//! - `append/batch_1000`: [`Spool::append_entries`] with 1000 records per call.
//! - `append/one_per_call`: one record per call.
//! - `append/raw_limit_1000`: frames of the same size, each with its CRC32C, copied into a
//!   1 MiB buffer that is written to a plain file in the same directory whenever it
//!   fills. That is the work an append cannot avoid, without reel's locking, index,
//!   segment rolling or publishing; the batched append is measured against it.
//! - `read/read_with`: a named reader visiting records in place with `Reader::read_with`,
//!   1000 at a time, from a spool already holding the records.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reel::{Durability, Entry, Spool, Value};
use std::fs::File;
use std::hint::black_box;
use std::io::{Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Records per batched append, per raw-limit step and per read step.
const BATCH: usize = 1000;
/// Approximate size of each encoded value.
const VALUE_SIZE: usize = 100;
/// Distinct values cycled through.
const DISTINCT: usize = 1000;
/// Capacity of the append spools: small enough that drop-oldest keeps the disk use
/// bounded during a run, so the figures include rolling and deleting segments.
const APPEND_CAPACITY: u64 = 64 << 20;
/// Bytes the raw-limit file may reach before it starts over (like retention does).
const RAW_FILE_LIMIT: u64 = APPEND_CAPACITY;
/// Records in the spool the read benchmark reads over and over.
const READ_RECORDS: usize = 100_000;
/// The raw limit's write buffer.
const RAW_BUFFER: usize = 1 << 20;
/// Bytes of a frame header (see `reel_log::frame`).
const FRAME_HEADER: usize = 28;

/// `DISTINCT` MessagePack dictionaries of about `VALUE_SIZE` bytes with varying content.
fn sample_values() -> Vec<Value> {
    (0..DISTINCT)
        .map(|i| {
            let mut v = serde_json::json!({
                "id": i,
                "user": format!("user{}", i % 977),
                "day": "Wed",
                "temp": (i % 40) as i64,
                "ok": i % 3 == 0,
            });
            let base = Value::json(&v).as_bytes().len();
            v["pad"] = serde_json::Value::String("x".repeat(VALUE_SIZE.saturating_sub(base + 6)));
            Value::json(&v)
        })
        .collect()
}

fn entries(values: &[Value]) -> Vec<Entry<'_>> {
    values
        .iter()
        .map(|v| Entry {
            encoding: v.encoding().tag(),
            value: v.as_bytes(),
            ..Default::default()
        })
        .collect()
}

fn open_spool(dir: &Path, capacity: u64) -> Spool {
    Spool::builder(dir)
        .capacity(capacity)
        .durability(Durability::None)
        .open()
        .expect("open spool")
}

/// Appends records like reel's frames (header, then value, CRC32C over all but the CRC)
/// into a 1 MiB buffer written to `file` whenever the next frame would not fit.
struct RawWriter {
    file: File,
    buf: Vec<u8>,
    written: u64,
    seq: u64,
}

impl RawWriter {
    fn create(path: &Path) -> RawWriter {
        RawWriter {
            file: File::create(path).expect("create raw file"),
            buf: Vec::with_capacity(RAW_BUFFER),
            written: 0,
            seq: 0,
        }
    }

    fn append(&mut self, value: &[u8]) {
        let len = FRAME_HEADER + value.len();
        if self.buf.len() + len > RAW_BUFFER {
            self.flush();
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(&(len as u32).to_le_bytes());
        self.buf.extend_from_slice(&[1, 1 << 4, 0, 0]);
        self.buf.extend_from_slice(&self.seq.to_le_bytes());
        self.buf.extend_from_slice(&(self.seq as i64).to_le_bytes());
        self.buf.extend_from_slice(value);
        let crc = crc32c::crc32c(&self.buf[start + 4..]);
        self.buf[start..start + 4].copy_from_slice(&crc.to_le_bytes());
        self.seq += 1;
    }

    fn flush(&mut self) {
        self.file.write_all(&self.buf).expect("write raw file");
        self.written += self.buf.len() as u64;
        self.buf.clear();
        if self.written >= RAW_FILE_LIMIT {
            self.file.set_len(0).expect("truncate raw file");
            self.file.rewind().expect("rewind raw file");
            self.written = 0;
        }
    }
}

fn append(c: &mut Criterion) {
    let values = sample_values();
    let entries = entries(&values);
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("append");

    group.throughput(Throughput::Elements(BATCH as u64));
    let spool = open_spool(&tmp.path().join("batched"), APPEND_CAPACITY);
    group.bench_function("batch_1000", |b| {
        b.iter(|| spool.append_entries(black_box(&entries)).expect("append"));
    });
    drop(spool);

    let mut raw = RawWriter::create(&tmp.path().join("raw.bin"));
    group.bench_function("raw_limit_1000", |b| {
        b.iter(|| {
            for v in &values {
                raw.append(black_box(v.as_bytes()));
            }
        });
    });
    drop(raw);

    group.throughput(Throughput::Elements(1));
    let spool = open_spool(&tmp.path().join("single"), APPEND_CAPACITY);
    let mut i = 0;
    group.bench_function("one_per_call", |b| {
        b.iter(|| {
            i = (i + 1) % entries.len();
            spool
                .append_entries(black_box(&entries[i..i + 1]))
                .expect("append")
        });
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let values = sample_values();
    let entries = entries(&values);
    let tmp = tempfile::tempdir().expect("tempdir");
    let spool = open_spool(tmp.path(), 256 << 20);
    for _ in 0..READ_RECORDS / BATCH {
        spool.append_entries(&entries).expect("fill spool");
    }
    assert_eq!(spool.next_seq(), READ_RECORDS as u64);
    let mut reader = spool.reader("bench").expect("open reader");

    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("read_with", |b| {
        // Exactly BATCH records per iteration, starting over at the end of the spool.
        b.iter_custom(|iters| {
            let want = iters * BATCH as u64;
            let mut bytes = 0usize;
            let start = Instant::now();
            let mut got = 0;
            while got < want {
                let max = (want - got).min(BATCH as u64) as usize;
                let n = reader
                    .read_with(max, |r| bytes += r.value.len())
                    .expect("read");
                if n == 0 {
                    reader.rewind();
                }
                got += n as u64;
            }
            let elapsed = start.elapsed();
            black_box(bytes);
            elapsed
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(15)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = append, read
}
criterion_main!(benches);
