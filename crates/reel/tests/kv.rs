//! The kv store through the embedded API, including the pitfalls of the systems it
//! replaces (jk_keyvaluestore, DistKV, flumedb).
use reel::Error;
use reel::kv::{Condition, KvStore, Path, WatchEvent, WatchOptions};
use serde_json::json;
use std::time::Duration;

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

fn store() -> (tempfile::TempDir, KvStore) {
    let tmp = tempfile::tempdir().unwrap();
    let kv = KvStore::open(tmp.path().join("kv")).unwrap();
    (tmp, kv)
}

#[test]
fn set_get_overwrite_delete_and_contains() {
    let (_t, kv) = store();
    let a = p("a.b");
    assert!(kv.get(&a).unwrap().is_none());
    let r1 = kv.set(&a, json!({"x": 1})).unwrap();
    let e = kv.get(&a).unwrap().unwrap();
    assert_eq!((e.json().unwrap(), e.rev), (json!({"x": 1}), r1));
    // A handle overwrites and deletes what it created itself (jk_keyvaluestore cannot).
    let r2 = kv.set(&a, json!(2)).unwrap();
    assert!(r2 > r1);
    assert_eq!(kv.get(&a).unwrap().unwrap().json().unwrap(), json!(2));
    kv.delete(&a).unwrap();
    assert!(
        !kv.contains(&a).unwrap(),
        "contains is false after a delete"
    );
    assert!(matches!(kv.delete(&a), Err(Error::NotFound(_))));
    kv.set(&a, json!(3)).unwrap();
    assert!(kv.contains(&a).unwrap());
}

#[test]
fn compare_and_set_by_revision_and_absence() {
    let (_t, kv) = store();
    let k = p("counter");
    let r = kv.compare_and_set(&k, json!(0), Condition::Absent).unwrap();
    assert!(
        matches!(kv.compare_and_set(&k, json!(9), Condition::Absent), Err(Error::Conflict { actual: Some(x), .. }) if x == r)
    );
    let r2 = kv.compare_and_set(&k, json!(1), Condition::Rev(r)).unwrap();
    assert!(matches!(
        kv.compare_and_set(&k, json!(2), Condition::Rev(r)),
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(kv.delete_if(&k, r), Err(Error::Conflict { .. })));
    kv.delete_if(&k, r2).unwrap();
    assert_eq!(kv.get(&k).unwrap(), None);
}

#[test]
fn racing_compare_and_set_from_two_handles_has_exactly_one_winner_each_round() {
    let (tmp, kv) = store();
    let other = KvStore::open(tmp.path().join("kv")).unwrap();
    let k = p("n");
    let mut rev = kv.set(&k, json!(0)).unwrap();
    for round in 1..=30 {
        let (a, b) = std::thread::scope(|s| {
            let ha = s.spawn(|| kv.compare_and_set(&k, json!(round), Condition::Rev(rev)));
            let hb = s.spawn(|| other.compare_and_set(&k, json!(-round), Condition::Rev(rev)));
            (ha.join().unwrap(), hb.join().unwrap())
        });
        assert!(a.is_ok() ^ b.is_ok(), "round {round}: {a:?} {b:?}");
        rev = a.or(b).unwrap();
    }
}

#[test]
fn keys_children_descendants_and_tree() {
    let (_t, kv) = store();
    for (k, v) in [
        ("a", json!(0)),
        ("a.b", json!(1)),
        ("a.b.c", json!(2)),
        ("a.d", json!(3)),
        ("a:12.x", json!(4)),
        ("z", json!(5)),
    ] {
        kv.set(&p(k), v).unwrap();
    }
    let kids: Vec<String> = kv
        .children(&p("a"))
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        kids,
        ["a:12", "a.b", "a.d"],
        "integers sort before strings; intermediate nodes listed"
    );
    let all: Vec<String> = kv
        .descendants(&p("a"))
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(all, ["a:12.x", "a.b", "a.b.c", "a.d"]);
    let root: Vec<String> = kv
        .children(&Path::root())
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(root, ["a", "z"]);
    let tree = kv.tree_json(&p("a")).unwrap().unwrap();
    assert_eq!(
        tree,
        json!({"_": 0, ":12": {"x": {"_": 4}}, "b": {"_": 1, "c": {"_": 2}}, "d": {"_": 3}})
    );
    assert_eq!(kv.delete_tree(&p("a.b")).unwrap(), 2);
    assert!(kv.get(&p("a.b.c")).unwrap().is_none());
    assert_eq!(kv.clear().unwrap(), 4);
    assert!(kv.descendants(&Path::root()).unwrap().is_empty());
}

