//! `reel view`, `reel compact` and the compact policy from the command line.
mod common;
use common::derived::*;
use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn view_list_shows_name_version_since_and_lag() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    ok(&["init", "--kind", "kv", s(&d)]);
    assert_eq!(ok(&["view", "list", "--json", s(&d)]).trim(), "[]");
    kv_set(&d, "a", "1");
    kv_set(&d, "b", "2");
    // A kv read applies two records and leaves them to the next reader (a process
    // checkpoints the kv view only after a thousand or so); a rebuild checkpoints.
    kv_get(&d, "a");
    let views = parse(&ok(&["view", "list", "--json", s(&d)]));
    assert_eq!(views[0]["lag"], 2, "{views}");
    ok(&["view", "rebuild", s(&d), "kv"]);
    let views = parse(&ok(&["view", "list", "--json", s(&d)]));
    assert_eq!(
        views,
        json!([{"name": "kv", "version": 2, "since": 1, "lag": 0}])
    );
    for p in ["c", "d", "e"] {
        kv_set(&d, p, "3");
    }
    let views = parse(&ok(&["view", "list", "--json", s(&d)]));
    assert_eq!(views[0]["since"], 1);
    assert_eq!(views[0]["lag"], 3, "{views}");
    let text = ok(&["view", "list", s(&d)]);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "VERSION", "SINCE", "LAG"]);
    let kv_row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("kv "))
        .unwrap_or_else(|| panic!("{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(kv_row, ["kv", "2", "1", "3"]);
    // Lists live in a lists store, with their own view.
    let l = tmp.path().join("lists");
    ok(&["list", "append", s(&l), "l", "1", "2"]);
    ok(&["list", "keys", s(&l)]);
    // Like kv, a process checkpoints the lists view only after a thousand records or so.
    ok(&["view", "rebuild", s(&l), "lists"]);
    let views = parse(&ok(&["view", "list", "--json", s(&l)]));
    assert_eq!(
        views,
        json!([{"name": "lists", "version": 3, "since": 1, "lag": 0}])
    );
}

#[test]
fn view_rebuild_kv_keeps_answers_and_unknown_views_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    kv_set(&d, "a", "1");
    kv_set(&d, "a", "2");
    kv_set(&d, "b.c", "3");
    kv_set(&d, "gone", "x");
    ok(&["kv", "del", s(&d), "gone"]);
    let tree = parse(&ok(&["kv", "get", "-r", s(&d), ":"]));
    let out = ok(&["view", "rebuild", s(&d), "kv"]);
    assert!(out.contains("rebuilt view kv from 5 records"), "{out}");
    let views = parse(&ok(&["view", "list", "--json", s(&d)]));
    let kv = views
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "kv")
        .unwrap();
    assert_eq!(
        (kv["since"].as_u64(), kv["lag"].as_u64()),
        (Some(4), Some(0)),
        "{views}"
    );
    assert_eq!(parse(&ok(&["kv", "get", "-r", s(&d), ":"])), tree);
    assert_eq!(kv_get(&d, "a"), json!("2"));
    assert_eq!(kv_meta(&d, "a")["rev"], 1);
    assert_ne!(run(&["kv", "get", s(&d), "gone"]).0, 0);
    // A damaged checkpoint is not trusted, and a rebuild replaces it.
    std::fs::write(d.join("views/kv/checkpoint"), b"garbage").unwrap();
    assert_eq!(kv_get(&d, "b.c"), json!("3"));
    ok(&["view", "rebuild", s(&d), "kv"]);
    assert_eq!(parse(&ok(&["kv", "get", "-r", s(&d), ":"])), tree);
    // The lists view rebuilds too, in a lists store; a kv store has none.
    let l = tmp.path().join("lists");
    ok(&["list", "append", s(&l), "lst", "1", "2"]);
    let out = ok(&["view", "rebuild", s(&l), "lists"]);
    assert!(out.contains("rebuilt view lists"), "{out}");
    assert_eq!(offsets(&list_read(&l, "lst", &[])), [0, 1]);
    let (code, _, err) = run(&["view", "rebuild", s(&d), "lists"]);
    assert_eq!(code, 1);
    assert!(err.contains("is a kv store, not a lists store"), "{err}");
    // Unknown names.
    let (code, out, err) = run(&["view", "rebuild", s(&d), "nope"]);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("unknown view `nope`"), "{err}");
    assert!(err.contains("kv, lists"), "names the built-in views: {err}");
    assert_eq!(kv_get(&d, "a"), json!("2"));
    let missing = tmp.path().join("missing");
    assert_ne!(run(&["view", "rebuild", s(&missing), "kv"]).0, 0);
    assert!(!missing.exists());
}

