//! `reel list` from the command line: the contract of issue #3.
mod common;
use common::derived::*;
use common::*;
use serde_json::{Value, json};

#[test]
fn list_append_reports_counts_and_nonces_make_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    let r = |args: &[&str]| parse(&ok(args));
    assert_eq!(
        r(&[
            "list",
            "append",
            s(&d),
            "orders",
            r#"{"id":1}"#,
            r#"{"id":2}"#
        ]),
        json!({"appended": 2, "duplicates": 0, "next_offset": 2})
    );
    assert_eq!(
        r(&[
            "list",
            "append",
            "--nonce",
            "10",
            s(&d),
            "orders",
            "\"a\"",
            "\"b\"",
            "\"c\""
        ]),
        json!({"appended": 3, "duplicates": 0, "next_offset": 5})
    );
    // Same nonces again: every item a duplicate, not an error.
    assert_eq!(
        r(&[
            "list",
            "append",
            "--nonce",
            "10",
            s(&d),
            "orders",
            "\"a\"",
            "\"b\"",
            "\"c\""
        ]),
        json!({"appended": 0, "duplicates": 3, "next_offset": 5})
    );
    // Overlapping: 11 and 12 are old, 13 is new.
    assert_eq!(
        r(&[
            "list",
            "append",
            "--nonce",
            "11",
            s(&d),
            "orders",
            "\"x\"",
            "\"y\"",
            "\"d\""
        ]),
        json!({"appended": 1, "duplicates": 2, "next_offset": 6})
    );
    // Lower than the last accepted.
    assert_eq!(
        r(&["list", "append", "--nonce", "5", s(&d), "orders", "\"old\""]),
        json!({"appended": 0, "duplicates": 1, "next_offset": 6})
    );
    // Items without a nonce are never duplicates.
    assert_eq!(
        r(&["list", "append", s(&d), "orders", "\"free\""]),
        json!({"appended": 1, "duplicates": 0, "next_offset": 7})
    );
    // Nonces are per key.
    assert_eq!(
        r(&["list", "append", "--nonce", "1", s(&d), "other", "true"]),
        json!({"appended": 1, "duplicates": 0, "next_offset": 1})
    );
    let page = list_read(&d, "orders", &[]);
    let items: Vec<(u64, Value, Value)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["offset"].as_u64().unwrap(),
                i["nonce"].clone(),
                i["value"].clone(),
            )
        })
        .collect();
    assert_eq!(
        items,
        vec![
            (0, Value::Null, json!({"id": 1})),
            (1, Value::Null, json!({"id": 2})),
            (2, json!(10), json!("a")),
            (3, json!(11), json!("b")),
            (4, json!(12), json!("c")),
            (5, json!(13), json!("d")),
            (6, Value::Null, json!("free")),
        ]
    );
    assert_eq!(page["key"], "orders");
}

#[test]
fn list_append_retried_after_a_crash_stores_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    let batch: String = (0..5).map(|i| format!("{{\"n\":{i}}}\n\n")).collect();
    // The "crashed" first attempt got the first three items stored...
    let first: String = batch
        .lines()
        .filter(|l| !l.is_empty())
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    let out = reel_stdin(&["list", "append", "--nonce", "100", s(&d), "ev"], &first);
    assert!(out.status.success());
    assert_eq!(
        parse(&String::from_utf8(out.stdout).unwrap()),
        json!({"appended": 3, "duplicates": 0, "next_offset": 3})
    );
    // ...the retry sends the whole batch (NDJSON on stdin, blank lines skipped).
    for attempt in 0..2 {
        let out = reel_stdin(&["list", "append", "--nonce", "100", s(&d), "ev"], &batch);
        assert!(out.status.success());
        let want = if attempt == 0 {
            json!({"appended": 2, "duplicates": 3, "next_offset": 5})
        } else {
            json!({"appended": 0, "duplicates": 5, "next_offset": 5})
        };
        assert_eq!(parse(&String::from_utf8(out.stdout).unwrap()), want);
    }
    let page = list_read(&d, "ev", &[]);
    let values: Vec<Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].clone())
        .collect();
    assert_eq!(values, (0..5).map(|i| json!({"n": i})).collect::<Vec<_>>());
    let nonces: Vec<Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["nonce"].clone())
        .collect();
    assert_eq!(nonces, (100..105).map(|n| json!(n)).collect::<Vec<_>>());
    let info = parse(&ok(&["list", "info", "--json", s(&d), "ev"]));
    assert_eq!(info["count"], 5);
    assert_eq!(info["last_nonce"], 104);
}