#[test]
fn writes_in_one_handle_are_visible_in_another_at_once() {
    let (tmp, kv) = store();
    let other = KvStore::open(tmp.path().join("kv")).unwrap();
    for i in 0..100 {
        kv.set(&p("x"), json!(i)).unwrap();
        assert_eq!(
            other.get(&p("x")).unwrap().unwrap().json().unwrap(),
            json!(i)
        );
    }
    other.delete(&p("x")).unwrap();
    assert!(!kv.contains(&p("x")).unwrap());
}

#[test]
fn watch_with_fetch_has_no_gap_or_duplicate_at_the_seam() {
    let (_t, kv) = store();
    kv.set(&p("w.a"), json!(1)).unwrap();
    kv.set(&p("other"), json!(0)).unwrap();
    let mut w = kv
        .watch(
            &p("w"),
            WatchOptions {
                fetch: true,
                from_rev: None,
            },
        )
        .unwrap();
    let r = kv.set(&p("w.b"), json!(2)).unwrap();
    kv.set(&p("wx"), json!("not under w")).unwrap();
    let d = kv.delete(&p("w.a")).unwrap();
    let mut got = Vec::new();
    while let Some(e) = w.next(Some(Duration::from_millis(100))).unwrap() {
        got.push(e.to_json().unwrap());
    }
    assert_eq!(
        got,
        vec![
            json!({"path": "w.a", "value": 1, "rev": 0}),
            json!({"synced": true}),
            json!({"path": "w.b", "value": 2, "rev": r}),
            json!({"path": "w.a", "deleted": true, "rev": d}),
        ]
    );
    // Resuming after a revision replays exactly what followed it.
    let mut w = kv
        .watch(
            &p("w"),
            WatchOptions {
                fetch: false,
                from_rev: Some(r),
            },
        )
        .unwrap();
    assert_eq!(
        w.next(Some(Duration::from_millis(100))).unwrap(),
        Some(WatchEvent::Deleted {
            path: "w.a".into(),
            rev: d
        })
    );
}

#[test]
fn a_slow_watcher_gets_every_event_from_many_concurrent_writers() {
    let (tmp, kv) = store();
    let mut w = kv.watch(&Path::root(), WatchOptions::default()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let dir = tmp.path().join("kv");
            s.spawn(move || {
                let kv = KvStore::open(dir).unwrap();
                for i in 0..500 {
                    kv.set(&p(&format!("t{t}:{i}")), json!(i)).unwrap();
                }
            });
        }
    });
    let mut n = 0;
    let mut last_rev = None;
    while let Some(e) = w.next(Some(Duration::from_millis(200))).unwrap() {
        let WatchEvent::Put { rev, .. } = e else {
            panic!("unexpected {e:?}")
        };
        assert!(last_rev.is_none_or(|l| rev > l));
        last_rev = Some(rev);
        n += 1;
    }
    assert_eq!(n, 2000, "every event, none dropped");
}

#[test]
fn a_read_only_store_reads_but_refuses_writes() {
    let (tmp, kv) = store();
    kv.set(&p("k"), json!("v")).unwrap();
    let ro = KvStore::builder(tmp.path().join("kv"))
        .read_only(true)
        .open()
        .unwrap();
    assert_eq!(
        ro.get(&p("k")).unwrap().unwrap().json().unwrap(),
        json!("v")
    );
    let err = ro.set(&p("k"), json!(1)).unwrap_err();
    assert!(
        err.to_string().contains("permission denied") || err.to_string().contains("read"),
        "{err}"
    );
    kv.set(&p("k"), json!("v2")).unwrap();
    // A read-only handle on a trusted head follows other writers.
    assert_eq!(
        ro.get(&p("k")).unwrap().unwrap().json().unwrap(),
        json!("v2")
    );
}

#[test]
fn the_view_checkpoint_survives_reopen() {
    let (tmp, kv) = store();
    for i in 0..1000 {
        kv.set(&p(&format!("k:{i}")), json!(i)).unwrap();
    }
    kv.view().checkpoint().unwrap();
    drop(kv);
    let kv = KvStore::open(tmp.path().join("kv")).unwrap();
    assert_eq!(
        kv.view().applied_to(),
        1000,
        "restored from the checkpoint, not replayed"
    );
    assert_eq!(
        kv.get(&p("k:999")).unwrap().unwrap().json().unwrap(),
        json!(999)
    );
    assert_eq!(kv.spool().log().config().when_full, reel::WhenFull::Compact);
}

