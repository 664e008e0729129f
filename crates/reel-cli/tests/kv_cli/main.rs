//! `reel kv` from the command line: the contract of issue #3.
#[path = "../common/mod.rs"]
mod common;
mod races;
mod watch;
use common::derived::*;
use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

#[test]
fn kv_set_creates_a_missing_store_with_the_compact_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("a/b/kv");
    assert_eq!(kv_set(&d, "x", "1"), 0, "the first revision is 0");
    let st = status(&d);
    assert_eq!(st["when_full"], "compact", "{st}");
    assert_eq!(st["next_seq"], 1, "{st}");
    // Only `kv set` creates: reading commands on a missing directory fail and create
    // nothing.
    let other = tmp.path().join("other");
    for args in [
        vec!["kv", "get", s(&other), "x"],
        vec!["kv", "keys", s(&other)],
        vec!["kv", "del", s(&other), "x"],
        vec!["kv", "watch", "--count", "1", s(&other), ":"],
    ] {
        let (code, _, err) = run(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains("not a reel spool"), "{args:?}: {err}");
        assert!(!other.exists(), "{args:?} created the directory");
    }
}

#[test]
fn kv_set_prints_revisions_and_get_returns_values_with_meta() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    let before = now_micros();
    let cases: &[(&str, bool, &str, Value)] = &[
        ("s", false, "hello world", json!("hello world")),
        ("num.str", false, "12", json!("12")),
        ("num.json", true, "12", json!(12)),
        ("float", true, "1.5e3", json!(1500.0)),
        (
            "obj",
            true,
            r#"{"a":[1,true,null],"b":{"c":"d"}}"#,
            json!({"a":[1,true,null],"b":{"c":"d"}}),
        ),
        ("arr", true, "[1, 2, 3]", json!([1, 2, 3])),
        ("null", true, "null", Value::Null),
        ("bool", true, "false", json!(false)),
        ("quoted", true, r#""q""#, json!("q")),
        ("raw.json.text", false, r#"{"a":1}"#, json!(r#"{"a":1}"#)),
        ("empty", false, "", json!("")),
    ];
    let mut revs = Vec::new();
    for (path, eval, text, _) in cases {
        let rev = if *eval {
            kv_set_json(&d, path, text)
        } else {
            kv_set(&d, path, text)
        };
        revs.push(rev);
    }
    assert_eq!(revs, (0..cases.len() as u64).collect::<Vec<_>>());
    let after = now_micros();
    for (i, ((path, _, _, want), rev)) in cases.iter().zip(&revs).enumerate() {
        if i % 2 == 0 {
            assert_eq!(&kv_get(&d, path), want, "{path}");
        }
        let m = kv_meta(&d, path);
        assert_eq!(&m["value"], want, "{path}: {m}");
        assert_eq!(m["rev"], *rev, "{path}: {m}");
        let ts = m["ts"].as_i64().expect("ts");
        assert!(
            (before - 1_000_000..=after + 1_000_000).contains(&ts),
            "{path}: ts {ts}"
        );
        assert_eq!(m.as_object().unwrap().len(), 3, "{m}");
    }
    // An overwrite gets a new revision; the revision is the record's seq in the log.
    let rev = kv_set_json(&d, "num.json", "13");
    assert_eq!(rev, cases.len() as u64);
    assert_eq!(kv_meta(&d, "num.json")["rev"], rev);
    let rec = lines(&ok(&["stream", "--meta", "--gte", &rev.to_string(), s(&d)]));
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0]["key"], "num.json");
    assert_eq!(rec[0]["value"], 13);
    assert_eq!(kv_get(&d, "num.json"), json!(13));
    // A negative number after `--`.
    ok(&["kv", "set", "-e", s(&d), "neg", "--", "-1.5"]);
    assert_eq!(kv_get(&d, "neg"), json!(-1.5));
}