#[test]
fn view_compact_merges_the_tables_and_keeps_every_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    {
        // Several checkpoints leave several tables.
        let kv = reel::kv::KvStore::open(&d).unwrap();
        for round in 0..4 {
            let paths: Vec<reel::kv::Path> = (0..5_000)
                .map(|i| format!("t.k{}", round * 5_000 + i).parse().unwrap())
                .collect();
            kv.set_batch(
                paths
                    .iter()
                    .map(|p| (p, reel::Value::encode(&json!(round)).unwrap())),
            )
            .unwrap();
            kv.view().checkpoint().unwrap();
        }
    }
    ok(&["kv", "del", s(&d), "t.k7"]);
    let tree = parse(&ok(&["kv", "get", "-r", s(&d), "t"]));
    let out = ok(&["view", "compact", s(&d), "kv"]);
    assert!(
        out.starts_with("compacted view kv: ") && out.contains("tables -> 1 table in"),
        "{out}"
    );
    let tables = std::fs::read_dir(d.join("views/kv"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "tbl")
        })
        .count();
    assert_eq!(tables, 1);
    assert_eq!(parse(&ok(&["kv", "get", "-r", s(&d), "t"])), tree);
    assert_ne!(run(&["kv", "get", s(&d), "t.k7"]).0, 0);
    assert_eq!(kv_get(&d, "t.k19999"), json!(3));
    // Again: nothing left to merge.
    let out = ok(&["view", "compact", s(&d), "kv"]);
    assert!(out.contains("1 table -> 1 table"), "{out}");
    // Only views kept in tables.
    let (code, out, err) = run(&["view", "compact", s(&d), "nope"]);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("only the views kept in tables, kv and lists"),
        "{err}"
    );
    let (code, _, err) = run(&["view", "compact", s(&d), "lists"]);
    assert_eq!(code, 1);
    assert!(err.contains("is a kv store, not a lists store"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Compaction
// ---------------------------------------------------------------------------------------

#[test]
fn init_when_full_compact_sets_the_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("c");
    let out = ok(&["init", "--size", "256k", "--when-full", "compact", s(&d)]);
    assert!(out.contains("compact"), "{out}");
    let st = status(&d);
    assert_eq!(st["when_full"], "compact");
    assert_eq!(st["capacity"], 256 << 10);
    let (code, _, err) = run(&["init", "--when-full", "squash", s(&d)]);
    assert_eq!(code, 2);
    assert!(err.contains("compact"), "lists the policies: {err}");
    assert_eq!(status(&d)["when_full"], "compact");
}

#[test]
fn many_overwrites_on_a_small_compact_store_stay_bounded_and_keep_latest_values() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    ok(&["init", "--size", "256k", "--kind", "kv", s(&d)]);
    let st = status(&d);
    let bound = st["capacity"].as_u64().unwrap() + st["segment_size"].as_u64().unwrap();
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    kv_set(&d, "static.once", "first");
    latest.insert("static.once".into(), "first".into());
    kv_set(&d, "doomed", "soon gone");
    let mut written = 0usize;
    let n = 64u64;
    for i in 0..n {
        let path = format!("hot.k{}", i % 4);
        let v = format!("{i}:{}", noise(i, 9000));
        written += v.len();
        kv_set(&d, &path, &v);
        latest.insert(path, v);
        if i == 20 {
            ok(&["kv", "del", s(&d), "doomed"]);
        }
        if i % 16 == 15 {
            let used = status(&d)["used_bytes"].as_u64().unwrap();
            assert!(used <= bound, "after {i} writes: {used} > {bound}");
        }
    }
    assert!(
        written as u64 > 2 * (256 << 10),
        "the test must overflow the store"
    );
    let st = status(&d);
    assert!(st["used_bytes"].as_u64().unwrap() <= bound, "{st}");
    assert_eq!(st["next_seq"], n + 3);
    let check = |when: &str| {
        for (path, v) in &latest {
            assert_eq!(kv_get(&d, path), json!(v), "{when}: {path}");
        }
        let (code, _, err) = run(&["kv", "get", s(&d), "doomed"]);
        assert_ne!(code, 0, "{when}: a deleted path came back");
        assert!(err.contains("not found"), "{err}");
        assert_eq!(
            text_lines(&ok(&["kv", "keys", "-r", s(&d)])),
            ["hot.k0", "hot.k1", "hot.k2", "hot.k3", "static.once"],
            "{when}"
        );
    };
    check("after automatic compaction");
    // The log itself holds few superseded records now.
    let recs = lines(&ok(&["stream", "--meta", s(&d)]));
    assert!(recs.len() < 60, "{} records retained", recs.len());
    assert_eq!(
        recs[0]["key"], "static.once",
        "the oldest live value is kept"
    );
    // An explicit compaction keeps everything live, too.
    let out = ok(&["compact", s(&d)]);
    assert!(out.starts_with("compacted "), "{out}");
    assert!(status(&d)["used_bytes"].as_u64().unwrap() <= bound);
    check("after reel compact");
    ok(&["view", "rebuild", s(&d), "kv"]);
    check("after view rebuild");
    assert!(ok(&["verify", s(&d)]).contains("0 problems"));
}

