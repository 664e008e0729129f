//! The command-line contract of issue #2, command by command.
mod common;
use common::*;
use serde_json::json;

#[test]
fn init_creates_parents_and_reports_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("a/b/spool");
    let out = ok(&["init", s(&d)]);
    assert!(
        out.contains("1.0 GiB") && out.contains("drop-oldest"),
        "{out}"
    );
    let st: serde_json::Value = serde_json::from_str(&ok(&["status", "--json", s(&d)])).unwrap();
    assert_eq!(st["capacity"], 1u64 << 30);
    assert_eq!(st["when_full"], "drop-oldest");
    for (size, bytes) in [
        ("64k", 64u64 << 10),
        ("3M", 3 << 20),
        ("2g", 2 << 30),
        ("1t", 1 << 40),
    ] {
        let d = tmp.path().join(format!("s{size}"));
        ok(&["init", "--size", size, s(&d)]);
        let st: serde_json::Value =
            serde_json::from_str(&ok(&["status", "--json", s(&d)])).unwrap();
        assert_eq!(st["capacity"], bytes, "{size}");
    }
    assert!(fails(&["init", "--size", "12q", s(&tmp.path().join("x"))]).contains("size"));
}

#[test]
fn init_on_an_existing_spool_resizes_and_keeps_data() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", "--size", "1m", s(&d)]);
    let pad = "p".repeat(1000);
    let input: String = (0..2000)
        .map(|i| format!("{{\"i\":{i},\"pad\":\"{pad}\"}}\n"))
        .collect();
    assert!(reel_stdin(&["write", s(&d)], &input).status.success());
    let before: serde_json::Value =
        serde_json::from_str(&ok(&["status", "--json", s(&d)])).unwrap();
    ok(&["init", "--size", "4m", "--when-full", "reject", s(&d)]);
    let after: serde_json::Value = serde_json::from_str(&ok(&["status", "--json", s(&d)])).unwrap();
    assert_eq!(after["capacity"], 4u64 << 20);
    assert_eq!(after["when_full"], "reject");
    assert_eq!(after["next_seq"], before["next_seq"]);
    assert_eq!(
        after["oldest_seq"], before["oldest_seq"],
        "growing keeps every record"
    );
    // Shrinking so that records would go is refused, naming them, and changes nothing.
    let err = fails(&[
        "init",
        "--size",
        "256k",
        "--when-full",
        "drop-oldest",
        s(&d),
    ]);
    assert!(
        err.contains("would drop the")
            && err.contains("--force")
            && err.contains(&format!("(seq {} to", before["oldest_seq"])),
        "{err}"
    );
    let unchanged: serde_json::Value =
        serde_json::from_str(&ok(&["status", "--json", s(&d)])).unwrap();
    assert_eq!(unchanged["capacity"], 4u64 << 20);
    assert_eq!(unchanged["oldest_seq"], before["oldest_seq"]);
    // With --force, drop-oldest drops the oldest records to fit, as announced.
    let announced: u64 = err
        .split("would drop the ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    ok(&[
        "init",
        "--size",
        "256k",
        "--when-full",
        "drop-oldest",
        "--force",
        s(&d),
    ]);
    let small: serde_json::Value = serde_json::from_str(&ok(&["status", "--json", s(&d)])).unwrap();
    assert!(small["oldest_seq"].as_u64() > before["oldest_seq"].as_u64());
    assert!(
        small["used_bytes"].as_u64().unwrap()
            <= (256 << 10) + small["segment_size"].as_u64().unwrap()
    );
    let first = lines(&ok(&["read", "--no-wait", "-n", "1", s(&d)]));
    assert_eq!(first[0]["i"], small["oldest_seq"]);
    assert_eq!(
        small["oldest_seq"].as_u64().unwrap() - before["oldest_seq"].as_u64().unwrap(),
        announced,
        "dropped exactly what the refusal announced"
    );
}

