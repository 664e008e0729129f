//! reel's kv store and keyed lists next to redb and fjall, in one run on one machine.
//!
//! Run with `cargo bench -p reel --bench kv` (about five minutes on two cores);
//! `-- --test` runs each benchmark once on small fixtures (10k keys instead of 1M).
//!
//! Keys are kv paths of 20 bytes (`app.user0000042.name`, already canonical text), values
//! 10 raw bytes. Writes go to each engine in one shuffled order, the same for all.
//!
//! Durability: reel's default `none` writes to the page cache before returning (survives
//! a process crash, not a power cut). redb is measured with `Durability::None` (no fsync;
//! not even a process crash keeps such a commit until a later durable one) and with its
//! default `Durability::Immediate` (fsync at commit). fjall's batches and inserts flush
//! its journal to the OS at commit (`PersistMode::Buffer`, its default): the page cache.
//!
//! - `kv_set_1M/*`: N keys into an empty store, each iteration on a fresh directory.
//!   - `reel/append_batch`: builds N `NewRecord`s (key = canonical path text) and appends
//!     them with one `Spool::append_batch`: exactly what a batched kv set is.
//!   - `reel/append_batch+catch_up`: the same, then one `get_with`, which makes the kv
//!     view apply the N records (and write the checkpoint that is then due): the cost
//!     of having the values readable, which redb and fjall pay inside their writes.
//!   - `reel/append_entries`: borrowed engine entries, no copy (the fastest path).
//!   - `redb/one_txn_{none,immediate}`: one write transaction inserting N keys, commit;
//!     `redb/one_txn_none_sorted` inserts them in key order instead.
//!   - `fjall/one_batch`: one write batch of N keys, commit.
//! - `kv_set_one/*`: one key per call (`KvStore::set`, one redb write transaction with
//!   `Durability::None` per key, `PartitionHandle::insert`), 100k keys per iteration.
//! - `kv_get/*`: random point reads on a store of 1M keys, 1000 per iteration:
//!   `KvStore::get_with` (no copy), `KvStore::get` (clones the entry), redb gets in one
//!   read transaction per 1000, fjall gets; `*_2_threads` splits them over two threads.
//!   `std/{btreemap,hashmap}_get` do the same lookups in plain maps of the same data:
//!   the floor under the kv view (a `BTreeMap`), and what a hash index would give.
//! - `kv_open_1M/*`: opening a store of 1M keys and reading one key (reel loads the
//!   kv view's checkpoint).
//! - `list/*`: a page of 100 items from a random offset of a 100k-item list
//!   (`ListStore::read`, values decoded to JSON); redb and fjall read 100 consecutive
//!   u64 keys holding the same MessagePack values and decode them the same way.
//!   `reel/read_record_at_x100_raw` is the part of a page spent reading its 100 records
//!   (`Log::read_record_at`, one read each), without decoding them; `redb/range_100_raw`
//!   is redb's range without decoding (the difference to `redb/range_100` is the cost
//!   of decoding 100 values to JSON, which every engine's page pays).
//!   `list/nonce_duplicate_*` appends an item whose nonce is a duplicate, to a list of
//!   100 and one of 100k items: the check must not depend on the list's length.
//!
//! Also printed, as lines starting with `#`: resident memory per kv key (from
//! `/proc/self/statm`, before and after filling 1M keys and reading once), the time of
//! that first read (the view applies 1M records and checkpoints), of one explicit
//! checkpoint, and the disk use of each engine.

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};
use criterion::{criterion_group, criterion_main};
use redb::{ReadableDatabase, TableDefinition};
use reel::kv::{KvStore, Path as KvPath};
use reel::list::{ListStore, NewItem, PageRequest, Start};
use reel::{Encoding, Entry, NewRecord, Value};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const LIST: TableDefinition<u64, &[u8]> = TableDefinition::new("list");

/// Gets per measured iteration.
const GETS: usize = 1000;
/// Items per list page.
const PAGE: usize = 100;

/// Fixture sizes: the real ones, or small ones under `--test`.
#[derive(Clone, Copy)]
struct Sizes {
    /// Keys written per batched set iteration and held by the get/open fixtures.
    keys: usize,
    /// Keys written one at a time per iteration.
    single: usize,
    /// Items in the big list.
    list: usize,
}