#[test]
fn compact_with_zero_grace_does_not_resurrect_a_deleted_path() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    ok(&["init", "--size", "256k", "--kind", "kv", s(&d)]);
    kv_set(&d, "gone", "soon");
    assert_eq!(kv_get(&d, "gone"), json!("soon"));
    ok(&["kv", "del", s(&d), "gone"]);
    // Enough overwrites of another path to seal the segment holding the tombstone.
    for i in 0..25 {
        kv_set(&d, "busy", &noise(i, 3000));
    }
    let out = ok(&["compact", "--grace", "0", s(&d)]);
    assert!(out.contains("compacted"), "{out}");
    let (code, out, err) = run(&["kv", "get", s(&d), "gone"]);
    assert_ne!(
        code, 0,
        "deleted path `gone` is back after compaction: {out}"
    );
    assert!(err.contains("not found"), "{err}");
    assert_eq!(text_lines(&ok(&["kv", "keys", "-r", s(&d)])), ["busy"]);
    // A rebuilt view agrees.
    ok(&["view", "rebuild", s(&d), "kv"]);
    assert_ne!(run(&["kv", "get", s(&d), "gone"]).0, 0);
}

#[test]
fn verify_reports_a_damaged_view_table_and_a_rebuild_repairs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    for i in 0..50 {
        kv_set(&d, &format!("k{i}"), "some value");
    }
    ok(&["view", "rebuild", s(&d), "kv"]);
    assert!(ok(&["verify", s(&d)]).contains("0 problems"));
    let table = std::fs::read_dir(d.join("views/kv"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .find(|p| p.extension().is_some_and(|e| e == "tbl"))
        .unwrap();
    let mut b = std::fs::read(&table).unwrap();
    b[40] ^= 0x01;
    std::fs::write(&table, b).unwrap();
    let err = fails(&["verify", s(&d)]);
    assert!(err.contains("view table is damaged"), "{err}");
    assert!(err.contains("no record is lost"), "{err}");
    // The answer is still right: the damaged table is never answered from.
    assert_eq!(ok(&["kv", "get", s(&d), "k7"]).trim(), "\"some value\"");
    ok(&["view", "rebuild", s(&d), "kv"]);
    assert!(ok(&["verify", s(&d)]).contains("0 problems"));
}

/// A list all of whose items retention dropped is known only to the lists view: a
/// rebuild from damaged tables would give its offsets and accept its nonces again, so
/// it is refused unless forced (it used to run, with a warning, and exit 0).
/// A 64 KiB lists store holding `keys` in turn, 1,500 items each (nonces 1 to 1401 in
/// steps of 100): all items of every list but the last expired.
fn lists_with_expired_lists(d: &Path, keys: &[&str]) {
    ok(&["init", "--kind", "lists", "--size", "64k", s(d)]);
    fill_lists(d, keys, || {});
}

/// Appends 1,500 items with nonces 1 to 1500 to each list of `keys`, in batches of 100,
/// calling `after_batch` after each.
fn fill_lists(d: &Path, keys: &[&str], mut after_batch: impl FnMut()) {
    let pad = "y".repeat(60);
    for k in keys {
        for n in (0..1500).step_by(100) {
            let input: String = (n..n + 100)
                .map(|i| format!("{{\"i\":{i},\"p\":\"{pad}\"}}\n"))
                .collect();
            let nonce = (n + 1).to_string();
            let out = reel_stdin(&["list", "append", "--nonce", &nonce, s(d), k], &input);
            assert!(out.status.success(), "{out:?}");
            after_batch();
        }
    }
}

/// The command line appending to list `a` with its last nonce, 1500 (a retry).
fn retry_args(d: &Path) -> Vec<&str> {
    vec![
        "list",
        "append",
        "--nonce",
        "1500",
        s(d),
        "a",
        "{\"retry\":1}",
    ]
}

/// Appends to list `a` with its last nonce, 1500 (a retry): the output.
fn retry_nonce_1500(d: &Path) -> String {
    ok(&retry_args(d))
}

/// Flips `byte` (from the end when negative) of every table of the lists view.
fn damage_lists_tables(d: &Path, byte: isize) {
    for e in std::fs::read_dir(d.join("views/lists")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "tbl") {
            let mut b = std::fs::read(&p).unwrap();
            let at = if byte < 0 { b.len() / 2 } else { byte as usize };
            b[at] ^= 0x5a;
            std::fs::write(&p, b).unwrap();
        }
    }
}