#[test]
fn write_arguments_and_stdin_and_read_them_back() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    ok(&["write", s(&d), r#"{"a":1}"#, r#"{"b":"two"}"#]);
    let out = reel_stdin(
        &["write", "--key", "k1", s(&d)],
        "{\"c\":3}\n\n   \n{\"d\":[4]}\n",
    );
    assert!(out.status.success());
    let got = lines(&ok(&["read", "--no-wait", s(&d)]));
    assert_eq!(
        got,
        vec![
            json!({"a":1}),
            json!({"b":"two"}),
            json!({"c":3}),
            json!({"d":[4]})
        ]
    );
    ok(&["rewind", s(&d)]);
    let meta = lines(&ok(&["read", "--no-wait", "--meta", s(&d)]));
    assert_eq!(meta[2]["seq"], 2);
    assert_eq!(meta[2]["key"], "k1");
    assert_eq!(meta[0]["key"], serde_json::Value::Null);
    assert!(meta[0]["ts"].as_i64().unwrap() > 1_600_000_000_000_000);
    assert_eq!(meta[3]["value"], json!({"d":[4]}));
}

#[test]
fn invalid_json_stops_at_the_named_line_keeping_what_came_before() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    let out = reel_stdin(
        &["write", s(&d)],
        "{\"ok\":1}\n{\"ok\":2}\n{oops}\n{\"ok\":3}\n",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("invalid JSON"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one-line message: {err}");
    let err = fails(&["write", s(&d), r#"{"ok":4}"#, "[1,", r#"{"ok":5}"#]);
    assert!(err.contains("argument 2"), "{err}");
    let got = lines(&ok(&["read", "--no-wait", s(&d)]));
    assert_eq!(got, vec![json!({"ok":1}), json!({"ok":2}), json!({"ok":4})]);
    // An integer beyond 64 bits would be stored as the nearest double: refused.
    for big in ["18446744073709551617", r#"{"id":12345678901234567890123}"#] {
        let err = fails(&["write", s(&d), big]);
        assert!(err.contains("outside the 64-bit range"), "{err}");
    }
    let err = fails(&[
        "kv",
        "set",
        "-e",
        s(&tmp.path().join("kv")),
        "n",
        "99999999999999999999",
    ]);
    assert!(err.contains("outside the 64-bit range"), "{err}");
    ok(&["write", s(&d), "18446744073709551615"]);
    let got = ok(&["read", "--no-wait", s(&d)]);
    assert_eq!(
        got.trim(),
        "18446744073709551615",
        "the largest u64 is kept exactly"
    );
}

#[test]
fn oversize_records_are_refused_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", "--max-record-size", "1k", s(&d)]);
    let big = format!("\"{}\"", "x".repeat(2000));
    let err = fails(&["write", s(&d), "1", &big]);
    assert!(err.contains("maximum record size"), "{err}");
    assert_eq!(lines(&ok(&["read", "--no-wait", s(&d)])), vec![json!(1)]);
}

#[test]
fn big_records_up_to_the_default_maximum_work() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", "--size", "256m", s(&d)]);
    // A string value of ~15.9 MiB: its MessagePack stays below the 16 MiB default.
    let big = format!("\"{}\"\n", "y".repeat((16 << 20) - 100));
    let input = format!("\"\"\n{{}}\n{big}\"small\"\n");
    assert!(reel_stdin(&["write", s(&d)], &input).status.success());
    let got = lines(&ok(&["read", "--no-wait", s(&d)]));
    assert_eq!(got.len(), 4);
    assert_eq!(got[2].as_str().unwrap().len(), (16 << 20) - 100);
    assert_eq!(got[3], json!("small"));
}

#[test]
fn read_counts_times_out_and_resumes_without_skipping() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    let input: String = (0..10).map(|i| format!("{i}\n")).collect();
    reel_stdin(&["write", s(&d)], &input);
    assert_eq!(
        lines(&ok(&["read", "-n", "3", s(&d)])),
        vec![json!(0), json!(1), json!(2)]
    );
    assert_eq!(
        lines(&ok(&["read", "-n", "3", s(&d)])),
        vec![json!(3), json!(4), json!(5)]
    );
    // Another reader name has its own position.
    assert_eq!(
        lines(&ok(&["read", "--reader", "other", "-n", "1", s(&d)])),
        vec![json!(0)]
    );
    let t = std::time::Instant::now();
    let rest = lines(&ok(&["read", "--timeout", "0.3", s(&d)]));
    assert_eq!(rest, vec![json!(6), json!(7), json!(8), json!(9)]);
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));
    assert!(ok(&["read", "--no-wait", s(&d)]).is_empty());
}

#[test]
fn read_stops_cleanly_when_the_consumer_goes_away_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    let input: String = (0..50_000)
        .map(|i| format!("{{\"i\":{i},\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}\n"))
        .collect();
    reel_stdin(&["write", s(&d)], &input);
    // `reel read | head -1`: stdout closes early.
    let mut child = std::process::Command::new(bin())
        .args(["read", "--no-wait", s(&d)])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "broken pipe is a clean exit");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&first).unwrap()["i"],
        0
    );
    // Whatever was not delivered is delivered next time: no gap.
    let rest = lines(&ok(&["read", "--no-wait", s(&d)]));
    let first_next = rest[0]["i"].as_u64().unwrap();
    assert!(first_next <= 1, "resumed at {first_next}");
    assert_eq!(rest.last().unwrap()["i"], 49_999);
}

