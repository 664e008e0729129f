//! Store kinds: fixed at creation, refused as another kind, retention safe for each kind,
//! stores created before kinds adopted when they fit; creation never in a foreign
//! directory and never leaving half a store behind.
use reel::kv::{KvStore, Path};
use reel::list::{ListStore, NewItem, PageRequest};
use reel::{Error, KvPathSyntax, NewRecord, Spool, StoreKind, WhenFull};
use reel_log::storage::sim::SimStorage;
use reel_log::storage::{DiskStorage, Storage};
use reel_log::{Config, Entry, Log, LogOptions};
use serde_json::json;
use std::sync::Arc;

const KV: StoreKind = StoreKind::Kv(KvPathSyntax::DistKv);

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

fn item(n: u64) -> NewItem {
    NewItem {
        value: json!({"n": n, "pad": "x".repeat(40)}),
        nonce: Some(n.into()),
        ts: Some(1_000 + n as i64),
    }
}

/// The kind as stored in `reel.meta`.
fn stored_kind(dir: &std::path::Path) -> StoreKind {
    reel_log::meta::Meta::read(&DiskStorage, dir).unwrap().kind
}

/// Turns a store into one as a build from before kinds left it: byte 13 is 0.
fn make_untyped(dir: &std::path::Path, when_full: WhenFull) {
    let mut m = reel_log::meta::Meta::read(&DiskStorage, dir).unwrap();
    m.kind = StoreKind::Untyped;
    m.config.when_full = when_full;
    m.write(&DiskStorage, dir).unwrap();
}

/// Every item of `key`'s list, paging forwards with tokens until a page comes back empty.
fn page_through(l: &ListStore, key: &str) -> Vec<reel::list::Item> {
    let mut out = Vec::new();
    let mut req = PageRequest {
        limit: Some(37),
        ..Default::default()
    };
    loop {
        let page = l.read(key, &req).unwrap();
        if page.items.is_empty() {
            return out;
        }
        out.extend(page.items);
        req.continuation = page.continuation;
    }
}

#[test]
fn the_kind_is_fixed_at_creation_and_persists_across_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, k, l) = (
        tmp.path().join("s"),
        tmp.path().join("k"),
        tmp.path().join("l"),
    );
    assert_eq!(Spool::create(&s).unwrap().kind(), StoreKind::Spool);
    let kv = KvStore::open(&k).unwrap();
    assert_eq!(kv.path_syntax(), KvPathSyntax::DistKv);
    assert_eq!(kv.spool().log().config().when_full, WhenFull::Compact);
    drop(kv);
    ListStore::open(&l).unwrap();
    for (dir, kind) in [(&s, StoreKind::Spool), (&k, KV), (&l, StoreKind::Lists)] {
        assert_eq!(stored_kind(dir), kind);
        assert_eq!(Spool::open(dir).unwrap().kind(), kind, "reopened");
        let ro = Spool::builder(dir).read_only(true).open().unwrap();
        assert_eq!(ro.kind(), kind, "read-only");
    }
    // A spool with any policy is still a spool.
    let c = tmp.path().join("c");
    let spool = Spool::builder(&c)
        .when_full(WhenFull::Compact)
        .open()
        .unwrap();
    assert_eq!(spool.kind(), StoreKind::Spool);
    // A store's kind never changes.
    let e = Spool::open(&k)
        .unwrap()
        .set_kind(StoreKind::Lists)
        .unwrap_err();
    assert!(matches!(e, Error::WrongKind { .. }), "{e}");
    assert_eq!(stored_kind(&k), KV);
}

#[test]
fn opening_a_store_as_another_kind_names_its_kind_and_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, k, l) = (
        tmp.path().join("s"),
        tmp.path().join("k"),
        tmp.path().join("l"),
    );
    Spool::create(&s).unwrap();
    KvStore::open(&k).unwrap();
    ListStore::open(&l).unwrap();
    let e = KvStore::open(&s).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{} is a spool, not a kv store (use reel write/read on it)",
            s.display()
        )
    );
    let e = ListStore::open(&k).unwrap_err();
    assert!(
        e.to_string()
            .contains("is a kv store, not a lists store (use reel kv on it"),
        "{e}"
    );
    let e = KvStore::open(&l).unwrap_err();
    assert!(
        e.to_string()
            .contains("is a lists store, not a kv store (use reel list on it"),
        "{e}"
    );
    let e = ListStore::on_spool(&Spool::open(&s).unwrap()).unwrap_err();
    assert!(matches!(
        e,
        Error::WrongKind {
            kind: StoreKind::Spool,
            wanted: StoreKind::Lists,
            ..
        }
    ));
    // Read-only opens are checked the same way.
    let e = KvStore::builder(&l).read_only(true).open().unwrap_err();
    assert!(matches!(e, Error::WrongKind { .. }), "{e}");
    // Nothing was changed by the refusals.
    assert_eq!(stored_kind(&s), StoreKind::Spool);
    assert_eq!(stored_kind(&l), StoreKind::Lists);
}

