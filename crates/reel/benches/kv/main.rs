//! reel's kv store and keyed lists next to redb, fjall and LMDB (through heed), in one
//! run on one machine.
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
//!     them in one batch through the engine handle (`Spool::append_batch` refuses a kv
//!     store): exactly what `KvStore::set_batch` does.
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

mod fixtures;
mod lists;

use criterion::{Criterion, Throughput};
use criterion::{criterion_group, criterion_main};
use fixtures::*;
use lists::list;
use redb::ReadableDatabase;
use reel::kv::{KvStore, Path as KvPath};
use reel::{NewRecord, Value};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// One batch of kv writes, as `Spool::append_batch` would append it.
fn append_batch(kv: &KvStore, records: &[NewRecord]) -> std::ops::Range<u64> {
    let entries: Vec<reel::Entry<'_>> = records.iter().map(NewRecord::as_entry).collect();
    kv.spool().log().append(&entries).expect("append batch")
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
                    append_batch(&kv, &records)
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
                    append_batch(&kv, &records);
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
                timed(|| kv.spool().log().append(&entries).expect("append")).1
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
        append_time += timed(|| append_batch(&kv, &records)).1;
    }
    let (len, first_read) = timed(|| {
        kv.view()
            .read(|st| st.len())
            .expect("catch up")
            .expect("count")
    });
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
    let lmdb_dir = tmp.path().join("lmdb");
    std::fs::create_dir_all(&lmdb_dir).expect("mkdir");
    // SAFETY: the directory is this benchmark's own, opened once, by this process only.
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .map_size(4 << 30)
            .open(&lmdb_dir)
            .expect("open lmdb")
    };
    let (lmdb, t) = timed(|| {
        let mut wtxn = env.write_txn().expect("write txn");
        let db: heed::Database<heed::types::Str, heed::types::Bytes> =
            env.create_database(&mut wtxn, None).expect("create db");
        for (k, v) in data.keys.iter().zip(&data.values) {
            db.put(&mut wtxn, k, v).expect("put");
        }
        wtxn.commit().expect("commit");
        db
    });
    println!(
        "#   lmdb (heed) fill (one txn, synced at commit) {:.0} ms",
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
    g.bench_function("lmdb/get_in_read_txn", |b| {
        b.iter(|| {
            let rtxn = env.read_txn().expect("read txn");
            let mut sum = 0usize;
            for _ in 0..GETS {
                at = (at + 1) & 0xffff;
                sum += lmdb
                    .get(&rtxn, keys[at].as_str())
                    .expect("get")
                    .map_or(0, <[u8]>::len);
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
    drop(env);
    println!(
        "#   disk: reel {:.1} MiB (log + checkpoint), redb {:.1} MiB, fjall {:.1} MiB, lmdb {:.1} MiB",
        mib(dir_size(&reel_dir)),
        mib(dir_size(&redb_dir)),
        mib(dir_size(&fjall_dir)),
        mib(dir_size(&lmdb_dir)),
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

fn config() -> Criterion {
    Criterion::default()
}

criterion_group! {
    name = benches;
    config = config();
    targets = kv_read, kv_set, list
}
criterion_main!(benches);