#[test]
fn rewind_to_start_seq_and_time() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    ok(&["write", s(&d), "1", "2", "3"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mid = std::time::SystemTime::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    ok(&["write", s(&d), "4", "5"]);
    assert_eq!(lines(&ok(&["read", "--no-wait", s(&d)])).len(), 5);
    assert!(ok(&["rewind", s(&d)]).contains("now at seq 0"));
    assert_eq!(lines(&ok(&["read", "--no-wait", s(&d)])).len(), 5);
    ok(&["rewind", "--to-seq", "3", s(&d)]);
    assert_eq!(
        lines(&ok(&["read", "--no-wait", s(&d)])),
        vec![json!(4), json!(5)]
    );
    let secs = mid
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let t = format_rfc3339(secs);
    ok(&["rewind", "--to-time", &t, s(&d)]);
    assert_eq!(
        lines(&ok(&["read", "--no-wait", s(&d)])),
        vec![json!(4), json!(5)]
    );
    assert!(fails(&["rewind", "--to-time", "last tuesday", s(&d)]).contains("RFC 3339"));
    assert!(fails(&["rewind", "--to-seq", "99", s(&d)]).contains("past the end"));
}

fn format_rfc3339(secs: f64) -> String {
    let out = std::process::Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{secs:.6}"),
            "+%Y-%m-%dT%H:%M:%S.%6NZ",
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Compaction leaves gaps in the seqs: a reader's `unread` (and a rewind's count) is
/// what it will read, not the seqs left to its end.
#[test]
fn unread_counts_the_records_compaction_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", "--size", "64k", "--when-full", "compact", s(&d)]);
    ok(&["read", "--reader", "early", "--no-wait", s(&d)]);
    let pad = "c".repeat(40);
    for _ in 0..4 {
        let batch: String = (0..300)
            .map(|i| format!("{{\"i\":{i},\"p\":\"{pad}\"}}\n"))
            .collect();
        let out = reel_stdin(&["write", "--key", "samekey", s(&d)], &batch);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ok(&["compact", s(&d)]);
    let st: serde_json::Value = serde_json::from_str(&ok(&["status", "--json", s(&d)])).unwrap();
    let unread = st["readers"][0]["unread"].as_u64().unwrap();
    assert!(unread < 1200, "compaction dropped records: {st}");
    let rewound = ok(&["rewind", "--reader", "early", s(&d)]);
    let readable = ok(&["read", "--reader", "early", "--no-wait", s(&d)])
        .lines()
        .count() as u64;
    assert_eq!(unread, readable, "{st}");
    assert!(
        rewound.contains(&format!("({readable} records to read)")),
        "{rewound}"
    );
    assert_eq!(st["records"].as_u64(), Some(readable), "{st}");
}

#[test]
fn status_json_has_the_documented_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", "--size", "10m", s(&d)]);
    ok(&["write", s(&d), "1", "2", "3", "4"]);
    ok(&["read", "-n", "1", "--reader", "r1", s(&d)]);
    let st: serde_json::Value = serde_json::from_str(&ok(&["status", "--json", s(&d)])).unwrap();
    for k in [
        "dir",
        "capacity",
        "used_bytes",
        "segments",
        "segment_size",
        "max_record_size",
        "oldest_seq",
        "next_seq",
        "records",
        "when_full",
        "readers",
    ] {
        assert!(st.get(k).is_some(), "missing key {k}: {st}");
    }
    let r = &st["readers"][0];
    assert_eq!(
        (
            r["name"].as_str(),
            r["position"].as_u64(),
            r["unread"].as_u64(),
            r["lost"].as_u64()
        ),
        (Some("r1"), Some(1), Some(3), Some(0))
    );
    assert_eq!(r["consumed_pct"], 25.0);
    let text = ok(&["status", s(&d)]);
    assert!(text.contains("r1") && text.contains("10.0 MiB"), "{text}");
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        "init", "write", "read", "rewind", "status", "tee", "verify", "bench", "demo",
    ] {
        let out = ok(&[cmd, "--help"]);
        assert!(
            out.contains("Example"),
            "{cmd} --help lacks an example:\n{out}"
        );
    }
    assert!(ok(&["--help"]).contains("reel init"));
}