#[test]
fn raw_appends_are_refused_in_kv_and_lists_stores_but_every_kind_reads_as_a_log() {
    let tmp = tempfile::tempdir().unwrap();
    let kv = KvStore::open(tmp.path().join("k")).unwrap();
    kv.set(&p("a"), json!(1)).unwrap();
    let lists = ListStore::open(tmp.path().join("l")).unwrap();
    lists.append("k", &[item(1)]).unwrap();
    for spool in [kv.spool(), lists.spool()] {
        let before = spool.next_seq();
        let refused = [
            spool.append(json!("raw")).unwrap_err(),
            spool
                .append_batch(&[NewRecord::new(json!("raw")).key("a")])
                .unwrap_err(),
            spool
                .append_entries(&[Entry {
                    value: b"raw",
                    ..Default::default()
                }])
                .unwrap_err(),
        ];
        for e in refused {
            assert!(
                matches!(
                    e,
                    Error::WrongKind {
                        wanted: StoreKind::Spool,
                        ..
                    }
                ),
                "{e}"
            );
        }
        assert_eq!(spool.next_seq(), before, "nothing was appended");
        // Reading works: it is all a log.
        assert_eq!(spool.iter(..).count(), 1);
        assert!(spool.verify().unwrap().damage.is_empty());
        let mut r = spool.reader("audit").unwrap();
        assert!(r.next_timeout(std::time::Duration::ZERO).unwrap().is_some());
    }
    // Tools that know what they do append through the engine, which knows no kinds.
    kv.spool()
        .log()
        .append(&[Entry {
            key: Some("b"),
            value: reel::Value::json(&json!(2)).as_bytes(),
            encoding: 1,
            ..Default::default()
        }])
        .unwrap();
    assert_eq!(kv.get(&p("b")).unwrap().unwrap().json().unwrap(), json!(2));
    // Batched kv writes have their own method.
    let revs = kv
        .set_batch([(&p("c"), json!(3).into()), (&p("d"), json!(4).into())])
        .unwrap();
    assert_eq!(revs.end - revs.start, 2);
    assert_eq!(kv.get(&p("d")).unwrap().unwrap().json().unwrap(), json!(4));
}

#[test]
fn a_kv_store_always_compacts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    for policy in [WhenFull::DropOldest, WhenFull::Reject] {
        let e = Spool::builder(&dir)
            .kind(KV)
            .when_full(policy)
            .open()
            .unwrap_err();
        assert!(e.to_string().contains("always uses the compact"), "{e}");
        assert!(!dir.exists(), "nothing was created");
    }
    let kv = KvStore::builder(&dir).capacity(1 << 20).open().unwrap();
    let spool = kv.spool();
    for policy in [WhenFull::DropOldest, WhenFull::Reject] {
        let e = spool.reconfigure(1 << 20, policy).unwrap_err();
        assert!(e.to_string().contains("always uses the compact"), "{e}");
        // The engine refuses too, for callers that bypass the Spool.
        assert!(spool.log().reconfigure(1 << 20, policy).is_err());
        assert!(
            Log::open(&dir)
                .unwrap()
                .reconfigure(2 << 20, policy)
                .is_err()
        );
    }
    spool.reconfigure(2 << 20, WhenFull::Compact).unwrap();
    let c = Spool::open(&dir).unwrap().log().config();
    assert_eq!((c.when_full, c.capacity), (WhenFull::Compact, 2 << 20));
    assert_eq!(stored_kind(&dir), KV);
}

