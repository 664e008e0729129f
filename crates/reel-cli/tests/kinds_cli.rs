//! Store kinds from the command line: `reel init --kind`, refusals across kinds, retention
//! that is safe for each kind, directories holding other files, stores from before kinds.
mod common;
use common::derived::*;
use common::*;
use reel_log::storage::DiskStorage;
use reel_log::{KvPathSyntax, StoreKind, WhenFull};
use serde_json::{Value, json};
use std::path::Path;

fn stored_kind(dir: &Path) -> StoreKind {
    reel_log::meta::Meta::read(&DiskStorage, dir).unwrap().kind
}

/// Turns a store into one as a build from before kinds left it (byte 13 is 0).
fn make_untyped(dir: &Path, when_full: WhenFull) {
    let mut m = reel_log::meta::Meta::read(&DiskStorage, dir).unwrap();
    m.kind = StoreKind::Untyped;
    m.config.when_full = when_full;
    m.write(&DiskStorage, dir).unwrap();
}

/// Every item of KEY's list, paging with `--continue` until a page comes back empty.
fn page_all(d: &Path, key: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut page = list_read(d, key, &["--limit", "700"]);
    loop {
        let got = page["items"].as_array().unwrap().clone();
        if got.is_empty() {
            return items;
        }
        items.extend(got);
        let t = token(&page);
        page = list_read(d, key, &["--limit", "700", "--continue", &t]);
    }
}

fn info(d: &Path, key: &str) -> Value {
    parse(&ok(&["list", "info", "--json", s(d), key]))
}

fn append_items(d: &Path, key: &str, from: u64, n: u64) {
    let values: Vec<String> = (from..from + n)
        .map(|i| json!({"i": i, "pad": "p".repeat(60)}).to_string())
        .collect();
    let mut args = vec!["list", "append", s(d), key];
    args.extend(values.iter().map(String::as_str));
    ok(&args);
}

#[test]
fn the_issue_lists_are_never_destroyed_by_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    // The issue's commands: a store created with --when-full compact is a spool now, and
    // a spool takes no list items.
    let l1 = tmp.path().join("l1");
    let out = ok(&["init", "--size", "1m", "--when-full", "compact", s(&l1)]);
    assert!(out.starts_with("created spool "), "{out}");
    let (code, _, err) = run(&["list", "append", s(&l1), "k", "1"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        format!(
            "reel: {} is a spool, not a lists store (use reel write/read on it)",
            l1.display()
        )
    );
    assert_eq!(next_seq(&l1), 0);
    // A lists store refuses the compact policy...
    let l2 = tmp.path().join("l2");
    let err = fails(&[
        "init",
        "--size",
        "1m",
        "--kind",
        "lists",
        "--when-full",
        "compact",
        s(&l2),
    ]);
    assert!(
        err.contains("a lists store cannot use the compact when-full policy"),
        "{err}"
    );
    assert!(!l2.exists(), "nothing was created");
    // ...and `reel compact`: its 3,000 items stay counted and readable.
    let l3 = tmp.path().join("l3");
    let out = ok(&["init", "--size", "1m", "--kind", "lists", s(&l3)]);
    assert!(
        out.starts_with("created lists store ") && out.contains("when full: drop-oldest"),
        "{out}"
    );
    for batch in 0..30 {
        append_items(&l3, "l1", batch * 100, 100);
    }
    assert!(status(&l3)["segments"].as_u64().unwrap() > 1);
    let (code, out, err) = run(&["compact", s(&l3)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("is a lists store: compaction keeps only the latest record of each key"),
        "{err}"
    );
    let i = info(&l3, "l1");
    assert_eq!(
        (&i["count"], &i["first_offset"], &i["next_offset"]),
        (&json!(3000), &json!(0), &json!(3000))
    );
    let items = page_all(&l3, "l1");
    assert_eq!(items.len(), 3000);
    assert_eq!(items[2999]["value"]["i"], 2999);
    assert!(ok(&["verify", s(&l3)]).contains("0 problems"));
}

#[test]
fn a_lists_store_on_drop_oldest_counts_what_read_pages_through() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("l");
    ok(&["init", "--size", "64k", "--kind", "lists", s(&d)]);
    let keys = ["a", "b", "c"];
    for round in 0..12 {
        for key in keys {
            append_items(&d, key, round * 50, 50);
        }
    }
    assert!(
        status(&d)["oldest_seq"].as_u64().unwrap() > 0,
        "retention dropped segments"
    );
    for key in keys {
        let i = info(&d, key);
        let items = page_all(&d, key);
        assert_eq!(i["count"], items.len(), "{key}: {i}");
        assert_eq!(i["next_offset"], 600, "{key}");
        let first = i["first_offset"].as_u64().unwrap();
        assert!(first > 0, "{key}: its oldest items expired");
        assert_eq!(items[0]["offset"], first, "{key}");
        assert_eq!(items[0]["ts"], i["first_ts"], "{key}");
        let got: Vec<u64> = items
            .iter()
            .map(|i| i["offset"].as_u64().unwrap())
            .collect();
        assert_eq!(got, (first..600).collect::<Vec<_>>(), "{key}");
        // Asking for an expired offset starts at the first item still stored.
        let page = list_read(&d, key, &["--from-offset", "0", "--limit", "1"]);
        assert_eq!(offsets(&page), [first], "{key}");
    }
}