#[test]
fn kv_get_recursive_nests_the_subtree_with_own_values_under_underscore() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    kv_set_json(&d, "a", "1");
    kv_set(&d, "a.b", "x");
    kv_set_json(&d, "a.b.c", r#"{"k":[1]}"#);
    kv_set_json(&d, "a:12", "true");
    kv_set(&d, "a.x:.y", "dot");
    kv_set(&d, "a.only.deep", "d");
    // Siblings whose text starts like `a` but are not below it.
    kv_set(&d, "ab", "no");
    kv_set(&d, "a:.b", "no2");
    let tree = parse(&ok(&["kv", "get", "-r", s(&d), "a"]));
    assert_eq!(
        tree,
        json!({
            "_": 1,
            "b": {"_": "x", "c": {"_": {"k": [1]}}},
            ":12": {"_": true},
            "x:.y": {"_": "dot"},
            "only": {"deep": {"_": "d"}},
        })
    );
    assert_eq!(
        parse(&ok(&["kv", "get", "--recursive", s(&d), "a.b"])),
        json!({"_": "x", "c": {"_": {"k": [1]}}})
    );
    // A node without its own value has no "_".
    assert_eq!(
        parse(&ok(&["kv", "get", "-r", s(&d), "a.only"])),
        json!({"deep": {"_": "d"}})
    );
    let (code, _, err) = run(&["kv", "get", s(&d), "a.only"]);
    assert_ne!(code, 0, "a.only holds no value of its own");
    assert!(err.contains("not found"), "{err}");
    let root = parse(&ok(&["kv", "get", "-r", s(&d), ":"]));
    assert_eq!(root["a"], tree);
    assert_eq!(root["ab"], json!({"_": "no"}));
    assert_eq!(root["a:.b"], json!({"_": "no2"}));
    assert_eq!(root.as_object().unwrap().len(), 3, "{root}");
}

#[test]
fn kv_get_recursive_copes_with_an_element_named_underscore() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    kv_set_json(&d, "a", "1");
    kv_set_json(&d, "a._", "2");
    assert_eq!(kv_get(&d, "a._"), json!(2), "`_` is a valid plain element");
    for path in ["a", ":"] {
        let (code, out, err) = run(&["kv", "get", "-r", s(&d), path]);
        assert_eq!(code, 0, "kv get -r {path} failed: {err}");
        let text = parse(&out).to_string();
        assert!(text.contains('1') && text.contains('2'), "{text}");
    }
    // An element starting with `_` gets one more `_`, so `"_"` is always the own value.
    let (_, out, _) = run(&["kv", "get", "-r", s(&d), "a"]);
    assert_eq!(parse(&out), json!({"_": 1, "__": {"_": 2}}));
}

#[test]
fn kv_get_of_a_missing_path_fails_with_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    kv_set(&d, "here", "v");
    for args in [
        vec!["kv", "get", s(&d), "missing.path"],
        vec!["kv", "get", "--meta", s(&d), "missing.path"],
        vec!["kv", "get", "-r", s(&d), "missing.path"],
        // Below a value is not the value.
        vec!["kv", "get", s(&d), "here.below"],
        // A prefix of the text is not a parent.
        vec!["kv", "get", "-r", s(&d), "her"],
    ] {
        let (code, out, err) = run(&args);
        assert_ne!(code, 0, "{args:?}");
        assert_ne!(code, 3, "not found is not a conflict: {args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains("not found"), "{args:?}: {err}");
        assert!(err.contains(args[args.len() - 1]), "names the path: {err}");
    }
}