#[test]
fn a_lists_store_never_compacts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let e = ListStore::builder(&dir)
        .when_full(WhenFull::Compact)
        .open()
        .unwrap_err();
    assert!(e.to_string().contains("cannot use the compact"), "{e}");
    assert!(!dir.exists());
    let l = ListStore::builder(&dir).capacity(1 << 20).open().unwrap();
    for chunk in (0..3000u64).collect::<Vec<_>>().chunks(100) {
        let items: Vec<NewItem> = chunk.iter().map(|&n| item(n)).collect();
        l.append("l1", &items).unwrap();
    }
    assert!(
        l.spool().log().segments().unwrap().len() > 1,
        "sealed segments exist"
    );
    let e = l
        .spool()
        .log()
        .compact(std::time::Duration::ZERO)
        .unwrap_err();
    assert!(
        e.to_string().contains("is a lists store: compaction"),
        "{e}"
    );
    let e = l
        .spool()
        .reconfigure(1 << 20, WhenFull::Compact)
        .unwrap_err();
    assert!(e.to_string().contains("cannot use the compact"), "{e}");
    assert!(
        l.spool()
            .log()
            .reconfigure(1 << 20, WhenFull::Compact)
            .is_err()
    );
    let info = l.info("l1").unwrap().unwrap();
    assert_eq!(
        (info.count, info.first_offset, info.next_offset),
        (3000, 0, 3000)
    );
    let all = page_through(&l, "l1");
    assert_eq!(all.len(), 3000);
    assert!(all.iter().enumerate().all(|(i, it)| it.offset == i as u64));
}