#[test]
fn a_small_store_compacts_instead_of_filling_and_rebuilds_to_the_same_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let kv = KvStore::builder(&dir).capacity(256 << 10).open().unwrap();
    let mut w = kv.watch(&Path::root(), WatchOptions::default()).unwrap();
    for i in 0..5000 {
        kv.set(
            &p(&format!("k:{}", i % 40)),
            json!({"i": i, "pad": "x".repeat(100)}),
        )
        .unwrap();
    }
    kv.delete(&p("k:0")).unwrap();
    let st = kv.spool().status().unwrap();
    assert!(st.used_bytes <= st.capacity + st.segment_size);
    // A watcher that never read fell behind compaction: told so, not silently skipped.
    let err = loop {
        match w.next(Some(Duration::from_millis(10))) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("watch ended without noticing the compacted records"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::WatchBehind { .. }), "{err}");
    // Rebuilding the view from the compacted log gives the same state.
    let before = kv.entries(&Path::root()).unwrap();
    kv.view().rebuild(|_, _| {}).unwrap();
    assert_eq!(kv.entries(&Path::root()).unwrap(), before);
    assert_eq!(before.len(), 39);
    assert_eq!(
        kv.get(&p("k:39")).unwrap().unwrap().json().unwrap()["i"],
        json!(4999)
    );
}

#[test]
fn non_string_children_are_below_their_parent_in_distkv_text() {
    // In DistKV's text a non-string element follows its parent without a dot (`a:2`,
    // `a:e`, `a:t`, `a:vx`), while `a::x`, `a:.x`, `a:_x` are strings that merely start
    // with `a`: only the former are in `a`'s subtree.
    let tmp = tempfile::tempdir().unwrap();
    let kv = KvStore::open(tmp.path()).unwrap();
    for path in [
        "a", "a:2", "a:2.b", "a:e", "a:t", "a:vx", "a:1:.5", "a.s", "a::x", "a:.x", "a:_x", "ab",
    ] {
        kv.set(&p(path), json!(path)).unwrap();
    }
    let mut below: Vec<String> = kv
        .descendants(&p("a"))
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    below.sort();
    let mut want = vec!["a:2", "a:2.b", "a:e", "a:t", "a:vx", "a:1:.5", "a.s"];
    want.sort();
    assert_eq!(below, want);
    assert_eq!(
        kv.entries(&p("a")).unwrap().len(),
        8,
        "the path itself and below"
    );
    // A watch of `a` sees exactly the same paths change.
    let mut w = kv
        .watch(
            &p("a"),
            WatchOptions {
                fetch: false,
                from_rev: None,
            },
        )
        .unwrap();
    for path in ["a:9", "a::y", "a.t", "ab.c", "a:f"] {
        kv.set(&p(path), json!(1)).unwrap();
    }
    let mut seen = Vec::new();
    while let Some(e) = w.next(Some(std::time::Duration::from_millis(50))).unwrap() {
        if let WatchEvent::Put { path, .. } = e {
            seen.push(path);
        }
    }
    assert_eq!(seen, ["a:9", "a.t", "a:f"]);
    // Deleting the subtree takes exactly those.
    assert_eq!(kv.delete_tree(&p("a")).unwrap(), 11);
    assert!(kv.get(&p("a::x")).unwrap().is_some());
    assert!(kv.get(&p("ab")).unwrap().is_some());
}

#[test]
fn a_store_from_before_distkv_text_keeps_its_keys_and_speaks_distkv() {
    // A kv store created before kinds recorded its keys in reel's earlier text
    // (`k.:12`); adopted, it keeps recording them so (one key per path, whatever the
    // build), while every path in and out is DistKV's text.
    use reel_log::storage::DiskStorage;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let spool = reel::Spool::builder(dir)
            .when_full(reel::WhenFull::Compact)
            .open()
            .unwrap();
        for (key, v) in [("k.:12", 1), ("k.:12.x", 2), ("k.s", 3)] {
            spool
                .log()
                .append(&[reel::Entry {
                    key: Some(key),
                    encoding: 1,
                    value: &rmp_serde::to_vec(&v).unwrap(),
                    ..Default::default()
                }])
                .unwrap();
        }
    }
    let mut m = reel_log::meta::Meta::read(&DiskStorage, dir).unwrap();
    m.kind = reel::StoreKind::Untyped;
    m.write(&DiskStorage, dir).unwrap();
    let kv = KvStore::open(dir).unwrap();
    assert_eq!(kv.path_syntax(), reel::KvPathSyntax::Legacy);
    assert_eq!(kv.get(&p("k:12")).unwrap().unwrap().json().unwrap(), 1);
    assert_eq!(kv.key(&p("k:12.x")).unwrap(), "k.:12.x");
    let rev = kv.set(&p("k:12"), json!(10)).unwrap();
    let mut raw = kv.spool().iter(rev..=rev);
    assert_eq!(raw.next().unwrap().unwrap().key.as_deref(), Some("k.:12"));
    let all: Vec<String> = kv
        .descendants(&p("k"))
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(all, ["k:12", "k:12.x", "k.s"]);
    let mut w = kv
        .watch(
            &p("k"),
            WatchOptions {
                fetch: true,
                from_rev: None,
            },
        )
        .unwrap();
    let first = w.next(Some(std::time::Duration::ZERO)).unwrap().unwrap();
    assert!(
        matches!(first, WatchEvent::Put { ref path, .. } if path == "k:12"),
        "{first:?}"
    );
}