fn sizes() -> Sizes {
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
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A 20-byte canonical kv path.
fn key(i: usize) -> String {
    format!("app.user{i:07}.name")
}

/// A 10-byte value.
fn value(i: usize) -> Vec<u8> {
    format!("val{i:07}").into_bytes()
}

/// Keys and values `0..n` in one shuffled order.
struct Data {
    keys: Vec<String>,
    values: Vec<Vec<u8>>,
}

impl Data {
    fn shuffled(n: usize) -> Data {
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

    fn records(&self) -> Vec<NewRecord> {
        self.keys
            .iter()
            .zip(&self.values)
            .map(|(k, v)| NewRecord::new(Value::bytes(v.clone())).key(k.clone()))
            .collect()
    }

    fn entries(&self) -> Vec<Entry<'_>> {
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
fn statm() -> (u64, u64) {
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

fn dir_size(p: &Path) -> u64 {
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

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn redb_create(p: &Path) -> redb::Database {
    redb::Database::create(p.join("redb")).expect("create redb")
}

fn redb_fill(db: &redb::Database, data: &Data, durability: redb::Durability) {
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

fn fjall_open(p: &Path) -> (fjall::Keyspace, fjall::PartitionHandle) {
    let ks = fjall::Config::new(p.join("fjall"))
        .open()
        .expect("open fjall");
    let part = ks
        .open_partition("kv", fjall::PartitionCreateOptions::default())
        .expect("open partition");
    (ks, part)
}

fn fjall_fill(ks: &fjall::Keyspace, part: &fjall::PartitionHandle, data: &Data) {
    let mut batch = ks.batch();
    for (k, v) in data.keys.iter().zip(&data.values) {
        batch.insert(part, k.as_str(), v.as_slice());
    }
    batch.commit().expect("commit batch");
}

/// Runs `f` once per iteration on a fresh directory; `f` returns the time to count.
fn on_fresh_dirs(iters: u64, mut f: impl FnMut(&Path) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let tmp = tempfile::tempdir().expect("tempdir");
        total += f(tmp.path());
    }
    total
}

fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

/// Groups whose iterations take a second or more: ten iterations in all.
fn slow_group<'a>(
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

fn kv_set(c: &mut Criterion) {
    let s = sizes();
    let data = Data::shuffled(s.keys);
    let mut g = slow_group(c, &format!("kv_set_{}", label(s.keys)), s.keys);

    g.bench_function("reel/append_batch", |b| {
        b.iter_custom(|iters| {
            on_fresh_dirs(iters, |p| {
                let kv = KvStore::open(p).expect("open kv");
                let (_, t) = timed(|| {
                    let records = data.records();
                    kv.spool().append_batch(&records).expect("append batch")
                });
                t
            })
        })
    });
    g.bench_function("reel/append_batch+catch_up", |b| {
        b.iter_custom(|iters| {
            on_fresh_dirs(iters, |p| {
                let kv = KvStore::open(p).expect("open kv");
                let (_, t) = timed(|| {
                    let records = data.records();
                    kv.spool().append_batch(&records).expect("append batch");
                    kv.get_with(&data.keys[0], |e| e.is_some()).expect("get")
                });
                t
            })
        })
    });
    let entries = data.entries();
    g.bench_function("reel/append_entries", |b| {
        b.iter_custom(|iters| {
            on_fresh_dirs(iters, |p| {
                let kv = KvStore::open(p).expect("open kv");
                timed(|| kv.spool().append_entries(&entries).expect("append")).1
            })
        })
    });
    drop(entries);
    g.bench_function("redb/one_txn_none", |b| {
        b.iter_custom(|iters| {
            on_fresh_dirs(iters, |p| {
                let db = redb_create(p);
                timed(|| redb_fill(&db, &data, redb::Durability::None)).1
            })
        })
    });
    g.bench_function("redb/one_txn_immediate", |b| {
        b.iter_custom(|iters| {
            on_fresh_dirs(iters, |p| {
                let db = redb_create(p);
                timed(|| redb_fill(&db, &data, redb::Durability::Immediate)).1
            })
        })
    });
    let sorted = Data {
        keys: (0..s.keys).map(key).collect(),
        values: (0..s.keys).map(value).collect(),
    };
    g.bench_function("redb/one_txn_none_sorted", |b| {
        b.iter_custom(|iters| {
            on_fresh_dirs(iters, |p| {
                let db = redb_create(p);
                timed(|| redb_fill(&db, &sorted, redb::Durability::None)).1
            })
        })
    });
    drop(sorted);
    g.bench_function("fjall/one_batch", |b| {
        b.iter_custom(|iters| {
            on_fresh_dirs(iters, |p| {
                let (ks, part) = fjall_open(p);
                timed(|| fjall_fill(&ks, &part, &data)).1
            })
        })
    });
    g.finish();

    // One key per call.
    let n = s.single;
    let paths: Vec<KvPath> = data.keys[..n]
        .iter()
        .map(|k| k.parse().expect("path"))
        .collect();
    let values: Vec<Value> = data.values[..n]
        .iter()
        .map(|v| Value::bytes(v.clone()))
        .collect();
    let mut g = slow_group(c, "kv_set_one", n);
    g.bench_function("reel/set", |b| {
        b.iter_custom(|iters| {
            on_fresh_dirs(iters, |p| {
                let kv = KvStore::open(p).expect("open kv");
                timed(|| {
                    for (path, v) in paths.iter().zip(&values) {
                        kv.set(path, v.clone()).expect("set");
                    }
                })
                .1
            })
        })
    });
    g.bench_function("redb/txn_per_key_none", |b| {
        b.iter_custom(|iters| {
            on_fresh_dirs(iters, |p| {
                let db = redb_create(p);
                timed(|| {
                    for (k, v) in data.keys[..n].iter().zip(&data.values) {
                        let mut tx = db.begin_write().expect("begin write");
                        tx.set_durability(redb::Durability::None)
                            .expect("durability");
                        tx.open_table(KV)
                            .expect("open table")
                            .insert(k.as_str(), v.as_slice())
                            .expect("insert");
                        tx.commit().expect("commit");
                    }
                })
                .1
            })
        })
    });
    g.bench_function("fjall/insert", |b| {
        b.iter_custom(|iters| {
            on_fresh_dirs(iters, |p| {
                let (_ks, part) = fjall_open(p);
                timed(|| {
                    for (k, v) in data.keys[..n].iter().zip(&data.values) {
                        part.insert(k.as_str(), v.as_slice()).expect("insert");
                    }
                })
                .1
            })
        })
    });
    g.finish();
}

fn label(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Memory per key, gets and open time, on one store of `keys` keys per engine.
fn kv_read(c: &mut Criterion) {
    let s = sizes();
    let data = Data::shuffled(s.keys);
    let tmp = tempfile::tempdir().expect("tempdir");
    let reel_dir = tmp.path().join("reel");

    // Memory first, while the process holds nothing else of note. The records are built
    // and appended 10k at a time so that their buffers are reused, not counted.
    let kv = KvStore::open(&reel_dir).expect("open kv");
    let (rss0, shared0) = statm();
    let mut append_time = Duration::ZERO;
    for chunk in data.keys.chunks(10_000).zip(data.values.chunks(10_000)) {
        let records: Vec<NewRecord> = chunk
            .0
            .iter()
            .zip(chunk.1)
            .map(|(k, v)| NewRecord::new(Value::bytes(v.clone())).key(k.clone()))
            .collect();
        append_time += timed(|| kv.spool().append_batch(&records).expect("append")).1;
    }
    let (len, first_read) = timed(|| kv.view().read(|st| st.len()).expect("catch up"));
    assert_eq!(len, s.keys);
    let (rss1, shared1) = statm();
    let (_, checkpoint) = timed(|| kv.view().checkpoint().expect("checkpoint"));
    let n = s.keys as f64;
    println!(
        "# reel kv, {} keys of {} B paths and {} B values:",
        s.keys,
        data.keys[0].len(),
        data.values[0].len()
    );
    println!(
        "#   RSS +{:.1} MiB = {:.0} B/key; anonymous (heap: the kv view) +{:.1} MiB = {:.0} B/key; \
         file-backed (mapped log pages) +{:.1} MiB = {:.0} B/key",
        mib(rss1 - rss0),
        (rss1 - rss0) as f64 / n,
        mib((rss1 - shared1).saturating_sub(rss0 - shared0)),
        (rss1 - shared1).saturating_sub(rss0 - shared0) as f64 / n,
        mib(shared1.saturating_sub(shared0)),
        shared1.saturating_sub(shared0) as f64 / n,
    );
    println!(
        "#   append_batch in 10k chunks {:.0} ms ({:.2} M/s); first read (view applies all, \
         writes the checkpoint then due) {:.0} ms; explicit checkpoint {:.0} ms",
        append_time.as_secs_f64() * 1e3,
        n / append_time.as_secs_f64() / 1e6,
        first_read.as_secs_f64() * 1e3,
        checkpoint.as_secs_f64() * 1e3,
    );

    let redb_dir = tmp.path().join("redb");
    std::fs::create_dir_all(&redb_dir).expect("mkdir");
    let db = redb_create(&redb_dir);
    let (_, t) = timed(|| redb_fill(&db, &data, redb::Durability::Immediate));
    println!(
        "#   redb fill (one txn, immediate) {:.0} ms",
        t.as_secs_f64() * 1e3
    );
    let fjall_dir = tmp.path().join("fjall");
    let (ks, part) = fjall_open(&fjall_dir);
    let (_, t) = timed(|| {
        for chunk in data.keys.chunks(10_000).zip(data.values.chunks(10_000)) {
            let mut batch = ks.batch();
            for (k, v) in chunk.0.iter().zip(chunk.1) {
                batch.insert(&part, k.as_str(), v.as_slice());
            }
            batch.commit().expect("commit");
        }
    });
    println!(
        "#   fjall fill (10k batches) {:.0} ms",
        t.as_secs_f64() * 1e3
    );

    // Let fjall's background flushes and compactions finish before anything is measured.
    let quiet = Instant::now();
    while ks.active_compactions() > 0 && quiet.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }

    // The same random keys for every engine, laid out in order of use.
    let mut rng = Rng(42);
    let keys: Vec<String> = (0..1 << 16)
        .map(|_| data.keys[rng.below(s.keys)].clone())
        .collect();
    let pick_paths: Vec<KvPath> = keys.iter().map(|k| k.parse().expect("path")).collect();
    assert_eq!(pick_paths[0].to_string(), keys[0]);
    // What the same lookups cost in plain in-memory maps of the same data: the floor
    // under the view's `BTreeMap`, and what a hash index would give.
    let btree: std::collections::BTreeMap<String, Vec<u8>> = data
        .keys
        .iter()
        .cloned()
        .zip(data.values.iter().cloned())
        .collect();
    let hash: std::collections::HashMap<String, Vec<u8>> = btree.clone().into_iter().collect();

    let mut g = c.benchmark_group(format!("kv_get_{}", label(s.keys)));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(GETS as u64));
    let mut at = 0usize;
    g.bench_function("reel/get_with", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for _ in 0..GETS {
                at = (at + 1) & 0xffff;
                sum += kv
                    .get_with(&keys[at], |e| e.map_or(0, |e| e.bytes.len()))
                    .expect("get");
            }
            assert_eq!(sum, GETS * 10);
            sum
        })
    });
    g.bench_function("reel/get_cloned", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for _ in 0..GETS {
                at = (at + 1) & 0xffff;
                sum += kv
                    .get(&pick_paths[at])
                    .expect("get")
                    .map_or(0, |e| e.bytes.len());
            }
            sum
        })
    });
    g.bench_function("redb/get_in_read_txn", |b| {
        b.iter(|| {
            let tx = db.begin_read().expect("begin read");
            let t = tx.open_table(KV).expect("open table");
            let mut sum = 0usize;
            for _ in 0..GETS {
                at = (at + 1) & 0xffff;
                sum += t
                    .get(keys[at].as_str())
                    .expect("get")
                    .map_or(0, |v| v.value().len());
            }
            assert_eq!(sum, GETS * 10);
            sum
        })
    });
    g.bench_function("std/btreemap_get", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for _ in 0..GETS {
                at = (at + 1) & 0xffff;
                sum += btree.get(keys[at].as_str()).map_or(0, Vec::len);
            }
            assert_eq!(sum, GETS * 10);
            sum
        })
    });
    g.bench_function("std/hashmap_get", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for _ in 0..GETS {
                at = (at + 1) & 0xffff;
                sum += hash.get(keys[at].as_str()).map_or(0, Vec::len);
            }
            assert_eq!(sum, GETS * 10);
            sum
        })
    });
    g.bench_function("fjall/get", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for _ in 0..GETS {
                at = (at + 1) & 0xffff;
                sum += part
                    .get(keys[at].as_str())
                    .expect("get")
                    .map_or(0, |v| v.len());
            }
            assert_eq!(sum, GETS * 10);
            sum
        })
    });
    // Two threads, each doing half of every iteration's gets.
    fn two_threads(iters: u64, f: impl Fn(usize, u64) -> usize + Sync) -> Duration {
        let t = Instant::now();
        let sum: usize = std::thread::scope(|sc| {
            let f = &f;
            let hs: Vec<_> = (0..2)
                .map(|id| sc.spawn(move || f(id * 0x8000, iters * GETS as u64 / 2)))
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).sum()
        });
        let elapsed = t.elapsed();
        black_box(sum);
        elapsed
    }
    g.bench_function("reel/get_with_2_threads", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |start, n| {
                let mut sum = 0;
                for j in 0..n as usize {
                    let k = &keys[(start + j) & 0xffff];
                    sum += kv
                        .get_with(k, |e| e.map_or(0, |e| e.bytes.len()))
                        .expect("get");
                }
                sum
            })
        })
    });
    g.bench_function("redb/get_2_threads", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |start, n| {
                let tx = db.begin_read().expect("begin read");
                let t = tx.open_table(KV).expect("open table");
                let mut sum = 0;
                for j in 0..n as usize {
                    let k = &keys[(start + j) & 0xffff];
                    sum += t
                        .get(k.as_str())
                        .expect("get")
                        .map_or(0, |v| v.value().len());
                }
                sum
            })
        })
    });
    g.bench_function("fjall/get_2_threads", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |start, n| {
                let mut sum = 0;
                for j in 0..n as usize {
                    let k = &keys[(start + j) & 0xffff];
                    sum += part.get(k.as_str()).expect("get").map_or(0, |v| v.len());
                }
                sum
            })
        })
    });
    g.finish();
    drop(btree);
    drop(hash);

    // Open + first get, after a clean close.
    drop(kv);
    drop(db);
    drop(part);
    drop(ks);
    println!(
        "#   disk: reel {:.1} MiB (log + checkpoint), redb {:.1} MiB, fjall {:.1} MiB",
        mib(dir_size(&reel_dir)),
        mib(dir_size(&redb_dir)),
        mib(dir_size(&fjall_dir)),
    );
    let probe = &data.keys[s.keys / 2];
    let mut g = slow_group(c, &format!("kv_open_{}", label(s.keys)), 1);
    g.bench_function("reel/open+get", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (kv, t) = timed(|| {
                    let kv = KvStore::open(&reel_dir).expect("open kv");
                    assert!(kv.get_with(probe, |e| e.is_some()).expect("get"));
                    kv
                });
                total += t;
                drop(kv);
            }
            total
        })
    });
    g.bench_function("redb/open+get", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (db, t) = timed(|| {
                    let db = redb::Database::open(redb_dir.join("redb")).expect("open redb");
                    {
                        let tx = db.begin_read().expect("begin read");
                        let t = tx.open_table(KV).expect("open table");
                        assert!(t.get(probe.as_str()).expect("get").is_some());
                    }
                    db
                });
                total += t;
                drop(db);
            }
            total
        })
    });
    g.bench_function("fjall/open+get", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (ks, t) = timed(|| {
                    let (ks, part) = fjall_open(&fjall_dir);
                    assert!(part.get(probe.as_str()).expect("get").is_some());
                    ks
                });
                total += t;
                drop(ks);
            }
            total
        })
    });
    g.finish();
}