/// Retention drops whole segments; every list's info then counts exactly the items a
/// reader can page through, starting at the first retained offset.
fn assert_lists_agree(l: &ListStore, keys: &[&str]) {
    for key in keys {
        let info = l.info(key).unwrap().unwrap();
        let all = page_through(l, key);
        assert_eq!(
            info.count,
            all.len() as u64,
            "{key}: info counts what read returns"
        );
        assert_eq!(info.next_offset, 1000, "{key}");
        assert!(
            info.first_offset > 0,
            "{key}: retention dropped its oldest items"
        );
        let offsets: Vec<u64> = all.iter().map(|i| i.offset).collect();
        let want: Vec<u64> = (info.first_offset..info.next_offset).collect();
        assert_eq!(offsets, want, "{key}: no gap, no item before first_offset");
        assert_eq!(info.first_ts, all.first().map(|i| i.ts), "{key}");
        // Reverse paging and seeking to an expired offset agree as well.
        let page = l
            .read(
                key,
                &PageRequest {
                    start: reel::list::Start::Offset(0),
                    limit: Some(5),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(page.items[0].offset, info.first_offset, "{key}");
        let rev = l
            .read(
                key,
                &PageRequest {
                    reverse: true,
                    limit: Some(2000),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(rev.items.len() as u64, info.count, "{key}");
    }
}

#[test]
fn lists_on_drop_oldest_count_only_the_items_still_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let keys = ["a", "b", "c"];
    {
        let l = ListStore::builder(&dir).capacity(64 << 10).open().unwrap();
        assert_eq!(l.spool().log().config().when_full, WhenFull::DropOldest);
        for round in 0..10u64 {
            for key in keys {
                let items: Vec<NewItem> = (round * 100..round * 100 + 100).map(item).collect();
                l.append(key, &items).unwrap();
            }
            if round == 4 {
                // An index that applied items before retention dropped them.
                l.view().checkpoint().unwrap();
                assert_lists_agree_so_far(&l, &keys);
            }
        }
        assert!(l.spool().oldest_seq() > 0, "retention dropped segments");
        assert_lists_agree(&l, &keys);
    }
    // A fresh handle, from the checkpoint, and a rebuilt view agree as well.
    let l = ListStore::open(&dir).unwrap();
    assert_lists_agree(&l, &keys);
    l.view().rebuild(|_, _| {}).unwrap();
    assert_lists_agree(&l, &keys);
}

fn assert_lists_agree_so_far(l: &ListStore, keys: &[&str]) {
    for key in keys {
        let info = l.info(key).unwrap().unwrap();
        assert_eq!(info.count, page_through(l, key).len() as u64, "{key}");
    }
}

#[test]
fn lists_on_reject_refuse_appends_when_full_and_keep_every_item() {
    let tmp = tempfile::tempdir().unwrap();
    let l = ListStore::builder(tmp.path().join("l"))
        .capacity(64 << 10)
        .when_full(WhenFull::Reject)
        .open()
        .unwrap();
    let mut stored = 0u64;
    let full = loop {
        match l.append("k", &(stored..stored + 50).map(item).collect::<Vec<_>>()) {
            Ok(r) => stored = r.next_offset,
            Err(e) => break e,
        }
        assert!(stored < 100_000, "a 64 KiB store must fill up");
    };
    assert!(
        matches!(full.as_log(), Some(reel_log::Error::Full { .. })),
        "{full}"
    );
    let info = l.info("k").unwrap().unwrap();
    assert_eq!((info.count, info.first_offset), (stored, 0));
    assert_eq!(page_through(&l, "k").len() as u64, stored);
}

#[test]
fn a_directory_with_foreign_files_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "keep me").unwrap();
    for e in [
        KvStore::open(&dir).unwrap_err(),
        ListStore::open(&dir).unwrap_err(),
        Spool::create(&dir).unwrap_err(),
    ] {
        assert!(
            matches!(&e, Error::ForeignFiles { file, .. } if file == "notes.txt"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("holds `notes.txt`, which is not reel's"),
            "{e}"
        );
    }
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"], "nothing was created");
    // An empty directory is fine, and so is the leftover of a creation that crashed
    // (reel's own names only): it is completed.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    KvStore::open(&empty).unwrap();
    let crashed = tmp.path().join("crashed");
    std::fs::create_dir_all(crashed.join("segments")).unwrap();
    std::fs::write(crashed.join("reel.lock"), "").unwrap();
    std::fs::write(crashed.join("reel.meta.tmp"), "").unwrap();
    assert_eq!(
        ListStore::open(&crashed).unwrap().spool().kind(),
        StoreKind::Lists
    );
}

#[test]
fn a_failed_creation_removes_what_it_created_and_says_so() {
    const DIR: &str = "/sim/new";
    let mut cleaned = 0;
    let mut left = 0;
    for writes in 0..12 {
        let sim = SimStorage::new();
        sim.set_space_limit(Some(writes));
        let r = KvStore::builder(DIR).storage(Arc::new(sim.clone())).open();
        let Err(e) = r else {
            assert!(writes >= 3, "creation needs a few writes");
            continue;
        };
        let text = e.to_string();
        assert!(
            text.starts_with("could not create the store in /sim/new: disk full while writing"),
            "{text}"
        );
        assert!(!text.contains("intact"), "the store never existed: {text}");
        let Error::CreateFailed {
            left: paths,
            store_written,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        let files: Vec<_> = sim
            .files()
            .into_iter()
            .filter(|f| f.starts_with(DIR))
            .collect();
        if *store_written {
            // reel.meta was written, then opening failed: a store exists, and is kept.
            left += 1;
            assert!(text.contains("its files were written"), "{text}");
            assert!(files.iter().any(|f| f.ends_with("reel.meta")));
        } else {
            cleaned += 1;
            assert_eq!(files, Vec::<std::path::PathBuf>::new(), "{text}");
            // The simulated disk cannot remove directories; the message names them.
            assert!(paths.iter().all(|p| sim.list_dir(p).is_ok()), "{paths:?}");
            let (_, note) = text.rsplit_once("; ").unwrap();
            assert!(
                note.starts_with("left behind: ") && !note.contains("reel."),
                "{text}"
            );
        }
        // With space again, the store is created as if nothing had happened.
        sim.set_space_limit(None);
        let kv = KvStore::builder(DIR)
            .storage(Arc::new(sim.clone()))
            .open()
            .unwrap();
        kv.set(&p("a"), json!(1)).unwrap();
        assert_eq!(kv.spool().kind(), KV);
    }
    assert!(
        cleaned >= 3,
        "failures before reel.meta was written: {cleaned}"
    );
    assert!(left >= 1, "failures after reel.meta was written: {left}");
}

#[test]
fn a_failed_creation_on_disk_removes_its_files_and_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new");
    // Where reel.meta.tmp goes, a directory: the creation fails after it made the lock,
    // segments/ and the first segment.
    std::fs::create_dir_all(dir.join("reel.meta.tmp")).unwrap();
    let e = KvStore::open(&dir).unwrap_err();
    assert!(
        matches!(&e, Error::CreateFailed { left, store_written: false, .. } if left.is_empty()),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "could not create the store in {}: ",
            dir.display()
        )) && text.ends_with("; nothing was left behind"),
        "{text}"
    );
    // It failed writing the metadata, which comes after the lock and the first segment.
    assert!(text.contains("reel.meta.tmp"), "{text}");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["reel.meta.tmp"],
        "only what was there before is left"
    );
}