#[test]
fn a_rebuild_that_would_forget_expired_lists_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    lists_with_expired_lists(&d, &["a", "b"]);
    let info = || -> serde_json::Value {
        serde_json::from_str(&ok(&["list", "info", "--json", s(&d), "a"])).unwrap()
    };
    assert_eq!(info()["count"], 0, "every item of list a was dropped");
    assert_eq!(info()["next_offset"], 1500);
    damage_lists_tables(&d, -1);
    let (code, out, _) = run(&["verify", s(&d)]);
    assert_eq!(code, 1);
    assert!(out.contains("next offset and last nonce"), "{out}");
    let (code, _, err) = run(&["view", "rebuild", s(&d), "lists"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rebuild anyway with"), "{err}");
    // A retried append is still refused as a duplicate: the view was left as it was.
    let out = retry_nonce_1500(&d);
    assert!(out.contains("\"duplicates\":1"), "{out}");
    let (code, _, err) = run(&["view", "rebuild", "--force", s(&d), "lists"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("without the next offsets and nonces"), "{err}");
}

/// Tables so damaged that the lists view cannot even be loaded (their magic): the
/// store used to open with an empty view, answer "not found" for the expired list,
/// give its offsets again from 0 and take its nonces again, and its next checkpoint
/// replaced the damaged tables. Now appends, that list's info and a plain rebuild are
/// refused, naming the remedy; a forced rebuild goes on without that state.
#[test]
fn an_unloadable_lists_view_refuses_appends_until_restored_or_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    lists_with_expired_lists(&d, &["a", "b"]);
    damage_lists_tables(&d, 5);
    let copy = tmp.path().join("copy");
    copy_dir(&d, &copy);
    for args in [
        retry_args(&d),
        vec!["list", "info", s(&d), "a"],
        vec!["view", "rebuild", s(&d), "lists"],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("reel view rebuild --force"), "{args:?}: {err}");
    }
    // Nothing was written over the damaged tables: they are still there to restore.
    for e in std::fs::read_dir(d.join("views/lists")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "tbl") {
            assert!(
                copy.join("views/lists")
                    .join(p.file_name().unwrap())
                    .exists()
            );
        }
    }
    ok(&["view", "rebuild", "--force", s(&d), "lists"]);
    let out = retry_nonce_1500(&d);
    assert!(
        out.contains("\"appended\":1"),
        "forced: the loss was accepted: {out}"
    );
}