fn list_value(i: usize) -> serde_json::Value {
    serde_json::json!({"n": i, "event": "login", "ok": i.is_multiple_of(3)})
}

fn list(c: &mut Criterion) {
    let s = sizes();
    let tmp = tempfile::tempdir().expect("tempdir");
    let lists = ListStore::open(tmp.path().join("reel")).expect("open lists");
    let item = |i: usize| NewItem {
        value: list_value(i),
        nonce: Some(i as u128 + 1),
        ts: None,
    };
    for start in (0..s.list).step_by(1000) {
        let items: Vec<NewItem> = (start..(start + 1000).min(s.list)).map(item).collect();
        lists.append("events", &items).expect("append");
    }
    let small: Vec<NewItem> = (0..100).map(item).collect();
    lists.append("small", &small).expect("append");
    let db = redb_create(tmp.path());
    let (ks, part) = fjall_open(tmp.path());
    {
        let tx = db.begin_write().expect("begin write");
        {
            let mut t = tx.open_table(LIST).expect("open table");
            for i in 0..s.list {
                let v = Value::json(&list_value(i));
                t.insert(i as u64, v.as_bytes()).expect("insert");
            }
        }
        tx.commit().expect("commit");
        let mut batch = ks.batch();
        for i in 0..s.list {
            let v = Value::json(&list_value(i));
            batch.insert(&part, (i as u64).to_be_bytes(), v.as_bytes());
        }
        batch.commit().expect("commit");
    }

    let mut rng = Rng(9);
    let mut offset = move || rng.below(s.list - PAGE) as u64;
    let mut g = c.benchmark_group(format!("list_{}", label(s.list)));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("reel/page_100", |b| {
        b.iter(|| {
            let o = offset();
            let req = PageRequest {
                limit: Some(PAGE),
                start: Start::Offset(o),
                ..Default::default()
            };
            let page = lists.read("events", &req).expect("read");
            assert_eq!(page.items.len(), PAGE);
            assert_eq!(page.items[0].offset, o);
            page
        })
    });
    // Where a page's time goes: the 100 direct record reads alone, without decoding.
    let metas = lists
        .view()
        .read(|idx| idx.get("events").map(|l| l.items.clone()))
        .expect("index")
        .expect("list");
    g.bench_function("reel/read_record_at_x100_raw", |b| {
        b.iter(|| {
            let o = offset() as usize;
            let mut bytes = 0;
            for m in &metas[o..o + PAGE] {
                bytes += lists
                    .spool()
                    .log()
                    .read_record_at(m.pos, m.seq, |r| r.value.len())
                    .expect("read")
                    .expect("record");
            }
            bytes
        })
    });
    g.bench_function("redb/range_100", |b| {
        b.iter(|| {
            let o = offset();
            let tx = db.begin_read().expect("begin read");
            let t = tx.open_table(LIST).expect("open table");
            let items: Vec<(u64, serde_json::Value)> = t
                .range(o..)
                .expect("range")
                .take(PAGE)
                .map(|r| {
                    let (k, v) = r.expect("item");
                    let j = reel::json_of(Encoding::MsgPack, v.value()).expect("decode");
                    (k.value(), j)
                })
                .collect();
            assert_eq!(items.len(), PAGE);
            items
        })
    });
    g.bench_function("redb/range_100_raw", |b| {
        b.iter(|| {
            let o = offset();
            let tx = db.begin_read().expect("begin read");
            let t = tx.open_table(LIST).expect("open table");
            let bytes: usize = t
                .range(o..)
                .expect("range")
                .take(PAGE)
                .map(|r| r.expect("item").1.value().len())
                .sum();
            bytes
        })
    });
    g.bench_function("fjall/range_100", |b| {
        b.iter(|| {
            let o = offset();
            let items: Vec<(u64, serde_json::Value)> = part
                .range(o.to_be_bytes()..)
                .take(PAGE)
                .map(|r| {
                    let (k, v) = r.expect("item");
                    let k = u64::from_be_bytes(k[..].try_into().expect("u64 key"));
                    (k, reel::json_of(Encoding::MsgPack, &v).expect("decode"))
                })
                .collect();
            assert_eq!(items.len(), PAGE);
            items
        })
    });
    for (name, key, last) in [
        ("reel/nonce_duplicate_100", "small", 100usize),
        ("reel/nonce_duplicate_big", "events", s.list),
    ] {
        let dup = [item(last - 1)];
        g.bench_function(name, |b| {
            b.iter(|| {
                let r = lists.append(key, &dup).expect("append");
                assert_eq!((r.appended, r.duplicates), (0, 1));
                r
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
}

criterion_group! {
    name = benches;
    config = config();
    targets = kv_read, kv_set, list
}
criterion_main!(benches);