#[test]
fn list_append_rejects_bad_nonces_and_bad_json_storing_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    ok(&["list", "append", "--nonce", "1", s(&d), "k", "1"]);
    let before = next_seq(&d);
    for nonce in ["abc", "1.5", "0x10", "", "-1"] {
        let arg = format!("--nonce={nonce}");
        let (code, out, err) = run(&["list", "append", &arg, s(&d), "k", "2"]);
        assert_ne!(code, 0, "nonce {nonce:?}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("--nonce"), "{nonce:?}: {err}");
    }
    let (code, _, err) = run(&["list", "append", s(&d), "k", "2", "{bad", "3"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("argument 2") && err.contains("invalid JSON"),
        "{err}"
    );
    assert!(err.contains("nothing was stored"), "{err}");
    let out = reel_stdin(
        &["list", "append", "--nonce", "5", s(&d), "k"],
        "1\n2\n[oops\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("line 3") && err.contains("invalid JSON"),
        "{err}"
    );
    let (code, _, err) = run(&["list", "append", s(&d), "", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("key"), "{err}");
    // Nonces N, N+1, ... must fit in u128.
    let max = u128::MAX.to_string();
    let (code, _, err) = run(&["list", "append", "--nonce", &max, s(&d), "k", "1", "2"]);
    assert_eq!(code, 1);
    assert!(err.contains("overflow"), "{err}");
    assert_eq!(next_seq(&d), before, "nothing was stored");
    let info = parse(&ok(&["list", "info", "--json", s(&d), "k"]));
    assert_eq!(
        (info["count"].as_u64(), info["last_nonce"].as_u64()),
        (Some(1), Some(1))
    );
    // The largest nonce itself is fine, and prints as a decimal string above 2^64.
    ok(&["list", "append", "--nonce", &max, s(&d), "k", "\"last\""]);
    let info = parse(&ok(&["list", "info", "--json", s(&d), "k"]));
    assert_eq!(info["last_nonce"], json!(max));
    let page = list_read(&d, "k", &["--reverse", "--limit", "1"]);
    assert_eq!(page["items"][0]["nonce"], json!(max));
    assert_eq!(
        parse(&ok(&["list", "append", "--nonce", &max, s(&d), "k", "1"])),
        json!({"appended": 0, "duplicates": 1, "next_offset": 2})
    );
}

#[test]
fn list_read_pages_forward_with_tokens_also_after_more_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    let vals: Vec<String> = (0..7).map(|i| i.to_string()).collect();
    let mut args = vec!["list", "append", s(&d), "k"];
    args.extend(vals.iter().map(String::as_str));
    ok(&args);
    ok(&["list", "append", s(&d), "noise", "1", "2", "3"]);
    let p1 = list_read(&d, "k", &["--limit", "3"]);
    assert_eq!(offsets(&p1), [0, 1, 2]);
    let p2 = list_read(&d, "k", &["--limit", "3", "--continue", &token(&p1)]);
    assert_eq!(offsets(&p2), [3, 4, 5]);
    let p3 = list_read(&d, "k", &["--limit", "3", "--continue", &token(&p2)]);
    assert_eq!(offsets(&p3), [6]);
    // At the end a forward page still has a token, for items appended later.
    let p4 = list_read(&d, "k", &["--limit", "3", "--continue", &token(&p3)]);
    assert_eq!(offsets(&p4), Vec::<u64>::new());
    let t4 = token(&p4);
    // A token can be used again: the same page.
    assert_eq!(
        list_read(&d, "k", &["--limit", "3", "--continue", &token(&p1)]),
        p2
    );
    ok(&["list", "append", s(&d), "k", "7", "8"]);
    for t in [token(&p3), t4] {
        let p = list_read(&d, "k", &["--continue", &t]);
        assert_eq!(offsets(&p), [7, 8]);
        let values: Vec<Value> = p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["value"].clone())
            .collect();
        assert_eq!(values, [json!(7), json!(8)]);
    }
    // A mid-list token continues exactly after its page, including the new items.
    let p = list_read(&d, "k", &["--limit", "100", "--continue", &token(&p1)]);
    assert_eq!(offsets(&p), [3, 4, 5, 6, 7, 8]);
    // Default: from the first item, at most 100.
    assert_eq!(
        offsets(&list_read(&d, "k", &[])),
        (0..9).collect::<Vec<_>>()
    );
}

