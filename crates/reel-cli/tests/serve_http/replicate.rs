//! `reel replicate` and `reel promote`: followers that are exact copies of their source,
//! local or over HTTP, through kills and restarts; read-only until promoted; gaps and
//! divergence refused.

use crate::Server;
use crate::common::{bin, fails, ok};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn meta(dir: &str) -> String {
    ok(&["stream", "--meta", dir])
}

/// Waits until `dst` holds as many records as `src`.
fn wait_caught_up(src: &str, dst: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let want = meta(src).lines().count();
        if std::path::Path::new(dst).join("reel.meta").exists() && meta(dst).lines().count() >= want
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{dst} did not catch up with {src}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn followers_are_byte_for_byte_copies_through_kills_and_restarts() {
    let s = Server::start(&[]);
    let src = s.dir("ev");
    ok(&["init", "--size", "64m", &src]);
    let url = format!("http://{}/ev", s.addr);
    let tmp = tempfile::tempdir().unwrap();
    let f_remote = tmp.path().join("f-remote").display().to_string();
    let f_local = tmp.path().join("f-local").display().to_string();
    // A writer at full speed in the background.
    let writer = {
        let src = src.clone();
        std::thread::spawn(move || {
            for b in 0..40 {
                let body: String = (0..250)
                    .map(|i| format!("{{\"b\":{b},\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(80)))
                    .collect();
                let mut c = Command::new(bin())
                    .args(["write", "--key", &format!("k{}", b % 7), &src])
                    .stdin(Stdio::piped())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                c.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
                assert!(c.wait().unwrap().success());
            }
        })
    };
    // Followers killed (-9) and restarted at moments spread over the writes.
    for trial in 0..6 {
        let (from, dst) = if trial % 2 == 0 {
            (url.as_str(), f_remote.as_str())
        } else {
            (src.as_str(), f_local.as_str())
        };
        let mut child = Command::new(bin())
            .args(["replicate", from, dst])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(60 + 37 * trial));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    writer.join().unwrap();
    for (from, dst) in [
        (url.as_str(), f_remote.as_str()),
        (src.as_str(), f_local.as_str()),
    ] {
        ok(&["replicate", "--no-wait", from, dst]);
        assert_eq!(meta(dst), meta(&src), "{dst} differs from the source");
    }
    assert_eq!(meta(&src).lines().count(), 10_000);
}

#[test]
fn a_live_follower_keeps_up_and_a_follower_is_read_only_until_promoted() {
    let s = Server::start(&[]);
    let src = s.dir("cfg");
    ok(&["kv", "set", &src, "app.port", "8080"]);
    let url = format!("http://{}/cfg", s.addr);
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f").display().to_string();
    let mut follower = Command::new(bin())
        .args(["replicate", &url, &f])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_caught_up(&src, &f);
    // Changes on the source reach the follower's kv reads.
    ok(&["kv", "set", &src, "app.port", "9090"]);
    wait_caught_up(&src, &f);
    assert_eq!(ok(&["kv", "get", &f, "app.port"]), "\"9090\"\n");
    // The source's metrics show where the follower is.
    let metrics = crate::client::get(s.addr, "/metrics").body;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("reel_follower_next_seq{store=\"cfg\",follower=\"127.0.0.1:"))
        .unwrap_or_else(|| panic!("no follower in\n{metrics}"));
    assert!(line.ends_with(" 2"), "{line}");
    let rev = ok(&["kv", "get", "--meta", &src, "app.port"]);
    assert_eq!(ok(&["kv", "get", "--meta", &f, "app.port"]), rev);
    // Status says what it follows.
    let st: serde_json::Value = serde_json::from_str(&ok(&["status", "--json", &f])).unwrap();
    assert_eq!(st["follows"], url.as_str());
    assert!(ok(&["status", &f]).contains(&format!("follows    {url}")));
    // Writes on the follower are refused, naming the source.
    let err = fails(&["kv", "set", &f, "app.port", "1"]);
    assert!(err.contains("follower of") && err.contains(&url), "{err}");
    let err = fails(&["kv", "set", "--if-rev", "1", &f, "app.port", "1"]);
    assert!(err.contains("follower of"), "{err}");
    // Not while the replicator runs: it would go on appending the source's records into
    // a store that takes writes of its own. Nor a second replicator beside it.
    let err = fails(&["promote", &f]);
    assert!(err.contains("stop it first"), "{err}");
    let err = fails(&["replicate", "--no-wait", &url, &f]);
    assert!(err.contains("one replicator per follower"), "{err}");
    follower.kill().unwrap();
    follower.wait().unwrap();
    // Promoted: writable, old revisions kept, and it no longer follows.
    assert!(ok(&["promote", &f]).contains("store of its own"));
    assert_eq!(ok(&["kv", "get", "--meta", &f, "app.port"]), rev);
    ok(&["kv", "set", &f, "app.port", "1"]);
    let st: serde_json::Value = serde_json::from_str(&ok(&["status", "--json", &f])).unwrap();
    assert!(st.get("follows").is_none());
    let err = fails(&["replicate", "--no-wait", &url, &f]);
    assert!(err.contains("store of its own"), "{err}");
    assert!(fails(&["promote", &f]).contains("not a follower"));
}

#[test]
fn gaps_and_divergence_are_refused_and_nothing_is_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src").display().to_string();
    // A small drop-oldest spool that has lost its first records.
    ok(&["init", "--size", "64k", &src]);
    let pad = "y".repeat(900);
    for i in 0..200 {
        ok(&["write", &src, &format!("{{\"i\":{i},\"pad\":\"{pad}\"}}")]);
    }
    let gap = tmp.path().join("gap").display().to_string();
    let err = fails(&["replicate", "--no-wait", &src, &gap]);
    assert!(err.contains("no longer holds seqs 0 to"), "{err}");
    // A follower that has records the source never had.
    let a = tmp.path().join("a").display().to_string();
    ok(&["init", &a]);
    ok(&["write", &a, "{\"n\":1}", "{\"n\":2}"]);
    let f = tmp.path().join("f").display().to_string();
    ok(&["replicate", "--no-wait", &a, &f]);
    let b = tmp.path().join("b").display().to_string();
    ok(&["init", &b]);
    ok(&["write", &b, "{\"n\":1}"]);
    // f follows a; pointed at b (another source) it refuses.
    assert!(fails(&["replicate", "--no-wait", &b, &f]).contains("follows"));
    let before = meta(&f);
    // A follower ahead of its source (the source was replaced by a shorter one).
    std::fs::remove_dir_all(&a).unwrap();
    ok(&["init", &a]);
    ok(&["write", &a, "{\"n\":1}"]);
    let err = fails(&["replicate", "--no-wait", &a, &f]);
    assert!(err.contains("diverged"), "{err}");
    assert_eq!(meta(&f), before, "nothing in the follower changed");
    // A source as long as the follower but with another history.
    std::fs::remove_dir_all(&a).unwrap();
    ok(&["init", &a]);
    ok(&["write", &a, "{\"n\":1}", "{\"n\":3}", "{\"n\":4}"]);
    let err = fails(&["replicate", "--no-wait", &a, &f]);
    assert!(err.contains("differ at seq 1"), "{err}");
    assert_eq!(meta(&f), before, "nothing in the follower changed");
}

#[test]
fn a_server_following_another_serves_its_stores_read_only() {
    let a = Server::start(&[]);
    ok(&["init", &a.dir("ev")]);
    ok(&["write", &a.dir("ev"), "{\"n\":1}"]);
    ok(&["kv", "set", &a.dir("cfg"), "x", "1"]);
    let source = format!("http://{}", a.addr);
    let b = Server::start(&["--follow", &source, "--stores", "ev,cfg"]);
    wait_caught_up(&a.dir("ev"), &b.dir("ev"));
    wait_caught_up(&a.dir("cfg"), &b.dir("cfg"));
    // Live: a write on the source reaches the follower server's readers.
    ok(&["write", &a.dir("ev"), "{\"n\":2}"]);
    wait_caught_up(&a.dir("ev"), &b.dir("ev"));
    let via_b = format!("http://{}/ev", b.addr);
    assert_eq!(ok(&["stream", &via_b]), "{\"n\":1}\n{\"n\":2}\n");
    assert_eq!(
        ok(&["kv", "get", &format!("http://{}/cfg", b.addr), "x"]),
        "\"1\"\n"
    );
    // A write sent to the follower server: 409, naming the source.
    let r = crate::client::request(b.addr, "POST", "/v1/stores/ev/records", &[], b"{}\n");
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains(&format!("{source}/ev")),
        "{}",
        r.body
    );
}

