//! Data, engines and timing helpers shared by the kv benchmark groups.
#![allow(dead_code)]

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};
use redb::TableDefinition;
use reel::{Encoding, Entry, NewRecord, Value};
use std::path::Path;
use std::time::{Duration, Instant};

pub const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
pub const LIST: TableDefinition<u64, &[u8]> = TableDefinition::new("list");

/// Gets per measured iteration.
pub const GETS: usize = 1000;
/// Items per list page.
pub const PAGE: usize = 100;

/// Fixture sizes: the real ones, or small ones under `--test`.
#[derive(Clone, Copy)]
pub struct Sizes {
    /// Keys written per batched set iteration and held by the get/open fixtures.
    pub keys: usize,
    /// Keys written one at a time per iteration.
    pub single: usize,
    /// Items in the big list.
    pub list: usize,
}

pub fn sizes() -> Sizes {
    if std::env::args().any(|a| a == "--test") {
        Sizes {
            keys: 10_000,
            single: 1_000,
            list: 1_000,
        }
    } else {
        Sizes {
            keys: 1_000_000,
            single: 100_000,
            list: 100_000,
        }
    }
}

/// splitmix64: a small deterministic generator (no extra dependency).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A 20-byte canonical kv path.
pub fn key(i: usize) -> String {
    format!("app.user{i:07}.name")
}

/// A 10-byte value.
pub fn value(i: usize) -> Vec<u8> {
    format!("val{i:07}").into_bytes()
}

/// Keys and values `0..n` in one shuffled order.
pub struct Data {
    pub keys: Vec<String>,
    pub values: Vec<Vec<u8>>,
}

impl Data {
    pub fn shuffled(n: usize) -> Data {
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = Rng(7);
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        Data {
            keys: order.iter().map(|&i| key(i)).collect(),
            values: order.iter().map(|&i| value(i)).collect(),
        }
    }

    pub fn records(&self) -> Vec<NewRecord> {
        self.keys
            .iter()
            .zip(&self.values)
            .map(|(k, v)| NewRecord::new(Value::bytes(v.clone())).key(k.clone()))
            .collect()
    }

    pub fn entries(&self) -> Vec<Entry<'_>> {
        self.keys
            .iter()
            .zip(&self.values)
            .map(|(k, v)| Entry {
                key: Some(k),
                encoding: Encoding::Bytes.tag(),
                value: v,
                ..Default::default()
            })
            .collect()
    }
}

/// (resident, file-backed + shared) bytes of this process, from `/proc/self/statm`.
pub fn statm() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let f: Vec<u64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let page = 4096;
    (
        f.get(1).copied().unwrap_or(0) * page,
        f.get(2).copied().unwrap_or(0) * page,
    )
}

pub fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            // Allocated blocks: reel's segments are sparse files.
            Ok(m) => std::os::unix::fs::MetadataExt::blocks(&m) * 512,
            Err(_) => 0,
        })
        .sum()
}

pub fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

pub fn redb_create(p: &Path) -> redb::Database {
    redb::Database::create(p.join("redb")).expect("create redb")
}

pub fn redb_fill(db: &redb::Database, data: &Data, durability: redb::Durability) {
    let mut tx = db.begin_write().expect("begin write");
    tx.set_durability(durability).expect("durability");
    {
        let mut t = tx.open_table(KV).expect("open table");
        for (k, v) in data.keys.iter().zip(&data.values) {
            t.insert(k.as_str(), v.as_slice()).expect("insert");
        }
    }
    tx.commit().expect("commit");
}

pub fn fjall_open(p: &Path) -> (fjall::Keyspace, fjall::PartitionHandle) {
    let ks = fjall::Config::new(p.join("fjall"))
        .open()
        .expect("open fjall");
    let part = ks
        .open_partition("kv", fjall::PartitionCreateOptions::default())
        .expect("open partition");
    (ks, part)
}

pub fn fjall_fill(ks: &fjall::Keyspace, part: &fjall::PartitionHandle, data: &Data) {
    let mut batch = ks.batch();
    for (k, v) in data.keys.iter().zip(&data.values) {
        batch.insert(part, k.as_str(), v.as_slice());
    }
    batch.commit().expect("commit batch");
}

/// Runs `f` once per iteration on a fresh directory; `f` returns the time to count.
pub fn on_fresh_dirs(iters: u64, mut f: impl FnMut(&Path) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let tmp = tempfile::tempdir().expect("tempdir");
        total += f(tmp.path());
    }
    total
}

pub fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

/// Groups whose iterations take a second or more: ten iterations in all.
pub fn slow_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    elements: usize,
) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(elements as u64));
    g
}

pub fn label(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}
