//! What `reel status` says of a follower: its source, last seq and lag (records and
//! time) while a stalled stream keeps it behind and after it catches up.

use crate::Server;
use crate::common::{bin, ok, reel_stdin};
use crate::proxy::Proxy;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Appends `n` records numbered from `from` to the store at `dir`.
pub fn write_n(dir: &str, from: u64, n: u64) {
    let body: String = (from..from + n)
        .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "p".repeat(40)))
        .collect();
    let out = reel_stdin(&["write", dir], &body);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn replication(dir: &str) -> Value {
    let st: Value = serde_json::from_str(&ok(&["status", "--json", dir])).unwrap();
    st["replication"].clone()
}

/// Polls the follower's status until `done` holds (10 s at most).
fn status_until(dir: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if std::path::Path::new(dir).join("reel.meta").exists() {
            let r = replication(dir);
            if done(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "{what}: never; last status {r}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Follower(Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `reel replicate SRC DST`, its stderr into `log`.
fn follow(src: &str, dst: &str, log: &std::path::Path) -> Follower {
    Follower(
        Command::new(bin())
            .args(["replicate", src, dst])
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn status_shows_a_followers_lag_in_records_and_time_while_its_stream_is_stalled() {
    let s = Server::start(&[]);
    let src = s.dir("ev");
    ok(&["init", &src]);
    write_n(&src, 0, 1000);
    let proxy = Proxy::start(s.addr);
    let url = format!("http://{}/ev", proxy.addr);
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f").display().to_string();
    let log = tmp.path().join("stderr");
    let _follower = follow(&url, &f, &log);
    let r = status_until(&f, "caught up", |r| {
        r["last_seq"] == 999 && r["source_next_seq"] == 1000
    });
    assert_eq!(
        (r["lag_records"].as_u64(), r["lag_seconds"].as_f64()),
        (Some(0), Some(0.0))
    );
    assert!(ok(&["status", &f]).contains("replica    last seq 999, caught up"));

    // The frames stream stalls; the source goes on.
    proxy.hold_frames(true);
    write_n(&src, 1000, 500);
    let r = status_until(&f, "lag seen", |r| r["lag_records"] == 500);
    assert_eq!(r["last_seq"], 999);
    assert_eq!(r["source_next_seq"], 1500);
    let first_lag = r["lag_seconds"].as_f64().unwrap();
    assert!(first_lag > 0.0, "{r}");
    // Nothing arrives: the oldest missing record only gets older.
    std::thread::sleep(Duration::from_millis(1200));
    let r = replication(&f);
    assert_eq!(r["lag_records"], 500);
    assert!(r["lag_seconds"].as_f64().unwrap() >= first_lag + 1.0, "{r}");
    let text = ok(&["status", &f]);
    assert!(text.contains(&format!("follows    {url}")), "{text}");
    assert!(
        text.contains("replica    last seq 999, behind by 500 records"),
        "{text}"
    );
    // It says so on stderr too (once its oldest missing record is a second old).
    let said = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let err = std::fs::read_to_string(&log).unwrap();
            if err.contains(what) {
                return;
            }
            assert!(Instant::now() < deadline, "never said {what:?}: {err}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    said(&format!("reel: behind {url} by 500 records"));

    // Released: it catches up and says so.
    proxy.hold_frames(false);
    let r = status_until(&f, "caught up again", |r| {
        r["last_seq"] == 1499 && r["lag_records"] == 0
    });
    assert_eq!(r["lag_seconds"].as_f64(), Some(0.0));
    assert_eq!(r["gaps"], serde_json::json!([]));
    said(&format!("reel: caught up with {url}"));
}

fn meta_lines(dir: &str) -> Vec<Value> {
    crate::common::lines(&ok(&["stream", "--meta", dir]))
}

fn oldest(dir: &str) -> u64 {
    let st: Value = serde_json::from_str(&ok(&["status", "--json", dir])).unwrap();
    st["oldest_seq"].as_u64().unwrap()
}

/// Writes `n` records of ~900 bytes (a 64 KiB store keeps about 70 of them).
/// (In writes of 20: one batch must fit in the store.)
fn write_big(dir: &str, from: u64, n: u64) {
    for start in (from..from + n).step_by(20) {
        let body: String = (start..(start + 20).min(from + n))
            .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "y".repeat(900)))
            .collect();
        let out = reel_stdin(&["write", dir], &body);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn records_the_source_dropped_stop_the_follower_unless_skip_gap_which_status_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |n: &str| tmp.path().join(n).display().to_string();
    let (src, f) = (path("src"), path("f"));
    ok(&["init", "--size", "64k", &src]);
    write_big(&src, 0, 200);
    let first = oldest(&src);
    assert!(first > 0);
    // Refused, naming the seqs, and nothing copied.
    let err = crate::common::fails(&["replicate", "--no-wait", &src, &f]);
    let want = format!("no longer holds seqs 0 to {}", first - 1);
    assert!(err.contains(&want) && err.contains("--skip-gap"), "{err}");
    assert_eq!(ok(&["stream", &f]), "");
    // With --skip-gap: the follower holds exactly what the source holds.
    ok(&["replicate", "--no-wait", "--skip-gap", &src, &f]);
    assert_eq!(meta_lines(&f), meta_lines(&src));
    let r = replication(&f);
    assert_eq!(r["gaps"], serde_json::json!([[0, first - 1]]));
    assert_eq!(r["lag_records"], 0);
    let text = ok(&["status", &f]);
    assert!(
        text.contains(&format!("gap        seqs 0 to {} not copied", first - 1)),
        "{text}"
    );
    ok(&["verify", &f]);

    // Later, the source drops records the follower never got: the same choice.
    write_big(&src, 200, 200);
    let second = oldest(&src);
    assert!(second > 200);
    let err = crate::common::fails(&["replicate", "--no-wait", &src, &f]);
    assert!(
        err.contains(&format!("no longer holds seqs 200 to {}", second - 1)),
        "{err}"
    );
    ok(&["replicate", "--no-wait", "--skip-gap", &src, &f]);
    let r = replication(&f);
    assert_eq!(
        r["gaps"],
        serde_json::json!([[0, first - 1], [200, second - 1]])
    );
    // The follower's own retention (the source's configuration) keeps the newest.
    let (mine, theirs) = (meta_lines(&f), meta_lines(&src));
    assert!(
        mine.len() >= theirs.len() / 2,
        "{} of {}",
        mine.len(),
        theirs.len()
    );
    assert_eq!(mine[..], theirs[theirs.len() - mine.len()..]);
    ok(&["verify", &f]);

    // --from-seq: a new follower starting at the source's fifth-newest record.
    let next = second + theirs.len() as u64;
    let g = path("g");
    let from = (next - 5).to_string();
    ok(&["replicate", "--no-wait", "--from-seq", &from, &src, &g]);
    assert_eq!(meta_lines(&g), theirs[theirs.len() - 5..]);
    assert_eq!(oldest(&g), next - 5);
    assert_eq!(replication(&g)["gaps"], serde_json::json!([[0, next - 6]]));
    // Before the source's oldest: refused without --skip-gap, nothing created.
    let err = crate::common::fails(&[
        "replicate",
        "--no-wait",
        "--from-seq",
        "3",
        &src,
        &path("h"),
    ]);
    assert!(
        err.contains(&format!("no longer holds seqs 3 to {}", second - 1)),
        "{err}"
    );
    let err = crate::common::fails(&[
        "replicate",
        "--no-wait",
        "--from-seq",
        "99999",
        &src,
        &path("i"),
    ]);
    assert!(err.contains("ends before it"), "{err}");
    for refused in ["h", "i"] {
        assert!(!tmp.path().join(refused).exists(), "{refused} was created");
    }
}

#[test]
fn a_follower_whose_stream_jumps_past_dropped_records_stops_or_with_skip_gap_goes_on() {
    let s = Server::start(&[]);
    let src = s.dir("ev");
    ok(&["init", "--size", "64k", &src]);
    write_big(&src, 0, 10);
    let proxy = Proxy::start(s.addr);
    let url = format!("http://{}/ev", proxy.addr);
    let tmp = tempfile::tempdir().unwrap();
    for skip in [false, true] {
        let f = tmp.path().join(format!("f-{skip}")).display().to_string();
        let mut args = vec!["replicate"];
        if skip {
            args.push("--skip-gap");
        }
        args.extend([url.as_str(), f.as_str()]);
        let mut child = Command::new(bin())
            .args(&args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        status_until(&f, "caught up", |r| r["last_seq"].as_u64() >= Some(9));
        // The stream stalls while the source writes and drops past what it sent, and
        // the connection is cut: the follower asks again from its next seq, and the
        // source answers from its oldest.
        proxy.hold_frames(true);
        let base = 10 + if skip { 300 } else { 0 };
        write_big(&src, base, 300);
        assert!(proxy.cut_all() > 0);
        proxy.hold_frames(false);
        if !skip {
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() {
                assert!(
                    Instant::now() < deadline,
                    "the follower did not stop at the gap"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success());
            assert!(
                err.contains("no longer holds seqs") && err.contains("--skip-gap"),
                "{err}"
            );
            continue;
        }
        let next = 10 + 600;
        let r = status_until(&f, "past the gap", |r| r["last_seq"] == next - 1);
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("skipped them (--skip-gap)"), "{err}");
        // Every seq is either copied or in a recorded gap, never both; what the source
        // still holds is there byte for byte.
        let gaps: Vec<(u64, u64)> = r["gaps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g[0].as_u64().unwrap(), g[1].as_u64().unwrap()))
            .collect();
        assert!(!gaps.is_empty(), "{r}");
        let mine: Vec<u64> = meta_lines(&f)
            .iter()
            .map(|l| l["seq"].as_u64().unwrap())
            .collect();
        // Below the follower's oldest, its own retention (a 64 KiB store) dropped them.
        for seq in oldest(&f)..next {
            let copied = mine.binary_search(&seq).is_ok();
            let skipped = gaps.iter().any(|&(a, b)| (a..=b).contains(&seq));
            assert!(
                copied != skipped,
                "seq {seq}: copied {copied}, skipped {skipped}"
            );
        }
        let (mine, theirs) = (meta_lines(&f), meta_lines(&src));
        assert!(
            mine.len() >= theirs.len() / 2,
            "{} of {}",
            mine.len(),
            theirs.len()
        );
        assert_eq!(mine[..], theirs[theirs.len() - mine.len()..]);
        ok(&["verify", &f]);
    }
}
