//! The derived-data commands from the command line: `stream`, `kv`, `list`, `view`,
//! `compact` (and `init --when-full compact`), run as separate processes.
mod common;
use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Generous limit for anything that should happen "promptly" across processes.
const PROMPT: Duration = Duration::from_secs(10);

fn parse(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON: {text:?}: {e}"))
}

fn status(dir: &Path) -> Value {
    parse(&ok(&["status", "--json", s(dir)]))
}

fn next_seq(dir: &Path) -> u64 {
    status(dir)["next_seq"].as_u64().unwrap()
}

/// Runs `reel ARGS`; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = reel(args);
    (
        out.status.code().expect("reel was killed by a signal"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `reel kv set`, returning the printed revision.
fn kv_set(dir: &Path, path: &str, value: &str) -> u64 {
    ok(&["kv", "set", s(dir), path, value])
        .trim()
        .parse()
        .expect("kv set prints a revision")
}

/// `reel kv set -e`, returning the printed revision.
fn kv_set_json(dir: &Path, path: &str, value: &str) -> u64 {
    ok(&["kv", "set", "-e", s(dir), path, value])
        .trim()
        .parse()
        .expect("kv set prints a revision")
}

fn kv_get(dir: &Path, path: &str) -> Value {
    parse(&ok(&["kv", "get", s(dir), path]))
}

fn kv_meta(dir: &Path, path: &str) -> Value {
    parse(&ok(&["kv", "get", "--meta", s(dir), path]))
}

fn text_lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// A `reel` process whose stdout lines are read by a thread, so that a test can wait for
/// each line with a timeout. Killed when dropped.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    what: String,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn reel");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines: rx,
            what: format!("reel {args:?}"),
        }
    }

    /// The next stdout line, waiting at most `PROMPT`.
    fn line(&self) -> String {
        match self.lines.recv_timeout(PROMPT) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => panic!("{}: no line within {PROMPT:?}", self.what),
            Err(RecvTimeoutError::Disconnected) => panic!("{}: stdout closed early", self.what),
        }
    }

    fn json_line(&self) -> Value {
        parse(&self.line())
    }

    /// Panics if a line arrives within `d`: nothing more is printed for now.
    fn assert_quiet_for(&self, d: Duration) {
        if let Ok(l) = self.lines.recv_timeout(d) {
            panic!("{}: unexpected line {l:?}", self.what);
        }
    }

    /// Waits for the process to exit by itself within `PROMPT`; returns its status and
    /// every stdout line not yet taken.
    fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let t = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                t.elapsed() < PROMPT,
                "{}: still running after {PROMPT:?}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut rest = Vec::new();
        loop {
            match self.lines.recv_timeout(PROMPT) {
                Ok(l) => rest.push(l),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("{}: stdout not closed", self.what),
            }
        }
        (status, rest)
    }

    fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut e = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut e);
        }
        e
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic, incompressible-looking text of `n` characters.
fn noise(seed: u64, n: usize) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ABC[(x % ABC.len() as u64) as usize] as char
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// reel stream
// ---------------------------------------------------------------------------------------

/// A spool holding the records 0..10 whose value equals their seq.
fn ten_records(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    let input: String = (0..10).map(|i| format!("{i}\n")).collect();
    assert!(reel_stdin(&["write", s(&d)], &input).status.success());
    d
}

fn stream_values(d: &Path, flags: &[&str]) -> Vec<u64> {
    let mut args = vec!["stream"];
    args.extend_from_slice(flags);
    args.push(s(d));
    lines(&ok(&args))
        .iter()
        .map(|v| v.as_u64().expect("value is a number"))
        .collect()
}