#[test]
fn a_failed_creation_keeps_what_was_there_before() {
    const DIR: &str = "/sim/half";
    let sim = SimStorage::new();
    // A creation that crashed left segment 0 behind (reel's own names: allowed).
    let st: Arc<dyn Storage> = Arc::new(sim.clone());
    LogOptions::new()
        .storage(st.clone())
        .create(Config::default())
        .open(DIR)
        .unwrap();
    st.remove_file(&std::path::Path::new(DIR).join("reel.meta"))
        .unwrap();
    let before: Vec<_> = sim.files();
    sim.set_space_limit(Some(0));
    let e = ListStore::builder(DIR)
        .storage(st.clone())
        .open()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::CreateFailed {
                store_written: false,
                ..
            }
        ),
        "{e}"
    );
    let after: Vec<_> = sim.files();
    assert!(
        before.iter().all(|f| after.contains(f)),
        "files from before the attempt are kept: {before:?} -> {after:?}"
    );
    assert!(after.iter().all(|f| before.contains(f)), "{after:?}");
}

#[test]
fn an_untyped_kv_store_is_adopted_on_its_first_writable_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    KvStore::open(&dir)
        .unwrap()
        .set(&p("a.b"), json!("v"))
        .unwrap();
    make_untyped(&dir, WhenFull::Compact);
    // Read-only opens never write.
    let ro = KvStore::builder(&dir).read_only(true).open().unwrap();
    assert_eq!(
        ro.get(&p("a.b")).unwrap().unwrap().json().unwrap(),
        json!("v")
    );
    assert_eq!(ro.path_syntax(), KvPathSyntax::Legacy);
    drop(ro);
    assert_eq!(stored_kind(&dir), StoreKind::Untyped);
    // Raw appends still work on untyped stores, as before kinds.
    let legacy = KvStore::open(&dir).unwrap();
    assert_eq!(stored_kind(&dir), StoreKind::Kv(KvPathSyntax::Legacy));
    assert_eq!(legacy.path_syntax(), KvPathSyntax::Legacy);
    assert_eq!(
        legacy.get(&p("a.b")).unwrap().unwrap().json().unwrap(),
        json!("v")
    );
    assert!(legacy.spool().append(json!(1)).is_err(), "now a kv store");
    // A drop-oldest store holding only kv writes becomes a compacting kv store.
    let d2 = tmp.path().join("k2");
    KvStore::open(&d2).unwrap().set(&p("x"), json!(1)).unwrap();
    make_untyped(&d2, WhenFull::DropOldest);
    let kv = KvStore::open(&d2).unwrap();
    assert_eq!(kv.spool().log().config().when_full, WhenFull::Compact);
    assert_eq!(stored_kind(&d2), StoreKind::Kv(KvPathSyntax::Legacy));
}