#[test]
fn a_kv_store_always_compacts_and_takes_no_raw_records() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    for policy in ["drop-oldest", "reject"] {
        let err = fails(&["init", "--kind", "kv", "--when-full", policy, s(&d)]);
        assert!(
            err.contains("a kv store always uses the compact when-full policy"),
            "{err}"
        );
        assert!(!d.exists());
    }
    let out = ok(&["init", "--kind", "kv", "--size", "1m", s(&d)]);
    assert!(
        out.starts_with("created kv store ") && out.contains("when full: compact"),
        "{out}"
    );
    assert_eq!(stored_kind(&d), StoreKind::Kv(KvPathSyntax::DistKv));
    kv_set(&d, "a", "1");
    for policy in ["drop-oldest", "reject"] {
        let err = fails(&["init", "--when-full", policy, s(&d)]);
        assert!(err.contains("always uses the compact"), "{err}");
    }
    assert_eq!(status(&d)["when_full"], "compact");
    // The kind is shown (status used to call every store a spool).
    assert_eq!(status(&d)["kind"], "kv");
    assert!(ok(&["status", s(&d)]).contains("kind       kv"));
    let err = fails(&["write", s(&d), r#"{"raw":1}"#]);
    assert!(
        err.contains("is a kv store, not a spool (use reel kv on it; reel read, stream and status also read it)"),
        "{err}"
    );
    // Every kind reads as a log.
    let recs = lines(&ok(&["read", "--no-wait", "--meta", s(&d)]));
    assert_eq!((recs.len(), &recs[0]["key"]), (1, &json!("a")));
    assert_eq!(lines(&ok(&["stream", s(&d)])).len(), 1);
    assert!(ok(&["verify", s(&d)]).contains("0 problems"));
    // `kv set` in a new directory creates a kv store.
    let fresh = tmp.path().join("fresh");
    kv_set(&fresh, "x", "1");
    assert_eq!(status(&fresh)["when_full"], "compact");
    assert_eq!(stored_kind(&fresh), StoreKind::Kv(KvPathSyntax::DistKv));
    assert!(fails(&["write", s(&fresh), "1"]).contains("is a kv store"));
}

#[test]
fn init_never_changes_the_kind_of_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    assert!(ok(&["init", s(&d)]).starts_with("created spool "));
    let err = fails(&["kv", "set", s(&d), "a", "1"]);
    assert!(
        err.contains("is a spool, not a kv store (use reel write/read on it)"),
        "{err}"
    );
    let err = fails(&["list", "append", s(&d), "k", "1"]);
    assert!(err.contains("is a spool, not a lists store"), "{err}");
    let err = fails(&["init", "--kind", "lists", s(&d)]);
    assert!(
        err.contains("is a spool; a store's kind is fixed when it is created"),
        "{err}"
    );
    assert!(
        ok(&["init", "--kind", "spool", s(&d)]).starts_with("spool "),
        "same kind: fine"
    );
    assert_eq!(stored_kind(&d), StoreKind::Spool);
    let k = tmp.path().join("k");
    ok(&["init", "--kind", "kv", s(&k)]);
    let out = ok(&["init", "--kind", "kv", "--size", "2m", s(&k)]);
    assert!(out.starts_with("kv store "), "{out}");
    assert_eq!(status(&k)["capacity"], 2 << 20);
    let err = fails(&["init", "--kind", "spool", s(&k)]);
    assert!(
        err.contains("is a kv store; a store's kind is fixed"),
        "{err}"
    );
    assert_eq!(stored_kind(&k), StoreKind::Kv(KvPathSyntax::DistKv));
}

#[test]
fn a_directory_holding_other_files_is_refused_naming_one() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("mine");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("notes.txt"), "keep").unwrap();
    for args in [
        vec!["kv", "set", s(&d), "a", "1"],
        vec!["list", "append", s(&d), "k", "1"],
        vec!["init", s(&d)],
        vec!["init", "--kind", "lists", s(&d)],
    ] {
        let err = fails(&args);
        assert!(
            err.contains("is not empty and holds `notes.txt`, which is not reel's"),
            "{args:?}: {err}"
        );
    }
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"], "nothing was created");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    kv_set(&empty, "a", "1");
}