#[test]
fn stream_bounds_reverse_and_limit_select_exactly_the_right_seqs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = ten_records(&tmp);
    let all: Vec<u64> = (0..10).collect();
    let cases: &[(&[&str], Vec<u64>)] = &[
        (&[], all.clone()),
        (&["--gt", "6"], vec![7, 8, 9]),
        (&["--gte", "6"], vec![6, 7, 8, 9]),
        (&["--lt", "3"], vec![0, 1, 2]),
        (&["--lte", "3"], vec![0, 1, 2, 3]),
        (&["--gt", "2", "--lt", "6"], vec![3, 4, 5]),
        (&["--gte", "2", "--lte", "6"], vec![2, 3, 4, 5, 6]),
        (&["--gt", "2", "--lte", "6"], vec![3, 4, 5, 6]),
        (&["--gte", "2", "--lt", "6"], vec![2, 3, 4, 5]),
        (&["--gte", "4", "--lte", "4"], vec![4]),
        // Both lower (or both upper) bounds: the stricter one wins.
        (&["--gt", "1", "--gte", "5"], vec![5, 6, 7, 8, 9]),
        (&["--gt", "5", "--gte", "1"], vec![6, 7, 8, 9]),
        (&["--lt", "3", "--lte", "7"], vec![0, 1, 2]),
        (&["--lt", "8", "--lte", "2"], vec![0, 1, 2]),
        // Empty and out-of-range selections.
        (&["--gt", "4", "--lt", "5"], vec![]),
        (&["--gte", "6", "--lte", "3"], vec![]),
        (&["--lt", "0"], vec![]),
        (&["--gt", "9"], vec![]),
        (&["--gte", "100"], vec![]),
        (&["--lte", "100"], all.clone()),
        // Reverse.
        (&["--reverse"], all.iter().rev().copied().collect()),
        (&["--reverse", "--gt", "6"], vec![9, 8, 7]),
        (&["--reverse", "--gte", "2", "--lt", "5"], vec![4, 3, 2]),
        (&["--reverse", "--lte", "1"], vec![1, 0]),
        // Limit.
        (&["--limit", "3"], vec![0, 1, 2]),
        (&["--limit", "0"], vec![]),
        (&["--limit", "100"], all.clone()),
        (&["--reverse", "--limit", "2"], vec![9, 8]),
        (&["--gte", "3", "--limit", "2"], vec![3, 4]),
        (&["--reverse", "--lt", "7", "--limit", "3"], vec![6, 5, 4]),
        (&["--gt", "1", "--lt", "4", "--limit", "10"], vec![2, 3]),
    ];
    for (flags, want) in cases {
        assert_eq!(&stream_values(&d, flags), want, "reel stream {flags:?}");
    }
    // Stream keeps no position: the same query again gives the same answer.
    assert_eq!(stream_values(&d, &["--gt", "6"]), vec![7, 8, 9]);
}