#[test]
fn list_read_pages_backward_with_tokens_until_null() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    ok(&["list", "append", s(&d), "k", "0", "1", "2", "3", "4"]);
    let p1 = list_read(&d, "k", &["--reverse", "--limit", "2"]);
    assert_eq!(offsets(&p1), [4, 3]);
    ok(&["list", "append", s(&d), "k", "5"]);
    // Continuing a reverse page goes further back (with or without --reverse), never
    // to the newer items.
    let p2 = list_read(
        &d,
        "k",
        &["--reverse", "--limit", "2", "--continue", &token(&p1)],
    );
    assert_eq!(offsets(&p2), [2, 1]);
    let p2b = list_read(&d, "k", &["--limit", "2", "--continue", &token(&p1)]);
    assert_eq!(p2b, p2);
    let p3 = list_read(
        &d,
        "k",
        &["--reverse", "--limit", "2", "--continue", &token(&p2)],
    );
    assert_eq!(offsets(&p3), [0]);
    assert_eq!(p3["continuation"], Value::Null, "{p3}");
    // Exactly at the first item: the page ends there with null.
    let q = list_read(
        &d,
        "k",
        &["--reverse", "--limit", "3", "--from-offset", "2"],
    );
    assert_eq!(offsets(&q), [2, 1, 0]);
    assert_eq!(q["continuation"], Value::Null);
    // A forward token cannot be continued backwards.
    let f = list_read(&d, "k", &["--limit", "2"]);
    let (code, _, err) = run(&[
        "list",
        "read",
        "--reverse",
        "--continue",
        &token(&f),
        s(&d),
        "k",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("forwards"), "{err}");
}

#[test]
fn list_read_starts_at_an_offset_a_time_or_a_nonce() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    for i in 1..=5u64 {
        ok(&[
            "list",
            "append",
            "--ts",
            &(1000 * i).to_string(),
            "--nonce",
            &(10 * i).to_string(),
            s(&d),
            "k",
            &i.to_string(),
        ]);
    }
    let page = list_read(&d, "k", &[]);
    let ts: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ts"].as_i64().unwrap())
        .collect();
    assert_eq!(ts, [1000, 2000, 3000, 4000, 5000]);
    let cases: &[(&[&str], &[u64])] = &[
        (&["--from-offset", "3"], &[3, 4]),
        (&["--from-offset", "9"], &[]),
        (&["--reverse", "--from-offset", "3"], &[3, 2, 1, 0]),
        (&["--from-time", "3000"], &[2, 3, 4]),
        (&["--from-time", "2500"], &[2, 3, 4]),
        (&["--from-time", "0"], &[0, 1, 2, 3, 4]),
        (&["--from-time", "9000"], &[]),
        (&["--reverse", "--from-time", "2500"], &[1, 0]),
        (&["--reverse", "--from-time", "3000"], &[2, 1, 0]),
        (&["--from-nonce", "30"], &[2, 3, 4]),
        (&["--from-nonce", "31"], &[3, 4]),
        (&["--reverse", "--from-nonce", "31"], &[2, 1, 0]),
        (&["--from-nonce", "30", "--limit", "1"], &[2]),
        (&["--reverse", "--limit", "2"], &[4, 3]),
    ];
    for (flags, want) in cases {
        assert_eq!(offsets(&list_read(&d, "k", flags)), *want, "{flags:?}");
    }
    // A start then paging on from it.
    let p = list_read(&d, "k", &["--from-time", "2000", "--limit", "2"]);
    assert_eq!(offsets(&p), [1, 2]);
    assert_eq!(
        offsets(&list_read(&d, "k", &["--continue", &token(&p)])),
        [3, 4]
    );
    // One start at a time, and a positive limit.
    let (code, _, _) = run(&[
        "list",
        "read",
        "--from-offset",
        "1",
        "--from-nonce",
        "3",
        s(&d),
        "k",
    ]);
    assert_eq!(code, 2);
    // A malformed option value: a command line that does not parse (it was exit 1).
    let (code, _, err) = run(&["list", "read", "--limit", "0", s(&d), "k"]);
    assert_eq!(code, 2);
    assert!(err.contains("--limit"), "{err}");
}

