//! The tier against `object_store`'s in-memory store: uploads, caches, fencing, damage.
//! (The same paths against a real S3 server run in reel-cli's `tier_cli` tests.)

use object_store::memory::InMemory;
use reel_log::{Config, Entry, Log, LogOptions, StoreKind};
use reel_tier::reader::sync_cache;
use reel_tier::writer::TierWriter;
use reel_tier::{Error, Tier, TierUrl};
use std::path::Path;
use std::sync::Arc;

fn url() -> TierUrl {
    "s3://bucket/stores/ev".parse().unwrap()
}

fn tier(store: &Arc<InMemory>) -> Tier {
    Tier::with_store(url(), store.clone()).unwrap()
}

fn new_log(dir: &Path) -> Log {
    LogOptions::new()
        .create(Config::with_capacity(
            64 << 20,
            reel_log::WhenFull::DropOldest,
        ))
        .kind(StoreKind::Spool)
        .open(dir)
        .unwrap()
}

fn append(log: &Log, from: u64, n: u64) {
    let values: Vec<String> = (from..from + n).map(|i| format!("value {i}")).collect();
    let entries: Vec<Entry<'_>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Entry {
            ts: Some(1_000 + i as i64),
            key: Some("k"),
            nonce: None,
            encoding: 0,
            value: v.as_bytes(),
        })
        .collect();
    log.append(&entries).unwrap();
}

/// Every record of `log` as (seq, ts, key, value).
fn records(log: &Log) -> Vec<(u64, i64, Option<String>, Vec<u8>)> {
    let mut r = log.reader(0);
    let mut out = Vec::new();
    loop {
        let b = r.read_batch(1000).unwrap();
        if b.is_empty() {
            return out;
        }
        b.for_each(|x| out.push((x.seq, x.ts, x.key.map(str::to_string), x.value.to_vec())));
    }
}

#[test]
fn uploads_reach_a_cache_with_the_same_records() {
    let store = Arc::new(InMemory::new());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let log = new_log(&dir);
    let w = TierWriter::create(tier(&store), &dir, &log, 2000, None).unwrap();
    append(&log, 0, 500);
    let up = w.upload(&log).unwrap();
    assert_eq!((up.seqs.clone(), up.objects), (0..500, 1));
    assert_eq!(
        w.upload(&log).unwrap().objects,
        0,
        "nothing new, nothing uploaded"
    );
    append(&log, 500, 10);
    assert_eq!(w.upload(&log).unwrap().seqs, 500..510);

    let cache = tmp.path().join("cache");
    assert_eq!(sync_cache(&tier(&store), &cache).unwrap(), 510);
    let copy = LogOptions::new().read_only(true).open(&cache).unwrap();
    assert_eq!(records(&copy), records(&log));
    assert_eq!(copy.kind(), StoreKind::Spool);
    // Incremental: only what is new is fetched and appended.
    append(&log, 510, 5);
    w.upload(&log).unwrap();
    assert_eq!(sync_cache(&tier(&store), &cache).unwrap(), 515);
    // The cache is a follower: local writers are refused.
    let c = Log::open(&cache).unwrap();
    assert!(matches!(
        c.append(&[Entry {
            ts: None,
            key: None,
            nonce: None,
            encoding: 0,
            value: b"x"
        }]),
        Err(reel_log::Error::Follower { .. })
    ));
}