#[test]
fn stores_from_before_kinds_take_their_kind_on_first_writable_use() {
    let tmp = tempfile::tempdir().unwrap();
    // A kv store: the first kv command records the kind, keeping the legacy path text.
    let k = tmp.path().join("k");
    kv_set(&k, "a", "1");
    make_untyped(&k, WhenFull::Compact);
    assert_eq!(kv_get(&k, "a"), json!("1"));
    assert_eq!(stored_kind(&k), StoreKind::Kv(KvPathSyntax::Legacy));
    // A spool keeps taking raw records until declared a spool.
    let s1 = tmp.path().join("s");
    ok(&["init", s(&s1)]);
    make_untyped(&s1, WhenFull::DropOldest);
    ok(&["write", s(&s1), "1"]);
    let err = fails(&["kv", "set", s(&s1), "a", "1"]);
    assert!(
        err.contains("cannot become a kv store: it uses the drop-oldest when-full policy and holds records that are not kv writes (the first at seq 0)"),
        "{err}"
    );
    assert_eq!(stored_kind(&s1), StoreKind::Untyped);
    let out = ok(&["init", "--kind", "spool", s(&s1)]);
    assert!(out.contains("is now a spool"), "{out}");
    assert_eq!(stored_kind(&s1), StoreKind::Spool);
    // Lists on a compacting store: refused with what to do, then adopted once it no
    // longer compacts.
    let l = tmp.path().join("l");
    append_items(&l, "k", 0, 3);
    make_untyped(&l, WhenFull::Compact);
    let err = fails(&["list", "info", s(&l), "k"]);
    assert!(
        err.contains("cannot become a lists store: it uses the compact when-full policy")
            && err.contains("reel init --when-full drop-oldest"),
        "{err}"
    );
    let err = fails(&["init", "--kind", "kv", "--when-full", "drop-oldest", s(&l)]);
    assert!(err.contains("always uses the compact"), "{err}");
    assert_eq!(status(&l)["when_full"], "compact", "nothing changed");
    let out = ok(&[
        "init",
        "--kind",
        "lists",
        "--when-full",
        "drop-oldest",
        s(&l),
    ]);
    assert!(
        out.contains("when full: compact -> drop-oldest") && out.contains("is now a lists store"),
        "{out}"
    );
    assert_eq!(info(&l, "k")["count"], 3);
    assert_eq!(stored_kind(&l), StoreKind::Lists);
}

/// A kv deletion and a stored `null` both print `"value":null`; `--meta` tells them
/// apart with `"deleted":true` on the deletion, in `stream` and `read` alike (it used
/// not to, so a consumer of the log could not replay a kv store from it).
#[test]
fn meta_output_marks_a_kv_deletion_apart_from_a_null_value() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    ok(&["kv", "set", "-e", s(&d), "a", "1"]);
    ok(&["kv", "set", "-e", s(&d), "b", "null"]);
    ok(&["kv", "del", s(&d), "a"]);
    for cmd in [
        vec!["stream", "--meta", s(&d)],
        vec!["read", "--no-wait", "--meta", s(&d)],
    ] {
        let got = lines(&ok(&cmd));
        assert_eq!(got.len(), 3, "{cmd:?}: {got:?}");
        assert_eq!(got[0].get("deleted"), None, "{cmd:?}");
        assert_eq!(got[1]["value"], serde_json::Value::Null);
        assert_eq!(
            got[1].get("deleted"),
            None,
            "a stored null is not a deletion"
        );
        assert_eq!(got[2]["value"], serde_json::Value::Null);
        assert_eq!(got[2]["deleted"], true, "{cmd:?}: {:?}", got[2]);
    }
}

/// A store whose reel.meta was lost used to be taken over by `reel init` (or a first
/// `kv set`): its records adopted under a new identity, another kind or capacity.
#[test]
fn init_refuses_a_directory_holding_records_without_reel_meta() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    kv_set(&d, "a", "1");
    std::fs::remove_file(d.join("reel.meta")).unwrap();
    for args in [
        vec!["init", "--kind", "kv", s(&d)],
        vec!["init", s(&d)],
        vec!["kv", "set", s(&d), "b", "2"],
    ] {
        let err = fails(&args);
        assert!(err.contains("holds records"), "{args:?}: {err}");
    }
    assert!(!d.join("reel.meta").exists());
}