#[test]
fn list_read_rejects_malformed_and_foreign_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    let d2 = tmp.path().join("lists2");
    ok(&["list", "append", s(&d), "a", "1", "2", "3"]);
    ok(&["list", "append", s(&d), "b", "1", "2", "3"]);
    ok(&["list", "append", s(&d2), "a", "1", "2", "3"]);
    let t = token(&list_read(&d, "a", &["--limit", "1"]));
    assert_eq!(t.len(), 64, "{t}");
    let flip = |at: usize| {
        let mut b = t.clone().into_bytes();
        b[at] = if b[at] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).unwrap()
    };
    let malformed = [
        "zz".to_string(),
        String::new(),
        t[..62].to_string(),
        format!("{t}00"),
        format!("g{}", &t[1..]),
        flip(10),
        flip(63),
        "x".repeat(64),
    ];
    for bad in &malformed {
        let (code, out, err) = run(&["list", "read", "--continue", bad, s(&d), "a"]);
        assert_eq!(code, 1, "{bad:?}: {out}");
        assert!(
            err.contains("malformed continuation token"),
            "{bad:?}: {err}"
        );
    }
    for (dir, key) in [(&d, "b"), (&d2, "a"), (&d, "nokey")] {
        let (code, out, err) = run(&["list", "read", "--continue", &t, s(dir), key]);
        assert_eq!(code, 1, "{key}: {out}");
        assert!(err.contains("another list"), "{key}: {err}");
    }
    // The real token still works.
    assert_eq!(offsets(&list_read(&d, "a", &["--continue", &t])), [1, 2]);
}

#[test]
fn list_info_and_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    ok(&["list", "append", "--ts", "1000", s(&d), "zeta", "1", "2"]);
    ok(&[
        "list",
        "append",
        "--ts",
        "3000",
        "--nonce",
        "7",
        s(&d),
        "zeta",
        "3",
    ]);
    ok(&["list", "append", "--ts", "5", s(&d), "alpha", "1"]);
    ok(&["list", "append", s(&d), "mid:dle key", "1"]);
    assert_eq!(
        text_lines(&ok(&["list", "keys", s(&d)])),
        ["alpha", "mid:dle key", "zeta"]
    );
    // A key holding a line break reads as two lines of text; as JSON it is one key.
    ok(&["list", "append", s(&d), "two\nlines", "1"]);
    assert_eq!(
        parse(&ok(&["list", "keys", "--json", s(&d)])),
        json!(["alpha", "mid:dle key", "two\nlines", "zeta"])
    );
    assert_eq!(
        parse(&ok(&["list", "info", "--json", s(&d), "zeta"])),
        json!({"key": "zeta", "count": 3, "first_offset": 0, "next_offset": 3,
               "first_ts": 1000, "last_ts": 3000, "last_nonce": 7})
    );
    assert_eq!(
        parse(&ok(&["list", "info", "--json", s(&d), "alpha"])),
        json!({"key": "alpha", "count": 1, "first_offset": 0, "next_offset": 1,
               "first_ts": 5, "last_ts": 5, "last_nonce": null})
    );
    let text = ok(&["list", "info", s(&d), "zeta"]);
    for want in ["zeta", "count", "3", "1000", "3000", "7"] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let (code, _, err) = run(&["list", "info", s(&d), "missing"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not found") && err.contains("missing"),
        "{err}"
    );
    let empty = tmp.path().join("empty");
    ok(&["init", "--kind", "lists", s(&empty)]);
    assert_eq!(ok(&["list", "keys", s(&empty)]), "");
    // A forward page of a list nothing was appended to still promises a token.
    let page = list_read(&empty, "k", &[]);
    assert_eq!(page["items"], json!([]));
    assert!(page["continuation"].is_string(), "{page}");
}

// ---------------------------------------------------------------------------------------
// reel view
// ---------------------------------------------------------------------------------------