#[test]
fn stream_meta_prints_seq_ts_key_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    let before = now_micros();
    ok(&["write", s(&d), r#"{"a":1}"#, "2"]);
    ok(&["write", "--key", "k:1", s(&d), r#""three""#]);
    let after = now_micros();
    let plain = lines(&ok(&["stream", s(&d)]));
    assert_eq!(plain, vec![json!({"a":1}), json!(2), json!("three")]);
    let meta = lines(&ok(&["stream", "--meta", s(&d)]));
    assert_eq!(meta.len(), 3);
    let mut last_ts = i64::MIN;
    for (i, m) in meta.iter().enumerate() {
        assert_eq!(m["seq"], i as u64, "{m}");
        assert_eq!(m["value"], plain[i], "{m}");
        let ts = m["ts"].as_i64().expect("ts is an integer");
        assert!(
            (before - 1_000_000..=after + 1_000_000).contains(&ts),
            "ts {ts} is not the write time in microseconds ({before}..{after})"
        );
        assert!(ts >= last_ts, "ts goes backwards: {meta:?}");
        last_ts = ts;
    }
    assert_eq!(meta[0]["key"], Value::Null);
    assert_eq!(meta[1]["key"], Value::Null);
    assert_eq!(meta[2]["key"], "k:1");
    let rev = lines(&ok(&[
        "stream",
        "--meta",
        "--reverse",
        "--limit",
        "1",
        s(&d),
    ]));
    assert_eq!(rev, vec![meta[2].clone()]);
}

#[test]
fn stream_live_keeps_printing_records_appended_by_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    ok(&["write", s(&d), "0", "1", "2"]);
    let live = Proc::spawn(&["stream", "--live", "--meta", "--gt", "0", s(&d)]);
    // The retained records matching the bounds first.
    for seq in [1u64, 2] {
        let m = live.json_line();
        assert_eq!(
            (m["seq"].as_u64(), m["value"].as_u64()),
            (Some(seq), Some(seq))
        );
    }
    // Then whatever other processes append, in order, as it arrives.
    for round in 0..3u64 {
        let a = 10 + round * 2;
        ok(&[
            "write",
            "--key",
            "live",
            s(&d),
            &a.to_string(),
            &(a + 1).to_string(),
        ]);
        for (k, want) in [a, a + 1].into_iter().enumerate() {
            let m = live.json_line();
            assert_eq!(m["seq"], 3 + round * 2 + k as u64, "{m}");
            assert_eq!(m["value"], want, "{m}");
            assert_eq!(m["key"], "live", "{m}");
        }
    }
    // Nothing else is printed, and the process is still following.
    live.assert_quiet_for(Duration::from_millis(300));
    ok(&["write", s(&d), r#"{"last":true}"#]);
    assert_eq!(live.json_line()["value"], json!({"last": true}));
    drop(live);
}

#[test]
fn stream_live_with_an_upper_bound_or_limit_waits_for_it_then_exits() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    ok(&["write", s(&d), "0", "1"]);
    let bounded = Proc::spawn(&["stream", "--live", "--gte", "1", "--lt", "4", s(&d)]);
    let limited = Proc::spawn(&["stream", "--live", "--limit", "3", s(&d)]);
    assert_eq!(bounded.line(), "1");
    assert_eq!(limited.line(), "0");
    assert_eq!(limited.line(), "1");
    // Both are waiting for more.
    std::thread::sleep(Duration::from_millis(200));
    ok(&["write", s(&d), "2", "3", "4", "5"]);
    let (st, rest) = bounded.finish();
    assert!(st.success(), "{st:?}");
    assert_eq!(rest, ["2", "3"], "--lt 4 stops after seq 3");
    let (st, rest) = limited.finish();
    assert!(st.success(), "{st:?}");
    assert_eq!(rest, ["2"], "--limit 3 stops after three records");
}

#[test]
fn stream_refuses_reverse_live_and_missing_spools() {
    let tmp = tempfile::tempdir().unwrap();
    let d = ten_records(&tmp);
    let (code, out, err) = run(&["stream", "--reverse", "--live", s(&d)]);
    assert_ne!(code, 0);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("--reverse") && err.contains("--live"), "{err}");
    let missing = tmp.path().join("nope");
    let err = fails(&["stream", s(&missing)]);
    assert!(err.contains("not a reel spool"), "{err}");
    assert!(!missing.exists(), "stream must not create a spool");
}

// ---------------------------------------------------------------------------------------
// reel kv: set / get / del / keys
// ---------------------------------------------------------------------------------------

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
    kv_set_json(&d, "a.:12", "true");
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
        "n.:x10",
        "n.:2",
        "n.:-7",
        "n.:b11",
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
        ["n.:-7", "n.:2", "n.:3", "n.:16", "n.10"]
            .into_iter()
            .collect()
    );
    let ints: Vec<&str> = n.iter().copied().filter(|k| k.starts_with("n.:")).collect();
    assert_eq!(ints, ["n.:-7", "n.:2", "n.:3", "n.:16"]);
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
    (":007", ":7"),
    (":::.:_", ":::.:_"),
];