#[test]
fn a_new_writer_continues_the_store_and_fences_the_old_one() {
    let store = Arc::new(InMemory::new());
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    let a_log = new_log(&a_dir);
    let a = TierWriter::create(tier(&store), &a_dir, &a_log, 2000, None).unwrap();
    append(&a_log, 0, 100);
    a.upload(&a_log).unwrap();
    append(&a_log, 100, 7); // appended, never uploaded

    let b_log = new_log(&b_dir);
    let m = tier(&store).require_manifest().unwrap().manifest;
    let (b, _) = TierWriter::continue_store(tier(&store), &b_dir, &b_log, &m, 2000, None).unwrap();
    assert_eq!(
        b_log.next_seq(),
        100,
        "B recovered what object storage held"
    );
    assert_eq!(records(&b_log), records(&a_log)[..100].to_vec());

    let err = a.upload(&a_log).unwrap_err();
    assert!(matches!(err, Error::Fenced { epoch: 2, .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&b_dir.file_name().unwrap().to_string_lossy().to_string()),
        "{text}"
    );

    append(&b_log, 100, 3);
    assert_eq!(b.upload(&b_log).unwrap().seqs, 100..103);
    let cache = tmp.path().join("cache");
    sync_cache(&tier(&store), &cache).unwrap();
    let copy = LogOptions::new().read_only(true).open(&cache).unwrap();
    assert_eq!(records(&copy), records(&b_log), "dense, B's history only");
}

#[test]
fn a_fenced_writers_late_object_is_an_orphan_that_is_cleaned() {
    let store = Arc::new(InMemory::new());
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    let a_log = new_log(&a_dir);
    let a_tier = tier(&store);
    let a = TierWriter::create(a_tier, &a_dir, &a_log, 2000, None).unwrap();
    append(&a_log, 0, 10);
    a.upload(&a_log).unwrap();
    let b_log = new_log(&b_dir);
    let m = tier(&store).require_manifest().unwrap().manifest;
    let (b, _) = TierWriter::continue_store(tier(&store), &b_dir, &b_log, &m, 2000, None).unwrap();
    // A writes a data object of its old epoch after B claimed (its manifest put fails).
    a.tier()
        .put_object(&reel_tier::writer::object_name(10, 11, 1), b"late".to_vec())
        .unwrap();
    assert_eq!(b.clean_orphans().unwrap(), 1);
    assert_eq!(tier(&store).list("data").unwrap().len(), 1);
}

#[test]
fn damage_is_refused_never_read() {
    let store = Arc::new(InMemory::new());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let log = new_log(&dir);
    let w = TierWriter::create(tier(&store), &dir, &log, 2000, None).unwrap();
    append(&log, 0, 50);
    w.upload(&log).unwrap();
    let t = tier(&store);
    let m = t.require_manifest().unwrap().manifest;
    let name = m.objects[0].name.clone();
    // A flipped byte in the data object: the cache refuses it.
    let mut bytes = t.get_object(&name).unwrap();
    bytes[40] ^= 1;
    t.delete(&name).unwrap();
    t.put_object(&name, bytes).unwrap();
    let err = sync_cache(&t, &tmp.path().join("cache")).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    // A damaged manifest: refused by its checksum.
    t.put_small(
        "manifest.json",
        b"{\"format\":\"reel-tier-manifest\"}".to_vec(),
    )
    .unwrap();
    assert!(matches!(t.manifest().unwrap_err(), Error::Corrupt { .. }));
    // No store at all.
    let empty = Tier::with_store("s3://bucket/nothing".parse().unwrap(), store.clone()).unwrap();
    assert!(matches!(
        sync_cache(&empty, &tmp.path().join("c2")).unwrap_err(),
        Error::NoStore { .. }
    ));
}

#[test]
fn small_objects_are_merged_without_a_gap_or_a_duplicate() {
    let store = Arc::new(InMemory::new());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let log = new_log(&dir);
    let w = TierWriter::create(tier(&store), &dir, &log, 2000, None).unwrap();
    let n = reel_tier::writer::MERGE_MIN_OBJECTS as u64 + 4;
    for i in 0..n {
        append(&log, i * 3, 3);
        w.upload(&log).unwrap();
    }
    let cache = tmp.path().join("cache");
    // A cache that read part of the store before the merge.
    sync_cache(&tier(&store), &cache).unwrap();
    let before = tier(&store)
        .require_manifest()
        .unwrap()
        .manifest
        .objects
        .len();
    assert_eq!(before, n as usize);
    let merged = w.merge_small().unwrap();
    assert_eq!((merged.replaced, merged.written), (n as usize, 1));
    let t = tier(&store);
    assert_eq!(t.require_manifest().unwrap().manifest.objects.len(), 1);
    assert_eq!(
        t.list("data").unwrap().len(),
        1,
        "the replaced objects are deleted"
    );
    append(&log, n * 3, 5);
    w.upload(&log).unwrap();
    assert_eq!(sync_cache(&t, &cache).unwrap(), n * 3 + 5);
    let fresh = tmp.path().join("fresh");
    sync_cache(&t, &fresh).unwrap();
    for c in [&cache, &fresh] {
        let copy = LogOptions::new().read_only(true).open(c).unwrap();
        assert_eq!(records(&copy), records(&log));
    }
    assert_eq!(
        w.merge_small().unwrap().replaced,
        0,
        "nothing small enough left to merge"
    );
}

#[test]
fn durability_object_waits_for_one_upload_per_interval() {
    use reel_tier::committer::Committer;
    use std::time::Duration;
    let store = Arc::new(InMemory::new());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let log = new_log(&dir);
    let w = TierWriter::create(tier(&store), &dir, &log, 2000, None).unwrap();
    let c = Committer::start(w, log.clone(), Duration::from_millis(100)).unwrap();
    std::thread::scope(|s| {
        for t in 0..32 {
            let (log, c, store) = (&log, &c, &store);
            s.spawn(move || {
                for i in 0..5 {
                    let v = format!("{t}-{i}");
                    let seq = log
                        .append(&[Entry {
                            ts: None,
                            key: None,
                            nonce: None,
                            encoding: 0,
                            value: v.as_bytes(),
                        }])
                        .unwrap()
                        .start;
                    c.wait_durable(seq, Duration::from_secs(10)).unwrap();
                    // Durable means: a manifest names an object holding it.
                    let m = tier(store).require_manifest().unwrap().manifest;
                    assert!(m.next_seq > seq);
                }
            });
        }
    });
    let m = tier(&store).require_manifest().unwrap().manifest;
    assert_eq!(m.next_seq, 160);
    assert!(
        m.objects.len() < 40,
        "group commit: {} objects for 160 appends",
        m.objects.len()
    );
    drop(c);
    // Once another directory continues the store, the first is fenced.
    let b_dir = tmp.path().join("b");
    let b_log = new_log(&b_dir);
    let (_b, _) = TierWriter::continue_store(tier(&store), &b_dir, &b_log, &m, 2000, None).unwrap();
    let w2 = TierWriter::with_tier(
        tier(&store),
        reel_tier::TierConfig::read(&dir).unwrap().unwrap(),
        &dir,
    );
    assert!(w2.check().is_err());
}

#[test]
fn retention_drops_the_oldest_objects_and_copies_continue_after_them() {
    let store = Arc::new(InMemory::new());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let log = new_log(&dir);
    let w = TierWriter::create(tier(&store), &dir, &log, 2000, None).unwrap();
    append(&log, 0, 10);
    w.upload(&log).unwrap();
    let behind = tmp.path().join("behind");
    sync_cache(&tier(&store), &behind).unwrap();
    for i in 1..5 {
        append(&log, i * 10, 10);
        w.upload(&log).unwrap();
    }
    // Keep the newest two objects' worth.
    let objs = tier(&store).require_manifest().unwrap().manifest.objects;
    let keep: u64 = objs[3].bytes + objs[4].bytes;
    let mut config = reel_tier::TierConfig::read(&dir).unwrap().unwrap();
    config.object_retention = Some(format!("{keep}"));
    let w = TierWriter::with_tier(tier(&store), config, &dir);
    assert_eq!(w.apply_retention().unwrap(), 3);
    let m = tier(&store).require_manifest().unwrap().manifest;
    assert_eq!((m.objects.len(), m.objects[0].first), (2, 30));
    assert_eq!(
        tier(&store).list("data").unwrap().len(),
        2,
        "dropped objects deleted"
    );
    // A new copy starts at the oldest seq kept; one that was behind skips the gap.
    for c in [tmp.path().join("fresh"), behind] {
        assert_eq!(sync_cache(&tier(&store), &c).unwrap(), 50);
        let copy = LogOptions::new().read_only(true).open(&c).unwrap();
        let got = records(&copy);
        let want: Vec<_> = records(&log).into_iter().filter(|r| r.0 >= 30).collect();
        assert_eq!(
            got.iter()
                .filter(|r| r.0 >= 30)
                .cloned()
                .collect::<Vec<_>>(),
            want
        );
        assert!(
            got.iter().all(|r| r.0 < 10 || r.0 >= 30),
            "nothing of the dropped range"
        );
    }
    assert!(reel_tier::writer::Retention::parse("30d").is_ok());
    assert!(reel_tier::writer::Retention::parse("lots").is_err());
}

/// A cache of a store that was deleted and created again at the same URL was continued
/// with the new store's records after the old one's: a read printed both, exit 0.
#[test]
fn a_cache_of_an_earlier_store_at_the_same_url_is_copied_again() {
    let store = Arc::new(InMemory::new());
    let tmp = tempfile::tempdir().unwrap();
    let old_dir = tmp.path().join("old");
    let old = new_log(&old_dir);
    let w = TierWriter::create(tier(&store), &old_dir, &old, 2000, None).unwrap();
    append(&old, 0, 3);
    w.upload(&old).unwrap();
    let cache = tmp.path().join("cache");
    assert_eq!(sync_cache(&tier(&store), &cache).unwrap(), 3);
    // The store is deleted and another created at the same URL.
    let fresh_store = Arc::new(InMemory::new());
    let new_dir = tmp.path().join("new");
    let new = new_log(&new_dir);
    let w = TierWriter::create(tier(&fresh_store), &new_dir, &new, 2000, None).unwrap();
    append(&new, 100, 5);
    w.upload(&new).unwrap();
    assert_eq!(sync_cache(&tier(&fresh_store), &cache).unwrap(), 5);
    let copy = LogOptions::new().read_only(true).open(&cache).unwrap();
    assert_eq!(records(&copy), records(&new));
}

/// Objects hold up to 64 MiB of records, and a copy appended each as one batch: a
/// store whose capacity is below an object's size could not be read or continued.
#[test]
fn a_copy_of_a_store_smaller_than_its_objects_takes_them_in_batches() {
    let store = Arc::new(InMemory::new());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let log = LogOptions::new()
        .create(Config::with_capacity(
            256 << 10,
            reel_log::WhenFull::DropOldest,
        ))
        .kind(StoreKind::Spool)
        .open(&dir)
        .unwrap();
    let w = TierWriter::create(tier(&store), &dir, &log, 2000, None).unwrap();
    let big = vec![b'x'; 2000];
    for _ in 0..20 {
        let entries: Vec<Entry<'_>> = (0..10)
            .map(|_| Entry {
                ts: None,
                key: None,
                nonce: None,
                encoding: 0,
                value: &big,
            })
            .collect();
        log.append(&entries).unwrap();
        w.upload(&log).unwrap();
    }
    w.maintain().unwrap();
    let cache = tmp.path().join("cache");
    assert_eq!(sync_cache(&tier(&store), &cache).unwrap(), 200);
}

/// Object retention on a kv store dropped the objects holding its oldest live values.
#[test]
fn object_retention_never_drops_a_kv_stores_values() {
    let store = Arc::new(InMemory::new());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let log = LogOptions::new()
        .create(Config::with_capacity(64 << 20, reel_log::WhenFull::Compact))
        .kind(StoreKind::Kv(reel_log::KvPathSyntax::DistKv))
        .open(&dir)
        .unwrap();
    let w = TierWriter::create(tier(&store), &dir, &log, 2000, Some("1".into())).unwrap();
    for i in 0..5 {
        append(&log, i * 10, 10);
        w.upload(&log).unwrap();
    }
    assert_eq!(w.apply_retention().unwrap(), 0);
    let m = tier(&store).require_manifest().unwrap().manifest;
    assert_eq!(m.objects[0].first, 0);
}

/// A takeover that stopped half-way (killed, or here a damaged object) left a store of
/// its own that took writes at seqs the store already has, never uploaded.
#[test]
fn a_takeover_that_did_not_finish_leaves_a_directory_that_refuses_writes() {
    let store = Arc::new(InMemory::new());
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    let a_log = new_log(&a_dir);
    let a = TierWriter::create(tier(&store), &a_dir, &a_log, 2000, None).unwrap();
    for i in 0..3 {
        append(&a_log, i * 10, 10);
        a.upload(&a_log).unwrap();
    }
    let t = tier(&store);
    let m = t.require_manifest().unwrap().manifest;
    let last = m.objects.last().unwrap().name.clone();
    let mut bytes = t.get_object(&last).unwrap();
    bytes[40] ^= 1;
    t.delete(&last).unwrap();
    t.put_object(&last, bytes).unwrap();
    let b_log = new_log(&b_dir);
    let Err(err) = TierWriter::continue_store(tier(&store), &b_dir, &b_log, &m, 2000, None) else {
        panic!("the damaged object stops the copy");
    };
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    drop(b_log);
    let again = Log::open(&b_dir).unwrap();
    let refused = again.append(&[Entry {
        ts: None,
        key: None,
        nonce: None,
        encoding: 0,
        value: b"x",
    }]);
    assert!(
        matches!(refused, Err(reel_log::Error::Follower { .. })),
        "{refused:?}"
    );
}