#[test]
fn errors_are_one_line_naming_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let not = tmp.path().join("not-a-spool");
    std::fs::create_dir_all(&not).unwrap();
    std::fs::write(not.join("file.txt"), "hello").unwrap();
    for args in [
        vec!["write", s(&not), "1"],
        vec!["read", s(&not)],
        vec!["status", s(&not)],
        vec!["verify", s(&not)],
    ] {
        let err = fails(&args);
        assert!(
            err.contains("not a reel spool") && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    assert!(fails(&["init", s(&not)]).contains("not empty"));
    let missing = tmp.path().join("missing");
    assert!(fails(&["read", s(&missing)]).contains("not a reel spool"));
}

#[test]
fn tee_copies_and_a_restart_continues_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, d1, d2) = (
        tmp.path().join("src"),
        tmp.path().join("d1"),
        tmp.path().join("d2"),
    );
    for d in [&src, &d1, &d2] {
        ok(&["init", s(d)]);
    }
    ok(&["write", s(&src), "1", "2", "3"]);
    ok(&["tee", "--no-wait", s(&src), s(&d1), s(&d2)]);
    ok(&["write", s(&src), "4"]);
    ok(&["tee", "--no-wait", s(&src), s(&d1), s(&d2)]);
    for d in [&d1, &d2] {
        assert_eq!(
            lines(&ok(&["read", "--no-wait", s(d)])),
            vec![json!(1), json!(2), json!(3), json!(4)]
        );
    }
    let st: serde_json::Value = serde_json::from_str(&ok(&["status", "--json", s(&src)])).unwrap();
    assert_eq!(st["readers"][0]["name"], "tee");
    assert_eq!(st["readers"][0]["unread"], 0);
    assert!(
        fails(&["tee", "--no-wait", s(&src), s(&tmp.path().join("nope"))])
            .contains("not a reel spool")
    );
}

#[test]
fn a_reader_in_use_elsewhere_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    // The reader exists before the follower starts, so that the probing `rewind`s below
    // never create it (and so never hold its lock while the follower starts).
    ok(&["rewind", s(&d)]);
    let mut child = std::process::Command::new(bin())
        .args(["read", s(&d)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the follower sleeps waiting for records (the `waiters` word of reel.head,
    // FORMAT.md §5, byte 20), it holds its reader.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let head = std::fs::read(d.join("reel.head")).unwrap();
        if u32::from_ne_bytes(head[20..24].try_into().unwrap()) > 0 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut why = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut why).unwrap();
            panic!("the following reader exited ({status}): {why}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the following reader never started waiting"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = reel(&["rewind", s(&d)]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("in use"), "{err}");
    child.kill().unwrap();
    child.wait().unwrap();
    ok(&["rewind", s(&d)]);
}

#[test]
fn a_read_only_directory_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    ok(&["write", s(&d), "1"]);
    let mut perms = std::fs::metadata(&d).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&d, perms.clone()).unwrap();
    for f in ["reel.head", "reel.lock"] {
        let mut p = std::fs::metadata(d.join(f)).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o444);
        std::fs::set_permissions(d.join(f), p).unwrap();
    }
    if std::fs::write(d.join("probe"), "x").is_ok() {
        eprintln!("running with privileges that ignore permissions; read-only check skipped");
        return;
    }
    let err = fails(&["write", s(&d), "2"]);
    assert!(
        err.contains("permission denied") || err.contains("read-only"),
        "{err}"
    );
    ok(&["verify", s(&d)]);
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&d, perms).unwrap();
}

#[test]
fn bench_reports_the_documented_json_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(&[
        "bench",
        "--records",
        "2000",
        "--wakeups",
        "20",
        "--json",
        s(tmp.path()),
    ]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for k in [
        "append_per_s",
        "read_per_s",
        "raw_append_per_s",
        "wake_p50_us",
        "wake_p99_us",
        "batch8_per_s",
        "raw_sync100_per_s",
        "raw_sync10ms_per_s",
        "batch8_vs_raw",
        "raw_sync8_per_s",
        "always8_vs_raw",
        "open_ms",
    ] {
        assert!(
            r[k].as_f64().is_some_and(|v| v > 0.0),
            "{k} missing or zero in {r}"
        );
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "bench cleans up after itself"
    );
}

/// Lines were trimmed of any Unicode blank, so a line starting with a vertical tab or a
/// form feed (not JSON whitespace) was stored as if it were JSON.
#[test]
fn write_takes_only_json_whitespace_around_a_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    let out = reel_stdin(&["write", s(&d)], " 1\t\r\n\u{b}2\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2"),
        "{out:?}"
    );
}
