//! No command panics, whatever it is given: with stdout closed before it prints
//! (`reel ... | head` where head is gone), with numbers at their limits.
mod common;
use common::*;
use std::process::{Command, Output, Stdio};

/// Runs `reel ARGS` with a stdout pipe whose reading end is already closed.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (r, w) = std::io::pipe().unwrap();
    drop(r);
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(w)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn no_panic(args: &[&str], out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && out.status.code() != Some(101),
        "reel {args:?} panicked: {err}"
    );
}

#[test]
fn every_command_that_prints_ends_quietly_on_a_closed_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    let kv = tmp.path().join("kv");
    let l = tmp.path().join("l");
    let copy = tmp.path().join("copy");
    let (d, kv, l, copy) = (s(&d), s(&kv), s(&l), s(&copy));
    ok(&["init", d]);
    ok(&["init", copy]);
    ok(&["write", "--key", "k", d, "1", "2", "3"]);
    ok(&["kv", "set", kv, "a.b", "1"]);
    ok(&["kv", "set", kv, "a.c", "2"]);
    ok(&["list", "append", l, "k", "1", "2"]);
    let demo = tmp.path().join("demo");
    let bench = tmp.path().join("bench");
    let new = tmp.path().join("new");
    let cases: Vec<Vec<&str>> = vec![
        vec!["--help"],
        vec!["--version"],
        vec!["read", "--help"],
        vec!["init", s(&new)],
        vec!["init", "--size", "2m", d],
        vec!["read", "--no-wait", d],
        vec!["read", "--count", "1", d],
        vec!["rewind", d],
        vec!["status", d],
        vec!["status", "--json", d],
        vec!["tee", "--no-wait", d, copy],
        vec!["verify", d],
        vec!["verify", "--json", d],
        vec!["stream", d],
        vec!["stream", "--reverse", "--meta", d],
        vec!["compact", d],
        vec!["view", "list", kv],
        vec!["view", "list", "--json", kv],
        vec!["view", "rebuild", kv, "kv"],
        vec!["kv", "set", kv, "x", "1"],
        vec!["kv", "get", kv, "a.b"],
        vec!["kv", "get", "--meta", kv, "a.b"],
        vec!["kv", "get", "-r", kv, "a"],
        vec!["kv", "keys", kv],
        vec!["kv", "keys", "-r", kv],
        vec!["kv", "watch", "--fetch", "--count", "1", kv, "a"],
        vec!["kv", "del", kv, "x"],
        vec!["list", "append", l, "k", "3"],
        vec!["list", "read", l, "k"],
        vec!["list", "info", l, "k"],
        vec!["list", "info", "--json", l, "k"],
        vec!["list", "keys", l],
        vec!["demo", s(&demo)],
        vec!["bench", "--records", "1000", "--wakeups", "5", s(&bench)],
    ];
    for args in &cases {
        let out = with_closed_stdout(args);
        no_panic(args, &out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "reel {args:?}: a closed stdout is the end of the output, not a failure: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn extreme_numbers_are_errors_or_work_but_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("l");
    let d = tmp.path().join("s");
    let (l, d) = (s(&l), s(&d));
    ok(&["list", "append", l, "k", "1", "2", "3"]);
    ok(&["init", d]);
    ok(&["write", d, "1"]);
    let page = lines(&ok(&["list", "read", "--limit", "1", l, "k"]));
    let token = page[0]["continuation"].as_str().unwrap().to_string();
    let max = u64::MAX.to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "list",
            "read",
            "--limit",
            &max,
            "--continue",
            &token,
            l,
            "k",
        ],
        vec!["list", "read", "--limit", &max, l, "k"],
        vec!["list", "read", "--reverse", "--limit", &max, l, "k"],
        vec!["list", "read", "--from-offset", &max, l, "k"],
        vec!["list", "read", "--reverse", "--from-offset", &max, l, "k"],
        vec![
            "list",
            "read",
            "--from-time",
            "-9223372036854775808",
            l,
            "k",
        ],
        vec!["read", "--timeout", "1e30", "--no-wait", d],
        vec!["read", "--count", &max, "--no-wait", d],
        vec!["stream", "--gt", &max, d],
        vec!["stream", "--lte", &max, "--limit", &max, d],
        vec!["rewind", "--to-seq", &max, d],
        vec!["rewind", "--to-time", "9999-12-31T23:59:60Z", d],
        vec!["rewind", "--to-time", "0000-01-01", d],
        vec!["init", "--size", "16777215.99999999999999t", d],
        vec!["init", "--size", "0", d],
        vec!["bench", "--records", "1", "--value-size", &max],
        vec!["kv", "watch", "--from-rev", &max, "--count", "0", d],
    ];
    for args in &cases {
        let out = reel(args);
        no_panic(args, &out);
    }
    // The page after the first with an enormous limit is the rest of the list.
    let page = lines(&ok(&[
        "list",
        "read",
        "--limit",
        &max,
        "--continue",
        &token,
        l,
        "k",
    ]));
    assert_eq!(page[0]["items"].as_array().unwrap().len(), 2);
}