#[test]
fn a_follower_is_the_same_log_and_takes_the_sources_continuation_tokens() {
    let s = Server::start(&[]);
    let src = s.dir("orders");
    ok(&["list", "append", &src, "o", "1", "2", "3", "4"]);
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/orders", s.addr);
    for (from, name) in [(url.as_str(), "remote"), (src.as_str(), "local")] {
        let dst = tmp.path().join(name).display().to_string();
        ok(&["replicate", "--no-wait", from, &dst]);
        let id = |d: &str| {
            let st: serde_json::Value =
                serde_json::from_str(&ok(&["status", "--json", d])).unwrap();
            st["log_id"].as_str().unwrap().to_string()
        };
        assert_eq!(id(&dst), id(&src), "{name}");
        let page: serde_json::Value =
            serde_json::from_str(&ok(&["list", "read", "--limit", "2", &src, "o"])).unwrap();
        let token = page["continuation"].as_str().unwrap();
        let rest: serde_json::Value =
            serde_json::from_str(&ok(&["list", "read", "--continue", token, &dst, "o"])).unwrap();
        assert_eq!(rest["items"][0]["offset"], 2, "{name}: {rest}");
    }
}

/// A kv store compacts: the seqs of superseded values disappear from it, also in the
/// middle of what a follower reads at once. A follower that was behind stops there and
/// says whether skipping loses anything; `--skip-gap` then goes on (it used to fail on
/// a jump inside a batch, "replicated frames jump"), locally and over HTTP, and the
/// follower ends with the source's state. When compaction dropped a deletion the
/// follower had not copied, the message says skipping could keep the deleted value.
#[test]
fn a_kv_follower_behind_compaction_is_told_what_skipping_costs_and_can_skip() {
    let s = Server::start(&[]);
    let src = s.dir("cfg");
    ok(&["init", "--kind", "kv", "--size", "256k", &src]);
    ok(&["kv", "set", &src, "b", "keep"]);
    ok(&["kv", "set", &src, "x", "1"]);
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local").display().to_string();
    let remote = tmp.path().join("remote").display().to_string();
    let url = format!("http://{}/cfg", s.addr);
    ok(&["replicate", "--no-wait", &src, &local]);
    ok(&["replicate", "--no-wait", &url, &remote]);
    // Values of `a` interleaved with lasting keys: compaction leaves holes between them.
    let big = "x".repeat(3000);
    for i in 0..40 {
        ok(&["kv", "set", &src, "a", &format!("v{i}{big}")]);
        ok(&["kv", "set", &src, &format!("u{i}"), "kept"]);
    }
    ok(&["kv", "set", &src, "x", "2"]);
    assert!(ok(&["compact", "--grace", "0", &src]).contains("dropped"));
    let st: serde_json::Value = serde_json::from_str(&ok(&["status", "--json", &src])).unwrap();
    assert_eq!(st["tombstone_horizon"], 0, "{st}");
    for (from, f) in [(&src, &local), (&url, &remote)] {
        let err = fails(&["replicate", "--no-wait", from, f]);
        assert!(err.contains("--skip-gap loses nothing"), "{err}");
        ok(&["replicate", "--no-wait", "--skip-gap", from, f]);
        assert_eq!(ok(&["kv", "get", f, "x"]).trim(), "\"2\"");
        assert_eq!(ok(&["kv", "get", f, "b"]).trim(), "\"keep\"");
        let same = ok(&["kv", "get", f, "a"]) == ok(&["kv", "get", &src, "a"]);
        assert!(same, "{f} holds the source's latest `a`");
        assert_eq!(
            ok(&["kv", "keys", "-r", f]),
            ok(&["kv", "keys", "-r", &src])
        );
    }
    // A deletion the followers have not copied, dropped by compaction.
    ok(&["kv", "del", &src, "x"]);
    for i in 0..40 {
        ok(&["kv", "set", &src, "a", &format!("w{i}{big}")]);
    }
    ok(&["compact", "--grace", "0", &src]);
    for (from, f) in [(&src, &local), (&url, &remote)] {
        let err = fails(&["replicate", "--no-wait", from, f]);
        assert!(err.contains("dropped a deletion"), "{err}");
        assert_eq!(
            ok(&["kv", "get", f, "x"]).trim(),
            "\"2\"",
            "nothing changed"
        );
    }
}
