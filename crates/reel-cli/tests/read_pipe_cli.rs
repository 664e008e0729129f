//! `reel read` into a pipe commits only what its consumer took: after the consumer
//! stops (`head`, a loop that reads a few lines, a killed process), the next run starts
//! exactly after the last record the consumer could have received.
mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// A spool holding the numbers 0..n as records (seq i holds i).
fn numbers(tmp: &tempfile::TempDir, n: u64) -> std::path::PathBuf {
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    let input: String = (0..n).map(|i| format!("{i}\n")).collect();
    assert!(reel_stdin(&["write", s(&d)], &input).status.success());
    d
}

/// Runs `sh -c SCRIPT` with `$REEL` and `$D` set; returns (stdout, stderr).
fn sh(script: &str, dir: &Path) -> (String, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("REEL", bin())
        .env("D", dir)
        .output()
        .expect("run sh");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The seq the next run of the default reader starts at (consumes one record).
fn next_start(d: &Path) -> Option<u64> {
    let out = ok(&["read", "--no-wait", "--meta", "-n", "1", s(d)]);
    lines(&out).first().map(|r| r["seq"].as_u64().unwrap())
}

#[test]
fn read_piped_into_head_1_commits_only_the_printed_record() {
    let tmp = tempfile::tempdir().unwrap();
    let d = numbers(&tmp, 100_000);
    // Following (no --no-wait): read notices that head is gone although nothing new comes.
    let (out, err) = sh("\"$REEL\" read \"$D\" | head -1", &d);
    assert_eq!(out, "0\n");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        next_start(&d),
        Some(1),
        "records head never printed were lost"
    );
}

#[test]
fn read_no_wait_piped_into_head_3_commits_exactly_three() {
    let tmp = tempfile::tempdir().unwrap();
    let d = numbers(&tmp, 100_000);
    let (out, _) = sh("\"$REEL\" read --no-wait \"$D\" | head -3", &d);
    assert_eq!(out, "0\n1\n2\n");
    assert_eq!(next_start(&d), Some(3));
    // And again from there.
    let (out, _) = sh("\"$REEL\" read --no-wait \"$D\" | head -3", &d);
    assert_eq!(out, "4\n5\n6\n");
    assert_eq!(next_start(&d), Some(7));
}

#[test]
fn a_slow_consumer_gets_everything_and_read_waits_for_it_before_committing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = numbers(&tmp, 400);
    let got = tmp.path().join("got");
    // `read` in sh takes one byte at a time: the consumer is slow and has no read-ahead.
    let script = format!(
        "\"$REEL\" read --no-wait \"$D\" | while read -r l; do echo \"$l\" >> '{}'; sleep 0.001; done",
        got.display()
    );
    sh(&script, &d);
    let text = std::fs::read_to_string(&got).unwrap();
    let want: String = (0..400).map(|i| format!("{i}\n")).collect();
    assert_eq!(text, want);
    assert_eq!(
        next_start(&d),
        None,
        "everything the consumer got is committed"
    );
}

#[test]
fn a_consumer_that_stops_after_some_lines_gets_the_rest_next_time() {
    let tmp = tempfile::tempdir().unwrap();
    let d = numbers(&tmp, 50_000);
    let got = tmp.path().join("got");
    // Reads exactly 1234 lines (one byte at a time), then exits: the pipe closes while
    // `read` still has tens of kilobytes in it.
    let script = format!(
        "\"$REEL\" read --no-wait \"$D\" | {{ i=0; while [ $i -lt 1234 ] && read -r l; do echo \"$l\" >> '{}'; i=$((i+1)); done; }}",
        got.display()
    );
    sh(&script, &d);
    assert_eq!(std::fs::read_to_string(&got).unwrap().lines().count(), 1234);
    assert_eq!(next_start(&d), Some(1234));
}

#[test]
fn a_consumer_killed_mid_stream_loses_nothing_it_did_not_receive() {
    let tmp = tempfile::tempdir().unwrap();
    let d = numbers(&tmp, 50_000);
    let got = tmp.path().join("got");
    // The consumer kills itself with SIGKILL right after its 777th line.
    let script = format!(
        "\"$REEL\" read \"$D\" | sh -c 'i=0; while read -r l; do echo \"$l\" >> \"$0\"; i=$((i+1)); [ $i -eq 777 ] && kill -9 $$; done' '{}'",
        got.display()
    );
    sh(&script, &d);
    let text = std::fs::read_to_string(&got).unwrap();
    assert_eq!(text.lines().count(), 777);
    assert_eq!(text.lines().last(), Some("776"));
    assert_eq!(next_start(&d), Some(777));
}

#[test]
fn read_into_a_file_commits_everything_written() {
    let tmp = tempfile::tempdir().unwrap();
    let d = numbers(&tmp, 10_000);
    let f = tmp.path().join("out");
    let (_, err) = sh(
        &format!("\"$REEL\" read --no-wait \"$D\" > '{}'", f.display()),
        &d,
    );
    assert!(err.is_empty(), "{err}");
    assert_eq!(std::fs::read_to_string(&f).unwrap().lines().count(), 10_000);
    assert_eq!(next_start(&d), None);
}

#[test]
fn read_timeout_accepts_any_number_of_seconds_and_refuses_nonsense() {
    let tmp = tempfile::tempdir().unwrap();
    let d = numbers(&tmp, 3);
    let out = ok(&["read", "--timeout", "1e30", "-n", "3", s(&d)]);
    assert_eq!(out, "0\n1\n2\n");
    for bad in ["-1", "NaN"] {
        let out = reel(&["read", &format!("--timeout={bad}"), s(&d)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad}: a malformed option value"
        );
        assert!(
            err.contains("--timeout") && !err.contains("panicked"),
            "{err}"
        );
    }
}