#[test]
fn kv_path_syntax_escapes_types_and_canonical_forms() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    for (i, (given, _)) in SYNTAX.iter().enumerate() {
        kv_set(&d, &format!("p.{given}"), &format!("v{i}"));
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
        assert_eq!(kv_get(&d, &format!("p.{given}")), want, "{given}");
        assert_eq!(kv_get(&d, &format!("p.{canon}")), want, "{canon}");
    }
    // Children print in canonical form, each path once.
    let keys = ok(&["kv", "keys", s(&d), "p"]);
    let got: BTreeSet<&str> = keys.lines().collect();
    let want: BTreeSet<String> = SYNTAX.iter().map(|(_, c)| format!("p.{c}")).collect();
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
    kv_set(&d, "p.:16", "dec");
    assert_eq!(kv_get(&d, "p.:x10"), json!("dec"));
    assert_eq!(kv_get(&d, "p.:b10000"), json!("dec"));
    assert_eq!(
        ok(&["kv", "keys", s(&d), "p"]).lines().count(),
        SYNTAX.len()
    );
    // Multi-element paths with typed and empty elements.
    kv_set(&d, "q.:e.:0.:t.x:_y", "deep");
    assert_eq!(kv_get(&d, "q.:e.:x0.:t.x:_y"), json!("deep"));
    assert_eq!(
        text_lines(&ok(&["kv", "keys", "-r", s(&d), "q"])),
        ["q.:e.:0.:t.x:_y"]
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
        ("a:z", "unknown escape `:z`"),
        (":q", "unknown escape `:q`"),
        ("a.:y.b", "unknown escape `:y`"),
        ("a:", "lone `:`"),
        ("a.:", "`:` alone"),
        (":x", "hexadecimal"),
        (":x1g", "hexadecimal"),
        (":b12", "binary"),
        (":1a", "decimal"),
        (":-", "decimal"),
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

// ---------------------------------------------------------------------------------------
// reel kv watch
// ---------------------------------------------------------------------------------------

#[test]
fn kv_watch_fetch_prints_the_state_then_live_changes_made_by_other_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    let ra = kv_set(&d, "cfg.a", "1");
    let rb = kv_set(&d, "cfg.b", "2");
    kv_set(&d, "other", "x");
    let ra2 = kv_set(&d, "cfg.a", "3");
    assert!(ra2 > ra);
    let t = Instant::now();
    let w = Proc::spawn(&["kv", "watch", "--fetch", "--count", "5", s(&d), "cfg"]);
    // The current state of the subtree (latest values only), then the marker.
    let mut snapshot = vec![w.json_line(), w.json_line()];
    snapshot.sort_by_key(|e| e["path"].as_str().unwrap().to_string());
    assert_eq!(
        snapshot,
        vec![
            json!({"path": "cfg.a", "value": "3", "rev": ra2}),
            json!({"path": "cfg.b", "value": "2", "rev": rb}),
        ]
    );
    assert_eq!(w.json_line(), json!({"synced": true}));
    // Changes by other processes: inside the subtree, outside it, and at paths whose
    // text merely starts like `cfg`.
    let rc = kv_set_json(&d, "cfg.c", "4");
    kv_set(&d, "other", "y");
    kv_set(&d, "cfgx", "no");
    kv_set(&d, "cfg:.x", "no");
    let del: u64 = ok(&["kv", "del", s(&d), "cfg.b"]).trim().parse().unwrap();
    assert_eq!(
        w.json_line(),
        json!({"path": "cfg.c", "value": 4, "rev": rc})
    );
    assert_eq!(
        w.json_line(),
        json!({"path": "cfg.b", "deleted": true, "rev": del})
    );
    let own = kv_set(&d, "cfg", "self");
    let (st, rest) = w.finish();
    assert!(st.success(), "{st:?}");
    assert_eq!(
        rest.iter().map(|l| parse(l)).collect::<Vec<_>>(),
        vec![json!({"path": "cfg", "value": "self", "rev": own})],
        "--count 5 stops after the fifth event"
    );
    assert!(t.elapsed() < PROMPT * 2, "took {:?}", t.elapsed());
}

#[test]
fn kv_watch_fetch_seam_loses_and_doubles_nothing_under_concurrent_writers() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    let n = 30u64;
    let (tx, rx) = mpsc::channel();
    let dir = d.clone();
    let writer = std::thread::spawn(move || {
        let mut revs = BTreeMap::new();
        for i in 0..n {
            revs.insert(
                format!("w.p{i}"),
                kv_set_json(&dir, &format!("w.p{i}"), &i.to_string()),
            );
            if i == 8 {
                tx.send(()).unwrap();
            }
        }
        revs
    });
    rx.recv().unwrap();
    // Starts while the writer keeps going: the seam falls somewhere in the middle.
    let w = Proc::spawn(&[
        "kv",
        "watch",
        "--fetch",
        "--count",
        &n.to_string(),
        s(&d),
        "w",
    ]);
    let revs = writer.join().unwrap();
    let (st, out) = w.finish();
    assert!(st.success(), "{st:?}");
    let events: Vec<Value> = out.iter().map(|l| parse(l)).collect();
    let synced: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["synced"] == true)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(synced.len(), 1, "one synced marker: {events:?}");
    let seam = synced[0];
    assert!(seam >= 9, "the snapshot holds the first values: {events:?}");
    let puts: Vec<&Value> = events.iter().filter(|e| e["synced"] != true).collect();
    assert_eq!(puts.len() as u64, n, "{events:?}");
    let mut seen = BTreeMap::new();
    for e in &puts {
        let path = e["path"].as_str().unwrap().to_string();
        let i: u64 = path.strip_prefix("w.p").unwrap().parse().unwrap();
        assert_eq!(e["value"], i, "{e}");
        assert_eq!(e["rev"], revs[&path], "{e}");
        assert!(seen.insert(path, ()).is_none(), "doubled: {e}");
    }
    assert_eq!(seen.len() as u64, n, "lost events");
    // Live events come in revision order, all after every snapshot revision.
    let snap_max = events[..seam]
        .iter()
        .map(|e| e["rev"].as_u64().unwrap())
        .max();
    let live: Vec<u64> = events[seam + 1..]
        .iter()
        .map(|e| e["rev"].as_u64().unwrap())
        .collect();
    assert!(live.windows(2).all(|w| w[0] < w[1]), "{live:?}");
    if let (Some(m), Some(first)) = (snap_max, live.first()) {
        assert!(*first > m, "live {first} not after snapshot {m}");
    }
}