#[test]
fn kv_conditional_set_fails_with_status_3_and_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    let r0 = kv_set(&d, "lock.owner", "alice");
    kv_set(&d, "other", "x");
    let before = next_seq(&d);
    let attempts: [(&[&str], &str); 4] = [
        (&["--if-absent"], "absent"),
        (&["--if-rev", "1"], "revision 1"),
        (&["--if-rev", "99"], "revision 99"),
        (&["-e", "--if-rev", "7"], "revision 7"),
    ];
    for (flags, expect) in attempts {
        let mut args = vec!["kv", "set"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[s(&d), "lock.owner", "\"mallory\""]);
        let (code, out, err) = run(&args);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("lock.owner"), "names the path: {err}");
        assert!(err.contains(expect), "says what was expected: {err}");
        assert!(
            err.contains(&format!("revision is {r0}")),
            "says the actual revision: {err}"
        );
    }
    // On an absent path --if-rev fails the same way.
    let (code, _, err) = run(&["kv", "set", "--if-rev", "0", s(&d), "nobody", "x"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("nobody") && err.contains("absent"), "{err}");
    assert_eq!(next_seq(&d), before, "a failed condition stores nothing");
    let m = kv_meta(&d, "lock.owner");
    assert_eq!(
        (&m["value"], m["rev"].as_u64()),
        (&json!("alice"), Some(r0))
    );
    let (code, _, _) = run(&["kv", "get", s(&d), "nobody"]);
    assert_ne!(code, 0);
    // When the condition holds the value is stored.
    let r1: u64 = ok(&[
        "kv",
        "set",
        "--if-rev",
        &r0.to_string(),
        s(&d),
        "lock.owner",
        "bob",
    ])
    .trim()
    .parse()
    .unwrap();
    assert_eq!(r1, before);
    assert_eq!(kv_meta(&d, "lock.owner")["rev"], r1);
    assert_eq!(kv_get(&d, "lock.owner"), json!("bob"));
    // The old revision no longer matches.
    let (code, _, _) = run(&[
        "kv",
        "set",
        "--if-rev",
        &r0.to_string(),
        s(&d),
        "lock.owner",
        "eve",
    ]);
    assert_eq!(code, 3);
    assert_eq!(kv_get(&d, "lock.owner"), json!("bob"));
    // --if-absent on a new path, and on a deleted one.
    let r2: u64 = ok(&["kv", "set", "--if-absent", s(&d), "fresh", "1"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(kv_meta(&d, "fresh")["rev"], r2);
    ok(&["kv", "del", s(&d), "fresh"]);
    ok(&["kv", "set", "--if-absent", "-e", s(&d), "fresh", "2"]);
    assert_eq!(kv_get(&d, "fresh"), json!(2));
    // The two conditions together are refused by the parser.
    let (code, _, err) = run(&["kv", "set", "--if-rev", "1", "--if-absent", s(&d), "z", "1"]);
    assert_ne!(code, 0);
    assert_ne!(code, 3);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn kv_set_eval_with_invalid_json_is_a_clear_error_and_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    kv_set(&d, "p", "keep");
    let before = next_seq(&d);
    for bad in ["{bad", "1 2", "", "'single'", "[1,", "tru", "{\"a\":}"] {
        let (code, out, err) = run(&["kv", "set", "-e", s(&d), "p", bad]);
        assert_eq!(code, 1, "{bad:?}: {err}");
        assert!(out.is_empty(), "{bad:?}: {out}");
        assert!(err.contains("not valid JSON"), "{bad:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert_eq!(next_seq(&d), before);
    assert_eq!(kv_get(&d, "p"), json!("keep"));
    // Nor is a missing store created for it.
    let fresh = tmp.path().join("fresh");
    let (code, _, err) = run(&["kv", "set", "--eval", s(&fresh), "p", "{bad"]);
    assert_eq!(code, 1, "{err}");
    assert!(!fresh.exists(), "a failed kv set created the store");
}

#[test]
fn kv_del_plain_conditional_and_recursive() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    for p in ["a", "a.b", "a.b.c", "a.d", "ab", "a:.b", "b"] {
        kv_set(&d, p, &format!("v-{p}"));
    }
    let b_rev = kv_meta(&d, "b")["rev"].as_u64().unwrap();
    // Plain delete prints the tombstone's revision.
    let seq = next_seq(&d);
    assert_eq!(ok(&["kv", "del", s(&d), "ab"]).trim(), seq.to_string());
    let (code, _, err) = run(&["kv", "get", s(&d), "ab"]);
    assert_ne!(code, 0);
    assert!(err.contains("not found"), "{err}");
    // Deleting what is not there fails, storing nothing.
    let seq = next_seq(&d);
    let (code, _, err) = run(&["kv", "del", s(&d), "ab"]);
    assert_ne!(code, 0);
    assert!(err.contains("not found"), "{err}");
    assert_eq!(next_seq(&d), seq);
    // Conditional delete: wrong revision is a conflict (3) and keeps the value.
    let (code, _, err) = run(&[
        "kv",
        "del",
        "--if-rev",
        &(b_rev + 1).to_string(),
        s(&d),
        "b",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains('b') && err.contains("revision"), "{err}");
    assert_eq!(kv_get(&d, "b"), json!("v-b"));
    assert_eq!(next_seq(&d), seq);
    let (code, _, _) = run(&["kv", "del", "--if-rev", "0", s(&d), "never"]);
    assert_eq!(code, 3);
    ok(&["kv", "del", "--if-rev", &b_rev.to_string(), s(&d), "b"]);
    assert_ne!(run(&["kv", "get", s(&d), "b"]).0, 0);
    // Recursive: the path and everything below, not textual neighbours; prints how many.
    assert_eq!(ok(&["kv", "del", "-r", s(&d), "a"]).trim(), "4");
    for p in ["a", "a.b", "a.b.c", "a.d"] {
        assert_ne!(run(&["kv", "get", s(&d), p]).0, 0, "{p} survived del -r a");
    }
    assert_eq!(kv_get(&d, "a:.b"), json!("v-a:.b"));
    assert_eq!(text_lines(&ok(&["kv", "keys", "-r", s(&d)])), ["a:.b"]);
    let (code, _, err) = run(&["kv", "del", "--recursive", s(&d), "a"]);
    assert_ne!(code, 0);
    assert!(err.contains("not found"), "{err}");
    // Deleting a subtree with no own value works too.
    kv_set(&d, "t.x", "1");
    kv_set(&d, "t.y.z", "2");
    assert_eq!(ok(&["kv", "del", "-r", s(&d), "t"]).trim(), "2");
    assert_eq!(text_lines(&ok(&["kv", "keys", "-r", s(&d)])), ["a:.b"]);
}

#[test]
fn kv_keys_lists_children_or_descendants_sorted_in_canonical_form() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    for p in [
        "cfg.db.host",
        "cfg.db.port",
        "cfg.app",
        "cfg.deep.er.est",
        "cfg",
        "zoo",
        "apple",
        "n:x10",
        "n:2",
        "n:-7",
        "n:b11",
        "n.10",
    ] {
        kv_set(&d, p, "v");
    }
    assert_eq!(
        text_lines(&ok(&["kv", "keys", s(&d)])),
        ["apple", "cfg", "n", "zoo"]
    );
    assert_eq!(
        text_lines(&ok(&["kv", "keys", s(&d), ":"])),
        ["apple", "cfg", "n", "zoo"]
    );
    // Children include nodes that only have descendants.
    assert_eq!(
        text_lines(&ok(&["kv", "keys", s(&d), "cfg"])),
        ["cfg.app", "cfg.db", "cfg.deep"]
    );
    // -r: every descendant holding a value, not the path itself.
    assert_eq!(
        text_lines(&ok(&["kv", "keys", "-r", s(&d), "cfg"])),
        ["cfg.app", "cfg.db.host", "cfg.db.port", "cfg.deep.er.est"]
    );
    assert_eq!(
        text_lines(&ok(&["kv", "keys", "--recursive", s(&d), "cfg.db"])),
        ["cfg.db.host", "cfg.db.port"]
    );
    // Integers print canonically and sort as numbers; `10` is a string.
    let n = ok(&["kv", "keys", s(&d), "n"]);
    let n = text_lines(&n);
    assert_eq!(
        n.iter().copied().collect::<BTreeSet<_>>(),
        ["n:-7", "n:2", "n:3", "n:16", "n.10"].into_iter().collect()
    );
    let ints: Vec<&str> = n.iter().copied().filter(|k| k.starts_with("n:")).collect();
    assert_eq!(ints, ["n:-7", "n:2", "n:3", "n:16"]);
    // Leaves and absent paths have no children.
    assert_eq!(ok(&["kv", "keys", s(&d), "zoo"]), "");
    assert_eq!(ok(&["kv", "keys", "-r", s(&d), "nothing.here"]), "");
    let all = ok(&["kv", "keys", "-r", s(&d)]);
    assert_eq!(all.lines().count(), 12, "{all}");
}

/// (an element as given, its canonical text).
const SYNTAX: &[(&str, &str)] = &[
    ("a:.b", "a:.b"),
    ("c::d", "c::d"),
    ("e:_f", "e:_f"),
    (":e", ":e"),
    (":t", ":t"),
    (":f", ":f"),
    (":n", ":n"),
    ("t", "t"),
    (":12", ":12"),
    ("12", "12"),
    (":-3", ":-3"),
    (":x1f", ":31"),
    (":b101", ":5"),
    (":x10", ":16"),
    (":00", ":0"),
    (":1:.5", ":1:.5"),
    (":vab", ":vab"),
    (":y0001", ":y0001"),
    (":::.:_", ":::.:_"),
];

/// `el` (an element's text) appended to the path `parent`: a string element after a dot,
/// any other element right after the previous one (DistKV: `p.a`, but `p:12`, `p:e`).
fn child(parent: &str, el: &str) -> String {
    let string = !el.starts_with(':')
        || el.starts_with("::")
        || el.starts_with(":.")
        || el.starts_with(":_");
    if string {
        format!("{parent}.{el}")
    } else {
        format!("{parent}{el}")
    }
}

#[test]
fn kv_path_syntax_escapes_types_and_canonical_forms() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    for (i, (given, _)) in SYNTAX.iter().enumerate() {
        kv_set(&d, &child("p", given), &format!("v{i}"));
    }
    let next = next_seq(&d);
    assert_eq!(
        next,
        SYNTAX.len() as u64,
        "every given form is a distinct path"
    );
    // Both spellings reach the value (the tree below checks every canonical one).
    for (i, (given, canon)) in SYNTAX.iter().enumerate().filter(|(_, (g, c))| g != c) {
        let want = json!(format!("v{i}"));
        assert_eq!(kv_get(&d, &child("p", given)), want, "{given}");
        assert_eq!(kv_get(&d, &child("p", canon)), want, "{canon}");
    }
    // Children print in canonical form, each path once.
    let keys = ok(&["kv", "keys", s(&d), "p"]);
    let got: BTreeSet<&str> = keys.lines().collect();
    let want: BTreeSet<String> = SYNTAX.iter().map(|(_, c)| child("p", c)).collect();
    assert_eq!(got, want.iter().map(String::as_str).collect());
    assert_eq!(keys.lines().count(), SYNTAX.len(), "{keys}");
    // Escaped dots do not split elements: `a:.b` is one child, `a` is not a node.
    assert_eq!(ok(&["kv", "keys", s(&d), "p.a"]), "");
    assert_ne!(run(&["kv", "get", "-r", s(&d), "p.a"]).0, 0);
    // The tree names children by their canonical element text.
    let tree = parse(&ok(&["kv", "get", "-r", s(&d), "p"]));
    for (i, (_, canon)) in SYNTAX.iter().enumerate() {
        assert_eq!(tree[*canon]["_"], json!(format!("v{i}")), "{canon}: {tree}");
    }
    // Different spellings of one integer are one path.
    kv_set(&d, "p:16", "dec");
    assert_eq!(kv_get(&d, "p:x10"), json!("dec"));
    assert_eq!(kv_get(&d, "p:b10000"), json!("dec"));
    assert_eq!(
        ok(&["kv", "keys", s(&d), "p"]).lines().count(),
        SYNTAX.len()
    );
    // Multi-element paths with typed and empty elements.
    kv_set(&d, "q:e:0:t.x:_y", "deep");
    assert_eq!(kv_get(&d, "q:e:x0:t.x:_y"), json!("deep"));
    assert_eq!(
        text_lines(&ok(&["kv", "keys", "-r", s(&d), "q"])),
        ["q:e:0:t.x:_y"]
    );
    // The root `:` holds a value like any other path.
    kv_set(&d, ":", "root");
    assert_eq!(kv_get(&d, ":"), json!("root"));
    assert_eq!(parse(&ok(&["kv", "get", "-r", s(&d), ":"]))["_"], "root");
}

#[test]
fn kv_bad_path_syntax_is_an_error_naming_the_problem_and_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    kv_set(&d, "ok", "1");
    let before = next_seq(&d);
    let bad: &[(&str, &str)] = &[
        (".a", "leading dot"),
        ("a.", "trailing dot"),
        ("a..b", "doubled dot"),
        (".", "leading dot"),
        ("", "empty"),
        ("a:z", "`:z` is not an element"),
        (":q", "`:q` is not an element"),
        ("a.:1", "a dot before `:1`"),
        ("a.:t", "a dot before `:t`"),
        ("a:", "lone `:`"),
        ("a.:", "lone `:`"),
        (":t:", "lone `:`"),
        (":2..c", "doubled dot"),
        (":w", "`:w` is not an element"),
        (":list", "`:list` is not an element"),
        ("a:h123", "`:h123` is not an element"),
        (":x", "hexadecimal"),
        (":x1g", "hexadecimal"),
        (":b12", "binary"),
        (":1a", "`:1a` is not an element"),
        (":-", "`:-` is not an element"),
        (":99999999999999999999", "out of range"),
    ];
    for (i, (path, why)) in bad.iter().enumerate() {
        let (code, out, err) = run(&["kv", "set", s(&d), path, "v"]);
        assert_eq!(code, 1, "{path:?}: {err}");
        assert!(out.is_empty(), "{path:?}: {out}");
        assert!(
            err.contains("bad path") && err.contains(&format!("`{path}`")),
            "{path:?}: {err}"
        );
        assert!(err.contains(why), "{path:?} should say {why:?}: {err}");
        // Every other kv command refuses it too.
        for cmd in [
            vec!["kv", "get", s(&d), path],
            vec!["kv", "del", s(&d), path],
            vec!["kv", "keys", s(&d), path],
            vec!["kv", "watch", "--count", "1", s(&d), path],
        ]
        .into_iter()
        .take(if i % 5 == 0 { 4 } else { 0 })
        {
            let (code, _, err) = run(&cmd);
            assert_eq!(code, 1, "{cmd:?}: {err}");
            assert!(err.contains("bad path"), "{cmd:?}: {err}");
        }
    }
    assert_eq!(next_seq(&d), before, "nothing was stored");
    assert_eq!(text_lines(&ok(&["kv", "keys", "-r", s(&d)])), ["ok"]);
    // A bad path does not create a store either.
    let fresh = tmp.path().join("fresh");
    assert_eq!(run(&["kv", "set", s(&fresh), "a..b", "v"]).0, 1);
    assert!(!fresh.exists());
}