#[test]
fn an_untyped_store_that_does_not_fit_is_refused_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    // Raw records on drop-oldest: compaction would keep them forever.
    let raw = tmp.path().join("raw");
    let s = Spool::create(&raw).unwrap();
    s.append(json!("no key")).unwrap();
    drop(s);
    make_untyped(&raw, WhenFull::DropOldest);
    let e = KvStore::open(&raw).unwrap_err();
    assert!(matches!(e, Error::CannotAdopt { .. }), "{e}");
    assert!(
        e.to_string().contains("not kv writes (the first at seq 0)"),
        "{e}"
    );
    assert_eq!(stored_kind(&raw), StoreKind::Untyped, "nothing was written");
    // Lists used as kv: refused, whatever the policy.
    let lists = tmp.path().join("lists");
    ListStore::open(&lists)
        .unwrap()
        .append("k", &[item(1)])
        .unwrap();
    make_untyped(&lists, WhenFull::Compact);
    let e = KvStore::open(&lists).unwrap_err();
    assert!(
        e.to_string()
            .contains("holds list items (the first at seq 0)"),
        "{e}"
    );
    // And as lists on compact: refused, read-only too (compaction destroys lists).
    let e = ListStore::open(&lists).unwrap_err();
    assert!(
        e.to_string().contains("uses the compact when-full policy"),
        "{e}"
    );
    let e = ListStore::builder(&lists)
        .read_only(true)
        .open()
        .unwrap_err();
    assert!(matches!(e, Error::CannotAdopt { .. }), "{e}");
    assert_eq!(stored_kind(&lists), StoreKind::Untyped);
    // Once its policy no longer compacts, it is adopted.
    Spool::open(&lists)
        .unwrap()
        .reconfigure(1 << 30, WhenFull::DropOldest)
        .unwrap();
    let l = ListStore::open(&lists).unwrap();
    assert_eq!(l.info("k").unwrap().unwrap().count, 1);
    assert_eq!(stored_kind(&lists), StoreKind::Lists);
    // Any untyped store can be declared a spool.
    Spool::open(&raw)
        .unwrap()
        .set_kind(StoreKind::Spool)
        .unwrap();
    assert_eq!(stored_kind(&raw), StoreKind::Spool);
}

#[test]
fn lists_compacted_before_kinds_are_rebuilt_from_what_is_left_on_adoption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l1");
    {
        let l = ListStore::builder(&dir).capacity(1 << 20).open().unwrap();
        for chunk in (0..3000u64).collect::<Vec<_>>().chunks(100) {
            let items: Vec<NewItem> = chunk.iter().map(|&n| item(n)).collect();
            l.append("l1", &items).unwrap();
        }
        l.view().checkpoint().unwrap();
    }
    // What the issue did: the store compacted (as an untyped store could).
    make_untyped(&dir, WhenFull::Compact);
    let r = Log::open(&dir)
        .unwrap()
        .compact(std::time::Duration::ZERO)
        .unwrap();
    assert!(r.dropped > 0);
    make_untyped(&dir, WhenFull::DropOldest);
    let l = ListStore::open(&dir).unwrap();
    let info = l.info("l1").unwrap().unwrap();
    let all = page_through(&l, "l1");
    assert_eq!(
        info.count,
        all.len() as u64,
        "info counts only what is left"
    );
    assert!(info.count < 3000);
    assert_eq!(info.next_offset, 3000, "the last item survived compaction");
}

#[test]
fn kv_answers_never_outlive_their_record_on_a_log_that_drops_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("old");
    // A kv store from before kinds on drop-oldest, written through the engine.
    let log = LogOptions::new()
        .create(Config::with_capacity(64 << 10, WhenFull::DropOldest))
        .open(&dir)
        .unwrap();
    let v = reel::Value::json(&json!("first"));
    log.append(&[Entry {
        key: Some("a"),
        value: v.as_bytes(),
        encoding: 1,
        ..Default::default()
    }])
    .unwrap();
    let kv = KvStore::builder(&dir).read_only(true).open().unwrap();
    assert_eq!(
        kv.get(&p("a")).unwrap().unwrap().json().unwrap(),
        json!("first")
    );
    let pad = reel::Value::json(&json!("x".repeat(500)));
    while log.oldest_seq() == 0 {
        log.append(&[Entry {
            key: Some("b"),
            value: pad.as_bytes(),
            encoding: 1,
            ..Default::default()
        }])
        .unwrap();
    }
    // The record of `a` is gone: so is its value, in the live handle too.
    assert_eq!(kv.get(&p("a")).unwrap(), None);
    assert!(!kv.contains(&p("a")).unwrap());
    assert_eq!(kv.descendants(&Path::root()).unwrap(), [p("b")]);
    let mut w = kv
        .watch(
            &Path::root(),
            reel::kv::WatchOptions {
                fetch: true,
                from_rev: None,
            },
        )
        .unwrap();
    let first = w.next(Some(std::time::Duration::ZERO)).unwrap().unwrap();
    assert!(
        matches!(&first, reel::kv::WatchEvent::Put { path, .. } if path == "b"),
        "{first:?}"
    );
    // Adopting it stops the loss: the policy becomes compact.
    let adopted = KvStore::open(&dir).unwrap();
    assert_eq!(adopted.get(&p("a")).unwrap(), None);
    assert_eq!(adopted.spool().log().config().when_full, WhenFull::Compact);
}
