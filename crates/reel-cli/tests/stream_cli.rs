//! `reel stream` from the command line.
mod common;
use common::derived::*;
use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

pub fn ten_records(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    let input: String = (0..10).map(|i| format!("{i}\n")).collect();
    assert!(reel_stdin(&["write", s(&d)], &input).status.success());
    d
}

pub fn stream_values(d: &Path, flags: &[&str]) -> Vec<u64> {
    let mut args = vec!["stream"];
    args.extend_from_slice(flags);
    args.push(s(d));
    lines(&ok(&args))
        .iter()
        .map(|v| v.as_u64().expect("value is a number"))
        .collect()
}

#[test]
pub fn stream_bounds_reverse_and_limit_select_exactly_the_right_seqs() {
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
pub fn stream_meta_prints_seq_ts_key_and_value() {
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
pub fn stream_live_keeps_printing_records_appended_by_another_process() {
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
pub fn stream_live_with_an_upper_bound_or_limit_waits_for_it_then_exits() {
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
pub fn stream_refuses_reverse_live_and_missing_spools() {
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