#[test]
fn kv_watch_from_rev_resumes_after_that_revision() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    let r0 = kv_set(&d, "x.a", "1");
    let r1 = kv_set(&d, "y", "skip");
    let r2 = kv_set_json(&d, "x.b", "2");
    let r3: u64 = ok(&["kv", "del", s(&d), "x.a"]).trim().parse().unwrap();
    let r4 = kv_set(&d, "x", "own");
    assert_eq!([r0, r1, r2, r3, r4], [0, 1, 2, 3, 4]);
    let all = [
        json!({"path": "x.a", "value": "1", "rev": 0}),
        json!({"path": "y", "value": "skip", "rev": 1}),
        json!({"path": "x.b", "value": 2, "rev": 2}),
        json!({"path": "x.a", "deleted": true, "rev": 3}),
        json!({"path": "x", "value": "own", "rev": 4}),
    ];
    let out = ok(&["kv", "watch", "--from-rev", "0", "--count", "4", s(&d), ":"]);
    assert_eq!(lines(&out), all[1..].to_vec());
    let out = ok(&["kv", "watch", "--from-rev", "1", "-n", "3", s(&d), "x"]);
    assert_eq!(
        lines(&out),
        vec![all[2].clone(), all[3].clone(), all[4].clone()]
    );
    // A resumed watch also keeps following.
    let w = Proc::spawn(&["kv", "watch", "--from-rev", "3", "--count", "2", s(&d), "x"]);
    assert_eq!(w.json_line(), all[4]);
    let r5 = kv_set(&d, "x.c", "new");
    let (st, rest) = w.finish();
    assert!(st.success());
    assert_eq!(
        rest.iter().map(|l| parse(l)).collect::<Vec<_>>(),
        vec![json!({"path": "x.c", "value": "new", "rev": r5})]
    );
    // --fetch and --from-rev exclude each other.
    let (code, _, err) = run(&["kv", "watch", "--fetch", "--from-rev", "1", s(&d), "x"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn kv_watch_from_the_largest_revision_neither_panics_nor_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    kv_set(&d, "a", "1");
    kv_set(&d, "b", "2");
    let mut w = Proc::spawn(&[
        "kv",
        "watch",
        "--from-rev",
        &u64::MAX.to_string(),
        "--count",
        "1",
        s(&d),
        ":",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    kv_set(&d, "c", "3");
    // No revision is after u64::MAX: either a clean error or nothing at all.
    match w.lines.recv_timeout(Duration::from_millis(700)) {
        Ok(l) => panic!("printed an event after revision u64::MAX: {l}"),
        Err(RecvTimeoutError::Timeout) => {}
        Err(RecvTimeoutError::Disconnected) => {
            let st = w.child.wait().unwrap();
            let err = w.stderr();
            assert_eq!(st.code(), Some(1), "{st:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Racing compare-and-set across processes
// ---------------------------------------------------------------------------------------

fn spawn_quiet(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn reel")
}

#[test]
fn racing_conditional_sets_on_one_path_exactly_one_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    for round in 0..6 {
        let path = format!("race.r{round}");
        let cond: Vec<String> = if round == 5 {
            vec!["--if-absent".into()]
        } else {
            let r = kv_set(&d, &path, "start");
            vec!["--if-rev".into(), r.to_string()]
        };
        let children: Vec<(String, Child)> = ["A", "B"]
            .iter()
            .map(|who| {
                let mut args: Vec<&str> = vec!["kv", "set"];
                args.extend(cond.iter().map(String::as_str));
                args.extend([s(&d), path.as_str(), who]);
                (who.to_string(), spawn_quiet(&args))
            })
            .collect();
        let results: Vec<(String, i32, String, String)> = children
            .into_iter()
            .map(|(who, c)| {
                let out = c.wait_with_output().unwrap();
                (
                    who,
                    out.status.code().unwrap(),
                    String::from_utf8(out.stdout).unwrap(),
                    String::from_utf8(out.stderr).unwrap(),
                )
            })
            .collect();
        let mut codes: Vec<i32> = results.iter().map(|r| r.1).collect();
        codes.sort();
        assert_eq!(codes, [0, 3], "round {round}: {results:?}");
        let winner = results.iter().find(|r| r.1 == 0).unwrap();
        let loser = results.iter().find(|r| r.1 == 3).unwrap();
        assert!(loser.2.is_empty(), "{loser:?}");
        assert!(loser.3.contains(&path), "{loser:?}");
        let m = kv_meta(&d, &path);
        assert_eq!(m["value"], winner.0.as_str(), "round {round}");
        assert_eq!(m["rev"].to_string(), winner.2.trim(), "round {round}");
    }
}

// ---------------------------------------------------------------------------------------
// reel list
// ---------------------------------------------------------------------------------------

fn list_read(d: &Path, key: &str, flags: &[&str]) -> Value {
    let mut args = vec!["list", "read"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[s(d), key]);
    parse(&ok(&args))
}

fn offsets(page: &Value) -> Vec<u64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["offset"].as_u64().unwrap())
        .collect()
}

fn token(page: &Value) -> String {
    page["continuation"]
        .as_str()
        .unwrap_or_else(|| panic!("no continuation: {page}"))
        .to_string()
}

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
    let (code, _, err) = run(&["list", "read", "--limit", "0", s(&d), "k"]);
    assert_eq!(code, 1);
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
    ok(&["init", s(&empty)]);
    assert_eq!(ok(&["list", "keys", s(&empty)]), "");
    assert_eq!(
        list_read(&empty, "k", &[]),
        json!({"key": "k", "items": [], "continuation": null})
    );
}

// ---------------------------------------------------------------------------------------
// reel view
// ---------------------------------------------------------------------------------------

#[test]
fn view_list_shows_name_version_since_and_lag() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    ok(&["init", s(&d)]);
    assert_eq!(ok(&["view", "list", "--json", s(&d)]).trim(), "[]");
    kv_set(&d, "a", "1");
    kv_set(&d, "b", "2");
    kv_get(&d, "a"); // the kv view catches up to seq 1 and checkpoints
    let views = parse(&ok(&["view", "list", "--json", s(&d)]));
    assert_eq!(
        views,
        json!([{"name": "kv", "version": 1, "since": 1, "lag": 0}])
    );
    ok(&["write", s(&d), "1", "2", "3"]);
    let views = parse(&ok(&["view", "list", "--json", s(&d)]));
    assert_eq!(views[0]["since"], 1);
    assert_eq!(views[0]["lag"], 3, "{views}");
    ok(&["list", "append", s(&d), "l", "1"]);
    ok(&["list", "keys", s(&d)]);
    let views = parse(&ok(&["view", "list", "--json", s(&d)]));
    let names: Vec<&str> = views
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().copied().collect::<BTreeSet<_>>(),
        ["kv", "lists"].into_iter().collect()
    );
    let lists = views
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "lists")
        .unwrap();
    assert_eq!(
        (lists["since"].as_u64(), lists["lag"].as_u64()),
        (Some(5), Some(0))
    );
    let text = ok(&["view", "list", s(&d)]);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "VERSION", "SINCE", "LAG"]);
    let kv_row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("kv "))
        .unwrap_or_else(|| panic!("{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(kv_row, ["kv", "1", "1", "4"]);
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
    ok(&["list", "append", s(&d), "lst", "1", "2"]);
    let tree = parse(&ok(&["kv", "get", "-r", s(&d), ":"]));
    let out = ok(&["view", "rebuild", s(&d), "kv"]);
    assert!(out.contains("rebuilt view kv from 7 records"), "{out}");
    let views = parse(&ok(&["view", "list", "--json", s(&d)]));
    let kv = views
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "kv")
        .unwrap();
    assert_eq!(
        (kv["since"].as_u64(), kv["lag"].as_u64()),
        (Some(6), Some(0)),
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
    // The lists view rebuilds too.
    let out = ok(&["view", "rebuild", s(&d), "lists"]);
    assert!(out.contains("rebuilt view lists"), "{out}");
    assert_eq!(offsets(&list_read(&d, "lst", &[])), [0, 1]);
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
    ok(&["init", "--size", "256k", "--when-full", "compact", s(&d)]);
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
    ok(&["init", "--size", "256k", "--when-full", "compact", s(&d)]);
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