/// A lists store whose view was deleted after retention dropped records used to open
/// with a warning, give an expired list's offsets again from 0 and take its nonces
/// again: it is refused as an unloadable view is.
#[test]
fn a_lists_store_without_its_view_refuses_appends_once_records_expired() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    lists_with_expired_lists(&d, &["a", "b"]);
    std::fs::remove_dir_all(d.join("views/lists")).unwrap();
    for args in [retry_args(&d), vec!["list", "info", s(&d), "a"]] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("has no checkpoint"), "{args:?}: {err}");
        assert!(err.contains("reel view rebuild --force"), "{args:?}: {err}");
    }
    ok(&["view", "rebuild", "--force", s(&d), "lists"]);
    let out = retry_nonce_1500(&d);
    assert!(out.contains("\"appended\":1"), "forced: {out}");
}

/// A follower of a lists store drops its oldest records as its source does. It kept no
/// lists view, so once promoted it gave an expired list's offsets again from 0 and took
/// its used nonces again. The replicator now keeps the follower's lists view, which its
/// retention checkpoints before dropping records.
#[test]
fn a_promoted_lists_follower_still_knows_the_lists_its_retention_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    ok(&["init", "--kind", "lists", "--size", "64k", s(&src)]);
    // Each batch is copied before the source's retention can drop it: no gap.
    fill_lists(&src, &["a", "b"], || {
        ok(&["replicate", "--no-wait", s(&src), s(&dst)]);
    });
    let info = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&ok(&["list", "info", "--json", s(d), "a"])).unwrap()
    };
    assert_eq!(
        info(&dst)["count"],
        0,
        "the follower dropped every item of a"
    );
    ok(&["promote", s(&dst)]);
    assert_eq!(info(&dst)["next_offset"], 1500);
    let out = retry_nonce_1500(&dst);
    assert!(out.contains("\"duplicates\":1"), "{out}");
}

/// A follower started past the source's first records never had the state of the
/// lists all of whose items were there: once promoted it refuses appends, as a store
/// whose lists view was lost does.
#[test]
fn a_promoted_lists_follower_that_started_late_refuses_appends_until_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    lists_with_expired_lists(&src, &["a", "b"]);
    ok(&["replicate", "--no-wait", "--skip-gap", s(&src), s(&dst)]);
    ok(&["promote", s(&dst)]);
    let (code, _, err) = run(&retry_args(&dst));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("reel view rebuild --force"), "{err}");
}

/// A forced rebuild keeps what the readable blocks hold (it used to drop every expired
/// list's state when any block was damaged), and never takes a list's state from an
/// older table where the newer table's block for it is damaged: that state is stale
/// (an old next offset would be given again).
#[test]
fn a_forced_rebuild_keeps_the_readable_lists_and_no_stale_one() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
    lists_with_expired_lists(&d, &keys);
    damage_lists_tables(&d, -1);
    ok(&["view", "rebuild", "--force", s(&d), "lists"]);
    let mut kept = 0;
    for k in keys {
        let (code, out, _) = run(&["list", "info", "--json", s(&d), k]);
        if code == 0 {
            let info: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(info["next_offset"], 1500, "list {k}: {info}");
            kept += 1;
        }
    }
    assert!(kept >= keys.len() - 2, "only {kept} lists kept");
}
